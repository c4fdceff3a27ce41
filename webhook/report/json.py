"""`--format json`: the one object of SPEC §4, its keys kept, more beside them.

    {"summary": {"resources": 12, "violations": 3, "errors": 2, "warnings": 1, "notes": 0,
                 "unverified": 0, "unverifiedNamespaces": []},
     "violations": [{"policy", "mode", "level", "severity", "helpUri", "kind", "namespace",
                     "name", "message", "file", "line"}]}

`file` and `line` appear only for objects that came from a file, `unverified: true` only on
findings the input cannot settle. The totals are the ones every other format prints.
"""

from __future__ import annotations

import json
from typing import Any

from webhook.report.base import ReportInput, help_uri, level, severity, tally


def document(result: ReportInput) -> dict[str, Any]:
    violations: list[dict[str, Any]] = []
    for violation in result.violations:
        finding = violation.finding
        entry: dict[str, Any] = {
            "policy": finding.policy,
            "mode": str(violation.mode),
            "level": level(violation),
            "severity": severity(finding.policy),
            "helpUri": help_uri(finding.policy),
            "kind": finding.kind,
            "namespace": finding.namespace,
            "name": finding.name,
            "message": finding.message,
        }
        if violation.unverified:
            entry["unverified"] = True
        if violation.file is not None:
            entry["file"] = violation.file
            if violation.line is not None:
                entry["line"] = violation.line
        violations.append(entry)
    t = tally(result)
    return {
        "summary": {
            "resources": t.resources,
            "violations": t.violations,
            "errors": t.errors,
            "warnings": t.warnings,
            "notes": t.notes,
            "unverified": t.unverified,
            "unverifiedNamespaces": list(result.unverified),
        },
        "violations": violations,
    }


def render(result: ReportInput) -> str:
    return json.dumps(document(result), indent=2, ensure_ascii=False) + "\n"
