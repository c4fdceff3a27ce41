"""Exact edits of manifest text: labels added where they belong, every other byte kept.

    label_edits(text, [Target(line=1, path=("spec", "template", "metadata", "labels"),
                              labels={"role": "REPLACE-ME"})])
        ->  {1: [Edit(start=97, end=97, text="        role: REPLACE-ME\\n")]}

An edit is found from the document's nodes (PyYAML's composer, whose marks are character
offsets) and is as small as a person would make it: whole new lines at the mapping's
own indentation in block style, new entries inside the braces in flow style and JSON (on a line
of their own when the mapping spans lines), a value written over an empty one. Comments, key
order, quoting, blank lines and line endings stay as they are. Where no such place exists (an
object sharing its line with another, a null where a mapping belongs, an odd line break), the
object gets a reason instead, and `verified` re-reads the edited text to keep an edit only when
the objects are exactly the old ones plus the labels (an anchor shared with another object, a
duplicate key, anything unforeseen): a file is rewritten exactly, or not at all.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from webhook.manifests import Manifest, load_bytes
from webhook.policy.errors import ManifestError

# A label key or value that YAML reads back as the same string without quotes: no indicator
# characters, and none of the words YAML 1.1 (kubectl's go-yaml included) reads as a boolean,
# a null or a number; anything else is written double-quoted, which YAML and JSON read alike.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9._/-]*[A-Za-z0-9_]|[A-Za-z_]")
_NOT_PLAIN = frozenset(
    {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity"}
)
# Line breaks other than \n and \r\n: YAML counts them as line ends and SARIF consumers do
# not, so no region in such a text would mean the same place to both.
_ODD_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")
_NULL_TAG = "tag:yaml.org,2002:null"
# libyaml's marks count characters, as the pure-Python composer's do, at a fraction of the cost.
_COMPOSER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"

Entries = Mapping[str, "str | Entries"]


@dataclass(frozen=True, slots=True)
class Edit:
    """Characters [start, end) of the text become `text` (start == end: an insertion)."""

    start: int
    end: int
    text: str
    # The same place as a SARIF text region: 1-based lines (ending at \n or \r\n) and columns
    # in code points, endColumn one past the last character.
    start_line: int
    start_column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, slots=True)
class Target:
    """Set `labels` in the mapping at `path` of the object whose first key is at `line`."""

    line: int
    path: tuple[str, ...]
    labels: Mapping[str, str]


class _RefusedError(Exception):
    """No exact edit: the reason, said to the user as 'cannot be rewritten safely: <reason>'."""


def label_edits(text: str, targets: Sequence[Target]) -> dict[int, list[Edit] | str]:
    """For each target (by its line), the edits that set its labels, or why there are none."""
    found: dict[int, list[Edit] | str] = {}
    if _ODD_BREAKS.search(text):
        return dict.fromkeys(
            (t.line for t in targets), "it has line breaks other than \\n and \\r\\n"
        )
    try:
        roots = list(yaml.compose_all(text, Loader=_COMPOSER))
    except (yaml.YAMLError, RecursionError) as exc:
        reason = f"its text cannot be read for editing ({type(exc).__name__})"
        return dict.fromkeys((t.line for t in targets), reason)
    objects: dict[int, list[yaml.MappingNode]] = {}
    for root in roots:
        for node in _objects(root):
            objects.setdefault(node.start_mark.line + 1, []).append(node)
    style = _Style(
        json=text.lstrip(" \t\r\n\ufeff").startswith(("{", "[")),
        newline="\r\n" if "\r\n" in text else "\n",
    )
    for target in targets:
        nodes = objects.get(target.line, [])
        if len(nodes) != 1:
            found[target.line] = (
                f"more than one object starts on line {target.line}"
                if nodes
                else f"no object starts on line {target.line}"
            )
            continue
        try:
            found[target.line] = [
                _located(text, start, end, new)
                for start, end, new in _set_labels(text, nodes[0], target, style)
            ]
        except _RefusedError as exc:
            found[target.line] = str(exc)
    return found


def apply(text: str, edits: Sequence[Edit]) -> str:
    """The text with every edit made; positions are the unedited text's, and never overlap."""
    result = text
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        result = result[: edit.start] + edit.text + result[edit.end :]
    return result


