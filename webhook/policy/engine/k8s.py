"""Kubernetes `networking.k8s.io/v1` NetworkPolicy, compiled.

Semantics (SPEC 2.5, 2.6): the policy selects pods of its own namespace by `podSelector`
(absent: `{}`, every pod); it isolates the directions of its effective `policyTypes`
(omitted or empty: `[Ingress]`, plus `Egress` when `egress` holds at least one rule, exactly
the API server's defaulting); every rule is an Allow; NetworkPolicies belong to Calico's
`default` tier at order 1000. A rule with non-empty `ports` is restricted. Peers:

* absent or empty `from` / `to`: every source or destination, both unnamed peers;
* `namespaceSelector` (+ optional `podSelector`): the fresh pod when both hold for it (its
  namespace has only `kubernetes.io/metadata.name: <fresh>`, the pod no labels);
* `podSelector` alone: pods of the policy's own namespace, never the fresh pod;
* `ipBlock`s: by the union of each `cidr` minus its `except` (nets.py); whole-family
  coverage matches both peers (pod IPs are addresses too), near-all coverage is unknown.

Unreadable parts never raise and are never ignored: an unreadable `podSelector` makes the
selection unknown; an unreadable rule or peer may match anything, so it can only prevent
a verdict of isolated, never produce one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from webhook.policy.engine.common import (
    BOTH,
    DIRECTIONS,
    fingerprint,
    identity,
    meta_of,
    shared_guard,
    shared_rule,
    shared_rules,
    text,
    unreadable_rule,
    with_home,
)
from webhook.policy.engine.core import (
    DEFAULT_TIER,
    FRESH_NAMESPACE_VIEW,
    FRESH_POD_VIEW,
    Action,
    CompiledPolicy,
    Context,
    Guard,
    Predicate,
    Ref,
    Rule,
    Tri,
    always,
    or3,
)
from webhook.policy.engine.nets import coverage
from webhook.policy.engine.select import Matcher, compile_label_selector, label_selector_guard
from webhook.policy.model import Direction, Obj
from webhook.policy.objects import K8S

K8S_ORDER = 1000.0
INGRESS_ONLY = frozenset({Direction.INGRESS})
# One shared set per combination, rather than one per policy.
_TYPES = {t: t for t in (frozenset(), INGRESS_ONLY, frozenset({Direction.EGRESS}), BOTH)}
_PEERS_KEY = {Direction.INGRESS: "from", Direction.EGRESS: "to"}


def effective_policy_types(spec: Mapping[str, Any]) -> frozenset[Direction] | None:
    """The directions the policy isolates after defaulting; None when `policyTypes` is bad."""
    types = spec.get("policyTypes")
    if types is None or types == []:
        egress = spec.get("egress")
        if isinstance(egress, list) and egress:
            return BOTH
        return INGRESS_ONLY
    if not isinstance(types, list):
        return None
    found = set()
    for item in types:
        if item not in (Direction.INGRESS, Direction.EGRESS):
            return None
        found.add(Direction(item))
    return _TYPES[frozenset(found)]


def compile_k8s(obj: Obj, default_namespace: str = "") -> CompiledPolicy:
    """Compile one NetworkPolicy; never raises, whatever the object holds."""
    meta = meta_of(obj)
    name = text(meta.get("name"))
    # A namespaced object with no namespace lands where kubectl would put it.
    home = text(meta.get("namespace")) or default_namespace or "default"
    ref = Ref("NetworkPolicy", home, name, K8S)
    key = identity(obj, f"{K8S}/{home}/{name}")
    raw_spec = obj.get("spec") if isinstance(obj, Mapping) else None
    spec: Mapping[str, Any] | None = {} if raw_spec is None else raw_spec
    if not isinstance(spec, Mapping):
        return _unreadable(key, ref, home, "spec")
    types = effective_policy_types(spec)
    pod_selector = spec.get("podSelector")
    matcher, literals, readable = compile_label_selector(
        {} if pod_selector is None else pod_selector
    )
    selection = with_home(home, _on_pods(matcher) if readable else _UNKNOWN)
    if types is None:
        # Which directions it isolates is not known: it may isolate none, or allow anything.
        return _unreadable(key, ref, home, "spec.policyTypes", selection)
    rules: dict[Direction, tuple[Rule, ...]] = {}
    for direction, field in DIRECTIONS:
        if direction in types:
            rules[direction] = _rules(spec.get(field), field, _PEERS_KEY[direction])
    return CompiledPolicy(
        key=key,
        ref=ref,
        tier=DEFAULT_TIER,
        order=K8S_ORDER,
        directions=types,
        rules=rules,
        selection=selection,
        home=home,
        fingerprint=fingerprint(K8S, home, spec),
        shape=fingerprint(K8S, name, spec),
        labels=_labels(obj),
        pod_literals={k: frozenset(v) for k, v in literals.items()},
        guard=_guard(pod_selector) if readable else None,
    )


def _guard(selector: object) -> Guard | None:
    found = label_selector_guard(selector)
    return shared_guard(Guard("pod", found[0], found[1])) if found else None


def _labels(obj: Obj) -> dict[str, str]:
    raw = meta_of(obj).get("labels")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


_UNKNOWN = always(None)


@functools.lru_cache(maxsize=16384)
def _on_pods(matcher: Matcher) -> Predicate:
    def pods(ctx: Context) -> Tri:
        return matcher(ctx.pod_view)

    return pods


def _unreadable(
    key: str, ref: Ref, home: str, path: str, selection: Predicate | None = None
) -> CompiledPolicy:
    return CompiledPolicy(
        key=key,
        ref=ref,
        tier=DEFAULT_TIER,
        order=K8S_ORDER,
        directions=BOTH,
        rules={d: (unreadable_rule(path),) for d in BOTH},
        selection=selection or with_home(home, _UNKNOWN),
        home=home,
        fingerprint=fingerprint(K8S, home, path, repr(ref)),
    )


def _rules(raw: object, field: str, peers_key: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return (unreadable_rule(f"spec.{field}"),)
    return shared_rules(
        tuple(shared_rule(_rule(r, f"spec.{field}[{i}]", peers_key)) for i, r in enumerate(raw))
    )


def _rule(raw: object, path: str, peers_key: str) -> Rule:  # noqa: PLR0912 - one branch per peer field of the API
    rule = {} if raw is None else raw  # `ingress: [null]` is an empty rule: it allows all
    if not isinstance(rule, Mapping):
        return unreadable_rule(path)
    ports = rule.get("ports")
    if ports is not None and not isinstance(ports, list):
        return unreadable_rule(path)
    restricted = bool(ports)
    peers = rule.get(peers_key)
    if not peers:
        return Rule(Action.ALLOW, path, restricted, outside=True, fresh=True)
    if not isinstance(peers, list):
        return unreadable_rule(path)
    blocks: list[tuple[object, list[object]]] = []
    fresh: Tri = False
    unreadable = False
    for peer in peers:
        if not isinstance(peer, Mapping):
            unreadable = True
            continue
        block = peer.get("ipBlock")
        namespaces = peer.get("namespaceSelector")
        pods = peer.get("podSelector")
        if block is not None:
            excepts = block.get("except") if isinstance(block, Mapping) else None
            if (
                not isinstance(block, Mapping)
                or namespaces is not None
                or pods is not None
                or not isinstance(excepts, list | None)
            ):
                unreadable = True
                continue
            blocks.append((block.get("cidr"), list(excepts or [])))
        elif namespaces is not None:
            ns_match, _, ns_ok = compile_label_selector(namespaces)
            pod_match, _, pod_ok = compile_label_selector({} if pods is None else pods)
            if not (ns_ok and pod_ok):
                unreadable = True
                continue
            hit = ns_match(FRESH_NAMESPACE_VIEW)
            fresh = or3(fresh, hit if hit is False else pod_match(FRESH_POD_VIEW))
        elif pods is None:
            unreadable = True  # a peer must name something: the API server refuses `{}`
    outside: Tri = False
    near_all = False
    if blocks:
        cover = coverage(blocks)
        outside = cover.match()
        near_all = cover.near_all
        fresh = or3(fresh, outside)
    if unreadable:
        outside = or3(outside, None)
        fresh = or3(fresh, None)
    return Rule(Action.ALLOW, path, restricted, outside, fresh, near_all=near_all)
