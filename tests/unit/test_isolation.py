"""Default-deny isolation (SPEC 2.2-2.5, Kubernetes NetworkPolicy): definitions and policies."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.policy.isolation import (
    default_deny_command,
    describe_lost,
    effective_policy_types,
    is_empty_selector,
    namespace_list,
    protect_default_deny,
    providers_for,
    require_default_deny,
    restrict_allow_all,
    unrestricted_rules,
)
from webhook.policy.labels import require_role_labels
from webhook.policy.model import (
    Direction,
    Finding,
    Namespace,
    Operation,
    PolicyRef,
    Request,
    Settings,
)
from webhook.state.index import IndexedState

INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS
SETTINGS = Settings(exempt_namespaces=frozenset({"kube-system"}))
DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
DNS_EGRESS = [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
GROUPS = {
    "Pod": ("", "v1"),
    "Namespace": ("", "v1"),
    "Deployment": ("apps", "v1"),
    "ReplicaSet": ("apps", "v1"),
    "StatefulSet": ("apps", "v1"),
    "DaemonSet": ("apps", "v1"),
    "Job": ("batch", "v1"),
    "CronJob": ("batch", "v1"),
    "ReplicationController": ("", "v1"),
    "NetworkPolicy": ("networking.k8s.io", "v1"),
    "Service": ("", "v1"),
    "GlobalNetworkPolicy": ("projectcalico.org", "v3"),
    "AdminNetworkPolicy": ("policy.networking.k8s.io", "v1alpha1"),
    "BaselineAdminNetworkPolicy": ("policy.networking.k8s.io", "v1alpha1"),
}


def namespace(name: str, *, terminating: bool = False, **labels: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if labels:
        obj["metadata"]["labels"] = labels
    if terminating:
        obj["status"] = {"phase": "Terminating"}
    return obj


def netpol(name: str, spec: Any, ns: str = "shop") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
    }
    if spec is not None:
        obj["spec"] = spec
    return obj


def pod(name: str = "web", ns: str = "shop", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}, **meta},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def deployment(name: str = "web", ns: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {}}},
    }


def state(*objs: dict[str, Any]) -> IndexedState:
    """The real index, filled the way the watch and the manifest loader fill it."""
    indexed = IndexedState()
    for obj in objs:
        indexed.upsert(obj)
    return indexed


def request(
    obj: Any,
    operation: Operation = Operation.CREATE,
    old: Any = None,
    *,
    name: str | None = None,
) -> Request:
    source = obj if obj is not None else old
    kind = source["kind"]
    group, version = GROUPS.get(kind, (source["apiVersion"].rpartition("/")[0], "v3"))
    meta = source.get("metadata") or {}
    return Request(
        uid="u",
        kind=kind,
        group=group,
        version=version,
        namespace="" if kind == "Namespace" else str(meta.get("namespace") or ""),
        name=str(meta.get("name") or "") if name is None else name,
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def provided(spec: Any) -> set[Direction]:
    """Directions for which a NetworkPolicy with this spec isolates namespace shop."""
    result = state(namespace("shop"), netpol("p", spec)).providers("shop")
    return {d for d, refs in result.items() if refs}


# -- 2.5 definitions ------------------------------------------------------------------------------
POLICY_TYPES: list[tuple[Any, tuple[Direction, ...]]] = [
    ({}, (INGRESS,)),
    (None, (INGRESS,)),
    ({"ingress": [{}]}, (INGRESS,)),
    ({"egress": [{"to": [{"podSelector": {}}]}]}, (INGRESS, EGRESS)),
    ({"egress": DNS_EGRESS}, (INGRESS, EGRESS)),
    ({"egress": []}, (INGRESS,)),
    ({"policyTypes": ["Egress"]}, (EGRESS,)),
    ({"policyTypes": ["Egress"], "ingress": [{}]}, (EGRESS,)),
    ({"policyTypes": ["Ingress"], "egress": DNS_EGRESS}, (INGRESS,)),
    ({"policyTypes": ["Ingress", "Egress"]}, (INGRESS, EGRESS)),
    ({"policyTypes": ["Egress", "Ingress"]}, (EGRESS, INGRESS)),
    ({"policyTypes": [], "egress": DNS_EGRESS}, (INGRESS, EGRESS)),
    ({"policyTypes": ["Ingress", "Sideways"]}, (INGRESS,)),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    POLICY_TYPES,
    ids=[
        "omitted-no-egress",
        "spec-null",
        "omitted-ingress-rules",
        "omitted-with-egress",
        "omitted-with-dns-egress",
        "omitted-egress-empty-list",
        "explicit-egress",
        "explicit-egress-ignores-ingress-rules",
        "explicit-ingress-ignores-egress-rules",
        "explicit-both",
        "explicit-order-kept",
        "explicit-empty-is-defaulted",
        "unknown-type-ignored",
    ],
)
def test_effective_policy_types_follow_api_server_defaulting(
    spec: Any, expected: tuple[Direction, ...]
) -> None:
    """Omitted policyTypes mean [Ingress] plus Egress when egress has rules; explicit ones win.

    `egress: []` adds nothing: the API server defaults on len(spec.egress) != 0.
    """
    assert effective_policy_types(spec) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ({}, True),
        ({"matchLabels": {}}, True),
        ({"matchExpressions": []}, True),
        ({"matchLabels": None, "matchExpressions": None}, True),
        ({"matchLabels": {}, "matchExpressions": []}, True),
        ({"matchLabels": {"app": "web"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, False),
        ("app=web", False),
        ([], False),
    ],
    ids=[
        "absent",
        "empty",
        "matchLabels-empty",
        "matchExpressions-empty",
        "both-null",
        "both-empty",
        "matchLabels",
        "matchExpressions",
        "string",
        "list",
    ],
)
def test_empty_selector(selector: Any, expected: bool) -> None:
    """Only a selector without labels or expressions selects everything."""
    assert is_empty_selector(selector) is expected


ALL_NS: dict[str, Any] = {"namespaceSelector": {}}
UNRESTRICTED = [
    ({"ingress": [{}]}, [(INGRESS, 0)]),
    ({"ingress": [None]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": []}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": None}]}, [(INGRESS, 0)]),
    ({"ingress": [{"ports": []}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [ALL_NS]}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}]}, [(INGRESS, 0)]),
    (
        {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {}}, "podSelector": None}]}]},
        [(INGRESS, 0)],
    ),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "::/0"}}]}]}, [(INGRESS, 0)]),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": []}}]}]}, [(INGRESS, 0)]),
    (
        {"ingress": [{"from": [{"podSelector": {"matchLabels": {"a": "b"}}}, ALL_NS]}]},
        [(INGRESS, 0)],
    ),
    ({"egress": [{}]}, [(EGRESS, 0)]),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, [(EGRESS, 0)]),
    (
        {"ingress": [{"from": [{"podSelector": {}}]}, {}], "egress": [{"ports": [{}]}, {}, {}]},
        [(INGRESS, 1), (EGRESS, 1), (EGRESS, 2)],
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    UNRESTRICTED,
    ids=[
        "empty-rule",
        "null-rule",
        "from-empty",
        "from-null",
        "ports-empty",
        "all-namespaces",
        "all-namespaces-empty-pods",
        "all-namespaces-null-pods",
        "ipv4-any",
        "ipv6-any",
        "ipv4-any-except-empty",
        "one-match-all-peer-among-others",
        "egress-empty-rule",
        "egress-to-anywhere",
        "indices",
    ],
)
def test_unrestricted_rules_are_found(spec: dict[str, Any], expected: list[Any]) -> None:
    """Rules without ports whose peers are absent, empty or match everything admit all traffic."""
    assert unrestricted_rules(netpol("p", spec)) == expected


RESTRICTED = [
    {"ingress": [{"ports": [{"port": 80}]}]},
    {"ingress": [{"ports": [{"port": 80}], "from": [ALL_NS]}]},
    {"egress": DNS_EGRESS},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "::/0", "except": ["fd00::/8"]}}]}]},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
    {"ingress": [{"from": [{"ipBlock": {"cidr": "not-a-cidr"}}]}]},
    {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]},
    {
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]
                        }
                    }
                ]
            }
        ]
    },
    {
        "ingress": [
            {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}]}
        ]
    },
    {"ingress": [{"from": [{"podSelector": {}}]}]},
    {"ingress": [{"from": [{"namespaceSelector": None, "podSelector": {}}]}]},
    {"ingress": [{"from": [{}]}]},
    {"ingress": ["oops"], "egress": {"to": []}},
    {"ingress": [{"from": "everyone"}]},
]


@pytest.mark.parametrize(
    "spec",
    RESTRICTED,
    ids=[
        "ports",
        "ports-with-all-namespaces",
        "dns-egress",
        "ipv4-any-with-except",
        "ipv6-any-with-except",
        "ipblock-narrow",
        "ipblock-malformed",
        "namespace-labels",
        "namespace-expressions",
        "all-namespaces-some-pods",
        "own-namespace-all-pods",
        "namespace-selector-null",
        "empty-peer-invalid",
        "malformed-rules",
        "malformed-peers",
    ],
)
def test_near_misses_are_not_unrestricted(spec: dict[str, Any]) -> None:
    """Ports, an ipBlock except, labelled selectors or own-namespace peers restrict a rule."""
    assert unrestricted_rules(netpol("p", spec)) == []


def test_unrestricted_rules_tolerates_a_missing_or_malformed_spec() -> None:
    """A policy without a usable spec has no rules to report, and raises nothing."""
    assert unrestricted_rules(netpol("p", None)) == []
    assert unrestricted_rules(netpol("p", ["ingress"])) == []


PROVIDERS = [
    ({"podSelector": {}}, {INGRESS}),
    ({"podSelector": {}, "policyTypes": ["Ingress"]}, {INGRESS}),
    ({"podSelector": {}, "policyTypes": ["Egress"]}, {EGRESS}),
    (DENY_ALL, {INGRESS, EGRESS}),
    ({"policyTypes": ["Ingress", "Egress"]}, {INGRESS, EGRESS}),
    (None, {INGRESS}),
    ({"podSelector": {"matchLabels": {}}, "policyTypes": ["Ingress", "Egress"]}, {INGRESS, EGRESS}),
    ({"podSelector": {"matchExpressions": []}, "policyTypes": ["Egress"]}, {EGRESS}),
    ({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]}, set()),
    (
        {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
        },
        set(),
    ),
    ({**DENY_ALL, "egress": DNS_EGRESS}, {INGRESS, EGRESS}),
    ({"podSelector": {}, "egress": DNS_EGRESS}, {INGRESS, EGRESS}),
    (
        {
            **DENY_ALL,
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"name": "kube-system"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}],
                }
            ],
        },
        {INGRESS, EGRESS},
    ),
    ({**DENY_ALL, "ingress": [{"from": [{"podSelector": {}}]}]}, {INGRESS, EGRESS}),
    ({**DENY_ALL, "ingress": [{}]}, {EGRESS}),
    ({**DENY_ALL, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, {INGRESS}),
    ({"podSelector": {}, "egress": []}, {INGRESS}),
    (["podSelector"], set()),
    ({"podSelector": "all", "policyTypes": ["Ingress"]}, set()),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    PROVIDERS,
    ids=[
        "classic-ingress-deny",
        "explicit-ingress",
        "explicit-egress",
        "deny-all",
        "pod-selector-absent",
        "spec-absent",
        "match-labels-empty",
        "match-expressions-empty",
        "selects-some-pods",
        "selects-by-expression",
        "dns-egress-explicit-types",
        "dns-egress-defaulted-types",
        "dns-egress-to-kube-system",
        "own-namespace-ingress-allowed",
        "allow-all-ingress-rule",
        "allow-all-egress-rule",
        "egress-empty-list-defaults-to-ingress",
        "spec-malformed",
        "pod-selector-malformed",
    ],
)
def test_kubernetes_default_deny_provider(spec: Any, expected: set[Direction]) -> None:
    """A policy provides D with an empty podSelector, D in its types and no allow-all D rule."""
    assert provided(spec) == expected


def test_providers_name_the_policies() -> None:
    """Each direction maps to references of every policy providing it, for messages."""
    indexed = state(
        namespace("shop"),
        netpol("deny-in", {"podSelector": {}}),
        netpol("deny-all", DENY_ALL),
        netpol("web-only", {"podSelector": {"matchLabels": {"app": "web"}}}),
    )
    result = indexed.providers("shop")
    deny_in = PolicyRef(kind="NetworkPolicy", flavor="k8s", namespace="shop", name="deny-in")
    deny_all = PolicyRef(kind="NetworkPolicy", flavor="k8s", namespace="shop", name="deny-all")
    assert set(result[INGRESS]) == {deny_in, deny_all}
    assert result[EGRESS] == (deny_all,)


def test_policies_of_other_namespaces_and_staged_policies_do_not_count() -> None:
    """A default-deny elsewhere, or a staged one, leaves the namespace without a provider."""
    staged = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "StagedKubernetesNetworkPolicy",
        "metadata": {"name": "staged", "namespace": "shop"},
        "spec": DENY_ALL,
    }
    indexed = state(namespace("shop"), namespace("other"), netpol("d", DENY_ALL, "other"), staged)
    assert dict(indexed.providers("shop")) == {}
    ns = Namespace.from_object(namespace("shop"))
    assert dict(providers_for(ns, [staged], [])) == {}


def test_admin_network_policy_denying_ingress_from_pods_is_not_a_provider() -> None:
    """A BANP denying ingress from every pod leaves nodes and the outside world open: no provider."""
    anp = {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "BaselineAdminNetworkPolicy",
        "metadata": {"name": "default"},
        "spec": {"subject": {"namespaces": {}}, "ingress": [{"action": "Deny"}]},
    }
    assert dict(state(namespace("shop"), anp).providers("shop")) == {}


# -- 2.2 require-default-deny ----------------------------------------------------------------------
def deny(req: Request, indexed: IndexedState, settings: Settings = SETTINGS) -> list[Finding]:
    return require_default_deny(req, indexed, settings)


def one_liner_manifest(message: str) -> dict[str, Any]:
    """The manifest inside the message's `echo '...' | kubectl apply -f -` one-liner."""
    match = re.search(r"echo '(\{.*\})' \| kubectl apply -f -$", message)
    assert match, message
    manifest: dict[str, Any] = json.loads(match.group(1))
    return manifest


