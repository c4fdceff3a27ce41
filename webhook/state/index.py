"""The indexed in-memory implementation of the cluster state the policies read.

Every source (manifest files, the API server's list+watch) feeds the same `IndexedState`, so a
decision costs the same dictionary lookups whichever source is behind it: O(1) in the number
of namespaces and policies in the cluster.

Each namespace is one record: the Namespace (labels, whether it is terminating) and its
network policies, held together as one compact JSON encoding (a third of the memory of the
parsed objects; SPEC §6: under 1 KiB per policy), decoded only when the namespace's view is
rebuilt, its policies are read, or it changes. One object per namespace matters where workers
share a state read before they were forked (`serve`): CPython writes an object's reference
count whenever it is read, which copies the memory page holding it, and a namespace spread
over a dozen small objects would cost a dozen copied pages the first time each worker judged
something there.

The isolation engine's forms are built lazily and memoised: cluster-scoped policies and tiers
are compiled once into a stack (again after any of them changes); a namespace's own policies
are compiled, and its view built, the first time a decision there needs them (again after one
of them, or the namespace's labels, changes). A namespace nobody asks about costs only its
record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import orjson

from webhook.policy.engine import (
    CompiledPolicy,
    NamespaceView,
    PolicyStack,
    build_stack,
    compile_object,
)
from webhook.policy.model import Namespace, Obj, PolicyKey, PolicyRef
from webhook.policy.objects import (
    CALICO_STAGED,
    GLOBAL_FLAVORS,
    NAMESPACED_FLAVORS,
    flavor_of,
    meta_of,
    ref_of,
)


class _Record:
    """One namespace, decoded: its Namespace (None when only its policies are known) and its
    policies by key. Only ever held briefly, or by a batch being written."""

    __slots__ = ("namespace", "policies")

    def __init__(self, namespace: Namespace | None, policies: dict[PolicyKey, Obj]) -> None:
        self.namespace = namespace
        self.policies = policies

    def empty(self) -> bool:
        return self.namespace is None and not self.policies


# A record as held: its JSON encoding, or the record itself when some object in it is not
# JSON-shaped (never from the API server or a manifest).
Stored = bytes | _Record


def _encode(record: _Record) -> Stored:
    ns = record.namespace
    try:
        encoded = orjson.dumps(
            [
                None if ns is None else [dict(ns.labels), ns.terminating],
                [[*key, obj] for key, obj in record.policies.items()],
            ],
            option=orjson.OPT_NON_STR_KEYS,
        )
    except TypeError:
        return _Record(ns, dict(record.policies))
    # orjson's result keeps its 4 KiB working buffer: copy it into an exact-size bytes.
    return bytes(memoryview(encoded))


def _decode(name: str, stored: Stored) -> _Record:
    if isinstance(stored, _Record):
        return _Record(stored.namespace, dict(stored.policies))
    ns_part, policies = orjson.loads(stored)
    namespace = (
        None
        if ns_part is None
        else Namespace(name=name, labels=ns_part[0], terminating=bool(ns_part[1]))
    )
    return _Record(namespace, {(k0, k1, k2): obj for k0, k1, k2, obj in policies})


class IndexedState:
    """Namespaces and network policies by namespace, with memoised views (a ClusterState).

    Thread-safe: gunicorn's gthread workers read it from many threads while a watch (or a
    reload) writes it. Readers get snapshots (tuples), never live containers.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, Stored] = {}
        # Records being written by the current batch, decoded; encoded when it ends.
        self._pending: dict[str, _Record] = {}
        self._depth = 0
        # Namespaces decoded for readers: what a decision asks for is a dictionary lookup.
        self._known: dict[str, Namespace] = {}
        self._namespace_count = 0
        self._policy_count = 0
        self._global: dict[PolicyKey, Obj] = {}
        self._global_snapshot: tuple[Obj, ...] = ()
        self._global_stack: PolicyStack | None = None
        self._views: dict[str, tuple[PolicyStack, NamespaceView]] = {}

    # -- records ---------------------------------------------------------------------------
    def _record(self, name: str) -> _Record | None:
        """The namespace's record, decoded (caller holds the lock)."""
        pending = self._pending.get(name)
        if pending is not None:
            return pending
        stored = self._records.get(name)
        return None if stored is None else _decode(name, stored)

    def _writable(self, name: str, decoded: _Record | None = None) -> _Record:
        """The namespace's record to change within the current batch (caller holds the lock);
        `decoded`: what `_record` just returned for it."""
        record = self._pending.get(name)
        if record is None:
            record = decoded or self._record(name) or _Record(None, {})
            self._pending[name] = record
        self._known.pop(name, None)
        self._views.pop(name, None)
        return record

    def _flush(self) -> None:
        for name, record in self._pending.items():
            if record.empty():
                self._records.pop(name, None)
            else:
                self._records[name] = _encode(record)
        self._pending = {}

    # -- reads (ClusterState) -------------------------------------------------------------
    def namespace(self, name: str) -> Namespace | None:
        known = self._known.get(name)
        if known is not None:
            return known
        with self._lock:
            record = self._record(name)
            if record is None or record.namespace is None:
                return None
            if name not in self._pending:
                self._known[name] = record.namespace
            return record.namespace

    def namespaces(self) -> Iterable[Namespace]:
        with self._lock:
            found = []
            # In the order the namespaces were first stored (what reports list first).
            names = [*self._records, *(n for n in self._pending if n not in self._records)]
            for name in names:
                ns = self._known.get(name)
                if ns is None:
                    record = self._record(name)
                    ns = record.namespace if record is not None else None
                if ns is not None:
                    found.append(ns)
            return tuple(found)

    def policies_in(self, namespace: str) -> Sequence[Obj]:
        with self._lock:
            record = self._record(namespace)
        return tuple(record.policies.values()) if record is not None else ()

    def global_policies(self) -> Sequence[Obj]:
        return self._global_snapshot

    def stack(self, namespace: str) -> PolicyStack:
        return self._memo(namespace)[0]

    def view(self, namespace: str) -> NamespaceView:
        return self._memo(namespace)[1]

    def _memo(self, namespace: str) -> tuple[PolicyStack, NamespaceView]:
        cached = self._views.get(namespace)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._views.get(namespace)
            if cached is not None:
                return cached
            record = self._record(namespace)
            ns = (record.namespace if record is not None else None) or Namespace.unknown(namespace)
            own: list[CompiledPolicy] = []
            for obj in record.policies.values() if record is not None else ():
                compiled = compile_object(obj, namespace)
                if isinstance(compiled, CompiledPolicy):
                    own.append(compiled)
            stack = self._globals().with_changes(add=own, homes=(namespace,))
            cached = (stack, stack.for_namespace(ns))
            self._views[namespace] = cached
            return cached

    def _globals(self) -> PolicyStack:
        stack = self._global_stack
        if stack is None:
            stack = self._global_stack = build_stack(self._global_snapshot)
        return stack

    def compile_globals(self) -> None:
        """Compile the cluster-scoped policies and tiers now rather than at the first decision
        (the master before it forks: its workers then share one compiled stack)."""
        with self._lock:
            self._globals()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "namespaces": self._namespace_count,
                "policies": self._policy_count + len(self._global),
            }

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, obj: Obj) -> None:
        """Add or replace a Namespace or a network policy; other kinds are ignored."""
        with self.batch():
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                ns = Namespace.from_object(obj)
                if ns.name:
                    record = self._writable(ns.name)
                    self._namespace_count += record.namespace is None
                    record.namespace = ns
                return
            located = self._locate(obj)
            if located is None:
                return
            namespace, key = located
            if namespace is None:
                self._global[key] = obj
                self._global_changed()
            else:
                record = self._writable(namespace)
                self._policy_count += key not in record.policies
                record.policies[key] = obj

    def remove(self, obj: Obj) -> None:
        with self.batch():
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                name = str((obj.get("metadata") or {}).get("name") or "")
                if name in self._records or name in self._pending:
                    record = self._writable(name)
                    self._namespace_count -= record.namespace is not None
                    self._policy_count -= len(record.policies)
                    record.namespace, record.policies = None, {}
                return
            located = self._locate(obj)
            if located is None:
                return
            namespace, key = located
            if namespace is None:
                if self._global.pop(key, None) is not None:
                    self._global_changed()
            else:
                existing = self._record(namespace)
                if existing is not None and key in existing.policies:
                    del self._writable(namespace, existing).policies[key]
                    self._policy_count -= 1

    def remove_namespace_only(self, name: str) -> None:
        """Forget a Namespace but not its policies.

        For a source whose policies leave through their own deletes (the live cache's watches):
        dropping them with the Namespace would race with those when a namespace is deleted and
        re-created under the same name.
        """
        with self.batch():
            existing = self._record(name)
            if existing is not None and existing.namespace is not None:
                self._writable(name, existing).namespace = None
                self._namespace_count -= 1

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the write lock across several writes, and the caller's record of them.

        Readers see all of the batch or none of it (a resync's removals and additions at once),
        and a writer's own bookkeeping cannot disagree with what the index holds. Each record
        the batch changes is encoded once, when the batch ends.
        """
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._flush()

    def replace_all(self, objs: Iterable[Obj]) -> None:
        """Swap the whole content at once (a resync or a reload), readers never see a mix."""
        fresh = IndexedState()
        with fresh.batch():
            for obj in objs:
                fresh.upsert(obj)
        with self._lock:
            self._records = fresh._records
            self._pending = {}
            self._known = {}
            self._namespace_count = fresh._namespace_count
            self._policy_count = fresh._policy_count
            self._global = fresh._global
            self._global_snapshot = fresh._global_snapshot
            self._global_stack = None
            self._views = {}

    def _global_changed(self) -> None:
        self._global_snapshot = tuple(self._global.values())
        # A global policy or tier can cover any namespace: every memoised view is now suspect.
        self._global_stack = None
        self._views = {}

    @staticmethod
    def _locate(obj: Obj) -> tuple[str | None, PolicyKey] | None:
        flavor = flavor_of(obj)
        if flavor is None or flavor == CALICO_STAGED:
            return None
        ref: PolicyRef = ref_of(obj, flavor)
        # One object seen under two names or API groups (Calico's v3 and v1 spellings) is one
        # object: key by uid when there is one.
        uid = meta_of(obj).get("uid")
        key = ("uid", str(uid), "") if isinstance(uid, str) and uid else ref.key
        if flavor in GLOBAL_FLAVORS:
            return None, key
        if flavor in NAMESPACED_FLAVORS and ref.namespace:
            return ref.namespace, key
        return None
