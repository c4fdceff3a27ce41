"""The gunicorn worker of `guardrail serve`: gthread, with slow and excess clients cut off.

gunicorn's gthread worker hands a connection to a thread as soon as its socket is readable; the
thread then does the TLS handshake and reads the request with blocking reads and no deadline,
so a few dozen clients that connect and dawdle hold every thread, and the API server's reviews
queue behind them until it gives up (and with failurePolicy Fail, every pod create fails).

`DeadlineWorker` keeps gthread's threads, keep-alive and graceful stop, and changes what a
thread is given: its event loop does the TLS handshake without blocking and buffers the whole
request (headers to the blank line, then Content-Length bytes, or a chunked body to its last
chunk) before the connection goes to a thread with those bytes. A client that trickles or
stays silent costs a file descriptor and a few bytes, never a thread.

- Deadlines: the handshake within `TLS_HANDSHAKE_SECONDS` of the accept; the request (line,
  headers, body) within `REQUEST_SECONDS` of the handshake, or of its first byte on a kept-alive
  connection. The API server sends a review at once, so seconds are plenty. Past either, the
  loop closes the connection (checked every `SWEEP_INTERVAL`).
- Idle keep-alive connections stay `keepalive` seconds (gunicorn's setting), as before.
- A thread never waits for a client: it reads only what the loop buffered. A body over the
  app's 4 MiB limit is read and discarded in the loop (up to the 32 MiB more the app would
  drain, within the same deadline) and the app is handed the request's head alone, so it
  answers its 413 as before, to a client whose upload is over. A request the loop cannot frame
  (a head past gunicorn's limits, contradictory or malformed framing) is handed over as
  buffered, for gunicorn to refuse from those bytes. Either way the connection then closes.
- A response is written within `RESPONSE_SECONDS`, or the connection closes: a client that
  stops reading holds the thread writing to it that long at most.
- Caps: at most `worker_connections` per worker (lowered to fit RLIMIT_NOFILE); a connection
  accepted past the cap is closed at once (the newest is shed) rather than accepts stopping,
  which would let held connections lock everyone out. Buffered requests share
  `BUFFER_BUDGET_BYTES` per worker; a connection that would exceed it is closed.
- A response goes out in one write, its head with its body (gunicorn wrote the head, then the
  body: two TLS records and two syscalls for a review's few hundred bytes), its Date header
  formatted once a second.
- Closing after a response drains what the client still sends (RFC 9112 9.6) in the loop, for
  at most `LINGER_SECONDS`, instead of gunicorn's blocking close in the loop thread.
- Every connection cut this way is counted in `guardrail_connections_dropped_total{reason}` and
  logged, a summary line at most once a second.
- Connections are spread over the workers, fewest open first: each worker publishes how many it
  holds in a table the master shares with every worker it forks (`AcceptTable`, gunicorn's
  pre_fork hook `share_accept_table`), and a worker holding `ACCEPT_IMBALANCE` more than another
  live one leaves a new connection to it (its listener off for `ACCEPT_DEFER_SECONDS`, then it
  accepts whatever is still waiting). On the shared listener alone, whichever worker woke
  first accepted a whole burst, and the API server's few long-lived keep-alive connections
  often all ended on one worker, one core, while the other idled.

HTTP/1.1 only: the TLS context offers no other ALPN protocol (see ReloadingTLS).
"""

from __future__ import annotations

import datetime
import errno
import functools
import logging
import math
import mmap
import resource
import selectors
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from enum import Enum
from typing import Any

from gunicorn import http, util
from gunicorn import sock as gunicorn_sock
from gunicorn.http import wsgi
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

log = logging.getLogger("guardrail.server")

