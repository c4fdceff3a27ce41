"""Pod creation through a real kube-apiserver: no webhook, the Go floor, Guardrail and its peers.

Starts the e2e harness's control plane (tests/e2e/harness.py), then every selected peer
(bench/peers/): the Go floor (bench/floor), Guardrail (`guardrail serve --kubeconfig`),
Gatekeeper and Kyverno (built from their Go modules, cached in ~/.cache/guardrail-bench). Each
measured webhook (a subject) sees only its own namespaces (`guardrail-bench=<subject>`); the
baseline namespace has no webhook at all. Then, in one run:

1. equivalence: every judging subject gives each case of bench/peers/cases.py its verdict
   (allowed, or denied naming the case's rule) through the API server; any difference and no
   figure is printed (exit 1);
2. latency: one keep-alive client creating SEQUENTIAL pods per namespace, the namespaces in
   rotation (each step starts with the next one) so all share the same moments: p50 and p90,
   and what each webhook adds to the baseline's;
3. throughput: CLIENTS concurrent clients for PHASE_SECONDS per namespace, ROUNDS times,
   alternating: pods/s, and each webhook's CPU (its process tree, from /proc) per admitted pod;
4. direct keep-alive load: wrk on each subject's own endpoint with the AdmissionReview the API
   server sends for the timed Pod (requests/s, p50/p99, requests per CPU-second);
5. PSS of each subject's process tree.

    python bench/apiserver.py --cert-dir DIR [--peers floor,guardrail,gatekeeper,kyverno]  # JSON
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.peers import base, cases  # noqa: E402 - after the sys.path set-up
from bench.peers.floor import Floor, served  # noqa: E402
from bench.peers.gatekeeper import Gatekeeper  # noqa: E402
from bench.peers.guardrail import Guardrail  # noqa: E402
from bench.peers.kyverno import Kyverno  # noqa: E402
from tests.e2e.harness import Cluster, running_cluster  # noqa: E402

PEERS: dict[str, Callable[[], base.Peer]] = {
    "floor": Floor,
    "guardrail": Guardrail,
    "gatekeeper": Gatekeeper,
    "kyverno": Kyverno,
}
BASELINE = "baseline"
ROTATE_LUA = Path(__file__).resolve().parent / "rotate.lua"


def log(message: str) -> None:
    print(f"[apiserver {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


class Api:
    """Keep-alive client of the API server as the harness's admin user."""

    def __init__(self, cluster: Cluster) -> None:
        self.base = cluster.server
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would replace the cluster's CA.
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {cluster.token}"
        self.session.verify = str(cluster.ca_file)

    def create(
        self, namespace: str, name: str, labels: dict[str, str] | None = None
    ) -> tuple[int, float, str]:
        started = time.perf_counter()
        response = self.session.post(
            f"{self.base}/api/v1/namespaces/{namespace}/pods",
            json=cases.pod(name, namespace, labels),
            timeout=15,
        )
        seconds = time.perf_counter() - started
        return response.status_code, seconds, "" if response.ok else response.text


def apiserver_pid(cluster: Cluster) -> int | None:
    """The harness's kube-apiserver, found by its own --cert-dir (its log names no pid)."""
    marker = f"--cert-dir={cluster.tmp / 'apiserver-certs'}"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                    return int(proc.name)
    return None


# -- set-up -------------------------------------------------------------------------------------
def registered_webhooks(cluster: Cluster) -> list[dict[str, Any]]:
    """Every validating webhook the API server calls for Pods, as registered (the README's list)."""
    out = cluster.kubectl("get", "validatingwebhookconfigurations", "-o", "json")
    found = []
    for config in json.loads(out.stdout)["items"]:
        for webhook in config.get("webhooks", []):
            resources = sorted({r for rule in webhook.get("rules", []) for r in rule["resources"]})
            if not {"pods", "*", "*/*"} & set(resources):
                continue
            found.append(
                {
                    "configuration": config["metadata"]["name"],
                    "webhook": webhook["name"],
                    "url": webhook["clientConfig"].get("url", ""),
                    "resources": resources,
                    "namespaceSelector": webhook.get("namespaceSelector"),
                    "matchConditions": webhook.get("matchConditions", []),
                    "failurePolicy": webhook.get("failurePolicy"),
                    "timeoutSeconds": webhook.get("timeoutSeconds"),
                }
            )
    return found


