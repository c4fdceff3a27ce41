"""The one Kubernetes client: the `Client` protocol callers depend on, its errors, the
paginated list, the table of API resources guardrail reads, and discovery.

The HTTP client is urllib3 (which the kubernetes package already depends on), configured from
the kubernetes package's kubeconfig / in-cluster loaders: they handle every auth method and
token refresh, while the raw client lets us parse with orjson and bound every read.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, urlencode

import orjson
import urllib3

from webhook.policy.errors import GuardrailError

log = logging.getLogger("guardrail.state")

LIST_PAGE_SIZE = "500"
# What the cache keeps of an object's metadata: identity, the version the resync compares, and
# what the Namespace record reads (labels, deletionTimestamp).
CACHED_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "creationTimestamp",
    "deletionTimestamp",
)
# The one annotation the cache keeps: where crd.projectcalico.org/v1 objects carry their labels
# (and the v3 name). kubectl's last-applied annotation alone is the whole object again.
CALICO_METADATA_ANNOTATION = "projectcalico.org/metadata"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Client(Protocol):
    """What guardrail asks of the API server: reads, writes, watches (KubeClient is one)."""

    @property
    def host(self) -> str: ...

    def get(
        self, path: str, params: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]: ...

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]: ...

    def stream(
        self,
        path: str,
        params: Mapping[str, str],
        read_timeout: float,
        opened: Callable[[], None] = ...,
    ) -> Iterator[dict[str, Any]]: ...


# -- the resource table ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ApiResource:
    """One listable, watchable collection of the API server."""

    name: str  # for metrics, logs and progress, e.g. "networkpolicies.networking.k8s.io"
    api_path: str  # "/api/v1" or "/apis/GROUP/VERSION"
    plural: str
    kind: str  # the kind of items (lists omit kind/apiVersion on items)
    api_version: str
    namespaced: bool

    def url(self, namespace: str | None = None) -> str:
        if namespace is not None and self.namespaced:
            return f"{self.api_path}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{self.api_path}/{self.plural}"


NAMESPACES = ApiResource("namespaces", "/api/v1", "namespaces", "Namespace", "v1", False)
K8S_POLICIES = ApiResource(
    "networkpolicies.networking.k8s.io",
    "/apis/networking.k8s.io/v1",
    "networkpolicies",
    "NetworkPolicy",
    "networking.k8s.io/v1",
    True,
)


def _calico(group: str, version: str) -> tuple[ApiResource, ApiResource, ApiResource]:
    api = f"{group}/{version}"
    return (
        ApiResource(
            f"networkpolicies.{group}",
            f"/apis/{api}",
            "networkpolicies",
            "NetworkPolicy",
            api,
            True,
        ),
        ApiResource(
            f"globalnetworkpolicies.{group}",
            f"/apis/{api}",
            "globalnetworkpolicies",
            "GlobalNetworkPolicy",
            api,
            False,
        ),
        # Tiers order the policies and say what a tier does with what it does not decide.
        ApiResource(f"tiers.{group}", f"/apis/{api}", "tiers", "Tier", api, False),
    )


# Calico through its API server when served, else its CRDs: the first group served wins.
CALICO_APIS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
CALICO_POLICIES = {api: _calico(*api.split("/")) for api in CALICO_APIS}
ANP_API = "policy.networking.k8s.io/v1alpha1"
CNP_API = "policy.networking.k8s.io/v1alpha2"
CLUSTER_POLICIES = ApiResource(
    "clusternetworkpolicies",
    f"/apis/{CNP_API}",
    "clusternetworkpolicies",
    "ClusterNetworkPolicy",
    CNP_API,
    False,
)
ADMIN_POLICIES = (
    ApiResource(
        "adminnetworkpolicies",
        f"/apis/{ANP_API}",
        "adminnetworkpolicies",
        "AdminNetworkPolicy",
        ANP_API,
        False,
    ),
    ApiResource(
        "baselineadminnetworkpolicies",
        f"/apis/{ANP_API}",
        "baselineadminnetworkpolicies",
        "BaselineAdminNetworkPolicy",
        ANP_API,
        False,
    ),
)
# Everything that makes pods, from the top of the ownership chain down to pods (the audit
# orders its reports this way). Always served, so never discovered.
WORKLOADS = (
    ApiResource("deployments", "/apis/apps/v1", "deployments", "Deployment", "apps/v1", True),
    ApiResource("statefulsets", "/apis/apps/v1", "statefulsets", "StatefulSet", "apps/v1", True),
    ApiResource("daemonsets", "/apis/apps/v1", "daemonsets", "DaemonSet", "apps/v1", True),
    ApiResource("cronjobs", "/apis/batch/v1", "cronjobs", "CronJob", "batch/v1", True),
    ApiResource("jobs", "/apis/batch/v1", "jobs", "Job", "batch/v1", True),
    ApiResource("replicasets", "/apis/apps/v1", "replicasets", "ReplicaSet", "apps/v1", True),
    ApiResource(
        "replicationcontrollers",
        "/api/v1",
        "replicationcontrollers",
        "ReplicationController",
        "v1",
        True,
    ),
    ApiResource("pods", "/api/v1", "pods", "Pod", "v1", True),
)


def _served_plurals(client: Client, group_version: str) -> set[str] | None:
    """The resources a group version serves, or None when it is not served (or unavailable).

    An aggregated API (Calico's API server) that is registered but down answers 503: treated
    as not served, so the CRDs behind it are read instead of the whole cache waiting for it.
    """
    try:
        listing = client.get(f"/apis/{group_version}", timeout=10.0)
    except ApiError as exc:
        if exc.status == 404 or exc.status >= 500:
            if exc.status != 404:
                log.warning("API %s is registered but unavailable: %s", group_version, exc)
            return None
        raise
    return {
        str(r.get("name"))
        for r in listing.get("resources") or []
        if isinstance(r, dict) and "/" not in str(r.get("name"))
    }


def discover(client: Client) -> list[ApiResource]:
    """Namespaces and every policy collection this cluster serves (not the workload kinds)."""
    resources = [NAMESPACES, K8S_POLICIES]
    for api in CALICO_APIS:
        plurals = _served_plurals(client, api)
        if plurals is not None:
            resources.extend(r for r in CALICO_POLICIES[api] if r.plural in plurals)
            break
    plurals = _served_plurals(client, ANP_API)
    if plurals is not None:
        resources.extend(r for r in ADMIN_POLICIES if r.plural in plurals)
    plurals = _served_plurals(client, CNP_API)
    if plurals is not None and CLUSTER_POLICIES.plural in plurals:
        resources.append(CLUSTER_POLICIES)
    return resources


# -- reading --------------------------------------------------------------------------------------
def slim(
    obj: Mapping[str, Any],
    resource: ApiResource,
    metadata: Collection[str] | None = CACHED_METADATA,
) -> dict[str, Any]:
    """obj made whole (kind and apiVersion, which list items omit) and cut down.

    With `metadata` (the cache's default) only those metadata keys and the spec (a Namespace's
    status too) remain: the cache holds every policy of the cluster in every worker, and
    managedFields, kubectl's last-applied annotation (the whole object again) and owner
    references are most of an object's size and no policy reads them. The uid stays (one
    policy seen under two names is one policy), the creation time (the newest isolating policy
    is the one protect-default-deny keeps), and of the annotations only Calico's metadata
    one (crd.projectcalico.org/v1 objects keep their labels there). With None (the
    audit, whose reports name uids and owners) all of it remains but managedFields, often half
    an object's size.
    """
    meta = obj.get("metadata")
    kept: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion") or resource.api_version,
        "kind": obj.get("kind") or resource.kind,
    }
    if metadata is None:
        kept.update((k, v) for k, v in obj.items() if k not in kept)
        if isinstance(meta, dict):
            kept["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        return kept
    kept["metadata"] = {k: meta[k] for k in metadata if k in meta} if isinstance(meta, dict) else {}
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(annotations, dict) and CALICO_METADATA_ANNOTATION in annotations:
        kept["metadata"]["annotations"] = {
            CALICO_METADATA_ANNOTATION: annotations[CALICO_METADATA_ANNOTATION]
        }
    for part in ("spec", "status") if resource is NAMESPACES else ("spec",):
        if part in obj:
            kept[part] = obj[part]
    return kept


class Listed(NamedTuple):
    items: list[dict[str, Any]]
    resource_version: str  # of the list's snapshot; "" where the server gives none


class Page(NamedTuple):
    items: list[dict[str, Any]]
    resource_version: str  # of the list's snapshot so far; "" where the server gives none
    total: int | None  # items in the whole list, when the server says


def list_pages(
    client: Client,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    missing_ok: bool = False,
) -> Iterator[Page]:
    """A collection page by page (one consistent snapshot), each page as it arrives.

    A caller that keeps only what it needs of each page never holds the whole list: the live
    cache's list of 300,000 policies would be most of a gigabyte as parsed JSON. With
    `missing_ok`, a 404 (a kind the cluster does not serve) ends the list; else ApiError.
    """
    query = {**(params or {}), "limit": LIST_PAGE_SIZE}
    version = ""
    seen = 0
    while True:
        try:
            page = client.get(path, query, timeout=timeout)
        except ApiError as exc:
            if missing_ok and exc.status == 404:
                return
            raise
        items = [item for item in page.get("items") or () if isinstance(item, dict)]
        seen += len(items)
        meta = page.get("metadata") or {}
        version = str(meta.get("resourceVersion") or version)
        remaining = meta.get("remainingItemCount")
        token = meta.get("continue")
        yield Page(items, version, seen + remaining if isinstance(remaining, int) else None)
        if not token:
            return
        query = {**query, "continue": str(token)}


def list_all(
    client: Client,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    each: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item,
    progress: Callable[[int, int | None], None] = lambda _done, _total: None,
    missing_ok: bool = False,
) -> Listed:
    """Every item of a collection, page by page (one consistent snapshot), and its version.

    `each` is applied to every item as its page arrives, so only what it keeps is held;
    `progress` gets (items so far, total when the server says). With `missing_ok`, a 404 (a
    kind the cluster does not serve) ends the list with what was read; else ApiError.
    """
    items: list[dict[str, Any]] = []
    version = ""
    total: int | None = None
    for page in list_pages(client, path, params=params, timeout=timeout, missing_ok=missing_ok):
        items.extend(each(item) for item in page.items)
        version = page.resource_version
        total = page.total if page.total is not None else total
        progress(len(items), total)
    return Listed(items, version)


# -- the client -----------------------------------------------------------------------------------
# A watch on a quiet resource legitimately sends nothing for minutes (1.36 sent no bookmark in
# 200 s), so a read timeout cannot tell a dead peer from silence; TCP keepalive can: a peer gone
# without a reset (a node lost, a NAT entry dropped) is noticed in about a minute, not 320 s.
KEEPALIVE_SOCKET_OPTIONS = [
    *urllib3.connection.HTTPConnection.default_socket_options,
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    *(
        [
            (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30),
            (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10),
            (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
        ]
        if hasattr(socket, "TCP_KEEPIDLE")  # Linux; elsewhere the system's defaults apply
        else []
    ),
]


_warned_unverified: set[str] = set()


def _warn_unverified(host: str) -> None:
    """Say once per process and server that its certificate is not checked.

    urllib3 would say it on every request (a screenful for one audit, a line per watch event
    in a log), in its own words: its InsecureRequestWarning is silenced instead.
    """
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if host in _warned_unverified:
        return
    _warned_unverified.add(host)
    log.warning(
        "TLS verification is off for %s (insecure-skip-tls-verify in the kubeconfig): "
        "the API server's identity is not checked",
        host,
        extra={"fields": {"server": host, "event": "tls-verification-off"}},
    )


class KubeClient:
    """A small JSON client for the API server, built from the kubernetes package's config.

    Without `kubeconfig`: the in-cluster service account, else $KUBECONFIG / ~/.kube/config.
    """

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
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            # Name the file when one was given: the user's own mistake is then obvious.
            raise GuardrailError(
                f"cannot load Kubernetes client configuration: {exc}", kubeconfig or ""
            ) from exc
        self._config = configuration
        self.host = str(configuration.host).rstrip("/")
        if not configuration.verify_ssl:
            _warn_unverified(self.host)
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            socket_options=KEEPALIVE_SOCKET_OPTIONS,
            cert_reqs="CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE",
            ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            assert_hostname=configuration.assert_hostname,
        )

    def close(self) -> None:
        """Close every pooled connection (the next request opens a new one)."""
        self._pool.clear()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "guardrail"}
        # Calls the loader's refresh hook: projected service-account tokens rotate.
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

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """A write (POST, PUT, DELETE) with an optional JSON body; ApiError on HTTP errors.

        Used by the audit to keep its reports and its Lease; the webhook itself never writes.
        """
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = self._pool.request(
            method,
            self.host + path,
            body=orjson.dumps(body) if body is not None else None,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )
        if response.status >= 400:
            raise ApiError(response.status, response.data[:300].decode("utf-8", "replace"))
        data = orjson.loads(response.data) if response.data else {}
        return data if isinstance(data, dict) else {}

    def exists(self, path: str) -> bool:
        try:
            self.get(path, timeout=10.0)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def stream(
        self,
        path: str,
        params: Mapping[str, str],
        read_timeout: float,
        opened: Callable[[], None] = lambda: None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each JSON line of a watch response until the server closes it.

        `opened` is called once the server has accepted the watch (status 200).
        """
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
            opened()
            buffer = b""
            # Chunked responses are read chunk by chunk: each event as soon as it is flushed.
            for chunk in response.stream(64 * 1024):
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1 :]
                    if line.strip():
                        event = orjson.loads(line)
                        if isinstance(event, dict):
                            yield event
        finally:
            # A watch cut short must not go back to the pool half-read: close the connection
            # (one new connection per watch, every few minutes, costs nothing).
            response.close()
            response.release_conn()
