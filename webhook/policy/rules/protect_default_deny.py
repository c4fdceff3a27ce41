"""protect-default-deny: a default-deny is not deleted or weakened while relied on (SPEC 2.3)."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence

from webhook.policy.cluster import ClusterState
from webhook.policy.engine import (
    CompiledPolicy,
    IsolationLoss,
    NamespaceView,
    PolicyStack,
    Tier,
    compile_object,
)
from webhook.policy.engine.anchor import AnchorLoss, anchor_loss, anchor_ranks
from webhook.policy.engine.core import Context, Endpoint
from webhook.policy.engine.impact import FRESH_TEXT, FRESH_VALUE, compare_views, equivalence
from webhook.policy.model import Direction, Finding, Namespace, Obj, Operation, Request
from webhook.policy.objects import (
    ANP,
    BANP,
    CALICO,
    CALICO_GLOBAL,
    CNP,
    GLOBAL_FLAVORS,
    K8S,
    TIER,
    flavor_for,
    kinds_of,
    meta_of,
)
from webhook.policy.rule import Rule, Settings, Severity, kinds
from webhook.policy.rules.require_default_deny import DIRECTIONS
from webhook.policy.text import and_join, fit
from webhook.policy.workloads import ReviewedObject, reviewed_object

ID = "protect-default-deny"
MAX_LISTED_NAMESPACES = 10
# Every kind of object that takes part in isolation (SPEC 2.3); staged policies never do.
JUDGED_FLAVORS = frozenset({K8S, CALICO, CALICO_GLOBAL, ANP, BANP, CNP, TIER})
NAMESPACE_CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"

Lost = dict[str, list[IsolationLoss]]
Anchored = dict[str, list[AnchorLoss]]
Judged = tuple[list[IsolationLoss], list[AnchorLoss]]


class _Judgements:
    """What going from one namespace view to another loses, by the views' shapes, kept across
    requests (least recently used dropped past `size`).

    The anchor analysis of a change in a namespace holding a dozen policies builds a view per
    policy and decides every representative pod in each: about 20 ms. Its result depends on the
    views' shapes alone (equivalence and anchor order, with the directions judged), so the same
    change judged again (a retry, a dry run, a controller re-applying, another namespace of the
    same shape) costs a lookup. A change to any policy or label of the namespace is another key.
    A result is told for every namespace of the same shapes; one with findings is also kept
    exactly for the namespace it was judged in (its message names that namespace's objects),
    under the key and that namespace's name.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Judged] = OrderedDict()

    def get(self, key: Hashable) -> Judged | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, judged: Judged) -> None:
        with self._lock:
            self._items[key] = judged
            if len(self._items) > self.size:
                self._items.popitem(last=False)


