"""create_app's failure channel: a request it cannot judge is still answered with an
AdmissionReview that follows onError, logged, and counted (never a 5xx)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from webhook.app import JsonFormatter, create_app
from webhook.config import parse_config
from webhook.policy.engine import NamespaceView, PolicyStack
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Namespace, Obj


class UnreadableState:
    """A ClusterState whose every read fails, as a state source that broke would."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def namespace(self, name: str) -> Namespace | None:
        raise self.error

    def namespaces(self) -> Iterable[Namespace]:
        raise self.error

    def policies_in(self, namespace: str) -> Sequence[Obj]:
        raise self.error

    def global_policies(self) -> Sequence[Obj]:
        raise self.error

    def stack(self, namespace: str) -> PolicyStack:
        raise self.error

    def view(self, namespace: str) -> NamespaceView:
        raise self.error


def _review(namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": namespace,
            "name": "web",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "web",
                    "namespace": namespace,
                    "labels": {"app": "web", "role": "frontend"},
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("on_error", "error", "allowed", "text"),
    [
        (
            "deny",
            RuntimeError("state backend exploded"),
            False,
            "guardrail failed to judge this request: internal error, see guardrail's log",
        ),
        (
            "allow",
            RuntimeError("state backend exploded"),
            True,
            "guardrail failed to judge this request: internal error, see guardrail's log",
        ),
        (
            "deny",
            GuardrailError("cannot read network policies", "state"),
            False,
            "guardrail failed to judge this request: state: cannot read network policies",
        ),
    ],
    ids=["bug-on-error-deny", "bug-on-error-allow", "input-error-on-error-deny"],
)
def test_failure_to_judge_follows_on_error(
    caplog: pytest.LogCaptureFixture, on_error: str, error: Exception, allowed: bool, text: str
) -> None:
    """An exception while judging gives a 200 AdmissionReview per onError, a log, a count."""
    config = parse_config({"onError": on_error}, "config.yaml")
    client = create_app(config, UnreadableState(error)).test_client()
    with caplog.at_level(logging.WARNING, logger="guardrail"):
        reply = client.post("/validate", data=json.dumps(_review()))
    assert reply.status_code == 200
    response = reply.get_json()["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is allowed
    if allowed:
        assert response["warnings"][0].startswith(text[:100])
    else:
        assert response["status"]["code"] == 403
        assert response["status"]["message"].startswith(text)
    assert "guardrail failed to judge" in response["auditAnnotations"]["guardrail-error"]
    [record] = [r for r in caplog.records if r.name == "guardrail.admission"]
    assert record.fields["uid"] == "u-1"  # type: ignore[attr-defined]  # fields is set through logging's extra
    assert (record.exc_info is not None) is isinstance(error, RuntimeError)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "guardrail_judgement_errors_total 1.0" in metrics


def test_exempt_requests_are_not_judged_at_all() -> None:
    """An exempt namespace is allowed before the state is read, even a broken one."""
    config = parse_config({}, "config.yaml")
    client = create_app(config, UnreadableState(RuntimeError("unreachable"))).test_client()
    reply = client.post("/validate", data=json.dumps(_review("kube-system")))
    assert reply.get_json()["response"] == {"uid": "u-1", "allowed": True}


class Unsynced:
    """A cache that has not finished its first list yet (a Confirmer, see admission.judge)."""

    def __init__(self) -> None:
        self.synced = False

    def wait_synced(self, timeout: float) -> bool:
        return self.synced

    def confirm_providers(self, namespace: str) -> object | None:
        return None


def test_readyz_follows_ready() -> None:
    """/readyz is 503 with a JSON reason until ready() is true, /healthz 200 throughout."""
    config = parse_config({}, "config.yaml")
    cache = Unsynced()
    client = create_app(config, UnreadableState(RuntimeError()), cache).test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").get_json() == {
        "status": "not ready",
        "error": "cluster state not synced yet",
    }
    assert client.get("/healthz").status_code == 200
    cache.synced = True
    assert client.get("/readyz").status_code == 200


def test_json_formatter_puts_fields_at_top_level() -> None:
    """Log records become one JSON object with the record's fields as top-level keys."""
    record = logging.LogRecord(
        "guardrail.admission", logging.WARNING, __file__, 1, "denied %s", ("web",), None
    )
    record.fields = {"policy": "require-role-labels", "uid": "u-1"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "denied web"
    assert entry["level"] == "warning"
    assert entry["policy"] == "require-role-labels"
    assert entry["uid"] == "u-1"
