"""The install against a real API server: `kubectl apply -k deploy/` on a fresh cluster with no
step before it and `kubectl delete -k deploy/` after it, the cert-manager and self-signed
overlays, the move from self-signed to self-managed certificates, the ServiceAccount's
permissions through `kubectl auth can-i`, and `guardrail serve` running on that ServiceAccount's
token: making its own certificates as the default's pods do, and called by the API server
through the installed webhook configuration.

No kubelet runs here, so the Deployment's pods are created (proving Pod Security `restricted`
admits them) but never start; the tests run `guardrail serve` on 127.0.0.1 instead, with the
ServiceAccount's token, and point the installed webhooks at it where the API server must call it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from tests.checkout import copy_as_cloned
from tests.e2e.harness import Cluster, eventually, free_port
from webhook.cli import main
from webhook.selfcerts import CA_SINCE_ANNOTATION, LEASE_NAME

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
INSTALL_SELF_SIGNED = REPO / "scripts" / "install-self-signed"
NAMESPACE = "guardrail-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:guardrail"
# The name the API server verifies guardrail's serving certificate against (the Service's).
SERVICE_NAME = f"guardrail.{NAMESPACE}.svc"
# What guardrail, the install script and the README's commands run with: this checkout's
# code (PYTHONPATH passed on), the machine's kubectl.
PYTHONPATH = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
WEBHOOKS = (
    "workloads.guardrail.dev",
    "networkpolicies.guardrail.dev",
    "namespaces.guardrail.dev",
    "exempt-namespace-names.guardrail.dev",
)

# cert-manager itself is not part of this cluster: stand-in CRDs (any spec accepted) let the
# overlay's Issuers and Certificates be stored, which is all `kubectl apply` needs.
CERT_MANAGER_CRDS = tuple(
    f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.cert-manager.io}}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {{plural: {plural}, singular: {kind.lower()}, kind: {kind}}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""
    for plural, kind in (("issuers", "Issuer"), ("certificates", "Certificate"))
)


# The APIs guardrail reads or writes besides the built-in ones, as stand-in CRDs: with them
# served, `kubectl auth can-i` can name them, and `guardrail serve` discovers and watches them
# with its ServiceAccount's permissions, as on a cluster with Calico's CRDs and the report APIs.
# (projectcalico.org/v3 is Calico's aggregated API server: checked by SubjectAccessReview.)
POLICY_API_CRDS = tuple(
    f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
  annotations: {{api-approved.kubernetes.io: "https://github.com/kubernetes-sigs/network-policy-api/pull/30"}}
spec:
  group: {group}
  scope: {scope}
  names: {{plural: {plural}, singular: {kind.lower()}, kind: {kind}}}
  versions:
    - name: {version}
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""
    for group, version, plural, kind, scope in (
        ("crd.projectcalico.org", "v1", "networkpolicies", "NetworkPolicy", "Namespaced"),
        ("crd.projectcalico.org", "v1", "globalnetworkpolicies", "GlobalNetworkPolicy", "Cluster"),
        (
            "policy.networking.k8s.io",
            "v1alpha1",
            "adminnetworkpolicies",
            "AdminNetworkPolicy",
            "Cluster",
        ),
        (
            "policy.networking.k8s.io",
            "v1alpha1",
            "baselineadminnetworkpolicies",
            "BaselineAdminNetworkPolicy",
            "Cluster",
        ),
        ("wgpolicyk8s.io", "v1alpha2", "policyreports", "PolicyReport", "Namespaced"),
        ("wgpolicyk8s.io", "v1alpha2", "clusterpolicyreports", "ClusterPolicyReport", "Cluster"),
        ("openreports.io", "v1alpha1", "reports", "Report", "Namespaced"),
        ("openreports.io", "v1alpha1", "clusterreports", "ClusterReport", "Cluster"),
    )
)


@contextlib.contextmanager
def _missing_crds(cluster: Cluster, crds: tuple[str, ...]) -> Iterator[None]:
    """Create those of the stand-in CRDs the cluster lacks, and delete only those afterwards:
    other tests of the session may have installed the real ones, which must stay."""
    created: list[str] = []
    try:
        for crd in crds:
            name = str(yaml.safe_load(crd)["metadata"]["name"])
            if not cluster.kubectl("get", "crd", name, "--ignore-not-found", "-o", "name").stdout:
                cluster.kubectl("create", "-f", "-", input=crd)
                created.append(name)
        if created:
            cluster.kubectl(
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                *(f"crd/{name}" for name in created),
            )
        yield
    finally:
        if created:
            cluster.kubectl("delete", "crd", *created, "--ignore-not-found", "--wait=false")


def _deploy_copy(tmp: Path) -> Path:
    """deploy/ as a fresh clone has it: never certificates someone generated in the checkout."""
    deploy = copy_as_cloned("deploy", tmp)
    assert not (deploy / "overlays" / "self-signed" / "tls").exists()
    return deploy


def _kubectl_env(cluster: Cluster) -> dict[str, str]:
    """For a kubectl run by a script: this cluster, and its cache kept with the cluster's."""
    return {"KUBECONFIG": str(cluster.kubeconfig), "KUBECACHEDIR": str(cluster.tmp / "kube-cache")}


