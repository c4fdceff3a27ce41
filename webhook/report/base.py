"""What every report renderer reads, and the wording they share.

A report is built from a result of `check` or `audit`: how many resources were judged, which
ones (for formats that list passes, such as JUnit), and the violations with their modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from webhook.policy.model import Mode, Violation


@dataclass(frozen=True, slots=True)
class Resource:
    """One judged object: its identity and, when it came from a file, where it starts."""

    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    file: str | None = None
    line: int | None = None


class ReportInput(Protocol):
    """A check or audit result. `judged` may be empty when the source does not list passes."""

    @property
    def resources(self) -> int: ...

    @property
    def violations(self) -> Sequence[Violation]: ...

    @property
    def judged(self) -> Sequence[Resource]: ...


# apiVersion of the kinds policies report on, for findings whose object is not in `judged`.
KNOWN_API_VERSIONS: Mapping[str, str] = {
    "Pod": "v1",
    "Namespace": "v1",
    "ReplicationController": "v1",
    "Deployment": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "GlobalNetworkPolicy": "projectcalico.org/v3",
}


def level(violation: Violation) -> str:
    """`error` (would be denied), `warning` (warn mode, or advisory) or `audit`."""
    if violation.enforced:
        return "error"
    if violation.mode is Mode.WARN or violation.finding.advisory:
        return "warning"
    return "audit"


def location(violation: Violation) -> str:
    """`file:line` when the object came from a file, else `Kind namespace/name`."""
    if violation.file is not None:
        return f"{violation.file}:{violation.line}" if violation.line else violation.file
    return object_label(violation.finding.kind, violation.finding.namespace, violation.finding.name)


def object_label(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def counts(result: ReportInput) -> tuple[int, int, int]:
    """(resources, violations, enforced violations)."""
    violations = result.violations
    return result.resources, len(violations), sum(1 for v in violations if v.enforced)


def summary_line(result: ReportInput) -> str:
    """`12 resources, 3 violations (1 enforced)` or `12 resources, no violations`."""
    resources, total, enforced = counts(result)
    judged = f"{resources} resource{'' if resources == 1 else 's'}"
    if not total:
        return f"{judged}, no violations"
    return f"{judged}, {total} violation{'' if total == 1 else 's'} ({enforced} enforced)"


def api_version_for(violation: Violation, judged: Sequence[Resource]) -> str:
    finding = violation.finding
    for resource in judged:
        if (resource.kind, resource.namespace, resource.name) == (
            finding.kind,
            finding.namespace,
            finding.name,
        ):
            return resource.api_version
    return KNOWN_API_VERSIONS.get(finding.kind, "v1")
