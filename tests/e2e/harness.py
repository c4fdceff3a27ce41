"""A real single-node control plane on 127.0.0.1 for end-to-end tests: etcd, kube-apiserver,
kube-controller-manager, and the machine's real kubectl pointed at them.

No kubelet and no scheduler: Pods are admitted and stored but never run, which is all an
admission webhook needs. The controller manager is there because the API server alone does
not create a namespace's ``default`` ServiceAccount (without it the ServiceAccount admission
plugin rejects every Pod before any webhook sees it), does not finish namespace deletion and
does not turn Deployments into ReplicaSets.

Everything lives in one temporary directory (data, certificates, keys, kubeconfig, audit
log, one log file per server under ``logs/``) that :meth:`Cluster.stop` removes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e import build_cluster
from tests.polling import eventually

HERE = Path(__file__).resolve().parent
INSTALL_DEPS = HERE / "install_deps.sh"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
ADMIN_USER = "guardrail-e2e-admin"

Log = Callable[[str], None]

# Metadata for everything is what the tests read back: webhook audit annotations are attached
# to the Metadata-level event of the request. RequestReceived only duplicates each event.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
"""


class ClusterError(Exception):
    """The control plane could not be started; the message holds the server's own log tail."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() shows what kubectl printed."""

    def __str__(self) -> str:
        return (
            f"{' '.join(map(str, self.cmd))} exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # If pytest is killed outright (timeout, Ctrl-C twice, OOM) no finalizer runs; the kernel
    # then kills the servers instead of leaving them bound to ports and holding the tmp dir.
    # libc is loaded before the fork: the child only makes the one system call.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class _Server:
    """One server process in its own process group, logging to a file."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {self.argv!r}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads run before the fixture
            )

    def check_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise ClusterError(
                f"{self.name} exited (code {code}); last lines of {self.log_path}:\n"
                f"{_tail(self.log_path)}"
            )

    def stop(self, *, grace: float = 0) -> None:
        """Stop the process group: SIGTERM and up to ``grace`` seconds to exit, then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        # The whole group: a server that forked helpers must not leave them behind.
        if grace > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_for(
    what: str, ready: Callable[[], bool], servers: Sequence[_Server], timeout: float
) -> None:
    def running_and_ready() -> bool:
        for server in servers:
            server.check_running()
        return ready()

    try:
        eventually(running_and_ready, what=what, timeout=timeout, interval=0.2)
    except AssertionError as exc:
        logs = "\n".join(f"--- {s.name} ({s.log_path}) ---\n{_tail(s.log_path)}" for s in servers)
        raise ClusterError(f"{exc}\n{logs}") from None


def _write_service_account_keys(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "sa.key"
    public = directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    private.chmod(0o600)
    return private, public


def _kubeconfig(server: str, ca_file: Path, token: str) -> str:
    # JSON is valid YAML, and needs no quoting rules for paths and tokens.
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": server, "certificate-authority": str(ca_file)},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": ADMIN_USER}}],
            "current-context": "e2e",
        },
        indent=2,
    )


