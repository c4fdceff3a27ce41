"""Default-deny isolation (SPEC 2.5, Kubernetes NetworkPolicy): definitions, providers, and every rule on malformed input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.engine_shims import unrestricted_rules
from tests.unit.policy_support import (
    ALL_NS,
    BAD_APP,
    DENY_ALL,
    DNS_EGRESS,
    EGRESS,
    GLOBAL_DENY,
    GLOBAL_KINDS,
    GROUPS,
    INGRESS,
    JSON,
    SETTINGS,
    calico_global,
    cluster,
    deny,
    global_request,
    guarded,
    namespace,
    netpol,
    one_liner_manifest,
    pod,
    protect,
    provided,
    request,
    restrict,
    state,
)
from webhook.policy.model import Direction, Finding, Operation, Request
from webhook.policy.rules.protect_default_deny import check as protect_default_deny
from webhook.policy.rules.require_default_deny import check as require_default_deny
from webhook.policy.rules.require_default_deny import default_deny_command
from webhook.policy.rules.require_role_labels import check as require_role_labels
from webhook.policy.rules.restrict_allow_all import check as restrict_allow_all

UNRESTRICTED = [
    ({"ingress": [{}]}, [(INGRESS, 0)]),
    ({"ingress": [None]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": []}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": None}]}, [(INGRESS, 0)]),
    ({"ingress": [{"ports": []}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [ALL_NS]}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}]}, [(INGRESS, 0)]),
    (
        {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {}}, "podSelector": None}]}]},
        [(INGRESS, 0)],
    ),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "::/0"}}]}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": []}}]}]}, [(INGRESS, 0)]),
    (
        {"ingress": [{"from": [{"podSelector": {"matchLabels": {"a": "b"}}}, ALL_NS]}]},
        [(INGRESS, 0)],
    ),
    ({"egress": [{}]}, [(EGRESS, 0)]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, [(EGRESS, 0)]),
    (
        {"ingress": [{"from": [{"podSelector": {}}]}, {}], "egress": [{"ports": [{}]}, {}, {}]},
        [(INGRESS, 1), (EGRESS, 1), (EGRESS, 2)],
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    UNRESTRICTED,
    ids=[
        "empty-rule",
        "null-rule",
        "from-empty",
        "from-null",
        "ports-empty",
        "all-namespaces",
        "all-namespaces-empty-pods",
        "all-namespaces-null-pods",
        "ipv4-any",
        "ipv6-any",
        "ipv4-any-except-empty",
        "one-match-all-peer-among-others",
        "egress-empty-rule",
        "egress-to-anywhere",
        "indices",
    ],
)
def test_unrestricted_rules_are_found(spec: dict[str, Any], expected: list[Any]) -> None:
    """Rules without ports whose peers are absent, empty or match everything admit all traffic."""
    assert unrestricted_rules(netpol("p", spec)) == expected


RESTRICTED = [
    {"ingress": [{"ports": [{"port": 80}]}]},
    {"ingress": [{"ports": [{"port": 80}], "from": [ALL_NS]}]},
    {"egress": DNS_EGRESS},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::/8"]}}]}]},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "not-a-cidr"}}]}]},
    {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]},
    {
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]
                        }
                    }
                ]
            }
        ]
    },
    {
        "ingress": [
            {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}]}
        ]
    },
    {"ingress": [{"from": [{"podSelector": {}}]}]},
    {"ingress": [{"from": [{"namespaceSelector": None, "podSelector": {}}]}]},
    {"ingress": [{"from": [{}]}]},
    {"ingress": ["oops"], "egress": {"to": []}},
    {"ingress": [{"from": "everyone"}]},
]


@pytest.mark.parametrize(
    "spec",
    RESTRICTED,
    ids=[
        "ports",
        "ports-with-all-namespaces",
        "dns-egress",
        "ipv4-any-with-except",
        "ipv6-any-with-except",
        "ipblock-narrow",
        "ipblock-malformed",
        "namespace-labels",
        "namespace-expressions",
        "all-namespaces-some-pods",
        "own-namespace-all-pods",
        "namespace-selector-null",
        "empty-peer-invalid",
        "malformed-rules",
        "malformed-peers",
    ],
)
def test_near_misses_are_not_unrestricted(spec: dict[str, Any]) -> None:
    """Ports, an ipBlock except, labelled selectors or own-namespace peers restrict a rule."""
    assert unrestricted_rules(netpol("p", spec)) == []


def test_unrestricted_rules_tolerates_a_missing_or_malformed_spec() -> None:
    """A policy without a usable spec has no rules to report, and raises nothing."""
    assert unrestricted_rules(netpol("p", None)) == []
    assert unrestricted_rules(netpol("p", ["ingress"])) == []


PROVIDERS = [
    ({"podSelector": {}}, {INGRESS}),
    ({"podSelector": {}, "policyTypes": ["Ingress"]}, {INGRESS}),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, {EGRESS}),
    (DENY_ALL, {INGRESS, EGRESS}),
    ({"policyTypes": ["Ingress", "Egress"]}, {INGRESS, EGRESS}),
    (None, {INGRESS}),
    ({"podSelector": {"matchLabels": {}}, "policyTypes": ["Ingress", "Egress"]}, {INGRESS, EGRESS}),
    ({"podSelector": {"matchExpressions": []}, "policyTypes": ["Egress"]}, {EGRESS}),
    ({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]}, set()),
    (
        {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
        },
        set(),
    ),
    ({**DENY_ALL, "egress": DNS_EGRESS}, {INGRESS, EGRESS}),
    ({"podSelector": {}, "egress": DNS_EGRESS}, {INGRESS, EGRESS}),
    (
        {
            **DENY_ALL,
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"name": "kube-system"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}],
                }
            ],
        },
        {INGRESS, EGRESS},
    ),
    ({**DENY_ALL, "ingress": [{"from": [{"podSelector": {}}]}]}, {INGRESS, EGRESS}),
    ({**DENY_ALL, "ingress": [{}]}, {EGRESS}),
    ({**DENY_ALL, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, {INGRESS}),
    ({"podSelector": {}, "egress": []}, {INGRESS}),
    (["podSelector"], set()),
    ({"podSelector": "all", "policyTypes": ["Ingress"]}, set()),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    PROVIDERS,
    ids=[
        "classic-ingress-deny",
        "explicit-ingress",
        "explicit-egress",
        "deny-all",
        "pod-selector-absent",
        "spec-absent",
        "match-labels-empty",
        "match-expressions-empty",
        "selects-some-pods",
        "selects-by-expression",
        "dns-egress-explicit-types",
        "dns-egress-defaulted-types",
        "dns-egress-to-kube-system",
        "own-namespace-ingress-allowed",
        "allow-all-ingress-rule",
        "allow-all-egress-rule",
        "egress-empty-list-defaults-to-ingress",
        "spec-malformed",
        "pod-selector-malformed",
    ],
)
def test_kubernetes_default_deny_provider(spec: Any, expected: set[Direction]) -> None:
    """A policy provides D with an empty podSelector, D in its types and no allow-all D rule."""
    assert provided(spec) == expected


def test_the_verdict_names_the_policy_that_isolates() -> None:
    """Each direction's verdict says which policy denies it, for messages and `explain`."""
    indexed = state(
        namespace("shop"),
        netpol("deny-in", {"podSelector": {}}),
        netpol("deny-all", DENY_ALL),
        netpol("web-only", {"podSelector": {"matchLabels": {"app": "web"}}}),
    )
    view = indexed.view("shop")
    for direction in (INGRESS, EGRESS):
        decision = view.decide_any_pod(direction)
        assert decision.isolated
        assert decision.text == (
            f'NetworkPolicy "deny-all" in namespace "shop" denies all {direction}'
        )


