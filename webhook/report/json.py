"""`--format json`: the one object of SPEC §4, keys exactly as specified.

    {"summary": {"resources": 12, "violations": 3},
     "violations": [{"policy", "mode", "kind", "namespace", "name", "message", "file", "line"}]}

`file` and `line` appear only for objects that came from a file.
"""

from __future__ import annotations

import json
from typing import Any

from webhook.report.base import ReportInput


def document(result: ReportInput) -> dict[str, Any]:
    violations: list[dict[str, Any]] = []
    for violation in result.violations:
        finding = violation.finding
        entry: dict[str, Any] = {
            "policy": finding.policy,
            "mode": str(violation.mode),
            "kind": finding.kind,
            "namespace": finding.namespace,
            "name": finding.name,
            "message": finding.message,
        }
        if violation.file is not None:
            entry["file"] = violation.file
            if violation.line is not None:
                entry["line"] = violation.line
        violations.append(entry)
    return {
        "summary": {"resources": result.resources, "violations": len(violations)},
        "violations": violations,
    }


def render(result: ReportInput) -> str:
    return json.dumps(document(result), indent=2, ensure_ascii=False) + "\n"
