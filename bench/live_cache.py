"""One cache per gunicorn worker, or one shared: the figures behind the choice.

Measures, for 10,000 namespaces and 30,000 NetworkPolicies (20,000 namespaced Kubernetes
policies in half the namespaces would be the same order; here 3 per namespace):

1. memory of the LiveState index holding them (RSS growth of this process), with objects as the
   API server returns them and as the cache keeps them (managedFields and kubectl's
   last-applied annotation stripped);
2. through a real kube-apiserver (the e2e harness): the time from start to `synced`, and the API
   server CPU seconds one full sync costs it;
3. the per-decision cost of reading a shared cache over IPC (a multiprocessing manager proxy,
   the simplest shared design) against the in-process lookup.

Run: .venv/bin/python bench/live_cache.py [--namespaces N] [--per-namespace P] [--no-cluster]
Not part of the test run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import os
import sys
import time
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webhook.kube import K8S_POLICIES, KubeClient, slim
from webhook.state.index import IndexedState
from webhook.state.live import LiveState


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def policy(namespace: str, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = (
        {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        if index == 0
        else {
            "podSelector": {"matchLabels": {"app": f"app-{index}"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
        }
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"policy-{index}", "namespace": namespace},
        "spec": spec,
    }


def as_served(obj: dict[str, Any], version: int) -> dict[str, Any]:
    """obj as a list response carries it: uid, resourceVersion, managedFields, last-applied."""
    served = json.loads(json.dumps(obj))
    meta = served["metadata"]
    meta.update(
        uid=f"{version:08x}-0000-4000-8000-000000000000",
        resourceVersion=str(version),
        generation=1,
        creationTimestamp="2026-11-23T18:00:00Z",
        annotations={"kubectl.kubernetes.io/last-applied-configuration": json.dumps(obj)},
        managedFields=[
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": obj["apiVersion"],
                "time": "2026-11-23T18:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {}}, "f:spec": {"f:podSelector": {}}},
            }
        ],
    )
    return served


def namespace_obj(name: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/metadata.name": name, "team": name[-3:]},
            "resourceVersion": str(version),
        },
        "status": {"phase": "Active"},
    }


def memory_fresh(namespaces: int, per_namespace: int, strip: bool) -> float:
    """RSS growth for building the objects and the index in one go (what a worker pays)."""
    gc.collect()
    before = rss_bytes()
    state = IndexedState()
    version = 1
    for n in range(namespaces):
        ns = f"ns-{n:05d}"
        state.upsert(namespace_obj(ns, version))
        for p in range(per_namespace):
            version += 1
            served = as_served(policy(ns, p), version)
            state.upsert(slim(served, K8S_POLICIES) if strip else served)
    gc.collect()
    grown = rss_bytes() - before
    assert state.counts()["policies"] == namespaces * per_namespace
    return float(grown)


class _Manager(BaseManager):
    pass


def ipc_lookup(namespaces: int) -> tuple[float, float]:
    """Microseconds per providers() lookup: in-process, and through a manager proxy."""
    state = IndexedState()
    for n in range(namespaces):
        ns = f"ns-{n:05d}"
        state.upsert(namespace_obj(ns, n + 1))
        state.upsert(policy(ns, 0))
    names = [f"ns-{n:05d}" for n in range(namespaces)]
    for name in names:
        state.providers(name)
    rounds = 20_000
    started = time.perf_counter()
    for i in range(rounds):
        state.providers(names[i % namespaces])
    local = (time.perf_counter() - started) / rounds * 1e6

    _Manager.register("state", callable=lambda: state)
    manager = _Manager()
    manager.start()
    try:
        proxy = manager.state()  # type: ignore[attr-defined]  # a multiprocessing proxy, typed by registration
        started = time.perf_counter()
        for i in range(rounds // 10):
            proxy.providers(names[i % namespaces])
        remote = (time.perf_counter() - started) / (rounds // 10) * 1e6
    finally:
        manager.shutdown()
    return local, remote


def cluster_sync(namespaces: int, per_namespace: int) -> dict[str, float]:
    from tests.e2e.harness import running_cluster  # noqa: PLC0415 - only the live measurement needs a cluster

    figures: dict[str, float] = {}
    with running_cluster(log=lambda m: print(f"[cluster] {m}", file=sys.stderr)) as cluster:
        client = KubeClient(str(cluster.kubeconfig))
        pool = client._pool  # the bench reuses the client's authenticated pool to create objects
        headers = {**client._headers(), "Content-Type": "application/json"}

        def post(path: str, body: dict[str, Any]) -> None:
            for _ in range(5):
                response = pool.request(
                    "POST", client.host + path, body=json.dumps(body).encode(), headers=headers
                )
                if response.status in (201, 409):
                    return
                time.sleep(0.5)
            raise RuntimeError(f"POST {path}: {response.status} {response.data[:200]!r}")

        started = time.perf_counter()
        names = [f"ns-{n:05d}" for n in range(namespaces)]
        with concurrent.futures.ThreadPoolExecutor(16) as executor:
            list(
                executor.map(
                    lambda ns: post(
                        "/api/v1/namespaces",
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                    ),
                    names,
                )
            )
            list(
                executor.map(
                    lambda args: post(K8S_POLICIES.url(args[0]), policy(*args)),
                    [(ns, p) for ns in names for p in range(per_namespace)],
                )
            )
        figures["create seconds"] = time.perf_counter() - started
        apiserver_pid = cluster._servers["kube-apiserver"].proc.pid  # type: ignore[union-attr]  # the harness starts it, so it is set

        for attempt in range(2):
            cpu_before = cpu_seconds(apiserver_pid)
            gc.collect()
            rss_before = rss_bytes()
            state = LiveState(KubeClient(str(cluster.kubeconfig)))
            started = time.perf_counter()
            state.start()
            assert state.wait_synced(300), "no sync in 300 s"
            figures[f"sync seconds #{attempt + 1}"] = time.perf_counter() - started
            figures[f"apiserver cpu seconds per sync #{attempt + 1}"] = (
                cpu_seconds(apiserver_pid) - cpu_before
            )
            gc.collect()
            figures[f"worker rss growth MiB #{attempt + 1}"] = (rss_bytes() - rss_before) / 2**20
            counts = state.counts()
            figures["namespaces"] = counts["namespaces"]
            figures["policies"] = counts["policies"]
            state.stop()
        # An idle watch costs the API server little: measure its CPU over 10 s with 6 watches.
        cpu_before = cpu_seconds(apiserver_pid)
        time.sleep(10)
        figures["apiserver cpu seconds per 10 s idle (all clients)"] = (
            cpu_seconds(apiserver_pid) - cpu_before
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=10_000)
    parser.add_argument("--per-namespace", type=int, default=3)
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args()
    n, p = args.namespaces, args.per_namespace
    print(f"{n} namespaces, {n * p} policies")
    for strip in (False, True):
        grown = memory_fresh(n, p, strip)
        label = "slimmed (as cached)" if strip else "as served (managedFields, last-applied)"
        print(
            f"index memory, {label}: {grown / 2**20:.1f} MiB, "
            f"{grown / (n * p):.0f} B per policy (namespace included)"
        )
    local, remote = ipc_lookup(min(n, 10_000))
    print(
        f"providers() lookup: in-process {local:.2f} us, shared via manager proxy {remote:.1f} us"
    )
    if not args.no_cluster:
        for key, value in cluster_sync(n, p).items():
            print(f"{key}: {value:.2f}")


if __name__ == "__main__":
    main()
