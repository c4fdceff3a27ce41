"""POST /validate through a real `guardrail serve` over TLS: verdicts, envelope, exemptions,
dryRun, metrics and the health endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.http.support import Server, pod, review

API_VERSIONS = pytest.mark.parametrize(
    "api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"], ids=["v1", "v1beta1"]
)

ALLOW_ALL_POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    # In "legacy", which nothing isolates: it reopens nothing, so only the warning applies.
    "metadata": {"name": "open-door", "namespace": "legacy"},
    "spec": {"podSelector": {}, "ingress": [{}]},
}
DEFAULT_DENY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "shop"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}
UNLABELLED_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        },
    },
}
NEW_NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "brand-new"}}


@API_VERSIONS
def test_labelled_pod_in_isolated_namespace_is_allowed(server: Server, api_version: str) -> None:
    """A pod with its role labels in a namespace with a default-deny is allowed, silently."""
    response = server.review(review(pod(), api_version=api_version))
    assert response["allowed"] is True
    assert "status" not in response
    assert "warnings" not in response
    assert "auditAnnotations" not in response


@API_VERSIONS
@pytest.mark.parametrize(
    ("obj", "operation", "old", "policies", "words"),
    [
        (
            pod(labels={"app": "web"}),
            "CREATE",
            None,
            ["require-role-labels"],
            ['Pod "web"', 'namespace "shop"', "missing required labels: role", "metadata.labels"],
        ),
        (
            pod(namespace="open"),
            "CREATE",
            None,
            ["require-default-deny"],
            ['namespace "open"', "default-deny", "Ingress", "Egress", "kubectl apply"],
        ),
        (
            pod(namespace="open", labels={}),
            "CREATE",
            None,
            ["require-role-labels", "require-default-deny"],
            ["app, role", 'namespace "open"'],
        ),
        (
            UNLABELLED_DEPLOYMENT,
            "CREATE",
            None,
            ["require-role-labels"],
            ['Deployment "web"', "pod template", "role", "spec.template.metadata.labels"],
        ),
        (
            None,
            "DELETE",
            DEFAULT_DENY,
            ["protect-default-deny"],
            ['NetworkPolicy "default-deny"', 'namespace "shop"', "without a default-deny"],
        ),
    ],
    ids=[
        "pod-missing-role",
        "pod-in-open-namespace",
        "both-policies",
        "deployment-template",
        "delete-default-deny",
    ],
)
def test_enforced_violations_are_denied(
    server: Server,
    api_version: str,
    obj: dict[str, Any] | None,
    operation: str,
    old: dict[str, Any] | None,
    policies: list[str],
    words: list[str],
) -> None:
    """Enforce-mode violations deny with 403, every message in status.message, annotations."""
    response = server.review(review(obj, operation=operation, old=old, api_version=api_version))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    lines = message.split("\n")
    assert [line.split("]")[0].lstrip("[") for line in lines] == policies
    for word in words:
        assert word in message
    assert sorted(response["auditAnnotations"]) == sorted(policies)
    for policy in policies:
        annotation = response["auditAnnotations"][policy]
        assert annotation.startswith(f"enforce: [{policy}]")
        assert annotation.removeprefix("enforce: ") in lines
    assert "warnings" not in response


@API_VERSIONS
def test_warn_mode_allows_with_a_short_warning(server: Server, api_version: str) -> None:
    """restrict-allow-all (warn by default): allowed, a warning under 120 characters that names
    the rule, and the full message in the audit annotation."""
    response = server.review(review(ALLOW_ALL_POLICY, api_version=api_version))
    assert response["allowed"] is True
    assert "status" not in response
    [warning] = response["warnings"]
    assert warning.startswith("[restrict-allow-all]")
    assert "spec.ingress[0]" in warning
    assert len(warning) < 120
    annotation = response["auditAnnotations"]["restrict-allow-all"]
    assert annotation.startswith(
        'warn: [restrict-allow-all] NetworkPolicy "open-door" in namespace "legacy"'
    )
    assert "admits all traffic" in annotation


def test_new_namespace_is_allowed_with_an_advisory_warning(server: Server) -> None:
    """Namespace CREATE: allowed, and warned that its pods will be rejected until a
    default-deny exists."""
    response = server.review(review(NEW_NAMESPACE))
    assert response["allowed"] is True
    [warning] = response["warnings"]
    assert warning.startswith('[require-default-deny] Namespace "brand-new"')
    assert "rejected" in warning
    assert len(warning) < 120
    assert "kubectl apply" in response["auditAnnotations"]["require-default-deny"]


@pytest.mark.parametrize(
    ("namespace", "username", "groups", "allowed"),
    [
        ("kube-system", "alice", ["developers"], True),
        ("guardrail-system", "alice", ["developers"], True),
        ("open", "trusted-bot", ["developers"], True),
        ("open", "alice", ["developers", "trusted-group"], True),
        ("open", "alice", ["developers"], False),
    ],
    ids=["exempt-namespace", "own-namespace", "exempt-username", "exempt-group", "not-exempt"],
)
def test_exemptions(
    server: Server, namespace: str, username: str, groups: list[str], allowed: bool
) -> None:
    """Exempt namespaces, usernames and groups are allowed without a trace; others judged."""
    response = server.review(
        review(pod(namespace=namespace, labels={}), username=username, groups=groups)
    )
    assert response["allowed"] is allowed
    if allowed:
        assert "warnings" not in response
        assert "auditAnnotations" not in response
    else:
        assert "[require-role-labels]" in response["status"]["message"]


def test_exemption_never_comes_from_the_object(server: Server) -> None:
    """A label or annotation on the object under review does not exempt it."""
    obj = pod(labels={"guardrail.dev/exempt": "true"})
    obj["metadata"]["annotations"] = {"guardrail.dev/exempt": "true"}
    response = server.review(review(obj))
    assert response["allowed"] is False
    assert "missing required labels: app, role" in response["status"]["message"]


@pytest.mark.parametrize(
    "obj",
    [pod(), pod(labels={"app": "web"}), pod(namespace="open"), ALLOW_ALL_POLICY],
    ids=["allowed", "missing-label", "no-default-deny", "warned"],
)
def test_dry_run_is_judged_the_same(server: Server, obj: dict[str, Any]) -> None:
    """A dryRun request gets exactly the verdict, message and warnings of the real one."""
    real = server.review(review(obj))
    dry = server.review(review(obj, dry_run=True))
    real.pop("uid")
    dry.pop("uid")
    assert dry == real


def _violations(server: Server, namespace: str) -> dict[tuple[str, str, str], float]:
    text = server.get("/metrics").text
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "guardrail_violations_total"
                and sample.labels.get("namespace") == namespace
            ):
                key = (sample.labels["policy"], sample.labels["mode"], sample.labels["kind"])
                found[key] = sample.value
    return found


def test_metrics_count_violations_across_workers(server: Server) -> None:
    """guardrail_violations_total{policy,mode,kind,namespace} counts every violation, whichever
    of the two workers judged it and whichever answers the scrape."""
    for _ in range(3):
        server.review(review(pod(name="counted", namespace="metrics-ns", labels={"app": "x"})))
    server.review(
        review({**ALLOW_ALL_POLICY, "metadata": {"name": "open-door", "namespace": "metrics-ns"}})
    )
    for _ in range(4):  # several scrapes: each may be answered by a different worker
        assert _violations(server, "metrics-ns") == {
            ("require-role-labels", "enforce", "Pod"): 3.0,
            ("require-default-deny", "enforce", "Pod"): 3.0,
            ("restrict-allow-all", "warn", "NetworkPolicy"): 1.0,
        }
    text = server.get("/metrics").text
    assert "guardrail_request_duration_seconds_count" in text
    assert server.get("/metrics").headers["Content-Type"].startswith("text/plain")


def test_violations_are_logged_as_json_lines(server: Server) -> None:
    """Each violation is one JSON log line with policy, mode, object, user, operation, uid."""
    import json  # noqa: PLC0415 - only this test compares with the standard json module

    doc = review(pod(name="logged", labels={"app": "web"}), username="carol")
    server.review(doc)
    uid = doc["request"]["uid"]
    lines = [
        json.loads(line)
        for line in server.log().splitlines()
        if line.startswith("{") and uid in line
    ]
    assert lines == [
        {
            "time": lines[0]["time"],
            "level": "warning",
            "logger": "guardrail.admission",
            "message": '[require-role-labels] Pod "logged" in namespace "shop" is missing required '
            "labels: role. Add them under metadata.labels.",
            "event": "violation",
            "policy": "require-role-labels",
            "mode": "enforce",
            "kind": "Pod",
            "namespace": "shop",
            "name": "logged",
            "user": "carol",
            "operation": "CREATE",
            "uid": uid,
            "dry_run": False,
            "denied": True,
        }
    ]


@pytest.mark.parametrize(
    ("path", "code", "body"),
    [
        ("/healthz", 200, {"status": "ok"}),
        ("/readyz", 200, {"status": "ready"}),
        (
            "/nowhere",
            404,
            {
                "error": "no such path: /nowhere (guardrail serves POST /validate, "
                "GET /healthz, /readyz, /metrics)"
            },
        ),
    ],
    ids=["healthz", "readyz", "unknown-path"],
)
def test_probe_endpoints(server: Server, path: str, code: int, body: dict[str, str]) -> None:
    """Liveness and readiness answer 200 with JSON; an unknown path is a JSON 404."""
    reply = server.get(path)
    assert reply.status_code == code
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == body
