"""What the scale benchmark puts in the API server, and how it gets there fast.

The cluster (SPEC §6 "Scale": 100,000 namespaces, 300,000 policies; 2.6: 1,000
GlobalNetworkPolicies and 50 tiers), for N namespaces `ns-NNNNNN` (labels `team` t0..t49 and
`env`):
- per namespace a Kubernetes NetworkPolicy: the default-deny (both directions) in 3 of 4
  namespaces, else an allow rule for `app: web` from `role: frontend` (those namespaces have no
  default-deny: their pods are denied); a Kubernetes NetworkPolicy allowing metrics scrapes
  from `monitoring`; a Calico NetworkPolicy (crd.projectcalico.org/v1) allowing DNS egress;
- 50 Calico Tiers (orders 10..500, every other one's defaultAction Pass, the others Deny);
- 1,000 Calico GlobalNetworkPolicies, each in one tier, selecting the namespaces of one team and
  pods of one role, allowing ingress on a port.
The Calico policy is left out of the last 1,050 namespaces, so that N namespaces hold exactly
3N policies, tiers included (300,000 for 100,000).

Two ways in:
- `etcd` (the default): the tiers and global policies are created through the API server; for
  every other shape (a Namespace, each namespaced policy) one exemplar is created through the
  API server and read back, and every object of that shape is that exemplar with its name,
  namespace, uid and labels changed (the spec is the same for all of a shape: defaulted and
  validated by the API server once), written into etcd in transactions of 128 keys under the
  key the API server itself uses. The API server's watch on etcd delivers them to its cache as
  any write would; Guardrail reads them only through the API server (list, watch), exactly as
  objects created through it: the same JSON, managedFields included. This is how a restore
  puts objects back, and it takes a minute where the API takes most of an hour on 2 cores.
- `api`: every object POSTed through the API server by concurrent keep-alive clients.
"""

from __future__ import annotations

import base64
import concurrent.futures
import copy
import datetime
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import urllib3
import workload

TEAMS = 50
TIERS = 50
GLOBALS = 1000
ROLES = 20
CALICO = "crd.projectcalico.org/v1"
K8S = "networking.k8s.io/v1"
TXN_OPS = 128  # etcd's default --max-txn-ops


def ns_name(i: int) -> str:
    return f"ns-{i:06d}"


def has_own_default_deny(i: int) -> bool:
    return i % 4 != 3


def without_calico_policy(i: int, namespaces: int) -> bool:
    # 3N policies in all: the tiers and global policies take the place of 1,050 Calico ones.
    return i >= namespaces - min(TIERS + GLOBALS, namespaces)


def policy_count(namespaces: int) -> int:
    return 3 * namespaces - min(TIERS + GLOBALS, namespaces) + TIERS + GLOBALS


def namespace(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns_name(i),
            "labels": {
                "kubernetes.io/metadata.name": ns_name(i),
                "team": f"t{i % TEAMS}",
                "env": "prod" if i % 2 else "dev",
            },
        },
    }


# shape -> (apiVersion, name, spec): the throughput benchmark's policies (bench/workload.py),
# the Calico one as its CRD (the cluster has no Calico API server).
SPECS: dict[str, tuple[str, str, dict[str, Any]]] = {
    shape: (api, obj["metadata"]["name"], obj["spec"])
    for shape, api, obj in (
        ("default-deny", K8S, workload.k8s_default_deny("")),
        ("allow-web", K8S, workload.k8s_allow_web("")),
        ("allow-metrics", K8S, workload.k8s_allow_metrics("")),
        ("allow-dns", CALICO, workload.calico_allow_dns("")),
    )
}


def policy(shape: str, ns: str) -> dict[str, Any]:
    api, name, spec = SPECS[shape]
    return {
        "apiVersion": api,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": copy.deepcopy(spec),
    }


def shapes_of(i: int, namespaces: int) -> list[str]:
    shapes = ["default-deny" if has_own_default_deny(i) else "allow-web", "allow-metrics"]
    if not without_calico_policy(i, namespaces):
        shapes.append("allow-dns")
    return shapes


def tiers() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": CALICO,
            "kind": "Tier",
            "metadata": {"name": f"tier-{t:02d}"},
            "spec": {"order": 10 * (t + 1), "defaultAction": "Pass" if t % 2 else "Deny"},
        }
        for t in range(TIERS)
    ]


def global_policies() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": CALICO,
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"tier-{g % TIERS:02d}.g{g}"},
            "spec": {
                "tier": f"tier-{g % TIERS:02d}",
                "order": g,
                "namespaceSelector": f"team == 't{g % TEAMS}'",
                "selector": f"role == 'r{g % ROLES}'",
                "types": ["Ingress"],
                "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [80]}}],
            },
        }
        for g in range(GLOBALS)
    ]


