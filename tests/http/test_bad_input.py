"""Bad input to a real `guardrail serve`: a 400/405/413 with a JSON error, never a 5xx, and the
same server still judging the next valid review."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.http.support import Server, pod, review

MIB = 1024 * 1024


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _review_bytes(**request_changes: Any) -> bytes:
    doc = review(pod())
    doc["request"].update(request_changes)
    for key, value in list(doc["request"].items()):
        if value is _DROP:
            del doc["request"][key]
    return json.dumps(doc).encode()


_DROP = object()


def _review_with_deep_object(depth: int) -> bytes:
    head, _, tail = json.dumps(review(pod())).rpartition('"dryRun": false')
    return head.encode() + b'"dryRun": false, "deep": ' + _deep(depth) + tail.encode()


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (no Content-Length to check up front)."""
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


BAD_BODIES = [
    (b"this is not json", 400, "request body is not valid JSON"),
    (b"", 400, "request body is empty; expected an AdmissionReview JSON object"),
    (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "\xff\xfe"}',
        400,
        "request body is not valid UTF-8 (invalid byte at offset 47)",
    ),
    (b"[]", 400, "request body must be a JSON object (an AdmissionReview), not an array"),
    (b'"review"', 400, "request body must be a JSON object (an AdmissionReview), not a string"),
    (b"42", 400, "request body must be a JSON object (an AdmissionReview), not a number"),
    (
        json.dumps(pod()).encode(),
        400,
        "kind: must be 'AdmissionReview', not 'Pod'; the body is not an AdmissionReview",
    ),
    (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
        400,
        "request: missing: an AdmissionReview sent to a webhook carries a request",
    ),
    (_review_bytes(uid=_DROP), 400, "request.uid: missing"),
    (_review_bytes(uid=12345), 400, "request.uid: must be a string, not a number"),
    (
        _review_bytes(kind={"group": "", "version": "v1", "kind": ["Pod"]}),
        400,
        "request.kind.kind: must be a string, not an array",
    ),
    (
        _review_bytes(operation="EXPLODE"),
        400,
        "request.operation: must be one of CREATE, UPDATE, DELETE, CONNECT, not 'EXPLODE'",
    ),
    (_deep(100_000), 400, "request body is not acceptable JSON: nested deeper than 1024 levels"),
    (
        _review_with_deep_object(100_000),
        400,
        "request body is not acceptable JSON: nested deeper than 1024 levels",
    ),
    (b" " * (5 * MIB), 413, "request body is larger than 4194304 bytes (4 MiB)"),
]
BAD_BODY_IDS = [
    "not-json",
    "empty-body",
    "invalid-utf8",
    "json-array",
    "json-string",
    "json-number",
    "not-an-admission-review",
    "no-request",
    "no-uid",
    "uid-not-a-string",
    "kind-not-a-string",
    "unknown-operation",
    "nested-100000-deep",
    "review-with-object-nested-100000-deep",
    "body-5-mib",
]


def _assert_still_judging(server: Server) -> None:
    response = server.review(review(pod(labels={"app": "web"})))
    assert response["allowed"] is False
    assert "[require-role-labels]" in response["status"]["message"]


def _assert_json_error(reply: requests.Response, code: int, error: str) -> None:
    assert reply.status_code == code, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert list(body) == ["error"]
    assert body["error"].startswith(error), body["error"]


@pytest.mark.parametrize(("body", "code", "error"), BAD_BODIES, ids=BAD_BODY_IDS)
def test_bad_body_gets_a_json_error_and_the_server_keeps_judging(
    server: Server, body: bytes, code: int, error: str
) -> None:
    """Each malformed body gets its 4xx with a JSON error saying what is wrong; then the same
    server judges a valid review, and no traceback reached the log."""
    _assert_json_error(server.post(body), code, error)
    _assert_still_judging(server)
    assert "Traceback" not in server.log()


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    """A chunked body (no Content-Length) is cut off at 4 MiB with 413 too."""
    _assert_json_error(
        server.post(_chunks(5 * MIB)), 413, "request body is larger than 4194304 bytes (4 MiB)"
    )
    _assert_still_judging(server)


def test_body_just_under_the_limit_is_parsed(server: Server) -> None:
    """A valid review padded to just under 4 MiB is judged, not refused."""
    body = _review_bytes()
    padded = body[:-1] + b" " * (4 * MIB - len(body) - 1) + body[-1:]
    assert len(padded) == 4 * MIB - 1
    reply = server.post(padded)
    assert reply.status_code == 200
    assert reply.json()["response"]["allowed"] is True


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"], ids=["get", "put", "delete"])
def test_wrong_method_is_405(server: Server, method: str) -> None:
    """/validate only takes POST: other methods get 405 with Allow and a JSON error."""
    reply = requests.request(method, server.url + "/validate", verify=server.ca, timeout=30)
    _assert_json_error(reply, 405, f"method {method} is not allowed on /validate; use POST")
    assert reply.headers["Allow"] == "POST"
    _assert_still_judging(server)
