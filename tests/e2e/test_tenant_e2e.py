"""Attempts of a tenant to get around Guardrail, through the real API server and kubectl.

The tenant is a ServiceAccount of its own namespace bound to the built-in `admin` ClusterRole
there (and, where the attempt needs it, one more permission named in the test), as a platform
team hands out namespaces. Each test is an attempt that got around earlier versions.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.guardrail import AS_EXEMPT, Guardrail, GuardrailControl
from tests.e2e.harness import Cluster, eventually

pytestmark = pytest.mark.e2e

LABELS = {"app": "api", "role": "backend"}


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def apply(
    cluster: Cluster, namespace: str, *objs: dict[str, Any], extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply",
        "-n",
        namespace,
        *extra,
        "-f",
        "-",
        input=yaml.safe_dump_all(objs, sort_keys=False),
        check=False,
    )


@pytest.fixture
def enforcing(webhook: GuardrailControl) -> Guardrail:
    return webhook.use("enforce")


@pytest.fixture
def tenant(cluster: Cluster, enforcing: Guardrail) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(namespace, kubectl flags acting as its admin ServiceAccount), with a default-deny."""
    namespace = _name("tenant")
    cluster.create_namespace(namespace)
    cluster.kubectl("create", "serviceaccount", "owner", "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        "owner-admin",
        "-n",
        namespace,
        "--clusterrole=admin",
        f"--serviceaccount={namespace}:owner",
    )
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert apply(cluster, namespace, deny).returncode == 0
    yield namespace, (f"--as=system:serviceaccount:{namespace}:owner",)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


def test_labels_cannot_be_removed_through_pods_status(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """A patch of pods/status that drops the role label is judged like a pod update: denied."""
    namespace, as_owner = tenant
    # The one permission beyond admin that the attempt needs.
    cluster.kubectl(
        "create",
        "role",
        "status-writer",
        "-n",
        namespace,
        "--verb=patch,update",
        "--resource=pods/status",
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "status-writer",
        "-n",
        namespace,
        "--role=status-writer",
        f"--serviceaccount={namespace}:owner",
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": LABELS},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/api:1"}]},
    }

    def created() -> bool:
        return apply(cluster, namespace, pod, extra=as_owner).returncode == 0

    eventually(created, what="the labelled pod admitted")
    patched = cluster.kubectl(
        "patch",
        "pod",
        "web",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"metadata":{"labels":{"role":null}}}',
        *as_owner,
        check=False,
    )
    assert patched.returncode == 1, patched.stdout
    assert (
        'admission webhook "workloads.guardrail.dev" denied the request: '
        f'[require-role-labels] Pod "web" in namespace "{namespace}" is missing required '
        "labels: role."
    ) in patched.stderr, patched.stderr
    role = cluster.kubectl(
        "get", "pod", "web", "-n", namespace, "-o", "jsonpath={.metadata.labels.role}"
    )
    assert role.stdout == "backend"


def test_scaling_down_works_after_isolation_is_lost(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """Once the default-deny is gone, kubectl scale --replicas=0 still removes the pods."""
    namespace, as_owner = tenant
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {"containers": [{"name": "api", "image": "registry.invalid/api:1"}]},
            },
        },
    }

    def pods() -> int:
        listed = cluster.kubectl("get", "pods", "-n", namespace, "-o", "name")
        return len(listed.stdout.split())

    eventually(
        lambda: apply(cluster, namespace, deployment, extra=as_owner).returncode == 0,
        what="the deployment admitted",
    )
    eventually(lambda: pods() == 2, what="two pods created by the ReplicaSet", timeout=60)
    # The platform removes the isolation (as an exempt admin: for anyone else it is protected).
    cluster.kubectl("delete", "networkpolicy", "default-deny", "-n", namespace, *AS_EXEMPT)
    scaled = cluster.kubectl(
        "scale", "deployment", "api", "-n", namespace, "--replicas=0", *as_owner
    )
    assert scaled.stdout.strip() == "deployment.apps/api scaled"
    eventually(lambda: pods() == 0, what="the ReplicaSet scaled down to no pod", timeout=60)


def test_a_tenant_cannot_claim_an_exempt_namespace_name(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """A tenant allowed to create namespaces cannot create tigera-operator (exempt by name);
    the cluster admin (system:masters) can."""
    namespace, as_owner = tenant
    cluster.kubectl(
        "create",
        "clusterrole",
        f"ns-creator-{namespace}",
        "--verb=create",
        "--resource=namespaces",
    )
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        f"ns-creator-{namespace}",
        f"--clusterrole=ns-creator-{namespace}",
        f"--serviceaccount={namespace}:owner",
    )
    try:
        claimed = cluster.kubectl("create", "namespace", "tigera-operator", *as_owner, check=False)
        assert claimed.returncode == 1, claimed.stdout
        assert (
            'admission webhook "exempt-namespace-names.guardrail.dev" denied the request: '
            '[guardrail] Namespace "tigera-operator" is exempt from Guardrail\'s policies, so only '
            "an exempt user or group"
        ) in claimed.stderr, claimed.stderr
        ordinary = cluster.kubectl(
            "create", "namespace", f"{namespace}-team", *as_owner, check=False
        )
        assert ordinary.returncode == 0, ordinary.stderr
        admin = cluster.kubectl("create", "namespace", "tigera-operator", check=False)
        assert admin.returncode == 0, admin.stderr
    finally:
        for name in ("tigera-operator", f"{namespace}-team"):
            cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
        cluster.kubectl("delete", "clusterrolebinding", f"ns-creator-{namespace}")
        cluster.kubectl("delete", "clusterrole", f"ns-creator-{namespace}")


def test_a_collection_delete_of_the_only_default_deny_is_refused(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """deletecollection is judged item by item: emptying the namespace's policies is denied."""
    namespace, as_owner = tenant
    path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
    emptied = cluster.kubectl("delete", "--raw", path, *as_owner, check=False)
    assert emptied.returncode == 1, emptied.stdout
    assert "[protect-default-deny]" in emptied.stderr, emptied.stderr
    listed = cluster.kubectl("get", "networkpolicy", "-n", namespace, "-o", "name")
    assert listed.stdout.split() == ["networkpolicy.networking.k8s.io/default-deny"]
