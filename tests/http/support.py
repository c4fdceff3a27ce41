"""A real `guardrail serve` process for the HTTP tests, and AdmissionReviews to send it.

Everything goes over TLS to 127.0.0.1, verified against the CA that `guardrail certs` wrote:
the IP SAN is what makes the verification pass.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.polling import eventually

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
STARTUP_SECONDS = 60.0

# The cluster the server believes in: "shop" is isolated by a default-deny, "open" is not.
STATE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: open}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""

CONFIG = """\
exemptions:
  usernames: [trusted-bot]
  groups: [trusted-group]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_certs(cert_dir: Path) -> str:
    """Run `guardrail certs --out DIR --host 127.0.0.1`; return the printed caBundle."""
    done = subprocess.run(
        [GUARDRAIL, "certs", "--out", str(cert_dir), "--host", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def write_state(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cluster.yaml").write_text(STATE)
    return directory


@dataclass
class Server:
    """One `guardrail serve` subprocess (the gunicorn master) and how to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    cert_dir: Path
    log_path: Path
    _log_file: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.cert_dir / "ca.crt")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, *, timeout: float = 30) -> requests.Response:
        return requests.get(self.url + path, verify=self.ca, timeout=timeout)

    def post(
        self, body: bytes | Any, path: str = "/validate", *, timeout: float = 30
    ) -> requests.Response:
        return requests.post(
            self.url + path,
            data=body,
            verify=self.ca,
            timeout=timeout,
            headers={"Content-Type": "application/json"},
        )

    def review(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """POST an AdmissionReview, check the envelope is echoed, return its `response`."""
        reply = self.post(as_json(doc))
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"] == "application/json"
        body: dict[str, Any] = reply.json()
        assert body["apiVersion"] == doc["apiVersion"]
        assert body["kind"] == "AdmissionReview"
        assert body["response"]["uid"] == doc["request"]["uid"]
        response: dict[str, Any] = body["response"]
        return response

    def served_fingerprint(self) -> str:
        """SHA-256 of the certificate a new TLS connection is served, verified against ca.crt."""
        context = ssl.create_default_context(cafile=self.ca)
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return hashlib.sha256(der).hexdigest()

    def file_fingerprint(self) -> str:
        """SHA-256 of the certificate in tls.crt now."""
        cert = x509.load_pem_x509_certificate((self.cert_dir / "tls.crt").read_bytes())
        return cert.fingerprint(hashes.SHA256()).hex()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"guardrail serve exited with {self.process.returncode}:\n{self.log()}"
                )
            if not (self.cert_dir / "ca.crt").exists():  # `serve` may be generating it
                time.sleep(0.1)
                continue
            try:
                if self.get("/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"guardrail serve not ready in {STARTUP_SECONDS} s:\n{self.log()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
        return code


def start_server(
    workdir: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    generate_certs: bool = True,
    config: str | None = CONFIG,
    extra_args: Sequence[str] = (),
) -> Server:
    """Start `guardrail serve` with a small state directory and wait until /readyz is 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert_dir = workdir / "certs"
    if generate_certs:
        make_certs(cert_dir)
    state_dir = write_state(workdir / "state")
    args = [GUARDRAIL, "serve", "--state", str(state_dir), "--cert-dir", str(cert_dir)]
    if config is not None:
        config_path = workdir / "config.yaml"
        config_path.write_text(config)
        args += ["--config", str(config_path)]
    port = free_port()
    args += [
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        *extra_args,
    ]
    log_path = workdir / "server.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(
        process=process, port=port, cert_dir=cert_dir, log_path=log_path, _log_file=log_file
    )
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


# -- AdmissionReviews ---------------------------------------------------------------------------
def as_json(doc: Any) -> bytes:
    import json  # noqa: PLC0415 - the stdlib encoder, not the server's orjson, writes test input

    return json.dumps(doc).encode()


def pod(
    name: str = "web", namespace: str = "shop", labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels if labels is not None else {"app": "web", "role": "frontend"}),
        },
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
    }


def review(
    obj: Mapping[str, Any] | None,
    *,
    operation: str = "CREATE",
    api_version: str = "admission.k8s.io/v1",
    username: str = "alice",
    groups: Sequence[str] = ("developers", "system:authenticated"),
    dry_run: bool = False,
    old: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview as the API server sends it for obj (or old, for a DELETE)."""
    subject = obj if obj is not None else old
    assert subject is not None
    group, _, version = str(subject["apiVersion"]).rpartition("/")
    meta = subject.get("metadata", {})
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": subject["kind"]},
        "resource": {
            "group": group,
            "version": version,
            "resource": str(subject["kind"]).lower() + "s",
        },
        "name": meta.get("name", ""),
        "operation": operation,
        "userInfo": {"username": username, "groups": list(groups)},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    if meta.get("namespace"):
        request["namespace"] = meta["namespace"]
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


DEADLINE = 30.0


def wait_for(condition: str, check: Callable[[], bool], deadline: float = DEADLINE) -> None:
    """Poll check() until true; fail naming the condition after `deadline` seconds."""
    eventually(check, what=condition, timeout=deadline, interval=0.1)


class NewConnectionClient(threading.Thread):
    """Sends allowed reviews, each over a new TLS connection, until stopped; records failures.

    A success is HTTP 200, the uid echoed and the review allowed: anything else, including a
    failed handshake, is a failure with its reason.
    """

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.successes = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            doc = review(pod())
            try:
                reply = requests.post(
                    self.server.url + "/validate",
                    data=as_json(doc),
                    headers={"Connection": "close"},
                    verify=self.server.ca,
                    timeout=10,
                )
                response = reply.json()["response"]
                if (
                    reply.status_code == 200
                    and response["uid"] == doc["request"]["uid"]
                    and response["allowed"] is True
                ):
                    self.successes += 1
                else:
                    self.failures.append(f"{reply.status_code}: {reply.text[:200]}")
            except (requests.RequestException, ValueError, KeyError) as exc:
                self.failures.append(repr(exc))

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=DEADLINE)


def serves_certificate(server: Server, fingerprint: str) -> bool:
    """Six new connections in a row get this certificate (every worker has switched)."""
    return all(server.served_fingerprint() == fingerprint for _ in range(6))


def succeeded(client: NewConnectionClient, at_least: int) -> bool:
    return client.successes >= at_least
