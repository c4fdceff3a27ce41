"""OPA Gatekeeper, built from its Go module, run outside the cluster against the e2e API server.

Its CRDs come from the module's own deploy/gatekeeper.yaml; bench/peers/manifests/gatekeeper/
holds the two constraint templates (k8srequiredlabels, and k8sdefaultdeny over the
NetworkPolicies its Config syncs), their constraints and the Config. It runs as the upstream
controller-manager Deployment's webhook pods do (`--operation=webhook`, `--exempt-namespace`,
`--disable-opa-builtin={http.send}`), plus `--operation=generate` (making the constraint CRDs,
which the audit Deployment does upstream; no audit and no status aggregation run), less what
needs a cluster: no certificate rotation (it serves the benchmark's certificate from
`--cert-dir`, and the benchmark registers it), every listener on 127.0.0.1, no mutation webhook.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bench.peers import base, gobuild

BINARY = gobuild.GoBinary(
    name="gatekeeper",
    module="github.com/open-policy-agent/gatekeeper/v3",
    version="v3.23.1",
    package="",
    binary="gatekeeper",
    ldflags="-X github.com/open-policy-agent/gatekeeper/v3/pkg/version.Version=v3.23.1",
)
MANIFESTS = Path(__file__).resolve().parent / "manifests" / "gatekeeper"
NAMESPACE = "gatekeeper-system"
TEMPLATES = ("k8srequiredlabels", "k8sdefaultdeny")
POD = "gatekeeper-bench"


def crds(module: Path) -> list[dict[str, Any]]:
    with (module / "deploy" / "gatekeeper.yaml").open(encoding="utf-8") as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc]
    return [doc for doc in docs if doc.get("kind") == "CustomResourceDefinition"]


def own_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": NAMESPACE},
        "spec": {
            "containers": [{"name": "manager", "image": "openpolicyagent/gatekeeper:v3.23.1"}]
        },
    }


class Gatekeeper:
    name = "gatekeeper"
    version = BINARY.version
    subjects = ("gatekeeper",)

    def build(self, log: base.Log) -> dict[str, Any]:
        BINARY.ensure(log)
        return BINARY.build_info()

    @contextlib.contextmanager
    def start(self, ctx: base.Context) -> Iterator[list[base.Subject]]:
        cluster = ctx.cluster
        module = gobuild.module_dir(BINARY.module, BINARY.version)
        base.install_crds(cluster, crds(module))
        base.apply(
            cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        )
        # Gatekeeper owns its per-pod status objects by its own Pod (POD_NAME): the harness has
        # no kubelet, so the Pod is only an object, never run.
        base.apply(cluster, own_pod())
        port, health, prometheus = base.free_port(), base.free_port(), base.free_port()
        argv = [
            str(BINARY.path),
            f"--kubeconfig={cluster.kubeconfig}",
            "--operation=webhook",
            # Making each template's constraint CRD is the audit pod's job upstream (its
            # `--operation=generate`); this process does it, once, instead of a second one.
            "--operation=generate",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--cert-dir={ctx.cert_dir}",
            "--disable-cert-rotation",
            f"--health-addr=127.0.0.1:{health}",
            "--metrics-addr=0",
            f"--prometheus-port={prometheus}",
            f"--exempt-namespace={NAMESPACE}",
            "--disable-opa-builtin={http.send}",
        ]
        env = {
            "POD_NAMESPACE": NAMESPACE,
            "POD_NAME": POD,
            "CONTAINER_NAME": "manager",
        }
        url = f"https://127.0.0.1:{port}/v1/admit"
        with base.process("gatekeeper", argv, ctx.work, env) as proc:
            base.wait_until(
                lambda: base.https_ok(f"http://127.0.0.1:{health}/readyz", None),
                "gatekeeper /readyz",
                180,
                proc,
                ctx.work,
                "gatekeeper",
            )
            base.apply_files(
                cluster, MANIFESTS / "config.yaml", *(MANIFESTS / f"{t}.yaml" for t in TEMPLATES)
            )
            base.wait_until(
                lambda: all(self._template_created(cluster, t) for t in TEMPLATES),
                "gatekeeper's constraint templates to be created",
                180,
                proc,
                ctx.work,
                "gatekeeper",
            )
            # Enforcement itself is proven by the benchmark's probe: a Pod without labels denied.
            base.apply_files(cluster, MANIFESTS / "constraints.yaml")
            config = base.webhook_configuration(
                "bench-gatekeeper", "gatekeeper", url, ctx.ca_bundle
            )
            base.apply(cluster, config)
            try:
                yield [
                    base.Subject(
                        "gatekeeper",
                        f"Gatekeeper {BINARY.version}",
                        proc.pid,
                        url,
                        ctx.cert_dir / "ca.crt",
                        settings={"argv": ["gatekeeper", *argv[1:]], "env": env},
                    )
                ]
            finally:
                cluster.kubectl(
                    "delete", "validatingwebhookconfiguration", "bench-gatekeeper", check=False
                )

    @staticmethod
    def _template_created(cluster: base.Cluster, name: str) -> bool:
        """Gatekeeper has compiled the template and made its constraint kind's CRD."""
        out = cluster.kubectl(
            "get", "crd", f"{name}.constraints.gatekeeper.sh", "-o", "json", check=False
        )
        if out.returncode != 0:
            return False
        conditions = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
