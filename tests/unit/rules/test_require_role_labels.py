"""require-role-labels (SPEC 2.1): verdicts and messages for pods and pod templates."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from webhook.policy.model import Finding, Operation, Request
from webhook.policy.rule import Settings
from webhook.policy.rules.require_role_labels import (
    ALLOWED_VALUES,
    LABELS,
    disallowed_values,
    missing_labels,
)
from webhook.policy.rules.require_role_labels import check as require_role_labels
from webhook.state.index import IndexedState

GROUPS = {
    "Pod": ("", "v1"),
    "ReplicationController": ("", "v1"),
    "Deployment": ("apps", "v1"),
    "ReplicaSet": ("apps", "v1"),
    "StatefulSet": ("apps", "v1"),
    "DaemonSet": ("apps", "v1"),
    "Job": ("batch", "v1"),
    "CronJob": ("batch", "v1"),
    "Service": ("", "v1"),
}
SETTINGS = Settings(exempt_namespaces=frozenset({"kube-system"}), values={LABELS: ("app", "role")})
TIERS = Settings(
    values={LABELS: ("app", "role", "tier"), ALLOWED_VALUES: {"tier": ("backend", "frontend")}},
)


def workload(kind: str, labels: Any, name: str = "web", **meta: Any) -> dict[str, Any]:
    """An object of kind whose pods carry labels, the way users write it."""
    group, version = GROUPS[kind]
    api_version = f"{group}/{version}" if group else version
    metadata: dict[str, Any] = {"name": name, "namespace": "shop", **meta}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c"}]}}
    if kind == "Pod":
        metadata["labels"] = labels
        return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": {}}
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def request(
    obj: Any,
    operation: Operation = Operation.CREATE,
    old: Any = None,
    *,
    kind: str = "",
    name: str | None = None,
    namespace: str = "shop",
) -> Request:
    kind = kind or (obj or old)["kind"]
    group, version = GROUPS[kind]
    if name is None:
        name = str(((obj or old).get("metadata") or {}).get("name") or "")
    return Request(
        uid="u",
        kind=kind,
        group=group,
        version=version,
        namespace=namespace,
        name=name,
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def judge(req: Request, settings: Settings = SETTINGS) -> list[Finding]:
    return require_role_labels(req, IndexedState(), settings)


def test_pod_missing_a_label_gets_the_exact_spec_message() -> None:
    """The SPEC's example message, word for word, and a warning-sized summary."""
    [finding] = judge(request(workload("Pod", {"app": "web"})))
    expected = (
        '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role. '
        "Add them under metadata.labels."
    )
    assert finding.message == expected
    assert finding.summary == expected
    assert (finding.policy, finding.kind, finding.namespace, finding.name) == (
        "require-role-labels",
        "Pod",
        "shop",
        "web",
    )
    assert not finding.advisory


TEMPLATE_PATHS = [
    ("ReplicationController", "spec.template.metadata.labels"),
    ("Deployment", "spec.template.metadata.labels"),
    ("ReplicaSet", "spec.template.metadata.labels"),
    ("StatefulSet", "spec.template.metadata.labels"),
    ("DaemonSet", "spec.template.metadata.labels"),
    ("Job", "spec.template.metadata.labels"),
    ("CronJob", "spec.jobTemplate.spec.template.metadata.labels"),
]


@pytest.mark.parametrize(("kind", "path"), TEMPLATE_PATHS, ids=[k for k, _ in TEMPLATE_PATHS])
def test_workload_message_names_its_pod_template_path(kind: str, path: str) -> None:
    """A workload is judged by its pod template and told exactly where to add the labels."""
    [finding] = judge(request(workload(kind, {"role": "frontend"})))
    assert finding.message == (
        f'[require-role-labels] {kind} "web" in namespace "shop" is missing required labels '
        f"in its pod template: app. Add them under {path}."
    )
    assert finding.kind == kind
    assert len(finding.summary) < 120


@pytest.mark.parametrize("kind", [k for k, _ in TEMPLATE_PATHS] + ["Pod"])
def test_labelled_objects_pass(kind: str) -> None:
    """Every kind carrying every label with a value passes."""
    assert judge(request(workload(kind, {"app": "web", "role": "frontend"}))) == []


def test_labels_on_the_workload_itself_do_not_count() -> None:
    """A Deployment's own metadata.labels are not its pods' labels."""
    obj = workload("Deployment", {})
    obj["metadata"]["labels"] = {"app": "web", "role": "frontend"}
    [finding] = judge(request(obj))
    assert "missing required labels in its pod template: app, role." in finding.message


