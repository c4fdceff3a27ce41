"""Faults under a real API server and under load: the watch connection cut mid-stream, the
API server killed and restarted under open watches, 1,000 namespaces created while reviews
flow, a gunicorn worker killed, SIGTERM while requests flow. Guardrail must keep answering,
never answer wrongly, and lose no request it could have saved (README "Reliability" lists what
a fault costs and why).

The watch cut goes through a TCP proxy between guardrail and the API server that the test
severs; the restart kills the API server itself, with guardrail registered as its webhook.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.e2e.guardrail import EXEMPT_USER, registration
from tests.e2e.harness import Cluster, eventually
from tests.http.support import GUARDRAIL, Server, as_json, free_port, make_certs, pod, review

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A platform admin that the session's registered guardrail (if any) exempts: the test's own
# writes (deleting a default-deny) must not be judged by another test's webhook.
AS_ADMIN = ("--as=e2e-platform-admin", "--as-group=system:masters")
DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""


# -- a TCP proxy the test can cut ----------------------------------------------------------------
class CuttableProxy:
    """Forwards 127.0.0.1:port to the API server; `cut()` resets every open connection (as a
    dying load balancer or NAT would) and `refuse()` makes new ones fail until `restore()`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refusing = threading.Event()
        self.accepted = 0
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._refusing.is_set():
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                self._reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with self._lock:
            if source not in self._open:
                return  # cut: cut() closes it with a reset
            self._open -= {source, sink}
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump, which then returns
            sock.close()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        # SO_LINGER 0 makes close() send RST, the way a connection torn down mid-stream looks.
        # shutdown(SHUT_RD) first wakes the pump blocked in recv() on it (sending nothing):
        # a socket closed under a blocked recv() stays open in the kernel, silently.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)
        with contextlib.suppress(OSError):
            sock.close()

    def cut(self) -> int:
        """Reset every connection open now; return how many there were."""
        with self._lock:
            victims, self._open = self._open, set()
            self.cuts += 1
        for sock in victims:
            self._reset(sock)
        return len(victims) // 2

    def open_connections(self) -> int:
        with self._lock:
            return len(self._open) // 2

    def refuse(self) -> None:
        self._refusing.set()

    def restore(self) -> None:
        self._refusing.clear()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.cut()


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[CuttableProxy]:
    upstream = int(cluster.server.rsplit(":", 1)[1])
    running = CuttableProxy(upstream)
    yield running
    running.close()


def _serve(
    workdir: Path,
    *,
    kubeconfig: Path,
    workers: int = 2,
    threads: int = 4,
    config: str | None = None,
) -> Server:
    """Start `guardrail serve` on the live state through kubeconfig; wait for /readyz."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert_dir = workdir / "certs"
    make_certs(cert_dir)
    port = free_port()
    args = [
        GUARDRAIL,
        "serve",
        "--cert-dir",
        str(cert_dir),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    args += ["--kubeconfig", str(kubeconfig)]
    if config is not None:
        (workdir / "config.yaml").write_text(config)
        args += ["--config", str(workdir / "config.yaml")]
    log_path = workdir / "server.log"
    log_file = log_path.open("wb")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")}
    process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    server = Server(
        process=process, port=port, cert_dir=cert_dir, log_path=log_path, _log_file=log_file
    )
    try:
        server.wait_ready()
        # Ready once one worker is: the others may not be forked yet.
        eventually(lambda: len(_workers(server)) == workers, what=f"{workers} workers")
    except BaseException:
        server.stop()
        raise
    return server


def _kubeconfig_through(cluster: Cluster, port: int, path: Path) -> Path:
    config = json.loads(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace isolated by a default-deny NetworkPolicy, deleted afterwards."""
    name = f"faults-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name, *AS_ADMIN)
    cluster.kubectl("apply", "-n", name, "-f", "-", *AS_ADMIN, input=DEFAULT_DENY)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", *AS_ADMIN)


def _verdict(server: Server, namespace: str) -> dict[str, Any]:
    return server.review(review(pod(namespace=namespace)))


def _denied_for_default_deny(server: Server, namespace: str, times: int = 8) -> bool:
    """Several reviews in a row (new connections, so both workers) deny for default-deny."""
    for _ in range(times):
        response = _verdict(server, namespace)
        if response["allowed"] or "[require-default-deny]" not in response["status"]["message"]:
            return False
    return True


