"""Calico selectors: the documented grammar, Calico's own parser tests, errors and hostile input."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.unit.calico_endpoints import every_endpoint_matches, namespace_matches
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Namespace
from webhook.policy.selector import (
    MAX_NESTING,
    MAX_SELECTOR_LENGTH,
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Global,
    Has,
    In,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    SelectorError,
    StartsWith,
    matches,
    matches3,
    parse_selector,
)

Labels = dict[str, str]

# -- the documented examples -----------------------------------------------------------------
# Each case: selector text as the page prints it, the canonical form, label sets it matches and
# label sets it does not. The page is cited above each case.
DOC_CASES: list[tuple[str, str, list[Labels], list[Labels]]] = [
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("all()", "all()", [{}, {"k": "v"}], []),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("!all()", "!all()", [], [{}, {"k": "v"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    # (Calico's evaluator answers true; the non-namespaced scope is applied when Calico rewrites
    # rule namespaceSelectors, so evaluate3 treats global() as unknown instead.)
    ("global()", "global()", [{}], []),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("k == 'v'", 'k == "v"', [{"k": "v"}, {"k": "v", "x": "y"}], [{}, {"k": "w"}, {"K": "v"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("k != 'v'", 'k != "v"', [{}, {"k": "w"}], [{"k": "v"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("has(k)", "has(k)", [{"k": ""}, {"k": "v"}], [{}, {"kk": "v"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("!has(k)", "!has(k)", [{}, {"kk": "v"}], [{"k": ""}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("k in { 'v1', 'v2' }", 'k in {"v1", "v2"}', [{"k": "v1"}, {"k": "v2"}], [{}, {"k": "v3"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    (
        "k not in { 'v1', 'v2' }",
        'k not in {"v1", "v2"}',
        [{}, {"k": "v3"}],
        [{"k": "v1"}, {"k": "v2"}],
    ),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("k contains 's'", 'k contains "s"', [{"k": "s"}, {"k": "asb"}], [{}, {"k": "S"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("k starts with 's'", 'k starts with "s"', [{"k": "s"}, {"k": "sa"}], [{}, {"k": "as"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    ("k ends with 's'", 'k ends with "s"', [{"k": "s"}, {"k": "as"}], [{}, {"k": "sa"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    # ("It would match: any resource that did not have label my-label; any resource that both
    # has a my-label starting with prod and a role of frontend or business.")
    (
        "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}",
        '(!has(my-label) || (my-label starts with "prod" && role in {"business", "frontend"}))',
        [{}, {"role": "db"}, {"my-label": "prod-1", "role": "frontend"}],
        [{"my-label": "prod-1"}, {"my-label": "dev", "role": "business"}],
    ),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("!has(foo)", "!has(foo)", [{}], [{"foo": "x"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("has(foo)", "has(foo)", [{"foo": "x"}], [{}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ('label == "value"', 'label == "value"', [{"label": "value"}], [{"label": "other"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    (
        "label in { 'v1', 'v2' }",
        'label in {"v1", "v2"}',
        [{"label": "v2"}],
        [{"label": "v"}],
    ),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("has(label)", "has(label)", [{"label": ""}], [{}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("label contains 's'", 'label contains "s"', [{"label": "yes"}], [{"label": "no"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("label starts with 's'", 'label starts with "s"', [{"label": "sa"}], [{"label": "as"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("label ends with 's'", 'label ends with "s"', [{"label": "as"}], [{"label": "sa"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("a == 'b'", 'a == "b"', [{"a": "b"}], [{"a": "c"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("a == 'b' && has(c)", '(a == "b" && has(c))', [{"a": "b", "c": ""}], [{"a": "b"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("a == 'b' || has(c)", '(a == "b" || has(c))', [{"a": "b"}, {"c": ""}], [{"a": "c"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("c != 'd'", 'c != "d"', [{}, {"c": "e"}], [{"c": "d"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("!has(a)", "!has(a)", [{"b": "a"}], [{"a": "b"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("a == 'b' && c != 'd'", '(a == "b" && c != "d")', [{"a": "b"}], [{"a": "b", "c": "d"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#entityrule
    ("c != 'd' && a == 'b'", '(c != "d" && a == "b")', [{"a": "b"}], [{"a": "b", "c": "d"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy (sample YAML)
    ("role == 'database'", 'role == "database"', [{"role": "database"}], [{"role": "frontend"}]),
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy (sample YAML)
    ("role == 'frontend'", 'role == "frontend"', [{"role": "frontend"}], [{}]),
    # https://docs.tigera.io/calico/latest/reference/resources/globalnetworkpolicy (intro)
    (
        'projectcalico.org/namespace == "default"',
        'projectcalico.org/namespace == "default"',
        [{"projectcalico.org/namespace": "default"}],
        [{"projectcalico.org/namespace": "shop"}, {}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels
    (
        'projectcalico.org/name in {"foo", "bar"}',
        'projectcalico.org/name in {"bar", "foo"}',
        [{"projectcalico.org/name": "foo"}, {"projectcalico.org/name": "bar"}],
        [{"projectcalico.org/name": "baz"}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels
    ('color == "red"', 'color == "red"', [{"color": "red"}], [{"color": "blue"}]),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels
    (
        'projectcalico.org/name == "baz"',
        'projectcalico.org/name == "baz"',
        [{"projectcalico.org/name": "baz"}],
        [{"projectcalico.org/name": "foo"}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-labels
    (
        '(foo == "bar") && (projectcalico.org/namespace == "some-namespace")',
        '(foo == "bar" && projectcalico.org/namespace == "some-namespace")',
        [{"foo": "bar", "projectcalico.org/namespace": "some-namespace"}],
        [{"foo": "bar", "projectcalico.org/namespace": "other"}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
    (
        'has(projectcalico.org/name) && projectcalico.org/name not in {"kube-system", '
        '"calico-system", "calico-apiserver"}',
        '(has(projectcalico.org/name) && projectcalico.org/name not in {"calico-apiserver", '
        '"calico-system", "kube-system"})',
        [{"projectcalico.org/name": "shop"}],
        [{"projectcalico.org/name": "kube-system"}, {}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
    (
        'k8s-app == "kube-dns"',
        'k8s-app == "kube-dns"',
        [{"k8s-app": "kube-dns"}],
        [{"k8s-app": "kube-proxy"}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
    (
        "projectcalico.org/namespace not in  {'kube-system', 'calico-system', 'calico-apiserver'}",
        'projectcalico.org/namespace not in {"calico-apiserver", "calico-system", "kube-system"}',
        [{"projectcalico.org/namespace": "advanced-policy-demo"}],
        [{"projectcalico.org/namespace": "calico-system"}],
    ),
    # https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
    ("run == 'access'", 'run == "access"', [{"run": "access"}], [{"run": "nginx"}]),
]


@pytest.mark.parametrize(
    ("text", "canonical", "hits", "misses"),
    DOC_CASES,
    ids=[case[0] for case in DOC_CASES],
)
def test_documented_selectors_parse_print_and_match_as_calico_documents(
    text: str, canonical: str, hits: list[Labels], misses: list[Labels]
) -> None:
    """Every selector in Calico's docs parses, prints canonically and matches as documented."""
    sel = parse_selector(text)
    assert str(sel) == canonical
    assert parse_selector(canonical) == sel
    for labels in hits:
        assert matches(sel, labels), labels
    for labels in misses:
        assert not matches(sel, labels), labels


