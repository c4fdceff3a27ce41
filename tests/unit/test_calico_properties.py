"""Calico selectors, property-tested: round trips, a brute-force reference, sound 3-valued logic."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.calico_endpoints import NAMESPACE_LABEL, ORCHESTRATOR_LABEL, every_endpoint_matches
from webhook.policy.model import Namespace
from webhook.policy.selector import (
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

# Moderate example counts keep the whole file well under 20 s; the database is off so a run
# leaves no files behind in the repository.
PROPERTY = settings(max_examples=250, deadline=None, database=None)
EXHAUSTIVE = settings(max_examples=120, deadline=None, database=None)

LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-"
# Values exercise both quote styles (never both at once: Calico strings have no escapes),
# blanks, an empty string, prefixes of one another, and the names the namespace case uses.
VALUES = ("", "x", "xy", "yx", "it's", 'say "hi"', " x ", "shop", "k8s", "kube-system")


def _value_text() -> st.SearchStrategy[str]:
    free = st.text(max_size=5).filter(lambda v: not ('"' in v and "'" in v))
    return st.sampled_from(VALUES) | free


def selectors(
    keys: st.SearchStrategy[str], values: st.SearchStrategy[str]
) -> st.SearchStrategy[Selector]:
    """Arbitrary trees of every node kind, shaped as the parser builds them."""
    value_sets = st.lists(values, max_size=3).map(lambda vs: tuple(sorted(set(vs))))
    leaves: st.SearchStrategy[Selector] = st.one_of(
        st.just(All()),
        st.just(Global()),
        st.builds(Has, keys),
        st.builds(Equals, keys, values),
        st.builds(NotEquals, keys, values),
        st.builds(Contains, keys, values),
        st.builds(StartsWith, keys, values),
        st.builds(EndsWith, keys, values),
        st.builds(In, keys, value_sets),
        st.builds(NotIn, keys, value_sets),
    )

    def branches(children: st.SearchStrategy[Selector]) -> st.SearchStrategy[Selector]:
        several = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(
            st.builds(Not, children),
            several.map(And),
            several.map(Or),
        )

    return st.recursive(leaves, branches, max_leaves=10)


ANY_KEY = st.sampled_from(("a", "b", "all", "has", "in", "projectcalico.org/namespace")) | st.text(
    alphabet=LABEL_CHARS, min_size=1, max_size=8
)


@PROPERTY
@given(selectors(ANY_KEY, _value_text()))
def test_printing_then_parsing_gives_the_same_tree(sel: Selector) -> None:
    """str() of any selector tree parses back to an equal tree, and prints the same again."""
    again = parse_selector(str(sel))
    assert again == sel
    assert str(again) == str(sel)


def spell(sel: Selector, data: st.DataObject) -> str:
    """One of the many ways a user may write sel: blanks, quote styles, `!!!`, spare parens."""
    draw = data.draw
    blank = st.sampled_from(("", " ", "\t", "  "))
    gap = st.sampled_from((" ", "\t", " \t "))

    def quoted(value: str) -> str:
        quote = "'" if '"' in value else '"' if "'" in value else draw(st.sampled_from("'\""))
        return quote + value + quote

    def inner(node: Selector) -> str:
        text = spell(node, data)
        return f"({draw(blank)}{text}{draw(blank)})" if isinstance(node, And | Or) else text

    text: str
    if isinstance(sel, All | Global):
        text = f"{'all' if isinstance(sel, All) else 'global'}({draw(blank)})"
    elif isinstance(sel, Has):
        text = f"has({draw(blank)}{sel.key}{draw(blank)})"
    elif isinstance(sel, In | NotIn):
        word = "in" if isinstance(sel, In) else f"not{draw(blank)}in"
        items = f"{draw(blank)},{draw(blank)}".join(quoted(v) for v in sel.values)
        trailing = draw(st.sampled_from(("", ","))) if sel.values else ""
        text = f"{sel.key}{draw(gap)}{word}{draw(blank)}{{{items}{trailing}{draw(blank)}}}"
    elif isinstance(sel, Equals | NotEquals):
        operator = "==" if isinstance(sel, Equals) else "!="
        text = f"{sel.key}{draw(blank)}{operator}{draw(blank)}{quoted(sel.value)}"
    elif isinstance(sel, Contains | StartsWith | EndsWith):
        word = {Contains: "contains", StartsWith: "starts{}with", EndsWith: "ends{}with"}[type(sel)]
        text = f"{sel.key}{draw(gap)}{word.format(draw(blank))}{draw(blank)}{quoted(sel.value)}"
    elif isinstance(sel, Not):
        bangs = "!" * draw(st.sampled_from((1, 3)))
        body = spell(sel.operand, data)
        wrap = isinstance(sel.operand, Not | And | Or)
        text = f"{bangs}{draw(blank)}" + (f"({body})" if wrap else body)
    else:
        assert isinstance(sel, And | Or)
        operator = "&&" if isinstance(sel, And) else "||"
        text = f"{draw(blank)}{operator}{draw(blank)}".join(inner(op) for op in sel.operands)
    if draw(st.integers(0, 5)) == 0:
        text = f"({draw(blank)}{text}{draw(blank)})"
    return text


@PROPERTY
@given(selectors(ANY_KEY, _value_text()), st.data())
def test_every_spelling_of_a_tree_parses_to_that_tree(sel: Selector, data: st.DataObject) -> None:
    """Blanks, either quote, `!!!`, `startswith`, trailing commas and spare parens all mean sel."""
    text = spell(sel, data)
    lead = data.draw(st.sampled_from(("", " ", "\t")))
    assert parse_selector(lead + text + " ") == sel


FRAGMENTS = (
    *"ab ()!&|=,{}'\"\t\n%\x00\u00e9",
    *("has(", "all()", "global()", " in ", " not in ", " contains ", " starts with "),
    *(" ends with ", "==", "!=", "&&", "||", "{'x', 'y'}"),
)
SELECTORISH = st.lists(st.sampled_from(FRAGMENTS), max_size=16).map("".join)


def parse_or_error(text: str) -> Selector | SelectorError:
    try:
        return parse_selector(text)
    except SelectorError as error:
        return error


@PROPERTY
@given(SELECTORISH)
def test_any_text_parses_or_fails_with_a_selector_error_and_parsed_text_round_trips(
    text: str,
) -> None:
    """Arbitrary input gives a tree that round-trips, or a SelectorError with a column in range."""
    result = parse_or_error(text)
    if isinstance(result, SelectorError):
        assert 1 <= result.column <= len(text) + 1
        assert str(result).startswith(f"selector column {result.column}: ")
    else:
        assert parse_selector(str(result)) == result


def reference(sel: Selector, labels: Mapping[str, str]) -> bool:  # noqa: PLR0911 - a brute-force reference evaluator, one return per operator
    """The meaning table of Calico's selector reference, read literally, one row per node."""
    if isinstance(sel, And):
        return not [op for op in sel.operands if not reference(op, labels)]
    if isinstance(sel, Or):
        return bool([op for op in sel.operands if reference(op, labels)])
    if isinstance(sel, Not):
        return not reference(sel.operand, labels)
    if isinstance(sel, All | Global):
        # Calico's evaluator answers true for global(); its scope is applied elsewhere.
        return True
    assert isinstance(sel, Has | Equals | NotEquals | Contains | StartsWith | EndsWith | In | NotIn)
    has = sel.key in labels
    value = labels.get(sel.key, "")
    if isinstance(sel, Has):
        return has
    if isinstance(sel, Equals):
        return has and value == sel.value
    if isinstance(sel, NotEquals):
        return not has or value != sel.value
    if isinstance(sel, Contains):
        return has and value.find(sel.value) >= 0
    if isinstance(sel, StartsWith):
        return has and value[: len(sel.value)] == sel.value
    if isinstance(sel, EndsWith):
        return has and value[len(value) - len(sel.value) :] == sel.value
    if isinstance(sel, In):
        return has and any(value == v for v in sel.values)
    return not has or all(value != v for v in sel.values)


