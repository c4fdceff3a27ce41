"""How much of each namespace passes: resources judged there with no error or warning finding,
out of every resource judged there (`result.judged`), worst namespace first.

A resource is one judged object: (kind, namespace, name) and, offline, its file and line, so
two manifests of one Deployment count twice, as `check` judges both. A note (audit mode) is
recorded, not a failure, so it does not lower the figure. A namespace's own Namespace object
counts in it; cluster-scoped objects (a GlobalNetworkPolicy) are the scope "".
"""

from __future__ import annotations

from dataclasses import dataclass

from webhook.report.base import ERROR, NOTE, WARNING, ReportInput, level
from webhook.report.summary import scope_namespace, scope_of

ResourceKey = tuple[str, str, str, str | None, int | None]  # kind, namespace, name, file, line


@dataclass(frozen=True, slots=True)
class NamespaceCompliance:
    namespace: str  # "" for cluster-scoped objects
    resources: int  # judged in it (and any found failing that `judged` lacks)
    failing: int  # resources with an error or warning finding
    errors: int  # findings, by level
    warnings: int
    notes: int

    @property
    def passing(self) -> int:
        return self.resources - self.failing

    @property
    def ratio(self) -> float:
        """Passing resources out of all, 1.0 for a namespace where nothing was judged."""
        return self.passing / self.resources if self.resources else 1.0

    @property
    def percent(self) -> int:
        """The ratio in whole percent, rounded down: 99 % while anything fails."""
        return (100 * self.passing) // self.resources if self.resources else 100


def compliance(result: ReportInput) -> list[NamespaceCompliance]:
    """Every namespace with a judged object or a finding, least compliant first (then the
    most failing resources, then by name)."""
    judged: dict[str, set[ResourceKey]] = {}
    for resource in result.judged:
        judged.setdefault(scope_of(resource.kind, resource.namespace, resource.name), set()).add(
            (resource.kind, resource.namespace, resource.name, resource.file, resource.line)
        )
    failing: dict[str, set[ResourceKey]] = {}
    counts: dict[str, dict[str, int]] = {}
    for violation in result.violations:
        finding = violation.finding
        scope = scope_namespace(finding)
        severity = level(violation)
        per = counts.setdefault(scope, dict.fromkeys((ERROR, WARNING, NOTE), 0))
        per[severity] += 1
        if severity != NOTE:
            key = (finding.kind, finding.namespace, finding.name, violation.file, violation.line)
            failing.setdefault(scope, set()).add(key)
    found = []
    for scope in judged.keys() | counts.keys():
        bad = failing.get(scope, set())
        per = counts.get(scope, dict.fromkeys((ERROR, WARNING, NOTE), 0))
        found.append(
            NamespaceCompliance(
                scope,
                len(judged.get(scope, set()) | bad),
                len(bad),
                per[ERROR],
                per[WARNING],
                per[NOTE],
            )
        )
    found.sort(key=lambda n: (n.ratio, -n.failing, n.namespace == "", n.namespace))
    return found
