"""The chart installed for real with `helm install` against the e2e API server: every object
stored, the pods admitted under Pod Security `restricted`, the certificate loop's rights
enough to write its Secret and the caBundle (and nothing more), an upgrade that keeps what the
loop wrote, and `helm uninstall` leaving nothing behind.

No kubelet runs here: the Deployment's pods are created but never start (tests/e2e/README.md).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster, eventually
from tests.helm import CHART, NAMESPACE, RELEASE, REPO, run_helm

pytestmark = pytest.mark.e2e

SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:guardrail"
# Stand-ins for what guardrail's certificate loop writes: the Secret's pair and the caBundle.
LOOP_SECRET = {"ca.crt": b"loop CA\n", "tls.crt": b"loop certificate\n", "tls.key": b"loop key\n"}
LOOP_CA_BUNDLE = base64.b64encode(b"loop CA\n").decode()


def _helm(cluster: Cluster, home: Path, *args: str) -> str:
    """helm against the e2e cluster, its caches and config under ``home``, never ~."""
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    done = run_helm(*args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _get(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _exists(cluster: Cluster, kind: str, name: str, namespace: str | None) -> bool:
    where = ("-n", namespace) if namespace else ()
    found = cluster.kubectl("get", kind, name, *where, "--ignore-not-found", "-o", "name")
    return found.stdout.strip() != ""


def _can(cluster: Cluster, verb: str, resource: str, namespace: str | None = None) -> bool:
    where = ("-n", namespace) if namespace else ()
    done = cluster.kubectl(
        "auth", "can-i", verb, resource, *where, f"--as={SERVICE_ACCOUNT}", check=False
    )
    return done.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The namespace as deploy/base/namespace.yaml makes it, then `helm install` (self-managed
    certificates); uninstalled, and the namespace deleted, afterwards."""
    home = tmp_path_factory.mktemp("helm")
    existing = cluster.kubectl(
        "get", "validatingwebhookconfiguration", "guardrail", "--ignore-not-found", "-o", "name"
    )
    assert existing.stdout.strip() == "", "an earlier test left deploy/ installed"
    namespace = yaml.safe_load((REPO / "deploy" / "base" / "namespace.yaml").read_text())
    cluster.kubectl("apply", "-f", "-", input=json.dumps(namespace))
    try:
        output = _helm(cluster, home, "install", RELEASE, str(CHART), "--namespace", NAMESPACE)
        (home / "install.out").write_text(output)
        yield home
    finally:
        with contextlib.suppress(AssertionError):
            _helm(cluster, home, "uninstall", RELEASE, "--namespace", NAMESPACE)
        cluster.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
        eventually(
            lambda: not _exists(cluster, "namespace", NAMESPACE, None),
            what=f"namespace {NAMESPACE} deleted",
            timeout=90,
        )


def _manifest(cluster: Cluster, home: Path) -> list[dict[str, Any]]:
    text = _helm(cluster, home, "get", "manifest", RELEASE, "--namespace", NAMESPACE)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_install_stores_every_object_and_pods_pass_pod_security(
    cluster: Cluster, release: Path
) -> None:
    """Every object of the release is stored as rendered (no caBundle, the Secret empty), and
    the ReplicaSet's two pods are admitted in a `restricted` namespace without a warning."""
    docs = _manifest(cluster, release)
    for doc in docs:
        namespace = doc["metadata"].get("namespace")
        assert _exists(cluster, doc["kind"], doc["metadata"]["name"], namespace), doc["kind"]
    webhook = _get(cluster, "validatingwebhookconfiguration", "guardrail")
    assert [w.get("clientConfig", {}).get("caBundle") for w in webhook["webhooks"]] == [None] * 4
    assert "data" not in _get(cluster, "secret", "guardrail-tls", "-n", NAMESPACE)

    def pods() -> int:
        found = _get(cluster, "pods", "-n", NAMESPACE, "-l", "app=guardrail,role=webhook")
        return len(found["items"]) if len(found["items"]) >= 2 else 0

    assert eventually(pods, what="the ReplicaSet's two pods admitted", timeout=60) == 2
    events = cluster.kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout
    assert "violates PodSecurity" not in events
    notes = (release / "install.out").read_text()
    assert (
        "Exempt namespaces (never judged): calico-apiserver, calico-system, guardrail-system,"
        in (notes)
    )
    assert "Roll out with --set mode=audit first" in notes


