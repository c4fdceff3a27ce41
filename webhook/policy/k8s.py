"""Kubernetes NetworkPolicy (networking.k8s.io/v1): defaulting, selectors, unrestricted rules.

SPEC 2.5 for this flavor: the effective `policyTypes` after the API server's defaulting, which
rules admit all traffic, and for which directions a policy is a default-deny of its whole
namespace.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from webhook.policy.model import Direction, Obj

# (direction, rules key, peers key) of a Kubernetes NetworkPolicy spec.
_K8S_RULES = ((Direction.INGRESS, "ingress", "from"), (Direction.EGRESS, "egress", "to"))


def effective_policy_types(spec: object) -> tuple[Direction, ...]:
    """The directions a NetworkPolicy spec isolates, after the API server's defaulting.

    An explicit non-empty `policyTypes` is taken as is (unknown entries ignored). Omitted (or
    empty) means `[Ingress]`, plus `Egress` when `egress` holds at least one rule — exactly
    the API server's `len(spec.Egress) != 0`, so `egress: []` alone does not isolate Egress.
    """
    if not isinstance(spec, Mapping):
        return (Direction.INGRESS,)
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        found: list[Direction] = []
        for item in types:
            if item in (Direction.INGRESS, Direction.EGRESS) and item not in found:
                found.append(Direction(item))
        return tuple(found)
    egress = spec.get("egress")
    if isinstance(egress, list) and egress:
        return (Direction.INGRESS, Direction.EGRESS)
    return (Direction.INGRESS,)


def is_empty_selector(selector: object) -> bool:
    """True for a label selector that selects everything: absent, null, or `{}`.

    `matchLabels: {}` and `matchExpressions: []` (or null) still select everything. A selector
    that is not a mapping is malformed and selects nothing we can vouch for.
    """
    if selector is None:
        return True
    if not isinstance(selector, Mapping):
        return False
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def unrestricted_rules(obj: Obj) -> list[tuple[Direction, int]]:
    """(direction, index) of each rule of a NetworkPolicy that admits all traffic.

    A rule is unrestricted when it has no `ports` and its peer list (`from` / `to`) is absent or
    empty, or holds a peer that matches everything: `namespaceSelector: {}` with no or an empty
    `podSelector`, or an `ipBlock` of `0.0.0.0/0` or `::/0` (any /0) without `except`.
    A null rule (`ingress: [null]`, `ingress: [{}]`) is an empty rule: it allows all.
    """
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    found: list[tuple[Direction, int]] = []
    for direction, rules_key, peers_key in _K8S_RULES:
        rules = spec.get(rules_key)
        if not isinstance(rules, list):
            continue
        found.extend(
            (direction, index)
            for index, rule in enumerate(rules)
            if _is_unrestricted_rule(rule, peers_key)
        )
    return found


def _is_unrestricted_rule(rule: object, peers_key: str) -> bool:
    if rule is None:
        rule = {}
    if not isinstance(rule, Mapping):
        return False
    if rule.get("ports"):
        return False
    peers = rule.get(peers_key)
    if not peers:
        return True
    return isinstance(peers, list) and any(_peer_matches_everything(peer) for peer in peers)


def _peer_matches_everything(peer: object) -> bool:
    if not isinstance(peer, Mapping):
        return False
    block = peer.get("ipBlock")
    if isinstance(block, Mapping) and not block.get("except"):
        cidr = block.get("cidr")
        if isinstance(cidr, str):
            try:
                # Host bits are allowed by the API server ("10.0.0.0/0"); /0 is everything.
                if ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0:
                    return True
            except ValueError:
                return False
    # `namespaceSelector: null` means absent (the policy's own namespace), not "all".
    namespaces = peer.get("namespaceSelector")
    return (
        isinstance(namespaces, Mapping)
        and is_empty_selector(namespaces)
        and is_empty_selector(peer.get("podSelector"))
    )


def k8s_provided_directions(obj: Obj) -> frozenset[Direction]:
    """Directions for which a NetworkPolicy is a default-deny of its whole namespace.

    Needs an empty `podSelector` (absent counts: the API server stores `{}`), the direction in
    the effective policyTypes, and no unrestricted rule for it. Rules with peers or ports
    (e.g. DNS egress on port 53) do not undo the default-deny.
    """
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping) or not is_empty_selector(spec.get("podSelector")):
        return frozenset()
    reopened = {direction for direction, _ in unrestricted_rules(obj)}
    return frozenset(d for d in effective_policy_types(spec) if d not in reopened)
