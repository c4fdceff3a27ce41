"""A CA and an ECDSA P-256 serving certificate for the webhook, written atomically.

The API server only calls webhooks over TLS, verified against the `caBundle` of the webhook
configuration, so the serving certificate must name the Service the way the API server dials
it (`NAME.NS.svc`). An existing CA in the output directory is reused: running `guardrail certs`
again then rotates the serving certificate without invalidating the caBundle already registered
(or the CA file clients already trust).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.policy.errors import GuardrailError

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
# The CA outlives the serving certificates it signs, so that rotating them never needs a new
# caBundle in the webhook configuration.
CA_MIN_DAYS = 3650
# Tolerates clocks a few minutes apart between the machine that signs and the API server.
CLOCK_SKEW = datetime.timedelta(minutes=5)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class CertBundle:
    """What was written, and the caBundle to put in the ValidatingWebhookConfiguration."""

    ca_bundle: str  # base64 of the CA certificate's PEM
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    ca_reused: bool


def service_dns_names(service: str, namespace: str) -> tuple[str, ...]:
    """The names the API server (and pods) may use to reach a Service."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )


def write_certificates(
    out_dir: Path,
    *,
    service: str,
    namespace: str,
    hosts: Sequence[str] = (),
    days: int = 365,
) -> CertBundle:
    """Write ca.crt, ca.key, tls.crt, tls.key to out_dir (keys mode 0600) and return the bundle.

    Raises GuardrailError for an invalid service, namespace, host or day count, and for a
    directory that cannot be written.
    """
    _check_dns_label(service, "--service")
    _check_dns_label(namespace, "--namespace")
    if not 1 <= days <= 36500:
        raise GuardrailError(f"must be between 1 and 36500, not {days}", "--days")
    dns_names, ip_addresses = subject_alt_names(service, namespace, hosts)

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GuardrailError(
            f"cannot create directory: {exc.strerror or exc}", str(out_dir)
        ) from exc
    if not out_dir.is_dir():
        raise GuardrailError("is not a directory", str(out_dir))

    now = datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=days)
    existing = _load_ca(out_dir, valid_until=not_after)
    if existing is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = make_ca(ca_key, now, now + datetime.timedelta(days=max(days, CA_MIN_DAYS)))
    else:
        ca_cert, ca_key = existing

    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_serving_cert(
        key,
        ca_cert=ca_cert,
        ca_key=ca_key,
        service=service,
        namespace=namespace,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        now=now,
        not_after=not_after,
    )

    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    paths = {name: out_dir / name for name in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)}
    if existing is None:
        write_atomically(paths[CA_KEY], key_pem(ca_key), mode=0o600)
        write_atomically(paths[CA_CERT], ca_pem, mode=0o644)
    # Key before certificate: a server watching the files sees a mismatched pair for an
    # instant at most, which it rejects and retries, never a certificate without its key.
    write_atomically(paths[TLS_KEY], key_pem(key), mode=0o600)
    write_atomically(paths[TLS_CERT], cert.public_bytes(serialization.Encoding.PEM), mode=0o644)

    return CertBundle(
        ca_bundle=base64.b64encode(ca_pem).decode("ascii"),
        ca_cert=paths[CA_CERT],
        ca_key=paths[CA_KEY],
        cert=paths[TLS_CERT],
        key=paths[TLS_KEY],
        dns_names=dns_names,
        ip_addresses=tuple(str(ip) for ip in ip_addresses),
        ca_reused=existing is not None,
    )


# -- validation -------------------------------------------------------------------------------
def _check_dns_label(value: str, where: str) -> None:
    if not _DNS_LABEL.match(value):
        raise GuardrailError(
            f"{value!r} is not a valid DNS label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)",
            where,
        )


def _parse_host(host: str) -> str | IPAddress:
    """A host as a lowercase DNS name or an IP address; GuardrailError if it is neither."""
    text = host.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    name = text.lower().rstrip(".")
    labels = name.split(".")
    # A leading "*" label is the one wildcard form TLS clients accept.
    checked = labels[1:] if labels[0] == "*" and len(labels) > 1 else labels
    if not name or len(name) > 253 or not all(_DNS_LABEL.match(label) for label in checked):
        raise GuardrailError(f"{host!r} is neither a DNS name nor an IP address", "--host")
    return name


def subject_alt_names(
    service: str, namespace: str, hosts: Iterable[str]
) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    dns_names = list(service_dns_names(service, namespace))
    ip_addresses: list[IPAddress] = []
    for host in hosts:
        parsed = _parse_host(host)
        if isinstance(parsed, str):
            if parsed not in dns_names:
                dns_names.append(parsed)
        elif parsed not in ip_addresses:
            ip_addresses.append(parsed)
    return tuple(dns_names), tuple(ip_addresses)


# -- building ---------------------------------------------------------------------------------
def make_ca(
    key: ec.EllipticCurvePrivateKey, now: datetime.datetime, not_after: datetime.datetime
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "guardrail"),
            x509.NameAttribute(NameOID.COMMON_NAME, "guardrail webhook CA"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(signs_certificates=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_serving_cert(
    key: ec.EllipticCurvePrivateKey,
    *,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    service: str,
    namespace: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[IPAddress],
    now: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ip) for ip in ip_addresses]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, f"{service}.{namespace}.svc"),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certificates=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _load_ca(
    out_dir: Path, valid_until: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA already in out_dir if it is usable for a certificate valid until valid_until.

    Anything else (missing, unreadable, not a CA, expiring, key not matching) means a new CA:
    the user asked for certificates, and a CA they cannot use is no reason to refuse.
    """
    try:
        cert = x509.load_pem_x509_certificate((out_dir / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((out_dir / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key():
        return None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    if not constraints.ca or cert.not_valid_after_utc < valid_until:
        return None
    return cert, key


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write via a temporary file in the same directory and rename it over path.

    A reader (the running server) sees the old file or the new one, never half of one; the
    mode is set before any byte of a key is written.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise GuardrailError(f"cannot write: {exc.strerror or exc}", str(path)) from exc
    try:
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), mode)
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise GuardrailError(f"cannot write: {exc.strerror or exc}", str(path)) from exc


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """ECDSA keys sign (TLS handshakes); a CA's also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
