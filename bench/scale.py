"""Scale (SPEC §6): Guardrail against a real API server holding 100,000 namespaces and 300,000
policies (Kubernetes and Calico NetworkPolicies, 1,000 GlobalNetworkPolicies, 50 tiers).

    .venv/bin/python bench/scale.py                       # or: make bench-scale
    .venv/bin/python bench/scale.py --namespaces 20000 --workers 1 2

1. The e2e harness's etcd (quota raised to 8 GiB) and kube-apiserver 1.36.3 (audit log off, no
   controller manager: nothing here runs Pods); Calico's CRDs; the cluster of
   bench/scale_objects.py, written into etcd in bulk (`--create api`: through the API server),
   then counted through the API server until it serves every object.
2. For each mode (`preload`: the master lists once and its workers share it; `per-worker`:
   `--no-preload`, each worker lists its own copy) and worker count: `guardrail serve
   --kubeconfig`, timed from start to the first /readyz 200 and to every worker synced
   (`guardrail_cache_synced` 1, the worst worker's); every worker asked about sample
   namespaces, each answer checked against what the cluster holds; then the pod's memory:
   PSS (proportional set size, /proc/PID/smaps_rollup) of the master and every worker,
   summed, right after the sync and again after 2,000 namespaces were judged.
3. Decision time in process: a LiveState listed from the same API server, `Judge.decide` on a
   Pod CREATE (every policy on) in 1,000 sampled namespaces, 5 rounds after a first pass (the
   views memoised, as in a running webhook), and the first decision in a namespace.
4. /validate at 200 requests/s (bench/loadgen, open loop, keep-alive) against `serve`, Pods in
   50 namespaces: p50 / p99.
5. Lag: 500 writes/s through the API server (policies relabelled, created, deleted) for
   `--lag-seconds`; among them a probe every 0.2 s deletes a namespace's default-deny, and a
   keep-alive connection to each worker (found through /proc) asks about a Pod there every 5
   ms until it is denied: the lag is the time from the delete's answer to the first denied
   request sent, on the slowest worker (an upper bound, 5 ms resolution).

Every step records the load average; results go to bench/results/scale-<time>.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import gc
import http.client
import json
import multiprocessing
import os
import random
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import scale_objects as objects  # noqa: E402 - after the sys.path set-up
import tables  # noqa: E402 - after the sys.path set-up

from bench.peers.base import stop_group  # noqa: E402 - after the sys.path set-up
from tests.e2e.harness import Cluster  # noqa: E402 - after the sys.path set-up

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
CALICO_CRDS = ROOT / "tests" / "e2e" / "fixtures" / "calico-crds.yaml"
ETCD_QUOTA = str(8 * 2**30)
NO_AUDIT = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n"
SAMPLED = 1000
ROUNDS = 5
JUDGED_FOR_MEMORY = 2000
PROBE_INTERVAL = 0.2
POLL_INTERVAL = 0.005


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


# -- the AdmissionReviews -------------------------------------------------------------------------
def pod_review(namespace: str, role: str = "r1", template: str = "") -> dict[str, Any]:
    labels = {"app": "shop", "role": role}
    if template:
        labels["pod-template-hash"] = template
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        # Not app=web: the Calico allow-dns and the allow-web policies select those.
        "metadata": {
            "name": "web",
            "namespace": namespace,
            "labels": labels,
        },
        "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "name": "web",
            "operation": "CREATE",
            "userInfo": {"username": "scale", "groups": ["developers"]},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
        },
    }


def expected_allowed(i: int) -> bool:
    """A Pod (app=shop) in namespace i is allowed exactly when the namespace has its own
    default-deny: no other policy isolates its egress (the global policies are ingress only)."""
    return objects.has_own_default_deny(i)


# -- processes and memory -------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants."""
    total = 0.0
    for current in [pid, *children(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def rollup(pid: int) -> dict[str, int]:
    """KiB figures of /proc/PID/smaps_rollup (Rss, Pss, Private_*, Shared_*)."""
    figures: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[-1] == "kB":
                figures[name] = int(parts[0])
    return figures


def pod_memory(master: int) -> dict[str, Any]:
    """PSS and RSS (MiB) of the master and each worker, and their sums."""
    per: dict[str, dict[str, float]] = {}
    for pid in [master, *children(master)]:
        r = rollup(pid)
        if not r:
            continue
        per["master" if pid == master else f"worker-{pid}"] = {
            "pss_mib": round(r.get("Pss", 0) / 1024, 1),
            "rss_mib": round(r.get("Rss", 0) / 1024, 1),
            "private_mib": round((r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / 1024, 1),
        }
    return {
        "pss_total_mib": round(sum(p["pss_mib"] for p in per.values()), 1),
        "rss_total_mib": round(sum(p["rss_mib"] for p in per.values()), 1),
        "processes": per,
        "load_average": load_average(),
    }


# -- guardrail serve ------------------------------------------------------------------------------
@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    port: int
    ca: Path
    log_path: Path
    started: float
    workers: int
    context: ssl.SSLContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = ssl.create_default_context(cafile=str(self.ca))

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)

    def get(self, path: str) -> tuple[int, str]:
        conn = self.connection()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def metric(self, name: str) -> float | None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, text = self.get("/metrics")
            if status == 200:
                for line in text.splitlines():
                    if line.startswith((name + " ", name + "{")):
                        return float(line.rsplit(" ", 1)[1])
        return None

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"scale: guardrail serve exited {self.proc.returncode}:\n{tail}")


@contextlib.contextmanager
def serve(
    cluster: Cluster, certs: Path, work: Path, workers: int, *, preload: bool
) -> Iterator[Serve]:
    port = free_port()
    log_path = work / f"serve-{'preload' if preload else 'per-worker'}-{workers}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KUBECONFIG", None)
    with log_path.open("wb") as log_file:
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                GUARDRAIL,
                "serve",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--cert-dir",
                str(certs),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                "8",
                "--log-format",
                "json",
                "--preload" if preload else "--no-preload",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    served = Serve(proc, port, certs / "ca.crt", log_path, started, workers)
    try:
        yield served
    finally:
        stop_group(proc, 60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    served: Serve, timeout: float = 900, cluster: Cluster | None = None
) -> dict[str, float]:
    """Seconds from start to the first /readyz 200, and to every worker synced; with the
    cluster, the CPU seconds Guardrail (master and workers) and the API server with etcd spent
    meanwhile (on a shared machine the wall time is also everyone else's)."""
    servers = [] if cluster is None else [s.proc.pid for s in cluster._servers.values() if s.proc]
    cluster_cpu = sum(cpu_seconds(pid) for pid in servers)
    deadline = time.monotonic() + timeout
    ready = None
    forked = None  # when every worker had been forked
    while time.monotonic() < deadline:
        served.check_running()
        if ready is None:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if served.get("/readyz")[0] == 200:
                    ready = time.monotonic() - served.started
        if forked is None and len(children(served.proc.pid)) >= served.workers:
            forked = time.monotonic()
        # The gauge is the worst live worker's: give each a moment to have set it at all.
        settled = forked is not None and time.monotonic() - forked > 3
        if ready is not None and settled and served.metric("guardrail_cache_synced") == 1.0:
            return {
                "readyz_s": round(ready, 2),
                "all_workers_synced_s": round(time.monotonic() - served.started, 2),
                "guardrail_cpu_s": round(cpu_seconds(served.proc.pid), 1),
                "apiserver_etcd_cpu_s": round(
                    sum(cpu_seconds(pid) for pid in servers) - cluster_cpu, 1
                ),
            }
        time.sleep(0.1)
    raise SystemExit(f"scale: guardrail serve not synced within {timeout:.0f} s")


