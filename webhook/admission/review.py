"""AdmissionReview `admission.k8s.io/v1` and `v1beta1` in, a typed `Request` out; responses.

Two error channels, as in kopf: a body that is not a well-formed AdmissionReview is the
caller's bug and gets `ReviewError` (HTTP 400, naming the JSON path that is wrong); a problem
with the object under review is a policy finding, answered inside an AdmissionResponse.
The wire types keep Kubernetes' camelCase keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from webhook.admission.judge import Decision
from webhook.policy.errors import GuardrailError, type_name
from webhook.policy.model import Obj, Operation, Request

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
REVIEW_KIND = "AdmissionReview"


# -- wire format --------------------------------------------------------------------------------
class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    resource: NotRequired[GroupVersionResource]
    subResource: NotRequired[str]
    requestKind: NotRequired[GroupVersionKind]
    requestResource: NotRequired[GroupVersionResource]
    requestSubResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    operation: str
    userInfo: NotRequired[UserInfo]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    options: NotRequired[dict[str, Any] | None]


class Status(TypedDict):
    code: int
    message: str
    reason: NotRequired[str]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: str
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


# -- parsing ------------------------------------------------------------------------------------
class ReviewError(GuardrailError):
    """The body is not an AdmissionReview this webhook can judge; `where` is the JSON path."""


@dataclass(frozen=True, slots=True)
class Review:
    """A parsed AdmissionReview: the apiVersion to answer with and the request to judge."""

    api_version: str
    request: Request


_OPERATIONS = ", ".join(op.value for op in Operation)


def parse(doc: object) -> Review:
    """Check an already JSON-decoded AdmissionReview and turn it into a Request.

    Raises ReviewError naming the first field that is missing or of the wrong type.
    """
    if not isinstance(doc, Mapping):
        raise ReviewError(
            f"request body must be a JSON object (an AdmissionReview), not {_json_type(doc)}"
        )
    api_version = doc.get("apiVersion")
    kind = doc.get("kind")
    if kind != REVIEW_KIND:
        raise ReviewError(
            f"must be {REVIEW_KIND!r}, not {_describe(kind)}; the body is not an AdmissionReview",
            "kind",
        )
    if api_version not in API_VERSIONS:
        raise ReviewError(
            f"must be one of {', '.join(API_VERSIONS)}, not {_describe(api_version)}", "apiVersion"
        )
    assert isinstance(api_version, str)  # narrowed by the membership test above
    raw = doc.get("request")
    if raw is None:
        raise ReviewError(
            "missing: an AdmissionReview sent to a webhook carries a request", "request"
        )
    req = _object(raw, "request")

    uid = req.get("uid")
    if uid is None:
        raise ReviewError("missing", "request.uid")
    uid = _string(uid, "request.uid")
    if not uid:
        raise ReviewError("must not be empty", "request.uid")

    kind_name, group, version = _group_version_kind(req)
    op_text = _string(_required(req, "operation", "request"), "request.operation")
    try:
        operation = Operation(op_text)
    except ValueError:
        raise ReviewError(
            f"must be one of {_OPERATIONS}, not {op_text!r}", "request.operation"
        ) from None

    obj = _optional_object(req.get("object"), "request.object")
    old_obj = _optional_object(req.get("oldObject"), "request.oldObject")
    namespace = _optional_string(req.get("namespace"), "request.namespace")
    name = _optional_string(req.get("name"), "request.name")
    # The API server leaves request.name empty for a CREATE with generateName (the pods of a
    # ReplicaSet): the object's own name or its prefix is what a message can show.
    subject = obj if obj is not None else old_obj
    meta = subject.get("metadata") if subject is not None else None
    if isinstance(meta, Mapping):
        name = name or _text(meta.get("name")) or _text(meta.get("generateName"))
        namespace = namespace or _text(meta.get("namespace"))
    username, groups = _user_info(req)

    dry_run = req.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise ReviewError(f"must be true or false, not {_json_type(dry_run)}", "request.dryRun")

    return Review(
        api_version=api_version,
        request=Request(
            uid=uid,
            kind=kind_name,
            group=group,
            version=version,
            namespace=namespace,
            name=name,
            operation=operation,
            obj=obj,
            old_obj=old_obj,
            username=username,
            groups=groups,
            dry_run=bool(dry_run),
        ),
    )


# -- responses ----------------------------------------------------------------------------------
def build_response(api_version: str, uid: str, decision: Decision) -> AdmissionReview:
    """The AdmissionReview answering request `uid`, echoing the request's apiVersion."""
    body: AdmissionResponse = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        # reason makes kubectl print "Error from server (Forbidden)", as for any denial.
        body["status"] = {
            "code": decision.code or 403,
            "message": decision.message,
            "reason": "Forbidden",
        }
    if decision.warnings:
        body["warnings"] = list(decision.warnings)
    if decision.audit_annotations:
        body["auditAnnotations"] = dict(decision.audit_annotations)
    return {"apiVersion": api_version, "kind": REVIEW_KIND, "response": body}


# -- helpers ------------------------------------------------------------------------------------
def _group_version_kind(req: Mapping[str, Any]) -> tuple[str, str, str]:
    gvk = _object(_required(req, "kind", "request"), "request.kind")
    kind = _string(_required(gvk, "kind", "request.kind"), "request.kind.kind")
    if not kind:
        raise ReviewError("must not be empty", "request.kind.kind")
    group = _optional_string(gvk.get("group"), "request.kind.group")
    version = _optional_string(gvk.get("version"), "request.kind.version")
    return kind, group, version


def _user_info(req: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    user_info = req.get("userInfo")
    if user_info is None:
        return "", ()
    info = _object(user_info, "request.userInfo")
    username = _optional_string(info.get("username"), "request.userInfo.username")
    raw_groups = info.get("groups")
    if raw_groups is None:
        return username, ()
    if not isinstance(raw_groups, list):
        raise ReviewError(
            f"must be a list of strings, not {_json_type(raw_groups)}", "request.userInfo.groups"
        )
    return username, tuple(
        _string(g, f"request.userInfo.groups[{i}]") for i, g in enumerate(raw_groups)
    )


def _required(parent: Mapping[str, Any], key: str, path: str) -> object:
    if key not in parent or parent[key] is None:
        raise ReviewError("missing", f"{path}.{key}")
    return parent[key]


def _object(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReviewError(f"must be an object, not {_json_type(value)}", path)
    return value


def _optional_object(value: object, path: str) -> Obj | None:
    if value is None:
        return None
    return _object(value, path)


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ReviewError(f"must be a string, not {_json_type(value)}", path)
    return value


def _optional_string(value: object, path: str) -> str:
    """A string field the API server omits when empty (some clients send null instead)."""
    return "" if value is None else _string(value, path)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _json_type(value: object) -> str:
    return type_name(value, json=True)


def _describe(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, str):
        return repr(value)
    return _json_type(value)
