"""`guardrail serve`'s log: one readable line per event on a terminal, JSON lines otherwise
(as in a pod), `--log-format` / $GUARDRAIL_LOG_FORMAT to choose; gunicorn's lines follow."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.http.support import GUARDRAIL, free_port, make_certs, pod, review, write_state
from tests.http.terminal import Terminal, json_objects
from tests.polling import eventually

MESSAGE = (
    '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role. '
    "Add them under metadata.labels."
)


def _serve_args(tmp_path: Path, port: int) -> list[str]:
    make_certs(tmp_path / "certs")
    state = write_state(tmp_path / "state")
    return [
        GUARDRAIL,
        "serve",
        "--state",
        str(state),
        "--cert-dir",
        str(tmp_path / "certs"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "2",
    ]


def _deny_one(tmp_path: Path, port: int) -> str:
    """Send a review that is denied; return its uid."""
    import requests  # noqa: PLC0415 - a test dependency, as in support.py

    doc = review(pod(labels={"app": "web"}), username="dev")

    def answered() -> bool:
        try:
            reply = requests.post(
                f"https://127.0.0.1:{port}/validate",
                data=json.dumps(doc),
                verify=str(tmp_path / "certs" / "ca.crt"),
                timeout=5,
            )
        except requests.ConnectionError:
            return False
        assert reply.json()["response"]["allowed"] is False
        return True

    eventually(answered, what="guardrail serve answering /validate", timeout=60, interval=0.1)
    return str(doc["request"]["uid"])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GUARDRAIL_LOG_FORMAT"}
    return {**env, **extra}


@pytest.mark.parametrize(
    ("extra_args", "env"),
    [([], {}), (["--log-format", "text"], {}), ([], {"GUARDRAIL_LOG_FORMAT": "text"})],
    ids=["auto", "flag", "env"],
)
def test_a_terminal_gets_one_readable_line_per_event(
    tmp_path: Path, extra_args: list[str], env: dict[str, str]
) -> None:
    port = free_port()
    terminal = Terminal([*_serve_args(tmp_path, port), *extra_args], env=_env(**env))
    try:
        uid = _deny_one(tmp_path, port)
        terminal.wait_for(f"uid={uid}")
        assert terminal.stop() == 0
    finally:
        terminal.close()
    lines = terminal.lines()
    assert json_objects(lines) == []
    [denied] = [line for line in lines if uid in line]
    assert re.fullmatch(r"\d\d:\d\d:\d\d", denied[:8]), denied
    assert denied[8:] == (
        f" WARN  admission  denied Pod shop/web  {MESSAGE}  user=dev operation=CREATE uid={uid}"
    )
    # gunicorn's own lines are in the same shape, not its default `[date] [pid] [INFO]`.
    [listening] = [line for line in lines if "Listening at:" in line]
    assert listening.split()[1:3] == ["INFO", "gunicorn"]
    assert [line for line in lines if line.startswith("[")] == []


@pytest.mark.parametrize(
    ("extra_args", "env", "on_terminal"),
    [
        ([], {}, False),
        (["--log-format", "json"], {}, True),
        ([], {"GUARDRAIL_LOG_FORMAT": "json"}, True),
    ],
    ids=["auto-piped", "flag-on-terminal", "env-on-terminal"],
)
def test_json_lines_when_not_a_terminal_or_when_asked(
    tmp_path: Path, extra_args: list[str], env: dict[str, str], on_terminal: bool
) -> None:
    port = free_port()
    args = [*_serve_args(tmp_path, port), *extra_args]
    if on_terminal:
        terminal = Terminal(args, env=_env(**env))
        try:
            uid = _deny_one(tmp_path, port)
            terminal.wait_for(uid)
            assert terminal.stop() == 0
        finally:
            terminal.close()
        lines = terminal.lines()
    else:
        with subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(**env), text=True
        ) as process:
            try:
                uid = _deny_one(tmp_path, port)
            finally:
                process.terminate()
            out, _ = process.communicate(timeout=60)
        lines = out.splitlines()
    assert lines
    assert json_objects(lines) == lines  # every line, gunicorn's included
    entries = [json.loads(line) for line in lines]
    assert {e["logger"] for e in entries} >= {"guardrail.server", "gunicorn.error"}
    [denied] = [e for e in entries if e.get("uid") == uid]
    assert denied["message"] == MESSAGE
    assert denied["denied"] is True
