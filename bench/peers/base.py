"""What every peer of the API-server benchmark shares: subjects, processes, registration, CPU, PSS.

A *peer* is a program that is built, configured and started (the Go floor, Guardrail,
Gatekeeper, Kyverno); a *subject* is one webhook of it that pods are timed through, seeing only
the namespaces labelled ``guardrail-bench=<subject>`` (Kyverno is one process with two
subjects: its ClusterPolicy and its ValidatingPolicy, each matched to its own namespaces).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.peers import cases
from tests.e2e.harness import Cluster

Log = Callable[[str], None]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Subject:
    """One measured webhook: where it runs and how to reach it directly."""

    key: str  # the namespace label's value, and the row of the table
    title: str
    pid: int  # the process (group leader) whose tree's CPU and PSS are its cost
    url: str  # its validating endpoint, for the direct keep-alive load
    ca: Path  # the CA its serving certificate is verified with
    judges: bool = True  # False for the floor, which allows everything
    settings: dict[str, Any] = field(default_factory=dict)  # what the README reports


@dataclass(frozen=True)
class Context:
    cluster: Cluster
    cert_dir: Path  # tls.crt, tls.key, ca.crt for 127.0.0.1 (Guardrail's `certs` output)
    work: Path  # logs and scratch files
    log: Log
    workers: int = 2
    threads: int = 8

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode((self.cert_dir / "ca.crt").read_bytes()).decode()


class Peer(Protocol):
    name: str
    version: str
    subjects: tuple[str, ...]

    def build(self, log: Log) -> dict[str, Any]:
        """Build (or find cached) what it runs; return how it was built."""

    def start(self, ctx: Context) -> contextlib.AbstractContextManager[list[Subject]]:
        """Install, configure, start and register it; stop and unregister on exit."""


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def process(
    name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, logging to LOG_DIR/NAME.log, stopped on exit."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    try:
        yield proc
    finally:
        stop_group(proc, 30)


def stop_group(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM to the process group `proc` leads (started with `start_new_session`), then
    SIGKILL if it has not ended within `timeout` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def log_tail(log_dir: Path, name: str, lines: int = 40) -> str:
    try:
        text = (log_dir / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log_dir: Path | None = None,
    name: str = "",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_tail(log_dir, name) if log_dir else ""
            raise SystemExit(f"bench: {name} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.5)
    tail = log_tail(log_dir, name) if log_dir and name else ""
    raise SystemExit(f"bench: timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def _tree(pid: int) -> list[int]:
    """The process and all its live descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its live descendants."""
    total = 0.0
    for current in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def tree_pss_kib(pid: int) -> int:
    """Proportional set size of a process tree: shared pages counted once across it."""
    total = 0
    for current in _tree(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total


# -- the API server -----------------------------------------------------------------------------
def apply(cluster: Cluster, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(list_of(objects)))


def apply_files(cluster: Cluster, *paths: Path) -> None:
    args = [arg for path in paths for arg in ("-f", str(path))]
    cluster.kubectl("apply", "--server-side", *args, timeout=180)


def install_crds(cluster: Cluster, crds: Sequence[dict[str, Any]], timeout: float = 180) -> None:
    """Apply CRDs and wait until the API server serves every one of them."""
    apply(cluster, *crds)
    names = {crd["metadata"]["name"] for crd in crds}

    def established() -> bool:
        out = cluster.kubectl("get", "crd", "-o", "json")
        ready = {
            crd["metadata"]["name"]
            for crd in json.loads(out.stdout)["items"]
            if any(
                c["type"] == "Established" and c["status"] == "True"
                for c in crd.get("status", {}).get("conditions") or []
            )
        }
        return names <= ready

    wait_until(established, f"{len(names)} CRDs to be established", timeout)


def list_of(objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(objects)}


def webhook_configuration(
    name: str, subject: str, url: str, ca_bundle: str, *, timeout_seconds: int = 5
) -> dict[str, Any]:
    """How Guardrail is registered in the benchmark, for SUBJECT's namespaces only.

    Pods, CREATE and UPDATE, `failurePolicy: Fail`, a URL on 127.0.0.1; every webhook the
    benchmark registers itself (the floor, Guardrail, Gatekeeper) gets exactly this.
    """
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": f"{subject}.bench.guardrail.dev",
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
                "namespaceSelector": {"matchLabels": {cases.LABEL: subject}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": timeout_seconds,
                "admissionReviewVersions": ["v1"],
                "matchPolicy": "Equivalent",
            }
        ],
    }


def https_ok(url: str, ca: Path | None) -> bool:
    import requests  # noqa: PLC0415 - the benchmark's dependency, not the package's

    return requests.get(url, verify=str(ca) if ca else False, timeout=2).ok
