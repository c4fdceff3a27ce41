"""`guardrail serve`: the Flask app under gunicorn, over TLS, with gthread workers.

- TLS comes from `CERT_DIR/tls.crt` and `tls.key`, generated (with a CA) when missing.
- Certificates replaced on disk are served to new connections without a restart: gunicorn asks
  its `ssl_context` hook for a context on every accepted connection, and `ReloadingTLS` answers
  with a cached context that it rebuilds when the files' identity changes (checked at most once
  a second). A half-replaced pair (new certificate, old key) fails to load and the previous
  context stays in use until the pair is whole again, so no handshake ever fails for it.
- Workers are `webhook.worker.DeadlineWorker`, gthread whose event loop does the TLS handshake
  and buffers each whole request before a thread sees it: a client that trickles its headers
  or body, or connects and sends nothing, holds no thread, so the API server's reviews are
  answered while such clients are connected (SPEC 3.4).
- Deadlines: the TLS handshake within 5 s of the accept, then the request line, headers and
  body within 5 s (of the handshake, or of the request's first byte on a kept-alive
  connection); past either the connection is closed. The API server sends a review at once.
  A response not read within 10 s (the client stopped reading) closes its connection too.
- Caps and shedding: at most 1000 connections per worker (fewer if RLIMIT_NOFILE allows
  fewer); one accepted past the cap is closed at once, the newest shed, instead of accepts
  stopping. Buffered requests share 64 MiB per worker. A thread never reads from a client:
  a body over the app's 4 MiB limit is drained by the loop, then the app answers 413 as before.
- Dropped connections are counted in `guardrail_connections_dropped_total{reason}` and logged
  in a summary line at most once a second per worker.
- Keep-alive: the API server reuses its connections to the webhook between calls, so admission
  calls do not pay a TLS handshake each. Idle connections are kept longer (120 s) than Go's
  HTTP client keeps them (90 s): the client closes first, and never sends a request on a
  connection the server is closing at that moment. After each response a connection goes back
  to the event loop for its next request.
- SIGTERM: the worker stops accepting, finishes every connection it holds (including a request
  whose body is still arriving, within its deadline) within `graceful_timeout`, then exits.
- Metrics from several workers are added up through prometheus_client's multiprocess mode,
  in a private temporary directory removed when the server exits.
- State: read once, in the master, before the workers are forked (`--state` files, or the
  API server's lists with `preload`), then frozen out of the garbage collector's reach
  (`gc.freeze`): the workers share its memory pages copy-on-write instead of each holding a
  copy, so a pod's memory hardly grows with its worker count. Each worker keeps the live state
  current with its own watches, resumed from the master's lists (`webhook.state.live`).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webhook.certs import TLS_CERT, TLS_KEY, write_certificates
from webhook.config import OWN_NAMESPACE, Config
from webhook.config_reload import ConfigFile
from webhook.policy.errors import GuardrailError

if TYPE_CHECKING:
    # Names for annotations only: the app must not be imported before the metrics directory
    # is set (see serve), nor the Kubernetes client in a process serving state from files.
    from prometheus_client import Gauge

    from webhook.app import Metrics
    from webhook.kube import Client, KubeClient
    from webhook.selfcerts import Lifetimes
    from webhook.state.live import LiveState

log = logging.getLogger("guardrail.server")

DEFAULT_SERVICE = "guardrail"
GENERATED_HOSTS = ("localhost", "127.0.0.1")
KEEPALIVE_SECONDS = 120
GRACEFUL_TIMEOUT_SECONDS = 30
CERT_CHECK_INTERVAL = 1.0
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SELF_MANAGED = "self-managed"
CERTIFICATE_MODES = ("files", SELF_MANAGED)

# -- TLS ----------------------------------------------------------------------------------------
FileIdentity = tuple[tuple[int, int, int, int], ...]


class ReloadingTLS:
    """An SSLContext for the certificate pair on disk, rebuilt when the files change.

    Thread-safe: gthread workers wrap sockets from many threads. Each worker process has its
    own copy after fork and watches the files itself.
    """

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        check_interval: float = CERT_CHECK_INTERVAL,
        client_ca: Path | None = None,
    ) -> None:
        self.cert = cert
        self.key = key
        # With a client CA, a client certificate is verified against it when presented (and
        # required for /validate by require_client_certificate); reloaded with the pair.
        self.client_ca = client_ca
        self.check_interval = check_interval
        # Called with the served certificate (PEM) each time a changed pair is loaded.
        self.loaded: Callable[[bytes], None] = lambda _pem: None
        self._lock = threading.Lock()
        identity = self._identity()
        try:
            self._context = self._load()
        except (OSError, ssl.SSLError) as exc:
            if client_ca is not None and not _loads_as_ca(client_ca):
                raise GuardrailError(f"cannot load the client CA: {exc}", str(client_ca)) from exc
            raise GuardrailError(
                f"cannot load the serving certificate {cert} with key {key}: {exc}",
                str(cert.parent),
            ) from exc
        self._identity_loaded = identity
        self._identity_failed: FileIdentity | None = None
        self._checked = time.monotonic()

    def context(self) -> ssl.SSLContext:
        """The context for a new connection (cheap: one clock read, a stat once a second)."""
        now = time.monotonic()
        if now - self._checked >= self.check_interval:
            with self._lock:
                if now - self._checked >= self.check_interval:
                    self._reload_if_changed()
                    self._checked = time.monotonic()
        return self._context

    def served_certificate(self) -> bytes:
        """The certificate (PEM) new connections get, after the once-a-second reload check."""
        self.context()
        return self.served

    def gunicorn_hook(
        self, _conf: object, _default_factory: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        """gunicorn's `ssl_context(conf, default_ssl_context_factory)` setting."""
        return self.context()

    def _identity(self) -> FileIdentity | None:
        paths = (
            (self.cert, self.key)
            if self.client_ca is None
            else (self.cert, self.key, self.client_ca)
        )
        try:
            stats = tuple(path.stat() for path in paths)
        except OSError:
            return None
        return tuple((s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
        # TLS 1.2: forward-secret AEAD suites only (what Go's client, the API server, offers
        # first). TLS 1.3 suites are all AEAD and unaffected by this list.
        context.set_ciphers(TLS12_CIPHERS)
        context.set_alpn_protocols(["http/1.1"])
        served = self.cert.read_bytes()
        context.load_cert_chain(certfile=str(self.cert), keyfile=str(self.key))
        # What new connections get (self-managed certificates: ready once it is the Secret's).
        self.served = served
        if self.client_ca is not None:
            # OPTIONAL, not REQUIRED: the kubelet's probes of /healthz and /readyz carry no
            # client certificate. A certificate that is presented must verify, or the handshake
            # fails; /validate without one is refused by require_client_certificate.
            context.verify_mode = ssl.CERT_OPTIONAL
            context.load_verify_locations(cafile=str(self.client_ca))
        return context

    def _reload_if_changed(self) -> None:
        identity = self._identity()
        # Missing files (mid-replacement) or unchanged ones: keep serving what we have.
        if identity is None or identity == self._identity_loaded:
            return
        try:
            context = self._load()
        except (OSError, ssl.SSLError) as exc:
            if identity != self._identity_failed:
                log.warning(
                    "new certificate files do not load yet, keeping the current ones",
                    extra={"fields": {"cert": str(self.cert), "error": str(exc)}},
                )
                self._identity_failed = identity
            return
        self._context = context
        self._identity_loaded = identity
        self._identity_failed = None
        self.loaded(self.served)
        log.info(
            "serving the certificate replaced on disk",
            extra={"fields": {"cert": str(self.cert), "pid": os.getpid()}},
        )


def certificate_not_after(pem: bytes) -> float:
    """Unix time the first certificate of `pem` expires."""
    from cryptography import x509  # noqa: PLC0415 - the metric's setter only

    return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()


def _export_expiry(gauge: Gauge) -> Callable[[bytes], None]:
    """Set `gauge` to each loaded certificate's notAfter; never fails a connection."""

    def loaded(pem: bytes) -> None:
        try:
            gauge.set(certificate_not_after(pem))
        except ValueError as exc:  # the ssl module loaded it: not expected
            log.warning("cannot read the served certificate's expiry: %s", exc)

    return loaded


def _loads_as_ca(path: Path) -> bool:
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError):
        return False
    return True


CLIENT_CERT_REQUIRED = (
    b'{"error": "a client certificate signed by the configured --client-ca is required"}'
)
VERIFIED_PATHS = frozenset({"/validate"})


def require_client_certificate(app: Any) -> Any:
    """WSGI middleware: /validate only for connections that presented a verified client
    certificate (the TLS context checked it against --client-ca); 403 otherwise."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") in VERIFIED_PATHS:
            sock = environ.get("gunicorn.socket")
            peer = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
            if not peer:
                start_response(
                    "403 Forbidden",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(CLIENT_CERT_REQUIRED))),
                        ("Connection", "close"),
                    ],
                )
                return [CLIENT_CERT_REQUIRED]
        return app(environ, start_response)

    return wrapped


def ensure_certificates(cert_dir: Path) -> bool:
    """Generate a CA and serving certificate in cert_dir unless tls.crt and tls.key exist.

    Returns whether it generated them.
    """
    if (cert_dir / TLS_CERT).is_file() and (cert_dir / TLS_KEY).is_file():
        return False
    bundle = write_certificates(
        cert_dir, service=DEFAULT_SERVICE, namespace=OWN_NAMESPACE, hosts=GENERATED_HOSTS, days=365
    )
    log.info(
        "generated a CA and a serving certificate",
        extra={
            "fields": {
                "dir": str(cert_dir),
                "dns_names": list(bundle.dns_names),
                "ip_addresses": list(bundle.ip_addresses),
            }
        },
    )
    return True


# -- gunicorn -----------------------------------------------------------------------------------
def _check_bind(bind: str) -> None:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GuardrailError(f"{bind!r} is not HOST:PORT (e.g. 0.0.0.0:8443, [::]:8443)", "--bind")


def _gunicorn_logger_class(formatter: type[logging.Formatter]) -> Any:
    """gunicorn's logger in guardrail's own format (JSON or text lines), and no access log.

    The access log would cost a formatted line per admission call on the hot path; requests
    are counted and timed by the metrics, and every violation has its own log line.
    """
    from gunicorn.glogging import Logger  # noqa: PLC0415 - gunicorn only matters to `serve`

    class JsonLogger(Logger):  # type: ignore[misc]  # gunicorn is untyped
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(formatter())

    return JsonLogger


def gunicorn_options(
    *, bind: str, workers: int, threads: int, cert_dir: Path, tls: ReloadingTLS
) -> dict[str, Any]:
    """gunicorn's settings for `serve` (also the benchmark's bare endpoint: the same stack)."""
    from webhook.logs import formatter_class  # noqa: PLC0415 - as configure_logging chose
    from webhook.worker import (  # noqa: PLC0415 - gunicorn: serve only
        MAX_CONNECTIONS_PER_WORKER,
        DeadlineWorker,
        share_accept_table,
    )

    return {
        "bind": [bind],
        "workers": workers,
        "worker_class": DeadlineWorker,
        # Connections spread over the workers, fewest open first (webhook.worker).
        "pre_fork": share_accept_table,
        "threads": threads,
        "worker_connections": MAX_CONNECTIONS_PER_WORKER,
        "keepalive": KEEPALIVE_SECONDS,
        "timeout": 30,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        # An AdmissionReview URL is short (/validate?timeout=5s) and its headers few: anything
        # far larger is not the API server.
        "limit_request_line": 4094,
        "limit_request_fields": 50,
        "limit_request_field_size": 8190,
        "certfile": str(cert_dir / TLS_CERT),
        "keyfile": str(cert_dir / TLS_KEY),
        "ssl_context": tls.gunicorn_hook,
        "proc_name": "guardrail",
        "logger_class": _gunicorn_logger_class(formatter_class()),
        "accesslog": None,
        # A control socket in $HOME would collide between instances and fail on a read-only
        # root filesystem; nothing here uses gunicornc.
        "control_socket_disable": True,
    }


def _gunicorn_application(options: dict[str, Any], factory: Callable[[], Any]) -> Any:
    # gunicorn is untyped (see pyproject's mypy overrides) and only needed by `serve`.
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - only `serve` needs gunicorn

    class GuardrailApplication(BaseApplication):  # type: ignore[misc]  # untyped base
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return factory()

    return GuardrailApplication()


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What `guardrail serve` runs with, from its flags.

    With `state_path` the state is read once from manifests; without it, each worker keeps
    its own list+watch cache of the API server (in-cluster config, else `kubeconfig`, else
    $KUBECONFIG or ~/.kube/config). With `client_ca`, /validate answers only clients
    presenting a certificate it signed (the API server's, configured through its
    --admission-control-config-file kubeconfig).
    """

    config: Config
    cert_dir: Path
    bind: str = "0.0.0.0:8443"
    workers: int = 2
    threads: int = 8
    config_path: str | None = None
    state_path: str | os.PathLike[str] | None = None
    kubeconfig: str | None = None
    client_ca: Path | None = None
    # "files" (the pair in cert_dir) or "self-managed" (selfcerts.py: the Secret, renewed).
    certificates: str = "files"
    namespace: str = OWN_NAMESPACE
    service: str = DEFAULT_SERVICE
    lifetimes: Lifetimes | None = None
    cert_secret: str = "guardrail-tls"  # noqa: S105 - a Secret's name, not a password
    webhook_configuration: str = "guardrail"
    cert_hosts: tuple[str, ...] = ()
    log_format: str | None = None  # auto, json or text; None: $GUARDRAIL_LOG_FORMAT, else auto
    # Live state: list the cluster once in the master, shared by the workers it forks; False:
    # each worker lists it itself (a copy per worker).
    preload: bool = True