def test_documented_bracketing_of_the_precedence_example_is_missing_two_parens() -> None:
    """The docs' "bracketed" precedence example lacks two ')': rejected; closed, same tree."""
    # https://docs.tigera.io/calico/latest/reference/resources/networkpolicy#selectors
    bracketed = (
        "((!(has(my-label)) || ((my-label starts with 'prod') && (role in {'frontend','business'}))"
    )
    with pytest.raises(SelectorError) as caught:
        parse_selector(bracketed)
    assert caught.value.column == len(bracketed) + 1
    assert "expected ')' to close the '(' at column 2" in str(caught.value)
    plain = "! has(my-label) || my-label starts with 'prod' && role in {'frontend','business'}"
    assert parse_selector(bracketed + "))") == parse_selector(plain)


# -- Calico's own parser tests (libcalico-go/lib/selector/parser/parser_test.go) --------------
CALICO_MATCH_CASES: list[tuple[str, list[Labels], list[Labels]]] = [
    ('a == "b"', [{"a": "b"}, {"a": "b", "c": "d"}], [{}, {"a": "c"}, {"c": "d"}]),
    ('a == "b" && c == "d"', [{"a": "b", "c": "d"}], [{}, {"a": "b", "c": "e"}, {"a": "b"}]),
    ('a == "b" || c == "d"', [{"a": "b"}, {"c": "d"}], [{}, {"a": "e", "c": "e"}]),
    ('a in {"\'", \'"\', "c"}', [{"a": "c"}, {"a": '"'}, {"a": "'"}], [{}, {"a": "e"}]),
    ('a not in {"\'", \'"\', "c"}', [{}, {"a": "e"}], [{"a": "c"}, {"a": '"'}, {"a": "'"}]),
    ('a != "a"', [{}], [{"a": "a"}]),
    ('a contains "a"', [{"a": "bab"}], [{}, {"a": "b"}, {"b": "aaa"}]),
    ('!a in {"a"}', [{"a": "b"}], [{"a": "a"}]),
    ("", [{}, {"a": "b"}], []),
    (" ", [{}], []),
    (" all()", [{"a": "b"}], []),
    (" global()", [{"a": "b"}], []),
    ("!!has(b)", [], [{"a": "b"}]),
    ("!!! has(a)", [], [{"a": "b"}]),
    ("!! ! has(a)", [], [{"a": "b"}]),
    ("! !!has(a)", [], [{"a": "b"}]),
    ("a != 'a1' && !b == 'b1'", [], [{"a": "a1", "b": "b1"}]),
    ("!(!has(a) || has(b))", [{"a": "a"}], [{"a": "a", "b": "b"}]),
    ("! a == 'a1' || ! b == 'b1'", [{"a": "a1"}], [{"a": "a1", "b": "b1"}]),
]