_JUDGED = _Judgements(1024)


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:  # noqa: PLR0911 - each request it does not judge returns early
    """Isolation that pods have now cannot be removed by a change (SPEC 2.3).

    Objects: CREATE, UPDATE and DELETE of every object that takes part in isolation
    (Kubernetes NetworkPolicy, Calico NetworkPolicy, GlobalNetworkPolicy and Tier in both API
    groups, ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) and UPDATE of
    a Namespace whose labels change. Reads `oldObject` (else the state's copy; the API server's
    copy wins over a cache that has not seen it yet) and `object`, and judges the change by its
    effect: for each non-exempt, live namespace the policy may apply to, the isolation engine's
    verdict for every possible pod before and after (SPEC 2.6). Denies when some pods lose
    isolation for a required direction, or when they would stay isolated only through
    policies that are not their anchor (engine/anchor.py: what keeps changes judged at the
    same instant against stale caches from together removing isolation). Always allows
    requests of the namespace controller
    and changes in a namespace that is terminating or gone, so namespace deletion never hangs.
    Collection deletes are judged item by item (each item's `oldObject`). Example:

        [protect-default-deny] Deleting NetworkPolicy "default-deny" in namespace "shop" would
        leave namespace "shop" without a default-deny for Ingress and Egress. Apply a
        replacement default-deny there first, or delete the namespace if it is no longer needed.
    """
    if request.username == NAMESPACE_CONTROLLER:
        return []
    if request.group == "" and request.kind == "Namespace":
        return _relabel(request, state, settings)
    flavor = flavor_for(request.group, request.kind)
    if flavor not in JUDGED_FLAVORS:
        return []
    old = request.old_obj if isinstance(request.old_obj, Mapping) else None
    new = request.obj if isinstance(request.obj, Mapping) else None
    if request.operation is Operation.DELETE:
        new = None
        old = old if old is not None else _stored(request, state, flavor)
    elif request.operation is Operation.CREATE:
        old = None
    elif request.operation is not Operation.UPDATE or new is None:
        return []
    if old is None and new is None:
        return []
    subject = reviewed_object(request)
    home = "" if flavor in GLOBAL_FLAVORS else subject.namespace or _namespace_of(old, new)
    before = compile_object(old, home) if old is not None else None
    after = compile_object(new, home) if new is not None else None
    if before is None and after is None:
        return []
    if before is None and isinstance(after, CompiledPolicy) and _stored_as_is(state, home, after):
        return []  # `check` and `audit` judge objects already in their state: no change
    literals: dict[str, dict[str, set[str]]] = {}
    anchored: Anchored = {}
    lost = _lost(state, settings, home, before, after, literals, anchored)
    if lost:
        return [_finding(request, subject, lost, settings, literals)]
    if anchored:
        return [_anchor_finding(request, subject, anchored, settings, before)]
    return []


def _stored(request: Request, state: ClusterState, flavor: str) -> Obj | None:
    """The state's copy of the object a DELETE without oldObject names."""
    objs = (
        state.global_policies()
        if flavor in GLOBAL_FLAVORS
        else state.policies_in(request.namespace)
    )
    for obj in objs:
        meta = meta_of(obj)
        if meta.get("name") == request.name and flavor_for(
            str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or "")
        ) == flavor_for(request.group, request.kind):
            return obj
    return None


def _stored_as_is(state: ClusterState, home: str, policy: CompiledPolicy) -> bool:
    stored = state.stack(home).find(policy.key)
    return stored is not None and stored.fingerprint == policy.fingerprint


def _namespace_of(*objs: Obj | None) -> str:
    for obj in objs:
        if obj is not None:
            namespace = meta_of(obj).get("namespace")
            if isinstance(namespace, str) and namespace:
                return namespace
    return ""


def _changed(
    stack: PolicyStack,
    home: str,
    drop: CompiledPolicy | Tier | None,
    put: CompiledPolicy | Tier | None,
) -> PolicyStack:
    """The stack with `drop` taken out and `put` in its place (either may be None)."""
    if isinstance(drop, Tier) or isinstance(put, Tier):
        name = (put or drop).name  # type: ignore[union-attr]  # one of them is a Tier
        if isinstance(put, Tier):
            return stack.with_changes(tiers=(put,))
        return stack.with_changes(remove_tiers=(name,))
    keys = {p.key for p in (drop, put) if p is not None}
    # The same object under another key (the API server's copy has a uid, a manifest's or a
    # hand-made review's has none): it is replaced too, never kept beside itself.
    refs = {p.ref for p in (drop, put) if p is not None}
    keys |= {p.key for p in stack.policies_in(home) if p.ref in refs}
    added = (put,) if put is not None else ()
    return stack.with_changes(remove=keys, add=added, homes=(home,) if home else ())


def _may_apply(
    namespace: Namespace, state: ClusterState, parts: tuple[CompiledPolicy | Tier | None, ...]
) -> bool:
    """Whether the change can matter to pods of namespace (a cheap namespace-level test)."""
    probe = Context(Endpoint.any_pod(namespace))
    for part in parts:
        if isinstance(part, CompiledPolicy) and part.selection(probe) is not False:
            return True
        if isinstance(part, Tier) and any(
            view_tier.tier.name == part.name for view_tier in state.view(namespace.name).tiers
        ):
            return True
    return False


