"""What the benchmarks feed Guardrail: cluster state, AdmissionReview bodies and manifests.

Everything is generated, deterministic and sized by arguments, so every run and every
machine judges the same work.

State mix per namespace `ns-NNNNN` (labels `team`, `env`):
- a Kubernetes NetworkPolicy: the default-deny (both directions) in 3 of 4 namespaces, else an
  ordinary allow rule (those namespaces have no default-deny unless a global policy gives one);
- a Calico NetworkPolicy allowing DNS egress for `app == 'web'`;
- a Kubernetes NetworkPolicy allowing metrics scrapes from the monitoring namespace;
plus GLOBAL_POLICIES Calico GlobalNetworkPolicies (one the documentation's default-deny for
team t7, the others ordinary rules), so that `namespaces * 3 + GLOBAL_POLICIES - 10` policies
are namespaced: 10,000 namespaces hold exactly 30,000 policies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

GLOBAL_POLICIES = 10


class Dumper(yaml.SafeDumper):
    """Writes manifests as people and kustomize do: shared dicts spelled out, no &anchors.

    (PyYAML would alias the label dicts the generator shares; real manifests carry no
    aliases, and `check` spends extra work proving an aliased document is no alias bomb.)
    """

    def ignore_aliases(self, data: object) -> bool:
        return True


TEAMS = 50
DEFAULT_DENY_TEAM = 7  # the team a GlobalNetworkPolicy isolates


def ns_name(i: int) -> str:
    return f"ns-{i:05d}"


def has_own_default_deny(i: int) -> bool:
    return i % 4 != 3


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


def _meta(name: str, ns: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns}


def k8s_default_deny(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("default-deny", ns),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def k8s_allow_web(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("allow-web", ns),
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}],
        },
    }


def k8s_allow_metrics(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("allow-metrics", ns),
        "spec": {
            "podSelector": {"matchLabels": {"role": "api"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": 9090}],
                }
            ],
        },
    }


def calico_allow_dns(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": _meta("allow-dns", ns),
        "spec": {
            "selector": "app == 'web'",
            "types": ["Egress"],
            "egress": [
                {
                    "action": "Allow",
                    "protocol": "UDP",
                    "destination": {"selector": "k8s-app == 'kube-dns'", "ports": [53]},
                }
            ],
        },
    }


def global_policies() -> list[dict[str, Any]]:
    gnps: list[dict[str, Any]] = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"default-deny-t{DEFAULT_DENY_TEAM}"},
            "spec": {
                "namespaceSelector": f"team == 't{DEFAULT_DENY_TEAM}'",
                "types": ["Ingress", "Egress"],
                "egress": [
                    {
                        "action": "Allow",
                        "protocol": "UDP",
                        "destination": {"selector": "k8s-app == 'kube-dns'", "ports": [53]},
                    }
                ],
            },
        }
    ]
    gnps.extend(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"allow-team-{k}"},
            "spec": {
                "selector": f"team == 't{k}' && role in {{'api', 'web'}}",
                "types": ["Ingress"],
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "source": {"namespaceSelector": f"team == 't{k}'"},
                        "destination": {"ports": [8080]},
                    }
                ],
            },
        }
        for k in range(GLOBAL_POLICIES - 1)
    )
    return gnps


def state_objects(namespaces: int) -> Iterator[dict[str, Any]]:
    """The namespaces, then `3 * namespaces - 10` namespaced policies, then 10 global ones."""
    namespaced_budget = 3 * namespaces - GLOBAL_POLICIES
    made = 0
    for i in range(namespaces):
        yield namespace(i)
    for i in range(namespaces):
        ns = ns_name(i)
        for make in (
            k8s_default_deny if has_own_default_deny(i) else k8s_allow_web,
            calico_allow_dns,
            k8s_allow_metrics,
        ):
            if made < namespaced_budget:
                made += 1
                yield make(ns)
    yield from global_policies()


def write_state(directory: Path, namespaces: int, per_file: int = 5000) -> dict[str, int]:
    """Write the state as JSON `List` files; return the counts written."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = {"namespaces": 0, "policies": 0}
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        index = len(list(directory.glob("*.json")))
        document = {"apiVersion": "v1", "kind": "List", "items": batch}
        (directory / f"state-{index:03d}.json").write_text(json.dumps(document), encoding="utf-8")
        batch.clear()

    for obj in state_objects(namespaces):
        counts["namespaces" if obj["kind"] == "Namespace" else "policies"] += 1
        batch.append(obj)
        if len(batch) >= per_file:
            flush()
    if batch:
        flush()
    return counts