@pytest.mark.parametrize(
    ("text", "hits", "misses"),
    CALICO_MATCH_CASES,
    ids=[c[0] or "<empty>" for c in CALICO_MATCH_CASES],
)
def test_calico_parser_match_table(text: str, hits: list[Labels], misses: list[Labels]) -> None:
    """Selectors from Calico's parser tests match exactly the label sets Calico's tests expect."""
    sel = parse_selector(text)
    for labels in hits:
        assert matches(sel, labels), labels
        assert matches(parse_selector(str(sel)), labels), labels
    for labels in misses:
        assert not matches(sel, labels), labels


CALICO_CANONICAL = [
    ("", "all()"),
    (" all() ", "all()"),
    (" (all() )", "all()"),
    ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
    ('! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'),
    ('a == "\'"', 'a == "\'"'),
    ("a == '\"'", "a == '\"'"),
    ("a contains '\"'", "a contains '\"'"),
    ("a startswith '\"'", "a starts with '\"'"),
    ('a endswith "\'"', 'a ends with "\'"'),
    ("a!='\"'", "a != '\"'"),
    ('a in {"d", "a", "b"}', 'a in {"a", "b", "d"}'),
    ('a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}'),
    ("!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))", None),
]


@pytest.mark.parametrize(
    ("text", "canonical"), CALICO_CANONICAL, ids=[c[0] for c in CALICO_CANONICAL]
)
def test_calico_canonicalisation_table(text: str, canonical: str | None) -> None:
    """Canonical forms equal Calico's own (sets sorted and de-duplicated) and round-trip."""
    sel = parse_selector(text)
    if canonical is not None:
        assert str(sel) == canonical
    assert parse_selector(str(sel)) == sel
    assert str(parse_selector(str(sel))) == str(sel)


