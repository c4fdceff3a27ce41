"""The indexed in-memory implementation of the cluster state the policies read.

Every source (manifest files, the API server's list+watch) feeds the same `IndexedState`, so a
decision costs the same dictionary lookups whichever source is behind it: O(1) in the number
of namespaces and policies in the cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import orjson

from webhook.policy import isolation
from webhook.policy.model import Namespace, Obj, PolicyKey, PolicyRef, Providers
from webhook.policy.objects import (
    CALICO_STAGED,
    GLOBAL_FLAVORS,
    NAMESPACED_FLAVORS,
    flavor_of,
    ref_of,
)

# A namespaced policy is held as its JSON encoding: a third of the memory of the parsed
# object (SPEC §6: under 1 KiB per policy), decoded only when a namespace's providers are
# recomputed or a policy change is judged, never on a cached decision.
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
    """Namespaces and network policies by namespace, with memoised providers (a ClusterState).

    Thread-safe: gunicorn's gthread workers read it from many threads while a watch (or a
    reload) writes it. Readers get snapshots (tuples), never live containers.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._namespaces: dict[str, Namespace] = {}
        self._namespaced: dict[str, dict[PolicyKey, Stored]] = {}
        self._global: dict[PolicyKey, Obj] = {}
        self._global_snapshot: tuple[Obj, ...] = ()
        self._providers: dict[str, Providers] = {}

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

    def providers(self, namespace: str) -> Providers:
        cached = self._providers.get(namespace)
        if cached is not None:
            return cached
        with self._lock:
            ns = self._namespaces.get(namespace) or Namespace.unknown(namespace)
            policies = [_expand(s) for s in self._namespaced.get(namespace, {}).values()]
            result = isolation.providers_for(ns, policies, self._global_snapshot)
            self._providers[namespace] = result
            return result

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
                    self._providers.pop(ns.name, None)
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
                self._providers.pop(namespace, None)

    def remove(self, obj: Obj) -> None:
        with self._lock:
            if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                name = str((obj.get("metadata") or {}).get("name") or "")
                self._namespaces.pop(name, None)
                self._namespaced.pop(name, None)
                self._providers.pop(name, None)
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
                    self._providers.pop(namespace, None)

    def remove_namespace_only(self, name: str) -> None:
        """Forget a Namespace but not its policies.

        For a source whose policies leave through their own deletes (the live cache's watches):
        dropping them with the Namespace would race with those when a namespace is deleted and
        re-created under the same name.
        """
        with self._lock:
            self._namespaces.pop(name, None)
            self._providers.pop(name, None)

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
            self._providers = {}

    def _global_changed(self) -> None:
        self._global_snapshot = tuple(self._global.values())
        # A global policy can cover any namespace: every memoised answer is now suspect.
        self._providers = {}

    @staticmethod
    def _locate(obj: Obj) -> tuple[str | None, PolicyKey] | None:
        flavor = flavor_of(obj)
        if flavor is None or flavor == CALICO_STAGED:
            return None
        ref: PolicyRef = ref_of(obj, flavor)
        key = ref.key
        if flavor in GLOBAL_FLAVORS:
            return None, key
        if flavor in NAMESPACED_FLAVORS and ref.namespace:
            return ref.namespace, key
        return None
