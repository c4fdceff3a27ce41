"""Which network-policy object is which: flavors, references and keys.

A "flavor" names one family of policy objects whatever API group serves it, so that the Calico
v3 API and its `crd.projectcalico.org/v1` CRDs are judged identically.
"""

from __future__ import annotations

from collections.abc import Mapping

from webhook.policy.model import Obj, PolicyRef

K8S = "k8s"  # networking.k8s.io/v1 NetworkPolicy
CALICO = "calico"  # projectcalico.org/v3 | crd.projectcalico.org/v1 NetworkPolicy
CALICO_GLOBAL = "calico-global"  # ... GlobalNetworkPolicy
CALICO_STAGED = "calico-staged"  # Staged(Global|Kubernetes)NetworkPolicy: never a provider
ANP = "anp"  # policy.networking.k8s.io/v1alpha1 AdminNetworkPolicy
BANP = "banp"  # policy.networking.k8s.io/v1alpha1 BaselineAdminNetworkPolicy
CNP = "cnp"  # policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy
TIER = "tier"  # projectcalico.org/v3 | crd.projectcalico.org/v1 Tier

CALICO_GROUPS = frozenset({"projectcalico.org", "crd.projectcalico.org"})
NAMESPACED_FLAVORS = frozenset({K8S, CALICO})
GLOBAL_FLAVORS = frozenset({CALICO_GLOBAL, ANP, BANP, CNP, TIER})

_FLAVORS: Mapping[tuple[str, str], str] = {
    ("networking.k8s.io", "NetworkPolicy"): K8S,
    ("projectcalico.org", "NetworkPolicy"): CALICO,
    ("crd.projectcalico.org", "NetworkPolicy"): CALICO,
    ("projectcalico.org", "GlobalNetworkPolicy"): CALICO_GLOBAL,
    ("crd.projectcalico.org", "GlobalNetworkPolicy"): CALICO_GLOBAL,
    ("projectcalico.org", "StagedNetworkPolicy"): CALICO_STAGED,
    ("crd.projectcalico.org", "StagedNetworkPolicy"): CALICO_STAGED,
    ("projectcalico.org", "StagedGlobalNetworkPolicy"): CALICO_STAGED,
    ("crd.projectcalico.org", "StagedGlobalNetworkPolicy"): CALICO_STAGED,
    ("projectcalico.org", "StagedKubernetesNetworkPolicy"): CALICO_STAGED,
    ("crd.projectcalico.org", "StagedKubernetesNetworkPolicy"): CALICO_STAGED,
    ("policy.networking.k8s.io", "AdminNetworkPolicy"): ANP,
    ("policy.networking.k8s.io", "BaselineAdminNetworkPolicy"): BANP,
    ("policy.networking.k8s.io", "ClusterNetworkPolicy"): CNP,
    ("projectcalico.org", "Tier"): TIER,
    ("crd.projectcalico.org", "Tier"): TIER,
}


def kinds_of(*flavors: str) -> frozenset[tuple[str, str]]:
    """Every (API group, kind) whose objects are of one of these flavors."""
    return frozenset(group_kind for group_kind, flavor in _FLAVORS.items() if flavor in flavors)


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def flavor_for(group: str, kind: str) -> str | None:
    """The flavor of objects of this API group and kind, or None if not a network policy."""
    return _FLAVORS.get((group, kind))


def flavor_of(obj: Obj) -> str | None:
    """The flavor of a whole object (by its apiVersion and kind), or None."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    return flavor_for(group_of(api_version), kind)


def meta_of(obj: Obj) -> Mapping[str, object]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def ref_of(obj: Obj, flavor: str, default_namespace: str = "") -> PolicyRef:
    meta = meta_of(obj)
    namespace = "" if flavor in GLOBAL_FLAVORS else str(meta.get("namespace") or default_namespace)
    return PolicyRef(
        kind=str(obj.get("kind") or ""),
        flavor=flavor,
        namespace=namespace,
        name=str(meta.get("name") or ""),
    )
