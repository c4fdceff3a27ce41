"""The one judging pipeline: exemptions -> evaluate -> live confirmation -> modes -> Decision.

The webhook (`/validate`), `check` and `audit` all judge through `Judge`, so a policy gives the
same answer in all three (as Gatekeeper's one engine serves its webhook, audit and gator).
`Judge.violations` is the verdict as findings with their modes; `Judge.decide` turns them into
the admission verdict as in Pod Security Admission: enforce-mode violations deny, warn-mode
violations become warnings kubectl prints, and every violation of any mode is recorded as an
audit annotation (which lands in the API server's audit log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from webhook.config import Config, OnError
from webhook.policy import RULES, evaluate
from webhook.policy.cluster import ClusterState
from webhook.policy.model import Finding, Mode, Namespace, Request, Violation
from webhook.policy.text import summarize

# How long a worker that has just started waits for its cache before judging from it.
SYNC_WAIT_SECONDS = 2.0

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


def exempt_name_denied(name: str) -> Decision:
    """A Namespace CREATE claiming an exempt name (SPEC 3.2): denied, saying who may."""
    message = (
        f'[guardrail] Namespace "{name}" is exempt from Guardrail\'s policies, so only an '
        "exempt user or group (exemptions.usernames, exemptions.groups) or system:masters may "
        "create it. Ask a cluster admin to create it, or choose another name."
    )
    return Decision(
        allowed=False,
        message=message,
        audit_annotations={"guardrail-exempt-name": f"denied: {message}"},
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


class Confirmer(Protocol):
    """A state that can be behind the API server: it says when it is synced, and can re-read.

    `webhook.state.live.LiveState` is one. State read from files is the whole truth and needs
    none. `confirm_providers` re-reads one namespace's policies from the API server into the
    state and returns None when that read failed (the state's answer then stands).
    """

    @property
    def synced(self) -> bool: ...

    def wait_synced(self, timeout: float) -> bool: ...

    def confirm_providers(self, namespace: str) -> object | None: ...


class StateUnknownError(Exception):
    """The state needed for this request is not known yet and `onError` is deny."""


class Judge:
    """Exemptions, policies, confirmation and modes for one request; never an HTTP concern.

    `on_confirmation("read" | "failed")` is told about each live confirmation (a metric).
    """

    def __init__(
        self,
        config: Config,
        state: ClusterState,
        confirmer: Confirmer | None = None,
        on_confirmation: Callable[[str], None] = lambda _outcome: None,
    ) -> None:
        self.config = config
        self.state = state
        self.confirmer = confirmer
        self.on_confirmation = on_confirmation
        self.enabled = config.enabled_policies()
        self._stateful = frozenset(rule.id for rule in RULES if rule.needs_state)
        self._confirmable = frozenset(rule.id for rule in RULES if rule.confirmable)

    @property
    def ready(self) -> bool:
        return self.confirmer is None or self.confirmer.synced

    def violations(self, req: Request) -> list[Violation]:
        """The request's violations with their modes ([] if exempt); StateUnknownError: unknown."""
        config, state = self.config, self.state
        if config.exemptions.exempts(req):
            return []
        findings = evaluate(req, state, config.settings, self.enabled)
        if self.confirmer is not None and any(self._lifts(f) for f in findings):
            findings = self._confirm(req, findings, self.confirmer)
        if not findings:
            return []
        namespace = state.namespace(req.namespace) if req.namespace else None
        return apply_modes(findings, config, namespace)

    def decide(self, req: Request) -> Decision:
        if self.config.exemptions.claims_exempt_name(req):
            return exempt_name_denied(req.name)
        try:
            return decide(self.violations(req))
        except StateUnknownError as exc:
            return failure(self.config.on_error, str(exc))

    def _lifts(self, finding: Finding) -> bool:
        """A denial that a fresher view of the state could lift (no default-deny seen yet)."""
        return finding.policy in self._confirmable and not finding.advisory

    def _confirm(
        self, req: Request, findings: list[Finding], confirmer: Confirmer
    ) -> list[Finding]:
        if not confirmer.synced:
            # A worker that has just started: a short wait beats a denial.
            confirmer.wait_synced(SYNC_WAIT_SECONDS)
        if not confirmer.synced:
            if self.config.on_error is OnError.DENY:
                raise StateUnknownError(
                    "the cluster state has not been read yet, so whether namespace "
                    f'"{req.namespace}" has a default-deny is unknown; retry in a moment'
                )
            return [f for f in findings if f.policy not in self._stateful]
        # The cache says "no default-deny": confirm with a live read before denying, so a
        # policy applied a moment before this object (one `kubectl apply -f dir/`) counts.
        # The read updates the cache; a failed read keeps its answer.
        confirmed = confirmer.confirm_providers(req.namespace)
        self.on_confirmation("failed" if confirmed is None else "read")
        if confirmed is None:
            return findings
        return evaluate(req, self.state, self.config.settings, self.enabled)
