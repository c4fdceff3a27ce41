"""Calico's selector language: parser, evaluator and a sound three-valued evaluator.

`parse_selector` reads Calico's label-selector language exactly as Calico's own Go parser does
(`libcalico-go/lib/selector/tokenizer` and `.../parser`): whitespace is space or tab only;
strings are single- or double-quoted with no escapes; a label is one or more of
`A-Z a-z 0-9 _ . / -` (Calico accepts that whole set, a superset of Kubernetes label keys, so
anything narrower would call policies the API server stored "malformed"); `has(`, `all(` and
`global(` must touch their parenthesis; after a label the operator words are matched as
prefixes (`startswith`, `notin` and `in{` are accepted, as Calico does); runs of `!` collapse;
precedence is `||` < `&&` < `!` < a parenthesised group or a match operator; an empty
selector is `all()`. Syntax errors raise `SelectorError` with a 1-based column. `matches` is
Calico's evaluator; `matches3` is a sound three-valued variant for label sets that are only
partly known. What the labels of a Calico endpoint are is calico.py's business.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from typing import NoReturn

from webhook.policy.errors import GuardrailError

# Bounds on hostile input. Real selectors are short, but a `not in {...}` listing every system
# namespace runs to a few thousand characters, so the length bound leaves room for that; the
# cost of parsing is linear in the length. Nesting is bounded so the recursive parser can never
# reach Python's recursion limit, whatever the caller's own stack depth.
MAX_SELECTOR_LENGTH = 16384
MAX_NESTING = 100


_WHITESPACE = " \t"
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")


class SelectorError(GuardrailError):
    """A Calico selector that does not parse: `column` is 1-based (0: the value is no string).

    str() reads `selector column 14: expected a quoted string after '=='`.
    """

    def __init__(self, message: str, column: int, selector: str = "") -> None:
        super().__init__(message, f"selector column {column}" if column else "selector")
        self.column = column
        self.selector = selector


# -- the tree ------------------------------------------------------------------------------
class Selector:
    """A parsed Calico selector; str() gives a canonical form that parses to an equal tree."""

    __slots__ = ()


def _quote(value: str) -> str:
    # Calico strings have no escapes, so a value is quoted with the quote it does not contain
    # (the same choice as Calico's own canonical form).
    return f"'{value}'" if '"' in value else f'"{value}"'


@dataclass(frozen=True, slots=True)
class All(Selector):
    def __str__(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global(Selector):
    def __str__(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class LabelMatch(Selector):
    """A match operator on one label: every node below except all(), global(), !, && and ||."""

    key: str


@dataclass(frozen=True, slots=True)
class Has(LabelMatch):
    def __str__(self) -> str:
        return f"has({self.key})"


@dataclass(frozen=True, slots=True)
class Equals(LabelMatch):
    value: str

    def __str__(self) -> str:
        return f"{self.key} == {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class NotEquals(LabelMatch):
    value: str

    def __str__(self) -> str:
        return f"{self.key} != {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Contains(LabelMatch):
    value: str

    def __str__(self) -> str:
        return f"{self.key} contains {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class StartsWith(LabelMatch):
    value: str

    def __str__(self) -> str:
        return f"{self.key} starts with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class EndsWith(LabelMatch):
    value: str

    def __str__(self) -> str:
        return f"{self.key} ends with {_quote(self.value)}"


def _set_literal(values: tuple[str, ...]) -> str:
    return "{" + ", ".join(_quote(v) for v in values) + "}"


@dataclass(frozen=True, slots=True)
class In(LabelMatch):
    """`key in {...}`; values are sorted and de-duplicated, as Calico stores them."""

    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.key} in {_set_literal(self.values)}"


@dataclass(frozen=True, slots=True)
class NotIn(LabelMatch):
    """`key not in {...}`; values are sorted and de-duplicated, as Calico stores them."""

    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.key} not in {_set_literal(self.values)}"


@dataclass(frozen=True, slots=True)
class Not(Selector):
    operand: Selector

    def __str__(self) -> str:
        # `!!x` would collapse to x when read back (Calico folds runs of `!`), so a negated
        # negation keeps its parentheses.
        if isinstance(self.operand, Not):
            return f"!({self.operand})"
        return f"!{self.operand}"


@dataclass(frozen=True, slots=True)
class And(Selector):
    operands: tuple[Selector, ...]

    def __str__(self) -> str:
        return "(" + " && ".join(str(op) for op in self.operands) + ")"


@dataclass(frozen=True, slots=True)
class Or(Selector):
    operands: tuple[Selector, ...]

    def __str__(self) -> str:
        return "(" + " || ".join(str(op) for op in self.operands) + ")"


# -- tokenizer -----------------------------------------------------------------------------
class _Kind(Enum):
    LABEL = auto()
    STRING = auto()
    LBRACE = auto()
    RBRACE = auto()
    COMMA = auto()
    EQ = auto()
    NE = auto()
    IN = auto()
    NOT = auto()
    NOT_IN = auto()
    CONTAINS = auto()
    STARTS_WITH = auto()
    ENDS_WITH = auto()
    ALL = auto()
    HAS = auto()
    LPAREN = auto()
    RPAREN = auto()
    AND = auto()
    OR = auto()
    GLOBAL = auto()
    EOF = auto()


_SPELLING = {
    _Kind.LBRACE: "'{'",
    _Kind.RBRACE: "'}'",
    _Kind.COMMA: "','",
    _Kind.EQ: "'=='",
    _Kind.NE: "'!='",
    _Kind.IN: "'in'",
    _Kind.NOT: "'!'",
    _Kind.NOT_IN: "'not in'",
    _Kind.CONTAINS: "'contains'",
    _Kind.STARTS_WITH: "'starts with'",
    _Kind.ENDS_WITH: "'ends with'",
    _Kind.ALL: "'all()'",
    _Kind.LPAREN: "'('",
    _Kind.RPAREN: "')'",
    _Kind.AND: "'&&'",
    _Kind.OR: "'||'",
    _Kind.GLOBAL: "'global()'",
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    value: str
    pos: int  # 0-based index of the token's first character

    def describe(self) -> str:
        if self.kind is _Kind.EOF:
            return "the end of the selector"
        if self.kind is _Kind.LABEL:
            return f"label '{self.value}'"
        if self.kind is _Kind.STRING:
            return f"the string {_quote(self.value)}"
        if self.kind is _Kind.HAS:
            return f"'has({self.value})'"
        return _SPELLING[self.kind]


_OPERATORS = "==, !=, in, not in, contains, starts with or ends with"


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _label_at(text: str, i: int) -> str:
    j = i
    while j < len(text) and text[j] in _LABEL_CHARS:
        j += 1
    return text[i:j]


def _tokenize(text: str) -> list[_Token]:  # noqa: PLR0912 - one branch per token kind, as in Calico's tokenizer
    """Calico's tokenizer, run to the end before parsing so errors come in Calico's order."""
    tokens: list[_Token] = []
    i = 0
    n = len(text)

    def fail(pos: int, message: str) -> SelectorError:
        return SelectorError(message, pos + 1, text)

    single = {
        "(": _Kind.LPAREN,
        ")": _Kind.RPAREN,
        "{": _Kind.LBRACE,
        "}": _Kind.RBRACE,
        ",": _Kind.COMMA,
    }
    while True:
        i = _skip_space(text, i)
        if i >= n:
            tokens.append(_Token(_Kind.EOF, "", n))
            return tokens
        start = i
        ch = text[i]
        after_label = bool(tokens) and tokens[-1].kind is _Kind.LABEL
        if ch in single:
            tokens.append(_Token(single[ch], ch, start))
            i += 1
        elif ch in "\"'":
            end = text.find(ch, i + 1)
            if end < 0:
                raise fail(start, f"unterminated string: the {ch} opened here is never closed")
            tokens.append(_Token(_Kind.STRING, text[i + 1 : end], start))
            i = end + 1
        elif ch == "=":
            if not text.startswith("==", i):
                raise fail(start, "expected '==' (a single '=' is not an operator)")
            tokens.append(_Token(_Kind.EQ, "==", start))
            i += 2
        elif ch == "!":
            if text.startswith("!=", i):
                tokens.append(_Token(_Kind.NE, "!=", start))
                i += 2
            else:
                tokens.append(_Token(_Kind.NOT, "!", start))
                i += 1
        elif ch in "&|":
            pair = ch * 2
            if not text.startswith(pair, i):
                raise fail(start, f"expected '{pair}' (a single '{ch}' is not an operator)")
            tokens.append(_Token(_Kind.AND if ch == "&" else _Kind.OR, pair, start))
            i += 2
        elif after_label:
            i = _operator_word(text, i, tokens, fail)
        elif text.startswith(("has(", "all(", "global("), i):
            i = _call_word(text, i, tokens, fail)
        else:
            key = _label_at(text, i) or _unexpected(ch, start, fail)
            tokens.append(_Token(_Kind.LABEL, key, start))
            i += len(key)


def _unexpected(ch: str, pos: int, fail: Callable[[int, str], SelectorError]) -> NoReturn:
    hint = ": Calico separates tokens with spaces and tabs only" if ch.isspace() else ""
    raise fail(pos, f"unexpected character {ch!r}{hint}")


def _call_word(
    text: str, i: int, tokens: list[_Token], fail: Callable[[int, str], SelectorError]
) -> int:
    """`has(label)`, `all()` or `global()`: the word touches its '(', blanks may follow it."""
    start = i
    word = text[i : text.index("(", i)]
    i = _skip_space(text, i + len(word) + 1)
    if word == "has":
        key = _label_at(text, i)
        if not key:
            raise fail(i, "expected a label name inside has( )")
        i = _skip_space(text, i + len(key))
        if not text.startswith(")", i):
            raise fail(i, f"expected ')' to close has({key}")
        tokens.append(_Token(_Kind.HAS, key, start))
        return i + 1
    if not text.startswith(")", i):
        raise fail(i, f"expected ')' after '{word}(': {word}() takes no arguments")
    tokens.append(_Token(_Kind.ALL if word == "all" else _Kind.GLOBAL, word, start))
    return i + 1


def _operator_word(
    text: str, i: int, tokens: list[_Token], fail: Callable[[int, str], SelectorError]
) -> int:
    """After a label only an operator word may follow; Calico matches them as prefixes."""
    label = tokens[-1].value
    start = i
    if text.startswith("contains", i):
        tokens.append(_Token(_Kind.CONTAINS, "contains", start))
        return i + len("contains")
    for first, kind in (("starts", _Kind.STARTS_WITH), ("ends", _Kind.ENDS_WITH)):
        if text.startswith(first, i):
            i = _skip_space(text, i + len(first))
            if not text.startswith("with", i):
                raise fail(i, f"expected 'with' after '{first}'")
            tokens.append(_Token(kind, f"{first} with", start))
            return i + len("with")
    if text.startswith("not", i):
        i = _skip_space(text, i + len("not"))
        if not text.startswith("in", i):
            raise fail(i, "expected 'in' after 'not'")
        tokens.append(_Token(_Kind.NOT_IN, "not in", start))
        return i + len("in")
    if text.startswith("in", i):
        tokens.append(_Token(_Kind.IN, "in", start))
        return i + len("in")
    if text[i].isspace():
        _unexpected(text[i], i, fail)
    raise fail(start, f"expected an operator ({_OPERATORS}) after label '{label}'")


# -- parser --------------------------------------------------------------------------------
_VALUE_OPERATORS: Mapping[_Kind, Callable[[str, str], Selector]] = {
    _Kind.EQ: Equals,
    _Kind.NE: NotEquals,
    _Kind.CONTAINS: Contains,
    _Kind.STARTS_WITH: StartsWith,
    _Kind.ENDS_WITH: EndsWith,
}


class _Parser:
    """Calico's recursive-descent parser over the token list, with columns in its errors."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0

    def fail(self, token: _Token, message: str) -> SelectorError:
        return SelectorError(message, token.pos + 1, self.text)

    def peek(self, ahead: int = 0) -> _Token:
        # The EOF token is last, and nothing reads past it.
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def parse(self) -> Selector:
        if self.peek().kind is _Kind.EOF:
            return All()
        node = self.or_expression(0)
        extra = self.peek()
        if extra.kind is not _Kind.EOF:
            raise self.fail(
                extra,
                f"unexpected {extra.describe()}: expected '&&', '||' or the end of the selector",
            )
        return node

    def or_expression(self, depth: int) -> Selector:
        operands = [self.and_expression(depth)]
        while self.peek().kind is _Kind.OR:
            self.pos += 1
            operands.append(self.and_expression(depth))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expression(self, depth: int) -> Selector:
        operands = [self.operation(depth)]
        while self.peek().kind is _Kind.AND:
            self.pos += 1
            operands.append(self.operation(depth))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def operation(self, depth: int) -> Selector:
        negated = False
        while self.peek().kind is _Kind.NOT:
            negated = not negated
            self.pos += 1
        token = self.peek()
        node: Selector
        if token.kind is _Kind.HAS:
            node = Has(token.value)
            self.pos += 1
        elif token.kind is _Kind.ALL:
            node = All()
            self.pos += 1
        elif token.kind is _Kind.GLOBAL:
            node = Global()
            self.pos += 1
        elif token.kind is _Kind.LABEL:
            node = self.comparison(token)
        elif token.kind is _Kind.LPAREN:
            if depth >= MAX_NESTING:
                raise self.fail(token, f"parentheses are nested more than {MAX_NESTING} deep")
            self.pos += 1
            node = self.or_expression(depth + 1)
            closing = self.peek()
            if closing.kind is not _Kind.RPAREN:
                raise self.fail(
                    closing,
                    f"expected ')' to close the '(' at column {token.pos + 1}, "
                    f"found {closing.describe()}",
                )
            self.pos += 1
        else:
            raise self.fail(
                token,
                f"expected a label, has(), all(), global(), '!' or '(', found {token.describe()}",
            )
        return Not(node) if negated else node

    def comparison(self, label: _Token) -> Selector:
        operator = self.peek(1)
        if operator.kind in _VALUE_OPERATORS:
            value = self.peek(2)
            if value.kind is not _Kind.STRING:
                raise self.fail(
                    value,
                    f"expected a quoted string after {operator.describe()}, "
                    f"found {value.describe()}",
                )
            self.pos += 3
            return _VALUE_OPERATORS[operator.kind](label.value, value.value)
        if operator.kind in (_Kind.IN, _Kind.NOT_IN):
            brace = self.peek(2)
            if brace.kind is not _Kind.LBRACE:
                raise self.fail(
                    brace,
                    f"expected '{{' to open the set after {operator.describe()}, "
                    f"found {brace.describe()}",
                )
            self.pos += 3
            values = self.set_values()
            node_type = In if operator.kind is _Kind.IN else NotIn
            return node_type(label.value, tuple(sorted(set(values))))
        raise self.fail(
            operator,
            f"expected an operator ({_OPERATORS}) after label '{label.value}', "
            f"found {operator.describe()}",
        )

    def set_values(self) -> list[str]:
        values: list[str] = []
        # A trailing comma is accepted, as Calico accepts it.
        while self.peek().kind is _Kind.STRING:
            values.append(self.peek().value)
            self.pos += 1
            if self.peek().kind is not _Kind.COMMA:
                break
            self.pos += 1
        closing = self.peek()
        if closing.kind is not _Kind.RBRACE:
            wanted = (
                "',' or '}'"
                if values and self.peek(-1).kind is _Kind.STRING
                else ("a quoted string or '}'")
            )
            raise self.fail(closing, f"expected {wanted} in the set, found {closing.describe()}")
        self.pos += 1
        return values


