"""Soak: `guardrail serve` at a steady request rate for minutes, reporting errors, latency
percentiles and resident memory over time. A command, not a test (README "Reliability").

    .venv/bin/python bench/soak.py                       # 10 minutes at 200 requests/s
    .venv/bin/python bench/soak.py --minutes 1 --rate 100 --interval 5
    .venv/bin/python bench/soak.py --url https://HOST:PORT --ca ca.crt --pid MASTER_PID
    .venv/bin/python bench/soak.py --live                # the live cache, under watch churn

Without --url it starts its own server (2 workers x 8 threads, state from examples/state).
With --live it starts the e2e harness's etcd + kube-apiserver instead, fills it with
--namespaces namespaces and three times as many policies (bench/scale_objects.py, 1,000
GlobalNetworkPolicies and 50 tiers among them), serves from the live cache (`guardrail serve
--kubeconfig`, the master's list shared by its workers) and keeps --churn-rate policy writes
per second going for the whole soak (bench/scale.py's churn: policies created, relabelled and
deleted, each a watch event in every worker); the reviews ask about namespaces of that
cluster, and every verdict is checked once before and once after the soak.
The load is open loop: requests are scheduled at fixed times and each latency is measured from
its scheduled time, so a stall shows as latency instead of silently lowering the rate. The
client is bench/loadgen (Go, keep-alive, run once per interval back to back) when a Go
toolchain is there, else Python threads (`--client python`, which also checks every
verdict, but whose own overhead on a 2-core machine shows in the latency). Each
interval prints one line: requests, errors by kind, p50/p99/max latency, and the resident
memory of the gunicorn master and its workers (VmRSS, and PSS from smaps_rollup: shared pages
counted once). The summary gives the memory's slope (least squares, MiB per minute, over the
whole soak and over its second half). A JSON report is written to
bench/results/soak-<time>.json. Exit status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import tables  # noqa: E402 - after the sys.path set-up

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
STATE = ROOT / "examples" / "state"
CLIENT_THREADS = 32


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the requests ---------------------------------------------------------------------------------
def _pod(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
    }


def _review(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "",
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
            "namespace": obj["metadata"].get("namespace", ""),
            "name": obj["metadata"]["name"],
            "operation": operation,
            "userInfo": {"username": "soak", "groups": ["developers"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-web", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "lb"}}}]}],
    },
}
# (review, whether it must be allowed): what a cluster sends most, with denials mixed in.
MIX = [
    (_review(_pod("shop", {"app": "web", "role": "frontend"})), True),
    (_review(_pod("shop", {"app": "web", "role": "frontend"})), True),
    (_review(_pod("shop", {"app": "web"})), False),
    (_review(_pod("legacy", {"app": "web", "role": "frontend"})), False),
    (_review(POLICY), True),
]


# -- the server -----------------------------------------------------------------------------------
@dataclass
class Target:
    url: str
    ca: str
    master_pid: int | None
    process: subprocess.Popen[bytes] | None = None
    workdir: tempfile.TemporaryDirectory[str] | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
        if self.workdir is not None:
            self.workdir.cleanup()


def start_server(
    workers: int, threads: int, state_args: list[str] | None = None, ready_seconds: float = 60
) -> Target:
    import socket  # noqa: PLC0415 - only the slow-client part needs raw sockets

    workdir = tempfile.TemporaryDirectory(prefix="guardrail-soak-")
    cert_dir = Path(workdir.name) / "certs"
    subprocess.run(
        [GUARDRAIL, "certs", "--out", str(cert_dir), "--host", "127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_file = (Path(workdir.name) / "server.log").open("wb")
    process = subprocess.Popen(
        [
            GUARDRAIL,
            "serve",
            *(state_args if state_args is not None else ["--state", str(STATE)]),
            "--cert-dir",
            str(cert_dir),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # The worktree's code, wherever the venv was installed from.
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    target = Target(
        f"https://127.0.0.1:{port}", str(cert_dir / "ca.crt"), process.pid, process, workdir
    )
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(target.url + "/readyz", verify=target.ca, timeout=2).ok:
                return target
        except requests.ConnectionError:
            time.sleep(0.2)
    target.stop()
    raise SystemExit(f"guardrail serve did not become ready in {ready_seconds:.0f} s")


# -- the live cache under watch churn -------------------------------------------------------------
@dataclass
class Live:
    """The cluster a --live soak runs against, and the process writing policies to it."""

    cluster: Any
    namespaces: int
    churn: Any = None
    results: Any = None

    def start_churn(self, rate: float, seconds: float) -> None:
        import multiprocessing  # noqa: PLC0415 - only the live soak writes

        import scale  # noqa: PLC0415 - bench/scale.py's churn

        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        cluster = self.cluster
        self.churn = context.Process(
            target=scale.churn,
            args=(
                {
                    "server": cluster.server,
                    "token": cluster.token,
                    "ca": str(cluster.ca_file),
                    "etcd": cluster.etcd_url,
                    "via": "etcd",
                    "namespaces": self.namespaces,
                    "rate": rate,
                    "seconds": seconds,
                },
                self.results,
            ),
        )
        self.churn.start()

    def churned(self) -> dict[str, Any]:
        if self.churn is None:
            return {}
        self.churn.join(timeout=120)
        return dict(self.results.get(timeout=60))

    def stop(self) -> None:
        if self.churn is not None and self.churn.is_alive():
            self.churn.terminate()
        self.cluster.stop()


def start_live(namespaces: int) -> Live:
    """The e2e harness's etcd and kube-apiserver, holding the scale benchmark's cluster."""
    sys.path[:0] = [str(ROOT), str(BENCH)]
    import scale  # noqa: PLC0415 - only the live soak needs a cluster
    import scale_objects as objects  # noqa: PLC0415 - as above

    from tests.e2e.harness import Cluster  # noqa: PLC0415 - as above

    audit = Path(tempfile.mkdtemp(prefix="guardrail-soak-audit-")) / "no-audit.yaml"
    audit.write_text(scale.NO_AUDIT)
    cluster = Cluster.start(
        log=lambda m: log(f"cluster: {m}"),
        etcd_flags=[f"--quota-backend-bytes={scale.ETCD_QUOTA}"],
        apiserver_flags=[f"--audit-policy-file={audit}"],
        controller_manager=False,
    )
    try:
        crds = str(scale.CALICO_CRDS)
        cluster.kubectl("apply", "-f", crds)
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
        api = objects.Api(cluster.server, cluster.token, str(cluster.ca_file))
        log(f"creating {namespaces:,} namespaces and {objects.policy_count(namespaces):,} policies")
        objects.create_all(api, objects.Etcd(cluster.etcd_url), namespaces, log=log)
        objects.wait_counts(api, namespaces)
    except BaseException:
        cluster.stop()
        raise
    return Live(cluster, namespaces)


def live_mix(namespaces: int) -> list[tuple[dict[str, Any], bool]]:
    """Reviews about the live cluster's namespaces: allowed and denied Pods, a policy."""
    sys.path.insert(0, str(BENCH))
    import scale_objects as objects  # noqa: PLC0415 - only the live soak

    isolated = [i for i in range(1, namespaces, 97) if objects.has_own_default_deny(i)]
    bare = [i for i in range(3, namespaces, 97) if not objects.has_own_default_deny(i)]
    labels = {"app": "shop", "role": "frontend"}
    policy = {
        **POLICY,
        "metadata": {"name": "allow-web", "namespace": objects.ns_name(isolated[0])},
    }
    # One in ten denied for want of a default-deny: each such denial reads the namespace's
    # policies from the API server first (the live confirmation).
    mix = [(_review(_pod(objects.ns_name(i), labels)), True) for i in isolated[:7]]
    mix += [(_review(_pod(objects.ns_name(i), labels)), False) for i in bare[:1]]
    mix.append((_review(_pod(objects.ns_name(isolated[1]), {"app": "shop"})), False))
    mix.append((_review(policy), True))
    return mix


