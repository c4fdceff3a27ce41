"""Calico policies as default-deny providers, and what a Calico endpoint's labels are.

`provided_directions` says for which directions a Calico NetworkPolicy or GlobalNetworkPolicy
is a default-deny for every pod of a namespace (SPEC 2.5); `unrestricted_rules` finds the
Allow/Pass rules that reopen everything; `selector_errors` lists every selector in a policy
that does not parse, with its field path. The selector language itself is selector.py.

What a pod's Calico endpoint carries (Calico `podToDefaultWorkloadEndpoint` and
`NamespaceToProfile`; the WorkloadEndpoint reference page shows the first two):
`projectcalico.org/namespace: <ns>` and `projectcalico.org/orchestrator: k8s`, set after the
pod's own labels so a pod cannot change them; `projectcalico.org/serviceaccount` when the pod
has a service account (unknown here); and, inherited from the namespace's profile `kns.<ns>`,
`pcns.<key>: <value>` for each namespace label plus `pcns.projectcalico.org/name: <ns>`. Every
other key is a pod label, unknown at the time a policy is judged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from webhook.policy.model import Direction, Namespace, Obj
from webhook.policy.objects import CALICO, CALICO_GLOBAL
from webhook.policy.selector import All, Selector, SelectorError, matches3, parse_selector

NAMESPACE_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAME_LABEL = "projectcalico.org/name"
NAMESPACE_LABEL_PREFIX = "pcns."


def every_endpoint_matches(sel: Selector, namespace: Namespace) -> bool:
    """Whether sel is certainly true for every pod endpoint of namespace (pod labels unknown).

    Known: `projectcalico.org/namespace`, `projectcalico.org/orchestrator: k8s`, and the
    namespace's labels as `pcns.<key>` (plus `pcns.projectcalico.org/name`), every other
    `pcns.` key being absent. Caveat, Calico's own: an endpoint's own labels win over the ones
    it inherits, so a pod labelled `pcns.<key>` overrides the namespace's value; like SPEC's
    reading of a GlobalNetworkPolicy's namespaceSelector, this trusts the namespace's values.
    """
    known = {NAMESPACE_LABEL_PREFIX + key: value for key, value in namespace.labels.items()}
    known[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = namespace.name
    known[NAMESPACE_LABEL] = namespace.name
    known[ORCHESTRATOR_LABEL] = "k8s"
    return matches3(sel, known, known_prefixes=(NAMESPACE_LABEL_PREFIX,)) is True


def namespace_matches(sel: Selector, namespace: Namespace) -> bool:
    """Whether a namespaceSelector certainly selects namespace (its labels + its name label)."""
    known = dict(namespace.labels)
    known[NAME_LABEL] = namespace.name
    return matches3(sel, known, all_keys_known=True) is True


# -- policies ------------------------------------------------------------------------------

_DIRECTIONS = ((Direction.INGRESS, "ingress"), (Direction.EGRESS, "egress"))
_RULE_MATCHES = ("protocol", "notProtocol", "icmp", "notICMP", "http")
_ENTITY_MATCHES = (
    "nets",
    "notNets",
    "selector",
    "notSelector",
    "namespaceSelector",
    "ports",
    "notPorts",
    "serviceAccounts",
    "services",
)
_ENTITY_SELECTORS = ("selector", "notSelector", "namespaceSelector")


def _present(value: object) -> bool:
    """Whether a match field restricts at all: absent, empty and all-empty values do not."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    if isinstance(value, Mapping):
        return any(_present(v) for v in value.values())
    return True


def _matches_every_address(nets: object) -> bool:
    """`nets` holding 0.0.0.0/0 or ::/0: Calico's spelling of Kubernetes' everything-ipBlock."""
    if not isinstance(nets, list):
        return False
    for net in nets:
        if isinstance(net, str):
            try:
                if ipaddress.ip_network(net.strip(), strict=False).prefixlen == 0:
                    return True
            except ValueError:
                continue
    return False


