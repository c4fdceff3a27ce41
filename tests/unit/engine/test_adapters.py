"""Flavor adapters: defaulting, identity, tiers and how each rule meets the unnamed peers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.engine.builders import (
    ALL_NAMESPACES,
    EVERYTHING_V4,
    V1,
    anp,
    banp,
    calico_np,
    cnp,
    gnp,
    k8s_np,
    ns,
    tier,
    v1_meta,
)
from webhook.policy.engine import (
    Action,
    CompiledPolicy,
    Endpoint,
    Labels,
    Tier,
    build_stack,
    compile_object,
)
from webhook.policy.engine.calico import compile_calico_policy
from webhook.policy.engine.core import Context, Tri
from webhook.policy.model import Direction

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS
BOTH = frozenset({INGRESS, EGRESS})
SHOP = ns("shop", env="prod")


def compiled(obj: dict[str, Any]) -> CompiledPolicy:
    result = compile_object(obj)
    assert isinstance(result, CompiledPolicy)
    return result


def first_rule(obj: dict[str, Any], direction: Direction) -> tuple[Tri, Tri, bool]:
    rule = compiled(obj).rules_for(direction)[0]
    return rule.outside, rule.fresh, rule.restricted


def any_pod() -> Endpoint:
    return Endpoint.any_pod(SHOP)


# -- Kubernetes NetworkPolicy ---------------------------------------------------------------------
K8S_TYPES = [
    ("omitted-no-egress", {}, frozenset({INGRESS})),
    ("omitted-with-egress-rule", {"egress": [{}]}, BOTH),
    ("omitted-empty-egress", {"egress": []}, frozenset({INGRESS})),
    ("explicit-egress", {"policyTypes": ["Egress"], "ingress": [{}]}, frozenset({EGRESS})),
    ("empty-list-defaults", {"policyTypes": []}, frozenset({INGRESS})),
    ("malformed-reads-both", {"policyTypes": "Egress"}, BOTH),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in K8S_TYPES], ids=[c[0] for c in K8S_TYPES]
)
def test_k8s_effective_policy_types(spec: dict[str, Any], expected: frozenset[Direction]) -> None:
    """NetworkPolicy directions follow the API server's policyTypes defaulting."""
    assert compiled(k8s_np("p", **spec)).directions == expected


def test_k8s_malformed_policy_types_is_never_isolation() -> None:
    """A NetworkPolicy whose policyTypes cannot be read may allow anything, so it never isolates."""
    policy = compiled(k8s_np("p", policyTypes="Egress"))
    assert policy.rules_for(INGRESS)[0].outside is None


