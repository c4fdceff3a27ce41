"""Change impact for protect-default-deny (SPEC 2.3): which pods would lose isolation.

A change is harmless only if no possible pod of the namespace loses isolation. Pods are
represented by label sets built from the literals of the selectors that can select pods of
the namespace in either stack: for each key read, absent, each value named, and one value no
selector names (shown as "(any other value)"); service accounts likewise. Two pods that
agree on those keys are told apart by no selector, so comparing the representatives compares
every pod. Past MAX_REPRESENTATIVES combinations, or when a selector matches pod labels by
substring (`contains`, `starts with`, `ends with`: no finite set of literal values stands for
every pod then), the comparison falls back to fully unknown labels, which is conservative (a
pod set only possibly isolated before counts as losing), and says so.

A representative loses isolation when it is isolated before and not isolated after, or
possibly isolated before (UNKNOWN: a service account, `global()` or near-all addresses are
not known) and certainly open after.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from webhook.policy.engine.core import CompiledPolicy, Endpoint, Labels, Tier, Verdict
from webhook.policy.engine.explain import Decision
from webhook.policy.engine.stack import NamespaceView, PolicyStack
from webhook.policy.model import Direction, Namespace

MAX_REPRESENTATIVES = 512
MAX_LISTED = 5
# A value no selector can name: label values never hold "~", so no literal is in it.
FRESH_VALUE = "~"
FRESH_TEXT = "(any other value)"


@dataclass(frozen=True, slots=True)
class IsolationLoss:
    """Pods of `namespace` that lose isolation for `direction`.

    `every_pod`, or `pods` lists (at most MAX_LISTED) label sets of pods that lose it, keys
    absent from a set being absent on the pod; `accounts` names the service accounts such
    pods run as when only some do ("" when it does not matter). `before` / `after` are the
    decisions for the
    first such pod: `after.text` names the object and rule responsible. `approximate` is set
    when the representatives were too many and fully unknown labels were compared instead.
    """

    namespace: str
    direction: Direction
    every_pod: bool
    pods: tuple[Mapping[str, str], ...]
    count: int
    before: Decision
    after: Decision
    approximate: bool = False
    accounts: tuple[str, ...] = ()
    # The first pod found losing (labels, service account); None for the approximate form.
    first_pod: tuple[Mapping[str, str], str] | None = None

    @property
    def text(self) -> str:
        if self.every_pod:
            who = "every pod"
        elif self.pods == ({},) and self.accounts:
            who = "pods"
        else:
            sets = ", ".join(_show(p) for p in self.pods)
            more = self.count - len(self.pods)
            who = f"pods labelled {sets}" + (f" and {more} more" if more > 0 else "")
        if self.accounts and not self.every_pod:
            names = ", ".join(FRESH_TEXT if a == FRESH_VALUE else f'"{a}"' for a in self.accounts)
            who += f" running as service account {names}"
        note = " (labels not all compared)" if self.approximate else ""
        return (
            f'{who} in namespace "{self.namespace}" would lose {self.direction} isolation'
            f"{note}: {self.after.text}"
        )


def _show(labels: Mapping[str, str]) -> str:
    if not labels:
        return "{} (none of the labels the policies name)"
    parts = [f"{k}={FRESH_TEXT if v == FRESH_VALUE else v}" for k, v in sorted(labels.items())]
    return "{" + ", ".join(parts) + "}"


def representatives(*views: NamespaceView) -> list[tuple[dict[str, str], str]] | None:
    """Representative pods (labels, service account) for the views' policies; None past the
    bound. Service accounts range over the names the policies read and one they do not."""
    literals: dict[str, set[str]] = {}
    accounts: set[str] = set()
    for view in views:
        for policy in view.policies():
            if policy.string_matches:
                return None
            for key, values in policy.pod_literals.items():
                literals.setdefault(key, set()).update(values)
            accounts |= policy.account_literals
    keys = sorted(literals)
    options: list[list[str | None]] = [[None, *sorted(literals[k]), FRESH_VALUE] for k in keys]
    account_options = [*sorted(accounts), FRESH_VALUE]
    total = len(account_options)
    for option in options:
        total *= len(option)
        if total > MAX_REPRESENTATIVES:
            return None
    return [
        ({k: v for k, v in zip(keys, combo, strict=True) if v is not None}, account)
        for combo in itertools.product(*options)
        for account in account_options
    ]


def _loses(before: Verdict, after: Verdict) -> bool:
    if before is Verdict.ISOLATED:
        return after is not Verdict.ISOLATED
    return before is Verdict.UNKNOWN and after is Verdict.OPEN


def compare_views(
    before: NamespaceView, after: NamespaceView, direction: Direction
) -> IsolationLoss | None:
    """Pods that lose isolation going from `before` to `after` (views of one namespace,
    possibly with different labels); None when no possible pod does."""
    if signature(before) == signature(after):
        return None  # the same policies and tiers judge the same namespace: nothing changes
    # Two decisions settle most changes: every pod open before has nothing to lose, every pod
    # isolated after has lost nothing.
    was = before.decide_any_pod(direction)
    if was.verdict is Verdict.OPEN:
        return None
    now = after.decide_any_pod(direction)
    if now.verdict is Verdict.ISOLATED:
        return None
    reps = representatives(before, after)
    name = after.namespace.name
    if reps is None:
        return IsolationLoss(name, direction, True, (), 1, was, now, approximate=True)
    losing: list[tuple[dict[str, str], str, Decision, Decision]] = []
    for labels, account in reps:
        was = before.decide(before.endpoint(Labels.exactly(labels), account), direction)
        if was.verdict is Verdict.OPEN:
            continue
        now = after.decide(after.endpoint(Labels.exactly(labels), account), direction)
        if _loses(was.verdict, now.verdict):
            losing.append((labels, account, was, now))
    if not losing:
        return None
    _, _, was, now = losing[0]
    pods: list[dict[str, str]] = []
    for labels, _, _, _ in losing:
        if labels not in pods:
            pods.append(labels)
    all_accounts = {account for _, account in reps}
    lost_accounts = sorted({account for _, account, _, _ in losing})
    accounts = tuple(lost_accounts) if len(lost_accounts) < len(all_accounts) else ()
    every = len(losing) == len(reps)
    first_labels, first_account, _, _ = losing[0]
    return IsolationLoss(
        name,
        direction,
        every,
        tuple(pods[:MAX_LISTED]),
        len(pods),
        was,
        now,
        accounts=accounts,
        first_pod=(first_labels, first_account),
    )


def equivalence(view: NamespaceView) -> tuple[object, ...]:
    """Equal for two views (of two namespaces) that judge every pod alike.

    Policies compare by shape (content without their namespace) in tier and walk order,
    with whether each selects every pod; the namespace itself only counts when some policy
    reads it at the level of a pod.
    """
    sensitive = any(p.namespace_sensitive for p in view.policies())
    namespace: object = (
        (view.namespace.name, tuple(sorted(view.namespace.labels.items()))) if sensitive else None
    )
    return (
        namespace,
        tuple(
            (
                vt.tier,
                tuple(
                    (
                        d.value,
                        tuple(
                            (
                                p.shape or f"{p.key}/{p.home}/{p.fingerprint}",
                                id(p) in view.preselected,
                            )
                            for p in ps
                        ),
                    )
                    for d, ps in sorted(vt.by_direction.items())
                ),
            )
            for vt in view.tiers
        ),
    )


def _rebased(loss: IsolationLoss, before: NamespaceView, after: NamespaceView) -> IsolationLoss:
    """A loss found in an equivalent namespace, told for this one (its own decisions)."""
    if loss.first_pod is None:
        was = before.decide_any_pod(loss.direction)
        now = after.decide_any_pod(loss.direction)
    else:
        labels, account = loss.first_pod
        endpoint = Labels.exactly(labels)
        was = before.decide(before.endpoint(endpoint, account), loss.direction)
        now = after.decide(after.endpoint(endpoint, account), loss.direction)
    return dataclasses.replace(loss, namespace=after.namespace.name, before=was, after=now)


def signature(view: NamespaceView) -> tuple[object, ...]:
    return (
        view.namespace.name,
        tuple(sorted(view.namespace.labels.items())),
        tuple(
            (
                vt.tier,
                tuple(
                    (d.value, tuple((p.key, p.fingerprint) for p in ps))
                    for d, ps in sorted(vt.by_direction.items())
                ),
            )
            for vt in view.tiers
        ),
    )


def pods_losing_isolation(
    before: PolicyStack, after: PolicyStack, namespace: Namespace, direction: Direction
) -> IsolationLoss | None:
    """Pods of namespace that lose isolation for direction when `before` becomes `after`."""
    return compare_views(before.for_namespace(namespace), after.for_namespace(namespace), direction)


def pods_losing_isolation_on_relabel(
    stack: PolicyStack, old: Namespace, new: Namespace, direction: Direction
) -> IsolationLoss | None:
    """Pods that lose isolation when a namespace's labels change from `old` to `new`."""
    return compare_views(stack.for_namespace(old), stack.for_namespace(new), direction)


