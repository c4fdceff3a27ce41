"""What a rule is: the one value each file in rules/ exports, and the settings it reads.

As Pod Security Admission keeps one `check_<id>.go` per check, Guardrail keeps one
`rules/<id>.py` per policy. Its `Rule` value says everything the rest of the program needs to
know about it: the id and words for reports, its default mode and configuration keys, which
objects and operations it judges, whether it reads the cluster state. The registry
(`rules/__init__.py`), config validation, report titles and severities, the webhook's
confirmation step and the audit's selection of kinds are all derived from these values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from webhook.policy.cluster import ClusterState
from webhook.policy.model import Finding, Mode, Operation, Request

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
GroupKind = tuple[str, str]  # (API group, "" for core; kind)


class Severity(StrEnum):
    """PolicyReport's severities, which SARIF and the HTML report map from."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


@dataclass(frozen=True, slots=True, eq=False)
class Setting(Generic[T_co]):
    """One configuration key of a rule, `policies.<rule id>.<key>`, and how to read it.

    `parse(value, source, path)` validates what the file holds and returns the typed value,
    raising ConfigError naming `source: path`. A Setting is also the key under which its
    value is found in `Settings` (identity, not name: two rules may use the same key name).
    """

    key: str
    default: T_co
    parse: Callable[[object, str, str], T_co]
    doc: str
    # The value as the configuration file spells it, for documentation and `--help`.
    spelled: object = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Every rule's parsed settings, plus what all rules share (exempt namespaces)."""

    exempt_namespaces: frozenset[str] = frozenset()
    values: Mapping[Setting[Any], object] = field(default_factory=dict)

    def get(self, setting: Setting[T]) -> T:
        if setting in self.values:
            # Only `with_values` and config.py store values, each parsed by this very Setting.
            return cast(T, self.values[setting])
        return setting.default

    def with_values(self, values: Mapping[Setting[Any], object]) -> Settings:
        return Settings(self.exempt_namespaces, {**self.values, **values})


Check = Callable[[Request, ClusterState, Settings], list[Finding]]
# check's roll-up: (namespace, state, settings, the rule's findings in that namespace) -> one
# finding about the namespace that names them all.
Summarize = Callable[[str, ClusterState, Settings, Sequence[Finding]], Finding]
Validate = Callable[[Mapping[Setting[Any], object], str, str], None]


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy: its identity, documentation, configuration and check.

    - `kinds`/`operations`: what it judges (the registry and audit select objects by them;
      the check itself still decides, from the request, whether there is anything to say).
    - `needs_state`: its answer depends on the cluster state (others read the object alone),
      so an unsynced cache makes its verdict unknowable.
    - `confirmable`: a non-advisory finding of it may be lifted by a fresher read of the
      state (a policy applied a moment before the pod); the webhook confirms before denying.
    - `rollup`: `check` reports this rule's findings in one namespace as one finding.
    - `validate`: cross-field checks on its parsed settings, `(values, source, path)`.
    - `judges_existing`: False for a rule about changes (protect-default-deny): an object as
      it stands in the cluster neither passes nor fails it, so audit lists no pass for it.
    """

    id: str
    title: str
    summary: str
    severity: Severity
    default_mode: Mode | None  # None: the configuration's global `mode`
    settings: tuple[Setting[Any], ...]
    kinds: frozenset[GroupKind]
    operations: frozenset[Operation]
    needs_state: bool
    docs: str  # anchor in the README's "Policies" section
    check: Check
    confirmable: bool = False
    rollup: Summarize | None = None
    validate: Validate | None = None
    judges_existing: bool = True

    def judges(self, group: str, kind: str, operation: Operation | None = None) -> bool:
        """Whether objects of this group and kind (and operation, when given) are judged."""
        if (group, kind) not in self.kinds:
            return False
        return operation is None or operation in self.operations


def kinds(*pairs: GroupKind, also: Collection[GroupKind] = ()) -> frozenset[GroupKind]:
    return frozenset(pairs) | frozenset(also)
