"""Hostile clients for the slow-client test and benchmark: many connections that dawdle.

Four kinds (SPEC 3.4), each connection reconnecting when the server cuts it, so the pressure
lasts as long as the fleet runs:

- `trickled-headers`: TLS, a partial request line, then a header byte every TRICKLE_SECONDS;
- `trickled-body`: TLS, whole headers announcing a body, then a body byte every TRICKLE_SECONDS;
- `silent`: TLS handshake, then nothing;
- `no-tls`: a TCP connection that never starts the TLS handshake.

All of them run in one asyncio loop on a thread of their own. Each connection records when it
became what the server's deadline counts from (TCP connected for `no-tls`, handshake done for
the others) and when it saw the server close it (end of file or reset).

    python -m tests.http.slowloris PORT CA_FILE PER_KIND    # a fleet in a process of its own

runs one until its standard input closes, prints `held N` once connected, then one JSON line:
every connection cut by the server, as [kind, seconds held].
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

TRICKLED_HEADERS = "trickled-headers"
TRICKLED_BODY = "trickled-body"
SILENT = "silent"
NO_TLS = "no-tls"
KINDS = (TRICKLED_HEADERS, TRICKLED_BODY, SILENT, NO_TLS)
TRICKLE_SECONDS = 0.5
HANDSHAKE_TIMEOUT = 60.0


@dataclass
class Hold:
    """One slow connection: from when the server's deadline started to when it was cut."""

    kind: str
    opened: float
    closed: float | None = None

    @property
    def held(self) -> float:
        assert self.closed is not None
        return self.closed - self.opened


class SlowFleet:
    """`per_kind` connections of each kind, held open (and reopened when cut) until stop()."""

    def __init__(self, port: int, ca: str, per_kind: int, kinds: tuple[str, ...] = KINDS) -> None:
        self.port = port
        self.per_kind = per_kind
        self.kinds = kinds
        self.context = ssl.create_default_context(cafile=ca)
        self.open = 0
        self.holds: list[Hold] = []  # closed by the server, in the order seen
        self.connect_errors: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="slow-fleet")
        self._tasks: list[asyncio.Task[None]] = []
        # Besides cancelling: a task may miss its cancellation (asyncio.wait_for in Python
        # 3.11 can swallow one), and then sees this before its next connection.
        self._stopping = False
        self._transports: set[asyncio.WriteTransport] = set()

    @property
    def total(self) -> int:
        return self.per_kind * len(self.kinds)

    def closed(self, kind: str) -> int:
        return sum(1 for hold in list(self.holds) if hold.kind == kind)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._cancel)
            self._thread.join(timeout=60)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._tasks = [
                self._loop.create_task(self._client(kind))
                for _ in range(self.per_kind)
                for kind in self.kinds
            ]
            self._loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
        finally:
            for transport in list(self._transports):
                transport.abort()
            self._loop.run_until_complete(asyncio.sleep(0))  # let aborts finish closing
            self._loop.close()

    def _cancel(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()

    async def _client(self, kind: str) -> None:
        while not self._stopping:
            await self._hold_one(kind)

    async def _hold_one(self, kind: str) -> None:
        try:
            if kind == NO_TLS:
                opened = time.monotonic()
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            else:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1",
                    self.port,
                    ssl=self.context,
                    server_hostname="127.0.0.1",
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
                )
                opened = time.monotonic()
        except OSError as exc:  # refused, reset or shed during the handshake
            self.connect_errors[f"{kind}: {type(exc).__name__}"] += 1
            await asyncio.sleep(0.1)
            return
        self._transports.add(writer.transport)
        self.open += 1
        try:
            await self._dawdle(kind, reader, writer)
        finally:
            self.open -= 1
            writer.transport.abort()
            self._transports.discard(writer.transport)
        if not self._stopping:
            self.holds.append(Hold(kind, opened, time.monotonic()))

    async def _dawdle(
        self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Misbehave until the server closes the connection."""
        trickle = _trickle(kind, writer, self.port)
        while not self._stopping:
            try:
                async with asyncio.timeout(TRICKLE_SECONDS):
                    data = await reader.read(4096)
            except TimeoutError:
                if trickle is not None:
                    writer.write(next(trickle))
                continue
            except OSError:  # reset, or TLS torn down
                return
            if not data:
                return
            # Anything the server answers (an error page, say) is read until it closes.


def _trickle(kind: str, writer: asyncio.StreamWriter, port: int) -> Iterator[bytes] | None:
    if kind == TRICKLED_HEADERS:
        writer.write(b"POST /validate HT")
        rest = f"TP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode()
        return (bytes([b]) for b in itertools.chain(rest, itertools.repeat(ord("a"))))
    if kind == TRICKLED_BODY:
        writer.write(
            f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
        )
        return itertools.repeat(b" ")
    return None


def main(argv: list[str]) -> None:
    port, ca, per_kind = int(argv[0]), argv[1], int(argv[2])
    fleet = SlowFleet(port, ca, per_kind)
    fleet.start()
    deadline = time.monotonic() + 30
    while fleet.open < fleet.total and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"held {fleet.open}", flush=True)
    sys.stdin.read()
    fleet.stop()
    print(json.dumps([[hold.kind, hold.held] for hold in fleet.holds]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
