"""Manifest loading: every input form with file:line provenance, and every bad input as an error."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from webhook.manifests import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    LoadResult,
    load_bytes,
    load_paths,
    manifest_files,
)
from webhook.policy.errors import ManifestError


def found(result: LoadResult) -> list[tuple[str, str, int]]:
    """(kind/name, file, line) of each loaded object, in order."""
    return [
        (f"{m.obj['kind']}/{(m.obj.get('metadata') or {}).get('name', '')}", m.file, m.line)
        for m in result.manifests
    ]


def error_of(data: bytes, name: str = "in.yaml") -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_bytes(data, name)
    return info.value


# -- YAML --------------------------------------------------------------------------------------
MULTI_DOC = b"""\
# a comment before the first document
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
---
# an empty document above is skipped silently

apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
...
---
apiVersion: v1
kind: Service
metadata:
  name: web
"""


def test_multi_document_yaml_gives_each_object_the_line_of_its_first_key() -> None:
    """Each document of a stream is one object, located at its first key (after comments)."""
    result = load_bytes(MULTI_DOC, "app.yaml")
    assert found(result) == [
        ("Namespace/shop", "app.yaml", 3),
        ("Pod/web", "app.yaml", 11),
        ("Service/web", "app.yaml", 16),
    ]
    assert result.notes == []


@pytest.mark.parametrize(
    ("document", "note"),
    [
        (b"foo: bar\n", "x.yaml:1: skipped: not a Kubernetes object (no apiVersion and no kind)"),
        (b"apiVersion: v1\nmetadata: {}\n", "x.yaml:1: skipped: not a Kubernetes object (no kind)"),
        (b"kind: Pod\n", "x.yaml:1: skipped: not a Kubernetes object (no apiVersion)"),
        (b"apiVersion: v1\nkind: ''\n", "x.yaml:1: skipped: not a Kubernetes object (no kind)"),
        (b"just some text\n", "x.yaml:1: skipped: not a Kubernetes object (a string)"),
        (b"- a\n- b\n", "x.yaml:1: skipped: not a Kubernetes object (a list)"),
        (b"42\n", "x.yaml:1: skipped: not a Kubernetes object (a number)"),
        (b"", "x.yaml:1: skipped: empty (no YAML or JSON documents)"),
        (b"# only a comment\n", "x.yaml:1: skipped: empty (no YAML or JSON documents)"),
        (
            b"apiVersion: v1\nkind: List\nitems: 5\n",
            "x.yaml:1: skipped: a List whose items is not a list",
        ),
    ],
    ids=[
        "no-apiversion-no-kind",
        "no-kind",
        "no-apiversion",
        "empty-kind",
        "scalar",
        "sequence",
        "number",
        "empty-file",
        "comment-only",
        "list-without-items-list",
    ],
)
def test_documents_that_are_not_objects_are_skipped_with_a_note(document: bytes, note: str) -> None:
    """A document that is not a Kubernetes object yields no object and a `file:line` note."""
    result = load_bytes(document, "x.yaml")
    assert result.manifests == []
    assert result.notes == [note]


def test_notes_point_at_the_skipped_document_in_a_stream() -> None:
    """In a stream, the note names the skipped document's line and the objects still load."""
    data = b"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nreplicas: 3\n---\n- x\n"
    result = load_bytes(data, "s.yaml")
    assert found(result) == [("Pod/a", "s.yaml", 1)]
    assert result.notes == [
        "s.yaml:5: skipped: not a Kubernetes object (no apiVersion and no kind)",
        "s.yaml:7: skipped: not a Kubernetes object (a list)",
    ]


def test_yaml_is_read_as_kubernetes_reads_it() -> None:
    """Timestamps stay strings and non-string keys become strings, as in Kubernetes' JSON."""
    data = b"""\
apiVersion: v1
kind: ConfigMap
metadata: {name: c, creationTimestamp: 2024-01-02T03:04:05Z}
data:
  1: one
  true: yes-key
  day: !!timestamp 2024-01-02
"""
    (manifest,) = load_bytes(data, "c.yaml").manifests
    assert manifest.obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert manifest.obj["data"] == {"1": "one", "true": "yes-key", "day": "2024-01-02"}