def collection(obj: dict[str, Any]) -> str:
    """The API path objects like obj are created under."""
    api = str(obj["apiVersion"])
    plural = {"Namespace": "namespaces", "Tier": "tiers"}.get(obj["kind"])
    if plural is None:
        plural = (
            "globalnetworkpolicies" if obj["kind"] == "GlobalNetworkPolicy" else "networkpolicies"
        )
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    ns = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{ns}/{plural}" if ns else f"{base}/{plural}"


def etcd_key(obj: dict[str, Any]) -> str:
    """Where the API server keeps obj in etcd (built-in kinds by resource, CRDs by group too)."""
    meta = obj["metadata"]
    api = str(obj["apiVersion"])
    if obj["kind"] == "Namespace":
        return f"/registry/namespaces/{meta['name']}"
    if api == K8S:
        return f"/registry/networkpolicies/{meta['namespace']}/{meta['name']}"
    group = api.split("/", maxsplit=1)[0]
    return f"/registry/{group}/networkpolicies/{meta['namespace']}/{meta['name']}"


# -- writing --------------------------------------------------------------------------------------
class Api:
    """Keep-alive HTTPS clients of the API server, one connection per thread."""

    def __init__(self, server: str, token: str, ca_file: str) -> None:
        host, _, port = server.removeprefix("https://").rpartition(":")
        self.host, self.port, self.ca_file = host, int(port), ca_file
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._local = threading.local()

    def pool(self) -> urllib3.HTTPSConnectionPool:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = urllib3.HTTPSConnectionPool(
                self.host,
                self.port,
                maxsize=1,
                ca_certs=self.ca_file,
                cert_reqs="CERT_REQUIRED",
                assert_hostname=False,
                retries=False,
                timeout=urllib3.Timeout(connect=10, read=60),
            )
            self._local.pool = pool
        return pool

    def request(
        self, method: str, path: str, body: Any = None, content_type: str | None = None
    ) -> tuple[int, Any]:
        headers = (
            self.headers if content_type is None else {**self.headers, "Content-Type": content_type}
        )
        for attempt in range(6):
            try:
                response = self.pool().request(
                    method,
                    path,
                    body=orjson.dumps(body) if body is not None else None,
                    headers=headers,
                )
            except (urllib3.exceptions.HTTPError, OSError):
                if attempt == 5:
                    raise
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status == 429 or response.status >= 500:
                time.sleep(0.2 * 2**attempt)
                continue
            data = orjson.loads(response.data) if response.data else None
            return response.status, data
        return response.status, None

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        status, data = self.request("POST", collection(obj), obj)
        if status == 409:  # already there (a rerun into the same cluster)
            _, data = self.request("GET", f"{collection(obj)}/{obj['metadata']['name']}")
        elif status != 201:
            raise RuntimeError(f"POST {collection(obj)}: HTTP {status}: {data}")
        return dict(data)

    def count(self, path: str) -> int:
        """Objects in a collection, from one list call (limit 1: the rest is counted)."""
        status, data = self.request("GET", f"{path}?limit=1")
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {data}")
        meta = data.get("metadata") or {}
        return len(data.get("items") or []) + int(meta.get("remainingItemCount") or 0)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Etcd:
    """etcd's JSON gateway (v3), puts in transactions of TXN_OPS keys."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def _pool(self) -> urllib3.HTTPConnectionPool:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = urllib3.connection_from_url(self.url, maxsize=1, retries=False)
            self._local.pool = pool
        return pool

    def put_all(self, pairs: list[tuple[str, bytes]]) -> None:
        self.txn([(key, value) for key, value in pairs])

    def txn(self, ops: list[tuple[str, bytes | None]]) -> None:
        """One transaction: a put for (key, value), a delete for (key, None)."""
        body = orjson.dumps(
            {
                "success": [
                    {"requestPut": {"key": _b64(key.encode()), "value": _b64(value)}}
                    if value is not None
                    else {"requestDeleteRange": {"key": _b64(key.encode())}}
                    for key, value in ops
                ]
            }
        )
        for attempt in range(6):
            response = self._pool().request("POST", f"{self.url}/v3/kv/txn", body=body)
            if response.status == 200:
                return
            time.sleep(0.2 * 2**attempt)
        raise RuntimeError(f"etcd txn: HTTP {response.status}: {response.data[:300]!r}")


class Exemplars:
    """One real object per shape, created through the API server as it stores it: every other
    object of the shape is a copy of it (the first namespace, the first policy of each shape)."""

    def __init__(self, api: Api, namespaces: int) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.keys: set[str] = set()
        wanted = set(SPECS)
        for i in range(namespaces):
            shapes = wanted & set(shapes_of(i, namespaces))
            if i == 0 or shapes:
                self._create(api, "namespace", namespace(i))
            for shape in shapes:
                wanted.discard(shape)
                self._create(api, shape, policy(shape, ns_name(i)))
            if not wanted:
                break

    def _create(self, api: Api, shape: str, obj: dict[str, Any]) -> None:
        stored = api.create(obj)
        self.stored.setdefault(shape, stored)
        self.keys.add(etcd_key(obj))


def as_stored(
    exemplar: dict[str, Any], obj: dict[str, Any], now: str, uid: str | None = None
) -> bytes:
    """The exemplar (as the API server stored it) renamed, relabelled and re-identified as obj."""
    stored = dict(exemplar)  # shallow: only metadata is replaced
    meta = dict(exemplar["metadata"])
    meta.pop("resourceVersion", None)  # etcd's revision is the version
    meta["name"] = obj["metadata"]["name"]
    if "namespace" in obj["metadata"]:
        meta["namespace"] = obj["metadata"]["namespace"]
    if "labels" in obj["metadata"]:
        meta["labels"] = obj["metadata"]["labels"]
    meta["uid"] = uid or str(uuid.uuid4())
    meta["creationTimestamp"] = now
    stored["metadata"] = meta
    return orjson.dumps(stored)


def namespaced_objects(namespaces: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(shape, object) for every namespace, then every namespaced policy."""
    for i in range(namespaces):
        yield "namespace", namespace(i)
    for i in range(namespaces):
        for shape in shapes_of(i, namespaces):
            yield shape, policy(shape, ns_name(i))