def _is_all(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return text != "" and isinstance(parse_selector(text), All)
    except SelectorError:
        return False


def _entity_restricts(entity: object) -> bool:
    """Whether a source/destination narrows what the rule matches.

    Two shapes restrict nothing, mirroring SPEC 2.5's Kubernetes peers that match everything:
    `nets` containing 0.0.0.0/0 or ::/0 (the `ipBlock` without `except`), and
    `namespaceSelector: all()` with no selector or `selector: all()` (every pod of every
    namespace, the `namespaceSelector: {}` peer). A malformed entity (the API server rejects
    it) restricts nothing either, so it can never make a policy look like a default-deny.
    """
    if not isinstance(entity, Mapping):
        return False
    criteria = {name for name in _ENTITY_MATCHES if _present(entity.get(name))}
    if "nets" in criteria and _matches_every_address(entity.get("nets")):
        criteria.discard("nets")
    if _is_all(entity.get("namespaceSelector")) and (
        "selector" not in criteria or _is_all(entity.get("selector"))
    ):
        criteria -= {"namespaceSelector", "selector"}
    return bool(criteria)


def is_unrestricted_rule(rule: object) -> bool:
    """An Allow or Pass rule that matches every packet of its direction (SPEC 2.5, Calico).

    Actions compare case-insensitively, as Felix lowercases them. `ipVersion` and `metadata`
    do not restrict; Log and Deny rules never reopen anything.
    """
    if not isinstance(rule, Mapping):
        return False
    action = rule.get("action")
    if not isinstance(action, str) or action.strip().lower() not in ("allow", "pass"):
        return False
    if any(_present(rule.get(name)) for name in _RULE_MATCHES):
        return False
    return not any(_entity_restricts(rule.get(side)) for side in ("source", "destination"))


def _spec(obj: Obj) -> Mapping[str, Any] | None:
    """The spec of a policy; None when it is not a mapping (an absent spec is empty)."""
    if not isinstance(obj, Mapping):
        return None
    spec = obj.get("spec")
    if spec is None:
        return {}
    return spec if isinstance(spec, Mapping) else None


def unrestricted_rules(obj: Obj) -> list[tuple[Direction, int]]:
    """(direction, index in spec.ingress / spec.egress) of every unrestricted Allow/Pass rule.

    Every rule is reported, whether or not its direction is in the policy's types.
    """
    spec = _spec(obj)
    if spec is None:
        return []
    found: list[tuple[Direction, int]] = []
    for direction, field in _DIRECTIONS:
        rules = spec.get(field)
        if isinstance(rules, list):
            found.extend(
                (direction, i) for i, rule in enumerate(rules) if is_unrestricted_rule(rule)
            )
    return found


def effective_types(spec: Mapping[str, Any]) -> frozenset[Direction] | None:
    """The directions a policy applies to; None when `types` is malformed.

    Omitted or empty `types` default as Calico's API server does (`defaultPolicyTypesField`,
    and the table on the NetworkPolicy reference page): no egress rules means [Ingress];
    egress rules without ingress rules mean [Egress] only; both mean both.
    """
    types = spec.get("types")
    if types is None or types == []:
        egress, ingress = spec.get("egress"), spec.get("ingress")
        has_egress = isinstance(egress, list) and len(egress) > 0
        has_ingress = isinstance(ingress, list) and len(ingress) > 0
        if not has_egress:
            return frozenset({Direction.INGRESS})
        if not has_ingress:
            return frozenset({Direction.EGRESS})
        return frozenset({Direction.INGRESS, Direction.EGRESS})
    if not isinstance(types, list):
        return None
    by_name = {d.value.lower(): d for d in Direction}
    found = {by_name.get(t.strip().lower()) for t in types if isinstance(t, str)}
    return frozenset(d for d in found if d is not None)


def _selector_fields(spec: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    """(path, value) of every selector a policy carries, absent ones included as None."""
    for name in ("selector", "namespaceSelector", "serviceAccountSelector"):
        yield f"spec.{name}", spec.get(name)
    for _, field in _DIRECTIONS:
        rules = spec.get(field)
        if not isinstance(rules, list):
            continue
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            for side in ("source", "destination"):
                entity = rule.get(side)
                if not isinstance(entity, Mapping):
                    continue
                base = f"spec.{field}[{i}].{side}"
                for name in _ENTITY_SELECTORS:
                    yield f"{base}.{name}", entity.get(name)
                accounts = entity.get("serviceAccounts")
                if isinstance(accounts, Mapping):
                    yield f"{base}.serviceAccounts.selector", accounts.get("selector")


def _parse_fields(
    spec: Mapping[str, Any],
) -> tuple[dict[str, Selector], list[tuple[str, SelectorError]]]:
    """Every non-empty selector of a spec, parsed by path, and the ones that do not parse."""
    parsed: dict[str, Selector] = {}
    errors: list[tuple[str, SelectorError]] = []
    for path, value in _selector_fields(spec):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            kind = type(value).__name__
            errors.append((path, SelectorError(f"expected a selector string, not {kind}", 0)))
            continue
        try:
            parsed[path] = parse_selector(value)
        except SelectorError as error:
            errors.append((path, error))
    return parsed, errors


def selector_errors(obj: Obj) -> list[tuple[str, SelectorError]]:
    """(field path, error) for every selector in a Calico policy that does not parse.

    Paths read like `spec.selector` or `spec.egress[0].destination.selector`; an empty or
    absent selector is no error.
    """
    spec = _spec(obj)
    return [] if spec is None else _parse_fields(spec)[1]


def _meta_namespace(obj: Obj) -> object:
    meta = obj.get("metadata")
    return meta.get("namespace") if isinstance(meta, Mapping) else None


def provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:  # noqa: PLR0911 - each SPEC 2.5 condition is one early return, in the docstring's order
    """Directions for which this Calico (Global)NetworkPolicy is a default-deny in namespace.

    `flavor` is "calico" (NetworkPolicy) or "calico-global" (GlobalNetworkPolicy), in either
    API spelling (projectcalico.org/v3, crd.projectcalico.org/v1: same spec fields). Direction
    D is provided when all of these hold (SPEC 2.5):

    * NetworkPolicy: it lives in namespace (a different `metadata.namespace` provides nothing)
      and its `selector` is absent, empty, `all()` or certainly true for every pod endpoint
      of the namespace (`every_endpoint_matches`);
    * GlobalNetworkPolicy: `namespaceSelector` is absent/empty or certainly selects the
      namespace (its labels plus `projectcalico.org/name`), and `selector` is as above;
      `doNotTrack` or `preDNAT` policies do not count: Calico applies them to host endpoints
      only, never to pods. `applyOnForward` alone changes nothing for pods and is ignored;
    * no `serviceAccountSelector` (even `all()`: Calico turns it into "has a service-account
      label", which not every pod carries);
    * D is in its effective types (`effective_types`: Calico's defaulting, under which an
      egress-only policy without `types` is Egress only);
    * no unrestricted D rule (`is_unrestricted_rule`);
    * every selector in it parses (one that does not is reported by `selector_errors`; the API
      server would have refused the policy, so it vouches for nothing).

    A malformed object provides nothing; nothing here raises.
    """
    if flavor not in (CALICO, CALICO_GLOBAL):
        return frozenset()
    spec = _spec(obj)
    if spec is None:
        return frozenset()
    selectors, errors = _parse_fields(spec)
    if errors:
        return frozenset()
    if flavor == CALICO:
        home = _meta_namespace(obj)
        if isinstance(home, str) and home and home != namespace.name:
            return frozenset()
    elif spec.get("doNotTrack") is True or spec.get("preDNAT") is True:
        return frozenset()
    if spec.get("serviceAccountSelector") not in (None, ""):
        return frozenset()
    for field in ("ingress", "egress"):
        if spec.get(field) is not None and not isinstance(spec.get(field), list):
            return frozenset()
    types = effective_types(spec)
    if not types:
        return frozenset()

    namespace_selector = selectors.get("spec.namespaceSelector")
    if (
        flavor == CALICO_GLOBAL
        and namespace_selector is not None
        and not namespace_matches(namespace_selector, namespace)
    ):
        return frozenset()
    if not every_endpoint_matches(selectors.get("spec.selector", All()), namespace):
        return frozenset()

    reopened = {direction for direction, _ in unrestricted_rules(obj)}
    return frozenset(d for d in types if d not in reopened)