def check_verdicts(target: Target, mix: list[tuple[dict[str, Any], bool]]) -> list[str]:
    """Each review of the mix once, through the server: what came back other than expected."""
    wrong = []
    with requests.Session() as session:
        for doc, must_allow in mix:
            body = dict(doc, request=dict(doc["request"], uid=str(uuid.uuid4())))
            reply = session.post(target.url + "/validate", json=body, verify=target.ca, timeout=10)
            allowed = reply.json().get("response", {}).get("allowed")
            if allowed is not must_allow:
                wrong.append(f"{doc['request']['namespace']}: allowed={allowed}")
    return wrong


def pss_total_mib(master_pid: int | None) -> float:
    """PSS of the master and its workers together, in MiB (shared pages counted once)."""
    if master_pid is None:
        return 0.0
    pids = [master_pid]
    with contextlib.suppress(OSError):
        pids += [
            int(p)
            for p in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
        ]
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return round(60 * sum((x - mean_x) * (y - mean_y) for x, y in points) / var, 3)


def rss_kib(master_pid: int | None) -> dict[str, int]:
    """VmRSS of the master and each worker (by pid), in KiB."""
    if master_pid is None:
        return {}
    pids = [master_pid]
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    try:
        pids += [int(p) for p in children.read_text().split()]
    except OSError:
        return {}
    found = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found["master" if pid == master_pid else f"worker-{pid}"] = int(line.split()[1])
        except OSError:
            continue  # a worker being replaced
    return found


