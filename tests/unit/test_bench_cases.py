"""The benchmark's cases (bench/peers/cases.py) get from Guardrail the verdicts every peer must give.

`make bench` refuses to print figures unless Gatekeeper and Kyverno give these same verdicts
through the API server; this pins the other side of that equivalence, in process and cheaply.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from bench.peers import cases
from webhook.app import create_app
from webhook.config import default_config
from webhook.policy.rules import require_role_labels
from webhook.state.files import state_from_objects

SUBJECT = "guardrail"


@pytest.fixture(scope="module")
def client() -> FlaskClient:
    objects: list[dict[str, Any]] = []
    for fixture in cases.FIXTURES:
        namespace = cases.namespace(SUBJECT, fixture)
        objects.append(namespace)
        objects += cases.network_policies(namespace["metadata"]["name"], fixture)
    return create_app(default_config(), state_from_objects(objects)).test_client()


@pytest.mark.parametrize("case", cases.CASES, ids=[case.name for case in cases.CASES])
def test_guardrail_gives_the_case_verdict(case: cases.Case, client: FlaskClient) -> None:
    """Guardrail allows or denies the case's Pod as the case says, and a denial names its one rule."""
    namespace = cases.namespace_name(SUBJECT, case.fixture)
    review = cases.admission_review(cases.pod(case.name, namespace, case.labels), case.name)
    response = client.post("/validate", json=review).get_json()["response"]
    assert response["uid"] == case.name
    assert response["allowed"] is case.allowed
    if case.denied_by:
        message = response["status"]["message"]
        named = {
            rule for rule in ("require-role-labels", "require-default-deny") if rule in message
        }
        assert named == {case.denied_by}


def test_every_fixture_is_judged() -> None:
    """Each fixture namespace has a case, and the measured namespace admits the timed Pod."""
    assert {case.fixture for case in cases.CASES} == set(cases.FIXTURES)
    timed = [case for case in cases.CASES if case.fixture == cases.MEASURED and case.allowed]
    assert [case.labels for case in timed] == [cases.LABELS]


def test_the_peers_require_guardrails_labels() -> None:
    """The labels the peers require are Guardrail's default role labels."""
    assert default_config().settings.get(require_role_labels.LABELS) == cases.REQUIRED_LABELS
