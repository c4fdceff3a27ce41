"""AdminNetworkPolicy and BaselineAdminNetworkPolicy through the isolation engine (SPEC 2.6)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.engine_shims import (
    is_admin_unrestricted_rule,
    label_selector_matches,
    provided_directions,
    subject_covers,
    unrestricted_rules,
)
from webhook.policy.model import Direction, Namespace, Operation, Request
from webhook.policy.rule import Settings
from webhook.policy.rules.protect_default_deny import check as protect_default_deny
from webhook.policy.rules.require_default_deny import check as require_default_deny
from webhook.policy.rules.restrict_allow_all import check as restrict_allow_all
from webhook.state.index import IndexedState

IN, EG = Direction.INGRESS, Direction.EGRESS
EGRESS_ONLY = frozenset({EG})
NONE: frozenset[Direction] = frozenset()
API = "policy.networking.k8s.io/v1alpha1"
SETTINGS = Settings(exempt_namespaces=frozenset({"kube-system"}))


def namespace(name: str, **labels: str) -> Namespace:
    return Namespace(name=name, labels={"kubernetes.io/metadata.name": name, **labels})


SHOP = namespace("shop", team="payments")
BLOG = namespace("blog", team="content")
KUBE_SYSTEM = namespace("kube-system")

ALL_NAMESPACES: dict[str, Any] = {"namespaces": {}}
EVERY_ADDRESS = {"networks": ["0.0.0.0/0", "::/0"]}
DENY_EVERYTHING = {"name": "deny-all", "action": "Deny", "to": [EVERY_ADDRESS]}
DNS = {
    "name": "dns",
    "action": "Allow",
    "to": [
        {
            "pods": {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        }
    ],
    "ports": [
        {"portNumber": {"protocol": "UDP", "port": 53}},
        {"portNumber": {"protocol": "TCP", "port": 53}},
    ],
}


def anp(spec: dict[str, Any], name: str = "cluster-deny", priority: int = 50) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"priority": priority, "subject": ALL_NAMESPACES, **spec},
    }


def banp(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {"subject": ALL_NAMESPACES, **spec},
    }


def flavor(obj: dict[str, Any]) -> str:
    return "anp" if obj["kind"] == "AdminNetworkPolicy" else "banp"


# -- which shapes count ------------------------------------------------------------------------
SHAPES: list[tuple[str, dict[str, Any], Namespace, frozenset[Direction]]] = [
    ("banp-deny-every-address", banp({"egress": [DENY_EVERYTHING]}), SHOP, EGRESS_ONLY),
    ("anp-deny-every-address", anp({"egress": [DENY_EVERYTHING]}), SHOP, EGRESS_ONLY),
    (
        "ingress-from-all-namespaces-never-counts",
        banp({"ingress": [{"action": "Deny", "from": [ALL_NAMESPACES]}]}),
        SHOP,
        NONE,
    ),
    (
        "ingress-and-egress-counts-for-egress-only",
        banp(
            {
                "ingress": [{"action": "Deny", "from": [ALL_NAMESPACES]}],
                "egress": [DENY_EVERYTHING],
            }
        ),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "egress-to-all-namespaces-leaves-the-outside-open",
        banp({"egress": [{"action": "Deny", "to": [ALL_NAMESPACES]}]}),
        SHOP,
        NONE,
    ),
    (
        # SPEC 2.5: networks covering every IPv4 *or* every IPv6 address match the outside
        # peer. (Per-family isolation is not modelled: on a dual-stack cluster IPv6 stays
        # open; the README says so.)
        "ipv4-only-counts-as-every-outside-address",
        banp({"egress": [{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]}),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "families-in-two-rules",
        anp(
            {
                "egress": [
                    {"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]},
                    {"action": "Deny", "to": [ALL_NAMESPACES, {"networks": ["::/0"]}]},
                ]
            }
        ),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "families-in-two-peers",
        anp(
            {
                "egress": [
                    {"action": "Deny", "to": [{"networks": ["::/0"]}, {"networks": ["0.0.0.0/0"]}]}
                ]
            }
        ),
        SHOP,
        EGRESS_ONLY,
    ),
    ("dns-allowed-first", banp({"egress": [DNS, DENY_EVERYTHING]}), SHOP, EGRESS_ONLY),
    (
        "allow-all-pods-first-reopens",
        banp({"egress": [{"action": "Allow", "to": [ALL_NAMESPACES]}, DENY_EVERYTHING]}),
        SHOP,
        NONE,
    ),
    (
        "allow-all-pods-after-is-dead",
        banp({"egress": [DENY_EVERYTHING, {"action": "Allow", "to": [ALL_NAMESPACES]}]}),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "pass-all-first-reopens",
        anp({"egress": [{"action": "Pass", "to": [{"networks": ["::/0"]}]}, DENY_EVERYTHING]}),
        SHOP,
        NONE,
    ),
    (
        "pass-is-not-a-banp-action",
        banp(
            {"egress": [{"action": "Pass", "to": [{"networks": ["10.0.0.0/8"]}]}, DENY_EVERYTHING]}
        ),
        SHOP,
        NONE,
    ),
    (
        "lowercase-action-is-invalid",
        banp({"egress": [{**DENY_EVERYTHING, "action": "deny"}]}),
        SHOP,
        NONE,
    ),
    (
        "deny-on-some-ports",
        banp(
            {
                "egress": [
                    {**DENY_EVERYTHING, "ports": [{"portNumber": {"protocol": "TCP", "port": 443}}]}
                ]
            }
        ),
        SHOP,
        NONE,
    ),
    (
        # `ports: []` restricts no port (the CRD refuses it; if stored, it denies everything).
        "deny-with-empty-ports-restricts-nothing",
        banp({"egress": [{**DENY_EVERYTHING, "ports": []}]}),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "null-fields-are-absent",
        banp({"egress": [{**DENY_EVERYTHING, "to": [{**EVERY_ADDRESS, "namespaces": None}]}]}),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "peer-with-two-fields",
        banp({"egress": [{"action": "Deny", "to": [{**EVERY_ADDRESS, "namespaces": {}}]}]}),
        SHOP,
        NONE,
    ),
    (
        "deny-to-all-nodes",
        banp({"egress": [{"action": "Deny", "to": [{"nodes": {}}]}]}),
        SHOP,
        NONE,
    ),
    (
        "subject-by-label",
        banp(
            {
                "subject": {"namespaces": {"matchLabels": {"team": "payments"}}},
                "egress": [DENY_EVERYTHING],
            }
        ),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "subject-by-label-misses",
        banp(
            {
                "subject": {"namespaces": {"matchLabels": {"team": "payments"}}},
                "egress": [DENY_EVERYTHING],
            }
        ),
        BLOG,
        NONE,
    ),
    (
        "subject-not-in-system",
        anp(
            {
                "subject": {
                    "namespaces": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "NotIn",
                                "values": ["kube-system"],
                            }
                        ]
                    }
                },
                "egress": [DENY_EVERYTHING],
            }
        ),
        KUBE_SYSTEM,
        NONE,
    ),
    (
        "subject-every-pod-of-matching-namespaces",
        anp(
            {
                "subject": {"pods": {"namespaceSelector": {}, "podSelector": {}}},
                "egress": [DENY_EVERYTHING],
            }
        ),
        SHOP,
        EGRESS_ONLY,
    ),
    (
        "subject-some-pods",
        anp(
            {
                "subject": {
                    "pods": {
                        "namespaceSelector": {},
                        "podSelector": {"matchLabels": {"app": "web"}},
                    }
                },
                "egress": [DENY_EVERYTHING],
            }
        ),
        SHOP,
        NONE,
    ),
    (
        "subject-with-both-fields",
        anp(
            {
                "subject": {"namespaces": {}, "pods": {"namespaceSelector": {}, "podSelector": {}}},
                "egress": [DENY_EVERYTHING],
            }
        ),
        SHOP,
        NONE,
    ),
    ("subject-missing", anp({"subject": None, "egress": [DENY_EVERYTHING]}), SHOP, NONE),
    ("egress-not-a-list", banp({"egress": DENY_EVERYTHING}), SHOP, NONE),
    ("rule-not-a-mapping", banp({"egress": ["Deny", DENY_EVERYTHING]}), SHOP, NONE),
]


@pytest.mark.parametrize(
    ("obj", "ns", "expected"), [c[1:] for c in SHAPES], ids=[c[0] for c in SHAPES]
)
def test_provider_shapes(
    obj: dict[str, Any], ns: Namespace, expected: frozenset[Direction]
) -> None:
    """Only an egress deny of both /0 networks, before any reopening rule, for a covered subject counts."""
    assert provided_directions(obj, flavor(obj), ns) == expected


# -- label selectors -------------------------------------------------------------------------
LABELS = {"kubernetes.io/metadata.name": "shop", "team": "payments"}
SELECTORS: list[tuple[str, Any, bool]] = [
    ("empty", {}, True),
    ("match-labels", {"matchLabels": {"team": "payments"}}, True),
    ("match-labels-miss", {"matchLabels": {"team": "search"}}, False),
    ("in", {"matchExpressions": [{"key": "team", "operator": "In", "values": ["payments"]}]}, True),
    ("not-in", {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}, True),
    (
        "not-in-absent",
        {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]},
        True,
    ),
    ("exists", {"matchExpressions": [{"key": "team", "operator": "Exists"}]}, True),
    ("does-not-exist", {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, False),
    ("in-without-values", {"matchExpressions": [{"key": "team", "operator": "In"}]}, False),
    (
        "exists-with-values",
        {"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["x"]}]},
        False,
    ),
    ("unknown-operator", {"matchExpressions": [{"key": "team", "operator": "Gt"}]}, False),
    (
        "both-anded",
        {
            "matchLabels": {"team": "payments"},
            "matchExpressions": [{"key": "team", "operator": "DoesNotExist"}],
        },
        False,
    ),
    ("not-a-mapping", ["team"], False),
    ("null", None, False),
]


@pytest.mark.parametrize(
    ("selector", "expected"), [c[1:] for c in SELECTORS], ids=[c[0] for c in SELECTORS]
)
def test_label_selector_matches_like_the_api_server(selector: Any, expected: bool) -> None:
    """matchLabels and matchExpressions are ANDed; malformed selectors match nothing."""
    assert label_selector_matches(selector, LABELS) is expected


def test_subject_covers_needs_exactly_one_field() -> None:
    """A subject is `namespaces` or `pods`, never both, never an unknown field."""
    assert subject_covers({"namespaces": {}}, SHOP)
    assert subject_covers({"namespaces": {}, "pods": None}, SHOP)
    assert not subject_covers({"namespaces": {}, "nodes": {}}, SHOP)
    assert not subject_covers({}, SHOP)


# -- unrestricted rules ----------------------------------------------------------------------
RULES: list[tuple[str, Any, Direction, str, bool]] = [
    ("allow-from-all-namespaces", {"action": "Allow", "from": [ALL_NAMESPACES]}, IN, "anp", True),
    ("pass-to-every-ipv6", {"action": "Pass", "to": [{"networks": ["::/0"]}]}, EG, "anp", True),
    (
        "allow-all-pods",
        {"action": "Allow", "to": [{"pods": {"namespaceSelector": {}, "podSelector": {}}}]},
        EG,
        "anp",
        True,
    ),
    ("banp-allow", {"action": "Allow", "from": [ALL_NAMESPACES]}, IN, "banp", True),
    ("banp-pass-is-invalid", {"action": "Pass", "from": [ALL_NAMESPACES]}, IN, "banp", False),
    ("deny", {"action": "Deny", "from": [ALL_NAMESPACES]}, IN, "anp", False),
    (
        "ports",
        {
            "action": "Allow",
            "from": [ALL_NAMESPACES],
            "ports": [{"portNumber": {"protocol": "TCP", "port": 80}}],
        },
        IN,
        "anp",
        False,
    ),
    (
        "some-namespaces",
        {"action": "Allow", "from": [{"namespaces": {"matchLabels": {"team": "a"}}}]},
        IN,
        "anp",
        False,
    ),
    ("all-nodes", {"action": "Allow", "to": [{"nodes": {}}]}, EG, "anp", False),
    (
        "networks-on-ingress",
        {"action": "Allow", "from": [{"networks": ["::/0"]}]},
        IN,
        "anp",
        False,
    ),
    ("some-network", {"action": "Allow", "to": [{"networks": ["10.0.0.0/8"]}]}, EG, "anp", False),
    (
        "domain-names",
        {"action": "Allow", "to": [{"domainNames": ["*.example.com"]}]},
        EG,
        "anp",
        False,
    ),
    ("not-a-mapping", "Allow", IN, "anp", False),
]


@pytest.mark.parametrize(
    ("rule", "direction", "flavor_name", "expected"),
    [c[1:] for c in RULES],
    ids=[c[0] for c in RULES],
)
def test_unrestricted_rule_definition(
    rule: Any, direction: Direction, flavor_name: str, expected: bool
) -> None:
    """Allow/Pass on every port to every pod or a /0 network reopens everything; nothing else."""
    assert is_admin_unrestricted_rule(rule, direction, flavor_name) is expected


def test_unrestricted_rules_are_named_by_direction_and_index() -> None:
    """Each reopening rule is reported with its direction and position."""
    obj = anp(
        {
            "ingress": [
                {"action": "Deny", "from": [ALL_NAMESPACES]},
                {"action": "Allow", "from": [ALL_NAMESPACES]},
            ],
            "egress": [{"action": "Pass", "to": [{"networks": ["0.0.0.0/0"]}]}],
        }
    )
    assert unrestricted_rules(obj) == [(IN, 1), (EG, 0)]
    assert unrestricted_rules({"spec": "nonsense"}) == []


# -- through the policies --------------------------------------------------------------------
def ns_obj(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


INGRESS_NP = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny-ingress", "namespace": "shop"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}
BASELINE = banp({"egress": [DNS, DENY_EVERYTHING]})


def state(*objs: dict[str, Any]) -> IndexedState:
    indexed = IndexedState()
    for obj in objs:
        indexed.upsert(obj)
    return indexed


def admin_request(obj: Any, operation: Operation, old: Any = None) -> Request:
    source = obj if obj is not None else old
    return Request(
        uid="u",
        kind=source["kind"],
        group="policy.networking.k8s.io",
        version="v1alpha1",
        namespace="",
        name=source["metadata"]["name"],
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def pod_request(ns: str) -> Request:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    return Request(
        uid="u",
        kind="Pod",
        group="",
        version="v1",
        namespace=ns,
        name="web",
        operation=Operation.CREATE,
        obj=pod,
    )


def test_baseline_egress_plus_namespace_ingress_policy_isolates() -> None:
    """A BANP egress default-deny and a NetworkPolicy ingress default-deny together satisfy it."""
    indexed = state(ns_obj("shop"), INGRESS_NP, BASELINE)
    egress = indexed.view("shop").decide_any_pod(EG)
    assert egress.isolated
    assert egress.text.startswith('BaselineAdminNetworkPolicy "default"')
    assert require_default_deny(pod_request("shop"), indexed, SETTINGS) == []


def test_baseline_alone_leaves_ingress_missing() -> None:
    """Without an ingress default-deny the pod is rejected, and the message names only Ingress."""
    [finding] = require_default_deny(pod_request("shop"), state(ns_obj("shop"), BASELINE), SETTINGS)
    assert 'namespace "shop" has no default-deny network policy for Ingress.' in finding.message


def test_deleting_a_relied_upon_baseline_is_denied_naming_the_namespaces() -> None:
    """The BANP is a protected object: removing it would leave namespaces without egress isolation."""
    indexed = state(ns_obj("shop"), ns_obj("blog"), ns_obj("kube-system"), BASELINE)
    [finding] = protect_default_deny(
        admin_request(None, Operation.DELETE, BASELINE), indexed, SETTINGS
    )
    assert finding.message == (
        '[protect-default-deny] Deleting BaselineAdminNetworkPolicy "default" would leave 2 '
        'namespaces without a default-deny for Egress: "blog", "shop". Apply a replacement '
        "default-deny there first, or delete those namespaces if they are no longer needed."
    )


def test_narrowing_an_admin_policy_subject_names_the_namespaces_left_out() -> None:
    """Updating an ANP's subject to fewer namespaces is a weakening for the ones dropped."""
    old = anp({"egress": [DENY_EVERYTHING]})
    new = copy.deepcopy(old)
    new["spec"]["subject"] = {"namespaces": {"matchLabels": {"team": "payments"}}}
    indexed = state(ns_obj("shop", team="payments"), ns_obj("blog", team="content"), old)
    [finding] = protect_default_deny(admin_request(new, Operation.UPDATE, old), indexed, SETTINGS)
    assert finding.message.startswith(
        '[protect-default-deny] Updating AdminNetworkPolicy "cluster-deny" would leave namespace '
        '"blog" without a default-deny for Egress.'
    )


