"""Selectors compiled to three-valued functions over a LabelView.

Two languages: Kubernetes label selectors (`matchLabels` / `matchExpressions`) and Calico
selectors (parsed by webhook.policy.selector). Both are compiled once into closures, so a
decision never re-reads text. Unknown label values give None where the answer depends on
them; Special.FRESH is a value no selector names (SPEC 2.5's fresh namespace name), so only
operators true for every string (`!=`, `not in`, `has`, `contains ""`) hold for it.

A selector that cannot be read (malformed, or a Calico selector that does not parse) compiles
to a function that always answers None: it selects nothing anyone can vouch for, and nothing
certain is ever concluded from it, in either direction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from webhook.policy.engine.core import LabelView, Special, Tri, Value
from webhook.policy.selector import (
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Global,
    Has,
    In,
    LabelMatch,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    SelectorError,
    StartsWith,
    parse_selector,
)

Matcher = Callable[[LabelView], Tri]


def constant(value: Tri) -> Matcher:
    def matcher(_: LabelView) -> Tri:
        return value

    return matcher


MATCH_ALL = constant(True)
MATCH_NONE = constant(False)
MATCH_UNKNOWN = constant(None)


# -- Kubernetes label selectors ---------------------------------------------------------------
def is_empty_label_selector(selector: object) -> bool:
    """A present selector that selects everything: `{}`, empty matchLabels/matchExpressions."""
    return (
        isinstance(selector, Mapping)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )


Literals = Mapping[str, frozenset[str]]


def compile_label_selector(selector: object) -> tuple[Matcher, Literals, bool]:
    """(matcher, the keys it reads with the values it names, readable) of a label selector.

    `{}` matches everything; a selector that is not a mapping, or whose parts are malformed
    (the API server rejects them), compiles to MATCH_UNKNOWN and readable=False. Equal
    selectors share one compiled form (most policies repeat a few selectors).
    """
    if not isinstance(selector, Mapping):
        return MATCH_UNKNOWN, {}, False
    try:
        text = json.dumps(selector, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return _compile_label_selector(selector)
    return _compile_label_selector_text(text)


@functools.lru_cache(maxsize=16384)
def _compile_label_selector_text(text: str) -> tuple[Matcher, Literals, bool]:
    return _compile_label_selector(json.loads(text))


def _compile_label_selector(selector: Mapping[str, Any]) -> tuple[Matcher, Literals, bool]:
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return MATCH_UNKNOWN, {}, False
    parts: list[Matcher] = []
    literals: dict[str, set[str]] = {}
    for key, value in match_labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return MATCH_UNKNOWN, {}, False
        parts.append(_equals(key, value))
        literals.setdefault(key, set()).add(value)
    for expression in expressions:
        part = _expression(expression)
        if part is None:
            return MATCH_UNKNOWN, {}, False
        parts.append(part[0])
        literals.setdefault(part[1], set()).update(part[2])
    return _all_of(parts), {k: frozenset(v) for k, v in literals.items()}, True


def _equals(key: str, wanted: str) -> Matcher:
    def matcher(view: LabelView) -> Tri:
        value = view.get(key)
        if value is Special.UNKNOWN:
            return None
        return value == wanted

    return matcher


def _expression(expression: object) -> tuple[Matcher, str, frozenset[str]] | None:  # noqa: PLR0911 - one return per label-selector operator
    if not isinstance(expression, Mapping):
        return None
    key, operator = expression.get("key"), expression.get("operator")
    values = expression.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        return None
    if not all(isinstance(v, str) for v in values):
        return None
    wanted = frozenset(values)
    if operator in ("In", "NotIn"):
        if not wanted:  # the API server requires values for In and NotIn
            return None
        inside: bool = operator == "In"

        def in_matcher(view: LabelView) -> Tri:
            value = view.get(key)
            if value is Special.UNKNOWN:
                return None
            found = isinstance(value, str) and value in wanted
            return found if inside else not found

        return in_matcher, key, wanted
    if operator in ("Exists", "DoesNotExist"):
        if wanted:  # ... and forbids them for Exists and DoesNotExist
            return None
        exists: bool = operator == "Exists"

        def exists_matcher(view: LabelView) -> Tri:
            value = view.get(key)
            if value is Special.UNKNOWN:
                return None
            return (value is not None) == exists

        return exists_matcher, key, wanted
    return None


def _all_of(parts: list[Matcher]) -> Matcher:
    if not parts:
        return MATCH_ALL
    if len(parts) == 1:
        return parts[0]
    frozen = tuple(parts)

    def matcher(view: LabelView) -> Tri:
        unknown = False
        for part in frozen:
            result = part(view)
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True

    return matcher


def _any_of(parts: list[Matcher]) -> Matcher:
    frozen = tuple(parts)

    def matcher(view: LabelView) -> Tri:
        unknown = False
        for part in frozen:
            result = part(view)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    return matcher


# -- Calico selectors -------------------------------------------------------------------------
def parse_calico(text: object) -> tuple[Selector | None, str]:
    """(parsed selector or None, error text); absent or blank text is `all()`."""
    if text is None:
        return All(), ""
    if not isinstance(text, str):
        return None, f"expected a selector string, not {type(text).__name__}"
    try:
        return parse_selector(text), ""
    except SelectorError as error:
        return None, str(error)


def compile_calico(text: object) -> tuple[Matcher, Selector | None]:
    """(matcher, parsed tree) of a Calico selector; unparseable: (MATCH_UNKNOWN, None)."""
    if isinstance(text, str):
        return _compile_calico_text(text)
    tree, _ = parse_calico(text)
    if tree is None:
        return MATCH_UNKNOWN, None
    return compile_tree(tree), tree


# Equal selector texts share one compiled form, as they share one parse tree.
@functools.lru_cache(maxsize=16384)
def _compile_calico_text(text: str) -> tuple[Matcher, Selector | None]:
    tree, _ = parse_calico(text)
    if tree is None:
        return MATCH_UNKNOWN, None
    return compile_tree(tree), tree


def compile_tree(sel: Selector) -> Matcher:  # noqa: PLR0911 - one return per selector node kind
    if isinstance(sel, All):
        return MATCH_ALL
    if isinstance(sel, Global):
        # Its documented meaning (non-namespaced resources only) and Calico's evaluator
        # (always true) disagree, so no decision may rest on it.
        return MATCH_UNKNOWN
    if isinstance(sel, Not):
        inner = compile_tree(sel.operand)

        def negated(view: LabelView) -> Tri:
            result = inner(view)
            return None if result is None else not result

        return negated
    if isinstance(sel, And):
        return _all_of([compile_tree(op) for op in sel.operands])
    if isinstance(sel, Or):
        return _any_of([compile_tree(op) for op in sel.operands])
    if isinstance(sel, LabelMatch):
        return _label_match(sel)
    return MATCH_UNKNOWN


def _label_match(node: LabelMatch) -> Matcher:
    key = node.key
    test = _value_test(node)
    if isinstance(node, In) and not node.values:
        return MATCH_NONE
    if isinstance(node, NotIn) and not node.values:
        return MATCH_ALL

    def matcher(view: LabelView) -> Tri:
        value = view.get(key)
        if value is Special.UNKNOWN:
            return None
        return test(value)

    return matcher


def _value_test(node: LabelMatch) -> Callable[[Value], bool]:  # noqa: PLR0911 - one return per match operator
    """Calico's match of one operator against a label value (None: absent; FRESH: unnamed)."""
    if isinstance(node, Has):
        return lambda v: v is not None
    if isinstance(node, NotEquals):
        wanted = node.value
        return lambda v: v is None or v is Special.FRESH or v != wanted
    if isinstance(node, NotIn):
        values = frozenset(node.values)
        return lambda v: not isinstance(v, str) or v not in values
    if isinstance(node, Equals):
        wanted = node.value
        return lambda v: isinstance(v, str) and v == wanted
    if isinstance(node, In):
        values = frozenset(node.values)
        return lambda v: isinstance(v, str) and v in values
    if isinstance(node, Contains | StartsWith | EndsWith):
        # A name no selector names contains, starts and ends with no named text; only the
        # empty string is in every string.
        literal = node.value
        if isinstance(node, Contains):
            check: Callable[[str], bool] = lambda v: literal in v  # noqa: E731 -- one-line test picked per operator
        elif isinstance(node, StartsWith):
            check = lambda v: v.startswith(literal)  # noqa: E731 -- as above
        else:
            check = lambda v: v.endswith(literal)  # noqa: E731 -- as above
        return lambda v: (
            (literal == "") if v is Special.FRESH else (isinstance(v, str) and check(v))
        )
    return lambda v: False


