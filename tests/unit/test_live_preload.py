"""A live state listed once by the master and continued by each worker it forks.

The master lists every resource (`preload`); a worker, forked from it, takes its own client
(`forked`) and resumes every watch from the resourceVersion of the master's list (`start`):
whatever changed between the master's list and the worker's watch reaches the worker, and the
worker is not ready until each watch has resumed. These run the same object in one process,
as the fork leaves it: the fork itself is gunicorn's (`tests/e2e` runs it for real).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.polling import eventually
from tests.unit.fake_api import CALICO_CRD, FakeApi, default_deny, global_deny_all, namespace
from webhook.kube import K8S_POLICIES, NAMESPACES
from webhook.policy.model import Direction
from webhook.state.live import LiveState


def isolated(state: LiveState, ns: str) -> bool:
    return all(state.view(ns).decide_any_pod(d).isolated for d in Direction)


def watches(api: FakeApi, url: str) -> list[str]:
    """The resourceVersions the watches of url were asked from, in order."""
    return [
        p["resourceVersion"] for verb, path, p in api.requests if verb == "watch" and path == url
    ]


def lists(api: FakeApi, url: str) -> int:
    """How many lists of url began (first pages)."""
    return sum(
        1
        for verb, path, p in api.requests
        if verb == "list" and path == url and "continue" not in p
    )


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    for ns in ("shop", "legacy", "billing"):
        fake.put(namespace(ns))
    fake.put(default_deny("shop"))
    fake.put(default_deny("billing"))
    return fake


@pytest.fixture
def master(api: FakeApi) -> Iterator[LiveState]:
    state = LiveState(api)
    state.preload()
    yield state
    state.stop()


def test_preload_lists_everything_and_starts_nothing(api: FakeApi, master: LiveState) -> None:
    """The master's preload lists each resource (page by page) and opens no watch."""
    assert master.synced
    assert {r.name for r in master.resources} == {NAMESPACES.name, K8S_POLICIES.name}
    assert isolated(master, "shop")
    assert not isolated(master, "legacy")
    assert master.counts() == {"namespaces": 3, "policies": 2}
    assert not [r for r in api.requests if r[0] == "watch"]
    assert master.object_counts() == {NAMESPACES.name: 3, K8S_POLICIES.name: 2}


def test_a_change_between_the_masters_list_and_the_workers_watch_is_seen(
    api: FakeApi, master: LiveState
) -> None:
    """Deleted, created and relabelled after the master listed and before the worker watched:
    the worker's watches resume from the list's version, so it sees all three, and lists
    nothing again."""
    listed_at = api.revision
    api.delete(default_deny("shop"))
    api.put(default_deny("legacy"))
    api.put({**namespace("billing"), "metadata": {"name": "billing", "labels": {"team": "b"}}})
    assert isolated(master, "shop")  # the master's snapshot: as listed

    master.forked(api)
    master.start()
    assert master.wait_synced(10)
    eventually(lambda: not isolated(master, "shop"), what="the delete reaching the worker")
    eventually(lambda: isolated(master, "legacy"), what="the create reaching the worker")
    eventually(
        lambda: (ns := master.namespace("billing")) is not None and ns.labels.get("team") == "b",
        what="the relabel reaching the worker",
    )
    for url in (NAMESPACES.url(), K8S_POLICIES.url()):
        assert watches(api, url)[0] == str(listed_at)
        assert lists(api, url) == 1  # the master's only


def test_the_worker_is_unsynced_until_every_watch_resumed(api: FakeApi, master: LiveState) -> None:
    """Everything is listed, yet a forked worker is not ready before the API server accepted
    each of its watches: until then it cannot know what changed since the master's list."""
    api.accept.clear()
    master.forked(api)
    master.start()
    assert not master.wait_synced(0.3)
    api.accept.set()
    assert master.wait_synced(10)


def test_a_version_compacted_away_relists_in_the_worker(api: FakeApi, master: LiveState) -> None:
    """410 Gone for the master's version (the worker forked long after the list): the worker
    relists, sees what changed, and is ready once listed."""
    api.delete(default_deny("shop"))
    api.compact()
    master.forked(api)
    master.start()
    assert master.wait_synced(10)
    eventually(lambda: not isolated(master, "shop"), what="the relist dropping the policy")
    assert lists(api, K8S_POLICIES.url()) == 2  # the master's, then the worker's


def test_a_version_gone_on_an_accepted_stream_keeps_the_worker_unsynced_until_relisted(
    api: FakeApi, master: LiveState
) -> None:
    """The watch cache accepts the stream, then sends 410 Gone as its first event: the worker
    is not ready on the master's stale lists while it relists."""
    api.delete(default_deny("shop"))
    api.compact()
    api.gone_as_event = True
    api.lists_open.clear()  # the worker's relist waits here
    master.forked(api)
    master.start()
    assert not master.wait_synced(0.5)
    api.lists_open.set()
    assert master.wait_synced(10)
    eventually(lambda: not isolated(master, "shop"), what="the relist dropping the policy")


