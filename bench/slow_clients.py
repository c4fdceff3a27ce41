"""Review latency with and without hundreds of slow clients connected (SPEC 3.4).

`guardrail serve` (2 workers x 8 threads, the tests' small state) receives reviews at a fixed
rate over a few keep-alive sessions, as the API server sends them, in alternating rounds:
alone, then with 100 connections of each slow kind held open (trickled headers, trickled body,
silent after the TLS handshake, no TLS at all; tests/http/slowloris.py, in a process of its
own), each reconnecting when the server cuts it. Latency is measured from each review's
scheduled time (open loop), so a stall shows as latency. The review client is bench/loadgen
(Go's net/http, keep-alive, as the API server) when a Go toolchain is there, else Python
threads (`--client python`, which also checks every verdict).

    .venv/bin/python bench/slow_clients.py                     # 3 rounds of 10 s each way
    .venv/bin/python bench/slow_clients.py --rounds 1 --seconds 5 --rate 50

Prints a Markdown table; writes bench/results/slow-clients-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT)]

from tests.http.slowloris import KINDS, NO_TLS  # noqa: E402 - after sys.path
from tests.http.support import Server, as_json, pod, review, start_server  # noqa: E402 - same
from webhook.worker import REQUEST_SECONDS, TLS_HANDSHAKE_SECONDS  # noqa: E402 - same

PYTHON = sys.executable
SESSIONS = 4
REVIEW_TIMEOUT = 20.0


def log(message: str) -> None:
    print(f"[slow-clients {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _reviews() -> list[tuple[dict[str, Any], bool]]:
    """(review, whether it must be allowed): a labelled pod in the isolated namespace, and
    one missing its role label."""
    return [
        (review(pod(labels={"app": "web", "role": "frontend"})), True),
        (review(pod(labels={"app": "web"})), False),
    ]


def _row(latencies: list[float], errors: int) -> dict[str, Any]:
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

    return {
        "reviews": len(ordered),
        "errors": errors,
        "p50_ms": round(percentile(0.50), 2),
        "p99_ms": round(percentile(0.99), 2),
        "max_ms": round(ordered[-1] * 1000 if ordered else 0.0, 2),
    }


def _send_python(server: Server, rate: float, seconds: float) -> dict[str, Any]:
    """SESSIONS keep-alive sessions, together `rate` reviews a second for `seconds`."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    started = time.monotonic() + 0.1
    per_session = rate / SESSIONS
    mix = _reviews()

    def client(offset: int) -> None:
        with requests.Session() as session:
            index = 0
            while (scheduled := started + (index + offset / SESSIONS) / per_session) < (
                started + seconds
            ):
                time.sleep(max(0.0, scheduled - time.monotonic()))
                template, allowed = mix[index % len(mix)]
                doc = dict(template, request=dict(template["request"], uid=str(uuid.uuid4())))
                error = ""
                try:
                    reply = session.post(
                        server.url + "/validate",
                        data=as_json(doc),
                        verify=server.ca,
                        timeout=REVIEW_TIMEOUT,
                        headers={"Content-Type": "application/json"},
                    )
                    answer = reply.json()["response"]
                    if reply.status_code != 200 or answer["allowed"] is not allowed:
                        error = f"http-{reply.status_code}"
                except (requests.RequestException, ValueError, KeyError) as exc:
                    error = type(exc).__name__
                latency = time.monotonic() - scheduled
                with lock:
                    latencies.append(latency)
                    if error:
                        errors.append(error)
                index += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _row(latencies, len(errors))


def _build_loadgen(out: Path) -> Path | None:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        return None
    binary = out / "loadgen"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=BENCH / "loadgen", check=True)
    return binary


