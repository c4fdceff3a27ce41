"""Calico and admin network policies through a real `guardrail serve` over TLS.

Two clusters, each read from its own state directory: one namespace per default-deny shape
(Kubernetes, Calico NetworkPolicy in both API spellings, BaselineAdminNetworkPolicy,
AdminNetworkPolicy, staged policies), and a cluster isolated by one of the Calico
documentation's GlobalNetworkPolicies, with no namespace exempt so that their exclusion lists
decide.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.http.support import Server, pod, review, start_server

# -- the first cluster: a namespace per provider shape --------------------------------------------
V3 = "projectcalico.org/v3"
CRD = "crd.projectcalico.org/v1"
ANP_API = "policy.networking.k8s.io/v1alpha1"

CALICO_V3_DENY: dict[str, Any] = {
    # https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
    "apiVersion": V3,
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "calico-v3"},
    "spec": {"selector": "all()", "types": ["Ingress", "Egress"]},
}
CALICO_CRD_DENY: dict[str, Any] = {
    "apiVersion": CRD,
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "calico-crd"},
    "spec": {
        "types": ["Ingress", "Egress"],
        "egress": [
            {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}},
            {"action": "Allow", "protocol": "TCP", "destination": {"ports": [53]}},
        ],
    },
}
EVERY_ADDRESS = {"networks": ["0.0.0.0/0", "::/0"]}
DNS_RULE = {
    "name": "dns",
    "action": "Allow",
    "to": [
        {
            "pods": {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        }
    ],
    "ports": [{"portNumber": {"protocol": "UDP", "port": 53}}],
}
BASELINE: dict[str, Any] = {
    "apiVersion": ANP_API,
    "kind": "BaselineAdminNetworkPolicy",
    "metadata": {"name": "default"},
    "spec": {
        "subject": {"namespaces": {"matchLabels": {"isolation": "baseline"}}},
        "ingress": [{"name": "pods", "action": "Deny", "from": [{"namespaces": {}}]}],
        "egress": [DNS_RULE, {"name": "everything", "action": "Deny", "to": [EVERY_ADDRESS]}],
    },
}
ADMIN: dict[str, Any] = {
    "apiVersion": ANP_API,
    "kind": "AdminNetworkPolicy",
    "metadata": {"name": "egress-lockdown"},
    "spec": {
        "priority": 10,
        "subject": {
            "namespaces": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["anp-ns"]}
                ]
            }
        },
        "egress": [{"name": "everything", "action": "Deny", "to": [EVERY_ADDRESS]}],
    },
}


def ingress_deny(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-ingress", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


SHAPES_STATE: list[dict[str, Any]] = [
    namespace("calico-v3"),
    CALICO_V3_DENY,
    namespace("calico-crd"),
    CALICO_CRD_DENY,
    namespace("banp-ns", isolation="baseline"),
    ingress_deny("banp-ns"),
    namespace("banp-only", isolation="baseline"),
    BASELINE,
    namespace("anp-ns"),
    ingress_deny("anp-ns"),
    ADMIN,
    namespace("staged-ns"),
    {
        "apiVersion": V3,
        "kind": "StagedNetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "staged-ns"},
        "spec": {"selector": "all()", "types": ["Ingress", "Egress"]},
    },
    {
        "apiVersion": V3,
        "kind": "StagedGlobalNetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"selector": "all()", "types": ["Ingress", "Egress"]},
    },
    {
        "apiVersion": CRD,
        "kind": "StagedKubernetesNetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "staged-ns"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    },
]


def start_with(workdir: Path, objs: list[dict[str, Any]], **kwargs: Any) -> Server:
    """A server whose state directory holds support.STATE (shop, open) plus these objects."""
    state = workdir / "state"
    state.mkdir(parents=True)
    (state / "calico.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return start_server(workdir, **kwargs)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_with(tmp_path_factory.mktemp("calico-shapes"), SHAPES_STATE, workers=1)
    yield running
    running.stop()


def assert_allowed_silently(response: dict[str, Any]) -> None:
    assert response["allowed"] is True, response.get("status")
    assert "warnings" not in response
    assert "status" not in response


def denial(response: dict[str, Any]) -> str:
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message: str = response["status"]["message"]
    return message


@pytest.mark.parametrize(
    "ns",
    ["shop", "calico-v3", "calico-crd", "banp-ns", "anp-ns"],
    ids=["k8s-networkpolicy", "calico-v3", "calico-crd-v1", "banp-egress", "anp-egress"],
)
def test_pod_in_a_namespace_with_a_provider_is_allowed(shapes: Server, ns: str) -> None:
    """Each accepted default-deny shape lets a labelled pod in, without a word."""
    assert_allowed_silently(shapes.review(review(pod(namespace=ns))))


def test_a_baseline_ingress_deny_alone_is_named_as_partial(shapes: Server) -> None:
    """A BANP denying ingress from pods leaves outside addresses open: the denial says so."""
    message = denial(shapes.review(review(pod(namespace="banp-only"))))
    assert message.startswith(
        '[require-default-deny] Pod "web" in namespace "banp-only" would accept all Ingress '
        'traffic: BaselineAdminNetworkPolicy "default" denies pods of other namespaces but not '
        "addresses outside the cluster. Apply a default-deny that selects it first: "
    )


@pytest.mark.parametrize(
    ("ns", "missing"),
    [
        ("staged-ns", "Ingress and Egress"),
        ("open", "Ingress and Egress"),
    ],
    ids=["staged-never-counts", "nothing"],
)
def test_pod_in_a_namespace_without_a_provider_is_denied(
    shapes: Server, ns: str, missing: str
) -> None:
    """Staged policies never count, and a BANP cannot isolate ingress: the message says what lacks."""
    message = denial(shapes.review(review(pod(namespace=ns))))
    assert message.startswith(
        f'[require-default-deny] Pod "web" in namespace "{ns}" cannot run there: namespace '
        f'"{ns}" has no default-deny network policy for {missing}. Apply one first: '
    )
    assert "kubectl apply -f -" in message


@pytest.mark.parametrize(
    ("old", "ns"),
    [(CALICO_V3_DENY, "calico-v3"), (CALICO_CRD_DENY, "calico-crd")],
    ids=["calico-v3", "calico-crd-v1"],
)
def test_deleting_a_calico_default_deny_is_denied(
    shapes: Server, old: dict[str, Any], ns: str
) -> None:
    """A Calico NetworkPolicy default-deny is protected in both API spellings."""
    message = denial(shapes.review(review(None, operation="DELETE", old=old)))
    assert message == (
        f'[protect-default-deny] Deleting NetworkPolicy "default-deny" in namespace "{ns}" would '
        f'leave namespace "{ns}" without a default-deny for Ingress and Egress. Apply a '
        "replacement default-deny there first, or delete the namespace if it is no longer needed."
    )


def test_narrowing_a_calico_default_deny_selector_is_denied(shapes: Server) -> None:
    """Updating the selector to some pods only is a weakening, named with how to keep it whole."""
    new = copy.deepcopy(CALICO_V3_DENY)
    new["spec"]["selector"] = "app == 'web'"
    message = denial(shapes.review(review(new, operation="UPDATE", old=CALICO_V3_DENY)))
    assert message.startswith(
        '[protect-default-deny] Updating NetworkPolicy "default-deny" in namespace "calico-v3" '
        'would leave namespace "calico-v3" without a default-deny for Ingress and Egress (pods '
        "without app=web). Keep it a default-deny (selecting every pod"
    )


def test_harmless_update_of_a_calico_default_deny_is_allowed(shapes: Server) -> None:
    """Allowing DNS egress keeps it a default-deny: allowed without a warning."""
    new = copy.deepcopy(CALICO_V3_DENY)
    new["spec"]["egress"] = [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}]
    assert_allowed_silently(shapes.review(review(new, operation="UPDATE", old=CALICO_V3_DENY)))


@pytest.mark.parametrize(
    ("old", "ns"), [(BASELINE, "banp-ns"), (ADMIN, "anp-ns")], ids=["banp", "anp"]
)
def test_deleting_a_relied_upon_admin_policy_is_denied(
    shapes: Server, old: dict[str, Any], ns: str
) -> None:
    """ANP and BANP egress default-denies are protected objects too."""
    message = denial(shapes.review(review(None, operation="DELETE", old=old)))
    name = old["metadata"]["name"]
    kind = old["kind"]
    assert message.startswith(f'[protect-default-deny] Deleting {kind} "{name}" would leave ')
    assert f'"{ns}"' in message
    assert "without a default-deny for Egress" in message


def test_admin_allow_all_rule_is_denied_where_it_reopens_and_warned(shapes: Server) -> None:
    """An ANP Allow from every namespace reopens every isolated namespace's pods to other
    namespaces' pods: protect-default-deny denies it, restrict-allow-all warns as well."""
    obj = copy.deepcopy(ADMIN)
    obj["metadata"]["name"] = "open-everything"
    obj["spec"] = {
        "priority": 1,
        "subject": {"namespaces": {}},
        "ingress": [{"name": "all", "action": "Allow", "from": [{"namespaces": {}}]}],
    }
    response = shapes.review(review(obj))
    assert response["allowed"] is False
    assert response["status"]["message"].startswith(
        '[protect-default-deny] Creating AdminNetworkPolicy "open-everything" would leave '
    )
    assert response["warnings"] == [
        '[restrict-allow-all] AdminNetworkPolicy "open-everything": spec.ingress[0] admits all '
        "traffic, cancelling default-deny"
    ]


