"""What the live cache keeps of an API object, and where it reads each resource."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.kube import K8S_POLICIES, NAMESPACES, _calico, slim

SERVED_POLICY: dict[str, Any] = {
    "metadata": {
        "name": "default-deny",
        "namespace": "shop",
        "uid": "0b6c4f4e-0000-4000-8000-000000000000",
        "resourceVersion": "4711",
        "generation": 1,
        "creationTimestamp": "2026-11-23T18:00:00Z",
        "labels": {"team": "shop"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
        "managedFields": [{"manager": "kubectl", "operation": "Update"}],
    },
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}
SERVED_NAMESPACE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {
        "name": "shop",
        "resourceVersion": "12",
        "labels": {"kubernetes.io/metadata.name": "shop"},
        "deletionTimestamp": "2026-11-23T18:01:00Z",
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {"finalizers": ["kubernetes"]},
    "status": {"phase": "Terminating"},
}


@pytest.mark.parametrize(
    ("served", "resource", "kept"),
    [
        (
            SERVED_POLICY,
            K8S_POLICIES,
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": "default-deny",
                    "namespace": "shop",
                    # The uid stays: one policy seen under two names or groups is one policy.
                    "uid": "0b6c4f4e-0000-4000-8000-000000000000",
                    "resourceVersion": "4711",
                    "labels": {"team": "shop"},
                    # The newest policy isolating a pod is the one protect-default-deny keeps.
                    "creationTimestamp": "2026-11-23T18:00:00Z",
                },
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            },
        ),
        (
            SERVED_NAMESPACE,
            NAMESPACES,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": "shop",
                    "resourceVersion": "12",
                    "labels": {"kubernetes.io/metadata.name": "shop"},
                    "deletionTimestamp": "2026-11-23T18:01:00Z",
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Terminating"},
            },
        ),
    ],
    ids=["policy-from-a-list-item", "terminating-namespace"],
)
def test_slim_keeps_what_policies_read(
    served: dict[str, Any], resource: Any, kept: dict[str, Any]
) -> None:
    """A cached object keeps identity, version, labels and spec (Namespaces: status too), and
    gets the kind and apiVersion that list items omit; managedFields and last-applied go."""
    assert slim(dict(served), resource) == kept


@pytest.mark.parametrize(
    ("group", "version", "namespace", "urls"),
    [
        (
            "crd.projectcalico.org",
            "v1",
            "shop",
            (
                "/apis/crd.projectcalico.org/v1/namespaces/shop/networkpolicies",
                "/apis/crd.projectcalico.org/v1/globalnetworkpolicies",
            ),
        ),
        (
            "projectcalico.org",
            "v3",
            None,
            (
                "/apis/projectcalico.org/v3/networkpolicies",
                "/apis/projectcalico.org/v3/globalnetworkpolicies",
            ),
        ),
    ],
    ids=["crd-in-namespace", "v3-cluster-wide"],
)
def test_calico_resource_urls(
    group: str, version: str, namespace: str | None, urls: tuple[str, str]
) -> None:
    """Calico NetworkPolicies are read per namespace; GlobalNetworkPolicies always cluster-wide."""
    namespaced, global_, _ = _calico(group, version)
    assert (namespaced.url(namespace), global_.url(namespace)) == urls
    assert (namespaced.kind, global_.kind) == ("NetworkPolicy", "GlobalNetworkPolicy")
