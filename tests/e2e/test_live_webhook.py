"""Guardrail as users meet it: `guardrail serve` on the live state of a real API server, called by
that API server through deploy/'s webhook configuration, driven with the real kubectl.

Every test asserts on what kubectl prints. Tests run in file order, grouped by the guardrail
configuration they need (enforce, then warn, then audit), so the session's guardrail process
is restarted only when the configuration changes.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.checkout import copy_as_cloned
from tests.e2e.guardrail import AS_EXEMPT, Guardrail, GuardrailControl
from tests.e2e.harness import Cluster, eventually

pytestmark = pytest.mark.e2e

LABELS = {"app": "web", "role": "frontend"}


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def pod(name: str = "web", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": LABELS if labels is None else labels},
        "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
    }


def deployment(name: str = "api", labels: dict[str, str] | None = None) -> dict[str, Any]:
    template_labels = {"app": name} if labels is None else labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": template_labels},
                "spec": {"containers": [{"name": name, "image": "registry.invalid/api:1"}]},
            },
        },
    }


def default_deny(name: str = "default-deny") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def dump(*objs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(objs, sort_keys=False)


def apply(
    cluster: Cluster, namespace: str, *objs: dict[str, Any], extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`kubectl apply -n NAMESPACE -f -` of objs, not raising on a non-zero exit."""
    return cluster.kubectl(
        "apply", "-n", namespace, *extra, "-f", "-", input=dump(*objs), check=False
    )


def denial(webhook: str, message: str) -> str:
    return f'admission webhook "{webhook}" denied the request: {message}'


@pytest.fixture
def enforcing(webhook: GuardrailControl) -> Guardrail:
    return webhook.use("enforce")


@pytest.fixture
def warning(webhook: GuardrailControl) -> Guardrail:
    return webhook.use("warn")


@pytest.fixture
def auditing(webhook: GuardrailControl) -> Guardrail:
    return webhook.use("audit")