BAD_GNP: dict[str, Any] = {
    "apiVersion": V3,
    "kind": "GlobalNetworkPolicy",
    "metadata": {"name": "deny-app"},
    "spec": {"selector": "projectcalico.org/namespace == kube-system", "types": ["Ingress"]},
}
BAD_RULE_NP: dict[str, Any] = {
    "apiVersion": CRD,
    "kind": "NetworkPolicy",
    "metadata": {"name": "dns", "namespace": "calico-crd"},
    "spec": {
        "types": ["Egress"],
        "egress": [{"action": "Allow", "destination": {"selector": "k8s-app = 'kube-dns'"}}],
    },
}


@pytest.mark.parametrize(
    ("obj", "operation", "warning"),
    [
        (
            BAD_GNP,
            "CREATE",
            "[restrict-allow-all] invalid selector at spec.selector column 32 in "
            'GlobalNetworkPolicy "deny-app"',
        ),
        (
            BAD_RULE_NP,
            "CREATE",
            "[restrict-allow-all] invalid selector at spec.egress[0].destination.selector column 9 "
            'in NetworkPolicy "dns"',
        ),
        (
            BAD_RULE_NP,
            "UPDATE",
            "[restrict-allow-all] invalid selector at spec.egress[0].destination.selector column 9 "
            'in NetworkPolicy "dns"',
        ),
    ],
    ids=["gnp-create", "crd-rule-selector-create", "crd-rule-selector-update"],
)
def test_malformed_selector_is_allowed_with_a_warning(
    shapes: Server, obj: dict[str, Any], operation: str, warning: str
) -> None:
    """A selector that does not parse is the API server's to reject: allowed, warned, annotated."""
    old = obj if operation == "UPDATE" else None
    response = shapes.review(review(obj, operation=operation, old=old))
    assert response["allowed"] is True
    assert response["warnings"] == [warning]
    annotation = response["auditAnnotations"]["restrict-allow-all"]
    assert annotation.startswith("warn: [restrict-allow-all] ")
    assert "Calico will reject it." in annotation


