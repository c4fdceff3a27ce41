"""Calico NetworkPolicy and GlobalNetworkPolicy through the isolation engine (SPEC 2.5, 2.6)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.engine_shims import (
    effective_types,
    is_unrestricted_rule,
    provided_directions,
    unrestricted_rules,
)
from webhook.policy.calico import selector_errors
from webhook.policy.model import Direction, Namespace

IN, EG = Direction.INGRESS, Direction.EGRESS
BOTH = frozenset({IN, EG})
NONE: frozenset[Direction] = frozenset()
API_VERSIONS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")


def namespace(name: str, **labels: str) -> Namespace:
    """A namespace as the API server stores it (with its kubernetes.io/metadata.name label)."""
    return Namespace(name=name, labels={"kubernetes.io/metadata.name": name, **labels})


SHOP = namespace("shop", team="payments")
PRODUCTION = namespace("production")
ENGINEERING = namespace("engineering")
DEMO = namespace("advanced-policy-demo")
KUBE_SYSTEM = namespace("kube-system")
CALICO_SYSTEM = namespace("calico-system")
CALICO_APISERVER = namespace("calico-apiserver")


def policy(
    kind: str, spec: dict[str, Any], name: str = "p", ns: str | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if ns is not None:
        metadata["namespace"] = ns
    return {"apiVersion": API_VERSIONS[0], "kind": kind, "metadata": metadata, "spec": spec}


def np(spec: dict[str, Any], ns: str = "shop", name: str = "p") -> dict[str, Any]:
    return policy("NetworkPolicy", spec, name, ns)


def gnp(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return policy("GlobalNetworkPolicy", spec, name)


def flavor(obj: dict[str, Any]) -> str:
    return "calico-global" if obj["kind"] == "GlobalNetworkPolicy" else "calico"


def spelled(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    """The same policy under another API group: Calico's v3 API or its CRDs."""
    other = copy.deepcopy(obj)
    other["apiVersion"] = api_version
    return other


