"""protect-default-deny keeps what a change to a namespace's views loses across requests
(rules/protect_default_deny.py `_JUDGED`): judged again, the same change gets the same answer,
and the answer of one namespace is never another's, nor one of a namespace since changed."""

from __future__ import annotations

from tests.unit.policy_support import (
    DENY_ALL,
    created,
    namespace,
    netpol,
    protect,
    request,
    state,
)
from webhook.policy.model import Operation

OPEN_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}


def _delete(name: str, ns: str) -> list[str]:
    old = netpol(name, DENY_ALL, ns)
    indexed = state(namespace(ns), old)
    return [f.message for f in protect(request(None, Operation.DELETE, old), indexed)]


def test_the_same_denial_judged_twice_says_the_same() -> None:
    first = _delete("default-deny", "shop")
    assert first
    assert "shop" in first[0]
    assert _delete("default-deny", "shop") == first


def test_a_namespace_of_the_same_shape_is_named_in_its_own_message() -> None:
    shop = _delete("default-deny", "shop")
    cart = _delete("default-deny", "cart")
    assert shop
    assert cart
    assert '"cart"' in cart[0]
    assert '"shop"' not in cart[0]
    assert shop[0].replace('"shop"', '"cart"') == cart[0]


def test_a_change_judged_again_after_the_namespace_changed_is_judged_anew() -> None:
    deny = created(netpol("default-deny", DENY_ALL, "memo"), 1)
    second = created(netpol("deny-again", DENY_ALL, "memo"), 2)
    delete = request(None, Operation.DELETE, deny)
    # With a second default-deny, deleting the older one (not the anchor) is harmless...
    assert protect(delete, state(namespace("memo"), deny, second)) == []
    # ...and alone it is refused, though the request is the same.
    assert protect(delete, state(namespace("memo"), deny))
    # A policy opening ingress beside the two: deleting the newer one, the anchor, is refused.
    opened = created(netpol("open", OPEN_INGRESS, "memo"), 3)
    anchor = request(None, Operation.DELETE, second)
    assert protect(anchor, state(namespace("memo"), deny, second)) != []
    assert protect(anchor, state(namespace("memo"), deny, second, opened)) != []
