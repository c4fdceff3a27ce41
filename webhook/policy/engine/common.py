"""Helpers shared by the flavor adapters: metadata, identity keys, unreadable parts."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from webhook.policy.engine.core import Action, Context, Guard, Predicate, Rule, Tri
from webhook.policy.model import Direction, Obj

DIRECTIONS = ((Direction.INGRESS, "ingress"), (Direction.EGRESS, "egress"))
BOTH = frozenset({Direction.INGRESS, Direction.EGRESS})


def meta_of(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def identity(obj: Obj, fallback: str) -> str:
    """The uid when there is one (stable across names and API groups), else `fallback`."""
    uid = meta_of(obj).get("uid")
    return f"uid:{uid}" if isinstance(uid, str) and uid else fallback


def fingerprint(*parts: object) -> str:
    """A short digest equal for equal content (kept per policy, so kept small)."""
    text = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@functools.lru_cache(maxsize=4096)
def unreadable_rule(path: str) -> Rule:
    """A rule that cannot be read: it may match anything, so it may allow anything.

    An Allow that might match keeps the engine from calling anything isolated through it,
    which is the sound side (an unreadable Allow is never ignored).
    """
    return Rule(Action.ALLOW, path, restricted=False, outside=None, fresh=None)


# Hundreds of thousands of policies repeat a few shapes (the same selector, the same rule):
# equal compiled parts are shared, which keeps a compiled policy near 1 KiB. The caches are
# bounded; everything cached is immutable.
@functools.lru_cache(maxsize=65536)
def shared_rule(rule: Rule) -> Rule:
    return rule


@functools.lru_cache(maxsize=65536)
def shared_rules(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    return rules


@functools.lru_cache(maxsize=16384)
def shared_guard(guard: Guard) -> Guard:
    return guard


def shared_literals(literals: Mapping[str, frozenset[str]]) -> Mapping[str, frozenset[str]]:
    """One read-only mapping per distinct set of literals."""
    return _shared_literals(tuple(sorted(literals.items())))


@functools.lru_cache(maxsize=16384)
def _shared_literals(items: tuple[tuple[str, frozenset[str]], ...]) -> Mapping[str, frozenset[str]]:
    return MappingProxyType(dict(items))


@functools.lru_cache(maxsize=65536)
def with_home(home: str, inner: Predicate) -> Predicate:
    """A namespaced policy selects only endpoints of its own namespace."""

    def predicate(ctx: Context) -> Tri:
        if ctx.namespace != home:
            return False
        return inner(ctx)

    return predicate


def number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
