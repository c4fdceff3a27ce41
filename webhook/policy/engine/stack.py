"""The stack of every compiled policy and tier, per-namespace views, and the walk (SPEC 2.6).

`PolicyStack` is built once from compiled policies and tiers. `stack.for_namespace(ns)`
returns a `NamespaceView` holding only the policies that can select pods of that namespace
(namespace-level selection not certainly False), grouped by tier in walk order and by
direction; the caller caches views per namespace, so a decision's cost depends on the
policies that can apply there, never on how many namespaces exist.

The walk, per endpoint, direction and unnamed peer: tiers in ascending order (`kube-admin`
with the Admin CNPs/ANPs, user tiers, `default` with the Kubernetes NetworkPolicies,
`kube-baseline` with the Baseline CNPs/BANP); a tier where no policy selects the endpoint for
the direction is skipped; otherwise its policies' unrestricted rules are read in policy order
then rule order: Allow decides open, Deny isolated, Pass ends the tier; when no rule decides,
the tier's default action applies (Deny: isolated; Pass: go on). Nothing decided: open.

Three-valued and sound: a selection or match that is not known makes its rule a "maybe": its
outcome joins the set of possible outcomes and the walk goes on (a maybe Pass also lets the
walk reach the next tier; a tier that maybe applies may also be skipped). The first certain
decision closes the set. The verdict is the single possible outcome, else UNKNOWN, so the
engine says ISOLATED only when every completion of what is not known is isolated.

Cost: a view shares its tiers with every view that holds the same policies (interned per
stack), skips tiers that pass whatever they select for the peer ("inert": default Pass, no
rule that could Allow or Deny it) without evaluating a selection, and looks policies up by
a guard label (`app == 'x'`, `role in {...}`) so that only candidates are evaluated.
Selections are computed once per endpoint and shared by both peers and directions.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from webhook.policy.engine.core import (
    PEERS,
    Action,
    CompiledPolicy,
    Context,
    Endpoint,
    Labels,
    Peer,
    Special,
    Tier,
    Tri,
    Verdict,
    and3,
    namespace_labels,
)
from webhook.policy.engine.explain import (
    Decision,
    Doubt,
    PeerResult,
    Step,
    StepKind,
    combine,
    render,
)
from webhook.policy.engine.tiers import tier_named
from webhook.policy.model import Direction, Namespace

_MAX_CHAIN = 8
# Label sets whose decisions a view keeps: a namespace runs a handful of workloads, and each
# entry is about 1.7 KiB (two directions' decisions and their explanation) in every worker
# that judged the namespace, against the view's own 13 KiB with 1,000 GlobalNetworkPolicies.
MAX_DECIDED = 4
# Label keys a decision's key always keeps, read or not: Calico's own (its selectors may read
# them through the endpoint's labels without naming them in a policy's literals).
_KEPT = ("pcns.", "pcsa.", "projectcalico.org/")


def _policy_sort_key(policy: CompiledPolicy) -> tuple[bool, float, str, str]:
    # Calico: lower order first, unset order last, ties by name.
    return (policy.order is None, policy.order or 0.0, policy.ref.name, policy.key)


@dataclass(frozen=True, slots=True)
class ViewTier:
    """One tier of a view: the policies that may select the namespace's pods, per direction."""

    tier: Tier
    by_direction: Mapping[Direction, tuple[CompiledPolicy, ...]]
    # (direction, peer) for which the tier passes whatever it selects: default Pass and no
    # rule that could Allow or Deny the peer. The walk skips those without evaluating a
    # selection, which keeps tiers of narrowly scoped rules off the decision's cost.
    inert: frozenset[tuple[Direction, Peer]] = frozenset()

    @staticmethod
    def build(tier: Tier, by_direction: Mapping[Direction, tuple[CompiledPolicy, ...]]) -> ViewTier:
        inert = set()
        if tier.default_action is Action.PASS:
            for direction, policies in by_direction.items():
                for peer in PEERS:
                    if not any(_may_decide(p, direction, peer) for p in policies):
                        inert.add((direction, peer))
        return ViewTier(tier, by_direction, frozenset(inert))


Position = tuple[int, int]  # (tier position in the view, policy position in the tier)


