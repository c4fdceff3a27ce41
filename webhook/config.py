"""The configuration file: validated with exact paths, frozen.

config.yaml: policies.require-role-labels.mode: must be one of enforce, warn, audit, off

A command reads it once; `guardrail serve` re-reads it when it changes (config_reload.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import yaml

from webhook.policy import RULE_IDS, RULES, schema
from webhook.policy.errors import ConfigError
from webhook.policy.model import Mode, Namespace, Operation, Request
from webhook.policy.rule import Setting, Settings

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
# The API server's superuser group: it may create the exempt namespaces.
MASTERS = "system:masters"
_LENIENCY = {Mode.ENFORCE: 0, Mode.WARN: 1, Mode.AUDIT: 2, Mode.OFF: 3}
MAX_CONFIG_BYTES = 1024 * 1024
REPORT_APIS = ("wgpolicyk8s", "openreports")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


class OnError(StrEnum):
    DENY = "deny"
    ALLOW = "allow"


@dataclass(frozen=True, slots=True)
class Exemptions:
    namespaces: frozenset[str] = frozenset(DEFAULT_EXEMPT_NAMESPACES) | {OWN_NAMESPACE}
    usernames: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def exempts(self, request: Request) -> bool:
        """Exempt by the namespace the object lives in, or by who asks.

        Never by labels or annotations of the object under review (its author controls them),
        and never a Namespace by its own name: an exempt name is a privilege (SPEC 3.2).
        """
        is_namespace = request.kind == "Namespace" and request.group == ""
        namespace = "" if is_namespace else request.namespace
        if namespace and namespace in self.namespaces:
            return True
        return self.exempts_requester(request)

    def exempts_requester(self, request: Request) -> bool:
        """Whether who asks is exempt: a configured username or group."""
        if request.username and request.username in self.usernames:
            return True
        return any(g in self.groups for g in request.groups)

    def claims_exempt_name(self, request: Request) -> bool:
        """A Namespace CREATE of an exempt name by someone who may not create one.

        Only an exempt requester or `system:masters` may: otherwise a tenant allowed to create
        namespaces could create `tigera-operator` on a cluster without the operator and run
        whatever it likes there.
        """
        if (
            request.kind != "Namespace"
            or request.group != ""
            or request.operation is not Operation.CREATE
        ):
            return False
        if request.name not in self.namespaces:
            return False
        return not (self.exempts_requester(request) or MASTERS in request.groups)


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
        default_factory=lambda: {rule.id: rule.default_mode or Mode.ENFORCE for rule in RULES}
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
        return tuple(p for p in RULE_IDS if self.modes.get(p, self.mode) is not Mode.OFF)


def canonical(config: Config) -> dict[str, Any]:
    """The config as the file would spell it in full: every default filled in, lists of names
    sorted. Equal configs give equal documents, however their files were written."""
    policies: dict[str, Any] = {}
    for rule in RULES:
        body: dict[str, Any] = {"mode": config.modes.get(rule.id, config.mode)}
        for setting in rule.settings:
            body[setting.key] = _plain(config.settings.get(setting))
        policies[rule.id] = body
    return {
        "mode": config.mode,
        "onError": config.on_error,
        "allowNamespaceModeLabel": config.allow_namespace_mode_label,
        "exemptions": {
            "namespaces": sorted(config.exemptions.namespaces),
            "usernames": sorted(config.exemptions.usernames),
            "groups": sorted(config.exemptions.groups),
        },
        "policies": policies,
        "audit": {
            "interval": config.audit.interval_seconds,
            "reportApi": config.audit.report_api,
            "includePasses": config.audit.include_passes,
        },
        "ownNamespace": config.own_namespace,
    }


def _plain(value: object) -> object:
    """A setting's value as JSON: mappings stay, sets are sorted, tuples become lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Set):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def digest(config: Config) -> str:
    """`sha256:<hex>` of the canonical config: which config judged a report, comparable across
    runs and machines. A file that spells out the defaults has the digest of no file at all;
    unlike the file's own SHA-256 (what `serve` logs on reload), comments and order do not
    count."""
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def default_config(own_namespace: str | None = None) -> Config:
    return parse_config({}, "<defaults>", own_namespace=own_namespace)


def load_config(path: str | os.PathLike[str] | None, own_namespace: str | None = None) -> Config:
    """Read and validate the config file; None means every default."""
    if path is None:
        return default_config(own_namespace)
    source = str(path)
    return config_from_bytes(read_config_bytes(path), source, own_namespace=own_namespace)