CALICO_BAD = [
    "b == b",
    "b contains b",
    "b starts with b",
    "b ends with b",
    "'b1' == b",
    "b",
    "a b",
    "!",
    'foo == "bar" &',
    'foo == "bar" |',
    "foo != ||",
    'foo in {"", ||',
    'foo in ""',
    '"FOO',
    "\"FOO'",
    "'FOO",
    "(",
    '(a == "foo"',
    ")",
    "()",
    "%",
    'a == "b" && %',
    'a == "b" || %',
    "a ",
    "has(foo) &&",
]


@pytest.mark.parametrize("text", CALICO_BAD, ids=CALICO_BAD)
def test_calico_rejected_selectors_are_rejected_with_a_column(text: str) -> None:
    """Every selector Calico's parser tests reject raise SelectorError with a column."""
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    error = caught.value
    assert isinstance(error, GuardrailError)
    assert 1 <= error.column <= len(text) + 1
    assert str(error).startswith(f"selector column {error.column}: ")
    assert error.selector == text


# -- the grammar's corners ---------------------------------------------------------------------
TREES: list[tuple[str, Selector]] = [
    (
        "a == 'b' && c == 'd' || e == 'f'",
        Or((And((Equals("a", "b"), Equals("c", "d"))), Equals("e", "f"))),
    ),
    (
        "a == 'b' || c == 'd' && e == 'f'",
        Or((Equals("a", "b"), And((Equals("c", "d"), Equals("e", "f"))))),
    ),
    (
        "(a == 'b' || c == 'd') && e == 'f'",
        And((Or((Equals("a", "b"), Equals("c", "d"))), Equals("e", "f"))),
    ),
    ("!a == 'b' && c == 'd'", And((Not(Equals("a", "b")), Equals("c", "d")))),
    ("!(a == 'b' && c == 'd')", Not(And((Equals("a", "b"), Equals("c", "d"))))),
    ("!(!a == 'b')", Not(Not(Equals("a", "b")))),
    ("((a == 'b'))", Equals("a", "b")),
    ("\ta\t==\t'b'\t", Equals("a", "b")),
    ("a in {}", In("a", ())),
    ("a not in {'x',}", NotIn("a", ("x",))),
    ("a notin{'x'}", NotIn("a", ("x",))),
    ("a in{'x'}", In("a", ("x",))),
    ("a starts   with 'x'", StartsWith("a", "x")),
    ("a ends\twith 'x'", EndsWith("a", "x")),
    ("a contains ''", Contains("a", "")),
    ("a != ''", NotEquals("a", "")),
    ("has(  projectcalico.org/namespace  )", Has("projectcalico.org/namespace")),
    ("all(  )", All()),
    ("global(\t)", Global()),
    ("has == 'x'", Equals("has", "x")),
    ("all.x == 'y'", Equals("all.x", "y")),
    ("a == '  spaced  value  '", Equals("a", "  spaced  value  ")),
    ("a == 'caf\u00e9 \u2603'", Equals("a", "caf\u00e9 \u2603")),
    ("a == 'nul\x00inside'", Equals("a", "nul\x00inside")),
    ("a == 'line\nbreak'", Equals("a", "line\nbreak")),
    ("pcns.projectcalico.org/name == 'x'", Equals("pcns.projectcalico.org/name", "x")),
    ("_odd-.key/ok == 'x'", Equals("_odd-.key/ok", "x")),
]


@pytest.mark.parametrize(
    ("text", "tree"), TREES, ids=[t[0].encode("unicode_escape").decode() for t in TREES]
)
def test_precedence_quoting_and_whitespace_give_calicos_tree(text: str, tree: Selector) -> None:
    """`||` binds loosest, then `&&`, then `!`; blanks: space, tab; operators match as prefixes."""
    sel = parse_selector(text)
    assert sel == tree
    assert parse_selector(str(sel)) == tree


