"""Smoke tests of the e2e harness itself: the control plane behaves like a real cluster
through the real kubectl, before any Guardrail webhook is registered."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.e2e.harness import Cluster, eventually

pytestmark = pytest.mark.e2e

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web, role: frontend}
spec:
  containers:
  - name: web
    image: registry.invalid/web:1
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api, role: backend}
    spec:
      containers:
      - name: api
        image: registry.invalid/api:1
"""


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace whose default ServiceAccount exists, deleted afterwards."""
    name = _name("smoke")
    cluster.create_namespace(name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def test_new_namespace_gets_default_service_account(cluster: Cluster) -> None:
    """kubectl prints the namespace's creation; the controller manager adds its ServiceAccount."""
    name = _name("sa")
    created = cluster.kubectl("create", "namespace", name)
    assert created.stdout.strip() == f"namespace/{name} created"

    found = eventually(
        lambda: (
            cluster.kubectl(
                "get", "serviceaccount", "default", "-n", name, "-o", "name", check=False
            ).stdout.strip()
            or None
        ),
        what=f"serviceaccount default in {name}",
    )
    assert found == "serviceaccount/default"


@pytest.mark.parametrize(
    ("manifest", "printed"),
    [(POD, "pod/web created"), (DEPLOYMENT, "deployment.apps/api created")],
    ids=["pod", "deployment"],
)
def test_workload_is_admitted(
    cluster: Cluster, namespace: str, manifest: str, printed: str
) -> None:
    """kubectl apply of a workload passes the built-in admission chain and is stored."""
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    assert result.stdout.strip() == printed
    assert result.stderr == ""

    kind_name = printed.removesuffix(" created")
    listed = cluster.kubectl("get", kind_name, "-n", namespace, "-o", "name")
    assert listed.stdout.strip() == kind_name


def test_deployment_creates_replicaset_and_pod(cluster: Cluster, namespace: str) -> None:
    """The controller manager turns a Deployment into a ReplicaSet and the ReplicaSet into a Pod."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)

    replicasets = eventually(
        lambda: (
            cluster.kubectl(
                "get", "replicasets", "-n", namespace, "-l", "app=api", "-o", "name"
            ).stdout.split()
            or None
        ),
        what="the Deployment's ReplicaSet",
    )
    assert len(replicasets) == 1
    assert replicasets[0].startswith("replicaset.apps/api-")

    pods = eventually(
        lambda: (
            cluster.kubectl(
                "get", "pods", "-n", namespace, "-l", "app=api", "-o", "name"
            ).stdout.split()
            or None
        ),
        what="the ReplicaSet's Pod",
    )
    assert len(pods) == 1
    assert pods[0].startswith("pod/api-")


def test_namespace_deletion_completes(cluster: Cluster) -> None:
    """kubectl delete namespace waits until the controller manager has emptied and removed it."""
    name = _name("del")
    cluster.create_namespace(name)
    cluster.kubectl("apply", "-n", name, "-f", "-", input=POD)

    deleted = cluster.kubectl("delete", "namespace", name, "--timeout=60s", timeout=90)
    assert deleted.stdout.strip() == f'namespace "{name}" deleted'

    gone = cluster.kubectl("get", "namespace", name, check=False)
    assert gone.returncode == 1
    assert f'namespaces "{name}" not found' in gone.stderr


def test_audit_log_records_create(cluster: Cluster, namespace: str) -> None:
    """The API server's audit log holds a Metadata-level event for a Pod created through kubectl."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=POD)

    events = [
        event
        for event in cluster.audit_events()
        if event.get("verb") == "create"
        and event.get("objectRef", {}).get("resource") == "pods"
        and event.get("objectRef", {}).get("namespace") == namespace
    ]
    assert len(events) == 1
    event = events[0]
    assert event["level"] == "Metadata"
    assert event["stage"] == "ResponseComplete"
    assert event["objectRef"]["name"] == "web"
    assert event["responseStatus"]["code"] == 201
    assert event["user"]["username"] == "guardrail-e2e-admin"


def test_apiserver_restart_keeps_state(cluster: Cluster, namespace: str) -> None:
    """A killed API server refuses kubectl; restarted on the same port it serves the same data."""
    cluster.stop_apiserver()
    try:
        down = cluster.kubectl("get", "namespace", namespace, check=False, timeout=30)
        assert down.returncode == 1
        address = cluster.server.removeprefix("https://")
        assert f"The connection to the server {address} was refused" in down.stderr
    finally:
        cluster.start_apiserver()

    back = cluster.kubectl("get", "namespace", namespace, "-o", "name")
    assert back.stdout.strip() == f"namespace/{namespace}"
    created = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=POD)
    assert created.stdout.strip() == "pod/web created"