def test_pod_in_namespace_without_default_deny_gets_exact_message() -> None:
    """The message names the namespace, the missing direction and a one-liner that fixes it."""
    indexed = state(namespace("shop"), netpol("deny-in", {"podSelector": {}}))
    [finding] = deny(request(pod()), indexed)
    assert finding.message == (
        '[require-default-deny] Pod "web" in namespace "shop" cannot run there: namespace "shop" '
        "has no default-deny network policy for Egress. Apply one first: echo "
        '\'{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":'
        '{"name":"default-deny-egress","namespace":"shop"},"spec":{"podSelector":{},'
        '"policyTypes":["Egress"]}}\' | kubectl apply -f -'
    )
    assert (finding.policy, finding.kind, finding.namespace, finding.name) == (
        "require-default-deny",
        "Pod",
        "shop",
        "web",
    )
    assert not finding.advisory
    assert len(finding.summary) < 120
    assert 'namespace "shop" has no default-deny for Egress' in finding.summary


def test_both_directions_missing_are_named_and_fixed_at_once() -> None:
    """With nothing in place, one policy for both directions is suggested."""
    [finding] = deny(request(pod()), state(namespace("shop")))
    assert "has no default-deny network policy for Ingress and Egress." in finding.message
    manifest = one_liner_manifest(finding.message)
    assert manifest["metadata"] == {"name": "default-deny", "namespace": "shop"}
    assert manifest["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize(
    "present",
    [set(), {INGRESS}, {EGRESS}],
    ids=["none", "ingress-only", "egress-only"],
)
def test_applying_the_suggested_one_liner_satisfies_the_policy(present: set[Direction]) -> None:
    """The suggested policy, once applied, makes the same pod pass, without replacing another."""
    objs = [namespace("shop")]
    if present:
        objs.append(netpol("default-deny", {"podSelector": {}, "policyTypes": sorted(present)}))
    indexed = state(*objs)
    [finding] = deny(request(pod()), indexed)
    indexed.upsert(one_liner_manifest(finding.message))
    assert deny(request(pod()), indexed) == []