SMALL_KEYS = ("a", "b", "c")
LABEL_SETS = st.dictionaries(st.sampled_from(SMALL_KEYS), _value_text(), max_size=3)


@PROPERTY
@given(selectors(st.sampled_from(SMALL_KEYS), _value_text()), LABEL_SETS)
def test_evaluate_agrees_with_the_brute_force_reference(
    sel: Selector, labels: dict[str, str]
) -> None:
    """matches() matches the documented meaning of every operator on random label sets."""
    assert matches(sel, labels) is reference(sel, labels)
    assert matches(parse_selector(str(sel)), labels) is reference(sel, labels)


def completions(
    known: Mapping[str, str], unknown: Sequence[str], values: Sequence[str]
) -> Iterator[dict[str, str]]:
    """Every label set that agrees with known: each unknown key absent or any of values."""
    for choice in itertools.product([None, *values], repeat=len(unknown)):
        labels = dict(known)
        labels.update({k: v for k, v in zip(unknown, choice, strict=True) if v is not None})
        yield labels


# Each key of the small alphabet is either known present, known absent, or unknown.
KEY_STATES = st.tuples(
    *[st.one_of(st.sampled_from(VALUES[:6]), st.just("<absent>"), st.just("<unknown>"))] * 3
)


@EXHAUSTIVE
@given(selectors(st.sampled_from(SMALL_KEYS), st.sampled_from(VALUES[:6])), KEY_STATES)
def test_evaluate3_never_claims_what_some_completion_contradicts(
    sel: Selector, states: tuple[str, str, str]
) -> None:
    """A True (False) from evaluate3 holds for every completion of the unknown labels."""
    known = {
        k: s for k, s in zip(SMALL_KEYS, states, strict=True) if s not in ("<absent>", "<unknown>")
    }
    absent = {k for k, s in zip(SMALL_KEYS, states, strict=True) if s == "<absent>"}
    unknown = [k for k, s in zip(SMALL_KEYS, states, strict=True) if s == "<unknown>"]
    answer = matches3(sel, known, known_keys=absent)
    if answer is None:
        return
    for labels in completions(known, unknown, VALUES[:6]):
        assert matches(sel, labels) is answer, labels
    if not unknown:
        # With nothing unknown, only global() may leave the answer open.
        assert matches(sel, known) is answer


