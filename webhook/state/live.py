"""Cluster state from the API server: list+watch into an IndexedState the LiveState holds.

One watcher thread per resource (namespaces, NetworkPolicies, Calico policies, admin network
policies where served) lists, then watches from the list's resourceVersion with bookmarks; a
410 Gone (from the watch request or as an ERROR event) relists at once, other failures back off
exponentially with jitter, and a periodic resync relists anyway so a missed event cannot live
forever. A resync applies only the difference (by resourceVersion), so it neither rebuilds the
index nor throws away memoised answers for namespaces that did not change. Discovery runs at
start and again periodically: Calico CRDs (or its API server) installed later are picked up,
and a resource that went away is dropped with its objects. Decisions never wait on any of this:
they read the index.

The API server is reached through `webhook.kube`; this module only keeps the cache.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3

from webhook.kube import (
    NAMESPACES,
    ApiError,
    ApiResource,
    Client,
    discover,
    list_all,
    list_pages,
    slim,
)
from webhook.policy.engine import NamespaceView, PolicyStack
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Namespace, Obj
from webhook.state.index import IndexedState

log = logging.getLogger("guardrail.state")

CONFIRM_TIMEOUT_SECONDS = 2.0
# Reads of confirmations in flight at once, per worker (a confirmation reads each resource).
CONFIRM_THREADS = 8
# Server-side watch timeout; the client's read timeout is a little longer, so a connection that
# went silent (no event, no bookmark) is noticed even where no reset ever arrives.
WATCH_TIMEOUT_SECONDS = 290
WATCH_READ_SLACK_SECONDS = 30
RESYNC_SECONDS = 600.0
# A resource of more objects than this resyncs as much less often as it is larger: a relist
# costs its size in each worker and in the API server (400,000 objects: about 35 CPU-seconds
# on each side, which starved the requests of a 2-core pod for as long), while the watch,
# resumed from its resourceVersion, already misses nothing the API server keeps.
RESYNC_OBJECTS = 20_000
RESYNC_MAX_SECONDS = 10 * 3600.0  # controller-runtime's default SyncPeriod
DISCOVERY_SECONDS = 60.0
DROP_AFTER_DISCOVERIES = 2
REPORT_SECONDS = 1.0
BACKOFF_MIN_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# Per-namespace change counters live in this many buckets (a namespace hashes to one): bounded
# memory, and a collision only makes a confirmation read once more.
CHANGE_BUCKETS = 4096

# A snapshot older than this is brought up to date before the master forks a worker from it.
SNAPSHOT_MAX_AGE_SECONDS = 60.0
SNAPSHOT_CATCH_UP_SECONDS = 1

# What the cache records of each object it holds, per resource, as strings (see _Records).
ObjKey = str  # "namespace/name" ("/name" when cluster-scoped); names never hold a "/"


def list_objects(client: Client, resource: ApiResource) -> tuple[list[Obj], str]:
    """Every object of a resource as the cache keeps it, and the list's resourceVersion."""
    listed = list_all(client, resource.url(), each=lambda item: slim(item, resource))
    return list(listed.items), listed.resource_version


def cluster_objects(client: Client) -> list[Obj]:
    """A one-off snapshot of the cluster's namespaces and policies (`check --cluster`)."""
    found: list[Obj] = []
    for resource in discover(client):
        objs, _version = list_objects(client, resource)
        found.extend(objs)
    return found


def read_cluster(client: Client) -> list[Obj]:
    """The live cluster's namespaces and policies, read once; GuardrailError when it cannot be."""
    try:
        return cluster_objects(client)
    except (ApiError, urllib3.exceptions.HTTPError, OSError, orjson.JSONDecodeError) as exc:
        raise GuardrailError(
            f"cannot read the cluster's namespaces and network policies: {exc}", client.host
        ) from exc


def _key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _namespace_of(key: ObjKey) -> str:
    return key.partition("/")[0]


def _name_of(key: ObjKey) -> str:
    return key.partition("/")[2]


def _entry(key: ObjKey, obj: Obj) -> str:
    """The record of one object: its key, resourceVersion and uid, in one string."""
    return f"{key}\0{_version_of(obj)}\0{_uid_of(obj)}"


def _uid_in(entry: str) -> str:
    return entry.rpartition("\0")[2]


