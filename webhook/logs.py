"""Guardrail's log lines: JSON in the cluster, one readable line per event on a terminal.

- `json`: one JSON object per line (time, level, logger, message, then the record's fields),
  what a log pipeline parses; the default when stderr is not a terminal, as in a pod.
- `text`: `12:00:01 WARN  admission  denied Pod shop/web  [require-role-labels] ...  user=dev`,
  one line per event with the fields as key=value; the default on a terminal.
- The other commands (`audit`, `check --cluster`, `explain`) print their warnings as
  `guardrail: warning: ...` on stderr, like their errors.

Structured data goes in `extra={"fields": {...}}`; every format shows it.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

import orjson

LOGGER_NAME = "guardrail"
FORMATS = ("auto", "json", "text")
FORMAT_ENV = "GUARDRAIL_LOG_FORMAT"
_LEVELS = {"WARNING": "WARN", "CRITICAL": "CRIT"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the record's `fields`.

    Pass structured data as `extra={"fields": {...}}`; keys in it become top-level keys.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """One line per event for a person: local time, level, logger, message, key=value fields.

    A violation leads with its verdict and object (`denied Pod shop/web`), then its message,
    which already names the policy; the rest of its fields follow as key=value.
    A traceback, when there is one, follows on its own lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = _LEVELS.get(record.levelname, record.levelname)
        fields = getattr(record, "fields", None)
        fields = dict(fields) if isinstance(fields, Mapping) else {}
        message = record.getMessage()
        if fields.get("event") == "violation":
            message = f"{_verdict(fields)}  {message}"
        parts = [f"{clock} {level:<5} {_short_name(record.name)}  {message}"]
        rendered = " ".join(
            f"{key}={_value(value)}" for key, value in fields.items() if value is not None
        )
        if rendered:
            parts.append(rendered)
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class CliFormatter(logging.Formatter):
    """`guardrail: warning: message`, as the commands print their other diagnostics."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"guardrail: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _verdict(fields: dict[str, Any]) -> str:
    """`denied Pod shop/web` for a violation record; pops the fields it states."""
    denied = fields.pop("denied", False)
    mode = fields.pop("mode", "")
    fields.pop("event", None)
    fields.pop("policy", None)  # the message starts with it, in brackets
    kind = fields.pop("kind", "")
    namespace = fields.pop("namespace", "")
    name = fields.pop("name", "")
    if not fields.get("dry_run"):
        fields.pop("dry_run", None)
    verb = "denied" if denied else {"warn": "warned", "audit": "audited"}.get(mode, str(mode))
    where = f"{namespace}/{name}" if namespace else name
    return f"{verb} {kind} {where}".rstrip()


def _short_name(name: str) -> str:
    # guardrail.admission -> admission; gunicorn.error (gunicorn's only logger here) -> gunicorn
    if name.startswith(f"{LOGGER_NAME}."):
        return name[len(LOGGER_NAME) + 1 :]
    if name.startswith("gunicorn."):
        return "gunicorn"
    return name


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        return str(value)
    elif isinstance(value, list | tuple) and all(isinstance(v, str | int) for v in value):
        text = ",".join(map(str, value))
    else:
        text = orjson.dumps(value, default=str).decode()
    if text and not any(c in text for c in ' "=\\\n\t'):
        return text
    return orjson.dumps(text).decode()


# -- choosing and installing a format -----------------------------------------------------------
def resolve_format(fmt: str | None, stream: IO[str] | None = None) -> str:
    """`json` or `text`: `fmt` itself, else (None or `auto`) text on a terminal, else JSON."""
    if fmt in ("json", "text"):
        return fmt
    if fmt not in (None, "auto"):
        raise ValueError(f"unknown log format {fmt!r} (expected one of {', '.join(FORMATS)})")
    stream = stream if stream is not None else sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or unusual stream: not a terminal
        return "json"


_FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}
_active = ["json"]


def formatter_class() -> type[logging.Formatter]:
    """The formatter `configure_logging` chose, for loggers set up elsewhere (gunicorn's)."""
    return _FORMATTERS[_active[0]]


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever sys.stderr is at the time (as logging's last resort does)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def _install(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    return logger


def configure_logging(level: int = logging.INFO, fmt: str | None = None) -> str:
    """Send guardrail's own loggers to stderr in `fmt` (see resolve_format); idempotent.

    `fmt` None reads $GUARDRAIL_LOG_FORMAT, else `auto`. Returns the format chosen; gunicorn's
    logger follows it through formatter_class().
    """
    chosen = resolve_format(fmt if fmt is not None else os.environ.get(FORMAT_ENV) or "auto")
    _active[0] = chosen
    handler = _StderrHandler()
    handler.setFormatter(_FORMATTERS[chosen]())
    logger = _install(handler)
    logger.setLevel(level)
    logger.propagate = False
    return chosen


def configure_cli_logging() -> None:
    """For the commands other than `serve`: warnings and errors as `guardrail: warning: ...`.

    Propagation stays on: this is a command's diagnostics, not a server's log.
    """
    handler = _StderrHandler()
    handler.setLevel(logging.WARNING)
    handler.setFormatter(CliFormatter())
    _install(handler).propagate = True
