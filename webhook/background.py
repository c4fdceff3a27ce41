"""The background audit of `guardrail serve`: one process in the whole Deployment, chosen by a
`coordination.k8s.io/v1` Lease, rescans the cluster every `audit.interval`, keeps the reports
current and exports `guardrail_audit_violations{policy,namespace}`; every other process stands
by and takes over when the Lease expires.

Where it runs: in every gunicorn worker, guarded by the Lease, not in the gunicorn master. A
thread in the master would be running while the master forks workers, at start and again each
time a worker is replaced, and a fork copies whatever lock that thread holds at that instant
(urllib3's pool, prometheus_client's value files) into a child that can never release it.
The Lease is needed anyway to pick one replica among several pods; giving each worker its own
identity (`hostname_pid`) makes the same Lease pick one process among all of them, for the
price of one small GET every few seconds per standing-by worker.

Leader election follows client-go's: the holder renews every 10 s; a candidate takes the Lease
when it is free, or when the record it observed has not changed for `leaseDurationSeconds`
(30) by its *own* clock, so clock skew between nodes does not matter; every write carries
the resourceVersion read, so two candidates cannot both win. A holder that cannot renew for
20 s stops acting as the leader before anyone may take over. A clean exit releases the Lease.
"""

from __future__ import annotations

import atexit
import datetime
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from prometheus_client import CollectorRegistry, Gauge

from webhook import kube
from webhook.config import Config
from webhook.report.summary import breakdown

if TYPE_CHECKING:
    # For the annotation only: the app's module is imported by the worker that serves it.
    from webhook.app import Metrics

log = logging.getLogger("guardrail.audit")

LEASE_NAME = "guardrail-audit"
LEASE_DURATION_SECONDS = 30
RENEW_SECONDS = 10.0
RENEW_DEADLINE_SECONDS = 20.0
RETRY_SECONDS = 2.0
FAILED_RUN_RETRY_SECONDS = 60.0
AUDITED_BY_ANNOTATION = "guardrail.dev/audited-by"
LEASE_API = "/apis/coordination.k8s.io/v1"


def identity() -> str:
    """This process's name in the Lease: unique per worker, readable by an admin."""
    return f"{socket.gethostname()}_{os.getpid()}"


def micro_time(now: float) -> str:
    """A metav1.MicroTime (RFC 3339 with microseconds), as Lease times are written."""
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    holder: str
    duration: int
    renew_time: str
    transitions: int
    resource_version: str

    @staticmethod
    def from_object(obj: Mapping[str, Any]) -> LeaseRecord:
        spec = obj.get("spec") or {}
        meta = obj.get("metadata") or {}
        return LeaseRecord(
            holder=str(spec.get("holderIdentity") or ""),
            duration=int(spec.get("leaseDurationSeconds") or LEASE_DURATION_SECONDS),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(meta.get("resourceVersion") or ""),
        )


def lease_action(record: LeaseRecord | None, me: str, unchanged_for: float) -> str:
    """What a candidate does with the Lease it just read: `create`, `renew`, `acquire` or
    `standby`. `unchanged_for` is how long (by this process's clock) the record has been the
    same: a holder that stopped renewing that long ago has lost it."""
    if record is None:
        return "create"
    if record.holder == me:
        return "renew"
    if not record.holder or unchanged_for > record.duration:
        return "acquire"
    return "standby"


