"""Certificate rotation as the kubelet does it for the Secret volume of deploy/base/deployment.yaml:
the files are symlinks through `..data`, which is swapped in one rename to a new timestamped
directory. `guardrail serve` must serve the new pair with zero failed requests."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import requests

from tests.http.support import Server, as_json, make_certs, pod, review, start_server

DEADLINE = 30.0
FILES = ("tls.crt", "tls.key", "ca.crt")


class Client(threading.Thread):
    """Sends reviews, each over a new TLS connection, until stopped; records every failure."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.successes = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            doc = review(pod())
            try:
                reply = requests.post(self.server.url + "/validate", data=as_json(doc),
                                      headers={"Connection": "close"}, verify=self.server.ca,
                                      timeout=10)
                if reply.status_code == 200 and reply.json()["response"]["allowed"] is True:
                    self.successes += 1
                else:
                    self.failures.append(f"{reply.status_code}: {reply.text[:200]}")
            except (requests.RequestException, ValueError, KeyError) as exc:
                self.failures.append(repr(exc))


def _publish(volume: Path, source: Path, generation: int) -> None:
    """Write a new generation of the Secret's files like the kubelet's atomic writer."""
    version = volume / f"..2026_11_23_00_00_0{generation}.000000000"
    version.mkdir()
    for name in FILES:
        shutil.copy2(source / name, version / name)
    staged = volume / "..data_tmp"
    staged.symlink_to(version.name)
    old = os.readlink(volume / "..data") if (volume / "..data").is_symlink() else None
    staged.rename(volume / "..data")  # the one atomic step
    for name in FILES:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")
    if old is not None:
        shutil.rmtree(volume / old)


def _until(what: str, check: object) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached in {DEADLINE} s: {what}")


def test_secret_volume_rotation_is_served_without_failed_requests(tmp_path: Path) -> None:
    """Two rotations through the ..data symlink while requests flow: none fails, and new
    connections are served each new certificate."""
    issued = tmp_path / "issued"  # the admin's copy: guardrail certs keeps its CA there
    make_certs(issued)
    volume = tmp_path / "serve" / "certs"
    volume.mkdir(parents=True)
    _publish(volume, issued, 1)
    server = start_server(tmp_path / "serve", generate_certs=False)
    client = Client(server)
    try:
        assert server.served_fingerprint() == server.file_fingerprint()
        client.start()
        for generation in (2, 3):
            before = server.file_fingerprint()
            make_certs(issued)
            _publish(volume, issued, generation)
            after = server.file_fingerprint()
            assert after != before
            _until("new connections served the new certificate",
                   lambda after=after: all(server.served_fingerprint() == after
                                           for _ in range(6)))
            target = client.successes + 5
            _until("the client keeps succeeding", lambda target=target: client.successes >= target)
    finally:
        client.stopping.set()
        client.join(timeout=DEADLINE)
        code = server.stop()
    assert client.failures == []
    assert client.successes >= 10
    assert code == 0
    assert "Traceback" not in server.log()