# -- the documentation's policies --------------------------------------------------------------
# https://docs.tigera.io/calico/latest/reference/resources/networkpolicy (sample YAML)
NP_SAMPLE = np(
    {
        "selector": "role == 'database'",
        "types": ["Ingress", "Egress"],
        "ingress": [
            {
                "action": "Allow",
                "metadata": {"annotations": {"from": "frontend", "to": "database"}},
                "protocol": "TCP",
                "source": {"selector": "role == 'frontend'"},
                "destination": {"ports": [6379]},
            }
        ],
        "egress": [{"action": "Allow"}],
    },
    ns="production",
    name="allow-tcp-6379",
)
# https://docs.tigera.io/calico/latest/reference/resources/globalnetworkpolicy (sample YAML)
GNP_SAMPLE = gnp({**NP_SAMPLE["spec"]}, name="allow-tcp-6379")
# https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
GNP_DEFAULT_DENY = gnp({"selector": "all()", "types": ["Ingress", "Egress"]}, name="default-deny")
# https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
DNS = {"selector": 'k8s-app == "kube-dns"', "ports": [53]}
GNP_DENY_APP = gnp(
    {
        "namespaceSelector": "has(projectcalico.org/name) && projectcalico.org/name not in "
        '{"kube-system", "calico-system", "calico-apiserver"}',
        "types": ["Ingress", "Egress"],
        "egress": [
            {"action": "Allow", "protocol": "UDP", "destination": DNS},
            {"action": "Allow", "protocol": "TCP", "destination": DNS},
        ],
    },
    name="deny-app-policy",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
NP_DEFAULT_DENY = np(
    {"selector": "all()", "types": ["Ingress", "Egress"]}, ns="engineering", name="default-deny"
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
GNP_TUTORIAL_DENY = gnp(
    {
        "selector": "projectcalico.org/namespace not in  "
        "{'kube-system', 'calico-system', 'calico-apiserver'}",
        "types": ["Ingress", "Egress"],
    },
    name="default-deny",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
NP_BUSYBOX_EGRESS = np(
    {"selector": "run == 'access'", "types": ["Egress"], "egress": [{"action": "Allow"}]},
    ns="advanced-policy-demo",
    name="allow-busybox-egress",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
NP_NGINX_INGRESS = np(
    {
        "selector": "app == 'nginx'",
        "types": ["Ingress"],
        "ingress": [{"action": "Allow", "source": {"selector": "run == 'access'"}}],
    },
    ns="advanced-policy-demo",
    name="allow-nginx-ingress",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels
GNP_FOO_AND_BAR = gnp(
    {
        "namespaceSelector": 'projectcalico.org/name in {"foo", "bar"}',
        "selector": 'color == "red"',
        "types": ["Ingress"],
        "ingress": [
            {
                "action": "Allow",
                "source": {"namespaceSelector": 'projectcalico.org/name == "baz"'},
                "destination": {"ports": [8080]},
            }
        ],
    },
    name="foo-and-bar",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-network-policy
NP_RED_FROM_BLUE = np(
    {
        "selector": "color == 'red'",
        "ingress": [
            {
                "action": "Allow",
                "protocol": "TCP",
                "source": {"selector": "color == 'blue'", "namespaceSelector": "shape == 'circle'"},
                "destination": {"ports": [6379]},
            }
        ],
    },
    ns="production",
    name="allow-tcp-6379",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-network-policy
GNP_DENY_BLUE = gnp(
    {
        "selector": "color == 'red'",
        "ingress": [
            {"action": "Deny", "protocol": "TCP", "source": {"selector": "color == 'blue'"}}
        ],
    },
    name="deny-blue",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-network-policy
NP_EGRESS_EXTERNAL = np(
    {
        "selector": "color == 'red'",
        "types": ["Egress"],
        "egress": [{"action": "Deny", "destination": {"nets": ["1.2.3.0/24"]}}],
    },
    ns="production",
    name="allow-egress-external",
)
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-network-policy
NP_LOG_AND_DENY = np(
    {
        "selector": "role == 'database'",
        "types": ["Ingress", "Egress"],
        "ingress": [
            {"action": "Log", "protocol": "TCP", "source": {"selector": "role == 'frontend'"}},
            {"action": "Deny", "protocol": "TCP", "source": {"selector": "role == 'frontend'"}},
        ],
    },
    ns="production",
    name="allow-tcp-6379",
)

# (policy, namespace, directions Calico's semantics make it a default-deny for, why)
DOC_PROVIDERS: list[tuple[str, dict[str, Any], Namespace, frozenset[Direction]]] = [
    # The sample selects only role=database pods, and its egress rule allows everything.
    ("np-reference-sample", NP_SAMPLE, PRODUCTION, NONE),
    ("gnp-reference-sample", GNP_SAMPLE, PRODUCTION, NONE),
    # selector all(): every pod of every namespace, system ones included.
    ("gnp-default-deny@shop", GNP_DEFAULT_DENY, SHOP, BOTH),
    ("gnp-default-deny@kube-system", GNP_DEFAULT_DENY, KUBE_SYSTEM, BOTH),
    # The recommended policy: every namespace outside its list, DNS egress allowed.
    ("deny-app-policy@shop", GNP_DENY_APP, SHOP, BOTH),
    ("deny-app-policy@engineering", GNP_DENY_APP, ENGINEERING, BOTH),
    ("deny-app-policy@kube-system", GNP_DENY_APP, KUBE_SYSTEM, NONE),
    ("deny-app-policy@calico-system", GNP_DENY_APP, CALICO_SYSTEM, NONE),
    ("deny-app-policy@calico-apiserver", GNP_DENY_APP, CALICO_APISERVER, NONE),
    ("np-default-deny@engineering", NP_DEFAULT_DENY, ENGINEERING, BOTH),
    ("np-default-deny@shop", NP_DEFAULT_DENY, SHOP, NONE),  # it lives in engineering
    ("tutorial-deny@advanced-policy-demo", GNP_TUTORIAL_DENY, DEMO, BOTH),
    ("tutorial-deny@shop", GNP_TUTORIAL_DENY, SHOP, BOTH),
    ("tutorial-deny@kube-system", GNP_TUTORIAL_DENY, KUBE_SYSTEM, NONE),
    ("tutorial-deny@calico-apiserver", GNP_TUTORIAL_DENY, CALICO_APISERVER, NONE),
    ("busybox-egress", NP_BUSYBOX_EGRESS, DEMO, NONE),
    ("nginx-ingress", NP_NGINX_INGRESS, DEMO, NONE),
    # Applies to namespaces foo and bar only, and to red pods only.
    ("foo-and-bar@foo", GNP_FOO_AND_BAR, namespace("foo"), NONE),
    ("red-from-blue", NP_RED_FROM_BLUE, PRODUCTION, NONE),
    ("deny-blue", GNP_DENY_BLUE, PRODUCTION, NONE),
    ("egress-external", NP_EGRESS_EXTERNAL, PRODUCTION, NONE),
    ("log-and-deny", NP_LOG_AND_DENY, PRODUCTION, NONE),
]


@pytest.mark.parametrize("api_version", API_VERSIONS)
@pytest.mark.parametrize(
    ("obj", "ns", "expected"),
    [case[1:] for case in DOC_PROVIDERS],
    ids=[case[0] for case in DOC_PROVIDERS],
)
def test_documented_policies_provide_what_calico_enforces(
    obj: dict[str, Any], ns: Namespace, expected: frozenset[Direction], api_version: str
) -> None:
    """Each policy from Calico's docs is a default-deny exactly where Calico isolates every pod."""
    assert provided_directions(spelled(obj, api_version), flavor(obj), ns) == expected


DOC_RULES: list[tuple[str, dict[str, Any], list[tuple[Direction, int]]]] = [
    ("np-reference-sample", NP_SAMPLE, [(EG, 0)]),
    ("gnp-reference-sample", GNP_SAMPLE, [(EG, 0)]),
    ("gnp-default-deny", GNP_DEFAULT_DENY, []),
    ("deny-app-policy", GNP_DENY_APP, []),
    ("np-default-deny", NP_DEFAULT_DENY, []),
    ("tutorial-deny", GNP_TUTORIAL_DENY, []),
    ("busybox-egress", NP_BUSYBOX_EGRESS, [(EG, 0)]),
    ("nginx-ingress", NP_NGINX_INGRESS, []),
    ("foo-and-bar", GNP_FOO_AND_BAR, []),
    ("red-from-blue", NP_RED_FROM_BLUE, []),
    ("deny-blue", GNP_DENY_BLUE, []),
    ("egress-external", NP_EGRESS_EXTERNAL, []),
    ("log-and-deny", NP_LOG_AND_DENY, []),
]


@pytest.mark.parametrize("api_version", API_VERSIONS)
@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in DOC_RULES], ids=[c[0] for c in DOC_RULES]
)
def test_documented_policies_unrestricted_rules(
    obj: dict[str, Any], expected: list[tuple[Direction, int]], api_version: str
) -> None:
    """Only the docs' bare `- action: Allow` rules reopen all traffic; every other one narrows."""
    assert unrestricted_rules(spelled(obj, api_version)) == expected
    assert selector_errors(spelled(obj, api_version)) == []


# -- SPEC 2.5, rule by rule --------------------------------------------------------------------
DENY_ALL = {"selector": "all()", "types": ["Ingress", "Egress"]}
DNS_EGRESS = {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}
SHAPES: list[tuple[str, dict[str, Any], Namespace, frozenset[Direction]]] = [
    ("np-empty-spec-is-ingress", np({}), SHOP, frozenset({IN})),
    (
        "np-no-spec-is-ingress",
        {"kind": "NetworkPolicy", "metadata": {"namespace": "shop"}},
        SHOP,
        frozenset({IN}),
    ),
    ("np-blank-selector", np({"selector": "", "types": ["Ingress", "Egress"]}), SHOP, BOTH),
    ("np-spaces-selector", np({"selector": "  ", "types": ["Egress"]}), SHOP, frozenset({EG})),
    (
        "np-own-namespace-selector",
        np({**DENY_ALL, "selector": "projectcalico.org/namespace == 'shop'"}),
        SHOP,
        BOTH,
    ),
    (
        "np-namespace-label-selector",
        np({**DENY_ALL, "selector": "pcns.team == 'payments'"}),
        SHOP,
        BOTH,
    ),
    ("np-pod-label-selector", np({**DENY_ALL, "selector": "has(app)"}), SHOP, NONE),
    ("np-not-all", np({**DENY_ALL, "selector": "!all()"}), SHOP, NONE),
    ("np-other-namespace", np(DENY_ALL, ns="other"), SHOP, NONE),
    ("np-no-namespace-in-manifest", {**np(DENY_ALL), "metadata": {"name": "p"}}, SHOP, BOTH),
    ("np-types-default-egress-only", np({"egress": [DNS_EGRESS]}), SHOP, frozenset({EG})),
    (
        "np-types-default-both",
        np({"ingress": [{"action": "Deny"}], "egress": [DNS_EGRESS]}),
        SHOP,
        BOTH,
    ),
    ("np-types-empty-list", np({"types": [], "egress": [DNS_EGRESS]}), SHOP, frozenset({EG})),
    ("np-types-lowercase", np({"types": ["ingress", "egress"]}), SHOP, BOTH),
    ("np-types-bogus", np({"types": ["Sideways"]}), SHOP, NONE),
    ("np-types-not-a-list", np({"types": "Ingress"}), SHOP, NONE),
    ("np-dns-egress-kept", np({**DENY_ALL, "egress": [DNS_EGRESS]}), SHOP, BOTH),
    (
        "np-allow-all-ingress",
        np({**DENY_ALL, "ingress": [{"action": "Allow"}]}),
        SHOP,
        frozenset({EG}),
    ),
    ("np-pass-all-egress", np({**DENY_ALL, "egress": [{"action": "Pass"}]}), SHOP, frozenset({IN})),
    (
        # Every pod runs as a service account (the admission plugin sets "default"), so
        # `serviceAccountSelector: all()` selects every pod's endpoint.
        "np-service-account-selector",
        np({**DENY_ALL, "serviceAccountSelector": "all()"}),
        SHOP,
        BOTH,
    ),
    (
        "np-empty-service-account-selector",
        np({**DENY_ALL, "serviceAccountSelector": ""}),
        SHOP,
        BOTH,
    ),
    ("np-bad-selector", np({**DENY_ALL, "selector": "all() &&"}), SHOP, NONE),
    (
        "np-bad-rule-selector",
        np(
            {
                **DENY_ALL,
                "egress": [
                    {"action": "Allow", "destination": {"selector": "k8s-app = 'kube-dns'"}}
                ],
            }
        ),
        SHOP,
        NONE,
    ),
    ("np-spec-not-a-mapping", np({}) | {"spec": ["selector"]}, SHOP, NONE),
    ("np-rules-not-a-list", np({**DENY_ALL, "egress": {"action": "Deny"}}), SHOP, NONE),
    ("gnp-no-selectors", gnp({"types": ["Ingress", "Egress"]}), KUBE_SYSTEM, BOTH),
    ("gnp-namespace-selector-all", gnp({**DENY_ALL, "namespaceSelector": "all()"}), SHOP, BOTH),
    (
        "gnp-namespace-selector-by-label",
        gnp({**DENY_ALL, "namespaceSelector": "team == 'payments'"}),
        SHOP,
        BOTH,
    ),
    (
        "gnp-namespace-selector-misses",
        gnp({**DENY_ALL, "namespaceSelector": "team == 'search'"}),
        SHOP,
        NONE,
    ),
    (
        "gnp-namespace-selector-global",
        gnp({**DENY_ALL, "namespaceSelector": "global()"}),
        SHOP,
        NONE,
    ),
    ("gnp-selector-global", gnp({**DENY_ALL, "selector": "global()"}), SHOP, NONE),
    (
        "gnp-selector-has-namespace",
        gnp({**DENY_ALL, "selector": "has(projectcalico.org/namespace)"}),
        SHOP,
        BOTH,
    ),
    (
        "gnp-selector-other-namespace",
        gnp({**DENY_ALL, "selector": "projectcalico.org/namespace == 'x'"}),
        SHOP,
        NONE,
    ),
    ("gnp-do-not-track", gnp({**DENY_ALL, "doNotTrack": True, "applyOnForward": True}), SHOP, NONE),
    ("gnp-pre-dnat", gnp({**DENY_ALL, "preDNAT": True, "applyOnForward": True}), SHOP, NONE),
    ("gnp-apply-on-forward", gnp({**DENY_ALL, "applyOnForward": True}), SHOP, BOTH),
    (
        "gnp-service-account-selector",
        gnp({**DENY_ALL, "serviceAccountSelector": "has(x)"}),
        SHOP,
        NONE,
    ),
    (
        "gnp-bad-namespace-selector",
        gnp({**DENY_ALL, "namespaceSelector": "name = 'x'"}),
        SHOP,
        NONE,
    ),
    (
        "gnp-namespace-selector-not-a-string",
        gnp({**DENY_ALL, "namespaceSelector": ["shop"]}),
        SHOP,
        NONE,
    ),
]


@pytest.mark.parametrize("api_version", API_VERSIONS)
@pytest.mark.parametrize(
    ("obj", "ns", "expected"), [c[1:] for c in SHAPES], ids=[c[0] for c in SHAPES]
)
def test_provider_shapes_follow_spec_2_5(
    obj: dict[str, Any], ns: Namespace, expected: frozenset[Direction], api_version: str
) -> None:
    """Selectors, service accounts, types, host-only flags and rules decide, as SPEC 2.5 says."""
    assert provided_directions(spelled(obj, api_version), flavor(obj), ns) == expected


RULES: list[tuple[str, Any, bool]] = [
    ("allow", {"action": "Allow"}, True),
    ("pass", {"action": "Pass"}, True),
    ("allow-lowercase", {"action": "allow"}, True),
    ("allow-with-metadata", {"action": "Allow", "metadata": {"annotations": {"a": "b"}}}, True),
    ("allow-ipversion-only", {"action": "Allow", "ipVersion": 4}, True),
    ("allow-empty-entities", {"action": "Allow", "source": {}, "destination": {"ports": []}}, True),
    ("allow-to-0.0.0.0/0", {"action": "Allow", "destination": {"nets": ["0.0.0.0/0"]}}, True),
    ("allow-to-::/0", {"action": "Allow", "destination": {"nets": ["10.0.0.0/8", "::/0"]}}, True),
    ("allow-all-namespaces", {"action": "Allow", "source": {"namespaceSelector": "all()"}}, True),
    (
        "allow-all-namespaces-all-pods",
        {"action": "Allow", "source": {"namespaceSelector": "all()", "selector": "all()"}},
        True,
    ),
    ("deny", {"action": "Deny"}, False),
    ("log", {"action": "Log"}, False),
    ("no-action", {}, False),
    ("not-a-mapping", ["action", "Allow"], False),
    ("protocol", {"action": "Allow", "protocol": "TCP"}, False),
    ("protocol-number", {"action": "Allow", "protocol": 6}, False),
    ("not-protocol", {"action": "Allow", "notProtocol": "UDP"}, False),
    ("icmp", {"action": "Allow", "icmp": {"type": 8}}, False),
    ("not-icmp", {"action": "Allow", "notICMP": {"type": 8, "code": 0}}, False),
    ("http", {"action": "Allow", "http": {"methods": ["GET"]}}, False),
    ("nets", {"action": "Allow", "destination": {"nets": ["10.0.0.0/8"]}}, False),
    ("bad-nets", {"action": "Allow", "destination": {"nets": ["not-a-cidr"]}}, False),
    # An outside address satisfies notNets (SPEC 2.5): all but 10.0.0.0/8 is everything left.
    ("not-nets", {"action": "Allow", "destination": {"notNets": ["10.0.0.0/8"]}}, True),
    (
        "everything-but",
        {"action": "Allow", "destination": {"nets": ["0.0.0.0/0"], "notNets": ["10.0.0.0/8"]}},
        False,
    ),
    # In a GlobalNetworkPolicy `selector: all()` is every endpoint of every namespace, and an
    # unlabelled pod satisfies `notSelector: has(x)` (SPEC 2.5).
    ("selector", {"action": "Allow", "source": {"selector": "all()"}}, True),
    ("not-selector", {"action": "Allow", "source": {"notSelector": "has(x)"}}, True),
    (
        "namespace-selector",
        {"action": "Allow", "source": {"namespaceSelector": "team == 'a'"}},
        False,
    ),
    (
        "namespace-selector-global",
        {"action": "Allow", "source": {"namespaceSelector": "global()"}},
        False,
    ),
    (
        "all-namespaces-some-pods",
        {"action": "Allow", "source": {"namespaceSelector": "all()", "selector": "app == 'x'"}},
        False,
    ),
    ("ports", {"action": "Allow", "destination": {"ports": [80, "443:444", "http"]}}, False),
    ("not-ports", {"action": "Allow", "destination": {"notPorts": [22]}}, False),
    (
        "service-accounts",
        {"action": "Allow", "source": {"serviceAccounts": {"names": ["api"]}}},
        False,
    ),
    (
        "services",
        {"action": "Allow", "destination": {"services": {"name": "db", "namespace": "x"}}},
        False,
    ),
]


@pytest.mark.parametrize(("rule", "expected"), [c[1:] for c in RULES], ids=[c[0] for c in RULES])
def test_unrestricted_rule_definition(rule: Any, expected: bool) -> None:
    """Allow/Pass without protocol, ICMP, HTTP or a peer criterion the unnamed peers fail
    reopens all; Log/Deny never do. The rule is read where its criteria name the peer: a
    `destination` in egress, a `source` in ingress (the other side is the pod itself)."""
    egress = isinstance(rule, dict) and "destination" in rule
    assert is_unrestricted_rule(rule, egress=egress) is expected


def test_unrestricted_rules_are_reported_in_the_policy_types() -> None:
    """An allow-all rule is reported by index in the directions the policy's types name."""
    obj = np(
        {
            "types": ["Ingress"],
            "ingress": [{"action": "Allow", "protocol": "TCP"}, {"action": "Pass"}],
            "egress": [{"action": "Log"}, {"action": "Allow"}],
        }
    )
    # Only the directions the policy applies to (Ingress here) are reported.
    assert unrestricted_rules(obj) == [(IN, 1)]
    assert provided_directions(obj, "calico", SHOP) == NONE


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, frozenset({IN})),
        ({"ingress": [{"action": "Deny"}]}, frozenset({IN})),
        ({"egress": [{"action": "Deny"}]}, frozenset({EG})),
        ({"ingress": [{"action": "Deny"}], "egress": [{"action": "Deny"}]}, BOTH),
        ({"ingress": [], "egress": []}, frozenset({IN})),
        ({"types": ["Egress"], "ingress": [{"action": "Deny"}]}, frozenset({EG})),
        ({"types": "Egress"}, None),
    ],
    ids=["none", "ingress-rules", "egress-rules", "both-rules", "empty-lists", "explicit", "bad"],
)
def test_effective_types_follow_calicos_defaulting_table(
    spec: dict[str, Any], expected: frozenset[Direction] | None
) -> None:
    """Omitted types default per Calico's reference table: an egress-only policy is Egress only."""
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy (types defaults)
    assert effective_types(spec) == expected


# -- selector errors --------------------------------------------------------------------------
def test_selector_errors_name_every_bad_selector_with_path_and_column() -> None:
    """Every malformed selector is reported with its field path, column and what was expected."""
    obj = gnp(
        {
            "selector": "app == web",
            "namespaceSelector": "has(projectcalico.org/name",
            "serviceAccountSelector": "",
            "ingress": [
                {"action": "Allow", "source": {"selector": "ok == 'fine'"}},
                {
                    "action": "Allow",
                    "source": {"notSelector": "a b", "serviceAccounts": {"selector": "x =="}},
                },
            ],
            "egress": [
                "not-a-rule",
                {
                    "action": "Allow",
                    "destination": {"namespaceSelector": 7, "selector": "(a == 'b'"},
                },
            ],
        }
    )
    found = {path: str(error) for path, error in selector_errors(obj)}
    assert found == {
        "spec.selector": (
            "selector column 8: expected a quoted string after '==', found label 'web'"
        ),
        "spec.namespaceSelector": (
            "selector column 27: expected ')' to close has(projectcalico.org/name"
        ),
        "spec.ingress[1].source.notSelector": (
            "selector column 3: expected an operator (==, !=, in, not in, contains, "
            "starts with or ends with) after label 'a'"
        ),
        "spec.ingress[1].source.serviceAccounts.selector": (
            "selector column 5: expected a quoted string after '==', found the end of the selector"
        ),
        "spec.egress[1].destination.selector": (
            "selector column 10: expected ')' to close the '(' at column 1, "
            "found the end of the selector"
        ),
        "spec.egress[1].destination.namespaceSelector": (
            "selector: expected a selector string, not int"
        ),
    }
    assert provided_directions(obj, "calico-global", SHOP) == NONE


def test_selector_errors_is_empty_for_clean_and_shapeless_objects() -> None:
    """Clean policies, absent specs and non-mapping specs report no selector errors."""
    assert selector_errors(GNP_DENY_APP) == []
    assert selector_errors({"kind": "GlobalNetworkPolicy"}) == []
    assert selector_errors({"spec": "nonsense"}) == []


# -- hostile objects ---------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "selector",
        "namespaceSelector",
        "serviceAccountSelector",
        "types",
        "ingress",
        "egress",
        "doNotTrack",
        "preDNAT",
        "action",
        "source",
        "destination",
        "nets",
        "protocol",
        "metadata",
    ]
)
POLICYISH = st.recursive(
    st.none() | st.text(max_size=12) | st.sampled_from(["all()", "Allow", "Ingress", "0.0.0.0/0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELDS, inner, max_size=4),
    max_leaves=16,
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries({"spec": POLICYISH}),
        st.fixed_dictionaries(
            {"metadata": JSON, "spec": st.dictionaries(FIELDS, POLICYISH, max_size=5)}
        ),
    )
)
def test_no_object_makes_the_policy_functions_raise(obj: Any) -> None:
    """Whatever the object, the three functions answer instead of raising."""
    for flavor_name in ("calico", "calico-global"):
        assert provided_directions(obj, flavor_name, SHOP) <= BOTH
    assert all(index >= 0 for _, index in unrestricted_rules(obj))
    assert all(path.startswith("spec.") for path, _ in selector_errors(obj))
