"""The one polling helper of the test suite: wait for an outcome instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], *, what: str, timeout: float = 30, interval: float = 0.25
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail naming ``what``.

    Servers and controllers act asynchronously, so tests wait for an outcome, bounded.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