K8S_PEERS = [
    ("empty-rule", {}, (True, True, False)),
    ("ports-restrict", {"ports": [{"port": 80}]}, (True, True, True)),
    ("all-namespaces", {"from": [{"namespaceSelector": {}}]}, (False, True, False)),
    (
        "exists-metadata-name",
        {"from": [{"namespaceSelector": ALL_NAMESPACES}]},
        (False, True, False),
    ),
    (
        "notin-any-key",
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]
                    }
                }
            ]
        },
        (False, True, False),
    ),
    (
        "doesnotexist-any-key",
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]
                    }
                }
            ]
        },
        (False, True, False),
    ),
    (
        "in-metadata-name",
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": ["a"],
                            }
                        ]
                    }
                }
            ]
        },
        (False, False, False),
    ),
    ("own-namespace-pods", {"from": [{"podSelector": {}}]}, (False, False, False)),
    (
        "all-namespaces-labelled-pods",
        {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "x"}}}]},
        (False, False, False),
    ),
    ("ipblock-everything", {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, (True, True, False)),
    ("ipblock-v6-everything", {"from": [{"ipBlock": {"cidr": "::/0"}}]}, (True, True, False)),
    ("ipblock-split", {"from": EVERYTHING_V4}, (True, True, False)),
    ("ipblock-private", {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}, (False, False, False)),
    (
        "ipblock-near-all",
        {"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]},
        (None, None, False),
    ),
    (
        "ipblock-mostly-excepted",
        {"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["0.0.0.0/1"]}}]},
        (False, False, False),
    ),
    ("malformed-peers", {"from": "everyone"}, (None, None, False)),
    ("malformed-empty-peer", {"from": [{}]}, (None, None, False)),
    ("malformed-cidr", {"from": [{"ipBlock": {"cidr": "ten/8"}}]}, (None, None, False)),
]


@pytest.mark.parametrize(
    ("rule", "expected"), [c[1:] for c in K8S_PEERS], ids=[c[0] for c in K8S_PEERS]
)
def test_k8s_rule_peers(rule: dict[str, Any], expected: tuple[Tri, Tri, bool]) -> None:
    """Each NetworkPolicy ingress rule matches the unnamed peers as SPEC 2.5 defines."""
    assert first_rule(k8s_np("p", ingress=[rule]), INGRESS) == expected


def test_k8s_identity_is_uid_when_present() -> None:
    """A NetworkPolicy is keyed by uid when it has one, else by namespace and name."""
    with_uid = k8s_np("p")
    with_uid["metadata"]["uid"] = "u-1"
    assert compiled(with_uid).key == "uid:u-1"
    assert compiled(k8s_np("p")).key == "k8s/shop/p"


def test_namespaced_policy_without_namespace_lands_in_default() -> None:
    """A namespaced policy with no namespace and no default is judged in namespace default."""
    for obj in (k8s_np("p"), calico_np("p")):
        del obj["metadata"]["namespace"]
        assert compiled(obj).home == "default"
    from_file = compile_object({**k8s_np("p"), "metadata": {"name": "p"}}, "shop")
    assert isinstance(from_file, CompiledPolicy)
    assert from_file.home == "shop"


def test_k8s_selects_only_its_namespace() -> None:
    """A NetworkPolicy selects pods of its own namespace only."""
    policy = compiled(k8s_np("p", podSelector={"matchLabels": {"role": "web"}}))
    assert policy.selects(Endpoint.of(SHOP, {"role": "web"})) is True
    assert policy.selects(Endpoint.of(ns("other"), {"role": "web"})) is False
    assert policy.selects(any_pod()) is None


def test_k8s_malformed_pod_selector_selects_unknown() -> None:
    """An unreadable podSelector gives an unknown selection, never a certain one."""
    policy = compiled(
        k8s_np("p", podSelector={"matchExpressions": [{"key": "a", "operator": "In"}]})
    )
    assert policy.selects(Endpoint.of(SHOP, {"a": "b"})) is None


# -- Calico --------------------------------------------------------------------------------------
CALICO_TYPES = [
    ("no-rules", {}, frozenset({INGRESS})),
    ("ingress-rules", {"ingress": [{"action": "Allow"}]}, frozenset({INGRESS})),
    ("egress-rules-only", {"egress": [{"action": "Allow"}]}, frozenset({EGRESS})),
    ("both-rules", {"ingress": [{"action": "Deny"}], "egress": [{"action": "Deny"}]}, BOTH),
    ("explicit-lowercase", {"types": ["egress"]}, frozenset({EGRESS})),
    ("malformed", {"types": "Ingress"}, BOTH),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in CALICO_TYPES], ids=[c[0] for c in CALICO_TYPES]
)
def test_calico_effective_types(spec: dict[str, Any], expected: frozenset[Direction]) -> None:
    """Calico policy types follow Calico's defaulting."""
    assert compiled(gnp("p", **spec)).directions == expected


CALICO_PEERS = [
    ("no-criteria", {"action": "Allow"}, False, (True, True, False)),
    ("lowercase-action", {"action": "allow"}, False, (True, True, False)),
    (
        "selector-all-namespaced",
        {"action": "Allow", "source": {"selector": "all()"}},
        False,
        (False, False, False),
    ),
    (
        "selector-all-global",
        {"action": "Allow", "source": {"selector": "all()"}},
        True,
        (False, True, False),
    ),
    (
        "not-has-global",
        {"action": "Allow", "source": {"selector": "!has(team)"}},
        True,
        (False, True, False),
    ),
    (
        "namespace-selector-all",
        {"action": "Allow", "source": {"namespaceSelector": "all()"}},
        False,
        (False, True, False),
    ),
    (
        "namespace-selector-named",
        {"action": "Allow", "source": {"namespaceSelector": "env == 'prod'"}},
        False,
        (False, False, False),
    ),
    (
        "not-selector",
        {"action": "Allow", "source": {"notSelector": "role == 'db'"}},
        True,
        (True, True, False),
    ),
    (
        "not-selector-namespaced-is-unknown",
        {"action": "Allow", "source": {"notSelector": "role == 'db'"}},
        False,
        (None, None, False),
    ),
    (
        "split-nets",
        {"action": "Allow", "source": {"nets": ["0.0.0.0/1", "128.0.0.0/1"]}},
        False,
        (True, True, False),
    ),
    (
        "not-nets-one-family",
        {"action": "Allow", "source": {"notNets": ["10.0.0.0/8"]}},
        False,
        (True, True, False),
    ),
    (
        "not-nets-both-families",
        {"action": "Allow", "source": {"notNets": ["10.0.0.0/8", "fd00::/8"]}},
        False,
        (None, None, False),
    ),
    (
        "private-nets",
        {"action": "Allow", "source": {"nets": ["10.0.0.0/8"]}},
        False,
        (False, False, False),
    ),
    ("protocol", {"action": "Allow", "protocol": "TCP"}, False, (True, True, True)),
    (
        "destination-ports",
        {"action": "Allow", "destination": {"ports": [443]}},
        False,
        (True, True, True),
    ),
    ("ip-version-alone", {"action": "Allow", "ipVersion": 6}, False, (True, True, False)),
    (
        "service-account-names",
        {"action": "Allow", "source": {"serviceAccounts": {"names": ["api"]}}},
        True,
        (False, False, False),
    ),
    ("unknown-action", {"action": "Permit"}, False, (None, None, False)),
]


@pytest.mark.parametrize(
    ("rule", "is_global", "expected"),
    [c[1:] for c in CALICO_PEERS],
    ids=[c[0] for c in CALICO_PEERS],
)
def test_calico_rule_peers(
    rule: dict[str, Any], is_global: bool, expected: tuple[Tri, Tri, bool]
) -> None:
    """Each Calico ingress rule matches the unnamed peers as SPEC 2.5 defines."""
    obj = gnp("p", ingress=[rule]) if is_global else calico_np("p", ingress=[rule])
    assert first_rule(obj, INGRESS) == expected


@pytest.mark.parametrize(
    "obj",
    [
        gnp("p", ingress=[{"action": "Allow", "source": {"selector": "a = 'b'"}}]),
        gnp("p", selector="role = 'web'", types=["Ingress"]),
    ],
    ids=["in-a-rule", "in-the-subject"],
)
def test_calico_policy_with_an_unparseable_selector_takes_no_part(obj: dict[str, Any]) -> None:
    """Calico enforces no policy it cannot parse: it compiles to nothing, isolating nothing."""
    assert compile_object(obj) is None
    assert compile_calico_policy(obj) is not None  # the adapter alone still reads it soundly


def test_calico_log_rule_is_kept_as_log() -> None:
    """A Log rule compiles with its action, so the walk can pass over it."""
    assert (
        compiled(gnp("p", ingress=[{"action": "Log"}])).rules_for(INGRESS)[0].action is Action.LOG
    )


def test_calico_v1_labels_name_and_tier() -> None:
    """crd.projectcalico.org/v1 objects give user labels from the annotation and names without the tier prefix."""
    meta = v1_meta({"team": "sec"}, **{"projectcalico.org/tier": "security"})
    policy = compiled(calico_np("security.dd", api=V1, meta=meta))
    assert (policy.ref.name, policy.tier, policy.labels["team"]) == ("dd", "security", "sec")
    assert policy.labels["projectcalico.org/tier"] == "security"


def test_calico_spec_tier_wins_over_label() -> None:
    """spec.tier decides the tier even when the tier label says otherwise."""
    meta = v1_meta({}, **{"projectcalico.org/tier": "other"})
    assert compiled(gnp("p", api=V1, meta=meta, tier="security")).tier == "security"


def test_calico_default_prefix_is_dropped() -> None:
    """A v1 default-tier policy named default.x reads as x."""
    assert compiled(gnp("default.x", api=V1)).ref.name == "x"


def test_calico_same_uid_under_two_groups_is_one_policy() -> None:
    """One policy seen through v3 and v1 under two names is one policy in the stack."""
    v3 = gnp("dd", meta={"uid": "u-7"}, types=["Ingress"])
    v1 = gnp("default.dd", api=V1, meta={**v1_meta({}), "uid": "u-7"}, types=["Ingress"])
    assert len(list(build_stack([v3, v1]).policies())) == 1


def test_calico_without_uid_matches_across_prefix() -> None:
    """Without uids, the v3 name and the prefixed v1 name still give one key."""
    assert compiled(gnp("dd")).key == compiled(gnp("default.dd", api=V1)).key


@pytest.mark.parametrize(
    "kind",
    ["StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy"],
    ids=["staged", "staged-global", "staged-kubernetes"],
)
def test_calico_staged_compiles_to_nothing(kind: str) -> None:
    """Staged policies never take part in isolation."""
    assert compile_object({**gnp("s"), "kind": kind}) is None


def test_calico_namespace_selector_and_endpoint_labels() -> None:
    """A GlobalNetworkPolicy reads namespace labels, projectcalico.org/name, and pcns.-inherited labels."""
    by_name = compiled(gnp("p", namespaceSelector="projectcalico.org/name == 'shop'"))
    inherited = compiled(gnp("p", selector="pcns.env == 'prod'"))
    by_namespace_label = compiled(gnp("p", selector="projectcalico.org/namespace == 'shop'"))
    for policy in (by_name, inherited, by_namespace_label):
        assert policy.selects(any_pod()) is True
    assert by_name.selects(Endpoint.any_pod(ns("other"))) is False


def test_calico_service_account_selector_is_unknown_without_a_name() -> None:
    """A serviceAccountSelector is unknown when the service account is not known."""
    policy = compiled(gnp("p", serviceAccountSelector="projectcalico.org/name == 'api'"))
    assert policy.selects(any_pod()) is None
    assert policy.selects(Endpoint.of(SHOP, {}, "api")) is True
    assert policy.selects(Endpoint.of(SHOP, {}, "web")) is False


def test_calico_endpoint_side_reads_the_endpoint() -> None:
    """The destination of an ingress rule is a condition on the endpoint judged."""
    rule = compiled(
        gnp("p", ingress=[{"action": "Allow", "destination": {"selector": "role == 'web'"}}])
    ).rules_for(INGRESS)[0]
    assert rule.local is not None
    assert rule.local(Context(Endpoint.of(SHOP, {"role": "web"}))) is True
    assert rule.local(Context(Endpoint.of(SHOP, {"role": "db"}))) is False
    assert rule.local(Context(any_pod())) is None


# -- tiers ---------------------------------------------------------------------------------------
TIERS = [
    ("order-and-pass", tier("t", 100, "Pass"), Tier("t", 100.0, Action.PASS)),
    ("deny-by-default", tier("t", 100), Tier("t", 100.0, Action.DENY)),
    ("unset-order", tier("t"), Tier("t", None, Action.DENY)),
    ("builtin-order-kept", tier("default"), Tier("default", 1_000_000.0, Action.DENY)),
    ("lowercase-deny", tier("t", 1, "deny"), Tier("t", 1.0, Action.DENY)),
    ("unreadable-action-passes", tier("t", 1, "Reject"), Tier("t", 1.0, Action.PASS)),
    ("v1-group", tier("t", 5, "Pass", api=V1), Tier("t", 5.0, Action.PASS)),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in TIERS], ids=[c[0] for c in TIERS])
