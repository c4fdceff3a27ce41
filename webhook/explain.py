"""`guardrail explain`: the isolation engine's verdict for one pod, and the walk behind it.

The tool an admin reaches for when a pod was admitted or denied and they want to know why: the
endpoint (namespace labels, pod labels, service account), then per direction the layers in the
order the dataplane walks them (Admin, Calico tiers, the Kubernetes NetworkPolicies of tier
`default`, Baseline) with the policies that may select the pod in each, and what decided for
each of the two unnamed peers (an address outside the cluster, a pod of a new namespace).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.policy.cluster import ClusterState
from webhook.policy.engine import Decision, Endpoint, Labels, NamespaceView
from webhook.policy.engine.explain import PEER_TEXT, Step, StepKind, nothing_phrase
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Direction, Obj
from webhook.policy.workloads import is_workload, pod_template

FORMATS = ("text", "json")
LAYER_WORDS = {"Admin": "Admin layer, ", "tiers": "", "Baseline": "Baseline layer, "}


@dataclass(frozen=True, slots=True)
class Target:
    """What is explained: a pod of `namespace` with these labels and service account."""

    namespace: str
    labels: Mapping[str, str] | None  # None: every pod of the namespace (labels not known)
    service_account: str | None
    described: str  # 'Pod "web" in namespace "shop"', 'pods of namespace "shop"'


@dataclass(frozen=True, slots=True)
class Explanation:
    target: Target
    view: NamespaceView
    endpoint: Endpoint
    decisions: tuple[Decision, ...]


def target_of_manifest(obj: Obj, namespace: str | None) -> Target:
    """The pod a Pod or workload manifest creates (its template's labels, service account)."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    kind = str(obj.get("kind") or "")
    if not is_workload(group, kind):
        raise GuardrailError(
            f"{kind or 'the object'} is not a Pod or a workload kind; explain judges the pods of "
            "Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs and "
            "ReplicationControllers"
        )
    template = pod_template(group, kind, obj)
    assert template is not None  # a workload kind has a template, maybe an empty one
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    home = namespace or str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "")
    return Target(
        home,
        dict(template.labels),
        template.service_account,
        f'{kind} "{name}" in namespace "{home}"',
    )


def target_of_labels(namespace: str, labels: str | None, service_account: str | None) -> Target:
    """`--namespace NS --labels k=v,...`; without labels, every pod the namespace could run."""
    if labels is None:
        return Target(namespace, None, service_account, f'every pod of namespace "{namespace}"')
    parsed: dict[str, str] = {}
    for index, item in enumerate(part for part in labels.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise GuardrailError(f"label {index + 1} ({item!r}) is not key=value", "--labels")
        parsed[key.strip()] = value.strip()
    shown = ", ".join(f"{k}={v}" for k, v in parsed.items()) or "no labels"
    return Target(
        namespace, parsed, service_account, f'a pod of namespace "{namespace}" labelled {shown}'
    )


def explain(
    state: ClusterState, target: Target, directions: Sequence[Direction] = tuple(Direction)
) -> Explanation:
    view = state.view(target.namespace)
    labels = Labels.unknown() if target.labels is None else Labels.exactly(target.labels)
    endpoint = view.endpoint(labels, target.service_account)
    return Explanation(target, view, endpoint, view.decide_all(endpoint, directions))


# -- rendering ------------------------------------------------------------------------------------
def render(explanation: Explanation, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(as_json(explanation), option=orjson.OPT_INDENT_2).decode() + "\n"
    return render_text(explanation)


def render_text(explanation: Explanation) -> str:
    target = explanation.target
    lines = [f"{target.described}: {_verdicts(explanation)}"]
    account = target.service_account or "(not known)"
    labels = (
        "(not known: every label set a pod could carry)"
        if target.labels is None
        else ", ".join(f"{k}={v}" for k, v in sorted(target.labels.items())) or "(none)"
    )
    namespace_labels = ", ".join(
        f"{k}={v}" for k, v in sorted(explanation.endpoint.namespace_labels.known.items())
    )
    lines += [
        f"  namespace labels: {namespace_labels}",
        f"  pod labels: {labels}",
        f"  service account: {account}",
    ]
    for decision in explanation.decisions:
        lines += ["", f"{decision.direction}: {decision.verdict} - {decision.text}"]
        lines += [f"  {line}" for line in _walk(explanation, decision.direction)]
        for result in (decision.outside, decision.fresh_pod):
            lines.append(f"  {PEER_TEXT[result.peer]}: {result.verdict}")
            for step in result.steps:
                lines.append(f"    {_step(step)}")
    return "\n".join(lines) + "\n"


def _verdicts(explanation: Explanation) -> str:
    return ", ".join(f"{d.direction} {d.verdict}" for d in explanation.decisions)


def _walk(explanation: Explanation, direction: Direction) -> list[str]:
    """The layers in walk order, with each policy that may select the pod and whether it does."""
    lines = ["walk:"]
    walked = False
    for view_tier in explanation.view.tiers:
        policies = view_tier.by_direction.get(direction, ())
        if not policies:
            continue
        walked = True
        tier = view_tier.tier
        order = "unset" if tier.order is None else f"{tier.order:.15g}"
        if tier.order is not None and tier.order.is_integer():
            order = str(int(tier.order))
        layer = LAYER_WORDS.get(str(tier.layer), "")
        lines.append(
            f'  {layer}tier "{tier.name}" (order {order}, defaultAction {tier.default_action})'
        )
        for policy in policies:
            selects = policy.selects(explanation.endpoint)
            word = {True: "selects it", False: "does not select it", None: "may select it"}
            lines.append(f"    {policy.describe()}: {word[selects]}")
    if not walked:
        lines.append("  no policy of any layer may select pods of this namespace")
    return lines


def _step(step: Step) -> str:
    doubt = f" (not certain: {step.doubt.phrase('it')})" if step.doubt is not None else ""
    if step.kind is StepKind.RULE and step.policy is not None:
        return f"decided by {step.policy.describe()} rule {step.path}: {step.action}{doubt}"
    if step.kind is StepKind.TIER_DEFAULT:
        by = f" (selected by {step.policy.describe()})" if step.policy is not None else ""
        return f'decided by tier "{step.tier}" defaultAction {step.action}{by}{doubt}'
    return f"nothing decided: {nothing_phrase(step)}, so the default applies: allow{doubt}"


def as_json(explanation: Explanation) -> dict[str, Any]:
    target = explanation.target
    return {
        "target": {
            "described": target.described,
            "namespace": target.namespace,
            "labels": None if target.labels is None else dict(target.labels),
            "serviceAccount": target.service_account,
        },
        "directions": [
            {
                "direction": str(d.direction),
                "verdict": str(d.verdict),
                "isolated": d.isolated,
                "explanation": d.text,
                "peers": [
                    {
                        "peer": str(result.peer),
                        "verdict": str(result.verdict),
                        "steps": [_step(step) for step in result.steps],
                    }
                    for result in (d.outside, d.fresh_pod)
                ],
                "walk": _walk(explanation, d.direction)[1:],
            }
            for d in explanation.decisions
        ],
    }
