"""Review latency with and without hundreds of slow clients connected (SPEC 3.4).

`guardrail serve` (2 workers x 8 threads, the tests' small state) receives reviews at a fixed
rate over a few keep-alive sessions, as the API server sends them, in alternating rounds:
alone, then with 100 connections of each slow kind held open (trickled headers, trickled body,
silent after the TLS handshake, no TLS at all; tests/http/slowloris.py, in a process of its
own), each reconnecting when the server cuts it. Latency is measured from each review's
scheduled time (open loop), so a stall shows as latency. Every verdict is checked.

    .venv/bin/python bench/slow_clients.py                     # 3 rounds of 10 s each way
    .venv/bin/python bench/slow_clients.py --rounds 1 --seconds 5 --rate 50

Prints a Markdown table; writes bench/results/slow-clients-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
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


@dataclass
class Round:
    slow: bool
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _send(server: Server, rate: float, seconds: float, into: Round) -> None:
    """SESSIONS keep-alive sessions, together `rate` reviews a second for `seconds`."""
    lock = threading.Lock()
    started = time.monotonic() + 0.1
    per_session = rate / SESSIONS

    def client(offset: int) -> None:
        with requests.Session() as session:
            index = 0
            while (scheduled := started + (index + offset / SESSIONS) / per_session) < (
                started + seconds
            ):
                time.sleep(max(0.0, scheduled - time.monotonic()))
                allowed = index % 2 == 0
                labels = {"app": "web", "role": "frontend"} if allowed else {"app": "web"}
                doc = review(pod(labels=labels))
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
                    into.latencies.append(latency)
                    if error:
                        into.errors.append(error)
                index += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def _summary(rounds: list[Round], slow: bool) -> dict[str, Any]:
    latencies = [x for r in rounds if r.slow is slow for x in r.latencies]
    errors = [e for r in rounds if r.slow is slow for e in r.errors]
    return {
        "slow_clients": slow,
        "reviews": len(latencies),
        "errors": len(errors),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0.0) * 1000, 2),
    }


def _dropped(server: Server) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in server.get("/metrics").text.splitlines():
        if line.startswith("guardrail_connections_dropped_total{"):
            labels, _, value = line.rpartition(" ")
            found[labels.split('reason="')[1].split('"')[0]] = float(value)
    return found


def _rounds(server: Server, args: argparse.Namespace, holds: dict[str, list[float]]) -> list[Round]:
    """Alternating rounds without and with the slow fleet; holds collects how long each slow
    connection was held before the server cut it."""
    rounds: list[Round] = []
    for number in range(args.rounds):
        for slow in (False, True):
            current = Round(slow)
            fleet = _start_fleet(server, args.per_kind, number) if slow else None
            try:
                _send(server, args.rate, args.seconds, current)
            finally:
                if fleet is not None:
                    for kind, held in _stop_fleet(fleet):
                        holds[kind].append(held)
            rounds.append(current)
            summary = _summary([current], slow)
            log(
                f"round {number + 1} {'with' if slow else 'without'} slow clients: "
                f"{summary['reviews']} reviews, {summary['errors']} errors, "
                f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms"
            )
    return rounds


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
    log(f"round {number + 1}: {fleet.stdout.readline().strip()} slow connections")
    return fleet


def _stop_fleet(fleet: subprocess.Popen[str]) -> list[tuple[str, float]]:
    out, _ = fleet.communicate(timeout=120)
    lines = out.strip().splitlines()
    return [(kind, held) for kind, held in json.loads(lines[-1])] if lines else []


def _print_tables(
    per_kind: int, results: list[dict[str, Any]], cut: dict[str, dict[str, Any]]
) -> None:
    print("| slow clients connected | reviews | errors | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        connected = f"{per_kind} x {len(KINDS)} kinds" if row["slow_clients"] else "none"
        print(
            f"| {connected} | {row['reviews']} | {row['errors']} | {row['p50_ms']} | "
            f"{row['p99_ms']} | {row['max_ms']} |"
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
    args = parser.parse_args()
    holds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="guardrail-slow-clients-") as scratch:
        server = start_server(Path(scratch) / "serve", workers=args.workers, threads=args.threads)
        try:
            rounds = _rounds(server, args, holds)
            dropped = _dropped(server)
        finally:
            server.stop()
    results = [_summary(rounds, False), _summary(rounds, True)]
    cut = {
        kind: {
            "connections_cut": len(values),
            "deadline_s": TLS_HANDSHAKE_SECONDS if kind == NO_TLS else REQUEST_SECONDS,
            "held_p50_s": round(statistics.median(values), 2) if values else None,
            "held_max_s": round(max(values), 2) if values else None,
        }
        for kind, values in holds.items()
    }
    _print_tables(args.per_kind, results, cut)
    print(f"\nserver's dropped-connection counters: {dropped}")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_dir / f"slow-clients-{stamp}.json"
    out.write_text(
        json.dumps(
            {"args": vars(args), "results": results, "slow_connections": cut, "dropped": dropped},
            indent=2,
        )
    )
    log(f"results written to {out}")
    return 1 if any(row["errors"] for row in results) else 0


if __name__ == "__main__":
    sys.exit(main())
