"""protect-default-deny (SPEC 2.3): a default-deny is not deleted or weakened while relied on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.unit.policy_support import (
    DENY_ALL,
    DNS_EGRESS,
    EGRESS,
    GLOBAL_DENY,
    INGRESS,
    calico_global,
    cluster,
    created,
    global_request,
    guarded,
    namespace,
    netpol,
    pod,
    protect,
    request,
    state,
)
from webhook.policy.model import Operation, Request
from webhook.policy.rule import Settings
from webhook.policy.rules.protect_default_deny import describe_lost, namespace_list
from webhook.policy.rules.require_default_deny import DIRECTIONS
from webhook.state.index import IndexedState


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


BACKUP = netpol(
    "backup", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": DNS_EGRESS}
)


def test_deleting_the_older_of_two_default_denies_is_allowed() -> None:
    """Deleting one of two default-denies leaves the namespace isolated by the newer one."""
    old = created(netpol("default-deny", DENY_ALL), 1)
    indexed = state(namespace("shop"), old, created(BACKUP, 2))
    assert protect(request(None, Operation.DELETE, old), indexed) == []


def test_deleting_the_newer_of_two_default_denies_is_refused_naming_the_other() -> None:
    """The newest default-deny is the anchor: a delete of the other one at the same instant,
    judged with this one present, would otherwise leave none."""
    newer = created(BACKUP, 2)
    indexed = state(namespace("shop"), created(netpol("default-deny", DENY_ALL), 1), newer)
    [finding] = protect(request(None, Operation.DELETE, newer), indexed)
    assert finding.message == (
        '[protect-default-deny] Deleting NetworkPolicy "backup" in namespace "shop" is refused: '
        'of the 2 policies that each isolate every pod of namespace "shop" for Ingress and '
        "Egress, it is the one kept (the newest) so that changes at the same instant cannot remove them "
        'all. Delete NetworkPolicy "default-deny" in namespace "shop" instead, or apply a newer '
        "default-deny first."
    )
    assert finding.summary == (
        '[protect-default-deny] deleting NetworkPolicy "backup": the policy that keeps "shop" '
        "isolated (Ingress, Egress)"
    )


def test_without_creation_times_the_greatest_name_is_the_anchor() -> None:
    """Objects without a creationTimestamp (manifests) are ordered by name, deterministically."""
    indexed = guarded(BACKUP)
    assert protect(request(None, Operation.DELETE, BACKUP), indexed) == []
    [finding] = protect(request(None, Operation.DELETE, netpol("default-deny", DENY_ALL)), indexed)
    assert 'Delete NetworkPolicy "backup" in namespace "shop" instead' in finding.message


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
    settings = Settings(values={DIRECTIONS: (INGRESS,)})
    old = netpol("default-deny", DENY_ALL)
    assert protect(request(None, Operation.DELETE, old), indexed, settings) == []


WEAKENING = [
    (
        {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"]},
        "Ingress and Egress (pods without app=web)",
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


def test_weakening_is_allowed_when_a_newer_provider_remains() -> None:
    """Narrowing one default-deny is fine while a newer one covers the namespace."""
    old = created(netpol("default-deny", DENY_ALL), 1)
    indexed = state(namespace("shop"), old, created(netpol("backup", DENY_ALL), 2))
    new = created(netpol("default-deny", {"podSelector": {"matchLabels": {"app": "x"}}}), 1)
    assert protect(request(new, Operation.UPDATE, old), indexed) == []


def test_weakening_the_anchor_is_refused_naming_the_other() -> None:
    """Narrowing the newest default-deny is refused even though an older one still covers."""
    old = created(netpol("default-deny", DENY_ALL), 2)
    indexed = state(namespace("shop"), old, created(netpol("backup", DENY_ALL), 1))
    new = created(netpol("default-deny", {"podSelector": {"matchLabels": {"app": "x"}}}), 2)
    [finding] = protect(request(new, Operation.UPDATE, old), indexed)
    assert finding.message == (
        '[protect-default-deny] Updating NetworkPolicy "default-deny" in namespace "shop" is '
        "refused: it would stop isolating pods labelled {} (none of the labels the policies "
        'name), {app=(any other value)} in namespace "shop" for Ingress and Egress, and of the 2 '
        "policies that each do, it is the one kept (the newest) so that changes at the same instant "
        'cannot remove them all. Change NetworkPolicy "backup" in namespace "shop" instead, or '
        "apply a newer default-deny first."
    )


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


def test_collection_delete_item_is_judged_by_its_old_object() -> None:
    """deletecollection sends each item with an empty name and its oldObject (SPEC 2.3): the
    item that is the namespace's only default-deny is denied like a single DELETE."""
    old = netpol("default-deny", DENY_ALL)
    [finding] = protect(request(None, Operation.DELETE, old, name=""), guarded())
    assert finding.message.startswith(
        '[protect-default-deny] Deleting NetworkPolicy "default-deny" in namespace "shop" would '
        'leave namespace "shop" without a default-deny for Ingress and Egress.'
    )


def test_collection_delete_without_an_object_is_allowed() -> None:
    """A DELETE with an empty name and no oldObject names nothing to judge: it passes."""
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


def test_creating_an_allow_all_beside_the_default_deny_is_denied() -> None:
    """A new policy whose rule admits every source reopens the isolated namespace (SPEC 2.3)."""
    [finding] = protect(request(netpol("x", {"podSelector": {}, "ingress": [{}]})), guarded())
    assert finding.message == (
        '[protect-default-deny] Creating NetworkPolicy "x" in namespace "shop" would leave '
        'namespace "shop" without a default-deny for Ingress. Restrict its rules with peers or '
        'ports so that they do not admit all traffic. After the change: NetworkPolicy "x" in '
        'namespace "shop" rule spec.ingress[0] admits every source.'
    )


