"""The Flask application: `POST /validate`, `/healthz`, `/readyz`, `/metrics`.

One AdmissionReview flows one way: read and bound the body -> `admission.review.parse`
(HTTP 400 on a malformed review) -> `admission.judge` (exemptions, policies, confirmation,
modes) -> the response, one JSON log line per violation, the counters. A request the webhook
fails to judge is still answered with an AdmissionReview, following `onError`: a 5xx would
make the API server apply the webhook's failurePolicy without saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_content_length

from webhook.admission import judge, review
from webhook.admission.judge import Confirmer, Judge
from webhook.config import Config
from webhook.config_reload import ConfigHooks, Loaded
from webhook.logs import LOGGER_NAME, JsonFormatter, configure_logging
from webhook.policy.cluster import ClusterState
from webhook.policy.errors import ConfigError, GuardrailError
from webhook.policy.model import Request, Violation

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The logging names were defined here first and stay importable; webhook.logs is their home.
__all__ = ["LOGGER_NAME", "JsonFormatter", "Metrics", "configure_logging", "create_app"]

MAX_BODY_BYTES = 4 * 1024 * 1024
# An oversized body is read and discarded up to this much more, so that the client, which
# sends its whole body before reading, sees the 413 instead of a connection reset. Beyond it
# the connection is dropped: such a client is not the API server.
DRAIN_BYTES = 32 * 1024 * 1024
READ_CHUNK = 64 * 1024
TOO_LARGE = f"request body is larger than {MAX_BODY_BYTES} bytes (4 MiB)"
log = logging.getLogger(f"{LOGGER_NAME}.admission")
# What Flask's Response puts on the wire for the view's answers, written by the lean path.
STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 400, 413)}
JSON_CONTENT_TYPE = ("Content-Type", "application/json")
# The environ key carrying an exception from the lean path to the Flask view that re-raises it.
LEAN_FAILURE = "guardrail.lean_failure"

# Admission decisions take well under a millisecond to a few; the API server gives up at the
# webhook's timeoutSeconds (5 s by default in deploy/).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


# -- metrics ------------------------------------------------------------------------------------
class Metrics:
    """The webhook's Prometheus metrics, in one process or across gunicorn workers.

    With `multiprocess_dir`, values live in prometheus_client's per-process files there (the
    process must have been started with PROMETHEUS_MULTIPROC_DIR pointing at it, see server.py)
    and a scrape, answered by any worker, adds up every worker's files.
    """

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode nothing is registered: a scrape collects the files instead.
        self.registry = None if multiprocess_dir else CollectorRegistry()
        self.violations = Counter(
            "guardrail_violations",
            "Policy violations found in admission requests, by policy and mode.",
            ("policy", "mode", "kind", "namespace"),
            registry=self.registry,
        )
        self.errors = Counter(
            "guardrail_judgement_errors",
            "Admission requests guardrail failed to judge (answered following onError).",
            registry=self.registry,
        )
        self.duration = Histogram(
            "guardrail_request_duration_seconds",
            "Time to answer POST /validate, from the body read to the response built.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

        # The cache's health, per worker (each worker keeps its own watch; see README).
        # Multiprocess modes: the worst worker is what matters to an operator.
        self.cache_contact = Gauge(
            "guardrail_cache_last_contact_timestamp_seconds",
            "Unix time the API server last answered this cache (list or watch event).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.cache_age = Gauge(
            "guardrail_cache_age_seconds",
            "Seconds since the API server last answered the cache (set at scrape time).",
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.cache_synced = Gauge(
            "guardrail_cache_synced",
            "1 once every watched resource has been listed, else 0.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        self.cache_objects = Gauge(
            "guardrail_cache_objects",
            "Objects held in the cache, by resource.",
            ("resource",),
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.watch_restarts = Counter(
            "guardrail_watch_restarts",
            "Watches of the API server restarted after a failure, by resource.",
            ("resource",),
            registry=self.registry,
        )
        self.confirmations = Counter(
            "guardrail_confirmations",
            "Live reads confirming a missing default-deny before a denial, by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        # Called before each scrape, to refresh gauges computed from live values.
        self.before_scrape: Callable[[], None] = lambda: None

    def config_hooks(self) -> ConfigHooks:
        """The config file's metrics, and hooks that export a ConfigFile's reloads to them.

        Called once per process, by a server with a config file to reload: without one the
        metrics do not exist (an unlabelled gauge would otherwise read 0, "failed").
        """
        reload_errors = Counter(
            "guardrail_config_reload_errors",
            "Versions of the config file that failed to load (the config in use stayed), "
            "counted once per worker.",
            registry=self.registry,
        )
        successful = Gauge(
            "guardrail_config_last_reload_successful",
            "1 if the config in use is what the config file holds, 0 if the file's newest "
            "version failed to load (the worst worker).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        loaded_at = Gauge(
            "guardrail_config_last_reload_success_timestamp_seconds",
            "Unix time the config in use was loaded (the oldest worker's).",
            registry=self.registry,
            multiprocess_mode="livemin",
        )
        digest = Gauge(
            "guardrail_config_hash",
            "The config in use: the first 52 bits of its file's SHA-256, per worker (pid).",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

        def in_use(loaded: Loaded, current: bool) -> None:
            successful.set(1 if current else 0)
            loaded_at.set(loaded.loaded_at)
            digest.set(loaded.hash_value)

        def failed(_error: ConfigError) -> None:
            reload_errors.inc()

        return ConfigHooks(in_use=in_use, failed=failed)

    def certificate_expiry(self) -> Gauge:
        """The serving certificate's notAfter gauge; called once per process by a server.

        Without a server there is no certificate: the metric does not exist, rather than
        reading 0 (an alert on "expires within a week" would fire on it).
        """
        return Gauge(
            "guardrail_serving_certificate_expiry_timestamp_seconds",
            "Unix time the serving certificate new connections get expires (its notAfter); "
            "the earliest among workers.",
            registry=self.registry,
            multiprocess_mode="livemin",
        )

    def render(self) -> bytes:
        try:
            self.before_scrape()
        except Exception:  # a scrape must not fail because of one gauge
            log.exception("could not refresh cache gauges")
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            # prometheus_client's multiprocess module has no type annotations.
            MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]  # untyped
            return generate_latest(registry)
        assert self.registry is not None
        return generate_latest(self.registry)


# -- the application ----------------------------------------------------------------------------
class _Judges:
    """The Judge of the config in use, built anew when the config changes (a reload)."""

    def __init__(self, config: Callable[[], Config], build: Callable[[Config], Judge]) -> None:
        self._config = config
        self._build = build
        self._judge = build(config())

    def current(self) -> Judge:
        """The Judge for a request that starts now: one call and one comparison per request."""
        config = self._config()
        judge = self._judge
        if judge.config is not config:
            # Threads racing here build equal Judges; the last one stored wins, harmlessly.
            judge = self._judge = self._build(config)
        return judge


class _Answer:
    """POST /validate: the status and JSON body answering the review in a WSGI environ."""

    def __init__(self, judges: _Judges, metrics: Metrics) -> None:
        self.judges = judges
        self.metrics = metrics

    def __call__(self, environ: WSGIEnvironment) -> tuple[int, bytes]:
        started = time.perf_counter()
        body = _read_body(environ["wsgi.input"], get_content_length(environ))
        if body is None:
            return 413, _error_body(TOO_LARGE)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return 400, _error_body(_json_problem(body, exc))
        try:
            parsed = review.parse(doc)
        except review.ReviewError as exc:
            return 400, _error_body(str(exc))

        req = parsed.request
        judging = self.judges.current()
        try:
            decision = judging.decide(req)
        except GuardrailError as exc:
            # Something in the object under review (or the state) could not be read.
            log.warning(
                "could not judge request: %s",
                exc,
                extra={"fields": {**_request_fields(req), "error": str(exc)}},
            )
            self.metrics.errors.inc()
            decision = judge.failure(judging.config.on_error, str(exc))
        except Exception:
            log.exception(
                "internal error while judging a request", extra={"fields": _request_fields(req)}
            )
            self.metrics.errors.inc()
            decision = judge.failure(judging.config.on_error, "internal error, see guardrail's log")

        if decision.violations:
            try:
                _record(decision.violations, req, self.metrics)
            except Exception:
                # The verdict stands: bookkeeping must not turn it into a 5xx.
                log.exception("could not record violations", extra={"fields": _request_fields(req)})
        out = orjson.dumps(review.build_response(parsed.api_version, req.uid, decision))
        self.metrics.duration.observe(time.perf_counter() - started)
        return 200, out


def _lean(flask_wsgi: WSGIApplication, answer: _Answer) -> WSGIApplication:
    """The app's WSGI callable: POST /validate answered without Flask's request context,
    routing and Response object, with the same status line, headers and body as the view;
    every other request is Flask's. Flask's request hooks (before_request, after_request,
    teardown) and signals do not run for it: create_app registers none, and one added later
    must be added here too (tests/unit/test_lean_path.py compares the two paths)."""

    def lean_wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/validate" or environ.get("REQUEST_METHOD") != "POST":
            return flask_wsgi(environ, start_response)
        try:
            code, out = answer(environ)
        except Exception as exc:  # noqa: BLE001 - handed to Flask, as the view would raise it
            environ[LEAN_FAILURE] = exc
            return flask_wsgi(environ, start_response)
        start_response(STATUS_LINES[code], [JSON_CONTENT_TYPE, ("Content-Length", str(len(out)))])
        return [out]

    return lean_wsgi


def create_app(
    config: Config | Callable[[], Config],
    state: ClusterState,
    confirmer: Confirmer | None = None,
    *,
    multiprocess_dir: Path | None = None,
    metrics: Metrics | None = None,
    not_ready: Callable[[], str | None] | None = None,
) -> Flask:
    """The webhook's Flask app, judging with `config` against `state`.

    `not_ready`, when given, says why the server is not ready beyond the state (the
    self-managed certificate not served or not trusted yet), or None.

    `config` is a Config, or a function returning the config in use (a reloaded config file,
    `ConfigFile.current`): each request is judged with the config in use when it starts.
    `confirmer` (the live cache; None for state read from files, which is always complete)
    says whether the state is synced and re-reads a namespace before a default-deny denial.
    Unsynced, verdicts that depend on the state follow `onError`; verdicts on the object
    alone (labels, allow-all rules) stand.
    """
    app = Flask("guardrail", static_folder=None)
    metrics = metrics or Metrics(multiprocess_dir)
    fixed = config
    judges = _Judges(
        (lambda: fixed) if isinstance(fixed, Config) else fixed,
        lambda current: Judge(
            current,
            state,
            confirmer,
            on_confirmation=lambda outcome: metrics.confirmations.labels(outcome).inc(),
        ),
    )

    answer = _Answer(judges, metrics)

    @app.post("/validate")
    def validate() -> Response:
        # Reached only with an exception the lean path below caught: raised again here, it
        # gets Flask's handling (error handlers, the exception log, a 500) as from any view.
        failed = request.environ.pop(LEAN_FAILURE, None)
        if failed is not None:
            raise failed
        code, out = answer(request.environ)
        return Response(out, code, mimetype="application/json")

    # Flask's documented place for WSGI middleware (server.py wraps it again for client CAs).
    app.wsgi_app = _lean(app.wsgi_app, answer)  # type: ignore[method-assign,assignment]  # Flask documents wrapping wsgi_app

    @app.get("/healthz")
    def healthz() -> Response:
        return _json(200, {"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        if not judges.current().ready:
            return _json(503, {"status": "not ready", "error": "cluster state not synced yet"})
        why = not_ready() if not_ready is not None else None
        if why is not None:
            return _json(503, {"status": "not ready", "error": why})
        return _json(200, {"status": "ready"})

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), 200, content_type=CONTENT_TYPE_LATEST)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        if isinstance(exc, MethodNotAllowed):
            allowed = ", ".join(sorted(m for m in exc.valid_methods or () if m != "OPTIONS"))
            response = _error(
                405, f"method {request.method} is not allowed on {request.path}; use {allowed}"
            )
            response.headers["Allow"] = allowed
            return response
        if isinstance(exc, NotFound):
            return _error(
                404,
                f"no such path: {request.path} (guardrail serves POST /validate, "
                "GET /healthz, /readyz, /metrics)",
            )
        return _error(code, exc.description or exc.name)

    return app


# -- helpers ------------------------------------------------------------------------------------
def _json(code: int, body: Mapping[str, Any]) -> Response:
    return Response(orjson.dumps(body), code, mimetype="application/json")


def _error(code: int, message: str) -> Response:
    return Response(_error_body(message), code, mimetype="application/json")


def _error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def _read_body(stream: BinaryIO, length: int | None) -> bytes | None:
    """The request body, or None when it is over MAX_BODY_BYTES (then drained if modest).

    Reads the WSGI stream directly: gunicorn ends it at Content-Length or at the last chunk
    of a chunked body, and a known length is read in one call on the hot path.
    """
    if length is not None:
        if length <= MAX_BODY_BYTES:
            return stream.read(length)
        if length <= MAX_BODY_BYTES + DRAIN_BYTES:
            _drain(stream, length)
        return None
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(READ_CHUNK):
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            _drain(stream, DRAIN_BYTES)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _drain(stream: BinaryIO, limit: int) -> None:
    drained = 0
    while drained < limit and (chunk := stream.read(min(READ_CHUNK, limit - drained))):
        drained += len(chunk)


def _json_problem(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Say why a body is not JSON in words a caller can act on."""
    if not body.strip():
        return "request body is empty; expected an AdmissionReview JSON object"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"request body is not valid UTF-8 (invalid byte at offset {err.start})"
    if "depth" in exc.msg or "recursion" in exc.msg.lower():
        return (
            f"request body is not acceptable JSON: nested deeper than 1024 levels "
            f"(line {exc.lineno}, column {exc.colno})"
        )
    return f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"


def _request_fields(req: Request) -> dict[str, Any]:
    return {
        "uid": req.uid,
        "kind": req.kind,
        "namespace": req.namespace,
        "name": req.name,
        "operation": str(req.operation),
        "user": req.username,
        "dry_run": req.dry_run,
    }


def _record(violations: tuple[Violation, ...], req: Request, metrics: Metrics) -> None:
    """One log line and one counter increment per violation, whatever its mode."""
    for violation in violations:
        finding = violation.finding
        mode = str(violation.mode)
        metrics.violations.labels(finding.policy, mode, finding.kind, finding.namespace).inc()
        log.log(
            logging.WARNING if violation.enforced else logging.INFO,
            "%s",
            finding.message,
            extra={
                "fields": {
                    "event": "violation",
                    "policy": finding.policy,
                    "mode": mode,
                    "kind": finding.kind,
                    "namespace": finding.namespace,
                    "name": finding.name,
                    "user": req.username,
                    "operation": str(req.operation),
                    "uid": req.uid,
                    "dry_run": req.dry_run,
                    "denied": violation.enforced,
                }
            },
        )
