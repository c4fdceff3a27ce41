"""Self-managed certificates (`serve --certificates self-managed`), as Gatekeeper's
cert-controller and Kyverno's do it: no step before `kubectl apply -k deploy/`.

One process of the whole Deployment (a Lease, as for the background audit) keeps a CA and a
serving certificate for the Service in the Secret `guardrail-tls` of Guardrail's namespace,
and the `caBundle` of every webhook of the ValidatingWebhookConfiguration `guardrail` equal
to the Secret's CA bundle. Every worker of every replica copies the Secret's pair into its
certificate directory, where `ReloadingTLS` serves it to new connections without a restart.

    Secret guardrail-tls
      ca.crt   the CA bundle: the current CA first, then older ones not yet expired
      ca.key   the current CA's key
      tls.crt  tls.key   the serving pair, signed by a CA of the bundle
      annotation guardrail.dev/ca-since: when the current CA entered the bundle

Renewal, each tick (`plan`, pure, then `CertificateController` writes what changed):
- a CA missing, unreadable or with less than a third of its validity left is replaced by a
  new one; the old CA stays in the bundle until it expires, so connections verified against
  it keep working;
- the serving certificate is reissued when missing, not matching its key or the Service's
  names, not signed by a CA of the bundle, or with less than a third of its validity left;
  it is issued by the newest CA only once that CA has been in the webhook's caBundle for
  `overlap` (the API server must trust a CA before a certificate from it is served), else by
  the previous one.

RBAC: get and update of that one Secret and that one webhook configuration, by name (both
ship empty in the manifests: `create` cannot be limited to a name). `/readyz` stays 503 in a
worker until it serves the Secret's pair and the webhook's caBundle holds its issuer.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhook import kube
from webhook.certs import (
    CA_CERT,
    CA_KEY,
    TLS_CERT,
    TLS_KEY,
    key_pem,
    make_ca,
    make_serving_cert,
    subject_alt_names,
    write_atomically,
)

log = logging.getLogger("guardrail.certs")

SECRET_NAME = "guardrail-tls"  # noqa: S105 - a Secret's name, not a password
WEBHOOK_CONFIGURATION = "guardrail"
LEASE_NAME = "guardrail-certs"
CA_SINCE_ANNOTATION = "guardrail.dev/ca-since"
CA_VALIDITY = datetime.timedelta(days=3650)
CERT_VALIDITY = datetime.timedelta(days=90)
# The API server picks a new caBundle up within seconds; a minute leaves room to spare.
MAX_OVERLAP = datetime.timedelta(minutes=1)
TICK_SECONDS = 10.0
SYNC_SECONDS = 5.0
NOT_READY = "the self-managed serving certificate is not served or not in the caBundle yet"
WEBHOOKS_API = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


# -- the pure part ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Material:
    """What the Secret holds, as PEM bytes (empty when absent), and the CA's start."""

    ca_bundle: bytes = b""
    ca_key: bytes = b""
    cert: bytes = b""
    key: bytes = b""
    ca_since: str = ""

    @staticmethod
    def from_secret(secret: Mapping[str, Any]) -> Material:
        data = secret.get("data") if isinstance(secret.get("data"), Mapping) else {}
        annotations = (secret.get("metadata") or {}).get("annotations") or {}

        def field_of(name: str) -> bytes:
            value = data.get(name) if isinstance(data, Mapping) else None
            if not isinstance(value, str):
                return b""
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return b""

        since = annotations.get(CA_SINCE_ANNOTATION) if isinstance(annotations, Mapping) else ""
        return Material(
            field_of(CA_CERT),
            field_of(CA_KEY),
            field_of(TLS_CERT),
            field_of(TLS_KEY),
            since if isinstance(since, str) else "",
        )

    def data(self) -> dict[str, str]:
        return {
            CA_CERT: base64.b64encode(self.ca_bundle).decode("ascii"),
            CA_KEY: base64.b64encode(self.ca_key).decode("ascii"),
            TLS_CERT: base64.b64encode(self.cert).decode("ascii"),
            TLS_KEY: base64.b64encode(self.key).decode("ascii"),
        }


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long the CA and the serving certificates are valid (short ones for tests)."""

    ca: datetime.timedelta = CA_VALIDITY
    cert: datetime.timedelta = CERT_VALIDITY

    def __post_init__(self) -> None:
        if self.cert / 3 <= self.overlap or self.ca < self.cert:
            raise ValueError(
                "the CA must outlive a serving certificate, and a third of a serving "
                f"certificate's life must exceed the overlap ({self.overlap})"
            )

    @property
    def overlap(self) -> datetime.timedelta:
        return min(MAX_OVERLAP, self.ca / 20)


@dataclass(frozen=True, slots=True)
class Plan:
    material: Material
    changed: bool
    notes: tuple[str, ...] = ()


def load_bundle(pem: bytes) -> list[x509.Certificate]:
    try:
        return list(x509.load_pem_x509_certificates(pem)) if pem.strip() else []
    except ValueError:
        return []


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(pem, password=None) if pem else None
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _left(cert: x509.Certificate, now: datetime.datetime) -> datetime.timedelta:
    return cert.not_valid_after_utc - now


def _lifetime(cert: x509.Certificate) -> datetime.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    addresses = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(sans.get_values_for_type(x509.DNSName)) | addresses


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def plan(
    material: Material,
    *,
    service: str,
    namespace: str,
    now: datetime.datetime,
    lifetimes: Lifetimes = Lifetimes(),
    trusted: Sequence[x509.Certificate] = (),
    hosts: Sequence[str] = (),
) -> Plan:
    """What the Secret should hold at `now`. `trusted` are the CAs the webhook's caBundle
    holds already (a new CA issues only once trusted there for `lifetimes.overlap`); `hosts`
    are names or addresses the certificate names besides the Service's."""
    notes: list[str] = []
    cas = [ca for ca in load_bundle(material.ca_bundle) if _left(ca, now) > datetime.timedelta(0)]
    ca_key = _load_key(material.ca_key)
    current = cas[0] if cas and ca_key is not None else None
    if current is not None and current.public_key() != ca_key.public_key():  # type: ignore[union-attr]  # ca_key is set when current is
        current = None
    since = _parse_stamp(material.ca_since) or now
    if current is None or _left(current, now) < _lifetime(current) / 3:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        new_ca = make_ca(ca_key, now, now + lifetimes.ca)
        notes.append("new CA" if current is None else "CA renewed (the old one stays trusted)")
        cas = [new_ca, *cas]
        current = new_ca
        since = now
    assert ca_key is not None  # set above whenever current is
    dns_names, ip_addresses = subject_alt_names(service, namespace, hosts)
    names = set(dns_names) | {str(ip) for ip in ip_addresses}
    cert = load_bundle(material.cert)
    key = _load_key(material.key)
    serving = cert[0] if cert and key is not None else None
    issuer = next((ca for ca in cas if serving is not None and _issued_by(serving, ca)), None)
    trusted_pems = {_pem(c) for c in trusted}
    newest_usable = (
        (_pem(current) in trusted_pems and now - since >= lifetimes.overlap)
        or serving is None
        or issuer is None
    )
    reason = ""
    if serving is None or key is None:
        reason = "no serving certificate"
    elif serving.public_key() != key.public_key():
        reason = "the serving certificate does not match its key"
    elif issuer is None:
        reason = "the serving certificate is not signed by a CA of the bundle"
    elif not names <= _names_of(serving):
        reason = "the serving certificate does not name the Service"
    elif _left(serving, now) < _lifetime(serving) / 3:
        reason = "the serving certificate is near its expiry"
    elif issuer is not current and newest_usable:
        reason = "the serving certificate moves to the new CA"
    new_cert, new_key = material.cert, material.key
    if reason:
        # Always by the current CA: only its key is kept. A serving certificate renews at a
        # third of its life left, longer than the overlap, so a renewed CA is trusted by then.
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = make_serving_cert(
            leaf_key,
            ca_cert=current,
            ca_key=ca_key,
            service=service,
            namespace=namespace,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            now=now,
            not_after=now + lifetimes.cert,
        )
        new_cert, new_key = _pem(leaf), key_pem(leaf_key)
        notes.append(f"serving certificate issued ({reason})")
    bundle = b"".join(_pem(ca) for ca in cas)
    result = Material(bundle, key_pem(ca_key), new_cert, new_key, _stamp(since))
    changed = (
        result.ca_bundle != material.ca_bundle
        or result.cert != material.cert
        or _stamp(since) != material.ca_since
        or _load_key(material.ca_key) is None
    )
    if not changed:
        result = material
    return Plan(result, changed, tuple(notes))