def _run_self_signed_script(cluster: Cluster, deploy: Path, *args: str) -> str:
    """`scripts/install-self-signed --deploy-dir DEPLOY ARGS...` on this cluster; its stdout."""
    done = subprocess.run(
        [str(INSTALL_SELF_SIGNED), "--deploy-dir", str(deploy), *args],
        env={
            "PATH": "/usr/bin:/bin",
            "GUARDRAIL": GUARDRAIL,
            "KUBECTL": cluster.kubectl_path,
            **_kubectl_env(cluster),
            **PYTHONPATH,
        },
        cwd=deploy.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _namespace_gone(cluster: Cluster) -> bool:
    result = cluster.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name")
    return result.stdout.strip() == ""


def _uninstall(cluster: Cluster, directory: Path) -> None:
    # Webhook configuration first: nothing may call a webhook that is going away.
    cluster.kubectl("delete", "validatingwebhookconfiguration", "guardrail", "--ignore-not-found")
    cluster.kubectl("delete", "-k", str(directory), "--ignore-not-found", "--wait=false")
    eventually(lambda: _namespace_gone(cluster), what=f"namespace {NAMESPACE} deleted", timeout=90)


def _get(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _rendered(cluster: Cluster, directory: Path) -> tuple[str, list[dict[str, Any]]]:
    """`kubectl kustomize DIRECTORY`: the text and its objects."""
    text = cluster.kubectl("kustomize", str(directory)).stdout
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


def _type_of(doc: Mapping[str, Any]) -> str:
    """How kubectl names an object's type: `kind` or `kind.group`."""
    group = str(doc["apiVersion"]).rpartition("/")[0]
    kind = str(doc["kind"]).lower()
    return f"{kind}.{group}" if group else kind


def _key(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return (_type_of(doc), str(meta.get("namespace", "")), str(meta["name"]))


def _stored(cluster: Cluster, rendered_text: str) -> set[tuple[str, str, str]]:
    """Which of the rendered objects the API server holds (`kubectl get -f`)."""
    found = cluster.kubectl(
        "get", "-f", "-", "--ignore-not-found", "-o", "json", input=rendered_text
    )
    if not found.stdout.strip():
        return set()
    listed = json.loads(found.stdout)
    return {_key(item) for item in listed.get("items", [listed])}


def _certificates(pem: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, as DER (a re-encoded bundle compares equal)."""
    from cryptography import x509  # noqa: PLC0415 - only the certificate checks parse PEM
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - as above

    return [
        cert.public_bytes(serialization.Encoding.DER)
        for cert in x509.load_pem_x509_certificates(pem)
    ]


def _secret(cluster: Cluster) -> dict[str, Any]:
    return dict(_get(cluster, "secret", "guardrail-tls", "-n", NAMESPACE))


def _ca_bundles(cluster: Cluster) -> list[str]:
    """Every webhook's caBundle ("" where there is none), in the configuration's order."""
    webhook = _get(cluster, "validatingwebhookconfiguration", "guardrail")
    assert tuple(w["name"] for w in webhook["webhooks"]) == WEBHOOKS
    return [str(w["clientConfig"].get("caBundle", "")) for w in webhook["webhooks"]]


def _pods_created(cluster: Cluster) -> int:
    pods = _get(cluster, "pods", "-n", NAMESPACE, "-l", "app=guardrail,role=webhook")
    return len(pods["items"]) if len(pods["items"]) >= 2 else 0


def _pods_admitted_as_restricted(cluster: Cluster) -> None:
    """The ReplicaSet's two pods pass Pod Security `restricted` admission in guardrail-system."""
    count = eventually(
        lambda: _pods_created(cluster), what="the ReplicaSet's two pods admitted", timeout=60
    )
    assert count == 2
    warnings = cluster.kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout
    assert "violates PodSecurity" not in warnings


def _container(cluster: Cluster) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The Deployment's container and its pod's volumes by name, as stored."""
    pod = _get(cluster, "deployment", "guardrail", "-n", NAMESPACE)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container, {v["name"]: v for v in pod["volumes"]}


@pytest.fixture(scope="module")
def installed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`kubectl apply -k deploy/` of a fresh clone, with no step before it, for real;
    uninstalled after the module."""
    deploy = _deploy_copy(tmp_path_factory.mktemp("default"))
    with _missing_crds(cluster, POLICY_API_CRDS):
        try:
            cluster.kubectl("apply", "-k", str(deploy))
            yield deploy
        finally:
            _uninstall(cluster, deploy)


class SelfManaged:
    """`guardrail serve --certificates=self-managed` on 127.0.0.1 with the ServiceAccount's
    token: what a pod of the default install runs (minus the kubelet), so that it reads and
    writes the cluster with exactly the installed permissions."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = _service_account_kubeconfig(cluster, workdir / "kubeconfig")
        self.port = free_port()
        self.log_path = workdir / "serve.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                GUARDRAIL,
                "serve",
                "--kubeconfig",
                str(kubeconfig),
                "--certificates=self-managed",
                "--cert-dir",
                str(workdir / "tls"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "4",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "POD_NAMESPACE": NAMESPACE, **PYTHONPATH},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def readyz(self, ca_pem: bytes) -> int:
        """/readyz's status over TLS verified as the API server verifies it: against `ca_pem`,
        for the Service's name; 0 when the TLS handshake fails."""
        assert self.process.poll() is None, self.log()
        context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=SERVICE_NAME) as tls,
            ):
                tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: guardrail\r\nConnection: close\r\n\r\n")
                response = http.client.HTTPResponse(tls)
                response.begin()
                return response.status
        except (OSError, ssl.SSLError):
            return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _filled_secret(cluster: Cluster) -> dict[str, Any] | None:
    """The Secret once guardrail has written it (its CA's start annotated), else None."""
    secret = _secret(cluster)
    annotations = secret["metadata"].get("annotations") or {}
    return secret if CA_SINCE_ANNOTATION in annotations else None


def _deleted_lines(docs: list[dict[str, Any]]) -> set[str]:
    return {f'{_type_of(d)} "{d["metadata"]["name"]}" deleted' for d in docs}


# -- the default: no step before `kubectl apply -k deploy/` ----------------------------------------
# (First: the module's own install, the `installed` fixture, is not there yet.)
def test_default_install_needs_no_step_and_uninstalls_cleanly(
    cluster: Cluster, tmp_path: Path
) -> None:
    """On a cluster without Guardrail, from a fresh clone and with nothing run before it:
    a server-side dry run fails only for want of the namespace (README); `kubectl apply -k
    deploy/` creates every object of `kubectl kustomize deploy/`, the pods pass Pod Security
    `restricted`, and the Secret and the caBundle are empty; guardrail on the ServiceAccount's
    token fills both and becomes ready, trusted for the Service's name; a second apply keeps
    what it wrote; `kubectl delete -k deploy/`, while guardrail still runs, completes in
    bounded time and leaves none of those objects, nor the namespace, behind."""
    eventually(lambda: _namespace_gone(cluster), what=f"no namespace {NAMESPACE}", timeout=90)
    deploy = _deploy_copy(tmp_path / "clone")
    text, docs = _rendered(cluster, deploy)
    namespaced = [d for d in docs if "namespace" in d["metadata"]]
    cluster_scoped = [d for d in docs if "namespace" not in d["metadata"]]
    assert {d["kind"] for d in cluster_scoped} == {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingWebhookConfiguration",
    }

    # A server-side dry run creates no namespace, so every namespaced object fails for want
    # of it (and kubectl diff, a dry run too, fails the same way); nothing is stored.
    dry = cluster.kubectl("apply", "-k", str(deploy), "--dry-run=server", check=False)
    assert dry.returncode == 1
    assert set(dry.stdout.splitlines()) == {
        f"{_type_of(d)}/{d['metadata']['name']} created (server dry run)" for d in cluster_scoped
    }
    errors = dry.stderr.splitlines()
    assert len(errors) == len(namespaced), dry.stderr
    assert all(f'namespaces "{NAMESPACE}" not found' in line for line in errors), dry.stderr
    diff = cluster.kubectl("diff", "-k", str(deploy), check=False)
    assert diff.returncode > 1  # 1 is "differences found"; above it, an error
    assert f'namespaces "{NAMESPACE}" not found' in diff.stderr
    assert _stored(cluster, text) == set()

    served: SelfManaged | None = None
    try:
        applied = cluster.kubectl("apply", "-k", str(deploy))
        assert set(applied.stdout.splitlines()) == {
            f"{_type_of(d)}/{d['metadata']['name']} created" for d in docs
        }
        assert applied.stderr == ""
        assert _stored(cluster, text) == {_key(d) for d in docs}
        _pods_admitted_as_restricted(cluster)
        container, volumes = _container(cluster)
        assert "--certificates=self-managed" in container["args"]
        assert "emptyDir" in volumes["tls"]
        secret = _secret(cluster)
        assert secret["type"] == "Opaque"
        assert not secret.get("data")
        assert _ca_bundles(cluster) == [""] * len(WEBHOOKS)

        # guardrail as the Deployment's pods run it, on the installed ServiceAccount's token.
        started = time.monotonic()
        served = SelfManaged(cluster, tmp_path / "serve")
        filled = eventually(
            lambda: _filled_secret(cluster), what="guardrail writing the Secret", timeout=60
        )
        assert set(filled["data"]) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
        ca_bundle = filled["data"]["ca.crt"]
        eventually(
            lambda: _ca_bundles(cluster) == [ca_bundle] * len(WEBHOOKS),
            what="every webhook's caBundle set to the Secret's CA",
        )
        ca_pem = base64.b64decode(ca_bundle)
        eventually(
            lambda: served.readyz(ca_pem) == 200,
            what="/readyz 200, trusted for the Service's name",
            timeout=60,
        )
        print(f"self-managed: Secret, caBundle and /readyz in {time.monotonic() - started:.1f}s")
        lease = _get(cluster, "lease", LEASE_NAME, "-n", NAMESPACE)
        assert lease["spec"]["holderIdentity"]
        # No round of the certificate loop failed (a 403 would be logged here).
        assert "self-managed certificates:" not in served.log()
        assert "HTTP 403" not in served.log()

        # A re-apply leaves what guardrail wrote alone: kubectl never set it.
        again = cluster.kubectl("apply", "-k", str(deploy))
        assert "secret/guardrail-tls unchanged" in again.stdout.splitlines()
        assert _secret(cluster)["data"] == filled["data"]
        assert _ca_bundles(cluster) == [ca_bundle] * len(WEBHOOKS)

        # The uninstall, while guardrail still runs (as its pods would until they stop).
        started = time.monotonic()
        deleted = cluster.kubectl("delete", "-k", str(deploy), "--timeout=90s", timeout=120)
        took = time.monotonic() - started
        print(f"kubectl delete -k deploy/ took {took:.1f}s")
        assert set(deleted.stdout.splitlines()) == _deleted_lines(docs)
        assert took < 90
        assert _namespace_gone(cluster)
        assert _stored(cluster, text) == set()
        # Nothing comes back while guardrail goes on for a few rounds of its loop.
        time.sleep(6)
        assert _stored(cluster, text) == set()
        assert _namespace_gone(cluster)
        assert "Traceback" not in served.log()
    finally:
        if served is not None:
            served.stop()
        if not _namespace_gone(cluster) or _stored(cluster, text):
            _uninstall(cluster, deploy)


# -- the cert-manager overlay ----------------------------------------------------------------------
def test_cert_manager_overlay_applies_for_real(cluster: Cluster, tmp_path: Path) -> None:
    """`kubectl apply -k deploy/overlays/cert-manager` stores the Issuers, the Certificates and a
    webhook configuration annotated for cert-manager's CA injection."""
    deploy = _deploy_copy(tmp_path)
    overlay = deploy / "overlays" / "cert-manager"
    with contextlib.ExitStack() as stack:
        stack.enter_context(_missing_crds(cluster, CERT_MANAGER_CRDS))
        stack.callback(_uninstall, cluster, overlay)  # also after a partial apply
        applied = cluster.kubectl("apply", "-k", str(overlay)).stdout
        assert "certificate.cert-manager.io/guardrail-serving created" in applied
        assert "validatingwebhookconfiguration.admissionregistration.k8s.io/guardrail created" in (
            applied
        )
        certificate = _get(cluster, "certificate", "guardrail-serving", "-n", NAMESPACE)
        assert certificate["spec"]["secretName"] == "guardrail-tls"
        assert certificate["spec"]["issuerRef"]["name"] == "guardrail-ca"
        webhook = _get(cluster, "validatingwebhookconfiguration", "guardrail")
        assert webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            f"{NAMESPACE}/guardrail-serving"
        )
        assert tuple(w["name"] for w in webhook["webhooks"]) == WEBHOOKS


# -- the self-signed overlay (certificates from `guardrail certs`) ------------------------------
def test_self_signed_overlay_installs_with_the_script(cluster: Cluster, tmp_path: Path) -> None:
    """`scripts/install-self-signed` writes the certificates and applies the self-signed
    overlay: the webhooks carry the generated CA as caBundle, the Secret holds the serving pair
    and the CA certificate (never its key), guardrail serves the mounted files, and the pods
    pass Pod Security `restricted`."""
    deploy = _deploy_copy(tmp_path)
    overlay = deploy / "overlays" / "self-signed"
    with contextlib.ExitStack() as stack:
        stack.callback(_uninstall, cluster, overlay)
        applied = _run_self_signed_script(cluster, deploy)
        assert "validatingwebhookconfiguration.admissionregistration.k8s.io/guardrail created" in (
            applied
        )
        ca_pem = (overlay / "tls" / "ca.crt").read_bytes()
        assert [base64.b64decode(b) for b in _ca_bundles(cluster)] == [ca_pem] * len(WEBHOOKS)
        secret = _secret(cluster)
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
        container, volumes = _container(cluster)
        assert "--certificates=files" in container["args"]
        assert volumes["tls"]["secret"]["secretName"] == "guardrail-tls"
        _pods_admitted_as_restricted(cluster)


# The README's commands ("Upgrading"), run as written.
MOVE_FIRST_LINE = "# Move a self-signed install to self-managed certificates, keeping its CA"


def _readme_block(first_line: str) -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(rf"^```\w*\n({re.escape(first_line)}.*?)^```$", text, re.M | re.S)
    assert found, f"README.md: no block starting with {first_line!r}"
    return found.group(1)


def test_self_signed_install_moves_to_self_managed_keeping_its_ca(
    cluster: Cluster, tmp_path: Path
) -> None:
    """On a self-signed install (the default of earlier releases), the README's move succeeds
    where a bare `kubectl apply -k deploy/` fails (a Secret's type cannot change): the Secret
    becomes the self-managed one with the same CA and its key, the caBundle stays that CA
    throughout, and guardrail, as the new pods run it, goes on with that CA: ready and trusted
    by the caBundle the API server already had, with no new CA."""
    deploy = _deploy_copy(tmp_path / "clone")
    tls = deploy / "overlays" / "self-signed" / "tls"
    served: SelfManaged | None = None
    try:
        _run_self_signed_script(cluster, deploy)
        ca_pem = (tls / "ca.crt").read_bytes()
        before = _ca_bundles(cluster)
        assert [base64.b64decode(b) for b in before] == [ca_pem] * len(WEBHOOKS)

        # What the README warns of: the Secret's type cannot change. (Dry run: nothing moves.)
        bare = cluster.kubectl("apply", "-k", str(deploy), "--dry-run=server", check=False)
        assert bare.returncode == 1
        assert 'The Secret "guardrail-tls" is invalid' in bare.stderr
        assert "field is immutable" in bare.stderr

        moved = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _readme_block(MOVE_FIRST_LINE)],
            cwd=deploy.parent,
            env={"PATH": "/usr/bin:/bin", **_kubectl_env(cluster)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert moved.returncode == 0, moved.stderr
        assert "validatingwebhookconfiguration.admissionregistration.k8s.io/guardrail" in (
            moved.stdout
        )
        secret = _secret(cluster)
        assert secret["type"] == "Opaque"
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        assert data == {
            name: (tls / name).read_bytes() for name in ("ca.crt", "ca.key", "tls.crt", "tls.key")
        }
        assert _ca_bundles(cluster) == before
        container, volumes = _container(cluster)
        assert "--certificates=self-managed" in container["args"]
        assert "emptyDir" in volumes["tls"]

        served = SelfManaged(cluster, tmp_path / "serve")
        filled = eventually(
            lambda: _filled_secret(cluster), what="guardrail taking the Secret over", timeout=60
        )
        eventually(lambda: served.readyz(ca_pem) == 200, what="/readyz 200 with the old CA")
        assert _certificates(base64.b64decode(filled["data"]["ca.crt"])) == _certificates(ca_pem)
        assert base64.b64decode(filled["data"]["ca.key"]) == data["ca.key"]
        for bundle in _ca_bundles(cluster):
            assert _certificates(base64.b64decode(bundle)) == _certificates(ca_pem)
    finally:
        if served is not None:
            served.stop()
        _uninstall(cluster, deploy)


def test_network_policies_are_stored_as_rendered(cluster: Cluster, installed: Path) -> None:
    """Both NetworkPolicies of guardrail-system pass the API server's validation as written
    (the IPv6 ipBlock too) and keep every rule on the webhook port."""
    del installed
    stored = _get(cluster, "networkpolicies", "-n", NAMESPACE)["items"]
    policies = {p["metadata"]["name"]: p["spec"] for p in stored}
    assert set(policies) == {"guardrail", "guardrail-pod-callers"}
    blocks = [peer["ipBlock"]["cidr"] for peer in policies["guardrail"]["ingress"][0]["from"]]
    assert blocks == ["0.0.0.0/0", "::/0"]
    for spec in policies.values():
        for rule in spec["ingress"]:
            assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]


