"""Property tests: the three-valued walk agrees with a plain two-valued walk on every completion."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.engine.builders import calico_np, cnp, gnp, k8s_np, ns, tier
from webhook.policy.engine import Action, Labels, NamespaceView, Peer, Verdict, build_stack
from webhook.policy.engine.core import Context
from webhook.policy.engine.explain import combine
from webhook.policy.model import Direction

# Soundness bugs hide in rare shapes (a maybe-rule in a tier that surely applies), so the
# soundness property runs more examples; the database is off so runs leave no files behind.
SOUNDNESS = settings(max_examples=1200, deadline=None, database=None)
PROPERTY = settings(max_examples=200, deadline=None, database=None)
KEYS = ("a", "b")
VALUES = ("x", "y")
# What an unknown key may be in a completion: absent, a named value, or one no selector names.
COMPLETIONS = (None, "x", "y", "z")
NAMESPACE = ns("shop", env="prod")

keys = st.sampled_from(KEYS)
values = st.sampled_from(VALUES)

k8s_selectors = st.one_of(
    st.just({}),
    st.builds(lambda k, v: {"matchLabels": {k: v}}, keys, values),
    st.builds(
        lambda k, op, v: {"matchExpressions": [{"key": k, "operator": op, "values": [v]}]},
        keys,
        st.sampled_from(["In", "NotIn"]),
        values,
    ),
    st.builds(
        lambda k, op: {"matchExpressions": [{"key": k, "operator": op}]},
        keys,
        st.sampled_from(["Exists", "DoesNotExist"]),
    ),
)

calico_leaves = st.one_of(
    st.just("all()"),
    st.builds(lambda k: f"has({k})", keys),
    st.builds(lambda k: f"!has({k})", keys),
    st.builds(lambda k, v: f"{k} == '{v}'", keys, values),
    st.builds(lambda k, v: f"{k} != '{v}'", keys, values),
    st.builds(lambda k: f"{k} in {{'x', 'y'}}", keys),
    st.builds(lambda k, v: f"{k} not in {{'{v}'}}", keys, values),
)
calico_selectors = st.recursive(
    calico_leaves,
    lambda inner: st.builds(
        lambda a, op, b: f"({a}) {op} ({b})", inner, st.sampled_from(["&&", "||"]), inner
    ),
    max_leaves=3,
)

k8s_rules = st.one_of(
    st.just({}),
    st.just({"ports": [{"port": 80}]}),
    st.builds(lambda s: {"PEERS": [{"podSelector": s}]}, k8s_selectors),
    st.just({"PEERS": [{"namespaceSelector": {}}]}),
    st.just({"PEERS": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
)


def _k8s_rule(rule: Mapping[str, Any], peers_key: str) -> dict[str, Any]:
    return {(peers_key if k == "PEERS" else k): v for k, v in rule.items()}


k8s_policies = st.builds(
    lambda name, sel, types, ingress, egress: k8s_np(
        name,
        podSelector=sel,
        ingress=[_k8s_rule(r, "from") for r in ingress],
        egress=[_k8s_rule(r, "to") for r in egress],
        **({"policyTypes": types} if types else {}),
    ),
    st.sampled_from(["np1", "np2", "np3"]),
    k8s_selectors,
    st.sampled_from([[], ["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    st.lists(k8s_rules, max_size=2),
    st.lists(k8s_rules, max_size=2),
)

calico_entities = st.one_of(
    st.just({}),
    st.builds(lambda s: {"selector": s}, calico_selectors),
    # With a selector beside it: a lone notSelector in a namespaced policy is unknown by design.
    st.builds(lambda s: {"selector": "all()", "notSelector": s}, calico_selectors),
    # Both families, so the endpoint side (the source of an egress rule) is certain too.
    st.just({"nets": ["0.0.0.0/0", "::/0"]}),
    st.just({"namespaceSelector": "all()"}),
)
calico_rules = st.builds(
    lambda action, source, destination, protocol: {
        "action": action,
        "source": source,
        "destination": destination,
        **({"protocol": "TCP"} if protocol else {}),
    },
    st.sampled_from(["Allow", "Deny", "Pass", "Log"]),
    calico_entities,
    # The endpoint side of an ingress rule reads the endpoint's own labels.
    st.one_of(st.just({}), st.builds(lambda s: {"selector": s}, calico_selectors)),
    st.booleans(),
)


def _calico(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    spec = {k: v for k, v in spec.items() if v is not None}
    return gnp(name, **spec) if kind == "global" else calico_np(name, **spec)


calico_policies = st.builds(
    _calico,
    st.sampled_from(["global", "namespaced"]),
    st.sampled_from(["c1", "c2", "c3"]),
    selector=calico_selectors,
    tier=st.sampled_from(["default", "t1", "t2"]),
    order=st.sampled_from([None, 10, 2000]),
    types=st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
    ingress=st.lists(calico_rules, max_size=2),
    egress=st.lists(calico_rules, max_size=2),
)

cnp_peers = st.one_of(
    st.just({"namespaces": {}}),
    st.builds(lambda s: {"pods": {"namespaceSelector": {}, "podSelector": s}}, k8s_selectors),
)
cnp_policies = st.builds(
    lambda name, tier_name, priority, sel, rules: cnp(
        name,
        tier_name,
        priority,
        subject={"pods": {"namespaceSelector": {}, "podSelector": sel}},
        ingress=[{"action": a, "from": [p]} for a, p in rules],
    ),
    st.sampled_from(["k1", "k2"]),
    st.sampled_from(["Admin", "Baseline"]),
    st.integers(0, 3),
    k8s_selectors,
    st.lists(st.tuples(st.sampled_from(["Accept", "Deny", "Pass"]), cnp_peers), max_size=2),
)

tier_objects = st.tuples(st.sampled_from(["Deny", "Pass"]), st.sampled_from(["Deny", "Pass"])).map(
    lambda actions: [tier("t1", 100, actions[0]), tier("t2", 5_000_000, actions[1])]
)

stacks = st.tuples(
    tier_objects,
    st.lists(st.one_of(k8s_policies, calico_policies, cnp_policies), min_size=2, max_size=5),
)
known_labels = st.dictionaries(keys, st.sampled_from((*VALUES, "z")), max_size=2)


def completions(known: Mapping[str, str], complete: bool) -> Iterator[dict[str, str]]:
    if complete:
        yield dict(known)
        return
    free = [k for k in KEYS if k not in known]
    for combo in itertools.product(COMPLETIONS, repeat=len(free)):
        labels = dict(known)
        labels.update({k: v for k, v in zip(free, combo, strict=True) if v is not None})
        yield labels


def reference(view: NamespaceView, labels: Mapping[str, str], direction: Direction) -> Verdict:
    """SPEC 2.6 read plainly, first match wins, for an endpoint whose labels are all known."""
    ctx = Context(view.endpoint(Labels.exactly(labels), "default"))

    def walk(peer: Peer) -> Verdict:
        for view_tier in view.tiers:
            policies = view_tier.by_direction.get(direction, ())
            selected = [p for p in policies if p.selection(ctx) is True]
            if not selected:
                continue
            decided: Action | None = None
            for policy in selected:
                for rule in policy.rules_for(direction):
                    if rule.restricted or rule.action is Action.LOG:
                        continue
                    if rule.matches_at(peer, ctx) is True:
                        decided = rule.action
                        break
                if decided is not None:
                    break
            if decided is Action.ALLOW:
                return Verdict.OPEN
            if decided is Action.DENY:
                return Verdict.ISOLATED
            if decided is None and view_tier.tier.default_action is Action.DENY:
                return Verdict.ISOLATED
        return Verdict.OPEN

    return combine(walk(Peer.OUTSIDE), walk(Peer.FRESH_POD))


@SOUNDNESS
@given(stacks, known_labels, st.booleans(), st.sampled_from(list(Direction)))
def test_three_valued_walk_is_sound(
    stack_parts: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    known: dict[str, str],
    complete: bool,
    direction: Direction,
) -> None:
    """ISOLATED (or OPEN) is only said when every completion of the unknown labels agrees."""
    tiers, policies = stack_parts
    view = build_stack([*tiers, *policies]).for_namespace(NAMESPACE)
    labels = Labels(known, complete=complete)
    verdict = view.decide(view.endpoint(labels, "default"), direction).verdict
    truths = {reference(view, c, direction) for c in completions(known, complete)}
    if verdict is not Verdict.UNKNOWN:
        assert truths == {verdict}
    if complete:
        assert verdict in truths


@PROPERTY
@given(stacks, known_labels, st.sampled_from(list(Direction)))
def test_view_walk_matches_unfiltered_stack(
    stack_parts: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    known: dict[str, str],
    direction: Direction,
) -> None:
    """Dropping policies that cannot select the namespace never changes a decision."""
    tiers, policies = stack_parts
    stack = build_stack([*tiers, *policies])
    view = stack.for_namespace(NAMESPACE)
    endpoint = view.endpoint(Labels.exactly(known), "default")
    assert view.decide(endpoint, direction).verdict is stack.decide(endpoint, direction).verdict


@PROPERTY
@given(st.one_of(k8s_policies, calico_policies, cnp_policies), known_labels)
def test_guard_rules_out_only_unselected_pods(obj: dict[str, Any], labels: dict[str, str]) -> None:
    """When a policy's guard rules a pod out, the policy certainly does not select it."""
    view = build_stack([obj]).for_namespace(NAMESPACE)
    policy = next(iter(view.policies()), None)
    if policy is None or policy.guard is None:
        return
    ctx = Context(view.endpoint(Labels.exactly(labels), "default"))
    guard = policy.guard
    value = (ctx.calico_endpoint if guard.on == "calico" else ctx.pod_view).get(guard.key)
    if not (isinstance(value, str) and value in guard.values):
        assert policy.selection(ctx) is False


