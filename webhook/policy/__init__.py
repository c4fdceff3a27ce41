"""The policies: pure functions over plain data, registered under stable ids.

`evaluate` is the one entry point shared by the webhook, the audit sweep and `check`; the
rules themselves are in rules/, one file each.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from webhook.policy.cluster import ClusterState
from webhook.policy.model import Finding, Request
from webhook.policy.rule import Rule, Settings
from webhook.policy.rules import RULES

__all__ = ["BY_ID", "RULES", "RULE_IDS", "evaluate", "rule"]

RULE_IDS: tuple[str, ...] = tuple(rule.id for rule in RULES)
BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}
assert len(BY_ID) == len(RULES), "two rules share an id"


def rule(policy_id: str) -> Rule:
    """The rule with this id (KeyError for an id no rule has)."""
    return BY_ID[policy_id]


def evaluate(
    request: Request,
    state: ClusterState,
    settings: Settings,
    enabled: Collection[str] = RULE_IDS,
) -> list[Finding]:
    """Every finding of every enabled policy for one request, in registry order."""
    findings: list[Finding] = []
    for each in RULES:
        if each.id in enabled:
            findings.extend(each.check(request, state, settings))
    return findings
