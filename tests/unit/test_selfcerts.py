"""Self-managed certificates: what the Secret should hold, renewal by renewal (SPEC 5)."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509

from webhook.selfcerts import Lifetimes, Material, load_bundle, plan, trusted_cas

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SHORT = Lifetimes(ca=datetime.timedelta(days=30), cert=datetime.timedelta(days=9))


def _plan(
    material: Material, days: float, trusted: list[x509.Certificate] | None = None
) -> Material:
    result = plan(
        material,
        service="guardrail",
        namespace="guardrail-system",
        now=START + datetime.timedelta(days=days),
        lifetimes=SHORT,
        trusted=trusted or [],
    )
    return result.material


def _serving(material: Material) -> x509.Certificate:
    (cert,) = load_bundle(material.cert)
    return cert


def _issuer(material: Material) -> x509.Certificate:
    leaf = _serving(material)
    for ca in load_bundle(material.ca_bundle):
        try:
            leaf.verify_directly_issued_by(ca)
        except Exception:  # noqa: BLE001, S112 - not this one
            continue
        return ca
    raise AssertionError("no CA of the bundle signed the serving certificate")


def test_an_empty_secret_gets_a_ca_and_a_serving_certificate_for_the_service() -> None:
    """The Secret ships empty: the first round fills it, the certificate naming the Service
    as the API server dials it."""
    first = plan(
        Material(), service="guardrail", namespace="guardrail-system", now=START, lifetimes=SHORT
    )
    assert first.changed
    assert len(load_bundle(first.material.ca_bundle)) == 1
    names = _serving(first.material).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "guardrail.guardrail-system.svc" in names.value.get_values_for_type(x509.DNSName)
    _issuer(first.material)


def test_a_current_secret_is_left_alone() -> None:
    """Nothing due, nothing written (every replica would otherwise fight over it)."""
    filled = _plan(Material(), 0)
    again = plan(
        filled,
        service="guardrail",
        namespace="guardrail-system",
        now=START + datetime.timedelta(days=1),
        lifetimes=SHORT,
    )
    assert not again.changed
    assert again.material == filled


def test_the_serving_certificate_renews_at_a_third_of_its_life_from_the_same_ca() -> None:
    """Renewal keeps the CA, so the caBundle does not change."""
    filled = _plan(Material(), 0)
    renewed = _plan(filled, 6.5)
    assert renewed.cert != filled.cert
    assert renewed.ca_bundle == filled.ca_bundle


def test_a_renewed_ca_is_trusted_before_it_signs() -> None:
    """Near its expiry the CA is replaced; the old one stays in the bundle and keeps signing
    nothing new, and the serving certificate moves to the new CA only once the webhooks'
    caBundle has held it for the overlap."""
    filled = _plan(_plan(Material(), 0), 19)  # a serving certificate issued on day 19
    old_ca = load_bundle(filled.ca_bundle)[0]
    rotated = _plan(filled, 21)
    bundle = load_bundle(rotated.ca_bundle)
    assert len(bundle) == 2
    assert bundle[1] == old_ca
    assert rotated.cert == filled.cert  # not trusted yet: keep serving the old pair
    still = _plan(rotated, 21, trusted=bundle)  # trusted, but not for the overlap yet
    assert still.cert == filled.cert
    moved = _plan(rotated, 21.01, trusted=bundle)
    assert _issuer(moved) == bundle[0]


def test_expired_cas_leave_the_bundle() -> None:
    """An old CA stays only while it can still verify something."""
    rotated = _plan(_plan(_plan(Material(), 0), 19), 21)
    moved = _plan(rotated, 21.01, trusted=load_bundle(rotated.ca_bundle))
    assert len(load_bundle(moved.ca_bundle)) == 2
    later = _plan(moved, 31)
    assert len(load_bundle(later.ca_bundle)) == 1


@pytest.mark.parametrize(
    "broken",
    [
        Material(ca_bundle=b"not a certificate", ca_key=b"nor a key", cert=b"x", key=b"y"),
        Material(ca_bundle=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    ],
    ids=["garbage", "truncated-pem"],
)
def test_unreadable_material_is_replaced_not_fatal(broken: Material) -> None:
    """Whatever an admin or a failed write left in the Secret, the next round makes it whole."""
    fixed = _plan(broken, 0)
    _issuer(fixed)


def test_a_key_not_matching_the_ca_means_a_new_ca() -> None:
    """A CA whose key is gone cannot sign renewals: replace it rather than fail later."""
    one, other = _plan(Material(), 0), _plan(Material(), 0)
    mixed = Material(one.ca_bundle, other.ca_key, one.cert, one.key, one.ca_since)
    fixed = _plan(mixed, 1)
    assert load_bundle(fixed.ca_bundle)[0] != load_bundle(one.ca_bundle)[0]


def test_secret_data_round_trips_and_bad_base64_reads_as_empty() -> None:
    """The Secret's data is base64; a field that is not reads as absent."""
    filled = _plan(Material(), 0)
    secret = {"data": filled.data(), "metadata": {"annotations": {}}}
    assert Material.from_secret(secret).cert == filled.cert
    assert Material.from_secret({"data": {"tls.crt": "%%%"}}).cert == b""


def test_trusted_cas_are_those_every_webhook_holds() -> None:
    """The API server verifies each webhook against its own caBundle."""
    filled = _plan(Material(), 0)
    bundle = base64.b64encode(filled.ca_bundle).decode()
    both = {"webhooks": [{"clientConfig": {"caBundle": bundle}}] * 2}
    assert len(trusted_cas(both)) == 1
    one_missing = {"webhooks": [{"clientConfig": {"caBundle": bundle}}, {"clientConfig": {}}]}
    assert trusted_cas(one_missing) == []


def test_lifetimes_that_cannot_renew_in_time_are_refused() -> None:
    """A serving certificate must renew (at a third of its life) after the overlap."""
    with pytest.raises(ValueError, match="overlap"):
        Lifetimes(ca=datetime.timedelta(minutes=10), cert=datetime.timedelta(seconds=60))
