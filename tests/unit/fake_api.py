"""An in-process stand-in for the API server's list and watch, for the live cache's unit tests.

It keeps collections of objects and one revision counter, as etcd does: every write is an event
at the next revision; a list is paginated and carries the revision it was read at (tests do not
write while a list is under way, so its pages are one snapshot); a watch from
a revision replays every later event of its collection, in order, then waits for more. Events
older than `compacted` answer 410 Gone, as after etcd's compaction. Each list and watch request
is recorded, so a test can say what a worker asked for.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from webhook.kube import CALICO_POLICIES, K8S_POLICIES, NAMESPACES, ApiError

RESOURCES = (NAMESPACES, K8S_POLICIES)
CALICO_CRD = CALICO_POLICIES["crd.projectcalico.org/v1"]


class FakeApi:
    """Namespaces and Kubernetes NetworkPolicies (Calico's CRDs too with `calico`)."""

    def __init__(self, *, calico: bool = False, page_size: int = 2, counts: bool = True) -> None:
        self.host = "https://fake"
        self.resources = RESOURCES + (CALICO_CRD if calico else ())
        self.page_size = page_size
        self.counts = counts  # lists say how many items remain (remainingItemCount)
        self.revision = 100
        self.compacted = 0  # watches from a revision below this answer 410 Gone
        self.objects: dict[str, dict[str, dict[str, Any]]] = {r.url(): {} for r in self.resources}
        self.events: list[tuple[int, str, str, dict[str, Any]]] = []  # (rev, url, type, obj)
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (verb, url, params)
        self.down = False  # every request fails as a refused connection would
        # 410 Gone as an ERROR event on an accepted stream (what the watch cache sends),
        # rather than as the HTTP status.
        self.gone_as_event = False
        # Cleared to hold every list until set again (a relist under way).
        self.lists_open = threading.Event()
        self.lists_open.set()
        # Set to hold every watch before it is accepted (the test releases it).
        self.accept = threading.Event()
        self.accept.set()
        self._changed = threading.Condition()

    # -- the cluster's writes ---------------------------------------------------------------
    def _url(self, obj: Mapping[str, Any]) -> str:
        for resource in self.resources:
            if resource.kind == obj["kind"] and resource.api_version == obj["apiVersion"]:
                return resource.url()
        raise KeyError(obj["kind"])

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace obj (a new uid when it did not exist); the stored copy."""
        with self._changed:
            url = self._url(obj)
            meta = obj["metadata"]
            key = f"{meta.get('namespace', '')}/{meta['name']}"
            old = self.objects[url].get(key)
            self.revision += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["uid"] = (
                old["metadata"]["uid"] if old is not None else str(uuid.uuid4())
            )
            stored["metadata"]["resourceVersion"] = str(self.revision)
            self.objects[url][key] = stored
            kind = "ADDED" if old is None else "MODIFIED"
            self.events.append((self.revision, url, kind, copy.deepcopy(stored)))
            self._changed.notify_all()
            return stored

    def delete(self, obj: Mapping[str, Any]) -> None:
        with self._changed:
            url = self._url(obj)
            meta = obj["metadata"]
            stored = self.objects[url].pop(f"{meta.get('namespace', '')}/{meta['name']}")
            self.revision += 1
            stored = copy.deepcopy(stored)
            stored["metadata"]["resourceVersion"] = str(self.revision)
            self.events.append((self.revision, url, "DELETED", stored))
            self._changed.notify_all()

    def compact(self) -> None:
        """Forget every event so far: watches from an older revision get 410 Gone."""
        with self._changed:
            self.compacted = self.revision + 1
            self._changed.notify_all()

    # -- the Client protocol ---------------------------------------------------------------
    def _check_up(self) -> None:
        if self.down:
            raise ConnectionRefusedError("the fake API server is down")

    def get(
        self, path: str, params: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        self._check_up()
        params = dict(params or {})
        if path.startswith("/apis/") and path.count("/") == 3:  # discovery of a group version
            served = [r for r in self.resources if r.api_path == path]
            if not served:
                raise ApiError(404, "not found")
            return {"resources": [{"name": r.plural} for r in served]}
        self.requests.append(("list", path, params))
        self.lists_open.wait()
        collection, namespace = path, None
        found = re.fullmatch(r"(/apis?/.+)/namespaces/([^/]+)/([^/]+)", path)
        if found is not None:
            collection, namespace = f"{found[1]}/{found[3]}", found[2]
        with self._changed:
            items = sorted(
                (key, obj)
                for key, obj in self.objects[collection].items()
                if namespace is None or key.startswith(f"{namespace}/")
            )
            start = int(params.get("continue") or 0)
            # Pages of page_size items when asked for a limit; everything at once when not.
            size = min(int(params["limit"]), self.page_size) if "limit" in params else len(items)
            size = max(size, 1)
            page = [copy.deepcopy(obj) for _key, obj in items[start : start + size]]
            meta: dict[str, Any] = {"resourceVersion": str(self.revision)}
            if start + size < len(items):
                meta["continue"] = str(start + size)
                if self.counts:
                    meta["remainingItemCount"] = len(items) - start - size
        return {"items": page, "metadata": meta}

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def stream(
        self,
        path: str,
        params: Mapping[str, str],
        read_timeout: float,
        opened: Callable[[], None] = lambda: None,
    ) -> Iterator[dict[str, Any]]:
        self._check_up()
        self.requests.append(("watch", path, dict(params)))
        self.accept.wait()
        self._check_up()
        since = int(params["resourceVersion"] or 0)
        if since < self.compacted - 1 and not self.gone_as_event:
            raise ApiError(410, "too old resource version")
        opened()
        if since < self.compacted - 1:
            yield {"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}
            return
        position = 0
        deadline = float(params.get("timeoutSeconds") or 1)
        waited = 0.0
        while True:
            with self._changed:
                pending = [
                    (rev, kind, obj)
                    for rev, url, kind, obj in self.events[position:]
                    if url == path and rev > since
                ]
                position = len(self.events)
                if not pending:
                    if waited >= deadline or self.down:
                        return
                    self._changed.wait(0.05)
                    waited += 0.05
                    continue
            for rev, kind, obj in pending:
                since = rev
                yield {"type": kind, "object": copy.deepcopy(obj)}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {}}}


def default_deny(namespace: str, name: str = "default-deny") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def global_deny_all(name: str = "deny-all") -> dict[str, Any]:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"selector": "all()", "types": ["Ingress", "Egress"]},
    }