@PROPERTY
@given(stacks, known_labels, st.sampled_from(list(Direction)), st.integers(0, 4))
def test_derived_view_matches_built_view(
    stack_parts: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    known: dict[str, str],
    direction: Direction,
    drop: int,
) -> None:
    """A view derived by removing a policy decides like the view built without it."""
    tiers, policies = stack_parts
    before = build_stack([*tiers, *policies])
    keys = sorted(p.key for p in before.policies())
    removed = [keys[drop % len(keys)]]
    after = before.with_changes(remove=removed)
    derived = after.derive_view(before.for_namespace(NAMESPACE), remove=removed)
    built = after.for_namespace(NAMESPACE)
    endpoint = built.endpoint(Labels(known, complete=False), "default")
    assert derived.decide(endpoint, direction).text == built.decide(endpoint, direction).text


@PROPERTY
@given(
    stacks,
    st.lists(st.tuples(known_labels, st.sampled_from(["x", "y", None])), min_size=1, max_size=6),
    st.sampled_from(list(Direction)),
)
def test_kept_decisions_are_the_decisions(
    stack_parts: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    pods: list[tuple[dict[str, str], str | None]],
    direction: Direction,
) -> None:
    """A view keeps decisions by the labels its policies read (a label `hash` none reads is
    left out of the key): each is what a view that never decided anything gives."""
    tiers, policies = stack_parts
    stack = build_stack([*tiers, *policies])
    view = stack.for_namespace(NAMESPACE)
    for known, unread in pods:
        labels = {**known, **({"hash": unread} if unread else {})}
        got = view.decide(view.endpoint(Labels.exactly(labels), "default"), direction)
        fresh = stack.for_namespace(NAMESPACE)
        want = fresh.decide(fresh.endpoint(Labels.exactly(labels), "default"), direction)
        assert got == want