def worker_of(served: Serve, conn: http.client.HTTPSConnection) -> int | None:
    """The worker pid holding the server side of a connection (by /proc's socket inodes)."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == served.port and remote_port == client_port:
                    inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in children(served.proc.pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    return None


def connection_per_worker(served: Serve) -> dict[int, http.client.HTTPSConnection]:
    """A keep-alive connection to each worker: connect until every worker holds one.

    The workers share one listening socket and whichever wakes first accepts, so one worker
    can win most connections (issue 16): connections are opened 16 at a time and held open
    until every worker holds one, then the spare ones are closed.
    """
    held: dict[int, http.client.HTTPSConnection] = {}
    spare: list[http.client.HTTPSConnection] = []

    def opened() -> http.client.HTTPSConnection:
        conn = served.connection()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        return conn

    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for _ in range(100):
                for conn in pool.map(lambda _i: opened(), range(16)):
                    pid = worker_of(served, conn)
                    if pid is not None and pid not in held:
                        held[pid] = conn
                    else:
                        spare.append(conn)
                if len(held) >= served.workers:
                    break
    finally:
        for conn in spare:
            conn.close()
    if len(held) < served.workers:
        raise SystemExit(f"scale: reached {len(held)} of {served.workers} workers")
    return held


def review(conn: http.client.HTTPSConnection, body: dict[str, Any]) -> bool:
    conn.request(
        "POST", "/validate", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    response = conn.getresponse()
    data = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"/validate: HTTP {response.status}: {data}")
    return bool(data["response"]["allowed"])


def check_answers(served: Serve, namespaces: int, sample: int = 40) -> dict[str, Any]:
    """Every worker's verdicts on sample namespaces, against what the cluster holds."""
    rng = random.Random(namespaces)  # noqa: S311 - a reproducible sample
    picked = sorted(rng.sample(range(namespaces), min(sample, namespaces)))
    wrong = []
    conns = connection_per_worker(served)
    try:
        for pid, conn in conns.items():
            for i in picked:
                got = review(conn, pod_review(objects.ns_name(i)))
                if got != expected_allowed(i):
                    wrong.append((pid, objects.ns_name(i), got))
    finally:
        for conn in conns.values():
            conn.close()
    if wrong:
        raise SystemExit(f"scale: wrong verdicts (worker, namespace, allowed): {wrong[:10]}")
    return {"workers_checked": len(conns), "namespaces_checked": len(picked), "wrong": 0}


