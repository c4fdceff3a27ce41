"""A relist removes what was deleted while no watch was open (the API server down, a 410).

The cache keys policies by uid, so the relist must remove a vanished object by its uid: by
name it would stay cached for good, and a namespace whose only default-deny is gone would
keep being judged isolated.
"""

from __future__ import annotations

from typing import Any

from webhook.kube import K8S_POLICIES
from webhook.state.live import LiveState


def _policy(name: str, uid: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": version},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def test_a_policy_gone_from_a_relist_leaves_the_cache() -> None:
    """Listed, then deleted while no watch saw it: the next list (a resync or a relist after
    410 Gone) drops it, and the namespace's view no longer counts it."""
    # Never started: the lists are handed over as the API server would return them.
    state = LiveState(client=None)  # type: ignore[arg-type]  # no call reaches the client here
    deny = _policy("default-deny", "0b6c4f4e-0000-4000-8000-000000000001", "10")
    other = _policy("backup", "0b6c4f4e-0000-4000-8000-000000000002", "11")
    state._replace_resource(K8S_POLICIES, [deny, other])
    assert {p["metadata"]["name"] for p in state.policies_in("shop")} == {"default-deny", "backup"}
    state._replace_resource(K8S_POLICIES, [other])
    assert [p["metadata"]["name"] for p in state.policies_in("shop")] == ["backup"]
    state._replace_resource(K8S_POLICIES, [])
    assert list(state.policies_in("shop")) == []
