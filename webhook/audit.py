"""`guardrail audit`: judge a live cluster with the webhook's engine (not built yet)."""

from __future__ import annotations

from webhook.config import Config
from webhook.errors import GuardrailError


def run(config: Config, *, namespace: str | None, fmt: str, write_reports: bool) -> int:
    """Sweep the cluster; returns the exit code. Until it exists, says so plainly."""
    del config, namespace, fmt, write_reports
    raise GuardrailError(
        "guardrail audit is not available in this version yet; "
        "use `kubectl get ... -o yaml | guardrail check -` meanwhile"
    )