def test_a_failed_preload_leaves_the_listing_to_the_worker(api: FakeApi) -> None:
    """The API server down while the master starts: the master lists nothing and starts
    anyway; each worker discovers and lists for itself."""
    api.down = True
    state = LiveState(api)
    state.preload()
    assert not state.synced
    assert state.resources == ()
    api.down = False
    state.forked(api)
    state.start()
    try:
        assert state.wait_synced(10)
        assert isolated(state, "shop")
    finally:
        state.stop()


def test_catch_up_replays_what_changed_since_an_old_snapshot(
    api: FakeApi, master: LiveState
) -> None:
    """Before forking from a snapshot older than max_age, the master replays the changes since
    (a replacement worker then resumes from there); a younger one is left alone."""
    api.delete(default_deny("shop"))
    master.catch_up(max_age=3600)
    assert isolated(master, "shop")
    assert not [r for r in api.requests if r[0] == "watch"]

    master.catch_up(max_age=0)
    assert not isolated(master, "shop")
    assert lists(api, K8S_POLICIES.url()) == 1


def test_catch_up_after_compaction_relists(api: FakeApi, master: LiveState) -> None:
    """A snapshot whose version was compacted away is relisted by the catch-up."""
    api.delete(default_deny("shop"))
    api.compact()
    master.catch_up(max_age=0)
    assert not isolated(master, "shop")
    assert lists(api, K8S_POLICIES.url()) == 2


def test_a_relist_of_unchanged_objects_rewrites_nothing(api: FakeApi, master: LiveState) -> None:
    """A resync that finds every object at the version held touches neither the index nor the
    records: a worker forked from the master keeps sharing those pages."""
    records = master._records[K8S_POLICIES.name]
    held = dict(records.by_key)
    view = master.view("shop")
    master._list(master._watchers[K8S_POLICIES.name])
    assert all(records.by_key[k] is v for k, v in held.items())
    assert master.view("shop") is view  # the memoised view survived: nothing was rewritten


def test_a_relist_replaces_an_object_created_again_under_its_name(
    api: FakeApi, master: LiveState
) -> None:
    """Deleted and created again (a new uid) while no watch saw it: the relist keeps only the
    new one, though the index keys policies by uid."""
    api.delete(default_deny("shop"))
    api.put({**default_deny("shop"), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    master._list(master._watchers[K8S_POLICIES.name])
    assert [p["spec"]["policyTypes"] for p in master.policies_in("shop")] == [["Ingress"]]


def test_a_relist_removes_what_is_gone(api: FakeApi, master: LiveState) -> None:
    """A policy deleted while no watch saw it leaves with the next list."""
    api.delete(default_deny("billing"))
    master._list(master._watchers[K8S_POLICIES.name])
    assert list(master.policies_in("billing")) == []
    assert master.object_counts()[K8S_POLICIES.name] == 1


def test_the_confirmation_rereads_cluster_scoped_policies_only_when_their_number_changed() -> None:
    """Before a denial the namespace's policies are read live; the cluster-scoped ones only
    when the API server holds more or fewer than the cache (one created a moment ago), not
    all 1,000 GlobalNetworkPolicies of a large cluster for every denial."""
    api = FakeApi(calico=True)
    api.put(namespace("legacy"))
    api.put({**global_deny_all("unrelated"), "spec": {"selector": "app == 'none'"}})
    state = LiveState(api)
    state.preload()
    globals_url = CALICO_CRD[1].url()
    api.requests.clear()
    assert state.confirm_providers("legacy") is not None
    reads = [p for verb, path, p in api.requests if verb == "list" and path == globals_url]
    assert reads == [{"limit": "1"}]  # counted, not read

    api.put(global_deny_all())  # created a moment before the pod; no watch runs here
    view = state.confirm_providers("legacy")
    assert view is not None
    assert all(view.decide_any_pod(d).isolated for d in Direction)


def test_the_confirmation_reads_cluster_scoped_policies_from_a_server_that_does_not_count() -> None:
    """A server whose lists do not say how many items remain: the cluster-scoped policies are
    read in full before a denial, as always."""
    api = FakeApi(calico=True, page_size=1, counts=False)
    api.put(namespace("legacy"))
    for name in ("a", "b"):
        api.put({**global_deny_all(name), "spec": {"selector": "app == 'none'"}})
    state = LiveState(api)
    state.preload()
    globals_url = CALICO_CRD[1].url()
    api.requests.clear()
    state.confirm_providers("legacy")
    reads = [p for verb, path, p in api.requests if verb == "list" and path == globals_url]
    assert reads == [{"limit": "1"}, {}]
