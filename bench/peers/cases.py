"""The bench's cases: Pods, the namespaces they are created in, and the verdict every webhook owes.

Every peer enforces Guardrail's two Pod rules with its own engine: `require-role-labels` (labels
`app` and `role` present and non-empty) and `require-default-deny` (the namespace isolates its
pods for Ingress and Egress). The peers' rule is the classic default-deny one, over the
namespace's NetworkPolicies:

- a direction is isolated when some policy selects every pod (`podSelector: {}`) and lists the
  direction in `policyTypes`,
- unless some policy that selects every pod has a rule for that direction with neither peers
  nor ports (an allow-all, which reopens it).

Guardrail's isolation engine (SPEC 2.6) decides far more shapes than that; on the cases below
both rules agree, which tests/unit/test_bench_cases.py checks against Guardrail in process and
the benchmark checks against every running peer before it measures anything.

Each measured webhook (a "subject") sees only namespaces labelled ``guardrail-bench=<subject>``:
one per fixture below, ``bench-<subject>`` for the isolated one (the one pods are timed in) and
``bench-<subject>-<fixture>`` for the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LABEL = "guardrail-bench"
MEASURED = "isolated"  # the fixture the timed pods are created in
REQUIRED_LABELS = ("app", "role")
LABELS = {"app": "bench", "role": "worker"}


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "name": name,
        "spec": spec,
    }


DENY_ALL = _policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
DENY_INGRESS = _policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_EGRESS = _policy("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]})
DENY_DB_ONLY = _policy(
    "default-deny-db",
    {"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Ingress", "Egress"]},
)
ALLOW_ALL_INGRESS = _policy(
    "allow-all-ingress", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}
)
# A rule with peers is not an allow-all: the namespace stays isolated.
ALLOW_FRONTEND = _policy(
    "allow-frontend",
    {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}],
    },
)

# fixture name -> the NetworkPolicies of its namespace
FIXTURES: dict[str, tuple[dict[str, Any], ...]] = {
    "isolated": (DENY_ALL,),
    "split": (DENY_INGRESS, DENY_EGRESS, ALLOW_FRONTEND),
    "none": (),
    "ingress-only": (DENY_INGRESS,),
    "selected-only": (DENY_DB_ONLY,),
    "reopened": (DENY_ALL, ALLOW_ALL_INGRESS),
}


@dataclass(frozen=True)
class Case:
    """A Pod created in one fixture's namespace, and what every webhook must answer."""

    name: str
    fixture: str
    labels: dict[str, str] = field(default_factory=lambda: dict(LABELS))
    denied_by: str = ""  # the rule id the denial names; "" when the Pod is allowed

    @property
    def allowed(self) -> bool:
        return not self.denied_by


def _without(key: str) -> dict[str, str]:
    return {k: v for k, v in LABELS.items() if k != key}


CASES: tuple[Case, ...] = (
    Case("labelled", "isolated"),
    Case("missing-role", "isolated", _without("role"), "require-role-labels"),
    Case("missing-app", "isolated", _without("app"), "require-role-labels"),
    Case("empty-role", "isolated", {**LABELS, "role": ""}, "require-role-labels"),
    Case("no-labels", "isolated", {}, "require-role-labels"),
    Case("split-policies", "split"),
    Case("no-policy", "none", denied_by="require-default-deny"),
    Case("ingress-only", "ingress-only", denied_by="require-default-deny"),
    Case("selects-other-pods", "selected-only", denied_by="require-default-deny"),
    Case("allow-all-reopens", "reopened", denied_by="require-default-deny"),
)


def namespace_name(subject: str, fixture: str) -> str:
    return f"bench-{subject}" if fixture == MEASURED else f"bench-{subject}-{fixture}"


def namespace(subject: str, fixture: str, *, labelled: bool = True) -> dict[str, Any]:
    name = namespace_name(subject, fixture)
    labels = {"kubernetes.io/metadata.name": name}
    if labelled:
        labels[LABEL] = subject
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def network_policies(namespace: str, fixture: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": p["apiVersion"],
            "kind": p["kind"],
            "metadata": {"name": p["name"], "namespace": namespace},
            "spec": p["spec"],
        }
        for p in FIXTURES[fixture]
    ]


def pod(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    labels = dict(LABELS) if labels is None else labels
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "c", "image": "registry.example.com/app:1"}]},
    }


def admission_review(obj: dict[str, Any], uid: str, user: str = "bench-admin") -> dict[str, Any]:
    """A Pod CREATE as the API server sends it to a validating webhook (admission.k8s.io/v1)."""
    meta = obj["metadata"]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": meta["name"],
            "namespace": meta["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": user, "groups": ["system:masters", "system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }
