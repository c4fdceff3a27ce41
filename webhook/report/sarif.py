"""`--format sarif`: SARIF 2.1.0, as code-scanning services (GitHub, GitLab, Azure) ingest it.

One rule per policy id, with its severity (`security-severity`, which GitHub ranks alerts by)
and documentation (`helpUri`); one result per finding, at the file and line of the object it
is about (a workload rejected for its namespace's sake is annotated in the workload's file),
plus a logical location naming the Kubernetes object. The level follows the mode as in every
format: `error` (enforce), `warning` (warn, advisory, unverified) or `note` (audit).

A result with a fix (webhook/fixes.py) carries it as SARIF `fixes` (§3.55): a label finding,
the exact edit of its source file (insertions at the right line and column, each a
`replacement` whose `deletedRegion` is an insertion point, or an empty value written over),
when the file can be edited safely; a namespace's missing default-deny, and a label patch
where the source cannot be edited, a new file in the fix directory (`uriBaseId`
GUARDRAIL_FIXES, declared in `originalUriBaseIds`, with its absolute URI once `--fix DIR`
has written it) whose content is inserted at its start. Columns count code points
(`columnKind`), lines end at \n or \r\n (SARIF's default `newlineSequences`).
"""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from webhook import __version__
from webhook.fixes import Fix, Plan
from webhook.policy import RULE_IDS, rule
from webhook.policy.model import Mode, Violation
from webhook.report.base import SECURITY_SEVERITY, ReportInput, help_uri, level

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FIXES_BASE = "GUARDRAIL_FIXES"  # the uriBaseId of files in the fix directory


def artifact_uri(file: str) -> str:
    """A relative URI reference for a relative path, a file:// URI for an absolute one."""
    path = PurePath(file)
    if path.is_absolute():
        return path.as_uri()
    # `./k8s/a.yaml` (what `check .` finds) is `k8s/a.yaml` to code scanning, which matches
    # a result to the repository's file by its path from the root.
    return quote(path.as_posix(), safe="/")


def _rule(policy: str) -> dict[str, Any]:
    info = rule(policy)
    return {
        "id": policy,
        "name": info.title,
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": info.summary},
        "helpUri": help_uri(policy),
        "help": {"text": f"{info.summary} See {help_uri(policy)}"},
        # Defaults of SPEC §3.5; a result's own level always says what happened to it.
        "defaultConfiguration": {"level": "warning" if info.default_mode is Mode.WARN else "error"},
        "properties": {
            "tags": ["kubernetes", "network-policy", "security"],
            "security-severity": SECURITY_SEVERITY[str(info.severity)],
            "severity": str(info.severity),
        },
    }


def _result(violation: Violation, plan: Plan) -> dict[str, Any]:
    finding = violation.finding
    qualified = "/".join(part for part in (finding.namespace, finding.kind, finding.name) if part)
    location: dict[str, Any] = {
        "logicalLocations": [
            {"name": finding.name, "fullyQualifiedName": qualified, "kind": "resource"}
        ]
    }
    if violation.file is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(violation.file)}}
        if violation.line is not None:
            physical["region"] = {"startLine": violation.line}
        location["physicalLocation"] = physical
    result: dict[str, Any] = {
        "ruleId": finding.policy,
        "ruleIndex": RULE_IDS.index(finding.policy),
        "level": level(violation),
        "message": {"text": finding.message},
        "locations": [location],
        "properties": {
            "mode": str(violation.mode),
            "kind": finding.kind,
            "namespace": finding.namespace,
            "name": finding.name,
            **({"unverified": True} if violation.unverified else {}),
        },
    }
    fix = plan.for_violation(violation)
    sarif_fix = _fix(fix, plan) if fix is not None else None
    if sarif_fix is not None:
        result["fixes"] = [sarif_fix]
    return result


def _fix(fix: Fix, plan: Plan) -> dict[str, Any] | None:
    """The fix as SARIF: the source edit if there is one (and --write has not made it), else
    the file in the fix directory; None when neither exists."""
    if fix.source is not None:
        if plan.is_applied(fix):
            return None  # made already: the source no longer holds the text it applies to
        return {
            "description": {"text": fix.description},
            "artifactChanges": [
                {
                    "artifactLocation": {"uri": artifact_uri(fix.source.file)},
                    "replacements": [
                        {
                            "deletedRegion": {
                                "startLine": edit.start_line,
                                "startColumn": edit.start_column,
                                "endLine": edit.end_line,
                                "endColumn": edit.end_column,
                            },
                            "insertedContent": {"text": edit.text},
                        }
                        for edit in fix.source.edits
                    ],
                }
            ],
        }
    if fix.path is None:
        return None
    return {
        "description": {"text": f"{fix.description} Written to {fix.path} in the fix directory."},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": quote(fix.path, safe="/"), "uriBaseId": FIXES_BASE},
                "replacements": [
                    {
                        # A new file: its whole content, inserted at its start.
                        "deletedRegion": {"startLine": 1, "startColumn": 1, "endColumn": 1},
                        "insertedContent": {"text": fix.text()},
                    }
                ],
            }
        ],
    }


def _fix_base(plan: Plan) -> dict[str, Any]:
    base: dict[str, Any] = {
        "description": {
            "text": "The fix directory: where guardrail check --fix DIR writes new files."
        }
    }
    if plan.directory is not None:
        base["uri"] = PurePath(os.path.abspath(plan.directory)).as_uri().rstrip("/") + "/"
    return base


def document(result: ReportInput) -> dict[str, Any]:
    results = [_result(v, result.fixes) for v in result.violations]
    run: dict[str, Any] = {"columnKind": "unicodeCodePoints"}
    if any(
        change["artifactLocation"].get("uriBaseId") == FIXES_BASE
        for found in results
        for fix in found.get("fixes", ())
        for change in fix["artifactChanges"]
    ):
        run["originalUriBaseIds"] = {FIXES_BASE: _fix_base(result.fixes)}
    origin = result.origin
    if origin.generated:
        # The run's when and what; the config digest tells two runs' configs apart.
        run["invocations"] = [
            {
                "executionSuccessful": True,
                "startTimeUtc": origin.generated,
                "properties": {
                    "command": origin.command,
                    "sources": list(origin.sources),
                    "configFile": origin.config_file or None,
                    "configDigest": origin.config_digest,
                },
            }
        ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "guardrail",
                        "version": __version__,
                        "rules": [_rule(policy) for policy in RULE_IDS],
                    }
                },
                "results": results,
                **run,
            }
        ],
    }


def render(result: ReportInput) -> str:
    return json.dumps(document(result), indent=2, ensure_ascii=False) + "\n"
