"""Whole-stack scenarios: each pins a verdict and the sentence that explains it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    default_deny,
    gnp,
    k8s_np,
    ns,
    tier,
    v1_meta,
)
from webhook.policy.engine import Labels, Verdict, build_stack
from webhook.policy.model import Direction, Namespace

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS
ISOLATED, OPEN, UNKNOWN = Verdict.ISOLATED, Verdict.OPEN, Verdict.UNKNOWN
EVERY_NETWORK = {"networks": ["0.0.0.0/0", "::/0"]}


@dataclass(frozen=True)
class Case:
    id: str
    objects: Sequence[Mapping[str, Any]]
    verdict: Verdict
    text: str
    direction: Direction = INGRESS
    labels: Mapping[str, str] | None = field(default_factory=dict)  # None: not known
    namespace: Namespace = field(default_factory=lambda: ns("shop"))


CASES = [
    # -- Kubernetes NetworkPolicy ------------------------------------------------------------
    Case(
        "k8s-default-deny",
        [default_deny()],
        ISOLATED,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Ingress',
    ),
    Case("nothing", [], OPEN, "no policy selects it"),
    Case(
        "k8s-allow-all-beside-default-deny",
        [default_deny(), k8s_np("allow-all", ingress=[{}])],
        OPEN,
        'NetworkPolicy "allow-all" in namespace "shop" rule spec.ingress[0] admits every source',
    ),
    Case(
        "k8s-dns-egress-keeps-isolation",
        [
            k8s_np(
                "deny-but-dns",
                policyTypes=["Egress"],
                egress=[{"ports": [{"port": 53, "protocol": "UDP"}]}],
            )
        ],
        ISOLATED,
        'NetworkPolicy "deny-but-dns" in namespace "shop" denies all Egress its rules do not allow',
        direction=EGRESS,
    ),
    Case(
        "k8s-split-cidr-reopens",
        [default_deny(), k8s_np("split", ingress=[{"from": EVERYTHING_V4}])],
        OPEN,
        'NetworkPolicy "split" in namespace "shop" rule spec.ingress[0] admits every source',
    ),
    Case(
        "k8s-all-namespaces-exists-reopens-pods-only",
        [
            default_deny(),
            k8s_np("all-ns", ingress=[{"from": [{"namespaceSelector": ALL_NAMESPACES}]}]),
        ],
        OPEN,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Ingress but NetworkPolicy '
        '"all-ns" in namespace "shop" rule spec.ingress[0] admits pods of other namespaces',
    ),
    Case(
        "k8s-named-namespaces-keep-isolation",
        [
            default_deny(),
            k8s_np(
                "from-web",
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/metadata.name",
                                            "operator": "In",
                                            "values": ["web"],
                                        }
                                    ]
                                }
                            }
                        ]
                    }
                ],
            ),
        ],
        ISOLATED,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Ingress',
    ),
    Case(
        "k8s-other-namespace-policy-ignored",
        [default_deny("elsewhere")],
        OPEN,
        "no policy selects it",
    ),
    Case(
        "k8s-near-all-ipblock-is-not-certain",
        [
            default_deny(),
            k8s_np(
                "internet",
                policyTypes=["Egress"],
                egress=[
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]}
                ],
            ),
        ],
        UNKNOWN,
        'not certain: NetworkPolicy "internet" in namespace "shop" rule spec.egress[0] may or '
        "may not match addresses outside the cluster",
        direction=EGRESS,
    ),
    Case(
        "k8s-role-selected-web",
        [
            k8s_np(
                "dd",
                podSelector={
                    "matchExpressions": [{"key": "role", "operator": "In", "values": ["web", "db"]}]
                },
            )
        ],
        ISOLATED,
        'NetworkPolicy "dd" in namespace "shop" denies all Ingress',
        labels={"role": "web"},
    ),
    Case(
        "k8s-role-not-selected-cache",
        [
            k8s_np(
                "dd",
                podSelector={
                    "matchExpressions": [{"key": "role", "operator": "In", "values": ["web", "db"]}]
                },
            )
        ],
        OPEN,
        "no policy selects it",
        labels={"role": "cache"},
    ),
    # -- Calico tiers ------------------------------------------------------------------------
    Case(
        "calico-gnp-default-deny",
        [gnp("default-deny", selector="all()", types=["Ingress", "Egress"])],
        ISOLATED,
        'GlobalNetworkPolicy "default-deny" (tier "default") denies all Ingress',
    ),
    Case(
        "calico-no-rules-in-pass-tier-does-not-isolate",
        [tier("platform", 100, "Pass"), calico_np("p", tier="platform", selector="all()")],
        OPEN,
        'tier "platform" passes what it does not decide (defaultAction Pass) and no policy in '
        "a later tier selects it",
    ),
    Case(
        "calico-no-rules-in-deny-tier-isolates",
        [tier("security", 100, "Deny"), calico_np("p", tier="security")],
        ISOLATED,
        'NetworkPolicy "p" in namespace "shop" (tier "security") denies all Ingress',
    ),
    Case(
        "calico-tier-default-action-defaults-to-deny",
        [tier("security", 100), calico_np("p", tier="security")],
        ISOLATED,
        'NetworkPolicy "p" in namespace "shop" (tier "security") denies all Ingress',
    ),
    Case(
        "calico-allow-in-earlier-tier-reopens",
        [
            tier("security", 100, "Deny"),
            gnp("allow", tier="security", ingress=[{"action": "Allow"}]),
            default_deny(),
        ],
        OPEN,
        'GlobalNetworkPolicy "allow" (tier "security") rule spec.ingress[0] admits every source',
    ),
    Case(
        "calico-pass-in-earlier-tier-reaches-default-deny",
        [
            tier("security", 100, "Deny"),
            gnp("pass", tier="security", ingress=[{"action": "Pass"}]),
            default_deny(),
        ],
        ISOLATED,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Ingress',
    ),
    Case(
        "calico-pass-with-nothing-after",
        [tier("security", 100, "Deny"), gnp("pass", tier="security", ingress=[{"action": "Pass"}])],
        OPEN,
        'GlobalNetworkPolicy "pass" (tier "security") rule spec.ingress[0] passes it on and no '
        "policy in a later tier selects it",
    ),
    Case(
        "calico-deny-rule-ordered-before-networkpolicy-decides",
        [gnp("deny", order=100, ingress=[{"action": "Deny"}]), k8s_np("allow-all", ingress=[{}])],
        ISOLATED,
        'GlobalNetworkPolicy "deny" (tier "default") rule spec.ingress[0] denies every source',
    ),
    Case(
        "calico-unset-order-comes-after-networkpolicy",
        [gnp("deny", ingress=[{"action": "Deny"}]), k8s_np("allow-all", ingress=[{}])],
        OPEN,
        'NetworkPolicy "allow-all" in namespace "shop" rule spec.ingress[0] admits every source',
    ),
    Case(
        "calico-log-rule-never-decides",
        [gnp("logged", ingress=[{"action": "Log"}])],
        ISOLATED,
        'GlobalNetworkPolicy "logged" (tier "default") denies all Ingress its rules do not allow',
    ),
    Case(
        "calico-split-nets-reopen",
        [
            gnp("default-deny", types=["Ingress"]),
            gnp(
                "split",
                ingress=[{"action": "Allow", "source": {"nets": ["0.0.0.0/1", "128.0.0.0/1"]}}],
            ),
        ],
        OPEN,
        'GlobalNetworkPolicy "split" (tier "default") rule spec.ingress[0] admits every source',
    ),
    Case(
        "calico-namespaced-selector-all-stays-in-namespace",
        [
            gnp("default-deny", types=["Ingress"]),
            calico_np("same-ns", ingress=[{"action": "Allow", "source": {"selector": "all()"}}]),
        ],
        ISOLATED,
        'GlobalNetworkPolicy "default-deny" (tier "default") denies all Ingress',
    ),
    Case(
        "calico-global-selector-all-reopens-pods",
        [
            gnp("default-deny", types=["Ingress"]),
            gnp("all-pods", ingress=[{"action": "Allow", "source": {"selector": "all()"}}]),
        ],
        OPEN,
        'GlobalNetworkPolicy "default-deny" (tier "default") denies all Ingress but '
        'GlobalNetworkPolicy "all-pods" (tier "default") rule spec.ingress[0] admits pods of '
        "other namespaces",
    ),
    Case(
        "calico-protocol-restricts",
        [
            gnp("default-deny", types=["Ingress"]),
            gnp("tcp", ingress=[{"action": "Allow", "protocol": "TCP"}]),
        ],
        ISOLATED,
        'GlobalNetworkPolicy "default-deny" (tier "default") denies all Ingress',
    ),
    Case(
        "calico-ip-version-does-not-restrict",
        [
            gnp("default-deny", types=["Ingress"]),
            gnp("v4", ingress=[{"action": "Allow", "ipVersion": 4}]),
        ],
        OPEN,
        'GlobalNetworkPolicy "v4" (tier "default") rule spec.ingress[0] admits every source',
    ),
    Case(
        "calico-egress-only-rules-default-to-egress",
        [gnp("egress-deny", egress=[{"action": "Deny"}])],
        OPEN,
        "no policy selects it",
    ),
    Case(
        "calico-role-selected-web",
        [gnp("dd", selector="role in {'web', 'db'}", types=["Ingress"])],
        ISOLATED,
        'GlobalNetworkPolicy "dd" (tier "default") denies all Ingress',
        labels={"role": "web"},
    ),
    Case(
        "calico-role-not-selected-cache",
        [gnp("dd", selector="role in {'web', 'db'}", types=["Ingress"])],
        OPEN,
        "no policy selects it",
        labels={"role": "cache"},
    ),
    Case(
        "calico-role-unknown-labels",
        [gnp("dd", selector="role in {'web', 'db'}", types=["Ingress"])],
        UNKNOWN,
        'not certain: GlobalNetworkPolicy "dd" (tier "default") may or may not select it',
        labels=None,
    ),
    Case(
        "calico-namespace-selector-selects",
        [gnp("dd", namespaceSelector="env == 'prod'", types=["Ingress"])],
        ISOLATED,
        'GlobalNetworkPolicy "dd" (tier "default") denies all Ingress',
        namespace=ns("shop", env="prod"),
    ),
    Case(
        "calico-namespace-relabelled-out",
        [gnp("dd", namespaceSelector="env == 'prod'", types=["Ingress"])],
        OPEN,
        "no policy selects it",
        namespace=ns("shop", env="dev"),
    ),
    Case(
        # Calico enforces no policy whose selector does not parse.
        "calico-unparseable-selector-is-not-isolation",
        [gnp("bad", selector="role = 'web'", types=["Ingress"])],
        OPEN,
        "no policy selects it",
    ),
    Case(
        "calico-unparseable-allow-is-not-enforced",
        [
            gnp("default-deny", types=["Ingress"]),
            gnp("bad-allow", ingress=[{"action": "Allow", "source": {"selector": "(("}}]),
        ],
        ISOLATED,
        'GlobalNetworkPolicy "default-deny" (tier "default") denies all Ingress',
    ),
    Case(
        "calico-do-not-track-selects-no-pod",
        [gnp("host", doNotTrack=True, applyOnForward=True, types=["Ingress"])],
        OPEN,
        "no policy selects it",
    ),
    Case(
        "calico-staged-never-counts",
        [{**gnp("staged", types=["Ingress"]), "kind": "StagedGlobalNetworkPolicy"}],
        OPEN,
        "no policy selects it",
    ),
    Case(
        "calico-v1-prefixed-name-and-annotation",
        [gnp("default.default-deny", api=V1, meta=v1_meta({"team": "sec"}), types=["Ingress"])],
        ISOLATED,
        'GlobalNetworkPolicy "default-deny" (tier "default") denies all Ingress',
    ),
    Case(
        "calico-v1-tier-from-label",
        [
            tier("security", 50, "Deny", api=V1),
            calico_np(
                "security.dd",
                api=V1,
                meta=v1_meta({"team": "sec"}, **{"projectcalico.org/tier": "security"}),
            ),
        ],
        ISOLATED,
        'NetworkPolicy "dd" in namespace "shop" (tier "security") denies all Ingress',
    ),
    # -- ClusterNetworkPolicy, ANP, BANP -----------------------------------------------------
    Case(
        "cnp-admin-accept-all-namespaces",
        [
            default_deny(),
            cnp("admin", "Admin", ingress=[{"action": "Accept", "from": [{"namespaces": {}}]}]),
        ],
        OPEN,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Ingress but '
        'ClusterNetworkPolicy "admin" (Admin) rule spec.ingress[0] admits pods of other namespaces',
    ),
    Case(
        "cnp-admin-deny-every-network",
        [
            k8s_np("open", policyTypes=["Egress"], egress=[{}]),
            cnp("hard", "Admin", egress=[{"action": "Deny", "to": [EVERY_NETWORK]}]),
        ],
        ISOLATED,
        'ClusterNetworkPolicy "hard" (Admin) rule spec.egress[0] denies every destination',
        direction=EGRESS,
    ),
    Case(
        "cnp-admin-pass-then-networkpolicy-allows",
        [
            k8s_np("open", policyTypes=["Egress"], egress=[{}]),
            cnp("pass", "Admin", egress=[{"action": "Pass", "to": [EVERY_NETWORK]}]),
            cnp("base", "Baseline", egress=[{"action": "Deny", "to": [EVERY_NETWORK]}]),
        ],
        OPEN,
        'NetworkPolicy "open" in namespace "shop" rule spec.egress[0] admits every destination',
        direction=EGRESS,
    ),
    Case(
        "cnp-admin-pass-then-baseline-denies",
        [
            cnp("pass", "Admin", egress=[{"action": "Pass", "to": [EVERY_NETWORK]}]),
            cnp("base", "Baseline", egress=[{"action": "Deny", "to": [EVERY_NETWORK]}]),
        ],
        ISOLATED,
        'ClusterNetworkPolicy "base" (Baseline) rule spec.egress[0] denies every destination',
        direction=EGRESS,
    ),
    Case(
        "cnp-baseline-ingress-deny-is-partial",
        [cnp("baseline", "Baseline", ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}])],
        OPEN,
        'ClusterNetworkPolicy "baseline" (Baseline) denies pods of other namespaces but not '
        "addresses outside the cluster",
    ),
    Case(
        "cnp-baseline-overridden-by-networkpolicy",
        [
            default_deny(),
            cnp("baseline", "Baseline", ingress=[{"action": "Deny", "from": [{"namespaces": {}}]}]),
        ],
        ISOLATED,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Ingress',
    ),
    Case(
        "cnp-protocols-restrict",
        [
            cnp(
                "hard",
                "Admin",
                egress=[
                    {
                        "action": "Deny",
                        "to": [EVERY_NETWORK],
                        "protocols": [{"tcp": {"destinationPort": {"number": 80}}}],
                    }
                ],
            )
        ],
        OPEN,
        'tier "kube-admin" passes what it does not decide (defaultAction Pass) and no policy in '
        "a later tier selects it",
        direction=EGRESS,
    ),
    Case(
        "anp-allow-every-network-over-default-deny",
        [default_deny(), anp("open", egress=[{"action": "Allow", "to": [EVERY_NETWORK]}])],
        OPEN,
        'AdminNetworkPolicy "open" rule spec.egress[0] admits every destination',
        direction=EGRESS,
    ),
    Case(
        "anp-ports-restrict",
        [
            default_deny(),
            anp(
                "web",
                egress=[
                    {
                        "action": "Allow",
                        "to": [EVERY_NETWORK],
                        "ports": [{"portNumber": {"port": 443}}],
                    }
                ],
            ),
        ],
        ISOLATED,
        'NetworkPolicy "default-deny" in namespace "shop" denies all Egress',
        direction=EGRESS,
    ),
    Case(
        "banp-deny-every-network",
        [banp(egress=[{"action": "Deny", "to": [EVERY_NETWORK]}])],
        ISOLATED,
        'BaselineAdminNetworkPolicy "default" rule spec.egress[0] denies every destination',
        direction=EGRESS,
    ),
    Case(
        "cnp-subject-other-namespace",
        [
            cnp(
                "hard",
                "Admin",
                subject={"namespaces": {"matchLabels": {"env": "prod"}}},
                egress=[{"action": "Deny", "to": [EVERY_NETWORK]}],
            )
        ],
        OPEN,
        "no policy selects it",
        direction=EGRESS,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_scenario(case: Case) -> None:
    """The stack gives this verdict, explained by this sentence."""
    stack = build_stack(case.objects)
    view = stack.for_namespace(case.namespace)
    labels = Labels.unknown() if case.labels is None else Labels.exactly(case.labels)
    decision = view.decide(view.endpoint(labels, "default"), case.direction)
    assert (decision.verdict, decision.text) == (case.verdict, case.text)
