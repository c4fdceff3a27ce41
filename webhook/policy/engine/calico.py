"""Calico NetworkPolicy and GlobalNetworkPolicy (projectcalico.org/v3, crd.projectcalico.org/v1).

Both API groups carry the same spec. On `crd.projectcalico.org/v1` objects the user labels
live in the JSON annotation `projectcalico.org/metadata` (metadata.labels keeps only
`projectcalico.org/*` keys) and names may carry a `default.` or `<tier>.` prefix: the key is
the uid when there is one, else kind/namespace/name with the tier prefix removed, so one
policy seen under two names or groups is one policy. The tier is `spec.tier`, else the
`projectcalico.org/tier` label, else `default`. Staged kinds compile to nothing.

Selection (SPEC 2.5): `selector` (absent: all()) over the pod's endpoint labels (the pod's
labels plus `projectcalico.org/namespace`, `projectcalico.org/orchestrator: k8s`,
`projectcalico.org/serviceaccount`, and `pcns.<key>` for each namespace label);
GlobalNetworkPolicy `namespaceSelector` over the namespace's labels plus
`projectcalico.org/name`; `serviceAccountSelector` over the service account's labels (only its
name, `projectcalico.org/name`, is ever known). `doNotTrack` and `preDNAT` policies apply to
host endpoints only and select no pod. Types default as Calico's API server does: `[Ingress]`,
plus `Egress` when there are egress rules, `[Egress]` alone with only egress rules.

Rules: `action` Allow / Deny / Pass / Log, case-insensitive as Felix reads it. A rule is
restricted by `protocol`, `notProtocol`, `icmp`, `notICMP`, `http`, or `ports` / `notPorts`
on either side; `ipVersion` alone does not restrict. The peer side (source of an ingress rule,
destination of an egress rule) is matched against the unnamed peers: an outside address is no
endpoint, so `selector`, `namespaceSelector`, `serviceAccounts` and `services` never match it
and `notSelector` always does; address criteria match it by coverage (nets.py), `nets` minus
`notNets`. The fresh pod is an endpoint of a fresh namespace; in a namespaced policy a
`selector`, `notSelector` or `serviceAccounts` without `namespaceSelector` means the policy's
own namespace, so it never matches it (a lone `notSelector` there is read as unknown). The
endpoint side (destination of an ingress rule,
source of an egress rule) is a condition on the endpoint judged, three-valued.

Anything unreadable (a selector that does not parse, a malformed field, an unknown action)
never raises: an unreadable selection is unknown, an unreadable rule may match anything and
allow it (never ignored, never the reason for a verdict of isolated).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from webhook.policy.engine.common import (
    BOTH,
    DIRECTIONS,
    fingerprint,
    identity,
    meta_of,
    number,
    shared_guard,
    shared_literals,
    shared_rule,
    shared_rules,
    text,
    unreadable_rule,
    with_home,
)
from webhook.policy.engine.core import (
    CALICO_NAME_LABEL,
    CALICO_NAMESPACE_LABEL,
    CALICO_NAMESPACE_PREFIX,
    CALICO_SERVICE_ACCOUNT_LABEL,
    DEFAULT_TIER,
    FRESH_CALICO_ENDPOINT_VIEW,
    FRESH_CALICO_NAMESPACE_VIEW,
    FRESH_SERVICE_ACCOUNT_VIEW,
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
    not3,
)
from webhook.policy.engine.nets import coverage
from webhook.policy.engine.select import (
    MATCH_ALL,
    Matcher,
    calico_guard,
    calico_literals,
    compile_calico,
    has_string_match,
)
from webhook.policy.model import Direction, Obj
from webhook.policy.objects import CALICO, CALICO_GLOBAL, flavor_of

METADATA_ANNOTATION = "projectcalico.org/metadata"
TIER_LABEL = "projectcalico.org/tier"
V1_GROUP = "crd.projectcalico.org"

_ACTIONS = {a.value.lower(): a for a in Action}
_RULE_RESTRICTIONS = ("protocol", "notProtocol", "icmp", "notICMP", "http")
_SELECTOR_FIELDS = ("selector", "notSelector", "namespaceSelector")
# Keys whose values Calico sets itself, never pod labels (no use as representatives).
_SYSTEM_PREFIXES = ("pcns.", "projectcalico.org/")
_TYPES = {
    t: t
    for t in (
        frozenset(),
        frozenset({Direction.INGRESS}),
        frozenset({Direction.EGRESS}),
        BOTH,
    )
}


@functools.lru_cache(maxsize=4096)
def _shared_names(names: frozenset[str]) -> frozenset[str]:
    return names


def present(value: object) -> bool:
    """Whether a match field restricts at all: absent, empty and all-empty values do not."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    if isinstance(value, Mapping):
        return any(present(v) for v in value.values())
    return True