def test_policies_of_other_namespaces_and_staged_policies_do_not_count() -> None:
    """A default-deny elsewhere, or a staged one, leaves the namespace's pods open."""
    staged = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "StagedKubernetesNetworkPolicy",
        "metadata": {"name": "staged", "namespace": "shop"},
        "spec": DENY_ALL,
    }
    indexed = state(namespace("shop"), namespace("other"), netpol("d", DENY_ALL, "other"), staged)
    view = indexed.view("shop")
    for direction in (INGRESS, EGRESS):
        decision = view.decide_any_pod(direction)
        assert not decision.isolated
        assert decision.text == "no policy selects it"


def test_admin_network_policy_denying_ingress_from_pods_is_not_a_provider() -> None:
    """A BANP denying ingress from every pod leaves nodes and the outside world open."""
    anp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny"}]},
    }
    assert not state(namespace("shop"), anp).view("shop").decide_any_pod(INGRESS).isolated


def test_default_deny_command_is_valid_json_for_each_direction_set() -> None:
    """The one-liner's manifest is a NetworkPolicy for exactly the given directions."""
    for directions, name in (
        ((INGRESS,), "default-deny-ingress"),
        ((EGRESS,), "default-deny-egress"),
        ((INGRESS, EGRESS), "default-deny"),
    ):
        manifest = one_liner_manifest(default_deny_command("shop", directions))
        assert manifest["metadata"] == {"name": name, "namespace": "shop"}
        assert manifest["spec"]["policyTypes"] == [str(d) for d in directions]


