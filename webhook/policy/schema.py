"""Validating configuration values: each check names the exact path of what is wrong.

Shared by the configuration file's own fields (config.py) and the settings every rule declares
(rules/<id>.py), so a wrong value reads the same wherever it is:
`config.yaml: policies.require-role-labels.labels[1]: must be a string, not a number`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from webhook.policy.errors import ConfigError, type_name

E = TypeVar("E", bound=StrEnum)


def where(source: str, path: str) -> str:
    """`config.yaml: policies.x.mode`, or the source alone for the document's root."""
    return f"{source}: {path}" if path else source


def child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def mapping(value: object, source: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"must be a mapping, not {type_name(value)}", where(source, path))
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(
                f"keys must be strings, not {type_name(key)} {key!r}", where(source, path)
            )
    return value


def known(value: Mapping[str, Any], source: str, path: str, fields: Collection[str]) -> None:
    """Refuse any key outside `fields`: a typo must not silently fall back to a default."""
    for key in value:
        if key not in fields:
            raise ConfigError(
                f"unknown field (expected one of {', '.join(sorted(fields))})",
                where(source, child(path, key)),
            )


def enum(value: object, kind: type[E], source: str, path: str) -> E:
    choices = ", ".join(m.value for m in kind)
    if value is False and "off" in {m.value for m in kind}:
        # YAML 1.1 (PyYAML, and Kubernetes' own parser) reads a bare `off` as false.
        return kind("off")
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise ConfigError(f"must be one of {choices}", where(source, path))


def boolean(value: object, source: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, not {type_name(value)}", where(source, path))
    return value


def str_list(value: object, source: str, path: str, *, non_empty_items: bool = False) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"must be a list of strings, not {type_name(value)}", where(source, path))
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(
                f"must be a string, not {type_name(item)}", where(source, f"{path}[{i}]")
            )
        if non_empty_items and not item:
            raise ConfigError("must not be empty", where(source, f"{path}[{i}]"))
    return list(value)


def choice(value: object, choices: Collection[str], source: str, path: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}", where(source, path))
    return value