# -- the load -------------------------------------------------------------------------------------
@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


class Soak:
    def __init__(self, target: Target, rate: float, mix: list[tuple[dict[str, Any], bool]]) -> None:
        self.target = target
        self.rate = rate
        self.mix = mix
        self.schedule: queue.Queue[float | None] = queue.Queue()
        self.lock = threading.Lock()
        self.window = Window()
        self.sequence = 0

    def _client(self) -> None:
        session = requests.Session()
        while (scheduled := self.schedule.get()) is not None:
            with self.lock:
                self.sequence += 1
                doc, must_allow = self.mix[self.sequence % len(self.mix)]
            body = dict(doc, request=dict(doc["request"], uid=str(uuid.uuid4())))
            error = ""
            try:
                reply = session.post(
                    self.target.url + "/validate", json=body, verify=self.target.ca, timeout=10
                )
                answer = reply.json().get("response", {}) if reply.status_code == 200 else {}
                if reply.status_code != 200:
                    error = f"http-{reply.status_code}"
                elif answer.get("uid") != body["request"]["uid"]:
                    error = "wrong-uid"
                elif answer.get("allowed") is not must_allow:
                    error = "wrong-verdict"
            except requests.RequestException as exc:
                error = type(exc).__name__
                session.close()
                session = requests.Session()
            latency = time.monotonic() - scheduled
            with self.lock:
                self.window.latencies.append(latency)
                if error:
                    self.window.errors[error] += 1
        session.close()

    def take_window(self) -> Window:
        with self.lock:
            window, self.window = self.window, Window()
        return window

    def run(self, seconds: float, interval: float) -> list[dict[str, Any]]:
        clients = [
            threading.Thread(target=self._client, daemon=True) for _ in range(CLIENT_THREADS)
        ]
        for client in clients:
            client.start()
        started = time.monotonic()
        next_report = started + interval
        reports: list[dict[str, Any]] = []
        sent = 0
        try:
            while (now := time.monotonic()) < started + seconds:
                due = int((now - started) * self.rate) + 1
                for index in range(sent, due):
                    self.schedule.put(started + index / self.rate)
                sent = max(sent, due)
                if now >= next_report:
                    reports.append(self._report(now - started))
                    next_report += interval
                time.sleep(min(0.005, 1 / self.rate))
        finally:
            for _ in clients:
                self.schedule.put(None)
            for client in clients:
                client.join(timeout=30)
        reports.append(self._report(time.monotonic() - started))
        return reports

    def _report(self, elapsed: float) -> dict[str, Any]:
        window = self.take_window()
        latencies = sorted(window.latencies)

        def percentile(p: float) -> float:
            if not latencies:
                return 0.0
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

        memory = rss_kib(self.target.master_pid)
        report = {
            "elapsed_s": round(elapsed, 1),
            "requests": len(latencies),
            "errors": dict(window.errors),
            "p50_ms": round(percentile(0.50), 2),
            "p99_ms": round(percentile(0.99), 2),
            "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0,
            "rss_kib": memory,
            "rss_total_mib": round(sum(memory.values()) / 1024, 1),
            "pss_total_mib": pss_total_mib(self.target.master_pid),
        }
        errors = sum(window.errors.values())
        log(
            f"t={report['elapsed_s']:>6}s  req={report['requests']:>5}  errors={errors:<3} "
            f"p50={report['p50_ms']:>7.2f}ms  p99={report['p99_ms']:>7.2f}ms  "
            f"max={report['max_ms']:>8.2f}ms  rss={report['rss_total_mib']} MiB "
            f"pss={report['pss_total_mib']} MiB "
            f"({', '.join(f'{k}={v // 1024}' for k, v in memory.items())})"
        )
        return report


