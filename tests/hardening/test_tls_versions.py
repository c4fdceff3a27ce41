"""TLS of `guardrail serve`: TLS 1.2 and 1.3 only, and no plaintext HTTP anywhere.

The refusal tests use `openssl s_client` at security level 0, which can still speak TLS 1.0
and 1.1, and prove it first against a throwaway server that accepts them: a refusal by
guardrail is then the server's doing, not the client's.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.support import Server, as_json, pod, review

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")


def _s_client(port: int, flag: str) -> str:
    """The protocol openssl s_client negotiated, or `(NONE)` when no session was set up."""
    assert OPENSSL is not None
    done = subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-brief",
            "-connect",
            f"127.0.0.1:{port}",
            flag,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-servername",
            "127.0.0.1",
        ],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    # -brief prints, once the handshake is done, "CONNECTION ESTABLISHED" and
    # "Protocol version: TLSv1.3" on stderr (the long form's session block may not come).
    for line in done.stderr.decode(errors="replace").splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "Protocol version":
            return value.strip()
    return "(NONE)"


@contextlib.contextmanager
def _legacy_tls_server(cert_dir: Path) -> Iterator[int]:
    """A one-connection-at-a-time server that accepts TLS 1.0 to 1.3 (the control)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Deliberately the deprecated versions: this server exists to show the client works.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT@SECLEVEL=0")
    context.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with (
                contextlib.suppress(OSError),
                conn,
                context.wrap_socket(conn, server_side=True) as tls,
            ):
                tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        listener.close()
        thread.join(timeout=10)


LEGACY = [("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")]


@pytest.mark.parametrize(("flag", "protocol"), LEGACY, ids=["tls1.0", "tls1.1"])
def test_tls_1_0_and_1_1_clients_are_refused(server: Server, flag: str, protocol: str) -> None:
    """A TLS 1.0 or 1.1 client that does connect to a server allowing it gets no session from
    guardrail; the server keeps judging."""
    with _legacy_tls_server(server.cert_dir) as control_port:
        assert _s_client(control_port, flag) == protocol
    assert _s_client(server.port, flag) == "(NONE)"
    assert server.review(review(pod()))["allowed"] is True


@pytest.mark.parametrize(
    ("flag", "protocol"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")], ids=["tls1.2", "tls1.3"]
)
def test_tls_1_2_and_1_3_are_negotiated(server: Server, flag: str, protocol: str) -> None:
    """The same openssl client pinned to TLS 1.2 or 1.3 gets a session from guardrail."""
    assert _s_client(server.port, flag) == protocol


def test_plaintext_http_gets_no_http_answer(server: Server) -> None:
    """A review sent as plain HTTP to the port is never answered in HTTP (and never judged)."""
    body = as_json(review(pod()))
    request = (
        f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
    assert not received.startswith(b"HTTP/")
    assert b"AdmissionReview" not in received
    assert server.review(review(pod()))["allowed"] is True


def _listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state whose socket a process holds open (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = fd.readlink().as_posix()
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_serve_listens_on_the_tls_port_only(server: Server) -> None:
    """The gunicorn master and its workers listen on one port, the TLS one: there is no
    plaintext port to send /validate to."""
    pids = [server.process.pid]
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids += [int(pid) for pid in children.read_text().split()]
    assert len(pids) == 3  # master + 2 workers
    for pid in pids:
        assert _listening_ports(pid) == {server.port}