def judge_many(served: Serve, namespaces: int, count: int) -> float:
    """Ask about a Pod in `count` namespaces (spread over the cluster), 8 connections."""
    step = max(1, namespaces // count)
    names = [objects.ns_name(i) for i in range(0, namespaces, step)][:count]
    local = threading.local()

    def one(name: str) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = served.connection()
        review(conn, pod_review(name))

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, names))
    return time.perf_counter() - started


def memory_section(
    cluster: Cluster, certs: Path, work: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    runs = []
    for mode in args.modes:
        for workers in args.workers:
            log(f"serve, {mode}, {workers} worker(s): starting (load {load_average()})")
            with serve(cluster, certs, work, workers, preload=mode == "preload") as served:
                timing = wait_ready(served, cluster=cluster)
                log(f"  synced: {timing} (load {load_average()})")
                checked = check_answers(served, args.namespaces)
                time.sleep(5)  # the first moments' allocations settle
                synced = pod_memory(served.proc.pid)
                log(f"  PSS {synced['pss_total_mib']} MiB, RSS {synced['rss_total_mib']} MiB")
                judged_s = judge_many(served, args.namespaces, JUDGED_FOR_MEMORY)
                judged = pod_memory(served.proc.pid)
                log(
                    f"  after {JUDGED_FOR_MEMORY} namespaces judged ({judged_s:.1f} s): "
                    f"PSS {judged['pss_total_mib']} MiB"
                )
                runs.append(
                    {
                        "mode": mode,
                        "workers": workers,
                        **timing,
                        "answers": checked,
                        "memory_synced": synced,
                        f"memory_after_{JUDGED_FOR_MEMORY}_namespaces": judged,
                        "load_average": load_average(),
                    }
                )
    return runs


# -- a resync in a forked worker ------------------------------------------------------------------
def resync_probe(kubeconfig: str, out: Any) -> None:
    """In a process of its own: list as serve's master does, fork, and in the child relist
    every resource (a resync finding nothing changed): how much of the shared snapshot the
    child copies (its private memory before and after)."""
    from webhook.kube import KubeClient  # noqa: PLC0415 - after the sys.path set-up
    from webhook.state.live import LiveState  # noqa: PLC0415 - after the sys.path set-up

    state = LiveState(KubeClient(kubeconfig))
    state.preload()
    state.close_client()
    gc.collect()
    gc.freeze()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)

        def private(r: dict[str, int]) -> float:
            return round((r["Private_Dirty"] + r["Private_Clean"]) / 1024, 1)

        def shared(r: dict[str, int]) -> float:
            return round((r["Shared_Dirty"] + r["Shared_Clean"]) / 1024, 1)

        before = rollup(os.getpid())
        state.forked(KubeClient(kubeconfig))
        report: dict[str, Any] = {
            "child_private_mib_before": private(before),
            "child_shared_mib_before": shared(before),
        }
        for round_ in (1, 2):
            began = time.perf_counter()
            for watcher in list(state._watchers.values()):
                state._list(watcher)
            report[f"resync_{round_}_s"] = round(time.perf_counter() - began, 2)
            gc.collect()
            after = rollup(os.getpid())
            report[f"child_private_mib_after_{round_}"] = private(after)
            report[f"child_shared_mib_after_{round_}"] = shared(after)
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    master = rollup(os.getpid())
    out.put({**json.loads(data), "master_rss_mib": round(master["Rss"] / 1024, 1)})


