"""Hypothesis strategies: AdmissionReviews of real-shaped objects, corruptions of them, and
the rewrites that must not change a verdict (key order, unknown fields)."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.http.support import review

Json = Any

# Namespaces of tests.http.support.STATE (isolated, not isolated), one exempt, one unknown.
NAMESPACES = ("shop", "open", "kube-system", "nowhere")
USERNAMES = ("alice", "trusted-bot", "system:serviceaccount:ci:deployer")
LABEL_KEYS = ("app", "role", "team", "tier", "projectcalico.org/namespace")
LABEL_VALUES = ("web", "frontend", "db", "", "x" * 63)

names = st.from_regex(r"[a-z][a-z0-9-]{0,14}", fullmatch=True)
label_values = st.one_of(st.sampled_from(LABEL_VALUES), st.text(max_size=20))
labels = st.dictionaries(st.sampled_from(LABEL_KEYS), label_values, max_size=4)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=20,
)


def _meta(name: str, namespace: str | None, object_labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": object_labels}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [
            {"name": "main", "image": "registry.invalid/app:1", "ports": [{"containerPort": 8080}]}
        ]
    }


@st.composite
def pods(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(draw(names), namespace, draw(labels)),
        "spec": _pod_spec(),
    }


@st.composite
def workloads(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"])
    )
    template = {"metadata": {"labels": draw(labels)}, "spec": _pod_spec()}
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind != "Job":
        spec["selector"] = {"matchLabels": dict(template["metadata"]["labels"])}
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": _meta(draw(names), namespace, draw(labels)),
        "spec": spec,
    }


peers: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.just({"namespaceSelector": {}}),
    st.just({"podSelector": {"matchLabels": {"role": "frontend"}}}),
    st.just({"ipBlock": {"cidr": "0.0.0.0/0"}}),
    st.just({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}),
)
k8s_rules = st.fixed_dictionaries(
    {},
    optional={
        "from": st.lists(peers, max_size=2),
        "to": st.lists(peers, max_size=2),
        "ports": st.just([{"protocol": "TCP", "port": 53}]),
    },
)


@st.composite
def network_policies(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "podSelector": draw(st.sampled_from([{}, {"matchLabels": {"app": "web"}}]))
    }
    types = draw(st.lists(st.sampled_from(["Ingress", "Egress"]), unique=True, max_size=2))
    explicit_empty = draw(st.booleans())  # `policyTypes: []` differs from no policyTypes
    if types or explicit_empty:
        spec["policyTypes"] = types
    for direction in ("ingress", "egress"):
        if draw(st.booleans()):
            spec[direction] = draw(st.lists(k8s_rules, max_size=2))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(draw(names), namespace, {}),
        "spec": spec,
    }


calico_selectors = st.sampled_from(
    [
        "",
        "all()",
        "app == 'web'",
        "has(role)",
        "projectcalico.org/namespace not in {'kube-system'}",
        "role in {'a', 'b'} && !has(x)",
        "app ==",
        "((",
        "has(",
        "a == 'unterminated",
    ]
)
calico_rules = st.fixed_dictionaries(
    {"action": st.sampled_from(["Allow", "Deny", "Pass", "Log"])},
    optional={
        "protocol": st.just("TCP"),
        "destination": st.just({"ports": [53]}),
        "source": st.builds(lambda s: {"selector": s}, calico_selectors),
    },
)


@st.composite
def calico_policies(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    is_global = draw(st.booleans())
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["selector"] = draw(calico_selectors)
    if is_global and draw(st.booleans()):
        spec["namespaceSelector"] = draw(calico_selectors)
    if draw(st.booleans()):
        spec["types"] = draw(st.lists(st.sampled_from(["Ingress", "Egress"]), unique=True))
    for direction in ("ingress", "egress"):
        if draw(st.booleans()):
            spec[direction] = draw(st.lists(calico_rules, max_size=2))
    kind = "GlobalNetworkPolicy" if is_global else "NetworkPolicy"
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": kind,
        "metadata": _meta(draw(names), None if is_global else namespace, {}),
        "spec": spec,
    }


@st.composite
def namespaces_objects(draw: st.DrawFn, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(namespace, None, draw(labels)),
    }


KINDS: tuple[Callable[[str], st.SearchStrategy[dict[str, Any]]], ...] = (
    pods,
    workloads,
    network_policies,
    calico_policies,
    namespaces_objects,
)


@st.composite
def valid_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """An AdmissionReview as the API server would send it, of a real-shaped object."""
    namespace = draw(st.sampled_from(NAMESPACES))
    obj = draw(draw(st.sampled_from(KINDS))(namespace))
    operation = draw(st.sampled_from(["CREATE", "UPDATE", "DELETE"]))
    old = draw(st.one_of(st.none(), st.just(copy.deepcopy(obj))))
    if operation == "DELETE":
        obj, old = None, old or obj
    elif operation == "UPDATE" and old is not None:
        old["metadata"]["labels"] = draw(labels)
    elif operation == "CREATE":
        old = None
    doc = review(
        obj,
        operation=operation,
        old=old,
        api_version=draw(st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"])),
        username=draw(st.sampled_from(USERNAMES)),
        dry_run=draw(st.booleans()),
    )
    doc["request"]["uid"] = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    return copy.deepcopy(doc)


def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into value's containers (the root included)."""
    found: list[tuple[Any, ...]] = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def corrupted_reviews(draw: st.DrawFn) -> dict[str, Any]:
    """A valid review with one to three values anywhere replaced by arbitrary JSON."""
    # A copy: st.just() values are shared between examples and must never be mutated.
    doc = copy.deepcopy(draw(valid_reviews()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = draw(json_values)
    return doc


def reordered(value: Json, order: Callable[[list[str]], list[str]]) -> Json:
    """The same JSON with every object's keys in the order `order` gives."""
    if isinstance(value, dict):
        return {key: reordered(value[key], order) for key in order(list(value))}
    if isinstance(value, list):
        return [reordered(item, order) for item in value]
    return value


# Where Kubernetes (and guardrail) ignore fields they do not know. Not inside labels,
# annotations, selectors or rules: there a new key is data and may rightly change a verdict.
UNKNOWN_FIELD_PLACES: tuple[tuple[str, ...], ...] = (
    (),
    ("request",),
    ("request", "kind"),
    ("request", "userInfo"),
    ("request", "object"),
    ("request", "object", "metadata"),
    ("request", "object", "spec"),
    ("request", "oldObject"),
    ("request", "oldObject", "metadata"),
)
unknown_keys = st.from_regex(r"x[A-Z][A-Za-z]{0,10}", fullmatch=True)


def with_unknown_fields(doc: dict[str, Any], extra: list[tuple[int, str, Json]]) -> dict[str, Any]:
    """doc with (place index, key, value) fields added where they must be ignored."""
    changed = copy.deepcopy(doc)
    for place_index, key, value in extra:
        target: Any = changed
        for step in UNKNOWN_FIELD_PLACES[place_index % len(UNKNOWN_FIELD_PLACES)]:
            target = target.get(step) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[key] = value
    return changed


unknown_fields = st.lists(
    st.tuples(st.integers(0, len(UNKNOWN_FIELD_PLACES) - 1), unknown_keys, json_values),
    min_size=1,
    max_size=5,
)


def encode(doc: Json) -> bytes:
    return json.dumps(doc).encode()