ERRORS: list[tuple[str, int, str]] = [
    ("my-label == prod", 13, "expected a quoted string after '==', found label 'prod'"),
    ("a == 'b' && c ==", 17, "expected a quoted string after '==', found the end of the selector"),
    ("a = 'b'", 3, "expected '==' (a single '=' is not an operator)"),
    ("a == 'b' & c == 'd'", 10, "expected '&&' (a single '&' is not an operator)"),
    ("a == 'b' | c == 'd'", 10, "expected '||' (a single '|' is not an operator)"),
    ("a == 'b", 6, "unterminated string: the ' opened here is never closed"),
    ('a in {"x", "y}', 12, 'unterminated string: the " opened here is never closed'),
    ("a in 'x'", 6, "expected '{' to open the set after 'in', found the string \"x\""),
    ("a in {'x' 'y'}", 11, "expected ',' or '}' in the set, found the string \"y\""),
    ("a in {,}", 7, "expected a quoted string or '}' in the set, found ','"),
    ("a starts 'x'", 10, "expected 'with' after 'starts'"),
    ("a ends 'x'", 8, "expected 'with' after 'ends'"),
    ("a not 'x'", 7, "expected 'in' after 'not'"),
    (
        "app has(x)",
        5,
        "expected an operator (==, !=, in, not in, contains, starts with or ends "
        "with) after label 'app'",
    ),
    ("has()", 5, "expected a label name inside has( )"),
    ("has(a b)", 7, "expected ')' to close has(a"),
    ("all(x)", 5, "expected ')' after 'all(': all() takes no arguments"),
    ("global(x)", 8, "expected ')' after 'global(': global() takes no arguments"),
    ("all ()", 5, "after label 'all', found '('"),
    ("(a == 'b'", 10, "expected ')' to close the '(' at column 1, found the end of the selector"),
    ("a == 'b')", 9, "unexpected ')': expected '&&', '||' or the end of the selector"),
    ("a == 'b' c == 'd'", 10, "unexpected label 'c': expected '&&', '||' or the end"),
    ("&& a == 'b'", 1, "expected a label, has(), all(), global(), '!' or '(', found '&&'"),
    ("a == 'b' &&", 12, "found the end of the selector"),
    ("'v' == a", 1, "expected a label, has(), all(), global(), '!' or '(', found the string \"v\""),
    ("a == 'b'\n", 9, "unexpected character '\\n': Calico separates tokens with spaces and tabs"),
    ("a == 'b'\r\n", 9, "unexpected character '\\r'"),
    ("\u00e9t\u00e9 == 'x'", 1, "unexpected character '\u00e9'"),
    ("a == 'b' && \x00", 13, "unexpected character '\\x00'"),
    ("a\u00a0== 'b'", 2, "unexpected character '\\xa0': Calico separates tokens with spaces"),
    ("a == \u201cb\u201d", 6, "unexpected character '\u201c'"),
]


@pytest.mark.parametrize(
    ("text", "column", "message"),
    ERRORS,
    ids=[e[0].encode("unicode_escape").decode() for e in ERRORS],
)
def test_syntax_errors_name_the_column_and_what_was_expected(
    text: str, column: int, message: str
) -> None:
    """A syntax error points at the 1-based column of the problem and says what it expected."""
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert caught.value.column == column
    assert message in caught.value.message
    assert str(caught.value) == f"selector column {column}: {caught.value.message}"


