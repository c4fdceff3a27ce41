"""Limits of `guardrail serve` and `guardrail check` against hostile input: oversized bodies,
headers and request lines, deep JSON, YAML aliases, and slow clients. Each is refused (or
contained) with a 4xx or a clear error, never a 5xx or a crash, and the server keeps serving.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.http.support import GUARDRAIL, Server, as_json, pod, review, start_server

MIB = 1024 * 1024
DEADLINE = 30.0


def _raw_exchange(server: Server, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send raw bytes over TLS and read one HTTP response: (status, body)."""
    context = ssl.create_default_context(cafile=server.ca)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(head + body)
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, response.read()


def _assert_still_judging(server: Server) -> None:
    response = server.review(review(pod(labels={"app": "web"})))
    assert response["allowed"] is False
    assert "[require-role-labels]" in response["status"]["message"]


def _head(
    server: Server,
    *,
    target: str = "/validate",
    length: int = 0,
    headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


HEADER_ABUSE = [
    ({"headers": (("X-Big", "a" * 9000),)}, 431, "field-8190"),
    ({"headers": tuple((f"X-H{i}", "v") for i in range(60))}, 431, "fields-50"),
    ({"target": "/validate?" + "a" * 5000}, 414, "line-4094"),
]


@pytest.mark.parametrize(
    ("abuse", "status"),
    [(case, code) for case, code, _ in HEADER_ABUSE],
    ids=[limit for _, _, limit in HEADER_ABUSE],
)
def test_oversized_headers_and_request_line_get_a_4xx(
    server: Server, abuse: dict[str, object], status: int
) -> None:
    """A header over 8190 bytes or more than 50 headers get 431, a request line over 4094
    bytes 414 (gunicorn's limit_request_*), never a 5xx; the server keeps judging and logs no
    traceback."""
    body = as_json(review(pod()))
    got, reply = _raw_exchange(server, _head(server, length=len(body), **abuse), body)  # type: ignore[arg-type]  # abuse mixes header overrides of several types
    assert got == status, reply[:300]
    assert b"AdmissionReview" not in reply
    _assert_still_judging(server)
    assert "Traceback" not in server.log()


def test_huge_content_length_is_413_without_reading_the_body(server: Server) -> None:
    """A request announcing 100 MiB gets 413 with a JSON error at once, before any body byte
    is sent: the server does not wait for (or buffer) it."""
    status, reply = _raw_exchange(server, _head(server, length=100 * MIB))
    assert status == 413
    assert json.loads(reply) == {"error": "request body is larger than 4194304 bytes (4 MiB)"}
    _assert_still_judging(server)


def _nested_review(depth: int) -> bytes:
    doc = review(pod())
    head, _, tail = json.dumps(doc).rpartition('"dryRun": false')
    return (head + '"dryRun": false, "x": ' + "[" * depth + "]" * depth + tail).encode()


@pytest.mark.parametrize(
    ("depth", "code"), [(1000, 200), (1025, 400)], ids=["depth-1000-judged", "depth-1025-refused"]
)
def test_json_depth_limit(server: Server, depth: int, code: int) -> None:
    """A review carrying an unknown field nested 1000 deep is judged; 1025 deep (past the
    parser's 1024) is a 400 saying so, never a RecursionError."""
    reply = server.post(_nested_review(depth))
    assert reply.status_code == code, reply.text[:300]
    if code == 200:
        assert reply.json()["response"]["allowed"] is True
    else:
        assert reply.json()["error"].startswith(
            "request body is not acceptable JSON: nested deeper than 1024 levels (line 1, column "
        )
    _assert_still_judging(server)


def _laughs(levels: int) -> str:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: lol, namespace: shop}",
        "data:",
        '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for level in range(1, levels + 1):
        refs = ",".join([f"*l{level - 1}"] * 9)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_manifest_is_refused_by_check(tmp_path: Path) -> None:
    """`guardrail check` on a "billion laughs" manifest (9^10 nodes once expanded) exits 2 at
    once with file:line and the reason, instead of exhausting memory."""
    path = tmp_path / "lol.yaml"
    path.write_text(_laughs(9))
    done = subprocess.run(
        [GUARDRAIL, "check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f'{path}:1: YAML aliases expand to more than 10000 nodes (a "billion laughs" '
        "document); write the values out instead"
    )
    assert done.stdout == ""


# -- slow clients -----------------------------------------------------------------------------
class SlowClient:
    """A client that sends a review's headers and then its body one byte at a time, holding
    the rest back until released: a thread of the server reads it the whole time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.doc = review(pod(labels={"app": "web"}))
        self.body = as_json(self.doc)
        context = ssl.create_default_context(cafile=server.ca)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        self.tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.tls.sendall(_head(server, length=len(self.body)))
        for byte in self.body[:20]:
            self.tls.sendall(bytes([byte]))
            time.sleep(0.01)

    def finish(self) -> dict[str, object]:
        """Send the rest byte by byte; return the verdict it gets."""
        for byte in self.body[20:]:
            self.tls.sendall(bytes([byte]))
        response = http.client.HTTPResponse(self.tls)
        response.begin()
        answer = json.loads(response.read())
        self.tls.close()
        assert response.status == 200
        assert answer["response"]["uid"] == self.doc["request"]["uid"]
        verdict: dict[str, object] = answer["response"]
        return verdict


@pytest.fixture
def one_worker_two_threads(tmp_path: Path) -> Iterator[Server]:
    """A server with a single gthread worker of 2 threads: its thread budget is easy to fill."""
    running = start_server(tmp_path / "serve", workers=1, threads=2)
    yield running
    running.stop()


def _fast_review(server: Server, timeout: float) -> requests.Response:
    return requests.post(
        server.url + "/validate",
        data=as_json(review(pod())),
        timeout=timeout,
        verify=server.ca,
        headers={"Content-Type": "application/json"},
    )


def test_slow_client_does_not_block_a_fast_one(one_worker_two_threads: Server) -> None:
    """While a client dribbles its body byte by byte (holding one of 2 threads), another
    client's review is answered; then the slow one is judged too."""
    server = one_worker_two_threads
    slow = SlowClient(server)
    try:
        reply = _fast_review(server, timeout=DEADLINE)
        assert reply.status_code == 200
        assert reply.json()["response"]["allowed"] is True
    finally:
        verdict = slow.finish()
    assert verdict["allowed"] is False
    assert "[require-role-labels]" in verdict["status"]["message"]  # type: ignore[index]  # the reply is JSON of a known shape


def test_slow_clients_beyond_the_thread_count_queue_the_rest(
    one_worker_two_threads: Server,
) -> None:
    """With as many slow clients as threads, a fast client is not lost: slow clients hold no
    thread while their request arrives (the worker's loop buffers it), so the fast one is
    answered, and the slow ones are judged too (see README "Reliability")."""
    server = one_worker_two_threads
    slow = [SlowClient(server) for _ in range(2)]
    outcome: list[requests.Response | BaseException] = []

    def fast() -> None:
        try:
            outcome.append(_fast_review(server, timeout=DEADLINE * 2))
        except requests.RequestException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=fast)
    waiter.start()
    waiter.join(timeout=2)
    # Whether it has been answered yet is timing; what matters is that it is not lost.
    verdicts = [client.finish() for client in slow]
    waiter.join(timeout=DEADLINE)
    assert [v["allowed"] for v in verdicts] == [False, False]
    [reply] = outcome
    assert isinstance(reply, requests.Response)
    assert reply.status_code == 200
    assert reply.json()["response"]["allowed"] is True
