"""The questions the per-flavor tests ask, answered by the isolation engine.

Those tests were written against functions that judged one policy object at a time; they now
ask the engine, so each documented example and shape is checked against what the dataplane
walk decides (SPEC 2.6) for every pod of the namespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from webhook.policy.engine import CompiledPolicy, Labels, build_stack, compile_object
from webhook.policy.engine.allow_all import broad_rules
from webhook.policy.engine.calico import effective_types
from webhook.policy.engine.core import Context, Endpoint, LabelView
from webhook.policy.engine.select import compile_label_selector
from webhook.policy.model import Direction, Namespace, Obj

__all__ = ["effective_types", "is_unrestricted_rule", "provided_directions", "unrestricted_rules"]

_INDEX = re.compile(r"\[(\d+)\]$")


def provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """Directions in which obj alone isolates every pod of namespace (flavor: unused)."""
    del flavor
    view = build_stack([obj], namespace.name).for_namespace(namespace)
    return frozenset(
        d for d in Direction if view.decide(view.endpoint(Labels.unknown()), d).isolated
    )


def unrestricted_rules(obj: Obj, flavor: str = "") -> list[tuple[Direction, int]]:
    """(direction, index) of the rules that match an unnamed peer with no port restriction."""
    del flavor
    compiled = compile_object(obj, _namespace(obj))
    if not isinstance(compiled, CompiledPolicy):
        return []
    found = []
    for rule in broad_rules(compiled):
        match = _INDEX.search(rule.path)
        if rule.unrestricted and match:
            found.append((rule.direction, int(match.group(1))))
    return found


def is_unrestricted_rule(rule: Any, *, egress: bool = False) -> bool:
    """Whether one Calico rule admits everything, in a GlobalNetworkPolicy of its own."""
    direction = Direction.EGRESS if egress else Direction.INGRESS
    obj = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "probe"},
        "spec": {"types": [str(direction)], direction.lower(): [rule]},
    }
    return unrestricted_rules(obj) == [(direction, 0)]


def _namespace(obj: Obj) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
    return namespace if isinstance(namespace, str) else ""


def label_selector_matches(selector: object, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector certainly matches this complete label set."""
    matcher, _, _ = compile_label_selector(selector)
    return matcher(LabelView(dict(labels), complete=True)) is True


def _admin(spec: Mapping[str, Any], kind: str = "AdminNetworkPolicy") -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "default" if kind.startswith("Baseline") else "probe"},
        "spec": {"priority": 1, **spec},
    }


def subject_covers(subject: object, namespace: Namespace) -> bool:
    """Whether an ANP subject certainly selects every pod of namespace."""
    compiled = compile_object(
        _admin({"subject": subject, "egress": [{"action": "Deny", "to": [{"namespaces": {}}]}]})
    )
    if not isinstance(compiled, CompiledPolicy):
        return False
    return compiled.selection(Context(Endpoint.any_pod(namespace))) is True


def is_admin_unrestricted_rule(rule: Any, direction: Direction, flavor: str) -> bool:
    """Whether one ANP (flavor "anp") or BANP ("banp") rule admits everything."""
    kind = "BaselineAdminNetworkPolicy" if flavor == "banp" else "AdminNetworkPolicy"
    obj = _admin({"subject": {"namespaces": {}}, direction.lower(): [rule]}, kind)
    compiled = compile_object(obj)
    if not isinstance(compiled, CompiledPolicy):
        return False
    return any(r.unrestricted and r.direction is direction for r in broad_rules(compiled))