def _send_go(
    binary: Path, scratch: Path, server: Server, rate: float, seconds: float
) -> dict[str, Any]:
    """bench/loadgen: open loop at `rate`, SESSIONS keep-alive connections (warmed first)."""
    bodies = []
    for index, (doc, _) in enumerate(_reviews()):
        path = scratch / f"review-{index}.json"
        path.write_bytes(as_json(doc))
        bodies.append(str(path))
    done = subprocess.run(
        [
            str(binary),
            f"-url={server.url}/validate",
            f"-ca={server.ca}",
            f"-rate={rate}",
            f"-duration={seconds}s",
            f"-conns={SESSIONS}",
            "-bodies=" + ",".join(bodies),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"slow-clients: loadgen failed: {done.stderr or done.stdout}")
    data = json.loads(done.stdout)
    return {
        "reviews": data["sent"],
        "errors": data["errors"],
        "p50_ms": round(data["p50_ms"], 2),
        "p99_ms": round(data["p99_ms"], 2),
        "max_ms": round(data["max_ms"], 2),
    }


def _summary(rows: list[dict[str, Any]], slow: bool) -> dict[str, Any]:
    """Over the rounds of one condition: the median round's p50, the worst round's p99."""
    mine = [row for row in rows if row["slow_clients"] is slow]
    return {
        "slow_clients": slow,
        "rounds": len(mine),
        "reviews": sum(row["reviews"] for row in mine),
        "errors": sum(row["errors"] for row in mine),
        "p50_ms": round(statistics.median(row["p50_ms"] for row in mine), 2) if mine else 0.0,
        "p99_ms": max((row["p99_ms"] for row in mine), default=0.0),
        "max_ms": max((row["max_ms"] for row in mine), default=0.0),
    }


def _dropped(server: Server) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in server.get("/metrics").text.splitlines():
        if line.startswith("guardrail_connections_dropped_total{"):
            labels, _, value = line.rpartition(" ")
            found[labels.split('reason="')[1].split('"')[0]] = float(value)
    return found


def _rounds(
    server: Server,
    args: argparse.Namespace,
    send: Callable[[Server, float, float], dict[str, Any]],
    holds: dict[str, list[float]],
) -> list[dict[str, Any]]:
    """Alternating rounds without and with the slow fleet, one row each; holds collects how
    long each slow connection was held before the server cut it."""
    rows: list[dict[str, Any]] = []
    for number in range(1, args.rounds + 1):
        for slow in (False, True):
            fleet = _start_fleet(server, args.per_kind, number) if slow else None
            try:
                row = {
                    "round": number,
                    "slow_clients": slow,
                    **send(server, args.rate, args.seconds),
                }
            finally:
                if fleet is not None:
                    for kind, held in _stop_fleet(fleet):
                        holds[kind].append(held)
            rows.append(row)
            log(
                f"round {number} {'with' if slow else 'without'} slow clients: "
                f"{row['reviews']} reviews, {row['errors']} errors, "
                f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms"
            )
    return rows


def _start_fleet(server: Server, per_kind: int, number: int) -> subprocess.Popen[str]:
    # A process of its own: in this one its event loop would take the GIL from the review
    # clients, and their latency would count the fleet's work as the server's.
    fleet = subprocess.Popen(
        [PYTHON, "-m", "tests.http.slowloris", str(server.port), server.ca, str(per_kind)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fleet.stdout is not None
    log(f"round {number}: {fleet.stdout.readline().strip()} slow connections")
    return fleet


def _stop_fleet(fleet: subprocess.Popen[str]) -> list[tuple[str, float]]:
    out, _ = fleet.communicate(timeout=120)
    lines = out.strip().splitlines()
    return [(kind, held) for kind, held in json.loads(lines[-1])] if lines else []


def _print_tables(
    per_kind: int,
    rows: list[dict[str, Any]],
    results: list[dict[str, Any]],
    cut: dict[str, dict[str, Any]],
) -> None:
    def connected(row: dict[str, Any]) -> str:
        return f"{per_kind} x {len(KINDS)} kinds" if row["slow_clients"] else "none"

    print("| round | slow clients connected | reviews | errors | p50 ms | p99 ms | max ms |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['round']} | {connected(row)} | {row['reviews']} | {row['errors']} | "
            f"{row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |"
        )
    print()
    print(
        "| slow clients connected | rounds | reviews | errors | p50 ms (median round) | "
        "p99 ms (worst round) | max ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        print(
            f"| {connected(row)} | {row['rounds']} | {row['reviews']} | {row['errors']} | "
            f"{row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |"
        )
    print()
    print("| slow kind | connections cut | deadline s | held p50 s | held max s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, row in cut.items():
        print(
            f"| {kind} | {row['connections_cut']} | {row['deadline_s']} | {row['held_p50_s']} | "
            f"{row['held_max_s']} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per round")
    parser.add_argument("--rate", type=float, default=100.0, help="reviews per second")
    parser.add_argument("--per-kind", type=int, default=100, help="slow connections per kind")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--client", choices=["auto", "go", "python"], default="auto")
    args = parser.parse_args()
    holds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="guardrail-slow-clients-") as scratch_dir:
        scratch = Path(scratch_dir)
        binary = _build_loadgen(scratch) if args.client != "python" else None
        if binary is None and args.client == "go":
            raise SystemExit("slow-clients: --client go needs a Go toolchain")
        client = "go" if binary is not None else "python"
        send: Callable[[Server, float, float], dict[str, Any]] = (
            partial(_send_go, binary, scratch) if binary is not None else _send_python
        )
        log(
            f"{args.rounds} rounds of {args.seconds:g} s each way, "
            f"{args.rate:g} reviews/s ({client} client)"
        )
        server = start_server(scratch / "serve", workers=args.workers, threads=args.threads)
        try:
            rows = _rounds(server, args, send, holds)
            dropped = _dropped(server)
        finally:
            server.stop()
    results = [_summary(rows, False), _summary(rows, True)]
    cut = {
        kind: {
            "connections_cut": len(values),
            "deadline_s": TLS_HANDSHAKE_SECONDS if kind == NO_TLS else REQUEST_SECONDS,
            "held_p50_s": round(statistics.median(values), 2) if values else None,
            "held_max_s": round(max(values), 2) if values else None,
        }
        for kind, values in holds.items()
    }
    _print_tables(args.per_kind, rows, results, cut)
    print(f"\nserver's dropped-connection counters: {dropped}")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"slow-clients-{stamp}.json"
    report = {
        "args": vars(args),
        "client": client,
        "load_average_after": Path("/proc/loadavg").read_text().split()[:3],
        "rounds": rows,
        "results": results,
        "slow_connections": cut,
        "dropped": dropped,
    }
    out.write_text(json.dumps(report, indent=2))
    log(f"results written to {out}")
    return 1 if any(row["errors"] for row in results) else 0


if __name__ == "__main__":
    sys.exit(main())
