"""Manifest loading: YAML (multi-document), JSON (and JSON streams), `List` kinds, directories
and stdin, each Kubernetes object with the file and line it came from.

    load_paths(["deploy/", "-"], stdin)  ->  LoadResult(manifests=[Manifest(obj, file, line)],
                                                        notes=["deploy/x.yaml:3: skipped: ..."])

Input is untrusted (CI runs `guardrail check` on pull requests), so it is bounded before the
parsers see it: files over 32 MiB, nesting deeper than 200 levels and YAML aliases expanding
to more than 10,000 nodes ("billion laughs") are errors, never a crash or a hang. Every error
is a `ManifestError` whose `where` is `file:line` (or the path when there is no line).
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from json.scanner import make_scanner
from typing import Any, BinaryIO, ClassVar

import yaml

from webhook.policy.errors import ManifestError, type_name

MAX_FILE_BYTES = 32 * 1024 * 1024
# Deeper than any real object (a CRD's openAPIV3Schema rarely passes 60) and shallow enough
# that neither the YAML composer nor json.dumps can exhaust the C stack or the recursion limit.
MAX_DEPTH = 200
# Nodes a document may gain by expanding aliases. Real manifests reuse a handful of anchors;
# a billion-laughs document needs millions. kubectl's go-yaml has a similar guard.
MAX_ALIAS_EXPANSION = 10_000
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN_PATH = "-"
STDIN_NAME = "<stdin>"

# Kinds that have no namespace. Anything else is namespaced, which is what kubectl assumes for
# a kind it cannot look up either (the API server would reject a wrong guess anyway).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "AdminNetworkPolicy",
        "BaselineAdminNetworkPolicy",
        "BGPConfiguration",
        "BGPPeer",
        "CertificateSigningRequest",
        "ClusterInformation",
        "ClusterIssuer",
        "ClusterPolicyReport",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterReport",
        "ComponentStatus",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "FelixConfiguration",
        "FlowSchema",
        "GlobalNetworkPolicy",
        "GlobalNetworkSet",
        "HostEndpoint",
        "IPPool",
        "IngressClass",
        "KubeControllersConfiguration",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StagedGlobalNetworkPolicy",
        "StorageClass",
        "Tier",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# A `---` at column 0 always ends a document (inside quotes or flow it is a syntax error), so
# splitting there never merges two documents into one piece.
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)
# Every collection node starts with one of these, so their count bounds a document's depth.
_NESTING_CHARS = "[{-:?"
_JSON_WS = re.compile(r"[ \t\n\r]*")


@dataclass(frozen=True, slots=True)
class Manifest:
    """One Kubernetes object and where it starts (1-based line of its first key)."""

    obj: dict[str, Any]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class LoadResult:
    """The objects found, and notes about documents skipped because they are not objects."""

    manifests: list[Manifest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    # With `keep_going`: the files (or paths) that could not be read or parsed, each whole.
    errors: list[ManifestError] = field(default_factory=list)


def is_cluster_scoped(kind: str) -> bool:
    return kind in CLUSTER_SCOPED_KINDS


def load_paths(
    paths: Sequence[str], stdin: BinaryIO | None = None, *, keep_going: bool = False
) -> LoadResult:
    """Load every path (file, directory, or `-` for stdin) in the order given.

    With `keep_going`, a file (or path) that cannot be read or parsed is recorded in `errors`
    and left out whole, and the others are still loaded: `check` reports every broken file
    and judges the rest. Half a file is never kept, since a document missing from it (a
    namespace's default-deny) would turn into findings about the documents that were kept.
    """
    result = LoadResult()
    for path in paths:
        try:
            if path == STDIN_PATH:
                if stdin is None:
                    raise ManifestError("standard input is not available", STDIN_NAME)
                _load_whole(
                    functools.partial(_read_stream, stdin, STDIN_NAME),
                    STDIN_NAME,
                    result,
                    keep_going,
                )
                continue
            for file in manifest_files(path):
                _load_whole(functools.partial(_read_file, file), file, result, keep_going)
        except ManifestError as exc:
            if not keep_going:
                raise
            result.errors.append(exc)
    return result


def _load_whole(read: Callable[[], bytes], file: str, result: LoadResult, keep_going: bool) -> None:
    if not keep_going:
        _load_data(read(), file, result)
        return
    one = LoadResult()
    try:
        _load_data(read(), file, one)
    except ManifestError as exc:
        result.files += 1
        result.errors.append(exc)
        return
    result.manifests.extend(one.manifests)
    result.notes.extend(one.notes)
    result.files += one.files


def load_bytes(data: bytes, file: str) -> LoadResult:
    """Load one file's content (already read) as if it came from `file`."""
    result = LoadResult()
    _check_size(len(data), file)
    _load_data(data, file, result)
    return result


def read_text(file: str) -> str:
    """A manifest file's text, bounded and decoded as loading does (ManifestError if it cannot
    be): what a fix's exact edits are computed on."""
    return _decode(_read_file(file), file)


def manifest_files(path: str) -> Iterator[str]:
    """The path itself if it is a file, else the manifest files under it, sorted, recursively.

    A file named explicitly is read whatever its extension (as kubectl does); inside
    directories only `*.yaml`, `*.yml` and `*.json` are read, hidden files and directories
    (`.git`, `.gitlab-ci.yml`) are skipped, and a symbolic-link loop is walked once.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise ManifestError("no such file or directory", path) from exc
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror or exc}", path) from exc
    if not stat.S_ISDIR(st.st_mode):
        yield path
        return
    seen = {(st.st_dev, st.st_ino)}
    # A stack of directory listings keeps the walk iterative and in `find | sort` order.
    stack: list[Iterator[tuple[str, bool]]] = [_listing(path, seen)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        child, is_dir = entry
        if is_dir:
            stack.append(_listing(child, seen))
        else:
            yield child


def _listing(directory: str, seen: set[tuple[int, int]]) -> Iterator[tuple[str, bool]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise ManifestError(f"cannot read directory: {exc.strerror or exc}", directory) from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        child = os.path.join(directory, entry.name)
        try:
            st = entry.stat()  # follows symbolic links
        except OSError:
            # A dangling link has nothing to read: skip it rather than fail the whole tree.
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                yield child, True
        elif stat.S_ISREG(st.st_mode) and entry.name.endswith(MANIFEST_SUFFIXES):
            yield child, False


# -- reading --------------------------------------------------------------------------------
def _check_size(size: int, file: str) -> None:
    if size > MAX_FILE_BYTES:
        raise ManifestError(
            f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it", file
        )


def _read_file(file: str) -> bytes:
    try:
        with open(file, "rb") as fh:
            _check_size(os.fstat(fh.fileno()).st_size, file)
            # Read one byte past the limit: the size can change between fstat and read.
            data = fh.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError as exc:
        raise ManifestError("is a directory", file) from exc
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror or exc}", file) from exc
    _check_size(len(data), file)
    return data


def _read_stream(stream: BinaryIO, name: str) -> bytes:
    try:
        data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read: {exc.strerror or exc}", name) from exc
    _check_size(len(data), name)
    return data


def _decode(data: bytes, file: str) -> str:
    nul = data.find(b"\0")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # PowerShell's `>` writes UTF-16; YAML allows it when marked by a BOM.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ManifestError("not valid UTF-16 text", file) from exc
    if nul != -1:
        raise ManifestError(
            "binary data (a NUL byte), not YAML or JSON", f"{file}:{_line_at(data, nul)}"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_at(data, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ManifestError(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at column {column}",
            f"{file}:{line}",
        ) from exc


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# -- documents ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Pos:
    """Where a value starts, and where each of its `items` start when it is a List."""

    line: int
    items: tuple[_Pos, ...] = ()


def _load_data(data: bytes, file: str, result: LoadResult) -> None:
    result.files += 1
    text = _decode(data, file)
    documents: list[tuple[object, _Pos]] | None = None
    head = text.lstrip(" \t\r\n")
    if head.startswith(("{", "[")):
        documents = _json_documents(text, file, strict=file.endswith(".json"))
    if documents is None:
        documents = _yaml_documents(text, file)
    if not documents:
        result.notes.append(f"{file}:1: skipped: empty (no YAML or JSON documents)")
    for value, pos in documents:
        _collect(value, pos, file, result)


def _collect(value: object, pos: _Pos, file: str, result: LoadResult) -> None:
    """Add the object (or a List's items) to the result, or a note saying why not."""
    if value is None:
        return  # an empty document, e.g. a trailing `---`
    where = f"{file}:{pos.line}"
    if not isinstance(value, dict):
        result.notes.append(f"{where}: skipped: not a Kubernetes object ({type_name(value)})")
        return
    api_version, kind = value.get("apiVersion"), value.get("kind")
    missing = [
        name
        for name, field_value in (("apiVersion", api_version), ("kind", kind))
        if not isinstance(field_value, str) or not field_value
    ]
    if missing:
        result.notes.append(
            f"{where}: skipped: not a Kubernetes object (no {' and no '.join(missing)})"
        )
        return
    assert isinstance(kind, str)
    items = value.get("items")
    if kind == "List" and items is None:
        return  # `kubectl get -o yaml` of nothing
    if kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            item_pos = pos.items[index] if index < len(pos.items) else _Pos(pos.line)
            if isinstance(item, dict) and kind != "List" and "kind" not in item:
                # Typed lists (PodList from the API) leave kind and apiVersion to the list.
                typed = {"apiVersion": api_version, "kind": kind[: -len("List")], **item}
                _collect(typed, item_pos, file, result)
            else:
                _collect(item, item_pos, file, result)
        return
    if kind == "List":
        result.notes.append(f"{where}: skipped: a List whose items is not a list")
        return
    result.manifests.append(Manifest(obj=value, file=file, line=pos.line))


# -- JSON -----------------------------------------------------------------------------------
_JSON = json.JSONDecoder()
# The decoder's own scanner: decodes one value at an index, for walking a List's items.
# typeshed types the argument as a scanner; the runtime takes any decoder (its "context").
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(_JSON)  # type: ignore[arg-type]  # see above


def _skip_ws(text: str, index: int) -> int:
    """The index of the first non-whitespace character at or after index (JSON whitespace)."""
    match = _JSON_WS.match(text, index)
    return match.end() if match is not None else index


def _json_documents(text: str, file: str, *, strict: bool) -> list[tuple[object, _Pos]] | None:
    """Every JSON value in the text (one, or a stream as `kubectl apply` accepts).

    Returns None when the text is not JSON and not strict, so that it is read as YAML (a
    flow-style YAML document also starts with `{`).
    """
    documents: list[tuple[object, _Pos]] = []
    index = _skip_ws(text, 0)
    while index < len(text):
        try:
            value, end = _JSON.raw_decode(text, index)
        except RecursionError as exc:
            raise ManifestError(
                f"nested more than {MAX_DEPTH} levels deep", f"{file}:{_text_line(text, index)}"
            ) from exc
        except json.JSONDecodeError as exc:
            if not strict:
                return None
            raise ManifestError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", f"{file}:{exc.lineno}"
            ) from exc
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            if not strict:
                return None
            raise ManifestError(
                f"invalid JSON: {exc}", f"{file}:{_text_line(text, index)}"
            ) from exc
        line = _text_line(text, index)
        if _json_depth_bound(text, index, end) > MAX_DEPTH:
            _check_depth(value, file, line)
        documents.append((value, _Pos(line, _json_item_positions(text, index, value))))
        index = _skip_ws(text, end)
    return documents


def _text_line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _json_depth_bound(text: str, start: int, end: int) -> int:
    return text.count("[", start, end) + text.count("{", start, end)


def _check_depth(value: object, file: str, line: int) -> None:
    """Reject a parsed value nested deeper than MAX_DEPTH (iteratively: it may be deep)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ManifestError(f"nested more than {MAX_DEPTH} levels deep", f"{file}:{line}")
        if isinstance(current, dict):
            stack.extend((child, depth + 1) for child in current.values())
        elif isinstance(current, list):
            stack.extend((child, depth + 1) for child in current)


def _json_item_positions(text: str, start: int, value: object) -> tuple[_Pos, ...]:
    """The line of each element of a List's `items`, found by re-scanning the top object.

    The text is known to be valid JSON here, so the scan needs no error handling.
    """
    if not (isinstance(value, dict) and isinstance(value.get("items"), list)):
        return ()
    kind = value.get("kind")
    if not (isinstance(kind, str) and kind.endswith("List")):
        return ()
    scan = _SCAN
    positions: tuple[_Pos, ...] = ()
    index = start + 1  # past "{"
    while True:
        index = _skip_ws(text, index)
        if text[index] == "}":
            return positions
        if text[index] == ",":
            index += 1
            continue
        key, index = scan(text, index)
        index = _skip_ws(text, index) + 1  # ":"
        index = _skip_ws(text, index)
        if key == "items" and text[index] == "[":
            found: list[_Pos] = []
            index += 1
            while True:
                index = _skip_ws(text, index)
                if text[index] == "]":
                    index += 1
                    break
                if text[index] == ",":
                    index += 1
                    continue
                found.append(_Pos(_text_line(text, index)))
                _, index = scan(text, index)
            positions = tuple(found)  # the last "items" wins, as in the parsed value
        else:
            _, index = scan(text, index)


# -- YAML -----------------------------------------------------------------------------------
_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _stringify_key(key: object) -> str:
    # Kubernetes objects are JSON: sigs.k8s.io/yaml turns `1: x` and `true: x` into "1", "true".
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


class _Loader(_BaseLoader):  # type: ignore[misc]  # a C or Python loader chosen at import
    """Safe loading with Kubernetes' JSON view of YAML: timestamps stay strings, keys are strings.

    The API server sees `creationTimestamp: 2024-01-01T00:00:00Z` as a string; PyYAML would
    make a datetime that json.dumps (and `guardrail review`) cannot send.
    """

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        # Keys are made strings while building, not after: `1:` and `true:` are distinct keys
        # in the YAML but the same one in a Python dict.
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, list | dict | set):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "a key must be a string, number or boolean, not a collection",
                    key_node.start_mark,
                )
            mapping[_stringify_key(key)] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.add_constructor(_TIMESTAMP_TAG, _Loader.construct_yaml_str)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    # Python refuses to convert integers of more than 4300 digits (CVE-2020-10735): a
    # ValueError that would escape as a traceback (found by fuzz/ "manifests").
    try:
        value: int = loader.construct_yaml_int(node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"integer too long ({len(str(node.value))} characters)", node.start_mark
        ) from exc
    return value


def _construct_set(loader: _Loader, node: yaml.MappingNode) -> dict[str, Any]:
    # Objects are JSON: `!!set {a, b}` is the mapping {a: null, b: null} to the API server,
    # not a Python set that no report can print (found by fuzz/ "manifests").
    return loader.construct_mapping(node)


# `!!binary` stays the base64 text it is written as (JSON's encoding of bytes), not bytes.
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:set", _construct_set)
_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_yaml_str)


def _yaml_documents(text: str, file: str) -> list[tuple[object, _Pos]]:
    if _yaml_depth_bound(text) > MAX_DEPTH:
        _check_yaml_depth(text, file)
    loader = _Loader(text)
    documents: list[tuple[object, _Pos]] = []
    may_have_aliases = "*" in text
    try:
        while loader.check_node():
            node = loader.get_node()
            if may_have_aliases:
                _check_aliases(node, file)
            value = loader.construct_document(node)
            documents.append((value, _node_pos(node)))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, file) from exc
    except RecursionError as exc:  # only with the pure-Python loader, which recurses
        raise ManifestError(f"nested more than {MAX_DEPTH} levels deep", file) from exc
    finally:
        loader.dispose()
    return documents


def _yaml_depth_bound(text: str) -> int:
    """An upper bound of the depth of every document: its most nesting characters."""
    bound = 0
    start = 0
    for match in _DOCUMENT_START.finditer(text):
        bound = max(bound, _nesting_chars(text, start, match.start()))
        start = match.start()
    return max(bound, _nesting_chars(text, start, len(text)))


def _nesting_chars(text: str, start: int, end: int) -> int:
    return sum(text.count(char, start, end) for char in _NESTING_CHARS)


def _check_yaml_depth(text: str, file: str) -> None:
    """Measure nesting from the parser's events before composing.

    libyaml's composer recurses in C: a document nested tens of thousands deep would crash
    the process, so it must not see one.
    """
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ManifestError(
                        f"nested more than {MAX_DEPTH} levels deep",
                        f"{file}:{event.start_mark.line + 1 if event.start_mark else 1}",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, file) from exc
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node, file: str) -> None:
    """Reject recursive aliases and documents that aliases blow up (billion laughs).

    An alias is the same node object reached twice, so the document is a graph: count the
    nodes of the tree it expands to (memoised, linear in the graph) and its expanded depth.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    where = f"{file}:{_node_line(root)}"
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            height[key] = 1 + max((height[id(child)] for child in children), default=0)
            if height[key] > MAX_DEPTH:
                raise ManifestError(
                    f"nested more than {MAX_DEPTH} levels deep once aliases are expanded", where
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise ManifestError(
                f"recursive YAML alias at line {_node_line(node)}: an object cannot contain itself",
                where,
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)
    expanded = size[id(root)] - len(size)
    if expanded > MAX_ALIAS_EXPANSION:
        raise ManifestError(
            f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes "
            '(a "billion laughs" document); write the values out instead',
            where,
        )


def _node_line(node: yaml.Node) -> int:
    return node.start_mark.line + 1 if node.start_mark is not None else 1


def _node_pos(node: yaml.Node) -> _Pos:
    """The node's line, and its `items` lines when it is a mapping with an items sequence."""
    line = _node_line(node)
    if not isinstance(node, yaml.MappingNode):
        return _Pos(line)
    items: yaml.Node | None = None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "items":
            items = value_node
    if not isinstance(items, yaml.SequenceNode):
        return _Pos(line)
    return _Pos(line, tuple(_node_pos(child) for child in items.value))


def _yaml_error(exc: yaml.YAMLError, text: str, file: str) -> ManifestError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "syntax error"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        # An error at the end of the input is reported past the last line: name the last one.
        lines = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        line = min(mark.line + 1, lines)
        return ManifestError(
            f"invalid YAML: {problem} (column {mark.column + 1})", f"{file}:{line}"
        )
    if isinstance(exc, yaml.reader.ReaderError):
        # libyaml reports the offset in its UTF-8 buffer.
        line = _line_at(text.encode("utf-8", "surrogatepass"), exc.position)
        return ManifestError(
            f"invalid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})",
            f"{file}:{line}",
        )
    return ManifestError(f"invalid YAML: {exc}", file)
