"""Findings + modes -> the admission verdict: allowed, status, warnings, auditAnnotations.

As in Pod Security Admission: enforce-mode violations deny, warn-mode violations become
warnings kubectl prints, and every violation of any mode is recorded as an audit annotation
(which lands in the API server's audit log).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from webhook.config import Config, OnError
from webhook.policy.model import Finding, Mode, Namespace, Violation, summarize

DENIED_CODE = 403


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one request, before it is put into an AdmissionResponse.

    `message` is the denial text (enforce-mode messages, one a line); empty when allowed.
    """

    allowed: bool
    message: str = ""
    warnings: tuple[str, ...] = ()
    audit_annotations: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()

    @property
    def code(self) -> int | None:
        """The HTTP status code the API server reports for a denial."""
        return None if self.allowed else DENIED_CODE


ALLOWED = Decision(allowed=True)


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


def decide(violations: Iterable[Violation]) -> Decision:
    """Deny iff a violation is enforced; warn for warn mode and for advisories; annotate all."""
    violations = tuple(violations)
    if not violations:
        return ALLOWED
    denials: list[str] = []
    warnings: list[str] = []
    annotations: dict[str, list[str]] = {}
    for violation in violations:
        finding = violation.finding
        if violation.enforced:
            denials.append(finding.message)
        elif violation.mode is Mode.WARN or (finding.advisory and violation.mode is Mode.ENFORCE):
            # An advisory finding is never a denial, but in enforce mode the user must still
            # hear about it: it announces a denial to come (pods in a namespace without a
            # default-deny). In audit mode it stays silent like any other finding.
            warning = summarize(finding.summary or finding.message)
            if warning not in warnings:
                warnings.append(warning)
        annotations.setdefault(finding.policy, []).append(f"{violation.mode}: {finding.message}")
    return Decision(
        allowed=not denials,
        message="\n".join(denials),
        warnings=tuple(warnings),
        audit_annotations={policy: "; ".join(texts) for policy, texts in annotations.items()},
        violations=violations,
    )


def failure(on_error: OnError, reason: str) -> Decision:
    """The verdict when guardrail could not judge the request at all (a bug, unreadable state).

    `onError: deny` fails closed with a message that says so; `allow` fails open, with a
    warning so that the person applying the object still learns it was not checked.
    """
    text = f"guardrail failed to judge this request: {reason}"
    if on_error is OnError.ALLOW:
        return Decision(
            allowed=True,
            warnings=(summarize(text),),
            audit_annotations={"guardrail-error": f"allowed (onError: allow): {text}"},
        )
    return Decision(
        allowed=False,
        message=f"{text}. The request was denied because onError is deny; "
        "retry, and tell the cluster admins if it persists.",
        audit_annotations={"guardrail-error": f"denied (onError: deny): {text}"},
    )