def test_admins_overlay_with_components_and_patches_applies(
    cluster: Cluster, installed: Path, tmp_path: Path
) -> None:
    """An admin's overlay as the README builds it (its own exempt list rendered as a patch by
    `guardrail manifests webhook --patch`, the API server's policy narrowed, the client-ca
    component and its ConfigMap) passes a server-side dry run: the API server accepts every
    object, and Pod Security `restricted` has nothing to warn about in the Deployment."""
    overlay = tmp_path / "mine"
    overlay.mkdir()
    base = os.path.relpath(installed, overlay)
    config = (installed / "base" / "config.yaml").read_text()
    (overlay / "config.yaml").write_text(
        config.replace("tigera-operator]", "tigera-operator, cert-manager]")
    )
    # The API server's client CA: any CA will do for a dry run.
    made = CliRunner().invoke(main, ["certs", "--out", str(tmp_path / "client-pki")])
    assert made.exit_code == 0, made.output
    (overlay / "ca.crt").write_bytes((tmp_path / "client-pki" / "ca.crt").read_bytes())
    (overlay / "api-server-cidrs.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\n"
        "kind: NetworkPolicy\n"
        "metadata: {name: guardrail, namespace: guardrail-system}\n"
        "spec:\n"
        "  ingress:\n"
        "    - from: [{ipBlock: {cidr: 10.0.0.10/31}}]\n"
        "      ports: [{protocol: TCP, port: 8443}]\n"
    )
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{base}]\n"
        f"components: [{base}/components/client-ca]\n"
        "configMapGenerator:\n"
        "  - {name: guardrail-config, namespace: guardrail-system, behavior: replace,"
        " files: [config.yaml]}\n"
        "  - {name: guardrail-client-ca, namespace: guardrail-system, files: [ca.crt]}\n"
        "patches:\n"
        "  - path: namespace-selectors.yaml\n"
        "  - path: api-server-cidrs.yaml\n"
    )
    rendered = CliRunner().invoke(
        main,
        [
            "manifests",
            "webhook",
            "--config",
            str(overlay / "config.yaml"),
            "--patch",
            "--out",
            str(overlay / "namespace-selectors.yaml"),
        ],
    )
    assert rendered.exit_code == 0, rendered.output
    applied = cluster.kubectl("apply", "--dry-run=server", "-k", str(overlay))
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/guardrail configured" in (
        applied.stdout
    )
    assert "configmap/guardrail-client-ca-" in applied.stdout
    assert "would violate PodSecurity" not in applied.stderr, applied.stderr
    # What the dry run would have stored: every selector carries the overlay's own list.
    dry = cluster.kubectl("apply", "--dry-run=server", "-k", str(overlay), "-o", "json").stdout
    items = json.loads(dry)["items"]
    (webhook,) = [i for i in items if i["kind"] == "ValidatingWebhookConfiguration"]
    for entry in webhook["webhooks"]:
        (expression,) = entry["namespaceSelector"]["matchExpressions"]
        assert "cert-manager" in expression["values"], entry["name"]
        # Every webhook but the exempt-names one leaves guardrail's namespace out; that one
        # never judges its creation (a reinstall must not wait for a guardrail).
        reverse = entry["name"] == "exempt-namespace-names.guardrail.dev"
        assert (NAMESPACE in expression["values"]) is not reverse, entry["name"]
    (deployment,) = [i for i in items if i["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--client-ca=/etc/guardrail/client-ca/ca.crt" in container["args"]


ALLOWED = [
    ("list", "namespaces", ""),
    ("watch", "namespaces", ""),
    ("get", "namespaces", ""),
    ("list", "networkpolicies.networking.k8s.io", "--all-namespaces"),
    ("watch", "networkpolicies.networking.k8s.io", "--all-namespaces"),
    ("list", "networkpolicies.projectcalico.org", ""),
    ("watch", "globalnetworkpolicies.projectcalico.org", ""),
    ("list", "networkpolicies.crd.projectcalico.org", "--all-namespaces"),
    ("watch", "globalnetworkpolicies.crd.projectcalico.org", ""),
    ("watch", "baselineadminnetworkpolicies.policy.networking.k8s.io", ""),
    ("list", "adminnetworkpolicies.policy.networking.k8s.io", ""),
    ("create", "policyreports.wgpolicyk8s.io", "--namespace=shop"),
    ("delete", "clusterpolicyreports.wgpolicyk8s.io", ""),
    ("update", "reports.openreports.io", "--namespace=shop"),
    ("list", "pods", "--all-namespaces"),
    ("list", "cronjobs.batch", "--all-namespaces"),
    ("create", "leases.coordination.k8s.io", f"--namespace={NAMESPACE}"),
    ("update", "leases.coordination.k8s.io/guardrail-audit", f"--namespace={NAMESPACE}"),
    ("get", "leases.coordination.k8s.io/guardrail-audit", f"--namespace={NAMESPACE}"),
    # The self-managed certificates: the one Secret, the one webhook configuration, a Lease.
    ("get", "leases.coordination.k8s.io/guardrail-certs", f"--namespace={NAMESPACE}"),
    ("update", "leases.coordination.k8s.io/guardrail-certs", f"--namespace={NAMESPACE}"),
    ("get", "secrets/guardrail-tls", f"--namespace={NAMESPACE}"),
    ("update", "secrets/guardrail-tls", f"--namespace={NAMESPACE}"),
    ("get", "validatingwebhookconfigurations.admissionregistration.k8s.io/guardrail", ""),
    ("update", "validatingwebhookconfigurations.admissionregistration.k8s.io/guardrail", ""),
]
DENIED = [
    ("get", "secrets", f"--namespace={NAMESPACE}"),
    ("list", "secrets", "--all-namespaces"),
    # Of Secrets, guardrail-tls alone, get and update alone: no create (RBAC cannot limit it
    # to a name: the Secret ships empty), no list or watch, nothing of another Secret.
    ("create", "secrets", f"--namespace={NAMESPACE}"),
    ("list", "secrets", f"--namespace={NAMESPACE}"),
    ("watch", "secrets", f"--namespace={NAMESPACE}"),
    ("get", "secrets/guardrail-other", f"--namespace={NAMESPACE}"),
    ("update", "secrets/guardrail-other", f"--namespace={NAMESPACE}"),
    ("patch", "secrets/guardrail-tls", f"--namespace={NAMESPACE}"),
    ("delete", "secrets/guardrail-tls", f"--namespace={NAMESPACE}"),
    ("get", "secrets/guardrail-tls", "--namespace=kube-system"),
    ("update", "validatingwebhookconfigurations.admissionregistration.k8s.io/other", ""),
    ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/guardrail", ""),
    ("list", "validatingwebhookconfigurations.admissionregistration.k8s.io", ""),
    ("update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/guardrail", ""),
    ("update", "leases.coordination.k8s.io/guardrail-certs", "--namespace=kube-system"),
    ("create", "pods", "--namespace=default"),
    ("create", "pods/exec", f"--namespace={NAMESPACE}"),
    ("get", "pods", "--namespace=default"),
    ("watch", "deployments.apps", "--all-namespaces"),
    ("delete", "pods", "--namespace=default"),
    ("update", "leases.coordination.k8s.io/kube-controller-manager", f"--namespace={NAMESPACE}"),
    ("update", "namespaces", ""),
    ("delete", "networkpolicies.networking.k8s.io", "--namespace=shop"),
    ("create", "networkpolicies.networking.k8s.io", "--namespace=shop"),
    ("delete", "globalnetworkpolicies.projectcalico.org", ""),
    ("create", "networkpolicies.crd.projectcalico.org", "--namespace=shop"),
    ("update", "validatingwebhookconfigurations.admissionregistration.k8s.io", ""),
    ("delete", "validatingwebhookconfigurations.admissionregistration.k8s.io", ""),
    ("create", "leases.coordination.k8s.io", "--namespace=kube-system"),
    ("update", "deployments.apps", f"--namespace={NAMESPACE}"),
    ("impersonate", "users", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("create", "serviceaccounts/token", f"--namespace={NAMESPACE}"),
]


def _can_i(cluster: Cluster, verb: str, resource: str, scope: str) -> str:
    """yes/no for guardrail's ServiceAccount: `kubectl auth can-i`, or, for an API this cluster
    does not serve (kubectl cannot name it), the SubjectAccessReview that command sends."""
    plural, _, group = resource.partition(".")
    if group != "projectcalico.org":
        args = ["auth", "can-i", verb, resource, f"--as={SERVICE_ACCOUNT}", *filter(None, [scope])]
        result = cluster.kubectl(*args, check=False)
        # kubectl answers "no" for a resource it cannot find: make sure that is not why.
        assert "doesn't have a resource type" not in result.stderr, result.stderr
        return result.stdout.strip()
    attributes: dict[str, str] = {"verb": verb, "group": group, "resource": plural}
    if scope.startswith("--namespace="):
        attributes["namespace"] = scope.removeprefix("--namespace=")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": SERVICE_ACCOUNT,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{NAMESPACE}",
                "system:authenticated",
            ],
            "resourceAttributes": attributes,
        },
    }
    done = cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return "yes" if json.loads(done.stdout)["status"].get("allowed") else "no"