def find_etcd(*, install: bool = True, log: Log = print) -> str:
    """Return the etcd binary, installing Debian's etcd-server through install_deps.sh if absent."""
    for candidate in (shutil.which("etcd"), "/usr/bin/etcd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not install:
        raise ClusterError("etcd not found; run tests/e2e/install_deps.sh")
    log("etcd not found; running tests/e2e/install_deps.sh")
    result = subprocess.run(["sh", str(INSTALL_DEPS)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"install_deps.sh failed ({result.returncode}):\n{result.stderr}")
    return find_etcd(install=False, log=log)


def find_kubectl() -> str:
    """Return the machine's kubectl; the tests drive the real client users have."""
    path = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not os.access(path, os.X_OK):
        raise ClusterError("kubectl not found; run tests/e2e/install_deps.sh")
    return path


@dataclass
class Cluster:
    """A running control plane; build it with :meth:`start`, end it with :meth:`stop`."""

    tmp: Path
    token: str
    server: str
    kubeconfig: Path
    audit_log: Path
    ca_file: Path
    kubectl_path: str
    etcd_url: str = ""
    keep_tmp: bool = False
    _servers: dict[str, _Server] = field(default_factory=dict, repr=False)
    _log: Log = field(default=print, repr=False)
    _apiserver_argv: list[str] = field(default_factory=list, repr=False)

    # -- life cycle --------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        *,
        binaries: Mapping[str, Path] | None = None,
        log: Log = print,
        keep_tmp: bool = False,
        etcd_flags: Sequence[str] = (),
        apiserver_flags: Sequence[str] = (),
        controller_manager: bool = True,
    ) -> Cluster:
        """Start etcd, kube-apiserver and kube-controller-manager; return once Pods can be made.

        ``binaries`` maps kube-apiserver / kube-controller-manager to executables; by default
        they come from build_cluster's cache, built there first if missing. ``etcd_flags`` and
        ``apiserver_flags`` are added to the servers' own (the scale benchmark raises etcd's
        quota and turns the audit log off; a later flag wins); without ``controller_manager``
        no namespace gets its ServiceAccount (no Pod can be created), but a benchmark creating
        100,000 namespaces does not pay for 200,000 more objects written by the controllers.
        """
        started = time.monotonic()
        if binaries is None:
            binaries = build_cluster.cached_binaries()
            if binaries is None:
                log("kube-apiserver / kube-controller-manager not cached: building them once")
                build_cluster.build(log=log)
                binaries = build_cluster.cached_binaries()
            assert binaries is not None
        etcd = find_etcd(log=log)
        tmp = Path(tempfile.mkdtemp(prefix="guardrail-e2e-"))
        token = secrets.token_urlsafe(24)
        port = free_port()
        cluster = cls(
            tmp=tmp,
            token=token,
            server=f"https://127.0.0.1:{port}",
            kubeconfig=tmp / "kubeconfig",
            audit_log=tmp / "audit.log",
            ca_file=tmp / "apiserver-certs" / "apiserver.crt",
            kubectl_path=find_kubectl(),
            keep_tmp=keep_tmp,
            _log=log,
        )
        try:
            cluster._configure(etcd, binaries, port, etcd_flags, apiserver_flags)
            if not controller_manager:
                del cluster._servers["kube-controller-manager"]
            cluster._start_all()
        except BaseException:
            cluster.stop()
            raise
        log(
            f"cluster ready in {time.monotonic() - started:.1f}s at {cluster.server} "
            f"(kubeconfig {cluster.kubeconfig})"
        )
        return cluster

    def _configure(
        self,
        etcd: str,
        binaries: Mapping[str, Path],
        port: int,
        etcd_flags: Sequence[str] = (),
        apiserver_flags: Sequence[str] = (),
    ) -> None:
        tmp = self.tmp
        (tmp / "logs").mkdir()
        for name in ("etcd", "apiserver-certs", "kcm-certs", "flexvolume", "kube-cache"):
            (tmp / name).mkdir(mode=0o700)
        sa_key, sa_pub = _write_service_account_keys(tmp)
        token_file = tmp / "tokens.csv"
        token_file.write_text(
            f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n', encoding="utf-8"
        )
        token_file.chmod(0o600)
        audit_policy = tmp / "audit-policy.yaml"
        audit_policy.write_text(AUDIT_POLICY, encoding="utf-8")
        self.kubeconfig.write_text(
            _kubeconfig(self.server, self.ca_file, self.token), encoding="utf-8"
        )
        self.kubeconfig.chmod(0o600)

        client_port, peer_port, kcm_port = free_port(), free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        logs = tmp / "logs"
        self._servers["etcd"] = _Server(
            "etcd",
            [
                etcd,
                "--name=e2e",
                f"--data-dir={tmp / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=e2e={peer_url}",
                "--initial-cluster-state=new",
                "--logger=zap",
                "--log-level=warn",
                *etcd_flags,
            ],
            logs / "etcd.log",
        )
        self._servers["kube-apiserver"] = _Server(
            "kube-apiserver",
            [
                str(binaries["kube-apiserver"]),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={tmp / 'apiserver-certs'}",
                # A loopback advertise address is refused by the default lease reconciler.
                "--endpoint-reconciler-type=none",
                f"--token-auth-file={token_file}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--profiling=false",
                *apiserver_flags,
            ],
            logs / "kube-apiserver.log",
        )
        kcm_kubeconfig = tmp / "kube-controller-manager.kubeconfig"
        kcm_kubeconfig.write_text(self.kubeconfig.read_text(encoding="utf-8"), encoding="utf-8")
        self._servers["kube-controller-manager"] = _Server(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={tmp / 'kcm-certs'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={self.ca_file}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # Its default is under /usr/libexec, which it would create on the host.
                f"--flex-volume-plugin-dir={tmp / 'flexvolume'}",
                "--profiling=false",
            ],
            logs / "kube-controller-manager.log",
        )

    def _start_all(self) -> None:
        etcd = self._servers["etcd"]
        etcd.start()
        _wait_for("etcd /health", self._etcd_healthy, [etcd], timeout=30)
        self.start_apiserver()
        kcm = self._servers.get("kube-controller-manager")
        if kcm is None:
            return
        kcm.start()
        # The default ServiceAccount is written by the controller manager: its presence proves
        # the controllers run and that Pods in `default` can pass ServiceAccount admission.
        _wait_for(
            "the default ServiceAccount in namespace default",
            lambda: self._api_ok("/api/v1/namespaces/default/serviceaccounts/default"),
            list(self._servers.values()),
            timeout=60,
        )

    def stop(self) -> None:
        """Kill every server (process groups) and remove the temporary directory."""
        # SIGKILL straight away: the data is thrown away, and a graceful API server shutdown
        # alone takes over 10 s while the controller manager's watches are open.
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            server = self._servers.get(name)
            if server is not None:
                server.stop()
        if self.keep_tmp:
            self._log(f"kept {self.tmp} (logs under logs/)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop_apiserver(self, *, graceful: bool = False) -> None:
        """Stop the API server only; etcd and the controller manager keep running.

        By default it is killed (SIGKILL), as in a crash: clients see connections reset.
        ``graceful`` sends SIGTERM first and allows up to 60 s for the orderly shutdown.
        """
        self._servers["kube-apiserver"].stop(grace=60 if graceful else 0)

    def start_apiserver(self, timeout: float = 60) -> None:
        """(Re)start the API server with the same flags and port; return once /readyz is ok."""
        apiserver = self._servers["kube-apiserver"]
        if apiserver.proc is not None and apiserver.proc.poll() is None:
            return
        apiserver.start()
        _wait_for(
            "kube-apiserver /readyz",
            lambda: self._api_ok("/readyz"),
            [self._servers["etcd"], apiserver],
            timeout=timeout,
        )

    def restart_apiserver(self, extra_flags: Sequence[str] = ()) -> None:
        """Restart the API server with its start flags plus ``extra_flags``; () restores them.

        For tests of API server configuration (--admission-control-config-file, ...): the
        flags stay until the next call, so a test that adds some calls it again with none.
        """
        apiserver = self._servers["kube-apiserver"]
        if not self._apiserver_argv:
            self._apiserver_argv = list(apiserver.argv)
        apiserver.argv = [*self._apiserver_argv, *extra_flags]
        self.stop_apiserver()
        self.start_apiserver()

    def logs(self, name: str) -> str:
        """Return the log of one server: etcd, kube-apiserver or kube-controller-manager."""
        return self._servers[name].log_path.read_text(encoding="utf-8", errors="replace")

    # -- clients -------------------------------------------------------------------------------

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl on this cluster; with check, a non-zero exit raises KubectlError."""
        command = [
            self.kubectl_path,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.tmp / 'kube-cache'}",
            *args,
        ]
        env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
        result = subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, command, result.stdout, result.stderr)
        return result

    def create_namespace(self, name: str, *, timeout: float = 30) -> str:
        """Create a namespace with kubectl, wait for its default ServiceAccount; return the output.

        Until the controller manager has made that ServiceAccount, the ServiceAccount admission
        plugin rejects every Pod in the namespace, before any webhook sees it.
        """
        created = self.kubectl("create", "namespace", name).stdout
        eventually(
            lambda: self._api_ok(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
            what=f"serviceaccount default in namespace {name}",
            timeout=timeout,
        )
        return created

    def api_get(self, path: str, timeout: float = 5) -> Any:
        """GET an API path as the admin user and return the decoded JSON body."""
        return json.loads(self._get(path, timeout))

    def _get(self, path: str, timeout: float) -> bytes:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return bytes(response.read())

    def audit_events(self) -> Iterator[dict[str, Any]]:
        """Yield the audit log's events so far, oldest first."""
        with self.audit_log.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    # -- probes --------------------------------------------------------------------------------

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _api_ok(self, path: str) -> bool:
        # The serving certificate (and its CA, same file) exists only once the server has
        # written it on first start.
        if not self.ca_file.exists():
            return False
        try:
            # /readyz answers plain "ok"; a non-2xx status raises HTTPError (an OSError).
            self._get(path, timeout=2)
        except OSError:
            return False
        return True


@contextlib.contextmanager
def running_cluster(
    log: Log = print,
    *,
    keep_tmp: bool = False,
    etcd_flags: Sequence[str] = (),
    apiserver_flags: Sequence[str] = (),
    controller_manager: bool = True,
) -> Iterator[Cluster]:
    """Start a cluster for the duration of the block, stopping it however the block ends."""
    cluster = Cluster.start(
        log=log,
        keep_tmp=keep_tmp,
        etcd_flags=etcd_flags,
        apiserver_flags=apiserver_flags,
        controller_manager=controller_manager,
    )
    try:
        yield cluster
    finally:
        cluster.stop()