def serve(options: ServeOptions) -> None:
    """Run the webhook until SIGTERM/SIGINT; GuardrailError for bad flags, certs or state."""
    _check_bind(options.bind)
    # prometheus_client picks its storage when first imported, from this variable: it must be
    # set before webhook.app (which imports prometheus_client) is, and before workers fork.
    metrics_dir = Path(tempfile.mkdtemp(prefix="guardrail-metrics-"))
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    _use_multiprocess_values()
    master_pid = os.getpid()
    try:
        _run(options, metrics_dir)
    finally:
        # Workers are forked inside gunicorn and leave through here by SystemExit too: only
        # the master owns the directory.
        if os.getpid() == master_pid:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run(options: ServeOptions, metrics_dir: Path) -> None:
    config, kubeconfig, client_ca = options.config, options.kubeconfig, options.client_ca
    state_path, cert_dir = options.state_path, options.cert_dir
    # Imported here, after PROMETHEUS_MULTIPROC_DIR is set (see serve).
    from prometheus_client import multiprocess  # noqa: PLC0415 - after the env var

    from webhook.app import Metrics, configure_logging, create_app  # noqa: PLC0415 - after the env var
    from webhook.kube import KubeClient  # noqa: PLC0415 - after the env var
    from webhook.state.files import load_state  # noqa: PLC0415 - after the env var

    configure_logging(fmt=options.log_format)
    files_state = load_state(Path(state_path)) if state_path is not None else None
    # Fail now, in the foreground, on a client configuration that cannot work at all.
    master_client = KubeClient(kubeconfig) if files_state is None else None
    ensure_certificates(cert_dir)
    if client_ca is not None and not client_ca.is_file():
        raise GuardrailError("no such file", str(client_ca))
    tls = ReloadingTLS(cert_dir / TLS_CERT, cert_dir / TLS_KEY, client_ca=client_ca)
    # The config file is re-read by each worker when it changes (config_reload.py); the last
    # valid one is kept beside the metrics files for workers started later (SIGHUP, a crash).
    config_file = (
        ConfigFile.open(
            options.config_path,
            own_namespace=config.own_namespace,
            keep_dir=metrics_dir / "config",
        )
        if options.config_path is not None
        else None
    )
    # Last, once every flag has proved good: listing a large cluster takes a while.
    preloaded = (
        preload_state(master_client) if master_client is not None and options.preload else None
    )
    # What was read so far (the state above all) is shared with the workers: out of the
    # collector's reach, its pages are not written by collections in the workers.
    gc.collect()
    gc.freeze()

    def factory() -> Any:
        # Runs in each worker after fork: threads (the watches) do not survive a fork.
        metrics = Metrics(metrics_dir)
        tls.loaded = _export_expiry(metrics.certificate_expiry())
        tls.loaded(tls.served)  # this worker's, until its context next reloads
        not_ready = None
        if options.certificates == SELF_MANAGED:
            from webhook import selfcerts  # noqa: PLC0415 - in the worker, after the env var

            sync = selfcerts.run(
                KubeClient(kubeconfig),
                tls.served_certificate,
                options.namespace,
                cert_dir,
                service=options.service,
                secret=options.cert_secret,
                configuration=options.webhook_configuration,
                hosts=options.cert_hosts,
                lifetimes=options.lifetimes or selfcerts.Lifetimes(),
            )

            def not_ready() -> str | None:
                return None if sync.ready else selfcerts.NOT_READY

        if config_file is not None:
            config_file.start(metrics.config_hooks())
        current = config_file.current if config_file is not None else lambda: config
        if files_state is not None:
            # State read from files is complete once loaded: always ready.
            app = create_app(current, files_state, metrics=metrics, not_ready=not_ready)
        else:
            state = live_state(KubeClient(kubeconfig), metrics, preloaded=preloaded)
            app = create_app(current, state, state, metrics=metrics, not_ready=not_ready)
            # Every worker competes for the audit Lease; one process runs it (background.py).
            from webhook import background  # noqa: PLC0415 - in the worker, after the env var

            background.start(current(), kubeconfig, metrics, current=current)
        if client_ca is not None:
            # Flask's documented way to wrap the WSGI callable in middleware.
            app.wsgi_app = require_client_certificate(app.wsgi_app)  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app
        return app

    def child_exit(_server: object, worker: Any) -> None:
        # Unannotated in prometheus_client; drops the dead worker's live-gauge files.
        multiprocess.mark_process_dead(worker.pid, str(metrics_dir))  # type: ignore[no-untyped-call]  # untyped

    settings = gunicorn_options(
        bind=options.bind,
        workers=options.workers,
        threads=options.threads,
        cert_dir=cert_dir,
        tls=tls,
    )
    settings["child_exit"] = child_exit
    settings["pre_fork"] = _pre_fork(preloaded, then=settings["pre_fork"])
    log.info(
        "starting guardrail",
        extra={
            "fields": {
                "bind": options.bind,
                "workers": options.workers,
                "threads": options.threads,
                "cert_dir": str(cert_dir),
                "client_ca": str(client_ca) if client_ca is not None else None,
                "config": options.config_path or "<defaults>",
                "state": str(state_path) if state_path is not None else "<live cluster>",
            }
        },
    )
    _gunicorn_application(settings, factory).run()


