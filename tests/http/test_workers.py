"""Connections spread over the workers, the one holding fewest accepting first.

Which worker holds a connection is read from /proc: the server's end of each client connection
(local port the server's, remote port the client's) is a socket inode, and a worker holds the
connections whose inodes are among its open descriptors.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
from collections import Counter
from pathlib import Path

from tests.http.support import Server, as_json, pod, review, wait_for

CONNECTIONS = 24


def _workers(master: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{master}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    return children


def _accepting(pid: int, server_port: int) -> bool:
    """Whether a worker's event loop watches the listening socket: it accepts connections."""
    listening = {
        fields[9]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if int(fields[1].rsplit(":", 1)[1], 16) == server_port and fields[3] == "0A"
    }
    listener_fds = set()
    polls = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in listening:
            listener_fds.add(fd.name)
        elif target == "anon_inode:[eventpoll]":
            polls.append(fd.name)
    for poll in polls:
        watched = {
            line.split()[1]
            for line in Path(f"/proc/{pid}/fdinfo/{poll}").read_text().splitlines()
            if line.startswith("tfd:")
        }
        if listener_fds & watched:
            return True
    return False


def _server_inodes(server_port: int) -> dict[int, str]:
    """The server's end of each established connection to server_port: client port -> inode."""
    ends: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == server_port and fields[3] == "01":  # 01: ESTABLISHED
                ends[int(fields[2].rsplit(":", 1)[1], 16)] = fields[9]
    return ends


def _holder(inode: str, workers: list[int]) -> int | None:
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None


class _Opened(http.client.HTTPSConnection):
    """An HTTPS connection over a TCP connection opened before it (a burst of connects)."""

    def __init__(self, raw: socket.socket, context: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", raw.getpeername()[1], context=context, timeout=30)
        self.raw = raw

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(self.raw, server_hostname="127.0.0.1")  # type: ignore[attr-defined]  # http.client's own context


def test_keepalive_connections_are_spread_over_the_workers(server: Server) -> None:
    """24 connections opened at once (all queued before a worker accepts one, as a client's
    burst), then each answered and kept alive, are held half by each worker of a 2-worker
    server (give or take the few a worker takes when its sibling does not within 5 ms), not
    all by the worker that woke first."""
    # /readyz answered once one worker was up; the other may still be starting.
    wait_for(
        "both workers to accept",
        lambda: (
            [_accepting(pid, server.port) for pid in _workers(server.process.pid)] == [True, True]
        ),
    )
    context = ssl.create_default_context(cafile=server.ca)
    raw = [socket.socket() for _ in range(CONNECTIONS)]
    for sock in raw:  # every SYN sent before any connection completes
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", server.port))
    for sock in raw:
        select.select([], [sock], [], 30)
        sock.setblocking(True)
        sock.settimeout(30)
    connections = [_Opened(sock, context) for sock in raw]
    try:
        for conn in connections:
            conn.request(
                "POST", "/validate", as_json(review(pod())), {"Content-Type": "application/json"}
            )
            reply = conn.getresponse()
            reply.read()
            assert reply.status == 200
            assert reply.getheader("Connection") == "keep-alive"
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        ends = _server_inodes(server.port)
        holders = Counter(
            _holder(ends[conn.sock.getsockname()[1]], workers) for conn in connections
        )
    finally:
        for conn in connections:
            conn.close()
        for sock in raw:
            sock.close()
    assert None not in holders, holders
    assert set(holders) == set(workers), holders
    assert sum(holders.values()) == CONNECTIONS
    assert max(holders.values()) <= CONNECTIONS // 2 + 4, holders