def _allowed(server: Server, namespace: str, times: int = 8) -> bool:
    return all(_verdict(server, namespace)["allowed"] for _ in range(times))


@pytest.mark.parametrize("outage_seconds", [0.0, 5.0], ids=["cut", "cut-and-refuse-5s"])
def test_watch_cut_mid_stream_then_policy_deleted_is_seen(
    cluster: Cluster,
    proxy: CuttableProxy,
    namespace: str,
    tmp_path: Path,
    outage_seconds: float,
) -> None:
    """Guardrail watches through a proxy; every connection (the watch streams) is reset, the
    proxy optionally refuses connections for a while, and the namespace's default-deny is
    deleted meanwhile: guardrail reconnects and starts denying pods there. A stale cache would
    keep allowing them (a cache that says "isolated" is not confirmed by a live read)."""
    kubeconfig = _kubeconfig_through(cluster, proxy.port, tmp_path / "kubeconfig")
    server = _serve(tmp_path / "serve", kubeconfig=kubeconfig)
    try:
        eventually(lambda: _allowed(server, namespace), what="pods allowed while isolated")
        assert proxy.open_connections() >= 2  # each worker's watches are up
        watches_before = proxy.accepted

        assert proxy.cut() >= 2
        cut_at = time.monotonic()
        if outage_seconds:
            proxy.refuse()
        cluster.kubectl("delete", "networkpolicy", "default-deny", "-n", namespace, *AS_ADMIN)
        if outage_seconds:
            time.sleep(outage_seconds)  # the outage itself, not a wait for a result
            proxy.restore()

        try:
            eventually(
                lambda: _denied_for_default_deny(server, namespace),
                what="the deletion seen by every worker",
                timeout=90,
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; last verdict {_verdict(server, namespace)}; proxy accepted "
                f"{proxy.accepted}, open {proxy.open_connections()}; server log:\n"
                f"{server.log()[-4000:]}"
            ) from exc
        print(
            f"\nwatch cut (outage {outage_seconds:g} s): deletion seen by every worker "
            f"{time.monotonic() - cut_at:.1f} s after the cut"
        )
        response = _verdict(server, namespace)
        assert response["status"]["message"].startswith(
            f'[require-default-deny] Pod "web" in namespace "{namespace}" cannot run there: '
            f'namespace "{namespace}" has no default-deny'
        )
        assert proxy.accepted > watches_before  # it reconnected through the proxy
        assert "Traceback" not in server.log()
        assert "watch of" in server.log()  # the failure was logged, with its retry
    finally:
        server.stop()


# -- the API server restarted under open watches -------------------------------------------------
# allowNamespaceModeLabel: a namespace labelled guardrail.dev/mode=warn is judged in warn mode,
# which only the namespace watch can tell guardrail (no live read confirms an allowed answer).
LIVE_CONFIG = f"allowNamespaceModeLabel: true\nexemptions:\n  usernames: [{EXEMPT_USER}]\n"
MODE_LABEL = "guardrail.dev/mode"
LABELS = "app=web,role=frontend"


@contextlib.contextmanager
def _registered(cluster: Cluster, server: Server) -> Iterator[None]:
    """deploy/'s webhooks calling this server (its own registration) until the block ends."""
    ca_bundle = base64.b64encode(Path(server.ca).read_bytes()).decode()
    doc = registration(server.url, ca_bundle)
    name = f"guardrail-faults-{uuid.uuid4().hex[:6]}"
    doc["metadata"] = {"name": name}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    try:
        eventually(
            lambda: (
                'admission webhook "workloads.guardrail.dev" denied'
                in _run_pod(cluster, "default", labels=None).stderr
            ),
            what="the API server calling guardrail",
        )
        yield
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


def _run_pod(
    cluster: Cluster, namespace: str, labels: str | None = LABELS
) -> subprocess.CompletedProcess[str]:
    """`kubectl run --dry-run=server`: the API server admits a Pod, calling its webhooks."""
    args = ["run", "web", "-n", namespace, "--image=registry.invalid/web:1", "--dry-run=server"]
    if labels is not None:
        args.append(f"--labels={labels}")
    return cluster.kubectl(*args, check=False)


