"""The install against a real API server: `kubectl apply -k` of each overlay, the ServiceAccount's
permissions through `kubectl auth can-i`, and `guardrail serve` running on that ServiceAccount's
token, called by the API server through the installed webhook configuration.

No kubelet runs here, so the Deployment's pods are created (proving Pod Security `restricted`
admits them) but never start; the tests run `guardrail serve` on 127.0.0.1 instead and point the
installed webhooks at it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner

from tests.e2e.harness import Cluster, eventually, free_port
from webhook.cli import main

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
INSTALL_SELF_SIGNED = REPO / "scripts" / "install-self-signed"
NAMESPACE = "guardrail-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:guardrail"
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
    """A copy of deploy/ without certificates someone generated in the checkout."""
    target = tmp / "deploy"
    shutil.copytree(REPO / "deploy", target, ignore=shutil.ignore_patterns("tls"))
    return target


def _prepare_self_signed(deploy: Path) -> None:
    done = subprocess.run(
        [str(INSTALL_SELF_SIGNED), "--prepare-only", "--deploy-dir", str(deploy)],
        env={"PATH": "/usr/bin:/bin", "GUARDRAIL": GUARDRAIL},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


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


@pytest.fixture(scope="module")
def installed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`scripts/install-self-signed` then `kubectl apply -k deploy/`, for real; uninstalled after."""
    deploy = _deploy_copy(tmp_path_factory.mktemp("self-signed"))
    _prepare_self_signed(deploy)
    with _missing_crds(cluster, POLICY_API_CRDS):
        try:
            cluster.kubectl("apply", "-k", str(deploy))
            yield deploy
        finally:
            _uninstall(cluster, deploy)


def _pods_created(cluster: Cluster) -> int:
    pods = _get(cluster, "pods", "-n", NAMESPACE, "-l", "app=guardrail,role=webhook")
    return len(pods["items"]) if len(pods["items"]) >= 2 else 0


# -- the cert-manager overlay (first: the module's self-signed install is not there yet) --------
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


# -- the self-signed default ---------------------------------------------------------------------
def test_self_signed_install_creates_everything(cluster: Cluster, installed: Path) -> None:
    """`kubectl apply -k deploy/` stores the webhooks with the generated CA as caBundle, and the
    Deployment's pods pass Pod Security `restricted` admission in guardrail-system."""
    ca_pem = (installed / "overlays" / "self-signed" / "tls" / "ca.crt").read_bytes()
    webhook = _get(cluster, "validatingwebhookconfiguration", "guardrail")
    assert tuple(w["name"] for w in webhook["webhooks"]) == WEBHOOKS
    for entry in webhook["webhooks"]:
        assert base64.b64decode(entry["clientConfig"]["caBundle"]) == ca_pem
        assert entry["failurePolicy"] == "Fail"
    secret = _get(cluster, "secret", "guardrail-tls", "-n", NAMESPACE)
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    count = eventually(
        lambda: _pods_created(cluster), what="the ReplicaSet's two pods admitted", timeout=60
    )
    assert count == 2
    warnings = cluster.kubectl("get", "events", "-n", NAMESPACE, "-o", "json").stdout
    assert "violates PodSecurity" not in warnings


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
    (overlay / "ca.crt").write_bytes(
        (installed / "overlays" / "self-signed" / "tls" / "ca.crt").read_bytes()
    )
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
        assert NAMESPACE in expression["values"], entry["name"]
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
]
DENIED = [
    ("get", "secrets", f"--namespace={NAMESPACE}"),
    ("list", "secrets", "--all-namespaces"),
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
            env={"PATH": "/usr/bin:/bin", "POD_NAMESPACE": NAMESPACE},
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