# Every decision re-reads the same few selectors (global policies are checked against each
# namespace): parse each text once. Selectors are immutable, so sharing them is safe.
@functools.lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Parse a Calico selector; an empty or all-blank selector is `all()`.

    Raises SelectorError (with a 1-based column) when the text is not a selector Calico
    accepts, longer than MAX_SELECTOR_LENGTH, or nested deeper than MAX_NESTING.
    """
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(
            f"selector is {len(text)} characters long; the limit is {MAX_SELECTOR_LENGTH}",
            MAX_SELECTOR_LENGTH + 1,
            text[:80],
        )
    return _Parser(text, _tokenize(text)).parse()


# -- evaluation ----------------------------------------------------------------------------
def _match(node: LabelMatch, value: str | None) -> bool:  # noqa: PLR0911 - one return per match operator
    """A single-label match operator against the label's value (None: the label is absent)."""
    if isinstance(node, Has):
        return value is not None
    if isinstance(node, NotEquals):
        return value is None or value != node.value
    if isinstance(node, NotIn):
        return value is None or value not in node.values
    if value is None:
        return False
    if isinstance(node, Equals):
        return value == node.value
    if isinstance(node, Contains):
        return node.value in value
    if isinstance(node, StartsWith):
        return value.startswith(node.value)
    if isinstance(node, EndsWith):
        return value.endswith(node.value)
    if isinstance(node, In):
        return value in node.values
    raise TypeError(f"not a label match: {node!r}")


