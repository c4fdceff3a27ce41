"""The policies: pure functions over plain data, registered under stable ids.

`evaluate` is the one entry point shared by the webhook, the audit sweep and `check`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from webhook.policy import isolation, labels
from webhook.policy.model import POLICY_IDS, ClusterState, Finding, Request, Settings

PolicyFn = Callable[[Request, ClusterState, Settings], list[Finding]]

POLICIES: Mapping[str, PolicyFn] = {
    "require-role-labels": labels.require_role_labels,
    "require-default-deny": isolation.require_default_deny,
    "protect-default-deny": isolation.protect_default_deny,
    "restrict-allow-all": isolation.restrict_allow_all,
}
assert tuple(POLICIES) == POLICY_IDS


def evaluate(
    request: Request,
    state: ClusterState,
    settings: Settings,
    enabled: Collection[str] = POLICY_IDS,
) -> list[Finding]:
    """Every finding of every enabled policy for one request, in registry order."""
    findings: list[Finding] = []
    for policy_id, check in POLICIES.items():
        if policy_id in enabled:
            findings.extend(check(request, state, settings))
    return findings