def create_namespaces(cluster: Cluster, subjects: list[str]) -> None:
    objects: list[dict[str, Any]] = [cases.namespace(BASELINE, cases.MEASURED, labelled=False)]
    policies = cases.network_policies(
        cases.namespace_name(BASELINE, cases.MEASURED), cases.MEASURED
    )
    for subject in subjects:
        # The floor judges nothing: only the namespace pods are timed in.
        fixtures = [cases.MEASURED] if subject == "floor" else list(cases.FIXTURES)
        for fixture in fixtures:
            objects.append(cases.namespace(subject, fixture))
            name = cases.namespace_name(subject, fixture)
            policies += cases.network_policies(name, fixture)
    base.apply(cluster, *objects)
    base.apply(cluster, *policies)
    api = cluster.api_get
    for obj in objects:
        name = obj["metadata"]["name"]
        base.wait_until(
            lambda name=name: bool(api(f"/api/v1/namespaces/{name}/serviceaccounts/default")),
            f"serviceaccount default in {name}",
            60,
        )


def wait_registered(api: Api, subject: base.Subject) -> None:
    """The API server calls this subject for pods in its namespace (a probe per attempt)."""
    namespace = cases.namespace_name(subject.key, cases.MEASURED)
    attempt = iter(range(10_000))

    def probe() -> bool:
        name = f"probe-{next(attempt)}"
        if not subject.judges:
            before = served(subject.url, subject.ca)
            status, _, _ = api.create(namespace, name)
            return status == 201 and served(subject.url, subject.ca) > before
        status, _, text = api.create(namespace, name, labels={})
        return denied(status, text) and "[require-role-labels]" in text

    base.wait_until(probe, f"the API server calling {subject.key}", 120)


def denied(status: int, text: str) -> bool:
    """A webhook's denial as the API server reports it (Guardrail answers 403, Kyverno 400)."""
    return 400 <= status < 500 and "denied the request" in text


def verdicts(api: Api, key: str, judges: bool, attempt: int) -> list[dict[str, Any]]:
    out = []
    for case in cases.CASES:
        if key in (BASELINE, "floor") and case.fixture != cases.MEASURED:
            continue
        namespace = cases.namespace_name(key, case.fixture)
        status, _, text = api.create(namespace, f"case-{case.name}-{attempt}", case.labels)
        expected = case.allowed or not judges
        denied_by = ""
        if denied(status, text):
            named = [r for r in ("require-role-labels", "require-default-deny") if f"[{r}]" in text]
            denied_by = ",".join(named)
        want_denied_by = "" if expected else case.denied_by
        ok = (status == 201 and expected) or (denied(status, text) and denied_by == want_denied_by)
        out.append(
            {
                "case": case.name,
                "namespace": namespace,
                "expected": "allowed" if expected else f"denied by {case.denied_by}",
                "got": "allowed" if status == 201 else f"HTTP {status} {denied_by or text[:300]}",
                "ok": ok,
            }
        )
    return out


def equivalence(api: Api, subjects: list[base.Subject]) -> dict[str, list[dict[str, Any]]]:
    """Every subject's verdicts on the cases; retried a while for caches still syncing."""
    results: dict[str, list[dict[str, Any]]] = {}
    for key, judges in [(BASELINE, False), *((s.key, s.judges) for s in subjects)]:
        deadline = time.monotonic() + 90
        attempt = 0
        while True:
            results[key] = verdicts(api, key, judges, attempt)
            if all(v["ok"] for v in results[key]) or time.monotonic() > deadline:
                break
            attempt += 1
            time.sleep(2)
    return results


