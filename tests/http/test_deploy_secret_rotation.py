"""Certificate rotation as the kubelet does it for the Secret volume that the overlays with
certificates of their own mount (deploy/components/certificate-files: cert-manager,
self-signed): the files are symlinks through `..data`, which is swapped in one rename to a new
timestamped directory. `guardrail serve` must serve the new pair with zero failed requests."""

from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path

from tests.http.support import (
    NewConnectionClient,
    make_certs,
    serves_certificate,
    start_server,
    succeeded,
    wait_for,
)

FILES = ("tls.crt", "tls.key", "ca.crt")


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


def test_secret_volume_rotation_is_served_without_failed_requests(tmp_path: Path) -> None:
    """Two rotations through the ..data symlink while requests flow: none fails, and new
    connections are served each new certificate."""
    issued = tmp_path / "issued"  # the admin's copy: guardrail certs keeps its CA there
    make_certs(issued)
    volume = tmp_path / "serve" / "certs"
    volume.mkdir(parents=True)
    _publish(volume, issued, 1)
    server = start_server(tmp_path / "serve", generate_certs=False)
    client = NewConnectionClient(server)
    try:
        assert server.served_fingerprint() == server.file_fingerprint()
        client.start()
        for generation in (2, 3):
            before = server.file_fingerprint()
            make_certs(issued)
            _publish(volume, issued, generation)
            after = server.file_fingerprint()
            assert after != before
            wait_for(
                "new connections served the new certificate",
                partial(serves_certificate, server, after),
            )
            wait_for(
                "the client keeps succeeding", partial(succeeded, client, client.successes + 5)
            )
    finally:
        client.stop()
        code = server.stop()
    assert client.failures == []
    assert client.successes >= 10
    assert code == 0
    assert "Traceback" not in server.log()
