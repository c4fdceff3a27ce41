"""require-role-labels: every pod, and every workload's pod template, carries the role labels.

Rule: each key of `labels` (default `app`, `role`) is present with a non-empty value, and where
`allowedValues` lists values for a key, the value is one of them. Reads the pod template's
`metadata.labels` (see workloads.py), `metadata.annotations` of Pods (mirror pods are skipped)
and, on UPDATE, the same labels of `oldObject`. Network policies select pods by these labels: a
pod without them is either unreachable or covered only by over-broad rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from webhook.policy.model import (
    MESSAGE_SUMMARY_LIMIT,
    ClusterState,
    Finding,
    Operation,
    Request,
    Settings,
    summarize,
)
from webhook.policy.workloads import is_mirror_pod, is_pod, pod_template, subject_of

POLICY_ID = "require-role-labels"


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


def require_role_labels(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:
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
    subject = subject_of(request)
    if subject.namespace in settings.exempt_namespaces:
        return []
    if request.operation is Operation.UPDATE and request.old_obj is not None:
        old = pod_template(request.group, request.kind, request.old_obj)
        old_labels = old.labels if old is not None else {}
        if _checked(template.labels, settings) == _checked(old_labels, settings):
            return []

    missing = missing_labels(template.labels, settings.labels)
    wrong = disallowed_values(template.labels, settings.allowed_values)
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
    message = f"[{POLICY_ID}] {subject.phrase} {detail}. {fix}"

    short = []
    if missing:
        short.append(f"missing labels {', '.join(missing)}")
    short.extend(f'{key}="{value}" not allowed' for key, value, _ in wrong)
    brief = f'[{POLICY_ID}] {subject.kind} "{subject.name}": {"; ".join(short)}'
    with_path = f"{brief} (under {template.labels_path})"
    if len(message) <= MESSAGE_SUMMARY_LIMIT:
        summary = message
    elif len(with_path) <= MESSAGE_SUMMARY_LIMIT:
        summary = with_path
    else:
        summary = summarize(brief)
    return [
        Finding(
            policy=POLICY_ID,
            kind=subject.kind,
            namespace=subject.namespace,
            name=subject.name,
            message=message,
            summary=summary,
        )
    ]


def _checked(labels: Mapping[str, str], settings: Settings) -> dict[str, str | None]:
    return {key: labels.get(key) for key in settings.labels}


def _alternatives(allowed: tuple[str, ...]) -> str:
    return ", ".join(allowed) if allowed else "(no value is allowed)"
