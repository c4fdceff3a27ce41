"""require-role-labels: every pod, and every workload's pod template, carries the role labels.

SPEC 2.1.

Rule: each key of `labels` (default `app`, `role`) is present with a non-empty value, and where
`allowedValues` lists values for a key, the value is one of them. Reads the pod template's
`metadata.labels` (see workloads.py), `metadata.annotations` of Pods (mirror pods are skipped)
and, on UPDATE, the same labels of `oldObject`. Network policies select pods by these labels: a
pod without them is either unreachable or covered only by over-broad rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.policy import schema
from webhook.policy.cluster import ClusterState
from webhook.policy.errors import ConfigError
from webhook.policy.model import Finding, Operation, Request
from webhook.policy.rule import Rule, Setting, Settings, Severity
from webhook.policy.text import MESSAGE_SUMMARY_LIMIT, summarize
from webhook.policy.workloads import (
    WORKLOAD_KINDS,
    is_mirror_pod,
    is_pod,
    pod_template,
    reviewed_object,
)

ID = "require-role-labels"
# Keys controllers write on the pods they make: requiring them would judge the controller,
# never the author (and they say nothing about a pod's role).
CONTROLLER_LABELS = frozenset(
    {"pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name"}
)
CONTROLLER_LABEL_PREFIXES = ("batch.kubernetes.io/",)


def _parse_labels(value: object, source: str, path: str) -> tuple[str, ...]:
    labels = schema.str_list(value, source, path, non_empty_items=True)
    for i, key in enumerate(labels):
        if key in CONTROLLER_LABELS or key.startswith(CONTROLLER_LABEL_PREFIXES):
            raise ConfigError(
                f"{key!r} is set by a controller on the pods it creates, not by the author; "
                "require a label that says the pod's role",
                schema.where(source, f"{path}[{i}]"),
            )
    return tuple(labels)


def _parse_allowed(value: object, source: str, path: str) -> Mapping[str, tuple[str, ...]]:
    raw = schema.mapping(value or {}, source, path)
    return {
        str(key): tuple(
            schema.str_list(values, source, schema.child(path, key), non_empty_items=True)
        )
        for key, values in raw.items()
    }


LABELS: Setting[tuple[str, ...]] = Setting(
    "labels",
    default=("app", "role"),
    parse=_parse_labels,
    doc="label keys every pod and pod template must carry with a non-empty value",
    spelled=["app", "role"],
)
ALLOWED_VALUES: Setting[Mapping[str, tuple[str, ...]]] = Setting(
    "allowedValues",
    default={},
    parse=_parse_allowed,
    doc="for some of those keys, the only values allowed, e.g. {role: [web, db]}",
    spelled={},
)


def _validate(values: Mapping[Setting[Any], object], source: str, path: str) -> None:
    labels = values.get(LABELS, LABELS.default)
    allowed = values.get(ALLOWED_VALUES, ALLOWED_VALUES.default)
    assert isinstance(labels, tuple)
    assert isinstance(allowed, Mapping)
    for key in allowed:
        if key not in labels:
            raise ConfigError(
                f"label {key!r} is not in {path}.labels",
                schema.where(source, f"{path}.allowedValues.{key}"),
            )


def missing_labels(labels: Mapping[str, str], required: Sequence[str]) -> list[str]:
    """Required keys that are absent or have an empty value, in the configured order."""
    return [key for key in required if not labels.get(key)]


def disallowed_values(
    labels: Mapping[str, str], allowed_values: Mapping[str, Sequence[str]]
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, value, allowed) of each present label whose value is not in its allowed list."""
    wrong = []
    for key, allowed in allowed_values.items():
        value = labels.get(key)
        if value and value not in allowed:
            wrong.append((key, value, tuple(allowed)))
    return wrong


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:  # noqa: PLR0911, PLR0912 - early returns for requests not judged, then the message built from the problems found
    """Pods and pod templates must carry every configured label with an allowed value.

    Objects: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
    ReplicationController. CREATE is checked; UPDATE only when one of the checked labels
    differs from `oldObject` (an unrelated update of an old object is never blocked); DELETE
    never. Mirror pods (annotation `kubernetes.io/config.mirror`) and exempt namespaces are
    skipped. Reads the template's `metadata.labels`; allows any non-empty value, or one of
    `allowedValues[key]` when configured. Example:

        [require-role-labels] Pod "web" in namespace "shop" is missing required labels: role.
        Add them under metadata.labels.
    """
    if request.operation not in (Operation.CREATE, Operation.UPDATE):
        return []
    template = pod_template(request.group, request.kind, request.obj)
    if template is None or request.obj is None:
        return []
    if is_pod(request.group, request.kind) and is_mirror_pod(request.obj, request.username):
        return []
    subject = reviewed_object(request)
    if subject.namespace in settings.exempt_namespaces:
        return []
    if request.operation is Operation.UPDATE and request.old_obj is not None:
        old = pod_template(request.group, request.kind, request.old_obj)
        old_labels = old.labels if old is not None else {}
        if _checked(template.labels, settings) == _checked(old_labels, settings):
            return []

    missing = missing_labels(template.labels, settings.get(LABELS))
    wrong = disallowed_values(template.labels, settings.get(ALLOWED_VALUES))
    if not missing and not wrong:
        return []

    in_template = "" if is_pod(request.group, request.kind) else " in its pod template"
    problems = []
    if missing:
        problems.append(f"missing required labels{in_template}: {', '.join(missing)}")
    problems.extend(
        f'label {key}="{value}" is not one of: {_alternatives(allowed)}'
        for key, value, allowed in wrong
    )
    if missing and wrong:
        detail = f"is {problems[0]}; {'; '.join(problems[1:])}"
        fix = f"Add or fix them under {template.labels_path}."
    elif missing:
        detail = f"is {problems[0]}"
        fix = f"Add them under {template.labels_path}."
    else:
        detail = f"has a label value that is not allowed{in_template}: {'; '.join(problems)}"
        fix = f"Fix {'it' if len(wrong) == 1 else 'them'} under {template.labels_path}."
    message = f"[{ID}] {subject.phrase} {detail}. {fix}"

    short = []
    if missing:
        short.append(f"missing labels {', '.join(missing)}")
    short.extend(f'{key}="{value}" not allowed' for key, value, _ in wrong)
    brief = f'[{ID}] {subject.kind} "{subject.name}": {"; ".join(short)}'
    with_path = f"{brief} (under {template.labels_path})"
    if len(message) <= MESSAGE_SUMMARY_LIMIT:
        summary = message
    elif len(with_path) <= MESSAGE_SUMMARY_LIMIT:
        summary = with_path
    else:
        summary = summarize(brief)
    return [subject.finding(ID, message, summary)]


def _checked(labels: Mapping[str, str], settings: Settings) -> dict[str, str | None]:
    return {key: labels.get(key) for key in settings.get(LABELS)}


def _alternatives(allowed: tuple[str, ...]) -> str:
    return ", ".join(allowed) if allowed else "(no value is allowed)"


RULE = Rule(
    id=ID,
    title="RequireRoleLabels",
    summary="Pods and pod templates carry the role labels that network policies select on.",
    severity=Severity.MEDIUM,
    default_mode=None,
    settings=(LABELS, ALLOWED_VALUES),
    kinds=WORKLOAD_KINDS,
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    needs_state=False,
    docs="require-role-labels",
    check=check,
    validate=_validate,
)
