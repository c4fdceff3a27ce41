"""Malformed objects: compiling and deciding never raise, and never make anything isolated."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.engine.builders import ns
from webhook.policy.engine import Labels, Verdict, build_stack, compile_object
from webhook.policy.model import Direction

FUZZ = settings(max_examples=300, deadline=None, database=None)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(["", "all()", "((", "Allow", "Deny", "Pass", "Ingress", "0.0.0.0/0", "x"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
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
                    "selector",
                    "types",
                    "action",
                    "source",
                    "destination",
                    "nets",
                    "notNets",
                    "tier",
                    "order",
                    "subject",
                    "namespaces",
                    "pods",
                    "networks",
                    "priority",
                    "matchLabels",
                    "matchExpressions",
                    "key",
                    "operator",
                    "values",
                    "serviceAccounts",
                    "names",
                    "defaultAction",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
KINDS = [
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("projectcalico.org/v3", "NetworkPolicy"),
    ("crd.projectcalico.org/v1", "GlobalNetworkPolicy"),
    ("projectcalico.org/v3", "Tier"),
    ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"),
]
objects = st.builds(
    lambda kind, spec, meta: {
        "apiVersion": kind[0],
        "kind": kind[1],
        "metadata": meta,
        "spec": spec,
    },
    st.sampled_from(KINDS),
    json_values,
    st.one_of(json_values, st.just({"name": "p", "namespace": "shop"})),
)


@FUZZ
@given(st.lists(objects, max_size=3), st.sampled_from(list(Direction)))
def test_malformed_objects_never_raise(objs: list[dict[str, Any]], direction: Direction) -> None:
    """Whatever the objects hold, compiling, viewing and deciding return a verdict."""
    stack = build_stack(objs)
    view = stack.for_namespace(ns("shop"))
    for labels in (Labels.unknown(), Labels.exactly({"role": "web"})):
        decision = view.decide(view.endpoint(labels), direction)
        assert decision.text


@FUZZ
@given(json_values)
def test_malformed_policy_never_isolates_alone(spec: Any) -> None:
    """A NetworkPolicy beside an allow-all never makes the pod isolated, however malformed its spec."""
    allow_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-all", "namespace": "shop"},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }
    odd = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "odd", "namespace": "shop"},
        "spec": spec,
    }
    view = build_stack([allow_all, odd]).for_namespace(ns("shop"))
    decision = view.decide_any_pod(Direction.INGRESS)
    assert decision.verdict is not Verdict.ISOLATED


def test_non_mapping_objects_compile_to_nothing() -> None:
    """Objects that are not mappings are ignored."""
    assert compile_object(["not", "an", "object"]) is None
    assert compile_object({"apiVersion": "v1", "kind": "ConfigMap"}) is None
