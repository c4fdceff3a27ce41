"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (policy.networking.k8s.io/v1alpha1).

Pure functions over the upstream API (kubernetes-sigs/network-policy-api, apis/v1alpha1):

* `provided_directions` says for which directions one ANP or BANP is a default-deny for every
  pod of a namespace;
* `unrestricted_rules` finds the Allow/Pass rules that admit everything and so cancel every
  default-deny below them (restrict-allow-all).

How the API evaluates (adminnetworkpolicy_types.go): ANPs are checked first, lowest `priority`
value first, rules of one ANP in the order written; the first matching rule decides: `Allow`
admits (no NetworkPolicy can deny it), `Deny` drops, `Pass` skips the remaining ANP rules and
hands the connection to the NetworkPolicies that select the pod, then to the BANP when none
does. The one BANP (named `default`, actions Allow/Deny only) comes last, below every
NetworkPolicy. A rule without `ports` matches every port.

What counts as a default-deny, and why it is this narrow:

* **Subject.** `subject.namespaces` is a label selector that matches the namespace's labels,
  or `subject.pods` has a `namespaceSelector` that matches them and an empty `podSelector`.
  Exactly one of the two, as the API requires; anything else covers nothing.
* **Egress.** Before any rule that reopens everything (an unrestricted Allow/Pass, see
  `is_unrestricted_rule`), `Deny` rules without `ports` whose `to` peers include `networks`
  `0.0.0.0/0` and `::/0` (in one rule or several). The API says `networks` also match
  cluster-internal traffic, so those two CIDRs are every destination; `namespaces: {}` or
  `pods` peers alone leave nodes and the outside world open, and an IPv4-only deny leaves IPv6
  open on a dual-stack cluster. Earlier restricted Allow/Pass rules (DNS to kube-dns on port
  53) keep it a default-deny, as for a NetworkPolicy with DNS egress.
* **Ingress: never.** v1alpha1 ingress peers are `namespaces` and `pods` only: no ANP or BANP
  can deny traffic from nodes, host-network pods or outside the cluster (a LoadBalancer or
  NodePort client), which a Kubernetes default-deny does. A "deny from `namespaces: {}`" rule
  isolates a namespace from other pods only, so it does not count.

Peers of unknown shape (no field, several fields, fields this module does not know) never
make a rule match everything, and a rule with an unknown action spoils its whole direction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from webhook.policy.model import Direction, Namespace, Obj
from webhook.policy.objects import ANP, BANP

# (direction, rules key, peers key) of an ANP/BANP spec.
_RULES = ((Direction.INGRESS, "ingress", "from"), (Direction.EGRESS, "egress", "to"))
_ACTIONS = {ANP: frozenset({"Allow", "Deny", "Pass"}), BANP: frozenset({"Allow", "Deny"})}
_REOPENING = frozenset({"Allow", "Pass"})
_FAMILIES = frozenset({4, 6})


# -- label selectors (metav1.LabelSelector over a namespace's labels) --------------------------
def selects_everything(selector: object) -> bool:
    """A label selector present and empty (`{}`): it selects every namespace (or pod)."""
    return (
        isinstance(selector, Mapping)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )


def label_selector_matches(selector: object, labels: Mapping[str, str]) -> bool:
    """Whether a metav1.LabelSelector selects an object with these (complete) labels.

    `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist) are ANDed; `{}`
    matches everything. A malformed selector (the API server rejects it) matches nothing.
    """
    if not isinstance(selector, Mapping):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return False
    for key, value in match_labels.items():
        if not isinstance(value, str) or labels.get(str(key)) != value:
            return False
    return all(_expression_matches(e, labels) for e in expressions)


def _expression_matches(expression: object, labels: Mapping[str, str]) -> bool:  # noqa: PLR0911 - one return per label-selector operator
    if not isinstance(expression, Mapping):
        return False
    key, operator = expression.get("key"), str(expression.get("operator"))
    values = expression.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        return False
    if not all(isinstance(v, str) for v in values):
        return False
    value = labels.get(key)
    if operator in ("In", "NotIn"):
        if not values:  # the API server requires values for In and NotIn
            return False
        if operator == "In":
            return value is not None and value in values
        return value is None or value not in values
    if operator in ("Exists", "DoesNotExist"):
        if values:  # ... and forbids them for Exists and DoesNotExist
            return False
        return (value is not None) == (operator == "Exists")
    return False


# -- subject ---------------------------------------------------------------------------------
def subject_covers(subject: object, namespace: Namespace) -> bool:
    """Whether an ANP/BANP subject selects every pod of namespace.

    `{namespaces: <selector>}` matching the namespace's labels, or `{pods: {namespaceSelector:
    <matching>, podSelector: {}}}`; exactly one of them (the API's MaxProperties=1).
    """
    if not isinstance(subject, Mapping):
        return False
    present = _fields(subject)
    if present not in (["namespaces"], ["pods"]):
        return False
    if present == ["namespaces"]:
        return label_selector_matches(subject["namespaces"], namespace.labels)
    pods = subject["pods"]
    if not isinstance(pods, Mapping):
        return False
    pod_selector = pods.get("podSelector")
    if pod_selector is not None and not selects_everything(pod_selector):
        return False
    return label_selector_matches(pods.get("namespaceSelector"), namespace.labels)