def _uid_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _version_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _jittered(seconds: float) -> float:
    # Spreads the retries of many workers and replicas; not security-relevant randomness.
    return seconds * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


class CacheHooks:
    """Hooks the live cache reports its health through; the server wires them to Prometheus."""

    def __init__(
        self,
        restart: Callable[[str], None] = lambda _resource: None,
        objects: Callable[[str, int], None] = lambda _resource, _count: None,
        contact: Callable[[], None] = lambda: None,
        health: Callable[[bool, float], None] = lambda _synced, _age: None,
    ) -> None:
        self.restart = restart
        self.objects = objects
        self.contact = contact
        # (synced, age_seconds), every REPORT_SECONDS from each worker: with one cache per
        # worker, a gauge set only by the worker answering a scrape would leave the others'
        # values stale.
        self.health = health


class _Records:
    """What the cache holds of one resource: per object its key, resourceVersion and uid.

    Held as strings in a dict (key -> record) and a set of the records, so that a resync
    telling whether a listed object is unchanged is a set membership test: CPython compares
    str set members and dict keys without touching their reference counts, so the test writes
    to no page of memory. A worker forked from the master's snapshot keeps sharing the
    snapshot's pages through every resync instead of copying them (SPEC §6: a pod's memory
    whatever its worker count). Only a changed object's record is read, and so copied.
    """

    __slots__ = ("by_key", "records")

    def __init__(self) -> None:
        self.by_key: dict[ObjKey, str] = {}
        self.records: set[str] = set()

    def holds(self, entry: str) -> bool:
        return entry in self.records

    def put(self, key: ObjKey, entry: str) -> str | None:
        """Record an object; return the record it replaces, if any."""
        old = self.by_key.get(key)
        if old is not None:
            self.records.discard(old)
        self.by_key[key] = entry
        self.records.add(entry)
        return old

    def pop(self, key: ObjKey) -> str | None:
        old = self.by_key.pop(key, None)
        if old is not None:
            self.records.discard(old)
        return old

    def __len__(self) -> int:
        return len(self.by_key)


@dataclass(eq=False)
class _Watcher:
    """The list+watch loop of one resource, and what the staleness gauge needs of it."""

    resource: ApiResource
    stop: threading.Event = field(default_factory=threading.Event)
    streaming: bool = False  # a watch stream is open right now
    last_good: float = 0.0  # monotonic time the resource was last known current
    # The resourceVersion to resume from: the list's, then each event's and bookmark's, kept
    # here so a stream that breaks mid-way resumes after the last event it delivered.
    version: str = ""
    listed_at: float = 0.0  # monotonic time of the last full list (the next resync counts)
    # Resumed from the master's version, and nothing delivered on that stream yet.
    just_resumed: bool = False
    thread: threading.Thread | None = None


def resync_interval(base: float, objects: int) -> float:
    """Seconds between relists of a resource holding `objects`: `base` up to RESYNC_OBJECTS,
    proportionally longer above, at most RESYNC_MAX_SECONDS (and never shorter than base)."""
    return max(base, min(base * objects / RESYNC_OBJECTS, RESYNC_MAX_SECONDS))


