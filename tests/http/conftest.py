"""Fixtures: certificates from `guardrail certs` and a real `guardrail serve` over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http.support import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by a module's tests: 2 workers, so metrics cross processes."""
    running = start_server(tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own, for tests that replace its certificate or stop it."""
    running = start_server(tmp_path / "serve")
    yield running
    running.stop()