def resync_section(cluster: Cluster) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    probe = context.Process(target=resync_probe, args=(str(cluster.kubeconfig), queue))
    probe.start()
    result = queue.get(timeout=1800)
    probe.join(timeout=60)
    return {**result, "load_average": load_average()}


# -- decisions in process -------------------------------------------------------------------------
def decision_section(cluster: Cluster, namespaces: int) -> dict[str, Any]:
    from webhook.admission.judge import Judge  # noqa: PLC0415 - after the sys.path set-up
    from webhook.admission.review import parse  # noqa: PLC0415 - after the sys.path set-up
    from webhook.config import Config  # noqa: PLC0415 - after the sys.path set-up
    from webhook.kube import KubeClient  # noqa: PLC0415 - after the sys.path set-up
    from webhook.state.live import LiveState  # noqa: PLC0415 - after the sys.path set-up

    started = time.perf_counter()
    state = LiveState(KubeClient(str(cluster.kubeconfig)))
    state.preload()
    listed_s = time.perf_counter() - started
    # As serve's master does: the collector no longer walks what was listed (a full collection
    # over 400,000 objects would otherwise land in some decision's time).
    gc.collect()
    gc.freeze()
    counts = state.counts()
    judging = Judge(Config(), state)
    rng = random.Random(7)  # noqa: S311 - a reproducible sample
    sampled = [rng.randrange(namespaces) for _ in range(SAMPLED)]
    requests = [
        (parse(pod_review(objects.ns_name(i), f"r{k % objects.ROLES}")).request, i)
        for k, i in enumerate(sampled)
    ]
    first: list[float] = []
    first_cpu: list[float] = []
    for req, i in requests:
        began, began_cpu = time.perf_counter(), time.thread_time()
        decision = judging.decide(req)
        first.append(time.perf_counter() - began)
        first_cpu.append(time.thread_time() - began_cpu)
        if decision.allowed != expected_allowed(i):
            raise SystemExit(f"scale: {req.namespace}: allowed={decision.allowed}, expected not")
    # Wall time, and this thread's CPU time: on a shared machine the wall time's tail is the
    # moments this process was not running at all. Each round's Pod in a namespace has a role
    # (a label the policies read) new to it, so every decision walks; then the last round's
    # Pods again with a new pod-template-hash (no policy reads it), as a rollout's or a
    # ReplicaSet's later replicas: decisions the view has kept.
    timings: list[float] = []
    cpu: list[float] = []
    kept: list[float] = []
    for round_ in range(ROUNDS + 1):
        again = round_ == ROUNDS
        shift = min(round_, ROUNDS - 1)
        for k, i in enumerate(sampled):
            role = f"r{(k + shift) % objects.ROLES}"
            req = parse(pod_review(objects.ns_name(i), role, f"h{round_}")).request
            began, began_cpu = time.perf_counter(), time.thread_time()
            judging.decide(req)
            if again:
                kept.append(time.perf_counter() - began)
            else:
                timings.append(time.perf_counter() - began)
                cpu.append(time.thread_time() - began_cpu)
    state.stop()
    return {
        "in_process_list_s": round(listed_s, 2),
        "counts": counts,
        "decision_p50_us": round(statistics.median(timings) * 1e6, 1),
        "decision_p90_us": round(percentile(timings, 0.90) * 1e6, 1),
        "decision_p99_us": round(percentile(timings, 0.99) * 1e6, 1),
        "decision_cpu_p50_us": round(statistics.median(cpu) * 1e6, 1),
        "decision_cpu_p99_us": round(percentile(cpu, 0.99) * 1e6, 1),
        "kept_decision_p50_us": round(statistics.median(kept) * 1e6, 1),
        "kept_decision_p99_us": round(percentile(kept, 0.99) * 1e6, 1),
        "first_in_namespace_p50_us": round(statistics.median(first) * 1e6, 1),
        "first_in_namespace_p99_us": round(percentile(first, 0.99) * 1e6, 1),
        "first_in_namespace_cpu_p50_us": round(statistics.median(first_cpu) * 1e6, 1),
        "first_in_namespace_cpu_p99_us": round(percentile(first_cpu, 0.99) * 1e6, 1),
        "decisions_timed": len(timings),
        "load_average": load_average(),
    }


