"""Inputs the fuzzers (fuzz/, `make fuzz`) found or were seeded with, kept: each is refused
with a clear error saying where, or loaded as plain JSON data, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fuzz.targets import TARGETS, config_loader, manifest_loader
from tests.http.support import GUARDRAIL
from webhook.manifests import load_bytes
from webhook.policy.errors import ConfigError, ManifestError

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
REPLAYED = sorted(
    (target, path)
    for target in TARGETS
    for kind in ("corpus", "findings")
    for path in (FUZZ / kind / target).glob("*")
    if path.is_file()
)
BIG_INT = "1" + "0" * 5000


@pytest.mark.parametrize(
    ("target", "path"), REPLAYED, ids=[f"{t}-{p.parent.parent.name}-{p.name}" for t, p in REPLAYED]
)
def test_corpus_and_findings_pass_their_oracle(target: str, path: Path) -> None:
    """Every seed and every saved finding passes its fuzz target's oracle (accepted as plain
    data, or refused with a message and a place)."""
    TARGETS[target](path.read_bytes())


MANIFEST_REFUSALS = [
    (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec: {{priority: {BIG_INT}}}\n",
        "m.yaml:4",
        "invalid YAML: integer too long (5001 characters) (column 18)",
    ),
    (
        f'{{"apiVersion": "v1", "kind": "Pod", "spec": {{"priority": {BIG_INT}}}}}',
        "m.json:1",
        "invalid JSON: Exceeds the limit (4300 digits)",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    MANIFEST_REFUSALS,
    ids=["yaml-int-5001-digits", "json-int-5001-digits"],
)
def test_manifest_with_huge_integer_is_refused_with_its_line(
    text: str, where: str, message: str
) -> None:
    """An integer of 5001 digits (over Python's conversion limit) is an input error at its
    line, not a ValueError traceback (fuzz finding)."""
    with pytest.raises(ManifestError) as caught:
        load_bytes(text.encode(), where.split(":", maxsplit=1)[0])
    assert caught.value.where == where
    assert caught.value.message.startswith(message)
    manifest_loader(text.encode())


PYTHON_TAGS = [
    (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: !!binary d2Vi, namespace: shop}\n",
        {"name": "d2Vi", "namespace": "shop"},
    ),
    (
        "apiVersion: v1\nkind: Pod\nmetadata: !!set {name, namespace}\n",
        {"name": None, "namespace": None},
    ),
]


@pytest.mark.parametrize(("text", "metadata"), PYTHON_TAGS, ids=["binary-tag", "set-tag"])
def test_yaml_tags_load_as_json_data(text: str, metadata: dict[str, object]) -> None:
    """`!!binary` stays its base64 text and `!!set` becomes a mapping of nulls, as the API
    server reads them, instead of Python bytes and sets that reports cannot print (fuzz
    finding)."""
    [manifest] = load_bytes(text.encode(), "m.yaml").manifests
    assert manifest.obj["metadata"] == metadata
    manifest_loader(text.encode())


CONFIG_REFUSALS = [
    ("mode: " + "[" * 50_000 + "]" * 50_000 + "\n", "invalid YAML: nested too deeply"),
    (f"mode: {BIG_INT}\n", "invalid YAML: a number longer than 4300 digits"),
]


@pytest.mark.parametrize(
    ("text", "message"), CONFIG_REFUSALS, ids=["nested-50000-deep", "int-5001-digits"]
)
def test_config_that_breaks_the_yaml_parser_is_a_config_error(
    tmp_path: Path, text: str, message: str
) -> None:
    """A config nested 50,000 deep (RecursionError) or holding a 5001-digit integer
    (ValueError) is a ConfigError naming the file, and `check --config` exits 2 saying so
    (fuzz findings)."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    from webhook.config import load_config  # noqa: PLC0415 - the function under test

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == str(path)
    assert caught.value.message.startswith(message)
    config_loader(text.encode())

    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    done = subprocess.run(
        [GUARDRAIL, "check", "--config", str(path), str(manifest)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"{path}: {message}" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_cli_refuses_a_huge_yaml_integer_without_traceback(tmp_path: Path) -> None:
    """`guardrail check` on a manifest with a 5001-digit integer exits 2 with file:line."""
    path = tmp_path / "pod.yaml"
    path.write_text(MANIFEST_REFUSALS[0][0])
    done = subprocess.run(
        [GUARDRAIL, "check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"{path}:4: invalid YAML: integer too long (5001 characters) (column 18)"
    )
