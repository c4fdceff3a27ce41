"""Reports in the cluster and from `check` hold every result: a scope with more than one report
can hold is split into parts, results are filed in the same report offline and live, the
parts are kept current by the writer, OpenReports reports state their limits, and every
field reaches etcd."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from webhook import audit
from webhook.audit import AuditResult
from webhook.checking import CheckResult
from webhook.cli import main
from webhook.config import parse_config
from webhook.policy.model import Finding, Mode, Violation
from webhook.report import Resource, policyreport, render
from webhook.report.policyreport import (
    MAX_MESSAGE_CHARS,
    MAX_RESULT_BYTES_PER_REPORT,
    MAX_RESULTS_PER_REPORT,
    OPENREPORTS,
    WGPOLICY,
    ReportApi,
    Subject,
    cluster_reports,
)
from webhook.reports import key_of, plan, write_reports

FIXTURES = Path(__file__).resolve().parents[1] / "e2e" / "fixtures"
ETCD_LIMIT = 1_572_864  # etcd's default --max-request-bytes (1.5 MiB)
APIS = pytest.mark.parametrize("api", [WGPOLICY, OPENREPORTS], ids=["wgpolicyk8s", "openreports"])


def pod_violation(namespace: str, name: str, message: str = "") -> Violation:
    text = message or f'[require-role-labels] Pod "{name}" in namespace "{namespace}" has no role'
    return Violation(
        Finding("require-role-labels", "Pod", namespace, name, text, text[:119]), Mode.ENFORCE
    )


def names(document: Mapping[str, Any]) -> list[str]:
    return [r["resources"][0]["name"] for r in document["results"]]


def where(document: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = document["metadata"]
    return document["kind"], meta.get("namespace", ""), meta["name"]


# -- splitting ---------------------------------------------------------------------------------
@APIS
def test_a_scope_over_the_result_limit_is_split_into_parts_holding_every_result(
    api: ReportApi,
) -> None:
    """2,500 results in one namespace are three labelled reports of 1,000, 1,000 and 500, in
    order, each counting its own; a namespace that fits keeps its one report."""
    violations = [pod_violation("big", f"p{i:04d}") for i in range(2500)]
    violations.append(pod_violation("small", "only"))
    docs = cluster_reports(violations, {}, now=0.0, api=api)
    assert [where(d) for d in docs] == [
        (api.kind, "big", "guardrail-big"),
        (api.kind, "big", "guardrail-big-2"),
        (api.kind, "big", "guardrail-big-3"),
        (api.kind, "small", "guardrail-small"),
    ]
    assert [len(d["results"]) for d in docs] == [1000, 1000, 500, 1]
    assert [d["summary"]["fail"] for d in docs] == [1000, 1000, 500, 1]
    assert [n for d in docs[:3] for n in names(d)] == [f"p{i:04d}" for i in range(2500)]
    assert [d["metadata"]["labels"] for d in docs] == [
        {
            "app.kubernetes.io/managed-by": "guardrail",
            "guardrail.dev/scope": scope,
            "guardrail.dev/part": part,
        }
        for scope, part in (("big", "1"), ("big", "2"), ("big", "3"), ("small", "1"))
    ]
    assert not any("annotations" in d["metadata"] for d in docs)  # nothing cut, nothing to say


def test_the_cluster_scope_is_split_too() -> None:
    """Cluster-scoped results over the limit are ClusterPolicyReports guardrail-cluster, -2."""
    violations = [
        Violation(
            Finding("restrict-allow-all", "GlobalNetworkPolicy", "", f"g{i}", "open", "open"),
            Mode.WARN,
        )
        for i in range(1001)
    ]
    docs = cluster_reports(violations, {}, now=0.0)
    assert [where(d) for d in docs] == [
        ("ClusterPolicyReport", "", "guardrail-cluster"),
        ("ClusterPolicyReport", "", "guardrail-cluster-2"),
    ]
    assert [d["metadata"]["labels"]["guardrail.dev/scope"] for d in docs] == ["cluster"] * 2
    assert [d["summary"]["warn"] for d in docs] == [1000, 1]


@APIS
def test_long_messages_split_on_bytes_before_the_result_count(api: ReportApi) -> None:
    """400 results of 5,000-character messages (2 MB) never make a report etcd would refuse:
    the parts stay under the byte budget though each holds far fewer than 1,000 results."""
    message = "[require-role-labels] " + "é" * 2500 + "x" * 2478
    violations = [pod_violation("wordy", f"p{i:03d}", message) for i in range(400)]
    docs = cluster_reports(violations, {}, now=1700000000.0, api=api)
    assert len(docs) > 2
    assert all(len(d["results"]) < MAX_RESULTS_PER_REPORT for d in docs)
    for doc in docs:
        results = json.dumps(doc["results"], ensure_ascii=False, separators=(",", ":"))
        assert len(results.encode()) <= MAX_RESULT_BYTES_PER_REPORT
        assert len(json.dumps(doc, ensure_ascii=False).encode()) < ETCD_LIMIT
    assert [n for d in docs for n in names(d)] == [f"p{i:03d}" for i in range(400)]
    assert all(r["message"] == message for d in docs for r in d["results"])
    assert sum(d["summary"]["fail"] for d in docs) == 400


def test_a_message_too_long_for_any_report_is_cut_and_says_so() -> None:
    """A hostile million-character message (control characters, six bytes each in JSON) is
    cut in the report, which says how long it was and where to read all of it."""
    message = "[require-role-labels] " + "\x01" * 1_000_000
    docs = cluster_reports([pod_violation("evil", "p", message)], {}, now=0.0)
    ((result,),) = [d["results"] for d in docs]
    assert result["message"] == (
        message[:MAX_MESSAGE_CHARS] + "… (message cut to fit a report: 1,000,022 characters; "
        "guardrail audit --format json prints all of it)"
    )
    assert len(json.dumps(docs[0]).encode()) < MAX_RESULT_BYTES_PER_REPORT


def test_fifty_thousand_results_in_one_namespace_are_split_measuring_each_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hostile size: 50,000 results, offline and live, are 50 parts of 1,000 that hold them all,
    and the split measures each result once (no re-measuring a growing part)."""
    measured: list[int] = []
    real = policyreport.result_bytes

    def counting(result: Mapping[str, Any]) -> int:
        measured.append(1)
        return real(result)

    monkeypatch.setattr(policyreport, "result_bytes", counting)
    count = 50_000
    violations = [pod_violation("huge", f"p{i:05d}") for i in range(count)]
    live = cluster_reports(violations, {}, now=0.0)
    assert len(measured) == count
    offline = policyreport.reports(
        CheckResult(
            resources=count,
            violations=violations,
            judged=[
                Resource("v1", "Pod", "huge", f"p{i:05d}", "pods.yaml", i) for i in range(count)
            ],
        )
    )
    assert len(measured) == 2 * count
    for docs in (live, offline):
        assert [d["metadata"]["name"] for d in docs] == ["guardrail-huge"] + [
            f"guardrail-huge-{n}" for n in range(2, 51)
        ]
        assert {len(d["results"]) for d in docs} == {1000}
        assert sum(d["summary"]["fail"] for d in docs) == count
        assert len({n for d in docs for n in names(d)}) == count