def create_all(  # noqa: PLR0915 - both ways in, with progress
    api: Api,
    etcd: Etcd | None,
    namespaces: int,
    *,
    clients: int = 8,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Create the whole cluster; `etcd` None: every object through the API server."""
    started = time.perf_counter()
    figures: dict[str, float] = {}
    # Tiers first (a tiered policy names its tier), then the global policies: through the API.
    for obj in tiers():
        api.create(obj)
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(api.create, global_policies()))
    figures["globals_s"] = time.perf_counter() - started
    total = namespaces + sum(len(shapes_of(i, namespaces)) for i in range(namespaces))
    done = [0]
    lock = threading.Lock()
    last_log = [time.monotonic()]

    def progress(count: int) -> None:
        with lock:
            done[0] += count
            if time.monotonic() - last_log[0] >= 10:
                last_log[0] = time.monotonic()
                rate = done[0] / (time.perf_counter() - bulk_started)
                log(f"created {done[0]:,} of {total:,} ({rate:,.0f}/s)")

    bulk_started = time.perf_counter()
    if etcd is None:

        def create_one(item: tuple[str, dict[str, Any]]) -> None:
            api.create(item[1])
            progress(1)

        # Namespaces before their policies: a policy in a namespace not yet created is refused.
        items = list(namespaced_objects(namespaces))
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            list(pool.map(create_one, items[:namespaces]))
            list(pool.map(create_one, items[namespaces:]))
    else:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def batches() -> Iterator[list[tuple[str, dict[str, Any]]]]:
            batch: list[tuple[str, dict[str, Any]]] = []
            for item in namespaced_objects(namespaces):
                batch.append(item)
                if len(batch) == TXN_OPS:
                    yield batch
                    batch = []
            if batch:
                yield batch

        def write(batch: list[tuple[str, dict[str, Any]]]) -> None:
            etcd.put_all(
                [
                    (key, as_stored(exemplars.stored[shape], obj, now))
                    for shape, obj in batch
                    if (key := etcd_key(obj)) not in exemplars.keys
                ]
            )
            progress(len(batch))

        exemplars = Exemplars(api, namespaces)
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            # Bounded in flight: the generator is not materialised.
            pending: set[concurrent.futures.Future[None]] = set()
            for batch in batches():
                pending.add(pool.submit(write, batch))
                if len(pending) >= clients * 4:
                    finished, pending = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                    for future in finished:
                        future.result()
            for future in concurrent.futures.as_completed(pending):
                future.result()
    figures["bulk_s"] = time.perf_counter() - bulk_started
    figures["objects"] = total + TIERS + GLOBALS
    figures["create_s"] = time.perf_counter() - started
    return figures


def expected_counts(namespaces: int) -> dict[str, int]:
    calico = sum(1 for i in range(namespaces) if not without_calico_policy(i, namespaces))
    return {
        "/api/v1/namespaces": namespaces,
        f"/apis/{K8S}/networkpolicies": 2 * namespaces,
        f"/apis/{CALICO}/networkpolicies": calico,
        f"/apis/{CALICO}/globalnetworkpolicies": GLOBALS,
        f"/apis/{CALICO}/tiers": TIERS,
    }


def wait_counts(api: Api, namespaces: int, timeout: float = 600) -> dict[str, int]:
    """Wait until the API server serves every object created (its cache has caught up)."""
    expected = expected_counts(namespaces)
    deadline = time.monotonic() + timeout
    while True:
        # A namespace the cluster had before (default, kube-system, ...) counts too.
        got = {path: api.count(path) for path in expected}
        base = got["/api/v1/namespaces"] - expected["/api/v1/namespaces"]
        if all(got[p] >= n for p, n in expected.items()) and 0 <= base <= 8:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API server serves {got}, expected {expected}")
        time.sleep(1)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2)
