"""Guardrail's benchmarks (SPEC §6): one command, a Markdown table, a JSON file.

    .venv/bin/python bench/run.py            # or: make bench

Installs what it lacks (wrk from Debian, kopf into this venv, the Go load generator), then:
1. /validate over keep-alive TLS at fixed concurrency (wrk, bench/rotate.lua rotating 10
   AdmissionReviews, 4 denied), against Guardrail (10,000 namespaces, 30,000 policies, every
   policy on), a bare allow-all Flask endpoint under the same gunicorn/TLS settings, and a kopf
   admission handler, alternating in rounds so they share the machine's moment;
2. latency at a fixed 200 requests/s (bench/loadgen, open loop, keep-alive);
3. a TLS handshake per request (wrk with `Connection: close`) against keep-alive;
4. decision time and cache memory from 100 to 100,000 namespaces (bench/decision.py);
5. `guardrail check` over 10,000 manifests;
6. pod creation through a real kube-apiserver (bench/apiserver.py): no webhook, the Go floor
   (bench/floor), Guardrail, Gatekeeper and Kyverno (bench/peers/), alternating in one run,
   after checking that every one gives the bench's cases the same verdicts.

Results go to bench/results/bench-<time>.json; the table is printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import workload  # noqa: E402 - after the sys.path set-up

from bench.peers.base import stop_group  # noqa: E402 - after the sys.path set-up

PYTHON = sys.executable
VENV_BIN = Path(PYTHON).parent
STATE_NAMESPACES = 10_000
CHECK_MANIFESTS = 10_000
DECISION_SIZES = (100, 1_000, 10_000, 100_000)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROLE_LABEL_DENIAL = "r2"  # the workload's Pod without its role label


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


# -- set-up -------------------------------------------------------------------------------------
def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("installing wrk from Debian")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is not on PATH after installing it")
    return found


def ensure_kopf() -> None:
    try:
        import kopf  # noqa: F401, PLC0415 - probing whether kopf is installed
    except ImportError:
        log("installing kopf into the venv")
        subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "kopf"], check=True)


def build_loadgen(out: Path) -> Path:
    binary = out / "loadgen"
    source = BENCH / "loadgen"
    newest = max(p.stat().st_mtime for p in source.iterdir())
    if not binary.exists() or binary.stat().st_mtime < newest:
        go = shutil.which("go") or "/usr/local/go/bin/go"
        log("building bench/loadgen")
        subprocess.run([go, "build", "-o", str(binary), "."], cwd=source, check=True)
    return binary


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its live descendants."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def server(
    name: str, command: list[str], port: int, ca: Path, body: bytes, log_dir: Path
) -> Iterator[Server]:
    log_file = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"https://127.0.0.1:{port}/validate"
    try:
        wait_ready(proc, port, ca, body, name, log_dir / f"{name}.log")
        yield Server(name, url, proc)
    finally:
        stop_group(proc, 40)
        log_file.close()


def bench_certificates(certs: Path) -> Path:
    """The benchmark's CA and serving certificate for 127.0.0.1 in `certs`, made once."""
    if not (certs / "tls.crt").exists():
        from webhook.certs import write_certificates  # noqa: PLC0415 - only when missing

        write_certificates(
            certs,
            service="guardrail",
            namespace="guardrail-system",
            hosts=("127.0.0.1", "localhost"),
            days=30,
        )
    return certs


