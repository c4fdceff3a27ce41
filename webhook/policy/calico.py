"""Calico policies: every selector a policy carries, and the ones that do not parse.

`selector_errors` lists each selector of a Calico NetworkPolicy or GlobalNetworkPolicy that
Calico's parser would refuse, with its field path and column: restrict-allow-all warns about
them, and the isolation engine leaves such a policy out (Calico enforces no policy it cannot
parse). What Calico policies do to traffic is the engine's (engine/calico.py); the selector
language itself is selector.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.policy.model import Obj
from webhook.policy.selector import SelectorError, parse_selector

_DIRECTIONS = ("ingress", "egress")
_ENTITY_SELECTORS = ("selector", "notSelector", "namespaceSelector")


def _spec(obj: Obj) -> Mapping[str, Any] | None:
    """The spec of a policy; None when it is not a mapping (an absent spec is empty)."""
    if not isinstance(obj, Mapping):
        return None
    spec = obj.get("spec")
    if spec is None:
        return {}
    return spec if isinstance(spec, Mapping) else None


def _selector_fields(spec: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    """(path, value) of every selector a policy carries, absent ones included as None."""
    for name in ("selector", "namespaceSelector", "serviceAccountSelector"):
        yield f"spec.{name}", spec.get(name)
    for field in _DIRECTIONS:
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


def selector_errors(obj: Obj) -> list[tuple[str, SelectorError]]:
    """(field path, error) for every selector in a Calico policy that does not parse.

    Paths read like `spec.selector` or `spec.egress[0].destination.selector`; an empty or
    absent selector is no error, and neither is an object that is not a mapping.
    """
    spec = _spec(obj)
    if spec is None:
        return []
    errors: list[tuple[str, SelectorError]] = []
    for path, value in _selector_fields(spec):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            kind = type(value).__name__
            errors.append((path, SelectorError(f"expected a selector string, not {kind}", 0)))
            continue
        try:
            parse_selector(value)
        except SelectorError as error:
            errors.append((path, error))
    return errors
