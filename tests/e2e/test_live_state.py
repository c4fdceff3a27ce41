"""The live state source in-process against the real API server: list+watch, resync, discovery
of Calico's CRDs, the confirmation read, staleness, and a worker forked from a preloaded state."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.guardrail import AS_EXEMPT, FIXTURES
from tests.e2e.harness import Cluster, eventually, free_port
from webhook.kube import K8S_POLICIES, KubeClient
from webhook.policy.model import Direction
from webhook.state.live import LiveState

pytestmark = pytest.mark.e2e

DEFAULT_DENY = """\
apiVersion: {api}
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec: {spec}
"""
K8S_SPEC = "{podSelector: {}, policyTypes: [Ingress, Egress]}"
CALICO_SPEC = "{selector: all(), types: [Ingress, Egress]}"


def names(state: LiveState, namespace: str) -> dict[str, list[str]]:
    """Who isolates every pod of namespace in each direction, as `kind/name` (the engine's
    deciding policy for addresses outside the cluster)."""
    found: dict[str, list[str]] = {}
    view = state.view(namespace)
    for direction in Direction:
        decision = view.decide_any_pod(direction)
        step = decision.outside.isolated_by
        if decision.isolated and step is not None and step.policy is not None:
            found[str(direction)] = [f"{step.policy.ref.kind}/{step.policy.ref.name}"]
    return found


@pytest.fixture(scope="module")
def state(cluster: Cluster) -> Iterator[LiveState]:
    """A LiveState on the harness's kubeconfig with a 2 s resync, synced."""
    cluster.kubectl("apply", "-f", str(FIXTURES / "calico-crds.yaml"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "-f",
        str(FIXTURES / "calico-crds.yaml"),
    )
    live = LiveState(KubeClient(str(cluster.kubeconfig)), resync_seconds=2)
    live.start()
    assert live.wait_synced(30)
    yield live
    live.stop()


@pytest.fixture
def namespace(cluster: Cluster, state: LiveState) -> Iterator[str]:
    name = f"live-{secrets.token_hex(3)}"
    # Created through the API directly: the session's webhook may or may not be registered.
    cluster.kubectl("create", "namespace", name)
    eventually(lambda: state.namespace(name), what=f"namespace {name} in the cache")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def test_discovers_calico_crds_and_watches_every_resource(state: LiveState) -> None:
    """With the crd.projectcalico.org and ClusterNetworkPolicy CRDs served, their policies and
    tiers are watched, staged ones not."""
    watched = {r.name for r in state.resources}
    assert watched == {
        "namespaces",
        "networkpolicies.networking.k8s.io",
        "networkpolicies.crd.projectcalico.org",
        "globalnetworkpolicies.crd.projectcalico.org",
        "tiers.crd.projectcalico.org",
        "clusternetworkpolicies",
    }
    # 0 once every watch stream is open (between a resync's list and its watch, a moment more).
    assert eventually(lambda: state.age_seconds() == 0.0, what="every watch stream open")


@pytest.mark.parametrize(
    ("api", "spec", "kind"),
    [
        ("networking.k8s.io/v1", K8S_SPEC, "NetworkPolicy"),
        ("crd.projectcalico.org/v1", CALICO_SPEC, "NetworkPolicy"),
    ],
    ids=["kubernetes", "calico-crd"],
)
def test_watch_adds_and_removes_a_default_deny(
    cluster: Cluster, state: LiveState, namespace: str, api: str, spec: str, kind: str
) -> None:
    """A default-deny applied with kubectl becomes the namespace's provider; deleted, it goes."""
    manifest = DEFAULT_DENY.format(api=api, name="deny", namespace=namespace, spec=spec)
    cluster.kubectl("apply", "-f", "-", input=manifest)
    provided = eventually(lambda: names(state, namespace), what="the watch delivering it")
    assert provided == {"Ingress": [f"{kind}/deny"], "Egress": [f"{kind}/deny"]}

    # As the platform admin: with the session's guardrail registered, the delete of a
    # namespace's only default-deny is otherwise (rightly) refused.
    cluster.kubectl("delete", "-f", "-", *AS_EXEMPT, input=manifest)
    eventually(lambda: names(state, namespace) == {}, what="the watch delivering the delete")


def test_resync_removes_an_object_whose_delete_was_missed(
    cluster: Cluster, state: LiveState, namespace: str
) -> None:
    """A policy the cache holds but the API server does not (a missed DELETED event) is gone
    after the next resync: a stale default-deny cannot admit pods forever."""
    ghost = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "ghost", "namespace": namespace, "resourceVersion": "1"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    watcher = state._watchers[K8S_POLICIES.name]
    state._apply(watcher, "ADDED", ghost)  # as if its DELETED event had been lost
    assert names(state, namespace) == {
        "Ingress": ["NetworkPolicy/ghost"],
        "Egress": ["NetworkPolicy/ghost"],
    }
    eventually(lambda: names(state, namespace) == {}, what="the resync dropping the ghost")


def test_namespace_deletion_does_not_drop_a_recreated_namespace_policies(
    cluster: Cluster, state: LiveState, namespace: str
) -> None:
    """The Namespace watch removes only the Namespace: policies leave through their own watch."""
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=DEFAULT_DENY.format(
            api="networking.k8s.io/v1", name="deny", namespace=namespace, spec=K8S_SPEC
        ),
    )
    eventually(lambda: names(state, namespace), what="the policy in the cache")
    watcher = state._watchers["namespaces"]
    state._apply(
        watcher,
        "DELETED",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    assert state.namespace(namespace) is None
    assert names(state, namespace) == {
        "Ingress": ["NetworkPolicy/deny"],
        "Egress": ["NetworkPolicy/deny"],
    }


def test_confirmation_reads_a_policy_just_applied(
    cluster: Cluster, state: LiveState, namespace: str
) -> None:
    """The confirmation read finds a default-deny created a moment ago, watch or no watch."""
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=DEFAULT_DENY.format(
            api="networking.k8s.io/v1", name="fresh", namespace=namespace, spec=K8S_SPEC
        ),
    )
    confirmed = state.confirm_providers(namespace)
    assert confirmed is not None
    for direction in Direction:
        decision = confirmed.decide_any_pod(direction)
        assert decision.isolated
        assert (
            decision.text
            == f'NetworkPolicy "fresh" in namespace "{namespace}" denies all {direction}'
        )

    assert names(state, namespace) == {
        "Ingress": ["NetworkPolicy/fresh"],
        "Egress": ["NetworkPolicy/fresh"],
    }


