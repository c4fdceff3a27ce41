"""Findings + modes -> verdict: denial, status message, warnings, audit annotations."""

from __future__ import annotations

import pytest

from webhook.admission.judge import DENIED_CODE, apply_modes, decide, failure
from webhook.config import OnError, parse_config
from webhook.policy.model import Finding, Mode, Namespace, Violation

LABELS = Finding(
    policy="require-role-labels",
    kind="Pod",
    namespace="shop",
    name="web",
    message='[require-role-labels] Pod "web" in namespace "shop" is missing required labels: '
    "role. Add them under metadata.labels.",
    summary='[require-role-labels] Pod "web" in namespace "shop" is missing labels: role',
)
LABELS_2 = Finding(
    policy="require-role-labels",
    kind="Pod",
    namespace="shop",
    name="web",
    message='[require-role-labels] Pod "web" in namespace "shop" has label role="x", '
    "which is not one of: db, web.",
    summary='[require-role-labels] Pod "web": role="x" is not allowed',
)
DENY = Finding(
    policy="require-default-deny",
    kind="Pod",
    namespace="shop",
    name="web",
    message='[require-default-deny] Namespace "shop" has no default-deny NetworkPolicy for '
    "Egress. Apply one first.",
    summary='[require-default-deny] namespace "shop" has no default-deny for Egress',
)
ALLOW_ALL = Finding(
    policy="restrict-allow-all",
    kind="NetworkPolicy",
    namespace="shop",
    name="open",
    message='[restrict-allow-all] NetworkPolicy "open" in namespace "shop" allows all ingress.',
    summary='[restrict-allow-all] NetworkPolicy "open" allows all ingress',
)
NEW_NAMESPACE = Finding(
    policy="require-default-deny",
    kind="Namespace",
    namespace="",
    name="new",
    message='[require-default-deny] Namespace "new" has no default-deny yet: pods will be '
    "rejected there until one exists.",
    summary='[require-default-deny] pods in "new" will be rejected until a default-deny exists',
    advisory=True,
)


def _v(finding: Finding, mode: Mode) -> Violation:
    return Violation(finding=finding, mode=mode)


@pytest.mark.parametrize(
    ("violations", "allowed", "message", "warnings"),
    [
        ([], True, "", ()),
        ([_v(LABELS, Mode.ENFORCE)], False, LABELS.message, ()),
        ([_v(LABELS, Mode.WARN)], True, "", (LABELS.summary,)),
        ([_v(LABELS, Mode.AUDIT)], True, "", ()),
        (
            [_v(LABELS, Mode.ENFORCE), _v(DENY, Mode.ENFORCE)],
            False,
            f"{LABELS.message}\n{DENY.message}",
            (),
        ),
        (
            [_v(LABELS, Mode.ENFORCE), _v(ALLOW_ALL, Mode.WARN)],
            False,
            LABELS.message,
            (ALLOW_ALL.summary,),
        ),
        ([_v(NEW_NAMESPACE, Mode.ENFORCE)], True, "", (NEW_NAMESPACE.summary,)),
        ([_v(NEW_NAMESPACE, Mode.WARN)], True, "", (NEW_NAMESPACE.summary,)),
        ([_v(NEW_NAMESPACE, Mode.AUDIT)], True, "", ()),
        ([_v(ALLOW_ALL, Mode.WARN), _v(ALLOW_ALL, Mode.WARN)], True, "", (ALLOW_ALL.summary,)),
    ],
    ids=[
        "nothing",
        "enforce",
        "warn",
        "audit",
        "two-enforced",
        "enforce-and-warn",
        "advisory-enforce",
        "advisory-warn",
        "advisory-audit",
        "duplicate-warning",
    ],
)
def test_verdict_table(
    violations: list[Violation], allowed: bool, message: str, warnings: tuple[str, ...]
) -> None:
    """Enforced violations deny with their messages joined; warn and advisories only warn."""
    decision = decide(violations)
    assert decision.allowed is allowed
    assert decision.message == message
    assert decision.warnings == warnings
    assert decision.code == (None if allowed else DENIED_CODE)