@pytest.mark.parametrize(
    ("verb", "resource", "scope"), ALLOWED, ids=[f"{v}-{r}" for v, r, _ in ALLOWED]
)
def test_service_account_can(
    cluster: Cluster, installed: Path, verb: str, resource: str, scope: str
) -> None:
    """`kubectl auth can-i` as guardrail's ServiceAccount: each permission it uses is granted."""
    del installed
    assert _can_i(cluster, verb, resource, scope) == "yes"


@pytest.mark.parametrize(
    ("verb", "resource", "scope"), DENIED, ids=[f"{v}-{r}" for v, r, _ in DENIED]
)
def test_service_account_cannot(
    cluster: Cluster, installed: Path, verb: str, resource: str, scope: str
) -> None:
    """`kubectl auth can-i` as guardrail's ServiceAccount: nothing beyond what it uses."""
    del installed
    assert _can_i(cluster, verb, resource, scope) == "no"


# -- guardrail serve on the ServiceAccount's token, called by the API server ---------------------
def _service_account_kubeconfig(cluster: Cluster, path: Path) -> Path:
    token = cluster.kubectl(
        "create", "token", "guardrail", "-n", NAMESPACE, "--duration=1h"
    ).stdout.strip()
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "e2e",
                        "cluster": {
                            "server": cluster.server,
                            "certificate-authority": str(cluster.ca_file),
                        },
                    }
                ],
                "users": [{"name": "guardrail", "user": {"token": token}}],
                "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "guardrail"}}],
                "current-context": "e2e",
            }
        )
    )
    path.chmod(0o600)
    return path


