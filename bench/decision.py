"""Decision time and cache memory against cluster sizes, in process (no HTTP).

For each size N: N namespaces and 3N policies (bench/workload.py's mix) in an IndexedState.
- memory: tracemalloc's count of what the state holds (objects as read from files or the
  API, the index, and the memoised view of every namespace: `bytes`; the index alone:
  `bytes_without_providers`);
- decision: `admission.judge.Judge.decide` (exemptions, policies, modes) over the 10
  benchmark requests, after a first pass (warm: views memoised, as in a running webhook),
  the state frozen out of the collector's reach as `serve` does;
- first decision in a namespace: a Pod CREATE in namespaces not asked about yet (the
  view is built then memoised).

    python bench/decision.py 100 1000 10000 100000   # prints one JSON object per size
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import workload  # noqa: E402  (after the path set-up above)

from webhook.admission import review  # noqa: E402 - after the sys.path set-up
from webhook.admission.judge import Judge  # noqa: E402 - after the sys.path set-up
from webhook.config import Config  # noqa: E402 - after the sys.path set-up
from webhook.policy.model import Request  # noqa: E402 - after the sys.path set-up
from webhook.state.index import IndexedState  # noqa: E402 - after the sys.path set-up

ROUNDS = 7
LOOPS = 300  # passes over the 10 requests per round
FRESH = 300  # namespaces asked about for the first time


def build(size: int) -> IndexedState:
    state = IndexedState()
    for obj in workload.state_objects(size):
        state.upsert(obj)
    return state


def memory(size: int) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    state = build(size)
    gc.collect()
    loaded = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for ns in state.namespaces():
        state.view(ns.name)
    warm_seconds = time.perf_counter() - started
    gc.collect()
    warmed = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    counts = state.counts()
    del state
    return {
        "namespaces": counts["namespaces"],
        "policies": counts["policies"],
        "bytes": warmed,
        "bytes_without_providers": loaded,
        "bytes_per_policy": warmed / counts["policies"],
        "bytes_per_object": warmed / (counts["policies"] + counts["namespaces"]),
        "providers_all_namespaces_s": warm_seconds,
    }


def judge(req: Request, judging: Judge) -> bool:
    return judging.decide(req).allowed


def timing(size: int) -> dict[str, Any]:
    state = build(size)
    # As `serve` does before it forks: the collector no longer walks the state (a full
    # collection over hundreds of thousands of objects would land in some decision's time).
    gc.collect()
    gc.freeze()
    config = Config()
    judging = Judge(config, state)
    requests = []
    for label, doc, allowed in workload.reviews(size):
        req = review.parse(doc).request
        got = judge(req, judging)
        assert got == allowed, f"{label}: expected allowed={allowed}, got {got}"
        requests.append(req)
    per_round = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(LOOPS):
            for req in requests:
                judge(req, judging)
        per_round.append((time.perf_counter() - started) / (LOOPS * len(requests)))
    # First decision in a namespace: pods in namespaces nobody has asked about yet.
    asked = {r.namespace for r in requests}
    fresh_ns = [
        workload.ns_name(i)
        for i in range(0, size, max(size // (FRESH * 2), 1))
        if workload.ns_name(i) not in asked
    ][:FRESH]
    pod = requests[0]
    fresh = [
        Request(
            uid="x",
            kind="Pod",
            group="",
            version="v1",
            namespace=ns,
            name="web",
            operation=pod.operation,
            obj={**dict(pod.obj or {}), "metadata": {"name": "web", "namespace": ns}},
        )
        for ns in fresh_ns
    ]
    started = time.perf_counter()
    for req in fresh:
        judge(req, judging)
    first = (time.perf_counter() - started) / len(fresh)
    gc.unfreeze()
    return {
        "decision_us": statistics.median(per_round) * 1e6,
        "decision_us_best": min(per_round) * 1e6,
        "first_in_namespace_us": first * 1e6,
    }


def main(sizes: list[int]) -> None:
    for size in sizes:
        result = {"size": size, **memory(size), **timing(size)}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000, 100000])
