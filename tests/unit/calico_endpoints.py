"""What a pod's Calico endpoint carries, for the selector tests' three-valued questions.

Calico's `podToDefaultWorkloadEndpoint` and `NamespaceToProfile`: `projectcalico.org/namespace`
and `projectcalico.org/orchestrator: k8s` after the pod's own labels, and the namespace's labels
as `pcns.<key>` (plus `pcns.projectcalico.org/name`). The isolation engine models the same
endpoint (webhook/policy/engine/core.py); these two questions pin `matches3` against it.
"""

from __future__ import annotations

from webhook.policy.model import Namespace
from webhook.policy.selector import Selector, matches3

NAMESPACE_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAME_LABEL = "projectcalico.org/name"
NAMESPACE_LABEL_PREFIX = "pcns."


def every_endpoint_matches(sel: Selector, namespace: Namespace) -> bool:
    """Whether sel is certainly true for every pod endpoint of namespace (pod labels unknown).

    Known: `projectcalico.org/namespace`, `projectcalico.org/orchestrator: k8s`, and the
    namespace's labels as `pcns.<key>` (plus `pcns.projectcalico.org/name`), every other
    `pcns.` key being absent. Caveat, Calico's own: an endpoint's own labels win over the ones
    it inherits, so a pod labelled `pcns.<key>` overrides the namespace's value; like SPEC's
    reading of a GlobalNetworkPolicy's namespaceSelector, this trusts the namespace's values.
    """
    known = {NAMESPACE_LABEL_PREFIX + key: value for key, value in namespace.labels.items()}
    known[NAMESPACE_LABEL_PREFIX + NAME_LABEL] = namespace.name
    known[NAMESPACE_LABEL] = namespace.name
    known[ORCHESTRATOR_LABEL] = "k8s"
    return matches3(sel, known, known_prefixes=(NAMESPACE_LABEL_PREFIX,)) is True


def namespace_matches(sel: Selector, namespace: Namespace) -> bool:
    """Whether a namespaceSelector certainly selects namespace (its labels + its name label)."""
    known = dict(namespace.labels)
    known[NAME_LABEL] = namespace.name
    return matches3(sel, known, all_keys_known=True) is True
