"""How often the live cache relists a resource (webhook/state/live.py resync_interval): every
10 minutes up to 20,000 objects, as much less often as the resource is larger (a relist costs
its size in every worker and in the API server), never more than 10 hours apart."""

from __future__ import annotations

from webhook.state.live import RESYNC_MAX_SECONDS, RESYNC_SECONDS, resync_interval


def test_small_resources_resync_every_ten_minutes() -> None:
    assert resync_interval(RESYNC_SECONDS, 0) == RESYNC_SECONDS
    assert resync_interval(RESYNC_SECONDS, 20_000) == RESYNC_SECONDS


def test_a_large_resource_resyncs_as_much_less_often_as_it_is_larger() -> None:
    # 100,000 namespaces, each with two Kubernetes NetworkPolicies
    assert resync_interval(RESYNC_SECONDS, 200_000) == 10 * RESYNC_SECONDS
    assert resync_interval(RESYNC_SECONDS, 100_000) == 5 * RESYNC_SECONDS


def test_never_more_than_ten_hours_nor_less_than_asked() -> None:
    assert resync_interval(RESYNC_SECONDS, 10_000_000) == RESYNC_MAX_SECONDS
    assert resync_interval(0.5, 1_000_000) == 25.0  # tests ask for fast resyncs: scaled alike
