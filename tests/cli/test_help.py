"""Every command says how to use it: help for each option, examples, forgiving choices."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from webhook.cli import main


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


COMMANDS = dict(_commands(main))


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_option_has_help_and_the_command_an_example(path: str) -> None:
    """`--help` of each command explains every option and shows at least one example."""
    command = COMMANDS[path]
    missing = [
        param.opts[0]
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip()
    ]
    assert missing == [], f"guardrail {path}: options without help: {missing}"
    shown = CliRunner().invoke(main, [*path.split(), "--help"], terminal_width=100)
    assert shown.exit_code == 0, shown.output
    assert "Example" in shown.output, f"guardrail {path} --help shows no example"


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_choices_ignore_case(path: str) -> None:
    """`--format JSON` works like `--format json`: no one should fail CI over case."""
    command = COMMANDS[path]
    rigid = [
        param.opts[0]
        for param in command.params
        if isinstance(param.type, click.Choice) and param.type.case_sensitive
    ]
    assert rigid == [], f"guardrail {path}: case-sensitive choices {rigid}"


def test_namespace_options_take_n() -> None:
    """`-n` names a namespace wherever a command reads one, as kubectl's does."""
    for path, command in COMMANDS.items():
        for param in command.params:
            if isinstance(param, click.Option) and "--namespace" in param.opts:
                if path in ("certs", "manifests webhook"):
                    continue  # guardrail's own namespace there, not one to look at
                assert "-n" in param.opts, f"guardrail {path} --namespace has no -n"
