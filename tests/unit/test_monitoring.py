"""deploy/components/monitoring, rendered by `kubectl kustomize` into an admin's overlay: the
PodMonitor scrapes the pods deploy/ runs, over TLS for the name their certificate carries, and
every alert of the PrometheusRule parses, waits (`for:`), has a severity and a runbook that
exists, and selects only series Guardrail exports, by labels they carry."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from webhook.certs import service_dns_names

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
COMPONENT = "deploy/components/monitoring"
# What Prometheus adds to every series of a PodMonitor's target (and `up`, its own).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint"}
SEVERITIES = {"critical", "warning"}

Doc = dict[str, Any]


def _render(overlay: Path) -> list[Doc]:
    done = subprocess.run(
        [KUBECTL, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _overlay(tmp: Path, base: str, with_component: bool) -> Path:
    """An admin's overlay of `base` (a directory of deploy/), as the README writes it."""
    if not (tmp / "deploy").exists():
        shutil.copytree(REPO / "deploy", tmp / "deploy", ignore=shutil.ignore_patterns("tls"))
    overlay = tmp / f"mine-{base.replace('/', '-')}-{with_component}"
    overlay.mkdir()
    lines = [
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        f"resources: [../{base}]",
    ]
    if with_component:
        lines.append(f"components: [../{COMPONENT}]")
    (overlay / "kustomization.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return overlay


OVERLAYS = ("deploy", "deploy/overlays/cert-manager")


@pytest.fixture(scope="module", params=OVERLAYS, ids=["self-managed", "cert-manager"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    return _render(_overlay(tmp_path_factory.mktemp("monitoring"), request.param, True))


def _one(docs: list[Doc], kind: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)} rendered"
    return found[0]


def test_the_install_without_the_component_needs_no_prometheus_operator(tmp_path: Path) -> None:
    """`kubectl apply -k deploy/` must work on a cluster without the operator's CRDs."""
    for base in OVERLAYS:
        docs = _render(_overlay(tmp_path, base, False))
        assert [d["kind"] for d in docs if d["apiVersion"].startswith("monitoring.")] == []


# -- the PodMonitor ------------------------------------------------------------------------------
def test_the_pod_monitor_scrapes_every_guardrail_pod_over_verified_tls(rendered: list[Doc]) -> None:
    monitor = _one(rendered, "PodMonitor")
    deployment = _one(rendered, "Deployment")
    service = _one(rendered, "Service")
    pod = deployment["spec"]["template"]
    namespace = deployment["metadata"]["namespace"]
    assert monitor["metadata"]["namespace"] == namespace
    # It selects the Deployment's pods, on the port that serves /metrics.
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    assert endpoint["port"] in ports
    assert (endpoint["scheme"], endpoint["path"]) == ("https", "/metrics")
    # Verified: the CA of the Secret the install fills (self-managed: Guardrail; cert-manager:
    # its Certificate), for a name the serving certificate has.
    tls = endpoint["tlsConfig"]
    assert "insecureSkipVerify" not in tls
    assert tls["ca"]["secret"]["key"] == "ca.crt"
    secret_name = tls["ca"]["secret"]["name"]
    filled = {d["metadata"]["name"] for d in rendered if d["kind"] == "Secret"} | {
        d["spec"]["secretName"] for d in rendered if d["kind"] == "Certificate"
    }
    assert secret_name in filled
    assert tls["serverName"] in service_dns_names(service["metadata"]["name"], namespace)
    # job="guardrail", the job every alert selects: the pods' label that jobLabel names.
    assert pod["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "guardrail"
    # The violations' own `namespace` label (the object's) must not become exported_namespace.
    assert endpoint["honorLabels"] is True


# -- the alerts ----------------------------------------------------------------------------------
def exported_metrics() -> dict[str, set[str]]:
    """Every series name Guardrail's code can export and its labels, read from the
    prometheus_client constructors in webhook/ (Counter -> NAME_total, Histogram -> _bucket ...)."""
    series: dict[str, set[str]] = {}
    for path in (REPO / "webhook").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            kind = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and str(first.value).startswith("guardrail_")):
                continue
            name = str(first.value)
            labels_node = node.args[2] if len(node.args) > 2 else None
            for keyword in node.keywords:
                if keyword.arg == "labelnames":
                    labels_node = keyword.value
            labels = set()
            if isinstance(labels_node, ast.Tuple | ast.List):
                labels = {str(e.value) for e in labels_node.elts if isinstance(e, ast.Constant)}
            if kind.endswith("Counter"):
                names = {f"{name.removesuffix('_total')}_total"}
            elif kind.endswith("Histogram"):
                names = {f"{name}_count", f"{name}_sum"}
                series[f"{name}_bucket"] = labels | {"le"}
            elif kind.endswith("Gauge"):
                names = {name}
            else:
                continue
            for each in names:
                series[each] = labels
    return series


def test_the_metric_reader_finds_what_the_app_defines() -> None:
    """The reader above is not vacuous: it sees the metrics README's table documents."""
    series = exported_metrics()
    assert series["guardrail_violations_total"] == {"policy", "mode", "kind", "namespace"}
    assert series["guardrail_request_duration_seconds_bucket"] == {"le"}
    assert series["guardrail_cache_synced"] == set()
    assert "guardrail_serving_certificate_expiry_timestamp_seconds" in series
    assert "guardrail_connections_dropped_total" in series


def _rules(rendered: list[Doc]) -> Iterator[Doc]:
    rule = _one(rendered, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        yield from group["rules"]


def _selectors(expr: str) -> list[tuple[str, dict[str, str], set[str]]]:
    """(metric, its equality matchers, label names it is grouped by) of every selector."""
    found: list[tuple[str, dict[str, str], set[str]]] = []
    grouped: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouped.update(node.modifier.labels)
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {m.name: m.value for m in node.matchers.matchers}
            found.append((node.name, matchers, grouped))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_alert_is_complete_and_reads_only_what_guardrail_exports(
    rendered: list[Doc],
) -> None:
    series = exported_metrics()
    anchors = _anchors((REPO / "README.md").read_text(encoding="utf-8"))
    alerts = list(_rules(rendered))
    names = [a["alert"] for a in alerts]
    assert len(set(names)) == len(names)
    for alert in alerts:
        name = alert["alert"]
        assert re.fullmatch(r"Guardrail[A-Z][A-Za-z]+", name), name
        assert promql_parser.parse_duration(alert["for"]).total_seconds() > 0, name
        assert alert["labels"]["severity"] in SEVERITIES, name
        notes = alert["annotations"]
        assert notes["summary"], name
        assert notes["description"], name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page.endswith("/README.md"), name
        assert anchor in anchors, f"{name}: README has no section #{anchor}"
        selectors = _selectors(alert["expr"])
        assert selectors, name
        for metric, matchers, grouped in selectors:
            assert metric == "up" or metric in series, f"{name}: {metric} is not exported"
            # Only Guardrail's own series: every selector names the job.
            assert matchers.get("job") == "guardrail", f"{name}: {metric} without job"
            known = (series.get(metric, set()) | TARGET_LABELS) if metric != "up" else TARGET_LABELS
            assert set(matchers) <= known, f"{name}: {metric} has no label {set(matchers) - known}"
            assert grouped <= known | {"le"}, f"{name}: grouped by {grouped - known}"


def test_the_alerts_an_operator_needs_are_there(rendered: list[Doc]) -> None:
    """Webhook down or not ready, cache stale, judgement errors, denials spiking, certificate
    near expiry: each has an alert on the metric that shows it."""
    exprs = {a["alert"]: a["expr"] for a in _rules(rendered)}
    wanted = {
        "GuardrailDown": "up",
        "GuardrailNotReady": "guardrail_cache_synced",
        "GuardrailCacheStale": "guardrail_cache_age_seconds",
        "GuardrailJudgementErrors": "guardrail_judgement_errors_total",
        "GuardrailDenialsSpiking": "guardrail_violations_total",
        "GuardrailCertificateExpiresSoon": "guardrail_serving_certificate_expiry_timestamp_seconds",
    }
    for alert, metric in wanted.items():
        assert alert in exprs
        assert metric in {selector[0] for selector in _selectors(exprs[alert])}, alert


def test_a_broken_expression_or_an_unknown_metric_is_caught() -> None:
    """The checks above reject what Prometheus would reject or never match."""
    with pytest.raises(ValueError, match="parenthesis"):
        _selectors('sum(rate(guardrail_judgement_errors_total{job="guardrail"}[5m])')
    [(metric, _, _)] = _selectors('guardrail_cache_sync{job="guardrail"} == 0')
    assert metric not in exported_metrics()
