"""restrict-allow-all (SPEC 2.4): network policies hold no rule that admits all traffic."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.policy_support import (
    BAD_APP,
    DENY_ALL,
    DNS_EGRESS,
    GLOBAL_DENY,
    calico_global,
    calico_np,
    calico_request,
    global_request,
    netpol,
    request,
    restrict,
)
from webhook.policy.model import Operation


def test_allow_all_ingress_rule_is_reported_with_exact_message() -> None:
    """An empty ingress rule admits everything: the rule is named by its path."""
    obj = netpol("open", {**DENY_ALL, "ingress": [{}]})
    [finding] = restrict(request(obj))
    assert finding.message == (
        '[restrict-allow-all] NetworkPolicy "open" in namespace "shop": rule spec.ingress[0] '
        "admits all traffic and cancels the namespace's default-deny. Restrict it with from "
        "peers or ports."
    )
    assert (finding.policy, finding.kind, finding.namespace, finding.name) == (
        "restrict-allow-all",
        "NetworkPolicy",
        "shop",
        "open",
    )
    assert len(finding.summary) < 120


def test_several_allow_all_rules_are_all_named() -> None:
    """Every unrestricted rule is listed, in both directions, by index."""
    spec = {
        **DENY_ALL,
        "ingress": [{"from": [{"podSelector": {}}]}, {"from": [{"namespaceSelector": {}}]}],
        "egress": [{"ports": [{"port": 53}]}, {}, {"to": [{"ipBlock": {"cidr": "::/0"}}]}],
    }
    [finding] = restrict(request(netpol("open", spec), Operation.UPDATE, netpol("open", DENY_ALL)))
    assert (
        "rules spec.ingress[1], spec.egress[1], spec.egress[2] admit all traffic and cancel the "
        "namespace's default-deny. Restrict them with from/to peers or ports." in finding.message
    )


def test_allow_all_egress_rule_suggests_to_peers() -> None:
    """An egress rule to 0.0.0.0/0 is reported with the `to` field as the fix."""
    obj = netpol(
        "out", {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}
    )
    [finding] = restrict(request(obj))
    assert "rule spec.egress[0] admits all traffic" in finding.message
    assert finding.message.endswith("Restrict it with to peers or ports.")


@pytest.mark.parametrize(
    "spec",
    [
        DENY_ALL,
        {**DENY_ALL, "egress": DNS_EGRESS},
        {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["0.0.0.0/1"]}}]}],
        },
        {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}],
        },
        {"podSelector": {}, "ingress": [{"ports": [{"port": 443}]}]},
        {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]},
    ],
    ids=[
        "deny-all",
        "dns-egress",
        "ipblock-except-half",
        "labelled-namespaces",
        "ports",
        "rule-of-a-direction-not-isolated",
    ],
)
def test_restricted_policies_pass(spec: dict[str, Any]) -> None:
    """Policies whose rules are restricted (or inert) draw no warning."""
    assert restrict(request(netpol("p", spec))) == []


@pytest.mark.parametrize(
    "peers",
    [
        [{"ipBlock": {"cidr": "0.0.0.0/1"}}, {"ipBlock": {"cidr": "128.0.0.0/1"}}],
        [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
        [
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "Exists"}
                    ]
                }
            }
        ],
    ],
    ids=["split-range", "all-but-one-percent", "every-namespace-by-expression"],
)
def test_peers_that_together_cover_everything_are_reported(peers: list[Any]) -> None:
    """Split CIDRs, an ipBlock leaving out under 1 %, all-namespace expressions (SPEC 2.4)."""
    obj = netpol("p", {"podSelector": {}, "ingress": [{"from": peers}]})
    [finding] = restrict(request(obj))
    assert "rule spec.ingress[0] admits all traffic" in finding.message


def test_allow_all_in_exempt_namespace_is_not_judged() -> None:
    """Exempt namespaces may hold allow-all policies (the CNI's own often do)."""
    assert (
        restrict(request(netpol("open", {"podSelector": {}, "ingress": [{}]}, "kube-system"))) == []
    )


def test_delete_of_allow_all_policy_is_not_judged() -> None:
    """Removing an allow-all policy only tightens things."""
    old = netpol("open", {"podSelector": {}, "ingress": [{}]})
    assert restrict(request(None, Operation.DELETE, old)) == []


def test_calico_allow_all_rule_is_reported_by_path() -> None:
    """A Calico rule with action Allow and no criteria is named with Calico's fix."""
    spec = {**GLOBAL_DENY["spec"], "ingress": [{"action": "Allow"}]}
    [finding] = restrict(
        global_request(calico_global("default-deny", spec), Operation.CREATE, None)
    )
    assert finding.message == (
        '[restrict-allow-all] GlobalNetworkPolicy "default-deny": rule spec.ingress[0] admits '
        "all traffic and cancels the default-deny of every namespace it applies to. Restrict "
        "it with source/destination criteria (selector, namespaceSelector, nets, ports) or a "
        "protocol."
    )
    assert len(finding.summary) < 120


@pytest.mark.parametrize("api_version", ["projectcalico.org/v3", "crd.projectcalico.org/v1"])
def test_malformed_calico_selector_is_an_advisory_naming_field_and_column(api_version: str) -> None:
    """A selector that does not parse gives a warning-only finding with the field and the column."""
    obj = {**BAD_APP, "apiVersion": api_version}
    [finding] = restrict(calico_request(obj))
    assert finding.advisory
    assert finding.message == (
        '[restrict-allow-all] GlobalNetworkPolicy "deny-app" has an invalid selector at '
        "spec.selector column 8: expected a quoted string after '==', found label 'web'; "
        "Calico will reject it."
    )
    assert finding.summary == (
        "[restrict-allow-all] invalid selector at spec.selector column 8 in GlobalNetworkPolicy "
        '"deny-app"'
    )


def test_many_malformed_selectors_are_capped_at_five_warnings() -> None:
    """Seven bad rule selectors give five findings, the last one counting the two not shown."""
    rules = [{"action": "Allow", "source": {"selector": f"a{i} =="}} for i in range(7)]
    findings = restrict(calico_request(calico_np("bad", {"ingress": rules})))
    assert [f.advisory for f in findings] == [True] * 5
    assert "spec.ingress[4].source.selector column" in findings[4].message
    assert findings[4].message.endswith("2 more of its selectors are invalid too.")
    assert all(len(f.summary) < 120 for f in findings)


def test_non_string_selector_is_named_without_a_column() -> None:
    """A selector that is not a string is reported by its path alone."""
    [finding] = restrict(calico_request(calico_np("bad", {"selector": 7})))
    assert finding.message == (
        '[restrict-allow-all] NetworkPolicy "bad" in namespace "shop" has an invalid selector at '
        "spec.selector: expected a selector string, not int; Calico will reject it."
    )


CALICO_TYPES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("types-exclude-egress", {"types": ["Ingress"], "egress": [{"action": "Allow"}]}, []),
    ("defaulted-egress-only", {"egress": [{"action": "Allow"}]}, ["spec.egress[0]"]),
    (
        "defaulted-ingress-only",
        {"ingress": [{"action": "Pass"}], "egress": []},
        ["spec.ingress[0]"],
    ),
    (
        "explicit-both",
        {
            "types": ["Ingress", "Egress"],
            "ingress": [{"action": "Allow"}],
            "egress": [{"action": "Allow"}],
        },
        ["spec.ingress[0]", "spec.egress[0]"],
    ),
    (
        # A policy the engine cannot read is never called isolating (protect-default-deny
        # reads it as possibly allowing anything); no rule of it is named as an allow-all.
        "malformed-types-unreadable",
        {"types": "Ingress", "egress": [{"action": "Allow"}]},
        [],
    ),
]


@pytest.mark.parametrize(
    ("spec", "paths"), [c[1:] for c in CALICO_TYPES], ids=[c[0] for c in CALICO_TYPES]
)
def test_calico_allow_all_rules_follow_the_effective_types(
    spec: dict[str, Any], paths: list[str]
) -> None:
    """As for Kubernetes, allow-all rules of a direction the Calico policy does not apply to are not reported."""
    findings = restrict(calico_request(calico_np("open", spec)))
    if not paths:
        assert findings == []
        return
    [finding] = findings
    assert f"{'rule' if len(paths) == 1 else 'rules'} {', '.join(paths)} admit" in finding.message