@dataclass(frozen=True, slots=True)
class _GuardIndex:
    """A view's policies of one direction by guard label, across all tiers.

    One lookup per guard key (often just `app` or `role`) finds every candidate in every
    tier, so tiers of policies that cannot select the endpoint cost nothing to pass over.
    """

    guarded_tiers: frozenset[int]
    unguarded: Mapping[int, tuple[int, ...]]
    keyed: tuple[tuple[str, str, Mapping[str, tuple[Position, ...]], tuple[Position, ...]], ...]

    @staticmethod
    def build(tiers: Sequence[ViewTier], direction: Direction) -> _GuardIndex:
        guarded: set[int] = set()
        unguarded: dict[int, list[int]] = {}
        by_slot: dict[tuple[str, str], dict[str, list[Position]]] = {}
        every: dict[tuple[str, str], list[Position]] = {}
        for t, view_tier in enumerate(tiers):
            for i, policy in enumerate(view_tier.by_direction.get(direction, ())):
                guard = policy.guard
                if guard is None:
                    unguarded.setdefault(t, []).append(i)
                    continue
                guarded.add(t)
                slot = (guard.on, guard.key)
                every.setdefault(slot, []).append((t, i))
                for value in guard.values:
                    by_slot.setdefault(slot, {}).setdefault(value, []).append((t, i))
        return _GuardIndex(
            frozenset(guarded),
            {t: tuple(ps) for t, ps in unguarded.items()},
            tuple(
                (
                    on,
                    key,
                    {v: tuple(ps) for v, ps in by_slot.get((on, key), {}).items()},
                    tuple(positions),
                )
                for (on, key), positions in every.items()
            ),
        )

    def picked(self, ctx: Context) -> Mapping[int, set[int]]:
        """Guarded candidates per tier position for this endpoint."""
        found: dict[int, set[int]] = {}
        for on, key, by_value, every in self.keyed:
            value = (ctx.calico_endpoint if on == "calico" else ctx.pod_view).get(key)
            if value is Special.UNKNOWN:
                positions: tuple[Position, ...] = every
            elif isinstance(value, str):
                positions = by_value.get(value, ())
            else:
                continue
            for t, i in positions:
                found.setdefault(t, set()).add(i)
        return found


def _candidates(
    view_tier: ViewTier,
    position: int,
    index: _GuardIndex,
    picked: Mapping[int, set[int]],
    direction: Direction,
) -> Sequence[CompiledPolicy]:
    """The tier's policies no guard rules out, in policy order."""
    policies = view_tier.by_direction[direction]
    if position not in index.guarded_tiers:
        return policies
    chosen = set(index.unguarded.get(position, ())) | picked.get(position, set())
    if len(chosen) == len(policies):
        return policies
    return [policies[i] for i in sorted(chosen)]


def _may_decide(policy: CompiledPolicy, direction: Direction, peer: Peer) -> bool:
    return any(
        not rule.restricted
        and rule.action in (Action.ALLOW, Action.DENY)
        and rule.matches(peer) is not False
        for rule in policy.rules_for(direction)
    )


