"""The isolation engine (SPEC 2.5, 2.6): compiled policies, a tiered walk, explanations.

Pure: standard library and webhook.policy's selector, model and objects modules only.

require-default-deny on a Pod (or a workload's pod template):

    stack = build_stack(objects)                      # or PolicyStack(compiled, tiers)
    view = stack.for_namespace(namespace)             # cache per namespace
    if not is_host_network(pod):
        for decision in view.decide_all(endpoint_of(namespace, pod), directions):
            decision.isolated, decision.verdict, decision.text, decision.steps
    view.decide_any_pod(Direction.EGRESS)             # the namespace-wide judgement

protect-default-deny on a DELETE (UPDATE: also `add=[compile_object(new)]`):

    old = compile_object(old_object)
    after = stack.with_changes(remove=[old.key])
    for loss in losses(stack, after, live_namespaces, directions, changed=[old],
                       views=cached_view, remove=[old.key]):
        loss.namespace, loss.direction, loss.every_pod, loss.pods, loss.text

restrict-allow-all: `broad_rules(compile_object(obj))`. A namespace relabel:
`pods_losing_isolation_on_relabel(stack, old_namespace, new_namespace, direction)`.
"""

from __future__ import annotations

from webhook.policy.engine.allow_all import BroadRule, broad_rules
from webhook.policy.engine.compile import build_stack, compile_object
from webhook.policy.engine.core import (
    PEERS,
    Action,
    CompiledPolicy,
    Endpoint,
    Labels,
    Layer,
    Peer,
    Ref,
    Rule,
    Tier,
    Verdict,
)
from webhook.policy.engine.explain import Decision, PeerResult, Step, StepKind
from webhook.policy.engine.impact import (
    IsolationLoss,
    losses,
    pods_losing_isolation,
    pods_losing_isolation_on_relabel,
)
from webhook.policy.engine.pods import endpoint_of, is_host_network
from webhook.policy.engine.stack import NamespaceView, PolicyStack

__all__ = [
    "PEERS",
    "Action",
    "BroadRule",
    "CompiledPolicy",
    "Decision",
    "Endpoint",
    "IsolationLoss",
    "Labels",
    "Layer",
    "NamespaceView",
    "Peer",
    "PeerResult",
    "PolicyStack",
    "Ref",
    "Rule",
    "Step",
    "StepKind",
    "Tier",
    "Verdict",
    "broad_rules",
    "build_stack",
    "compile_object",
    "endpoint_of",
    "is_host_network",
    "losses",
    "pods_losing_isolation",
    "pods_losing_isolation_on_relabel",
]