TLS_HANDSHAKE_SECONDS = 5.0
REQUEST_SECONDS = 5.0
# Writing a response: a review's is a few hundred bytes, so only a client that stopped
# reading fills the socket buffers this long.
RESPONSE_SECONDS = 10.0
MAX_CONNECTIONS_PER_WORKER = 1000
# The app's MAX_BODY_BYTES, and that plus its DRAIN_BYTES (webhook.app, which must not be
# imported before the metrics directory is set; tests/http/test_slow_clients.py checks they
# agree): a larger body is the app's to refuse with 413, so it is drained, not buffered, and
# one larger still is not even drained.
BODY_BUFFER_LIMIT = 4 * 1024 * 1024
BODY_DRAIN_LIMIT = BODY_BUFFER_LIMIT + 32 * 1024 * 1024
# When gunicorn's limits are unknown; see _header_limit.
HEADER_BUFFER_LIMIT = 64 * 1024
CHUNK_LINE_LIMIT = 8 * 1024
BUFFER_BUDGET_BYTES = 64 * 1024 * 1024
LINGER_SECONDS = 2.0
LINGER_DRAIN_BYTES = 64 * 1024
SWEEP_INTERVAL = 0.25
DROP_LOG_INTERVAL = 1.0
ACCEPT_PAUSE_SECONDS = 0.5
RECV_BYTES = 64 * 1024
ACCEPT_BATCH = 64
# Least-connections accepting: a worker leaves a new connection to a sibling holding fewer for
# this long (both are woken by the same connection; the sibling takes it meanwhile), then takes
# whatever is still waiting.
ACCEPT_DEFER_SECONDS = 0.005
# Only a worker holding this many more than a sibling leaves it a connection: within that, two
# workers taking connections at once (a client reconnecting for every request) never wait.
ACCEPT_IMBALANCE = 2
# A sibling whose record is this old (its loop turns at least once a second) is dead or stuck,
# and not waited for.
ACCEPT_TABLE_STALE_SECONDS = 3.0
# The heartbeat the master checks against gunicorn's `timeout` (30 s): a file's mtime, set by a
# syscall, which gthread's loop made on every turn, thousands of times a second under load.
NOTIFY_INTERVAL = 1.0
# Descriptors a worker needs besides its connections: listeners, pipes, the poller, log and
# metrics files, the watch connections to the API server.
FD_RESERVE = 128

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_HEX = frozenset(b"0123456789abcdefABCDEF")


# -- framing ------------------------------------------------------------------------------------
class Framing(Enum):
    INCOMPLETE = "incomplete"
    # The buffer holds the whole request (perhaps the start of the next one too).
    COMPLETE = "complete"
    # Framed in a way gunicorn must judge (and refuses): handed over as buffered.
    INVALID = "invalid"
    # A body over the limit, now read and discarded (or past what is worth reading): handed
    # over as its head alone, for the app to answer 413.
    OVERSIZED = "oversized"


class Chunk(Enum):
    SIZE = "size"  # a chunk-size line
    DATA = "data"
    DATA_END = "data-end"  # the CRLF after a chunk's data
    TRAILERS = "trailers"  # after the last chunk: trailer fields up to an empty line


