"""TLS and process behaviour of `guardrail serve`: certificate rotation without a failed
request, SIGTERM draining a request in flight, keep-alive, generated certificates, TLS 1.2+."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
from functools import partial
from pathlib import Path

import pytest
import requests
from cryptography import x509

from tests.http.support import (
    DEADLINE,
    NewConnectionClient,
    Server,
    as_json,
    make_certs,
    pod,
    review,
    serves_certificate,
    start_server,
    succeeded,
    wait_for,
)


def test_certificate_replaced_on_disk_is_served_without_failed_requests(
    fresh_server: Server,
) -> None:
    """While a client sends requests over new connections, the certificate is replaced three
    times: no request fails, and new connections are served each new certificate."""
    server = fresh_server
    assert server.served_fingerprint() == server.file_fingerprint()
    hammer = NewConnectionClient(server)
    hammer.start()
    try:
        for _ in range(3):
            before = server.file_fingerprint()
            make_certs(server.cert_dir)  # new serving certificate, same CA
            after = server.file_fingerprint()
            assert after != before
            # Each worker notices the change on its own, within a second of its last check:
            # wait until several new connections in a row (both workers) see the new one.
            wait_for(
                "new connections are served the new certificate",
                partial(serves_certificate, server, after),
            )
            wait_for(
                "the client keeps succeeding after the switch",
                partial(succeeded, hammer, hammer.successes + 5),
            )
    finally:
        hammer.stop()
    assert hammer.failures == []
    assert hammer.successes >= 15
    assert "Traceback" not in server.log()


def test_sigterm_drains_a_request_in_flight(tmp_path: Path) -> None:
    """SIGTERM to the gunicorn master while a request body is half sent: the worker stops
    accepting, waits for the rest, answers it completely, and the server exits 0."""
    server = start_server(tmp_path / "serve", workers=1, threads=2)
    try:
        doc = review(pod(labels={"app": "web"}))
        body = as_json(doc)
        head = (
            f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        context = ssl.create_default_context(cafile=server.ca)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(head + body[: len(body) // 2])
            assert _handshake_completes(server, context)  # the probe below can tell

            os.kill(server.process.pid, signal.SIGTERM)
            wait_for("the master handles SIGTERM", lambda: "Handling signal: term" in server.log())
            wait_for(
                "the worker stops accepting new connections",
                lambda: not _handshake_completes(server, context),
            )

            tls.sendall(body[len(body) // 2 :])
            response = http.client.HTTPResponse(tls)
            response.begin()
            payload = response.read()
        assert response.status == 200
        answer = json.loads(payload)
        assert answer["response"]["uid"] == doc["request"]["uid"]
        assert answer["response"]["allowed"] is False
        assert "[require-role-labels]" in answer["response"]["status"]["message"]
        assert server.process.wait(timeout=DEADLINE) == 0
    finally:
        server.stop()
    assert "Shutting down: Master" in server.log()


def _handshake_completes(server: Server, context: ssl.SSLContext) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=1) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            return True
    except OSError:  # timeout (left in the backlog), refused, reset
        return False


def test_keep_alive_reuses_one_tls_connection(fresh_server: Server) -> None:
    """Several reviews on one requests.Session travel over a single TLS connection."""
    with requests.Session() as session:
        for _ in range(5):
            doc = review(pod())
            reply = session.post(
                fresh_server.url + "/validate",
                data=as_json(doc),
                verify=fresh_server.ca,
                timeout=30,
            )
            assert reply.status_code == 200
            assert reply.json()["response"]["uid"] == doc["request"]["uid"]
            assert reply.headers.get("Connection", "").lower() != "close"
        adapter = session.get_adapter(fresh_server.url)
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        manager = adapter.poolmanager
        pools = [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118 - not a dict
    assert len(pools) == 1
    assert pools[0].num_connections == 1
    assert pools[0].num_requests == 5


def test_serve_generates_missing_certificates(tmp_path: Path) -> None:
    """With an empty --cert-dir, serve writes a CA and a serving certificate for localhost,
    127.0.0.1 and the service names, and serves with it."""
    server = start_server(tmp_path / "serve", generate_certs=False)
    try:
        assert server.served_fingerprint() == server.file_fingerprint()
        cert = x509.load_pem_x509_certificate((server.cert_dir / "tls.crt").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
        assert "guardrail.guardrail-system.svc" in names
        assert "localhost" in names
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        assert sorted(p.name for p in server.cert_dir.iterdir()) == [
            "ca.crt",
            "ca.key",
            "tls.crt",
            "tls.key",
        ]
    finally:
        server.stop()


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
def test_tls_1_2_and_1_3_clients_connect(fresh_server: Server, version: ssl.TLSVersion) -> None:
    """Clients pinned to TLS 1.2 (older API servers) or 1.3 both complete the handshake."""
    context = ssl.create_default_context(cafile=fresh_server.ca)
    context.minimum_version = version
    context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", fresh_server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert (
            tls.version()
            == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
        )


def test_serve_refuses_bad_flags(tmp_path: Path) -> None:
    """serve with no cluster to read, or a --bind that is not HOST:PORT, exits 2 with the reason."""
    import subprocess  # noqa: PLC0415 - only this test runs openssl

    from tests.http.support import GUARDRAIL  # noqa: PLC0415 - only this test needs the binary path

    cert_dir = tmp_path / "certs"
    make_certs(cert_dir)
    no_state = subprocess.run(
        [
            GUARDRAIL,
            "serve",
            "--cert-dir",
            str(cert_dir),
            "--kubeconfig",
            str(tmp_path / "missing-kubeconfig"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_state.returncode == 2
    assert no_state.stderr.strip() == (
        f"guardrail: {tmp_path / 'missing-kubeconfig'}: cannot load "
        "Kubernetes client configuration: "
        "Invalid kube-config file. No configuration found."
    )
    bad_bind = subprocess.run(
        [
            GUARDRAIL,
            "serve",
            "--state",
            str(tmp_path),
            "--cert-dir",
            str(cert_dir),
            "--bind",
            "8443",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad_bind.returncode == 2
    assert "--bind: '8443' is not HOST:PORT" in bad_bind.stderr
