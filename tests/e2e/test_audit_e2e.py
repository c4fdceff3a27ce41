"""`guardrail audit` against a real API server holding 200 namespaces and 2,000 pods, created
before any webhook existed, with a known set of violations: the audit finds exactly that set,
writes PolicyReports that kubectl lists with the right counts, and forgets what was fixed."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
GUARDRAIL = [str(Path(sys.executable).with_name("guardrail"))]
NAMESPACES = 200
PODS_PER_NAMESPACE = 10
Key = tuple[str, str, str, str]  # (policy, kind, namespace, name)


# -- building a cluster fast: the API directly, many requests at once --------------------------
def _connection(cluster: Cluster) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    address = urllib.parse.urlsplit(cluster.server)
    return http.client.HTTPSConnection(
        address.hostname or "127.0.0.1", address.port, context=context, timeout=60
    )


def _collection(obj: dict[str, Any]) -> str:
    kind, meta = obj["kind"], obj["metadata"]
    namespace = meta.get("namespace")
    paths = {
        "Namespace": "/api/v1/namespaces",
        "Pod": f"/api/v1/namespaces/{namespace}/pods",
        "NetworkPolicy": f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
        "Deployment": f"/apis/apps/v1/namespaces/{namespace}/deployments",
    }
    return paths[kind]


def create_objects(cluster: Cluster, objects: Sequence[dict[str, Any]], threads: int = 16) -> None:
    """POST every object (16 at a time, keep-alive); fail on the first error, saying which."""
    local = threading.local()
    opened: list[http.client.HTTPSConnection] = []
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}

    def post(obj: dict[str, Any]) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = _connection(cluster)
            opened.append(connection)
        connection.request("POST", _collection(obj), body=json.dumps(obj), headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status >= 300:
            meta = obj["metadata"]
            raise AssertionError(
                f"creating {obj['kind']} {meta.get('namespace')}/{meta['name']}: "
                f"HTTP {response.status} {body[:300]!r}"
            )

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(post, objects))
    finally:
        for connection in opened:
            connection.close()


def wait_for_service_accounts(cluster: Cluster, prefix: str, count: int) -> None:
    """Until a namespace's default ServiceAccount exists, its Pods are rejected."""

    def ready() -> bool:
        listed = cluster.api_get(
            "/api/v1/serviceaccounts?fieldSelector=metadata.name%3Ddefault", timeout=30
        )
        found = sum(1 for i in listed["items"] if i["metadata"]["namespace"].startswith(prefix))
        return found >= count

    eventually(ready, what=f"{count} default ServiceAccounts", timeout=180, interval=1)


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def default_deny(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def allow_all(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "open", "namespace": ns},
        # Open to everything, for pods no workload here runs (restrict-allow-all warns): the
        # namespace's pods stay isolated by its default-deny (SPEC 2.6).
        "spec": {"podSelector": {"matchLabels": {"app": "legacy"}}, "ingress": [{}]},
    }


def pod(ns: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }


def deployment(ns: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


@dataclass
class Dataset:
    """What was created, and the violations it holds by construction."""

    prefix: str
    namespaces: list[str]
    objects: list[dict[str, Any]] = field(default_factory=list)
    expected: set[Key] = field(default_factory=set)

    def fails(self, ns: str) -> int:
        return sum(
            1
            for p, _, n, name in self.expected
            if scope(p, n, name) == ns and p != "restrict-allow-all"
        )

    def warns(self, ns: str) -> int:
        return sum(
            1
            for p, _, n, name in self.expected
            if scope(p, n, name) == ns and p == "restrict-allow-all"
        )


def scope(policy: str, namespace: str, name: str) -> str:
    del policy
    return namespace or name


def build_dataset(prefix: str, namespaces: int, pods_per_namespace: int) -> Dataset:
    """Namespaces where i % 10 == 0 lack a default-deny; i % 50 == 7 hold an allow-all policy;
    every 37th pod lacks its role label; namespace 2's Deployment lacks it too."""
    data = Dataset(prefix, [f"{prefix}{i:04d}" for i in range(namespaces)])
    for i, ns in enumerate(data.namespaces):
        isolated = i % 10 != 0
        if isolated:
            data.objects.append(default_deny(ns))
        if i % 50 == 7:
            data.objects.append(allow_all(ns))
            data.expected.add(("restrict-allow-all", "NetworkPolicy", ns, "open"))
        for j in range(pods_per_namespace):
            name = f"pod-{j:02d}"
            if not isolated:  # each workload is rejected for its namespace's sake
                data.expected.add(("require-default-deny", "Pod", ns, name))
            if (i * pods_per_namespace + j) % 37 == 0:
                data.objects.append(pod(ns, name, {"app": "web"}))
                data.expected.add(("require-role-labels", "Pod", ns, name))
            else:
                data.objects.append(pod(ns, name, {"app": "web", "role": "frontend"}))
    if namespaces > 2:
        data.objects.append(
            deployment(data.namespaces[1], "api", {"app": "api", "role": "backend"})
        )
        data.objects.append(deployment(data.namespaces[2], "api", {"app": "api"}))
        data.expected.add(("require-role-labels", "Deployment", data.namespaces[2], "api"))
    return data


def run_guardrail(
    cluster: Cluster, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GUARDRAIL, *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")},
    )


def found_keys(document: dict[str, Any], prefix: str) -> set[Key]:
    return {
        (v["policy"], v["kind"], v["namespace"], v["name"])
        for v in document["violations"]
        if (v["namespace"] or v["name"]).startswith(prefix)
    }


def install_report_crds(cluster: Cluster, fixture: str, names: Sequence[str]) -> None:
    cluster.kubectl("apply", "-f", str(FIXTURES / fixture))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in names)
    )


