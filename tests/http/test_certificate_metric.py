"""`guardrail_serving_certificate_expiry_timestamp_seconds`: the notAfter of the certificate
new connections get, across workers; a renewed certificate moves it (the PrometheusRule of
deploy/components/monitoring alerts on it)."""

from __future__ import annotations

import re
import subprocess
from functools import partial
from pathlib import Path

import requests
from cryptography import x509

from tests.http.support import GUARDRAIL, serves_certificate, start_server, wait_for

METRIC = "guardrail_serving_certificate_expiry_timestamp_seconds"


def _write_certificate(cert_dir: Path, days: int) -> float:
    subprocess.run(
        [GUARDRAIL, "certs", "--out", str(cert_dir), "--host", "127.0.0.1", "--days", str(days)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    cert = x509.load_pem_x509_certificate((cert_dir / "tls.crt").read_bytes())
    return cert.not_valid_after_utc.timestamp()


def _exported(url: str, ca: str) -> float | None:
    # A new connection each time: whichever worker answers, and it reloads first if it must.
    text = requests.get(f"{url}/metrics", verify=ca, timeout=10).text
    found = re.search(rf"^{METRIC} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_the_expiry_of_the_served_certificate_is_exported_and_follows_a_renewal(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "serve"
    soon = _write_certificate(workdir / "certs", days=3)
    server = start_server(workdir, generate_certs=False)
    try:
        # Every worker serves the 3-day certificate: the earliest is its notAfter.
        assert _exported(server.url, server.ca) == soon
        later = _write_certificate(server.cert_dir, days=365)
        wait_for(
            "new connections get the renewed certificate",
            partial(serves_certificate, server, server.file_fingerprint()),
        )
        # Once both workers serve the renewed one, the earliest expiry is a year away.
        wait_for(
            "the metric to show the renewed certificate's expiry",
            lambda: _exported(server.url, server.ca) == later,
        )
    finally:
        server.stop()
    assert "cannot read the served certificate" not in server.log()