def test_admin_allow_all_rule_is_reported() -> None:
    """An ANP Allow from every namespace cancels every default-deny below it: restrict-allow-all says so."""
    obj = anp(
        {"ingress": [{"name": "open", "action": "Allow", "from": [ALL_NAMESPACES]}]}, priority=1
    )
    [finding] = restrict_allow_all(admin_request(obj, Operation.CREATE), state(), SETTINGS)
    assert finding.message == (
        '[restrict-allow-all] AdminNetworkPolicy "cluster-deny": rule spec.ingress[0] admits all '
        "traffic and cancels the default-deny of every namespace it applies to. Restrict it with "
        "from peers or ports."
    )
    assert not finding.advisory


def test_baseline_allow_all_is_not_reported() -> None:
    """A BANP sits below every NetworkPolicy: its Allow rules cannot cancel another default-deny."""
    obj = banp({"ingress": [{"action": "Allow", "from": [ALL_NAMESPACES]}]})
    assert restrict_allow_all(admin_request(obj, Operation.CREATE), state(), SETTINGS) == []


def test_admin_policies_isolate_through_the_state() -> None:
    """The state's view (Namespace CREATE advisories, confirmation reads) walks ANPs first."""
    deny = anp({"egress": [DENY_EVERYTHING]})
    egress = state(ns_obj("shop"), deny).view("shop").decide_any_pod(EG)
    assert egress.isolated
    assert egress.text.startswith('AdminNetworkPolicy "cluster-deny"')


# -- hostile objects ---------------------------------------------------------------------------
FIELDS = st.sampled_from(
    [
        "subject",
        "namespaces",
        "pods",
        "namespaceSelector",
        "podSelector",
        "matchLabels",
        "matchExpressions",
        "key",
        "operator",
        "values",
        "ingress",
        "egress",
        "action",
        "from",
        "to",
        "ports",
        "networks",
        "nodes",
    ]
)
OBJECTISH = st.recursive(
    st.none()
    | st.text(max_size=6)
    | st.integers()
    | st.sampled_from(["Deny", "Allow", "Pass", "::/0", "0.0.0.0/0", "In", "NotIn", "Exists"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELDS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, database=None)
@given(spec=OBJECTISH)
def test_no_object_makes_admin_functions_raise(spec: Any) -> None:
    """Whatever the spec, provided_directions and unrestricted_rules answer instead of raising."""
    obj = {"apiVersion": API, "kind": "AdminNetworkPolicy", "metadata": {"name": "x"}, "spec": spec}
    for flavor_name in ("anp", "banp"):
        assert provided_directions(obj, flavor_name, SHOP) <= EGRESS_ONLY
        assert all(i >= 0 for _, i in unrestricted_rules(obj, flavor_name))
