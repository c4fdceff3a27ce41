"""Two or more builds of the webhook side by side: wrk rounds interleaved, as bench/run.py does.

    .venv/bin/python bench/ab.py before=guardrail@/tmp/guardrail-A after=guardrail@. bare=bare@.

Each target is NAME=KIND@TREE[,workers=N][,threads=N]: KIND `guardrail` (`guardrail serve
--state`, the benchmark's 10,000 namespaces and 30,000 policies) or `bare` (bench/bare_app.py),
TREE the source tree put first on PYTHONPATH (a checkout or `git archive` of the commit to
compare), workers and threads that target's own gunicorn settings. Every target gets
the same wrk load as bench/run.py's keep-alive section (bench/rotate.lua, 8 connections); the
order of targets alternates round by round so that each shares the machine's noisy moments.

Per round: requests/s, p50/p99, the server's CPU (its process tree) and the load average; and,
sampled mid-round, how many of wrk's connections each worker process holds and the CPU each
worker used, which shows whether the work is spread across workers. Results go to
bench/results/ab-<time>.json; a table per target and the per-round figures are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import run  # noqa: E402 - after the sys.path set-up
import workload  # noqa: E402 - after the sys.path set-up

from bench.peers.base import stop_group  # noqa: E402 - after the sys.path set-up

KINDS = ("guardrail", "bare")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str
    tree: Path
    # gunicorn settings of this target alone (`,workers=N,threads=N`); else the flags'.
    workers: int | None = None
    threads: int | None = None


@dataclass
class Running:
    target: Target
    url: str
    port: int
    proc: subprocess.Popen[bytes]


def parse_target(text: str) -> Target:
    name, eq, rest = text.partition("=")
    kind, at, rest = rest.partition("@")
    tree, *options = rest.split(",")
    if not eq or not at or kind not in KINDS or not name:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=KIND@TREE[,workers=N][,threads=N], KIND one of {KINDS}"
        )
    path = Path(tree).resolve()
    if not (path / "webhook").is_dir():
        raise argparse.ArgumentTypeError(f"{path} holds no webhook/ package")
    settings: dict[str, int] = {}
    for option in options:
        key, _, value = option.partition("=")
        if key not in ("workers", "threads") or not value.isdigit():
            raise argparse.ArgumentTypeError(f"{option!r}: only workers=N and threads=N")
        settings[key] = int(value)
    return Target(name, kind, path, **settings)


def prepare(
    work: Path, namespaces: int, reviews: list[int] | None = None
) -> tuple[Path, Path, list[Path]]:
    """Certificates, state and reviews (those numbered in `reviews`, 1-based; default all),
    written once and reused by later runs."""
    certs = run.bench_certificates(work / "certs")
    state = work / f"state-{namespaces}"
    if not state.exists():
        run.log(f"writing the state: {namespaces} namespaces")
        workload.write_state(state, namespaces)
    bodies = workload.write_reviews(work / f"reviews-{namespaces}", namespaces)
    if reviews:
        bodies = [bodies[number - 1] for number in reviews]
    return certs, state, bodies


def review_numbers(text: str) -> list[int]:
    """`1,2,5-7` -> [1, 2, 5, 6, 7]: which of workload.reviews' ten to send."""
    numbers: list[int] = []
    for part in text.split(","):
        low, dash, high = part.partition("-")
        numbers += range(int(low), int(high if dash else low) + 1)
    if not numbers or not all(1 <= n <= 10 for n in numbers):
        raise argparse.ArgumentTypeError(f"{text!r}: review numbers go from 1 to 10")
    return numbers


def command(
    target: Target, port: int, certs: Path, state: Path, args: argparse.Namespace
) -> list[str]:
    common = [
        f"--cert-dir={certs}",
        f"--bind=127.0.0.1:{port}",
        f"--workers={target.workers or args.workers}",
        f"--threads={target.threads or args.threads}",
    ]
    if target.kind == "guardrail":
        return [run.PYTHON, str(run.VENV_BIN / "guardrail"), "serve", f"--state={state}", *common]
    return [run.PYTHON, str(target.tree / "bench" / "bare_app.py"), *common]


@contextlib.contextmanager
def start(
    target: Target, certs: Path, state: Path, probe: bytes, args: argparse.Namespace, logs: Path
) -> Iterator[Running]:
    port = run.free_port()
    log_path = logs / f"{target.name}.log"
    env = {**os.environ, "PYTHONPATH": str(target.tree)}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            command(target, port, certs, state, args),
            cwd=target.tree,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            run.wait_ready(proc, port, certs / "ca.crt", probe, target.name, log_path)
            yield Running(target, f"https://127.0.0.1:{port}/validate", port, proc)
        finally:
            stop_group(proc, 40)


