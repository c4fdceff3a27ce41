"""`guardrail check --cluster`: manifests judged against the live cluster's namespaces and
policies (read once through the API server) plus their own."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.guardrail import GUARDRAIL
from tests.e2e.harness import Cluster, free_port

pytestmark = pytest.mark.e2e

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: {namespace}
  labels: {{app: web, role: frontend}}
spec:
  containers: [{{name: web, image: registry.invalid/web:1}}]
"""

DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny, namespace: {namespace}}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress, Egress]
"""


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GUARDRAIL, "check", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """(a namespace holding a default-deny in the cluster, one holding none)."""
    token = secrets.token_hex(3)
    protected, bare = f"check-{token}-protected", f"check-{token}-bare"
    for name in (protected, bare):
        cluster.create_namespace(name)
    cluster.kubectl("apply", "-f", "-", input=DEFAULT_DENY.format(namespace=protected))
    yield protected, bare
    for name in (protected, bare):
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.mark.parametrize(
    ("which", "mode", "code", "says"),
    [
        ("protected", "cluster", 0, None),
        ("protected", "offline", 0, "not verified"),
        ("protected", "strict", 1, "cannot run there"),
        ("bare", "cluster", 1, "cannot run there"),
    ],
    ids=["cluster-policy-counts", "offline-unverified", "offline-strict", "cluster-has-no-policy"],
)
def test_check_reads_the_cluster_policies(
    cluster: Cluster,
    namespaces: tuple[str, str],
    tmp_path: Path,
    which: str,
    mode: str,
    code: int,
    says: str | None,
) -> None:
    """A Pod passes `check --cluster` when its namespace's default-deny is in the cluster, and
    is an error when it is in neither the cluster nor the manifests. Offline, the input says
    nothing about the namespace: unverified (a warning, exit 0) unless --strict."""
    namespace = namespaces[0] if which == "protected" else namespaces[1]
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD.format(namespace=namespace), encoding="utf-8")
    flags = {
        "cluster": ("--cluster", "--kubeconfig", str(cluster.kubeconfig)),
        "offline": (),
        "strict": ("--strict",),
    }[mode]
    result = check(*flags, str(manifest))
    assert result.returncode == code, result.stdout + result.stderr
    if says is None:
        assert "[require-default-deny]" not in result.stdout
    else:
        assert "[require-default-deny]" in result.stdout
        assert says in result.stdout
        level = "warning" if mode == "offline" else "error"
        assert f": {level}: [require-default-deny]" in result.stdout


def test_check_cluster_adds_manifest_policies(
    cluster: Cluster, namespaces: tuple[str, str], tmp_path: Path
) -> None:
    """The manifests' own default-deny counts alongside the cluster's state."""
    bare = namespaces[1]
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        DEFAULT_DENY.format(namespace=bare) + "---\n" + POD.format(namespace=bare),
        encoding="utf-8",
    )
    result = check("--cluster", "--kubeconfig", str(cluster.kubeconfig), str(manifest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[require-default-deny]" not in result.stdout


def test_check_cluster_unreachable_is_bad_input(cluster: Cluster, tmp_path: Path) -> None:
    """An API server that does not answer is exit 2 with a message naming it, no traceback."""
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        cluster.kubeconfig.read_text(encoding="utf-8").replace(
            cluster.server, f"https://127.0.0.1:{port}"
        ),
        encoding="utf-8",
    )
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD.format(namespace="default"), encoding="utf-8")
    result = check("--cluster", "--kubeconfig", str(kubeconfig), str(manifest))
    assert result.returncode == 2
    assert "cannot read the cluster's namespaces and network policies" in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
