"""`--format policyreport`: `wgpolicyk8s.io/v1alpha2` PolicyReports, one per namespace, and a
ClusterPolicyReport for cluster-scoped objects, as a multi-document YAML stream that
`kubectl apply -f -` accepts (Policy Reporter and Kyverno's UI read the same objects).

Results list failures only (reports must not bloat etcd) and the summary counts the results
listed, as Kyverno's do; every namespace judged gets a report, an empty one when clean.
Enforce and audit violations are `fail`, warn-mode and advisory ones `warn`; severity is the
policy's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from webhook.policy.model import Mode, Violation
from webhook.report.base import POLICY_INFO, ReportInput, Resource, api_version_for

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "guardrail"
CATEGORY = "Network security"
CLUSTER_REPORT_NAME = "guardrail-cluster"
_Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def report_name(namespace: str) -> str:
    return f"guardrail-{namespace}" if namespace else CLUSTER_REPORT_NAME


def result_of(violation: Violation, judged: Iterable[Resource]) -> dict[str, Any]:
    finding = violation.finding
    resource: dict[str, Any] = {
        "apiVersion": api_version_for(violation, list(judged)),
        "kind": finding.kind,
        "name": finding.name,
    }
    if finding.namespace:
        resource["namespace"] = finding.namespace
    properties = {"mode": str(violation.mode)}
    if violation.file is not None:
        properties["file"] = violation.file
        if violation.line is not None:
            properties["line"] = str(violation.line)  # properties are map[string]string
    return {
        "policy": finding.policy,
        "rule": finding.policy,
        "result": _result(violation),
        "severity": POLICY_INFO[finding.policy].severity,
        "category": CATEGORY,
        "message": finding.message,
        "resources": [resource],
        "source": SOURCE,
        "scored": True,
        "properties": properties,
    }


def _result(violation: Violation) -> str:
    # An advisory finding (a new namespace without a default-deny) is a heads-up, not a failure.
    return "warn" if violation.mode is Mode.WARN or violation.finding.advisory else "fail"


def reports(result: ReportInput) -> list[dict[str, Any]]:
    """One report per scope (namespace, then the cluster), sorted, each with its summary."""
    judged = list(result.judged)
    scopes: dict[str, list[Violation]] = {}
    for resource in judged:
        scopes.setdefault(resource.namespace, [])
    for violation in result.violations:
        scopes.setdefault(violation.finding.namespace, []).append(violation)
    documents = []
    for namespace in sorted(scopes, key=lambda ns: (ns == "", ns)):
        violations = scopes[namespace]
        results = [result_of(v, judged) for v in violations]
        metadata: dict[str, Any] = {"name": report_name(namespace)}
        if namespace:
            metadata["namespace"] = namespace
        metadata["labels"] = {"app.kubernetes.io/managed-by": SOURCE}
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
                "metadata": metadata,
                "summary": {
                    "pass": 0,  # failures only: passes would bloat etcd
                    "fail": sum(1 for r in results if r["result"] == "fail"),
                    "warn": sum(1 for r in results if r["result"] == "warn"),
                    "error": 0,
                    "skip": 0,
                },
                "results": results,
            }
        )
    return documents


def render(result: ReportInput) -> str:
    documents = reports(result)
    if not documents:
        return ""
    text: str = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=120,
    )
    return text