def test_calico_allow_all_rule_outside_its_types_is_silent(shapes: Server) -> None:
    """An allow-all egress rule in an Ingress-only Calico policy does nothing: no warning."""
    obj = copy.deepcopy(CALICO_V3_DENY)
    obj["metadata"]["name"] = "ingress-only"
    obj["spec"] = {"types": ["Ingress"], "egress": [{"action": "Allow"}]}
    assert_allowed_silently(shapes.review(review(obj)))


# -- the second cluster: one of the documentation's GlobalNetworkPolicies -------------------------
SYSTEM = ("kube-system", "calico-system", "calico-apiserver")
TEAMS = [f"team-{i:02d}" for i in range(12)]
DNS_DESTINATION = {"selector": 'k8s-app == "kube-dns"', "ports": [53]}
DOC_GNPS: dict[str, dict[str, Any]] = {
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
    "selector-exclusion": {
        "apiVersion": V3,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {
            "selector": "projectcalico.org/namespace not in  "
            "{'kube-system', 'calico-system', 'calico-apiserver'}",
            "types": ["Ingress", "Egress"],
        },
    },
    # https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
    "namespace-selector-exclusion": {
        "apiVersion": V3,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {
            "namespaceSelector": "has(projectcalico.org/name) && projectcalico.org/name not in "
            '{"kube-system", "calico-system", "calico-apiserver"}',
            "types": ["Ingress", "Egress"],
            "egress": [
                {"action": "Allow", "protocol": "UDP", "destination": DNS_DESTINATION},
                {"action": "Allow", "protocol": "TCP", "destination": DNS_DESTINATION},
            ],
        },
    },
}
NO_NAMESPACE_EXEMPT = "exemptions:\n  namespaces: []\n"