class Served:
    """`guardrail serve` on 127.0.0.1 with the live state read through a given kubeconfig."""

    def __init__(self, workdir: Path, kubeconfig: Path, extra: tuple[str, ...] = ()) -> None:
        self.cert_dir = workdir / "certs"
        done = subprocess.run(
            [GUARDRAIL, "certs", "--out", str(self.cert_dir), "--host", "127.0.0.1"],
            env={**os.environ, **PYTHONPATH},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        self.ca_bundle = done.stdout.strip()
        self.port = free_port()
        self.log_path = workdir / "serve.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                GUARDRAIL,
                "serve",
                "--kubeconfig",
                str(kubeconfig),
                "--cert-dir",
                str(self.cert_dir),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "4",
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "POD_NAMESPACE": NAMESPACE, **PYTHONPATH},
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, verify=str(self.cert_dir / "ca.crt"), timeout=5)

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log()
        try:
            return self.get("/readyz").status_code == 200
        except requests.ConnectionError:
            return False

    def validate_calls(self) -> float:
        """How many AdmissionReviews it has answered (its request-duration histogram's count)."""
        text = self.get("/metrics").text
        found = re.search(
            r"^guardrail_request_duration_seconds_count(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE
        )
        return float(found.group(1)) if found else 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _point_webhooks_at(cluster: Cluster, url: str, ca_bundle: str) -> None:
    patch = [
        {
            "op": "replace",
            "path": f"/webhooks/{index}/clientConfig",
            "value": {"url": f"{url}/validate", "caBundle": ca_bundle},
        }
        for index in range(len(WEBHOOKS))
    ]
    cluster.kubectl(
        "patch",
        "validatingwebhookconfiguration",
        "guardrail",
        "--type=json",
        f"-p={json.dumps(patch)}",
    )


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {namespace}
  labels: {{app: web, role: frontend}}
