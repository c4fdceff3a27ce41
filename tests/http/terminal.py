"""A process run on a pseudo-terminal, as a person runs it, and everything it printed."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.polling import eventually


class Terminal:
    """`args` with stdout and stderr on one pseudo-terminal (isatty() is true for both)."""

    def __init__(
        self, args: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None
    ) -> None:
        primary, secondary = pty.openpty()
        self.process = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=secondary,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
        os.close(secondary)
        self._primary = primary
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._primary, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    def output(self) -> str:
        with self._lock:
            data = bytes(self._output)
        # The terminal turns each "\n" into "\r\n".
        return data.decode("utf-8", "replace").replace("\r\n", "\n")

    def lines(self) -> list[str]:
        return self.output().splitlines()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        def printed() -> bool:
            if text in self.output():
                return True
            if self.process.poll() is not None:
                raise AssertionError(
                    f"exited with {self.process.returncode} before printing {text!r}:\n"
                    f"{self.output()}"
                )
            return False

        eventually(printed, what=f"{text!r} on the terminal", timeout=timeout, interval=0.1)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        """Send `sig` to the process itself (it stops its children); SIGKILL the group if not."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        os.close(self._primary)
        return code

    def close(self) -> None:
        """Make sure nothing of the process group is left (for a test's `finally`)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def json_objects(lines: Sequence[str]) -> list[str]:
    """The lines that parse as a JSON object: log lines meant for a machine."""
    found = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(line)
    return found
