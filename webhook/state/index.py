"""The indexed in-memory implementation of the cluster state the policies read.

Every source (manifest files, the API server's list+watch) feeds the same `IndexedState`, so a
decision costs the same dictionary lookups whichever source is behind it: O(1) in the number
of namespaces and policies in the cluster.

The isolation engine's forms are built lazily and memoised: cluster-scoped policies and tiers
are compiled once into a stack (again after any of them changes); a namespace's own policies
are compiled, and its view built, the first time a decision there needs them (again after one
of them, or the namespace's labels, changes). A namespace nobody asks about costs only its
compact JSON.
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

# A namespaced policy is held as its JSON encoding: a third of the memory of the parsed
# object (SPEC §6: under 1 KiB per policy), decoded only when a namespace's view is rebuilt
# or a policy change is judged, never on a cached decision.
Stored = bytes | Obj


def _compact(obj: Obj) -> Stored:
    try:
        # orjson's result keeps its 4 KiB working buffer: copy it into an exact-size bytes.
        return bytes(memoryview(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)))
    except TypeError:  # not JSON-shaped (never from the API server or a manifest): keep as is
        return obj


def _expand(stored: Stored) -> Obj:
    if isinstance(stored, bytes):
        loaded: Obj = orjson.loads(stored)
        return loaded
    return stored


class IndexedState:
    """Namespaces and network policies by namespace, with memoised views (a ClusterState).

    Thread-safe: gunicorn's gthread workers read it from many threads while a watch (or a
    reload) writes it. Readers get snapshots (tuples), never live containers.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._namespaces: dict[str, Namespace] = {}
        self._namespaced: dict[str, dict[PolicyKey, Stored]] = {}
        self._global: dict[PolicyKey, Obj] = {}
        self._global_snapshot: tuple[Obj, ...] = ()
        self._global_stack: PolicyStack | None = None
        self._views: dict[str, tuple[PolicyStack, NamespaceView]] = {}

    # -- reads (ClusterState) -------------------------------------------------------------
    def namespace(self, name: str) -> Namespace | None:
        return self._namespaces.get(name)

    def namespaces(self) -> Iterable[Namespace]:
        with self._lock:
            return tuple(self._namespaces.values())

    def policies_in(self, namespace: str) -> Sequence[Obj]:
        with self._lock:
            stored = tuple(self._namespaced.get(namespace, {}).values())
        return tuple(_expand(s) for s in stored)

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
            ns = self._namespaces.get(namespace) or Namespace.unknown(namespace)
            own: list[CompiledPolicy] = []
            for stored in self._namespaced.get(namespace, {}).values():
                compiled = compile_object(_expand(stored), namespace)
                if isinstance(compiled, CompiledPolicy):
                    own.append(compiled)
            stack = self._globals().with_changes(add=own, homes=(namespace,))
            cached = (stack, stack.for_namespace(ns))
            self._views[namespace] = cached
            return cached

    def _globals(self) -> PolicyStack:
        if self._global_stack is None:
            self._global_stack = build_stack(self._global_snapshot)
        return self._global_stack

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "namespaces": len(self._namespaces),
                "policies": sum(len(p) for p in self._namespaced.values()) + len(self._global),
            }

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, obj: Obj) -> None:
        """Add or replace a Namespace or a network policy; other kinds are ignored."""
        with self._lock:
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                ns = Namespace.from_object(obj)
                if ns.name:
                    self._namespaces[ns.name] = ns
                    self._views.pop(ns.name, None)
                return
            located = self._locate(obj)
            if located is None:
                return
            namespace, key = located
            if namespace is None:
                self._global[key] = obj
                self._global_changed()
            else:
                self._namespaced.setdefault(namespace, {})[key] = _compact(obj)
                self._views.pop(namespace, None)

    def remove(self, obj: Obj) -> None:
        with self._lock:
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                name = str((obj.get("metadata") or {}).get("name") or "")
                self._namespaces.pop(name, None)
                self._namespaced.pop(name, None)
                self._views.pop(name, None)
                return
            located = self._locate(obj)
            if located is None:
                return
            namespace, key = located
            if namespace is None:
                if self._global.pop(key, None) is not None:
                    self._global_changed()
            else:
                bucket = self._namespaced.get(namespace)
                if bucket is not None and bucket.pop(key, None) is not None:
                    self._views.pop(namespace, None)

    def remove_namespace_only(self, name: str) -> None:
        """Forget a Namespace but not its policies.

        For a source whose policies leave through their own deletes (the live cache's watches):
        dropping them with the Namespace would race with those when a namespace is deleted and
        re-created under the same name.
        """
        with self._lock:
            self._namespaces.pop(name, None)
            self._views.pop(name, None)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the write lock across several writes, and the caller's record of them.

        Readers see all of the batch or none of it (a resync's removals and additions at once),
        and a writer's own bookkeeping cannot disagree with what the index holds.
        """
        with self._lock:
            yield

    def replace_all(self, objs: Iterable[Obj]) -> None:
        """Swap the whole content at once (a resync or a reload), readers never see a mix."""
        fresh = IndexedState()
        for obj in objs:
            fresh.upsert(obj)
        with self._lock:
            self._namespaces = fresh._namespaces
            self._namespaced = fresh._namespaced
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