@pytest.mark.parametrize(
    ("labels", "missing"),
    [
        ({}, "app, role"),
        (None, "app, role"),
        ({"app": "", "role": "frontend"}, "app"),
        ({"app": "web", "role": None}, "role"),
        ({"App": "web", "ROLE": "x"}, "app, role"),
    ],
    ids=["none", "labels-null", "empty-value", "null-value", "case-differs"],
)
def test_absent_or_empty_labels_are_missing(labels: Any, missing: str) -> None:
    """A label must be present with a non-empty value; keys are case-sensitive."""
    [finding] = judge(request(workload("Pod", labels)))
    assert f"is missing required labels: {missing}. Add them under metadata.labels." in (
        finding.message
    )


def test_configured_labels_replace_the_defaults() -> None:
    """The `labels` setting decides which keys are required, in its order."""
    settings = Settings(values={LABELS: ("team", "app")})
    [finding] = judge(request(workload("Pod", {"role": "x"})), settings)
    assert "missing required labels: team, app." in finding.message


def test_disallowed_value_names_label_value_and_allowed_values() -> None:
    """A value outside allowedValues is named with the values that are allowed."""
    [finding] = judge(
        request(workload("Deployment", {"app": "web", "role": "api", "tier": "db"})), TIERS
    )
    assert finding.message == (
        '[require-role-labels] Deployment "web" in namespace "shop" has a label value that is '
        'not allowed in its pod template: label tier="db" is not one of: backend, frontend. '
        "Fix it under spec.template.metadata.labels."
    )
    assert len(finding.summary) < 120
    assert 'tier="db" not allowed' in finding.summary


def test_the_fix_placeholder_is_rejected_like_a_missing_label() -> None:
    """`REPLACE-ME`, which `check --fix` writes when only a person can know the value, never
    passes: a fix nobody finished keeps CI red and is denied at admission."""
    [finding] = judge(request(workload("Deployment", {"app": "web", "role": "REPLACE-ME"})))
    assert finding.message == (
        '[require-role-labels] Deployment "web" in namespace "shop" has a placeholder label '
        'value in its pod template: role="REPLACE-ME" is a placeholder to replace. Choose its '
        "value under spec.template.metadata.labels."
    )
    assert 'role="REPLACE-ME" placeholder' in finding.summary
    assert len(finding.summary) < 120


def test_a_placeholder_names_the_allowed_values_and_is_not_also_disallowed() -> None:
    """With allowedValues the placeholder says what to choose from, and is one problem, not two."""
    labels = {"app": "REPLACE-ME", "role": "api", "tier": "REPLACE-ME"}
    [finding] = judge(request(workload("Pod", labels)), TIERS)
    assert finding.message == (
        '[require-role-labels] Pod "web" in namespace "shop" has placeholder label values: '
        'app="REPLACE-ME" is a placeholder to replace; tier="REPLACE-ME" is a placeholder to '
        "replace with one of: backend, frontend. Choose their values under metadata.labels."
    )


def test_missing_labels_and_a_placeholder_are_one_finding() -> None:
    """A label still missing and one still a placeholder are reported together."""
    [finding] = judge(request(workload("Pod", {"role": "REPLACE-ME"})))
    assert finding.message == (
        '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: app; '
        'role="REPLACE-ME" is a placeholder to replace. Add or fix them under metadata.labels.'
    )


def test_a_placeholder_on_a_label_that_is_not_required_passes() -> None:
    """Only required labels are judged: the placeholder elsewhere is someone else's business."""
    assert judge(request(workload("Pod", {"app": "a", "role": "b", "x": "REPLACE-ME"}))) == []


def test_allowed_value_passes() -> None:
    """A value listed in allowedValues passes."""
    labels = {"app": "web", "role": "api", "tier": "frontend"}
    assert judge(request(workload("Pod", labels)), TIERS) == []


def test_missing_and_disallowed_are_one_finding() -> None:
    """Missing labels and a wrong value are reported together in a single finding."""
    [finding] = judge(request(workload("Pod", {"role": "api", "tier": "db"})), TIERS)
    assert finding.message == (
        '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: app; '
        'label tier="db" is not one of: backend, frontend. Add or fix them under metadata.labels.'
    )
    assert finding.summary.startswith('[require-role-labels] Pod "web": missing labels app;')
    assert len(finding.summary) < 120


def test_two_disallowed_values_are_both_named() -> None:
    """Each wrong value is listed with its own allowed values."""
    settings = Settings(
        values={
            LABELS: ("role", "tier"),
            ALLOWED_VALUES: {"role": ("api", "web"), "tier": ("backend", "frontend")},
        },
    )
    [finding] = judge(request(workload("Pod", {"role": "db", "tier": "x"})), settings)
    assert (
        'label role="db" is not one of: api, web; label tier="x" is not one of: backend, '
        "frontend. Fix them under metadata.labels." in finding.message
    )


def test_update_with_unchanged_checked_labels_is_never_blocked() -> None:
    """An unrelated update of an old, unlabelled object passes (image bump, other labels)."""
    old = workload("Deployment", {"app": "web", "stage": "1"})
    new = workload("Deployment", {"app": "web", "stage": "2"})
    new["spec"]["template"]["spec"]["containers"] = [{"name": "c", "image": "v2"}]
    assert judge(request(new, Operation.UPDATE, old)) == []


