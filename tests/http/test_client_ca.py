"""`guardrail serve --client-ca`: /validate only for clients presenting a certificate that CA
signed (the API server's, configured through its admission kubeconfig); probes stay open."""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.http.support import GUARDRAIL, Server, as_json, pod, review, start_server


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_client_pki(directory: Path, label: str) -> tuple[Path, Path, Path]:
    """A CA and a client certificate it signed (like kube-apiserver's): (ca, cert, key) paths."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} client CA"))
        .issuer_name(_name(f"{label} client CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.crt", directory / "client.crt", directory / "client.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths[2])
    return paths


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, Path]]:
    base = tmp_path_factory.mktemp("client-pki")
    return {
        "trusted": make_client_pki(base / "trusted", "trusted"),
        "other": make_client_pki(base / "other", "other"),
    }


@pytest.fixture(scope="module")
def verifying_server(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, tuple[Path, Path, Path]]
) -> Iterator[Server]:
    """A server started with --client-ca set to the trusted client CA."""
    running = start_server(
        tmp_path_factory.mktemp("client-ca"),
        extra_args=["--client-ca", str(pki["trusted"][0])],
    )
    yield running
    running.stop()


def _post(server: Server, cert: tuple[str, str] | None) -> requests.Response:
    return requests.post(
        server.url + "/validate",
        data=as_json(review(pod(labels={"app": "web"}, namespace="shop"))),
        headers={"Content-Type": "application/json"},
        verify=server.ca,
        cert=cert,
        timeout=30,
    )


def test_validate_without_a_client_certificate_is_refused(verifying_server: Server) -> None:
    """A client presenting no certificate gets 403 and the reason, not a verdict."""
    reply = _post(verifying_server, None)
    assert reply.status_code == 403
    assert reply.json() == {
        "error": "a client certificate signed by the configured --client-ca is required"
    }


def test_validate_with_a_certificate_of_the_client_ca_is_served(
    verifying_server: Server, pki: dict[str, tuple[Path, Path, Path]]
) -> None:
    """The API server's certificate (signed by the client CA) gets the AdmissionReview verdict."""
    _, cert, key = pki["trusted"]
    reply = _post(verifying_server, (str(cert), str(key)))
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]
    assert response["allowed"] is False
    assert "missing required labels: role" in response["status"]["message"]


def test_certificate_of_another_ca_fails_the_handshake(
    verifying_server: Server, pki: dict[str, tuple[Path, Path, Path]]
) -> None:
    """A client certificate the client CA did not sign is rejected during the TLS handshake."""
    _, cert, key = pki["other"]
    with pytest.raises(requests.exceptions.ConnectionError):
        _post(verifying_server, (str(cert), str(key)))


@pytest.mark.parametrize("path", ["/healthz", "/readyz"], ids=["healthz", "readyz"])
def test_probes_need_no_client_certificate(verifying_server: Server, path: str) -> None:
    """The kubelet's probes carry no client certificate and are still answered 200."""
    reply = requests.get(verifying_server.url + path, verify=verifying_server.ca, timeout=30)
    assert reply.status_code == 200
    assert reply.json()["status"] in ("ok", "ready")


def test_missing_client_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    """--client-ca naming no file: exit 2 naming the file, no traceback."""
    missing = tmp_path / "nope.crt"
    done = subprocess.run(
        [
            GUARDRAIL,
            "serve",
            "--state",
            str(tmp_path),
            "--cert-dir",
            str(tmp_path / "certs"),
            "--bind",
            "127.0.0.1:1",
            "--client-ca",
            str(missing),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"guardrail: {missing}: no such file" in done.stderr
    assert "Traceback" not in done.stderr
