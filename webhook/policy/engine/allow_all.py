"""The rules of one policy that restrict-allow-all (SPEC 2.4) flags.

Two kinds, both with no port or protocol restriction: rules that match an unnamed peer
(unrestricted, SPEC 2.5) and rules whose address peers leave out less than 1 % of an address
family (`0.0.0.0/0` except a few ranges). Only rules of the directions the policy applies to
are read; by default only Allow and Pass rules, the ones that can reopen a default-deny.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from webhook.policy.engine.core import PEERS, Action, CompiledPolicy, Peer
from webhook.policy.model import Direction

REOPENING = frozenset({Action.ALLOW, Action.PASS})


@dataclass(frozen=True, slots=True)
class BroadRule:
    """One flagged rule: where it is, what it does, which unnamed peers it certainly matches,
    and whether its addresses leave out less than 1 % of a family (`near_all`)."""

    direction: Direction
    path: str
    action: Action
    peers: tuple[Peer, ...]
    near_all: bool

    @property
    def unrestricted(self) -> bool:
        return bool(self.peers)


def broad_rules(policy: CompiledPolicy, actions: Collection[Action] = REOPENING) -> list[BroadRule]:
    """Every unrestricted or near-all rule of policy with one of `actions`, in spec order."""
    found: list[BroadRule] = []
    for direction in (Direction.INGRESS, Direction.EGRESS):
        if direction not in policy.directions:
            continue
        for rule in policy.rules_for(direction):
            if rule.restricted or rule.action not in actions:
                continue
            peers = tuple(p for p in PEERS if rule.matches(p) is True)
            if peers or rule.near_all:
                found.append(BroadRule(direction, rule.path, rule.action, peers, rule.near_all))
    return found