def post(
    port: int, ca: Path, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    import http.client  # noqa: PLC0415 - only the handshake benchmark uses it

    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request(
            "POST", "/validate", body, {"Content-Type": "application/json", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(
    proc: subprocess.Popen[bytes], port: int, ca: Path, body: bytes, name: str, log_path: Path
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"bench: {name} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError):
            status, _ = post(port, ca, body)
            if status == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"bench: {name} did not answer on port {port} within 120 s")


# -- load ---------------------------------------------------------------------------------------
def run_wrk(
    wrk: str,
    url: str,
    bodies: list[Path],
    *,
    seconds: float,
    threads: int,
    connections: int,
    server_pid: int,
    close: bool = False,
) -> dict[str, Any]:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(int(seconds), 1)}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "rotate.lua"),
    ]
    if close:
        command += ["-H", "Connection: close"]
    command += [url, "--", *map(str, bodies)]
    cpu_before = tree_cpu_seconds(server_pid)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    server_cpu = tree_cpu_seconds(server_pid) - cpu_before
    line = next((ln for ln in output.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({proc.returncode}):\n{output}")
    data = json.loads(line.removeprefix("WRKJSON "))
    duration = data["duration_us"] / 1e6
    errors = sum(data["errors"].values())
    return {
        "requests": data["requests"],
        "rps": data["requests"] / duration,
        "p50_ms": data["latency_us"]["p50"] / 1000,
        "p90_ms": data["latency_us"]["p90"] / 1000,
        "p99_ms": data["latency_us"]["p99"] / 1000,
        "max_ms": data["latency_us"]["max"] / 1000,
        "errors": errors,
        "error_detail": data["errors"],
        "server_cpu_pct": 100 * server_cpu / wall,
        "server_cpu_s": server_cpu,
        "loadgen_cpu_pct": 100 * (usage.ru_utime + usage.ru_stime) / wall,
        "load_average": load_average(),
    }


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Several rounds of one target as one figure: total requests over total time."""
    total = sum(r["requests"] for r in rounds)
    seconds = sum(r["requests"] / r["rps"] for r in rounds)
    keys = ("p50_ms", "p90_ms", "p99_ms", "server_cpu_pct", "loadgen_cpu_pct")
    out: dict[str, Any] = {"requests": total, "rps": total / seconds, "rounds": rounds}
    # Requests per CPU-second of the server's processes: what a request costs, which other
    # work on a shared machine disturbs less than it disturbs requests per second.
    out["requests_per_cpu_s"] = total / sum(r["server_cpu_s"] for r in rounds)
    for key in keys:
        values = sorted(r[key] for r in rounds)
        out[key] = values[len(values) // 2]
    out["max_ms"] = max(r["max_ms"] for r in rounds)
    out["errors"] = sum(r["errors"] for r in rounds)
    return out


def run_loadgen(
    binary: Path, url: str, ca: Path, bodies: list[Path], rate: int, seconds: float, server_pid: int
) -> dict[str, Any]:
    cpu_before = tree_cpu_seconds(server_pid)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            str(binary),
            f"-url={url}",
            f"-ca={ca}",
            f"-rate={rate}",
            f"-duration={seconds}s",
            "-conns=16",
            "-bodies=" + ",".join(map(str, bodies)),
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: loadgen failed: {output}")
    data: dict[str, Any] = json.loads(output)
    data["server_cpu_pct"] = 100 * (tree_cpu_seconds(server_pid) - cpu_before) / wall
    data["loadgen_cpu_pct"] = 100 * (usage.ru_utime + usage.ru_stime) / wall
    data["load_average"] = load_average()
    return data


# -- sections -----------------------------------------------------------------------------------
def http_sections(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    wrk = ensure_wrk()
    ensure_kopf()
    loadgen = build_loadgen(work)
    certs = bench_certificates(work / "certs")
    ca = certs / "ca.crt"
    log(f"writing the state: {args.namespaces} namespaces")
    counts = workload.write_state(work / "state", args.namespaces)
    bodies = workload.write_reviews(work / "reviews", args.namespaces)
    results["state"] = counts
    expected = {
        f"r{i + 1}": allowed for i, (_, _, allowed) in enumerate(workload.reviews(args.namespaces))
    }
    probe = bodies[0].read_bytes()
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    ports = {name: free_port() for name in ("guardrail", "bare", "kopf")}
    wt = [f"--workers={args.workers}", f"--threads={args.threads}"]
    commands = {
        "guardrail": [
            str(VENV_BIN / "guardrail"),
            "serve",
            f"--state={work / 'state'}",
            f"--cert-dir={certs}",
            f"--bind=127.0.0.1:{ports['guardrail']}",
            *wt,
        ],
        "bare": [
            PYTHON,
            str(BENCH / "bare_app.py"),
            f"--cert-dir={certs}",
            f"--bind=127.0.0.1:{ports['bare']}",
            *wt,
        ],
        "kopf": [
            PYTHON,
            str(BENCH / "kopf_peer.py"),
            f"--cert-dir={certs}",
            f"--bind=127.0.0.1:{ports['kopf']}",
        ],
    }
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for name, command in commands.items():
            log(f"starting {name}")
            servers[name] = stack.enter_context(server(name, command, ports[name], ca, probe, logs))
        # Every server gives the verdicts it should: Guardrail the workload's, the bare endpoint
        # always allowed, kopf (role labels only) denies the one Pod without its role label.
        for body in bodies:
            for name in servers:
                status, out = post(ports[name], ca, body.read_bytes())
                response = json.loads(out)["response"]
                uid = response["uid"]
                want = {
                    "guardrail": expected[uid],
                    "bare": True,
                    "kopf": uid != ROLE_LABEL_DENIAL,
                }[name]
                if status != 200 or response["allowed"] != want:
                    raise SystemExit(f"bench: {name} answered {out!r} for {body.name}")
        results["validate_requests"] = [label for label, _, _ in workload.reviews(args.namespaces)]

        log("keep-alive throughput (wrk), warming up")
        for warming in servers.values():
            run_wrk(
                wrk,
                warming.url,
                bodies,
                seconds=2,
                threads=args.wrk_threads,
                connections=args.connections,
                server_pid=warming.proc.pid,
            )
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                log(f"keep-alive round {round_ + 1}/{args.rounds}: {name} (load {load_average()})")
                rounds[name].append(
                    run_wrk(
                        wrk,
                        servers[name].url,
                        bodies,
                        seconds=args.seconds,
                        threads=args.wrk_threads,
                        connections=args.connections,
                        server_pid=servers[name].proc.pid,
                    )
                )
        results["keepalive"] = {name: combine(r) for name, r in rounds.items()}
        results["keepalive"]["settings"] = {
            "tool": "wrk",
            "threads": args.wrk_threads,
            "connections": args.connections,
            "seconds": args.seconds,
            "rounds": args.rounds,
        }

        log("new connection per request (wrk, Connection: close)")
        results["new_connection"] = {}
        for name in ("guardrail", "bare"):
            results["new_connection"][name] = run_wrk(
                wrk,
                servers[name].url,
                bodies,
                seconds=args.seconds,
                threads=args.wrk_threads,
                connections=args.connections,
                server_pid=servers[name].proc.pid,
                close=True,
            )

        log(f"fixed rate {args.rate}/s (bench/loadgen)")
        results["fixed_rate"] = {}
        for name in ("guardrail", "bare", "kopf"):
            results["fixed_rate"][name] = run_loadgen(
                loadgen,
                servers[name].url,
                ca,
                bodies,
                args.rate,
                args.rate_seconds,
                servers[name].proc.pid,
            )


def decision_section(args: argparse.Namespace, results: dict[str, Any]) -> None:
    log(f"decision time and memory for {', '.join(map(str, args.sizes))} namespaces")
    out = subprocess.run(
        [PYTHON, str(BENCH / "decision.py"), *map(str, args.sizes)],
        check=True,
        capture_output=True,
        text=True,
    )
    results["decision"] = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def check_section(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    directory = work / "manifests"
    count = workload.write_manifests(directory, args.manifests)
    log(f"guardrail check over {count} manifests")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(VENV_BIN / "guardrail"), "check", "--format=json", str(directory)],
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench: guardrail check failed: {proc.stderr.decode()[-2000:]}")
    report = json.loads(proc.stdout)
    results["check"] = {
        "manifests": count,
        "seconds": seconds,
        "exit": proc.returncode,
        "summary": report["summary"],
        "load_average": load_average(),
    }


def apiserver_section(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    log(f"pod creation through kube-apiserver (e2e harness): baseline and {args.peers}")
    command = [
        PYTHON,
        str(BENCH / "apiserver.py"),
        f"--cert-dir={work / 'certs'}",
        f"--workers={args.workers}",
        f"--threads={args.threads}",
        f"--peers={args.peers}",
        f"--wrk={ensure_wrk()}",
    ]
    out = subprocess.run(command, check=False, stdout=subprocess.PIPE, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise SystemExit(f"bench: bench/apiserver.py failed ({out.returncode})")
    results["apiserver"] = json.loads(lines[-1])
    results["apiserver"]["load_average"] = load_average()


# -- report -------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    rows = [
        "| measurement | Guardrail | bare Flask (same stack) | kopf peer | target |",
        "| --- | --- | --- | --- | --- |",
    ]

    def row(*cells: str) -> None:
        rows.append("| " + " | ".join(cells) + " |")

    ka = results.get("keepalive")
    if ka:
        g, b, k = ka["guardrail"], ka["bare"], ka["kopf"]
        s = ka["settings"]
        row(
            f"/validate keep-alive TLS, {s['connections']} connections: requests/s",
            f"**{g['rps']:.0f}** ({100 * g['rps'] / b['rps']:.0f} % of bare)",
            f"{b['rps']:.0f}",
            f"{k['rps']:.0f}",
            "≥ 85 % of bare, > kopf",
        )
        row(
            "… latency p50 / p99 (ms)",
            f"{g['p50_ms']:.2f} / {g['p99_ms']:.2f}",
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f}",
            f"{k['p50_ms']:.2f} / {k['p99_ms']:.2f}",
            "",
        )
        row(
            "… requests per server CPU-second",
            f"{g['requests_per_cpu_s']:.0f} "
            f"({100 * g['requests_per_cpu_s'] / b['requests_per_cpu_s']:.0f} % of bare)",
            f"{b['requests_per_cpu_s']:.0f}",
            f"{k['requests_per_cpu_s']:.0f}",
            "",
        )
        row(
            "… server CPU / wrk CPU (% of one core)",
            f"{g['server_cpu_pct']:.0f} / {g['loadgen_cpu_pct']:.0f}",
            f"{b['server_cpu_pct']:.0f} / {b['loadgen_cpu_pct']:.0f}",
            f"{k['server_cpu_pct']:.0f} / {k['loadgen_cpu_pct']:.0f}",
            "",
        )
    fr = results.get("fixed_rate")
    if fr:
        g, b, k = fr["guardrail"], fr["bare"], fr["kopf"]
        row(
            f"{g['rate']:.0f} requests/s open loop: p50 / p99 / max (ms)",
            f"{g['p50_ms']:.2f} / **{g['p99_ms']:.2f}** / {g['max_ms']:.1f}",
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} / {b['max_ms']:.1f}",
            f"{k['p50_ms']:.2f} / {k['p99_ms']:.2f} / {k['max_ms']:.1f}",
            "p99 < 10 ms",
        )
    nc = results.get("new_connection")
    if nc and ka:
        g, b = nc["guardrail"], nc["bare"]
        row(
            "TLS handshake per request: requests/s (p50 ms)",
            f"{g['rps']:.0f} ({g['p50_ms']:.2f}); keep-alive {ka['guardrail']['rps']:.0f}",
            f"{b['rps']:.0f} ({b['p50_ms']:.2f})",
            "",
            "",
        )
    for d in results.get("decision", []):
        row(
            f"decision, {d['namespaces']:,} namespaces / {d['policies']:,} policies: "
            "µs (first in a namespace)",
            f"{d['decision_us']:.1f} ({d['first_in_namespace_us']:.0f})",
            "",
            "",
            "flat within 20 %",
        )
    decisions = results.get("decision", [])
    if decisions:
        times = [d["decision_us"] for d in decisions]
        row(
            "decision time spread, smallest to largest cluster",
            f"{100 * (max(times) / min(times) - 1):.0f} %",
            "",
            "",
            "≤ 20 %",
        )
        for d in decisions:
            index = d["bytes_without_providers"]
            row(
                f"cache memory, {d['namespaces']:,} namespaces: bytes per policy (with every "
                "namespace's view built)",
                f"**{index / d['policies']:.0f}** ({index / 2**20:.1f} MiB; "
                f"{d['bytes_per_policy']:.0f}, {d['bytes'] / 2**20:.1f} MiB)",
                "",
                "",
                "< 1024",
            )
    ch = results.get("check")
    if ch:
        row(
            f"`guardrail check` over {ch['manifests']:,} manifests: seconds",
            f"**{ch['seconds']:.2f}**",
            "",
            "",
            "< 5 s",
        )
    return "\n".join(rows)


PEER_ROWS = (
    ("baseline", "no webhook"),
    ("floor", "Go floor (allow-all)"),
    ("guardrail", "Guardrail"),
    ("gatekeeper", "Gatekeeper"),
    ("kyverno-cp", "Kyverno ClusterPolicy + globalContext"),
    ("kyverno-vp", "Kyverno ValidatingPolicy + globalContext"),
)


def ratio(value: float, reference: dict[str, Any] | None, key: str) -> str:
    if not reference or reference.get(key, 0) <= 0:
        return ""
    return f"{value / reference[key]:.2f}×"


def peers_table(api: dict[str, Any]) -> str:
    """Pod creation through the API server: every subject of one run, side by side."""
    subjects = api["subjects"]
    floor, kvp = subjects.get("floor"), subjects.get("kyverno-vp")
    rows = [
        f"Pod creation through kube-apiserver, {api['date']}: {api['sequential_pods']} sequential "
        f"pods per namespace (load average {api['sequential_load_average']}), "
        f"{api['clients']} clients × {api['phase_seconds']:.0f} s × {api['rounds']} rounds; "
        f"load average {api['load_average_start']} → {api['load_average_end']}",
        "",
        "| namespace | added p50 / p90 (ms) | pods/s | webhook CPU per pod (ms) "
        "| p50 ÷ floor | CPU ÷ floor | p50 ÷ Kyverno VP | CPU ÷ Kyverno VP "
        "| direct: req/s, p50/p99 (ms), req per CPU-s | PSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, title in PEER_ROWS:
        s = subjects.get(key)
        if s is None:
            continue
        if key == "baseline":
            rows.append(
                f"| {title} | {s['p50_ms']:.2f} / {s['p90_ms']:.2f} absolute | "
                f"{s['pods_per_s']:.0f} |  |  |  |  |  |  |  |"
            )
            continue
        d = s.get("direct")
        direct = (
            f"{d['rps']:.0f}, {d['p50_ms']:.2f}/{d['p99_ms']:.2f}, {d['requests_per_cpu_s']:.0f}"
            if d
            else ""
        )
        rows.append(
            f"| {s.get('title', title)} | {s['added_p50_ms']:.2f} / {s['added_p90_ms']:.2f} | "
            f"{s['pods_per_s']:.0f} | {s['cpu_ms_per_pod']:.2f} | "
            f"{ratio(s['added_p50_ms'], floor, 'added_p50_ms')} | "
            f"{ratio(s['cpu_ms_per_pod'], floor, 'cpu_ms_per_pod')} | "
            f"{ratio(s['added_p50_ms'], kvp, 'added_p50_ms')} | "
            f"{ratio(s['cpu_ms_per_pod'], kvp, 'cpu_ms_per_pod')} | {direct} | "
            f"{s['pss_mib']:.0f} |"
        )
    if "kyverno-cp" in subjects or "kyverno-vp" in subjects:
        rows += [
            "",
            "Kyverno's two rows are one process (one PSS); each row's CPU is that process's over "
            "its own namespace's phases.",
        ]
    g = subjects.get("guardrail")
    if g:
        rows += ["", "| target (Guardrail) | measured | met |", "| --- | --- | --- |"]
        gk = subjects.get("gatekeeper")
        checks = [("added p50 ≤ 3 ms", g["added_p50_ms"], 3.0, "ms")]
        for name, reference, key, limit in (
            ("added p50 ≤ 1.3× the Go floor's", floor, "added_p50_ms", 1.3),
            ("added p50 ≤ 0.6× Gatekeeper's", gk, "added_p50_ms", 0.6),
            ("CPU per pod ≤ 0.5× Gatekeeper's", gk, "cpu_ms_per_pod", 0.5),
            ("CPU per pod ≤ 0.67× Kyverno ValidatingPolicy's", kvp, "cpu_ms_per_pod", 0.67),
        ):
            if reference and reference[key] > 0:
                checks.append((name, g[key] / reference[key], limit, "×"))
        for name, value, limit, unit in checks:
            rows.append(
                f"| {name} | {value:.2f}{' ' if unit == 'ms' else ''}{unit} | "
                f"{'yes' if value <= limit else '**no**'} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="Guardrail's benchmarks (SPEC §6).")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=("http", "decision", "check", "apiserver"),
        help="run only these sections (default: all)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="gunicorn workers for Guardrail and the bare endpoint",
    )
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--namespaces", type=int, default=STATE_NAMESPACES)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each wrk run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="keep-alive rounds; short alternating rounds share a noisy machine's moments fairly",
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--rate-seconds", type=float, default=20.0)
    parser.add_argument("--manifests", type=int, default=CHECK_MANIFESTS)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(DECISION_SIZES))
    parser.add_argument(
        "--peers",
        default="floor,guardrail,gatekeeper,kyverno",
        help="the API-server part's webhooks besides the no-webhook baseline; Gatekeeper and "
        "Kyverno are built from their Go modules on first use (about 5 and 15 minutes of CPU), "
        "e.g. --peers floor,guardrail to skip them",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    sections = set(args.only or ("http", "decision", "check", "apiserver"))

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started": stamp,
        "machine": machine(),
        "load_average_start": load_average(),
        "settings": {"workers": args.workers, "threads": args.threads},
    }
    log(f"load average at start: {results['load_average_start']}")
    if "http" in sections:
        http_sections(args, work, results)
    if "decision" in sections:
        decision_section(args, results)
    if "check" in sections:
        check_section(args, work, results)
    if "apiserver" in sections:
        bench_certificates(work / "certs")
        apiserver_section(args, work, results)
    results["load_average_end"] = load_average()
    results["seconds"] = time.perf_counter() - started
    out = args.out / f"bench-{stamp}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    m = results["machine"]
    print(
        f"\n{m['nproc']} × {m['cpu']}, {m['memory_gib']} GiB, Python {m['python']}; "
        f"gunicorn {args.workers} workers × {args.threads} threads; load average "
        f"{results['load_average_start']} → {results['load_average_end']}; "
        f"{results['seconds']:.0f} s\n"
    )
    if any(key in results for key in ("keepalive", "fixed_rate", "decision", "check")):
        print(table(results))
        print()
    if "apiserver" in results:
        print(peers_table(results["apiserver"]))
    print(f"\nJSON: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
