"""`--format sarif`: SARIF 2.1.0, as code-scanning services (GitHub, GitLab, Azure) ingest it.

One rule per policy id, with its severity (`security-severity`, which GitHub ranks alerts by)
and documentation (`helpUri`); one result per finding, at the file and line of the object it
is about (a workload rejected for its namespace's sake is annotated in the workload's file),
plus a logical location naming the Kubernetes object. The level follows the mode as in every
format: `error` (enforce), `warning` (warn, advisory, unverified) or `note` (audit).
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from webhook import __version__
from webhook.policy import RULE_IDS, rule
from webhook.policy.model import Mode, Violation
from webhook.report.base import SECURITY_SEVERITY, ReportInput, help_uri, level

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


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


def _result(violation: Violation) -> dict[str, Any]:
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
    return {
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


def document(result: ReportInput) -> dict[str, Any]:
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
                "results": [_result(v) for v in result.violations],
            }
        ],
    }


def render(result: ReportInput) -> str:
    return json.dumps(document(result), indent=2, ensure_ascii=False) + "\n"
