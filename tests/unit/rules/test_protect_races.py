"""protect-default-deny under concurrency (SPEC 2.3): changes judged against stale caches.

Each worker and replica judges a request against its own cache, which may lag behind
changes admitted a moment earlier elsewhere. These tests replay interleavings: every change
is judged against the initial objects plus only some of the changes committed before it
(the cache sees events in order, so a prefix), with the API server's copy of the object as
`oldObject`, as the API server sends it. Whatever the interleaving, no pod the namespace
isolated at the start may end up open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.policy_support import (
    DENY_ALL,
    DNS_EGRESS,
    created,
    namespace,
    netpol,
    protect,
    request,
    state,
)
from webhook.policy.engine.impact import compare_views
from webhook.policy.model import Direction, Operation
from webhook.policy.rule import Settings
from webhook.policy.rules.require_default_deny import DIRECTIONS
from webhook.state.index import IndexedState

SHAPES: dict[str, dict[str, Any]] = {
    "deny-all": DENY_ALL,
    "deny-ingress": {"podSelector": {}, "policyTypes": ["Ingress"]},
    "deny-egress-but-dns": {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": DNS_EGRESS,
    },
    "web-ingress": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
    "not-db": {
        "podSelector": {
            "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]
        },
        "policyTypes": ["Ingress", "Egress"],
    },
}
WEAKER = {"podSelector": {"matchLabels": {"app": "nothing-runs-this"}}}


@dataclass(frozen=True)
class Change:
    """delete / weaken policy `target` (by index), or create one more of shape `shape`."""

    kind: str
    target: int
    shape: str
    seen: int  # how many of the changes committed so far the judging cache has seen


CHANGE = st.builds(
    Change,
    kind=st.sampled_from(["delete", "delete", "weaken", "create"]),
    target=st.integers(0, 5),
    shape=st.sampled_from(sorted(SHAPES)),
    seen=st.integers(0, 8),
)


def _objects(policies: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [namespace("shop"), *policies.values()]


def _apply(
    policies: dict[str, dict[str, Any]], change: tuple[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    name, obj = change
    out = dict(policies)
    if obj.get("deleted"):
        out.pop(name, None)
    else:
        out[name] = obj
    return out


def _replay(initial: list[str], changes: list[Change]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Judge each change against a stale cache; return the first and last objects."""
    start = {
        f"p{i}": created(netpol(f"p{i}", SHAPES[shape]), i + 1) for i, shape in enumerate(initial)
    }
    current = dict(start)
    committed: list[tuple[str, dict[str, Any]]] = []
    for number, change in enumerate(changes):
        cache = dict(start)
        for done in committed[: min(change.seen, len(committed))]:
            cache = _apply(cache, done)
        indexed = state(*_objects(cache))
        if change.kind == "create":
            name = f"new{number}"
            new = created(netpol(name, SHAPES[change.shape]), 20 + number)
            verdict = protect(request(new, Operation.CREATE), indexed)
            outcome = (name, new)
        else:
            names = sorted(current)
            if not names:
                continue
            name = names[change.target % len(names)]
            old = current[name]  # the API server's copy, whatever the cache holds
            if change.kind == "delete":
                verdict = protect(request(None, Operation.DELETE, old), indexed)
                outcome = (name, {"deleted": True})
            else:
                new = {**old, "spec": WEAKER}
                verdict = protect(request(new, Operation.UPDATE, old), indexed)
                outcome = (name, new)
        if not verdict:
            committed.append(outcome)
            current = _apply(current, outcome)
    return start, current


def _lost(start: dict[str, Any], end: dict[str, Any]) -> list[str]:
    was = state(*_objects(start)).view("shop")
    now = state(*_objects(end)).view("shop")
    return [loss.text for d in Direction if (loss := compare_views(was, now, d)) is not None]


def test_two_deletes_judged_each_with_the_other_present_leave_one() -> None:
    """The scenario of the issue: both default-denies deleted at once, neither cache having
    seen the other delete. One is refused, the namespace stays isolated."""
    start, end = _replay(
        ["deny-all", "deny-all"],
        [Change("delete", 0, "", seen=0), Change("delete", 1, "", seen=0)],
    )
    assert list(end) == ["p1"]  # the newer one is kept
    assert _lost(start, end) == []


def test_replace_then_delete_works_once_the_cache_has_the_replacement() -> None:
    """The documented way to swap a default-deny: apply the new one, then delete the old."""
    start, end = _replay(
        ["deny-all"],
        [Change("create", 0, "deny-all", seen=0), Change("delete", 1, "", seen=1)],
    )
    assert sorted(end) == ["new0"]
    assert _lost(start, end) == []