class LiveState:
    """A ClusterState: an IndexedState kept current by list+watch, read by delegation.

    `synced` once every resource of the first discovery was listed (and, in a worker forked
    from a preloaded snapshot, once each of its watches has resumed from the snapshot).

    Two ways to start it. `start()` lists and watches from this process. `preload()` lists
    every resource and returns with no thread left running: the gunicorn master does that
    before it forks, then each worker calls `forked(client, hooks)` and `start()`, sharing the
    master's lists page for page (copy-on-write) and watching each resource from the
    resourceVersion of the master's list, so no change made since is missed (a 410 Gone, the
    version compacted away, relists as always).
    """

    def __init__(
        self,
        client: Client,
        *,
        resync_seconds: float = RESYNC_SECONDS,
        discovery_seconds: float = DISCOVERY_SECONDS,
        hooks: CacheHooks | None = None,
    ) -> None:
        # Writes go through batches of the index: its lock also guards what is recorded here
        # of its content (records, listed resources, change counters), so the two agree.
        self._index = IndexedState()
        self._client = client
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._resync_seconds = resync_seconds
        self._discovery_seconds = discovery_seconds
        self._hooks = hooks or CacheHooks()
        self._stop = threading.Event()
        self._watchers: dict[str, _Watcher] = {}
        self._first: frozenset[str] | None = None  # the first discovery: what "synced" needs
        self._missing: dict[str, int] = {}  # resource -> discoveries in a row without it
        self._listed: set[str] = set()
        # Resources listed by the master whose watch this worker has not resumed yet.
        self._resuming: set[str] = set()
        # resource -> what the index holds from it (the index keys policies by uid, so an
        # object a relist finds gone is removed by the uid recorded here).
        self._records: dict[str, _Records] = {}
        self._changes = [0] * CHANGE_BUCKETS
        self._global_changes = 0
        self._synced = threading.Event()

    # -- reads (ClusterState), from the index ------------------------------------------------
    def namespace(self, name: str) -> Namespace | None:
        return self._index.namespace(name)

    def namespaces(self) -> Iterable[Namespace]:
        return self._index.namespaces()

    def policies_in(self, namespace: str) -> Sequence[Obj]:
        return self._index.policies_in(namespace)

    def global_policies(self) -> Sequence[Obj]:
        return self._index.global_policies()

    def stack(self, namespace: str) -> PolicyStack:
        return self._index.stack(namespace)

    def view(self, namespace: str) -> NamespaceView:
        return self._index.view(namespace)

    def counts(self) -> dict[str, int]:
        return self._index.counts()

    # -- lifecycle -------------------------------------------------------------------------
    def preload(self) -> None:
        """Discover and list every resource now (all at once), returning when every list is
        done: no thread it starts outlives it.

        For the gunicorn master: it forks its workers from what this lists (see the class).
        A failure is logged and leaves the rest to the workers: a resource not listed here is
        listed by each worker, as without preload (and everything, when discovery failed).
        """
        try:
            resources = discover(self._client)
        except Exception as exc:  # noqa: BLE001 - the workers discover and list themselves
            log.warning("cannot list the cluster before starting the workers: %s", exc)
            return
        self._first = frozenset(r.name for r in resources)
        # The cyclic garbage collector would walk the growing heap again and again while
        # hundreds of thousands of objects arrive (nine tenths of the list's time, measured);
        # nothing here makes cycles that matter, and the caller collects before it forks.
        collecting = gc.isenabled()
        gc.disable()
        try:
            watchers = [_Watcher(resource) for resource in resources]
            self._watchers = {w.resource.name: w for w in watchers}
            # Every resource at once: the API server serves one list while this process reads
            # another (one after the other, each waited for the other). The threads have all
            # ended when this returns, before any fork.
            with ThreadPoolExecutor(len(watchers), thread_name_prefix="guardrail-list") as pool:
                for watcher, listed in zip(
                    watchers, pool.map(self._preload_one, watchers), strict=True
                ):
                    watcher.version = listed
            self._index.compile_globals()
        finally:
            if collecting:
                gc.enable()

    def _preload_one(self, watcher: _Watcher) -> str:
        try:
            return self._list(watcher)
        except Exception as exc:  # noqa: BLE001 - each worker lists it instead
            log.warning(
                "cannot list %s before starting the workers: %s", watcher.resource.name, exc
            )
            return ""

    def catch_up(self, max_age: float = SNAPSHOT_MAX_AGE_SECONDS) -> None:
        """Bring a preloaded snapshot up to date when it is older than max_age, in this thread.

        For the master before it forks a worker (a replacement, or after SIGHUP): the worker
        then replays a few seconds of events instead of minutes, or a whole relist after a
        410. Each resource's watch is replayed for about a second from its version; a 410
        relists it. Failures are logged and left to the worker, which resumes from whatever
        version was reached.
        """
        now = time.monotonic()
        for watcher in list(self._watchers.values()):
            if not watcher.version or now - watcher.last_good < max_age:
                continue
            try:
                try:
                    self._watch(watcher, time.monotonic() + SNAPSHOT_CATCH_UP_SECONDS, lambda: None)
                except ApiError as exc:
                    if exc.status != 410:
                        raise
                    watcher.version = self._list(watcher)
                self._touch(watcher)
            except Exception as exc:  # noqa: BLE001 - the worker resumes, relists if need be
                log.warning(
                    "could not bring %s up to date before forking: %s", watcher.resource.name, exc
                )

    def forked(self, client: Client, hooks: CacheHooks | None = None) -> None:
        """In a worker forked from a preloaded snapshot, before `start()`: this process's
        own client (the master's connections are not shared) and hooks; unsynced until every
        watch has resumed from the snapshot's versions."""
        self._client = client
        self._hooks = hooks or CacheHooks()
        self._synced.clear()
        self._resuming = {name for name, watcher in self._watchers.items() if watcher.version}

    def close_client(self) -> None:
        """Close the client's pooled connections (the master's, before it forks)."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def object_counts(self) -> dict[str, int]:
        """Objects held per resource."""
        with self._index.batch():
            return {name: len(records) for name, records in self._records.items()}

    def start(self) -> None:
        for watcher in list(self._watchers.values()):
            # Listed by the master (preload): watched from its list's version.
            self._start_watcher(watcher)
        threading.Thread(
            target=self._discover_forever, name="guardrail-discovery", daemon=True
        ).start()
        threading.Thread(target=self._report_forever, name="guardrail-health", daemon=True).start()

    def _report_forever(self) -> None:
        while True:
            try:
                self._hooks.health(self.synced, self.age_seconds())
            except Exception:
                log.exception("could not report the cache's health")
            if self._stop.wait(REPORT_SECONDS):
                return

    def stop(self) -> None:
        self._stop.set()
        for watcher in list(self._watchers.values()):
            watcher.stop.set()
        with self._pool_lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.shutdown(wait=False)
            self._pool = None

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def _check_synced(self) -> None:
        """Synced once every resource of the first discovery is listed and resumed (caller
        holds the index lock)."""
        first = self._first
        if first is not None and first <= self._listed and not (first & self._resuming):
            self._synced.set()

    @property
    def resources(self) -> tuple[ApiResource, ...]:
        """The resources watched right now."""
        return tuple(w.resource for w in list(self._watchers.values()))

    def age_seconds(self) -> float:
        """Seconds the cache may lag the API server: 0 while every watch stream is open.

        A resource whose watch is down counts from the moment it was last known current (its
        last list, event, or the end of its last stream). Infinite before any contact.
        """
        watchers = list(self._watchers.values())
        if not watchers:
            return float("inf")
        now = time.monotonic()
        ages = [
            0.0 if w.streaming else (now - w.last_good if w.last_good else float("inf"))
            for w in watchers
        ]
        return max(0.0, *ages)

    # -- discovery -------------------------------------------------------------------------
    def _discover_forever(self) -> None:
        delay = BACKOFF_MIN_SECONDS
        while not self._stop.is_set():
            try:
                resources = discover(self._client)
            except Exception as exc:  # noqa: BLE001 - any failure: retry with backoff
                log.warning("discovery failed, retrying in %.1fs: %s", delay, exc)
                if self._stop.wait(_jittered(delay)):
                    return
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            delay = BACKOFF_MIN_SECONDS
            self._reconcile(resources)
            if self._stop.wait(_jittered(self._discovery_seconds)):
                return

    def _reconcile(self, resources: Sequence[ApiResource]) -> None:
        """Start watchers for newly served resources, stop (and forget) gone ones."""
        wanted = {r.name: r for r in resources}
        if self._first is None:
            self._first = frozenset(wanted)
        for name, watcher in list(self._watchers.items()):
            if wanted.get(name) == watcher.resource:
                self._missing.pop(name, None)
                continue
            # A restarted API server serves CRDs a moment after it answers: only a resource
            # missing from two discoveries in a row is gone (its objects keep counting until).
            self._missing[name] = self._missing.get(name, 0) + 1
            if self._missing[name] >= DROP_AFTER_DISCOVERIES:
                del self._missing[name]
                log.info("resource %s is no longer served; dropping its objects", name)
                with self._index.batch():
                    watcher.stop.set()
                    self._drop_resource(watcher.resource)
                    if self._first is not None:
                        # Synced must not wait for a resource that will never be listed.
                        self._first = self._first - {name}
                        self._resuming.discard(name)
                        self._check_synced()
                del self._watchers[name]
        for name, resource in wanted.items():
            if name in self._watchers:
                continue
            watcher = _Watcher(resource)
            if self._synced.is_set():
                # Found by a later discovery: the cache is not stale, it just lacks this yet.
                watcher.last_good = time.monotonic()
            self._watchers[name] = watcher
            self._start_watcher(watcher)

    def _start_watcher(self, watcher: _Watcher) -> None:
        if watcher.thread is not None:
            return
        watcher.thread = threading.Thread(
            target=self._watch_forever,
            args=(watcher,),
            name=f"guardrail-watch-{watcher.resource.name}",
            daemon=True,
        )
        watcher.thread.start()

    # -- list + watch ----------------------------------------------------------------------
    def _resync_interval(self, resource: ApiResource) -> float:
        with self._index.batch():
            records = self._records.get(resource.name)
            count = len(records) if records is not None else 0
        return resync_interval(self._resync_seconds, count)

    def _watch_forever(self, watcher: _Watcher) -> None:
        resource = watcher.resource
        delay = BACKOFF_MIN_SECONDS
        # A resource the master listed is due for its resync counting from that list.
        next_resync = (
            watcher.listed_at + _jittered(self._resync_interval(resource)) if watcher.version else 0
        )

        def opened() -> None:
            nonlocal delay
            # The server accepted the watch: the API is back, the next failure starts afresh.
            delay = BACKOFF_MIN_SECONDS
            watcher.streaming = True
            self._touch(watcher)
            if resource.name in self._resuming:
                # Every change since the master's list is on this stream, in order.
                with self._index.batch():
                    self._resuming.discard(resource.name)
                    watcher.just_resumed = True
                    self._check_synced()

        while not (self._stop.is_set() or watcher.stop.is_set()):
            try:
                if not watcher.version or time.monotonic() >= next_resync:
                    watcher.version = self._list(watcher)
                    next_resync = time.monotonic() + _jittered(self._resync_interval(resource))
                    delay = BACKOFF_MIN_SECONDS
                self._watch(watcher, next_resync, opened)
            except ApiError as exc:
                if exc.status == 410:
                    # Our resourceVersion was compacted away: only a fresh list is consistent.
                    log.info("watch of %s expired (410 Gone); relisting", resource.name)
                    watcher.version = ""
                    continue
                if not self._retry(watcher, delay, exc):
                    return
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
            except Exception as exc:  # noqa: BLE001 - a watch must outlive any failure
                if not self._retry(watcher, delay, exc):
                    return
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
            finally:
                if watcher.streaming:
                    # The data was current until the stream ended.
                    watcher.streaming = False
                    self._touch(watcher)

    def _retry(self, watcher: _Watcher, delay: float, exc: Exception) -> bool:
        """Count and log a failed list/watch, then wait; False when the state is stopping."""
        if watcher.streaming:
            watcher.streaming = False
            self._touch(watcher)
        self._hooks.restart(watcher.resource.name)
        log.warning("watch of %s failed, retrying in %.1fs: %s", watcher.resource.name, delay, exc)
        wait = _jittered(delay)
        return not (self._stop.wait(wait) or watcher.stop.wait(0))

    def _list(self, watcher: _Watcher) -> str:
        resource = watcher.resource
        version = ""

        def pages() -> Iterator[list[Obj]]:
            nonlocal version
            for page in list_pages(self._client, resource.url()):
                version = page.resource_version
                yield [slim(item, resource) for item in page.items]

        if not self._apply_list(resource, pages(), watcher.stop):
            return version or "0"
        with self._index.batch():
            self._listed.add(resource.name)
            self._resuming.discard(resource.name)
            self._check_synced()
        watcher.listed_at = time.monotonic()
        self._touch(watcher)
        # A list without a resourceVersion (some aggregated APIs) must not mean "list again
        # at once, forever": watch from "0", any version, which replays current objects.
        return version or "0"

    def _watch(self, watcher: _Watcher, until: float, opened: Callable[[], None]) -> None:
        resource = watcher.resource
        params = {
            "watch": "1",
            "resourceVersion": watcher.version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(
                int(max(1.0, min(WATCH_TIMEOUT_SECONDS, until - time.monotonic())))
            ),
        }
        for event in self._client.stream(
            resource.url(),
            params,
            read_timeout=WATCH_TIMEOUT_SECONDS + WATCH_READ_SLACK_SECONDS,
            opened=opened,
        ):
            if self._stop.is_set() or watcher.stop.is_set():
                break
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            self._touch(watcher)
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                if code == 410 and watcher.just_resumed:
                    # The stream was accepted, then said the master's version is gone: this
                    # worker does not know the cluster until it has listed it itself.
                    with self._index.batch():
                        self._resuming.add(resource.name)
                        self._synced.clear()
                raise ApiError(code, str(obj.get("message") or ""))
            watcher.just_resumed = False
            # BOOKMARK events carry only the resourceVersion to resume from.
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self._apply(watcher, str(kind), slim(obj, resource))
            watcher.version = _version_of(obj) or watcher.version
        watcher.just_resumed = False

    # -- writes, and which objects came from which resource --------------------------------------
    def _apply(self, watcher: _Watcher, kind: str, obj: Obj) -> None:
        resource = watcher.resource
        with self._index.batch():
            if watcher.stop.is_set():
                return  # a watcher being dropped must not write after its objects are gone
            records = self._records.setdefault(resource.name, _Records())
            key = _key(obj)
            if kind == "DELETED":
                old = records.pop(key)
                self._remove(resource, key, _uid_of(obj) or (_uid_in(old) if old else ""))
            else:
                self._store(resource, records, key, obj)
            count = len(records)
            self._changed(resource, _namespace_of(key))
        self._hooks.objects(resource.name, count)

    def _store(self, resource: ApiResource, records: _Records, key: ObjKey, obj: Obj) -> None:
        """Put one object in the index and record it (caller holds the lock)."""
        old = records.put(key, _entry(key, obj))
        if old is not None and _uid_in(old) != _uid_of(obj):
            # Deleted and created again under its name while no watch saw it: the index keys
            # policies by uid, so the old one would otherwise stay beside the new one.
            self._remove(resource, key, _uid_in(old))
        self._index.upsert(obj)

    def _apply_list(
        self, resource: ApiResource, pages: Iterable[list[Obj]], stop: threading.Event
    ) -> bool:
        """A fresh list of a resource, page by page: apply the differences, keep the rest.

        Each page is applied as it arrives (under the lock, so readers see whole pages), then
        what the list no longer holds is removed: a list never costs a second copy of the
        cluster's objects in memory, and an unchanged object is neither rewritten nor even
        read (see _Records). False when the watcher was stopped meanwhile.
        """
        records = self._records.setdefault(resource.name, _Records())
        before = len(records)
        held = 0  # listed objects the cache held before this list, changed or not
        listed: set[ObjKey] = set()
        for page in pages:
            with self._index.batch():
                if stop.is_set():
                    return False
                for obj in page:
                    key = _key(obj)
                    listed.add(key)
                    entry = _entry(key, obj)
                    if records.holds(entry):
                        held += 1
                        continue
                    if key in records.by_key:
                        held += 1
                    self._store(resource, records, key, obj)
                    self._changed(resource, _namespace_of(key))
        with self._index.batch():
            if stop.is_set():
                return False
            if held < before:
                # Something the cache holds is gone (deleted while no watch saw it): only then
                # are all its records walked.
                for key in [k for k in records.by_key if k not in listed]:
                    old = records.pop(key)
                    self._remove(resource, key, _uid_in(old) if old else "")
                    self._changed(resource, _namespace_of(key))
            count = len(records)
        self._hooks.objects(resource.name, count)
        return True

    def _replace_resource(self, resource: ApiResource, objs: list[Obj]) -> None:
        """A fresh list of a resource given whole (one page)."""
        self._apply_list(resource, [objs], threading.Event())

    def _drop_resource(self, resource: ApiResource) -> None:
        """Forget every object of a resource that is no longer served (caller holds the lock)."""
        self._replace_resource(resource, [])
        self._records.pop(resource.name, None)
        self._listed.discard(resource.name)

    def _remove(self, resource: ApiResource, key: ObjKey, uid: str) -> None:
        namespace, name = _namespace_of(key), _name_of(key)
        if resource is NAMESPACES:
            # Only the Namespace itself: its policies leave through their own watch.
            self._index.remove_namespace_only(name)
            return
        metadata = {"namespace": namespace, "name": name}
        if uid:
            metadata["uid"] = uid
        self._index.remove(
            {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata}
        )

    def _changed(self, resource: ApiResource, namespace: str) -> None:
        """Count a policy change, for confirmations to tell whether the watch raced them."""
        if resource.namespaced:
            self._changes[hash(namespace) % CHANGE_BUCKETS] += 1
        elif resource is not NAMESPACES:
            self._global_changes += 1

    def _touch(self, watcher: _Watcher) -> None:
        watcher.last_good = time.monotonic()
        self._hooks.contact()

    # -- the negative-answer confirmation --------------------------------------------------------
    def confirm_providers(
        self, namespace: str, timeout: float = CONFIRM_TIMEOUT_SECONDS
    ) -> NamespaceView | None:
        """The namespace's view after a live read of its and the global policies, or None.

        Called only before a default-deny denial, so that a policy applied a moment before the
        pod (one `kubectl apply -f dir/`, a Calico GlobalNetworkPolicy included) is honoured
        even if its watch event is still in flight. What the read finds goes into the cache,
        unless a watch event for the same policies arrived meanwhile (then the read may be
        older than the cache: read again). None when the read fails or times out: the caller
        keeps the cache's answer.
        """
        deadline = time.monotonic() + timeout
        resources = [r for r in self.resources if r is not NAMESPACES]
        bucket = hash(namespace) % CHANGE_BUCKETS
        try:
            for _attempt in range(2):
                before = (self._changes[bucket], self._global_changes)
                # Every resource at once: one round trip to the API server, not one each
                # (4 sequential reads took 13 ms of every denial at 100,000 namespaces).
                pool = self._confirm_pool()
                reads = [pool.submit(self._confirm_read, r, namespace, deadline) for r in resources]
                done, waiting = futures.wait(reads, timeout=max(deadline - time.monotonic(), 0))
                if waiting:
                    return None  # each read ends by its own timeout; its answer is not used
                found = [item for read in done for item in read.result()]
                with self._index.batch():
                    if (self._changes[bucket], self._global_changes) != before:
                        continue
                    for resource, obj in found:
                        records = self._records.setdefault(resource.name, _Records())
                        key = _key(obj)
                        if not records.holds(_entry(key, obj)):
                            self._store(resource, records, key, obj)
                return self._index.view(namespace)
        except Exception as exc:  # noqa: BLE001 - fall back to the cache's answer
            log.warning("live confirmation for namespace %s failed: %s", namespace, exc)
            return None
        # Raced with the watch twice: the cache is at least as new as both reads.
        return self._index.view(namespace)

    def _confirm_read(
        self, resource: ApiResource, namespace: str, deadline: float
    ) -> list[tuple[ApiResource, dict[str, Any]]]:
        """One resource's part of a confirmation: the namespace's objects, or the cluster's
        when they differ in number from the cache's."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the confirmation's deadline passed")
        if not resource.namespaced and self._same_count(resource, remaining):
            return []
        remaining = max(deadline - time.monotonic(), 0.001)
        url = resource.url(namespace) if resource.namespaced else resource.url()
        page = self._client.get(url, timeout=remaining)
        return [
            (resource, slim(item, resource))
            for item in page.get("items") or []
            if isinstance(item, dict)
        ]

    def _confirm_pool(self) -> ThreadPoolExecutor:
        """This process's threads for confirmations' reads (made on first use, in the worker:
        a pool made before a fork has no threads in the child)."""
        with self._pool_lock:
            pool = self._pool
            if pool is None or self._pool_pid != os.getpid():
                pool = self._pool = ThreadPoolExecutor(
                    CONFIRM_THREADS, thread_name_prefix="guardrail-confirm"
                )
                self._pool_pid = os.getpid()
            return pool

    def _same_count(self, resource: ApiResource, timeout: float) -> bool:
        """Whether the API server holds as many objects of a cluster-scoped resource as the
        cache, by a list of one item (the server counts the rest).

        The confirmation re-reads cluster-scoped policies only when they differ in number:
        the case it is there for is one created a moment before the pod (`kubectl apply -f
        dir/`), and reading all 1,000 GlobalNetworkPolicies and 50 tiers of a large cluster
        for every denial cost half a second each. A server that does not count says no.
        """
        page = self._client.get(resource.url(), {"limit": "1"}, timeout=timeout)
        items = page.get("items") or []
        meta = page.get("metadata") or {}
        remaining = meta.get("remainingItemCount")
        if meta.get("continue") and not isinstance(remaining, int):
            return False
        total = len(items) + (remaining if isinstance(remaining, int) else 0)
        with self._index.batch():
            records = self._records.get(resource.name)
            return records is not None and len(records) == total