# -- measurement --------------------------------------------------------------------------------
def throughput(
    cluster: Cluster, namespace: str, prefix: str, clients: int, seconds: float
) -> tuple[int, float]:
    """Pods created by CLIENTS keep-alive clients during SECONDS: (count, elapsed seconds)."""
    counts = [0] * clients
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    def client(index: int) -> None:
        api = Api(cluster)
        n = 0
        while time.perf_counter() < deadline:
            status, _, text = api.create(namespace, f"{prefix}-{index}-{n}")
            n += 1
            if status == 201:
                counts[index] += 1
            else:
                failures.append(f"HTTP {status}: {text[:200]}")

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise SystemExit(
            f"bench: {len(failures)} pod creations failed in {namespace}: {failures[0]}"
        )
    return sum(counts), time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def run_wrk(
    wrk: str, url: str, body: Path, seconds: float, connections: int, pid: int
) -> dict[str, Any]:
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(int(seconds), 1)}s",
        "--timeout",
        "10s",
        "-s",
        str(ROTATE_LUA),
        url,
        "--",
        str(body),
    ]
    cpu_before = base.tree_cpu_seconds(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu = base.tree_cpu_seconds(pid) - cpu_before
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return {
        "requests": data["requests"],
        "seconds": data["duration_us"] / 1e6,
        "p50_ms": data["latency_us"]["p50"] / 1000,
        "p99_ms": data["latency_us"]["p99"] / 1000,
        "errors": sum(data["errors"].values()),
        "cpu_s": cpu,
        "load_average": load_average(),
    }


def direct_load(
    args: argparse.Namespace, subjects: list[base.Subject], work: Path
) -> dict[str, Any]:
    wrk = args.wrk or shutil.which("wrk")
    if not wrk:
        log("wrk not found: no direct keep-alive load (bench/run.py installs it)")
        return {}
    bodies: dict[str, Path] = {}
    for subject in subjects:
        namespace = cases.namespace_name(subject.key, cases.MEASURED)
        review = cases.admission_review(cases.pod("direct", namespace), f"direct-{subject.key}")
        body = work / f"direct-{subject.key}.json"
        body.write_text(json.dumps(review), encoding="utf-8")
        answer = requests.post(
            subject.url,
            data=body.read_bytes(),
            verify=str(subject.ca),
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        response = answer.json().get("response", {})
        if answer.status_code != 200 or response.get("allowed") is not True:
            raise SystemExit(f"bench: {subject.key} answered {answer.text[:500]} to {body.name}")
        bodies[subject.key] = body
    rounds: dict[str, list[dict[str, Any]]] = {s.key: [] for s in subjects}
    for subject in subjects:  # warm-up
        run_wrk(wrk, subject.url, bodies[subject.key], 2, args.connections, subject.pid)
    for round_ in range(args.direct_rounds):
        order = subjects if round_ % 2 == 0 else list(reversed(subjects))
        for subject in order:
            log(
                f"direct load round {round_ + 1}/{args.direct_rounds}: {subject.key} "
                f"(load {load_average()})"
            )
            rounds[subject.key].append(
                run_wrk(
                    wrk,
                    subject.url,
                    bodies[subject.key],
                    args.direct_seconds,
                    args.connections,
                    subject.pid,
                )
            )
    out: dict[str, Any] = {"connections": args.connections, "seconds": args.direct_seconds}
    for key, runs in rounds.items():
        total = sum(r["requests"] for r in runs)
        out[key] = {
            "rps": total / sum(r["seconds"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "requests_per_cpu_s": total / max(sum(r["cpu_s"] for r in runs), 1e-9),
            "errors": sum(r["errors"] for r in runs),
            "rounds": runs,
        }
    return out


def measure(
    args: argparse.Namespace, cluster: Cluster, subjects: list[base.Subject], work: Path
) -> dict[str, Any]:
    api = Api(cluster)
    keys = [BASELINE, *(s.key for s in subjects)]
    by_key = {s.key: s for s in subjects}
    namespaces = {key: cases.namespace_name(key, cases.MEASURED) for key in keys}
    apiserver = apiserver_pid(cluster)

    log("warming up")
    for i in range(20):
        for key in keys:
            api.create(namespaces[key], f"warm-{i}")
    log(f"sequential creations: {args.sequential} per namespace (load {load_average()})")
    latencies: dict[str, list[float]] = {key: [] for key in keys}
    started_load = load_average()
    for i in range(args.sequential):
        shift = i % len(keys)
        for key in keys[shift:] + keys[:shift]:
            status, seconds, text = api.create(namespaces[key], f"seq-{i}")
            if status != 201:
                raise SystemExit(f"bench: a pod creation in {namespaces[key]}: {status} {text}")
            latencies[key].append(seconds)
    sequential_load = f"{started_load} -> {load_average()}"

    log(
        f"throughput: {args.clients} clients, {args.phase_seconds} s per namespace, "
        f"{args.rounds} rounds (load {load_average()})"
    )
    pids = {s.pid for s in subjects}
    phases: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    for round_ in range(args.rounds):
        for key in keys if round_ % 2 == 0 else list(reversed(keys)):
            cpu_before = {pid: base.tree_cpu_seconds(pid) for pid in pids}
            api_before = base.tree_cpu_seconds(apiserver) if apiserver else 0.0
            pods, elapsed = throughput(
                cluster, namespaces[key], f"tp{round_}", args.clients, args.phase_seconds
            )
            cpu = {pid: base.tree_cpu_seconds(pid) - cpu_before[pid] for pid in pids}
            phases[key].append(
                {
                    "pods": pods,
                    "seconds": elapsed,
                    "cpu_s": {str(pid): c for pid, c in cpu.items()},
                    "apiserver_cpu_s": (base.tree_cpu_seconds(apiserver) - api_before)
                    if apiserver
                    else None,
                    "load_average": load_average(),
                }
            )

    direct = direct_load(args, subjects, work)
    pss = {s.key: base.tree_pss_kib(s.pid) for s in subjects}

    base_values = latencies[BASELINE]
    results: dict[str, Any] = {}
    for key in keys:
        values = latencies[key]
        runs = phases[key]
        pods = sum(r["pods"] for r in runs)
        seconds = sum(r["seconds"] for r in runs)
        entry: dict[str, Any] = {
            "p50_ms": statistics.median(values) * 1000,
            "p90_ms": percentile(values, 0.9) * 1000,
            "pods_per_s": pods / seconds,
            "throughput_phases": runs,
        }
        if apiserver:
            entry["apiserver_cpu_ms_per_pod"] = (
                1000 * sum(r["apiserver_cpu_s"] for r in runs) / pods
            )
        if key != BASELINE:
            subject = by_key[key]
            own = sum(r["cpu_s"][str(subject.pid)] for r in runs)
            # The same process while only the baseline namespace is loaded: what it burns
            # without admitting anything (watches, controllers, timers).
            idle_runs = phases[BASELINE]
            idle = sum(r["cpu_s"][str(subject.pid)] for r in idle_runs) / sum(
                r["seconds"] for r in idle_runs
            )
            entry.update(
                {
                    "added_p50_ms": entry["p50_ms"] - statistics.median(base_values) * 1000,
                    "added_p90_ms": entry["p90_ms"] - percentile(base_values, 0.9) * 1000,
                    "cpu_ms_per_pod": 1000 * own / pods,
                    "idle_cpu_pct": 100 * idle,
                    "cpu_ms_per_pod_less_idle": 1000 * (own - idle * seconds) / pods,
                    "pss_mib": pss[key] / 1024,
                    "title": subject.title,
                    "settings": subject.settings,
                }
            )
            if key in direct:
                entry["direct"] = {k: v for k, v in direct[key].items() if k != "rounds"}
                entry["direct_rounds"] = direct[key]["rounds"]
        results[key] = entry
    return {
        "subjects": results,
        "order": keys,
        "sequential_pods": args.sequential,
        "sequential_load_average": sequential_load,
        "clients": args.clients,
        "phase_seconds": args.phase_seconds,
        "rounds": args.rounds,
        "direct": {k: v for k, v in direct.items() if k in ("connections", "seconds")},
    }


@contextlib.contextmanager
def started(peers: list[base.Peer], ctx: base.Context) -> Iterator[list[base.Subject]]:
    with contextlib.ExitStack() as stack:
        subjects: list[base.Subject] = []
        for peer in peers:
            log(f"starting {peer.name} (load {load_average()})")
            begun = time.monotonic()
            subjects += stack.enter_context(peer.start(ctx))
            log(f"{peer.name} up in {time.monotonic() - begun:.0f} s")
        yield subjects


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=2, help="Guardrail's gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="Guardrail's threads per worker")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="comma-separated peers to run besides the baseline (default: all): "
        + ", ".join(PEERS),
    )
    parser.add_argument("--sequential", type=int, default=300, help="timed pods per namespace")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--phase-seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per namespace")
    parser.add_argument("--wrk", help="wrk binary for the direct load (default: on PATH)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--direct-seconds", type=float, default=4.0)
    parser.add_argument("--direct-rounds", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help="build the peers, then stop")
    parser.add_argument("--keep-cluster", action="store_true", help="keep the harness's tmp dir")
    args = parser.parse_args()
    args.peer_names = [n.strip() for n in args.peers.split(",") if n.strip()]
    unknown = sorted(set(args.peer_names) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers: {', '.join(unknown)} (known: {', '.join(PEERS)})")
    return args


def run(args: argparse.Namespace, peers: list[base.Peer], result: dict[str, Any]) -> None:
    """Everything through one control plane; RESULT gains equivalence and the figures."""
    with running_cluster(log=log, keep_tmp=args.keep_cluster) as cluster:
        work = cluster.tmp / "bench"
        work.mkdir()
        ctx = base.Context(cluster, args.cert_dir.resolve(), work, log, args.workers, args.threads)
        try:
            create_namespaces(cluster, [key for peer in peers for key in peer.subjects])
            with started(peers, ctx) as subjects:
                api = Api(cluster)
                for subject in subjects:
                    wait_registered(api, subject)
                result["webhooks"] = registered_webhooks(cluster)
                log("equivalence: every subject's verdicts on the bench's cases")
                result["equivalence"] = equivalence(api, subjects)
                wrong = {
                    key: [v for v in got if not v["ok"]]
                    for key, got in result["equivalence"].items()
                    if not all(v["ok"] for v in got)
                }
                if wrong:
                    print(json.dumps(result))
                    raise SystemExit(
                        "bench: verdicts differ from the cases', so no figures:\n"
                        + json.dumps(wrong, indent=2)
                    )
                result.update(measure(args, cluster, subjects, work))
        except BaseException:
            for name in PEERS:
                tail = base.log_tail(work, name, 15)
                if tail != "(no log)":
                    log(f"--- last lines of {name}.log ---\n{tail}")
            raise


def main() -> None:
    args = arguments()
    urllib3.disable_warnings()
    peers = [PEERS[name]() for name in PEERS if name in args.peer_names]
    builds: dict[str, Any] = {}
    for peer in peers:
        builds[peer.name] = {"version": peer.version, **peer.build(log)}
    if args.build_only:
        print(json.dumps({"builds": builds}))
        return
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "builds": builds,
    }
    run(args, peers, result)
    result["load_average_end"] = load_average()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
