"""The tables `make bench-scale` and `make bench-soak` print: each figure beside its SPEC §6
target, met or not, with the date and the load average it was measured at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MIB_LIMIT = 600.0  # SPEC §6: PSS of one pod, whatever the worker count
SYNC_LIMIT_S = 60.0
LAG_LIMIT_MS = 100.0
DECISION_LIMIT_US = 100.0
P99_LIMIT_MS = 10.0


def met(value: float, limit: float) -> str:
    return "yes" if value < limit else "**no**"


def _load(section: Mapping[str, Any]) -> str:
    load = section.get("load_average")
    return f" [{str(load).split()[0]}]" if load else ""


def scale_table(results: Mapping[str, Any]) -> str:
    """Markdown tables of a `bench/scale.py` result (the figures it has; parts skipped are
    left out)."""
    rows = [
        f"Scale, {results.get('date', '?')}: {results['args']['namespaces']:,} namespaces, "
        f"{results.get('policies', 0):,} policies in a real kube-apiserver; load average at "
        f"start {results.get('load_average_start', '?')}, at end "
        f"{results.get('load_average_end', '?')}; {results.get('total_s', 0):.0f} s "
        "[1-minute load average at each step]",
        "",
    ]
    memory: Sequence[Mapping[str, Any]] = results.get("memory", ())
    preload = {m["workers"]: m for m in memory if m["mode"] == "preload"}
    separate = {m["workers"]: m for m in memory if m["mode"] != "preload"}
    if preload:
        counts = sorted(preload)
        rows += [
            "| measurement | "
            + " | ".join(f"{w} worker{'s' if w > 1 else ''}" for w in counts)
            + " | target | met |",
            "| --- | " + " | ".join("---" for _ in counts) + " | --- | --- |",
        ]
        readyz = [preload[w]["readyz_s"] for w in counts]
        pss = [preload[w]["memory_synced"]["pss_total_mib"] for w in counts]
        rows.append(
            "| start to `/readyz` (s) | "
            + " | ".join(f"{preload[w]['readyz_s']:.1f}{_load(preload[w])}" for w in counts)
            + f" | < {SYNC_LIMIT_S:.0f} s | {met(max(readyz), SYNC_LIMIT_S)} |"
        )
        rows.append(
            "| CPU s: Guardrail / kube-apiserver and etcd | "
            + " | ".join(
                f"{preload[w]['guardrail_cpu_s']:.0f} / {preload[w]['apiserver_etcd_cpu_s']:.0f}"
                for w in counts
            )
            + " |  |  |"
        )
        rows.append(
            "| PSS of the pod after the sync (MiB) | "
            + " | ".join(f"{p:.0f}" for p in pss)
            + f" | < {MIB_LIMIT:.0f} MiB | {met(max(pss), MIB_LIMIT)} |"
        )
        after = [preload[w].get("memory_after_2000_namespaces") for w in counts]
        if all(after):
            rows.append(
                "| … after 2,000 namespaces judged (MiB) | "
                + " | ".join(f"{a['pss_total_mib']:.0f}" for a in after if a)
                + " |  |  |"
            )
        if separate:
            rows.append(
                "| `--no-preload`: PSS after the sync (MiB) | "
                + " | ".join(
                    f"{separate[w]['memory_synced']['pss_total_mib']:.0f}" if w in separate else ""
                    for w in counts
                )
                + " |  |  |"
            )
        rows.append("")
    rows += ["| measurement | figure | target | met |", "| --- | --- | --- | --- |"]
    decision = results.get("decision")
    if decision:
        rows.append(
            f"| decision in process, a Pod's role (read by the policies) new to its namespace: "
            f"p50 / p99 (µs)"
            f"{_load(decision)} | {decision['decision_p50_us']:.1f} / "
            f"**{decision['decision_p99_us']:.1f}** (thread CPU p99 "
            f"{decision['decision_cpu_p99_us']:.1f}) | p99 < {DECISION_LIMIT_US:.0f} µs | "
            f"{met(decision['decision_p99_us'], DECISION_LIMIT_US)} |"
        )
        if "kept_decision_p99_us" in decision:
            rows.append(
                f"| … the same Pods with a new pod-template-hash, kept by the view (a rollout's, "
                f"a ReplicaSet's later replicas): p50 / p99 (µs) | "
                f"{decision['kept_decision_p50_us']:.1f} / "
                f"{decision['kept_decision_p99_us']:.1f} |  |  |"
            )
        rows.append(
            f"| first decision in a namespace (builds its view): p50 / p99 (ms) | "
            f"{decision['first_in_namespace_p50_us'] / 1000:.2f} / "
            f"{decision['first_in_namespace_p99_us'] / 1000:.2f} |  |  |"
        )
    http = results.get("http_200rps")
    if http:
        rows.append(
            f"| `/validate` at 200 requests/s, allowed Pods: p50 / p99 / max (ms){_load(http)} | "
            f"{http['p50_ms']:.2f} / **{http['p99_ms']:.2f}** / {http['max_ms']:.1f}, "
            f"{http['sent']:,} requests, {http['errors']} errors | p99 < {P99_LIMIT_MS:.0f} ms | "
            f"{met(http['p99_ms'], P99_LIMIT_MS) if not http['errors'] else '**no** (errors)'} |"
        )
        if "denial_p50_ms" in http:
            rows.append(
                f"| a denial, live confirmation included: p50 / max (ms) | "
                f"{http['denial_p50_ms']:.1f} / {http['denial_max_ms']:.1f} |  |  |"
            )
    lag = results.get("lag")
    if lag:
        rows.append(
            f"| watch event in decisions at {lag['events_per_s']:.0f} events/s: p50 / p99 / max "
            f"(ms), {lag['probes']} probes{_load(lag)} | {lag['lag_p50_ms']:.1f} / "
            f"**{lag['lag_p99_ms']:.1f}** / {lag['lag_max_ms']:.1f} | p99 < "
            f"{LAG_LIMIT_MS:.0f} ms | {met(lag['lag_p99_ms'], LAG_LIMIT_MS)} |"
        )
    resync = results.get("resync_in_fork")
    if resync:
        copied = resync["child_shared_mib_before"] - resync["child_shared_mib_after_1"]
        rows.append(
            f"| a resync in a forked worker: shared MiB copied, private MiB after; seconds | "
            f"{copied:.0f} of {resync['child_shared_mib_before']:.0f}, "
            f"{resync['child_private_mib_after_1']:.0f}; {resync['resync_1_s']:.0f} s |  |  |"
        )
    after_lag = results.get("serve_memory_after_lag")
    if after_lag and lag:
        rows.append(
            f"| PSS of the 2-worker pod after the lag part's changes (MiB) | "
            f"{after_lag['pss_total_mib']:.0f} |  |  |"
        )
    return "\n".join(rows)


def soak_table(summary: Mapping[str, Any], intervals: Sequence[Mapping[str, Any]]) -> str:
    """A `bench/soak.py` run: one column per minute, then the verdict on each target."""
    minutes: dict[int, list[Mapping[str, Any]]] = {}
    # Each interval in the minute it began (its end is `elapsed_s`; the clock drifts a little).
    began = 0.0
    for interval in intervals:
        minutes.setdefault(int(began // 60) + 1, []).append(interval)
        began = round(interval["elapsed_s"])
    names = sorted(minutes)
    load = summary.get("load_average", {})
    rows = [
        f"Soak: {summary['requests']:,} requests at {summary['achieved_rate']:.0f}/s; load "
        f"average {load.get('start', '?')} → {load.get('end', '?')}",
        "",
        "| minute | " + " | ".join(str(m) for m in names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
        "| requests | "
        + " | ".join(f"{sum(i['requests'] for i in minutes[m]):,}" for m in names)
        + " |",
        "| errors | "
        + " | ".join(str(sum(sum(i["errors"].values()) for i in minutes[m])) for m in names)
        + " |",
        "| p99 (ms), the worse interval | "
        + " | ".join(f"{max(i['p99_ms'] for i in minutes[m]):.1f}" for m in names)
        + " |",
        "| RSS, master + workers (MiB) | "
        + " | ".join(f"{minutes[m][-1]['rss_total_mib']:.0f}" for m in names)
        + " |",
    ]
    if any(i.get("pss_total_mib") for i in intervals):
        rows.append(
            "| PSS, master + workers (MiB) | "
            + " | ".join(f"{minutes[m][-1].get('pss_total_mib') or 0:.0f}" for m in names)
            + " |"
        )
    errors = sum(summary["errors"].values())
    rows += [
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        f"| 0 errors | {errors} | {'yes' if errors == 0 else '**no**'} |",
        f"| p99 < {P99_LIMIT_MS:.0f} ms at 200 requests/s | median interval "
        f"{summary['median_p99_ms']:.1f}, worst {summary['worst_p99_ms']:.1f} | "
        f"{met(summary['median_p99_ms'], P99_LIMIT_MS)} |",
        f"| memory flat | RSS {summary['rss_first_mib']:.0f} → {summary['rss_last_mib']:.0f} MiB"
        f" ({summary.get('rss_slope_mib_per_min', 0.0):+.2f} MiB/min); PSS "
        f"{summary['pss_first_mib']:.0f} → {summary['pss_last_mib']:.0f} MiB "
        f"({summary['pss_slope_mib_per_min']:+.2f} MiB/min) | see the README |",
    ]
    wrong = summary.get("verdicts_wrong")
    if wrong is not None:
        bad = len(wrong.get("before", ())) + len(wrong.get("after", ()))
        rows.append(
            f"| every verdict as expected before and after | {bad} wrong | "
            f"{'yes' if bad == 0 else '**no**'} |"
        )
    return "\n".join(rows)
