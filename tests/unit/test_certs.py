"""`write_certificates`: the files, SANs, key type, chain, CA reuse and bad input."""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from webhook.certs import CertBundle, write_certificates
from webhook.policy.errors import GuardrailError


def _write(out: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> CertBundle:
    return write_certificates(
        out, service="guardrail", namespace="guardrail-system", hosts=hosts, days=30
    )


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_writes_four_files_with_private_keys_0600(tmp_path: Path) -> None:
    """ca.crt, ca.key, tls.crt, tls.key are written; only the owner can read the keys."""
    bundle = _write(tmp_path / "certs")
    names = sorted(p.name for p in (tmp_path / "certs").iterdir())
    assert names == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    for key in (bundle.key, bundle.ca_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(bundle.cert.stat().st_mode) == 0o644


def test_ca_bundle_is_base64_of_ca_pem(tmp_path: Path) -> None:
    """The printed caBundle decodes to exactly the ca.crt file."""
    bundle = _write(tmp_path)
    assert base64.b64decode(bundle.ca_bundle) == (tmp_path / "ca.crt").read_bytes()


def test_serving_certificate_names_the_service_and_hosts(tmp_path: Path) -> None:
    """SANs: NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local, the DNS hosts, IP SANs."""
    _write(tmp_path, hosts=("127.0.0.1", "localhost", "::1", "webhook.example.com"))
    san = (
        _cert(tmp_path / "tls.crt")
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert san.get_values_for_type(x509.DNSName) == [
        "guardrail",
        "guardrail.guardrail-system",
        "guardrail.guardrail-system.svc",
        "guardrail.guardrail-system.svc.cluster.local",
        "localhost",
        "webhook.example.com",
    ]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_keys_are_ecdsa_p256_and_usage_is_server_auth(tmp_path: Path) -> None:
    """Both keys are ECDSA P-256; the leaf is for serverAuth, the CA has CA:true."""
    _write(tmp_path)
    leaf, ca = _cert(tmp_path / "tls.crt"), _cert(tmp_path / "ca.crt")
    for path in (tmp_path / "tls.key", tmp_path / "ca.key"):
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_chain_verifies_for_the_ip_and_the_service_name(tmp_path: Path) -> None:
    """The leaf verifies against ca.crt for 127.0.0.1 and for NAME.NS.svc."""
    _write(tmp_path)
    leaf, ca = _cert(tmp_path / "tls.crt"), _cert(tmp_path / "ca.crt")
    leaf.verify_directly_issued_by(ca)
    store = x509.verification.Store([ca])
    for name in (
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("guardrail.guardrail-system.svc"),
    ):
        verifier = x509.verification.PolicyBuilder().store(store).build_server_verifier(name)
        chain = verifier.verify(leaf, [])
        assert chain[-1] == ca


def test_stdlib_ssl_accepts_the_pair(tmp_path: Path) -> None:
    """Python's ssl module (what gunicorn uses) loads tls.crt with tls.key."""
    _write(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")


def test_rerun_rotates_the_serving_certificate_and_keeps_the_ca(tmp_path: Path) -> None:
    """A second run issues a new serving certificate signed by the same CA (same caBundle)."""
    first = _write(tmp_path)
    first_leaf = _cert(tmp_path / "tls.crt")
    second = _write(tmp_path)
    second_leaf = _cert(tmp_path / "tls.crt")
    assert second.ca_reused
    assert not first.ca_reused
    assert second.ca_bundle == first.ca_bundle
    assert second_leaf.serial_number != first_leaf.serial_number
    second_leaf.verify_directly_issued_by(_cert(tmp_path / "ca.crt"))


def test_unusable_ca_is_replaced(tmp_path: Path) -> None:
    """A ca.crt whose key is missing cannot sign: a new CA is written instead."""
    first = _write(tmp_path)
    (tmp_path / "ca.key").unlink()
    second = _write(tmp_path)
    assert not second.ca_reused
    assert second.ca_bundle != first.ca_bundle
    _cert(tmp_path / "tls.crt").verify_directly_issued_by(_cert(tmp_path / "ca.crt"))


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    """Atomic writes go through temporary files that are renamed, none remain."""
    _write(tmp_path)
    _write(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"hosts": ("bad host!",)}, "--host: 'bad host!' is neither a DNS name nor an IP"),
        ({"hosts": ("-leading.example",)}, "--host: '-leading.example' is neither"),
        ({"hosts": ("",)}, "--host: '' is neither a DNS name nor an IP address"),
        ({"service": "Guardrail"}, "--service: 'Guardrail' is not a valid DNS label"),
        ({"namespace": "a.b"}, "--namespace: 'a.b' is not a valid DNS label"),
        ({"days": 0}, "--days: must be between 1 and 36500, not 0"),
    ],
    ids=[
        "space-in-host",
        "leading-dash",
        "empty-host",
        "uppercase-service",
        "dotted-namespace",
        "zero-days",
    ],
)
def test_bad_input_is_a_guardrail_error(
    tmp_path: Path, kwargs: dict[str, object], expected: str
) -> None:
    """Invalid names and numbers are refused with the flag that is wrong, nothing written."""
    args: dict[str, object] = {
        "service": "guardrail",
        "namespace": "guardrail-system",
        "hosts": (),
        "days": 30,
    }
    args.update(kwargs)
    with pytest.raises(GuardrailError) as info:
        write_certificates(tmp_path / "out", **args)  # type: ignore[arg-type]  # deliberately wrong argument types
    assert str(info.value).startswith(expected)
    assert not (tmp_path / "out").exists()


def test_unwritable_directory_is_a_guardrail_error(tmp_path: Path) -> None:
    """An output path under a regular file is refused with the path and the reason."""
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(GuardrailError) as info:
        _write(tmp_path / "file" / "certs")
    assert (
        str(info.value) == f"{tmp_path / 'file' / 'certs'}: cannot create directory: "
        "Not a directory"
    )


def test_output_path_that_is_a_file_is_a_guardrail_error(tmp_path: Path) -> None:
    """--out naming an existing regular file is refused, and the file is left alone."""
    target = tmp_path / "certs"
    target.write_text("keep me")
    with pytest.raises(GuardrailError) as info:
        _write(target)
    assert str(info.value) == f"{target}: cannot create directory: File exists"
    assert target.read_text() == "keep me"
