"""Change impact (protect-default-deny) and the broad-rule listing (restrict-allow-all)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.engine.builders import (
    EVERYTHING_V4,
    anp,
    calico_np,
    default_deny,
    gnp,
    k8s_np,
    ns,
    tier,
)
from webhook.policy.engine import (
    Action,
    BroadRule,
    CompiledPolicy,
    Peer,
    broad_rules,
    build_stack,
    compile_object,
    losses,
    pods_losing_isolation,
    pods_losing_isolation_on_relabel,
)
from webhook.policy.model import Direction

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS
SHOP = ns("shop")
BOTH_PEERS = (Peer.OUTSIDE, Peer.FRESH_POD)

IMPACT = [
    (
        "delete-only-default-deny",
        [default_deny()],
        [],
        'every pod in namespace "shop" would lose Ingress isolation: no policy selects it',
    ),
    ("delete-one-of-two", [default_deny(), k8s_np("dd2")], [k8s_np("dd2")], None),
    (
        "widen-with-allow-all",
        [default_deny()],
        [default_deny(), k8s_np("open", ingress=[{"from": EVERYTHING_V4}])],
        'every pod in namespace "shop" would lose Ingress isolation: NetworkPolicy "open" in '
        'namespace "shop" rule spec.ingress[0] admits every source',
    ),
    (
        "restricted-allow-is-harmless",
        [default_deny()],
        [default_deny(), k8s_np("web", ingress=[{"ports": [{"port": 443}]}])],
        None,
    ),
    (
        "tier-deny-to-pass",
        [tier("security", 10, "Deny"), calico_np("dd", tier="security")],
        [tier("security", 10, "Pass"), calico_np("dd", tier="security")],
        'every pod in namespace "shop" would lose Ingress isolation: tier "security" passes '
        "what it does not decide (defaultAction Pass) and no policy in a later tier selects it",
    ),
    (
        "move-to-pass-tier",
        [tier("platform", 10, "Pass"), gnp("dd", types=["Ingress"])],
        [tier("platform", 10, "Pass"), gnp("dd", tier="platform", types=["Ingress"])],
        'every pod in namespace "shop" would lose Ingress isolation: tier "platform" passes '
        "what it does not decide (defaultAction Pass) and no policy in a later tier selects it",
    ),
    (
        "narrow-selector",
        [gnp("dd", selector="role in {'web', 'db'}", types=["Ingress"])],
        [gnp("dd", selector="role == 'web'", types=["Ingress"])],
        'pods labelled {role=db} in namespace "shop" would lose Ingress isolation: no policy '
        "selects it",
    ),
    (
        "unchanged-uncertain-stack",
        [
            default_deny(),
            k8s_np(
                "internet",
                egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
            ),
        ],
        [
            default_deny(),
            k8s_np(
                "internet",
                egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
            ),
        ],
        None,
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "expected"), [c[1:] for c in IMPACT], ids=[c[0] for c in IMPACT]
)
def test_pods_losing_isolation(
    before: list[dict[str, Any]], after: list[dict[str, Any]], expected: str | None
) -> None:
    """A change is harmless only when no possible pod loses isolation, else the loss is named."""
    loss = pods_losing_isolation(build_stack(before), build_stack(after), SHOP, INGRESS)
    assert (loss.text if loss else None) == expected


def test_loss_names_service_accounts() -> None:
    """A loss that depends on the service account says which service accounts lose."""
    before = build_stack([gnp("dd", serviceAccountSelector="projectcalico.org/name == 'api'")])
    loss = pods_losing_isolation(before, build_stack([]), SHOP, INGRESS)
    assert loss is not None
    assert (loss.every_pod, loss.accounts) == (False, ("api",))
    assert loss.text == (
        'pods running as service account "api" in namespace "shop" would lose Ingress '
        "isolation: no policy selects it"
    )


def test_loss_lists_pods_and_decisions() -> None:
    """A partial loss says which pods lose, with the before and after decisions."""
    before = build_stack([gnp("dd", selector="role in {'web', 'db'}", types=["Ingress"])])
    after = build_stack([gnp("dd", selector="role == 'web'", types=["Ingress"])])
    loss = pods_losing_isolation(before, after, SHOP, INGRESS)
    assert loss is not None
    assert (loss.every_pod, loss.pods, loss.count) == (False, ({"role": "db"},), 1)
    assert loss.before.isolated
    assert not loss.after.isolated


RELABELS = [
    ("out-of-selector", {"env": "prod"}, {"env": "dev"}, True),
    ("label-added", {"env": "prod"}, {"env": "prod", "team": "a"}, False),
    ("into-selector", {"env": "dev"}, {"env": "prod"}, False),
]


@pytest.mark.parametrize(
    ("old", "new", "loses"), [c[1:] for c in RELABELS], ids=[c[0] for c in RELABELS]
)
def test_relabel(old: dict[str, str], new: dict[str, str], loses: bool) -> None:
    """Relabelling a namespace out of a global policy's namespaceSelector loses isolation."""
    stack = build_stack([gnp("dd", namespaceSelector="env == 'prod'", types=["Ingress"])])
    loss = pods_losing_isolation_on_relabel(stack, ns("shop", **old), ns("shop", **new), INGRESS)
    assert (loss is not None) is loses
    if loss is not None:
        assert loss.every_pod