def _lost(
    state: ClusterState,
    settings: Settings,
    home: str,
    before: CompiledPolicy | Tier | None,
    after: CompiledPolicy | Tier | None,
    literals: dict[str, dict[str, set[str]]],
    anchored: Anchored,
) -> Lost:
    if home:
        candidates = [state.namespace(home)] if home not in settings.exempt_namespaces else []
    else:
        candidates = [ns for ns in state.namespaces() if ns.name not in settings.exempt_namespaces]
    lost: Lost = {}
    # Namespaces whose views have the same shapes (and their policies the same anchor order)
    # before and after lose the same pods: judge one, tell the others from it. Messages name
    # the objects of the first namespace listed, so that one is judged on its own.
    directions = tuple(settings.get(DIRECTIONS))
    views: dict[str, tuple[NamespaceView, NamespaceView, bool, tuple[object, ...]]] = {}
    for namespace in candidates:
        if namespace is None or namespace.terminating:
            continue
        if not home and not _may_apply(namespace, state, (before, after)):
            continue
        stack = state.stack(namespace.name)
        # "Before" is the object the API server says is stored, so a cache that has not seen
        # it yet cannot hide what the change removes.
        was = _changed(stack, home, before, before).for_namespace(namespace)
        now = _changed(stack, home, before, after).for_namespace(namespace)
        anchors = not lost and not anchored
        key = (
            directions,
            anchors,
            equivalence(was),
            equivalence(now),
            anchor_ranks(was),
            anchor_ranks(now),
        )
        name = namespace.name
        exact = True
        found = _JUDGED.get((key, name))
        if found is None:
            found = _JUDGED.get(key)
            exact = found is None
        if found is None:
            # One namespace is enough to refuse for the anchor's sake (and the message names
            # one); losing isolation outright is looked for everywhere, and counted.
            found = _judge(was, now, settings, anchors=anchors)
            _JUDGED.put(key, found)
            if found[0] or found[1]:
                _JUDGED.put((key, name), found)
        losses, moved = found
        if losses:
            lost[name] = [dataclasses.replace(loss, namespace=name) for loss in losses]
            views[name] = (was, now, exact, key)
        elif moved and not lost:
            anchored[name] = [dataclasses.replace(m, namespace=name) for m in moved]
            views[name] = (was, now, exact, key)
    if lost:
        anchored.clear()
    if lost or anchored:
        _judge_shown(min(lost or anchored), views, settings, lost, anchored, literals)
    return lost


def _judge_shown(
    shown: str,
    views: Mapping[str, tuple[NamespaceView, NamespaceView, bool, tuple[object, ...]]],
    settings: Settings,
    lost: Lost,
    anchored: Anchored,
    literals: dict[str, dict[str, set[str]]],
) -> None:
    """Judge the namespace the message details on its own, if its result was shared."""
    was, now, exact, key = views[shown]
    if not exact:
        anchors = not lost
        losses, moved = _judge(was, now, settings, anchors=anchors)
        # Kept for this namespace when it is what the key stands for (with losses, the
        # anchors are not looked at whichever way the key was judged).
        if losses or key[1] == anchors:
            _JUDGED.put((key, shown), (losses, moved))
        if lost:
            lost[shown] = losses
        else:
            anchored[shown] = moved
    literals[shown] = pod_literals(was, now)


def _judge(
    was: NamespaceView, now: NamespaceView, settings: Settings, *, anchors: bool = True
) -> Judged:
    """What going from `was` to `now` loses: isolation itself, or (with every pod still
    isolated in the judge's view, and `anchors`) what keeps concurrent changes safe."""
    losses: list[IsolationLoss] = []
    moved: list[AnchorLoss] = []
    for direction in settings.get(DIRECTIONS):
        loss = compare_views(was, now, direction)
        if loss is not None:
            losses.append(loss)
        elif anchors and not losses:
            anchor = anchor_loss(was, now, direction)
            if anchor is not None:
                moved.append(anchor)
    return losses, ([] if losses else moved)