@pytest.fixture
def namespace(cluster: Cluster, webhook: GuardrailControl) -> Iterator[str]:
    """A fresh namespace without any policy, deleted (without waiting) afterwards."""
    if webhook.current is None or not webhook.current.running:
        webhook.use("enforce")  # Namespace CREATE goes through the webhook too
    name = _name("e2e")
    cluster.create_namespace(name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def protected(cluster: Cluster, namespace: str) -> str:
    """A fresh namespace holding a Kubernetes default-deny NetworkPolicy."""
    applied = apply(cluster, namespace, default_deny())
    assert applied.stdout.strip() == "networkpolicy.networking.k8s.io/default-deny created"
    return namespace


# -- enforce ------------------------------------------------------------------------------------
LABEL_CASES = [
    (
        pod(labels={"app": "web"}),
        "pod",
        'error when creating "STDIN": '
        + denial(
            "workloads.guardrail.dev",
            '[require-role-labels] Pod "web" in namespace "{ns}" is missing required labels: role.',
        ),
    ),
    (
        deployment(),
        "deployment",
        'error when creating "STDIN": '
        + denial(
            "workloads.guardrail.dev",
            '[require-role-labels] Deployment "api" in namespace "{ns}"',
        ),
    ),
]


@pytest.mark.parametrize(
    ("manifest", "kind", "printed"), LABEL_CASES, ids=[case[1] for case in LABEL_CASES]
)
def test_workload_without_role_label_is_rejected(
    cluster: Cluster,
    enforcing: Guardrail,
    protected: str,
    manifest: dict[str, Any],
    kind: str,
    printed: str,
) -> None:
    """kubectl apply of a Pod, or a Deployment whose template lacks `role`, prints the denial."""
    result = apply(cluster, protected, manifest)
    assert result.returncode == 1
    # kubectl adds "(Forbidden)" only when the denial's status carries that reason.
    assert re.match(r"Error from server( \(Forbidden\))?: ", result.stderr), result.stderr
    assert printed.format(ns=protected) in result.stderr
    assert "role" in result.stderr.split("[require-role-labels]", 1)[1]
    listed = cluster.kubectl("get", kind, "-n", protected, "-o", "name")
    assert listed.stdout == ""


def test_labelled_pod_in_protected_namespace_is_created(
    cluster: Cluster, enforcing: Guardrail, protected: str
) -> None:
    """A Pod with its role labels, in a namespace with a default-deny, is created silently."""
    result = apply(cluster, protected, pod())
    assert result.stdout.strip() == "pod/web created"
    assert result.stderr == ""


def test_default_deny_and_pod_in_one_apply(
    cluster: Cluster, enforcing: Guardrail, namespace: str, tmp_path: Path
) -> None:
    """Without a default-deny a Pod is rejected; one `kubectl apply -f dir/` of both succeeds."""
    alone = apply(cluster, namespace, pod())
    assert alone.returncode == 1
    assert denial("workloads.guardrail.dev", "[require-default-deny]") in alone.stderr
    assert f'namespace "{namespace}"' in alone.stderr

    # kubectl applies a directory's files in name order: the policy first, the pod a moment
    # later, before guardrail's watch can have seen the policy (the live confirmation's case).
    (tmp_path / "00-default-deny.yaml").write_text(dump(default_deny()), encoding="utf-8")
    (tmp_path / "10-pod.yaml").write_text(dump(pod()), encoding="utf-8")
    together = cluster.kubectl("apply", "-n", namespace, "-f", f"{tmp_path}/")
    assert together.stdout.splitlines() == [
        "networkpolicy.networking.k8s.io/default-deny created",
        "pod/web created",
    ]
    assert together.stderr == ""


def test_policy_then_pod_admitted_deleted_then_rejected(
    cluster: Cluster, enforcing: Guardrail, namespace: str
) -> None:
    """A pod right after its default-deny is admitted; once the policy is gone it is rejected."""
    assert apply(cluster, namespace, default_deny()).returncode == 0
    admitted = apply(cluster, namespace, pod("first"))
    assert admitted.stdout.strip() == "pod/first created"

    # The platform admin (exempt by username in guardrail's config) removes the policy.
    deleted = cluster.kubectl(
        "delete", "networkpolicy", "default-deny", "-n", namespace, *AS_EXEMPT
    )
    assert deleted.stdout.strip() == 'networkpolicy.networking.k8s.io "default-deny" deleted'

    def rejected() -> str | None:
        result = apply(cluster, namespace, pod(_name("later")))
        return result.stderr if result.returncode == 1 else None

    stderr = eventually(rejected, what="a pod rejected after the default-deny's deletion")
    assert denial("workloads.guardrail.dev", "[require-default-deny]") in stderr
    assert f'namespace "{namespace}"' in stderr


DRY_RUN_CASES = [
    (pod("web", {"app": "web"}), 1, "[require-role-labels]"),
    (pod("web"), 0, "pod/web created (server dry run)"),
]


@pytest.mark.parametrize(
    ("manifest", "code", "printed"), DRY_RUN_CASES, ids=["unlabelled-denied", "labelled-created"]
)
def test_server_dry_run_gets_the_same_verdict(
    cluster: Cluster,
    enforcing: Guardrail,
    protected: str,
    manifest: dict[str, Any],
    code: int,
    printed: str,
) -> None:
    """`kubectl apply --dry-run=server` is judged like the real thing, and nothing is stored."""
    result = apply(cluster, protected, manifest, extra=("--dry-run=server",))
    assert result.returncode == code
    assert printed in (result.stdout if code == 0 else result.stderr)
    if code:
        assert denial("workloads.guardrail.dev", printed) in result.stderr
    assert cluster.kubectl("get", "pods", "-n", protected, "-o", "name").stdout == ""


def test_last_default_deny_cannot_be_deleted_but_namespace_can(
    cluster: Cluster, enforcing: Guardrail, protected: str
) -> None:
    """Deleting the only default-deny is rejected; deleting its whole namespace completes."""
    refused = cluster.kubectl(
        "delete", "networkpolicy", "default-deny", "-n", protected, check=False
    )
    assert refused.returncode == 1
    assert denial("networkpolicies.guardrail.dev", "[protect-default-deny]") in refused.stderr
    assert protected in refused.stderr.split("[protect-default-deny]", 1)[1]
    kept = cluster.kubectl("get", "networkpolicy", "-n", protected, "-o", "name")
    assert kept.stdout.strip() == "networkpolicy.networking.k8s.io/default-deny"

    deleted = cluster.kubectl("delete", "namespace", protected, "--timeout=90s", timeout=120)
    assert deleted.stdout.strip() == f'namespace "{protected}" deleted'
    gone = cluster.kubectl("get", "namespace", protected, check=False)
    assert f'namespaces "{protected}" not found' in gone.stderr


def test_calico_global_network_policy_provides_and_is_protected(
    cluster: Cluster, enforcing: Guardrail
) -> None:
    """A crd.projectcalico.org GlobalNetworkPolicy is the default-deny of the namespaces it
    selects: their pods are admitted, and deleting it is rejected while they rely on it."""
    token = secrets.token_hex(3)
    covered = [f"calico-{token}-a", f"calico-{token}-b"]
    for name in covered:
        cluster.create_namespace(name)
        cluster.kubectl("label", "namespace", name, f"e2e-calico={token}")
    gnp_name = f"default-deny-{token}"
    gnp = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": gnp_name},
        "spec": {
            "namespaceSelector": f"e2e-calico == '{token}'",
            "selector": "all()",
            "types": ["Ingress", "Egress"],
        },
    }
    try:
        created = cluster.kubectl("apply", "-f", "-", input=dump(gnp))
        assert created.stdout.strip() == (
            f"globalnetworkpolicy.crd.projectcalico.org/{gnp_name} created"
        )
        admitted = apply(cluster, covered[0], pod())
        assert admitted.stdout.strip() == "pod/web created"
        assert admitted.stderr == ""

        refused = cluster.kubectl(
            "delete", "globalnetworkpolicy.crd.projectcalico.org", gnp_name, check=False
        )
        assert refused.returncode == 1
        assert denial("networkpolicies.guardrail.dev", "[protect-default-deny]") in refused.stderr
        for name in covered:
            assert name in refused.stderr
    finally:
        cluster.kubectl(
            "delete",
            "globalnetworkpolicy.crd.projectcalico.org",
            gnp_name,
            "--ignore-not-found",
            *AS_EXEMPT,
        )
        for name in covered:
            cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def _metric(served: Guardrail, name: str, **labels: str) -> float:
    value = served.metric(name, **labels)
    return -1.0 if value is None else value


