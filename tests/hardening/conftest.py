"""Fixtures of the hardening tier: the HTTP tier's real `guardrail serve`, shared per module."""

from __future__ import annotations

# Re-exported so that tests here get the same real server as tests/http (pytest finds
# fixtures by name in a conftest module's namespace).
from tests.http.conftest import fresh_server, server

__all__ = ["fresh_server", "server"]