def user_labels(obj: Obj) -> dict[str, str]:
    """The object's user labels; on v1 objects from the `projectcalico.org/metadata` JSON."""
    meta = meta_of(obj)
    labels: dict[str, str] = {}
    raw = meta.get("labels")
    if isinstance(raw, Mapping):
        labels.update({str(k): str(v) for k, v in raw.items()})
    annotations = meta.get("annotations")
    blob = annotations.get(METADATA_ANNOTATION) if isinstance(annotations, Mapping) else None
    if isinstance(blob, str):
        try:
            decoded = json.loads(blob)
        except ValueError:
            decoded = None
        inner = decoded.get("labels") if isinstance(decoded, Mapping) else None
        if isinstance(inner, Mapping):
            labels.update({str(k): str(v) for k, v in inner.items()})
    return labels


def tier_of(spec: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    tier = spec.get("tier")
    if isinstance(tier, str) and tier.strip():
        return tier.strip()
    return labels.get(TIER_LABEL, "").strip() or DEFAULT_TIER


def display_name(name: str, tier: str) -> str:
    """The name without the `<tier>.` prefix the v1 CRDs may carry."""
    prefix = f"{tier}."
    return name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else name


def effective_types(spec: Mapping[str, Any]) -> frozenset[Direction] | None:
    """Calico's defaulting of `types`; None when `types` is malformed."""
    types = spec.get("types")
    if types is None or types == []:
        egress, ingress = spec.get("egress"), spec.get("ingress")
        has_egress = isinstance(egress, list) and len(egress) > 0
        has_ingress = isinstance(ingress, list) and len(ingress) > 0
        if not has_egress:
            return frozenset({Direction.INGRESS})
        if not has_ingress:
            return frozenset({Direction.EGRESS})
        return BOTH
    if not isinstance(types, list):
        return None
    by_name = {d.value.lower(): d for d in Direction}
    found: set[Direction] = set()
    for item in types:
        direction = by_name.get(item.strip().lower()) if isinstance(item, str) else None
        if direction is None:
            return None
        found.add(direction)
    return _TYPES[frozenset(found)]


def compile_calico_policy(obj: Obj, default_namespace: str = "") -> CompiledPolicy | None:
    """Compile a Calico (Global)NetworkPolicy; None for staged or non-Calico objects."""
    flavor = flavor_of(obj)
    if flavor not in (CALICO, CALICO_GLOBAL):
        return None
    is_global = flavor == CALICO_GLOBAL
    meta = meta_of(obj)
    labels = user_labels(obj)
    raw_spec = obj.get("spec")
    spec: Mapping[str, Any] | None = {} if raw_spec is None else raw_spec
    readable_spec = isinstance(spec, Mapping)
    if not isinstance(spec, Mapping):
        spec = {}
    tier = tier_of(spec, labels)
    kind = "GlobalNetworkPolicy" if is_global else "NetworkPolicy"
    # A namespaced object with no namespace lands where kubectl would put it.
    home = "" if is_global else (text(meta.get("namespace")) or default_namespace or "default")
    name = display_name(text(meta.get("name")), tier)
    ref = Ref(kind, home, name, flavor)
    key = identity(obj, f"{flavor}/{home}/{tier}/{name}")
    base: dict[str, Any] = {
        "key": key,
        "ref": ref,
        "tier": tier,
        "order": number(spec.get("order")),
        "home": home,
        "label": f'tier "{tier}"',
        "labels": labels,
        "fingerprint": fingerprint(flavor, home, tier, spec if readable_spec else repr(raw_spec)),
    }
    types = effective_types(spec)
    rule_lists = {d: spec.get(field) for d, field in DIRECTIONS}
    if (
        not readable_spec
        or types is None
        or any(r is not None and not isinstance(r, list) for r in rule_lists.values())
    ):
        return CompiledPolicy(
            directions=BOTH,
            rules={d: (unreadable_rule("spec"),) for d in BOTH},
            selection=_scoped(home, always(None)),
            **base,
        )
    if is_global and (spec.get("doNotTrack") is True or spec.get("preDNAT") is True):
        # Applied to host endpoints only: no pod is ever selected.
        return CompiledPolicy(directions=types, rules={}, selection=always(False), **base)
    selection, literals, guard = _selection(spec, is_global, home)
    literals = _with_local_literals(literals, spec)
    rules: dict[Direction, tuple[Rule, ...]] = {}
    for direction, field in DIRECTIONS:
        if direction in types:
            raw_rules = rule_lists[direction]
            rules[direction] = shared_rules(
                tuple(
                    shared_rule(_rule(rule, direction, f"spec.{field}[{i}]", is_global))
                    for i, rule in enumerate(raw_rules if isinstance(raw_rules, list) else [])
                )
            )
    return CompiledPolicy(
        directions=types,
        rules=rules,
        selection=selection,
        pod_literals=literals,
        account_literals=_service_account_literals(spec),
        string_matches=_string_matches(spec),
        shape=fingerprint(flavor, name, tier, spec),
        namespace_sensitive=_namespace_sensitive(spec),
        guard=guard,
        **base,
    )


def _local_sides(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The endpoint side of every rule: destination of ingress rules, source of egress ones."""
    sides: list[Mapping[str, Any]] = []
    for direction, field in DIRECTIONS:
        rules = spec.get(field)
        side = "destination" if direction is Direction.INGRESS else "source"
        for rule in rules if isinstance(rules, list) else []:
            entity = rule.get(side) if isinstance(rule, Mapping) else None
            if isinstance(entity, Mapping):
                sides.append(entity)
    return sides


def _literals_of(text: object) -> dict[str, set[str]]:
    if not present(text):
        return {}
    _, tree = compile_calico(text)
    return calico_literals(tree)


def _with_local_literals(
    literals: Mapping[str, frozenset[str]], spec: Mapping[str, Any]
) -> Mapping[str, frozenset[str]]:
    """Add what the endpoint side of each rule reads of pod labels: representatives must
    tell those pods apart too."""
    merged = {k: set(v) for k, v in literals.items()}
    for entity in _local_sides(spec):
        for name in ("selector", "notSelector"):
            for key, values in _literals_of(entity.get(name)).items():
                if not key.startswith(_SYSTEM_PREFIXES):
                    merged.setdefault(key, set()).update(values)
    return shared_literals({k: frozenset(v) for k, v in merged.items()})


_NAMESPACE_KEYS = (CALICO_NAMESPACE_PREFIX, CALICO_NAMESPACE_LABEL, CALICO_NAME_LABEL)


def _namespace_sensitive(spec: Mapping[str, Any]) -> bool:
    """Whether the selection or an endpoint side reads the namespace at the level of a pod."""
    sides = _local_sides(spec)
    if any(present(e.get("namespaceSelector")) for e in sides):
        return True
    texts = [_selector_text(spec.get("selector"))]
    texts += [e.get(n) for e in sides for n in ("selector", "notSelector")]
    return any(key.startswith(_NAMESPACE_KEYS) for t in texts for key in _literals_of(t))


def _string_matches(spec: Mapping[str, Any]) -> bool:
    texts = [_selector_text(spec.get("selector"))]
    texts += [e.get(n) for e in _local_sides(spec) for n in ("selector", "notSelector")]
    for text_value in texts:
        if present(text_value):
            _, tree = compile_calico(text_value)
            if has_string_match(tree, _SYSTEM_PREFIXES):
                return True
    return False


def _service_account_literals(spec: Mapping[str, Any]) -> frozenset[str]:
    """Service account names the policy's selection or endpoint sides name."""
    names: set[str] = set()
    names |= _literals_of(_selector_text(spec.get("selector"))).get(
        CALICO_SERVICE_ACCOUNT_LABEL, set()
    )
    names |= _literals_of(spec.get("serviceAccountSelector")).get(CALICO_NAME_LABEL, set())
    for entity in _local_sides(spec):
        for name in ("selector", "notSelector"):
            names |= _literals_of(entity.get(name)).get(CALICO_SERVICE_ACCOUNT_LABEL, set())
        accounts = entity.get("serviceAccounts")
        if isinstance(accounts, Mapping):
            listed = accounts.get("names")
            if isinstance(listed, list):
                names |= {n for n in listed if isinstance(n, str)}
            names |= _literals_of(accounts.get("selector")).get(CALICO_NAME_LABEL, set())
    return _shared_names(frozenset(names))


def _scoped(home: str, inner: Predicate) -> Predicate:
    return with_home(home, inner) if home else inner


def _selection(
    spec: Mapping[str, Any], is_global: bool, home: str
) -> tuple[Predicate, Mapping[str, frozenset[str]], Guard | None]:
    endpoint_match, tree = compile_calico(_selector_text(spec.get("selector")))
    literals = {
        k: frozenset(v)
        for k, v in calico_literals(tree).items()
        if not k.startswith(_SYSTEM_PREFIXES)
    }
    namespace_match: Matcher = MATCH_ALL
    if is_global and present(spec.get("namespaceSelector")):
        namespace_match, _ = compile_calico(spec.get("namespaceSelector"))
    account_match: Matcher = MATCH_ALL
    if present(spec.get("serviceAccountSelector")):
        account_match, _ = compile_calico(spec.get("serviceAccountSelector"))

    found = calico_guard(tree)
    guard = shared_guard(Guard("calico", found[0], found[1])) if found else None
    selection = _selection_predicate(namespace_match, endpoint_match, account_match)
    return _scoped(home, selection), shared_literals(literals), guard


@functools.lru_cache(maxsize=16384)
def _selection_predicate(
    namespace_match: Matcher, endpoint_match: Matcher, account_match: Matcher
) -> Predicate:
    def selection(ctx: Context) -> Tri:
        result = namespace_match(ctx.calico_namespace)
        if result is False:
            return False
        result = and3(result, endpoint_match(ctx.calico_endpoint))
        if result is False or account_match is MATCH_ALL:
            return result
        return and3(result, account_match(ctx.service_account_view))

    return selection


def _selector_text(value: object) -> object:
    # An empty selector is all(), as Calico reads it.
    return None if value == "" else value


def _rule(raw: object, direction: Direction, path: str, is_global: bool) -> Rule:
    if not isinstance(raw, Mapping):
        return unreadable_rule(path)
    action_text = raw.get("action")
    action = _ACTIONS.get(action_text.strip().lower()) if isinstance(action_text, str) else None
    if action is None:
        return unreadable_rule(path)
    source, destination = raw.get("source"), raw.get("destination")
    for entity in (source, destination):
        if entity is not None and not isinstance(entity, Mapping):
            return unreadable_rule(path)
    source = source or {}
    destination = destination or {}
    restricted = any(present(raw.get(name)) for name in _RULE_RESTRICTIONS) or any(
        present(entity.get(name))
        for entity in (source, destination)
        for name in ("ports", "notPorts")
    )
    peer, local = (
        (source, destination)
        if direction is Direction.INGRESS
        else (
            destination,
            source,
        )
    )
    outside, fresh, near_all = _peer_side(peer, is_global)
    return Rule(
        action,
        path,
        restricted,
        outside,
        fresh,
        local=_local_side_shared(local),
        near_all=near_all,
    )


def _address_match(entity: Mapping[str, Any]) -> tuple[Tri, bool]:
    nets, not_nets = entity.get("nets"), entity.get("notNets")
    if not present(nets) and not present(not_nets):
        return True, False
    if (nets is not None and not isinstance(nets, list)) or (
        not_nets is not None and not isinstance(not_nets, list)
    ):
        return None, False
    blocks: list[tuple[object, list[object]]] | None = None
    if present(nets) and isinstance(nets, list):
        blocks = [(n, []) for n in nets]
    cover = coverage(blocks, not_nets if isinstance(not_nets, list) else [])
    return cover.match(), cover.near_all


def _peer_side(entity: Mapping[str, Any], is_global: bool) -> tuple[Tri, Tri, bool]:  # noqa: PLR0912 - one branch per Calico entity criterion
    """(matches the outside address, matches the fresh pod, near-all addresses)."""
    address, near_all = _address_match(entity)
    selector = present(entity.get("selector"))
    not_selector = present(entity.get("notSelector"))
    namespace_selector = present(entity.get("namespaceSelector"))
    accounts = entity.get("serviceAccounts")
    services = present(entity.get("services"))
    matchers: dict[str, Matcher] = {}
    unreadable = False
    for name in _SELECTOR_FIELDS:
        if present(entity.get(name)):
            matcher, tree = compile_calico(entity.get(name))
            unreadable = unreadable or tree is None
            matchers[name] = matcher
    if accounts is not None and not isinstance(accounts, Mapping):
        return None, None, near_all
    has_accounts = present(accounts)
    endpoints_only = selector or namespace_selector or has_accounts or services
    outside: Tri = False if endpoints_only else address
    if unreadable:
        outside = None
    # The fresh pod: an endpoint in a namespace no namespaced policy's rule reaches without a
    # namespaceSelector.
    fresh: Tri = address
    if not is_global and not namespace_selector and (selector or has_accounts):
        fresh = False
    if not is_global and not namespace_selector and not_selector and not selector:
        # Whether Calico scopes a lone notSelector to the policy's namespace (then it matches
        # no outside address and no other namespace's pod) or not (then it matches both) is
        # not vouched for here: neither an Allow nor a Deny may rest on it.
        outside, fresh = and3(outside, None), and3(fresh, None)
    if services:
        fresh = False
    if fresh is not False and "namespaceSelector" in matchers:
        fresh = and3(fresh, matchers["namespaceSelector"](FRESH_CALICO_NAMESPACE_VIEW))
    if fresh is not False and "selector" in matchers:
        fresh = and3(fresh, matchers["selector"](FRESH_CALICO_ENDPOINT_VIEW))
    if fresh is not False and "notSelector" in matchers:
        fresh = and3(fresh, not3(matchers["notSelector"](FRESH_CALICO_ENDPOINT_VIEW)))
    if fresh is not False and isinstance(accounts, Mapping) and has_accounts:
        names = accounts.get("names")
        if present(names):
            # A service account no policy names is in no list.
            fresh = False
        if fresh is not False and present(accounts.get("selector")):
            account_match, _ = compile_calico(accounts.get("selector"))
            fresh = and3(fresh, account_match(FRESH_SERVICE_ACCOUNT_VIEW))
    if unreadable:
        fresh = None
    return outside, fresh, near_all


def _local_side_shared(entity: Mapping[str, Any]) -> Predicate | None:
    """The endpoint-side condition, shared between rules with equal endpoint sides."""
    if not entity:
        return None
    try:
        text_form = json.dumps(entity, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return _local_side(entity)
    return _local_side_text(text_form)


@functools.lru_cache(maxsize=16384)
def _local_side_text(text_form: str) -> Predicate | None:
    return _local_side(json.loads(text_form))


def _local_side(entity: Mapping[str, Any]) -> Predicate | None:
    """A condition on the endpoint itself, or None when the side names nothing."""
    checks: list[Predicate] = []
    for name in _SELECTOR_FIELDS:
        if not present(entity.get(name)):
            continue
        matcher, _ = compile_calico(entity.get(name))
        checks.append(_on_endpoint(matcher, name))
    if present(entity.get("nets")) or present(entity.get("notNets")):
        # The endpoint's own address is not known: only criteria that hold for every
        # address (or for none) decide.
        checks.append(always(_local_address(entity)))
    accounts = entity.get("serviceAccounts")
    if present(accounts):
        checks.append(_account_check(accounts))
    if present(entity.get("services")):
        checks.append(always(None))
    if not checks:
        return None
    frozen = tuple(checks)

    def local(ctx: Context) -> Tri:
        result: Tri = True
        for check in frozen:
            result = and3(result, check(ctx))
            if result is False:
                return False
        return result

    return local


def _on_endpoint(matcher: Matcher, field: str) -> Predicate:
    def check(ctx: Context) -> Tri:
        if field == "namespaceSelector":
            return matcher(ctx.calico_namespace)
        if field == "selector":
            return matcher(ctx.calico_endpoint)
        return not3(matcher(ctx.calico_endpoint))

    return check


def _local_address(entity: Mapping[str, Any]) -> Tri:
    nets, not_nets = entity.get("nets"), entity.get("notNets")
    if not isinstance(nets, list | None) or not isinstance(not_nets, list | None):
        return None
    blocks: list[tuple[object, list[object]]] | None = [(n, []) for n in nets] if nets else None
    cover = coverage(blocks, not_nets or [])
    if not cover.readable:
        return None
    if cover.whole_v4 and cover.whole_v6:
        return True
    if cover.v4 == 0 and cover.v6 == 0:
        return False
    return None


def _account_check(accounts: object) -> Predicate:
    if not isinstance(accounts, Mapping):
        return always(None)
    names = accounts.get("names")
    wanted = frozenset(n for n in names if isinstance(n, str)) if isinstance(names, list) else None
    if present(names) and wanted is None:
        return always(None)
    selector_match: Matcher | None = None
    if present(accounts.get("selector")):
        selector_match, _ = compile_calico(accounts.get("selector"))

    def check(ctx: Context) -> Tri:
        result: Tri = True
        if wanted:
            result = None if ctx.service_account is None else ctx.service_account in wanted
        if selector_match is not None and result is not False:
            result = and3(result, selector_match(ctx.service_account_view))
        return result

    return check
