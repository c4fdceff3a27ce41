"""The benchmark's cases (bench/peers/cases.py) get from Guardrail the verdicts every peer must give.

`make bench` refuses to print figures unless Gatekeeper and Kyverno give these same verdicts
through the API server; this pins the other side of that equivalence, in process and cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from bench import workload
from bench.peers import cases
from webhook.admission import review
from webhook.admission.judge import Judge
from webhook.app import create_app
from webhook.config import Config, default_config
from webhook.policy.rules import require_role_labels
from webhook.state.files import state_from_objects
from webhook.state.index import IndexedState

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


MANIFESTS = Path(__file__).resolve().parents[2] / "bench" / "peers" / "manifests"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def test_gatekeeper_constraints_require_the_cases_rules() -> None:
    """Gatekeeper's constraints ask for the cases' labels and both directions, and deny."""
    constraints = {
        doc["kind"]: doc["spec"]
        for doc in _documents(MANIFESTS / "gatekeeper" / "constraints.yaml")
    }
    assert tuple(constraints["K8sRequiredLabels"]["parameters"]["labels"]) == cases.REQUIRED_LABELS
    assert constraints["K8sDefaultDeny"]["parameters"]["directions"] == ["Ingress", "Egress"]
    assert {spec["enforcementAction"] for spec in constraints.values()} == {"deny"}


def test_kyverno_policies_require_the_cases_labels() -> None:
    """Kyverno's ClusterPolicy pattern and ValidatingPolicy list name exactly the cases' labels."""
    (policy,) = _documents(MANIFESTS / "kyverno" / "clusterpolicy.yaml")
    rule = next(r for r in policy["spec"]["rules"] if r["name"] == "require-role-labels")
    assert tuple(rule["validate"]["pattern"]["metadata"]["labels"]) == cases.REQUIRED_LABELS
    (validating,) = _documents(MANIFESTS / "kyverno" / "validatingpolicy.yaml")
    missing = next(v for v in validating["spec"]["variables"] if v["name"] == "missing")
    assert missing["expression"].startswith(repr(list(cases.REQUIRED_LABELS)).replace('"', "'"))


def test_kyverno_subjects_see_only_their_own_namespaces() -> None:
    """Kyverno's webhooks select both its subjects; each policy then only its own namespaces."""
    (config,) = _documents(MANIFESTS / "kyverno" / "config.yaml")
    (selector,) = json.loads(config["data"]["webhooks"])["namespaceSelector"]["matchExpressions"]
    assert (selector["key"], selector["operator"]) == (cases.LABEL, "In")
    assert selector["values"] == ["kyverno-cp", "kyverno-vp"]
    (validating,) = _documents(MANIFESTS / "kyverno" / "validatingpolicy.yaml")
    assert validating["spec"]["matchConstraints"]["namespaceSelector"] == {
        "matchLabels": {cases.LABEL: "kyverno-vp"}
    }
    (policy,) = _documents(MANIFESTS / "kyverno" / "clusterpolicy.yaml")
    (condition,) = policy["spec"]["webhookConfiguration"]["matchConditions"]
    prefix = condition["expression"].split("'")[1]
    assert all(cases.namespace_name("kyverno-cp", f).startswith(prefix) for f in cases.FIXTURES)
    assert not any(cases.namespace_name("kyverno-vp", f).startswith(prefix) for f in cases.FIXTURES)


@pytest.mark.parametrize("peer", ["gatekeeper", "kyverno"])
def test_peer_denials_name_the_rule(peer: str) -> None:
    """Each peer's deny messages start with the rule's id in brackets, as Guardrail's do."""
    text = "".join(p.read_text(encoding="utf-8") for p in (MANIFESTS / peer).glob("*.yaml"))
    for rule in ("require-role-labels", "require-default-deny"):
        assert f"[{rule}]" in text


@pytest.mark.parametrize("namespaces", [200, 10000])
def test_the_throughput_mix_expects_guardrails_verdicts(namespaces: int) -> None:
    """bench/run.py stops when a verdict differs from the mix's expectation (measuring a
    server that answers otherwise would measure other work): the expectations are Guardrail's."""
    state = IndexedState()
    for obj in workload.state_objects(namespaces):
        state.upsert(obj)
    judge = Judge(Config(), state)
    got = {
        label: judge.decide(review.parse(doc).request).allowed
        for label, doc, _ in workload.reviews(namespaces)
    }
    assert got == {label: allowed for label, _, allowed in workload.reviews(namespaces)}
