"""How rules call the engine: a Pod at admission, and a DELETE judged for protection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.engine.builders import default_deny, gnp, k8s_np, ns
from webhook.policy.engine import (
    CompiledPolicy,
    build_stack,
    compile_object,
    endpoint_of,
    is_host_network,
    pods_losing_isolation,
)
from webhook.policy.model import Direction

SHOP = ns("shop")


def pod(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": labels},
        "spec": spec,
    }


SERVICE_ACCOUNTS = [
    ("named", {"serviceAccountName": "api"}, "api"),
    ("deprecated-field", {"serviceAccount": "old"}, "old"),
    ("defaulted", {}, "default"),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in SERVICE_ACCOUNTS], ids=[c[0] for c in SERVICE_ACCOUNTS]
)
def test_endpoint_of_pod_reads_service_account(spec: dict[str, Any], expected: str) -> None:
    """A Pod's endpoint carries its labels and its (defaulted) service account."""
    endpoint = endpoint_of(SHOP, pod({"role": "web"}, **spec))
    assert (endpoint.pod_labels.known, endpoint.service_account) == ({"role": "web"}, expected)


def test_require_default_deny_on_a_pod() -> None:
    """A Pod is isolated for every required direction, or the decision says why not."""
    stack = build_stack([default_deny("shop", "Ingress"), gnp("ingress-deny", selector="all()")])
    view = stack.for_namespace(SHOP)
    endpoint = endpoint_of(SHOP, pod({"role": "web"}))
    ingress, egress = view.decide_all(endpoint, (Direction.INGRESS, Direction.EGRESS))
    assert ingress.isolated
    assert not egress.isolated
    assert egress.text == "no policy selects it"


def test_protect_on_delete() -> None:
    """Deleting the only default-deny is a loss for every pod; the after-stack drops one key."""
    objects = [default_deny(), k8s_np("web", podSelector={"matchLabels": {"role": "web"}})]
    stack = build_stack(objects)
    deleted = compile_object(objects[0])
    assert isinstance(deleted, CompiledPolicy)
    after = stack.with_changes(remove=[deleted.key], homes=[deleted.home])
    loss = pods_losing_isolation(stack, after, SHOP, Direction.EGRESS)
    assert loss is not None
    assert loss.every_pod


def test_host_network_pods_are_told_apart() -> None:
    """Host-network pods are recognised so that callers skip them."""
    assert is_host_network(pod({}, hostNetwork=True))
    assert not is_host_network(pod({}))
