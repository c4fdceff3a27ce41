"""require-default-deny: pods run only where a default-deny isolates them (SPEC 2.2)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from webhook.policy import schema
from webhook.policy.cluster import ClusterState
from webhook.policy.engine import NamespaceView
from webhook.policy.model import Direction, Finding, Namespace, Operation, Request
from webhook.policy.rule import Rule, Setting, Settings, Severity, kinds
from webhook.policy.text import and_join, fit, summarize
from webhook.policy.workloads import (
    WORKLOAD_KINDS,
    ReviewedObject,
    is_being_deleted,
    is_mirror_pod,
    is_pod,
    is_workload,
    pod_template,
    reviewed_object,
)

ID = "require-default-deny"
MAX_LISTED_WORKLOADS = 5


def _parse_directions(value: object, source: str, path: str) -> tuple[Direction, ...]:
    directions: list[Direction] = []
    for i, item in enumerate(schema.str_list(value, source, path)):
        direction = schema.enum(item, Direction, source, f"{path}[{i}]")
        if direction not in directions:
            directions.append(direction)
    return tuple(directions)


# The directions a pod must be isolated in; protect-default-deny protects the same ones.
DIRECTIONS: Setting[tuple[Direction, ...]] = Setting(
    "directions",
    default=(Direction.INGRESS, Direction.EGRESS),
    parse=_parse_directions,
    doc="directions every pod must be isolated in by a default-deny: Ingress, Egress",
    spelled=["Ingress", "Egress"],
)


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:  # noqa: PLR0911, PLR0912 - each kind of request it does not judge returns early
    """Pods run only where the dataplane isolates them in every required direction (SPEC 2.2).

    Objects: Pod CREATE, CREATE/UPDATE of Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
    CronJob, ReplicationController; Namespace CREATE gets an advisory finding (a warning,
    never a denial). The endpoint judged is the pod itself (its labels and service account)
    or a pod of the workload's template, in the state's view of its namespace (the isolation
    engine, SPEC 2.6): isolated for a direction when the walk of Admin, Calico tiers, the
    Kubernetes NetworkPolicies and Baseline denies both unnamed peers. Allows when every
    direction of `directions` (default Ingress, Egress) is isolated. A workload UPDATE that
    neither changes the pod template nor raises the replicas is never denied (scaling down
    must work); exempt and terminating namespaces, mirror pods and updates of an object being
    deleted are never judged; hostNetwork pods get a warning (no network policy applies to
    them). Examples:

        [require-default-deny] Pod "web" in namespace "shop" cannot run there: namespace "shop"
        has no default-deny network policy for Egress. Apply one first: echo '{"apiVersion":
        "networking.k8s.io/v1",...}' | kubectl apply -f -
        [require-default-deny] Pod "cache" in namespace "shop" would accept all Ingress: tier
        "platform" passes what it does not decide (defaultAction Pass) and no policy in a later
        tier selects it. Apply a default-deny first: echo '...' | kubectl apply -f -
    """
    if request.group == "" and request.kind == "Namespace":
        return _namespace_advisory(request, state, settings)
    if not is_workload(request.group, request.kind):
        return []
    if is_pod(request.group, request.kind):
        # Pods are immutable in every field that matters here; mirror pods run regardless.
        if request.operation is not Operation.CREATE:
            return []
        if is_mirror_pod(request.obj, request.username):
            return []
    elif request.operation is Operation.UPDATE:
        if not starts_pods(request):
            return []
    elif request.operation is not Operation.CREATE:
        return []
    if request.obj is None or is_being_deleted(request.obj):
        return []
    subject = reviewed_object(request)
    namespace = subject.namespace
    if not namespace or namespace in settings.exempt_namespaces:
        return []
    known = state.namespace(namespace)
    if known is not None and known.terminating:
        return []
    template = pod_template(request.group, request.kind, request.obj)
    assert template is not None  # a workload kind has a template, maybe an empty one
    if template.host_network:
        return [_host_network(subject)]
    view = state.view(namespace)
    endpoint = view.endpoint(template.labels, template.service_account)
    decisions = view.decide_all(endpoint, settings.get(DIRECTIONS))
    open_ = [d for d in decisions if not d.isolated]
    if not open_:
        return []
    missing = tuple(d.direction for d in open_)
    wanted = and_join(missing)
    if not any(_selects_anything(view, d) for d in missing):
        message = (
            f'[{ID}] {subject.phrase} cannot run there: namespace "{namespace}" '
            f"has no default-deny network policy for {wanted}. "
            f"Apply one first: {default_deny_command(namespace, missing)}"
        )
        short = (
            f'[{ID}] {subject.kind} "{subject.name}": namespace "{namespace}" '
            f"has no default-deny for {wanted}"
        )
    else:
        texts = {d.text for d in open_}
        if len(texts) == 1:
            why = texts.pop()
        else:
            why = "; ".join(f"{d.direction}: {d.text}" for d in open_)
        message = (
            f"[{ID}] {subject.phrase} would accept all {wanted} traffic: {why}. "
            f"Apply a default-deny that selects it first: "
            f"{default_deny_command(namespace, missing)}"
        )
        short = f'[{ID}] {subject.kind} "{subject.name}" would not be isolated for {wanted}'
    return [subject.finding(ID, message, fit(message, short))]


def starts_pods(request: Request) -> bool:
    """Whether a workload UPDATE changes the pod template or raises the replica count.

    Scaling down, pausing and status-like updates never start a pod that was not running, so
    they are never denied here (SPEC 2.2): a namespace that lost isolation must still be able
    to stop its workloads.
    """
    old, new = request.old_obj, request.obj
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return True
    old_template = pod_template(request.group, request.kind, old)
    new_template = pod_template(request.group, request.kind, new)
    if _template_of(old, request) != _template_of(new, request) or old_template != new_template:
        return True
    return _replicas(new) > _replicas(old)


def _template_of(obj: Mapping[str, object], request: Request) -> object:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if request.kind == "CronJob":
        job = spec.get("jobTemplate")
        return job.get("spec") if isinstance(job, Mapping) else None
    return spec.get("template")


def _replicas(obj: Mapping[str, object]) -> int:
    spec = obj.get("spec")
    value = spec.get("replicas", 1) if isinstance(spec, Mapping) else 1
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _selects_anything(view: NamespaceView, direction: Direction) -> bool:
    """Whether any policy in the view may select pods of the namespace for direction."""
    return any(tier.by_direction.get(direction) for tier in view.tiers)


def _host_network(subject: ReviewedObject) -> Finding:
    message = (
        f"[{ID}] {subject.phrase} uses hostNetwork: no network policy applies to its traffic, "
        "so it is not isolated. Run it without hostNetwork, or forbid hostNetwork with Pod "
        "Security Admission (baseline)."
    )
    short = f'[{ID}] {subject.kind} "{subject.name}" uses hostNetwork: no policy isolates it'
    return subject.finding(ID, message, fit(message, short), advisory=True)


def _namespace_advisory(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:
    if request.operation is not Operation.CREATE or not isinstance(request.obj, Mapping):
        return []
    ns = Namespace.from_object(request.obj)
    name = request.name or ns.name
    if not name or name in settings.exempt_namespaces:
        return []
    if ns.name != name:
        ns = Namespace(name=name, labels={**ns.labels, "kubernetes.io/metadata.name": name})
    # A global policy may already cover the new namespace (by its labels), and `check` sees
    # the namespace's own policies in the same manifests: judge what will be there.
    # Only where a pod without labels would not be isolated: a namespace that isolates most of
    # its pods gets its verdicts per pod, at the pod.
    view = state.stack(name).for_namespace(ns)
    unlabelled = view.endpoint({})
    missing = tuple(
        d
        for d in settings.get(DIRECTIONS)
        if not view.decide_any_pod(d).isolated and not view.decide(unlabelled, d).isolated
    )
    if not missing:
        return []
    wanted = and_join(missing)
    if not any(_selects_anything(view, d) for d in missing):
        message = (
            f'[{ID}] Namespace "{name}" has no default-deny network policy for '
            f"{wanted}: pods created in it will be rejected until one exists. "
            f"Apply one right after creating it: {default_deny_command(name, missing)}"
        )
    else:
        why = view.decide(unlabelled, missing[0]).text
        message = (
            f'[{ID}] Namespace "{name}" does not isolate its pods for {wanted} ({why}): '
            f"pods created in it will be rejected until it does. "
            f"A default-deny to apply: {default_deny_command(name, missing)}"
        )
    summary = fit(
        message,
        f'[{ID}] Namespace "{name}": pods will be rejected until a '
        f"default-deny for {wanted} exists",
    )
    return [_about_namespace(name, message, summary, advisory=True)]


def missing_for_every_pod(
    state: ClusterState, namespace: str, directions: Sequence[Direction]
) -> tuple[Direction, ...]:
    """The directions in which some pod of the namespace may not be isolated."""
    view = state.view(namespace)
    return tuple(d for d in directions if not view.decide_any_pod(d).isolated)


def default_deny_name(directions: Sequence[Direction]) -> str:
    """`default-deny` when it covers both directions, else named after what it covers
    (`default-deny-egress`), so applying it never overwrites an existing `default-deny` that
    provides the other direction."""
    both = set(directions) >= {Direction.INGRESS, Direction.EGRESS}
    return "default-deny" if both else "default-deny-" + "-".join(d.lower() for d in directions)


def default_deny_manifest(
    namespace: str, directions: Sequence[Direction], name: str | None = None
) -> dict[str, object]:
    """The NetworkPolicy that is a default-deny for directions in namespace: it selects every
    pod (`podSelector: {}`) and allows nothing in those directions."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name or default_deny_name(directions), "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": [str(d) for d in directions]},
    }