def _pre_fork(
    preloaded: LiveState | None, *, then: Callable[[Any, Any], None]
) -> Callable[[Any, Any], None]:
    """gunicorn's pre_fork hook: in the master, before each fork; `then` is the hook it
    replaces (the accept table's), called last."""

    def pre_fork(server: Any, worker: Any) -> None:
        # A replacement worker (a crash, SIGHUP) starts from a snapshot brought up to date,
        # and shares what was read since.
        if preloaded is not None:
            preloaded.catch_up()
            # No connection of the master's may be inherited: a TLS stream used by two
            # processes is garbage to both.
            preloaded.close_client()
        gc.collect()  # what the master made since the last fork (frozen objects are skipped)
        gc.freeze()
        then(server, worker)

    return pre_fork


def preload_state(client: KubeClient) -> LiveState:
    """The live state listed now, in the master, for the workers to fork from (no thread is
    left running).

    A list that fails leaves that resource to each worker to list (as without preload).
    """
    from webhook.state.live import LiveState  # noqa: PLC0415 - after the env var

    started = time.monotonic()
    state = LiveState(client)
    state.preload()
    state.close_client()
    gc.collect()
    _return_free_memory()
    counts = state.counts()
    log.info(
        "cluster state listed, shared by the workers",
        extra={
            "fields": {
                "namespaces": counts["namespaces"],
                "policies": counts["policies"],
                "seconds": round(time.monotonic() - started, 2),
            }
        },
    )
    return state