def verified(
    file: str,
    before: str | Sequence[Manifest],
    after: str,
    changes: Mapping[int, tuple[tuple[str, ...], Mapping[str, str]]],
) -> bool:
    """Whether `after` holds exactly the objects of `before` (its text, or the manifests
    already loaded from it), with labels set on the objects starting at the lines of
    `changes` ({line: (path, labels)}) and nothing else changed."""
    try:
        old = (
            load_bytes(before.encode("utf-8"), file).manifests
            if isinstance(before, str)
            else before
        )
        new = load_bytes(after.encode("utf-8"), file).manifests
    except ManifestError:
        return False
    if len(old) != len(new):
        return False
    expected = []
    for manifest in old:
        obj = manifest.obj
        if manifest.line in changes:
            path, labels = changes[manifest.line]
            obj = with_labels(obj, path, labels)
        expected.append(obj)
    return expected == [m.obj for m in new]


def with_labels(obj: Mapping[str, Any], path: Sequence[str], labels: Mapping[str, str]) -> Any:
    """A copy of obj with labels set in the mapping at path (made where missing)."""
    result = copy.deepcopy(dict(obj))
    node: dict[str, Any] = result
    for key in path:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node.update(labels)
    return result


# -- finding the place ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Style:
    json: bool  # the text is JSON: keys and values double-quoted
    newline: str