def _admitted(run: subprocess.CompletedProcess[str]) -> bool:
    return run.returncode == 0 and "pod/web created (server dry run)" in run.stdout


def _denied_by(run: subprocess.CompletedProcess[str], policy: str) -> bool:
    return run.returncode != 0 and f"denied the request: [{policy}]" in run.stderr


def _metric(server: Server, name: str, **labels: str) -> float:
    """A sample of /metrics (summed over the samples whose labels include `labels`), or -1."""
    total = None
    for line in server.get("/metrics").text.splitlines():
        found = re.match(r"^([^{ ]+)(?:\{([^}]*)\})? (\S+)$", line)
        if found is None or found.group(1) != name:
            continue
        present = dict(re.findall(r'([\w.]+)="([^"]*)"', found.group(2) or ""))
        if all(present.get(k) == v for k, v in labels.items()):
            total = (total or 0.0) + float(found.group(3))
    return -1.0 if total is None else total


def _deletion_verdict(server: Server, namespace: str, name: str) -> dict[str, Any]:
    policy = yaml.safe_load(DEFAULT_DENY)
    policy["metadata"] = {"name": name, "namespace": namespace}
    return server.review(review(None, operation="DELETE", old=policy))


def _apply_namespace(cluster: Cluster, name: str, labels: dict[str, str]) -> None:
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    manifest["metadata"]["labels"] = labels
    cluster.kubectl("apply", "-f", "-", *AS_ADMIN, input=json.dumps(manifest))