class RequestFramer:
    """Where one HTTP/1.1 request ends in a growing buffer, without parsing more than framing.

    Only what decides the request's length is read (Content-Length, Transfer-Encoding) and
    Expect; gunicorn parses the request for real once it is whole. Anything doubtful is
    INVALID, so that gunicorn's parser, not this one, gives the answer.

    A body over `body_limit` is drained instead of buffered: `feed` then deletes body bytes
    from the buffer as they arrive, up to `drain_limit` in all, and the request is OVERSIZED
    once its body is over (or that much has been read).
    """

    def __init__(
        self,
        *,
        body_limit: int = BODY_BUFFER_LIMIT,
        drain_limit: int = BODY_DRAIN_LIMIT,
        header_limit: int = HEADER_BUFFER_LIMIT,
    ) -> None:
        self.body_limit = body_limit
        self.drain_limit = drain_limit
        self.header_limit = header_limit
        self.reset()

    def reset(self) -> None:
        self.body_start = -1
        self.content_length: int | None = None
        self.chunked = False
        self.expects_continue = False
        self.draining = False
        self.body_seen = 0  # body bytes (chunked: chunk data) read so far
        self._head = b""
        self._scanned = 0
        self._chunk = Chunk.SIZE
        self._chunk_pos = 0
        self._chunk_left = 0

    def feed(self, buffer: bytearray) -> Framing:
        """Judge `buffer`, the request's bytes so far (grown by the caller between calls)."""
        if self.body_start < 0:
            verdict = self._headers(buffer)
            if verdict is not None:
                return verdict
        if self.chunked:
            verdict = self._chunks(buffer)
            if self.draining:
                # Chunk data read so far is not kept: only the position in the framing is.
                del buffer[self.body_start : self._chunk_pos]
                self._chunk_pos = self.body_start
                if verdict is not Framing.INCOMPLETE or self.body_seen >= self.drain_limit:
                    return Framing.OVERSIZED
            return verdict
        assert self.content_length is not None
        if not self.draining:
            return (
                Framing.COMPLETE
                if len(buffer) - self.body_start >= self.content_length
                else Framing.INCOMPLETE
            )
        self.body_seen += len(buffer) - self.body_start
        del buffer[self.body_start :]
        return Framing.OVERSIZED if self.body_seen >= self.content_length else Framing.INCOMPLETE

    def oversized_head(self) -> bytes:
        """The head of an OVERSIZED request, framed by a Content-Length over the limit and no
        body: what the app needs to refuse it with 413 (it reads nothing, the body is gone)."""
        if not self.chunked:
            return self._head
        lines = [
            line
            for line in self._head.split(b"\r\n")
            if not line.lower().startswith(b"transfer-encoding:")
        ]
        length = max(self.body_seen, self.body_limit + 1)
        return b"\r\n".join([*lines[:-2], b"Content-Length: %d" % length, b"", b""])

    def _headers(self, buffer: bytearray) -> Framing | None:
        # Empty lines before a request line are allowed (RFC 9112 2.2); gunicorn skips them.
        start = 0
        while buffer.startswith(b"\r\n", start):
            start += 2
        begin = max(start, self._scanned - 3)
        end = buffer.find(b"\r\n\r\n", begin)
        bare = buffer.find(b"\n\n", begin)
        if bare >= 0 and (end < 0 or bare < end):
            return Framing.INVALID  # bare LF line ends: gunicorn's to refuse
        if end < 0:
            self._scanned = len(buffer)
            return Framing.INVALID if len(buffer) > self.header_limit else Framing.INCOMPLETE
        if end > self.header_limit:
            return Framing.INVALID
        self.body_start = end + 4
        self._head = bytes(buffer[: self.body_start])
        return self._framing(self._head[start:end].split(b"\r\n")[1:])

    def _framing(self, lines: list[bytes]) -> Framing | None:
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip(b" \t"):
                return Framing.INVALID  # a folded or malformed field
            key = name.lower()
            if key == b"content-length":
                lengths.append(value.strip(b" \t"))
            elif key == b"transfer-encoding":
                codings += [c.strip(b" \t").lower() for c in value.split(b",")]
            elif key == b"expect" and value.strip(b" \t").lower() == b"100-continue":
                self.expects_continue = True
        if codings:
            if lengths or codings != [b"chunked"]:
                return Framing.INVALID
            self.chunked = True
            self._chunk_pos = self.body_start
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return Framing.INVALID
        self.content_length = int(lengths[0]) if lengths else 0
        if self.content_length > self.drain_limit:
            return Framing.OVERSIZED  # not worth reading: the app refuses it at once
        self.draining = self.content_length > self.body_limit
        return None

    def _chunks(self, buffer: bytearray) -> Framing:
        """Follow the chunked framing from where the last call stopped."""
        steps = {
            Chunk.SIZE: self._chunk_size,
            Chunk.DATA: self._chunk_data,
            Chunk.DATA_END: self._chunk_end,
            Chunk.TRAILERS: self._trailers,
        }
        while True:
            verdict = steps[self._chunk](buffer, self._chunk_pos)
            if verdict is not None:
                return verdict

    # Each step moves along the framing and returns None, or says why it cannot (yet).
    def _chunk_size(self, buffer: bytearray, pos: int) -> Framing | None:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            too_long = len(buffer) - pos > CHUNK_LINE_LIMIT
            return self._bad_chunk() if too_long else Framing.INCOMPLETE
        size_field = bytes(buffer[pos:line_end]).split(b";", 1)[0].rstrip(b" \t")
        if not size_field or not _HEX.issuperset(size_field):
            return self._bad_chunk()
        self._chunk_left = int(size_field, 16)
        self._chunk = Chunk.DATA if self._chunk_left else Chunk.TRAILERS
        self._chunk_pos = line_end + 2
        return None

    def _chunk_data(self, buffer: bytearray, pos: int) -> Framing | None:
        taken = min(self._chunk_left, len(buffer) - pos)
        self._chunk_left -= taken
        self.body_seen += taken
        self._chunk_pos += taken
        if self.body_seen > self.body_limit:
            self.draining = True
        if self._chunk_left:
            return Framing.INCOMPLETE
        self._chunk = Chunk.DATA_END
        return None

    def _chunk_end(self, buffer: bytearray, pos: int) -> Framing | None:
        if len(buffer) - pos < 2:
            return Framing.INCOMPLETE
        if buffer[pos : pos + 2] != b"\r\n":
            return self._bad_chunk()
        self._chunk_pos += 2
        self._chunk = Chunk.SIZE
        return None

    def _trailers(self, buffer: bytearray, pos: int) -> Framing:
        if buffer.startswith(b"\r\n", pos) or buffer.find(b"\r\n\r\n", pos) >= 0:
            return Framing.COMPLETE
        too_long = len(buffer) - pos > CHUNK_LINE_LIMIT
        return self._bad_chunk() if too_long else Framing.INCOMPLETE

    def _bad_chunk(self) -> Framing:
        # While draining, the app's 413 is the answer whatever the rest of the body holds.
        return Framing.OVERSIZED if self.draining else Framing.INVALID