def listed_reports(cluster: Cluster, resource: str, prefix: str) -> dict[str, tuple[int, int, int]]:
    """`kubectl get RESOURCE -A` as users read it: namespace -> (pass, fail, warn) columns."""
    text = cluster.kubectl("get", resource, "-A", "--no-headers").stdout
    rows: dict[str, tuple[int, int, int]] = {}
    for line in text.splitlines():
        cols = line.split()
        if cols and cols[0].startswith(prefix):
            assert cols[1] == f"guardrail-{cols[0]}", line
            rows[cols[0]] = (int(cols[2]), int(cols[3]), int(cols[4]))
    return rows


# -- the tests ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(cluster: Cluster) -> Iterator[Dataset]:
    """200 namespaces, 2,000 pods, policies and two Deployments, all made before any webhook."""
    data = build_dataset(f"aud-{secrets.token_hex(2)}-", NAMESPACES, PODS_PER_NAMESPACE)
    create_objects(cluster, [namespace(ns) for ns in data.namespaces])
    wait_for_service_accounts(cluster, data.prefix, NAMESPACES)
    create_objects(cluster, data.objects)
    # The controller manager turns each Deployment into a ReplicaSet and two pods.
    eventually(
        lambda: (
            len(cluster.api_get(f"/api/v1/namespaces/{data.namespaces[2]}/pods")["items"])
            >= PODS_PER_NAMESPACE + 2
        ),
        what="the Deployment's pods",
        timeout=60,
    )
    install_report_crds(
        cluster,
        "wgpolicyk8s-policyreport-crds.yaml",
        ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"],
    )
    yield data
    cluster.kubectl("delete", "namespace", *data.namespaces, "--wait=false", "--ignore-not-found")


def test_audit_json_finds_exactly_the_known_violations(cluster: Cluster, dataset: Dataset) -> None:
    """Every planted violation is found, nothing else in those namespaces, ReplicaSets and
    pods of a judged Deployment are not counted twice, and enforce violations exit 1."""
    done = run_guardrail(cluster, "audit", "--format", "json")
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    document = json.loads(done.stdout)
    assert found_keys(document, dataset.prefix) == dataset.expected
    modes = {
        (v["policy"], v["mode"])
        for v in document["violations"]
        if (v["namespace"] or v["name"]).startswith(dataset.prefix)
    }
    assert modes == {
        ("require-default-deny", "enforce"),
        ("require-role-labels", "enforce"),
        ("restrict-allow-all", "warn"),
    }
    gap = dataset.namespaces[0]
    rejected = [
        v
        for v in document["violations"]
        if v["policy"] == "require-default-deny" and v["namespace"] == gap
    ]
    assert len(rejected) == PODS_PER_NAMESPACE
    assert rejected[0]["message"].startswith(
        f'[require-default-deny] Pod "pod-00" in namespace "{gap}" cannot run there: namespace '
        f'"{gap}" has no default-deny network policy for Ingress and Egress. Apply one first: '
    )
    assert not any(v["kind"] == "Namespace" and v["name"] == gap for v in document["violations"])
    assert not any(
        v["kind"] == "ReplicaSet" or v["name"].startswith("api-") for v in document["violations"]
    )
    # 200 namespaces + 2,000 pods + 184 policies + 2 Deployments, at least (other tests add more).
    assert document["summary"]["resources"] >= NAMESPACES * (PODS_PER_NAMESPACE + 1) + 186


