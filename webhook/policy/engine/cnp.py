"""Cluster-wide admin policies: ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) and
AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1), compiled.

Placement (SPEC 2.6): `tier: Admin` CNPs and ANPs sit in Calico's `kube-admin` tier,
`tier: Baseline` CNPs and the BANP in `kube-baseline`, ordered by `priority` (lower first;
the singleton BANP after every Baseline CNP), which is how Calico 3.32 maps them and gives
SPEC's layer order on any implementation. Those tiers' default action is Pass, so these
policies isolate nothing by themselves: only their rules decide. Actions: CNP Accept / Deny
/ Pass, ANP Allow / Deny / Pass, BANP Allow / Deny. `protocols` (v1alpha2) and `ports`
(v1alpha1) restrict a rule.

Subject: `namespaces` (a label selector over the namespace's labels) or `pods`
(`namespaceSelector` + `podSelector`), exactly one. Peers: `namespaces` and `pods` match the
fresh pod when their selectors hold for it and never an outside address; egress `networks`
match both unnamed peers by coverage (the API says they match in-cluster traffic too);
`nodes` and `domainNames` match neither. Host-network pods are never selected (the caller
skips them).

Unreadable parts never raise: an unreadable subject is an unknown selection, an unreadable
rule or peer may match anything and allow it (the API's own fail-closed guidance for Deny
rules would only make the real dataplane stricter than the engine assumes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.policy.engine.common import (
    DIRECTIONS,
    fingerprint,
    identity,
    meta_of,
    number,
    text,
    unreadable_rule,
)
from webhook.policy.engine.core import (
    FRESH_NAMESPACE_VIEW,
    FRESH_POD_VIEW,
    KUBE_ADMIN,
    KUBE_BASELINE,
    Action,
    CompiledPolicy,
    Context,
    Guard,
    Predicate,
    Ref,
    Rule,
    Tri,
    always,
    and3,
    or3,
)
from webhook.policy.engine.nets import coverage
from webhook.policy.engine.select import compile_label_selector, label_selector_guard
from webhook.policy.model import Direction, Obj
from webhook.policy.objects import ANP, BANP, group_of

CNP = "cnp"
GROUP = "policy.networking.k8s.io"
BANP_ORDER = 1001.0  # after every Baseline CNP (priorities are 0..1000)
_PEERS_KEY = {Direction.INGRESS: "from", Direction.EGRESS: "to"}
_ACTIONS: Mapping[str, Mapping[str, Action]] = {
    CNP: {"Accept": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS},
    ANP: {"Allow": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS},
    BANP: {"Allow": Action.ALLOW, "Deny": Action.DENY},
}
_KINDS = {
    "ClusterNetworkPolicy": CNP,
    "AdminNetworkPolicy": ANP,
    "BaselineAdminNetworkPolicy": BANP,
}


def flavor_of_admin(obj: Obj) -> str | None:
    api_version = obj.get("apiVersion") if isinstance(obj, Mapping) else None
    if not isinstance(api_version, str) or group_of(api_version) != GROUP:
        return None
    kind = obj.get("kind")
    return _KINDS.get(kind) if isinstance(kind, str) else None


def compile_admin(obj: Obj) -> CompiledPolicy | None:
    """Compile a CNP, ANP or BANP; None for any other object. Never raises."""
    flavor = flavor_of_admin(obj)
    if flavor is None:
        return None
    meta = meta_of(obj)
    name = text(meta.get("name"))
    kind = str(obj.get("kind"))
    raw_spec = obj.get("spec")
    spec: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
    tier, label, order = _placement(flavor, spec)
    ref = Ref(kind, "", name, flavor)
    base: dict[str, Any] = {
        "key": identity(obj, f"{flavor}/{name}"),
        "ref": ref,
        "tier": tier,
        "order": order,
        "label": label,
        "fingerprint": fingerprint(flavor, raw_spec if isinstance(raw_spec, Mapping) else ""),
        "shape": fingerprint(flavor, name, raw_spec if isinstance(raw_spec, Mapping) else ""),
    }
    selection, literals, guard = _subject(spec.get("subject"))
    if not isinstance(raw_spec, Mapping) or tier is None:
        both = frozenset(Direction)
        return CompiledPolicy(
            tier=tier or KUBE_ADMIN,
            directions=both,
            rules={d: (unreadable_rule("spec"),) for d in both},
            selection=always(None),
            **{k: v for k, v in base.items() if k != "tier"},
        )
    rules: dict[Direction, tuple[Rule, ...]] = {}
    for direction, field in DIRECTIONS:
        raw_rules = spec.get(field)
        if raw_rules is None or raw_rules == []:
            continue
        if not isinstance(raw_rules, list):
            rules[direction] = (unreadable_rule(f"spec.{field}"),)
            continue
        rules[direction] = tuple(
            _rule(flavor, rule, direction, f"spec.{field}[{i}]") for i, rule in enumerate(raw_rules)
        )
    return CompiledPolicy(
        directions=frozenset(rules),
        rules=rules,
        selection=selection,
        pod_literals=literals,
        guard=guard,
        **base,
    )


def _placement(flavor: str, spec: Mapping[str, Any]) -> tuple[str | None, str, float | None]:
    """(tier, label for messages, order); tier None when the CNP's `tier` is unreadable."""
    priority = number(spec.get("priority"))
    if flavor == ANP:
        return KUBE_ADMIN, "", priority
    if flavor == BANP:
        return KUBE_BASELINE, "", BANP_ORDER
    tier = spec.get("tier")
    if tier == "Admin":
        return KUBE_ADMIN, "Admin", priority
    if tier == "Baseline":
        return KUBE_BASELINE, "Baseline", priority
    return None, "", priority