def test_apiserver_restarted_under_open_watches(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """guardrail (2 workers) is the API server's webhook; the API server is killed while every
    watch is open. Down, guardrail answers from its synced cache and stays ready. Restarted,
    changes made afterwards reach every worker through the resumed watches, each through an
    answer only the watch can change (live reads only ever confirm a denial): a deleted
    default-deny denies pods, an added one makes its twin deletable, a new namespace's mode
    label relaxes it."""
    bare = f"faults-bare-{uuid.uuid4().hex[:6]}"
    twins = f"faults-twins-{uuid.uuid4().hex[:6]}"
    relaxed = f"faults-warn-{uuid.uuid4().hex[:6]}"
    cluster.create_namespace(bare)
    cluster.create_namespace(twins)
    cluster.kubectl("apply", "-n", twins, "-f", "-", *AS_ADMIN, input=DEFAULT_DENY)
    server = _serve(tmp_path / "serve", kubeconfig=cluster.kubeconfig, config=LIVE_CONFIG)
    try:
        with _registered(cluster, server):
            before = _workers(server)
            assert _admitted(_run_pod(cluster, namespace))
            assert _denied_by(_run_pod(cluster, bare), "require-default-deny")
            assert _denied_by(
                cluster.kubectl(
                    "delete",
                    "networkpolicy",
                    "default-deny",
                    "-n",
                    twins,
                    "--dry-run=server",
                    check=False,
                ),
                "protect-default-deny",
            )
            restarts = _metric(server, "guardrail_watch_restarts_total")

            cluster.stop_apiserver()
            try:
                # Down: the synced cache answers, and guardrail stays ready (SPEC 3.3).
                assert _allowed(server, namespace)
                assert _denied_for_default_deny(server, bare)
                unlabelled = server.review(review(pod(namespace=namespace, labels={"app": "x"})))
                assert unlabelled["status"]["message"].startswith("[require-role-labels]")
                assert server.get("/readyz").status_code == 200
                eventually(
                    lambda: (
                        _metric(server, "guardrail_cache_age_seconds") >= 3
                        and _metric(server, "guardrail_watch_restarts_total") >= restarts + 4
                    ),
                    what="the watches failing and retrying while the API server is down",
                )
            finally:
                cluster.start_apiserver()
            restarted = time.monotonic()

            cluster.kubectl("delete", "networkpolicy", "default-deny", "-n", namespace, *AS_ADMIN)
            second = DEFAULT_DENY.replace("name: default-deny", "name: default-deny-2")
            cluster.kubectl("apply", "-n", twins, "-f", "-", *AS_ADMIN, input=second)
            _apply_namespace(cluster, relaxed, {MODE_LABEL: "warn"})

            def seen_by_every_worker() -> bool:
                # Eight reviews each: a review lands on whichever worker the kernel picks, and
                # each worker's watch resumes on its own backoff.
                return (
                    all(_denied_for_default_deny(server, namespace) for _ in range(8))
                    and all(
                        _deletion_verdict(server, twins, "default-deny")["allowed"]
                        for _ in range(8)
                    )
                    and all(
                        server.review(review(pod(namespace=relaxed, labels={"app": "x"})))[
                            "allowed"
                        ]
                        for _ in range(8)
                    )
                )

            try:
                eventually(seen_by_every_worker, what="every change on every worker", timeout=90)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; server log:\n{server.log()[-4000:]}") from exc
            print(
                f"\nAPI server restart: changes seen by every worker "
                f"{time.monotonic() - restarted:.1f} s after /readyz of the API server"
            )

            # The same, as users see them through the API server.
            assert _denied_by(_run_pod(cluster, namespace), "require-default-deny")
            dry_delete = cluster.kubectl(
                "delete", "networkpolicy", "default-deny", "-n", twins, "--dry-run=server"
            )
            assert "deleted (server dry run)" in dry_delete.stdout
            eventually(
                lambda: (
                    cluster.kubectl(
                        "get", "serviceaccount", "default", "-n", relaxed, check=False
                    ).returncode
                    == 0
                ),
                what=f"serviceaccount default in {relaxed}",
            )
            warned = _run_pod(cluster, relaxed, labels="app=web")
            assert _admitted(warned), warned.stderr
            assert "Warning: [require-role-labels]" in warned.stderr

            assert server.get("/readyz").status_code == 200
            eventually(
                lambda: _metric(server, "guardrail_cache_age_seconds") == 0,
                what="every worker's watches streaming again",
            )
            assert sorted(_workers(server)) == sorted(before)  # no worker died or was replaced
            log = server.log()
            assert "Traceback" not in log
            assert "watch of namespaces failed" in log
    finally:
        server.stop()
        for name in (bare, twins, relaxed):
            cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


# -- load ----------------------------------------------------------------------------------------
@dataclass
class Load:
    """Client threads sending reviews over keep-alive sessions; every outcome recorded."""

    server: Server
    clients: int = 6
    stopping: threading.Event = field(default_factory=threading.Event)
    outcomes: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _record(self, outcome: str, detail: str = "") -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            if outcome in ("wrong", "lost", "truncated"):
                (self.wrong if outcome == "wrong" else self.lost).append(detail)

    def _client(self) -> None:
        session = requests.Session()
        while not self.stopping.is_set():
            doc = review(pod(labels={"app": "web"}))
            try:
                reply = session.post(
                    self.server.url + "/validate",
                    data=as_json(doc),
                    verify=self.server.ca,
                    timeout=30,
                    headers={"Content-Type": "application/json"},
                )
            except requests.exceptions.ChunkedEncodingError as exc:
                # Headers came, the body did not: the worker died while answering.
                self._record("truncated", repr(exc))
                session.close()
                session = requests.Session()
                continue
            except requests.ConnectionError as exc:
                # Refused: nothing was sent (the API server would try another endpoint).
                # Anything else: the request may have been sent, and got no answer.
                refused = "Connection refused" in str(exc)
                self._record("refused" if refused else "lost", "" if refused else repr(exc))
                session.close()
                session = requests.Session()
                if refused:
                    time.sleep(0.05)
                continue
            body = reply.json() if reply.headers.get("Content-Type") == "application/json" else {}
            response = body.get("response", {})
            if (
                reply.status_code == 200
                and response.get("uid") == doc["request"]["uid"]
                and response.get("allowed") is False
                and "[require-role-labels]" in response.get("status", {}).get("message", "")
            ):
                self._record("ok")
            else:
                self._record("wrong", f"{reply.status_code}: {reply.text[:200]}")
        session.close()

    def ok(self) -> int:
        with self.lock:
            return self.outcomes["ok"]

    def stop(self) -> Counter[str]:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return self.outcomes


def _workers(server: Server) -> list[int]:
    pid = server.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture
def live_server(cluster: Cluster, tmp_path: Path) -> Iterator[Server]:
    """guardrail serve reading the real API server directly: 2 workers of 4 threads."""
    server = _serve(tmp_path / "serve", kubeconfig=cluster.kubeconfig)
    yield server
    server.stop()


# -- the config file replaced while serving ---------------------------------------------------------
def _replace_config(server: Server, text: str) -> None:
    path = server.log_path.parent / "config.yaml"
    temporary = path.with_name("config.yaml.new")
    temporary.write_text(text)
    temporary.replace(path)


def _reload_errors(server: Server) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "config_reload_failed"]


