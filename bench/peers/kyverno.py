"""Kyverno's admission controller, built from its Go module, run outside the cluster.

One process, two subjects: the ClusterPolicy (JMESPath) and the ValidatingPolicy (CEL) of
bench/peers/manifests/kyverno/, each enforcing both rules with the NetworkPolicies read from
the cached globalContext entry `bench-netpols`. With `--serverIP` Kyverno registers its own
webhooks (URL clientConfig to that address, its own self-signed CA): the ConfigMap keeps them to
the two subjects' namespaces, the ValidatingPolicy's namespaceSelector and the ClusterPolicy's
webhook matchCondition each to its own. Settings are the Helm chart's defaults for the
admission controller, except: admission reports off (no report objects per request: Guardrail
and Gatekeeper write none, and the reports controller that would aggregate them is not run),
no generated ValidatingAdmissionPolicies (the API server would then judge in process instead of
Kyverno), every listener on 127.0.0.1, and controller-runtime's metrics listener off.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bench.peers import base, gobuild

BINARY = gobuild.GoBinary(
    name="kyverno",
    module="github.com/kyverno/kyverno",
    version="v1.19.0",
    package="cmd/kyverno",
    binary="kyverno",
    ldflags="-s -w -X github.com/kyverno/kyverno/pkg/version.BuildVersion=v1.19.0",
)
MANIFESTS = Path(__file__).resolve().parent / "manifests" / "kyverno"
NAMESPACE = "kyverno"
POLICY = "bench-guardrail-rules"
SERVICE = "kyverno-svc"
ENV = {
    "KYVERNO_NAMESPACE": NAMESPACE,
    "KYVERNO_POD_NAME": "kyverno-bench",
    "KYVERNO_DEPLOYMENT": "kyverno-admission-controller",
    "KYVERNO_SVC": SERVICE,
    "KYVERNO_SERVICEACCOUNT_NAME": "kyverno-admission-controller",
    "KYVERNO_ROLE_NAME": "kyverno:admission-controller",
    "INIT_CONFIG": "kyverno",
    "METRICS_CONFIG": "kyverno-metrics",
}


def crds(module: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((module / "config" / "crds").rglob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            docs += [
                d
                for d in yaml.safe_load_all(handle)
                if d and d.get("kind") == "CustomResourceDefinition"
            ]
    return docs


class Kyverno:
    name = "kyverno"
    version = BINARY.version
    subjects = ("kyverno-cp", "kyverno-vp")

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
        base.apply_files(cluster, MANIFESTS / "config.yaml", MANIFESTS / "globalcontextentry.yaml")
        port, metrics = base.free_port(), base.free_port()
        argv = [
            str(BINARY.path),
            f"--kubeconfig={cluster.kubeconfig}",
            # Kyverno writes its webhooks' URLs as https://<serverIP><path>: the port goes here.
            f"--serverIP=127.0.0.1:{port}",
            f"--servicePort={port}",
            "--webhookServerHost=127.0.0.1",
            f"--webhookServerPort={port}",
            f"--caSecretName={SERVICE}.{NAMESPACE}.svc.kyverno-tls-ca",
            f"--tlsSecretName={SERVICE}.{NAMESPACE}.svc.kyverno-tls-pair",
            "--tlsKeyAlgorithm=RSA",
            "--metricsHost=127.0.0.1",
            f"--metricsPort={metrics}",
            "--controllerRuntimeMetricsAddress=0",
            "--admissionReports=false",
            "--generateValidatingAdmissionPolicy=false",
            "--autoUpdateWebhooks=true",
            "--enableConfigMapCaching=true",
            "--enableDeferredLoading=true",
            "--omitEvents=PolicyApplied,PolicySkipped",
            "--loggingFormat=text",
            "--disableLogColor",
            "--v=2",
        ]
        with base.process("kyverno", argv, ctx.work, ENV) as proc:
            base.wait_until(
                lambda: base.https_ok(f"https://127.0.0.1:{port}/health/readiness", None),
                "kyverno /health/readiness",
                300,
                proc,
                ctx.work,
                "kyverno",
            )
            base.apply_files(
                cluster, MANIFESTS / "clusterpolicy.yaml", MANIFESTS / "validatingpolicy.yaml"
            )
            urls: dict[str, str] = {}
            ca = ctx.work / "kyverno-ca.crt"

            def registered() -> bool:
                found, bundle = self._registered(cluster)
                urls.update(found)
                if bundle:
                    ca.write_bytes(base64.b64decode(bundle))
                return set(urls) == {"kyverno-cp", "kyverno-vp"}

            base.wait_until(
                registered, "kyverno's webhooks for both policies", 300, proc, ctx.work, "kyverno"
            )
            settings = {"argv": ["kyverno", *argv[1:]], "env": ENV}
            try:
                yield [
                    base.Subject(
                        "kyverno-cp",
                        "Kyverno ClusterPolicy + globalContext",
                        proc.pid,
                        urls["kyverno-cp"],
                        ca,
                        settings=settings,
                    ),
                    base.Subject(
                        "kyverno-vp",
                        "Kyverno ValidatingPolicy + globalContext",
                        proc.pid,
                        urls["kyverno-vp"],
                        ca,
                        settings=settings,
                    ),
                ]
            finally:
                # Kyverno deletes its webhook configurations as it shuts down (SIGTERM, on exit
                # of this block); the policies go so that nothing of it outlives the run.
                cluster.kubectl("delete", "clusterpolicy,validatingpolicy", "--all", check=False)

    @staticmethod
    def _registered(cluster: base.Cluster) -> tuple[dict[str, str], str]:
        """The URL of the webhook Kyverno registered for each policy, and its CA bundle."""
        out = cluster.kubectl("get", "validatingwebhookconfigurations", "-o", "json")
        found: dict[str, str] = {}
        bundle = ""
        for config in json.loads(out.stdout)["items"]:
            for webhook in config.get("webhooks", []):
                url = webhook.get("clientConfig", {}).get("url", "")
                rules = webhook.get("rules", [])
                if not url or not any("pods" in r.get("resources", []) for r in rules):
                    continue
                bundle = webhook["clientConfig"].get("caBundle", bundle)
                if "/vpol/" in url and url.endswith(POLICY):
                    found["kyverno-vp"] = url
                elif "/validate/" in url and url.endswith(POLICY):
                    found["kyverno-cp"] = url
        return found, bundle