def matches(sel: Selector, labels: Mapping[str, str]) -> bool:
    """Whether sel matches this complete label set, exactly as Calico's evaluator decides.

    `global()` is true here, as in Calico's evaluator: its "non-namespaced only" meaning is
    applied by Calico when it rewrites rule namespaceSelectors, never by the evaluator.
    """
    if isinstance(sel, All | Global):
        return True
    if isinstance(sel, Not):
        return not matches(sel.operand, labels)
    if isinstance(sel, And):
        return all(matches(op, labels) for op in sel.operands)
    if isinstance(sel, Or):
        return any(matches(op, labels) for op in sel.operands)
    if isinstance(sel, LabelMatch):
        return _match(sel, labels.get(sel.key))
    raise TypeError(f"not a selector: {sel!r}")


def matches3(
    sel: Selector,
    known: Mapping[str, str],
    *,
    known_keys: Collection[str] = (),
    known_prefixes: Sequence[str] = (),
    all_keys_known: bool = False,
) -> bool | None:
    """Three-valued evaluation over partly known labels: True, False, or None (unknown).

    `known` holds the labels that are certainly present, with their values. A key is *known*
    when it is in `known`, in `known_keys`, starts with one of `known_prefixes`, or
    `all_keys_known` is set; a known key missing from `known` is certainly absent. Every other
    key may be absent or carry any value. The answer is True only if sel is true for every
    completion of the unknown keys, False only if false for every one (sound, by Kleene's
    logic; it may answer None where a cleverer proof would find True). `global()` is None: its
    documented meaning (non-namespaced resources only) and Calico's evaluator (always true)
    disagree, so no decision may rest on it.
    """
    prefixes = tuple(known_prefixes)

    def lookup(key: str) -> tuple[bool, str | None]:
        if key in known:
            return True, known[key]
        certain = all_keys_known or key in known_keys or key.startswith(prefixes)
        return certain, None

    return _matches3(sel, lookup)


def _matches3(sel: Selector, lookup: Callable[[str], tuple[bool, str | None]]) -> bool | None:  # noqa: PLR0911 - one return per selector node kind
    if isinstance(sel, All):
        return True
    if isinstance(sel, Global):
        return None
    if isinstance(sel, Not):
        inner = _matches3(sel.operand, lookup)
        return None if inner is None else not inner
    if isinstance(sel, And | Or):
        decisive = isinstance(sel, Or)  # the operand value that settles the whole answer
        unknown = False
        for op in sel.operands:
            result = _matches3(op, lookup)
            if result is decisive:
                return decisive
            unknown = unknown or result is None
        return None if unknown else not decisive
    if not isinstance(sel, LabelMatch):
        raise TypeError(f"not a selector: {sel!r}")
    certain, value = lookup(sel.key)
    if certain:
        return _match(sel, value)
    # An empty set decides without the label: nothing is in it, everything is not.
    if isinstance(sel, In) and not sel.values:
        return False
    if isinstance(sel, NotIn) and not sel.values:
        return True
    return None