def test_too_many_representatives_fall_back_and_say_so() -> None:
    """Past the representative bound, fully unknown labels are compared and the result says so."""
    selectors = [gnp(f"p{i}", selector=f"k{i} in {{'a', 'b'}}", types=["Egress"]) for i in range(6)]
    before = build_stack([*selectors, default_deny()])
    after = build_stack(selectors)
    loss = pods_losing_isolation(before, after, SHOP, INGRESS)
    assert loss is not None
    assert loss.approximate
    assert "(labels not all compared)" in loss.text


def test_substring_selectors_fall_back_to_unknown_labels() -> None:
    """A selector matching by substring makes the comparison conservative, and it says so."""
    before = build_stack([gnp("dd", selector="app contains 'web'", types=["Ingress"])])
    after = build_stack([gnp("dd", selector="app starts with 'web'", types=["Ingress"])])
    loss = pods_losing_isolation(before, after, SHOP, INGRESS)
    assert loss is not None
    assert loss.approximate


def test_unrelated_change_is_harmless_even_with_substring_selectors() -> None:
    """A change that leaves the namespace's policies as they were is harmless without comparing pods."""
    kept = gnp("dd", selector="app contains 'web'", types=["Ingress"])
    before = build_stack([kept, default_deny("elsewhere")])
    after = build_stack([kept])
    assert pods_losing_isolation(before, after, SHOP, INGRESS) is None


def test_with_changes_removes_and_adds() -> None:
    """with_changes builds the after-stack of a DELETE without touching the before-stack."""
    dd = compile_object(default_deny())
    assert isinstance(dd, CompiledPolicy)
    before = build_stack([default_deny(), gnp("g", types=["Egress"])])
    after = before.with_changes(remove=[dd.key])
    assert pods_losing_isolation(before, after, SHOP, INGRESS) is not None
    assert before.find(dd.key) is not None
    assert after.find(dd.key) is None
    restored = after.with_changes(add=[dd])
    assert pods_losing_isolation(before, restored, SHOP, INGRESS) is None