WORKLOADS = [
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
]


@pytest.mark.parametrize("kind", WORKLOADS)
@pytest.mark.parametrize("operation", [Operation.CREATE, Operation.UPDATE], ids=str)
def test_workloads_are_judged_on_create_and_update(kind: str, operation: Operation) -> None:
    """Every workload kind is told at apply time that its pods would be rejected."""
    obj = deployment()
    obj["kind"] = kind
    obj["apiVersion"] = "/".join(p for p in GROUPS[kind] if p)
    [finding] = deny(request(obj, operation, obj), state(namespace("shop")))
    assert finding.message.startswith(
        f'[require-default-deny] {kind} "web" in namespace "shop" cannot run there: '
        'namespace "shop" has no default-deny network policy for Ingress and Egress.'
    )
    assert finding.kind == kind


@pytest.mark.parametrize(
    ("obj", "operation"),
    [
        (pod(), Operation.UPDATE),
        (pod(), Operation.DELETE),
        (deployment(), Operation.DELETE),
        (pod(annotations={"kubernetes.io/config.mirror": "x"}), Operation.CREATE),
        (
            {
                **deployment(),
                "metadata": {
                    "name": "web",
                    "namespace": "shop",
                    "deletionTimestamp": "2024-01-01T00:00:00Z",
                },
            },
            Operation.UPDATE,
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop"},
            },
            Operation.CREATE,
        ),
    ],
    ids=[
        "pod-update",
        "pod-delete",
        "deployment-delete",
        "mirror-pod",
        "deployment-being-deleted",
        "service",
    ],
)
def test_requests_that_start_no_pods_are_not_judged(
    obj: dict[str, Any], operation: Operation
) -> None:
    """Pod updates, deletes, mirror pods (from a node), finalizer updates and other kinds pass."""
    judged = replace(request(obj, operation, obj), username="system:node:worker-1")
    assert deny(judged, state(namespace("shop"))) == []


