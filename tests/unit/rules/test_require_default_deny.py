"""require-default-deny (SPEC 2.2): pods run only where a default-deny isolates them."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.policy_support import (
    DENY_ALL,
    DNS_EGRESS,
    EGRESS,
    GROUPS,
    INGRESS,
    cluster,
    deny,
    deployment,
    namespace,
    netpol,
    one_liner_manifest,
    pod,
    request,
    state,
)
from webhook.policy.model import Direction, Operation
from webhook.policy.rule import Settings
from webhook.policy.rules.require_default_deny import DIRECTIONS


def test_pod_in_namespace_without_default_deny_gets_exact_message() -> None:
    """The message names the namespace, the missing direction and a one-liner that fixes it."""
    indexed = state(namespace("shop"), netpol("deny-in", {"podSelector": {}}))
    [finding] = deny(request(pod()), indexed)
    assert finding.message == (
        '[require-default-deny] Pod "web" in namespace "shop" cannot run there: namespace "shop" '
        "has no default-deny network policy for Egress. Apply one first: echo "
        '\'{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":'
        '{"name":"default-deny-egress","namespace":"shop"},"spec":{"podSelector":{},'
        '"policyTypes":["Egress"]}}\' | kubectl apply -f -'
    )
    assert (finding.policy, finding.kind, finding.namespace, finding.name) == (
        "require-default-deny",
        "Pod",
        "shop",
        "web",
    )
    assert not finding.advisory
    assert len(finding.summary) < 120
    assert 'namespace "shop" has no default-deny for Egress' in finding.summary


def test_both_directions_missing_are_named_and_fixed_at_once() -> None:
    """With nothing in place, one policy for both directions is suggested."""
    [finding] = deny(request(pod()), state(namespace("shop")))
    assert "has no default-deny network policy for Ingress and Egress." in finding.message
    manifest = one_liner_manifest(finding.message)
    assert manifest["metadata"] == {"name": "default-deny", "namespace": "shop"}
    assert manifest["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize(
    "present",
    [set(), {INGRESS}, {EGRESS}],
    ids=["none", "ingress-only", "egress-only"],
)
def test_applying_the_suggested_one_liner_satisfies_the_policy(present: set[Direction]) -> None:
    """The suggested policy, once applied, makes the same pod pass, without replacing another."""
    objs = [namespace("shop")]
    if present:
        objs.append(netpol("default-deny", {"podSelector": {}, "policyTypes": sorted(present)}))
    indexed = state(*objs)
    [finding] = deny(request(pod()), indexed)
    indexed.upsert(one_liner_manifest(finding.message))
    assert deny(request(pod()), indexed) == []


WORKLOADS = [
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
]


@pytest.mark.parametrize("kind", WORKLOADS)
def test_scaling_down_or_touching_a_workload_is_never_denied(kind: str) -> None:
    """An UPDATE that neither changes the template nor raises replicas starts no pod (2.2)."""
    obj = deployment()
    obj["kind"] = kind
    obj["apiVersion"] = "/".join(p for p in GROUPS[kind] if p)
    old = copy.deepcopy(obj)
    old["spec"]["replicas"] = 3
    obj["spec"]["replicas"] = 0
    obj["metadata"]["annotations"] = {"touched": "yes"}
    assert deny(request(obj, Operation.UPDATE, old), state(namespace("shop"))) == []
    raised = copy.deepcopy(old)
    raised["spec"]["replicas"] = 5
    [finding] = deny(request(raised, Operation.UPDATE, old), state(namespace("shop")))
    assert finding.kind == kind


@pytest.mark.parametrize("kind", WORKLOADS)
@pytest.mark.parametrize("operation", [Operation.CREATE, Operation.UPDATE], ids=str)
def test_workloads_are_judged_on_create_and_update(kind: str, operation: Operation) -> None:
    """Every workload kind is told at apply time that its pods would be rejected.

    The UPDATE changes the pod template (a rollout): it starts new pods.
    """
    obj = deployment()
    obj["kind"] = kind
    obj["apiVersion"] = "/".join(p for p in GROUPS[kind] if p)
    old = copy.deepcopy(obj)
    old["spec"]["template"]["spec"] = {"containers": [{"name": "c", "image": "old"}]}
    old["spec"]["jobTemplate"] = {"spec": {"template": old["spec"]["template"]}}  # CronJob's
    [finding] = deny(request(obj, operation, old), state(namespace("shop")))
    assert finding.message.startswith(
        f'[require-default-deny] {kind} "web" in namespace "shop" cannot run there: '
        'namespace "shop" has no default-deny network policy for Ingress and Egress.'
    )
    assert finding.kind == kind


@pytest.mark.parametrize(
    ("obj", "operation"),
    [
        (pod(), Operation.UPDATE),
        (pod(), Operation.DELETE),
        (deployment(), Operation.DELETE),
        (pod(annotations={"kubernetes.io/config.mirror": "x"}), Operation.CREATE),
        (
            {
                **deployment(),
                "metadata": {
                    "name": "web",
                    "namespace": "shop",
                    "deletionTimestamp": "2024-01-01T00:00:00Z",
                },
            },
            Operation.UPDATE,
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop"},
            },
            Operation.CREATE,
        ),
    ],
    ids=[
        "pod-update",
        "pod-delete",
        "deployment-delete",
        "mirror-pod",
        "deployment-being-deleted",
        "service",
    ],
)
def test_requests_that_start_no_pods_are_not_judged(
    obj: dict[str, Any], operation: Operation
) -> None:
    """Pod updates, deletes, mirror pods (from a node), finalizer updates and other kinds pass."""
    judged = replace(request(obj, operation, obj), username="system:node:worker-1")
    assert deny(judged, state(namespace("shop"))) == []


def test_mirror_annotation_set_by_a_user_is_judged() -> None:
    """A user-made pod carrying the mirror annotation still needs a default-deny."""
    obj = pod(annotations={"kubernetes.io/config.mirror": "x"})
    judged = replace(request(obj), username="jane")
    assert [f.policy for f in deny(judged, state(namespace("shop")))] == ["require-default-deny"]


def test_isolated_namespace_passes() -> None:
    """A namespace with a default-deny for both directions lets pods in."""
    indexed = state(namespace("shop"), netpol("default-deny", DENY_ALL))
    assert deny(request(pod()), indexed) == []


def test_two_policies_may_share_the_directions() -> None:
    """One policy per direction is as good as one for both."""
    indexed = state(
        namespace("shop"),
        netpol("deny-in", {"podSelector": {}}),
        netpol("deny-out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": DNS_EGRESS}),
    )
    assert deny(request(pod()), indexed) == []


def test_only_configured_directions_are_required() -> None:
    """With directions [Ingress], an ingress-only default-deny is enough."""
    settings = Settings(values={DIRECTIONS: (INGRESS,)})
    indexed = state(namespace("shop"), netpol("deny-in", {"podSelector": {}}))
    assert deny(request(pod()), indexed, settings) == []
    [finding] = deny(request(pod()), state(namespace("shop")), settings)
    assert "for Ingress." in finding.message
    assert one_liner_manifest(finding.message)["spec"]["policyTypes"] == ["Ingress"]


def test_exempt_namespace_is_never_judged() -> None:
    """Pods in an exempt namespace pass without a default-deny."""
    assert deny(request(pod(ns="kube-system")), state(namespace("kube-system"))) == []


def test_terminating_namespace_is_not_judged() -> None:
    """Nothing starts in a namespace being deleted, so it is not judged."""
    assert deny(request(pod()), state(namespace("shop", terminating=True))) == []


def test_namespace_unknown_to_the_state_is_judged() -> None:
    """A namespace the state has never seen has no default-deny (offline check of a lone pod)."""
    [finding] = deny(request(pod(ns="ghost")), state())
    assert 'namespace "ghost" has no default-deny network policy for Ingress and Egress' in (
        finding.message
    )


def test_generate_name_pod_is_named_readably() -> None:
    """Controller-made pods are named by their generateName."""
    obj = pod(name="")
    obj["metadata"]["generateName"] = "web-7d9f-"
    [finding] = deny(request(obj, name=""), state(namespace("shop")))
    assert finding.message.startswith(
        '[require-default-deny] Pod "web-7d9f-" (generateName) in namespace "shop" cannot run'
    )


def test_namespace_create_gets_an_advisory_warning() -> None:
    """A new namespace is allowed, with a warning that its pods will be rejected until isolated."""
    [finding] = deny(request(namespace("shop")), state())
    assert finding.advisory
    assert (finding.kind, finding.namespace, finding.name) == ("Namespace", "", "shop")
    assert finding.message == (
        '[require-default-deny] Namespace "shop" has no default-deny network policy for Ingress '
        "and Egress: pods created in it will be rejected until one exists. Apply one right after "
        'creating it: echo \'{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",'
        '"metadata":{"name":"default-deny","namespace":"shop"},"spec":{"podSelector":{},'
        '"policyTypes":["Ingress","Egress"]}}\' | kubectl apply -f -'
    )
    assert finding.summary == (
        '[require-default-deny] Namespace "shop": pods will be rejected until a default-deny for '
        "Ingress and Egress exists"
    )


def test_namespace_create_with_its_policies_in_the_same_manifests_is_quiet() -> None:
    """Offline, a namespace whose default-deny is among the checked manifests gets no warning."""
    indexed = state(namespace("shop"), netpol("default-deny", DENY_ALL))
    assert deny(request(namespace("shop")), indexed) == []


@pytest.mark.parametrize(
    ("obj", "operation"),
    [
        (namespace("kube-system"), Operation.CREATE),
        (namespace("shop"), Operation.UPDATE),
        (namespace("shop"), Operation.DELETE),
    ],
    ids=["exempt", "update", "delete"],
)
def test_namespace_advisory_only_on_create_of_judged_namespaces(
    obj: dict[str, Any], operation: Operation
) -> None:
    """Exempt namespaces, and namespace updates or deletes, get no advisory."""
    assert deny(request(obj, operation, obj), state()) == []


def test_global_default_deny_satisfies_require_default_deny() -> None:
    """A Calico GlobalNetworkPolicy default-deny isolates every namespace it selects."""
    assert deny(request(pod(ns="team-03")), cluster(5)) == []