# -- rules -----------------------------------------------------------------------------------
def _fields(mapping: Mapping[str, object]) -> list[str]:
    """The keys set to something (a null field is an absent one)."""
    return [key for key, value in mapping.items() if value is not None]


def _every_port(rule: Mapping[str, object]) -> bool:
    """A rule without `ports` matches every port; so, for reopening, does an empty list."""
    ports = rule.get("ports")
    return ports is None or ports == []


def _whole_families(networks: object) -> frozenset[int]:
    """The IP versions (4, 6) for which a `networks` list holds a /0."""
    if not isinstance(networks, list):
        return frozenset()
    found: set[int] = set()
    for cidr in networks:
        if not isinstance(cidr, str):
            continue
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0:
            found.add(network.version)
    return frozenset(found)


def _peer_matches_every_pod(peer: Mapping[str, object]) -> bool:
    namespaces = peer.get("namespaces")
    if namespaces is not None:
        return selects_everything(namespaces)
    pods = peer.get("pods")
    if not isinstance(pods, Mapping):
        return False
    pod_selector = pods.get("podSelector")
    return selects_everything(pods.get("namespaceSelector")) and (
        pod_selector is None or selects_everything(pod_selector)
    )


def _peer_matches_everything(peer: object, direction: Direction) -> bool:
    """A peer that selects every pod (`namespaces: {}`, all pods of all namespaces) or, for
    egress, every address of one family (`networks` with a /0): the ANP counterparts of SPEC
    2.5's `namespaceSelector: {}` and `0.0.0.0/0` peers."""
    if not isinstance(peer, Mapping):
        return False
    if _peer_matches_every_pod(peer):
        return True
    return direction is Direction.EGRESS and bool(_whole_families(peer.get("networks")))


def is_unrestricted_rule(rule: object, direction: Direction, flavor: str = ANP) -> bool:
    """An Allow (or, in an ANP, Pass) rule on every port whose peers include one matching
    everything: every pod in the cluster, or every IPv4 or IPv6 address (egress)."""
    if not isinstance(rule, Mapping):
        return False
    action = rule.get("action")
    if action not in _REOPENING or action not in _ACTIONS.get(flavor, frozenset()):
        return False
    if not _every_port(rule):
        return False
    peers = rule.get("from" if direction is Direction.INGRESS else "to")
    return isinstance(peers, list) and any(_peer_matches_everything(p, direction) for p in peers)


def _spec(obj: Obj) -> Mapping[str, object] | None:
    if not isinstance(obj, Mapping):
        return None
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else None


def unrestricted_rules(obj: Obj, flavor: str = ANP) -> list[tuple[Direction, int]]:
    """(direction, index in spec.ingress / spec.egress) of each unrestricted Allow/Pass rule."""
    spec = _spec(obj)
    if spec is None:
        return []
    found: list[tuple[Direction, int]] = []
    for direction, key, _ in _RULES:
        rules = spec.get(key)
        if isinstance(rules, list):
            found.extend(
                (direction, i)
                for i, rule in enumerate(rules)
                if is_unrestricted_rule(rule, direction, flavor)
            )
    return found


def denies_all_egress(rules: Sequence[object], flavor: str) -> bool:
    """Whether these egress rules, read in order, drop every connection not allowed before.

    Deny rules on every port cover the IP families whose /0 they name in `networks`; the
    direction is denied once both families are covered, provided no unrestricted Allow/Pass
    rule came first. A rule that is not a mapping or has an action the API does not allow for
    this flavor spoils the answer (the API server would have refused the object).
    """
    covered: set[int] = set()
    for rule in rules:
        if not isinstance(rule, Mapping) or rule.get("action") not in _ACTIONS[flavor]:
            return False
        if is_unrestricted_rule(rule, Direction.EGRESS, flavor):
            return False
        # `ports: []` is refused by the API (MinItems=1): only an absent list denies all ports.
        if rule.get("action") != "Deny" or rule.get("ports") is not None:
            continue
        peers = rule.get("to")
        if not isinstance(peers, list):
            continue
        for peer in peers:
            if isinstance(peer, Mapping) and _fields(peer) == ["networks"]:
                covered |= _whole_families(peer["networks"])
        if covered >= _FAMILIES:
            return True
    return False


def provided_directions(obj: Obj, flavor: str, namespace: Namespace) -> frozenset[Direction]:
    """Directions for which this ANP/BANP is a default-deny of every pod of namespace.

    Egress only, when its subject covers the namespace and its egress rules deny every
    destination (`denies_all_egress`); never Ingress in v1alpha1 (see the module docstring).
    A malformed object provides nothing; nothing here raises.
    """
    if flavor not in _ACTIONS:
        return frozenset()
    spec = _spec(obj)
    if spec is None or not subject_covers(spec.get("subject"), namespace):
        return frozenset()
    egress = spec.get("egress")
    if isinstance(egress, list) and denies_all_egress(egress, flavor):
        return frozenset({Direction.EGRESS})
    return frozenset()
