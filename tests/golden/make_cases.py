"""Write the golden AdmissionReview requests (run by hand when adding a case).

.venv/bin/python tests/golden/make_cases.py && .venv/bin/pytest tests/unit/test_golden.py --regen-golden
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CASES = Path(__file__).parent / "cases"


def review(
    uid: str,
    kind: dict[str, str],
    namespace: str,
    name: str,
    operation: str,
    obj: Any = None,
    old: Any = None,
    api_version: str = "admission.k8s.io/v1",
    username: str = "jane",
    dry_run: bool = False,
) -> dict[str, Any]:
    resource = kind["kind"].lower() + "s"
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": kind,
            "resource": {"group": kind["group"], "version": kind["version"], "resource": resource},
            "namespace": namespace,
            "name": name,
            "operation": operation,
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
        },
    }


POD = {"group": "", "version": "v1", "kind": "Pod"}
DEPLOYMENT = {"group": "apps", "version": "v1", "kind": "Deployment"}
NETPOL = {"group": "networking.k8s.io", "version": "v1", "kind": "NetworkPolicy"}
NAMESPACE = {"group": "", "version": "v1", "kind": "Namespace"}


def pod(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def deployment(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


DEFAULT_DENY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "shop"},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [{"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}],
    },
}
ALLOW_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-all", "namespace": "shop"},
    "spec": {"podSelector": {}, "ingress": [{}]},
}

ALL = {
    "pod-allowed": review(
        "u-1", POD, "shop", "web", "CREATE", pod("web", "shop", {"app": "web", "role": "frontend"})
    ),
    "pod-missing-role": review(
        "u-2", POD, "shop", "web", "CREATE", pod("web", "shop", {"app": "web"})
    ),
    "pod-missing-role-v1beta1": review(
        "u-3",
        POD,
        "shop",
        "web",
        "CREATE",
        pod("web", "shop", {"app": "web"}),
        api_version="admission.k8s.io/v1beta1",
    ),
    "pod-no-default-deny": review(
        "u-4",
        POD,
        "legacy",
        "worker",
        "CREATE",
        pod("worker", "legacy", {"app": "w", "role": "batch"}),
    ),
    "deployment-missing-labels": review(
        "u-5", DEPLOYMENT, "shop", "api", "CREATE", deployment("api", "shop", {})
    ),
    "pod-update-unrelated": review(
        "u-6", POD, "shop", "old", "UPDATE", pod("old", "shop", {}), pod("old", "shop", {})
    ),
    "pod-exempt-namespace": review(
        "u-7", POD, "kube-system", "dns", "CREATE", pod("dns", "kube-system", {})
    ),
    "netpol-delete-last-default-deny": review(
        "u-8", NETPOL, "shop", "default-deny", "DELETE", None, DEFAULT_DENY
    ),
    "netpol-allow-all-warns": review("u-9", NETPOL, "shop", "allow-all", "CREATE", ALLOW_ALL),
    "namespace-create-warns": review(
        "u-10",
        NAMESPACE,
        "",
        "payments",
        "CREATE",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments"}},
    ),
    "pod-dry-run-denied": review(
        "u-11", POD, "shop", "web", "CREATE", pod("web", "shop", {"role": "x"}), dry_run=True
    ),
}


def main() -> None:
    CASES.mkdir(exist_ok=True)
    for name, doc in ALL.items():
        (CASES / f"{name}.request.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
