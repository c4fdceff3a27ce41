"""source_edits: the exact text edits that add labels, and the re-read that keeps only those."""

from __future__ import annotations

import pytest

from webhook.source_edits import Target, apply, label_edits, verified

POD = ("metadata", "labels")
TEMPLATE = ("spec", "template", "metadata", "labels")

CASES = [
    (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
        POD,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels:\n    role: REPLACE-ME\n",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata:\n    name: a\n    labels:\n        app: a\n",
        POD,
        "apiVersion: v1\nkind: Pod\nmetadata:\n    name: a\n    labels:\n        app: a\n"
        "        role: REPLACE-ME\n",
    ),
    (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n"
        "    spec: {}\n",
        TEMPLATE,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n"
        "    metadata:\n      labels:\n        role: REPLACE-ME\n    spec: {}\n",
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {}}\n",
        POD,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {role: REPLACE-ME}}\n",
    ),
    (
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}',
        POD,
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"role": '
        '"REPLACE-ME"}}}',
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels:\n    role: ~\n",
        POD,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels:\n    role: REPLACE-ME\n",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    CASES,
    ids=["no-labels", "four-space-indent", "template-metadata-first", "empty-flow", "json", "null"],
)
def test_the_edit_adds_exactly_the_label(text: str, path: tuple[str, ...], expected: str) -> None:
    """Each shape gets the labels a person would add, and the re-read confirms nothing else."""
    [edits] = label_edits(text, [Target(1, path, {"role": "REPLACE-ME"})]).values()
    assert isinstance(edits, list)
    after = apply(text, edits)
    assert after == expected
    assert verified("f.yaml", text, after, {1: (path, {"role": "REPLACE-ME"})})


@pytest.mark.parametrize(
    ("value", "written"),
    [("web", "web"), ("yes", '"yes"'), ("1.0", '"1.0"'), ("y", '"y"'), ("a b", '"a b"')],
)
def test_values_yaml_would_read_otherwise_are_quoted(value: str, written: str) -> None:
    """A value that YAML 1.1 (kubectl's too) would read as a boolean or a number is quoted."""
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {app: a}\n"
    [edits] = label_edits(text, [Target(1, POD, {"role": value})]).values()
    assert isinstance(edits, list)
    assert apply(text, edits).endswith(f"labels: {{app: a, role: {written}}}\n")


def test_the_reread_rejects_any_other_change() -> None:
    """`verified` is false when the edited text differs in anything but the labels asked for."""
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
    other = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  labels: {role: x}\n"
    assert not verified("f.yaml", text, other, {1: (POD, {"role": "x"})})
    assert not verified("f.yaml", text, "not: [valid", {1: (POD, {"role": "x"})})


def test_a_value_that_is_already_set_is_never_overwritten() -> None:
    """A label with a value is a person's choice: no edit replaces it."""
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {role: db}\n"
    assert label_edits(text, [Target(1, POD, {"role": "web"})]) == {
        1: "label role has a value that is not empty"
    }
