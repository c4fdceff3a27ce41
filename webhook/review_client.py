"""`guardrail review`: send manifests to a running webhook and print what kubectl would.

Each object of the manifest is wrapped in the AdmissionReview `admission.k8s.io/v1` the API
server would send for it, POSTed over TLS verified against the given CA, and the answer is
printed in kubectl's words:

    Warning: [restrict-allow-all] NetworkPolicy "open": spec.ingress[0] admits all traffic ...
    Error from server (Forbidden): error when creating "web.yaml": admission webhook
    "workloads.guardrail.dev" denied the request: [require-role-labels] Pod "web" ...
    pod/web created (guardrail review: allowed)

Only the standard library talks HTTP here: `requests` is a test dependency, not a runtime one.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from webhook.admission.review import (
    AdmissionRequest,
    AdmissionReview,
    GroupVersionKind,
    GroupVersionResource,
)
from webhook.manifests import STDIN_NAME, Manifest, is_cluster_scoped, load_paths
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Operation
from webhook.policy.objects import flavor_for
from webhook.state.files import DEFAULT_NAMESPACE, with_default_namespace

TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# The webhook names of deploy/webhook.yaml: the API server quotes the one that denied.
WORKLOADS_WEBHOOK = "workloads.guardrail.dev"
NETWORK_POLICIES_WEBHOOK = "networkpolicies.guardrail.dev"
NAMESPACES_WEBHOOK = "namespaces.guardrail.dev"

_VERBS = {Operation.CREATE: "created", Operation.UPDATE: "configured", Operation.DELETE: "deleted"}
_ACTIONS = {
    Operation.CREATE: "creating",
    Operation.UPDATE: "replacing",
    Operation.DELETE: "deleting",
}
_OPTIONS = {
    Operation.CREATE: "CreateOptions",
    Operation.UPDATE: "UpdateOptions",
    Operation.DELETE: "DeleteOptions",
}
# Plurals that the English rules below get wrong (the API's resource names, not prose).
_PLURALS = {"Endpoints": "endpoints"}


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    """Allowed when every object was; the lines to print, as kubectl would print them."""

    allowed: bool
    stdout_lines: list[str] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)


def review(
    manifest: str,
    *,
    url: str,
    ca_file: str | None,
    operation: str = "CREATE",
    username: str = "guardrail-review",
    stdin: BinaryIO | None = None,
) -> ReviewOutcome:
    """Review every object of the manifest (a file, a directory, or `-`) against url."""
    try:
        op = Operation(operation)
    except ValueError:
        raise GuardrailError(
            f"--operation must be one of CREATE, UPDATE, DELETE, not {operation!r}"
        ) from None
    if op is Operation.CONNECT:
        raise GuardrailError("--operation must be one of CREATE, UPDATE, DELETE, not 'CONNECT'")
    endpoint = _Endpoint.parse(url, ca_file)
    loaded = load_paths([manifest], stdin)
    if not loaded.manifests:
        raise GuardrailError("no Kubernetes objects to review", manifest)
    allowed = True
    stdout: list[str] = []
    stderr: list[str] = list(loaded.notes)
    for item in loaded.manifests:
        body = admission_review(item, op, username)
        response = endpoint.post(body)
        verdict = _interpret(response, body["request"]["uid"], endpoint.url)
        stderr.extend(f"Warning: {warning}" for warning in verdict.warnings)
        if verdict.allowed:
            stdout.append(f"{_allowed_line(body['request'], op)} (guardrail review: allowed)")
        else:
            allowed = False
            stderr.append(_denied_line(item, body["request"], op, verdict))
    return ReviewOutcome(allowed=allowed, stdout_lines=stdout, stderr_lines=stderr)


# -- the request --------------------------------------------------------------------------------
def plural(kind: str) -> str:
    """The resource name of a kind: Pod -> pods, NetworkPolicy -> networkpolicies."""
    if kind in _PLURALS:
        return _PLURALS[kind]
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


def admission_review(item: Manifest, operation: Operation, username: str) -> AdmissionReview:
    """The AdmissionReview v1 the API server would send for this object and operation."""
    obj: dict[str, Any] = item.obj
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind") or "")
    namespace = ""
    if not is_cluster_scoped(kind):
        obj = with_default_namespace(obj, DEFAULT_NAMESPACE)
        namespace = str(obj["metadata"]["namespace"])
    meta = obj.get("metadata")
    name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
    request: AdmissionRequest = {
        "uid": str(uuid.uuid4()),
        "kind": _gvk(group, version, kind),
        "resource": _gvr(group, version, kind),
        "requestKind": _gvk(group, version, kind),
        "requestResource": _gvr(group, version, kind),
        "name": name,
        "operation": operation.value,
        "userInfo": {"username": username, "groups": ["system:authenticated"]},
        "object": obj if operation is not Operation.DELETE else None,
        "oldObject": obj if operation is not Operation.CREATE else None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS[operation]},
    }
    if namespace:
        request["namespace"] = namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _gvk(group: str, version: str, kind: str) -> GroupVersionKind:
    return {"group": group, "version": version, "kind": kind}


def _gvr(group: str, version: str, kind: str) -> GroupVersionResource:
    return {"group": group, "version": version, "resource": plural(kind)}


# -- the answer ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Verdict:
    allowed: bool
    warnings: list[str]
    code: int
    reason: str
    message: str


def _interpret(doc: object, uid: str, url: str) -> _Verdict:
    def bad(what: str) -> GuardrailError:
        return GuardrailError(f"{url} did not answer with an AdmissionReview: {what}")

    if not isinstance(doc, Mapping) or doc.get("kind") != "AdmissionReview":
        raise bad("the body is not an AdmissionReview")
    response = doc.get("response")
    if not isinstance(response, Mapping):
        raise bad("it has no response")
    if response.get("uid") != uid:
        raise bad(f"response.uid is {response.get('uid')!r}, the request's was {uid!r}")
    allowed = response.get("allowed")
    if not isinstance(allowed, bool):
        raise bad("response.allowed is not true or false")
    raw_warnings = response.get("warnings") or []
    warnings = [str(w) for w in raw_warnings] if isinstance(raw_warnings, list) else []
    status = response.get("status")
    status = status if isinstance(status, Mapping) else {}
    code = status.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else 403
    reason = status.get("reason")
    if not isinstance(reason, str) or not reason:
        try:
            reason = HTTPStatus(code).phrase.replace(" ", "")
        except ValueError:
            reason = "Forbidden"
    message = status.get("message")
    return _Verdict(allowed, warnings, code, reason, message if isinstance(message, str) else "")


def _resource_ref(request: AdmissionRequest) -> str:
    group = request["kind"]["group"]
    kind = request["kind"]["kind"].lower()
    return f"{kind}.{group}" if group else kind


def _allowed_line(request: AdmissionRequest, operation: Operation) -> str:
    name = request.get("name", "")
    if operation is Operation.DELETE:
        return f'{_resource_ref(request)} "{name}" {_VERBS[operation]}'
    return f"{_resource_ref(request)}/{name} {_VERBS[operation]}"


def webhook_name(request: AdmissionRequest) -> str:
    """The webhook of deploy/webhook.yaml that receives this kind."""
    gvk = request["kind"]
    if gvk["group"] == "" and gvk["kind"] == "Namespace":
        return NAMESPACES_WEBHOOK
    if flavor_for(gvk["group"], gvk["kind"]) is not None:
        return NETWORK_POLICIES_WEBHOOK
    return WORKLOADS_WEBHOOK


def _denied_line(
    item: Manifest, request: AdmissionRequest, operation: Operation, verdict: _Verdict
) -> str:
    source = "STDIN" if item.file == STDIN_NAME else item.file  # kubectl's name for stdin
    return (
        f"Error from server ({verdict.reason}): error when {_ACTIONS[operation]} "
        f'"{source}": admission webhook "{webhook_name(request)}" denied the request: '
        f"{verdict.message}"
    )


# -- HTTP -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Endpoint:
    url: str
    host: str
    port: int
    path: str
    context: ssl.SSLContext | None  # None for plain http://

    @staticmethod
    def parse(url: str, ca_file: str | None) -> _Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise GuardrailError(
                f"--url must be an https:// URL such as "
                f"https://127.0.0.1:8443/validate, not {url!r}"
            )
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise GuardrailError(f"--url has an invalid port: {url!r}") from exc
        path = parts.path or "/validate"
        if parts.query:
            path += f"?{parts.query}"
        context = None
        if parts.scheme == "https":
            try:
                context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise GuardrailError(
                    f"cannot load the CA certificate: {reason} (pass --ca with the CA that "
                    "signed the webhook's certificate, e.g. certs/ca.crt)",
                    ca_file or "--ca",
                ) from exc
        return _Endpoint(url, parts.hostname, port, path, context)

    def post(self, body: AdmissionReview) -> object:  # noqa: PLR0912 - each transport failure gets its own message
        try:
            payload = json.dumps(body, allow_nan=False).encode("utf-8")
        except ValueError as exc:
            raise GuardrailError(f"the object cannot be sent as JSON: {exc}") from exc
        connection: http.client.HTTPConnection
        if self.context is not None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=TIMEOUT_SECONDS, context=self.context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request(
                "POST",
                self.path,
                body=payload,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            response = connection.getresponse()
            data = response.read(MAX_RESPONSE_BYTES + 1)
            status = response.status
        except ssl.SSLCertVerificationError as exc:
            raise GuardrailError(
                f"cannot reach {self.url}: TLS certificate verification "
                f"failed: {exc.verify_message or exc}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise GuardrailError(
                f"cannot reach {self.url}: connection refused (is `guardrail serve` running there?)"
            ) from exc
        except TimeoutError as exc:
            raise GuardrailError(
                f"cannot reach {self.url}: no answer within {TIMEOUT_SECONDS:g} s"
            ) from exc
        except socket.gaierror as exc:
            raise GuardrailError(
                f"cannot reach {self.url}: unknown host {self.host!r} ({exc.strerror})"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise GuardrailError(f"cannot reach {self.url}: {reason}") from exc
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise GuardrailError(
                f"{self.url} answered with more than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB"
            )
        try:
            doc: object = json.loads(data)
        except ValueError:
            doc = None
        if status != HTTPStatus.OK:
            error = doc.get("error") if isinstance(doc, Mapping) else None
            detail = error if isinstance(error, str) else data[:200].decode("utf-8", "replace")
            raise GuardrailError(f"{self.url} answered HTTP {status}: {detail}")
        if doc is None:
            raise GuardrailError(f"{self.url} did not answer with JSON")
        return doc
