"""What every report renderer reads, and the wording they share.

A report is built from a result of `check` or `audit`: how many resources were judged, which
ones (for formats that list passes, such as JUnit), and the violations with their modes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from webhook.fixes import Plan
from webhook.policy import rule
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


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a report comes from, so that a reader can trust it: when it was made, what was
    judged, and with which config. `check_paths` and `audit.run` set it; a result built by
    hand has an empty one, and renderers then leave the header out."""

    generated: str = ""  # UTC, ISO 8601 to the second: 2026-11-24T10:00:00Z
    command: str = ""  # "check" or "audit"
    sources: tuple[str, ...] = ()  # the paths checked; the API server (`cluster https://...`)
    config_file: str = ""  # "" when every default is used
    config_digest: str = ""  # webhook.config.digest(): sha256 of the canonical config
    modes: tuple[tuple[str, str], ...] = ()  # (policy, mode) as configured, registry order


def utc_timestamp(seconds: float) -> str:
    """`2026-11-24T10:00:00Z`: seconds since the epoch, in UTC, as every report header says."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReportInput(Protocol):
    """A check or audit result. `judged` may be empty when the source does not list passes."""

    @property
    def origin(self) -> Origin: ...

    @property
    def resources(self) -> int: ...

    @property
    def violations(self) -> Sequence[Violation]: ...

    @property
    def judged(self) -> Sequence[Resource]: ...

    @property
    def headlines(self) -> Mapping[tuple[str, str], Violation]: ...

    @property
    def unverified(self) -> Sequence[str]: ...

    @property
    def fixes(self) -> Plan:
        """What would fix each finding (webhook/fixes.py); empty where none was planned."""
        ...


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


ERROR, WARNING, NOTE = "error", "warning", "note"
LEVELS = (ERROR, WARNING, NOTE)  # what to fix first comes first


def level(violation: Violation) -> str:
    """The level follows the mode: `error` (enforce: would be denied), `warning` (warn; or a
    finding never denied whatever the mode: advisory, or unverified offline), `note` (audit).
    Every renderer uses it, so SARIF, JSON, JUnit, HTML and text agree."""
    if violation.mode is Mode.AUDIT:
        return NOTE
    if violation.enforced:
        return ERROR
    return WARNING


def level_reason(violation: Violation) -> str:
    """Why the finding has its level, in the mode's words: a warning of an enforce-mode policy
    says why it is not an error (advisory, or unverified offline)."""
    mode = violation.mode
    if mode is Mode.AUDIT:
        return "audit mode: recorded, never denied"
    if violation.enforced:
        return "enforce mode: would be denied"
    if mode is Mode.ENFORCE and violation.unverified:
        return (
            "enforce mode, but unverified: the input holds nothing about its namespace, "
            "so it cannot be settled offline"
        )
    if mode is Mode.ENFORCE and violation.finding.advisory:
        return "enforce mode, but advisory: never denied, it warns of rejections to come"
    return f"{mode} mode: allowed with a warning"


# Where each rule is documented: its own `docs` anchor in the README's "Policies" section.
DOCS_URL = "https://github.com/guardrail-dev/guardrail/blob/main/README.md"
# GitHub code scanning reads `security-severity` as a CVSS-like score: over 9.0 critical,
# 7.0-8.9 high, 4.0-6.9 medium, 3.9 or less low.
SECURITY_SEVERITY: Mapping[str, str] = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "3.0",
    "info": "0.0",
}


def help_uri(policy_id: str) -> str:
    return f"{DOCS_URL}#{rule(policy_id).docs}"


def severity(policy_id: str) -> str:
    return str(rule(policy_id).severity)


def location(violation: Violation) -> str:
    """`file:line` when the object came from a file, else `Kind namespace/name`."""
    if violation.file is not None:
        return f"{violation.file}:{violation.line}" if violation.line else violation.file
    return object_label(violation.finding.kind, violation.finding.namespace, violation.finding.name)


def object_label(kind: str, namespace: str, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts every renderer prints: resources, findings by level, and unverified."""

    resources: int
    errors: int
    warnings: int
    notes: int
    unverified: int  # findings that are warnings only because the input lacks their namespace

    @property
    def violations(self) -> int:
        return self.errors + self.warnings + self.notes

    def of(self, name: str) -> int:
        return {ERROR: self.errors, WARNING: self.warnings, NOTE: self.notes}[name]


def tally(result: ReportInput) -> Tally:
    found = dict.fromkeys(LEVELS, 0)
    for violation in result.violations:
        found[level(violation)] += 1
    return Tally(
        result.resources,
        found[ERROR],
        found[WARNING],
        found[NOTE],
        sum(1 for v in result.violations if v.unverified),
    )


def counts(result: ReportInput) -> tuple[int, int, int]:
    """(resources, violations, errors)."""
    t = tally(result)
    return t.resources, t.violations, t.errors


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def levels_text(t: Tally) -> str:
    """`3 errors, 2 warnings, 1 note`: only the levels present, in LEVELS order."""
    return ", ".join(plural(t.of(name), name) for name in LEVELS if t.of(name))


def summary_line(result: ReportInput) -> str:
    """`12 resources, 6 violations: 3 errors, 2 warnings, 1 note` or `12 resources, no
    violations`; every renderer and both commands print these same totals."""
    t = tally(result)
    judged = plural(t.resources, "resource")
    if not t.violations:
        return f"{judged}, no violations"
    return f"{judged}, {plural(t.violations, 'violation')}: {levels_text(t)}"


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


FAIL_ON = ("enforce", "warn")


def fails(result: ReportInput, fail_on: str = "enforce") -> bool:
    """Whether the command exits 1: an error (what would be denied), or with `--fail-on warn`
    also a warning (warn mode, advisory, unverified). Notes (audit mode) never fail."""
    wanted = {ERROR} if fail_on == "enforce" else {ERROR, WARNING}
    return any(level(v) in wanted for v in result.violations)
