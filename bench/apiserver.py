"""Pod creation through a real kube-apiserver, with and without Guardrail in the way.

Starts the e2e harness's control plane (tests/e2e/harness.py), a live `guardrail serve
--kubeconfig` on 127.0.0.1, and registers it for Pods in one namespace only (by a label
selector). Pods are then created through the API with keep-alive HTTP clients, alternating
between that namespace and an identical one the webhook does not see, so both figures share
the same moment's noise:
- latency: one client, creations alternating between the two namespaces, median and p90;
- throughput: CLIENTS concurrent clients for PHASE_SECONDS per namespace, twice each,
  alternating.

    python bench/apiserver.py --cert-dir DIR [--workers N --threads N]   # prints JSON
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import Cluster, eventually, free_port, running_cluster  # noqa: E402 - after the sys.path set-up

GUARDED = "bench-guarded"
PLAIN = "bench-plain"
LABEL = "guardrail-bench"
SEQUENTIAL = 300  # pods per namespace, one client
CLIENTS = 4
PHASE_SECONDS = 5.0


def pod(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "b", "role": "w"}},
        "spec": {"containers": [{"name": "c", "image": "registry.example.com/app:1"}]},
    }


def webhook_config(url: str, ca_bundle: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "guardrail-bench"},
        "webhooks": [
            {
                "name": "validate.guardrail.dev",
                "clientConfig": {"url": url, "caBundle": ca_bundle},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {LABEL: "on"}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
                "matchPolicy": "Equivalent",
            }
        ],
    }


class Api:
    """Keep-alive client of the API server as the harness's admin user."""

    def __init__(self, cluster: Cluster) -> None:
        self.base = cluster.server
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would replace the cluster's CA.
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"Bearer {cluster.token}"
        self.session.verify = str(cluster.ca_file)

    def create_pod(self, namespace: str, name: str) -> tuple[int, float]:
        started = time.perf_counter()
        response = self.session.post(
            f"{self.base}/api/v1/namespaces/{namespace}/pods", json=pod(name, namespace), timeout=10
        )
        return response.status_code, time.perf_counter() - started


@contextlib.contextmanager
def guardrail(cluster: Cluster, cert_dir: Path, workers: int, threads: int) -> Iterator[str]:
    port = free_port()
    log = open(cluster.tmp / "guardrail.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "guardrail"),
            "serve",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--cert-dir={cert_dir}",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            f"--threads={threads}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ca = str(cert_dir / "ca.crt")

        def ready() -> bool:
            try:
                return requests.get(f"https://127.0.0.1:{port}/readyz", verify=ca, timeout=2).ok
            except requests.RequestException:
                return False

        eventually(ready, what="guardrail /readyz", timeout=60)
        yield f"https://127.0.0.1:{port}/validate"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def throughput(cluster: Cluster, namespace: str, prefix: str) -> float:
    """Pods created per second by CLIENTS keep-alive clients during PHASE_SECONDS."""
    counts = [0] * CLIENTS
    failures = [0] * CLIENTS
    deadline = time.perf_counter() + PHASE_SECONDS

    def client(index: int) -> None:
        api = Api(cluster)
        n = 0
        while time.perf_counter() < deadline:
            status, _ = api.create_pod(namespace, f"{prefix}-{index}-{n}")
            n += 1
            if status == 201:
                counts[index] += 1
            else:
                failures[index] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if any(failures):
        raise RuntimeError(f"{sum(failures)} pod creations failed in {namespace}")
    return sum(counts) / (time.perf_counter() - started)


def measure(cluster: Cluster, cert_dir: Path, workers: int, threads: int) -> dict[str, Any]:
    for namespace in (GUARDED, PLAIN):
        cluster.create_namespace(namespace)
    cluster.kubectl("label", "namespace", GUARDED, f"{LABEL}=on")
    default_deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": GUARDED},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(default_deny))
    ca_bundle = base64.b64encode((cert_dir / "ca.crt").read_bytes()).decode()
    with guardrail(cluster, cert_dir, workers, threads) as url:
        config = webhook_config(url, ca_bundle)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
        api = Api(cluster)

        # The API server picks the configuration up within a second or so: wait for a denial.
        def registered() -> bool:
            unlabelled = {**pod("probe", GUARDED), "metadata": {"name": "probe"}}
            response = api.session.post(
                f"{api.base}/api/v1/namespaces/{GUARDED}/pods", json=unlabelled, timeout=10
            )
            return response.status_code == 403 and "require-role-labels" in response.text

        eventually(registered, what="the webhook denying an unlabelled pod", timeout=60)

        # Warm both paths (connections from the API server to the webhook, caches).
        for i in range(20):
            api.create_pod(PLAIN, f"warm-{i}")
            api.create_pod(GUARDED, f"warm-{i}")
        latencies: dict[str, list[float]] = {PLAIN: [], GUARDED: []}
        for i in range(SEQUENTIAL):
            for namespace in (PLAIN, GUARDED) if i % 2 else (GUARDED, PLAIN):
                status, seconds = api.create_pod(namespace, f"seq-{i}")
                if status != 201:
                    raise RuntimeError(f"pod creation in {namespace} answered HTTP {status}")
                latencies[namespace].append(seconds)
        rates: dict[str, list[float]] = {PLAIN: [], GUARDED: []}
        for round_ in range(2):
            for namespace in (PLAIN, GUARDED) if round_ % 2 else (GUARDED, PLAIN):
                rates[namespace].append(throughput(cluster, namespace, f"tp{round_}"))

    def summary(namespace: str) -> dict[str, float]:
        values = sorted(latencies[namespace])
        return {
            "median_ms": statistics.median(values) * 1000,
            "p90_ms": values[int(0.9 * (len(values) - 1))] * 1000,
            "pods_per_s": statistics.mean(rates[namespace]),
        }

    plain, guarded = summary(PLAIN), summary(GUARDED)
    return {
        "no_webhook": plain,
        "guardrail": guarded,
        "median_overhead_ms": guarded["median_ms"] - plain["median_ms"],
        "sequential_pods": SEQUENTIAL,
        "clients": CLIENTS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    urllib3.disable_warnings()

    def log(message: str) -> None:
        print(f"[apiserver] {message}", file=sys.stderr, flush=True)

    with running_cluster(log=log) as cluster:
        result = measure(cluster, args.cert_dir.resolve(), args.workers, args.threads)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
