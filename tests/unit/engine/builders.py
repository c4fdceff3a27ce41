"""Raw policy objects as the API server stores them, built tersely for the engine tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webhook.policy.model import Namespace

V3 = "projectcalico.org/v3"
V1 = "crd.projectcalico.org/v1"


def ns(name: str, **labels: str) -> Namespace:
    return Namespace(name, {"kubernetes.io/metadata.name": name, **labels})


def k8s_np(name: str, namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def default_deny(namespace: str = "shop", *types: str) -> dict[str, Any]:
    return k8s_np("default-deny", namespace, policyTypes=list(types or ("Ingress", "Egress")))


def calico_np(
    name: str,
    namespace: str = "shop",
    api: str = V3,
    meta: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, **(meta or {})},
        "spec": spec,
    }


def gnp(
    name: str, api: str = V3, meta: Mapping[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name, **(meta or {})},
        "spec": spec,
    }


def tier(
    name: str, order: float | None = None, action: str | None = None, api: str = V3
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if order is not None:
        spec["order"] = order
    if action is not None:
        spec["defaultAction"] = action
    return {"apiVersion": api, "kind": "Tier", "metadata": {"name": name}, "spec": spec}


def cnp(name: str, tier_name: str, priority: int = 10, **spec: Any) -> dict[str, Any]:
    spec.setdefault("subject", {"namespaces": {}})
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha2",
        "kind": "ClusterNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"tier": tier_name, "priority": priority, **spec},
    }


def anp(name: str, priority: int = 10, **spec: Any) -> dict[str, Any]:
    spec.setdefault("subject", {"namespaces": {}})
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"priority": priority, **spec},
    }


def banp(**spec: Any) -> dict[str, Any]:
    spec.setdefault("subject", {"namespaces": {}})
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": spec,
    }


def v1_meta(labels: Mapping[str, str], uid: str | None = None, **system: str) -> dict[str, Any]:
    """Metadata of a crd.projectcalico.org/v1 object: user labels in the JSON annotation."""
    meta: dict[str, Any] = {
        "labels": dict(system),
        "annotations": {"projectcalico.org/metadata": json.dumps({"labels": dict(labels)})},
    }
    if uid is not None:
        meta["uid"] = uid
    return meta


EVERYTHING_V4 = [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}]
ALL_NAMESPACES = {
    "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "Exists"}]
}
