"""The background audit of `guardrail serve`: two replicas (two workers each) against one API
server; only the holder of the `guardrail-audit` Lease writes reports and exports the gauge,
and when it is killed the other replica takes the Lease over once it expires."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, eventually, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIXTURES = Path(__file__).parent / "fixtures"
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
LEASE_NAMESPACE = "guardrail-audit-e2e"
LEASE_DURATION_SECONDS = 30


@dataclass
class Replica:
    """One `guardrail serve` (gunicorn master + workers) in its own process group."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    cert_dir: Path
    log: Path

    def metrics(self) -> str:
        context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        context.check_hostname = False
        with urllib.request.urlopen(
            f"https://127.0.0.1:{self.port}/metrics", timeout=5, context=context
        ) as response:
            return response.read().decode()

    def worker_pids(self) -> set[int]:
        """The gunicorn workers: processes whose parent is this master."""
        pids = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # The command name (field 2) may hold spaces; fields after its ")" do not.
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[1]) == self.proc.pid:
                    pids.add(int(stat.parent.name))
        return pids

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start_replica(cluster: Cluster, tmp: Path, name: str, config: Path) -> Replica:
    cert_dir = tmp / name
    port = free_port()
    log = tmp / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["POD_NAMESPACE"] = LEASE_NAMESPACE
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                GUARDRAIL,
                "serve",
                "--config",
                str(config),
                "--cert-dir",
                str(cert_dir),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "2",
                "--kubeconfig",
                str(cluster.kubeconfig),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    return Replica(name, proc, port, cert_dir, log)


def lease_holder(cluster: Cluster) -> str:
    lease = cluster.api_get(
        f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/guardrail-audit"
    )
    return str(lease["spec"].get("holderIdentity") or "")


def report_writers(cluster: Cluster, namespace: str) -> str | None:
    found = cluster.kubectl(
        "get", "policyreport", f"guardrail-{namespace}", "-n", namespace, "-o", "json", check=False
    )
    if found.returncode != 0:
        return None
    annotations = json.loads(found.stdout)["metadata"].get("annotations") or {}
    return annotations.get("guardrail.dev/audited-by")


def leader_gauge(replica: Replica) -> float:
    match = re.search(r"^guardrail_audit_leader (\S+)$", replica.metrics(), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def replicas(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    """Two replicas auditing every 2 s; a namespace with a known violation to report on."""
    cluster.kubectl("apply", "-f", str(FIXTURES / "wgpolicyk8s-policyreport-crds.yaml"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/policyreports.wgpolicyk8s.io",
        "crd/clusterpolicyreports.wgpolicyk8s.io",
    )
    if cluster.kubectl("get", "namespace", LEASE_NAMESPACE, check=False).returncode != 0:
        cluster.create_namespace(LEASE_NAMESPACE)
    config = tmp_path / "config.yaml"
    config.write_text("audit: {interval: 2s}\n", encoding="utf-8")
    first = start_replica(cluster, tmp_path, "a", config)
    second = start_replica(cluster, tmp_path, "b", config)
    try:
        yield first, second
    finally:
        first.kill()
        second.kill()


def test_only_the_lease_holder_reports_and_the_other_takes_over(
    cluster: Cluster, replicas: tuple[Replica, Replica]
) -> None:
    """One worker of one replica holds the Lease, writes the reports (annotated with its
    identity) and exports the gauge; killed, the other replica takes over and rewrites them."""
    shop = f"bg-{os.urandom(2).hex()}"
    cluster.create_namespace(shop)
    cluster.kubectl(
        "apply",
        "-n",
        shop,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
            }
        ),
    )
    holder = eventually(
        lambda: lease_holder(cluster) if _exists(cluster) else None,
        what="a holder of the audit Lease",
        timeout=60,
    )
    by_pid = {pid: r for r in replicas for pid in r.worker_pids()}
    leader = by_pid[int(holder.rpartition("_")[2])]
    standby = next(r for r in replicas if r is not leader)

    writer = eventually(
        lambda: report_writers(cluster, shop), what="the shop PolicyReport", timeout=60
    )
    assert writer == holder
    report = json.loads(
        cluster.kubectl("get", "policyreport", f"guardrail-{shop}", "-n", shop, "-o", "json").stdout
    )
    assert {(r["policy"], r["resources"][0]["name"]) for r in report["results"]} == {
        ("require-role-labels", "web"),
        ("require-default-deny", "web"),  # rejected for its namespace's sake: its own result
    }
    # Each gunicorn master adds up its own workers: exactly one leader, in the holder's replica.
    eventually(lambda: leader_gauge(leader) == 1.0, what="the leader gauge")
    assert leader_gauge(standby) == 0.0
    # The gauges are published once the reports are written: a moment after the report.
    eventually(
        lambda: re.search(
            rf'^guardrail_audit_violations{{namespace="{shop}",policy="require-role-labels"}} 1\.0$',
            leader.metrics(),
            re.MULTILINE,
        ),
        what="the leader's violations gauge",
    )
    assert "guardrail_audit_violations{" not in standby.metrics()

    leader.kill()
    new_holder = eventually(
        lambda: h if (h := lease_holder(cluster)) and h != holder else None,
        what="the other replica taking the Lease over",
        timeout=LEASE_DURATION_SECONDS + 30,
        interval=1,
    )
    assert int(new_holder.rpartition("_")[2]) in standby.worker_pids()
    eventually(
        lambda: report_writers(cluster, shop) == new_holder,
        what="the new holder rewriting the reports",
        timeout=30,
    )
    eventually(lambda: leader_gauge(standby) == 1.0, what="the new leader's gauge")
    cluster.kubectl("delete", "namespace", shop, "--wait=false")


def _exists(cluster: Cluster) -> bool:
    return (
        cluster.kubectl(
            "get", "lease", "guardrail-audit", "-n", LEASE_NAMESPACE, check=False
        ).returncode
        == 0
    )
