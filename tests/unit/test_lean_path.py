"""The lean path for POST /validate answers exactly as the Flask view behind it: the same status
line, headers and body for every kind of request, well-formed or not, and anything else goes
to Flask."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder

from webhook.app import MAX_BODY_BYTES, create_app
from webhook.config import Config
from webhook.state.files import load_state

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "cases"
STATE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""


class FailingStream(io.RawIOBase):
    """A request body whose read fails, as a broken connection's would."""

    def read(self, _size: int = -1) -> bytes:
        raise OSError("connection reset while reading the body")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    directory = tmp_path_factory.mktemp("state")
    (directory / "state.yaml").write_text(STATE)
    return create_app(Config(), load_state(directory))


def _call(
    wsgi: Callable[..., Iterable[bytes]], environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], _exc: Any = None) -> Any:
        started[:] = [status, headers]
        return lambda _data: None

    body = b"".join(wsgi(environ, start_response))
    return started[0], list(started[1]), body


def _environ(
    body: bytes | None = b"{}",
    *,
    method: str = "POST",
    path: str = "/validate",
    headers: dict[str, str] | None = None,
    stream: io.RawIOBase | None = None,
) -> dict[str, Any]:
    builder = EnvironBuilder(
        path=path,
        method=method,
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    environ: dict[str, Any] = builder.get_environ()
    if stream is not None:
        environ["wsgi.input"] = stream
    return environ


def _golden() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(GOLDEN.glob("*.request.json"))]


CASES: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    *[(name, lambda body=body: _environ(body)) for name, body in _golden()],
    ("query string", lambda: _environ(next(iter(_golden()))[1], path="/validate?timeout=5s")),
    ("empty body", lambda: _environ(b"")),
    ("not JSON", lambda: _environ(b"{not json")),
    ("not UTF-8", lambda: _environ(b'{"a": "\xff"}')),
    ("not a review", lambda: _environ(json.dumps({"kind": "Pod"}).encode())),
    ("review without request", lambda: _environ(b'{"kind": "AdmissionReview"}')),
    ("over 4 MiB", lambda: _environ(b" " * (MAX_BODY_BYTES + 1))),
    (
        "chunked, no length",
        lambda: {
            **_environ(None, stream=io.BytesIO(next(iter(_golden()))[1])),
            "HTTP_TRANSFER_ENCODING": "chunked",
        },
    ),
    ("body read fails", lambda: _environ(b"{}", stream=FailingStream())),
    ("GET /validate", lambda: _environ(None, method="GET")),
    ("PUT /validate", lambda: _environ(b"{}", method="PUT")),
    ("trailing slash", lambda: _environ(b"{}", path="/validate/")),
    ("healthz", lambda: _environ(None, method="GET", path="/healthz")),
]


@pytest.mark.parametrize("make", [make for _, make in CASES], ids=[name for name, _ in CASES])
def test_lean_path_answers_as_the_flask_view(
    app: Flask, make: Callable[[], dict[str, Any]]
) -> None:
    """Byte for byte: status line, headers in order, body (uids echoed, errors in words)."""
    lean = _call(app.wsgi_app, make())
    flask = _call(lambda environ, start: Flask.wsgi_app(app, environ, start), make())
    assert lean == flask