def trusted_cas(configuration: Mapping[str, Any]) -> list[x509.Certificate]:
    """The CAs every webhook of the configuration trusts (the API server verifies each
    webhook against its own caBundle)."""
    common: list[x509.Certificate] | None = None
    for webhook in configuration.get("webhooks") or []:
        raw = ((webhook or {}).get("clientConfig") or {}).get("caBundle") or ""
        try:
            cas = load_bundle(base64.b64decode(raw, validate=True)) if raw else []
        except (binascii.Error, ValueError):
            cas = []
        pems = {_pem(ca) for ca in cas}
        common = cas if common is None else [ca for ca in common if _pem(ca) in pems]
    return common or []


# -- the I/O part -----------------------------------------------------------------------------
class CertificateController:
    """The leader's work: keep the Secret renewed and the webhooks' caBundle equal to it."""

    def __init__(
        self,
        client: kube.Client,
        namespace: str,
        *,
        service: str = "guardrail",
        secret: str = SECRET_NAME,
        configuration: str = WEBHOOK_CONFIGURATION,
        lifetimes: Lifetimes = Lifetimes(),
        hosts: Sequence[str] = (),
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.service = service
        self.secret_path = secret_path(namespace, secret)
        self.configuration_path = f"{WEBHOOKS_API}/{quote(configuration, safe='')}"
        self.lifetimes = lifetimes
        self.hosts = tuple(hosts)
        self._clock = clock

    def tick(self) -> None:
        """Renew what is due and publish the CA bundle; ApiError when the API refuses."""
        secret = self.client.get(self.secret_path, timeout=5.0)
        configuration = self.client.get(self.configuration_path, timeout=5.0)
        outcome = plan(
            Material.from_secret(secret),
            service=self.service,
            namespace=self.namespace,
            now=self._clock(),
            lifetimes=self.lifetimes,
            trusted=trusted_cas(configuration),
            hosts=self.hosts,
        )
        if outcome.changed:
            body = dict(secret)
            metadata = dict(body.get("metadata") or {})
            annotations = dict(metadata.get("annotations") or {})
            annotations[CA_SINCE_ANNOTATION] = outcome.material.ca_since
            metadata["annotations"] = annotations
            body["metadata"] = metadata
            body["data"] = outcome.material.data()
            self.client.send("PUT", self.secret_path, body, timeout=5.0)
            for note in outcome.notes:
                log.info(note, extra={"fields": {"secret": self.secret_path}})
        wanted = base64.b64encode(outcome.material.ca_bundle).decode("ascii")
        webhooks = list(configuration.get("webhooks") or [])
        if any(((w or {}).get("clientConfig") or {}).get("caBundle") != wanted for w in webhooks):
            body = dict(configuration)
            body["webhooks"] = [
                {**w, "clientConfig": {**(w.get("clientConfig") or {}), "caBundle": wanted}}
                for w in webhooks
            ]
            self.client.send("PUT", self.configuration_path, body, timeout=5.0)
            log.info(
                "caBundle updated",
                extra={"fields": {"configuration": self.configuration_path}},
            )


def secret_path(namespace: str, name: str = SECRET_NAME) -> str:
    return f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(name, safe='')}"