# -- the same report offline and live ----------------------------------------------------------
def test_check_and_audit_file_each_finding_in_the_same_report() -> None:
    """A namespace's missing default-deny is in that namespace's own PolicyReport in both
    `check --format policyreport` and the live audit; cluster-scoped findings in the
    ClusterPolicyReport; a pod's in its namespace's."""
    gap = '[require-default-deny] Namespace "shop" has no default-deny network policy'
    violations = [
        Violation(Finding("require-default-deny", "Namespace", "", "shop", gap, gap), Mode.ENFORCE),
        pod_violation("shop", "web"),
        Violation(
            Finding("restrict-allow-all", "GlobalNetworkPolicy", "", "open", "open", "open"),
            Mode.WARN,
        ),
    ]
    judged = [
        Resource("v1", "Namespace", "", "shop", "ns.yaml", 1),
        Resource("v1", "Pod", "shop", "web", "web.yaml", 1),
        Resource("projectcalico.org/v3", "GlobalNetworkPolicy", "", "open", "gnp.yaml", 1),
    ]
    offline = list(
        yaml.safe_load_all(
            render(CheckResult(resources=3, violations=violations, judged=judged), "policyreport")
        )
    )
    live = cluster_reports(violations, {}, now=0.0)

    def placement(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
        return {
            where(d): [f"{r['policy']} {r['resources'][0]['name']}" for r in d["results"]]
            for d in docs
        }

    assert (
        placement(offline)
        == placement(live)
        == {
            ("PolicyReport", "shop", "guardrail-shop"): [
                "require-default-deny shop",
                "require-role-labels web",
            ],
            ("ClusterPolicyReport", "", "guardrail-cluster"): ["restrict-allow-all open"],
        }
    )


def test_check_and_audit_of_the_same_objects_file_findings_in_the_same_reports(
    tmp_path: Path,
) -> None:
    """The same objects through `guardrail check --format policyreport` and through the live
    audit's judging: an empty namespace's missing default-deny is in its own report in both."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "quiet"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "shop"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
        },
    ]
    manifest = tmp_path / "all.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    checked = CliRunner().invoke(main, ["check", "--format", "policyreport", str(manifest)])
    assert checked.exit_code == 1, checked.output
    offline = list(yaml.safe_load_all(checked.stdout))
    judged = audit.audit_objects(objects, parse_config({}, "<test>"))
    live = audit.reports(judged, api=WGPOLICY, now=0.0)

    def placement(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
        return {
            where(d): [
                f"{r['policy']} {r['resources'][0]['kind']} {r['resources'][0]['name']}"
                for r in d["results"]
            ]
            for d in docs
        }

    assert (
        placement(offline)
        == placement(live)
        == {
            ("PolicyReport", "quiet", "guardrail-quiet"): ["require-default-deny Namespace quiet"],
            ("PolicyReport", "shop", "guardrail-shop"): ["require-role-labels Pod web"],
        }
    )


def test_check_gives_a_judged_namespace_its_own_report_not_an_empty_cluster_report() -> None:
    """A clean Namespace in the input gets its (empty) PolicyReport; no ClusterPolicyReport
    appears when nothing cluster-scoped other than Namespaces was judged."""
    clean = CheckResult(
        resources=1, judged=[Resource("v1", "Namespace", "", "quiet", "ns.yaml", 1)]
    )
    docs = list(yaml.safe_load_all(render(clean, "policyreport")))
    assert [(where(d), d["results"]) for d in docs] == [
        (("PolicyReport", "quiet", "guardrail-quiet"), [])
    ]


# -- OpenReports' configuration, and what the API server keeps ------------------------------
@pytest.mark.parametrize(
    ("include_passes", "statuses"),
    [(False, ["fail", "warn"]), (True, ["pass", "fail", "warn"])],
    ids=["failures-only", "with-passes"],
)
def test_openreports_reports_state_their_limit_and_status_filter(
    include_passes: bool, statuses: list[str]
) -> None:
    """Every OpenReports part carries configuration.limits: maxResults and which statuses it
    lists (passes only with --include-passes, even when nothing passed)."""
    violations = [pod_violation("big", f"p{i}") for i in range(1001)]
    docs = cluster_reports(violations, {}, now=0.0, api=OPENREPORTS, include_passes=include_passes)
    assert [d["configuration"] for d in docs] == [
        {"limits": {"maxResults": 1000, "statusFilter": statuses}}
    ] * 2


def test_audit_reports_say_passes_are_listed_when_asked_for_them() -> None:
    """`audit --include-passes` makes the reports say they list passes, whatever passed."""
    result = AuditResult(violations=[pod_violation("shop", "web")], include_passes=True)
    (doc,) = audit.reports(result, api=OPENREPORTS, now=0.0)
    assert doc["configuration"]["limits"]["statusFilter"] == ["pass", "fail", "warn"]
    (plain,) = audit.reports(
        AuditResult(violations=[pod_violation("shop", "web")]), api=OPENREPORTS, now=0.0
    )
    assert plain["configuration"]["limits"]["statusFilter"] == ["fail", "warn"]


def test_policyreports_have_no_configuration() -> None:
    """wgpolicyk8s.io reports have no configuration field (the API server would drop it)."""
    (doc,) = cluster_reports([pod_violation("a", "b")], {}, now=0.0, include_passes=True)
    assert "configuration" not in doc


def _crd_schemas(fixture: str) -> dict[str, Any]:
    crds = yaml.safe_load_all((FIXTURES / fixture).read_text())
    return {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in crds
        if crd
    }


def _unknown_fields(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    """Fields the API server would prune (not in the schema), or values outside an enum."""
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict) and path != ".metadata":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            inner = properties.get(key, extra)
            if not isinstance(inner, Mapping):
                yield f"{path}.{key}"
            else:
                yield from _unknown_fields(item, inner, f"{path}.{key}")
        for key in schema.get("required", ()):
            if key not in value:
                yield f"{path}.{key}: required"
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unknown_fields(item, schema.get("items", {}), f"{path}[{index}]")


@pytest.mark.parametrize(
    ("api", "fixture"),
    [(WGPOLICY, "wgpolicyk8s-policyreport-crds.yaml"), (OPENREPORTS, "openreports-crds.yaml")],
    ids=["wgpolicyk8s", "openreports"],
)
def test_every_field_of_a_split_report_is_in_its_crd(api: ReportApi, fixture: str) -> None:
    """Namespaced and cluster parts, with passes, use only fields and values the CRDs the
    e2e tier installs declare: nothing is pruned on the way into etcd."""
    schemas = _crd_schemas(fixture)
    violations = [pod_violation("big", f"p{i}") for i in range(1001)]
    violations.append(
        Violation(
            Finding("restrict-allow-all", "GlobalNetworkPolicy", "", "g", "m", "m"), Mode.WARN
        )
    )
    passes = [("require-role-labels", Subject("v1", "Pod", "big", "fine", "uid-fine"))]
    docs = cluster_reports(violations, {}, now=1.0, passes=passes, api=api)
    assert {d["kind"] for d in docs} == {api.kind, api.cluster_kind}
    for doc in docs:
        assert list(_unknown_fields(doc, schemas[doc["kind"]], "")) == []


# -- keeping the parts current -------------------------------------------------------------------
def _as_listed(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Reports as a later run lists them from the cluster (with a resourceVersion)."""
    listed = {}
    for number, doc in enumerate(docs, start=1):
        meta = {**doc["metadata"], "resourceVersion": str(number)}
        listed[key_of(doc)] = {**doc, "metadata": meta}
    return listed


def test_a_part_no_longer_needed_is_deleted_and_unchanged_parts_are_left_alone() -> None:
    """2,100 results (three parts), then 150 of the last fixed: part 1 is unchanged, part 2
    rewritten with its first timestamps, part 3 deleted."""
    first = cluster_reports(
        [pod_violation("shop", f"p{i:04d}") for i in range(2100)], {}, now=100.0
    )
    later = cluster_reports(
        [pod_violation("shop", f"p{i:04d}") for i in range(1950)], {}, now=200.0
    )
    work = plan(later, _as_listed(first))
    assert work.unchanged == 1
    assert work.create == []
    (updated,) = work.update
    assert updated["metadata"]["name"] == "guardrail-shop-2"
    assert updated["metadata"]["resourceVersion"] == "2"
    assert len(updated["results"]) == 950
    assert {r["timestamp"]["seconds"] for r in updated["results"]} == {100}
    assert [r["metadata"]["name"] for r in work.delete] == ["guardrail-shop-3"]


def test_a_result_moving_to_another_part_keeps_when_it_was_first_found() -> None:
    """Fixing the first pod shifts every later result back a part: the moved ones keep their
    first timestamp, and a new part holds new results with the scan's time."""
    first = cluster_reports(
        [pod_violation("shop", f"p{i:04d}") for i in range(1500)], {}, now=100.0
    )
    later = cluster_reports(
        [pod_violation("shop", f"p{i:04d}") for i in range(1, 2200)], {}, now=200.0
    )
    work = plan(later, _as_listed(first))
    by_name = {r["metadata"]["name"]: r for r in [*work.update, *work.create]}
    assert sorted(by_name) == ["guardrail-shop", "guardrail-shop-2", "guardrail-shop-3"]
    stamps = {
        r["resources"][0]["name"]: r["timestamp"]["seconds"]
        for doc in by_name.values()
        for r in doc["results"]
    }
    assert {name for name, seconds in stamps.items() if seconds == 100} == {
        f"p{i:04d}" for i in range(1, 1500)
    }
    assert {name for name, seconds in stamps.items() if seconds == 200} == {
        f"p{i:04d}" for i in range(1500, 2200)
    }


class MemoryCluster:
    """An API server for reports, in memory: list by collection, create, replace, delete."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.version = 0

    @property
    def host(self) -> str:
        return "memory"

    def get(
        self, path: str, params: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        del params, timeout
        if path in self.objects:
            return self.objects[path]
        items = [o for p, o in self.objects.items() if self._in_collection(p, path)]
        return {"items": items, "metadata": {"resourceVersion": str(self.version)}}

    @staticmethod
    def _in_collection(obj_path: str, collection: str) -> bool:
        parent, _, _ = obj_path.rpartition("/")
        if parent == collection:
            return True
        # /apis/G/V/policyreports lists every namespace's.
        prefix, _, plural = collection.rpartition("/")
        return parent.startswith(f"{prefix}/namespaces/") and parent.endswith(f"/{plural}")

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        del timeout
        self.version += 1
        if method == "DELETE":
            self.writes.append((method, path))
            return self.objects.pop(path)
        assert body is not None
        stored = json.loads(json.dumps(body))
        stored["metadata"]["resourceVersion"] = str(self.version)
        target = path if method == "PUT" else f"{path}/{stored['metadata']['name']}"
        self.writes.append((method, target))
        self.objects[target] = stored
        return stored

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise NotImplementedError


def test_the_writer_says_how_many_reports_and_parts_it_keeps() -> None:
    """Writing a split set says the reports, scopes and parts; a run where one scope shrinks
    deletes its extra parts and leaves the rest of the cluster untouched."""
    cluster = MemoryCluster()
    base = "/apis/wgpolicyk8s.io/v1alpha2"
    big = [pod_violation("shop", f"p{i:04d}") for i in range(2100)]
    cluster_wide = [
        Violation(
            Finding("restrict-allow-all", "GlobalNetworkPolicy", "", f"g{i}", "m", "m"), Mode.WARN
        )
        for i in range(1200)
    ]
    small = [pod_violation("blog", "post")]
    docs = cluster_reports([*big, *small, *cluster_wide], {}, now=100.0)
    written = write_reports(cluster, docs, api=WGPOLICY, namespace=None)
    assert written.describe(WGPOLICY) == (
        "PolicyReports written: 6 created, 0 updated, 0 unchanged, 0 deleted "
        "(6 reports for 3 scopes; in parts: shop 3, (cluster) 2)"
    )
    assert sorted(cluster.objects) == sorted(
        [
            f"{base}/namespaces/blog/policyreports/guardrail-blog",
            f"{base}/namespaces/shop/policyreports/guardrail-shop",
            f"{base}/namespaces/shop/policyreports/guardrail-shop-2",
            f"{base}/namespaces/shop/policyreports/guardrail-shop-3",
            f"{base}/clusterpolicyreports/guardrail-cluster",
            f"{base}/clusterpolicyreports/guardrail-cluster-2",
        ]
    )
    stored = sum(len(o["results"]) for o in cluster.objects.values())
    assert stored == 2100 + 1 + 1200

    cluster.writes.clear()
    again = cluster_reports([*big[:900], *small, *cluster_wide], {}, now=200.0)
    rewritten = write_reports(cluster, again, api=WGPOLICY, namespace=None)
    assert rewritten.describe(WGPOLICY) == (
        "PolicyReports written: 0 created, 1 updated, 3 unchanged, 2 deleted "
        "(4 reports for 3 scopes; in parts: (cluster) 2)"
    )
    assert sorted(cluster.writes) == [
        ("DELETE", f"{base}/namespaces/shop/policyreports/guardrail-shop-2"),
        ("DELETE", f"{base}/namespaces/shop/policyreports/guardrail-shop-3"),
        ("PUT", f"{base}/namespaces/shop/policyreports/guardrail-shop"),
    ]


def test_the_writer_says_when_there_is_nothing_to_keep() -> None:
    """A clean cluster: no reports, said as such."""
    written = write_reports(MemoryCluster(), [], api=OPENREPORTS, namespace=None)
    assert written.describe(OPENREPORTS) == (
        "Reports written: 0 created, 0 updated, 0 unchanged, 0 deleted (0 reports)"
    )


def test_an_openreports_report_without_its_limits_is_rewritten_once() -> None:
    """A Report written before it stated its limits (or with other limits) is updated; the
    same Report listed back is then left alone."""
    (doc,) = cluster_reports([pod_violation("shop", "web")], {}, now=0.0, api=OPENREPORTS)
    older = {k: v for k, v in doc.items() if k != "configuration"}
    assert len(plan([doc], _as_listed([older])).update) == 1
    assert plan([doc], _as_listed([doc])).unchanged == 1
