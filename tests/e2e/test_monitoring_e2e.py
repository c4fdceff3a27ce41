"""deploy/components/monitoring against the Prometheus Operator's own CRD schemas (v0.93.0,
fixtures/prometheus-operator-crds.yaml), through the real API server: a server-side dry run
with strict field validation stores the PodMonitor and the PrometheusRule as rendered, every
field known to the operator (a misspelt one would be dropped silently by a lenient apply)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Cluster

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CRDS = Path(__file__).parent / "fixtures" / "prometheus-operator-crds.yaml"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NAMESPACE = "monitoring-e2e"


@pytest.fixture(scope="module")
def operator_crds(cluster: Cluster) -> Iterator[None]:
    """The two CRDs, created if the cluster lacks them and deleted afterwards only then."""
    created = []
    for crd in [d for d in yaml.safe_load_all(CRDS.read_text(encoding="utf-8")) if d]:
        name = crd["metadata"]["name"]
        if not cluster.kubectl("get", "crd", name, "--ignore-not-found", "-o", "name").stdout:
            cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
            created.append(name)
    try:
        if created:
            cluster.kubectl(
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                *(f"crd/{n}" for n in created),
            )
        yield
    finally:
        if created:
            cluster.kubectl("delete", "crd", *created, "--ignore-not-found", "--wait=false")


def _component_objects(tmp: Path) -> list[dict[str, object]]:
    """What an overlay of deploy/ with the component renders, of the operator's kinds."""
    shutil.copytree(REPO / "deploy", tmp / "deploy", ignore=shutil.ignore_patterns("tls"))
    overlay = tmp / "mine"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../deploy]\ncomponents: [../deploy/components/monitoring]\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [KUBECTL, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [
        d
        for d in yaml.safe_load_all(done.stdout)
        if d and str(d["apiVersion"]).startswith("monitoring.coreos.com/")
    ]


def test_the_component_is_valid_for_the_prometheus_operator(
    cluster: Cluster, operator_crds: None, tmp_path: Path
) -> None:
    objects = _component_objects(tmp_path)
    assert sorted(str(o["kind"]) for o in objects) == ["PodMonitor", "PrometheusRule"]
    if not cluster.kubectl(
        "get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"
    ).stdout:
        cluster.create_namespace(NAMESPACE)
    for obj in objects:
        # In a namespace of this test's own: guardrail-system belongs to the install tests.
        obj["metadata"] = {**obj["metadata"], "namespace": NAMESPACE}  # type: ignore[dict-item]  # a manifest's mapping
        done = cluster.kubectl(
            "create",
            "--dry-run=server",
            "--validate=strict",
            "-o",
            "json",
            "-f",
            "-",
            input=json.dumps(obj),
        )
        stored = json.loads(done.stdout)
        assert "warning" not in done.stderr.lower(), done.stderr
        # Nothing pruned: what the API server would store is what was rendered.
        assert stored["spec"] == obj["spec"], obj["kind"]
