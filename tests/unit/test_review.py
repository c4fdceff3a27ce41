"""AdmissionReview parsing (v1, v1beta1) into a Request, its errors, and the response builder."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from webhook.admission.judge import Decision
from webhook.admission.review import ReviewError, build_response, parse
from webhook.policy.model import Operation

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
}


def _review(api_version: str = "admission.k8s.io/v1", **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "name": "web",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["dev", "system:authenticated"]},
        "object": copy.deepcopy(POD),
        "oldObject": None,
        "dryRun": False,
    }
    request.update(overrides)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


@pytest.mark.parametrize(
    "api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"], ids=["v1", "v1beta1"]
)
def test_parses_every_field(api_version: str) -> None:
    """Both API versions give the same Request, and remember which version to answer in."""
    parsed = parse(_review(api_version))
    req = parsed.request
    assert parsed.api_version == api_version
    assert (req.uid, req.kind, req.group, req.version) == (
        "705ab4f5-6393-11e8-b7cc-42010a800002",
        "Pod",
        "",
        "v1",
    )
    assert (req.namespace, req.name, req.operation) == ("shop", "web", Operation.CREATE)
    assert req.username == "alice"
    assert req.groups == ("dev", "system:authenticated")
    assert req.obj == POD
    assert req.old_obj is None
    assert req.dry_run is False


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        (
            {"name": None, "object": {**POD, "metadata": {"generateName": "web-7d9f-"}}},
            "name",
            "web-7d9f-",
        ),
        ({"name": None}, "name", "web"),
        ({"namespace": None}, "namespace", "shop"),
        ({"dryRun": True}, "dry_run", True),
        ({"dryRun": None}, "dry_run", False),
        ({"userInfo": None}, "username", ""),
        ({"userInfo": {"username": "bob"}}, "groups", ()),
        ({"operation": "DELETE", "object": None, "oldObject": POD}, "old_obj", POD),
        (
            {"kind": {"group": "networking.k8s.io", "version": "v1", "kind": "NetworkPolicy"}},
            "group",
            "networking.k8s.io",
        ),
    ],
    ids=[
        "generate-name",
        "name-from-object",
        "namespace-from-object",
        "dry-run",
        "dry-run-null",
        "no-user-info",
        "no-groups",
        "delete-old-object",
        "group",
    ],
)
def test_optional_and_derived_fields(
    overrides: dict[str, Any], field: str, expected: object
) -> None:
    """Omitted fields take Kubernetes' defaults; names come from the object when omitted."""
    assert getattr(parse(_review(**overrides)).request, field) == expected


def _without(path: str) -> dict[str, Any]:
    doc = _review()
    *parents, last = path.split(".")
    target: Any = doc
    for key in parents:
        target = target[key]
    del target[last]
    return doc


def _with(path: str, value: object) -> dict[str, Any]:
    doc = _review()
    *parents, last = path.split(".")
    target: Any = doc
    for key in parents:
        target = target[key]
    target[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([1, 2], "request body must be a JSON object (an AdmissionReview), not an array"),
        ("text", "request body must be a JSON object (an AdmissionReview), not a string"),
        (None, "request body must be a JSON object (an AdmissionReview), not null"),
        (
            {"apiVersion": "v1", "kind": "Pod"},
            "kind: must be 'AdmissionReview', not 'Pod'; the body is not an AdmissionReview",
        ),
        (
            _without("kind"),
            "kind: must be 'AdmissionReview', not missing; the body is not an AdmissionReview",
        ),
        (
            _with("apiVersion", "admission.k8s.io/v2"),
            "apiVersion: must be one of admission.k8s.io/v1, admission.k8s.io/v1beta1, "
            "not 'admission.k8s.io/v2'",
        ),
        (
            _without("request"),
            "request: missing: an AdmissionReview sent to a webhook carries a request",
        ),
        (_with("request", []), "request: must be an object, not an array"),
        (_without("request.uid"), "request.uid: missing"),
        (_with("request.uid", 42), "request.uid: must be a string, not a number"),
        (_with("request.uid", ""), "request.uid: must not be empty"),
        (_without("request.kind"), "request.kind: missing"),
        (_with("request.kind", "Pod"), "request.kind: must be an object, not a string"),
        (_with("request.kind.kind", 7), "request.kind.kind: must be a string, not a number"),
        (_with("request.kind.kind", ""), "request.kind.kind: must not be empty"),
        (_with("request.kind.group", ["x"]), "request.kind.group: must be a string, not an array"),
        (_without("request.operation"), "request.operation: missing"),
        (
            _with("request.operation", "PATCH"),
            "request.operation: must be one of CREATE, UPDATE, DELETE, CONNECT, not 'PATCH'",
        ),
        (_with("request.namespace", 1), "request.namespace: must be a string, not a number"),
        (_with("request.object", "pod"), "request.object: must be an object, not a string"),
        (_with("request.oldObject", [1]), "request.oldObject: must be an object, not an array"),
        (_with("request.userInfo", "alice"), "request.userInfo: must be an object, not a string"),
        (
            _with("request.userInfo.groups", "dev"),
            "request.userInfo.groups: must be a list of strings, not a string",
        ),
        (
            _with("request.userInfo.groups", ["dev", None]),
            "request.userInfo.groups[1]: must be a string, not null",
        ),
        (_with("request.dryRun", "yes"), "request.dryRun: must be true or false, not a string"),
    ],
    ids=[
        "array",
        "string",
        "null",
        "not-a-review",
        "no-kind",
        "unknown-api-version",
        "no-request",
        "request-array",
        "no-uid",
        "uid-number",
        "uid-empty",
        "no-gvk",
        "gvk-string",
        "kind-number",
        "kind-empty",
        "group-array",
        "no-operation",
        "unknown-operation",
        "namespace-number",
        "object-string",
        "old-object-array",
        "user-info-string",
        "groups-string",
        "group-null",
        "dry-run-string",
    ],
)
def test_malformed_reviews_name_the_wrong_field(doc: object, expected: str) -> None:
    """Each malformed review raises ReviewError whose text names the JSON path and problem."""
    with pytest.raises(ReviewError) as info:
        parse(doc)
    assert str(info.value) == expected


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (Decision(allowed=True), {"uid": "u1", "allowed": True}),
        (
            Decision(
                allowed=True,
                warnings=("[restrict-allow-all] short",),
                audit_annotations={"restrict-allow-all": "warn: long"},
            ),
            {
                "uid": "u1",
                "allowed": True,
                "warnings": ["[restrict-allow-all] short"],
                "auditAnnotations": {"restrict-allow-all": "warn: long"},
            },
        ),
        (
            Decision(
                allowed=False,
                message="[require-role-labels] a\n[require-default-deny] b",
                audit_annotations={"require-role-labels": "enforce: a"},
            ),
            {
                "uid": "u1",
                "allowed": False,
                "status": {
                    "code": 403,
                    "message": "[require-role-labels] a\n[require-default-deny] b",
                    "reason": "Forbidden",
                },
                "auditAnnotations": {"require-role-labels": "enforce: a"},
            },
        ),
    ],
    ids=["allowed", "warned", "denied"],
)
@pytest.mark.parametrize(
    "api_version", ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"], ids=["v1", "v1beta1"]
)
def test_response_echoes_version_kind_and_uid(
    api_version: str, decision: Decision, expected: dict[str, Any]
) -> None:
    """The response carries the request's apiVersion and uid, and only non-empty fields."""
    assert build_response(api_version, "u1", decision) == {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": expected,
    }
