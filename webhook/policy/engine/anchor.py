"""The anchor of a pod's isolation: what makes concurrent changes safe (SPEC 2.3).

Each admission is judged against a cache that may not have seen a change admitted a moment
earlier (by another worker or replica), so two deletes of two default-denies, each judged
with the other still present, would both pass. Guardrail takes no lock across workers and
replicas; it keeps an invariant instead:

    For every pod a namespace isolates for a direction, the first of the policies that
    isolate that pod on their own (its anchor) is never deleted or made to stop isolating
    it. Every other policy that isolates it may go.

"On its own" means: in a view of the namespace holding only that policy (and its tier), the
pod is isolated. Cluster-scoped policies come first (a tenant cannot change them, so deleting
a namespace's own default-deny under a cluster-wide one is always allowed), then those that
select every pod of the namespace, then those that open nothing (default-denies before
allow policies, which come and go), then the newest by `creationTimestamp`, then flavor,
kind, namespace, name and key: every worker and replica picks the same anchor from the same
objects, each policy ranked by its own content. Why it holds:
a change may remove a pod's isolation by a policy only when its judge knows a policy ahead of
it that isolates that pod, and a judge knows only objects that exist or existed. The first
policy that ever isolated the pod has none ahead of it, so no judge, however stale, lets it
go; a replacement applied first is ahead (newer), after which the old one may be deleted.

When no single policy isolates a pod (several layers together do), there is no anchor and
the cache's view alone judges the change. A Namespace relabel or a Tier change that takes
away a policy the judge has not seen yet (created at the same instant) is not covered
either: such a change affects objects its request does not carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from webhook.policy.engine.core import Action, CompiledPolicy, Endpoint, Labels, Tier, Verdict
from webhook.policy.engine.explain import Decision
from webhook.policy.engine.impact import representatives, signature
from webhook.policy.engine.stack import NamespaceView, PolicyStack
from webhook.policy.model import Direction

MAX_LISTED = 5
_CLOSED = frozenset({Action.DENY, Action.LOG})
# Distinct sets of policies that may go at once, each costing two views, before the union of
# them all stands in for each.
MAX_GROUPS = 32
Pod = tuple[Mapping[str, str], str | None]


@dataclass(frozen=True, slots=True)
class AnchorLoss:
    """Pods of `namespace` whose anchor (in the view before a change) stops isolating them.

    `others` are the other policies that isolate the first such pod on their own (newest
    first): those may be changed instead. `every_pod` when the anchor held every pod (the
    pods could not be told apart, or all lose it), else `pods` lists their label sets.
    """

    namespace: str
    direction: Direction
    anchor: CompiledPolicy
    others: tuple[CompiledPolicy, ...]
    every_pod: bool
    pods: tuple[Mapping[str, str], ...]
    count: int
    # The first such pod's decision after the change with those others gone.
    after: Decision
    # Why the anchor comes before the others ("the newest", "cluster-scoped ones first", ...).
    reason: str = "the newest"


AnchorKey = tuple[bool, bool, bool, str, str, str, str, str, str]
# Why one policy comes before another, by the first part of their keys that differs.
_REASONS = (
    "cluster-scoped ones come first",
    "one selecting every pod comes first",
    "a default-deny comes before policies that allow traffic",
)


def anchor_order(policy: CompiledPolicy, view: NamespaceView, direction: Direction) -> AnchorKey:
    """Greater is the anchor; the same order in every worker and replica.

    Cluster-scoped first (a tenant cannot change them), then one selecting every pod of the
    namespace, then one that opens nothing (a default-deny, not an allow policy: allow
    policies come and go, and each isolates the pods it selects), then the newest.
    """
    ref = policy.ref
    return (
        not policy.home,
        id(policy) in view.preselected,
        all(r.action in _CLOSED or r.restricted for r in policy.rules_for(direction)),
        policy.created,
        ref.flavor,
        ref.kind,
        ref.namespace,
        ref.name,
        policy.key,
    )


def anchor_ranks(view: NamespaceView) -> tuple[tuple[int, ...], ...]:
    """The view's policies (by position) in anchor order per direction: equal for two
    namespaces whose policies would choose the same anchors."""
    policies = list(view.policies())
    return tuple(
        tuple(sorted(range(len(policies)), key=lambda i: anchor_order(policies[i], view, d)))
        for d in Direction
    )


class _Alone:
    """Views of one namespace holding a single policy each, built once per policy."""

    def __init__(self, view: NamespaceView) -> None:
        self.view = view
        self.tiers = _tier_of(view)
        self._views: dict[int, NamespaceView] = {}

    def isolates(self, policy: CompiledPolicy, pod: Pod, direction: Direction) -> bool:
        if direction not in policy.directions:
            return False
        alone = self._views.get(id(policy))
        if alone is None:
            stack = PolicyStack([policy], [self.tiers[id(policy)]])
            alone = stack.for_namespace(self.view.namespace)
            self._views[id(policy)] = alone
        return alone.decide(_endpoint(alone, pod), direction).verdict is Verdict.ISOLATED


def _endpoint(view: NamespaceView, pod: Pod) -> Endpoint:
    labels, account = pod
    if account is None:
        return view.endpoint(Labels.unknown())
    return view.endpoint(Labels.exactly(labels), account)


def _tier_of(view: NamespaceView) -> dict[int, Tier]:
    return {id(p): vt.tier for vt in view.tiers for ps in vt.by_direction.values() for p in ps}


def _pods(before: NamespaceView, after: NamespaceView) -> Sequence[Pod]:
    reps = representatives(before, after)
    if reps is None:
        # Too many label combinations to compare: every pod at once, labels unknown, which
        # still finds the anchor of a default-deny that selects every pod.
        return [({}, None)]
    return reps


def anchor_loss(
    before: NamespaceView, after: NamespaceView, direction: Direction
) -> AnchorLoss | None:
    """Pods isolated before that would be left open if, besides this change, every policy
    that may go at the same instant went: every one isolating them on its own but their
    anchor. (The change itself was judged against the cache already.)

    That refuses deleting or weakening an anchor while others isolate the same pods, and a
    change elsewhere (a Pass, an Allow in a tier above, a relabel) that is harmless only
    because of policies that are not the anchor. Deleting those is always allowed.
    """
    if signature(before) == signature(after):
        return None  # the same policies and tiers judge the same namespace: nothing changes
    candidates = [p for p in before.policies() if direction in p.directions]
    if len(candidates) < 2:
        return None  # no second policy that could go at the same instant
    ordered = sorted(candidates, key=lambda p: anchor_order(p, before, direction), reverse=True)
    pods = _pods(before, after)
    groups = _groups(before, ordered, pods, direction)
    if not groups:
        return None
    changed = _changed_keys(before, after)
    losing: list[tuple[Pod, CompiledPolicy, frozenset[str], Decision]] = []
    if len(groups) > MAX_GROUPS:
        # Too many different sets to build views for: drop the union, more than may go at
        # once for any one pod, which errs towards refusing.
        union = frozenset().union(*groups)
        groups = {union: [pair for pairs in groups.values() for pair in pairs]}
    for dropped, pairs in groups.items():
        was_min = _without(before, dropped)
        now_min = _without(after, dropped - changed)
        for pod, anchor in pairs:
            if was_min.decide(_endpoint(was_min, pod), direction).verdict is not Verdict.ISOLATED:
                continue  # not isolated by the anchor alone either: nothing to keep
            decision = now_min.decide(_endpoint(now_min, pod), direction)
            if decision.verdict is not Verdict.ISOLATED:
                losing.append((pod, anchor, dropped, decision))
    if not losing:
        return None
    (_, anchor, dropped, decision) = losing[0]
    others = tuple(p for p in ordered if p.key in dropped)
    first_key = anchor_order(anchor, before, direction)
    second_key = anchor_order(others[0], before, direction) if others else first_key
    differs = next(
        (i for i, (a, b) in enumerate(zip(first_key, second_key, strict=True)) if a != b), 3
    )
    reason = (
        _REASONS[differs]
        if differs < len(_REASONS)
        else "the newest"
        if differs == len(_REASONS)
        else "none is newer: the last by kind and name"
    )
    shown: list[Mapping[str, str]] = []
    for (labels, _), *_ in losing:
        if labels not in shown:
            shown.append(labels)
    return AnchorLoss(
        before.namespace.name,
        direction,
        anchor,
        others,
        len(losing) == len(pods),
        tuple(shown[:MAX_LISTED]),
        len(shown),
        decision,
        reason,
    )


def _groups(
    before: NamespaceView,
    ordered: Sequence[CompiledPolicy],
    pods: Sequence[Pod],
    direction: Direction,
) -> dict[frozenset[str], list[tuple[Pod, CompiledPolicy]]]:
    """Isolated pods with two or more policies isolating them on their own, grouped by the
    keys of those that are not their anchor (the ones that may go at the same instant)."""
    was = _Alone(before)
    groups: dict[frozenset[str], list[tuple[Pod, CompiledPolicy]]] = {}
    for pod in pods:
        endpoint = _endpoint(before, pod)
        isolating = [
            p
            for p in ordered
            if p.selects(endpoint) is not False and was.isolates(p, pod, direction)
        ]
        if len(isolating) < 2:
            continue  # the judgement against the cache is all there is
        if before.decide(endpoint, direction).verdict is not Verdict.ISOLATED:
            continue
        groups.setdefault(frozenset(p.key for p in isolating[1:]), []).append((pod, isolating[0]))
    return groups


def _changed_keys(before: NamespaceView, after: NamespaceView) -> frozenset[str]:
    """Keys of the policies the change adds or alters (kept in the 'after' of the worst case:
    the change under review is what is being judged)."""
    was = {p.key: p for p in before.policies()}
    return frozenset(
        p.key
        for p in after.policies()
        if (old := was.get(p.key)) is None or (old is not p and old.fingerprint != p.fingerprint)
    )


def _without(view: NamespaceView, keys: frozenset[str]) -> NamespaceView:
    if not keys:
        return view
    tiers = _tier_of(view)
    kept = [p for p in view.policies() if p.key not in keys]
    stack = PolicyStack(kept, {tiers[id(p)].name: tiers[id(p)] for p in view.policies()}.values())
    return stack.for_namespace(view.namespace)
