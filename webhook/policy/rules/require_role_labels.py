"""require-role-labels: every pod, and every workload's pod template, carries the role labels.

SPEC 2.1.

Rule: each key of `labels` (default `app`, `role`) is present with a non-empty value, and where
`allowedValues` lists values for a key, the value is one of them; the placeholder value that
`guardrail check --fix` writes when it cannot know a value (`REPLACE-ME`) never passes, so a
fix nobody finished keeps failing. Reads the pod template's
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
# What `guardrail check --fix` writes for a required label whose value only a person can know
# (a role is a decision, not something to guess from a name). It is a valid label value, so
# the fixed manifests apply and build, and this rule rejects it like a missing label: CI stays
# red until someone chooses, and the webhook denies a pod that still carries it.
PLACEHOLDER = "REPLACE-ME"


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


def placeholder_labels(labels: Mapping[str, str], required: Sequence[str]) -> list[str]:
    """Required keys whose value is still the placeholder a fix wrote, in the configured order."""
    return [key for key in required if labels.get(key) == PLACEHOLDER]


def disallowed_values(
    labels: Mapping[str, str], allowed_values: Mapping[str, Sequence[str]]
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, value, allowed) of each present label whose value is not in its allowed list."""
    wrong = []
    for key, allowed in allowed_values.items():
        value = labels.get(key)
        if value and value != PLACEHOLDER and value not in allowed:
            wrong.append((key, value, tuple(allowed)))
    return wrong


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:  # noqa: PLR0911 - early returns for requests not judged
    """Pods and pod templates must carry every configured label with an allowed value.

    Objects: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
    ReplicationController. CREATE is checked; UPDATE only when one of the checked labels
    differs from `oldObject` (an unrelated update of an old object is never blocked); DELETE
    never. Mirror pods (annotation `kubernetes.io/config.mirror`) and exempt namespaces are
    skipped. Reads the template's `metadata.labels`; allows any non-empty value but the
    placeholder `REPLACE-ME`, or one of `allowedValues[key]` when configured. Examples:

        [require-role-labels] Pod "web" in namespace "shop" is missing required labels: role.
        Add them under metadata.labels.
        [require-role-labels] Deployment "web" in namespace "shop" has a placeholder label
        value in its pod template: role="REPLACE-ME" is a placeholder to replace. Choose its
        value under spec.template.metadata.labels.
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

    required = settings.get(LABELS)
    allowed_values = settings.get(ALLOWED_VALUES)
    missing = missing_labels(template.labels, required)
    wrong = disallowed_values(template.labels, allowed_values)
    placeholders = placeholder_labels(template.labels, required)
    if not missing and not wrong and not placeholders:
        return []

    in_template = "" if is_pod(request.group, request.kind) else " in its pod template"
    detail, fix = _problems(
        missing, wrong, placeholders, allowed_values, in_template, template.labels_path
    )
    message = f"[{ID}] {subject.phrase} {detail}. {fix}"

    short = []
    if missing:
        short.append(f"missing labels {', '.join(missing)}")
    short.extend(f'{key}="{value}" not allowed' for key, value, _ in wrong)
    short.extend(f'{key}="{PLACEHOLDER}" placeholder' for key in placeholders)
    brief = f'[{ID}] {subject.kind} "{subject.name}": {"; ".join(short)}'
    with_path = f"{brief} (under {template.labels_path})"
    if len(message) <= MESSAGE_SUMMARY_LIMIT:
        summary = message
    elif len(with_path) <= MESSAGE_SUMMARY_LIMIT:
        summary = with_path
    else:
        summary = summarize(brief)
    return [subject.finding(ID, message, summary)]


def _problems(
    missing: Sequence[str],
    wrong: Sequence[tuple[str, str, tuple[str, ...]]],
    placeholders: Sequence[str],
    allowed_values: Mapping[str, Sequence[str]],
    in_template: str,
    labels_path: str,
) -> tuple[str, str]:
    """What is wrong (after the object's name) and the sentence saying how to fix it."""
    problems = []
    if missing:
        problems.append(f"missing required labels{in_template}: {', '.join(missing)}")
    problems.extend(
        f'label {key}="{value}" is not one of: {_alternatives(allowed)}'
        for key, value, allowed in wrong
    )
    problems.extend(
        f'{key}="{PLACEHOLDER}" is a placeholder to replace'
        + (
            f" with one of: {_alternatives(tuple(allowed_values[key]))}"
            if key in allowed_values
            else ""
        )
        for key in placeholders
    )
    listed = "; ".join(problems)
    if missing and len(problems) > 1:
        return (
            f"is {problems[0]}; {'; '.join(problems[1:])}",
            f"Add or fix them under {labels_path}.",
        )
    if missing:
        return f"is {problems[0]}", f"Add them under {labels_path}."
    if not placeholders:
        it = "it" if len(wrong) == 1 else "them"
        return (
            f"has a label value that is not allowed{in_template}: {listed}",
            f"Fix {it} under {labels_path}.",
        )
    if not wrong:
        one = len(placeholders) == 1
        what = "a placeholder label value" if one else "placeholder label values"
        its = "its value" if one else "their values"
        return f"has {what}{in_template}: {listed}", f"Choose {its} under {labels_path}."
    return f"has label values to fix{in_template}: {listed}", f"Fix them under {labels_path}."


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