def has_string_match(sel: Selector | None, skip_prefixes: tuple[str, ...] = ()) -> bool:
    """Whether sel uses `contains`, `starts with` or `ends with` on a key not skipped."""
    if isinstance(sel, Not):
        return has_string_match(sel.operand, skip_prefixes)
    if isinstance(sel, And | Or):
        return any(has_string_match(op, skip_prefixes) for op in sel.operands)
    return isinstance(sel, Contains | StartsWith | EndsWith) and not sel.key.startswith(
        skip_prefixes
    )


def calico_literals(sel: Selector | None) -> dict[str, set[str]]:
    """Label keys a Calico selector reads, with the values it names (for representatives)."""
    found: dict[str, set[str]] = {}

    def walk(node: Selector) -> None:
        if isinstance(node, Not):
            walk(node.operand)
        elif isinstance(node, And | Or):
            for op in node.operands:
                walk(op)
        elif isinstance(node, LabelMatch):
            values = found.setdefault(node.key, set())
            if isinstance(node, Equals | NotEquals | Contains | StartsWith | EndsWith):
                values.add(node.value)
            elif isinstance(node, In | NotIn):
                values.update(node.values)

    if sel is not None:
        walk(sel)
    return found


def calico_guard(sel: Selector | None) -> tuple[str, frozenset[str]] | None:  # noqa: PLR0911 - one return per selector node kind
    """A label that must have one of some values for sel to hold, or None.

    `k == v`, `k in {...}`; a conjunction's first guarded operand; a disjunction whose every
    operand is guarded on the same key (the union of their values).
    """
    if isinstance(sel, Equals):
        return sel.key, frozenset({sel.value})
    if isinstance(sel, In):
        return sel.key, frozenset(sel.values)
    if isinstance(sel, And):
        for op in sel.operands:
            found = calico_guard(op)
            if found is not None:
                return found
        return None
    if isinstance(sel, Or):
        parts = [calico_guard(op) for op in sel.operands]
        keys = {p[0] for p in parts if p is not None}
        if None in parts or len(keys) != 1:
            return None
        return keys.pop(), frozenset().union(*(p[1] for p in parts if p is not None))
    return None


def label_selector_guard(selector: object) -> tuple[str, frozenset[str]] | None:
    """A label a (readable) Kubernetes label selector requires to have one of some values."""
    if not isinstance(selector, Mapping):
        return None
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, Mapping):
        for key, value in match_labels.items():
            if isinstance(key, str) and isinstance(value, str):
                return key, frozenset({value})
    expressions = selector.get("matchExpressions")
    if isinstance(expressions, list):
        for expression in expressions:
            if (
                isinstance(expression, Mapping)
                and expression.get("operator") == "In"
                and isinstance(expression.get("key"), str)
                and isinstance(expression.get("values"), list)
                and expression["values"]
                and all(isinstance(v, str) for v in expression["values"])
            ):
                return expression["key"], frozenset(expression["values"])
    return None
