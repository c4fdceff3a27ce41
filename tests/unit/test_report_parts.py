"""Reports from `check` and the live audit file each result in the same report."""

from __future__ import annotations

from typing import Any

import yaml

from webhook.checking import CheckResult
from webhook.policy.model import Finding, Mode, Violation
from webhook.report import Resource, render
from webhook.report.policyreport import cluster_reports


def pod_violation(namespace: str, name: str, message: str = "") -> Violation:
    text = message or f'[require-role-labels] Pod "{name}" in namespace "{namespace}" has no role'
    return Violation(
        Finding("require-role-labels", "Pod", namespace, name, text, text[:119]), Mode.ENFORCE
    )


def where(document: dict[str, Any]) -> tuple[str, str, str]:
    meta = document["metadata"]
    return document["kind"], meta.get("namespace", ""), meta["name"]


# -- the same report offline and live ----------------------------------------------------------
def test_check_and_audit_file_each_finding_in_the_same_report() -> None:
    """A namespace's missing default-deny is in that namespace's own PolicyReport in both
    `check --format policyreport` and the live audit; cluster-scoped findings in the
    ClusterPolicyReport; a pod's in its namespace's."""
    gap = '[require-default-deny] Namespace "shop" has no default-deny network policy'
    violations = [
        Violation(Finding("require-default-deny", "Namespace", "", "shop", gap, gap), Mode.ENFORCE),
        pod_violation("shop", "web"),
        Violation(
            Finding("restrict-allow-all", "GlobalNetworkPolicy", "", "open", "open", "open"),
            Mode.WARN,
        ),
    ]
    judged = [
        Resource("v1", "Namespace", "", "shop", "ns.yaml", 1),
        Resource("v1", "Pod", "shop", "web", "web.yaml", 1),
        Resource("projectcalico.org/v3", "GlobalNetworkPolicy", "", "open", "gnp.yaml", 1),
    ]
    offline = list(
        yaml.safe_load_all(
            render(CheckResult(resources=3, violations=violations, judged=judged), "policyreport")
        )
    )
    live = cluster_reports(violations, {}, now=0.0)

    def placement(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
        return {
            where(d): [f"{r['policy']} {r['resources'][0]['name']}" for r in d["results"]]
            for d in docs
        }

    assert (
        placement(offline)
        == placement(live)
        == {
            ("PolicyReport", "shop", "guardrail-shop"): [
                "require-default-deny shop",
                "require-role-labels web",
            ],
            ("ClusterPolicyReport", "", "guardrail-cluster"): ["restrict-allow-all open"],
        }
    )


def test_check_gives_a_judged_namespace_its_own_report_not_an_empty_cluster_report() -> None:
    """A clean Namespace in the input gets its (empty) PolicyReport; no ClusterPolicyReport
    appears when nothing cluster-scoped other than Namespaces was judged."""
    clean = CheckResult(
        resources=1, judged=[Resource("v1", "Namespace", "", "quiet", "ns.yaml", 1)]
    )
    docs = list(yaml.safe_load_all(render(clean, "policyreport")))
    assert [(where(d), d["results"]) for d in docs] == [
        (("PolicyReport", "quiet", "guardrail-quiet"), [])
    ]