# -- connections --------------------------------------------------------------------------------
class Phase(Enum):
    HANDSHAKE = "handshake"
    REQUEST = "request"  # buffering a request in the loop
    THREAD = "thread"  # a thread has it
    IDLE = "idle"  # kept alive between requests, in gthread's keepalived_conns
    LINGER = "linger"  # answered, write side shut, draining what the client still sends
    CLOSED = "closed"


class Connection(TConn):  # type: ignore[misc]  # gunicorn is untyped
    """gthread's connection, with what the loop needs to buffer a request within its deadline."""

    def __init__(
        self,
        cfg: Any,
        sock: socket.socket,
        client: Any,
        server: Any,
        dispatch: Callable[[Connection], None],
        framer: RequestFramer,
    ) -> None:
        super().__init__(cfg, sock, client, server)
        self.dispatch = dispatch
        self.phase = Phase.HANDSHAKE
        self.deadline = 0.0
        self.buffer = bytearray()
        self.framer = framer
        self.continued = False
        self.close_after = False
        self.drained = 0
        self.events = 0

    def ready(self, _fileobj: object) -> None:
        """The poller's callback: the socket can be read (or written, mid-handshake)."""
        self.dispatch(self)


class BufferedSource:
    """What gunicorn's parser reads a connection from: only what the loop buffered.

    A thread never waits for a client: what it is handed is the whole request, or as much as
    gunicorn needs to refuse it, and past that the client has, as far as the thread knows,
    gone. The socket itself is still the response's (environ's gunicorn.socket).
    """

    def recv(self, _size: int) -> bytes:
        return b""


# -- responses ----------------------------------------------------------------------------------
class _Head:
    """Where gunicorn's send_headers writes the head, to be sent with the body instead."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


@functools.lru_cache(maxsize=2)
def _http_date(second: int) -> str:
    return util.http_date(second)  # type: ignore[no-any-return]  # gunicorn is untyped


class OneWriteResponse(wsgi.Response):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's response, its head held back and sent with the first body bytes in one write,
    the Date header formatted once a second; otherwise gunicorn's own."""

    sock: Any  # gunicorn's, set by its __init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head = b""

    def default_headers(self) -> list[str]:
        # gunicorn's, with the date of this second formatted once (util.http_date each time).
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        headers = [
            f"HTTP/{self.req.version[0]}.{self.req.version[1]} {self.status}\r\n",
            f"Server: {self.version}\r\n",
            f"Date: {_http_date(int(time.time()))}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            headers.append("Transfer-Encoding: chunked\r\n")
        return headers

    def send_headers(self) -> None:
        # gunicorn's head, composed by gunicorn, kept for the first body write or close.
        if self.headers_sent:
            return
        sock, head = self.sock, _Head()
        self.sock = head
        try:
            super().send_headers()
        finally:
            self.sock = sock
        self._head = head.data

    def _emit_body(self, data: bytes) -> None:
        head, self._head = self._head, b""
        if not head:
            super()._emit_body(data)
        elif self.chunked:
            self.sock.sendall(head + b"%X\r\n%s\r\n" % (len(data), data))
        else:
            self.sock.sendall(head + data)

    def close(self) -> None:
        if not self.headers_sent:
            self.send_headers()
        head, self._head = self._head, b""
        if head:  # no body was written (empty, HEAD, 204, 304)
            self.sock.sendall(head)
        super().close()


def _write(resp: OneWriteResponse, respiter: Any, environ: dict[str, Any]) -> None:
    if isinstance(respiter, environ["wsgi.file_wrapper"]):
        resp.write_file(respiter)
    else:
        for item in respiter:
            resp.write(item)
    resp.close()


# -- spreading connections over the workers -----------------------------------------------------
class AcceptTable:
    """How many connections each worker holds, in memory the master shares with its forks.

    One record per slot: the worker's pid, its open connections, and when it last wrote them
    (CLOCK_MONOTONIC, the same in every process). The master gives each new worker a slot no
    live worker has (`share_accept_table`); a record not written for
    ACCEPT_TABLE_STALE_SECONDS is a worker gone or stuck, and left out.
    """

    RECORD = struct.Struct("=qqd")

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, self.RECORD.size * slots)  # anonymous, MAP_SHARED

    def publish(self, slot: int, pid: int, connections: int, now: float) -> None:
        self.RECORD.pack_into(self._memory, slot * self.RECORD.size, pid, connections, now)

    def fewest_elsewhere(self, slot: int, now: float) -> int | None:
        """The fewest connections a live worker other than `slot`'s holds, or None."""
        fewest: int | None = None
        for other in range(self.slots):
            if other == slot:
                continue
            pid, connections, written = self.RECORD.unpack_from(
                self._memory, other * self.RECORD.size
            )
            if pid and now - written < ACCEPT_TABLE_STALE_SECONDS:
                fewest = connections if fewest is None else min(fewest, connections)
        return fewest