def test_a_few_anchors_and_merge_keys_load() -> None:
    """Ordinary anchors, aliases and merge keys (well under the expansion limit) are fine."""
    data = b"""\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: &labels {app: web, role: frontend}}
spec:
  selector: {matchLabels: *labels}
  template:
    metadata:
      labels:
        <<: *labels
        tier: edge
"""
    (manifest,) = load_bytes(data, "d.yaml").manifests
    assert manifest.obj["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "role": "frontend",
        "tier": "edge",
    }


# -- JSON --------------------------------------------------------------------------------------
def test_json_object_is_located_at_its_opening_brace() -> None:
    """A JSON file is parsed as JSON (1e3 is a number) and located at its `{`."""
    data = b'\n\n  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "x": 1e3}\n'
    (manifest,) = load_bytes(data, "p.json").manifests
    assert (manifest.file, manifest.line) == ("p.json", 3)
    assert manifest.obj["x"] == 1000.0


def test_json_stream_gives_every_object() -> None:
    """Concatenated JSON objects (what `kubectl apply` accepts) each load with their line."""
    data = (
        b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}\n'
        b'{"apiVersion": "v1",\n "kind": "Pod", "metadata": {"name": "b"}}\n'
    )
    assert found(load_bytes(data, "s.json")) == [("Pod/a", "s.json", 1), ("Pod/b", "s.json", 2)]


def test_json_list_items_get_their_own_lines() -> None:
    """Each item of a JSON `List` is located at its own opening brace."""
    data = b"""\
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "note": "}],["}},

    {
      "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}
    }
  ],
  "metadata": {"resourceVersion": ""}
}
"""
    assert found(load_bytes(data, "l.json")) == [("Pod/a", "l.json", 5), ("Pod/b", "l.json", 7)]


def test_flow_yaml_starting_with_a_brace_is_still_yaml() -> None:
    """A YAML flow mapping that is not JSON (unquoted keys) loads as YAML outside .json files."""
    result = load_bytes(b"{apiVersion: v1, kind: Pod, metadata: {name: f}}\n", "f.yaml")
    assert found(result) == [("Pod/f", "f.yaml", 1)]


# -- Lists -------------------------------------------------------------------------------------
def test_yaml_list_items_get_their_own_lines() -> None:
    """Each item of a `kind: List` is an object located at its first key."""
    data = b"""\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: nested}
- just a string
"""
    result = load_bytes(data, "l.yaml")
    assert found(result) == [("Pod/a", "l.yaml", 4), ("Pod/nested", "l.yaml", 10)]
    assert result.notes == ["l.yaml:13: skipped: not a Kubernetes object (a string)"]


def test_typed_list_items_inherit_kind_and_api_version() -> None:
    """Items of a typed list (PodList from the API) get kind Pod and the list's apiVersion."""
    data = b"apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a}\n- metadata: {name: b}\n"
    result = load_bytes(data, "pods.yaml")
    assert found(result) == [("Pod/a", "pods.yaml", 4), ("Pod/b", "pods.yaml", 5)]
    assert all(m.obj["apiVersion"] == "v1" for m in result.manifests)


def test_empty_list_is_no_object_and_no_note() -> None:
    """`kubectl get -o yaml` of nothing (`kind: List`, `items: []` or none) yields nothing."""
    for data in (b"apiVersion: v1\nkind: List\nitems: []\n", b"apiVersion: v1\nkind: List\n"):
        result = load_bytes(data, "e.yaml")
        assert (result.manifests, result.notes) == ([], [])


# -- paths, directories and stdin ----------------------------------------------------------------
POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_directories_are_walked_recursively_in_sorted_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Manifest files under a directory load in `find | sort` order; others are ignored."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "tree/b.yaml", POD.format(name="b"))
    write(tmp_path / "tree/a/z.yml", POD.format(name="az"))
    write(
        tmp_path / "tree/a/deeper/c.json",
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}}',
    )
    write(tmp_path / "tree/README.md", "# not a manifest: key: value: broken\n")
    write(tmp_path / "tree/notes.txt", "apiVersion: [\n")
    write(tmp_path / "tree/.git/config.yaml", POD.format(name="hidden-dir"))
    write(tmp_path / "tree/.gitlab-ci.yml", POD.format(name="hidden-file"))
    result = load_paths(["tree"])
    assert found(result) == [
        ("Pod/c", "tree/a/deeper/c.json", 1),
        ("Pod/az", "tree/a/z.yml", 1),
        ("Pod/b", "tree/b.yaml", 1),
    ]
    assert result.files == 3