def test_invalid_config_reload_keeps_the_config_in_use(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """guardrail is the API server's webhook: its config file turns require-role-labels to
    warn, and kubectl's next unlabelled Pod is created with a warning instead of denied; an
    invalid file then changes nothing (kubectl still sees warnings; each worker logs the exact
    error once), and a fixed file denies again. No restart."""
    rule = "policies:\n  require-role-labels: {mode: %s}\n"
    server = _serve(
        tmp_path / "serve", kubeconfig=cluster.kubeconfig, config=LIVE_CONFIG + rule % "enforce"
    )
    try:
        with _registered(cluster, server):
            before = _workers(server)
            assert _denied_by(_run_pod(cluster, namespace, "app=web"), "require-role-labels")

            def warned() -> bool:
                run = _run_pod(cluster, namespace, "app=web")
                return _admitted(run) and "Warning: [require-role-labels]" in run.stderr

            _replace_config(server, LIVE_CONFIG + rule % "warn")
            eventually(lambda: warned() and _allowed_with_warning(server, namespace), what="warn")

            _replace_config(server, LIVE_CONFIG + rule % "loud")
            eventually(lambda: len(_reload_errors(server)) == 2, what="both workers' errors")
            assert all(warned() for _ in range(4))
            assert _allowed_with_warning(server, namespace)
            path = server.log_path.parent / "config.yaml"
            assert {line["error"] for line in _reload_errors(server)} == {
                f"{path}: policies.require-role-labels.mode: must be one of enforce, warn, "
                "audit, off"
            }
            assert _metric(server, "guardrail_config_reload_errors_total") == 2
            assert _metric(server, "guardrail_config_last_reload_successful") == 0

            _replace_config(server, LIVE_CONFIG + rule % "enforce")
            eventually(
                lambda: (
                    _denied_by(_run_pod(cluster, namespace, "app=web"), "require-role-labels")
                    and _metric(server, "guardrail_config_last_reload_successful") == 1
                ),
                what="the fixed config",
            )
            assert sorted(_workers(server)) == sorted(before)
            assert "Traceback" not in server.log()
    finally:
        server.stop()


def _allowed_with_warning(server: Server, namespace: str, times: int = 8) -> bool:
    """Unlabelled pods, on new connections (both workers), allowed with the rule's warning."""
    for _ in range(times):
        response = server.review(review(pod(namespace=namespace, labels={"app": "web"})))
        if not response["allowed"] or not response.get("warnings", [""])[0].startswith(
            "[require-role-labels]"
        ):
            return False
    return True


# -- 1,000 namespaces created while serving ---------------------------------------------------------
BULK = 1000
CREATORS = 4  # kubectl processes creating them, in parallel (one alone takes 4 times as long)


def _bulk_lists(prefix: str) -> list[dict[str, Any]]:
    """BULK namespaces in CREATORS Lists: all but the last two labelled guardrail.dev/mode=warn;
    the last one isolated by a default-deny (created after it, in the same List), the one
    before it bare."""
    items: list[dict[str, Any]] = []
    for i in range(BULK):
        labels = {"faults-bulk": prefix}
        if i < BULK - 2:
            labels[MODE_LABEL] = "warn"
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": f"{prefix}-{i}", "labels": labels},
            }
        )
    policy = yaml.safe_load(DEFAULT_DENY)
    policy["metadata"] = {"name": "default-deny", "namespace": f"{prefix}-{BULK - 1}"}
    items.append(policy)
    size = -(-len(items) // CREATORS)
    return [
        {"apiVersion": "v1", "kind": "List", "items": items[at : at + size]}
        for at in range(0, len(items), size)
    ]


def _review_all(server: Server, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST each review on a new connection (either worker), four at a time, in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(server.review, docs))


@dataclass
class NewNamespaceProbe:
    """Reviews unlabelled Pods in the namespaces being created, round and round: each answer
    is right either way, warn (the namespace and its mode label are in the cache) or enforce
    (not yet); anything else (an error, no answer) is wrong."""

    server: Server
    prefix: str
    stopping: threading.Event = field(default_factory=threading.Event)
    answers: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            namespace = f"{self.prefix}-{i % (BULK - 2)}"
            i += 37  # coprime with BULK - 2: every namespace in turn, scattered
            try:
                response = self.server.review(review(pod(namespace=namespace, labels={"app": "x"})))
            except (AssertionError, requests.RequestException, ValueError) as exc:
                self.wrong.append(repr(exc))
                continue
            if response["allowed"] and response["warnings"][0].startswith("[require-role-labels]"):
                self.answers["warn"] += 1
            elif (
                not response["allowed"] and "[require-role-labels]" in response["status"]["message"]
            ):
                self.answers["enforce"] += 1
            else:
                self.wrong.append(str(response)[:300])

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=60)


