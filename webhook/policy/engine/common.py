"""Helpers shared by the flavor adapters: metadata, identity keys, unreadable parts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from webhook.policy.engine.core import Action, Context, Predicate, Rule, Tri
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
    return json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))


def unreadable_rule(path: str) -> Rule:
    """A rule that cannot be read: it may match anything, so it may allow anything.

    An Allow that might match keeps the engine from calling anything isolated through it,
    which is the sound side (an unreadable Allow is never ignored).
    """
    return Rule(Action.ALLOW, path, restricted=False, outside=None, fresh=None)


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
