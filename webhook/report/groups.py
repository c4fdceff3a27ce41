"""Findings a reader takes in together: what to fix first, and each fix said once.

Text and HTML show groups; the formats that annotate lines (SARIF, JUnit, JSON) list every
finding. Groups come in level order (errors, then warnings, then notes), each level in input
order. Two kinds:

- a namespace's headline over its workloads, when a rule rolls its findings up (the
  namespace has no default-deny, or is not in the input): the fix once, then who needs it;
- identical findings, the same rule saying the same thing about different objects
  ("2,000 Pods in 40 namespaces are missing `team`"), from `SAME_MIN` of them on.

Anything else is a group of one. `by_namespace` groups the same findings for the HTML report:
level, then namespace, then rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from webhook.policy import RULE_IDS
from webhook.policy.model import Violation
from webhook.report.base import LEVELS, ReportInput, level, level_reason, plural
from webhook.report.summary import scope_namespace

SAME_MIN = 5


@dataclass(frozen=True, slots=True)
class Group:
    level: str
    policy: str
    members: tuple[Violation, ...]
    headline: Violation | None = None  # the namespace's roll-up, said over its members

    @property
    def title(self) -> str:
        """What the group says once: the headline, the shared finding, or the one finding."""
        first = self.members[0].finding
        if self.headline is not None:
            return self.headline.finding.message
        if len(self.members) == 1:
            return first.message
        kinds = sorted({m.finding.kind for m in self.members})
        noun = (
            plural(len(self.members), kinds[0])
            if len(kinds) == 1
            else plural(len(self.members), "object")
        )
        namespaces = {m.finding.namespace for m in self.members if m.finding.namespace}
        where = f" in {plural(len(namespaces), 'namespace')}" if namespaces else ""
        tag = f"[{first.policy}] "
        return f"{tag}{noun}{where}, the same finding; the first: {first.message.removeprefix(tag)}"


def same_key(violation: Violation) -> tuple[str, str, str]:
    """Findings alike but for the object they are about: the message with its names blanked."""
    finding = violation.finding
    text = finding.message
    for value in (finding.name, finding.namespace):
        if value:
            text = text.replace(f'"{value}"', '"…"')
    return (finding.policy, finding.kind, text)


def groups(result: ReportInput, *, same_min: int = SAME_MIN) -> list[Group]:
    by_level: dict[str, list[Violation]] = {name: [] for name in LEVELS}
    for violation in result.violations:
        by_level[level(violation)].append(violation)
    found: list[Group] = []
    for name in LEVELS:
        found.extend(_level_groups(name, by_level[name], result, same_min))
    return found


def _level_groups(
    name: str, violations: Sequence[Violation], result: ReportInput, same_min: int
) -> list[Group]:
    # Keys in first-seen order; each group is placed where its first member was.
    buckets: dict[tuple[str, ...], list[Violation]] = {}
    for violation in violations:
        finding = violation.finding
        if finding.namespace and (finding.policy, finding.namespace) in result.headlines:
            key: tuple[str, ...] = ("namespace", finding.policy, finding.namespace)
        else:
            key = ("same", *same_key(violation))
        buckets.setdefault(key, []).append(violation)
    found: list[Group] = []
    for key, members in buckets.items():
        policy = members[0].policy
        if key[0] == "namespace" and len(members) > 1:
            found.append(Group(name, policy, tuple(members), result.headlines[(key[1], key[2])]))
        elif key[0] == "same" and len(members) >= same_min:
            found.append(Group(name, policy, tuple(members)))
        else:
            found.extend(Group(name, policy, (m,)) for m in members)
    return found


@dataclass(frozen=True, slots=True)
class NamespaceBlock:
    """One namespace's findings of one level, one Group per rule: where a reader works."""

    level: str
    namespace: str  # the finding's scope namespace (summary.scope_namespace); "" cluster-scoped
    groups: tuple[Group, ...]

    @property
    def count(self) -> int:
        return sum(len(g.members) for g in self.groups)


def by_namespace(result: ReportInput) -> list[NamespaceBlock]:
    """Findings by level (errors first), then namespace (most findings first), then rule.

    A rule's findings in a namespace are one Group, under the namespace's headline when the
    rule rolled them up; findings of one rule at one level but for different reasons (an
    advisory beside an unverified one) are separate groups, so each says its reason once.
    """
    order = {policy_id: index for index, policy_id in enumerate(RULE_IDS)}
    buckets: dict[tuple[str, str], dict[tuple[str, str], list[Violation]]] = {}
    for violation in result.violations:
        key = (level(violation), scope_namespace(violation.finding))
        rules = buckets.setdefault(key, {})
        rules.setdefault((violation.policy, level_reason(violation)), []).append(violation)
    blocks: list[NamespaceBlock] = []
    for (name, namespace), rules in buckets.items():
        found = []
        for (policy_id, _), members in sorted(
            rules.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0])
        ):
            headline = result.headlines.get((policy_id, namespace))
            if headline is not None and level(headline) != name:
                headline = None
            found.append(Group(name, policy_id, tuple(members), headline))
        blocks.append(NamespaceBlock(name, namespace, tuple(found)))
    rank = {name: index for index, name in enumerate(LEVELS)}
    blocks.sort(key=lambda b: (rank[b.level], -b.count, b.namespace == "", b.namespace))
    return blocks