def test_mirror_annotation_set_by_a_user_is_judged() -> None:
    """A user-made pod carrying the mirror annotation still needs a default-deny."""
    obj = pod(annotations={"kubernetes.io/config.mirror": "x"})
    judged = replace(request(obj), username="jane")
    assert [f.policy for f in deny(judged, state(namespace("shop")))] == ["require-default-deny"]


def test_isolated_namespace_passes() -> None:
    """A namespace with a default-deny for both directions lets pods in."""
    indexed = state(namespace("shop"), netpol("default-deny", DENY_ALL))
    assert deny(request(pod()), indexed) == []


def test_two_policies_may_share_the_directions() -> None:
    """One policy per direction is as good as one for both."""
    indexed = state(
        namespace("shop"),
        netpol("deny-in", {"podSelector": {}}),
        netpol("deny-out", {"podSelector": {}, "policyTypes": ["Egress"], "egress": DNS_EGRESS}),
    )
    assert deny(request(pod()), indexed) == []


def test_only_configured_directions_are_required() -> None:
    """With directions [Ingress], an ingress-only default-deny is enough."""
    settings = Settings(directions=(INGRESS,))
    indexed = state(namespace("shop"), netpol("deny-in", {"podSelector": {}}))
    assert deny(request(pod()), indexed, settings) == []
    [finding] = deny(request(pod()), state(namespace("shop")), settings)
    assert "for Ingress." in finding.message
    assert one_liner_manifest(finding.message)["spec"]["policyTypes"] == ["Ingress"]


def test_exempt_namespace_is_never_judged() -> None:
    """Pods in an exempt namespace pass without a default-deny."""
    assert deny(request(pod(ns="kube-system")), state(namespace("kube-system"))) == []


def test_terminating_namespace_is_not_judged() -> None:
    """Nothing starts in a namespace being deleted, so it is not judged."""
    assert deny(request(pod()), state(namespace("shop", terminating=True))) == []


def test_namespace_unknown_to_the_state_is_judged() -> None:
    """A namespace the state has never seen has no default-deny (offline check of a lone pod)."""
    [finding] = deny(request(pod(ns="ghost")), state())
    assert 'namespace "ghost" has no default-deny network policy for Ingress and Egress' in (
        finding.message
    )


def test_generate_name_pod_is_named_readably() -> None:
    """Controller-made pods are named by their generateName."""
    obj = pod(name="")
    obj["metadata"]["generateName"] = "web-7d9f-"
    [finding] = deny(request(obj, name=""), state(namespace("shop")))
    assert finding.message.startswith(
        '[require-default-deny] Pod "web-7d9f-" (generateName) in namespace "shop" cannot run'
    )


def test_namespace_create_gets_an_advisory_warning() -> None:
    """A new namespace is allowed, with a warning that its pods will be rejected until isolated."""
    [finding] = deny(request(namespace("shop")), state())
    assert finding.advisory
    assert (finding.kind, finding.namespace, finding.name) == ("Namespace", "", "shop")
    assert finding.message == (
        '[require-default-deny] Namespace "shop" has no default-deny network policy for Ingress '
        "and Egress: pods created in it will be rejected until one exists. Apply one right after "
        'creating it: echo \'{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",'
        '"metadata":{"name":"default-deny","namespace":"shop"},"spec":{"podSelector":{},'
        '"policyTypes":["Ingress","Egress"]}}\' | kubectl apply -f -'
    )
    assert finding.summary == (
        '[require-default-deny] Namespace "shop": pods will be rejected until a default-deny for '
        "Ingress and Egress exists"
    )


def test_namespace_create_with_its_policies_in_the_same_manifests_is_quiet() -> None:
    """Offline, a namespace whose default-deny is among the checked manifests gets no warning."""
    indexed = state(namespace("shop"), netpol("default-deny", DENY_ALL))
    assert deny(request(namespace("shop")), indexed) == []


@pytest.mark.parametrize(
    ("obj", "operation"),
    [
        (namespace("kube-system"), Operation.CREATE),
        (namespace("shop"), Operation.UPDATE),
        (namespace("shop"), Operation.DELETE),
    ],
    ids=["exempt", "update", "delete"],
)
def test_namespace_advisory_only_on_create_of_judged_namespaces(
    obj: dict[str, Any], operation: Operation
) -> None:
    """Exempt namespaces, and namespace updates or deletes, get no advisory."""
    assert deny(request(obj, operation, obj), state()) == []


# -- 2.3 protect-default-deny ----------------------------------------------------------------------
def protect(req: Request, indexed: IndexedState, settings: Settings = SETTINGS) -> list[Finding]:
    return protect_default_deny(req, indexed, settings)


def guarded(*extra: dict[str, Any], ns: dict[str, Any] | None = None) -> IndexedState:
    return state(ns or namespace("shop"), netpol("default-deny", DENY_ALL), *extra)


def test_deleting_the_only_default_deny_is_denied_with_exact_message() -> None:
    """The last default-deny of a namespace cannot be deleted."""
    old = netpol("default-deny", DENY_ALL)
    [finding] = protect(request(None, Operation.DELETE, old), guarded())
    assert finding.message == (
        '[protect-default-deny] Deleting NetworkPolicy "default-deny" in namespace "shop" would '
        'leave namespace "shop" without a default-deny for Ingress and Egress. Apply a '
        "replacement default-deny there first, or delete the namespace if it is no longer needed."
    )
    assert (finding.policy, finding.kind, finding.namespace, finding.name) == (
        "protect-default-deny",
        "NetworkPolicy",
        "shop",
        "default-deny",
    )
    assert finding.summary == (
        '[protect-default-deny] deleting NetworkPolicy "default-deny": "shop" loses default-deny '
        "(Ingress, Egress)"
    )