def test_a_cache_without_the_replacement_refuses_the_delete() -> None:
    """A stale cache that has not seen the replacement yet refuses: safe, and a retry passes."""
    _, end = _replay(
        ["deny-all"],
        [Change("create", 0, "deny-all", seen=0), Change("delete", 0, "", seen=0)],
    )
    assert sorted(end) == ["new0", "p0"]


@settings(max_examples=300, deadline=None)
@given(
    initial=st.lists(st.sampled_from(sorted(SHAPES)), min_size=1, max_size=4),
    changes=st.lists(CHANGE, min_size=1, max_size=7),
)
def test_no_interleaving_against_stale_caches_opens_an_isolated_pod(
    initial: list[str], changes: list[Change]
) -> None:
    """However stale each judging cache is, what was isolated stays isolated."""
    start, end = _replay(initial, changes)
    assert _lost(start, end) == []


INGRESS_ONLY = Settings(exempt_namespaces=frozenset(), values={DIRECTIONS: (Direction.INGRESS,)})
SECURITY = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "Tier",
    "metadata": {"name": "security"},
    "spec": {"order": 100},
}


def _calico(name: str, day: int, **spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"tier": "security", "selector": "all()", "types": ["Ingress"], **spec},
    }
    return created(obj, day)


PASS_ALL = _calico("security.pass-all", 9, order=10, ingress=[{"action": "Pass"}])


def _tiered(lockdown_day: int) -> tuple[IndexedState, dict[str, Any], dict[str, Any]]:
    """shop isolated twice: a lockdown in tier security and a default-deny in the default
    tier; which one is the anchor depends on which is newer."""
    lockdown = _calico("security.lockdown", lockdown_day)
    deny = created(netpol("default-deny", {"podSelector": {}}), 5)
    return state(namespace("shop"), SECURITY, lockdown, deny), lockdown, deny


def test_a_pass_that_relies_on_a_policy_that_may_go_is_refused() -> None:
    """A Pass-all above the default tier is harmless while the default-deny there exists, but
    that default-deny is not the anchor (the newer lockdown is): deleted at the same instant,
    it would leave every pod open. The Pass is refused, saying what it relies on."""
    indexed, _, deny = _tiered(lockdown_day=7)
    assert protect(request(None, Operation.DELETE, deny), indexed, INGRESS_ONLY) == []
    [finding] = protect(request(PASS_ALL, Operation.CREATE), indexed, INGRESS_ONLY)
    assert finding.message.startswith(
        '[protect-default-deny] Creating NetworkPolicy "security.pass-all" in namespace "shop" '
        'is refused: it would leave every pod of namespace "shop" for Ingress isolated only '
        'while NetworkPolicy "default-deny" in namespace "shop" exists'
    ), finding.message
    assert (
        'but one, NetworkPolicy "lockdown" in namespace "shop" (the newest). With that '
        'one alone: NetworkPolicy "pass-all" in namespace "shop" (tier "security") rule '
        "spec.ingress[0] passes it on and no policy in a later tier selects it."
    ) in finding.message


def test_a_pass_onto_the_anchor_is_allowed() -> None:
    """When the default-deny below is the anchor, passing down to it is safe."""
    indexed, lockdown, deny = _tiered(lockdown_day=3)
    assert protect(request(PASS_ALL, Operation.CREATE), indexed, INGRESS_ONLY) == []
    assert protect(request(None, Operation.DELETE, lockdown), indexed, INGRESS_ONLY) == []
    assert protect(request(None, Operation.DELETE, deny), indexed, INGRESS_ONLY) != []


def test_the_pass_and_the_delete_at_the_same_instant_leave_pods_isolated() -> None:
    """Both judged against the same stale cache: at most one of them is admitted, and the
    namespace ends isolated whichever it is."""
    indexed, lockdown, deny = _tiered(lockdown_day=7)
    admitted = [
        name
        for name, req in (
            ("pass", request(PASS_ALL, Operation.CREATE)),
            ("delete", request(None, Operation.DELETE, deny)),
        )
        if not protect(req, indexed, INGRESS_ONLY)
    ]
    assert admitted == ["delete"]
    end = state(namespace("shop"), SECURITY, lockdown)
    assert end.view("shop").decide_any_pod(Direction.INGRESS).isolated
