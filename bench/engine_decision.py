"""Isolation-engine decision time with 1,000 GlobalNetworkPolicies and 50 tiers (SPEC 6).

For each size N: N namespaces (labels team=t<i % 50>), each with a default-deny and two
role-scoped NetworkPolicies; 50 Calico tiers (orders 10..500, every other one Pass); 1,000
GlobalNetworkPolicies, each in one tier, selecting the namespaces of one team and the pods of
one role, with an Allow on a port. The state is Guardrail's own IndexedState, as the webhook
holds it. Timed: require-default-deny's decision for a Pod (both directions) in 1,000 sampled
namespaces, after one pass that builds their views (as a running webhook has them):
- the walk: each round's Pod in a namespace has a role (a label the policies read) new to
  it, so no decision is one the view has kept;
- kept: the last round's Pods again with a new `pod-template-hash`, which no policy reads, as
  a rollout's or a ReplicaSet's later replicas are (a view keeps the decisions of its last
  label sets, by the labels its policies read: engine/stack.py MAX_DECIDED).

    python bench/engine_decision.py 100 100000    # one JSON object per size
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from webhook.policy.model import Direction  # noqa: E402 - after the sys.path set-up
from webhook.state.index import IndexedState  # noqa: E402 - after the sys.path set-up

TIERS = 50
GLOBALS = 1000
SAMPLED = 1000
ROUNDS = 5
CALICO = "projectcalico.org/v3"


def build(size: int) -> IndexedState:
    state = IndexedState()
    for t in range(TIERS):
        state.upsert(
            {
                "apiVersion": CALICO,
                "kind": "Tier",
                "metadata": {"name": f"tier-{t:02d}"},
                "spec": {"order": 10 * (t + 1), "defaultAction": "Pass" if t % 2 else "Deny"},
            }
        )
    for g in range(GLOBALS):
        state.upsert(
            {
                "apiVersion": CALICO,
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": f"tier-{g % TIERS:02d}.g{g}"},
                "spec": {
                    "tier": f"tier-{g % TIERS:02d}",
                    "order": g,
                    "namespaceSelector": f"team == 't{g % 50}'",
                    "selector": f"role == 'r{g % 20}'",
                    "types": ["Ingress"],
                    "ingress": [
                        {"action": "Allow", "protocol": "TCP", "destination": {"ports": [80]}}
                    ],
                },
            }
        )
    for i in range(size):
        ns = f"ns-{i:06d}"
        state.upsert(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"team": f"t{i % 50}"}},
            }
        )
        policies = [
            ("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
            (
                "web",
                {
                    "podSelector": {"matchLabels": {"role": "r1"}},
                    "ingress": [{"ports": [{"port": 8080}]}],
                },
            ),
            (
                "db",
                {
                    "podSelector": {"matchLabels": {"role": "r2"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "r1"}}}]}],
                },
            ),
        ]
        for name, spec in policies:
            state.upsert(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": spec,
                }
            )
    return state


def measure(size: int) -> dict[str, Any]:
    state = build(size)
    rng = random.Random(size)  # noqa: S311 - a reproducible sample, not a secret
    sampled = [f"ns-{rng.randrange(size):06d}" for _ in range(SAMPLED)]
    directions = (Direction.INGRESS, Direction.EGRESS)
    pods = [{"app": "a", "role": f"r{k % 20}"} for k in range(SAMPLED)]
    started = time.perf_counter()
    for ns in sampled:
        state.view(ns)
    warm = (time.perf_counter() - started) / SAMPLED
    timings: list[float] = []
    kept: list[float] = []
    gc.disable()
    try:
        for round_ in range(ROUNDS + 1):
            again = round_ == ROUNDS
            shift = min(round_, ROUNDS - 1)
            for k, ns in enumerate(sampled):
                view = state.view(ns)
                labels = pods[(k + shift) % len(pods)]
                pod = {**labels, "pod-template-hash": f"h{round_}"}
                began = time.perf_counter()
                decisions = view.decide_all(view.endpoint(pod, "default"), directions)
                (kept if again else timings).append(time.perf_counter() - began)
                assert all(d.isolated for d in decisions), (ns, labels)
    finally:
        gc.enable()
    timings.sort()
    kept.sort()
    return {
        "namespaces": size,
        "global_policies": GLOBALS,
        "tiers": TIERS,
        "decision_p50_us": round(statistics.median(timings) * 1e6, 1),
        "decision_p99_us": round(timings[int(len(timings) * 0.99)] * 1e6, 1),
        "kept_p50_us": round(statistics.median(kept) * 1e6, 1),
        "kept_p99_us": round(kept[int(len(kept) * 0.99)] * 1e6, 1),
        "first_view_ms": round(warm * 1e3, 2),
    }


def main(sizes: list[int]) -> None:
    for size in sizes:
        print(json.dumps(measure(size)), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 100_000])