@pytest.fixture(scope="module", params=sorted(DOC_GNPS))
def documented(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, Any]]]:
    """support.STATE's shop (own default-deny) and open, twelve team namespaces and the system
    ones, isolated by one of the documentation's GNPs."""
    gnp = DOC_GNPS[request.param]
    objs = [namespace(name) for name in (*TEAMS, *SYSTEM)] + [gnp]
    running = start_with(
        tmp_path_factory.mktemp("calico-gnp"),
        objs,
        workers=1,
        threads=2,
        config=NO_NAMESPACE_EXEMPT,
    )
    yield running, gnp
    running.stop()


def test_documented_gnp_isolates_namespaces_outside_its_list(
    documented: tuple[Server, dict[str, Any]],
) -> None:
    """Every namespace outside the exclusion list has its default-deny from the GNP."""
    server, _ = documented
    assert_allowed_silently(server.review(review(pod(namespace="team-03"))))


@pytest.mark.parametrize("ns", SYSTEM)
def test_documented_gnp_leaves_excluded_namespaces_open(
    documented: tuple[Server, dict[str, Any]], ns: str
) -> None:
    """The namespaces in the exclusion list are not isolated by it (none is exempt here)."""
    server, _ = documented
    message = denial(server.review(review(pod(namespace=ns))))
    assert f'namespace "{ns}" has no default-deny network policy for Ingress and Egress' in message


@pytest.mark.parametrize("api_version", [V3, CRD], ids=["v3", "crd-v1"])
def test_deleting_the_documented_gnp_lists_ten_namespaces_then_a_count(
    documented: tuple[Server, dict[str, Any]], api_version: str
) -> None:
    """Thirteen namespaces rely on it (shop has its own): ten are named, then how many more."""
    server, gnp = documented
    old = {**gnp, "apiVersion": api_version}
    message = denial(server.review(review(None, operation="DELETE", old=old)))
    listed = ", ".join(f'"{name}"' for name in sorted(["open", *TEAMS])[:10])
    assert message == (
        '[protect-default-deny] Deleting GlobalNetworkPolicy "default-deny" would leave 13 '
        f"namespaces without a default-deny for Ingress and Egress: {listed} and 3 more. Apply a "
        "replacement default-deny there first, or delete those namespaces if they are no longer "
        "needed."
    )


def test_excluding_one_more_namespace_is_denied_naming_it(
    documented: tuple[Server, dict[str, Any]],
) -> None:
    """Adding team-07 to the exclusion list would leave it open: denied, team-07 named."""
    server, gnp = documented
    new = copy.deepcopy(gnp)
    field = "selector" if "selector" in new["spec"] else "namespaceSelector"
    new["spec"][field] = new["spec"][field].replace("'kube-system'", "'kube-system', 'team-07'")
    new["spec"][field] = new["spec"][field].replace('"kube-system"', '"kube-system", "team-07"')
    message = denial(server.review(review(new, operation="UPDATE", old=gnp)))
    assert message.startswith(
        '[protect-default-deny] Updating GlobalNetworkPolicy "default-deny" would leave namespace '
        '"team-07" without a default-deny for Ingress and Egress.'
    )