def test_symlink_loops_are_walked_once(tmp_path: Path) -> None:
    """A directory symlink pointing back up the tree does not loop or duplicate objects."""
    write(tmp_path / "tree/sub/p.yaml", POD.format(name="p"))
    os.symlink(tmp_path / "tree", tmp_path / "tree/sub/loop")
    os.symlink(tmp_path / "missing", tmp_path / "tree/dangling.yaml")
    result = load_paths([str(tmp_path / "tree")])
    assert found(result) == [("Pod/p", str(tmp_path / "tree/sub/p.yaml"), 1)]


def test_a_named_file_is_read_whatever_its_extension(tmp_path: Path) -> None:
    """A file named on the command line is read even without a manifest extension."""
    path = write(tmp_path / "pod.txt", POD.format(name="t"))
    assert found(load_paths([str(path)])) == [("Pod/t", str(path), 1)]


def test_stdin_is_read_for_dash_in_order(tmp_path: Path) -> None:
    """`-` reads stdin as `<stdin>`, in the position it was given among the paths."""
    path = write(tmp_path / "a.yaml", POD.format(name="file"))
    stdin = io.BytesIO(b"# piped\n" + POD.format(name="piped").encode())
    assert found(load_paths(["-", str(path)], stdin)) == [
        ("Pod/piped", "<stdin>", 2),
        ("Pod/file", str(path), 1),
    ]


def test_manifest_files_of_a_file_is_the_file_itself(tmp_path: Path) -> None:
    """manifest_files() of a plain file yields that path unchanged."""
    path = write(tmp_path / "x.yaml", "")
    assert list(manifest_files(str(path))) == [str(path)]


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "name", "where", "message"),
    [
        (
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a: b\n",
            "bad.yaml",
            "bad.yaml:4",
            "invalid YAML: mapping values are not allowed in this context (column 10)",
        ),
        (
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: a\n",
            "bad.yaml",
            "bad.yaml:3",
            "invalid YAML: while parsing a flow mapping: did not find expected ',' or '}'",
        ),
        (
            b"apiVersion: v1\nkind: Pod\n  bad-indent: x\n",
            "bad.yaml",
            "bad.yaml:3",
            "invalid YAML: ",
        ),
        (
            b"apiVersion: v1\nkind: !custom Pod\n",
            "tag.yaml",
            "tag.yaml:2",
            "invalid YAML: could not determine a constructor for the tag '!custom'",
        ),
        (
            b"apiVersion: v1\nkind: Pod\n? [a, b]\n: c\n",
            "key.yaml",
            "key.yaml:3",
            "invalid YAML: while constructing a mapping: a key must be a string, number or "
            "boolean, not a collection (column 3)",
        ),
        (
            b'{\n  "apiVersion": "v1",\n  "kind": "Pod",\n}\n',
            "bad.json",
            "bad.json:4",
            "invalid JSON: Expecting property name enclosed in double quotes (column 1)",
        ),
        (
            b'apiVersion: v1\nkind: Pod\nmetadata: {name: "a\\x1bb"}\nbad: \x1b\n',
            "ctl.yaml",
            "ctl.yaml:4",
            "invalid YAML: character #x001b is not allowed",
        ),
        (
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: caf\xe9}\n",
            "latin1.yaml",
            "latin1.yaml:3",
            "not valid UTF-8: byte 0xe9 at column 21",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "image.yaml",
            "image.yaml:3",
            "binary data (a NUL byte), not YAML or JSON",
        ),
    ],
    ids=[
        "yaml-syntax",
        "yaml-unclosed-flow",
        "yaml-indentation",
        "yaml-unknown-tag",
        "yaml-collection-key",
        "json-syntax",
        "control-character",
        "invalid-utf8",
        "binary",
    ],
)
def test_bad_content_is_an_error_at_file_and_line(
    data: bytes, name: str, where: str, message: str
) -> None:
    """Unparseable content is a ManifestError naming `file:line` and what is wrong."""
    error = error_of(data, name)
    assert error.where == where
    assert error.message.startswith(message)
    assert str(error) == f"{where}: {error.message}"


