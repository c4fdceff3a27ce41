"""Objects, states and requests shared by the tests of the network-policy rules."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

from webhook.policy.model import Direction, Finding, Operation, Request
from webhook.policy.rule import Settings
from webhook.policy.rules.protect_default_deny import check as protect_default_deny
from webhook.policy.rules.require_default_deny import check as require_default_deny
from webhook.policy.rules.restrict_allow_all import check as restrict_allow_all
from webhook.state.index import IndexedState

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS


SETTINGS = Settings(exempt_namespaces=frozenset({"kube-system"}))


DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


DNS_EGRESS = [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]


GROUPS = {
    "Pod": ("", "v1"),
    "Namespace": ("", "v1"),
    "Deployment": ("apps", "v1"),
    "ReplicaSet": ("apps", "v1"),
    "StatefulSet": ("apps", "v1"),
    "DaemonSet": ("apps", "v1"),
    "Job": ("batch", "v1"),
    "CronJob": ("batch", "v1"),
    "ReplicationController": ("", "v1"),
    "NetworkPolicy": ("networking.k8s.io", "v1"),
    "Service": ("", "v1"),
    "GlobalNetworkPolicy": ("projectcalico.org", "v3"),
    "AdminNetworkPolicy": ("policy.networking.k8s.io", "v1alpha1"),
    "BaselineAdminNetworkPolicy": ("policy.networking.k8s.io", "v1alpha1"),
}


def namespace(name: str, *, terminating: bool = False, **labels: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if labels:
        obj["metadata"]["labels"] = labels
    if terminating:
        obj["status"] = {"phase": "Terminating"}
    return obj


def netpol(name: str, spec: Any, ns: str = "shop") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
    }
    if spec is not None:
        obj["spec"] = spec
    return obj


def created(obj: dict[str, Any], day: int) -> dict[str, Any]:
    """obj as the API server stores it `day` days into 2026 (its creationTimestamp)."""
    stamped = json.loads(json.dumps(obj))
    stamped["metadata"]["creationTimestamp"] = f"2026-01-{day:02d}T00:00:00Z"
    return stamped


def pod(name: str = "web", ns: str = "shop", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}, **meta},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def deployment(name: str = "web", ns: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}},
    }


def state(*objs: dict[str, Any]) -> IndexedState:
    """The real index, filled the way the watch and the manifest loader fill it."""
    indexed = IndexedState()
    for obj in objs:
        indexed.upsert(obj)
    return indexed


def request(
    obj: Any,
    operation: Operation = Operation.CREATE,
    old: Any = None,
    *,
    name: str | None = None,
) -> Request:
    source = obj if obj is not None else old
    kind = source["kind"]
    group, version = GROUPS.get(kind, (source["apiVersion"].rpartition("/")[0], "v3"))
    meta = source.get("metadata") or {}
    return Request(
        uid="u",
        kind=kind,
        group=group,
        version=version,
        namespace="" if kind == "Namespace" else str(meta.get("namespace") or ""),
        name=str(meta.get("name") or "") if name is None else name,
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def provided(spec: Any) -> set[Direction]:
    """Directions for which a NetworkPolicy with this spec isolates namespace shop."""
    view = state(namespace("shop"), netpol("p", spec)).view("shop")
    return {d for d in Direction if view.decide_any_pod(d).isolated}


ALL_NS: dict[str, Any] = {"namespaceSelector": {}}


def deny(req: Request, indexed: IndexedState, settings: Settings = SETTINGS) -> list[Finding]:
    return require_default_deny(req, indexed, settings)


def one_liner_manifest(message: str) -> dict[str, Any]:
    """The manifest inside the message's `echo '...' | kubectl apply -f -` one-liner."""
    match = re.search(r"echo '(\{.*\})' \| kubectl apply -f -$", message)
    assert match, message
    manifest: dict[str, Any] = json.loads(match.group(1))
    return manifest


def protect(req: Request, indexed: IndexedState, settings: Settings = SETTINGS) -> list[Finding]:
    return protect_default_deny(req, indexed, settings)


def guarded(*extra: dict[str, Any], ns: dict[str, Any] | None = None) -> IndexedState:
    return state(ns or namespace("shop"), netpol("default-deny", DENY_ALL), *extra)


def restrict(req: Request, settings: Settings = SETTINGS) -> list[Finding]:
    return restrict_allow_all(req, state(namespace("shop")), settings)


def calico_global(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


# The Calico documentation's default-deny: every namespace but the system ones, DNS allowed.
GLOBAL_DENY = calico_global(
    "default-deny",
    {
        "selector": "projectcalico.org/namespace not in {'kube-system', 'calico-system'}",
        "types": ["Ingress", "Egress"],
        "egress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}],
    },
)


def cluster(count: int, *extra: dict[str, Any]) -> IndexedState:
    """count team namespaces, kube-system, a terminating one, and the global default-deny."""
    objs = [namespace(f"team-{i:02d}", tier="apps") for i in range(count)]
    objs += [namespace("kube-system"), namespace("leaving", terminating=True), GLOBAL_DENY]
    return state(*objs, *extra)


def global_request(obj: Any, operation: Operation, old: Any) -> Request:
    return Request(
        uid="u",
        kind="GlobalNetworkPolicy",
        group="projectcalico.org",
        version="v3",
        namespace="",
        name="default-deny",
        operation=operation,
        obj=obj,
        old_obj=old,
    )


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["", "Ingress", "Egress", "::/0", "Allow", "Deny", "all()", "a =="]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "metadata",
                    "labels",
                    "podSelector",
                    "policyTypes",
                    "ingress",
                    "egress",
                    "from",
                    "to",
                    "ports",
                    "ipBlock",
                    "cidr",
                    "except",
                    "namespaceSelector",
                    "matchLabels",
                    "template",
                    "jobTemplate",
                    "name",
                    "namespace",
                    "annotations",
                    "selector",
                    "action",
                    "source",
                    "subject",
                    "namespaces",
                    "networks",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


GLOBAL_KINDS = ("GlobalNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")


def calico_request(obj: Any, operation: Operation = Operation.CREATE, old: Any = None) -> Request:
    source = obj if obj is not None else old
    meta = source.get("metadata") or {}
    group, _, version = source["apiVersion"].rpartition("/")
    return Request(
        uid="u",
        kind=source["kind"],
        group=group,
        version=version,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def calico_np(
    name: str, spec: dict[str, Any], api_version: str = "projectcalico.org/v3"
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


BAD_APP = calico_global(
    "deny-app",
    {"selector": "app == web", "types": ["Ingress", "Egress"]},
)
