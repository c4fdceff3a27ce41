"""The human report: one line per violation, compiler style, then a summary.

    app/web.yaml:1: [require-role-labels] Pod "web" in namespace "shop" is missing ...
    app/open.yaml:4: warning: [restrict-allow-all] NetworkPolicy "open" in namespace "shop": ...

    12 resources, 2 violations (1 enforced)

`file:line:` first so editors and CI annotate the line; only what would be denied goes
unmarked, everything that would be let through says so (`warning:`, `audit:`).
"""

from __future__ import annotations

from webhook.report.base import ReportInput, level, location, summary_line


def render(result: ReportInput) -> str:
    lines = []
    for violation in result.violations:
        message = violation.finding.message
        tag = f"[{violation.policy}]"
        if not message.startswith(tag):
            message = f"{tag} {message}"
        severity = level(violation)
        marker = "" if severity == "error" else f"{severity}: "
        lines.append(f"{location(violation)}: {marker}{message}")
    if lines:
        lines.append("")
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"