def _subject(subject: object) -> tuple[Predicate, dict[str, frozenset[str]], Guard | None]:
    if not isinstance(subject, Mapping):
        return always(None), {}, None
    fields = [k for k, v in subject.items() if v is not None]
    if fields == ["namespaces"]:
        matcher, _, readable = compile_label_selector(subject["namespaces"])
        if not readable:
            return always(None), {}, None

        def by_namespace(ctx: Context) -> Tri:
            return matcher(ctx.namespace_view)

        return by_namespace, {}, None
    if fields == ["pods"] and isinstance(subject["pods"], Mapping):
        pods = subject["pods"]
        ns_match, _, ns_ok = compile_label_selector(pods.get("namespaceSelector"))
        pod_selector = pods.get("podSelector")
        pod_match, literals, pod_ok = compile_label_selector(
            {} if pod_selector is None else pod_selector
        )
        if not (ns_ok and pod_ok):
            return always(None), {}, None

        def by_pod(ctx: Context) -> Tri:
            result = ns_match(ctx.namespace_view)
            if result is False:
                return False
            return and3(result, pod_match(ctx.pod_view))

        found = label_selector_guard(pod_selector)
        guard = Guard("pod", found[0], found[1]) if found else None
        return by_pod, {k: frozenset(v) for k, v in literals.items()}, guard
    return always(None), {}, None


def _rule(flavor: str, raw: object, direction: Direction, path: str) -> Rule:  # noqa: PLR0912 - one branch per peer field of the API
    if not isinstance(raw, Mapping):
        return unreadable_rule(path)
    action_text = raw.get("action")
    action = _ACTIONS[flavor].get(action_text) if isinstance(action_text, str) else None
    if action is None:
        return unreadable_rule(path)
    restriction = raw.get("protocols" if flavor == CNP else "ports")
    if restriction is not None and not isinstance(restriction, list):
        return unreadable_rule(path)
    restricted = bool(restriction)
    peers = raw.get(_PEERS_KEY[direction])
    if not isinstance(peers, list) or not peers:
        return unreadable_rule(path)  # the API requires at least one peer
    fresh: Tri = False
    unreadable = False
    blocks: list[tuple[object, list[object]]] = []
    for peer in peers:
        fields = [k for k, v in peer.items() if v is not None] if isinstance(peer, Mapping) else []
        if not isinstance(peer, Mapping) or len(fields) != 1:
            unreadable = True
            continue
        field = fields[0]
        value = peer[field]
        if field == "namespaces":
            matcher, _, ok = compile_label_selector(value)
            fresh = or3(fresh, matcher(FRESH_NAMESPACE_VIEW) if ok else None)
        elif field == "pods" and isinstance(value, Mapping):
            ns_match, _, ns_ok = compile_label_selector(value.get("namespaceSelector"))
            pod_selector = value.get("podSelector")
            pod_match, _, pod_ok = compile_label_selector(
                {} if pod_selector is None else pod_selector
            )
            hit = and3(ns_match(FRESH_NAMESPACE_VIEW), pod_match(FRESH_POD_VIEW))
            fresh = or3(fresh, hit if ns_ok and pod_ok else None)
        elif field == "networks" and direction is Direction.EGRESS and isinstance(value, list):
            blocks.extend((cidr, []) for cidr in value)
        elif field in ("nodes", "domainNames") and direction is Direction.EGRESS:
            continue  # neither unnamed peer is a node or a named domain
        else:
            unreadable = True
    outside: Tri = False
    near_all = False
    if blocks:
        cover = coverage(blocks)
        outside, near_all = cover.match(), cover.near_all
        fresh = or3(fresh, outside)
    if unreadable:
        outside, fresh = or3(outside, None), or3(fresh, None)
    return Rule(action, path, restricted, outside, fresh, near_all=near_all)