def test_utf8_and_utf16_byte_order_marks_are_accepted() -> None:
    """Files saved with a BOM (Windows editors, PowerShell's UTF-16) load normally."""
    text = POD.format(name="bom")
    for data in (b"\xef\xbb\xbf" + text.encode(), text.encode("utf-16")):
        assert found(load_bytes(data, "w.yaml")) == [("Pod/bom", "w.yaml", 1)]


def test_billion_laughs_is_rejected_quickly() -> None:
    """Aliases that expand exponentially are an error naming the document, not a hang."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        prev, cur = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    data = ("apiVersion: v1\nkind: ConfigMap\n" + "\n".join(lines) + "\n").encode()
    error = error_of(data, "lol.yaml")
    assert error.where == "lol.yaml:1"
    assert f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} nodes" in error.message
    assert "billion laughs" in error.message


def test_recursive_alias_is_rejected() -> None:
    """An anchor that contains its own alias is an error, not an infinite structure."""
    error = error_of(b"apiVersion: v1\nkind: ConfigMap\ndata: &loop\n  self: *loop\n", "r.yaml")
    assert error.where == "r.yaml:1"
    assert "recursive YAML alias" in error.message


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "flow.yaml"),
        (b"- " * 100_000 + b"x\n", "block.yaml"),
        (b"a: " + b"{b: " * 300 + b"c" + b"}" * 300 + b"\n", "mapping.yaml"),
        (b"[" * 100_000 + b"]" * 100_000, "deep.json"),
        (b'{"a": ' * 300 + b"1" + b"}" * 300, "mapping.json"),
    ],
    ids=["yaml-flow-100k", "yaml-block-100k", "yaml-mapping-300", "json-100k", "json-300"],
)
def test_deep_nesting_is_an_error_not_a_crash(data: bytes, name: str) -> None:
    """Input nested deeper than the limit is rejected before a parser could blow the stack."""
    error = error_of(data, name)
    assert error.where == f"{name}:1"
    assert error.message == f"nested more than {MAX_DEPTH} levels deep"


def test_nesting_within_the_limit_loads() -> None:
    """A document nested 150 deep (deeper than any real object) still loads."""
    body = "{a: " * 150 + "x" + "}" * 150
    data = f"apiVersion: v1\nkind: ConfigMap\ndata: {body}\n".encode()
    assert len(load_bytes(data, "ok.yaml").manifests) == 1


def test_file_over_the_size_limit_is_rejected_without_reading_it(tmp_path: Path) -> None:
    """A file over 32 MiB is an error naming the file (checked before reading)."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ManifestError) as info:
        load_paths([str(path)])
    assert info.value.where == str(path)
    assert info.value.message == "file is larger than 32 MiB; split it"


def test_stdin_over_the_size_limit_is_rejected() -> None:
    """More than 32 MiB on stdin is the same error, at `<stdin>`."""
    stdin = io.BytesIO(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ManifestError) as info:
        load_paths(["-"], stdin)
    assert str(info.value) == "<stdin>: file is larger than 32 MiB; split it"


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("missing.yaml", "no such file or directory"),
        ("file.yaml/inside.yaml", "cannot read: Not a directory"),
    ],
    ids=["does-not-exist", "parent-is-a-file"],
)
def test_paths_that_cannot_be_read_are_errors(tmp_path: Path, relative: str, message: str) -> None:
    """A path that does not exist or cannot be read is an error naming the path."""
    write(tmp_path / "file.yaml", "")
    path = str(tmp_path / relative)
    with pytest.raises(ManifestError) as info:
        load_paths([path])
    assert (info.value.where, info.value.message) == (path, message)


def test_dash_without_stdin_is_an_error() -> None:
    """`-` when no stdin is available is an error, not a hang or a crash."""
    with pytest.raises(ManifestError) as info:
        load_paths(["-"], None)
    assert str(info.value) == "<stdin>: standard input is not available"
