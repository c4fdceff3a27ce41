"""Findings + modes -> the admission verdict: allowed, status, warnings, auditAnnotations."""

from __future__ import annotations

from collections.abc import Iterable

from webhook.config import Config
from webhook.policy.model import Finding, Mode, Namespace, Violation


def apply_modes(
    findings: Iterable[Finding], config: Config, namespace: Namespace | None
) -> list[Violation]:
    """Each finding with its effective mode; findings of policies that are off are dropped."""
    violations = []
    for finding in findings:
        mode = config.mode_for(finding.policy, namespace)
        if mode is not Mode.OFF:
            violations.append(Violation(finding=finding, mode=mode))
    return violations