def test_apiserver_down_cache_keeps_answering(
    cluster: Cluster, enforcing: Guardrail, protected: str
) -> None:
    """With the API server killed, guardrail answers from its synced cache and exports the
    staleness; restarted, its watch resumes and sees a change made after the restart."""
    namespace = _name("bare")  # a second namespace, without a default-deny
    cluster.create_namespace(namespace)
    policy = {**default_deny(), "metadata": {"name": "default-deny", "namespace": protected}}
    labelled = {**pod(), "metadata": {"name": "web", "namespace": protected, "labels": LABELS}}
    eventually(
        lambda: enforcing.review(labelled, resource="pods")["allowed"],
        what="the cache holding the default-deny",
    )
    restarts_before = _metric(enforcing, "guardrail_watch_restarts_total", resource="namespaces")

    cluster.stop_apiserver()
    try:
        assert enforcing.review(labelled, resource="pods")["allowed"] is True
        unlabelled = {**labelled, "metadata": {**labelled["metadata"], "labels": {"app": "web"}}}
        denied = enforcing.review(unlabelled, resource="pods")
        assert denied["allowed"] is False
        assert denied["status"]["message"].startswith("[require-role-labels]")
        elsewhere = {**labelled, "metadata": {**labelled["metadata"], "namespace": namespace}}
        unprotected = enforcing.review(elsewhere, resource="pods")
        assert unprotected["allowed"] is False  # the failed confirmation keeps the cache's no
        assert f'namespace "{namespace}"' in unprotected["status"]["message"]
        removal = enforcing.review(
            policy, operation="DELETE", resource="networkpolicies", group="networking.k8s.io"
        )
        assert removal["allowed"] is False
        assert "[protect-default-deny]" in removal["status"]["message"]

        age = eventually(
            lambda: (a := _metric(enforcing, "guardrail_cache_age_seconds")) >= 1 and a,
            what="guardrail_cache_age_seconds showing staleness",
        )
        assert age >= 1
        assert _metric(enforcing, "guardrail_cache_synced") == 1
        assert (
            _metric(enforcing, "guardrail_watch_restarts_total", resource="namespaces")
            > restarts_before
        )
    finally:
        cluster.start_apiserver()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")

    # A second default-deny, made after the restart: once the watch has it, the first one is
    # no longer the last, and deleting it is allowed (protect-default-deny reads only the cache).
    second = apply(cluster, protected, default_deny("default-deny-2"))
    assert second.stdout.strip() == "networkpolicy.networking.k8s.io/default-deny-2 created"
    eventually(
        lambda: enforcing.review(
            policy, operation="DELETE", resource="networkpolicies", group="networking.k8s.io"
        )["allowed"],
        what="the resumed watch delivering default-deny-2",
    )
    fresh = eventually(
        lambda: (a := _metric(enforcing, "guardrail_cache_age_seconds")) < 1 and a >= 0,
        what="guardrail_cache_age_seconds back to current",
    )
    assert fresh is True