def test_thousand_namespaces_created_while_serving(cluster: Cluster, tmp_path: Path) -> None:
    """Reviews flow while 1,000 namespaces (and a default-deny in the last) are created by
    parallel `kubectl create`s: every review is answered, rightly, including reviews in the
    namespaces being created; no worker dies; afterwards every new namespace is judged by its
    own state: the mode label relaxes it to warn (which only the namespace watch can tell
    guardrail), the isolated one admits a labelled pod and the bare one denies it.

    The namespaces are left in place: deleting 1,000 namespaces keeps the namespace controller
    and the API server busy for minutes (about 150 s and 170 CPU-seconds measured on this
    2-core machine), and the session's cluster is thrown away at its end anyway.
    """
    prefix = f"bulk-{uuid.uuid4().hex[:5]}"
    server = _serve(tmp_path / "serve", kubeconfig=cluster.kubeconfig, config=LIVE_CONFIG)
    load = Load(server, clients=3)
    probe = NewNamespaceProbe(server, prefix)
    try:
        before = _workers(server)
        lists = _bulk_lists(prefix)
        load.start()
        eventually(lambda: load.ok() >= 50, what="load flowing", timeout=60)
        answered_before = load.ok()
        probe.start()
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=CREATORS) as pool:
            done = list(
                pool.map(
                    lambda doc: cluster.kubectl(
                        "create", "-f", "-", *AS_ADMIN, input=json.dumps(doc), timeout=180
                    ),
                    lists,
                )
            )
        created = time.monotonic() - started
        assert sum(run.stdout.count(" created") for run in done) == BULK + 1
        answered_during = load.ok() - answered_before
        # The last namespace each kubectl created, judged in warn mode on every worker.
        last = [
            next(
                item["metadata"]["name"]
                for item in reversed(doc["items"])
                if MODE_LABEL in item["metadata"].get("labels", {})
            )
            for doc in lists
        ]
        eventually(
            lambda: all(_allowed_with_warning(server, name) for name in last),
            what=f"the last namespaces created ({', '.join(last)}) in the cache",
            timeout=60,
        )
        cached = time.monotonic() - started
        probe.stop()
        outcomes = load.stop()

        # Every new namespace, judged by whichever worker takes the connection.
        relaxed = _review_all(
            server,
            [review(pod(namespace=f"{prefix}-{i}", labels={"app": "x"})) for i in range(BULK - 2)],
        )
        strict = [i for i, response in enumerate(relaxed) if not response["allowed"]]
        assert strict == [], f"judged in enforce mode, not warn: {prefix}-{strict[:10]}"
        assert all(r["warnings"][0].startswith("[require-role-labels]") for r in relaxed)
        assert _allowed(server, f"{prefix}-{BULK - 1}")
        assert _denied_for_default_deny(server, f"{prefix}-{BULK - 2}")
        judged = time.monotonic() - started
        after = _workers(server)
    finally:
        probe.stop()
        load.stop()
        server.stop()
    assert load.wrong == []
    assert load.lost == []
    assert set(outcomes) == {"ok"}, dict(outcomes)
    assert answered_during >= 20, "reviews stalled while the namespaces were created"
    assert probe.wrong == []
    assert probe.answers["warn"] > 0  # namespaces were seen while others were being created
    assert sorted(after) == sorted(before)  # no worker died
    log = server.log()
    assert log.count("Booting worker with pid") == 2
    assert "Traceback" not in log
    print(
        f"\n{BULK} namespaces: created in {created:.1f} s, {answered_during} reviews answered "
        f"meanwhile ({dict(outcomes)}; in the new namespaces {dict(probe.answers)}), all in the "
        f"cache {cached:.1f} s after the start, every one judged {judged:.1f} s after it"
    )