def losses(
    before: PolicyStack,
    after: PolicyStack,
    namespaces: Iterable[Namespace],
    directions: Sequence[Direction],
    changed: Iterable[CompiledPolicy | Tier] = (),
    *,
    views: Callable[[Namespace], NamespaceView] | None = None,
    remove: Collection[str] = (),
    add: Sequence[CompiledPolicy] = (),
) -> Iterator[IsolationLoss]:
    """Every loss over several namespaces and directions (protect-default-deny's sweep).

    `changed` lists the policies removed, added or replaced (old and new forms) and tiers
    changed; when given, namespaces none of the changed policies can select are skipped
    (their views are the same before and after). A changed tier disables the skip.
    With `views` (the caller's cache of `before` views), each after-view is derived from the
    cached one by `remove` (keys) and `add` (`PolicyStack.derive_view`) instead of being
    built from the whole stack.
    """
    # Namespaces whose views have the same shapes before and after lose the same pods: judge
    # one, tell the others from it.
    memo: dict[object, IsolationLoss | None] = {}
    policies = list(changed)
    skip_unselected = bool(policies) and not any(isinstance(p, Tier) for p in policies)
    for namespace in namespaces:
        if skip_unselected:
            probe = Endpoint.any_pod(namespace)
            if all(isinstance(p, CompiledPolicy) and p.selects(probe) is False for p in policies):
                continue
        was = views(namespace) if views is not None else before.for_namespace(namespace)
        now = (
            after.derive_view(was, remove=remove, add=add)
            if views is not None
            else after.for_namespace(namespace)
        )
        shared = (equivalence(was), equivalence(now))
        for direction in directions:
            key = (shared, direction)
            if key in memo:
                template = memo[key]
                loss = None if template is None else _rebased(template, was, now)
            else:
                loss = compare_views(was, now, direction)
                memo[key] = loss
            if loss is not None:
                yield loss
