"""Calico: selector language and Calico policies as default-deny providers (placeholder).

Being replaced by the full implementation; the two public functions keep these signatures.
"""

from __future__ import annotations

from webhook.policy.model import Direction, Namespace, Obj


def provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """Directions for which this Calico (Global)NetworkPolicy is a default-deny in namespace."""
    return frozenset()


def unrestricted_rules(obj: Obj) -> list[tuple[Direction, int]]:
    """(direction, index) of every unrestricted Allow/Pass rule of a Calico policy."""
    return []
