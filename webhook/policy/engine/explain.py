"""What decided a verdict, as structured steps and as one short English sentence.

A `Step` is one thing the walk met that fixes an outcome: a rule, a tier's default action, or
the end of the walk with nothing decided. `Doubt` names why a step is not certain (a policy
whose selection, or a rule whose match, depends on what is not known). Sentences are short
enough for an admission message, e.g. `GlobalNetworkPolicy "default-deny" (tier "default")
denies all Ingress` or `tier "platform" passes what it does not decide (defaultAction Pass)
and no policy in a later tier selects it`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from webhook.policy.engine.core import (
    Action,
    CompiledPolicy,
    Layer,
    Peer,
    Verdict,
)
from webhook.policy.model import Direction


class StepKind(StrEnum):
    RULE = "rule"
    TIER_DEFAULT = "tier-default"
    NOTHING = "nothing-decided"


@dataclass(frozen=True, slots=True)
class Doubt:
    """Why a step is uncertain: `policy`'s selection (path "") or its rule at `path`."""

    policy: CompiledPolicy | None
    path: str = ""
    tier: str = ""

    def phrase(self, peer_text: str) -> str:
        if self.policy is None:
            return f'tier "{self.tier}" is defined by no Tier object'
        if self.path:
            return f"{self.policy.describe()} rule {self.path} may or may not match {peer_text}"
        return f"{self.policy.describe()} may or may not select it"


@dataclass(frozen=True, slots=True)
class Step:
    """One step that fixes an outcome for one unnamed peer.

    RULE: `policy`'s rule `path` with `action`. TIER_DEFAULT: tier `tier`'s default `action`
    applied (`policy` is a policy that made the tier apply). NOTHING: no layer decided;
    `after` is the pass that led there (None: no policy ever selected the endpoint).
    """

    kind: StepKind
    action: Action
    tier: str = ""
    layer: Layer | None = None
    policy: CompiledPolicy | None = None
    path: str = ""
    doubt: Doubt | None = None
    after: Step | None = None

    @property
    def certain(self) -> bool:
        return self.doubt is None

    def same_as(self, other: Step) -> bool:
        return (
            self.kind is other.kind
            and self.action is other.action
            and self.tier == other.tier
            and self.policy is other.policy
            and self.path == other.path
            and (
                self.after is other.after
                or (
                    self.after is not None
                    and other.after is not None
                    and self.after.same_as(other.after)
                )
            )
        )


@dataclass(frozen=True, slots=True)
class PeerResult:
    """The verdict for one unnamed peer, with the step behind each possible outcome."""

    peer: Peer
    verdict: Verdict
    isolated_by: Step | None
    opened_by: Step | None

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(s for s in (self.isolated_by, self.opened_by) if s is not None)


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one endpoint and direction: isolated only if both peers are."""

    direction: Direction
    verdict: Verdict
    outside: PeerResult
    fresh_pod: PeerResult
    text: str

    @property
    def isolated(self) -> bool:
        return self.verdict is Verdict.ISOLATED

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.outside.steps + tuple(
            s for s in self.fresh_pod.steps if not any(s.same_as(t) for t in self.outside.steps)
        )


PEER_TEXT = {
    Peer.OUTSIDE: "addresses outside the cluster",
    Peer.FRESH_POD: "pods of other namespaces",
}
EVERY = {Direction.INGRESS: "every source", Direction.EGRESS: "every destination"}


def combine(outside: Verdict, fresh: Verdict) -> Verdict:
    if outside is Verdict.ISOLATED and fresh is Verdict.ISOLATED:
        return Verdict.ISOLATED
    if Verdict.OPEN in (outside, fresh):
        return Verdict.OPEN
    return Verdict.UNKNOWN


def _who(step: Step) -> str:
    """The subject of a sentence about a step: the policy and rule, or the tier."""
    if step.policy is None:
        return f'tier "{step.tier}"'
    if step.kind is StepKind.RULE:
        return f"{step.policy.describe()} rule {step.path}"
    return step.policy.describe()


def phrase(step: Step, direction: Direction, peers: str) -> str:
    """What a step did to `peers` (a peer phrase, or "every source")."""
    if step.kind is StepKind.RULE:
        verb = {Action.ALLOW: "admits", Action.DENY: "denies"}.get(step.action, "passes on")
        return f"{_who(step)} {verb} {peers}"
    if step.kind is StepKind.TIER_DEFAULT:
        policy = step.policy
        if policy is not None and not policy.rules_for(direction):
            return f"{policy.describe()} denies all {direction}"
        if policy is not None:
            return f"{policy.describe()} denies all {direction} its rules do not allow"
        return f'tier "{step.tier}" denies all {direction}'
    return nothing_phrase(step)


def nothing_phrase(step: Step) -> str:
    after = step.after
    if after is None:
        return "no policy selects it"
    if after.kind is StepKind.RULE:
        return f"{_who(after)} passes it on and no policy in a later tier selects it"
    return (
        f'tier "{after.tier}" passes what it does not decide (defaultAction Pass) '
        "and no policy in a later tier selects it"
    )


def render(direction: Direction, outside: PeerResult, fresh: PeerResult) -> str:  # noqa: PLR0911 - one sentence per combination of the two peers' outcomes
    """One sentence saying which layer, object and rule decided."""
    results = (outside, fresh)
    verdict = combine(outside.verdict, fresh.verdict)
    every = EVERY[direction]
    if verdict is Verdict.ISOLATED:
        a, b = outside.isolated_by, fresh.isolated_by
        if a is None or b is None:  # never: an isolated peer always has its step
            return "isolated"
        if a.same_as(b):
            return phrase(a, direction, every)
        return (
            f"{phrase(a, direction, PEER_TEXT[Peer.OUTSIDE])} and "
            f"{phrase(b, direction, PEER_TEXT[Peer.FRESH_POD])}"
        )
    if verdict is Verdict.OPEN:
        opened = [r for r in results if r.verdict is Verdict.OPEN]
        if len(opened) == 2:
            a, b = outside.opened_by, fresh.opened_by
            if a is None or b is None:  # never: an open peer always has its step
                return "open"
            if a.same_as(b):
                return phrase(a, direction, every)
            return phrase(a, direction, PEER_TEXT[Peer.OUTSIDE])
        open_result = opened[0]
        other = fresh if open_result is outside else outside
        step = open_result.opened_by
        if step is None:  # never, as above
            return "open"
        if other.verdict is Verdict.ISOLATED and other.isolated_by is not None:
            deny = other.isolated_by
            denied = PEER_TEXT[other.peer]
            if step.kind is StepKind.NOTHING:
                who = deny.policy.describe() if deny.policy is not None else _who(deny)
                return f"{who} denies {denied} but not {PEER_TEXT[open_result.peer]}"
            return (
                f"{phrase(deny, direction, denied)} but "
                f"{phrase(step, direction, PEER_TEXT[open_result.peer])}"
            )
        return phrase(step, direction, PEER_TEXT[open_result.peer])
    unknown = next(r for r in results if r.verdict is Verdict.UNKNOWN)
    doubts = [s.doubt for s in unknown.steps if s.doubt is not None]
    peer_text = PEER_TEXT[unknown.peer]
    if doubts:
        return f"not certain: {doubts[0].phrase(peer_text)}"
    return f"not certain for {peer_text}"