def test_confirmation_against_an_unreachable_api_is_none(cluster: Cluster, tmp_path: Path) -> None:
    """A confirmation that cannot reach the API server returns None (the caller keeps the
    cache's answer), and a state that never synced reports an infinite age."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        cluster.kubeconfig.read_text(encoding="utf-8").replace(
            cluster.server, f"https://127.0.0.1:{free_port()}"
        ),
        encoding="utf-8",
    )
    live = LiveState(KubeClient(str(kubeconfig)))
    live.start()
    try:
        assert live.wait_synced(1) is False
        assert live.age_seconds() == float("inf")
        live._reconcile([K8S_POLICIES])
        assert live.confirm_providers("default", timeout=2) is None
    finally:
        live.stop()


def test_a_worker_forked_after_the_masters_list_sees_what_changed_since(
    cluster: Cluster, namespace: str
) -> None:
    """A process lists the cluster as guardrail serve's master does and forks a worker after
    a default-deny was deleted and another created: the worker, resuming its watches from the
    master's lists, holds the new one only."""
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=DEFAULT_DENY.format(
            api="networking.k8s.io/v1", name="early", namespace=namespace, spec=K8S_SPEC
        ),
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    with subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.preload_fork", str(cluster.kubeconfig), namespace],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as master:
        try:
            assert master.stdout is not None
            assert master.stdin is not None
            assert master.stdout.readline().strip() == "listed"
            # Between the master's list and the worker's watch:
            cluster.kubectl("delete", "networkpolicy", "early", "-n", namespace, *AS_EXEMPT)
            cluster.kubectl(
                "apply",
                "-f",
                "-",
                input=DEFAULT_DENY.format(
                    api="networking.k8s.io/v1", name="late", namespace=namespace, spec=K8S_SPEC
                ),
            )
            master.stdin.write("fork\n")
            master.stdin.flush()
            seen = json.loads(master.stdout.readline())
            assert master.wait(timeout=60) == 0
        finally:
            if master.poll() is None:
                master.kill()
    assert seen == {"synced": True, "policies": ["late"]}
