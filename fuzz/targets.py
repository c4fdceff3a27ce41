"""The fuzz targets' oracles: one function per parser, taking raw bytes.

Each returns quietly when the input is accepted or refused the way the contract says (a
`GuardrailError` with a message and a place), and raises anything else: that is a finding.
They hold no fuzzer-specific code, so the regression tests replay the seed corpora and every
past finding through exactly the same checks without atheris installed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import orjson

from webhook import checking, report
from webhook.config import default_config, load_config
from webhook.manifests import load_bytes
from webhook.policy import selector
from webhook.policy.errors import GuardrailError

Target = Callable[[bytes], None]

# What a refusal must look like to a user: a message, and where (file:line, path, column).
MANIFEST_FILES = ("fuzz.yaml", "fuzz.json")
CONFIG_FILE_NAME = "config.yaml"


def _refusal_is_clear(exc: GuardrailError, where_prefix: str) -> None:
    assert exc.message.strip(), f"empty error message: {exc!r}"
    assert exc.where.startswith(where_prefix), f"error does not say where: {exc!s}"
    assert "Traceback" not in str(exc)


def manifest_loader(data: bytes) -> None:
    """`guardrail check` on one file: load, judge with every policy, render text and JSON."""
    config = default_config()
    for name in MANIFEST_FILES:
        try:
            loaded = load_bytes(data, name)
        except GuardrailError as exc:
            _refusal_is_clear(exc, name)
            continue
        for manifest in loaded.manifests:
            assert isinstance(manifest.obj.get("apiVersion"), str)
            assert isinstance(manifest.obj.get("kind"), str)
            assert manifest.line >= 1
            # What `check --format json` and the policies assume: plain JSON data.
            orjson.dumps(manifest.obj)
        try:
            result = checking.check_manifests(loaded.manifests, config)
        except GuardrailError as exc:
            _refusal_is_clear(exc, name)
            continue
        for fmt in ("text", "json"):
            assert isinstance(report.render(result, fmt), str)


class _ConfigFile:
    """One temporary file reused for every input: load_config reads a path, as serve does."""

    def __init__(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="guardrail-fuzz-config-"))
        self.path = directory / CONFIG_FILE_NAME

    def load(self, data: bytes) -> None:
        self.path.write_bytes(data)
        try:
            config = load_config(self.path)
        except GuardrailError as exc:
            _refusal_is_clear(exc, str(self.path))
            return
        # An accepted config must be usable: every policy has a mode, exemptions are strings.
        for policy in config.enabled_policies():
            config.mode_for(policy)
        assert all(isinstance(n, str) for n in config.exemptions.namespaces)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        os.rmdir(self.path.parent)


_config_file: _ConfigFile | None = None


def config_loader(data: bytes) -> None:
    """`guardrail serve --config F` / `check --config F` reading the bytes as the file F."""
    global _config_file  # noqa: PLW0603 - one temporary file per fuzzing process
    if _config_file is None:
        _config_file = _ConfigFile()
    _config_file.load(data)


def selector_parser(data: bytes) -> None:
    """A Calico selector from a policy: parse, and an accepted one prints back to itself."""
    text = data.decode("utf-8", "replace")
    try:
        parsed = selector.parse_selector(text)
    except selector.SelectorError as exc:
        # The oracle checks the refusal's shape; pytest.raises is no use to a fuzzer.
        assert exc.message.strip(), f"empty error message: {exc!r}"  # noqa: PT017 - the exception is what is checked
        assert "column" in str(exc), f"selector error without a column: {exc!s}"  # noqa: PT017 - the exception is what is checked
        return
    printed = str(parsed)
    # The canonical form must mean the same thing: it parses to the same tree and prints the
    # same text (what violation messages quote back to the user).
    again = selector.parse_selector(printed)
    assert str(again) == printed, f"{text!r} printed as {printed!r} re-prints as {again!s}"
    labels = {"app": "web", "role": "db", "projectcalico.org/namespace": "shop"}
    assert selector.matches(parsed, labels) == selector.matches(again, labels)
    selector.matches3(parsed, labels)


TARGETS: dict[str, Target] = {
    "manifests": manifest_loader,
    "config": config_loader,
    "selector": selector_parser,
}
