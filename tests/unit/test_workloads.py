"""Pod templates of the workload kinds: where labels live, and malformed shapes tolerated."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.policy.model import Operation, Request
from webhook.policy.workloads import (
    is_being_deleted,
    is_mirror_pod,
    is_workload,
    labels_path,
    pod_template,
    reviewed_object,
)

LABELS = {"app": "web", "role": "frontend"}


def _template(labels: object) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


# (group, kind, object with LABELS in its pod template, expected dotted path)
KINDS = [
    ("", "Pod", {"metadata": {"name": "web", "labels": LABELS}}, "metadata.labels"),
    (
        "",
        "ReplicationController",
        {"spec": {"template": _template(LABELS)}},
        "spec.template.metadata.labels",
    ),
    (
        "apps",
        "Deployment",
        {"spec": {"template": _template(LABELS)}},
        "spec.template.metadata.labels",
    ),
    (
        "apps",
        "ReplicaSet",
        {"spec": {"template": _template(LABELS)}},
        "spec.template.metadata.labels",
    ),
    (
        "apps",
        "StatefulSet",
        {"spec": {"template": _template(LABELS)}},
        "spec.template.metadata.labels",
    ),
    (
        "apps",
        "DaemonSet",
        {"spec": {"template": _template(LABELS)}},
        "spec.template.metadata.labels",
    ),
    ("batch", "Job", {"spec": {"template": _template(LABELS)}}, "spec.template.metadata.labels"),
    (
        "batch",
        "CronJob",
        {"spec": {"jobTemplate": {"spec": {"template": _template(LABELS)}}}},
        "spec.jobTemplate.spec.template.metadata.labels",
    ),
]


@pytest.mark.parametrize(("group", "kind", "obj", "path"), KINDS, ids=[k[1] for k in KINDS])
def test_each_kind_reads_its_pod_template(
    group: str, kind: str, obj: dict[str, Any], path: str
) -> None:
    """Every workload kind yields the labels of its pod template and the path they live at."""
    template = pod_template(group, kind, obj)
    assert template is not None
    assert dict(template.labels) == LABELS
    assert template.labels_path == path
    assert labels_path(group, kind) == path
    assert is_workload(group, kind)


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("", "Service"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("extensions", "Deployment"),
        ("apps", "Pod"),
        ("", "Deployment"),
        ("batch", "ReplicaSet"),
        ("", "Namespace"),
    ],
    ids=[
        "service",
        "networkpolicy",
        "extensions-deployment",
        "apps-pod",
        "core-deployment",
        "batch-replicaset",
        "namespace",
    ],
)
def test_other_kinds_have_no_template(group: str, kind: str) -> None:
    """Kinds outside the workload list (or in the wrong API group) are not workloads."""
    assert pod_template(group, kind, {"spec": {"template": _template(LABELS)}}) is None
    assert labels_path(group, kind) is None
    assert not is_workload(group, kind)


MALFORMED: list[tuple[str, str, Any]] = [
    ("Pod", "", None),
    ("Pod", "", {"metadata": None}),
    ("Pod", "", {"metadata": ["labels"]}),
    ("Pod", "", {"metadata": {"labels": None}}),
    ("Pod", "", {"metadata": {"labels": ["app", "role"]}}),
    ("Pod", "", {"metadata": {"labels": "app=web"}}),
    ("Deployment", "apps", {}),
    ("Deployment", "apps", {"spec": None}),
    ("Deployment", "apps", {"spec": "template"}),
    ("Deployment", "apps", {"spec": {"template": None}}),
    ("Deployment", "apps", {"spec": {"template": []}}),
    ("Deployment", "apps", {"spec": {"template": {"metadata": 3}}}),
    ("CronJob", "batch", {"spec": {"jobTemplate": None}}),
    ("CronJob", "batch", {"spec": {"jobTemplate": {"spec": []}}}),
]


@pytest.mark.parametrize(
    ("kind", "group", "obj"),
    MALFORMED,
    ids=[
        "pod-null",
        "pod-metadata-null",
        "pod-metadata-list",
        "pod-labels-null",
        "pod-labels-list",
        "pod-labels-string",
        "deploy-no-spec",
        "deploy-spec-null",
        "deploy-spec-string",
        "deploy-template-null",
        "deploy-template-list",
        "deploy-metadata-number",
        "cronjob-jobtemplate-null",
        "cronjob-spec-list",
    ],
)
def test_malformed_shapes_read_as_no_labels(kind: str, group: str, obj: Any) -> None:
    """A null or wrongly shaped template gives an empty label set, never an exception."""
    template = pod_template(group, kind, obj)
    assert template is not None
    assert dict(template.labels) == {}
    assert template.labels_path == labels_path(group, kind)


def test_label_values_keep_what_the_author_wrote() -> None:
    """YAML scalars read as the text written; null and nested values count as absent."""
    obj = {
        "metadata": {
            "labels": {"app": "web", "role": None, "tier": 3, "on": True, "x": {"nested": 1}}
        }
    }
    template = pod_template("", "Pod", obj)
    assert template is not None
    assert dict(template.labels) == {"app": "web", "tier": "3", "on": "true"}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}}, True),
        ({"metadata": {"annotations": {"kubernetes.io/config.source": "file"}}}, False),
        ({"metadata": {"annotations": None}}, False),
        ({"metadata": None}, False),
        (None, False),
    ],
    ids=["mirror", "other-annotation", "annotations-null", "metadata-null", "object-null"],
)
def test_mirror_pod_is_recognised_by_annotation(obj: Any, expected: bool) -> None:
    """Only the kubelet's mirror annotation, set by a node, marks a mirror pod."""
    assert is_mirror_pod(obj, "system:node:worker-1") is expected


