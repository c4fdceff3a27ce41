"""Default-deny isolation: which policies provide it, and the three policies that guard it.

A namespace is isolated in direction D (Ingress, Egress) when some network policy denies all D
traffic to every pod in it except what other policies allow: its "default-deny providers"
(SPEC 2.5). `providers_for` finds them per flavor (Kubernetes NetworkPolicy here, Calico in
calico.py, AdminNetworkPolicy and BaselineAdminNetworkPolicy in admin.py);
`require-default-deny` wants one per required direction before pods run,
`protect-default-deny` keeps the last one from being deleted or weakened, and
`restrict-allow-all` flags rules that admit everything and so cancel the default-deny.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence

from webhook.errors import GuardrailError
from webhook.policy import admin, calico
from webhook.policy.model import (
    MESSAGE_SUMMARY_LIMIT,
    ClusterState,
    Direction,
    Finding,
    Namespace,
    Obj,
    Operation,
    PolicyKey,
    PolicyRef,
    Providers,
    Request,
    Settings,
    summarize,
)
from webhook.policy.objects import (
    ANP,
    BANP,
    CALICO,
    CALICO_GLOBAL,
    CALICO_STAGED,
    GLOBAL_FLAVORS,
    K8S,
    flavor_for,
    flavor_of,
    ref_of,
)
from webhook.policy.workloads import (
    Subject,
    is_being_deleted,
    is_mirror_pod,
    is_pod,
    is_workload,
    subject_of,
)

REQUIRE_DEFAULT_DENY = "require-default-deny"
PROTECT_DEFAULT_DENY = "protect-default-deny"
RESTRICT_ALLOW_ALL = "restrict-allow-all"
MAX_LISTED_NAMESPACES = 10
MAX_SELECTOR_WARNINGS = 5

# Flavors whose objects restrict-allow-all reads. Not BANP: it is evaluated below every
# NetworkPolicy (and Calico tier), so its Allow rules cannot reopen any other default-deny.
_RULE_FLAVORS = frozenset({K8S, CALICO, CALICO_GLOBAL, ANP})
# Flavors that can be providers, hence whose changes protect-default-deny judges.
_PROVIDER_FLAVORS = frozenset({K8S, CALICO, CALICO_GLOBAL, ANP, BANP})
# (direction, rules key, peers key) of a Kubernetes NetworkPolicy spec.
_K8S_RULES = ((Direction.INGRESS, "ingress", "from"), (Direction.EGRESS, "egress", "to"))


# -- Kubernetes NetworkPolicy (SPEC 2.5) ----------------------------------------------------------
def effective_policy_types(spec: object) -> tuple[Direction, ...]:
    """The directions a NetworkPolicy spec isolates, after the API server's defaulting.

    An explicit non-empty `policyTypes` is taken as is (unknown entries ignored). Omitted (or
    empty) means `[Ingress]`, plus `Egress` when `egress` holds at least one rule — exactly
    the API server's `len(spec.Egress) != 0`, so `egress: []` alone does not isolate Egress.
    """
    if not isinstance(spec, Mapping):
        return (Direction.INGRESS,)
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        found: list[Direction] = []
        for item in types:
            if item in (Direction.INGRESS, Direction.EGRESS) and item not in found:
                found.append(Direction(item))
        return tuple(found)
    egress = spec.get("egress")
    if isinstance(egress, list) and egress:
        return (Direction.INGRESS, Direction.EGRESS)
    return (Direction.INGRESS,)


def is_empty_selector(selector: object) -> bool:
    """True for a label selector that selects everything: absent, null, or `{}`.

    `matchLabels: {}` and `matchExpressions: []` (or null) still select everything. A selector
    that is not a mapping is malformed and selects nothing we can vouch for.
    """
    if selector is None:
        return True
    if not isinstance(selector, Mapping):
        return False
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def unrestricted_rules(obj: Obj) -> list[tuple[Direction, int]]:
    """(direction, index) of each rule of a NetworkPolicy that admits all traffic.

    A rule is unrestricted when it has no `ports` and its peer list (`from` / `to`) is absent or
    empty, or holds a peer that matches everything: `namespaceSelector: {}` with no or an empty
    `podSelector`, or an `ipBlock` of `0.0.0.0/0` or `::/0` (any /0) without `except`.
    A null rule (`ingress: [null]`, `ingress: [{}]`) is an empty rule: it allows all.
    """
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    found: list[tuple[Direction, int]] = []
    for direction, rules_key, peers_key in _K8S_RULES:
        rules = spec.get(rules_key)
        if not isinstance(rules, list):
            continue
        found.extend(
            (direction, index)
            for index, rule in enumerate(rules)
            if _is_unrestricted_rule(rule, peers_key)
        )
    return found


def _is_unrestricted_rule(rule: object, peers_key: str) -> bool:
    if rule is None:
        rule = {}
    if not isinstance(rule, Mapping):
        return False
    if rule.get("ports"):
        return False
    peers = rule.get(peers_key)
    if not peers:
        return True
    return isinstance(peers, list) and any(_peer_matches_everything(peer) for peer in peers)


def _peer_matches_everything(peer: object) -> bool:
    if not isinstance(peer, Mapping):
        return False
    block = peer.get("ipBlock")
    if isinstance(block, Mapping) and not block.get("except"):
        cidr = block.get("cidr")
        if isinstance(cidr, str):
            try:
                # Host bits are allowed by the API server ("10.0.0.0/0"); /0 is everything.
                if ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0:
                    return True
            except ValueError:
                return False
    # `namespaceSelector: null` means absent (the policy's own namespace), not "all".
    namespaces = peer.get("namespaceSelector")
    return (
        isinstance(namespaces, Mapping)
        and is_empty_selector(namespaces)
        and is_empty_selector(peer.get("podSelector"))
    )


def k8s_provided_directions(obj: Obj) -> frozenset[Direction]:
    """Directions for which a NetworkPolicy is a default-deny of its whole namespace.

    Needs an empty `podSelector` (absent counts: the API server stores `{}`), the direction in
    the effective policyTypes, and no unrestricted rule for it. Rules with peers or ports
    (e.g. DNS egress on port 53) do not undo the default-deny.
    """
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping) or not is_empty_selector(spec.get("podSelector")):
        return frozenset()
    reopened = {direction for direction, _ in unrestricted_rules(obj)}
    return frozenset(d for d in effective_policy_types(spec) if d not in reopened)


# -- providers -----------------------------------------------------------------------------
def provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """Directions for which obj (of this flavor) is a default-deny provider in namespace."""
    if flavor == K8S:
        return k8s_provided_directions(obj)
    if flavor in (CALICO, CALICO_GLOBAL):
        try:
            return calico.provided_directions(obj, flavor, namespace)
        except GuardrailError:
            # A selector that does not parse selects nothing we can vouch for; `check` reports
            # the input error itself, and one bad object must not fail every decision.
            return frozenset()
    if flavor in (ANP, BANP):
        return admin_provided_directions(obj, flavor, namespace)
    # Staged policies only report what they would do; unknown flavors do nothing.
    return frozenset()


def admin_provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """AdminNetworkPolicy / BaselineAdminNetworkPolicy as providers (admin.py decides).

    Egress only, when the subject covers the namespace and the egress rules deny every
    destination (`networks` 0.0.0.0/0 and ::/0) before any rule reopens everything; never
    Ingress, since v1alpha1 ingress peers cannot name nodes or the outside world.
    """
    return admin.provided_directions(obj, flavor, namespace)


def providers_for(
    ns: Namespace, namespaced: Iterable[Obj], global_policies: Iterable[Obj]
) -> Providers:
    """For each direction, the policies that give namespace ns a default-deny.

    `namespaced` are the policies stored in ns, `global_policies` the cluster-scoped ones (each
    decides by its own selectors whether it covers ns). Directions without a provider are absent.
    """
    found: dict[Direction, list[PolicyRef]] = {}
    for objs in (namespaced, global_policies):
        for obj in objs:
            flavor = flavor_of(obj)
            if flavor is None or flavor == CALICO_STAGED:
                continue
            directions = provided_directions(obj, flavor, ns)
            if not directions:
                continue
            ref = ref_of(obj, flavor, ns.name)
            for direction in directions:
                found.setdefault(direction, []).append(ref)
    return {direction: tuple(refs) for direction, refs in found.items()}


def missing_directions(
    providers: Providers, required: Sequence[Direction]
) -> tuple[Direction, ...]:
    """The required directions that have no provider, in the configured order."""
    return tuple(d for d in required if not providers.get(d))


def default_deny_command(namespace: str, directions: Sequence[Direction]) -> str:
    """A kubectl one-liner applying a NetworkPolicy that is a default-deny for directions.

    Named after what it covers (`default-deny-egress`) unless it covers both, so applying it
    never overwrites an existing `default-deny` that provides the other direction.
    """
    both = set(directions) >= {Direction.INGRESS, Direction.EGRESS}
    name = "default-deny" if both else "default-deny-" + "-".join(d.lower() for d in directions)
    manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": [str(d) for d in directions]},
    }
    return f"echo '{json.dumps(manifest, separators=(',', ':'))}' | kubectl apply -f -"


# -- require-default-deny -----------------------------------------------------------------------
def require_default_deny(
    request: Request, state: ClusterState, settings: Settings
) -> list[Finding]:
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
    subject = subject_of(request)
    namespace = subject.namespace
    if not namespace or namespace in settings.exempt_namespaces:
        return []
    known = state.namespace(namespace)
    if known is not None and known.terminating:
        return []
    missing = missing_directions(state.providers(namespace), settings.directions)
    if not missing:
        return []
    wanted = _and(missing)
    message = (
        f'[{REQUIRE_DEFAULT_DENY}] {subject.phrase} cannot run there: namespace "{namespace}" '
        f"has no default-deny network policy for {wanted}. "
        f"Apply one first: {default_deny_command(namespace, missing)}"
    )
    summary = _fit(
        message,
        f'[{REQUIRE_DEFAULT_DENY}] {subject.kind} "{subject.name}": namespace "{namespace}" '
        f"has no default-deny for {wanted}",
    )
    return [
        Finding(
            policy=REQUIRE_DEFAULT_DENY,
            kind=subject.kind,
            namespace=namespace,
            name=subject.name,
            message=message,
            summary=summary,
        )
    ]


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
    missing = missing_directions(providers, settings.directions)
    if not missing:
        return []
    wanted = _and(missing)
    message = (
        f'[{REQUIRE_DEFAULT_DENY}] Namespace "{name}" has no default-deny network policy for '
        f"{wanted}: pods created in it will be rejected until one exists. "
        f"Apply one right after creating it: {default_deny_command(name, missing)}"
    )
    summary = _fit(
        message,
        f'[{REQUIRE_DEFAULT_DENY}] Namespace "{name}": pods will be rejected until a '
        f"default-deny for {wanted} exists",
    )
    return [
        Finding(
            policy=REQUIRE_DEFAULT_DENY,
            kind="Namespace",
            namespace="",
            name=name,
            message=message,
            summary=summary,
            advisory=True,
        )
    ]


# -- protect-default-deny -----------------------------------------------------------------------
def protect_default_deny(
    request: Request, state: ClusterState, settings: Settings
) -> list[Finding]:
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
    if flavor not in _PROVIDER_FLAVORS:
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
    subject = subject_of(request)
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
    message = f"[{PROTECT_DEFAULT_DENY}] {action} {subject.phrase} would leave {where}. {fix}"
    directions = ", ".join(d for d in settings.directions if any(d in v for v in lost.values()))
    short_where = f'"{names[0]}" loses' if len(names) == 1 else f"{len(names)} namespaces lose"
    summary = _fit(
        message,
        f'[{PROTECT_DEFAULT_DENY}] {action.lower()} {subject.kind} "{subject.name}": '
        f"{short_where} default-deny ({directions})",
    )
    return [
        Finding(
            policy=PROTECT_DEFAULT_DENY,
            kind=subject.kind,
            namespace=subject.namespace,
            name=subject.name,
            message=message,
            summary=summary,
        )
    ]


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
        return f'namespace "{names[0]}" without a default-deny for {_and(lost[names[0]])}'
    kinds = {tuple(lost[name]) for name in names}
    if len(kinds) == 1:
        return (
            f"{len(names)} namespaces without a default-deny for {_and(next(iter(kinds)))}: "
            f"{namespace_list(names)}"
        )
    shown = ", ".join(f'"{name}" ({_and(lost[name])})' for name in names[:MAX_LISTED_NAMESPACES])
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
    lost = tuple(d for d in settings.directions if d in before and d not in after and d not in kept)
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
                d for d in settings.directions if any(ref.key == key for ref in now.get(d, ()))
            ]
        else:
            # The cache has not seen the policy yet: judge from the API server's oldObject.
            assert old is not None
            now = providers_for(ns, state.policies_in(ns.name), [*others, old])
            relied = [d for d in settings.directions if now.get(d)]
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


# -- restrict-allow-all ---------------------------------------------------------------------------
def restrict_allow_all(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:
    """A network policy must not hold a rule that admits all traffic (default mode: warn).

    Objects: CREATE/UPDATE of Kubernetes NetworkPolicy, Calico NetworkPolicy and
    GlobalNetworkPolicy, and AdminNetworkPolicy. Reads `spec.ingress` / `spec.egress` and the
    effective types (Kubernetes policyTypes, Calico types: rules of a direction the policy does
    not apply to do nothing). Allows rules restricted by ports or by peers other than
    match-everything ones (SPEC 2.5; for an ANP, Allow/Pass to `namespaces: {}`, every pod, or
    a /0 network). A Calico policy with a selector that does not parse also gets an advisory
    finding (a warning, never a denial: validating Calico objects is the API server's job).
    Example:

        [restrict-allow-all] NetworkPolicy "open" in namespace "shop": rule spec.ingress[0]
        admits all traffic and cancels the namespace's default-deny. Restrict it with from
        peers or ports.
    """
    del state  # the verdict depends on the object alone
    if request.operation not in (Operation.CREATE, Operation.UPDATE):
        return []
    flavor = flavor_for(request.group, request.kind)
    obj = request.obj
    if flavor not in _RULE_FLAVORS or not isinstance(obj, Mapping):
        return []
    subject = subject_of(request)
    if flavor not in GLOBAL_FLAVORS and subject.namespace in settings.exempt_namespaces:
        return []
    findings: list[Finding] = []
    if flavor in (CALICO, CALICO_GLOBAL):
        findings.extend(_selector_findings(obj, subject))
    rules = _allow_all_rules(obj, flavor)
    if rules:
        findings.append(_allow_all_finding(rules, flavor, subject))
    return findings


def _allow_all_rules(obj: Obj, flavor: str) -> list[tuple[Direction, int]]:
    """The unrestricted rules of a policy, in the directions the policy applies to."""
    if flavor == K8S:
        isolated = effective_policy_types(obj.get("spec"))
        return [(d, i) for d, i in unrestricted_rules(obj) if d in isolated]
    if flavor == ANP:
        return admin.unrestricted_rules(obj, flavor)
    spec = obj.get("spec")
    types = calico.effective_types(spec) if isinstance(spec, Mapping) else None
    rules = calico.unrestricted_rules(obj)
    # Malformed `types` (the API server rejects them): report every rule rather than none.
    return rules if types is None else [(d, i) for d, i in rules if d in types]


def _allow_all_finding(
    rules: Sequence[tuple[Direction, int]], flavor: str, subject: Subject
) -> Finding:
    paths = [f"spec.{direction.lower()}[{index}]" for direction, index in rules]
    one = len(paths) == 1
    scope = (
        "the default-deny of every namespace it applies to"
        if flavor in GLOBAL_FLAVORS
        else "the namespace's default-deny"
    )
    if flavor in (K8S, ANP):
        directions = {direction for direction, _ in rules}
        peers = "/".join(
            word
            for d, word in ((Direction.INGRESS, "from"), (Direction.EGRESS, "to"))
            if d in directions
        )
        how = f"{peers} peers or ports"
    else:
        how = "source/destination criteria (selector, namespaceSelector, nets, ports) or a protocol"
    message = (
        f"[{RESTRICT_ALLOW_ALL}] {subject.phrase}: "
        f"{'rule' if one else 'rules'} {', '.join(paths)} "
        f"{'admits' if one else 'admit'} all traffic and {'cancels' if one else 'cancel'} "
        f"{scope}. Restrict {'it' if one else 'them'} with {how}."
    )
    summary = _fit(
        message,
        f'[{RESTRICT_ALLOW_ALL}] {subject.kind} "{subject.name}": {", ".join(paths)} '
        f"{'admits' if one else 'admit'} all traffic, cancelling default-deny",
    )
    return Finding(
        policy=RESTRICT_ALLOW_ALL,
        kind=subject.kind,
        namespace=subject.namespace,
        name=subject.name,
        message=message,
        summary=summary,
    )


def _selector_findings(obj: Obj, subject: Subject) -> list[Finding]:
    """One advisory finding per Calico selector that does not parse, naming field and column.

    Advisory: Calico's API server owns the validation of its objects and rejects these itself
    (through the CRDs, Calico cannot enforce the policy), so Guardrail warns and never denies.
    """
    errors = calico.selector_errors(obj)
    findings: list[Finding] = []
    for count, (path, error) in enumerate(errors[:MAX_SELECTOR_WARNINGS], start=1):
        where = f"{path} column {error.column}" if error.column else path
        message = (
            f"[{RESTRICT_ALLOW_ALL}] {subject.phrase} has an invalid selector at {where}: "
            f"{error.message}; Calico will reject it."
        )
        if count == MAX_SELECTOR_WARNINGS and len(errors) > count:
            # Each warning costs the API server header space: name a few, count the rest.
            message += f" {len(errors) - count} more of its selectors are invalid too."
        # Field and column first, so that a long name is what a cut warning loses.
        short = (
            f'[{RESTRICT_ALLOW_ALL}] invalid selector at {where} in {subject.kind} "{subject.name}"'
        )
        findings.append(
            Finding(
                policy=RESTRICT_ALLOW_ALL,
                kind=subject.kind,
                namespace=subject.namespace,
                name=subject.name,
                message=message,
                summary=_fit(message, short),
                advisory=True,
            )
        )
    return findings


# -- shared ---------------------------------------------------------------------------------------
def _and(directions: Sequence[Direction]) -> str:
    """'Ingress', 'Ingress and Egress'."""
    names = [str(d) for d in directions]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _fit(message: str, short: str) -> str:
    """The message itself when it fits a warning, else the purpose-built short text."""
    return message if len(message) <= MESSAGE_SUMMARY_LIMIT else summarize(short)
