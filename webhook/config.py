"""The configuration file: read once at start, validated with exact paths, frozen.

config.yaml: policies.require-role-labels.mode: must be one of enforce, warn, audit, off
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml

from webhook.errors import ConfigError
from webhook.policy.model import POLICY_IDS, Direction, Mode, Namespace, Request, Settings

DEFAULT_EXEMPT_NAMESPACES = (
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "calico-system",
    "calico-apiserver",
    "tigera-operator",
)
# Guardrail's own namespace is always exempt: it must be able to restart itself.
OWN_NAMESPACE = "guardrail-system"
NAMESPACE_MODE_LABEL = "guardrail.dev/mode"
DEFAULT_POLICY_MODES: Mapping[str, Mode | None] = {
    "require-role-labels": None,  # None: follows the global mode
    "require-default-deny": None,
    "protect-default-deny": None,
    "restrict-allow-all": Mode.WARN,
}
_LENIENCY = {Mode.ENFORCE: 0, Mode.WARN: 1, Mode.AUDIT: 2, Mode.OFF: 3}
MAX_CONFIG_BYTES = 1024 * 1024
REPORT_APIS = ("wgpolicyk8s", "openreports")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


E = TypeVar("E", bound=StrEnum)


class OnError(StrEnum):
    DENY = "deny"
    ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class Exemptions:
    namespaces: frozenset[str] = frozenset(DEFAULT_EXEMPT_NAMESPACES) | {OWN_NAMESPACE}
    usernames: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def exempts(self, request: Request) -> bool:
        """Exempt by the request's namespace (or a Namespace's own name) or by who asks.

        Never by labels or annotations of the object under review: its author controls them.
        """
        namespace = request.namespace
        if not namespace and request.kind == "Namespace" and request.group == "":
            namespace = request.name
        if namespace and namespace in self.namespaces:
            return True
        if request.username and request.username in self.usernames:
            return True
        return any(g in self.groups for g in request.groups)


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The background audit of `serve` (`audit:`); an interval of 0 turns it off."""

    interval_seconds: float = 0.0
    report_api: str = "wgpolicyk8s"  # one of REPORT_APIS
    include_passes: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    mode: Mode = Mode.ENFORCE
    on_error: OnError = OnError.DENY
    allow_namespace_mode_label: bool = False
    exemptions: Exemptions = field(default_factory=Exemptions)
    modes: Mapping[str, Mode] = field(
        default_factory=lambda: {p: m or Mode.ENFORCE for p, m in DEFAULT_POLICY_MODES.items()}
    )
    settings: Settings = field(
        default_factory=lambda: Settings(
            exempt_namespaces=frozenset(DEFAULT_EXEMPT_NAMESPACES) | {OWN_NAMESPACE}
        )
    )
    audit: AuditSettings = field(default_factory=AuditSettings)
    # The namespace guardrail runs in (POD_NAMESPACE): exempt, and home of the audit's Lease.
    own_namespace: str = OWN_NAMESPACE

    def mode_for(self, policy: str, namespace: Namespace | None = None) -> Mode:
        """The policy's mode, relaxed (never tightened) by the namespace label if allowed."""
        mode = self.modes.get(policy, self.mode)
        if not self.allow_namespace_mode_label or namespace is None:
            return mode
        label = namespace.labels.get(NAMESPACE_MODE_LABEL)
        if label in (Mode.AUDIT, Mode.WARN):
            relaxed = Mode(label)
            if _LENIENCY[relaxed] > _LENIENCY[mode]:
                return relaxed
        return mode

    def enabled_policies(self) -> tuple[str, ...]:
        """Policies whose configured mode is not off (a namespace label never turns one on)."""
        return tuple(p for p in POLICY_IDS if self.modes.get(p, self.mode) is not Mode.OFF)


def default_config(own_namespace: str | None = None) -> Config:
    return parse_config({}, "<defaults>", own_namespace=own_namespace)


def load_config(path: str | os.PathLike[str] | None, own_namespace: str | None = None) -> Config:
    """Read and validate the config file; None means every default."""
    if path is None:
        return default_config(own_namespace)
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES} bytes", source)
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", source) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", where) from exc
    except RecursionError as exc:  # found by fuzz/ "config": PyYAML's composer recurses
        raise ConfigError("invalid YAML: nested too deeply", source) from exc
    except ValueError as exc:  # found by fuzz/ "config": an integer over 4300 digits
        raise ConfigError("invalid YAML: a number longer than 4300 digits", source) from exc
    return parse_config({} if data is None else data, source, own_namespace=own_namespace)