def test_delete_without_old_object_uses_the_state_copy() -> None:
    """Without oldObject the state's copy of the policy says what the delete removes."""
    req = Request(
        uid="u",
        kind="NetworkPolicy",
        group="networking.k8s.io",
        version="v1",
        namespace="shop",
        name="default-deny",
        operation=Operation.DELETE,
    )
    [finding] = protect(req, guarded())
    assert "without a default-deny for Ingress and Egress" in finding.message


def test_delete_of_an_unknown_policy_without_old_object_is_allowed() -> None:
    """A policy neither sent nor known cannot be shown to matter, so its delete passes."""
    req = Request(
        uid="u",
        kind="NetworkPolicy",
        group="networking.k8s.io",
        version="v1",
        namespace="shop",
        name="never-seen",
        operation=Operation.DELETE,
    )
    assert protect(req, guarded()) == []


def test_another_remaining_provider_keeps_the_delete_allowed() -> None:
    """Deleting one of two default-denies leaves the namespace isolated."""
    indexed = guarded(
        netpol(
            "backup",
            {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": DNS_EGRESS},
        )
    )
    old = netpol("default-deny", DENY_ALL)
    assert protect(request(None, Operation.DELETE, old), indexed) == []


def test_partial_cover_names_only_the_lost_direction() -> None:
    """When another policy still covers Ingress, only Egress is reported lost."""
    indexed = guarded(netpol("deny-in", {"podSelector": {}}))
    [finding] = protect(request(None, Operation.DELETE, netpol("default-deny", DENY_ALL)), indexed)
    assert 'leave namespace "shop" without a default-deny for Egress.' in finding.message


def test_deleting_a_policy_that_is_not_a_default_deny_is_allowed() -> None:
    """Ordinary allow policies come and go freely."""
    allow = netpol(
        "allow-web",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    )
    assert protect(request(None, Operation.DELETE, allow), guarded(allow)) == []


def test_only_required_directions_are_protected() -> None:
    """Losing a direction that is not required (directions: [Ingress]) is allowed."""
    indexed = guarded(netpol("deny-in", {"podSelector": {}}))
    settings = Settings(directions=(INGRESS,))
    old = netpol("default-deny", DENY_ALL)
    assert protect(request(None, Operation.DELETE, old), indexed, settings) == []


WEAKENING = [
    (
        {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]},
        "Ingress and Egress",
    ),
    ({"podSelector": {}, "policyTypes": ["Ingress"]}, "Egress"),
    ({**DENY_ALL, "ingress": [{}]}, "Ingress"),
    ({**DENY_ALL, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, "Egress"),
]


@pytest.mark.parametrize(
    ("spec", "lost"),
    WEAKENING,
    ids=[
        "pod-selector-narrowed",
        "policy-type-dropped",
        "allow-all-ingress-added",
        "egress-to-anywhere-added",
    ],
)
def test_weakening_update_is_denied(spec: dict[str, Any], lost: str) -> None:
    """An UPDATE that stops the policy being a default-deny is denied, naming what is lost."""
    old = netpol("default-deny", DENY_ALL)
    new = netpol("default-deny", spec)
    [finding] = protect(request(new, Operation.UPDATE, old), guarded())
    assert finding.message.startswith(
        '[protect-default-deny] Updating NetworkPolicy "default-deny" in namespace "shop" would '
        f'leave namespace "shop" without a default-deny for {lost}. Keep it a default-deny'
    )
    assert "apply a replacement default-deny there first" in finding.message


@pytest.mark.parametrize(
    "spec",
    [
        {**DENY_ALL, "egress": DNS_EGRESS},
        {**DENY_ALL, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "lb"}}}]}]},
        {"podSelector": {"matchLabels": {}}, "policyTypes": ["Egress", "Ingress"]},
    ],
    ids=["dns-egress-added", "narrow-ingress-added", "equivalent-rewrite"],
)
def test_harmless_update_is_allowed(spec: dict[str, Any]) -> None:
    """Updates that keep the default-deny (allowing DNS, some pods) pass."""
    old = netpol("default-deny", DENY_ALL)
    new = netpol("default-deny", spec)
    assert protect(request(new, Operation.UPDATE, old), guarded()) == []


def test_weakening_is_allowed_when_another_provider_remains() -> None:
    """Narrowing one default-deny is fine while another covers the namespace."""
    indexed = guarded(netpol("backup", DENY_ALL))
    old = netpol("default-deny", DENY_ALL)
    new = netpol("default-deny", {"podSelector": {"matchLabels": {"app": "x"}}})
    assert protect(request(new, Operation.UPDATE, old), indexed) == []


def test_old_object_counts_even_before_the_cache_sees_it() -> None:
    """A default-deny applied a moment ago (not yet cached) is still protected by oldObject."""
    indexed = state(namespace("shop"))
    old = netpol("default-deny", DENY_ALL)
    [finding] = protect(request(None, Operation.DELETE, old), indexed)
    assert "without a default-deny for Ingress and Egress" in finding.message


@pytest.mark.parametrize(
    "indexed",
    [
        pytest.param(guarded(ns=namespace("shop", terminating=True)), id="terminating"),
        pytest.param(state(netpol("default-deny", DENY_ALL)), id="namespace-gone"),
        pytest.param(
            state(namespace("kube-system"), netpol("default-deny", DENY_ALL, "kube-system")),
            id="exempt",
        ),
    ],
)
def test_namespace_being_deleted_gone_or_exempt_never_blocks(indexed: IndexedState) -> None:
    """Deletes in terminating, vanished or exempt namespaces pass: namespace deletes never hang."""
    for ns in ("shop", "kube-system"):
        old = netpol("default-deny", DENY_ALL, ns)
        assert protect(request(None, Operation.DELETE, old), indexed) == []