def read_config_bytes(path: str | os.PathLike[str]) -> bytes:
    """The config file's bytes; ConfigError when it cannot be read or is too large."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"file is larger than {MAX_CONFIG_BYTES} bytes", source)
    return raw


def config_from_bytes(raw: bytes, source: str, own_namespace: str | None = None) -> Config:
    """Parse and validate a config file's bytes; errors name `source` (and the line or path)."""
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
    top = schema.mapping(data, source, "")
    schema.known(
        top,
        source,
        "",
        {"mode", "onError", "allowNamespaceModeLabel", "exemptions", "policies", "audit"},
    )
    mode = schema.enum(top.get("mode", "enforce"), Mode, source, "mode")
    on_error = schema.enum(top.get("onError", "deny"), OnError, source, "onError")
    allow_label = schema.boolean(
        top.get("allowNamespaceModeLabel", False), source, "allowNamespaceModeLabel"
    )

    ex = schema.mapping(top.get("exemptions", {}), source, "exemptions")
    schema.known(ex, source, "exemptions", {"namespaces", "usernames", "groups"})
    namespaces = frozenset(
        schema.str_list(
            ex.get("namespaces", list(DEFAULT_EXEMPT_NAMESPACES)), source, "exemptions.namespaces"
        )
    )
    own = own_namespace or OWN_NAMESPACE
    namespaces |= {own}
    exemptions = Exemptions(
        namespaces=namespaces,
        usernames=frozenset(
            schema.str_list(ex.get("usernames", []), source, "exemptions.usernames")
        ),
        groups=frozenset(schema.str_list(ex.get("groups", []), source, "exemptions.groups")),
    )

    modes, values = _policies(top.get("policies", {}), source, mode)
    return Config(
        audit=_audit(top.get("audit", {}), source),
        own_namespace=own,
        mode=mode,
        on_error=on_error,
        allow_namespace_mode_label=allow_label,
        exemptions=exemptions,
        modes=modes,
        settings=Settings(exempt_namespaces=namespaces, values=values),
    )


def _policies(
    value: object, source: str, default_mode: Mode
) -> tuple[dict[str, Mode], dict[Setting[Any], object]]:
    """Each rule's mode and settings from `policies:`, by the schema the rule declares."""
    policies = schema.mapping(value, source, "policies")
    schema.known(policies, source, "policies", RULE_IDS)
    modes: dict[str, Mode] = {}
    values: dict[Setting[Any], object] = {}
    for rule in RULES:
        path = f"policies.{rule.id}"
        body = schema.mapping(policies.get(rule.id) or {}, source, path)
        schema.known(body, source, path, {"mode", *(s.key for s in rule.settings)})
        default = rule.default_mode or default_mode
        modes[rule.id] = schema.enum(body.get("mode", default), Mode, source, f"{path}.mode")
        # Every value is stored, defaults too, so that a file spelling out the defaults is
        # equal to no file at all.
        parsed: dict[Setting[Any], object] = {
            setting: setting.parse(body[setting.key], source, f"{path}.{setting.key}")
            if setting.key in body
            else setting.default
            for setting in rule.settings
        }
        if rule.validate is not None:
            rule.validate(parsed, source, path)
        values.update(parsed)
    return modes, values


def _audit(value: object, source: str) -> AuditSettings:
    body = schema.mapping(value if value is not None else {}, source, "audit")
    schema.known(body, source, "audit", {"interval", "reportApi", "includePasses"})
    return AuditSettings(
        interval_seconds=_duration(body.get("interval", 0), source, "audit.interval"),
        report_api=schema.choice(
            body.get("reportApi", REPORT_APIS[0]), REPORT_APIS, source, "audit.reportApi"
        ),
        include_passes=schema.boolean(
            body.get("includePasses", False), source, "audit.includePasses"
        ),
    )


def _duration(value: object, source: str, path: str) -> float:
    """Seconds from `10m`, `90s`, `1h30m` or a number of seconds; 0 (or null) means off."""
    problem = "must be a duration such as 30s, 10m or 1h (0 turns the audit off)"
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise ConfigError(problem, schema.where(source, path))
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError("must not be negative", schema.where(source, path))
        return float(value)
    text = value.strip() if isinstance(value, str) else ""
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ConfigError(problem, schema.where(source, path))
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)
