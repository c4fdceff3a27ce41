"""The peer: kopf's admission server with a `require-role-labels` validating handler.

kopf serves admission webhooks from its own aiohttp server (`kopf.WebhookServer`), calling
`serve_admission_request` with the operator's registry, exactly as `kopf.run` wires it. A full
operator would also list the cluster's API resources first; here the three resources the
benchmark sends are declared instead, so no API server is needed. Same certificates as
Guardrail; one process (kopf is single-process asyncio).

    python bench/kopf_peer.py --cert-dir DIR --bind 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
from kopf._cogs.structs import ephemera, references
from kopf._core.engines import admission, indexing
from kopf._core.reactor import inventory

REQUIRED = ("app", "role")
TEMPLATED = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"}

RESOURCES = (
    references.Resource("", "v1", "pods", kind="Pod", singular="pod", namespaced=True),
    references.Resource(
        "apps", "v1", "deployments", kind="Deployment", singular="deployment", namespaced=True
    ),
    references.Resource(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        kind="NetworkPolicy",
        singular="networkpolicy",
        namespaced=True,
    ),
)


def build_registry() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    def check(body: Mapping[str, Any], **_: Any) -> None:
        kind = body.get("kind", "")
        meta = body.get("metadata", {})
        labels = meta.get("labels") or {}
        if kind in TEMPLATED:
            labels = ((body.get("spec") or {}).get("template") or {}).get("metadata", {})
            labels = labels.get("labels") or {}
        missing = [key for key in REQUIRED if not labels.get(key)]
        if missing:
            raise kopf.AdmissionError(
                f'[require-role-labels] {kind} "{meta.get("name", "")}" in namespace '
                f'"{meta.get("namespace", "")}" is missing required labels: '
                f"{', '.join(missing)}. Add them under metadata.labels.",
                code=403,
            )

    kopf.on.validate("v1", "pods", id="pods", registry=registry)(check)
    kopf.on.validate("apps", "v1", "deployments", id="deployments", registry=registry)(check)
    return registry


async def serve(cert_dir: Path, host: str, port: int) -> None:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False  # no cluster to post events to
    registry = build_registry()
    insights = references.Insights()
    insights.webhook_resources.update(RESOURCES)
    webhookfn = functools.partial(
        admission.serve_admission_request,
        settings=settings,
        registry=registry,
        insights=insights,
        memories=inventory.ResourceMemories(),
        memobase=ephemera.AnyMemo(ephemera.Memo()),
        indices=indexing.OperatorIndexers().indices,
    )

    async def fn(request: Any, **kwargs: Any) -> Any:
        # kopf routes POST /<handler-id> to that handler only; the API server here calls one
        # URL, /validate, for every resource, so every matching handler runs.
        kwargs["webhook"] = None
        return await webhookfn(request, **kwargs)

    server = kopf.WebhookServer(
        addr=host,
        port=port,
        certfile=str(cert_dir / "tls.crt"),
        pkeyfile=str(cert_dir / "tls.key"),
    )
    async for _config in server(fn):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", required=True, type=Path)
    parser.add_argument("--bind", required=True)
    args = parser.parse_args()
    host, _, port = args.bind.rpartition(":")
    # kopf's default handler log lines ("Handler ... succeeded") cost a formatted line per
    # request; Guardrail has no access log either.
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.cert_dir, host, int(port)))


if __name__ == "__main__":
    main()