def test_collection_delete_is_allowed() -> None:
    """A DELETE with an empty name (deletecollection) passes."""
    req = Request(
        uid="u",
        kind="NetworkPolicy",
        group="networking.k8s.io",
        version="v1",
        namespace="shop",
        name="",
        operation=Operation.DELETE,
    )
    assert protect(req, guarded()) == []


def test_create_is_not_protected() -> None:
    """Creating a policy cannot remove isolation; protect-default-deny ignores it."""
    assert protect(request(netpol("x", {"podSelector": {}, "ingress": [{}]})), guarded()) == []


def test_other_kinds_are_not_protected() -> None:
    """Deleting a Pod or a Service is no business of protect-default-deny."""
    assert protect(request(None, Operation.DELETE, pod()), guarded()) == []


def test_namespace_list_shows_at_most_ten_then_a_count() -> None:
    """Long namespace lists show ten names and how many more."""
    names = [f"team-{i:02d}" for i in range(12)]
    text = namespace_list(names)
    assert text == ", ".join(f'"team-{i:02d}"' for i in range(10)) + " and 2 more"
    assert namespace_list(names[:10]) == ", ".join(f'"team-{i:02d}"' for i in range(10))
    assert namespace_list(["a"]) == '"a"'


def test_lost_namespaces_are_listed_with_their_directions() -> None:
    """Many namespaces losing the same directions read as one list with the count."""
    lost = {f"team-{i:02d}": (INGRESS, EGRESS) for i in range(12)}
    assert describe_lost(lost) == (
        "12 namespaces without a default-deny for Ingress and Egress: "
        + ", ".join(f'"team-{i:02d}"' for i in range(10))
        + " and 2 more"
    )


def test_lost_namespaces_with_different_directions_name_each() -> None:
    """When namespaces lose different directions, each is listed with its own."""
    lost = {"b": (EGRESS,), "a": (INGRESS, EGRESS)}
    assert describe_lost(lost) == (
        '2 namespaces without a default-deny: "a" (Ingress and Egress), "b" (Egress)'
    )
    many = {f"n{i:02d}": (EGRESS,) if i % 2 else (INGRESS,) for i in range(13)}
    assert describe_lost(many).endswith('"n09" (Egress) and 3 more')


def test_one_lost_namespace_reads_naturally() -> None:
    """A single namespace is named with its directions."""
    assert (
        describe_lost({"shop": (EGRESS,)}) == 'namespace "shop" without a default-deny for Egress'
    )


# -- 2.4 restrict-allow-all -----------------------------------------------------------------------
def restrict(req: Request, settings: Settings = SETTINGS) -> list[Finding]:
    return restrict_allow_all(req, state(namespace("shop")), settings)


def test_allow_all_ingress_rule_is_reported_with_exact_message() -> None:
    """An empty ingress rule admits everything: the rule is named by its path."""
    obj = netpol("open", {**DENY_ALL, "ingress": [{}]})
    [finding] = restrict(request(obj))
    assert finding.message == (
        '[restrict-allow-all] NetworkPolicy "open" in namespace "shop": rule spec.ingress[0] '
        "admits all traffic and cancels the namespace's default-deny. Restrict it with from "
        "peers or ports."
    )
    assert (finding.policy, finding.kind, finding.namespace, finding.name) == (
        "restrict-allow-all",
        "NetworkPolicy",
        "shop",
        "open",
    )
    assert len(finding.summary) < 120


def test_several_allow_all_rules_are_all_named() -> None:
    """Every unrestricted rule is listed, in both directions, by index."""
    spec = {
        **DENY_ALL,
        "ingress": [{"from": [{"podSelector": {}}]}, {"from": [{"namespaceSelector": {}}]}],
        "egress": [{"ports": [{"port": 53}]}, {}, {"to": [{"ipBlock": {"cidr": "::/0"}}]}],
    }
    [finding] = restrict(request(netpol("open", spec), Operation.UPDATE, netpol("open", DENY_ALL)))
    assert (
        "rules spec.ingress[1], spec.egress[1], spec.egress[2] admit all traffic and cancel the "
        "namespace's default-deny. Restrict them with from/to peers or ports." in finding.message
    )


def test_allow_all_egress_rule_suggests_to_peers() -> None:
    """An egress rule to 0.0.0.0/0 is reported with the `to` field as the fix."""
    obj = netpol(
        "out", {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}
    )
    [finding] = restrict(request(obj))
    assert "rule spec.egress[0] admits all traffic" in finding.message
    assert finding.message.endswith("Restrict it with to peers or ports.")


@pytest.mark.parametrize(
    "spec",
    [
        DENY_ALL,
        {**DENY_ALL, "egress": DNS_EGRESS},
        {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
        },
        {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}],
        },
        {"podSelector": {}, "ingress": [{"ports": [{"port": 443}]}]},
        {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]},
    ],
    ids=[
        "deny-all",
        "dns-egress",
        "ipblock-except",
        "labelled-namespaces",
        "ports",
        "rule-of-a-direction-not-isolated",
    ],
)
def test_restricted_policies_pass(spec: dict[str, Any]) -> None:
    """Policies whose rules are restricted (or inert) draw no warning."""
    assert restrict(request(netpol("p", spec))) == []


def test_allow_all_in_exempt_namespace_is_not_judged() -> None:
    """Exempt namespaces may hold allow-all policies (the CNI's own often do)."""
    assert (
        restrict(request(netpol("open", {"podSelector": {}, "ingress": [{}]}, "kube-system"))) == []
    )


def test_delete_of_allow_all_policy_is_not_judged() -> None:
    """Removing an allow-all policy only tightens things."""
    old = netpol("open", {"podSelector": {}, "ingress": [{}]})
    assert restrict(request(None, Operation.DELETE, old)) == []


