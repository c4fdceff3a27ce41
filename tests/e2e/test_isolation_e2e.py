"""The isolation engine through the real API server and kubectl (SPEC 2.2, 2.3, 2.6).

Each test is an attempt a tenant could make to run pods without isolation, or to remove the
isolation of running pods, with objects the engine reads: a GlobalNetworkPolicy selecting a
namespace by label, split-range allow-all rules, a default-deny scoped to some roles, a Calico
tier whose default action is changed. The Calico and ClusterNetworkPolicy objects are stored
through minimal CRDs with the real groups and kinds (tests/e2e/fixtures/calico-crds.yaml).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.guardrail import Guardrail, GuardrailControl
from tests.e2e.harness import Cluster, eventually

pytestmark = pytest.mark.e2e

LABELS = {"app": "web", "role": "web"}
CALICO = "crd.projectcalico.org/v1"


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/app:1"}]},
    }


def apply(
    cluster: Cluster, *objs: dict[str, Any], namespace: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["apply", *(["-n", namespace] if namespace else []), "-f", "-"]
    return cluster.kubectl(*args, input=yaml.safe_dump_all(objs, sort_keys=False), check=False)


def admitted_eventually(cluster: Cluster, namespace: str, labels: dict[str, str]) -> None:
    """A server-side dry run of a pod passes: guardrail's cache has seen the isolation."""

    def passes() -> bool:
        result = cluster.kubectl(
            "create",
            "--dry-run=server",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(pod("probe", labels)),
            check=False,
        )
        return result.returncode == 0

    eventually(passes, what=f"a pod admitted in {namespace}", timeout=30)


@pytest.fixture
def enforcing(webhook: GuardrailControl) -> Guardrail:
    return webhook.use("enforce")


@pytest.fixture
def namespace(cluster: Cluster, enforcing: Guardrail) -> Iterator[str]:
    name = _name("iso")
    cluster.create_namespace(name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def test_relabelling_a_namespace_out_of_its_global_default_deny_is_refused(
    cluster: Cluster, namespace: str
) -> None:
    """kubectl label ns that drops the only GlobalNetworkPolicy selecting it is denied."""
    value = secrets.token_hex(4)
    cluster.kubectl("label", "namespace", namespace, f"isolation={value}")
    gnp = {
        "apiVersion": CALICO,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"deny-{value}"},
        "spec": {
            "namespaceSelector": f"isolation == '{value}'",
            "selector": "all()",
            "types": ["Ingress", "Egress"],
        },
    }
    assert apply(cluster, gnp).returncode == 0
    try:
        admitted_eventually(cluster, namespace, LABELS)
        result = cluster.kubectl("label", "namespace", namespace, "isolation-", check=False)
        assert result.returncode == 1
        assert (
            'admission webhook "namespaces.guardrail.dev" denied the request: '
            f'[protect-default-deny] Relabelling Namespace "{namespace}" would leave namespace '
            f'"{namespace}" without a default-deny for Ingress and Egress. Keep the labels the '
            "isolating policies select on, or isolate it another way first."
        ) in result.stderr, result.stderr
        labels = cluster.kubectl(
            "get", "namespace", namespace, "-o", "jsonpath={.metadata.labels.isolation}"
        )
        assert labels.stdout == value
        # A relabel that keeps the selector true is fine.
        kept = cluster.kubectl("label", "namespace", namespace, "team=shop", check=False)
        assert kept.returncode == 0, kept.stderr
    finally:
        # The namespace first: while it lives, its only default-deny is protected.
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--timeout=60s")
        cluster.kubectl(
            "delete", "globalnetworkpolicies.crd.projectcalico.org", gnp["metadata"]["name"]
        )