# -- hostile input -----------------------------------------------------------------------------
def test_selector_longer_than_the_limit_is_refused_up_front() -> None:
    """A selector over MAX_SELECTOR_LENGTH is refused with its length, without being tokenized."""
    text = "a == 'b' && " * (MAX_SELECTOR_LENGTH // 12) + "c == '" + "x" * 200 + "'"
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert caught.value.column == MAX_SELECTOR_LENGTH + 1
    assert f"the limit is {MAX_SELECTOR_LENGTH}" in str(caught.value)
    assert f"selector is {len(text)} characters long" in str(caught.value)


def test_long_selector_within_the_limit_parses_fast() -> None:
    """A real-world-sized `not in` list and a long `&&` chain just under the limit parse quickly."""
    names = ", ".join(f"'namespace-{i:04d}'" for i in range(800))
    long_set = f"projectcalico.org/namespace not in {{{names}}}"
    chain = " && ".join(f"k{i} == 'v'" for i in range(1000))
    assert len(long_set) <= MAX_SELECTOR_LENGTH
    assert len(chain) <= MAX_SELECTOR_LENGTH
    started = time.perf_counter()
    sel = parse_selector(long_set)
    anded = parse_selector(chain)
    assert time.perf_counter() - started < 2.0
    assert isinstance(sel, NotIn)
    assert len(sel.values) == 800
    assert isinstance(anded, And)
    assert len(anded.operands) == 1000


@pytest.mark.parametrize(
    ("depth", "ok"),
    [(MAX_NESTING, True), (MAX_NESTING + 1, False), (5000, False)],
    ids=["at-limit", "one-over", "thousands"],
)
def test_nesting_is_bounded_with_a_clear_error_not_a_recursion_error(depth: int, ok: bool) -> None:
    """Parentheses nest up to MAX_NESTING; deeper is a SelectorError at the first '(' too many."""
    text = "(" * depth + "a == 'b'" + ")" * depth
    negated = "!(" * depth + "has(a)" + ")" * depth
    if ok:
        assert parse_selector(text) == Equals("a", "b")
        sel = parse_selector(negated)
        assert matches(sel, {"a": "x"}) is (depth % 2 == 0)
        assert parse_selector(str(sel)) == sel
        return
    for hostile, column in ((text, MAX_NESTING + 1), (negated, 2 * MAX_NESTING + 2)):
        with pytest.raises(SelectorError) as caught:
            parse_selector(hostile)
        assert caught.value.column == column
        assert f"parentheses are nested more than {MAX_NESTING} deep" in str(caught.value)


def test_thousands_of_negations_fold_without_recursion() -> None:
    """A run of `!` folds as Calico folds it: an even count is no negation, an odd count one."""
    assert parse_selector("!" * 10000 + "has(a)") == Has("a")
    assert parse_selector("!" * 10001 + "has(a)") == Not(Has("a"))


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("'", 1),
        ('"', 1),
        ("a == '", 6),
        ('a in {"x", "', 12),
        ("has(a) && 'unterminated && has(b)", 11),
        ("'\"", 1),
        ("\"'", 1),
    ],
    ids=[
        "lone-single",
        "lone-double",
        "after-eq",
        "in-set",
        "mid-expression",
        "mixed-1",
        "mixed-2",
    ],
)
def test_unterminated_quotes_point_at_the_opening_quote(text: str, column: int) -> None:
    """An unclosed quote is reported at the column of the quote that opened the string."""
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert caught.value.column == column
    assert f"unterminated string: the {text[column - 1]} opened here is never closed" in str(
        caught.value
    )


