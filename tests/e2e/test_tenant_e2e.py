"""Attempts of a tenant to get around Guardrail, through the real API server and kubectl.

The tenant is a ServiceAccount of its own namespace bound to the built-in `admin` ClusterRole
there (and, where the attempt needs it, one more permission named in the test), as a platform
team hands out namespaces. Each test is an attempt that got around earlier versions.
"""

from __future__ import annotations

import http.client
import secrets
import ssl
import subprocess
import threading
import time
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


def _deny(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _policies(cluster: Cluster, namespace: str) -> list[str]:
    listed = cluster.kubectl("get", "networkpolicy", "-n", namespace, "-o", "name")
    return sorted(name.rpartition("/")[2] for name in listed.stdout.split())


def _delete_at_once(cluster: Cluster, paths: list[str], user: str) -> list[int]:
    """DELETE every path at the same instant as `user`, each on a connection opened before
    the threads are released together; the HTTP statuses in the order of paths."""
    host, _, port = cluster.server.removeprefix("https://").partition(":")
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    connections = [http.client.HTTPSConnection(host, int(port), context=context) for _ in paths]
    for connection in connections:
        connection.connect()
    start = threading.Barrier(len(paths))
    statuses = [0] * len(paths)

    def send(index: int) -> None:
        headers = {"Authorization": f"Bearer {cluster.token}", "Impersonate-User": user}
        start.wait()
        connections[index].request("DELETE", paths[index], headers=headers)
        response = connections[index].getresponse()
        response.read()
        statuses[index] = response.status

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for connection in connections:
        connection.close()
    return statuses


def test_default_denies_deleted_at_the_same_instant_never_all_go(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """The tenant deletes every default-deny of its namespace at once, round after round, each
    delete on its own connection (so on different workers, whose caches have not seen the
    other deletes): one is always refused and the namespace stays isolated."""
    namespace, _ = tenant
    user = f"system:serviceaccount:{namespace}:owner"
    names = ["default-deny", "deny-b", "deny-c"]
    refused = 0
    for round_number in range(12):
        wanted = names[: 2 + round_number % 2]  # two, then three, deleted all at once
        missing = [name for name in wanted if name not in _policies(cluster, namespace)]
        assert apply(cluster, namespace, *(_deny(name) for name in missing)).returncode == 0
        present = _policies(cluster, namespace)
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        statuses = _delete_at_once(cluster, [f"{path}/{name}" for name in present], user)
        assert set(statuses) <= {200, 403}, statuses
        refused += statuses.count(403)
        left = _policies(cluster, namespace)
        assert left, f"round {round_number}: every default-deny deleted ({statuses})"
    assert refused >= 12


def test_a_collection_delete_of_two_default_denies_keeps_the_newer(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """deletecollection with two default-denies: the older goes, the newer (the anchor) stays.

    The API server deletes items in name order and stops at the first refused one, so the
    newer is named to come last."""
    namespace, as_owner = tenant
    time.sleep(1.1)  # creationTimestamp has a resolution of a second
    assert apply(cluster, namespace, _deny("z-newer-deny")).returncode == 0
    path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
    emptied = cluster.kubectl("delete", "--raw", path, *as_owner, check=False)
    assert emptied.returncode == 1, emptied.stdout
    assert "[protect-default-deny]" in emptied.stderr, emptied.stderr
    assert _policies(cluster, namespace) == ["z-newer-deny"]


def test_a_refusal_kept_across_requests_follows_the_namespace(
    cluster: Cluster, tenant: tuple[str, tuple[str, ...]]
) -> None:
    """protect-default-deny keeps what a change loses by the shapes of the namespace's views:
    the same delete is refused, then allowed once a newer default-deny is there, then refused
    again once the recreated one is the newer; and in a second namespace of the same shapes
    the refusal names that namespace."""
    namespace, as_owner = tenant
    other = _name("tenant")
    cluster.create_namespace(other)

    def delete(target: str, *flags: str) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl(
            "delete", "networkpolicy", "default-deny", "-n", target, *flags, check=False
        )

    try:
        assert apply(cluster, other, _deny("default-deny")).returncode == 0
        # The tenant twice (the second is the kept answer), then the cluster's admin in the
        # other namespace of the same shapes.
        for target, flags in ((namespace, as_owner), (namespace, as_owner), (other, ())):
            refused = delete(target, *flags)
            assert refused.returncode == 1, refused.stdout
            assert f'namespace "{target}"' in refused.stderr, refused.stderr
        # creationTimestamp counts seconds: the newer one must be a second newer (at the same
        # second the anchor is the last by name, which is not what this test is about).
        time.sleep(1.1)
        assert apply(cluster, namespace, _deny("deny-newer")).returncode == 0
        # Allowed once the newer one's watch event is in every worker: it is the anchor now.
        eventually(
            lambda: delete(namespace, *as_owner).returncode == 0,
            what="the older default-deny deleted beside a newer one",
        )
        time.sleep(1.1)
        assert apply(cluster, namespace, _deny("default-deny")).returncode == 0
        # The recreated default-deny is the newer of the two, so the anchor: refused again.
        again = eventually(
            lambda: (r := delete(namespace, *as_owner)).returncode == 1 and r,
            what="the recreated default-deny refused",
        )
        assert "[protect-default-deny]" in again.stderr, again.stderr
        assert _policies(cluster, namespace) == ["default-deny", "deny-newer"]
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", "--ignore-not-found")
