"""The engine's vocabulary: three-valued truth, verdicts, peers, endpoints and compiled rules.

Everything here is immutable. A compiled policy is built once from a raw object (see the
flavor adapters) and read by every decision, so nothing on the decision path parses text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum

from webhook.policy.model import Direction, Namespace

# True, False, or None for "depends on something not known" (Kleene's logic).
Tri = bool | None


def and3(a: Tri, b: Tri) -> Tri:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or3(a: Tri, b: Tri) -> Tri:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def not3(a: Tri) -> Tri:
    return None if a is None else not a


class Verdict(StrEnum):
    ISOLATED = "isolated"
    OPEN = "open"
    # Some completion of what is not known is open, another isolated: never "isolated".
    UNKNOWN = "unknown"


class Peer(StrEnum):
    """The two unnamed peers of SPEC 2.5: the traffic a default-deny exists to stop."""

    OUTSIDE = "outside"  # an address outside the cluster that no policy names
    FRESH_POD = "fresh-pod"  # an unlabelled pod in a new namespace that no selector names


PEERS = (Peer.OUTSIDE, Peer.FRESH_POD)


class Action(StrEnum):
    ALLOW = "Allow"  # Kubernetes rules, Calico Allow, CNP Accept, ANP/BANP Allow
    DENY = "Deny"
    PASS = "Pass"  # noqa: S105 -- a policy action, not a password
    LOG = "Log"  # Calico Log: never decides


class Layer(StrEnum):
    ADMIN = "Admin"
    TIERS = "tiers"
    BASELINE = "Baseline"


class Special(Enum):
    """Label values that are not strings: one not known, or one no selector names."""

    UNKNOWN = "unknown"
    FRESH = "fresh"


# What a label lookup returns: the value, None when the label is certainly absent, or Special.
Value = str | None | Special


@dataclass(frozen=True, slots=True)
class Labels:
    """A label set as far as it is known.

    `known` holds labels certainly present. When `complete`, every other key is absent;
    otherwise every other key may be absent or carry any value (a pod whose labels are not
    known is `Labels.unknown()`; a template whose labels are known is `Labels.exactly(...)`).
    """

    known: Mapping[str, str] = field(default_factory=dict)
    complete: bool = True

    @staticmethod
    def exactly(labels: Mapping[str, str]) -> Labels:
        return Labels(dict(labels), complete=True)

    @staticmethod
    def partial(labels: Mapping[str, str]) -> Labels:
        return Labels(dict(labels), complete=False)

    @staticmethod
    def unknown() -> Labels:
        return Labels({}, complete=False)


class LabelView:
    """A label lookup for selectors: values, certainly absent keys, unknown keys.

    Keys in `values` have that value (a string or Special.FRESH); other keys are absent when
    `complete` or when they start with one of `known_prefixes`, else unknown; keys in
    `unknown_keys` are unknown whatever the rest says.
    """

    __slots__ = ("complete", "known_prefixes", "unknown_keys", "values")

    def __init__(
        self,
        values: Mapping[str, str | Special],
        *,
        complete: bool,
        known_prefixes: tuple[str, ...] = (),
        unknown_keys: frozenset[str] = frozenset(),
    ) -> None:
        self.values = values
        self.complete = complete
        self.known_prefixes = known_prefixes
        self.unknown_keys = unknown_keys

    def get(self, key: str) -> Value:
        value = self.values.get(key)
        if value is not None:
            return value
        if key in self.unknown_keys:
            return Special.UNKNOWN
        if self.complete or (self.known_prefixes and key.startswith(self.known_prefixes)):
            return None
        return Special.UNKNOWN


# Keys Calico puts on every pod's workload endpoint, after the pod's own labels (so a pod
# cannot change them), and the prefix of the labels it inherits from the namespace profile.
CALICO_NAMESPACE_LABEL = "projectcalico.org/namespace"
CALICO_ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
CALICO_SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
CALICO_NAME_LABEL = "projectcalico.org/name"
CALICO_NAMESPACE_PREFIX = "pcns."
NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A pod as the dataplane sees it (SPEC 2.6); `service_account` None means not known."""

    namespace: str
    namespace_labels: Labels
    pod_labels: Labels
    service_account: str | None = None

    @staticmethod
    def of(
        namespace: Namespace,
        pod_labels: Mapping[str, str] | Labels,
        service_account: str | None = None,
    ) -> Endpoint:
        labels = pod_labels if isinstance(pod_labels, Labels) else Labels.exactly(pod_labels)
        return Endpoint(namespace.name, namespace_labels(namespace), labels, service_account)

    @staticmethod
    def any_pod(namespace: Namespace) -> Endpoint:
        """Every pod the namespace could run: labels and service account not known."""
        return Endpoint(namespace.name, namespace_labels(namespace), Labels.unknown(), None)