# -- AdmissionReview bodies -----------------------------------------------------------------
def _pod(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    """A Pod shaped like what the API server sends for a ReplicaSet's pod (about 2 KiB)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{name}-7c9d8f5b4-",
            "namespace": ns,
            "labels": {**labels, "pod-template-hash": "7c9d8f5b4"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-23T10:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{name}-7c9d8f5b4",
                    "uid": "0d6b1c9e-4f1a-4f0e-9a53-4d1f0b7f7a11",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": name,
                    "image": f"registry.example.com/shop/{name}:1.42.0",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "DB_HOST", "value": "db.shop.svc.cluster.local"},
                    ],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                        "periodSeconds": 10,
                    },
                    "securityContext": {
                        "runAsNonRoot": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [
                        {
                            "name": "kube-api-access-x7k2p",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        }
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"sources": []}}],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }


def _deployment(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    pod = _pod(name, ns, labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "generation": 3},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": labels.get("app", name)}},
            "template": {"metadata": {"labels": labels}, "spec": pod["spec"]},
        },
    }


def _review(
    uid: str,
    group: str,
    kind: str,
    resource: str,
    ns: str,
    operation: str,
    obj: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    name: str = "",
) -> dict[str, Any]:
    version = "v1"
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name,
        "namespace": ns,
        "operation": operation,
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "6a2f3c1e-1b1d-4c55-8d0e-2e7d9d9c6f01",
            "groups": ["system:serviceaccounts", "system:authenticated"],
        },
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


GOOD = {"app": "shop", "role": "web"}


def reviews(namespaces: int) -> list[tuple[str, dict[str, Any], bool]]:
    """(label, AdmissionReview, expected allowed): 10 requests, 4 of them denied (the
    allow-all NetworkPolicy opens ingress in a namespace its default-deny isolates:
    protect-default-deny refuses it, restrict-allow-all warns).

    Namespaces are spread over the whole state so that lookups hit different buckets.
    """
    step = max(namespaces // 7, 1)
    isolated = [i for i in range(0, namespaces, step) if has_own_default_deny(i)]
    bare = next(
        i
        for i in range(namespaces)
        if not has_own_default_deny(i) and i % TEAMS != DEFAULT_DENY_TEAM
    )
    team7_open = next(
        i
        for i in range(namespaces)
        if not has_own_default_deny(i) and i % TEAMS == DEFAULT_DENY_TEAM
    )
    a, b, c = (ns_name(isolated[k % len(isolated)]) for k in range(3))
    dep = _deployment("shop", b, GOOD)
    dep_old = _deployment("shop", b, GOOD)
    dep_old["spec"]["replicas"] = 2
    allow_all = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-everything", "namespace": c},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }
    net = ("networking.k8s.io", "NetworkPolicy", "networkpolicies")
    items: list[tuple[str, dict[str, Any], bool]] = [
        ("pod ok", _review("r1", "", "Pod", "pods", a, "CREATE", _pod("web", a, GOOD)), True),
        (
            "pod missing role label",
            _review("r2", "", "Pod", "pods", b, "CREATE", _pod("web", b, {"app": "shop"})),
            False,
        ),
        (
            "pod in namespace without default-deny",
            _review(
                "r3", "", "Pod", "pods", ns_name(bare), "CREATE", _pod("web", ns_name(bare), GOOD)
            ),
            False,
        ),
        (
            "pod isolated by a GlobalNetworkPolicy",
            _review(
                "r4",
                "",
                "Pod",
                "pods",
                ns_name(team7_open),
                "CREATE",
                _pod("api", ns_name(team7_open), {"app": "shop", "role": "api"}),
            ),
            True,
        ),
        ("pod ok (2)", _review("r5", "", "Pod", "pods", c, "CREATE", _pod("db", c, GOOD)), True),
        (
            "deployment create",
            _review("r6", "apps", "Deployment", "deployments", b, "CREATE", dep, name="shop"),
            True,
        ),
        (
            "deployment scale (update)",
            _review("r7", "apps", "Deployment", "deployments", b, "UPDATE", dep, dep_old, "shop"),
            True,
        ),
        (
            "network policy create",
            _review("r8", net[0], net[1], net[2], c, "CREATE", k8s_allow_web(c), name="allow-web"),
            True,
        ),
        (
            "allow-all network policy (denied, and warned)",
            _review("r9", net[0], net[1], net[2], c, "CREATE", allow_all, name="allow-everything"),
            False,
        ),
        (
            "default-deny delete",
            _review(
                "r10",
                net[0],
                net[1],
                net[2],
                a,
                "DELETE",
                None,
                k8s_default_deny(a),
                "default-deny",
            ),
            False,
        ),
    ]
    return items


def write_reviews(directory: Path, namespaces: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (_label, review, _allowed) in enumerate(reviews(namespaces)):
        path = directory / f"review-{index:02d}.json"
        path.write_text(json.dumps(review, separators=(",", ":")), encoding="utf-8")
        paths.append(path)
    return paths


# -- manifests for `guardrail check` ---------------------------------------------------------
def write_manifests(directory: Path, count: int, per_file: int = 20) -> int:
    """`count` YAML documents in files of `per_file`, ten per namespace: the Namespace, its
    default-deny (missing in one namespace in five), a Calico policy, a Deployment (without
    the role label in one in seven) and six Pods."""
    directory.mkdir(parents=True, exist_ok=True)
    docs: list[dict[str, Any]] = []
    i = 0
    while len(docs) < count:
        ns = f"app-{i:05d}"
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        if i % 5:
            docs.append(k8s_default_deny(ns))
        else:
            docs.append(k8s_allow_web(ns))
        docs.append(calico_allow_dns(ns))
        labels = GOOD if i % 7 else {"app": "shop"}
        docs.append(_deployment("shop", ns, labels))
        for k in range(6):
            pod = _pod(f"worker-{k}", ns, GOOD)
            pod["metadata"]["name"] = f"worker-{k}"
            del pod["metadata"]["generateName"]
            del pod["metadata"]["ownerReferences"]
            docs.append(pod)
        i += 1
    docs = docs[:count]
    for start in range(0, len(docs), per_file):
        chunk = docs[start : start + per_file]
        text = yaml.dump_all(chunk, Dumper=Dumper, sort_keys=False)
        (directory / f"manifests-{start // per_file:05d}.yaml").write_text(text, encoding="utf-8")
    return len(docs)
