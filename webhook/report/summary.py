"""Violations counted by policy and by namespace: the audit's text summary, the HTML chart
and the `guardrail_audit_violations` gauge all read the same tally.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from webhook.policy import RULE_IDS
from webhook.policy.model import Finding, Violation

CLUSTER_SCOPE = ""


def scope_namespace(finding: Finding) -> str:
    """The namespace a finding belongs to: its object's, or the Namespace's own name for a
    namespace-level finding (a missing default-deny is that namespace's problem); "" when the
    object is cluster-scoped (a GlobalNetworkPolicy)."""
    return scope_of(finding.kind, finding.namespace, finding.name)


def scope_of(kind: str, namespace: str, name: str) -> str:
    """The namespace an object belongs to for reports and tallies: its own namespace, a
    Namespace's own name, or "" (the cluster) for other cluster-scoped objects."""
    if namespace:
        return namespace
    if kind == "Namespace":
        return name
    return CLUSTER_SCOPE


@dataclass(slots=True)
class Breakdown:
    """Counts by policy (registry order), by namespace (most violations first) and in all."""

    total: int = 0
    by_policy: dict[str, int] = field(default_factory=dict)
    by_namespace: dict[str, dict[str, int]] = field(default_factory=dict)

    def namespace_total(self, namespace: str) -> int:
        return sum(self.by_namespace.get(namespace, {}).values())


def breakdown(violations: Iterable[Violation]) -> Breakdown:
    counts: dict[str, int] = {}
    namespaces: dict[str, dict[str, int]] = {}
    total = 0
    for violation in violations:
        policy = violation.finding.policy
        total += 1
        counts[policy] = counts.get(policy, 0) + 1
        per = namespaces.setdefault(scope_namespace(violation.finding), {})
        per[policy] = per.get(policy, 0) + 1
    order = {policy: index for index, policy in enumerate(RULE_IDS)}
    by_policy = dict(sorted(counts.items(), key=lambda item: (order.get(item[0], 99), item[0])))
    by_namespace = dict(
        sorted(namespaces.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    )
    return Breakdown(total=total, by_policy=by_policy, by_namespace=by_namespace)