def _objects(root: yaml.Node) -> list[yaml.MappingNode]:
    """The document's object, or a List's items (as the loader reads them)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    items = _get(root, "items")
    kind = _get(root, "kind")
    if (
        isinstance(items, yaml.SequenceNode)
        and isinstance(kind, yaml.ScalarNode)
        and kind.value.endswith("List")
    ):
        return [item for item in items.value if isinstance(item, yaml.MappingNode)]
    return [root]


def _get(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    """The value of key (the last one, as the loader keeps it), or None."""
    found = None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found = value_node
    return found


def _set_labels(
    text: str, root: yaml.MappingNode, target: Target, style: _Style
) -> list[tuple[int, int, str]]:
    node = root
    step = 2
    for depth, key in enumerate(target.path):
        if text[node.start_mark.index : node.start_mark.index + 1] == "&":
            raise _RefusedError("it is written with a YAML anchor, which other objects may share")
        child = _get(node, key)
        if child is None:
            rest: Entries = dict(target.labels)
            for missing in reversed(target.path[depth + 1 :]):
                rest = {missing: rest}
            return [_insert(text, node, {key: rest}, style, step)]
        if not isinstance(child, yaml.MappingNode):
            where = ".".join(target.path[: depth + 1])
            raise _RefusedError(f"{where} is not a mapping")
        if not child.flow_style and not node.flow_style and child.value and node.value:
            step = max(1, child.value[0][0].start_mark.column - node.value[0][0].start_mark.column)
        node = child
    if text[node.start_mark.index : node.start_mark.index + 1] == "&":
        raise _RefusedError("its labels are a YAML anchor, which other objects may share")
    edits: list[tuple[int, int, str]] = []
    new: dict[str, str] = {}
    for key, value in target.labels.items():
        existing = _get(node, key)
        if existing is None:
            new[key] = value
        elif isinstance(existing, yaml.ScalarNode) and _is_empty(existing):
            start, end = existing.start_mark.index, existing.end_mark.index
            spaced = "" if start != end or text[start - 1 : start] == " " else " "
            edits.append((start, end, spaced + _scalar(value, style)))
        else:
            raise _RefusedError(f"label {key} has a value that is not empty")
    if new:
        edits.append(_insert(text, node, new, style, step))
    return edits


def _is_empty(node: yaml.ScalarNode) -> bool:
    return node.tag == _NULL_TAG or (node.tag == _STR_TAG and node.value == "")


def _insert(
    text: str, node: yaml.MappingNode, entries: Entries, style: _Style, step: int
) -> tuple[int, int, str]:
    if node.flow_style:
        return _insert_flow(text, node, entries, style)
    return _insert_block(text, node, entries, style, step)


def _insert_flow(
    text: str, node: yaml.MappingNode, entries: Entries, style: _Style
) -> tuple[int, int, str]:
    start, end = node.start_mark.index, node.end_mark.index
    if text[start : start + 1] != "{" or text[end - 1 : end] != "}":
        raise _RefusedError("a mapping whose braces cannot be found")
    flat = ", ".join(_flow_entry(key, value, style) for key, value in entries.items())
    if not node.value:
        return (start + 1, start + 1, flat)
    first_key = node.value[0][0]
    last_key, last_value = node.value[-1]
    at = last_value.end_mark.index
    if not start < last_key.start_mark.index < at <= end:
        raise _RefusedError("a mapping entry that is an alias")
    if first_key.start_mark.line == node.start_mark.line:
        return (at, at, ", " + flat)
    indent = " " * last_key.start_mark.column
    separator = "," + style.newline + indent
    return (
        at,
        at,
        separator + separator.join(_flow_entry(k, v, style) for k, v in entries.items()),
    )


def _insert_block(
    text: str, node: yaml.MappingNode, entries: Entries, style: _Style, step: int
) -> tuple[int, int, str]:
    first_key = node.value[0][0]
    indent = first_key.start_mark.column
    lines = _block_lines(entries, indent, step, style)
    last_key, last_value = node.value[-1]
    # Plain (None, or "" from libyaml) or quoted: not a block scalar (`|`, `>`).
    one_line_scalar = isinstance(last_value, yaml.ScalarNode) and last_value.style in (
        None,
        "",
        "'",
        '"',
    )
    one_line_flow = isinstance(last_value, yaml.CollectionNode) and bool(last_value.flow_style)
    single_line = last_value.start_mark.line == last_value.end_mark.line and (
        one_line_scalar or one_line_flow
    )
    # Before the first entry, which must start its own line (not `- key:` of a list item):
    # where a pod template's new `metadata:` goes, ahead of its `spec:`.
    line_start = text.rfind("\n", 0, first_key.start_mark.index) + 1
    own_line = not text[line_start : first_key.start_mark.index].strip(" ")
    if own_line and "metadata" in entries:
        return (line_start, line_start, lines)
    if single_line and last_key.end_mark.index <= last_value.start_mark.index:
        # After the line the last entry ends on (its comment stays with it).
        newline_at = text.find("\n", last_value.end_mark.index)
        if newline_at == -1:
            return (len(text), len(text), style.newline + lines.removesuffix(style.newline))
        return (newline_at + 1, newline_at + 1, lines)
    if not own_line:
        raise _RefusedError("no line of its own to add the labels on")
    return (line_start, line_start, lines)


def _block_lines(entries: Entries, indent: int, step: int, style: _Style) -> str:
    lines = []
    for key, value in entries.items():
        if isinstance(value, str):
            lines.append(
                f"{' ' * indent}{_scalar(key, style)}: {_scalar(value, style)}{style.newline}"
            )
        else:
            lines.append(f"{' ' * indent}{_scalar(key, style)}:{style.newline}")
            lines.append(_block_lines(value, indent + step, step, style))
    return "".join(lines)


def _flow_entry(key: str, value: str | Entries, style: _Style) -> str:
    if isinstance(value, str):
        return f"{_scalar(key, style)}: {_scalar(value, style)}"
    inner = ", ".join(_flow_entry(k, v, style) for k, v in value.items())
    return f"{_scalar(key, style)}: {{{inner}}}"


def _scalar(value: str, style: _Style) -> str:
    if not style.json and _PLAIN.fullmatch(value) and value.lower() not in _NOT_PLAIN:
        return value
    return json.dumps(value)


def _located(text: str, start: int, end: int, new: str) -> Edit:
    start_line, start_column = _position(text, start)
    end_line, end_column = _position(text, end)
    return Edit(start, end, new, start_line, start_column, end_line, end_column)


def _position(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1