class PolicyStack:
    """Every compiled policy and tier of a cluster (or a manifest set), immutable.

    Policies are keyed by `CompiledPolicy.key`: adding a policy whose key is already there
    replaces it. Namespaced policies are indexed by their namespace, cluster-scoped ones kept
    apart, so `for_namespace` reads only what can apply there.
    """

    __slots__ = ("_by_home", "_globals", "_interned", "_tiers")

    def __init__(
        self,
        policies: Iterable[CompiledPolicy] = (),
        tiers: Iterable[Tier] = (),
    ) -> None:
        self._tiers: dict[str, Tier] = {t.name: t for t in tiers}
        self._globals: dict[str, CompiledPolicy] = {}
        self._interned: dict[object, object] = {}
        by_home: dict[str, dict[str, CompiledPolicy]] = {}
        for policy in policies:
            self._place(policy, by_home)
        self._by_home: Mapping[str, Mapping[str, CompiledPolicy]] = by_home

    def _place(self, policy: CompiledPolicy, by_home: dict[str, dict[str, CompiledPolicy]]) -> None:
        if policy.home:
            by_home.setdefault(policy.home, {})[policy.key] = policy
        else:
            self._globals[policy.key] = policy

    # -- reading ---------------------------------------------------------------------------
    def tiers(self) -> Mapping[str, Tier]:
        return dict(self._tiers)

    def tier(self, name: str) -> Tier:
        return tier_named(name, self._tiers)

    def policies(self) -> Iterator[CompiledPolicy]:
        yield from self._globals.values()
        for group in self._by_home.values():
            yield from group.values()

    def policies_in(self, namespace: str) -> Sequence[CompiledPolicy]:
        """Namespaced policies stored in `namespace` plus every cluster-scoped policy."""
        return [*self._by_home.get(namespace, {}).values(), *self._globals.values()]

    def find(self, key: str) -> CompiledPolicy | None:
        if key in self._globals:
            return self._globals[key]
        for group in self._by_home.values():
            if key in group:
                return group[key]
        return None

    # -- changing (a new stack; this one is untouched) -------------------------------------------
    def with_changes(
        self,
        *,
        remove: Iterable[str] = (),
        add: Iterable[CompiledPolicy] = (),
        tiers: Iterable[Tier] = (),
        remove_tiers: Iterable[str] = (),
        homes: Iterable[str] = (),
    ) -> PolicyStack:
        """A stack with policies removed (by key) and added, and tiers replaced or removed.

        Only the namespaces touched are copied. `homes` names the namespaces where removed
        namespaced policies live (found by search when not given).
        """
        removed = set(remove)
        added = list(add)
        new_tiers = list(tiers)
        gone_tiers = list(remove_tiers)
        new = PolicyStack.__new__(PolicyStack)
        # What does not change is shared, not copied: the live state derives a stack per
        # namespace (its own policies added), and a copy of 1,000 global policies and 50 tiers
        # in each would be 15 KiB per namespace. Neither mapping is written once built.
        if new_tiers or gone_tiers:
            tier_map = dict(self._tiers)
            for name in gone_tiers:
                tier_map.pop(name, None)
            tier_map.update({t.name: t for t in new_tiers})
            new._tiers = tier_map
        else:
            new._tiers = self._tiers
        new._interned = {}
        if removed & self._globals.keys() or any(not p.home for p in added):
            new._globals = {k: v for k, v in self._globals.items() if k not in removed}
        else:
            new._globals = self._globals
        touched = set(homes) | {p.home for p in added if p.home}
        missing = removed - self._globals.keys()
        if missing and not homes:
            touched |= {h for h, group in self._by_home.items() if missing & group.keys()}
        overrides: dict[str, dict[str, CompiledPolicy]] = {
            home: {k: v for k, v in self._by_home.get(home, {}).items() if k not in removed}
            for home in touched
        }
        for policy in added:
            new._place(policy, overrides)
        base = self._by_home
        if isinstance(base, ChainMap) and len(base.maps) >= _MAX_CHAIN:
            base = dict(base)
        new._by_home = ChainMap(overrides, base)  # type: ignore[arg-type]  # ChainMap of read-only inner mappings
        return new

    # -- views -----------------------------------------------------------------------------
    def for_namespace(self, namespace: Namespace) -> NamespaceView:
        """The policies that can select pods of `namespace`, in walk order (cache it)."""
        probe = Context(Endpoint.any_pod(namespace))
        levels = [(p, p.selection(probe)) for p in self.policies_in(namespace.name)]
        return self._assemble(namespace, levels)

    def derive_view(
        self,
        view: NamespaceView,
        remove: Collection[str] = (),
        add: Iterable[CompiledPolicy] = (),
    ) -> NamespaceView:
        """`view` (of a stack this one was changed from) with policies removed by key and
        added, as this stack would build it: cost proportional to the view, not the stack.

        Meant for judging one change in many namespaces: `after.derive_view(cached_view,
        remove=[old.key], add=[new])`. Tiers are read from this stack, so tier changes
        apply too.
        """
        namespace = view.namespace
        probe = Context(Endpoint.any_pod(namespace))
        added = [p for p in add if not p.home or p.home == namespace.name]
        gone = set(remove) | {p.key for p in added}
        levels: list[tuple[CompiledPolicy, Tri]] = [
            (p, True if id(p) in view.preselected else p.selection(probe))
            for p in view.policies()
            if p.key not in gone
        ]
        levels.extend((p, p.selection(probe)) for p in added)
        return self._assemble(namespace, levels)

    def _assemble(
        self, namespace: Namespace, levels: Iterable[tuple[CompiledPolicy, Tri]]
    ) -> NamespaceView:
        grouped: dict[str, dict[Direction, list[CompiledPolicy]]] = {}
        preselected: set[int] = set()
        for policy, level in levels:
            if level is False or not policy.directions:
                continue
            tier = self.tier(policy.tier)
            if level is True and not tier.assumed:
                # True with every pod label unknown: true for every pod of the namespace.
                preselected.add(id(policy))
            by_direction = grouped.setdefault(policy.tier, {})
            for direction in policy.directions:
                by_direction.setdefault(direction, []).append(policy)
        tiers = sorted((self.tier(name) for name in grouped), key=Tier.sort_key)
        view_tiers = tuple(self._view_tier(tier, grouped[tier.name]) for tier in tiers)
        shared = self._intern(("preselected", frozenset(preselected)))
        index_key = ("index", tuple(id(vt) for vt in view_tiers))
        indexes = self._interned.get(index_key)
        if not isinstance(indexes, dict):
            indexes = {d: _GuardIndex.build(view_tiers, d) for d in Direction}
            self._interned[index_key] = indexes
        return NamespaceView(namespace, view_tiers, shared, indexes)

    def _view_tier(self, tier: Tier, grouped: Mapping[Direction, list[CompiledPolicy]]) -> ViewTier:
        """One tier of a view, shared by every view with the same policies in it.

        Namespaces whose labels select the same global policies share their tiers, so caching
        100,000 views costs little more than the namespaced policies they hold. Keys hold
        ids of policies the shared tier itself keeps alive, so an id is never reused.
        """
        by_direction = {d: tuple(sorted(ps, key=_policy_sort_key)) for d, ps in grouped.items()}
        key = (
            "tier",
            tier,
            tuple(sorted((d.value, tuple(id(p) for p in ps)) for d, ps in by_direction.items())),
        )
        found = self._interned.get(key)
        if isinstance(found, ViewTier):
            return found
        built = ViewTier.build(tier, by_direction)
        self._interned[key] = built
        return built

    def _intern(self, key: tuple[str, frozenset[int]]) -> frozenset[int]:
        found = self._interned.setdefault(key, key[1])
        return found if isinstance(found, frozenset) else key[1]

    def decide(self, endpoint: Endpoint, direction: Direction) -> Decision:
        """One decision without a cached view (tests, one-off judgements)."""
        namespace = Namespace(endpoint.namespace, dict(endpoint.namespace_labels.known))
        return self.for_namespace(namespace).decide(endpoint, direction)