def default_deny_command(namespace: str, directions: Sequence[Direction]) -> str:
    """A kubectl one-liner applying `default_deny_manifest(namespace, directions)`."""
    manifest = default_deny_manifest(namespace, directions)
    return f"echo '{json.dumps(manifest, separators=(',', ':'))}' | kubectl apply -f -"


def namespace_summary(
    namespace: str, state: ClusterState, settings: Settings, findings: Sequence[Finding]
) -> Finding:
    """`check`'s one finding for a namespace without a default-deny, naming who is rejected."""
    directions = settings.get(DIRECTIONS)
    missing = missing_for_every_pod(state, namespace, directions) or directions
    wanted = and_join(missing)
    names = [f'{f.kind} "{f.name}"' for f in findings]
    listed = ", ".join(names[:MAX_LISTED_WORKLOADS])
    if len(names) > MAX_LISTED_WORKLOADS:
        listed += f" and {len(names) - MAX_LISTED_WORKLOADS} more"
    count = f"{len(names)} workload{'' if len(names) == 1 else 's'}"
    view = state.view(namespace)
    if not any(_selects_anything(view, d) for d in missing):
        message = (
            f'[{ID}] Namespace "{namespace}" has no default-deny network policy for '
            f"{wanted}, so {count} in it would be rejected: {listed}. "
            f"Apply one first: {default_deny_command(namespace, missing)}"
        )
        short = (
            f'[{ID}] Namespace "{namespace}" has no default-deny for {wanted}; '
            f"{count} would be rejected"
        )
    else:
        # The reason is a walk through tiers and selectors: point at the command that shows it.
        message = (
            f'[{ID}] Namespace "{namespace}" does not isolate every pod for {wanted}, so '
            f"{count} in it would be rejected: {listed}. The first: "
            f"{findings[0].message.removeprefix(f'[{ID}] ')} "
            f"To see why, pod by pod: guardrail explain -n {namespace}"
        )
        short = (
            f'[{ID}] Namespace "{namespace}" does not isolate every pod for {wanted}; '
            f"{count} would be rejected"
        )
    return _about_namespace(namespace, message, summarize(short))


def _about_namespace(name: str, message: str, summary: str, *, advisory: bool = False) -> Finding:
    return Finding(ID, "Namespace", "", name, message, summary, advisory)


RULE = Rule(
    id=ID,
    title="RequireDefaultDeny",
    summary="Workloads run only in namespaces isolated by a default-deny network policy.",
    severity=Severity.HIGH,
    default_mode=None,
    settings=(DIRECTIONS,),
    kinds=kinds(("", "Namespace"), also=WORKLOAD_KINDS),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    needs_state=True,
    docs="require-default-deny",
    check=check,
    confirmable=True,
    rollup=namespace_summary,
)
