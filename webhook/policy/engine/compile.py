"""One entry point from a raw object (as the API server stores it) to its compiled form."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from webhook.policy.calico import selector_errors
from webhook.policy.engine.calico import compile_calico_policy
from webhook.policy.engine.cnp import compile_admin
from webhook.policy.engine.core import CompiledPolicy, Tier
from webhook.policy.engine.k8s import compile_k8s
from webhook.policy.engine.stack import PolicyStack
from webhook.policy.engine.tiers import compile_tier
from webhook.policy.model import Obj
from webhook.policy.objects import CALICO, CALICO_GLOBAL, K8S, flavor_of, meta_of


def compile_object(obj: object, default_namespace: str = "") -> CompiledPolicy | Tier | None:
    """The compiled policy or tier of obj; None when it takes no part in isolation.

    Staged Calico policies and objects of other kinds compile to None. Never raises.
    `default_namespace` is the namespace of a namespaced policy whose metadata has none
    (manifests read from files).
    """
    if not isinstance(obj, Mapping):
        return None
    compiled = _compile(obj, default_namespace)
    if isinstance(compiled, CompiledPolicy):
        created = meta_of(obj).get("creationTimestamp")
        if isinstance(created, str) and created:
            return dataclasses.replace(compiled, created=created)
    return compiled


def _compile(obj: Mapping[str, object], default_namespace: str) -> CompiledPolicy | Tier | None:
    flavor = flavor_of(obj)
    if flavor == K8S:
        return compile_k8s(obj, default_namespace)
    if flavor in (CALICO, CALICO_GLOBAL):
        if selector_errors(obj):
            # Calico enforces no policy with a selector it cannot parse (its API server refuses
            # it; through the CRDs Felix drops it): such a policy neither isolates nor opens.
            # restrict-allow-all warns about it, naming the field and column.
            return None
        return compile_calico_policy(obj, default_namespace)
    admin = compile_admin(obj)
    if admin is not None:
        return admin
    return compile_tier(obj)


def build_stack(objects: Iterable[Obj], default_namespace: str = "") -> PolicyStack:
    """A stack of every policy and tier among objects (others are ignored)."""
    policies: list[CompiledPolicy] = []
    tiers: list[Tier] = []
    for obj in objects:
        compiled = compile_object(obj, default_namespace)
        if isinstance(compiled, Tier):
            tiers.append(compiled)
        elif compiled is not None:
            policies.append(compiled)
    return PolicyStack(policies, tiers)
