"""What a rule may ask about the cluster: the ClusterState protocol (webhook.state implements it).

Implementations answer from memory and never block on I/O. A namespace's `view` is the
isolation engine's precomputed walk for that namespace (SPEC 2.6): only the policies that can
select its pods, by tier and direction, so a decision costs the same however many namespaces
and policies the cluster holds. `stack(namespace)` is what the view is built from, for rules
that judge a change (protect-default-deny builds the stack after the change and compares).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from webhook.policy.engine import NamespaceView, PolicyStack
from webhook.policy.model import Namespace, Obj


class ClusterState(Protocol):
    def namespace(self, name: str) -> Namespace | None:
        """The namespace as the state knows it, None when it does not."""

    def namespaces(self) -> Iterable[Namespace]: ...

    def policies_in(self, namespace: str) -> Sequence[Obj]:
        """The namespaced policy objects stored in `namespace` (raw, as the API stores them)."""

    def global_policies(self) -> Sequence[Obj]:
        """The cluster-scoped policy and Tier objects (raw)."""

    def stack(self, namespace: str) -> PolicyStack:
        """Every cluster-scoped policy and tier plus the policies stored in `namespace`."""

    def view(self, namespace: str) -> NamespaceView:
        """`stack(namespace).for_namespace(...)`, for the namespace as the state knows it."""