ENDPOINT_KEYS = (
    "app",
    "role",
    NAMESPACE_LABEL,
    ORCHESTRATOR_LABEL,
    "pcns.team",
    "pcns.env",
    "pcns.projectcalico.org/name",
)
POD_KEYS = ("app", "role", NAMESPACE_LABEL)  # a pod may even try to set the namespace label
NAMESPACE_VALUES = ("shop", "kube-system", "k8s", "x", "")


def endpoint_labels(pod: Mapping[str, str], namespace: Namespace) -> dict[str, str]:
    """The labels Calico evaluates for a pod: profile labels, overridden by the pod's own,
    overridden in turn by the namespace and orchestrator labels Calico sets itself."""
    labels = {f"pcns.{k}": v for k, v in namespace.labels.items()}
    labels["pcns.projectcalico.org/name"] = namespace.name
    labels.update(pod)
    labels[NAMESPACE_LABEL] = namespace.name
    labels[ORCHESTRATOR_LABEL] = "k8s"
    return labels


NAMESPACES = st.builds(
    Namespace,
    name=st.sampled_from(("shop", "kube-system")),
    labels=st.dictionaries(st.sampled_from(("team", "env")), st.sampled_from(NAMESPACE_VALUES)),
)


@EXHAUSTIVE
@given(
    selectors(st.sampled_from(ENDPOINT_KEYS), st.sampled_from(NAMESPACE_VALUES)),
    NAMESPACES,
)
def test_every_endpoint_matches_only_when_no_pod_labels_can_escape(
    sel: Selector, namespace: Namespace
) -> None:
    """When every_endpoint_matches says yes, every pod of the namespace matches, any pod labels."""
    if not every_endpoint_matches(sel, namespace):
        return
    for pod in completions({}, POD_KEYS, NAMESPACE_VALUES):
        assert matches(sel, endpoint_labels(pod, namespace)), pod
