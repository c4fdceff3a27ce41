"""A finding's fix as a command to run, for reports that offer it once with a copy button.

Today the command is in the message: require-default-deny ends its messages with
`echo '<a default-deny NetworkPolicy as JSON>' | kubectl apply -f -`. `fix_command` finds it
there, and gives it only when it is exactly what the rule writes: the JSON is a default-deny
NetworkPolicy for a valid namespace name (the finding's own) and the rule's
`default_deny_command` makes the same text from it. `check` reads manifests no API server has
validated, so a namespace named to break out of the quotes gets no command: a copy button
must never hand a reader a shell line that someone else's manifest wrote.

When findings carry a structured fix, `fix_command` reads it here first; renderers do not
change.
"""

from __future__ import annotations

import json
import re

from webhook.policy.model import Direction, Violation
from webhook.policy.rules.require_default_deny import default_deny_command
from webhook.report.summary import scope_namespace

_START = "echo '"
_END = "' | kubectl apply -f -"
# A namespace name as the API server accepts it (RFC 1123 label).
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def fix_command(violation: Violation) -> str | None:
    """The shell line that fixes the finding (and its namespace's other findings of the same
    rule), or None when it has none that can be offered safely."""
    message = violation.finding.message
    end = message.rfind(_END)
    if end < 0:
        return None
    start = message.rfind(_START, 0, end)
    if start < 0:
        return None
    try:
        manifest = json.loads(message[start + len(_START) : end])
    except ValueError:
        return None
    command = _default_deny(manifest, scope_namespace(violation.finding))
    if command != message[start : end + len(_END)]:
        return None
    return command


def _default_deny(manifest: object, namespace: str) -> str | None:
    """The rule's command for this manifest, if it is one the rule writes for `namespace`."""
    if not isinstance(manifest, dict):
        return None
    metadata, spec = manifest.get("metadata"), manifest.get("spec")
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        return None
    if metadata.get("namespace") != namespace or not _NAMESPACE.fullmatch(namespace):
        return None
    types = spec.get("policyTypes")
    known = {str(d) for d in Direction}
    if not isinstance(types, list) or not types or not all(t in known for t in types):
        return None
    return default_deny_command(namespace, [Direction(t) for t in types])
