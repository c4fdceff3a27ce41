"""Where a `/validate` request's CPU goes under load: a table by layer of the stack.

    .venv/bin/python bench/profile_validate.py                 # this tree, Guardrail
    .venv/bin/python bench/profile_validate.py --kind bare     # the bare allow-all endpoint
    .venv/bin/python bench/profile_validate.py --tree /tmp/guardrail-A --seconds 30

Starts the server as bench/ab.py does (gunicorn, TLS, 2 workers x 8 threads, the benchmark's
10,000 namespaces and 30,000 policies), drives it with bench/run.py's keep-alive wrk load and
samples every worker with py-spy (`record --subprocesses --nonblocking --gil --format raw`):
each sample is where the thread holding a worker's GIL is, the Python work that bounds what one
worker can do. (py-spy's default, threads the OS has runnable, counts on a loaded machine the
threads back from a syscall and waiting for a core at that syscall's line: `--cpu` shows it.)
Work outside the GIL (OpenSSL's encryption, the syscalls and the kernel's TCP under them) is
not sampled: it is a few tens of µs per request, measured in isolation (README, Performance).
py-spy is installed into the venv from PyPI when missing; it needs ptrace (root, or
CAP_SYS_PTRACE).

Each sample goes to the layer of its innermost frame that belongs to one (CATEGORIES): the
ssl module is TLS, whatever called it; the logging module is logging even under the view; a
line of the app that calls orjson.loads or orjson.dumps is JSON decode or encode; samples in a
wait (a queue's get, the poller) are left out. The share of samples times the CPU a request
cost in the same window (the server's process tree, from /proc, over wrk's requests) gives
microseconds per request, the work outside the GIL spread over the layers with the rest.
py-spy competes for the cores too and misses samples on a busy machine; shares stay fair.

Prints the table (Markdown) and writes the raw samples and a JSON summary to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import ab  # noqa: E402 - after the sys.path set-up
import run  # noqa: E402 - after the sys.path set-up

PY_SPY = run.VENV_BIN / "py-spy"


@dataclass(frozen=True)
class Frame:
    function: str
    path: str
    line: int


# Layers, innermost first wins. (name, path fragments, functions or None for any).
HTTP_PARSE_FUNCTIONS = frozenset({"create", "base_environ", "default_environ", "proxy_environ"})
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS (OpenSSL via the ssl module, with the socket I/O under it)", ("/ssl.py",)),
    ("logging", ("/logging/", "/webhook/logs.py")),
    ("metrics (prometheus_client)", ("/prometheus_client/",)),
    (
        "judging (admission.judge, policies, state)",
        ("/webhook/admission/judge.py", "/webhook/policy/", "/webhook/state/"),
    ),
    ("review check and response build (admission.review)", ("/webhook/admission/review.py",)),
    ("HTTP parsing (gunicorn request, environ, body reader)", ("/gunicorn/http/",)),
    (
        "WSGI/Flask layer (Flask, Werkzeug, the view's own lines)",
        ("/flask/", "/werkzeug/", "/webhook/app.py", "/bench/bare_app.py"),
    ),
    (
        "event loop, sockets, threads (gthread, DeadlineWorker)",
        (
            "/gunicorn/",
            "/webhook/worker.py",
            "/selectors.py",
            "/socket.py",
            "/threading.py",
            "/concurrent/",
            "/queue.py",
        ),
    ),
)
JSON_DECODE = "JSON decode (orjson.loads)"
JSON_ENCODE = "JSON encode (orjson.dumps)"
HTTP_RESPONSE = "HTTP response (gunicorn status line, headers, write)"
HTTP_PARSE = CATEGORIES[5][0]
FRAMING = "HTTP framing in the event loop (DeadlineWorker's RequestFramer)"
OTHER = "other"
ORDER = (
    CATEGORIES[0][0],
    FRAMING,
    HTTP_PARSE,
    HTTP_RESPONSE,
    CATEGORIES[6][0],
    JSON_DECODE,
    CATEGORIES[4][0],
    CATEGORIES[3][0],
    JSON_ENCODE,
    CATEGORIES[1][0],
    CATEGORIES[2][0],
    CATEGORIES[7][0],
    OTHER,
)
# Waiting, not working: py-spy counts a thread as active while the OS has it runnable, which on a
# loaded machine includes threads woken from these calls but not yet given a core.
IDLE_CALLS = (
    "work_queue.get(block=True)",
    "_selector.poll(",
    "SIG_QUEUE.get(",
    "waiter.acquire(",
    "time.sleep(",
    "select.select(",
)
FRAMER_FUNCTIONS = frozenset(
    {"feed", "_headers", "_framing", "_chunks", "_absorb", "reset", "oversized_head"}
)


@cache
def source_line(path: str, line: int) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()[line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


def parse_frame(text: str) -> Frame | None:
    # py-spy's raw frames: "function (path:line)".
    function, _, where = text.rpartition(" (")
    path, _, line = where.rstrip(")").rpartition(":")
    if not function or not line.isdigit():
        return None
    return Frame(function, path, int(line))


def category(frames: list[Frame]) -> str:
    """The layer of a sample: its innermost frame that belongs to one."""
    for frame in reversed(frames):
        if frame.path.endswith(("/webhook/app.py", "/bench/bare_app.py")):
            text = source_line(frame.path, frame.line)
            if "orjson.loads" in text:
                return JSON_DECODE
            if "orjson.dumps" in text:
                return JSON_ENCODE
        if frame.path.endswith("/gunicorn/http/wsgi.py"):
            return HTTP_PARSE if frame.function in HTTP_PARSE_FUNCTIONS else HTTP_RESPONSE
        if frame.path.endswith("/webhook/worker.py") and frame.function in FRAMER_FUNCTIONS:
            return FRAMING
        for name, fragments in CATEGORIES:
            if any(fragment in frame.path for fragment in fragments):
                return name
    return OTHER


def idle(frames: list[Frame]) -> bool:
    text = source_line(frames[-1].path, frames[-1].line)
    return any(call in text for call in IDLE_CALLS)


def read_raw(path: Path) -> tuple[Counter[str], Counter[str], int, int]:
    """Samples per layer, per innermost frame (for the top list), in all, and idle ones."""
    layers: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    waiting = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in (parse_frame(t) for t in stack.split(";")) if f is not None]
        if not frames:
            continue
        if idle(frames):
            waiting += count
            continue
        layers[category(frames)] += count
        leaf = frames[-1]
        leaves[f"{leaf.function} ({short(leaf.path)}:{leaf.line})"] += count
        total += count
    return layers, leaves, total, waiting


def short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/", "/webhook/", "/bench/"):
        if marker in path:
            head = (
                "" if marker in ("/site-packages/", "/lib/python3.11/") else marker.strip("/") + "/"
            )
            return head + path.split(marker, 1)[1]
    return path


def ensure_py_spy() -> None:
    if not PY_SPY.exists():
        run.log("installing py-spy into the venv")
        subprocess.run([run.PYTHON, "-m", "pip", "install", "--quiet", "py-spy"], check=True)


def profile(args: argparse.Namespace) -> dict[str, Any]:
    ensure_py_spy()
    wrk = run.ensure_wrk()
    work: Path = args.work
    (work / "logs").mkdir(parents=True, exist_ok=True)
    certs, state, bodies = ab.prepare(work, args.namespaces, args.reviews)
    target = ab.Target(args.kind, args.kind, args.tree.resolve())
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = args.out / f"profile-{args.kind}-{stamp}.txt"
    args.out.mkdir(parents=True, exist_ok=True)
    with ab.start(target, certs, state, bodies[0].read_bytes(), args, work / "logs") as running:
        run.log("warming up")
        run.run_wrk(
            wrk,
            running.url,
            bodies,
            seconds=3,
            threads=1,
            connections=args.connections,
            server_pid=running.proc.pid,
        )
        load_before = run.load_average()
        spy = subprocess.Popen(
            [
                str(PY_SPY),
                "record",
                "--pid",
                str(running.proc.pid),
                "--subprocesses",
                "--full-filenames",
                "--nonblocking",
                *(["--gil"] if args.gil else []),
                "--format",
                "raw",
                "--rate",
                str(args.rate),
                "--duration",
                str(int(args.seconds) + 2),
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # py-spy attaches to the master and its workers
        found: dict[str, Any] = {}

        def load() -> None:
            found.update(
                run.run_wrk(
                    wrk,
                    running.url,
                    bodies,
                    seconds=args.seconds,
                    threads=1,
                    connections=args.connections,
                    server_pid=running.proc.pid,
                )
            )

        driver = threading.Thread(target=load)
        driver.start()
        driver.join()
        _, err = spy.communicate(timeout=args.seconds + 30)
        if spy.returncode != 0 or not raw.exists():
            raise SystemExit(f"bench: py-spy failed ({spy.returncode}): {err.decode()[-2000:]}")
    layers, leaves, total, waiting = read_raw(raw)
    cpu_us = 1e6 * found["server_cpu_s"] / found["requests"]
    # The CPU measured, spread over the layers by their share of the samples.
    per_sample = cpu_us / total
    rows = [
        {
            "layer": name,
            "samples": layers.get(name, 0),
            "share": layers.get(name, 0) / total,
            "us_per_request": per_sample * layers.get(name, 0),
        }
        for name in ORDER
    ]
    return {
        "kind": args.kind,
        "tree": str(target.tree),
        "started": stamp,
        "load_average": [load_before, run.load_average()],
        "wrk": {k: v for k, v in found.items() if k != "error_detail"},
        "cpu_us_per_request": cpu_us,
        "samples": total,
        "idle_samples": waiting,
        "gil": args.gil,
        "rate": args.rate,
        "layers": rows,
        "top": leaves.most_common(args.top),
        "raw": str(raw),
    }


def table(result: dict[str, Any]) -> str:
    w = result["wrk"]
    sampled = "GIL held" if result["gil"] else "on CPU"
    lines = [
        f"{result['kind']} ({result['tree']}): {w['requests']} requests in the profiled window, "
        f"{w['rps']:.0f}/s while sampled, server CPU {result['cpu_us_per_request']:.0f} µs per "
        f"request; {result['samples']} samples with the {sampled} "
        f"({result['idle_samples']} more in a wait, left out); "
        f"load average {result['load_average'][0]} → {result['load_average'][1]}",
        "",
        f"| layer | share of samples ({sampled}) | µs per request |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {r['layer']} | {100 * r['share']:.1f} % | {r['us_per_request']:.0f} |"
        for r in result["layers"]
    ]
    lines += [
        f"| **all** | 100 % | {result['cpu_us_per_request']:.0f} |",
        "",
        "innermost frames, most sampled:",
    ]
    lines += [f"  {100 * n / result['samples']:5.1f} %  {leaf}" for leaf, n in result["top"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=ab.KINDS, default="guardrail")
    parser.add_argument("--tree", type=Path, default=BENCH.parent, help="source tree to run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the profile")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--cpu",
        dest="gil",
        action="store_false",
        help="sample threads the OS has runnable (py-spy's default) instead of the GIL holder; "
        "on a loaded machine this counts threads waiting for a core after a syscall",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--namespaces", type=int, default=run.STATE_NAMESPACES)
    parser.add_argument(
        "--reviews",
        type=ab.review_numbers,
        help="which of the ten reviews to rotate, e.g. 1-7 (default: all, as bench/run.py)",
    )
    parser.add_argument("--top", type=int, default=25, help="innermost frames to list")
    parser.add_argument("--work", type=Path, default=BENCH / "results" / "ab-work")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    result = profile(args)
    path = args.out / f"profile-{args.kind}-{result['started']}.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(table(result))
    print(f"\nJSON: {path}\nraw samples: {result['raw']}")


if __name__ == "__main__":
    main()