def namespace_labels(namespace: Namespace) -> Labels:
    labels = dict(namespace.labels)
    # The API server sets this immutable label on every namespace; files may lack it.
    labels.setdefault(NAME_LABEL, namespace.name)
    return Labels.exactly(labels)


class Context:
    """The label views of one endpoint, built once per decision and shared by every policy."""

    __slots__ = (
        "calico_endpoint",
        "calico_namespace",
        "endpoint",
        "namespace",
        "namespace_view",
        "pod_view",
        "preselected",
        "selection_cache",
        "service_account",
        "service_account_view",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.namespace = endpoint.namespace
        self.service_account = endpoint.service_account
        ns = endpoint.namespace_labels
        pod = endpoint.pod_labels
        self.namespace_view = LabelView(ns.known, complete=ns.complete)
        self.pod_view = LabelView(pod.known, complete=pod.complete)
        calico_ns: dict[str, str | Special] = dict(ns.known)
        calico_ns[CALICO_NAME_LABEL] = endpoint.namespace
        self.calico_namespace = LabelView(calico_ns, complete=ns.complete)
        values: dict[str, str | Special] = dict(pod.known)
        # Calico's own keys win over the pod's; inherited namespace labels are trusted as the
        # namespace's (a pod label spelled `pcns.x` would shadow them; SPEC reads them so).
        values.update({CALICO_NAMESPACE_PREFIX + k: v for k, v in ns.known.items()})
        values[CALICO_NAMESPACE_PREFIX + CALICO_NAME_LABEL] = endpoint.namespace
        values[CALICO_NAMESPACE_LABEL] = endpoint.namespace
        values[CALICO_ORCHESTRATOR_LABEL] = "k8s"
        unknown: frozenset[str] = frozenset()
        if endpoint.service_account is None:
            unknown = frozenset({CALICO_SERVICE_ACCOUNT_LABEL})
        else:
            values[CALICO_SERVICE_ACCOUNT_LABEL] = endpoint.service_account
        self.calico_endpoint = LabelView(
            values,
            complete=pod.complete,
            known_prefixes=(CALICO_NAMESPACE_PREFIX,) if ns.complete else (),
            unknown_keys=unknown,
        )
        # A service account's labels are never known here, only its name.
        sa: dict[str, str | Special] = {}
        if endpoint.service_account is not None:
            sa[CALICO_NAME_LABEL] = endpoint.service_account
        self.service_account_view = LabelView(sa, complete=False)
        self.selection_cache: dict[int, Tri] = {}
        # Ids of policies known to select every pod of the endpoint's namespace (set by views).
        self.preselected: frozenset[int] = frozenset()


# A compiled condition on the endpoint (a policy's selection, a rule's endpoint side).
Predicate = Callable[[Context], Tri]


def always(value: Tri) -> Predicate:
    def predicate(_: Context) -> Tri:
        return value

    return predicate


# The fresh pod of SPEC 2.5 as each selector language sees it: its namespace carries only its
# name, the pod no labels, its service account a name no policy names.
FRESH_NAMESPACE_VIEW = LabelView({NAME_LABEL: Special.FRESH}, complete=True)
FRESH_POD_VIEW = LabelView({}, complete=True)
FRESH_CALICO_NAMESPACE_VIEW = LabelView(
    {NAME_LABEL: Special.FRESH, CALICO_NAME_LABEL: Special.FRESH}, complete=True
)
FRESH_CALICO_ENDPOINT_VIEW = LabelView(
    {
        CALICO_NAMESPACE_LABEL: Special.FRESH,
        CALICO_ORCHESTRATOR_LABEL: "k8s",
        CALICO_SERVICE_ACCOUNT_LABEL: Special.FRESH,
        CALICO_NAMESPACE_PREFIX + NAME_LABEL: Special.FRESH,
        CALICO_NAMESPACE_PREFIX + CALICO_NAME_LABEL: Special.FRESH,
    },
    complete=True,
)
FRESH_SERVICE_ACCOUNT_VIEW = LabelView({CALICO_NAME_LABEL: Special.FRESH}, complete=True)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule of one direction.

    `outside` / `fresh` say whether the rule's peer side matches each unnamed peer; `local`
    is a condition on the endpoint itself (Calico's destination of an ingress rule, source of
    an egress rule), None when there is none. `restricted` rules (ports, protocols) never
    decide. `near_all` marks peers that leave out less than 1 % of an address family.
    """

    action: Action
    path: str
    restricted: bool
    outside: Tri
    fresh: Tri
    local: Predicate | None = None
    near_all: bool = False

    def matches(self, peer: Peer) -> Tri:
        """Whether the peer side matches the unnamed peer (endpoint side not considered)."""
        return self.outside if peer is Peer.OUTSIDE else self.fresh

    def matches_at(self, peer: Peer, ctx: Context) -> Tri:
        match = self.outside if peer is Peer.OUTSIDE else self.fresh
        if match is False or self.local is None:
            return match
        return and3(match, self.local(ctx))

    @property
    def unrestricted(self) -> bool:
        """No port/protocol restriction and some unnamed peer possibly matched."""
        return not self.restricted and (self.outside is not False or self.fresh is not False)


@dataclass(frozen=True, slots=True)
class Ref:
    """Names one policy object for messages."""

    kind: str
    namespace: str
    name: str
    flavor: str

    def __str__(self) -> str:
        if self.namespace:
            return f'{self.kind} "{self.name}" in namespace "{self.namespace}"'
        return f'{self.kind} "{self.name}"'


@dataclass(frozen=True, slots=True)
class Guard:
    """A necessary condition of a selection: label `key` has one of `values`.

    `on` says which labels: "pod" (the pod's own labels) or "calico" (its Calico endpoint
    labels). When the label is known and not one of the values, the selection is certainly
    False, so views index policies by guard and evaluate only the candidates.
    """

    on: str
    key: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledPolicy:
    """One policy, compiled: who it selects, in which tier and order, and its rules.

    `key` is its identity (the uid when the object has one, so one Calico policy seen under
    two names or API groups is one policy). `home` is the namespace of a namespaced policy
    ("" for cluster-scoped ones), used to index the stack. `label` is shown after the
    reference in messages (`(tier "default")`, `(Baseline)`).
    """

    key: str
    ref: Ref
    tier: str
    order: float | None
    directions: frozenset[Direction]
    rules: Mapping[Direction, tuple[Rule, ...]]
    selection: Predicate
    home: str = ""
    label: str = ""
    # A value equal between two compilations of the same content (for change detection).
    fingerprint: str = ""
    # The object's user labels (for Calico v1 objects, read from `projectcalico.org/metadata`).
    labels: Mapping[str, str] = field(default_factory=dict)
    # Label keys (with the values named) that the selection reads of pod labels: the
    # literals change-impact analysis builds representative pods from.
    pod_literals: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Service account names the policy reads (Calico), for the same purpose.
    account_literals: frozenset[str] = frozenset()
    # Whether it matches pod labels by substring (Calico contains / starts with / ends with):
    # values built from literals cannot stand for every pod then.
    string_matches: bool = False
    guard: Guard | None = None
    # Equal for two policies that judge pods of their own namespaces alike (the fingerprint
    # without the namespace), and whether the policy reads its namespace's labels or name
    # at the level of each pod (Calico `pcns.*` keys): change impact shares the result of
    # one namespace with every namespace whose views have the same shapes.
    shape: str = ""
    namespace_sensitive: bool = False
    # metadata.creationTimestamp (RFC 3339, so strings order as times; "" when absent): the
    # newest of the policies that isolate a pod is its anchor (protect-default-deny).
    created: str = ""

    def selects(self, endpoint: Endpoint | Context) -> Tri:
        """Whether the policy selects this endpoint: True, False or None (not known)."""
        ctx = endpoint if isinstance(endpoint, Context) else Context(endpoint)
        return self.selection(ctx)

    def rules_for(self, direction: Direction) -> tuple[Rule, ...]:
        return self.rules.get(direction, ())

    @property
    def layer(self) -> Layer:
        """Admin (kube-admin tier), Baseline (kube-baseline tier), or the Calico tiers."""
        if self.tier == KUBE_ADMIN:
            return Layer.ADMIN
        if self.tier == KUBE_BASELINE:
            return Layer.BASELINE
        return Layer.TIERS

    def describe(self) -> str:
        return f"{self.ref} ({self.label})" if self.label else str(self.ref)


@dataclass(frozen=True, slots=True)
class Tier:
    """A Calico tier: its order (None: unset, after every ordered tier) and default action.

    `assumed` marks a tier named by a policy but known from no Tier object and no built-in
    default: Calico refuses such policies, so what they do is not vouched for.
    """

    name: str
    order: float | None
    default_action: Action = Action.DENY
    key: str = ""
    assumed: bool = False

    @property
    def layer(self) -> Layer:
        if self.name == KUBE_ADMIN:
            return Layer.ADMIN
        if self.name == KUBE_BASELINE:
            return Layer.BASELINE
        return Layer.TIERS

    def sort_key(self) -> tuple[bool, float, str]:
        return (self.order is None, self.order or 0.0, self.name)


DEFAULT_TIER = "default"
KUBE_ADMIN = "kube-admin"
KUBE_BASELINE = "kube-baseline"

BUILTIN_TIERS: Mapping[str, Tier] = {
    DEFAULT_TIER: Tier(DEFAULT_TIER, 1_000_000.0, Action.DENY, key="builtin:default"),
    KUBE_ADMIN: Tier(KUBE_ADMIN, 1_000.0, Action.PASS, key="builtin:kube-admin"),
    KUBE_BASELINE: Tier(KUBE_BASELINE, 10_000_000.0, Action.PASS, key="builtin:kube-baseline"),
}