@given(
    kind=st.sampled_from(
        [
            "Pod",
            "Deployment",
            "CronJob",
            "NetworkPolicy",
            "Namespace",
            "GlobalNetworkPolicy",
            "AdminNetworkPolicy",
            "BaselineAdminNetworkPolicy",
        ]
    ),
    operation=st.sampled_from(list(Operation)),
    obj=JSON,
    old=JSON,
)
@settings(max_examples=300, deadline=None)
def test_malformed_objects_never_raise(kind: str, operation: Operation, obj: Any, old: Any) -> None:
    """Whatever shape an object has, every policy answers with findings, never a traceback."""
    group, version = GROUPS[kind]
    indexed = guarded()
    if isinstance(obj, dict) and isinstance(old, dict):
        indexed.upsert(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "odd", "namespace": "shop"},
                **obj,
            }
        )
    req = Request(
        uid="u",
        kind=kind,
        group=group,
        version=version,
        namespace="" if kind in ("Namespace", *GLOBAL_KINDS) else "shop",
        name="x",
        operation=operation,
        obj=obj if isinstance(obj, dict) else None,
        old_obj=old if isinstance(old, dict) else None,
    )
    for check in (
        require_default_deny,
        protect_default_deny,
        restrict_allow_all,
        require_role_labels,
    ):
        findings = check(req, indexed, SETTINGS)
        assert all(isinstance(f, Finding) and f.message.startswith("[") for f in findings)
        assert all(len(f.summary) < 120 for f in findings)


def test_malformed_selector_never_breaks_the_other_policies() -> None:
    """require- and protect-default-deny read a broken Calico policy as providing nothing."""
    indexed = state(namespace("shop"), BAD_APP)
    [missing] = deny(request(pod()), indexed)
    assert "has no default-deny network policy for Ingress and Egress" in missing.message
    assert protect(global_request(None, Operation.DELETE, BAD_APP), indexed) == []
    # Breaking the selector of a relied-upon default-deny is a weakening: Calico cannot use it.
    broken = calico_global("default-deny", {**GLOBAL_DENY["spec"], "selector": "all() &&"})
    [finding] = protect(global_request(broken, Operation.UPDATE, GLOBAL_DENY), cluster(2))
    assert finding.message.startswith(
        '[protect-default-deny] Updating GlobalNetworkPolicy "default-deny" would leave 2 '
        "namespaces without a default-deny for Ingress and Egress"
    )
    [advisory] = restrict(global_request(broken, Operation.UPDATE, GLOBAL_DENY))
    assert "spec.selector column 9" in advisory.message