def test_worker_killed_under_load_loses_only_its_in_flight_requests(
    live_server: Server,
) -> None:
    """Six keep-alive clients send reviews; one worker is SIGKILLed: gunicorn starts a
    replacement, no answer is ever wrong, the requests lost are at most those in flight on
    the killed worker (one per client connection to it), and the load then flows again."""
    server = live_server
    load = Load(server)
    load.start()
    try:
        eventually(lambda: load.ok() >= 200, what="load flowing", timeout=60)
        victim = _workers(server)[0]
        os.kill(victim, signal.SIGKILL)
        eventually(
            lambda: len(_workers(server)) == 2 and victim not in _workers(server),
            what="gunicorn replacing the killed worker",
            timeout=60,
        )
        settled = load.ok()
        eventually(
            lambda: load.ok() >= settled + 200, what="load flowing after the kill", timeout=60
        )
    finally:
        outcomes = load.stop()
    assert load.wrong == []
    # Each client has one request at a time: at most one per client connection to the
    # victim can be in flight (or half answered) when it dies.
    assert outcomes["lost"] + outcomes["truncated"] <= load.clients, load.lost
    assert outcomes["ok"] >= 400
    log = server.log()
    assert f"Worker (pid:{victim}) was sent SIGKILL" in log
    print(f"\nworker SIGKILL under load: {dict(outcomes)}")


class HalfSent:
    """A review whose headers and first half of the body are on the wire (in flight)."""

    def __init__(self, server: Server) -> None:
        self.doc = review(pod(labels={"app": "web"}))
        self.body = as_json(self.doc)
        context = ssl.create_default_context(cafile=server.ca)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        self.tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        head = (
            f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        self.tls.sendall(head.encode() + self.body[: len(self.body) // 2])

    def finish(self) -> dict[str, Any]:
        """Send the rest and return the response (the whole AdmissionReview's `response`)."""
        with self.tls:
            self.tls.sendall(self.body[len(self.body) // 2 :])
            reply = http.client.HTTPResponse(self.tls)
            reply.begin()
            answer = json.loads(reply.read())
        assert reply.status == 200
        assert answer["response"]["uid"] == self.doc["request"]["uid"]
        response: dict[str, Any] = answer["response"]
        return response


# urllib3 leaves the socket of a connection reset during its TLS handshake to the garbage
# collector; the resets themselves are what this test counts.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_sigterm_under_load_finishes_requests_in_flight(live_server: Server) -> None:
    """Six keep-alive clients send reviews and four more reviews are half sent; SIGTERM to the
    master: the half-sent reviews are completed and judged, no answer is wrong, and the
    server exits 0. Connections opened after the workers stopped accepting are refused or
    reset, never half answered (README "Reliability": why a preStop delay matters)."""
    server = live_server
    load = Load(server)
    load.start()
    try:
        eventually(lambda: load.ok() >= 200, what="load flowing", timeout=60)
        in_flight = [HalfSent(server) for _ in range(4)]
        time.sleep(0.5)  # let every worker thread start reading its half-sent body
        server.process.send_signal(signal.SIGTERM)
        eventually(lambda: "Handling signal: term" in server.log(), what="SIGTERM handled")
        verdicts = [request.finish() for request in in_flight]
        assert server.process.wait(timeout=60) == 0
    finally:
        outcomes = load.stop()
    assert [v["allowed"] for v in verdicts] == [False] * 4
    assert all("[require-role-labels]" in v["status"]["message"] for v in verdicts)
    assert load.wrong == []
    assert outcomes["truncated"] == 0, load.lost  # no answer is cut short by the drain
    assert all("Connection reset by peer" in lost or "EOF" in lost for lost in load.lost), load.lost
    print(f"\nSIGTERM under load: {dict(outcomes)}")
    assert "Shutting down: Master" in server.log()
