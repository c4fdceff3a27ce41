"""Calico `Tier` objects (projectcalico.org/v3 and crd.projectcalico.org/v1), compiled.

`spec.order` orders tiers (lower first; unset: after every ordered tier, as Calico treats a
nil order); `spec.defaultAction` is what happens when the tier applies to an endpoint but no
rule decides: `Deny` (the default) or `Pass`. The built-in tiers keep their documented order
when a Tier object for them omits it (`default` 1,000,000; `kube-admin` 1,000 and
`kube-baseline` 10,000,000, both Pass) and have those defaults when no object is given.

An unreadable `defaultAction` is read as `Pass`: a tier whose default is not known is never
the reason an endpoint is called isolated.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhook.policy.engine.common import identity, meta_of, number, text
from webhook.policy.engine.core import BUILTIN_TIERS, Action, Tier
from webhook.policy.model import Obj
from webhook.policy.objects import CALICO_GROUPS, group_of


def is_tier(obj: Obj) -> bool:
    api_version = obj.get("apiVersion") if isinstance(obj, Mapping) else None
    return (
        isinstance(api_version, str)
        and group_of(api_version) in CALICO_GROUPS
        and obj.get("kind") == "Tier"
    )


def compile_tier(obj: Obj) -> Tier | None:
    """The tier an object defines, or None when it is no Calico Tier (or has no name)."""
    if not is_tier(obj):
        return None
    name = text(meta_of(obj).get("name")).strip()
    if not name:
        return None
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    builtin = BUILTIN_TIERS.get(name)
    order = number(spec.get("order"))
    if order is None and builtin is not None:
        order = builtin.order
    raw_action = spec.get("defaultAction")
    if raw_action is None or (isinstance(raw_action, str) and raw_action.strip().lower() == "deny"):
        action = Action.DENY
    else:
        action = Action.PASS
    return Tier(name, order, action, key=identity(obj, f"tier/{name}"))


def tier_named(name: str, tiers: Mapping[str, Tier]) -> Tier:
    """The tier a policy names: a Tier object, else a built-in one, else an assumed one.

    A policy in a tier that exists nowhere is refused by Calico, so such a tier is marked
    `assumed` (unset order, default Deny) and the walk vouches for nothing it decides.
    """
    found = tiers.get(name) or BUILTIN_TIERS.get(name)
    if found is not None:
        return found
    return Tier(name, None, Action.DENY, key=f"assumed/{name}", assumed=True)
