"""Log lines for machines (JSON) and for people (text), and which one a stream gets."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from webhook import logs


def _record(
    message: str, fields: dict[str, object], level: int = logging.INFO
) -> logging.LogRecord:
    record = logging.LogRecord("guardrail.admission", level, __file__, 1, message, (), None)
    record.fields = fields
    record.created = 0.0
    return record


VIOLATION = {
    "event": "violation",
    "policy": "require-role-labels",
    "mode": "enforce",
    "kind": "Pod",
    "namespace": "shop",
    "name": "web",
    "user": "dev",
    "operation": "CREATE",
    "uid": "u-1",
    "dry_run": False,
    "denied": True,
}
MESSAGE = '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role.'


def test_a_denial_is_one_line_leading_with_the_verdict_and_the_object() -> None:
    line = logs.TextFormatter().format(_record(MESSAGE, VIOLATION, logging.WARNING))
    assert "\n" not in line
    assert (
        line[8:]
        == f" WARN  admission  denied Pod shop/web  {MESSAGE}  user=dev operation=CREATE uid=u-1"
    )


@pytest.mark.parametrize(
    ("changes", "head"),
    [
        ({"mode": "warn", "denied": False}, "warned Pod shop/web"),
        ({"mode": "audit", "denied": False}, "audited Pod shop/web"),
        ({"kind": "Namespace", "namespace": "", "name": "shop"}, "denied Namespace shop"),
    ],
)
def test_other_verdicts_name_their_mode(changes: dict[str, object], head: str) -> None:
    line = logs.TextFormatter().format(_record(MESSAGE, {**VIOLATION, **changes}))
    assert f"  {head}  {MESSAGE}  " in line


def test_a_dry_run_says_so_and_other_fields_are_key_value() -> None:
    formatter = logs.TextFormatter()
    assert "dry_run=true" in formatter.format(_record(MESSAGE, {**VIOLATION, "dry_run": True}))
    line = formatter.format(
        _record(
            "starting guardrail",
            {
                "bind": "0.0.0.0:8443",
                "workers": 2,
                "client_ca": None,
                "state": "<live cluster>",
                "dns_names": ["localhost", "guardrail.guardrail-system.svc"],
                "error": 'bad "quote"',
            },
        )
    )
    assert line.endswith(
        '  starting guardrail  bind=0.0.0.0:8443 workers=2 state="<live cluster>" '
        'dns_names=localhost,guardrail.guardrail-system.svc error="bad \\"quote\\""'
    )


def test_json_lines_keep_every_field() -> None:
    entry = json.loads(logs.JsonFormatter().format(_record(MESSAGE, VIOLATION, logging.WARNING)))
    assert entry == {
        "time": "1970-01-01T00:00:00.000+00:00",
        "level": "warning",
        "logger": "guardrail.admission",
        "message": MESSAGE,
        **VIOLATION,
    }


def test_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    primary, secondary = os.openpty()
    try:
        with os.fdopen(secondary, "w", closefd=False) as tty:
            assert logs.resolve_format("auto", tty) == "text"
            assert logs.resolve_format(None, tty) == "text"
            assert logs.resolve_format("json", tty) == "json"
    finally:
        os.close(primary)
        os.close(secondary)
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("text", io.StringIO()) == "text"
    with pytest.raises(ValueError, match="unknown log format 'yaml'"):
        logs.resolve_format("yaml")


def test_commands_print_warnings_as_guardrail_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `guardrail audit` prints for a warning logged by the library: one plain line."""
    logger = logging.getLogger(logs.LOGGER_NAME)
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", True)
    logs.configure_cli_logging()
    logs.configure_cli_logging()  # idempotent: still one handler
    logging.getLogger("guardrail.state").warning("TLS verification is off for %s", "https://x")
    logging.getLogger("guardrail.state").info("not for a command's user")
    assert capsys.readouterr().err == "guardrail: warning: TLS verification is off for https://x\n"
    assert len(logger.handlers) == 1
