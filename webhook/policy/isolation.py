"""Default-deny isolation: which policies provide it, for every flavor (SPEC 2.5).

A namespace is isolated in direction D (Ingress, Egress) when some network policy denies all D
traffic to every pod in it except what other policies allow: its "default-deny providers".
`providers_for` finds them per flavor (Kubernetes NetworkPolicy in k8s.py, Calico in
calico.py, AdminNetworkPolicy and BaselineAdminNetworkPolicy in admin.py). The rules that
guard isolation are in rules/: require-default-deny, protect-default-deny, restrict-allow-all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from webhook.policy import admin, calico
from webhook.policy.errors import GuardrailError
from webhook.policy.k8s import k8s_provided_directions
from webhook.policy.model import Direction, Namespace, Obj, PolicyRef, Providers
from webhook.policy.objects import (
    ANP,
    BANP,
    CALICO,
    CALICO_GLOBAL,
    CALICO_STAGED,
    K8S,
    flavor_of,
    ref_of,
)

# Flavors that can be providers, hence whose changes protect-default-deny judges.
PROVIDER_FLAVORS = frozenset({K8S, CALICO, CALICO_GLOBAL, ANP, BANP})


def provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """Directions for which obj (of this flavor) is a default-deny provider in namespace."""
    if flavor == K8S:
        return k8s_provided_directions(obj)
    if flavor in (CALICO, CALICO_GLOBAL):
        try:
            return calico.provided_directions(obj, flavor, namespace)
        except GuardrailError:
            # A selector that does not parse selects nothing we can vouch for; `check` reports
            # the input error itself, and one bad object must not fail every decision.
            return frozenset()
    if flavor in (ANP, BANP):
        return admin_provided_directions(obj, flavor, namespace)
    # Staged policies only report what they would do; unknown flavors do nothing.
    return frozenset()


def admin_provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """AdminNetworkPolicy / BaselineAdminNetworkPolicy as providers (admin.py decides).

    Egress only, when the subject covers the namespace and the egress rules deny every
    destination (`networks` 0.0.0.0/0 and ::/0) before any rule reopens everything; never
    Ingress, since v1alpha1 ingress peers cannot name nodes or the outside world.
    """
    return admin.provided_directions(obj, flavor, namespace)


def providers_for(
    ns: Namespace, namespaced: Iterable[Obj], global_policies: Iterable[Obj]
) -> Providers:
    """For each direction, the policies that give namespace ns a default-deny.

    `namespaced` are the policies stored in ns, `global_policies` the cluster-scoped ones (each
    decides by its own selectors whether it covers ns). Directions without a provider are absent.
    """
    found: dict[Direction, list[PolicyRef]] = {}
    for objs in (namespaced, global_policies):
        for obj in objs:
            flavor = flavor_of(obj)
            if flavor is None or flavor == CALICO_STAGED:
                continue
            directions = provided_directions(obj, flavor, ns)
            if not directions:
                continue
            ref = ref_of(obj, flavor, ns.name)
            for direction in directions:
                found.setdefault(direction, []).append(ref)
    return {direction: tuple(refs) for direction, refs in found.items()}


def missing_directions(
    providers: Providers, required: Sequence[Direction]
) -> tuple[Direction, ...]:
    """The required directions that have no provider, in the configured order."""
    return tuple(d for d in required if not providers.get(d))


def default_deny_command(namespace: str, directions: Sequence[Direction]) -> str:
    """A kubectl one-liner applying a NetworkPolicy that is a default-deny for directions.

    Named after what it covers (`default-deny-egress`) unless it covers both, so applying it
    never overwrites an existing `default-deny` that provides the other direction.
    """
    both = set(directions) >= {Direction.INGRESS, Direction.EGRESS}
    name = "default-deny" if both else "default-deny-" + "-".join(d.lower() for d in directions)
    manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": [str(d) for d in directions]},
    }
    return f"echo '{json.dumps(manifest, separators=(',', ':'))}' | kubectl apply -f -"