spec:
  containers: [{{name: web, image: nginx}}]
"""

DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny, namespace: {namespace}}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress, Egress]
"""

SELECTIVE = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: web-only, namespace: {namespace}}}
spec:
  podSelector: {{matchLabels: {{app: web}}}}
  policyTypes: [Ingress]
"""


@pytest.fixture(scope="module")
def serving(
    cluster: Cluster, installed: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """guardrail serve on the ServiceAccount's token, synced, with the webhooks pointed at it."""
    del installed
    workdir = tmp_path_factory.mktemp("serve-as-sa")
    kubeconfig = _service_account_kubeconfig(cluster, workdir / "kubeconfig")
    served = Served(workdir, kubeconfig)
    try:
        eventually(served.ready, what="guardrail serve synced (/readyz 200)", timeout=60)
        _point_webhooks_at(cluster, served.url, served.ca_bundle)
        yield served
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration", "guardrail", "--ignore-not-found"
        )
        served.stop()


def _wait_for_webhook(cluster: Cluster) -> None:
    # The API server reloads webhook configurations from its informer: wait until a pod in an
    # unprotected namespace is judged by guardrail.
    def judged() -> bool:
        result = cluster.kubectl(
            "create",
            "--dry-run=server",
            "-f",
            "-",
            input=POD.format(name="probe", namespace="default"),
            check=False,
        )
        return "require-default-deny" in result.stderr

    eventually(judged, what="the API server calling the re-pointed webhook", timeout=30)