def test_tier_objects(obj: dict[str, Any], expected: Tier) -> None:
    """Tier objects compile to their order and default action."""
    result = compile_object(obj)
    assert isinstance(result, Tier)
    assert (result.name, result.order, result.default_action) == (
        expected.name,
        expected.order,
        expected.default_action,
    )


@pytest.mark.parametrize(
    ("name", "order", "action"),
    [
        ("default", 1e6, Action.DENY),
        ("kube-admin", 1e3, Action.PASS),
        ("kube-baseline", 1e7, Action.PASS),
    ],
    ids=["default", "kube-admin", "kube-baseline"],
)
def test_builtin_tiers(name: str, order: float, action: Action) -> None:
    """Built-in tiers have their documented order and default action when no Tier object exists."""
    found = build_stack([]).tier(name)
    assert (found.order, found.default_action, found.assumed) == (order, action, False)


def test_unknown_tier_is_assumed() -> None:
    """A tier no object defines is marked assumed, so nothing it decides is vouched for."""
    assert build_stack([]).tier("ghost").assumed


# -- ClusterNetworkPolicy, ANP, BANP -----------------------------------------------------------
PLACEMENTS = [
    ("cnp-admin", cnp("c", "Admin", 7), ("kube-admin", 7.0, "Admin")),
    ("cnp-baseline", cnp("c", "Baseline", 3), ("kube-baseline", 3.0, "Baseline")),
    ("anp", anp("a", 12), ("kube-admin", 12.0, "")),
    ("banp", banp(), ("kube-baseline", 1001.0, "")),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [c[1:] for c in PLACEMENTS], ids=[c[0] for c in PLACEMENTS]
)
def test_admin_placement(obj: dict[str, Any], expected: tuple[str, float, str]) -> None:
    """CNPs, ANPs and the BANP sit in the kube-admin / kube-baseline tiers by priority."""
    policy = compiled(obj)
    assert (policy.tier, policy.order, policy.label) == expected