class NamespaceView:
    """The stack as seen from one namespace: what a decision walks."""

    __slots__ = ("_decided", "_indexes", "_labels", "_preselected", "_read", "namespace", "tiers")

    def __init__(
        self,
        namespace: Namespace,
        tiers: tuple[ViewTier, ...],
        preselected: frozenset[int],
        indexes: Mapping[Direction, _GuardIndex],
    ) -> None:
        self.namespace = namespace
        self.tiers = tiers
        self._indexes = indexes
        self._preselected = preselected
        self._labels = namespace_labels(namespace)
        # Decisions by pod labels, service account and directions, for endpoints of this
        # namespace: a ReplicaSet's pods carry the same labels, so all but its first are a
        # lookup. A view never changes (a change builds a new one), so neither do they.
        self._decided: dict[object, tuple[Decision, ...]] | None = None
        self._read: frozenset[str] | None = None

    def _read_keys(self) -> frozenset[str]:
        """The pod label keys some policy of the view reads: its selection's and its rules'
        endpoint side (`pod_literals`, what change impact tells pods apart by) and its guard."""
        read = self._read
        if read is None:
            keys: set[str] = set()
            for policy in self.policies():
                keys.update(policy.pod_literals)
                if policy.guard is not None:
                    keys.add(policy.guard.key)
            read = self._read = frozenset(keys)
        return read

    def _decided_key(self, endpoint: Endpoint, directions: Sequence[Direction]) -> object:
        """What a decision for an endpoint of this namespace depends on: the labels no
        policy reads left out (a pod-template-hash, a StatefulSet's pod name), so every
        replica of a workload, and every rollout of it, shares one decision."""
        labels = endpoint.pod_labels
        if labels.complete:
            read = self._read_keys()
            known = frozenset(
                (k, v) for k, v in labels.known.items() if k in read or k.startswith(_KEPT)
            )
        else:
            known = frozenset(labels.known.items())
        return (known, labels.complete, endpoint.service_account, tuple(directions))

    @property
    def preselected(self) -> frozenset[int]:
        """Ids of the policies that select every pod of the namespace."""
        return self._preselected

    def policies(self) -> Iterator[CompiledPolicy]:
        seen: set[int] = set()
        for view_tier in self.tiers:
            for policies in view_tier.by_direction.values():
                for policy in policies:
                    if id(policy) not in seen:
                        seen.add(id(policy))
                        yield policy

    def endpoint(
        self, pod_labels: Mapping[str, str] | Labels, service_account: str | None = None
    ) -> Endpoint:
        labels = pod_labels if isinstance(pod_labels, Labels) else Labels.exactly(pod_labels)
        return Endpoint(self.namespace.name, self._labels, labels, service_account)

    def decide(self, endpoint: Endpoint, direction: Direction) -> Decision:
        """The verdict for one endpoint of this namespace and one direction."""
        return self.decide_all(endpoint, (direction,))[0]

    def decide_all(
        self, endpoint: Endpoint, directions: Sequence[Direction]
    ) -> tuple[Decision, ...]:
        """One decision per direction, sharing the endpoint's label views and selections."""
        ctx = Context(endpoint)
        # Namespace-level answers hold only for endpoints of this very namespace.
        same = endpoint.namespace == self.namespace.name and (
            endpoint.namespace_labels == self._labels
        )
        key: object = None
        if same:
            ctx.preselected = self._preselected
            key = self._decided_key(endpoint, directions)
            decided = self._decided
            if decided is None:
                decided = self._decided = {}
            else:
                found = decided.get(key)
                if found is not None:
                    return found
        decisions = []
        for direction in directions:
            index = self._indexes[direction]
            picked = index.picked(ctx)
            outside = _walk(self.tiers, index, picked, ctx, direction, Peer.OUTSIDE)
            fresh = _walk(self.tiers, index, picked, ctx, direction, Peer.FRESH_POD)
            verdict = combine(outside.verdict, fresh.verdict)
            decisions.append(
                Decision(direction, verdict, outside, fresh, render(direction, outside, fresh))
            )
        result = tuple(decisions)
        if key is not None and self._decided is not None:
            if len(self._decided) >= MAX_DECIDED:
                self._decided.clear()  # a namespace of many label sets: the recent ones
            self._decided[key] = result
        return result

    def decide_any_pod(self, direction: Direction) -> Decision:
        """The namespace-wide judgement: every label set a pod could carry."""
        return self.decide(self.endpoint(Labels.unknown()), direction)