def test_serve_with_service_account_token_is_synced_and_answers(
    cluster: Cluster, serving: Served
) -> None:
    """guardrail serve reading the cluster with only its ServiceAccount's permissions syncs its
    cache, and the API server's calls through the installed webhooks get its verdicts."""
    _wait_for_webhook(cluster)
    created = cluster.kubectl("create", "namespace", "deploy-shop", check=False)
    assert created.returncode == 0, created.stderr
    assert "require-default-deny" in created.stderr  # the advisory warning on a new namespace
    eventually(
        lambda: (
            cluster.kubectl(
                "get", "serviceaccount", "default", "-n", "deploy-shop", check=False
            ).returncode
            == 0
        ),
        what="the default ServiceAccount of deploy-shop",
    )
    denied = cluster.kubectl(
        "create", "-f", "-", input=POD.format(name="web", namespace="deploy-shop"), check=False
    )
    assert denied.returncode != 0
    assert 'admission webhook "workloads.guardrail.dev" denied the request' in denied.stderr
    assert 'namespace "deploy-shop" has no default-deny network policy' in denied.stderr

    cluster.kubectl("apply", "-f", "-", input=DEFAULT_DENY.format(namespace="deploy-shop"))

    def pod_created() -> bool:
        # The watch brings the new default-deny into the cache within moments.
        result = cluster.kubectl(
            "create",
            "-f",
            "-",
            input=POD.format(name="web", namespace="deploy-shop"),
            check=False,
        )
        return result.returncode == 0

    eventually(pod_created, what="the pod admitted once the namespace has a default-deny")
    refused = cluster.kubectl(
        "delete", "networkpolicy", "default-deny", "-n", "deploy-shop", check=False
    )
    assert refused.returncode != 0
    assert 'admission webhook "networkpolicies.guardrail.dev" denied' in refused.stderr
    assert "[protect-default-deny]" in refused.stderr
    assert "Traceback" not in serving.log()


