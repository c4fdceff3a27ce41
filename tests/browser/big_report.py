"""A big audit for the HTML report's tests and benchmark: 2,000 namespaces, 60,000 Deployments
and 50,000-odd findings of every level. The messages, the namespace headlines and their fix
commands are the real ones: the audit's own engine (`audit_objects`) judges one namespace of
each of the 21 kinds below, and every other namespace is a copy of its kind under its own name
(judging all 64,000 objects takes 10 to 30 s on 2 shared cores; copying takes one).

- every third namespace has no default-deny: each of its Deployments is an error, under the
  namespace's headline, and it holds an allow-all policy (a restrict-allow-all warning);
- every other Deployment lacks its `role` label (require-role-labels, an error);
- every seventh namespace is labelled `guardrail.dev/mode: audit` (with
  `allowNamespaceModeLabel`), so its findings are notes.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from webhook.audit import AuditResult, audit_objects
from webhook.checking import origin
from webhook.config import Config, parse_config
from webhook.policy.model import Violation
from webhook.report.base import Resource

NAMESPACES = 2_000
DEPLOYMENTS_PER_NAMESPACE = 30
KINDS = 21  # namespace i is of kind i % 21: what i % 3 and i % 7 decide
SERVER = "https://10.0.0.1:6443"
CONFIG_FILE = "guardrail-config.yaml"  # what the header names; config() is its content


def config() -> Config:
    return parse_config({"allowNamespaceModeLabel": True}, "<big report>")


def name(i: int) -> str:
    return f"team-{i:04d}"


def objects(namespaces: int, per_namespace: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for i in range(namespaces):
        ns = name(i)
        labels = {"guardrail.dev/mode": "audit"} if i % 7 == 3 else {}
        found.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "uid": f"ns-{i}", "labels": labels},
            }
        )
        if i % 3:
            found.append(_policy(ns, "default-deny", {}, {"policyTypes": ["Ingress", "Egress"]}))
        else:
            found.append(_policy(ns, "open", {"app": "legacy"}, {"ingress": [{}]}))
        for j in range(per_namespace):
            labels = {"app": f"app-{j:02d}"}
            if j % 2 == 0:
                labels["role"] = "backend"
            found.append(_deployment(ns, f"app-{j:02d}", labels, f"{i}-{j}"))
    return found


def _policy(ns: str, name: str, selects: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns, "uid": f"np-{ns}-{name}"},
        "spec": {"podSelector": {"matchLabels": selects} if selects else {}, **spec},
    }


def _deployment(ns: str, name: str, labels: dict[str, str], uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": f"deploy-{uid}"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def big_result(
    namespaces: int = NAMESPACES, per_namespace: int = DEPLOYMENTS_PER_NAMESPACE
) -> AuditResult:
    """The audit of the generated cluster, with the header `guardrail audit` would give it."""
    chosen = config()
    model = audit_objects(objects(min(namespaces, KINDS), per_namespace), chosen)
    violations: dict[str, list[Violation]] = {}
    judged: dict[str, list[Resource]] = {}
    for violation in model.violations:
        violations.setdefault(violation.finding.namespace or violation.finding.name, []).append(
            violation
        )
    for resource in model.judged:
        judged.setdefault(resource.namespace or resource.name, []).append(resource)
    result = AuditResult(server=SERVER)
    for i in range(namespaces):
        kind, ns = name(i % KINDS), name(i)
        result.violations.extend(_renamed(v, kind, ns) for v in violations.get(kind, []))
        result.judged.extend(_renamed_resource(r, kind, ns) for r in judged.get(kind, []))
        for (policy_id, scope), headline in model.headlines.items():
            if scope == kind:
                result.headlines[(policy_id, ns)] = _renamed(headline, kind, ns)
    result.resources = len(result.judged)
    result.origin = origin("audit", [f"cluster {SERVER}"], chosen, CONFIG_FILE, time.time())
    return result


def _renamed(violation: Violation, old: str, new: str) -> Violation:
    finding = violation.finding
    return replace(
        violation,
        finding=replace(
            finding,
            namespace=finding.namespace.replace(old, new),
            name=finding.name.replace(old, new),
            message=finding.message.replace(old, new),
            summary=finding.summary.replace(old, new),
        ),
    )


def _renamed_resource(resource: Resource, old: str, new: str) -> Resource:
    return replace(
        resource,
        namespace=resource.namespace.replace(old, new),
        name=resource.name.replace(old, new),
    )
