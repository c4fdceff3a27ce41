"""`guardrail serve` against the e2e cluster, registered as a ValidatingWebhookConfiguration.

The configuration registered is deploy/'s own (same webhook names, rules, failurePolicy,
timeouts, namespaceSelector), with each `clientConfig` replaced by
`url: https://127.0.0.1:PORT/validate` and the caBundle that `guardrail certs --host 127.0.0.1`
printed. The port and the certificates stay the same for the whole session, so guardrail can be
restarted with another configuration (another mode) without touching the registration.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.e2e.harness import Cluster, _die_with_parent, eventually, free_port

REPO = Path(__file__).resolve().parents[2]
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REGISTRATION = "guardrail-e2e"
WEBHOOKS = (
    "workloads.guardrail.dev",
    "networkpolicies.guardrail.dev",
    "namespaces.guardrail.dev",
    "exempt-namespace-names.guardrail.dev",
)
# A platform admin that config exempts by username; kubectl impersonates it with `--as`.
EXEMPT_USER = "e2e-platform-admin"
AS_EXEMPT = (f"--as={EXEMPT_USER}", "--as-group=system:masters")

CONFIGS: Mapping[str, str] = {
    "enforce": f"mode: enforce\nexemptions:\n  usernames: [{EXEMPT_USER}]\n",
    "warn": f"mode: warn\nexemptions:\n  usernames: [{EXEMPT_USER}]\n",
    "audit": f"mode: audit\nexemptions:\n  usernames: [{EXEMPT_USER}]\n",
}


def webhook_yaml() -> Path:
    """deploy/'s ValidatingWebhookConfiguration (the base, wherever the layout keeps it)."""
    for candidate in (REPO / "deploy" / "base" / "webhook.yaml", REPO / "deploy" / "webhook.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("no webhook.yaml under deploy/")


def registration(url: str, ca_bundle: str) -> dict[str, Any]:
    """deploy/'s webhook configuration, calling `url` with `ca_bundle` instead of the Service."""
    with webhook_yaml().open(encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    doc["metadata"] = {"name": REGISTRATION}
    for webhook in doc["webhooks"]:
        webhook["clientConfig"] = {"url": f"{url}/validate", "caBundle": ca_bundle}
    return dict(doc)


def spawn_serve(
    args: Sequence[str], log_path: Path, env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """`guardrail serve ARGS` in a session of its own, its output appended to log_path."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [GUARDRAIL, "serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            # A killed pytest must not leave guardrail bound to its port.
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - the child makes one prctl call
        )


def stop_serve(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (gunicorn drains), SIGKILL of the group if it lingers."""
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Guardrail:
    """One `guardrail serve` process (2 workers) on a fixed port, with one configuration."""

    def __init__(
        self, cluster: Cluster, workdir: Path, port: int, cert_dir: Path, config: str
    ) -> None:
        self.cluster = cluster
        self.port = port
        self.cert_dir = cert_dir
        self.config_name = config
        self.config_path = workdir / f"config-{config}.yaml"
        self.config_path.write_text(CONFIGS[config], encoding="utf-8")
        self.log_path = workdir / f"serve-{config}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")}
        self.process = spawn_serve(
            [
                "--config",
                str(self.config_path),
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "--cert-dir",
                str(self.cert_dir),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--threads",
                "4",
            ],
            self.log_path,
            env,
        )
        eventually(self.ready, what=f"guardrail serve ({self.config_name}) /readyz 200", timeout=60)

    def stop(self) -> None:
        """SIGTERM (gunicorn drains), SIGKILL of the group if it lingers."""
        process, self.process = self.process, None
        stop_serve(process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, verify=str(self.cert_dir / "ca.crt"), timeout=5)

    def ready(self) -> bool:
        if not self.running:
            raise AssertionError(f"guardrail serve exited; its log:\n{self.log()[-3000:]}")
        try:
            return self.get("/readyz").status_code == 200
        except requests.ConnectionError:
            return False

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample of /metrics whose labels include `labels` (summed), or None when absent."""
        total: float | None = None
        for line in self.get("/metrics").text.splitlines():
            found = re.match(r"^([^{ ]+)(?:\{([^}]*)\})? (\S+)$", line)
            if found is None or found.group(1) != name:
                continue
            present = dict(re.findall(r'([\w.]+)="([^"]*)"', found.group(2) or ""))
            if all(present.get(k) == v for k, v in labels.items()):
                total = (total or 0.0) + float(found.group(3))
        return total

    def review(
        self,
        obj: Mapping[str, Any],
        *,
        operation: str = "CREATE",
        resource: str,
        group: str = "",
        old: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST an AdmissionReview the way the API server would; return its `response`."""
        meta = obj.get("metadata") or {}
        if operation == "DELETE":
            old = obj  # a DELETE carries the object being deleted as oldObject
        api_version = str(obj.get("apiVersion") or "")
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {
                    "group": group,
                    "version": api_version.rpartition("/")[2],
                    "kind": obj.get("kind"),
                },
                "resource": {
                    "group": group,
                    "version": api_version.rpartition("/")[2],
                    "resource": resource,
                },
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "operation": operation,
                "userInfo": {"username": "e2e-developer", "groups": ["system:authenticated"]},
                "object": None if operation == "DELETE" else dict(obj),
                "oldObject": dict(old) if old is not None else None,
                "dryRun": False,
            },
        }
        response = requests.post(
            self.url + "/validate",
            json=review,
            verify=str(self.cert_dir / "ca.crt"),
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json()["response"])


class GuardrailControl:
    """The session's guardrail: started on demand per configuration; registered on demand.

    The process outlives a test module (reused by the next one with the same configuration);
    the registration does not (`webhook` fixture), so modules that expect no webhook (the
    harness's smoke tests, other issues' tiers) never meet it.
    """

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.cluster = cluster
        self.workdir = workdir
        self.port = free_port()
        self.cert_dir = workdir / "certs"
        done = subprocess.run(
            [GUARDRAIL, "certs", "--out", str(self.cert_dir), "--host", "127.0.0.1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"guardrail certs failed: {done.stderr}")
        self.ca_bundle = done.stdout.strip()
        self.current: Guardrail | None = None
        self.registered = False

    def use(self, config: str) -> Guardrail:
        """guardrail serving `config`, synced; reused when it already serves that one."""
        current = self.current
        if current is not None and current.config_name == config and current.running:
            return current
        self.stop()
        served = Guardrail(self.cluster, self.workdir, self.port, self.cert_dir, config)
        served.start()
        self.current = served
        return served

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None

    def register(self) -> None:
        """Register guardrail (started with `enforce` if none runs) and wait until it is called."""
        if self.current is None or not self.current.running:
            self.use("enforce")
        if self.registered:
            return
        doc = registration(f"https://127.0.0.1:{self.port}", self.ca_bundle)
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
        self.registered = True

        def called() -> bool:
            # The API server loads webhook configurations through an informer: wait until an
            # unlabelled Pod in `default` is judged by guardrail.
            probe = self.cluster.kubectl(
                "run",
                "probe",
                "-n",
                "default",
                "--image=registry.invalid/probe:1",
                "--dry-run=server",
                check=False,
            )
            return 'admission webhook "workloads.guardrail.dev"' in probe.stderr or (
                "Warning: [require-role-labels]" in probe.stderr
            )

        eventually(called, what="the API server calling guardrail", timeout=30)

    def unregister(self) -> None:
        if self.registered:
            self.cluster.kubectl(
                "delete", "validatingwebhookconfiguration", REGISTRATION, "--ignore-not-found"
            )
            self.registered = False