def _selection(policy: CompiledPolicy, ctx: Context, assumed: bool) -> Tri:
    cache = ctx.selection_cache
    key = id(policy)
    if key in ctx.preselected:
        return True
    if key in cache:
        return cache[key]
    result = policy.selection(ctx)
    if assumed and result is True:
        result = None
    cache[key] = result
    return result


@dataclass(slots=True)
class _Passage:
    """How the walk leaves a tier: whether the next tier is reached, how surely, by what."""

    reaching: bool = False
    doubt: Doubt | None = None
    step: Step | None = None

    def offer(self, doubt: Doubt | None, step: Step | None) -> None:
        # Keep the first way through, unless a certain one comes after an uncertain one.
        if not self.reaching or (self.doubt is not None and doubt is None):
            self.reaching, self.doubt, self.step = True, doubt, step


def _walk(
    tiers: Sequence[ViewTier],
    index: _GuardIndex,
    picked: Mapping[int, set[int]],
    ctx: Context,
    direction: Direction,
    peer: Peer,
) -> PeerResult:
    outcomes: dict[Verdict, Step] = {}
    reach_doubt: Doubt | None = None  # why reaching the current tier is not certain
    last_pass: Step | None = None
    skipped: list[ViewTier] = []  # inert tiers passed over since last_pass
    reaching = True
    for position, view_tier in enumerate(tiers):
        if direction not in view_tier.by_direction:
            continue
        if (direction, peer) in view_tier.inert:
            skipped.append(view_tier)
            continue
        policies = _candidates(view_tier, position, index, picked, direction)
        if not policies:
            continue
        passage = _walk_tier(view_tier.tier, policies, ctx, direction, peer, outcomes, reach_doubt)
        if passage is None:
            continue  # no policy of the tier selects the endpoint for the direction
        skipped.clear()
        reaching = passage.reaching
        reach_doubt = reach_doubt or passage.doubt
        last_pass = passage.step or last_pass
        if not reaching or len(outcomes) == 2:
            break
    if reaching:
        last_pass = _last_inert_pass(skipped, ctx, direction, peer) or last_pass
        outcomes.setdefault(
            Verdict.OPEN,
            Step(StepKind.NOTHING, Action.ALLOW, doubt=reach_doubt, after=last_pass),
        )
    verdict = next(iter(outcomes)) if len(outcomes) == 1 else Verdict.UNKNOWN
    return PeerResult(peer, verdict, outcomes.get(Verdict.ISOLATED), outcomes.get(Verdict.OPEN))


