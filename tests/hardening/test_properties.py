"""Property-based tests of POST /validate: whatever a client sends, the answer is an
AdmissionReview for that request or a 4xx with a JSON error, never a 5xx; and a verdict does
not depend on key order or on fields Kubernetes would ignore.

Each property runs twice: in-process through Flask's test client (many examples, fast) and
over TLS against a real `guardrail serve` (gunicorn workers, fewer examples).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import yaml
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening.reviews import (
    corrupted_reviews,
    encode,
    json_values,
    reordered,
    unknown_fields,
    valid_reviews,
    with_unknown_fields,
)
from tests.http.support import CONFIG, STATE, Server, pod, review
from webhook.app import create_app
from webhook.config import parse_config
from webhook.manifests import load_bytes
from webhook.state.files import state_from_manifests

# The database is off so a run leaves no files in the repository; deadlines off because a
# shared 2-core machine makes any per-example time meaningless.
IN_PROCESS = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
OVER_TLS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
WARNING_LIMIT = 120

Post = Callable[[bytes], tuple[int, str, bytes]]


@pytest.fixture(scope="module")
def flask_client() -> Iterator[FlaskClient]:
    """create_app over the same config and state as the real server of tests/http."""
    config = parse_config(yaml.safe_load(CONFIG), "config.yaml")
    state = state_from_manifests(load_bytes(STATE.encode(), "state.yaml").manifests)
    with create_app(config, state).test_client() as client:
        yield client


@pytest.fixture(scope="module")
def tls_session(server: Server) -> Iterator[requests.Session]:
    """A keep-alive session to the real server, as the API server keeps its connections."""
    del server  # started first, so the session outlives no server
    with requests.Session() as session:
        yield session


@pytest.fixture(params=["flask", "serve"], ids=["in-process", "real-serve"])
def post(request: pytest.FixtureRequest) -> Post:
    """POST /validate, returning (status, content type, body), in-process or over TLS."""
    if request.param == "flask":
        client: FlaskClient = request.getfixturevalue("flask_client")

        def flask_post(body: bytes) -> tuple[int, str, bytes]:
            reply = client.post("/validate", data=body, content_type="application/json")
            return reply.status_code, reply.content_type or "", reply.data

        return flask_post
    server: Server = request.getfixturevalue("server")
    session: requests.Session = request.getfixturevalue("tls_session")

    def tls_post(body: bytes) -> tuple[int, str, bytes]:
        # verify per call: a session's own `verify` loses to REQUESTS_CA_BUNDLE if set.
        reply = session.post(
            server.url + "/validate",
            data=body,
            timeout=30,
            verify=server.ca,
            headers={"Content-Type": "application/json"},
        )
        return reply.status_code, reply.headers.get("Content-Type", ""), reply.content

    return tls_post


def _examples(post: Post) -> Callable[[Any], Any]:
    return IN_PROCESS if post.__name__ == "flask_post" else OVER_TLS


def assert_answer(status: int, content_type: str, body: bytes, sent: Any) -> dict[str, Any]:
    """A 200 AdmissionReview answering `sent`, or a 4xx JSON error; returns the response."""
    assert status < 500, body[:500]
    assert content_type == "application/json"
    answer = json.loads(body)
    if status != 200:
        assert status in (400, 413), body[:500]
        assert list(answer) == ["error"]
        assert isinstance(answer["error"], str)
        assert answer["error"].strip()
        return {}
    assert answer["apiVersion"] == sent["apiVersion"]
    assert answer["kind"] == "AdmissionReview"
    response: dict[str, Any] = answer["response"]
    assert response["uid"] == sent["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert response["status"]["code"] == 403
        assert response["status"]["message"].strip()
    for warning in response.get("warnings", []):
        assert isinstance(warning, str)
        assert 0 < len(warning) <= WARNING_LIMIT
    return response


def _verdict(response: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "uid"}


def test_valid_reviews_get_an_admission_review_back(post: Post) -> None:
    """Any AdmissionReview of a real-shaped Pod, workload, NetworkPolicy, Calico policy or
    Namespace is answered 200 with its apiVersion and uid echoed and a well-formed verdict."""

    @_examples(post)
    @given(doc=valid_reviews())
    def check(doc: dict[str, Any]) -> None:
        response = assert_answer(*post(encode(doc)), doc)
        assert response, "a valid review must not be refused"

    check()


def test_corrupted_reviews_are_never_a_server_error(post: Post) -> None:
    """A review with any of its values replaced by arbitrary JSON is answered with a verdict
    or a 400 naming what is wrong, never a 5xx."""

    @_examples(post)
    @given(doc=corrupted_reviews())
    def check(doc: dict[str, Any]) -> None:
        assert_answer(*post(encode(doc)), doc)

    check()


def test_arbitrary_json_and_bytes_get_a_json_error(post: Post) -> None:
    """Any JSON value that is not an AdmissionReview, and any byte string, gets a 400 with a
    JSON error."""

    @_examples(post)
    @given(body=st.one_of(json_values.map(encode), st.binary(max_size=256)))
    def check(body: bytes) -> None:
        status, content_type, reply = post(body)
        assert status == 400, reply[:300]
        assert_answer(status, content_type, reply, None)

    check()


def test_verdict_ignores_key_order_and_unknown_fields(post: Post) -> None:
    """The same review with its keys in another order and unknown fields added where
    Kubernetes ignores them gets exactly the same verdict, warnings and annotations."""

    @_examples(post)
    @given(doc=valid_reviews(), extra=unknown_fields, seed=st.integers(0, 2**32 - 1))
    def check(doc: dict[str, Any], extra: list[tuple[int, str, Any]], seed: int) -> None:
        shuffler = random.Random(seed)  # noqa: S311 - a key order, not a secret

        def shuffled(keys: list[str]) -> list[str]:
            shuffler.shuffle(keys)
            return keys

        first = assert_answer(*post(encode(doc)), doc)
        rewritten = reordered(with_unknown_fields(doc, extra), shuffled)
        second = assert_answer(*post(encode(rewritten)), rewritten)
        assert _verdict(second) == _verdict(first)

    check()


def test_unlabelled_pod_is_denied_whatever_else_the_review_carries(post: Post) -> None:
    """A Pod missing its role label is denied in an isolated namespace, with unknown fields
    anywhere they are ignored: noise never turns a denial into an admission."""

    @_examples(post)
    @given(extra=unknown_fields)
    def check(extra: list[tuple[int, str, Any]]) -> None:
        doc = with_unknown_fields(review(pod(labels={"app": "web"})), extra)
        response = assert_answer(*post(encode(doc)), doc)
        assert response["allowed"] is False
        assert response["status"]["message"].startswith(
            '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role.'
        )

    check()


def test_server_log_has_no_traceback_after_the_properties(server: Server) -> None:
    """After every property above ran against it, the real server logged no traceback and
    still judges a valid review."""
    assert "Traceback" not in server.log()
    assert server.review(review(pod()))["allowed"] is True