def test_update_changing_a_checked_label_is_judged() -> None:
    """An UPDATE that touches a checked label must leave it valid."""
    old = workload("Deployment", {"app": "web", "role": "frontend"})
    new = workload("Deployment", {"app": "web"})
    [finding] = judge(request(new, Operation.UPDATE, old))
    assert "missing required labels in its pod template: role." in finding.message


def test_update_fixing_one_label_still_reports_the_rest() -> None:
    """Changing a checked label re-judges the whole set: the remaining gap is reported."""
    old = workload("Pod", {})
    new = workload("Pod", {"app": "web"})
    [finding] = judge(request(new, Operation.UPDATE, old))
    assert "missing required labels: role." in finding.message


def test_update_without_old_object_is_judged() -> None:
    """Without oldObject nothing shows the labels unchanged, so the update is judged."""
    [finding] = judge(request(workload("Pod", {}), Operation.UPDATE, None))
    assert "missing required labels: app, role." in finding.message


@pytest.mark.parametrize("operation", [Operation.DELETE, Operation.CONNECT], ids=str)
def test_delete_and_connect_are_never_checked(operation: Operation) -> None:
    """Deleting (or exec-ing into) an unlabelled object is never blocked."""
    obj = workload("Pod", {})
    assert judge(request(obj, operation, obj)) == []


def test_mirror_pods_are_skipped() -> None:
    """A kubelet mirror pod (created by the node) runs anyway, so it is never judged."""
    obj = workload("Pod", {}, annotations={"kubernetes.io/config.mirror": "3f2a"})
    assert judge(replace(request(obj), username="system:node:worker-1")) == []


def test_mirror_annotation_set_by_a_user_does_not_skip() -> None:
    """A developer who adds the mirror annotation to their own pod is still judged."""
    obj = workload("Pod", {}, annotations={"kubernetes.io/config.mirror": "3f2a"})
    assert len(judge(replace(request(obj), username="jane"))) == 1


def test_other_annotations_do_not_skip() -> None:
    """Only the mirror annotation skips a pod: no other annotation opts out."""
    obj = workload("Pod", {}, annotations={"guardrail.dev/skip": "true"})
    assert len(judge(request(obj))) == 1


def test_generate_name_is_used_when_name_is_empty() -> None:
    """Pods created by controllers have only generateName; the message names that."""
    obj = workload("Pod", {"app": "web"}, name="")
    obj["metadata"]["generateName"] = "web-7d9f-"
    [finding] = judge(request(obj, name=""))
    assert finding.message.startswith(
        '[require-role-labels] Pod "web-7d9f-" (generateName) in namespace "shop" is missing'
    )
    assert finding.name == "web-7d9f-"


def test_exempt_namespace_is_never_judged() -> None:
    """Objects in an exempt namespace pass whatever their labels."""
    assert judge(request(workload("Pod", {}), namespace="kube-system")) == []


def test_other_kinds_are_ignored() -> None:
    """A Service is not a workload: its labels are not checked."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}
    assert judge(request(service)) == []


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": None, "spec": None},
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": "oops"}},
    ],
    ids=["no-spec", "nulls", "template-string"],
)
def test_malformed_workload_is_reported_missing_everything(obj: dict[str, Any]) -> None:
    """A workload without a readable template is missing every label, without a traceback."""
    [finding] = judge(request(obj, name="web"))
    assert "missing required labels in its pod template: app, role." in finding.message


def test_long_message_gets_a_short_summary() -> None:
    """A message over 119 characters gets a purpose-built summary that still says what is wrong."""
    obj = workload("CronJob", {}, name="nightly-inventory-reconciliation")
    [finding] = judge(request(obj))
    assert len(finding.message) > 119
    assert len(finding.summary) < 120
    assert finding.summary.startswith(
        '[require-role-labels] CronJob "nightly-inventory-reconciliation": missing labels app, role'
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"app": "web", "role": "x"}, []),
        ({"role": "x"}, ["app"]),
        ({"app": "", "role": ""}, ["app", "role"]),
    ],
    ids=["complete", "one-missing", "empty-values"],
)
def test_missing_labels_lists_required_keys_in_order(
    labels: dict[str, str], expected: list[str]
) -> None:
    """missing_labels keeps the configured order and treats empty values as missing."""
    assert missing_labels(labels, ("app", "role")) == expected


def test_disallowed_values_ignores_absent_labels() -> None:
    """An absent label is 'missing', not 'disallowed': it is reported once."""
    allowed = {"tier": ("a", "b"), "role": ("x",)}
    assert disallowed_values({"tier": "c"}, allowed) == [("tier", "c", ("a", "b"))]