def test_webhook_down_fails_closed_except_exempt_namespaces(
    cluster: Cluster, webhook: GuardrailControl, protected: str
) -> None:
    """With guardrail stopped (failurePolicy Fail) kubectl prints the API server's error for a
    guarded namespace, while kube-public, excluded by the namespaceSelector, still works."""
    webhook.use("enforce")
    webhook.stop()
    name = _name("exempt")
    try:
        guarded = apply(cluster, protected, pod())
        assert guarded.returncode == 1
        assert (
            'Internal error occurred: failed calling webhook "workloads.guardrail.dev"'
            in guarded.stderr
        )
        assert f"https://127.0.0.1:{webhook.port}/validate" in guarded.stderr
        assert "connection refused" in guarded.stderr

        exempt = apply(cluster, "kube-public", pod(name, {}))
        assert exempt.stdout.strip() == f"pod/{name} created"
    finally:
        cluster.kubectl("delete", "pod", name, "-n", "kube-public", "--ignore-not-found")
        webhook.use("enforce")


# -- warn ---------------------------------------------------------------------------------------
def test_warn_mode_prints_warnings_and_creates(
    cluster: Cluster, warning: Guardrail, namespace: str
) -> None:
    """In warn mode kubectl prints `Warning: [policy-id] ...` lines and the Pod is created."""
    result = apply(cluster, namespace, pod(labels={"app": "web"}))
    assert result.returncode == 0
    assert result.stdout.strip() == "pod/web created"
    # Warnings are the short forms (under 120 characters): the API server may cut longer ones.
    assert result.stderr.splitlines() == [
        'Warning: [require-role-labels] Pod "web": missing labels role (under metadata.labels)',
        f'Warning: [require-default-deny] Pod "web": namespace "{namespace}" has no '
        "default-deny for Ingress and Egress",
    ]
    stored = cluster.kubectl("get", "pod", "web", "-n", namespace, "-o", "name")
    assert stored.stdout.strip() == "pod/web"


# -- audit --------------------------------------------------------------------------------------
def _annotations(cluster: Cluster, namespace: str) -> dict[str, str] | None:
    for event in cluster.audit_events():
        ref = event.get("objectRef", {})
        if (
            event.get("verb") == "create"
            and ref.get("resource") == "pods"
            and ref.get("namespace") == namespace
            and event.get("stage") == "ResponseComplete"
        ):
            return dict(event.get("annotations") or {})
    return None


def test_audit_mode_creates_silently_and_annotates(
    cluster: Cluster, auditing: Guardrail, namespace: str
) -> None:
    """In audit mode the Pod is created without a warning, and the API server's audit log holds
    guardrail's audit annotation for it."""
    result = apply(cluster, namespace, pod(labels={"app": "web"}))
    assert result.stdout.strip() == "pod/web created"
    assert result.stderr == ""

    annotations = eventually(lambda: _annotations(cluster, namespace), what="the pod's audit event")
    text = annotations.get("workloads.guardrail.dev/require-role-labels", "")
    assert text.startswith(f'audit: [require-role-labels] Pod "web" in namespace "{namespace}"')
    assert "role" in text


# -- the deploy base ------------------------------------------------------------------------------
def _resource_name(doc: dict[str, Any]) -> str:
    group = str(doc["apiVersion"]).rpartition("/")[0]
    kind = str(doc["kind"]).lower()
    return (
        f"{kind}.{group}/{doc['metadata']['name']}"
        if group
        else f"{kind}/{doc['metadata']['name']}"
    )


def test_deploy_applies_with_server_dry_run(
    cluster: Cluster, enforcing: Guardrail, tmp_path: Path
) -> None:
    """`kubectl apply -k deploy/ --dry-run=server` accepts every deploy manifest, from a fresh
    clone with no step before it (the default makes its own certificates)."""
    deploy = copy_as_cloned("deploy", tmp_path)
    docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(deploy)).stdout) if d]
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    # A server-side dry run stores nothing, so the namespaced objects need their namespace to
    # exist for real. The README's way: `kubectl apply -f deploy/base/namespace.yaml` first
    # (the dry run would then add kustomize's labels to it), then dry-run everything.
    cluster.kubectl("apply", "-f", str(deploy / "base" / "namespace.yaml"))
    try:
        result = cluster.kubectl("apply", "-k", str(deploy), "--dry-run=server")
        printed = result.stdout.splitlines()
        for doc in docs:
            expected = "configured" if doc["kind"] == "Namespace" else "created"
            assert f"{_resource_name(doc)} {expected} (server dry run)" in printed, result.stdout
        assert len(printed) == len(docs)
        assert "Error" not in result.stderr
    finally:
        for doc in namespaces:
            cluster.kubectl(
                "delete", "namespace", doc["metadata"]["name"], "--wait=false", "--ignore-not-found"
            )