def test_every_mode_is_annotated_per_policy() -> None:
    """One audit annotation per policy id: `<mode>: <full message>`, several joined by '; '."""
    decision = decide(
        [
            _v(LABELS, Mode.ENFORCE),
            _v(LABELS_2, Mode.ENFORCE),
            _v(ALLOW_ALL, Mode.WARN),
            _v(DENY, Mode.AUDIT),
        ]
    )
    assert decision.audit_annotations == {
        "require-role-labels": f"enforce: {LABELS.message}; enforce: {LABELS_2.message}",
        "restrict-allow-all": f"warn: {ALLOW_ALL.message}",
        "require-default-deny": f"audit: {DENY.message}",
    }


def test_warnings_are_cut_under_120_characters() -> None:
    """A summary too long for the API server is cut with an ellipsis; the message stays whole."""
    long = Finding(
        policy="restrict-allow-all",
        kind="NetworkPolicy",
        namespace="shop",
        name="open",
        message="[restrict-allow-all] " + "x" * 300,
        summary="[restrict-allow-all] " + "y" * 300,
    )
    decision = decide([_v(long, Mode.WARN)])
    assert len(decision.warnings[0]) < 120
    assert decision.warnings[0].startswith("[restrict-allow-all] yyy")
    assert decision.warnings[0].endswith("…")
    assert decision.audit_annotations["restrict-allow-all"] == f"warn: {long.message}"


@pytest.mark.parametrize(
    ("config_text", "namespace", "expected"),
    [
        ({}, None, [("require-role-labels", Mode.ENFORCE), ("restrict-allow-all", Mode.WARN)]),
        (
            {"mode": "audit"},
            None,
            [("require-role-labels", Mode.AUDIT), ("restrict-allow-all", Mode.WARN)],
        ),
        (
            {"policies": {"restrict-allow-all": {"mode": "off"}}},
            None,
            [("require-role-labels", Mode.ENFORCE)],
        ),
        (
            {"allowNamespaceModeLabel": True},
            Namespace("shop", {"guardrail.dev/mode": "audit"}),
            [("require-role-labels", Mode.AUDIT), ("restrict-allow-all", Mode.AUDIT)],
        ),
        (
            {},
            Namespace("shop", {"guardrail.dev/mode": "audit"}),
            [("require-role-labels", Mode.ENFORCE), ("restrict-allow-all", Mode.WARN)],
        ),
    ],
    ids=[
        "defaults",
        "global-audit",
        "policy-off",
        "namespace-label-allowed",
        "namespace-label-ignored",
    ],
)
def test_apply_modes(
    config_text: dict[str, object], namespace: Namespace | None, expected: list[tuple[str, Mode]]
) -> None:
    """Each finding gets its policy's mode (relaxed by the namespace label only if allowed)."""
    config = parse_config(config_text, "config.yaml")
    violations = apply_modes([LABELS, ALLOW_ALL], config, namespace)
    assert [(v.policy, v.mode) for v in violations] == expected


@pytest.mark.parametrize(
    ("on_error", "allowed"),
    [(OnError.DENY, False), (OnError.ALLOW, True)],
    ids=["deny", "allow"],
)
def test_failure_follows_on_error(on_error: OnError, allowed: bool) -> None:
    """A request that could not be judged is denied or allowed per onError, saying so."""
    decision = failure(on_error, "internal error, see guardrail's log")
    assert decision.allowed is allowed
    text = decision.message if not allowed else decision.warnings[0]
    assert "guardrail failed to judge this request" in text
    assert "guardrail failed to judge" in decision.audit_annotations["guardrail-error"]
    if not allowed:
        assert decision.code == 403
        assert "onError is deny" in decision.message
