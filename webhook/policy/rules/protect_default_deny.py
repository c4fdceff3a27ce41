"""protect-default-deny: a default-deny is not deleted or weakened while relied on (SPEC 2.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from webhook.policy.isolation import PROVIDER_FLAVORS, provided_directions, providers_for
from webhook.policy.model import (
    ClusterState,
    Direction,
    Finding,
    Namespace,
    Obj,
    Operation,
    PolicyKey,
    Request,
)
from webhook.policy.objects import (
    CALICO_STAGED,
    GLOBAL_FLAVORS,
    flavor_for,
    flavor_of,
    kinds_of,
    ref_of,
)
from webhook.policy.rule import Rule, Settings, Severity
from webhook.policy.rules.require_default_deny import DIRECTIONS
from webhook.policy.text import and_join, fit
from webhook.policy.workloads import reviewed_object

ID = "protect-default-deny"
MAX_LISTED_NAMESPACES = 10


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:
    """A default-deny cannot be deleted or weakened while a namespace relies on it.

    Objects: DELETE and UPDATE of network policies (Kubernetes NetworkPolicy, Calico
    NetworkPolicy and GlobalNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy).
    Reads `oldObject` (else the state's copy), `object` on UPDATE, and the providers of the
    namespace (namespaced policy) or of every namespace the policy covers now (global policy).
    Allows when every non-exempt namespace keeps a provider for each required direction it has
    now; always allows collection deletes (empty name) and changes in a namespace that is
    terminating or gone, so namespace deletion never hangs.
    Example:

        [protect-default-deny] Deleting NetworkPolicy "default-deny" in namespace "shop" would
        leave namespace "shop" without a default-deny for Ingress and Egress. Apply a
        replacement default-deny there first, or delete the namespace if it is no longer needed.
    """
    flavor = flavor_for(request.group, request.kind)
    if flavor not in PROVIDER_FLAVORS:
        return []
    if request.operation is Operation.DELETE:
        if not request.name:
            return []
        new: Obj | None = None
    elif request.operation is Operation.UPDATE:
        if not isinstance(request.obj, Mapping):
            return []
        new = request.obj
    else:
        return []
    subject = reviewed_object(request)
    key: PolicyKey = (flavor, request.kind, subject.name)
    old = request.old_obj if isinstance(request.old_obj, Mapping) else None
    if flavor in GLOBAL_FLAVORS:
        lost = _lost_by_global_change(key, old=old, new=new, state=state, settings=settings)
    else:
        lost = _lost_by_namespaced_change(
            key, subject.namespace, old=old, new=new, state=state, settings=settings
        )
    if not lost:
        return []

    deleting = request.operation is Operation.DELETE
    names = sorted(lost)
    where = describe_lost(lost)
    if len(names) == 1:
        gone = "delete the namespace if it is no longer needed"
    else:
        gone = "delete those namespaces if they are no longer needed"
    fix = (
        f"Apply a replacement default-deny there first, or {gone}."
        if deleting
        else f"Keep it a default-deny (selecting every pod, the direction in its types, no "
        f"allow-all rule), apply a replacement default-deny there first, or {gone}."
    )
    action = "Deleting" if deleting else "Updating"
    message = f"[{ID}] {action} {subject.phrase} would leave {where}. {fix}"
    directions = ", ".join(
        d for d in settings.get(DIRECTIONS) if any(d in v for v in lost.values())
    )
    short_where = f'"{names[0]}" loses' if len(names) == 1 else f"{len(names)} namespaces lose"
    summary = fit(
        message,
        f'[{ID}] {action.lower()} {subject.kind} "{subject.name}": '
        f"{short_where} default-deny ({directions})",
    )
    return [subject.finding(ID, message, summary)]


def namespace_list(names: Sequence[str], limit: int = MAX_LISTED_NAMESPACES) -> str:
    """'"a", "b", "c"', or the first `limit` names followed by 'and N more'."""
    shown = ", ".join(f'"{name}"' for name in names[:limit])
    rest = len(names) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def describe_lost(lost: Mapping[str, Sequence[Direction]]) -> str:
    """What a change would leave behind, for the protect-default-deny message.

    'namespace "shop" without a default-deny for Egress'; for several namespaces losing the
    same directions '12 namespaces without a default-deny for Egress: "a", ... and 2 more';
    otherwise each listed namespace carries its own directions. At most ten are named.
    """
    names = sorted(lost)
    if len(names) == 1:
        return f'namespace "{names[0]}" without a default-deny for {and_join(lost[names[0]])}'
    kinds = {tuple(lost[name]) for name in names}
    if len(kinds) == 1:
        return (
            f"{len(names)} namespaces without a default-deny for {and_join(next(iter(kinds)))}: "
            f"{namespace_list(names)}"
        )
    shown = ", ".join(
        f'"{name}" ({and_join(lost[name])})' for name in names[:MAX_LISTED_NAMESPACES]
    )
    rest = len(names) - MAX_LISTED_NAMESPACES
    listed = f"{shown} and {rest} more" if rest > 0 else shown
    return f"{len(names)} namespaces without a default-deny: {listed}"


def _lost_by_namespaced_change(
    key: PolicyKey,
    namespace: str,
    *,
    old: Obj | None,
    new: Obj | None,
    state: ClusterState,
    settings: Settings,
) -> dict[str, tuple[Direction, ...]]:
    if not namespace or namespace in settings.exempt_namespaces:
        return {}
    ns = state.namespace(namespace)
    if ns is None or ns.terminating:
        return {}
    if old is None:
        policies = state.policies_in(namespace)
        old = next((p for p in policies if _key_of(p, namespace) == key), None)
        if old is None:
            return {}  # nothing known to lose
    # Every other policy (global, or stored here under another key) provides the same before
    # and after this change: read that from the state's memoised providers instead of judging
    # them all again per request. Only the old and the new object are judged.
    kept = {
        direction
        for direction, refs in state.providers(namespace).items()
        if any(ref.key != key for ref in refs)
    }
    # "Before" uses the object the API server says is stored, so a cache that has not seen it
    # yet cannot hide what the change removes.
    before = _provided_by(old, ns)
    after = _provided_by(new, ns)
    lost = tuple(
        d for d in settings.get(DIRECTIONS) if d in before and d not in after and d not in kept
    )
    return {namespace: lost} if lost else {}


def _provided_by(obj: Obj | None, ns: Namespace) -> frozenset[Direction]:
    """Directions obj alone provides in ns (nothing for a missing, unknown or staged object)."""
    flavor = flavor_of(obj) if obj is not None else None
    if obj is None or flavor is None or flavor == CALICO_STAGED:
        return frozenset()
    return provided_directions(obj, flavor, ns)


def _lost_by_global_change(
    key: PolicyKey,
    *,
    old: Obj | None,
    new: Obj | None,
    state: ClusterState,
    settings: Settings,
) -> dict[str, tuple[Direction, ...]]:
    current_globals = state.global_policies()
    others = [p for p in current_globals if _key_of(p, "") != key]
    in_state = len(others) != len(current_globals)
    if not in_state and old is None:
        return {}
    after_globals = [*others, new] if new is not None else others
    lost: dict[str, tuple[Direction, ...]] = {}
    for ns in state.namespaces():
        if ns.terminating or ns.name in settings.exempt_namespaces:
            continue
        if in_state:
            now = state.providers(ns.name)
            relied = [
                d for d in settings.get(DIRECTIONS) if any(ref.key == key for ref in now.get(d, ()))
            ]
        else:
            # The cache has not seen the policy yet: judge from the API server's oldObject.
            assert old is not None
            now = providers_for(ns, state.policies_in(ns.name), [*others, old])
            relied = [d for d in settings.get(DIRECTIONS) if now.get(d)]
        if not relied:
            continue
        after = providers_for(ns, state.policies_in(ns.name), after_globals)
        gone = tuple(d for d in relied if not after.get(d))
        if gone:
            lost[ns.name] = gone
    return lost


def _key_of(obj: Obj, namespace: str) -> PolicyKey | None:
    flavor = flavor_of(obj)
    if flavor is None:
        return None
    return ref_of(obj, flavor, namespace).key


RULE = Rule(
    id=ID,
    title="ProtectDefaultDeny",
    summary="A namespace's default-deny network policy is not deleted or weakened.",
    severity=Severity.HIGH,
    default_mode=None,
    settings=(),
    kinds=kinds_of(*PROVIDER_FLAVORS),
    operations=frozenset({Operation.UPDATE, Operation.DELETE}),
    needs_state=True,
    docs="protect-default-deny",
    check=check,
)
