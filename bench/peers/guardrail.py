"""Guardrail as the benchmark runs it: `guardrail serve --kubeconfig`, every policy on, defaults."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.peers import base


class Guardrail:
    name = "guardrail"
    version = "this checkout"
    subjects = ("guardrail",)

    def build(self, log: base.Log) -> dict[str, Any]:
        del log  # nothing to build: the venv's console script
        return {}

    @contextlib.contextmanager
    def start(self, ctx: base.Context) -> Iterator[list[base.Subject]]:
        port = base.free_port()
        argv = [
            str(Path(sys.executable).parent / "guardrail"),
            "serve",
            f"--kubeconfig={ctx.cluster.kubeconfig}",
            f"--cert-dir={ctx.cert_dir}",
            f"--bind=127.0.0.1:{port}",
            f"--workers={ctx.workers}",
            f"--threads={ctx.threads}",
        ]
        url = f"https://127.0.0.1:{port}/validate"
        with base.process("guardrail", argv, ctx.work) as proc:
            base.wait_until(
                lambda: base.https_ok(f"https://127.0.0.1:{port}/readyz", ctx.cert_dir / "ca.crt"),
                "guardrail /readyz",
                90,
                proc,
                ctx.work,
                "guardrail",
            )
            config = base.webhook_configuration("bench-guardrail", "guardrail", url, ctx.ca_bundle)
            base.apply(ctx.cluster, config)
            try:
                yield [
                    base.Subject(
                        "guardrail",
                        "Guardrail",
                        proc.pid,
                        url,
                        ctx.cert_dir / "ca.crt",
                        settings={"argv": ["guardrail", *argv[1:]]},
                    )
                ]
            finally:
                ctx.cluster.kubectl(
                    "delete", "validatingwebhookconfiguration", "bench-guardrail", check=False
                )