def share_accept_table(arbiter: Any, worker: Any) -> None:
    """gunicorn's pre_fork hook (in the master): the table every worker shares, made at the
    first fork, and a slot for this worker that no other live worker holds."""
    table = getattr(arbiter, "guardrail_accept_table", None)
    if table is None:
        # Slots for a full set of workers and as many replacements starting at once.
        table = arbiter.guardrail_accept_table = AcceptTable(2 * max(int(arbiter.num_workers), 1))
    taken = {getattr(w, "accept_slot", None) for w in arbiter.WORKERS.values()}
    free = [slot for slot in range(table.slots) if slot not in taken]
    if free:  # else (more workers added than slots): this one accepts without weighing
        worker.accept_table = table
        worker.accept_slot = free[0]


# -- the worker ---------------------------------------------------------------------------------
class DeadlineWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's gthread worker whose threads only ever get whole requests (module docstring)."""

    alive: bool  # gunicorn's, set by its __init__

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connection_cap = int(self.cfg.worker_connections)
        self.header_limit = _header_limit(self.cfg)
        self._waiting: set[Connection] = set()
        self._buffered = 0
        self._next_sweep = 0.0
        self._accept_paused_until = 0.0
        self._drops: Counter[str] = Counter()
        self._drops_logged = -DROP_LOG_INTERVAL  # the first drop is logged at once
        self._drop_counter: Any = None
        # Set by share_accept_table before the fork; without it (no hook) no balancing.
        self.accept_table: AcceptTable | None = None
        self.accept_slot = 0
        self._deferred_at = -math.inf
        self._next_notify = 0.0

    def init_process(self) -> None:
        self.connection_cap = _fit_descriptor_limit(int(self.cfg.worker_connections))
        # gthread stops accepting at worker_connections; here the cap sheds instead (see
        # accept), so that limit must never be reached.
        self.worker_connections = self.connection_cap + 1
        # After fork, with the metrics directory set (server.serve): this process's own file.
        from prometheus_client import Counter as PromCounter  # noqa: PLC0415 - after fork

        self._drop_counter = PromCounter(
            "guardrail_connections_dropped",
            "Connections closed before a whole request arrived: over the per-worker cap "
            "(over_capacity), TLS handshake or request past its deadline (handshake_timeout, "
            "request_timeout), over the request buffer budget (buffer_budget), not accepted "
            "for want of file descriptors (accept_failed), or a response not read within its "
            "deadline (response_timeout).",
            ("reason",),
            registry=None,
        )
        super().init_process()  # runs the loop: last, as gunicorn requires

    def notify(self) -> None:
        """The heartbeat, at most once every NOTIFY_INTERVAL (see there)."""
        now = time.monotonic()
        if now >= self._next_notify:
            self._next_notify = now + NOTIFY_INTERVAL
            super().notify()

    def run(self) -> None:
        self._publish(time.monotonic())  # before the listener is watched: siblings see this one
        try:
            super().run()
        finally:
            self._log_drops(time.monotonic(), now_or_never=True)

    # -- accepting ------------------------------------------------------------------------------
    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and time.monotonic() < self._accept_paused_until:
            return
        super().set_accept_enabled(enabled)

    def accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._leave_to_sibling():
                return
            try:
                raw, client = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: leave the rest in the backlog for a moment rather
                    # than spin on a listener that stays readable.
                    self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_SECONDS
                    super().set_accept_enabled(False)
                    self._drop("accept_failed")
                    return
                raise
            if self.nr_conns >= self.connection_cap:
                raw.close()
                self._drop("over_capacity")
                continue
            self.nr_conns += 1
            self._publish(time.monotonic())
            framer = RequestFramer(header_limit=self.header_limit)
            conn = Connection(self.cfg, raw, client, listener.getsockname(), self._on_event, framer)
            self._start(conn)

    def _leave_to_sibling(self) -> bool:
        """Whether to leave the waiting connection to a live worker holding fewer, for
        ACCEPT_DEFER_SECONDS; one still waiting after that is taken, not left again."""
        if self.accept_table is None:
            return False
        now = time.monotonic()
        if now - self._deferred_at < 2 * ACCEPT_DEFER_SECONDS:
            self._deferred_at = -math.inf  # this one is taken; the next is weighed again
            return False
        # Our own count first: two workers weighing at once then cannot each see the other
        # holding fewer and both step aside.
        self._publish(now)
        fewest = self.accept_table.fewest_elsewhere(self.accept_slot, now)
        if fewest is None or self.nr_conns < fewest + ACCEPT_IMBALANCE:
            return False
        self._deferred_at = now
        self._accept_paused_until = now + ACCEPT_DEFER_SECONDS
        super().set_accept_enabled(False)
        return True

    def _publish(self, now: float) -> None:
        if self.accept_table is not None:
            # A stopping worker accepts no more: no sibling should leave a connection to it.
            pid = self.pid if self.alive else 0
            self.accept_table.publish(self.accept_slot, pid, self.nr_conns, now)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # Wake when accepting may resume, not a whole loop timeout later.
        paused = self._accept_paused_until - time.monotonic()
        if paused > 0:
            timeout = min(timeout, paused)
        super().wait_for_and_dispatch_events(timeout)

    def _start(self, conn: Connection) -> None:
        if not self.cfg.is_ssl:
            self._begin_request(conn, b"")
            return
        try:
            # The ssl_context hook (ReloadingTLS): certificates replaced on disk still apply.
            context = gunicorn_sock.ssl_context(self.cfg)
            conn.sock = context.wrap_socket(
                conn.sock,
                server_side=True,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
            )
        except (OSError, ValueError) as exc:
            log.debug("cannot start TLS on a new connection: %s", exc)
            self._close(conn)
            return
        conn.phase = Phase.HANDSHAKE
        conn.deadline = time.monotonic() + TLS_HANDSHAKE_SECONDS
        self._waiting.add(conn)
        self._handshake(conn)

    # -- the loop's side of a connection --------------------------------------------------------
    def _on_event(self, conn: Connection) -> None:
        if conn.phase is Phase.HANDSHAKE:
            self._handshake(conn)
        elif conn.phase is Phase.REQUEST:
            self._read(conn)
        elif conn.phase is Phase.IDLE:
            self.keepalived_conns.remove(conn)
            self._begin_request(conn, b"")
        elif conn.phase is Phase.LINGER:
            self._drain(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except OSError as exc:  # SSLError too: no common protocol, a client cert refused, ...
            log.debug("TLS handshake failed: %s", exc)
            self._close(conn)
            return
        self._begin_request(conn, b"")

    def _begin_request(self, conn: Connection, initial: bytes) -> None:
        conn.phase = Phase.REQUEST
        conn.deadline = time.monotonic() + REQUEST_SECONDS
        conn.framer.reset()
        conn.continued = False
        self._waiting.add(conn)
        if initial and self._absorb(conn, initial):
            return
        self._read(conn)

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except OSError as exc:
                log.debug("connection failed while its request was read: %s", exc)
                self._close(conn)
                return
            if not data:
                self._close(conn)
                return
            if self._absorb(conn, data):
                return
        self._watch(conn, selectors.EVENT_READ)

    def _absorb(self, conn: Connection, data: bytes) -> bool:
        """Add data to the request; True once the connection has left the loop's hands."""
        before = len(conn.buffer)
        conn.buffer += data
        verdict = conn.framer.feed(conn.buffer)  # drops a drained body's bytes
        self._buffered += len(conn.buffer) - before
        if self._buffered > BUFFER_BUDGET_BYTES:
            self._drop("buffer_budget")
            self._close(conn)
            return True
        if verdict is Framing.OVERSIZED:
            self._hand_over(conn, conn.framer.oversized_head(), close_after=True)
            return True
        if verdict is not Framing.INCOMPLETE:
            self._hand_over(conn, bytes(conn.buffer), close_after=verdict is Framing.INVALID)
            return True
        if conn.framer.expects_continue and not conn.continued and conn.framer.body_start >= 0:
            # The client waits for this before it sends the body. gunicorn sends its own once
            # the request is whole: a second 1xx, which clients must accept (RFC 9110 15.2).
            conn.continued = True
            try:
                conn.sock.send(CONTINUE)
            except OSError:
                self._close(conn)
                return True
        return False

    def _hand_over(self, conn: Connection, data: bytes, *, close_after: bool) -> None:
        self._unwatch(conn)
        self._waiting.discard(conn)
        self._buffered -= len(conn.buffer)
        conn.buffer = bytearray()
        conn.sock.setblocking(True)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, BufferedSource(), conn.client)
        conn.parser.unreader.unread(data)
        conn.close_after = close_after
        # gthread's handle() then neither waits for data nor wraps the socket again.
        conn.initialized = True
        conn.data_ready = True
        conn.phase = Phase.THREAD
        self.enqueue_req(conn)

    # -- in a thread ----------------------------------------------------------------------------
    def handle_request(self, req: Any, conn: Connection) -> bool:
        # gthread's handle() has just made the socket blocking; the thread only writes to it.
        conn.sock.settimeout(RESPONSE_SECONDS)
        try:
            return self._respond(req, conn)
        except TimeoutError as exc:
            self.method_queue.defer(self._drop, "response_timeout")
            # What gthread's handle() takes for a client gone (logged at debug, closed).
            raise OSError(errno.EPIPE, "the client did not read its response") from exc

    def _respond(self, req: Any, conn: Connection) -> bool:
        """gthread's handle_request (gunicorn 27.0), with OneWriteResponse as the response."""
        environ: dict[str, Any] = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            request_start = datetime.datetime.now()
            resp, environ = wsgi.create(
                req, conn.sock, conn.client, conn.server, self.cfg, OneWriteResponse
            )
            environ["wsgi.multithread"] = True
            if self._last_request() or len(self.keepalived_conns) >= self.max_keepalived:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                _write(resp, respiter, environ)
            finally:
                request_time = datetime.datetime.now() - request_start
                self.log.access(resp, req, environ, request_time)
                if hasattr(respiter, "close"):
                    respiter.close()
            if resp.should_close():
                self.log.debug("Closing connection.")
                return False
        except OSError:
            raise
        except (Exception, SystemExit):
            if resp and resp.headers_sent:
                # Timeout abort is SystemExit. If the response has started, writing a 500 on
                # the same socket would corrupt it.
                self.log.exception("Error handling request")
                util.close_graceful(conn.sock)
                raise StopIteration from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")
        return True

    def _last_request(self) -> bool:
        """Count a request; whether its connection must close after it (gthread's rules)."""
        self.nr += 1
        if self.nr >= self.max_requests:
            if self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            return True
        return not self.alive or not self.cfg.keepalive

    # -- back from a thread ---------------------------------------------------------------------
    def _keepalive_after(self, conn: Connection, keepalive: bool) -> bool:
        # After an invalid or oversized request, where the next one would start is unknown.
        # Such a client is not the API server anyway.
        if conn.close_after:
            return False
        return bool(super()._keepalive_after(conn, keepalive))

    def finish_request(self, conn: Connection, fs: Future[Any]) -> None:
        try:
            keep = not fs.cancelled() and fs.result() is True
        except Exception:  # noqa: BLE001 - handle() failed: the connection is unusable
            keep = False
        if not keep:
            self._linger(conn)
            return
        try:
            conn.sock.setblocking(False)
            # Bytes of a pipelined request the parser read ahead, or decrypted ones waiting in
            # the TLS layer: neither makes the socket readable to the poller.
            ahead: bytes = conn.parser.unreader.take_buffered()
            pending = isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending() > 0
        except OSError:
            self._close(conn)
            return
        if ahead or pending:
            self._begin_request(conn, ahead)
            return
        conn.phase = Phase.IDLE
        conn.set_timeout()
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
        # gthread's own deque: its murder_keepalived closes connections idle past keepalive.
        self.keepalived_conns.append(conn)
        self._watch(conn, selectors.EVENT_READ)

    # -- closing --------------------------------------------------------------------------------
    def _linger(self, conn: Connection) -> None:
        """Close after a response: FIN first, then drain what the client still sends, so that
        unread bytes do not turn the close into a reset that loses the response's end."""
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.phase = Phase.LINGER
        conn.deadline = time.monotonic() + LINGER_SECONDS
        conn.drained = 0
        self._waiting.add(conn)
        self._drain(conn)

    def _drain(self, conn: Connection) -> None:
        while conn.drained < LINGER_DRAIN_BYTES:
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                self._watch(conn, selectors.EVENT_READ)
                return
            except OSError:
                break
            if not data:
                break
            conn.drained += len(data)
        self._close(conn)

    def _close(self, conn: Connection) -> None:
        if conn.phase is Phase.CLOSED:
            return
        self._unwatch(conn)
        self._waiting.discard(conn)
        self._buffered -= len(conn.buffer)
        conn.buffer = bytearray()
        conn.phase = Phase.CLOSED
        self.nr_conns -= 1
        self._publish(time.monotonic())
        util.close(conn.sock)

    def murder_pending(self) -> None:
        """Each loop turn (gthread calls it with murder_keepalived): past-deadline connections,
        and this worker's record in the accept table."""
        super().murder_pending()
        now = time.monotonic()
        self._publish(now)
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        for conn in [c for c in self._waiting if c.deadline <= now]:
            if conn.phase is Phase.HANDSHAKE:
                self._drop("handshake_timeout")
            elif conn.phase is Phase.REQUEST:
                self._drop("request_timeout")
            self._close(conn)
        self._log_drops(now)

    def _drop(self, reason: str) -> None:
        self._drops[reason] += 1
        if self._drop_counter is not None:
            self._drop_counter.labels(reason).inc()

    def _log_drops(self, now: float, *, now_or_never: bool = False) -> None:
        if not self._drops or (now - self._drops_logged < DROP_LOG_INTERVAL and not now_or_never):
            return
        log.warning(
            "closed slow or excess connections",
            extra={
                "fields": {
                    "dropped": dict(self._drops),
                    "open": self.nr_conns,
                    "cap": self.connection_cap,
                }
            },
        )
        self._drops.clear()
        self._drops_logged = now

    # -- the poller -----------------------------------------------------------------------------
    def _watch(self, conn: Connection, events: int) -> None:
        if conn.events == events:
            return
        if conn.events:
            self.poller.modify(conn.sock, events, conn.ready)
        else:
            self.poller.register(conn.sock, events, conn.ready)
        conn.events = events

    def _unwatch(self, conn: Connection) -> None:
        if conn.events:
            # Before the socket closes: the selector keys by descriptor number, which the next
            # accepted socket may reuse.
            self.poller.unregister(conn.sock)
            conn.events = 0


def _header_limit(cfg: Any) -> int:
    """Past this many bytes without the blank line, gunicorn refuses a request head (its
    limit_request_line plus limit_request_fields of limit_request_field_size): buffering more
    would not make it acceptable."""
    line = int(cfg.limit_request_line or 0)
    fields = int(cfg.limit_request_fields or 0)
    size = int(cfg.limit_request_field_size or 0)
    if line <= 0 or fields <= 0 or size <= 0:
        return HEADER_BUFFER_LIMIT
    return line + 2 + fields * (size + 2) + 4


def _fit_descriptor_limit(wanted: int) -> int:
    """The connection cap this process can hold: raise RLIMIT_NOFILE's soft limit towards what
    `wanted` connections need (up to the hard limit), and lower the cap to what it allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError):
            pass  # keep the soft limit we have, and fit the cap to it
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))