def test_cnp_unreadable_tier_is_never_isolation() -> None:
    """A CNP whose tier is not Admin or Baseline has an unknown selection and may allow anything."""
    policy = compiled(cnp("c", "Middle"))
    assert policy.selects(any_pod()) is None
    assert policy.rules_for(INGRESS)[0].action is Action.ALLOW


ADMIN_RULES = [
    (
        "cnp-accept-namespaces",
        cnp("c", "Admin", ingress=[{"action": "Accept", "from": [{"namespaces": {}}]}]),
        INGRESS,
        (Action.ALLOW, False, True, False),
    ),
    (
        "cnp-pods-everywhere",
        cnp(
            "c",
            "Admin",
            ingress=[
                {"action": "Deny", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {}}}]}
            ],
        ),
        INGRESS,
        (Action.DENY, False, True, False),
    ),
    (
        "cnp-networks",
        cnp("c", "Baseline", egress=[{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]),
        EGRESS,
        (Action.DENY, True, True, False),
    ),
    (
        "cnp-nodes",
        cnp("c", "Admin", egress=[{"action": "Deny", "to": [{"nodes": {}}]}]),
        EGRESS,
        (Action.DENY, False, False, False),
    ),
    (
        "cnp-protocols",
        cnp(
            "c",
            "Admin",
            egress=[{"action": "Pass", "to": [{"networks": ["::/0"]}], "protocols": [{"tcp": {}}]}],
        ),
        EGRESS,
        (Action.PASS, True, True, True),
    ),
    (
        "cnp-unknown-peer",
        cnp("c", "Admin", ingress=[{"action": "Deny", "from": [{"future": {}}]}]),
        INGRESS,
        (Action.DENY, None, None, False),
    ),
    (
        "cnp-ingress-networks",
        cnp("c", "Admin", ingress=[{"action": "Deny", "from": [{"networks": ["0.0.0.0/0"]}]}]),
        INGRESS,
        (Action.DENY, None, None, False),
    ),
    (
        "cnp-allow-is-anp-spelling",
        cnp("c", "Admin", ingress=[{"action": "Allow", "from": [{"namespaces": {}}]}]),
        INGRESS,
        (Action.ALLOW, None, None, False),
    ),
    (
        "anp-ports",
        anp(
            "a",
            egress=[
                {
                    "action": "Allow",
                    "to": [{"networks": ["0.0.0.0/0"]}],
                    "ports": [{"portNumber": {"port": 53}}],
                }
            ],
        ),
        EGRESS,
        (Action.ALLOW, True, True, True),
    ),
    (
        "banp-pass-refused",
        banp(ingress=[{"action": "Pass", "from": [{"namespaces": {}}]}]),
        INGRESS,
        (Action.ALLOW, None, None, False),
    ),
]