def _relabel(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:  # noqa: PLR0911 - each request it does not judge returns early
    """A Namespace UPDATE that changes its labels: the same pods, other selectors."""
    if request.operation is not Operation.UPDATE:
        return []
    if not isinstance(request.obj, Mapping) or not isinstance(request.old_obj, Mapping):
        return []
    new = Namespace.from_object(request.obj)
    old = Namespace.from_object(request.old_obj)
    name = request.name or new.name
    if not name or name in settings.exempt_namespaces or new.terminating:
        return []
    if dict(old.labels) == dict(new.labels):
        return []
    stack = state.stack(name)
    was, now = stack.for_namespace(old), stack.for_namespace(new)
    losses, moved = _judge(was, now, settings)
    subject = reviewed_object(request)
    if losses:
        literals = {name: pod_literals(was, now)}
        return [_finding(request, subject, {name: losses}, settings, literals)]
    if moved:
        return [_anchor_finding(request, subject, {name: moved}, settings, None)]
    return []


def _finding(
    request: Request,
    subject: ReviewedObject,
    lost: Lost,
    settings: Settings,
    literals: Mapping[str, Mapping[str, set[str]]],
) -> Finding:
    deleting = request.operation is Operation.DELETE
    names = sorted(lost)
    directions_lost = {name: [loss.direction for loss in lost[name]] for name in names}
    where = describe_lost(directions_lost)
    every_pod = all(loss.every_pod for losses in lost.values() for loss in losses)
    first = lost[names[0]][0]
    detail = "" if every_pod else f" ({_who(first, literals.get(names[0], {}))})"
    # What decides after the change, unless it is plain: a deleted only default-deny.
    cause = "" if deleting and every_pod else f" After the change: {first.after.text}."
    if len(names) == 1:
        gone = "delete the namespace if it is no longer needed"
    else:
        gone = "delete those namespaces if they are no longer needed"
    if deleting:
        fix = f"Apply a replacement default-deny there first, or {gone}."
    elif request.kind == "Namespace":
        fix = "Keep the labels the isolating policies select on, or isolate it another way first."
    elif request.operation is Operation.CREATE:
        fix = "Restrict its rules with peers or ports so that they do not admit all traffic."
    else:
        fix = (
            "Keep it a default-deny (selecting every pod, the direction in its types, no "
            f"allow-all rule), apply a replacement default-deny there first, or {gone}."
        )
    action = _action(request)
    message = f"[{ID}] {action} {subject.phrase} would leave {where}{detail}. {fix}{cause}"
    directions = ", ".join(
        d for d in settings.get(DIRECTIONS) if any(d in v for v in directions_lost.values())
    )
    short_where = f'"{names[0]}" loses' if len(names) == 1 else f"{len(names)} namespaces lose"
    summary = fit(
        message,
        f'[{ID}] {action.lower()} {subject.kind} "{subject.name}": '
        f"{short_where} default-deny ({directions})",
    )
    return subject.finding(ID, message, summary)


def _action(request: Request) -> str:
    if request.operation is Operation.UPDATE:
        return "Relabelling" if request.kind == "Namespace" else "Updating"
    return "Deleting" if request.operation is Operation.DELETE else "Creating"


def _anchor_finding(
    request: Request,
    subject: ReviewedObject,
    anchored: Anchored,
    settings: Settings,
    before: CompiledPolicy | Tier | None,
) -> Finding:
    """The change would leave pods isolated only by policies a concurrent change may remove."""
    names = sorted(anchored)
    first = anchored[names[0]][0]
    directions = [
        d for d in settings.get(DIRECTIONS) if any(m.direction == d for m in anchored[names[0]])
    ]
    if first.every_pod:
        who = f'every pod of namespace "{names[0]}"'
    else:
        shown = ", ".join(_labels(pod) for pod in first.pods)
        more = first.count - len(first.pods)
        who = f"pods labelled {shown}" + (f" and {more} more" if more > 0 else "")
        who += f' in namespace "{names[0]}"'
    count = len(first.others) + 1
    itself = isinstance(before, CompiledPolicy) and before.key == first.anchor.key
    others = and_join([str(p.ref) for p in first.others[:3]])
    if len(first.others) > 3:
        others += f" and {len(first.others) - 3} more"
    deleting = request.operation is Operation.DELETE
    action = _action(request)
    where = f"{who} for {and_join(directions)}"
    cluster_wide = not first.anchor.home
    why = (
        f"the one kept ({first.reason}) so that changes at the same instant cannot remove them all"
    )
    if itself and deleting:
        what = f"of the {count} policies that each isolate {where}, it is {why}"
    elif itself:
        what = (
            f"it would stop isolating {where}, and of the {count} policies that each do, "
            f"it is {why}"
        )
    else:
        exist = "exists" if len(first.others) == 1 else "exist"
        what = (
            f"it would leave {where} isolated only while {others} {exist}, and the policies "
            f"that each isolate them may be deleted at the same instant but one, "
            f"{first.anchor.ref} ({first.reason}). With that one alone: {first.after.text}"
        )
    verb = "Delete" if deleting else "Change"
    replacement = "a newer cluster-scoped default-deny" if cluster_wide else "a newer default-deny"
    if itself:
        fix = f"{verb} {others} instead, or apply {replacement} first."
    elif request.kind == "Namespace":
        fix = f"Keep the labels {first.anchor.ref} selects on, or apply {replacement} first."
    else:
        fix = (
            f"Change it so that {first.anchor.ref} alone keeps them isolated, or re-apply what "
            "it relies on as a newer policy first."
        )
    message = f"[{ID}] {action} {subject.phrase} is refused: {what}. {fix}"
    summary = fit(
        message,
        f'[{ID}] {action.lower()} {subject.kind} "{subject.name}": '
        + (
            f'the policy that keeps "{names[0]}" isolated ({", ".join(directions)})'
            if itself
            else f'"{names[0]}" isolated only while others last ({", ".join(directions)})'
        ),
    )
    return subject.finding(ID, message, summary)


def _who(loss: IsolationLoss, literals: Mapping[str, set[str]]) -> str:
    """Which pods lose: 'pods without app=web', or the representatives' label sets."""
    keys = {key for pod in loss.pods for key in pod}
    if len(keys) == 1 and loss.count == len(loss.pods):
        (key,) = keys
        values = {pod.get(key) for pod in loss.pods}
        if None in values and FRESH_VALUE in values:
            kept = sorted(literals.get(key, set()) - values)
            if len(kept) == 1:
                return f"pods without {key}={kept[0]}"
            if kept:
                return f"pods whose {key} is not one of {', '.join(kept)}"
    shown = ", ".join(_labels(pod) for pod in loss.pods)
    more = loss.count - len(loss.pods)
    return f"pods labelled {shown}" + (f" and {more} more" if more > 0 else "")


def pod_literals(*views: NamespaceView) -> dict[str, set[str]]:
    """The pod label values the views' policies name, per key (for describing who loses)."""
    found: dict[str, set[str]] = {}
    for view in views:
        for policy in view.policies():
            for key, values in policy.pod_literals.items():
                found.setdefault(key, set()).update(values)
    return found


def _labels(pod: Mapping[str, str]) -> str:
    if not pod:
        return "{} (none of the labels the policies name)"
    shown = (f"{k}={FRESH_TEXT if v == FRESH_VALUE else v}" for k, v in sorted(pod.items()))
    return "{" + ", ".join(shown) + "}"


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


RULE = Rule(
    id=ID,
    title="ProtectDefaultDeny",
    summary="A namespace's default-deny network policy is not deleted or weakened.",
    severity=Severity.HIGH,
    default_mode=None,
    settings=(),
    kinds=kinds_of(*JUDGED_FLAVORS) | kinds(("", "Namespace")),
    operations=frozenset({Operation.CREATE, Operation.UPDATE, Operation.DELETE}),
    needs_state=True,
    docs="protect-default-deny",
    check=check,
    judges_existing=False,
)