# -- /validate at 200 requests/s ------------------------------------------------------------------
def http_section(served: Serve, work: Path, namespaces: int) -> dict[str, Any]:
    """/validate at 200 requests/s of allowed Pods (50 namespaces with a default-deny); then
    denials one at a time (each confirms the missing default-deny with a live read)."""
    import run  # noqa: PLC0415 - bench/run.py's loadgen helpers

    binary = run.build_loadgen(work)
    spread = range(0, namespaces, max(1, namespaces // 200) | 1)  # odd: every i % 4 comes up
    allowed = [i for i in spread if expected_allowed(i)]
    denied = [i for i in spread if not expected_allowed(i)]
    bodies = []
    for k, i in enumerate(allowed[:50]):
        path = work / f"pod-{k}.json"
        path.write_text(json.dumps(pod_review(objects.ns_name(i))))
        bodies.append(path)
    url = f"https://127.0.0.1:{served.port}/validate"
    run.run_loadgen(binary, url, served.ca, bodies, 200, 3, served.proc.pid)  # warm-up
    data = run.run_loadgen(binary, url, served.ca, bodies, 200, 20, served.proc.pid)
    figures = {k: data[k] for k in ("sent", "errors", "p50_ms", "p99_ms", "max_ms")}
    figures["server_cpu_pct"] = round(data["server_cpu_pct"], 1)
    figures["load_average"] = data["load_average"]
    conn = served.connection()
    latencies = []
    try:
        for i in denied[:50]:
            began = time.perf_counter()
            if review(conn, pod_review(objects.ns_name(i))):
                raise SystemExit(f"scale: {objects.ns_name(i)} allowed, expected denied")
            latencies.append(time.perf_counter() - began)
    finally:
        conn.close()
    figures["denial_p50_ms"] = round(percentile(latencies, 0.5) * 1000, 1)
    figures["denial_max_ms"] = round(max(latencies) * 1000, 1)
    return figures


# -- lag at 500 events/s --------------------------------------------------------------------------
def churn(config: dict[str, Any], out: Any) -> None:  # noqa: PLR0915 - one writer loop, two ways
    """In a process of its own: `rate` policy writes per second for `seconds`.

    Its own NetworkPolicies `churn-N` in random namespaces: created, relabelled (same uid, a
    MODIFIED event), deleted, a third each. `via` etcd: one transaction every 10 ms with the
    writes due, each the exemplar as the API server stored it (the API server's watch of etcd
    turns them into watch events like any write); `via` api: PATCH/POST/DELETE by 32 clients.
    """
    rate, seconds, namespaces = config["rate"], config["seconds"], config["namespaces"]
    rng = random.Random(11)  # noqa: S311 - reproducible
    live: list[tuple[str, str, str]] = []  # (namespace, name, uid)
    done = [0]
    failed = [0]
    latencies: list[float] = []
    lock = threading.Lock()
    now_text = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    api = objects.Api(config["server"], config["token"], config["ca"])
    etcd = objects.Etcd(config["etcd"]) if config["via"] == "etcd" else None
    exemplar = api.request(
        "GET", f"/apis/{objects.K8S}/namespaces/{objects.ns_name(0)}/networkpolicies/allow-metrics"
    )[1]

    def plan(n: int) -> tuple[str, str, str, str]:
        """(op, namespace, name, uid) of write n."""
        with lock:
            if n % 3 == 0 or len(live) < 50:
                target = (
                    objects.ns_name(rng.randrange(namespaces)),
                    f"churn-{n}",
                    str(uuid.uuid4()),
                )
                live.append(target)
                return ("create", *target)
            if n % 3 == 1:
                return ("modify", *live[rng.randrange(len(live))])
            return ("delete", *live.pop(rng.randrange(len(live))))

    def stored(ns: str, name: str, uid: str, n: int) -> bytes:
        obj = {"metadata": {"name": name, "namespace": ns, "labels": {"churn": str(n)}}}
        return objects.as_stored(exemplar, obj, now_text, uid)

    def api_write(n: int) -> None:
        op, ns, name, _uid = plan(n)
        path = f"/apis/{objects.K8S}/namespaces/{ns}/networkpolicies"
        began = time.monotonic()
        if op == "create":
            body = {
                **objects.policy("allow-metrics", ns),
                "metadata": {"name": name, "namespace": ns},
            }
            status, _ = api.request("POST", path, body)
        elif op == "modify":
            status, _ = api.request(
                "PATCH",
                f"{path}/{name}",
                {"metadata": {"labels": {"churn": str(n)}}},
                "application/merge-patch+json",
            )
        else:
            status, _ = api.request("DELETE", f"{path}/{name}")
        with lock:
            done[0] += 1
            latencies.append(time.monotonic() - began)
            failed[0] += status not in (200, 201)

    started = time.monotonic()
    sent = 0
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        while (now := time.monotonic()) < started + seconds:
            due = int((now - started) * rate)
            if etcd is not None and due > sent:
                batches: list[dict[str, bytes | None]] = [{}]
                for n in range(sent, due):
                    op, ns, name, uid = plan(n)
                    key = f"/registry/networkpolicies/{ns}/{name}"
                    if key in batches[-1]:  # etcd takes a key once per transaction
                        batches.append({})
                    batches[-1][key] = None if op == "delete" else stored(ns, name, uid, n)
                for batch in batches:
                    began = time.monotonic()
                    etcd.txn(list(batch.items()))
                    latencies.append(time.monotonic() - began)
                    done[0] += len(batch)
            elif etcd is None:
                for n in range(sent, due):
                    pool.submit(api_write, n)
            sent = max(sent, due)
            time.sleep(0.01)
    wall = time.monotonic() - started
    out.put(
        {
            "via": config["via"],
            "writes": done[0],
            "failed": failed[0],
            "write_rate": round(done[0] / wall, 1),
            "write_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "write_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        }
    )


def poll_until_denied(conn: http.client.HTTPSConnection, ns: str, t0: float) -> tuple[float, float]:
    """(send time of the first denied answer, of the last allowed one), polling every 5 ms."""
    last_allowed = t0
    while time.monotonic() < t0 + 30:
        sent = time.monotonic()
        if not review(conn, pod_review(ns)):
            return sent, last_allowed
        last_allowed = sent
        time.sleep(POLL_INTERVAL)
    raise SystemExit(f"scale: the delete in {ns} did not reach a worker in 30 s")


def lag_section(cluster: Cluster, served: Serve, args: argparse.Namespace) -> dict[str, Any]:
    namespaces = args.namespaces
    api = objects.Api(cluster.server, cluster.token, str(cluster.ca_file))
    rng = random.Random(3)  # noqa: S311 - reproducible
    probes = [
        i
        for i in rng.sample(range(namespaces), min(namespaces, 5000))
        if objects.has_own_default_deny(i)
    ]
    conns = connection_per_worker(served)
    for pid, conn in conns.items():
        assert review(conn, pod_review(objects.ns_name(probes[0]))), f"worker {pid}: not allowed"
    # A process of its own (spawned: this one may still have threads), so that the writes
    # and the probes do not share one interpreter's lock.
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    writer = context.Process(
        target=churn,
        args=(
            {
                "server": cluster.server,
                "token": cluster.token,
                "ca": str(cluster.ca_file),
                "etcd": cluster.etcd_url,
                "via": args.churn,
                "namespaces": namespaces,
                "rate": args.lag_rate - 1 / PROBE_INTERVAL,
                "seconds": args.lag_seconds,
            },
            queue,
        ),
    )
    writer.start()
    lags: list[float] = []
    lower: list[float] = []
    per_worker: dict[int, list[float]] = {pid: [] for pid in conns}
    time.sleep(2)  # the writer under way
    started = time.monotonic()
    index = 0
    with concurrent.futures.ThreadPoolExecutor(len(conns)) as pool:
        while time.monotonic() < started + args.lag_seconds - 4:
            ns = objects.ns_name(probes[index])
            index += 1
            status, _ = api.request(
                "DELETE", f"/apis/{objects.K8S}/namespaces/{ns}/networkpolicies/default-deny"
            )
            t0 = time.monotonic()  # the change is in the API server: its answer is here
            if status != 200:
                raise SystemExit(f"scale: probe delete in {ns}: HTTP {status}")
            polls = {
                pid: pool.submit(poll_until_denied, conn, ns, t0) for pid, conn in conns.items()
            }
            seen = {pid: future.result() for pid, future in polls.items()}
            for pid, (denied_at, _allowed_at) in seen.items():
                per_worker[pid].append(denied_at - t0)
            lags.append(max(d for d, _a in seen.values()) - t0)
            lower.append(max(a for _d, a in seen.values()) - t0)
            time.sleep(max(0.0, PROBE_INTERVAL - (time.monotonic() - t0)))
    writer.join(timeout=args.lag_seconds + 120)
    written = queue.get(timeout=60)
    for conn in conns.values():
        conn.close()
    return {
        "probes": len(lags),
        "lag_p50_ms": round(percentile(lags, 0.5) * 1000, 1),
        "lag_p99_ms": round(percentile(lags, 0.99) * 1000, 1),
        "lag_max_ms": round(max(lags) * 1000, 1),
        "lag_lower_bound_p50_ms": round(percentile(lower, 0.5) * 1000, 1),
        "lag_lower_bound_p99_ms": round(percentile(lower, 0.99) * 1000, 1),
        "per_worker_p99_ms": {
            str(pid): round(percentile(v, 0.99) * 1000, 1) for pid, v in per_worker.items()
        },
        "churn": written,
        "events_per_s": round(written["write_rate"] + len(lags) / args.lag_seconds, 1),
        "load_average": load_average(),
    }


# -- the run --------------------------------------------------------------------------------------
def main() -> None:  # noqa: PLR0915 - the benchmark, step by step
    parser = argparse.ArgumentParser(description="Guardrail at scale against a real API server.")
    parser.add_argument("--namespaces", type=int, default=100_000)
    parser.add_argument("--create", choices=["etcd", "api"], default="etcd")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--modes", nargs="+", choices=["preload", "per-worker"], default=["preload", "per-worker"]
    )
    parser.add_argument("--lag-rate", type=float, default=500.0, help="writes per second")
    parser.add_argument("--lag-seconds", type=float, default=60.0)
    parser.add_argument(
        "--churn", choices=["etcd", "api"], default="etcd", help="how the lag's writes are made"
    )
    parser.add_argument(
        "--serve-workers", type=int, default=2, help="for the latency and lag parts"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["memory", "resync", "decision", "http", "lag"]
    )
    args = parser.parse_args()
    began = time.monotonic()
    results: dict[str, Any] = {
        "args": vars(args),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "policies": objects.policy_count(args.namespaces),
    }
    with tempfile.TemporaryDirectory(prefix="guardrail-scale-") as scratch:
        work = Path(scratch)
        (work / "no-audit.yaml").write_text(NO_AUDIT)
        cluster = Cluster.start(
            log=lambda m: log(f"cluster: {m}"),
            etcd_flags=[f"--quota-backend-bytes={ETCD_QUOTA}"],
            apiserver_flags=[f"--audit-policy-file={work / 'no-audit.yaml'}"],
            controller_manager=False,
        )
        try:
            cluster.kubectl("apply", "-f", str(CALICO_CRDS))
            cluster.kubectl(
                "wait", "--for=condition=Established", "--timeout=60s", "-f", str(CALICO_CRDS)
            )
            api = objects.Api(cluster.server, cluster.token, str(cluster.ca_file))
            etcd = objects.Etcd(cluster.etcd_url) if args.create == "etcd" else None
            log(
                f"creating {args.namespaces:,} namespaces and {results['policies']:,} policies "
                f"via {args.create} (load {load_average()})"
            )
            created = objects.create_all(api, etcd, args.namespaces, log=log)
            waited = time.perf_counter()
            served_counts = objects.wait_counts(api, args.namespaces)
            created["served_after_s"] = round(time.perf_counter() - waited, 1)
            created["served_counts"] = served_counts
            created["load_average"] = load_average()
            results["create"] = created
            log(f"created: {created}")
            subprocess.run(
                [GUARDRAIL, "certs", "--out", str(work / "certs"), "--host", "127.0.0.1"],
                check=True,
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            certs = work / "certs"
            if "memory" not in args.skip:
                results["memory"] = memory_section(cluster, certs, work, args)
            if "resync" not in args.skip:
                log(f"a resync in a forked worker (load {load_average()})")
                results["resync_in_fork"] = resync_section(cluster)
                log(f"  {results['resync_in_fork']}")
            if "decision" not in args.skip:
                log(f"decision time in process (load {load_average()})")
                results["decision"] = decision_section(cluster, args.namespaces)
                log(f"  {results['decision']}")
            if {"http", "lag"} - set(args.skip):
                with serve(cluster, certs, work, args.serve_workers, preload=True) as served:
                    results["serve_for_latency"] = wait_ready(served)
                    if "http" not in args.skip:
                        log(f"/validate at 200 requests/s (load {load_average()})")
                        results["http_200rps"] = http_section(served, work, args.namespaces)
                        log(f"  {results['http_200rps']}")
                    if "lag" not in args.skip:
                        log(
                            f"lag at {args.lag_rate:g} writes/s for {args.lag_seconds:g} s "
                            f"(load {load_average()})"
                        )
                        results["lag"] = lag_section(cluster, served, args)
                        log(f"  {results['lag']}")
                    results["serve_memory_after_lag"] = pod_memory(served.proc.pid)
        finally:
            cluster.stop()
    results["load_average_end"] = load_average()
    results["total_s"] = round(time.monotonic() - began, 1)
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"scale-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    log(f"done in {results['total_s']:.0f} s; results in {out}")
    print(tables.scale_table(results))


if __name__ == "__main__":
    main()
