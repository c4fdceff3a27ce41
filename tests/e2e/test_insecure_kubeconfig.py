"""A kubeconfig with `insecure-skip-tls-verify: true`, against the real API server: Guardrail
says once, in its own words, that the server's certificate is not checked, and urllib3's
per-request InsecureRequestWarning never reaches the user."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.guardrail import GUARDRAIL, spawn_serve, stop_serve
from tests.e2e.harness import Cluster, eventually, free_port

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
WARNING = "TLS verification is off for {server} (insecure-skip-tls-verify in the kubeconfig): the API server's identity is not checked"


def insecure_kubeconfig(cluster: Cluster, directory: Path) -> Path:
    """The harness's kubeconfig with the CA dropped and verification switched off."""
    config = json.loads(cluster.kubeconfig.read_text(encoding="utf-8"))
    for entry in config["clusters"]:
        entry["cluster"].pop("certificate-authority", None)
        entry["cluster"]["insecure-skip-tls-verify"] = True
    path = directory / "insecure-kubeconfig"
    path.write_text(json.dumps(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def _env() -> dict[str, str]:
    # PYTHONPATH passes through: the guardrail under test is this checkout's.
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")}


def test_audit_prints_exactly_one_insecure_connection_warning(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`guardrail audit` makes dozens of requests; stderr holds one warning line and nothing
    else (no urllib3 InsecureRequestWarning, no traceback)."""
    kubeconfig = insecure_kubeconfig(cluster, tmp_path)
    done = subprocess.run(
        [GUARDRAIL, "audit", "--format", "json", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=REPO,
        env=_env(),
    )
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)  # the audit itself worked over the unverified connection
    assert done.stderr == f"guardrail: warning: {WARNING.format(server=cluster.server)}\n"


def test_serve_logs_one_insecure_connection_warning_for_all_its_workers(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`guardrail serve` (2 workers, each with its own list+watch cache) logs the warning once,
    as a JSON line like the rest of its log, and no InsecureRequestWarning while it watches."""
    kubeconfig = insecure_kubeconfig(cluster, tmp_path)
    certs = tmp_path / "certs"
    subprocess.run(
        [GUARDRAIL, "certs", "--out", str(certs), "--host", "127.0.0.1"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    port = free_port()
    log_path = tmp_path / "serve.log"
    process = spawn_serve(
        [
            "--kubeconfig",
            str(kubeconfig),
            "--cert-dir",
            str(certs),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
        ],
        log_path,
        _env(),
    )
    url = f"https://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text(encoding="utf-8", errors="replace")
        try:
            # Both workers answer in turn; each has synced before both have said ready.
            return all(
                requests.get(f"{url}/readyz", verify=str(certs / "ca.crt"), timeout=5).status_code
                == 200
                for _ in range(4)
            )
        except requests.ConnectionError:
            return False

    try:
        eventually(ready, what="guardrail serve /readyz 200", timeout=60)
        requests.get(f"{url}/metrics", verify=str(certs / "ca.crt"), timeout=5)
    finally:
        stop_serve(process)
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert not [line for line in lines if "InsecureRequestWarning" in line], lines
    warnings = [line for line in lines if "TLS verification is off" in line]
    assert len(warnings) == 1, lines
    entry = json.loads(warnings[0])
    assert entry["level"] == "warning"
    assert entry["message"] == WARNING.format(server=cluster.server)
    assert entry["server"] == cluster.server
