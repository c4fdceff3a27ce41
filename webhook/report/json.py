"""`--format json`: the one object of SPEC §4, its keys kept, more beside them.

    {"origin": {"generated": "2026-12-02T10:00:00Z", "command": "check", "sources": ["k8s/"],
                "configFile": null, "configDigest": "sha256:...", "modes": {policy: mode}},
     "summary": {"resources": 12, "violations": 3, "errors": 2, "warnings": 1, "notes": 0,
                 "unverified": 0, "unverifiedNamespaces": []},
     "violations": [{"policy", "mode", "level", "severity", "helpUri", "kind", "namespace",
                     "name", "message", "file", "line"}]}

`file` and `line` appear only for objects that came from a file, `unverified: true` only on
findings the input cannot settle. The totals are the ones every other format prints.

A finding that has a fix (webhook/fixes.py) carries it as `fix`:

    {"description": "...",
     "path": "shop/default-deny.yaml",      # in the --fix directory; null: no file for it
     "file": "fixes/shop/default-deny.yaml", # the file written, only with --fix DIR, else null
     "manifest": {...}                       # the NetworkPolicy to apply; or, for labels:
     "patch": {...}, "target": {...},        # the strategic-merge patch and its kustomize target
     "placeholders": ["role"],               # labels set to REPLACE-ME: a person must choose
     "source": {"file": "shop/web.yaml",     # with --write: the exact edit of the source file
                "edits": [{"startLine", "startColumn", "endLine", "endColumn", "text"}],
                "applied": true}}            # false where the file was left as it was

Lines and columns are 1-based, columns in code points, endColumn one past the region (an
insertion when start and end are equal), as in SARIF.
"""

from __future__ import annotations

import json
from typing import Any

from webhook.fixes import Fix, Plan
from webhook.report.base import Origin, ReportInput, help_uri, level, severity, tally


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
        fix = result.fixes.for_violation(violation)
        if fix is not None:
            entry["fix"] = fix_entry(fix, result.fixes)
        violations.append(entry)
    t = tally(result)
    document: dict[str, Any] = {}
    if result.origin.generated:
        document["origin"] = origin_entry(result.origin)
    return document | {
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


def origin_entry(origin: Origin) -> dict[str, Any]:
    """Where the report comes from, as the HTML header says it: when, what, which config."""
    return {
        "generated": origin.generated,
        "command": origin.command,
        "sources": list(origin.sources),
        "configFile": origin.config_file or None,
        "configDigest": origin.config_digest,
        "modes": dict(origin.modes),
    }


def fix_entry(fix: Fix, plan: Plan) -> dict[str, Any]:
    """A fix as JSON (the shape in the module docstring)."""
    entry: dict[str, Any] = {
        "description": fix.description,
        "path": fix.path,
        "file": plan.location(fix),
    }
    if fix.is_patch:
        entry["patch"] = fix.document
        entry["target"] = fix.target
    elif fix.document:
        entry["manifest"] = fix.document
    if fix.placeholders:
        entry["placeholders"] = list(fix.placeholders)
    if fix.source is not None:
        entry["source"] = {
            "file": fix.source.file,
            "edits": [
                {
                    "startLine": edit.start_line,
                    "startColumn": edit.start_column,
                    "endLine": edit.end_line,
                    "endColumn": edit.end_column,
                    "text": edit.text,
                }
                for edit in fix.source.edits
            ],
            "applied": plan.is_applied(fix),
        }
    return entry


def render(result: ReportInput) -> str:
    return json.dumps(document(result), indent=2, ensure_ascii=False) + "\n"