def test_default_deny_command_is_valid_json_for_each_direction_set() -> None:
    """The one-liner's manifest is a NetworkPolicy for exactly the given directions."""
    for directions, name in (
        ((INGRESS,), "default-deny-ingress"),
        ((EGRESS,), "default-deny-egress"),
        ((INGRESS, EGRESS), "default-deny"),
    ):
        manifest = one_liner_manifest(default_deny_command("shop", directions))
        assert manifest["metadata"] == {"name": name, "namespace": "shop"}
        assert manifest["spec"]["policyTypes"] == [str(d) for d in directions]


# -- Calico policies through the same dispatch (calico.py decides what they provide) -----------
def calico_global(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


# The Calico documentation's default-deny: every namespace but the system ones, DNS allowed.
GLOBAL_DENY = calico_global(
    "default-deny",
    {
        "selector": "projectcalico.org/namespace not in {'kube-system', 'calico-system'}",
        "types": ["Ingress", "Egress"],
        "egress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}],
    },
)


def cluster(count: int, *extra: dict[str, Any]) -> IndexedState:
    """count team namespaces, kube-system, a terminating one, and the global default-deny."""
    objs = [namespace(f"team-{i:02d}", tier="apps") for i in range(count)]
    objs += [namespace("kube-system"), namespace("leaving", terminating=True), GLOBAL_DENY]
    return state(*objs, *extra)


def global_request(obj: Any, operation: Operation, old: Any) -> Request:
    return Request(
        uid="u",
        kind="GlobalNetworkPolicy",
        group="projectcalico.org",
        version="v3",
        namespace="",
        name="default-deny",
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def test_global_default_deny_satisfies_require_default_deny() -> None:
    """A Calico GlobalNetworkPolicy default-deny isolates every namespace it selects."""
    assert deny(request(pod(ns="team-03")), cluster(5)) == []


def test_deleting_a_global_default_deny_lists_ten_namespaces_then_a_count() -> None:
    """Every namespace relying on a global policy is counted; ten are named, then how many more."""
    [finding] = protect(global_request(None, Operation.DELETE, GLOBAL_DENY), cluster(13))
    names = ", ".join(f'"team-{i:02d}"' for i in range(10))
    assert finding.message == (
        '[protect-default-deny] Deleting GlobalNetworkPolicy "default-deny" would leave 13 '
        f"namespaces without a default-deny for Ingress and Egress: {names} and 3 more. Apply "
        "a replacement default-deny there first, or delete those namespaces if they are no "
        "longer needed."
    )
    assert (finding.kind, finding.namespace, finding.name) == (
        "GlobalNetworkPolicy",
        "",
        "default-deny",
    )
    assert finding.summary == (
        '[protect-default-deny] deleting GlobalNetworkPolicy "default-deny": 13 namespaces lose '
        "default-deny (Ingress, Egress)"
    )


def test_global_delete_skips_exempt_terminating_and_otherwise_isolated_namespaces() -> None:
    """Exempt, terminating and namespaces with their own default-deny are not listed."""
    indexed = cluster(3, netpol("own", DENY_ALL, "team-01"))
    [finding] = protect(global_request(None, Operation.DELETE, GLOBAL_DENY), indexed)
    assert (
        'would leave 2 namespaces without a default-deny for Ingress and Egress: "team-00", '
        '"team-02".' in finding.message
    )
    for absent in ("kube-system", "leaving", "team-01"):
        assert f'"{absent}"' not in finding.message


def test_global_update_narrowing_its_namespaces_names_those_left_out() -> None:
    """Narrowing a global policy's namespaceSelector reports only the namespaces it drops."""
    indexed = cluster(2, namespace("web", tier="web"))
    narrowed = calico_global(
        "default-deny", {**GLOBAL_DENY["spec"], "namespaceSelector": "tier == 'apps'"}
    )
    [finding] = protect(global_request(narrowed, Operation.UPDATE, GLOBAL_DENY), indexed)
    assert 'would leave namespace "web" without a default-deny for Ingress and Egress.' in (
        finding.message
    )


def test_global_delete_with_other_global_provider_is_allowed() -> None:
    """A second global default-deny keeps every namespace isolated."""
    backup = calico_global("backup", {"selector": "all()", "types": ["Ingress", "Egress"]})
    assert protect(global_request(None, Operation.DELETE, GLOBAL_DENY), cluster(3, backup)) == []


def test_calico_allow_all_rule_is_reported_by_path() -> None:
    """A Calico rule with action Allow and no criteria is named with Calico's fix."""
    spec = {**GLOBAL_DENY["spec"], "ingress": [{"action": "Allow"}]}
    [finding] = restrict(
        global_request(calico_global("default-deny", spec), Operation.CREATE, None)
    )
    assert finding.message == (
        '[restrict-allow-all] GlobalNetworkPolicy "default-deny": rule spec.ingress[0] admits '
        "all traffic and cancels the default-deny of every namespace it applies to. Restrict "
        "it with source/destination criteria (selector, namespaceSelector, nets, ports) or a "
        "protocol."
    )
    assert len(finding.summary) < 120


# -- malformed input ------------------------------------------------------------------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["", "Ingress", "Egress", "::/0", "Allow", "Deny", "all()", "a =="]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "metadata",
                    "labels",
                    "podSelector",
                    "policyTypes",
                    "ingress",
                    "egress",
                    "from",
                    "to",
                    "ports",
                    "ipBlock",
                    "cidr",
                    "except",
                    "namespaceSelector",
                    "matchLabels",
                    "template",
                    "jobTemplate",
                    "name",
                    "namespace",
                    "annotations",
                    "selector",
                    "action",
                    "source",
                    "subject",
                    "namespaces",
                    "networks",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


GLOBAL_KINDS = ("GlobalNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy")


@given(
    kind=st.sampled_from(
        [
            "Pod",
            "Deployment",
            "CronJob",
            "NetworkPolicy",
            "Namespace",
            "GlobalNetworkPolicy",
            "AdminNetworkPolicy",
            "BaselineAdminNetworkPolicy",
        ]
    ),
    operation=st.sampled_from(list(Operation)),
    obj=JSON,
    old=JSON,
)
@settings(max_examples=300, deadline=None)
def test_malformed_objects_never_raise(kind: str, operation: Operation, obj: Any, old: Any) -> None:
    """Whatever shape an object has, every policy answers with findings, never a traceback."""
    group, version = GROUPS[kind]
    indexed = guarded()
    if isinstance(obj, dict) and isinstance(old, dict):
        indexed.upsert(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "odd", "namespace": "shop"},
                **obj,
            }
        )
    req = Request(
        uid="u",
        kind=kind,
        group=group,
        version=version,
        namespace="" if kind in ("Namespace", *GLOBAL_KINDS) else "shop",
        name="x",
        operation=operation,
        obj=obj if isinstance(obj, dict) else None,
        old_obj=old if isinstance(old, dict) else None,
    )
    for check in (
        require_default_deny,
        protect_default_deny,
        restrict_allow_all,
        require_role_labels,
    ):
        findings = check(req, indexed, SETTINGS)
        assert all(isinstance(f, Finding) and f.message.startswith("[") for f in findings)
        assert all(len(f.summary) < 120 for f in findings)