def _return_free_memory() -> None:
    """Give the C allocator's free memory back to the system (glibc's malloc_trim).

    The lists' pages were parsed by several threads at once, and glibc keeps what each
    thread's arena freed: 30 to 45 MiB at 100,000 namespaces, which every worker would
    otherwise inherit. Elsewhere (no glibc), nothing happens.
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def live_state(
    client: Client, metrics: Metrics, *, preloaded: LiveState | None = None
) -> LiveState:
    """A started LiveState whose health is exported through the app's metrics.

    With `preloaded` (listed by the master, this process forked from it), that one, resuming
    its watches from the master's lists.
    """
    from webhook.state.live import CacheHooks, LiveState  # noqa: PLC0415 - after the env var

    last_contact = [0.0]

    def contact() -> None:
        now = time.time()
        if now - last_contact[0] >= 1.0:  # a gauge file write at most once a second
            last_contact[0] = now
            metrics.cache_contact.set(now)

    def health(synced: bool, age: float) -> None:
        # Every worker reports its own (once a second, and when it answers a scrape): the
        # multiprocess gauges then combine live values, the worst worker's.
        metrics.cache_age.set(age if age != float("inf") else -1)
        if age != float("inf"):
            # An open watch stream is contact even when the cluster is quiet.
            metrics.cache_contact.set(time.time() - age)
        metrics.cache_synced.set(1 if synced else 0)

    hooks = CacheHooks(
        restart=lambda resource: metrics.watch_restarts.labels(resource).inc(),
        objects=lambda resource, count: metrics.cache_objects.labels(resource).set(count),
        contact=contact,
        health=health,
    )
    if preloaded is not None:
        state = preloaded
        state.forked(client, hooks)
        for resource, count in state.object_counts().items():
            hooks.objects(resource, count)
    else:
        state = LiveState(client, hooks=hooks)

    def before_scrape() -> None:
        health(state.synced, state.age_seconds())

    metrics.before_scrape = before_scrape
    metrics.cache_synced.set(0)
    state.start()
    return state


def _use_multiprocess_values() -> None:
    """Make prometheus_client store values in files even if something imported it already."""
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        # The module attribute metrics read at construction; set through setattr because
        # the stubs declare it a class, not a settable variable.
        setattr(values, "ValueClass", values.get_value_class())  # noqa: B010 - see above
