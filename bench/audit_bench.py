"""Benchmark (not a test): `guardrail audit` over 10,000 pods in 1,000 namespaces.

Starts the e2e harness's control plane (etcd + kube-apiserver + kube-controller-manager on
127.0.0.1; no kubelet, so pods are stored, never run), fills it through the API (16 requests
at a time), then times, each as a real `guardrail` process:

- `audit --format json`              list (paginated) + judge + render
- `audit --format json --write-reports`  the same, creating one PolicyReport per namespace
  with violations (first run), then again when nothing changed (every report unchanged)

and prints the figures (also written to bench/results/audit.json). Takes 2 to 4 minutes on
2 cores, most of it creating the pods.

    .venv/bin/python bench/audit_bench.py [--namespaces 1000] [--pods-per-namespace 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.harness import Cluster, running_cluster  # noqa: E402 - after the sys.path set-up
from tests.e2e.test_audit_e2e import (  # noqa: E402 - after the sys.path set-up
    FIXTURES,
    build_dataset,
    create_objects,
    namespace,
    wait_for_service_accounts,
)

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))


def timed(cluster: Cluster, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")}
    started = time.perf_counter()
    done = subprocess.run(
        [GUARDRAIL, *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"guardrail {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--pods-per-namespace", type=int, default=10)
    options = parser.parse_args()

    with running_cluster() as cluster:
        data = build_dataset("bench-", options.namespaces, options.pods_per_namespace)
        started = time.perf_counter()
        create_objects(cluster, [namespace(ns) for ns in data.namespaces])
        wait_for_service_accounts(cluster, data.prefix, options.namespaces)
        create_objects(cluster, data.objects)
        setup = time.perf_counter() - started
        pods = sum(1 for o in data.objects if o["kind"] == "Pod")
        print(f"created {options.namespaces:,} namespaces and {pods:,} pods in {setup:.1f}s")
        cluster.kubectl("apply", "-f", str(FIXTURES / "wgpolicyk8s-policyreport-crds.yaml"))
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/policyreports.wgpolicyk8s.io",
            "crd/clusterpolicyreports.wgpolicyk8s.io",
        )

        audit_s, done = timed(cluster, "audit", "--format", "json")
        summary = json.loads(done.stdout)["summary"]
        first_s, first = timed(cluster, "audit", "--format", "json", "--write-reports")
        again_s, again = timed(cluster, "audit", "--format", "json", "--write-reports")

    figures = {
        "namespaces": options.namespaces,
        "pods": pods,
        "objects_judged": summary["resources"],
        "violations": summary["violations"],
        "audit_json_seconds": round(audit_s, 2),
        "audit_write_reports_first_seconds": round(first_s, 2),
        "audit_write_reports_unchanged_seconds": round(again_s, 2),
        "first_write": first.stderr.strip(),
        "second_write": again.stderr.strip(),
    }
    print(
        f"audit --format json: {audit_s:.2f}s for {summary['resources']:,} objects judged, "
        f"{summary['violations']:,} violations"
    )
    print(f"audit --write-reports (first run): {first_s:.2f}s  [{figures['first_write']}]")
    print(f"audit --write-reports (unchanged): {again_s:.2f}s  [{figures['second_write']}]")
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "audit.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