@pytest.mark.parametrize(
    "username", ["jane", "system:serviceaccount:shop:deployer", "system:nodes", ""], ids=str
)
def test_mirror_annotation_from_anyone_but_a_node_is_not_a_mirror_pod(username: str) -> None:
    """A user who sets the mirror annotation on their own pod does not escape the policies."""
    obj = {"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}}
    assert is_mirror_pod(obj, username) is False


def test_deletion_timestamp_marks_an_object_being_deleted() -> None:
    """An object with metadata.deletionTimestamp is being deleted; others are not."""
    assert is_being_deleted({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}})
    assert not is_being_deleted({"metadata": {"name": "web"}})
    assert not is_being_deleted(None)


def _request(name: str, namespace: str, obj: Any) -> Request:
    return Request(
        uid="u",
        kind="Pod",
        group="",
        version="v1",
        namespace=namespace,
        name=name,
        operation=Operation.CREATE,
        obj=obj,
    )


SUBJECTS = [
    (
        "web",
        "shop",
        {"metadata": {"name": "web"}},
        ("web", "shop", 'Pod "web" in namespace "shop"'),
    ),
    (
        "",
        "",
        {"metadata": {"name": "web", "namespace": "shop"}},
        ("web", "shop", 'Pod "web" in namespace "shop"'),
    ),
    (
        "",
        "shop",
        {"metadata": {"generateName": "web-7d9f-"}},
        ("web-7d9f-", "shop", 'Pod "web-7d9f-" (generateName) in namespace "shop"'),
    ),
    ("", "", {"metadata": {"name": "web"}}, ("web", "", 'Pod "web"')),
    ("", "", None, ("", "", 'Pod ""')),
]


@pytest.mark.parametrize(
    ("name", "namespace", "obj", "expected"),
    SUBJECTS,
    ids=["request-fields", "from-metadata", "generate-name", "no-namespace", "nothing"],
)
def test_subject_names_the_object(
    name: str, namespace: str, obj: Any, expected: tuple[str, str, str]
) -> None:
    """Messages name the object by request, then metadata, then generateName."""
    subject = reviewed_object(_request(name, namespace, obj))
    assert (subject.name, subject.namespace, subject.phrase) == expected
    assert subject.kind == "Pod"