def test_audit_namespace_flag_scopes_the_sweep(cluster: Cluster, dataset: Dataset) -> None:
    """--namespace judges that namespace alone: its planted violations and nothing else."""
    target = dataset.namespaces[0]
    done = run_guardrail(cluster, "audit", "--namespace", target, "--format", "json")
    document = json.loads(done.stdout)
    assert done.returncode == 1
    expected = {k for k in dataset.expected if scope(k[0], k[2], k[3]) == target}
    assert {
        (v["policy"], v["kind"], v["namespace"], v["name"]) for v in document["violations"]
    } == expected
    assert document["summary"]["resources"] == 1 + PODS_PER_NAMESPACE


def test_audit_text_summarises_by_policy_and_namespace(cluster: Cluster, dataset: Dataset) -> None:
    """The text report lists the findings, then the summary by policy and the totals last."""
    done = run_guardrail(cluster, "audit", "--namespace", dataset.namespaces[2])
    lines = done.stdout.splitlines()
    assert lines[0] == f'Guardrail audit of namespace "{dataset.namespaces[2]}"'
    assert lines[-1].endswith(", 1 violation: 1 error"), lines[-6:]
    assert "By policy:" in lines[-5:]
    assert (
        f'Deployment {dataset.namespaces[2]}/api: error: [require-role-labels] Deployment "api" in namespace "{dataset.namespaces[2]}" is missing required labels in its pod template: role. Add them under spec.template.metadata.labels.'
        in lines
    )


def test_namespace_that_does_not_exist_is_an_error(cluster: Cluster) -> None:
    """An unknown --namespace exits 2 and says so."""
    done = run_guardrail(cluster, "audit", "--namespace", "no-such-namespace-here")
    assert done.returncode == 2
    assert done.stderr == 'guardrail: --namespace: namespace "no-such-namespace-here" not found\n'


def test_write_reports_lists_the_right_counts_and_forgets_fixed_objects(
    cluster: Cluster, dataset: Dataset
) -> None:
    """PolicyReports per namespace show each namespace's fail/warn counts in `kubectl get`;
    fixing a pod drops its result, and a namespace made clean loses its report."""
    done = run_guardrail(cluster, "audit", "--format", "json", "--write-reports")
    assert done.returncode == 1, done.stderr
    assert "PolicyReports written:" in done.stderr
    expected = {
        ns: (0, dataset.fails(ns), dataset.warns(ns))
        for ns in dataset.namespaces
        if dataset.fails(ns) or dataset.warns(ns)
    }
    assert listed_reports(cluster, "policyreports", dataset.prefix) == expected

    # Fix one pod in a namespace that keeps other problems, and every problem of another.
    def gaps(ns: str) -> set[Key]:
        return {k for k in dataset.expected if k[0] == "require-default-deny" and k[2] == ns}

    bad_pod = next(
        k
        for k in sorted(dataset.expected)
        if k[:2] == ("require-role-labels", "Pod") and not gaps(k[2])
    )
    _, _, pod_ns, pod_name = bad_pod
    cluster.kubectl("label", "pod", pod_name, "-n", pod_ns, "role=fixed")
    clean_ns = next(
        ns
        for ns in dataset.namespaces
        if gaps(ns) and dataset.fails(ns) == len(gaps(ns)) and not dataset.warns(ns)
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(default_deny(clean_ns)))

    rerun = run_guardrail(cluster, "audit", "--format", "json", "--write-reports")
    assert rerun.returncode == 1
    fixed = dataset.expected - {bad_pod} - gaps(clean_ns)
    assert found_keys(json.loads(rerun.stdout), dataset.prefix) == fixed
    after = listed_reports(cluster, "policyreports", dataset.prefix)
    assert clean_ns not in after
    before = expected[pod_ns]
    if before[1] + before[2] == 1:
        assert pod_ns not in after
    else:
        assert after[pod_ns] == (0, before[1] - 1, before[2])
    report = json.loads(
        cluster.kubectl(
            "get", "policyreport", f"guardrail-{pod_ns}", "-n", pod_ns, "-o", "json", check=False
        ).stdout
        or "{}"
    )
    names = {r["resources"][0]["name"] for r in report.get("results", [])}
    assert pod_name not in names
    for result in report.get("results", []):
        assert result["source"] == "guardrail"
        assert result["resources"][0]["uid"]
        assert set(result["timestamp"]) == {"seconds", "nanos"}