@dataclass(slots=True)
class CertificateSync:
    """Every worker's work: serve the Secret's pair (written into `cert_dir`, where the TLS
    context reloads it), and say whether the webhooks trust it yet."""

    client: kube.Client
    served: Callable[[], bytes]  # the certificate new connections get now (PEM)
    namespace: str
    cert_dir: Path
    secret: str = SECRET_NAME
    configuration: str = WEBHOOK_CONFIGURATION
    _ready: bool = field(default=False, init=False)

    @property
    def ready(self) -> bool:
        return self._ready

    def step(self) -> None:
        material = Material.from_secret(
            self.client.get(secret_path(self.namespace, self.secret), timeout=5.0)
        )
        cert, key = load_bundle(material.cert), _load_key(material.key)
        if not cert or key is None or cert[0].public_key() != key.public_key():
            self._ready = False
            return
        if _read(self.cert_dir / TLS_CERT) != material.cert:
            # Key first: the TLS context rejects a mismatched pair and keeps the one it has.
            write_atomically(self.cert_dir / TLS_KEY, material.key, mode=0o600)
            write_atomically(self.cert_dir / TLS_CERT, material.cert, mode=0o644)
            log.info(
                "serving the certificate of the Secret",
                extra={"fields": {"dir": str(self.cert_dir)}},
            )
        configuration = self.client.get(
            f"{WEBHOOKS_API}/{quote(self.configuration, safe='')}", timeout=5.0
        )
        # Ready once new connections get the Secret's certificate (the TLS context reloads
        # the files within a second) and every webhook's caBundle trusts its issuer.
        self._ready = self.served() == material.cert and any(
            _issued_by(cert[0], ca) for ca in trusted_cas(configuration)
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def run(
    client: kube.Client,
    served: Callable[[], bytes],
    namespace: str,
    cert_dir: Path,
    *,
    service: str = "guardrail",
    secret: str = SECRET_NAME,
    configuration: str = WEBHOOK_CONFIGURATION,
    hosts: Sequence[str] = (),
    lifetimes: Lifetimes = Lifetimes(),
    stop: threading.Event | None = None,
) -> CertificateSync:
    """Start, in a daemon thread of this worker, the sync and (when this process holds the
    Lease `guardrail-certs`) the controller; return the sync, whose `ready` gates /readyz."""
    from webhook.background import LeaseElector  # noqa: PLC0415 - the audit's module pulls in prometheus_client, which must wait for the metrics directory

    sync = CertificateSync(client, served, namespace, cert_dir, secret, configuration)
    controller = CertificateController(
        client,
        namespace,
        service=service,
        secret=secret,
        configuration=configuration,
        lifetimes=lifetimes,
        hosts=hosts,
    )
    elector = LeaseElector(client, namespace, name=LEASE_NAME)
    halt = stop or threading.Event()

    def loop() -> None:
        last_lease = 0.0
        while not halt.is_set():
            now = time.monotonic()
            try:
                if now - last_lease >= TICK_SECONDS / 2 or not elector.is_leader():
                    elector.step()
                    last_lease = now
                if elector.is_leader():
                    controller.tick()
                sync.step()
            except kube.ApiError as exc:
                if exc.status != 409:  # someone else wrote first: the next round reads again
                    log.warning("self-managed certificates: %s", exc)
            except Exception as exc:  # noqa: BLE001 - the API being away must not end the loop
                log.warning("self-managed certificates: %s", exc)
            halt.wait(SYNC_SECONDS if sync.ready else 1.0)

    threading.Thread(target=loop, name="guardrail-certs", daemon=True).start()
    return sync