def test_match_conditions_skip_requests_that_cannot_violate(
    cluster: Cluster, serving: Served
) -> None:
    """Pod updates that keep the labels never reach guardrail, nor do mirror pods from a node;
    a label change, a delete of a policy (even one selecting only some pods: it may be what
    isolates them), and a mirror pod from anyone else, do."""
    _wait_for_webhook(cluster)
    namespace = "deploy-conditions"
    cluster.create_namespace(namespace)
    cluster.kubectl("apply", "-f", "-", input=DEFAULT_DENY.format(namespace=namespace))
    cluster.kubectl("apply", "-f", "-", input=SELECTIVE.format(namespace=namespace))
    eventually(
        lambda: (
            cluster.kubectl(
                "create", "-f", "-", input=POD.format(name="web", namespace=namespace), check=False
            ).returncode
            == 0
        ),
        what="the pod admitted in an isolated namespace",
    )
    steps = [
        (("annotate", "pod", "web", "-n", namespace, "note=1"), 0),
        (("delete", "networkpolicy", "web-only", "-n", namespace), 1),
        (("label", "pod", "web", "-n", namespace, "tier=gold"), 1),
    ]
    for args, calls in steps:
        before = serving.validate_calls()
        cluster.kubectl(*args)
        # The histogram is observed before the response is sent: no wait is needed.
        assert serving.validate_calls() - before == calls, args
    # The mirror-pod annotation from someone who is not a node is no reason to skip the call.
    fake_mirror = POD.format(name="fake-mirror", namespace=namespace).replace(
        "spec:\n", "  annotations: {kubernetes.io/config.mirror: x}\nspec:\n  nodeName: n1\n"
    )
    before = serving.validate_calls()
    cluster.kubectl("create", "--dry-run=server", "-f", "-", input=fake_mirror)
    assert serving.validate_calls() - before == 1
    # The same mirror pod from the node's identity (what a kubelet sends) is skipped.
    before = serving.validate_calls()
    cluster.kubectl(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        "--as=system:node:n1",
        "--as-group=system:nodes",
        "--as-group=system:masters",
        input=fake_mirror,
    )
    assert serving.validate_calls() - before == 0


# -- the API server's client certificate (--client-ca) ------------------------------------------
def _client_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and the client certificate it signs for the API server: (ca, cert, key) paths."""
    from cryptography import x509  # noqa: PLC0415 - only this test makes certificates by hand
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415 - only this test signs a client certificate
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - only this test signs a client certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415 - only this test signs a client certificate

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("apiserver client CA"))
        .issuer_name(name("apiserver client CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("kube-apiserver-webhook-client"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = (directory / "client-ca.crt", directory / "client.crt", directory / "client.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths


def _admission_config(directory: Path, host_port: str, cert: Path, key: Path) -> Path:
    """The API server's --admission-control-config-file: a kubeconfig whose user named after the
    webhook's host:port presents the client certificate to it."""
    kubeconfig = directory / "webhook-client.kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "users": [
                    {
                        "name": host_port,
                        "user": {"client-certificate": str(cert), "client-key": str(key)},
                    }
                ],
            }
        )
    )
    config = directory / "admission-config.yaml"
    config.write_text(
        "apiVersion: apiserver.config.k8s.io/v1\n"
        "kind: AdmissionConfiguration\n"
        "plugins:\n"
        "  - name: ValidatingAdmissionWebhook\n"
        "    configuration:\n"
        "      apiVersion: apiserver.config.k8s.io/v1\n"
        "      kind: WebhookAdmissionConfiguration\n"
        f"      kubeConfigFile: {kubeconfig}\n"
    )
    return config


CLIENT_CA_NAMESPACE = "deploy-client-ca"
# A label only this test's guardrail requires: its verdict cannot come from another webhook.
CLIENT_CA_CONFIG = "policies:\n  require-role-labels: {labels: [app, role, owner]}\n"


def _client_ca_registration(url: str, ca_bundle: str) -> str:
    return json.dumps(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "guardrail-client-ca"},
            "webhooks": [
                {
                    "name": "workloads.guardrail.dev",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "clientConfig": {"url": f"{url}/validate", "caBundle": ca_bundle},
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": CLIENT_CA_NAMESPACE}
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                            "scope": "Namespaced",
                        }
                    ],
                }
            ],
        }
    )


def test_client_ca_serves_only_the_api_servers_certificate(
    cluster: Cluster, tmp_path: Path
) -> None:
    """With --client-ca, the API server's calls fail until it is configured (admission config
    kubeconfig) to present its client certificate; then they get guardrail's verdict."""
    ca, cert, key = _client_pki(tmp_path / "pki")
    cluster.create_namespace(CLIENT_CA_NAMESPACE)
    cluster.kubectl("apply", "-f", "-", input=DEFAULT_DENY.format(namespace=CLIENT_CA_NAMESPACE))
    (tmp_path / "config.yaml").write_text(CLIENT_CA_CONFIG)
    served = Served(
        tmp_path,
        cluster.kubeconfig,
        extra=("--client-ca", str(ca), "--config", str(tmp_path / "config.yaml")),
    )
    pod = POD.format(name="web", namespace=CLIENT_CA_NAMESPACE)
    try:
        eventually(served.ready, what="guardrail serve --client-ca ready", timeout=60)
        cluster.kubectl(
            "apply", "-f", "-", input=_client_ca_registration(served.url, served.ca_bundle)
        )

        def refused() -> str:
            result = cluster.kubectl(
                "create", "--dry-run=server", "-f", "-", input=pod, check=False
            )
            return result.stderr if "guardrail.dev" in result.stderr else ""

        message = eventually(refused, what="the API server calling guardrail without a cert")
        assert 'failed calling webhook "workloads.guardrail.dev"' in message
        assert served.validate_calls() == 0  # refused before any review was judged

        admission = _admission_config(tmp_path, f"127.0.0.1:{served.port}", cert, key)
        cluster.restart_apiserver([f"--admission-control-config-file={admission}"])

        def judged() -> str:
            result = cluster.kubectl(
                "create", "--dry-run=server", "-f", "-", input=pod, check=False
            )
            return result.stderr if "denied the request" in result.stderr else ""

        message = eventually(judged, what="the API server presenting its client certificate")
        assert 'admission webhook "workloads.guardrail.dev" denied the request' in message
        assert "missing required labels: owner" in message
        assert served.validate_calls() >= 1
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration", "guardrail-client-ca", "--ignore-not-found"
        )
        cluster.restart_apiserver()
        served.stop()
        cluster.kubectl(
            "delete", "namespace", CLIENT_CA_NAMESPACE, "--wait=false", "--ignore-not-found"
        )