# -- per-worker figures -------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / run.CLOCK_TICKS


def established(port: int) -> set[str]:
    """Socket inodes of established TCP connections to local `port` (IPv4 loopback here)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    return inodes


def connections_per_worker(master: int, port: int) -> dict[int, int]:
    """How many established connections to `port` each worker process holds."""
    wanted = established(port)
    held: dict[int, int] = {}
    for worker in children(master):
        count = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{worker}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in wanted:
                        count += 1
        held[worker] = count
    return held


def one_round(
    wrk: str, running: Running, bodies: list[Path], args: argparse.Namespace
) -> dict[str, Any]:
    master = running.proc.pid
    before = {w: cpu_seconds(w) for w in children(master)}
    sampled: dict[int, int] = {}

    def sample() -> None:
        time.sleep(args.seconds / 2)
        sampled.update(connections_per_worker(master, running.port))

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = run.run_wrk(
        wrk,
        running.url,
        bodies,
        seconds=args.seconds,
        threads=1,
        connections=args.connections,
        server_pid=master,
    )
    sampler.join()
    out["worker_connections"] = sorted(sampled.values(), reverse=True)
    out["worker_cpu_s"] = sorted(
        (cpu_seconds(w) - before.get(w, 0.0) for w in children(master)), reverse=True
    )
    return out


# -- report -------------------------------------------------------------------------------------
def summary(results: dict[str, Any]) -> str:
    combined = results["combined"]
    names = list(combined)
    base = combined[names[0]]
    rows = [
        "| target | requests/s | p50 / p99 ms | requests per CPU-s | server CPU % | "
        f"vs {names[0]}: rps, per CPU-s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        c = combined[name]
        rows.append(
            f"| {name} | {c['rps']:.0f} | {c['p50_ms']:.2f} / {c['p99_ms']:.2f} | "
            f"{c['requests_per_cpu_s']:.0f} | {c['server_cpu_pct']:.0f} | "
            f"{c['rps'] / base['rps']:.3f}, "
            f"{c['requests_per_cpu_s'] / base['requests_per_cpu_s']:.3f} |"
        )
    lines = [
        "\n".join(rows),
        "",
        "per round (rps, requests per CPU-s, connections per worker, load):",
    ]
    lines.extend(
        f"  {name:>12}: {r['rps']:7.0f} rps {r['requests'] / r['server_cpu_s']:6.0f}/CPU-s"
        f"  conns {r['worker_connections']}  "
        f"cpu {[round(c, 1) for c in r['worker_cpu_s']]}  load {r['load_average']}"
        for name in names
        for r in combined[name]["rounds"]
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "targets", nargs="+", type=parse_target, help="NAME=KIND@TREE[,workers=N][,threads=N]"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--namespaces", type=int, default=run.STATE_NAMESPACES)
    parser.add_argument(
        "--reviews",
        type=review_numbers,
        help="which of the ten reviews to rotate, e.g. 1-7 (default: all, as bench/run.py)",
    )
    parser.add_argument("--work", type=Path, default=BENCH / "results" / "ab-work")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    if len({t.name for t in args.targets}) != len(args.targets):
        parser.error("target names must differ")

    wrk = run.ensure_wrk()
    args.work.mkdir(parents=True, exist_ok=True)
    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    certs, state, bodies = prepare(args.work, args.namespaces, args.reviews)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "started": stamp,
        "load_average_start": run.load_average(),
        "settings": {k: v for k, v in vars(args).items() if k != "targets"}
        | {"targets": {t.name: f"{t.kind}@{t.tree}" for t in args.targets}},
    }
    results["settings"]["work"] = str(args.work)
    results["settings"]["out"] = str(args.out)
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(start(t, certs, state, bodies[0].read_bytes(), args, logs))
            for t in args.targets
        ]
        run.log("warming up")
        for running in servers:
            one_round(wrk, running, bodies, argparse.Namespace(**{**vars(args), "seconds": 2}))
        rounds: dict[str, list[dict[str, Any]]] = {s.target.name: [] for s in servers}
        for index in range(args.rounds):
            order = servers if index % 2 == 0 else list(reversed(servers))
            for running in order:
                name = running.target.name
                run.log(f"round {index + 1}/{args.rounds}: {name} (load {run.load_average()})")
                rounds[name].append(one_round(wrk, running, bodies, args))
    results["combined"] = {name: run.combine(r) for name, r in rounds.items()}
    results["load_average_end"] = run.load_average()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"ab-{stamp}.json"
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"load average {results['load_average_start']} -> {results['load_average_end']}")
    print(summary(results))
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
