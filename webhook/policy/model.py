"""Plain data the policies read and return: requests, namespaces, findings, settings.

Everything here is immutable and free of I/O so that the webhook, the audit sweep and the
offline `check` can hand the same values to the same policy functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Kubernetes objects stay plain JSON-shaped mappings: policies read a handful of fields, and
# copying whole objects into classes would cost more than it buys on the hot path.
Obj = Mapping[str, Any]


class Mode(StrEnum):
    ENFORCE = "enforce"
    WARN = "warn"
    AUDIT = "audit"
    OFF = "off"


class Direction(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class Operation(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CONNECT = "CONNECT"


@dataclass(frozen=True, slots=True)
class Request:
    """One admission request as the policies see it (already parsed and bounded)."""

    uid: str
    kind: str  # request.kind.kind, e.g. "Pod", "Deployment", "NetworkPolicy"
    group: str  # request.kind.group, "" for the core group
    version: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    operation: Operation
    obj: Obj | None = None
    old_obj: Obj | None = None
    username: str = ""
    groups: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True, slots=True)
class Namespace:
    """What the policies need to know of a namespace."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    terminating: bool = False

    @staticmethod
    def from_object(obj: Obj) -> Namespace:
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        name = str(meta.get("name") or "")
        raw_labels = meta.get("labels") or {}
        labels = (
            {str(k): str(v) for k, v in raw_labels.items()}
            if isinstance(raw_labels, Mapping)
            else {}
        )
        # The API server sets this immutable label on every namespace; files may lack it.
        labels.setdefault("kubernetes.io/metadata.name", name)
        status = obj.get("status") or {}
        terminating = isinstance(status, Mapping) and status.get("phase") == "Terminating"
        terminating = terminating or bool(meta.get("deletionTimestamp"))
        return Namespace(name=name, labels=labels, terminating=terminating)

    @staticmethod
    def unknown(name: str) -> Namespace:
        """A namespace the state has not seen: only its name (and the label derived from it)."""
        return Namespace(name=name, labels={"kubernetes.io/metadata.name": name})


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Names one network policy object, for messages and for finding who relies on it."""

    kind: str  # "NetworkPolicy", "GlobalNetworkPolicy", ...
    flavor: str  # see objects.py: "k8s", "calico", "calico-global", "anp", "banp", "cnp", "tier"
    namespace: str  # "" for cluster-scoped
    name: str

    @property
    def key(self) -> PolicyKey:
        return (self.flavor, self.kind, self.name)

    def __str__(self) -> str:
        if self.namespace:
            return f'{self.kind} "{self.name}" in namespace "{self.namespace}"'
        return f'{self.kind} "{self.name}"'


# (flavor, kind, name): one policy within its scope (its namespace, or the cluster).
PolicyKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation of one policy by one object.

    `message` is the full text (denial, audit annotation, log, reports); `summary` is the
    short form (< 120 characters) used for AdmissionResponse warnings, which the API server
    may truncate. `advisory` findings are never a denial, whatever the mode: they warn about
    something that will be rejected later (a new namespace without a default-deny).
    """

    policy: str
    kind: str
    namespace: str
    name: str
    message: str
    summary: str
    advisory: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    """A finding with the mode it was judged in, and where it came from when from a file."""

    finding: Finding
    mode: Mode
    file: str | None = None
    line: int | None = None
    # Offline only: the input says nothing about the object's namespace, so a finding of a
    # rule that reads the cluster state is what the state *might* be, never a denial.
    unverified: bool = False

    @property
    def policy(self) -> str:
        return self.finding.policy

    @property
    def enforced(self) -> bool:
        return self.mode is Mode.ENFORCE and not self.finding.advisory and not self.unverified
