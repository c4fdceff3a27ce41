"""Pod templates of the workload kinds, and how messages name the object under review.

Rule served: a policy about pods judges the pods a workload *will* create, so it reads the pod
template — the Pod itself (`metadata`), `spec.template` of Deployments, ReplicaSets,
StatefulSets, DaemonSets, Jobs and ReplicationControllers, `spec.jobTemplate.spec.template` of
CronJobs. Kinds are recognised by API group (`apps`, `batch`, core) whatever the version, so an
older manifest (`batch/v1beta1` CronJob) is judged like the current one. Malformed shapes (null,
a list where a mapping belongs) read as "no labels": bad input never raises here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webhook.policy.model import Finding, Obj, Request

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"

# (API group, kind) -> keys leading from the object to its pod template ("" = core group).
_TEMPLATE_KEYS: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """The labels the pods of an object will carry, and where they are written."""

    labels: Mapping[str, str]
    labels_path: str  # dotted, for messages: "metadata.labels", "spec.template.metadata.labels"
    # The pods' service account: the ServiceAccount admission plugin sets "default" when the
    # spec names none, before any validating webhook sees a Pod.
    service_account: str = "default"
    host_network: bool = False


# Pods and the kinds that create pods from a template, as (API group, kind).
WORKLOAD_KINDS = frozenset(_TEMPLATE_KEYS)


def is_workload(group: str, kind: str) -> bool:
    """True for Pods and the kinds that create pods from a template."""
    return (group, kind) in _TEMPLATE_KEYS


def is_pod(group: str, kind: str) -> bool:
    return group == "" and kind == "Pod"


def labels_path(group: str, kind: str) -> str | None:
    """Dotted path of the pod-template labels of this kind, or None if not a workload kind."""
    keys = _TEMPLATE_KEYS.get((group, kind))
    if keys is None:
        return None
    return ".".join((*keys, "metadata", "labels"))


def pod_template(group: str, kind: str, obj: Obj | None) -> PodTemplate | None:
    """The pod template of obj, or None when the kind is not a workload kind.

    A missing or malformed template (or a null object) gives an empty label set: the object is
    then reported as missing every label, which is what its pods would be.
    """
    keys = _TEMPLATE_KEYS.get((group, kind))
    if keys is None:
        return None
    template: object = obj
    for key in keys:
        template = template.get(key) if isinstance(template, Mapping) else None
    meta = template.get("metadata") if isinstance(template, Mapping) else None
    spec = template.get("spec") if isinstance(template, Mapping) else None
    spec = spec if isinstance(spec, Mapping) else {}
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    return PodTemplate(
        labels=_string_labels(meta.get("labels") if isinstance(meta, Mapping) else None),
        labels_path=".".join((*keys, "metadata", "labels")),
        service_account=account if isinstance(account, str) and account else "default",
        host_network=spec.get("hostNetwork") is True,
    )


def _string_labels(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    labels: dict[str, str] = {}
    for key, value in raw.items():
        # Labels are strings on the wire; a YAML scalar (`role: 1`, `on: true`) in a manifest
        # still shows the value its author meant, and null or a nested value counts as absent.
        if isinstance(value, bool):
            labels[str(key)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            labels[str(key)] = str(value)
    return labels


NODE_USERNAME_PREFIX = "system:node:"


def is_mirror_pod(obj: Obj | None, username: str) -> bool:
    """True for a kubelet's mirror of a static pod: it runs whatever the API server says.

    The annotation alone proves nothing (anyone who may create Pods can set it), so only a
    node's own identity creating it counts: the kubelet is the one writer of mirror pods.
    """
    if not username.startswith(NODE_USERNAME_PREFIX):
        return False
    annotations = _metadata(obj).get("annotations")
    return isinstance(annotations, Mapping) and MIRROR_POD_ANNOTATION in annotations


def is_being_deleted(obj: Obj | None) -> bool:
    """True once deletion has started: updates then only remove finalizers, never block them."""
    return bool(_metadata(obj).get("deletionTimestamp"))


@dataclass(frozen=True, slots=True)
class ReviewedObject:
    """The object under review as findings and messages name it."""

    kind: str
    namespace: str
    name: str  # metadata.name, else metadata.generateName (pods created by controllers)
    phrase: str  # 'Pod "web" in namespace "shop"'

    def finding(
        self, policy: str, message: str, summary: str, *, advisory: bool = False
    ) -> Finding:
        """A finding of `policy` about this object."""
        return Finding(policy, self.kind, self.namespace, self.name, message, summary, advisory)


def reviewed_object(request: Request) -> ReviewedObject:
    """Name the object under review, falling back to the object's metadata, then generateName."""
    meta = _metadata(request.obj) or _metadata(request.old_obj)
    name = request.name or _text(meta.get("name"))
    generated = False
    if not name:
        name = _text(meta.get("generateName"))
        generated = bool(name)
    # The API server sets request.namespace to a Namespace's own name: it lives in none.
    cluster_scoped = request.group == "" and request.kind == "Namespace"
    namespace = "" if cluster_scoped else request.namespace or _text(meta.get("namespace"))
    phrase = describe(request.kind, name, namespace)
    if generated:
        phrase = describe(request.kind, name, "") + " (generateName)"
        if namespace:
            phrase += f' in namespace "{namespace}"'
    return ReviewedObject(kind=request.kind, namespace=namespace, name=name, phrase=phrase)


def describe(kind: str, name: str, namespace: str) -> str:
    """'Pod "web" in namespace "shop"', or 'Namespace "shop"' for cluster-scoped objects."""
    text = f'{kind} "{name}"'
    return f'{text} in namespace "{namespace}"' if namespace else text


def _metadata(obj: Obj | None) -> Mapping[str, object]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