def test_split_range_allow_all_in_an_isolated_namespace_is_refused(
    cluster: Cluster, namespace: str
) -> None:
    """Peers that together cover every address and every namespace reopen it: denied."""
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    assert apply(cluster, deny, namespace=namespace).returncode == 0
    admitted_eventually(cluster, namespace, LABELS)
    peers = [{"ipBlock": {"cidr": c}} for c in ("0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1")]
    peers.append(
        {
            "namespaceSelector": {
                "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "Exists"}]
            }
        }
    )
    opener = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "looks-narrow"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": peers}]},
    }
    result = apply(cluster, opener, namespace=namespace)
    assert result.returncode == 1
    assert (
        'admission webhook "networkpolicies.guardrail.dev" denied the request: '
        f'[protect-default-deny] Creating NetworkPolicy "looks-narrow" in namespace "{namespace}" '
        f'would leave namespace "{namespace}" without a default-deny for Ingress.'
    ) in result.stderr, result.stderr
    assert "rule spec.ingress[0] admits every source" in result.stderr
    listed = cluster.kubectl("get", "networkpolicy", "-n", namespace, "-o", "name")
    assert listed.stdout.split() == ["networkpolicy.networking.k8s.io/default-deny"]


def test_pod_outside_a_role_scoped_default_deny_is_refused_naming_why(
    cluster: Cluster, namespace: str
) -> None:
    """A default-deny selecting role in (web, db) isolates web pods, not a role=cache pod."""
    scoped = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-web-db"},
        "spec": {
            "podSelector": {
                "matchExpressions": [{"key": "role", "operator": "In", "values": ["web", "db"]}]
            },
            "policyTypes": ["Ingress", "Egress"],
        },
    }
    assert apply(cluster, scoped, namespace=namespace).returncode == 0
    admitted_eventually(cluster, namespace, LABELS)
    web = apply(cluster, pod("web", LABELS), namespace=namespace)
    assert web.stdout.strip() == "pod/web created", web.stderr
    cache = apply(cluster, pod("cache", {"app": "cache", "role": "cache"}), namespace=namespace)
    assert cache.returncode == 1
    assert (
        'admission webhook "workloads.guardrail.dev" denied the request: '
        f'[require-default-deny] Pod "cache" in namespace "{namespace}" would accept all Ingress '
        "and Egress traffic: no policy selects it."
    ) in cache.stderr, cache.stderr


def test_tier_default_action_deny_to_pass_is_refused_while_it_isolates(
    cluster: Cluster, namespace: str
) -> None:
    """A Calico tier whose Deny default isolates pods may not become Pass (SPEC 2.3)."""
    tier_name = _name("platform")
    tier = {
        "apiVersion": CALICO,
        "kind": "Tier",
        "metadata": {"name": tier_name},
        "spec": {"order": 100, "defaultAction": "Deny"},
    }
    calico_np = {
        "apiVersion": CALICO,
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{tier_name}.isolate", "namespace": namespace},
        "spec": {"tier": tier_name, "selector": "all()", "types": ["Ingress", "Egress"]},
    }
    assert apply(cluster, tier).returncode == 0
    try:
        assert apply(cluster, calico_np).returncode == 0
        admitted_eventually(cluster, namespace, LABELS)
        passing = {**tier, "spec": {"order": 100, "defaultAction": "Pass"}}
        result = apply(cluster, passing)
        assert result.returncode == 1
        assert (
            'admission webhook "networkpolicies.guardrail.dev" denied the request: '
            f'[protect-default-deny] Updating Tier "{tier_name}" would leave namespace '
            f'"{namespace}" without a default-deny for Ingress and Egress.'
        ) in result.stderr, result.stderr
        assert "defaultAction Pass" in result.stderr
        action = cluster.kubectl(
            "get", "tiers.crd.projectcalico.org", tier_name, "-o", "jsonpath={.spec.defaultAction}"
        )
        assert action.stdout == "Deny"
    finally:
        # The namespace first: while it lives, the tier and its policy isolate it (protected).
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--timeout=60s")
        cluster.kubectl("delete", "tiers.crd.projectcalico.org", tier_name, "--ignore-not-found")
