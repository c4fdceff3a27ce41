"""`--format html`: one self-contained page (no scripts, no external assets) with a table.

Every value from a manifest is escaped: a report of hostile input must not become hostile.
"""

from __future__ import annotations

from html import escape

from webhook.report.base import ReportInput, level, location, summary_line

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}.error{color:#b00020}.warning{color:#8a5a00}.audit{color:#555}"
    "td.message{white-space:pre-wrap;word-break:break-word}"
)


def render(result: ReportInput) -> str:
    rows = []
    for violation in result.violations:
        finding = violation.finding
        severity = level(violation)
        cells = (
            f'<td class="{severity}">{escape(severity)}</td>',
            f"<td>{escape(finding.policy)}</td>",
            f"<td>{escape(str(violation.mode))}</td>",
            f"<td>{escape(finding.kind)}</td>",
            f"<td>{escape(finding.namespace)}</td>",
            f"<td>{escape(finding.name)}</td>",
            f"<td>{escape(location(violation))}</td>",
            f'<td class="message">{escape(finding.message)}</td>',
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(
        f"<th>{title}</th>"
        for title in ("Level", "Policy", "Mode", "Kind", "Namespace", "Name", "Source", "Message")
    )
    table = (
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else "<p>No violations.</p>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<title>Guardrail report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Guardrail report</h1>"
        f"<p>{escape(summary_line(result))}</p>"
        f"{table}</body></html>\n"
    )
