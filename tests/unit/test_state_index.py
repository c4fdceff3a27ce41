"""The in-memory index behind every state source."""

from __future__ import annotations

import threading
from typing import Any

from webhook.policy.model import Direction
from webhook.state.index import IndexedState

DEFAULT_DENY: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "shop", "labels": {"tier": "base"}},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [{"ports": [{"protocol": "UDP", "port": 53}]}],
    },
}


def test_policies_come_back_as_they_went_in() -> None:
    """A stored policy (kept compactly) reads back equal, and still provides its default-deny."""
    state = IndexedState()
    state.upsert(DEFAULT_DENY)
    assert state.policies_in("shop") == (DEFAULT_DENY,)
    assert isolated(state, "shop") == {Direction.INGRESS, Direction.EGRESS}


def test_replacing_and_removing_a_policy_updates_the_answer() -> None:
    """An update that weakens the policy, then its removal, change the memoised providers."""
    state = IndexedState()
    state.upsert(DEFAULT_DENY)
    assert isolated(state, "shop") == {Direction.INGRESS, Direction.EGRESS}
    weakened = {**DEFAULT_DENY, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    state.upsert(weakened)
    assert isolated(state, "shop") == {Direction.INGRESS}
    state.remove(weakened)
    assert isolated(state, "shop") == set()
    assert state.policies_in("shop") == ()


def test_keys_that_are_not_strings_survive() -> None:
    """An object whose keys YAML made numbers (or anything not JSON) is still stored and read."""
    odd: dict[Any, Any] = {
        **DEFAULT_DENY,
        "metadata": {**DEFAULT_DENY["metadata"]},
        "spec": {**DEFAULT_DENY["spec"], 7: {1.5: None}},
    }
    state = IndexedState()
    state.upsert(odd)
    [stored] = state.policies_in("shop")
    assert stored["metadata"]["name"] == "default-deny"
    assert isolated(state, "shop") == {Direction.INGRESS, Direction.EGRESS}


SHOP: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


def test_removing_a_namespace_drops_its_policies_unless_only_the_record_goes() -> None:
    """remove() of a Namespace takes its policies with it; remove_namespace_only() keeps them
    (the live cache: they leave through their own watch)."""
    state = IndexedState()
    state.upsert(SHOP)
    state.upsert(DEFAULT_DENY)
    state.remove_namespace_only("shop")
    assert state.namespace("shop") is None
    assert state.policies_in("shop") == (DEFAULT_DENY,)
    assert isolated(state, "shop") == {Direction.INGRESS, Direction.EGRESS}
    state.upsert(SHOP)
    state.remove(SHOP)
    assert state.policies_in("shop") == ()


def test_a_batch_of_writes_is_seen_whole() -> None:
    """A reader on another thread waits for a batch: it sees neither policy or both."""
    state = IndexedState()
    other = {**DEFAULT_DENY, "metadata": {**DEFAULT_DENY["metadata"], "name": "other"}}
    seen: list[int] = []
    with state.batch():
        state.upsert(DEFAULT_DENY)
        reader = threading.Thread(target=lambda: seen.append(len(state.policies_in("shop"))))
        reader.start()
        reader.join(0.2)
        assert seen == []  # still waiting for the batch
        state.upsert(other)
    reader.join(5)
    assert seen == [2]


def isolated(state: IndexedState, namespace: str) -> set[Direction]:
    """The directions in which every pod of the namespace is isolated (the state's view)."""
    view = state.view(namespace)
    return {d for d in Direction if view.decide_any_pod(d).isolated}
