"""The isolation engine (SPEC 2.5, 2.6): compiled policies, a tiered walk, explanations.

Pure: standard library and webhook.policy's selector, model and objects modules only.

    stack = build_stack(objects)                      # or PolicyStack(compiled, tiers)
    view = stack.for_namespace(namespace)             # cache per namespace
    decision = view.decide(endpoint_of(namespace, pod), Direction.INGRESS)
    decision.isolated, decision.verdict, decision.text
    view.decide_any_pod(Direction.EGRESS)             # the namespace-wide judgement

Change impact (`pods_losing_isolation`, `pods_losing_isolation_on_relabel`) and the rule
listing for restrict-allow-all (`broad_rules`) build on the same compiled forms.
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