def _last_inert_pass(
    skipped: Sequence[ViewTier], ctx: Context, direction: Direction, peer: Peer
) -> Step | None:
    """For the explanation only: the last skipped tier that applies, and how it passed."""
    for view_tier in reversed(skipped):
        scratch: dict[Verdict, Step] = {}
        policies = view_tier.by_direction[direction]
        passage = _walk_tier(view_tier.tier, policies, ctx, direction, peer, scratch, None)
        if passage is not None and passage.step is not None:
            return passage.step
    return None


def _walk_tier(  # noqa: PLR0912 - the tier walk's cases (certain, maybe, Pass, default action) in Calico's order
    tier: Tier,
    policies: Sequence[CompiledPolicy],
    ctx: Context,
    direction: Direction,
    peer: Peer,
    outcomes: dict[Verdict, Step],
    reach_doubt: Doubt | None,
) -> _Passage | None:
    """Walk one tier, adding its possible outcomes; None when the tier does not apply."""
    selections = [_selection(p, ctx, tier.assumed) for p in policies]
    if True in selections:
        applies: Tri = True
    elif None in selections:
        applies = None
    else:
        return None
    passage = _Passage()
    if applies is None:
        # A tier that only maybe applies may also be skipped: the next tier is reachable.
        first = policies[selections.index(None)]
        passage.offer(Doubt(None, tier=tier.name) if tier.assumed else Doubt(first), None)
    alive_doubt = reach_doubt
    for policy, selected in zip(policies, selections, strict=True):
        if selected is False:
            continue
        for rule in policy.rules_for(direction):
            if rule.restricted or rule.action is Action.LOG:
                continue
            match = and3(rule.matches_at(peer, ctx), selected)
            if match is False:
                continue
            own: Doubt | None = None
            if match is None:
                own = Doubt(policy) if selected is None else Doubt(policy, rule.path)
            doubt = alive_doubt or own
            step = Step(StepKind.RULE, rule.action, tier.name, tier.layer, policy, rule.path, doubt)
            if rule.action is Action.PASS:
                passage.offer(doubt, step)
            else:
                verdict = Verdict.OPEN if rule.action is Action.ALLOW else Verdict.ISOLATED
                outcomes.setdefault(verdict, step)
            if match is True:
                return passage
            alive_doubt = alive_doubt or own
    # No rule decided for certain: the tier's default action. A Deny there holds only if the
    # tier applies; a Pass reaches the next tier whether it applies or is skipped.
    doubt = alive_doubt
    if doubt is None and applies is None and tier.default_action is Action.DENY:
        doubt = passage.doubt
    step = Step(
        StepKind.TIER_DEFAULT,
        tier.default_action,
        tier.name,
        tier.layer,
        _representative(policies, selections, direction),
        doubt=doubt,
    )
    if tier.default_action is Action.DENY:
        outcomes.setdefault(Verdict.ISOLATED, step)
    else:
        passage.offer(doubt, step)
    return passage


def _representative(
    policies: Sequence[CompiledPolicy], selections: Sequence[Tri], direction: Direction
) -> CompiledPolicy | None:
    """The policy to name when a tier's default decides: a selecting default-deny first."""
    certain = [p for p, s in zip(policies, selections, strict=True) if s is True]
    for policy in certain:
        if not policy.rules_for(direction):
            return policy
    if certain:
        return certain[0]
    maybe = [p for p, s in zip(policies, selections, strict=True) if s is None]
    return maybe[0] if maybe else None