@pytest.mark.parametrize(
    ("verb", "resource", "namespace", "allowed"),
    [
        ("get", "secrets/guardrail-tls", NAMESPACE, True),
        ("update", "secrets/guardrail-tls", NAMESPACE, True),
        ("get", "secrets/other", NAMESPACE, False),
        ("list", "secrets", NAMESPACE, False),
        ("create", "secrets", NAMESPACE, False),
        ("get", "secrets/guardrail-tls", "default", False),
        ("get", "validatingwebhookconfigurations/guardrail", None, True),
        ("update", "validatingwebhookconfigurations/guardrail", None, True),
        ("update", "validatingwebhookconfigurations/other", None, False),
        ("patch", "validatingwebhookconfigurations/guardrail", None, False),
        ("list", "networkpolicies.networking.k8s.io", "default", True),
    ],
    ids=str,
)
def test_service_account_rights_are_the_loops_and_no_more(
    cluster: Cluster, release: Path, verb: str, resource: str, namespace: str | None, allowed: bool
) -> None:
    """The certificate loop may get and update its one Secret and its one webhook
    configuration, by name; no other Secret, no list, no create."""
    del release
    assert _can(cluster, verb, resource, namespace) is allowed


def test_upgrade_keeps_what_the_certificate_loop_wrote(cluster: Cluster, release: Path) -> None:
    """What the loop writes with its own rights (update, as the ServiceAccount) survives
    `helm upgrade`: the Secret's pair and every caBundle stay, while the new config lands and
    the pods' checksum changes."""
    secret = _get(cluster, "secret", "guardrail-tls", "-n", NAMESPACE)
    secret["data"] = {key: base64.b64encode(value).decode() for key, value in LOOP_SECRET.items()}
    cluster.kubectl("replace", "-f", "-", f"--as={SERVICE_ACCOUNT}", input=json.dumps(secret))
    webhook = _get(cluster, "validatingwebhookconfiguration", "guardrail")
    for entry in webhook["webhooks"]:
        entry["clientConfig"]["caBundle"] = LOOP_CA_BUNDLE
    cluster.kubectl("replace", "-f", "-", f"--as={SERVICE_ACCOUNT}", input=json.dumps(webhook))
    before = _get(cluster, "deployment", "guardrail", "-n", NAMESPACE)

    _helm(
        cluster, release,
        "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "--set", "mode=audit",
    )  # fmt: skip

    stored = _get(cluster, "secret", "guardrail-tls", "-n", NAMESPACE)
    assert {k: base64.b64decode(v) for k, v in stored["data"].items()} == LOOP_SECRET
    webhook = _get(cluster, "validatingwebhookconfiguration", "guardrail")
    assert [w["clientConfig"]["caBundle"] for w in webhook["webhooks"]] == [LOOP_CA_BUNDLE] * 4
    config = _get(cluster, "configmap", "guardrail-config", "-n", NAMESPACE)
    assert yaml.safe_load(config["data"]["config.yaml"])["mode"] == "audit"
    after = _get(cluster, "deployment", "guardrail", "-n", NAMESPACE)

    def checksum(deployment: dict[str, Any]) -> str:
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum(after) != checksum(before)


def test_uninstall_leaves_nothing_behind(cluster: Cluster, release: Path) -> None:
    """After the README's order (the webhook configuration first, then `helm uninstall`),
    none of the release's objects is left, cluster-wide ones included."""
    docs = _manifest(cluster, release)
    cluster.kubectl("delete", "validatingwebhookconfiguration", "guardrail")
    _helm(cluster, release, "uninstall", RELEASE, "--namespace", NAMESPACE)
    for doc in docs:
        namespace = doc["metadata"].get("namespace")
        kind, name = doc["kind"], doc["metadata"]["name"]
        eventually(
            lambda kind=kind, name=name, namespace=namespace: (
                not _exists(cluster, kind, name, namespace)
            ),
            what=f"{kind} {name} deleted",
            timeout=30,
        )