# -- Calico: malformed selectors, effective types -------------------------------------------------
def calico_request(obj: Any, operation: Operation = Operation.CREATE, old: Any = None) -> Request:
    source = obj if obj is not None else old
    meta = source.get("metadata") or {}
    group, _, version = source["apiVersion"].rpartition("/")
    return Request(
        uid="u",
        kind=source["kind"],
        group=group,
        version=version,
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        operation=operation,
        obj=obj,
        old_obj=old,
    )


def calico_np(
    name: str, spec: dict[str, Any], api_version: str = "projectcalico.org/v3"
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


BAD_APP = calico_global(
    "deny-app",
    {"selector": "app == web", "types": ["Ingress", "Egress"]},
)


@pytest.mark.parametrize("api_version", ["projectcalico.org/v3", "crd.projectcalico.org/v1"])
def test_malformed_calico_selector_is_an_advisory_naming_field_and_column(api_version: str) -> None:
    """A selector that does not parse gives a warning-only finding with the field and the column."""
    obj = {**BAD_APP, "apiVersion": api_version}
    [finding] = restrict(calico_request(obj))
    assert finding.advisory
    assert finding.message == (
        '[restrict-allow-all] GlobalNetworkPolicy "deny-app" has an invalid selector at '
        "spec.selector column 8: expected a quoted string after '==', found label 'web'; "
        "Calico will reject it."
    )
    assert finding.summary == (
        "[restrict-allow-all] invalid selector at spec.selector column 8 in GlobalNetworkPolicy "
        '"deny-app"'
    )


def test_many_malformed_selectors_are_capped_at_five_warnings() -> None:
    """Seven bad rule selectors give five findings, the last one counting the two not shown."""
    rules = [{"action": "Allow", "source": {"selector": f"a{i} =="}} for i in range(7)]
    findings = restrict(calico_request(calico_np("bad", {"ingress": rules})))
    assert [f.advisory for f in findings] == [True] * 5
    assert "spec.ingress[4].source.selector column" in findings[4].message
    assert findings[4].message.endswith("2 more of its selectors are invalid too.")
    assert all(len(f.summary) < 120 for f in findings)


def test_non_string_selector_is_named_without_a_column() -> None:
    """A selector that is not a string is reported by its path alone."""
    [finding] = restrict(calico_request(calico_np("bad", {"selector": 7})))
    assert finding.message == (
        '[restrict-allow-all] NetworkPolicy "bad" in namespace "shop" has an invalid selector at '
        "spec.selector: expected a selector string, not int; Calico will reject it."
    )


def test_malformed_selector_never_breaks_the_other_policies() -> None:
    """require- and protect-default-deny read a broken Calico policy as providing nothing."""
    indexed = state(namespace("shop"), BAD_APP)
    [missing] = deny(request(pod()), indexed)
    assert "has no default-deny network policy for Ingress and Egress" in missing.message
    assert protect(global_request(None, Operation.DELETE, BAD_APP), indexed) == []
    # Breaking the selector of a relied-upon default-deny is a weakening: Calico cannot use it.
    broken = calico_global("default-deny", {**GLOBAL_DENY["spec"], "selector": "all() &&"})
    [finding] = protect(global_request(broken, Operation.UPDATE, GLOBAL_DENY), cluster(2))
    assert finding.message.startswith(
        '[protect-default-deny] Updating GlobalNetworkPolicy "default-deny" would leave 2 '
        "namespaces without a default-deny for Ingress and Egress"
    )
    [advisory] = restrict(global_request(broken, Operation.UPDATE, GLOBAL_DENY))
    assert "spec.selector column 9" in advisory.message


CALICO_TYPES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("types-exclude-egress", {"types": ["Ingress"], "egress": [{"action": "Allow"}]}, []),
    ("defaulted-egress-only", {"egress": [{"action": "Allow"}]}, ["spec.egress[0]"]),
    (
        "defaulted-ingress-only",
        {"ingress": [{"action": "Pass"}], "egress": []},
        ["spec.ingress[0]"],
    ),
    (
        "explicit-both",
        {
            "types": ["Ingress", "Egress"],
            "ingress": [{"action": "Allow"}],
            "egress": [{"action": "Allow"}],
        },
        ["spec.ingress[0]", "spec.egress[0]"],
    ),
    (
        "malformed-types-report-all",
        {"types": "Ingress", "egress": [{"action": "Allow"}]},
        ["spec.egress[0]"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "paths"), [c[1:] for c in CALICO_TYPES], ids=[c[0] for c in CALICO_TYPES]
)
def test_calico_allow_all_rules_follow_the_effective_types(
    spec: dict[str, Any], paths: list[str]
) -> None:
    """As for Kubernetes, allow-all rules of a direction the Calico policy does not apply to are not reported."""
    findings = restrict(calico_request(calico_np("open", spec)))
    if not paths:
        assert findings == []
        return
    [finding] = findings
    assert f"{'rule' if len(paths) == 1 else 'rules'} {', '.join(paths)} admit" in finding.message
