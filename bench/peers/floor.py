"""The floor: bench/floor, an allow-all webhook in Go (net/http, TLS), registered like Guardrail."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench.peers import base, gobuild

SOURCE = Path(__file__).resolve().parents[1] / "floor"


class Floor:
    name = "floor"
    version = "bench/floor"
    subjects = ("floor",)

    def __init__(self) -> None:
        self.binary: Path | None = None

    def build(self, log: base.Log) -> dict[str, Any]:
        self.binary, info = gobuild.build_local("floor", SOURCE, log)
        return info

    @contextlib.contextmanager
    def start(self, ctx: base.Context) -> Iterator[list[base.Subject]]:
        assert self.binary is not None, "build() first"
        port = base.free_port()
        argv = [str(self.binary), f"-cert-dir={ctx.cert_dir}", f"-bind=127.0.0.1:{port}"]
        url = f"https://127.0.0.1:{port}/validate"
        with base.process("floor", argv, ctx.work) as proc:
            ca = ctx.cert_dir / "ca.crt"
            base.wait_until(
                lambda: base.https_ok(f"https://127.0.0.1:{port}/healthz", ca),
                "the floor's /healthz",
                30,
                proc,
                ctx.work,
                "floor",
            )
            config = base.webhook_configuration("bench-floor", "floor", url, ctx.ca_bundle)
            base.apply(ctx.cluster, config)
            try:
                yield [
                    base.Subject(
                        "floor",
                        "Go floor (allow-all)",
                        proc.pid,
                        url,
                        ctx.cert_dir / "ca.crt",
                        judges=False,
                        settings={"argv": argv[1:], "GOMAXPROCS": "default (nproc)"},
                    )
                ]
            finally:
                ctx.cluster.kubectl(
                    "delete", "validatingwebhookconfiguration", "bench-floor", check=False
                )


def served(url: str, ca: Path) -> int:
    """How many reviews the floor has answered (its /stats)."""
    stats = requests.get(url.replace("/validate", "/stats"), verify=str(ca), timeout=2)
    return int(json.loads(stats.text)["reviews"])