class LeaseElector:
    """Holds, renews and takes over one Lease; `is_leader()` is safe from any thread."""

    def __init__(
        self,
        client: kube.Client,
        namespace: str,
        *,
        name: str = LEASE_NAME,
        me: str | None = None,
        duration: int = LEASE_DURATION_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.me = me or identity()
        self.duration = duration
        self._clock = clock
        self._wall = wall
        self._observed: tuple[str, str] | None = None
        self._observed_at = clock()
        self._renewed_at: float | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        ns = quote(self.namespace, safe="")
        return f"{LEASE_API}/namespaces/{ns}/leases/{quote(self.name, safe='')}"

    def is_leader(self) -> bool:
        with self._lock:
            return (
                self._renewed_at is not None
                and self._clock() - self._renewed_at < RENEW_DEADLINE_SECONDS
            )

    def step(self) -> bool:
        """One round: read the Lease, then renew, take or leave it. True while held."""
        try:
            record = self._read()
            now = self._clock()
            if record is not None and (record.holder, record.renew_time) != self._observed:
                self._observed = (record.holder, record.renew_time)
                self._observed_at = now
            action = lease_action(record, self.me, now - self._observed_at)
            if action == "standby":
                self._lost()
                return False
            self._write(action, record)
        except kube.ApiError as exc:
            if exc.status != 409:  # 409: someone else wrote first; not an error
                log.warning("audit lease %s: %s", self.path, exc)
            return self.is_leader()
        except Exception as exc:  # noqa: BLE001 - the API being away must not end the loop
            log.warning("audit lease %s: %s", self.path, exc)
            return self.is_leader()
        with self._lock:
            first = self._renewed_at is None
            self._renewed_at = self._clock()
        if first:
            log.info(
                "holding the lease",
                extra={"fields": {"lease": self.path, "identity": self.me}},
            )
        return True

    def release(self) -> None:
        """Give the Lease up (clean exit), so a standby takes over at once."""
        if not self.is_leader():
            return
        try:
            record = self._read()
            if record is not None and record.holder == self.me:
                body = self._body("", record, acquire=False)
                body["spec"]["leaseDurationSeconds"] = 1
                self.client.send("PUT", self.path, body, timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            log.warning("could not release the audit lease: %s", exc)
        self._lost()

    def _lost(self) -> None:
        with self._lock:
            was = self._renewed_at is not None
            self._renewed_at = None
        if was:
            log.info(
                f"no longer holding the lease {self.name}", extra={"fields": {"lease": self.path}}
            )

    def _read(self) -> LeaseRecord | None:
        try:
            return LeaseRecord.from_object(self.client.get(self.path, timeout=5.0))
        except kube.ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def _body(self, holder: str, record: LeaseRecord | None, *, acquire: bool) -> dict[str, Any]:
        now = micro_time(self._wall())
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": self.duration,
            "renewTime": now,
            "leaseTransitions": (record.transitions if record else 0) + (1 if acquire else 0),
        }
        if acquire or record is None:
            spec["acquireTime"] = now
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if record is not None:
            metadata["resourceVersion"] = record.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _write(self, action: str, record: LeaseRecord | None) -> None:
        if action == "create":
            body = self._body(self.me, None, acquire=True)
            body["spec"]["leaseTransitions"] = 0
            ns = quote(self.namespace, safe="")
            self.client.send("POST", f"{LEASE_API}/namespaces/{ns}/leases", body, timeout=5.0)
        elif action == "renew":
            body = self._body(self.me, record, acquire=False)
            if record is not None and record.holder == self.me:
                # Keep the acquireTime of this tenure.
                body["spec"].pop("acquireTime", None)
            self.client.send("PUT", self.path, body, timeout=5.0)
        else:
            self.client.send(
                "PUT", self.path, self._body(self.me, record, acquire=True), timeout=5.0
            )


class AuditGauges:
    """The audit's metrics, in one process or across gunicorn workers (value files)."""

    def __init__(self, registry: CollectorRegistry | None, *, multiprocess: bool) -> None:
        self.multiprocess = multiprocess
        # Most recent write wins across processes: the current leader's scan is the truth;
        # a process that lost the Lease zeroes what it wrote, a dead one's files are dropped.
        self.violations = Gauge(
            "guardrail_audit_violations",
            "Violations found by the last background audit, by policy and namespace.",
            ("policy", "namespace"),
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.leader = Gauge(
            "guardrail_audit_leader",
            "1 in the process that holds the audit Lease and runs the background audit.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.last_run = Gauge(
            "guardrail_audit_last_run_timestamp_seconds",
            "Unix time the last background audit finished.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.duration = Gauge(
            "guardrail_audit_duration_seconds",
            "Seconds the last background audit took, listing, judging and writing reports.",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self._written: set[tuple[str, str]] = set()
        # The audit thread publishes, the Lease thread clears on losing the Lease.
        self._lock = threading.Lock()

    def publish(self, counts: Mapping[tuple[str, str], int]) -> None:
        with self._lock:
            for labels, value in counts.items():
                self.violations.labels(*labels).set(value)
            for labels in self._written - set(counts):
                self._forget(labels)
            self._written = set(counts)

    def clear(self) -> None:
        with self._lock:
            for labels in self._written:
                self._forget(labels)
            self._written = set()

    def _forget(self, labels: tuple[str, str]) -> None:
        if self.multiprocess:
            # A value file cannot drop a series; zero says "no violations" truthfully.
            self.violations.labels(*labels).set(0)
        else:
            self.violations.remove(*labels)


class BackgroundAudit:
    """The elector loop and the audit loop of one process."""

    def __init__(
        self,
        config: Config,
        client: kube.Client,
        gauges: AuditGauges,
        current: Callable[[], Config] | None = None,
    ) -> None:
        # The Lease's namespace and the interval are the start's; the scans judge with the
        # config in use (`current`, a reloaded config file), reportApi and includePasses too.
        self.config = config
        self.current = current or (lambda: config)
        self.client = client
        self.gauges = gauges
        self.elector = LeaseElector(client, config.own_namespace)
        self.interval = config.audit.interval_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target, name in ((self._elect, "lease"), (self._audit, "audit")):
            thread = threading.Thread(target=target, name=f"guardrail-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.elector.release()

    def _elect(self) -> None:
        while not self._stop.is_set():
            held = self.elector.step()
            self.gauges.leader.set(1 if held else 0)
            if not held:
                self.gauges.clear()
            self._stop.wait(RENEW_SECONDS if held else RETRY_SECONDS)

    def _audit(self) -> None:
        due = 0.0
        while not self._stop.wait(1.0):
            if not self.elector.is_leader():
                due = 0.0  # a new tenure starts with a scan
                continue
            now = time.monotonic()
            if now < due:
                continue
            due = now + (
                self.interval if self.run_once() else min(self.interval, FAILED_RUN_RETRY_SECONDS)
            )

    def run_once(self) -> bool:
        """One scan and report update; False (logged) when it failed."""
        # Loaded on the first scan: a worker that only stands by never needs them.
        from webhook import audit, reports  # noqa: PLC0415 - see above
        from webhook.report.policyreport import REPORT_APIS  # noqa: PLC0415 - see above

        started = time.monotonic()
        config = self.current()
        api = REPORT_APIS[config.audit.report_api]
        try:
            result = audit.sweep(self.client, config, include_passes=config.audit.include_passes)
            if not self.elector.is_leader():
                return True  # lost the Lease while scanning: the new holder reports
            documents = audit.reports(result, api=api, now=time.time())
            written = reports.write_reports(
                self.client,
                documents,
                api=api,
                namespace=None,
                annotations={AUDITED_BY_ANNOTATION: self.elector.me},
                still_allowed=self.elector.is_leader,
            )
        except Exception as exc:  # noqa: BLE001 - keep auditing on the next round
            log.warning("background audit failed: %s", exc, extra={"fields": {"error": str(exc)}})
            return False
        tally = breakdown(result.violations)
        self.gauges.publish(
            {
                (policy, namespace): count
                for namespace, counts in tally.by_namespace.items()
                for policy, count in counts.items()
            }
        )
        elapsed = time.monotonic() - started
        self.gauges.duration.set(elapsed)
        self.gauges.last_run.set(time.time())
        log.info(
            "background audit: %d objects, %d violations; %s",
            result.resources,
            tally.total,
            written.describe(api),
            extra={
                "fields": {
                    "event": "audit",
                    "resources": result.resources,
                    "violations": tally.total,
                    "seconds": round(elapsed, 3),
                    "identity": self.elector.me,
                }
            },
        )
        return True


def start(
    config: Config,
    kubeconfig: str | None,
    metrics: Metrics,
    *,
    current: Callable[[], Config] | None = None,
) -> BackgroundAudit | None:
    """Start the background audit in this process when `audit.interval` is set.

    `current` returns the config in use when the config file is reloaded: each scan judges
    with it. The interval is `config`'s: turning the audit on or off takes a restart.
    """
    if config.audit.interval_seconds <= 0:
        return None
    gauges = AuditGauges(metrics.registry, multiprocess=metrics.multiprocess_dir is not None)
    background = BackgroundAudit(config, kube.KubeClient(kubeconfig), gauges, current)
    background.start()
    atexit.register(background.stop)
    return background