def parse_config(data: object, source: str, own_namespace: str | None = None) -> Config:
    """Validate a parsed config document; errors name `source: json.path`."""
    top = _mapping(data, source, "")
    _known(
        top,
        source,
        "",
        {"mode", "onError", "allowNamespaceModeLabel", "exemptions", "policies", "audit"},
    )
    mode = _enum(top.get("mode", "enforce"), Mode, source, "mode")
    on_error = _enum(top.get("onError", "deny"), OnError, source, "onError")
    allow_label = _bool(
        top.get("allowNamespaceModeLabel", False), source, "allowNamespaceModeLabel"
    )

    ex = _mapping(top.get("exemptions", {}), source, "exemptions")
    _known(ex, source, "exemptions", {"namespaces", "usernames", "groups"})
    namespaces = frozenset(
        _str_list(
            ex.get("namespaces", list(DEFAULT_EXEMPT_NAMESPACES)), source, "exemptions.namespaces"
        )
    )
    own = own_namespace or OWN_NAMESPACE
    namespaces |= {own}
    exemptions = Exemptions(
        namespaces=namespaces,
        usernames=frozenset(_str_list(ex.get("usernames", []), source, "exemptions.usernames")),
        groups=frozenset(_str_list(ex.get("groups", []), source, "exemptions.groups")),
    )

    policies = _mapping(top.get("policies", {}), source, "policies")
    _known(policies, source, "policies", set(POLICY_IDS))
    modes: dict[str, Mode] = {}
    per_policy: dict[str, Mapping[str, Any]] = {}
    allowed_keys = {
        "require-role-labels": {"mode", "labels", "allowedValues"},
        "require-default-deny": {"mode", "directions"},
        "protect-default-deny": {"mode"},
        "restrict-allow-all": {"mode"},
    }
    for policy in POLICY_IDS:
        path = f"policies.{policy}"
        body = _mapping(policies.get(policy) or {}, source, path)
        _known(body, source, path, allowed_keys[policy])
        per_policy[policy] = body
        default = DEFAULT_POLICY_MODES[policy] or mode
        modes[policy] = _enum(body.get("mode", default), Mode, source, f"{path}.mode")

    labels_body = per_policy["require-role-labels"]
    labels = _str_list(
        labels_body.get("labels", ["app", "role"]),
        source,
        "policies.require-role-labels.labels",
        non_empty_items=True,
    )
    raw_allowed = _mapping(
        labels_body.get("allowedValues", {}) or {},
        source,
        "policies.require-role-labels.allowedValues",
    )
    allowed: dict[str, tuple[str, ...]] = {}
    for key, values in raw_allowed.items():
        path = f"policies.require-role-labels.allowedValues.{key}"
        if key not in labels:
            raise ConfigError(
                f"label {key!r} is not in policies.require-role-labels.labels", f"{source}: {path}"
            )
        allowed[str(key)] = tuple(_str_list(values, source, path, non_empty_items=True))

    raw_dirs = _str_list(
        per_policy["require-default-deny"].get("directions", ["Ingress", "Egress"]),
        source,
        "policies.require-default-deny.directions",
    )
    directions: list[Direction] = []
    for i, d in enumerate(raw_dirs):
        direction = _enum(d, Direction, source, f"policies.require-default-deny.directions[{i}]")
        if direction not in directions:
            directions.append(direction)

    return Config(
        audit=_audit(top.get("audit", {}), source),
        own_namespace=own,
        mode=mode,
        on_error=on_error,
        allow_namespace_mode_label=allow_label,
        exemptions=exemptions,
        modes=modes,
        settings=Settings(
            labels=tuple(labels),
            allowed_values=allowed,
            directions=tuple(directions),
            exempt_namespaces=namespaces,
        ),
    )


def _audit(value: object, source: str) -> AuditSettings:
    body = _mapping(value if value is not None else {}, source, "audit")
    _known(body, source, "audit", {"interval", "reportApi", "includePasses"})
    return AuditSettings(
        interval_seconds=_duration(body.get("interval", 0), source, "audit.interval"),
        report_api=_choice(
            body.get("reportApi", REPORT_APIS[0]), REPORT_APIS, source, "audit.reportApi"
        ),
        include_passes=_bool(body.get("includePasses", False), source, "audit.includePasses"),
    )


def _duration(value: object, source: str, path: str) -> float:
    """Seconds from `10m`, `90s`, `1h30m` or a number of seconds; 0 (or null) means off."""
    problem = "must be a duration such as 30s, 10m or 1h (0 turns the audit off)"
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise ConfigError(problem, _where(source, path))
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError("must not be negative", _where(source, path))
        return float(value)
    text = value.strip() if isinstance(value, str) else ""
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ConfigError(problem, _where(source, path))
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _choice(value: object, choices: tuple[str, ...], source: str, path: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}", _where(source, path))
    return value


# -- validation helpers: each raises ConfigError("what", "source: path") ------------------------
def _where(source: str, path: str) -> str:
    return f"{source}: {path}" if path else source


def _mapping(value: object, source: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a mapping, not {_type_name(value)}", _where(source, path))
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(
                f"keys must be strings, not {_type_name(key)} {key!r}", _where(source, path)
            )
    return value


def _known(value: Mapping[str, Any], source: str, path: str, known: set[str]) -> None:
    for key in value:
        if key not in known:
            child = f"{path}.{key}" if path else key
            raise ConfigError(
                f"unknown field (expected one of {', '.join(sorted(known))})", _where(source, child)
            )


def _enum(value: object, enum: type[E], source: str, path: str) -> E:
    choices = ", ".join(m.value for m in enum)
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise ConfigError(f"must be one of {choices}", _where(source, path))


def _bool(value: object, source: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, not {_type_name(value)}", _where(source, path))
    return value


def _str_list(value: object, source: str, path: str, *, non_empty_items: bool = False) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(
            f"must be a list of strings, not {_type_name(value)}", _where(source, path)
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(
                f"must be a string, not {_type_name(item)}", _where(source, f"{path}[{i}]")
            )
        if non_empty_items and not item:
            raise ConfigError("must not be empty", _where(source, f"{path}[{i}]"))
    return list(value)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)
