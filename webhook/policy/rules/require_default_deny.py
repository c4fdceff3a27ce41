"""require-default-deny: pods run only where a default-deny isolates them (SPEC 2.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from webhook.policy import schema
from webhook.policy.isolation import default_deny_command, missing_directions, providers_for
from webhook.policy.model import ClusterState, Direction, Finding, Namespace, Operation, Request
from webhook.policy.rule import Rule, Setting, Settings, Severity, kinds
from webhook.policy.text import and_join, fit, summarize
from webhook.policy.workloads import (
    WORKLOAD_KINDS,
    is_being_deleted,
    is_mirror_pod,
    is_pod,
    is_workload,
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


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:  # noqa: PLR0911 - each kind of request it does not judge returns early
    """Pods may only be created in a namespace isolated by a default-deny in every direction.

    Objects: Pod CREATE, CREATE/UPDATE of Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
    CronJob, ReplicationController; Namespace CREATE gets an advisory finding (a warning,
    never a denial). Reads the object's namespace and that namespace's default-deny providers
    (`state.providers`, SPEC 2.5). Allows when every direction of `directions` (default Ingress,
    Egress) has a provider; exempt and terminating namespaces, mirror pods and updates of an
    object being deleted are never judged. Example:

        [require-default-deny] Pod "web" in namespace "shop" cannot run there: namespace "shop"
        has no default-deny network policy for Egress. Apply one first: echo '{"apiVersion":
        "networking.k8s.io/v1",...}' | kubectl apply -f -
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
    elif request.operation not in (Operation.CREATE, Operation.UPDATE):
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
    missing = missing_directions(state.providers(namespace), settings.get(DIRECTIONS))
    if not missing:
        return []
    wanted = and_join(missing)
    message = (
        f'[{ID}] {subject.phrase} cannot run there: namespace "{namespace}" '
        f"has no default-deny network policy for {wanted}. "
        f"Apply one first: {default_deny_command(namespace, missing)}"
    )
    summary = fit(
        message,
        f'[{ID}] {subject.kind} "{subject.name}": namespace "{namespace}" '
        f"has no default-deny for {wanted}",
    )
    return [subject.finding(ID, message, summary)]


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
    providers = providers_for(ns, state.policies_in(name), state.global_policies())
    missing = missing_directions(providers, settings.get(DIRECTIONS))
    if not missing:
        return []
    wanted = and_join(missing)
    message = (
        f'[{ID}] Namespace "{name}" has no default-deny network policy for '
        f"{wanted}: pods created in it will be rejected until one exists. "
        f"Apply one right after creating it: {default_deny_command(name, missing)}"
    )
    summary = fit(
        message,
        f'[{ID}] Namespace "{name}": pods will be rejected until a '
        f"default-deny for {wanted} exists",
    )
    return [_about_namespace(name, message, summary, advisory=True)]


def namespace_summary(
    namespace: str, state: ClusterState, settings: Settings, findings: Sequence[Finding]
) -> Finding:
    """`check`'s one finding for a namespace without a default-deny, naming who is rejected."""
    directions = settings.get(DIRECTIONS)
    missing = missing_directions(state.providers(namespace), directions) or directions
    wanted = and_join(missing)
    names = [f'{f.kind} "{f.name}"' for f in findings]
    listed = ", ".join(names[:MAX_LISTED_WORKLOADS])
    if len(names) > MAX_LISTED_WORKLOADS:
        listed += f" and {len(names) - MAX_LISTED_WORKLOADS} more"
    count = f"{len(names)} workload{'' if len(names) == 1 else 's'}"
    message = (
        f'[{ID}] Namespace "{namespace}" has no default-deny network policy for '
        f"{wanted}, so {count} in it would be rejected: {listed}. "
        f"Apply one first: {default_deny_command(namespace, missing)}"
    )
    short = (
        f'[{ID}] Namespace "{namespace}" has no default-deny for {wanted}; '
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