# -- the Go client --------------------------------------------------------------------------------
def build_loadgen(out: Path) -> Path | None:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        return None
    binary = out / "loadgen"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=BENCH / "loadgen", check=True)
    return binary


def run_go(
    binary: Path,
    target: Target,
    rate: float,
    seconds: float,
    interval: float,
    workdir: Path,
    mix: list[tuple[dict[str, Any], bool]],
) -> list[dict[str, Any]]:
    bodies = []
    for index, (doc, _) in enumerate(mix):
        path = workdir / f"review-{index}.json"
        path.write_text(json.dumps(dict(doc, request=dict(doc["request"], uid=str(uuid.uuid4())))))
        bodies.append(str(path))
    reports: list[dict[str, Any]] = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds - 0.5:
        window = min(interval, seconds - elapsed)
        done = subprocess.run(
            [
                str(binary),
                f"-url={target.url}/validate",
                f"-ca={target.ca}",
                f"-rate={rate}",
                f"-duration={window:.1f}s",
                "-conns=16",
                "-bodies=" + ",".join(bodies),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"soak: loadgen failed: {done.stderr or done.stdout}")
        data = json.loads(done.stdout)
        memory = rss_kib(target.master_pid)
        report = {
            "elapsed_s": round(time.monotonic() - started, 1),
            "requests": data["sent"],
            "errors": {"failed": data["errors"]} if data["errors"] else {},
            "p50_ms": round(data["p50_ms"], 2),
            "p99_ms": round(data["p99_ms"], 2),
            "max_ms": round(data["max_ms"], 2),
            "late_sends": data.get("late_sends", 0),
            "rss_kib": memory,
            "rss_total_mib": round(sum(memory.values()) / 1024, 1),
            "pss_total_mib": pss_total_mib(target.master_pid),
        }
        _print_report(report)
        reports.append(report)
    return reports


def _print_report(report: dict[str, Any]) -> None:
    errors = sum(report["errors"].values())
    memory = report["rss_kib"]
    log(
        f"t={report['elapsed_s']:>6}s  req={report['requests']:>5}  errors={errors:<3} "
        f"p50={report['p50_ms']:>7.2f}ms  p99={report['p99_ms']:>7.2f}ms  "
        f"max={report['max_ms']:>8.2f}ms  rss={report['rss_total_mib']} MiB "
        f"pss={report['pss_total_mib']} MiB "
        f"({', '.join(f'{k}={v // 1024}' for k, v in memory.items())})"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Soak guardrail serve at a steady rate.")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds per report line")
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--ca", help="CA file for --url")
    parser.add_argument("--pid", type=int, help="gunicorn master pid of --url, for memory")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--client", choices=["auto", "go", "python"], default="auto")
    parser.add_argument(
        "--live", action="store_true", help="serve from a real API server's cluster, under churn"
    )
    parser.add_argument("--namespaces", type=int, default=10_000, help="--live: cluster size")
    parser.add_argument(
        "--churn-rate", type=float, default=100.0, help="--live: policy writes per second"
    )
    return parser.parse_args()


def load(
    args: argparse.Namespace, target: Target, mix: list[tuple[dict[str, Any], bool]]
) -> list[dict[str, Any]]:
    """The soak's load for its whole length; one report per interval."""
    with tempfile.TemporaryDirectory(prefix="guardrail-soak-client-") as scratch:
        binary = build_loadgen(Path(scratch)) if args.client != "python" else None
        if binary is None and args.client == "go":
            raise SystemExit("soak: --client go needs a Go toolchain")
        client = "go" if binary is not None else "python"
        log(
            f"soaking {target.url} for {args.minutes} min at {args.rate:g} requests/s "
            f"({client} client{', live cache under churn' if args.live else ''})"
        )
        if binary is not None:
            return run_go(
                binary, target, args.rate, args.minutes * 60, args.interval, Path(scratch), mix
            )
        return Soak(target, args.rate, mix).run(args.minutes * 60, args.interval)


def summarize(args: argparse.Namespace, reports: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum(r["requests"] for r in reports)
    errors: Counter[str] = Counter()
    for report in reports:
        errors.update(report["errors"])
    pss = [(r["elapsed_s"], r["pss_total_mib"]) for r in reports if r.get("pss_total_mib")]
    rss = [(r["elapsed_s"], r["rss_total_mib"]) for r in reports if r.get("rss_total_mib")]
    p99s = sorted(r["p99_ms"] for r in reports)
    return {
        "requests": total,
        "errors": dict(errors),
        "worst_p99_ms": p99s[-1] if p99s else 0.0,
        "median_p99_ms": p99s[len(p99s) // 2] if p99s else 0.0,
        "rss_first_mib": next((r["rss_total_mib"] for r in reports if r["rss_total_mib"]), 0.0),
        "rss_last_mib": next(
            (r["rss_total_mib"] for r in reversed(reports) if r["rss_total_mib"]), 0.0
        ),
        "rss_slope_mib_per_min": slope(rss),
        "pss_first_mib": pss[0][1] if pss else 0.0,
        "pss_last_mib": pss[-1][1] if pss else 0.0,
        "pss_slope_mib_per_min": slope(pss),
        "pss_slope_second_half_mib_per_min": slope(pss[len(pss) // 2 :]),
        "achieved_rate": round(total / (args.minutes * 60), 1),
    }


def main() -> int:
    args = parse_args()
    live: Live | None = None
    mix = MIX
    wrong: dict[str, list[str]] = {}
    started_load = load_average()
    try:
        if args.url:
            target = Target(
                args.url.rstrip("/"), args.ca or str(ROOT / "certs" / "ca.crt"), args.pid
            )
        elif args.live:
            live = start_live(args.namespaces)
            kubeconfig = ["--kubeconfig", str(live.cluster.kubeconfig)]
            target = start_server(args.workers, args.threads, kubeconfig, ready_seconds=900)
            mix = live_mix(args.namespaces)
            wrong["before"] = check_verdicts(target, mix)
            if wrong["before"]:
                raise SystemExit(f"soak: wrong verdicts before the soak: {wrong['before']}")
            live.start_churn(args.churn_rate, args.minutes * 60 + 30)
        else:
            target = start_server(args.workers, args.threads)
        try:
            reports = load(args, target, mix)
            if live is not None:
                wrong["after"] = check_verdicts(target, mix)
        finally:
            target.stop()
        churned = live.churned() if live is not None else {}
    finally:
        if live is not None:
            live.stop()
    summary = summarize(args, reports)
    summary["load_average"] = {"start": started_load, "end": load_average()}
    if live is not None:
        summary["churn"] = churned
        summary["verdicts_wrong"] = wrong
        if wrong.get("after"):
            summary["errors"]["wrong-verdict-after"] = len(wrong["after"])
    log(f"summary: {json.dumps(summary)}")
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = results / f"soak-{stamp}.json"
    out.write_text(
        json.dumps({"args": vars(args), "summary": summary, "intervals": reports}, indent=2)
    )
    log(f"report written to {out}")
    print(tables.soak_table(summary, reports))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