def test_openreports_with_passes(cluster: Cluster, dataset: Dataset) -> None:
    """--report-api openreports writes Report objects; --include-passes lists what passed."""
    install_report_crds(
        cluster,
        "openreports-crds.yaml",
        ["reports.openreports.io", "clusterreports.openreports.io"],
    )
    clean = next(  # a default-deny, ten labelled pods, nothing else
        ns for ns in dataset.namespaces[3:] if not dataset.fails(ns) and not dataset.warns(ns)
    )
    done = run_guardrail(
        cluster,
        "audit",
        "--namespace",
        clean,
        "--write-reports",
        "--report-api",
        "openreports",
        "--include-passes",
    )
    assert done.returncode == 0, done.stderr
    assert "Reports written: 1 created" in done.stderr
    # Namespace (default-deny) + the policy (no allow-all) + 10 pods x (labels, default-deny).
    assert listed_reports(cluster, "reports", clean) == {clean: (2 + 2 * PODS_PER_NAMESPACE, 0, 0)}


BIG_PODS = 1010  # over one report's 1,000 results: two parts


@pytest.fixture(scope="module")
def big_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace with a default-deny and 1,010 pods missing their role label."""
    ns = f"big-{secrets.token_hex(2)}"
    create_objects(cluster, [namespace(ns)])
    wait_for_service_accounts(cluster, ns, 1)
    create_objects(
        cluster,
        [default_deny(ns), *(pod(ns, f"p{i:04d}", {"app": "web"}) for i in range(BIG_PODS))],
    )
    install_report_crds(
        cluster,
        "wgpolicyk8s-policyreport-crds.yaml",
        ["policyreports.wgpolicyk8s.io", "clusterpolicyreports.wgpolicyk8s.io"],
    )
    install_report_crds(
        cluster,
        "openreports-crds.yaml",
        ["reports.openreports.io", "clusterreports.openreports.io"],
    )
    yield ns
    cluster.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found")


def guardrail_reports(cluster: Cluster, resource: str, ns: str) -> list[dict[str, Any]]:
    """Every part of a namespace's reports, found by the scope label as the README says."""
    listed = cluster.kubectl(
        "get", resource, "-A", "-l", f"guardrail.dev/scope={ns}", "-o", "json"
    ).stdout
    return sorted(
        json.loads(listed)["items"],
        key=lambda r: int(r["metadata"]["labels"]["guardrail.dev/part"]),
    )


@pytest.mark.parametrize(
    ("report_api", "resource", "kind"),
    [("wgpolicyk8s", "policyreports", "PolicyReports"), ("openreports", "reports", "Reports")],
    ids=["wgpolicyk8s", "openreports"],
)
def test_a_namespace_over_the_limit_is_written_in_parts_the_api_server_keeps(
    cluster: Cluster, big_namespace: str, report_api: str, resource: str, kind: str
) -> None:
    """1,010 results are two reports the API server stores as sent (a rerun changes nothing),
    holding every result; fixing 20 pods leaves one report and deletes the other."""
    ns = big_namespace
    cluster.kubectl("label", "pods", "--all", "-n", ns, "role-")  # as the fixture made them
    audit = ["audit", "--namespace", ns, "--format", "json", "--write-reports"]
    audit += ["--report-api", report_api]
    done = run_guardrail(cluster, *audit)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"guardrail: {kind} written: 2 created, 0 updated, 0 unchanged, 0 deleted "
        f"(2 reports for 1 scope; in parts: {ns} 2)\n"
    )
    first, second = guardrail_reports(cluster, resource, ns)
    assert [r["metadata"]["name"] for r in (first, second)] == [
        f"guardrail-{ns}",
        f"guardrail-{ns}-2",
    ]
    assert [(r["summary"]["fail"], len(r["results"])) for r in (first, second)] == [
        (1000, 1000),
        (10, 10),
    ]
    held = [x["resources"][0]["name"] for r in (first, second) for x in r["results"]]
    assert sorted(held) == [f"p{i:04d}" for i in range(BIG_PODS)]
    if report_api == "openreports":
        for report in (first, second):
            assert report["configuration"] == {
                "limits": {"maxResults": 1000, "statusFilter": ["fail", "warn"]}
            }

    rerun = run_guardrail(cluster, *audit)
    assert "0 created, 0 updated, 2 unchanged, 0 deleted" in rerun.stderr, rerun.stderr

    cluster.kubectl("label", "pods", "-n", ns, *(f"p{i:04d}" for i in range(20)), "role=fixed")
    fixed = run_guardrail(cluster, *audit)
    assert fixed.stderr == (
        f"guardrail: {kind} written: 0 created, 1 updated, 0 unchanged, 1 deleted "
        "(1 report for 1 scope)\n"
    )
    (only,) = guardrail_reports(cluster, resource, ns)
    assert only["metadata"]["name"] == f"guardrail-{ns}"
    assert len(only["results"]) == only["summary"]["fail"] == BIG_PODS - 20