BROAD = [
    (
        "k8s-allow-all",
        k8s_np("p", ingress=[{}]),
        [BroadRule(INGRESS, "spec.ingress[0]", Action.ALLOW, BOTH_PEERS, False)],
    ),
    ("k8s-egress-not-in-types", k8s_np("p", policyTypes=["Ingress"], egress=[{}]), []),
    ("k8s-ports", k8s_np("p", ingress=[{"ports": [{"port": 80}]}]), []),
    (
        "k8s-all-namespaces",
        k8s_np("p", ingress=[{}, {"from": [{"namespaceSelector": {}}]}]),
        [
            BroadRule(INGRESS, "spec.ingress[0]", Action.ALLOW, BOTH_PEERS, False),
            BroadRule(INGRESS, "spec.ingress[1]", Action.ALLOW, (Peer.FRESH_POD,), False),
        ],
    ),
    (
        "k8s-near-all",
        k8s_np(
            "p",
            policyTypes=["Egress"],
            egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
        ),
        [BroadRule(EGRESS, "spec.egress[0]", Action.ALLOW, (), True)],
    ),
    (
        "calico-pass-and-deny",
        gnp("p", ingress=[{"action": "Deny"}, {"action": "Pass"}]),
        [BroadRule(INGRESS, "spec.ingress[1]", Action.PASS, BOTH_PEERS, False)],
    ),
    (
        "anp-networks",
        anp("a", egress=[{"action": "Allow", "to": [{"networks": ["::/0"]}]}]),
        [BroadRule(EGRESS, "spec.egress[0]", Action.ALLOW, BOTH_PEERS, False)],
    ),
]


@pytest.mark.parametrize(("obj", "expected"), [c[1:] for c in BROAD], ids=[c[0] for c in BROAD])
def test_broad_rules(obj: dict[str, Any], expected: list[BroadRule]) -> None:
    """Unrestricted and near-all Allow/Pass rules are listed with their field paths."""
    policy = compile_object(obj)
    assert isinstance(policy, CompiledPolicy)
    assert broad_rules(policy) == expected


def test_losses_sweep_skips_namespaces_the_change_cannot_select() -> None:
    """A sweep over namespaces reports only those where pods lose isolation."""
    dd = gnp("dd", namespaceSelector="env == 'prod'", types=["Ingress"])
    compiled_dd = compile_object(dd)
    assert isinstance(compiled_dd, CompiledPolicy)
    before = build_stack([dd])
    after = before.with_changes(remove=[compiled_dd.key])
    namespaces = [ns("a", env="prod"), ns("b", env="dev"), ns("c", env="prod")]
    found = list(losses(before, after, namespaces, (INGRESS, EGRESS), changed=[compiled_dd]))
    assert [(loss.namespace, loss.direction) for loss in found] == [("a", INGRESS), ("c", INGRESS)]


def test_derived_views_agree_with_built_ones() -> None:
    """An after-view derived from a cached before-view judges like one built from the stack."""
    dd = gnp("dd", namespaceSelector="env == 'prod'", types=["Ingress"])
    compiled_dd = compile_object(dd)
    assert isinstance(compiled_dd, CompiledPolicy)
    before = build_stack([dd, k8s_np("web", "a", podSelector={"matchLabels": {"role": "web"}})])
    after = before.with_changes(remove=[compiled_dd.key])
    namespaces = [ns("a", env="prod"), ns("b", env="dev")]
    cache = {n.name: before.for_namespace(n) for n in namespaces}
    derived = list(
        losses(
            before,
            after,
            namespaces,
            (INGRESS,),
            changed=[compiled_dd],
            views=lambda n: cache[n.name],
            remove=[compiled_dd.key],
        )
    )
    built = list(losses(before, after, namespaces, (INGRESS,), changed=[compiled_dd]))
    assert [(x.namespace, x.text) for x in derived] == [(x.namespace, x.text) for x in built]
    assert [x.namespace for x in derived] == ["a"]


def test_equivalent_namespaces_are_told_with_their_own_names() -> None:
    """A loss shared between namespaces of the same shape names each namespace's own objects."""
    dd = gnp("dd", order=100, ingress=[{"action": "Deny"}])
    compiled_dd = compile_object(dd)
    assert isinstance(compiled_dd, CompiledPolicy)
    before = build_stack([dd, k8s_np("open", "a", ingress=[{}]), k8s_np("open", "b", ingress=[{}])])
    after = before.with_changes(remove=[compiled_dd.key])
    found = list(losses(before, after, [ns("a"), ns("b")], (INGRESS,), changed=[compiled_dd]))
    assert [loss.text for loss in found] == [
        f'every pod in namespace "{n}" would lose Ingress isolation: NetworkPolicy "open" in '
        f'namespace "{n}" rule spec.ingress[0] admits every source'
        for n in ("a", "b")
    ]
