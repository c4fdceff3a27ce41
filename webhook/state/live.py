"""Cluster state from the API server: list+watch into an IndexedState.

One watcher thread per resource (namespaces, NetworkPolicies, Calico policies, admin network
policies where served) lists, then watches from the list's resourceVersion; a 410 Gone or a
broken stream relists, failures back off exponentially, and a periodic resync relists anyway
so a missed event cannot live forever. Decisions never wait on it: they read the index.

The HTTP client is urllib3 (which the kubernetes package already depends on), configured from
the kubernetes package's kubeconfig / in-cluster loaders: they handle every auth method and
token refresh, while the raw client lets us parse with orjson and bound every read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3

from webhook.errors import GuardrailError
from webhook.policy import isolation
from webhook.policy.model import Namespace, Obj, Providers
from webhook.state.base import IndexedState

log = logging.getLogger("guardrail.state")

CONFIRM_TIMEOUT_SECONDS = 2.0
WATCH_TIMEOUT_SECONDS = 290  # server-side; the client read timeout is a little longer
RESYNC_SECONDS = 600.0
BACKOFF_MAX_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Resource:
    """One listable, watchable collection."""

    name: str  # for metrics and logs, e.g. "networkpolicies.networking.k8s.io"
    api_path: str  # "/api/v1" or "/apis/GROUP/VERSION"
    plural: str
    kind: str  # the kind of items (lists omit kind/apiVersion on items)
    api_version: str
    namespaced: bool

    def url(self, namespace: str | None = None) -> str:
        if namespace is not None and self.namespaced:
            return f"{self.api_path}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{self.api_path}/{self.plural}"


NAMESPACES = Resource("namespaces", "/api/v1", "namespaces", "Namespace", "v1", False)
K8S_POLICIES = Resource(
    "networkpolicies.networking.k8s.io",
    "/apis/networking.k8s.io/v1",
    "networkpolicies",
    "NetworkPolicy",
    "networking.k8s.io/v1",
    True,
)


def _calico(group: str, version: str) -> tuple[Resource, Resource]:
    api = f"{group}/{version}"
    return (
        Resource(
            f"networkpolicies.{group}",
            f"/apis/{api}",
            "networkpolicies",
            "NetworkPolicy",
            api,
            True,
        ),
        Resource(
            f"globalnetworkpolicies.{group}",
            f"/apis/{api}",
            "globalnetworkpolicies",
            "GlobalNetworkPolicy",
            api,
            False,
        ),
    )


ANP_API = "policy.networking.k8s.io/v1alpha1"
ADMIN_POLICIES = (
    Resource(
        "adminnetworkpolicies",
        f"/apis/{ANP_API}",
        "adminnetworkpolicies",
        "AdminNetworkPolicy",
        ANP_API,
        False,
    ),
    Resource(
        "baselineadminnetworkpolicies",
        f"/apis/{ANP_API}",
        "baselineadminnetworkpolicies",
        "BaselineAdminNetworkPolicy",
        ANP_API,
        False,
    ),
)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class KubeClient:
    """A small JSON client for the API server, built from the kubernetes package's config."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config  # noqa: PLC0415 - heavy import, live mode only

        configuration = client.Configuration()
        try:
            if kubeconfig is None:
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except config.ConfigException:
                    config.load_kube_config(context=context, client_configuration=configuration)
            else:
                config.load_kube_config(
                    config_file=kubeconfig, context=context, client_configuration=configuration
                )
        except (config.ConfigException, OSError) as exc:
            raise GuardrailError(f"cannot load Kubernetes client configuration: {exc}") from exc
        self._config = configuration
        self.host = str(configuration.host).rstrip("/")
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            cert_reqs="CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE",
            ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            assert_hostname=configuration.assert_hostname,
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "guardrail"}
        token = self._config.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        return headers

    def get(
        self, path: str, params: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        url = self.host + path + (f"?{urlencode(params)}" if params else "")
        response = self._pool.request(
            "GET",
            url,
            headers=self._headers(),
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )
        if response.status >= 400:
            raise ApiError(response.status, response.data[:300].decode("utf-8", "replace"))
        data = orjson.loads(response.data)
        if not isinstance(data, dict):
            raise ApiError(response.status, "response is not a JSON object")
        return data

    def exists(self, path: str) -> bool:
        try:
            self.get(path, timeout=10.0)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def stream(
        self, path: str, params: Mapping[str, str], read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        """Yield each JSON line of a watch response until the server closes it."""
        url = self.host + path + f"?{urlencode(params)}"
        response = self._pool.request(
            "GET",
            url,
            headers=self._headers(),
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(connect=10.0, read=read_timeout),
        )
        try:
            if response.status >= 400:
                raise ApiError(response.status, response.read(300).decode("utf-8", "replace"))
            buffer = b""
            for chunk in response.stream(64 * 1024):
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1 :]
                    if line.strip():
                        event = orjson.loads(line)
                        if isinstance(event, dict):
                            yield event
        finally:
            response.release_conn()


def discover(client: KubeClient) -> list[Resource]:
    """The resources this cluster serves: Calico through v3 when served, else its CRDs."""
    resources = [NAMESPACES, K8S_POLICIES]
    if client.exists("/apis/projectcalico.org/v3"):
        resources.extend(_calico("projectcalico.org", "v3"))
    elif client.exists("/apis/crd.projectcalico.org/v1"):
        group = client.get("/apis/crd.projectcalico.org/v1")
        plurals = {r.get("name") for r in group.get("resources", []) if isinstance(r, dict)}
        resources.extend(r for r in _calico("crd.projectcalico.org", "v1") if r.plural in plurals)
    if client.exists(f"/apis/{ANP_API}"):
        group = client.get(f"/apis/{ANP_API}")
        plurals = {r.get("name") for r in group.get("resources", []) if isinstance(r, dict)}
        resources.extend(r for r in ADMIN_POLICIES if r.plural in plurals)
    return resources


class Metrics:
    """Hooks the live state reports through; the server wires them to Prometheus."""

    def __init__(
        self,
        restart: Callable[[str], None] = lambda _resource: None,
        objects: Callable[[str, int], None] = lambda _resource, _count: None,
        contact: Callable[[], None] = lambda: None,
    ) -> None:
        self.restart = restart
        self.objects = objects
        self.contact = contact


class LiveState(IndexedState):
    """The IndexedState kept current by list+watch; `synced` once every resource was listed."""

    def __init__(
        self,
        client: KubeClient,
        *,
        resync_seconds: float = RESYNC_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._resync_seconds = resync_seconds
        self._metrics = metrics or Metrics()
        self._stop = threading.Event()
        self._resources: list[Resource] = []
        self._listed: set[str] = set()
        self._keys: dict[str, set[tuple[str, str]]] = {}
        self._synced = threading.Event()
        self._last_contact = 0.0
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(
            target=self._run_discovery, name="guardrail-discovery", daemon=True
        ).start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def age_seconds(self) -> float:
        """Seconds since the API server last answered a list or sent a watch event."""
        if not self._last_contact:
            return float("inf")
        return max(0.0, time.monotonic() - self._last_contact)

    def _run_discovery(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._resources = discover(self._client)
                break
            except Exception as exc:  # noqa: BLE001 - any failure: retry with backoff
                log.warning("discovery failed, retrying in %.1fs: %s", delay, exc)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
        for resource in self._resources:
            thread = threading.Thread(
                target=self._watch_forever,
                args=(resource,),
                name=f"guardrail-watch-{resource.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    # -- list + watch ----------------------------------------------------------------------
    def _watch_forever(self, resource: Resource) -> None:
        delay = 0.5
        version = ""
        next_resync = 0.0
        while not self._stop.is_set():
            try:
                if not version or time.monotonic() >= next_resync:
                    version = self._list(resource)
                    next_resync = time.monotonic() + self._resync_seconds
                    delay = 0.5
                version = self._watch(resource, version, next_resync)
            except Exception as exc:  # noqa: BLE001 - a watch must outlive any failure
                if isinstance(exc, ApiError) and exc.status == 410:
                    version = ""  # expired: relist at once
                    continue
                self._metrics.restart(resource.name)
                log.warning("watch of %s failed, retrying in %.1fs: %s", resource.name, delay, exc)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    def _list(self, resource: Resource) -> str:
        objs: list[Obj] = []
        params = {"limit": "500"}
        version = ""
        while True:
            page = self._client.get(resource.url(), params)
            for item in page.get("items") or []:
                if isinstance(item, dict):
                    item.setdefault("kind", resource.kind)
                    item.setdefault("apiVersion", resource.api_version)
                    objs.append(item)
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue")
            if not token:
                break
            params = {"limit": "500", "continue": str(token)}
        self._replace_resource(resource, objs)
        self._touch()
        self._listed.add(resource.name)
        if self._resources and all(r.name in self._listed for r in self._resources):
            self._synced.set()
        return version

    def _watch(self, resource: Resource, version: str, until: float) -> str:
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(
                int(max(1.0, min(WATCH_TIMEOUT_SECONDS, until - time.monotonic())))
            ),
        }
        for event in self._client.stream(
            resource.url(), params, read_timeout=WATCH_TIMEOUT_SECONDS + 30
        ):
            if self._stop.is_set():
                break
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            self._touch()
            if kind == "ERROR":
                raise ApiError(int(obj.get("code") or 500), str(obj.get("message") or ""))
            obj.setdefault("kind", resource.kind)
            obj.setdefault("apiVersion", resource.api_version)
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self._upsert_tracked(resource, obj)
            elif kind == "DELETED":
                self._remove_tracked(resource, obj)
        return version

    # -- bookkeeping of which objects came from which resource ---------------------------------
    @staticmethod
    def _key(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace") or ""), str(meta.get("name") or "")

    def _replace_resource(self, resource: Resource, objs: list[Obj]) -> None:
        with self._lock:
            old = self._keys.get(resource.name, set())
            fresh = {self._key(o) for o in objs}
            for namespace, name in old - fresh:
                self.remove(
                    {
                        "apiVersion": resource.api_version,
                        "kind": resource.kind,
                        "metadata": {"namespace": namespace, "name": name},
                    }
                )
            for obj in objs:
                self.upsert(obj)
            self._keys[resource.name] = fresh
        self._metrics.objects(resource.name, len(fresh))

    def _upsert_tracked(self, resource: Resource, obj: Obj) -> None:
        with self._lock:
            self.upsert(obj)
            keys = self._keys.setdefault(resource.name, set())
            keys.add(self._key(obj))
            count = len(keys)
        self._metrics.objects(resource.name, count)

    def _remove_tracked(self, resource: Resource, obj: Obj) -> None:
        with self._lock:
            self.remove(obj)
            keys = self._keys.setdefault(resource.name, set())
            keys.discard(self._key(obj))
            count = len(keys)
        self._metrics.objects(resource.name, count)

    def _touch(self) -> None:
        self._last_contact = time.monotonic()
        self._metrics.contact()

    # -- the negative-answer confirmation --------------------------------------------------------
    def confirm_providers(
        self, namespace: str, timeout: float = CONFIRM_TIMEOUT_SECONDS
    ) -> Providers | None:
        """Providers from a live read of the namespace's policies, or None when it fails.

        Called only before a default-deny denial, so that a policy applied a moment before the
        pod (one `kubectl apply -f dir/`) is honoured even if its watch event is still in
        flight. Global policies come from the cache: they change rarely.
        """
        deadline = time.monotonic() + timeout
        objs: list[Obj] = []
        try:
            for resource in self._resources:
                if not resource.namespaced or resource is NAMESPACES:
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                page = self._client.get(resource.url(namespace), timeout=remaining)
                for item in page.get("items") or []:
                    if isinstance(item, dict):
                        item.setdefault("kind", resource.kind)
                        item.setdefault("apiVersion", resource.api_version)
                        objs.append(item)
        except Exception as exc:  # noqa: BLE001 - fall back to the cache's answer
            log.warning("live confirmation for namespace %s failed: %s", namespace, exc)
            return None
        for obj in objs:
            self._upsert_tracked(self._resource_of(obj), obj)
        ns = self.namespace(namespace) or Namespace.unknown(namespace)
        return isolation.providers_for(ns, objs, self.global_policies())

    def _resource_of(self, obj: Obj) -> Resource:
        for resource in self._resources:
            if resource.kind == obj.get("kind") and resource.api_version == obj.get("apiVersion"):
                return resource
        return K8S_POLICIES