# -- three-valued evaluation -------------------------------------------------------------------
SHOP = Namespace(
    name="shop",
    labels={"kubernetes.io/metadata.name": "shop", "team": "payments", "env": "prod"},
)
ENDPOINT_CASES: list[tuple[str, bool]] = [
    ("", True),
    ("all()", True),
    ("has(projectcalico.org/namespace)", True),
    ("projectcalico.org/namespace == 'shop'", True),
    ("projectcalico.org/namespace == 'other'", False),
    (
        "projectcalico.org/namespace not in {'kube-system', 'calico-system', 'calico-apiserver'}",
        True,
    ),
    ("projectcalico.org/orchestrator == 'k8s'", True),
    ("pcns.team == 'payments'", True),
    ("pcns.env in {'prod', 'staging'} && pcns.projectcalico.org/name == 'shop'", True),
    ("pcns.kubernetes.io/metadata.name == 'shop'", True),
    ("!has(pcns.not-a-namespace-label)", True),
    ("has(app)", False),
    ("!has(app)", False),
    ("app == 'web' || projectcalico.org/namespace == 'shop'", True),
    ("app == 'web' && projectcalico.org/namespace == 'shop'", False),
    ("has(app) || !has(app)", False),  # true, but beyond Kleene logic: never claimed
    ("app in {}", False),
    ("app not in {} && has(projectcalico.org/namespace)", True),
    ("has(projectcalico.org/serviceaccount)", False),
    ("global()", False),
    ("!global()", False),
    ("!all()", False),
]


@pytest.mark.parametrize(
    ("text", "expected"), ENDPOINT_CASES, ids=[c[0] or "<empty>" for c in ENDPOINT_CASES]
)
def test_every_endpoint_matches_only_on_namespace_facts(text: str, expected: bool) -> None:
    """A selector covers all pods of a namespace only if true whatever the pods' own labels are."""
    assert every_endpoint_matches(parse_selector(text), SHOP) is expected


DENY_APP = (
    'has(projectcalico.org/name) && projectcalico.org/name not in {"kube-system", '
    '"calico-system", "calico-apiserver"}'
)
NAMESPACE_CASES: list[tuple[str, Namespace, bool]] = [
    (DENY_APP, SHOP, True),
    (DENY_APP, Namespace.unknown("kube-system"), False),
    (DENY_APP, Namespace.unknown("calico-apiserver"), False),
    ("all()", Namespace.unknown("kube-system"), True),
    ("team == 'payments'", SHOP, True),
    ("team == 'payments'", Namespace.unknown("x"), False),
    ("!has(team)", Namespace.unknown("x"), True),
    ("kubernetes.io/metadata.name == 'shop'", SHOP, True),
    ("global()", SHOP, False),
]


@pytest.mark.parametrize(
    ("text", "namespace", "expected"),
    NAMESPACE_CASES,
    ids=[f"{c[0][:40]}@{c[1].name}" for c in NAMESPACE_CASES],
)
def test_namespace_selectors_read_labels_and_the_name_label(
    text: str, namespace: Namespace, expected: bool
) -> None:
    """A namespaceSelector sees the namespace's labels plus projectcalico.org/name, all known."""
    assert namespace_matches(parse_selector(text), namespace) is expected


@pytest.mark.parametrize(
    ("text", "known", "kwargs", "expected"),
    [
        ("has(a)", {}, {}, None),
        ("has(a)", {}, {"known_keys": {"a"}}, False),
        ("has(a)", {}, {"known_prefixes": ("a",)}, False),
        ("!has(a)", {}, {"all_keys_known": True}, True),
        ("a == 'x' && b == 'y'", {"a": "z"}, {}, False),
        ("a == 'x' || b == 'y'", {"a": "x"}, {}, True),
        ("a == 'x' || b == 'y'", {"a": "z"}, {}, None),
        ("a == 'x' && b == 'y'", {"a": "x"}, {}, None),
        ("!(a == 'x' && b == 'y')", {"a": "z"}, {}, True),
        ("a contains ''", {}, {}, None),
        ("a not in {}", {}, {}, True),
    ],
    ids=[
        "unknown",
        "known-absent",
        "prefix-absent",
        "all-known",
        "and-false",
        "or-true",
        "or-unknown",
        "and-unknown",
        "not-of-false",
        "contains-empty",
        "not-in-empty",
    ],
)
def test_evaluate3_is_kleene_logic_over_known_and_unknown_keys(
    text: str, known: Labels, kwargs: dict[str, Any], expected: bool | None
) -> None:
    """Known keys decide exactly; an unknown key leaves a term unknown unless it cannot matter."""
    assert matches3(parse_selector(text), known, **kwargs) is expected