@pytest.mark.parametrize(
    ("obj", "direction", "expected"), [c[1:] for c in ADMIN_RULES], ids=[c[0] for c in ADMIN_RULES]
)
def test_admin_rules(
    obj: dict[str, Any], direction: Direction, expected: tuple[Action, Tri, Tri, bool]
) -> None:
    """CNP/ANP/BANP rules compile to their action and how they meet the unnamed peers."""
    rule = compiled(obj).rules_for(direction)[0]
    assert (rule.action, rule.outside, rule.fresh, rule.restricted) == expected


def test_admin_subjects() -> None:
    """A subject selects by namespace labels, or by namespace and pod labels."""
    by_namespace = compiled(
        cnp("c", "Admin", subject={"namespaces": {"matchLabels": {"env": "prod"}}})
    )
    by_pod = compiled(
        anp(
            "a",
            subject={
                "pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "web"}}}
            },
        )
    )
    assert by_namespace.selects(any_pod()) is True
    assert by_namespace.selects(Endpoint.any_pod(ns("dev", env="dev"))) is False
    assert by_pod.selects(any_pod()) is None
    assert by_pod.selects(Endpoint.of(SHOP, Labels.exactly({"role": "web"}))) is True
    assert (
        compiled(cnp("c", "Admin", subject={"namespaces": {}, "pods": {}})).selects(any_pod())
        is None
    )