def test_creating_a_policy_that_opens_nothing_is_allowed() -> None:
    """A new policy with restricted rules leaves every pod isolated: nothing to say."""
    spec = {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}
    assert protect(request(netpol("x", spec)), guarded()) == []


def test_other_kinds_are_not_protected() -> None:
    """Deleting a Pod or a Service is no business of protect-default-deny."""
    assert protect(request(None, Operation.DELETE, pod()), guarded()) == []


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


def test_global_delete_with_a_newer_global_provider_is_allowed() -> None:
    """A second, newer global default-deny keeps every namespace isolated."""
    backup = calico_global("backup", {"selector": "all()", "types": ["Ingress", "Egress"]})
    indexed = cluster(3, created(backup, 2))
    old = created(GLOBAL_DENY, 1)
    assert protect(global_request(None, Operation.DELETE, old), indexed) == []


def test_a_namespace_default_deny_under_a_global_one_may_always_go() -> None:
    """Cluster-scoped policies anchor first: a tenant's own default-deny, however new, can be
    deleted while a global default-deny isolates the namespace, and the global one cannot."""
    own = created(netpol("default-deny", DENY_ALL, "team-00"), 9)
    indexed = cluster(
        3, own, *(created(netpol("default-deny", DENY_ALL, f"team-0{i}"), 9) for i in (1, 2))
    )
    assert protect(request(None, Operation.DELETE, own), indexed) == []
    old = created(GLOBAL_DENY, 1)
    [finding] = protect(global_request(None, Operation.DELETE, old), indexed)
    assert finding.message == (
        '[protect-default-deny] Deleting GlobalNetworkPolicy "default-deny" is refused: of the '
        '2 policies that each isolate every pod of namespace "team-00" for Ingress and Egress, '
        "it is the one kept (cluster-scoped ones come first) so that changes at the same "
        'instant cannot remove them all. Delete NetworkPolicy "default-deny" in namespace '
        '"team-00" instead, or apply a newer cluster-scoped default-deny first.'
    )


def test_each_pod_has_its_own_anchor() -> None:
    """Two policies that each isolate only app=web pods: the newer is kept, the older may go."""
    web = {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}
    older, newer = created(netpol("web-a", web), 1), created(netpol("web-b", web), 2)
    indexed = state(namespace("shop"), older, newer)
    settings = Settings(exempt_namespaces=frozenset(), values={DIRECTIONS: (INGRESS,)})
    assert protect(request(None, Operation.DELETE, older), indexed, settings) == []
    [finding] = protect(request(None, Operation.DELETE, newer), indexed, settings)
    assert (
        'of the 2 policies that each isolate pods labelled {app=web} in namespace "shop" for '
        "Ingress, it is the one kept (the newest)"
    ) in finding.message


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


def test_a_relabel_is_named_as_the_namespace_itself() -> None:
    """The API server sends a Namespace's own name as request.namespace: not "in namespace"."""
    gnp = calico_global(
        "deny-x",
        {
            "namespaceSelector": "isolation == 'x'",
            "selector": "all()",
            "types": ["Ingress", "Egress"],
        },
    )
    old, new = namespace("iso", isolation="x"), namespace("iso")
    req = replace(request(new, Operation.UPDATE, old), namespace="iso")
    [finding] = protect(req, state(old, gnp))
    assert finding.message.startswith(
        '[protect-default-deny] Relabelling Namespace "iso" would leave namespace "iso" without '
        "a default-deny for Ingress and Egress. Keep the labels the isolating policies select on"
    )
    assert finding.namespace == ""


def test_namespaces_judged_alike_are_each_named() -> None:
    """A global default-deny that reads no namespace label judges every namespace alike: the
    result of one stands for all (the engine judges one), and each is still listed."""
    everywhere = calico_global("everywhere", {"selector": "all()", "types": ["Ingress"]})
    objs = [namespace(f"team-{i:02d}") for i in range(12)]
    indexed = state(*objs, everywhere)
    req = Request(
        uid="u",
        kind="GlobalNetworkPolicy",
        group="projectcalico.org",
        version="v3",
        namespace="",
        name="everywhere",
        operation=Operation.DELETE,
        old_obj=everywhere,
    )
    [finding] = protect(req, indexed)
    assert (
        'would leave 12 namespaces without a default-deny for Ingress: "team-00", "team-01", '
        '"team-02", "team-03", "team-04", "team-05", "team-06", "team-07", "team-08", '
        '"team-09" and 2 more.'
    ) in finding.message


def test_allow_policies_newer_than_the_default_deny_come_and_go() -> None:
    """Every NetworkPolicy isolates the pods it selects, but the anchor is the default-deny:
    one selecting every pod and opening nothing comes before newer allow policies."""
    deny = created(netpol("default-deny", DENY_ALL), 1)
    web = created(
        netpol(
            "web-from-frontend",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}]}],
            },
        ),
        5,
    )
    everyone = created(
        netpol(
            "from-monitoring",
            {
                "podSelector": {},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"m": "1"}}}]}],
            },
        ),
        6,
    )
    indexed = state(namespace("shop"), deny, web, everyone)
    assert protect(request(None, Operation.DELETE, web), indexed) == []
    assert protect(request(None, Operation.DELETE, everyone), indexed) == []
