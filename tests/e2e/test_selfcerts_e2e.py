"""Self-managed certificates against the real API server (SPEC 5).

`guardrail serve --certificates self-managed` runs as deploy/ runs it, outside a pod: it fills
the empty Secret the manifests ship, writes the caBundle of its webhook configuration, and the
API server then calls it over that certificate. With short validities, serving certificates
and the CA renew while pods are created without pause: none of those creations may fail.

The webhook is registered by URL (127.0.0.1 cannot be a Service endpoint), so the certificate
also names 127.0.0.1 (`--cert-host`); everything else is what the cluster install does.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.e2e.guardrail import spawn_serve, stop_serve
from tests.e2e.harness import Cluster, eventually, free_port

pytestmark = pytest.mark.e2e

LABELS = {"app": "api", "role": "backend"}


def _api(cluster: Cluster, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        cluster.server + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class SelfManaged:
    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        token = secrets.token_hex(3)
        self.cluster = cluster
        self.namespace = f"guardrail-sm-{token}"  # guardrail's own namespace (POD_NAMESPACE)
        self.apps = f"apps-sm-{token}"
        self.configuration = f"guardrail-sm-{token}"
        self.port = free_port()
        self.cert_dir = workdir / "certs"
        self.log_path = workdir / "serve.log"
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text("mode: enforce\n", encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        """What deploy/ creates for the certificates: the namespace, the empty Secret, the
        webhook configuration without a caBundle."""
        self.cluster.create_namespace(self.namespace)
        self.cluster.create_namespace(self.apps)
        self.cluster.kubectl("label", "namespace", self.apps, f"sm-e2e={self.configuration}")
        self.cluster.kubectl(
            "apply",
            "-n",
            self.apps,
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "default-deny"},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
                }
            ),
        )
        secret = (Path(__file__).parents[2] / "deploy" / "base" / "secret.yaml").read_text()
        self.cluster.kubectl(
            "apply", "-f", "-", input=secret.replace("guardrail-system", self.namespace)
        )
        configuration = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.configuration},
            "webhooks": [
                {
                    "name": "workloads.guardrail.dev",
                    "clientConfig": {"url": f"https://127.0.0.1:{self.port}/validate"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"sm-e2e": self.configuration}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "timeoutSeconds": 5,
                }
            ],
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(configuration))

    def start(self, *, cert_validity: str, ca_validity: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["POD_NAMESPACE"] = self.namespace
        self.process = spawn_serve(
            [
                "--config",
                str(self.config_path),
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "--cert-dir",
                str(self.cert_dir),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--certificates",
                "self-managed",
                "--webhook-configuration",
                self.configuration,
                "--cert-host",
                "127.0.0.1",
                "--cert-validity",
                cert_validity,
                "--ca-validity",
                ca_validity,
            ],
            self.log_path,
            env,
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_serve(process)

    def uninstall(self) -> None:
        self.cluster.kubectl(
            "delete", "validatingwebhookconfiguration", self.configuration, "--ignore-not-found"
        )
        for namespace in (self.namespace, self.apps):
            self.cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def secret(self) -> dict[str, Any]:
        status, body = _api(
            self.cluster, "GET", f"/api/v1/namespaces/{self.namespace}/secrets/guardrail-tls"
        )
        assert status == 200, body
        return dict(body)

    def ca_bundle(self) -> bytes:
        status, body = _api(
            self.cluster,
            "GET",
            f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{self.configuration}",
        )
        assert status == 200, body
        raw = body["webhooks"][0]["clientConfig"].get("caBundle") or ""
        return base64.b64decode(raw)

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"guardrail serve exited; its log:\n{self.log()[-3000:]}")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{self.port}/readyz", timeout=3, context=context
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def create_pod(self) -> tuple[int, Any]:
        """A labelled pod in the isolated namespace, through the API server (dry run)."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": "web-", "labels": LABELS},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        }
        return _api(self.cluster, "POST", f"/api/v1/namespaces/{self.apps}/pods?dryRun=All", pod)


@pytest.fixture
def self_managed(cluster: Cluster, tmp_path: Path) -> Iterator[SelfManaged]:
    deployment = SelfManaged(cluster, tmp_path)
    deployment.install()
    try:
        yield deployment
    finally:
        deployment.stop()
        deployment.uninstall()


def _data(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode((secret.get("data") or {}).get(key) or "")


def test_the_empty_secret_is_filled_and_the_api_server_calls_over_it(
    self_managed: SelfManaged,
) -> None:
    """From the manifests alone: the Secret gets a CA and a serving pair, the caBundle is the
    CA, /readyz turns 200, and the API server's call succeeds (a denial proves the call
    reached guardrail: only guardrail says [require-role-labels])."""
    self_managed.start(cert_validity="90d", ca_validity="3650d")
    eventually(
        lambda: bool(_data(self_managed.secret(), "tls.crt")), what="the Secret filled", timeout=60
    )
    eventually(
        lambda: self_managed.ca_bundle() == _data(self_managed.secret(), "ca.crt"),
        what="the caBundle equal to the Secret's CA",
        timeout=60,
    )
    eventually(self_managed.ready, what="/readyz 200", timeout=60)
    status, body = self_managed.create_pod()
    assert status == 201, body.get("message")
    unlabelled = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "bare-"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }
    status, body = _api(
        self_managed.cluster,
        "POST",
        f"/api/v1/namespaces/{self_managed.apps}/pods?dryRun=All",
        unlabelled,
    )
    assert status == 403, body
    assert "[require-role-labels]" in body["message"], body


def test_renewals_keep_every_admission_working(self_managed: SelfManaged) -> None:
    """Serving certificates valid 30 s (renewed every 20 s) and a CA valid 120 s (renewed
    once a third is left, trusted beside the old one before it signs): pods are created
    without pause for 100 s through the API server, and every creation is admitted."""
    self_managed.start(cert_validity="30s", ca_validity="120s")
    eventually(self_managed.ready, what="/readyz 200", timeout=60)
    failures: list[tuple[int, Any]] = []
    admitted = [0]
    stop = threading.Event()

    def create_without_pause() -> None:
        while not stop.is_set():
            status, body = self_managed.create_pod()
            if status == 201:
                admitted[0] += 1
            else:
                failures.append((status, body))

    creators = [threading.Thread(target=create_without_pause) for _ in range(2)]
    for creator in creators:
        creator.start()
    serving: set[bytes] = set()
    cas: set[bytes] = set()
    deadline = time.monotonic() + 100
    try:
        while time.monotonic() < deadline:
            secret = self_managed.secret()
            serving.add(_data(secret, "tls.crt"))
            bundle = x509.load_pem_x509_certificates(_data(secret, "ca.crt"))
            cas.update(ca.fingerprint(ca.signature_hash_algorithm) for ca in bundle)  # type: ignore[arg-type]  # ECDSA CAs always have a hash
            time.sleep(2)
    finally:
        stop.set()
        for creator in creators:
            creator.join(timeout=30)
    assert failures == [], f"{len(failures)} of {len(failures) + admitted[0]}: {failures[:3]}"
    assert admitted[0] >= 100
    assert len(serving) >= 4, "serving certificates did not renew"
    assert len(cas) >= 2, "the CA did not renew"
