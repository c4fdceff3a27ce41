"""A view keeps a pod's decisions by the labels its policies read (engine/stack.py
`NamespaceView._decided_key`): replicas and rollouts share one decision, and a label a rule
reads only on its endpoint side still tells pods apart."""

from __future__ import annotations

from tests.unit.engine.builders import calico_np, ns
from webhook.policy.engine import Labels, Verdict, build_stack
from webhook.policy.engine.explain import Decision
from webhook.policy.model import Direction

SHOP = ns("shop")
# Every pod of shop is selected; web pods (read only by the rule's destination, the endpoint
# side of an ingress rule) accept everything, the others nothing.
POLICY = calico_np(
    "web-open",
    "shop",
    selector="all()",
    types=["Ingress"],
    ingress=[{"action": "Allow", "destination": {"selector": "tier == 'web'"}}],
)


def _decide(labels: dict[str, str]) -> Decision:
    return VIEW.decide(VIEW.endpoint(Labels.exactly(labels), "default"), Direction.INGRESS)


VIEW = build_stack([POLICY]).for_namespace(SHOP)


def test_a_label_no_policy_reads_shares_the_decision() -> None:
    first = _decide({"app": "shop", "tier": "db", "pod-template-hash": "5d8f"})
    again = _decide({"app": "shop", "tier": "db", "pod-template-hash": "77c1"})
    assert again is first


def test_a_label_read_by_a_rules_endpoint_side_is_not_shared() -> None:
    db = _decide({"app": "shop", "tier": "db"})
    web = _decide({"app": "shop", "tier": "web"})
    assert db.verdict is Verdict.ISOLATED
    assert web.verdict is Verdict.OPEN
