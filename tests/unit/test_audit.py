"""The audit's judgement of listed objects, its text summary, its reports and report writing
plan, and the webhook's violation record in audit mode (no cluster: objects as listed)."""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Any

import pytest

from webhook import audit as audit_lib
from webhook import kube
from webhook.app import JsonFormatter, create_app
from webhook.audit import AuditResult, Progress, audit_objects, controller_uid, render_text
from webhook.config import digest, parse_config
from webhook.policy.model import Finding, Mode, Violation
from webhook.report.policyreport import OPENREPORTS, WGPOLICY, Subject, cluster_reports
from webhook.reports import carry_timestamps, plan
from webhook.state.index import IndexedState

CONFIG = parse_config({}, "<test>")


def ns(name: str, uid: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "uid": uid or f"u-{name}"},
    }


def deny(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": namespace, "uid": f"np-{namespace}"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def owner(kind: str, uid: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "apps/v1", "kind": kind, "name": "x", "uid": uid, "controller": True}]


def pod(
    namespace: str, name: str, labels: dict[str, str], owners: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "uid": f"pod-{name}",
    }
    if owners:
        meta["ownerReferences"] = owners
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": []}}


def workload(
    kind: str,
    namespace: str,
    name: str,
    labels: dict[str, str],
    uid: str,
    owners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid}
    if owners:
        meta["ownerReferences"] = owners
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": meta,
        "spec": {"template": {"metadata": {"labels": labels}}},
    }


GOOD = {"app": "web", "role": "frontend"}
BAD = {"app": "web"}


def keys(result: AuditResult) -> list[tuple[str, str, str, str]]:
    return [
        (v.policy, v.finding.kind, v.finding.namespace, v.finding.name) for v in result.violations
    ]


# -- judging --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("objects", "expected", "resources", "owned"),
    [
        (
            [
                ns("shop"),
                deny("shop"),
                workload("Deployment", "shop", "api", BAD, "d1"),
                workload("ReplicaSet", "shop", "api-1", BAD, "r1", owner("Deployment", "d1")),
                pod("shop", "api-1-a", BAD, owner("ReplicaSet", "r1")),
                pod("shop", "api-1-b", BAD, owner("ReplicaSet", "r1")),
            ],
            [("require-role-labels", "Deployment", "shop", "api")],
            3,
            3,
        ),
        (
            [ns("shop"), deny("shop"), pod("shop", "stray", BAD, owner("ReplicaSet", "gone"))],
            [("require-role-labels", "Pod", "shop", "stray")],
            3,
            0,
        ),
        (
            [ns("blog"), pod("blog", "a", GOOD), pod("blog", "b", GOOD)],
            [
                ("require-default-deny", "Pod", "blog", "a"),
                ("require-default-deny", "Pod", "blog", "b"),
            ],
            3,
            0,
        ),
        (
            [ns("kube-system"), pod("kube-system", "dns", BAD), ns("shop"), deny("shop")],
            [],
            2,
            0,
        ),
    ],
    ids=[
        "deployment-judged-once",
        "orphan-pod-judged",
        "namespace-gap-per-workload",
        "exempt-skipped",
    ],
)
def test_audit_judges_each_object_once(
    objects: list[dict[str, Any]],
    expected: list[tuple[str, str, str, str]],
    resources: int,
    owned: int,
) -> None:
    """Owned pods and ReplicaSets ride on their owner's verdict; exempt namespaces are skipped."""
    result = audit_objects(objects, CONFIG)
    assert keys(result) == expected
    assert (result.resources, result.owned) == (resources, owned)
    assert all(v.file is None and v.line is None for v in result.violations)


def test_namespace_headline_names_the_workloads_that_would_be_rejected() -> None:
    """A namespace without a default-deny: a finding per workload, and one headline that
    lists them, as in `check`."""
    result = audit_objects([ns("blog"), pod("blog", "a", GOOD), pod("blog", "b", GOOD)], CONFIG)
    assert [v.enforced for v in result.violations] == [True, True]
    headline = result.headlines[("require-default-deny", "blog")]
    assert headline.finding.message.startswith(
        '[require-default-deny] Namespace "blog" has no default-deny network policy for Ingress '
        'and Egress, so 2 workloads in it would be rejected: Pod "a", Pod "b". Apply one first: '
    )


def test_namespace_scope_uses_global_state_but_judges_only_the_namespace() -> None:
    """--namespace: other namespaces' objects are not judged, and their findings not shown."""
    objects = [ns("blog"), pod("blog", "a", BAD), ns("shop"), deny("shop"), pod("shop", "web", BAD)]
    result = audit_objects(objects, CONFIG, namespace="shop")
    assert keys(result) == [("require-role-labels", "Pod", "shop", "web")]
    assert result.resources == 3


def test_passes_list_every_applicable_policy_that_found_nothing() -> None:
    """--include-passes: a clean pod passes both pod policies, the namespace and its policy pass."""
    result = audit_objects(
        [ns("shop"), deny("shop"), pod("shop", "web", GOOD)], CONFIG, include_passes=True
    )
    shipped = ("require-role-labels", "require-default-deny", "restrict-allow-all")
    assert sorted((p, s.kind, s.name) for p, s in result.passes if p in shipped) == [
        ("require-default-deny", "Namespace", "shop"),
        ("require-default-deny", "Pod", "web"),
        ("require-role-labels", "Pod", "web"),
        ("restrict-allow-all", "NetworkPolicy", "default-deny"),
    ]


def test_controller_uid_reads_only_the_controlling_owner() -> None:
    """Only an ownerReference with controller: true makes an object someone else's."""
    refs = [{"uid": "a"}, {"uid": "b", "controller": True}]
    assert controller_uid({"metadata": {"ownerReferences": refs}}) == "b"
    assert controller_uid({"metadata": {"ownerReferences": [{"uid": "a"}]}}) == ""


# -- text -----------------------------------------------------------------------------------------
def test_text_report_lists_findings_then_the_summary_last() -> None:
    """The text format: the findings, errors first, then the namespaces with most findings,
    counts by policy and level, and the totals, last, so no long list scrolls them away."""
    objects = [
        ns("blog"),
        pod("blog", "a", BAD),
        ns("shop"),
        deny("shop"),
        pod("shop", "web", BAD),
        workload("Deployment", "shop", "api", GOOD, "d1"),
    ]
    lines = render_text(audit_objects(objects, CONFIG)).splitlines()
    assert lines[:3] == ["Guardrail audit", "6 objects judged", ""]
    assert [line.split(" [", 1)[0] for line in lines[3:6]] == [
        "Pod blog/a: error:",
        "Pod shop/web: error:",
        "Pod blog/a: error:",
    ]
    assert lines[6:] == [
        "",
        "Namespaces with most findings:",
        "  blog       2  require-role-labels 1, require-default-deny 1",
        "  shop       1  require-role-labels 1",
        "",
        "By policy:",
        "  require-role-labels   2 errors",
        "  require-default-deny  1 error",
        "6 resources, 3 violations: 3 errors",
    ]


def test_quiet_text_is_the_summary_alone() -> None:
    """--quiet: no finding lines, the same summary."""
    objects = [ns("blog"), pod("blog", "a", BAD)]
    result = audit_objects(objects, CONFIG)
    quiet = render_text(result, quiet=True)
    assert "error:" not in quiet
    assert quiet.endswith(render_text(result).split("\n\n", 2)[2])


# -- reports --------------------------------------------------------------------------------------
def _violation(
    policy: str, kind: str, namespace: str, name: str, mode: Mode = Mode.ENFORCE
) -> Violation:
    message = f"[{policy}] {kind} {name}"
    return Violation(Finding(policy, kind, namespace, name, message, message), mode)


@pytest.mark.parametrize(
    ("api", "kind", "cluster_kind", "api_version"),
    [
        (WGPOLICY, "PolicyReport", "ClusterPolicyReport", "wgpolicyk8s.io/v1alpha2"),
        (OPENREPORTS, "Report", "ClusterReport", "openreports.io/v1alpha1"),
    ],
    ids=["wgpolicyk8s", "openreports"],
)
def test_cluster_reports_put_namespace_findings_in_the_namespace_report(
    api: Any, kind: str, cluster_kind: str, api_version: str
) -> None:
    """A missing default-deny lands in that namespace's report; results carry uid and time."""
    subjects = {
        ("Namespace", "", "blog"): Subject("v1", "Namespace", "", "blog", "uid-blog"),
        ("Pod", "blog", "a"): Subject("v1", "Pod", "blog", "a", "uid-a"),
    }
    violations = [
        _violation("require-default-deny", "Namespace", "", "blog"),
        _violation("require-role-labels", "Pod", "blog", "a", Mode.AUDIT),
        _violation("restrict-allow-all", "GlobalNetworkPolicy", "", "open", Mode.WARN),
    ]
    docs = cluster_reports(violations, subjects, now=1700000000.5, api=api)
    assert [(d["apiVersion"], d["kind"], d["metadata"]["name"]) for d in docs] == [
        (api_version, kind, "guardrail-blog"),
        (api_version, cluster_kind, "guardrail-cluster"),
    ]
    blog, cluster = docs
    assert blog["summary"] == {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert cluster["summary"] == {"pass": 0, "fail": 0, "warn": 1, "error": 0, "skip": 0}
    first = blog["results"][0]
    assert first["resources"] == [
        {"apiVersion": "v1", "kind": "Namespace", "name": "blog", "uid": "uid-blog"}
    ]
    assert first["timestamp"] == {"seconds": 1700000000, "nanos": 0}
    assert (
        first["policy"],
        first["rule"],
        first["result"],
        first["severity"],
        first["source"],
    ) == ("require-default-deny", "require-default-deny", "fail", "high", "guardrail")
    assert blog["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "guardrail",
        "guardrail.dev/scope": "blog",
        "guardrail.dev/part": "1",
    }
    assert cluster["metadata"]["labels"]["guardrail.dev/scope"] == "cluster"
    assert ("source" in blog) == (api is OPENREPORTS)


def _report(ns: str, results: list[dict[str, Any]], version: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"guardrail-{ns}",
        "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": "guardrail"},
    }
    if version:
        meta["resourceVersion"] = version
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": meta,
        "summary": {"pass": 0, "fail": len(results), "warn": 0, "error": 0, "skip": 0},
        "results": results,
    }


def _result(name: str, seconds: int) -> dict[str, Any]:
    return {
        "policy": "require-role-labels",
        "result": "fail",
        "message": f"{name} is missing role",
        "resources": [{"kind": "Pod", "namespace": "shop", "name": name, "uid": name}],
        "timestamp": {"seconds": seconds, "nanos": 0},
    }


def test_plan_creates_updates_deletes_and_leaves_unchanged_reports_alone() -> None:
    """Only what changed is written; a clean namespace's report is deleted."""
    existing = {
        ("shop", "guardrail-shop"): _report("shop", [_result("a", 100)], "7"),
        ("blog", "guardrail-blog"): _report("blog", [_result("b", 100)], "8"),
        ("gone", "guardrail-gone"): _report("gone", [_result("c", 100)], "9"),
    }
    desired = [
        _report("shop", [_result("a", 200)]),  # same result, later scan: unchanged
        _report("blog", [_result("b", 200), _result("d", 200)]),  # one more result: updated
        _report("new", [_result("e", 200)]),  # created
    ]
    work = plan(desired, existing)
    assert work.unchanged == 1
    assert [r["metadata"]["name"] for r in work.create] == ["guardrail-new"]
    (updated,) = work.update
    assert updated["metadata"]["resourceVersion"] == "8"
    assert [r["timestamp"]["seconds"] for r in updated["results"]] == [100, 200]
    assert updated["summary"]["fail"] == 2
    assert [r["metadata"]["name"] for r in work.delete] == ["guardrail-gone"]


def test_carry_timestamps_keeps_when_a_result_was_first_found() -> None:
    """A result already reported keeps its first timestamp; a new one gets the scan's."""
    carried = carry_timestamps(
        _report("shop", [_result("a", 200), _result("b", 200)]),
        _report("shop", [_result("a", 100)]),
    )
    assert [r["timestamp"]["seconds"] for r in carried["results"]] == [100, 200]


# -- progress -------------------------------------------------------------------------------------
def test_progress_draws_on_a_terminal_and_stays_silent_otherwise(tmp_path: Any) -> None:
    """A bar with counts on a real terminal (pty); nothing at all on a file."""
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        progress = Progress(terminal)
        progress.update("listing pods", 500, 2000, force=True)
        progress.clear()
    drawn = os.read(leader, 4096).decode()
    os.close(leader)
    assert "listing pods" in drawn
    assert "500/2,000" in drawn
    assert "[#######-----------------------]" in drawn
    with (tmp_path / "err.txt").open("w") as plain:
        quiet = Progress(plain)
        quiet.update("listing pods", 500, 2000, force=True)
        quiet.clear()
    assert (tmp_path / "err.txt").read_text() == ""


# -- the webhook's record of an audit-mode violation -------------------------------------------
def test_audit_mode_violation_record_names_everything_an_admin_needs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In audit mode the request is allowed, and the log line has policy, mode, kind,
    namespace, name, user and operation; the counter has policy, mode, kind, namespace."""
    config = parse_config({"mode": "audit"}, "<test>")
    state = IndexedState()
    state.upsert(ns("shop"))
    state.upsert(deny("shop"))
    app = create_app(config, state)
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop",
            "name": "web",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": pod("shop", "web", BAD),
        },
    }
    with caplog.at_level(logging.INFO, logger="guardrail"):
        response = app.test_client().post("/validate", json=review)
    body = response.get_json()
    assert body["response"]["allowed"] is True
    assert "warnings" not in body["response"]
    assert body["response"]["auditAnnotations"] == {
        "require-role-labels": 'audit: [require-role-labels] Pod "web" in namespace "shop" is '
        "missing required labels: role. Add them under metadata.labels."
    }
    (record,) = [r for r in caplog.records if r.name == "guardrail.admission"]
    line = json.loads(JsonFormatter().format(record))
    assert {
        k: line[k] for k in ("policy", "mode", "kind", "namespace", "name", "user", "operation")
    } == {
        "policy": "require-role-labels",
        "mode": "audit",
        "kind": "Pod",
        "namespace": "shop",
        "name": "web",
        "user": "alice",
        "operation": "CREATE",
    }
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert (
        'guardrail_violations_total{kind="Pod",mode="audit",namespace="shop",'
        'policy="require-role-labels"} 1.0'
    ) in metrics


class ListingClient:
    """An API server serving one namespace and one unlabelled pod, no other API group."""

    host = "https://admin:secret@10.0.0.9:6443"

    def get(
        self, path: str, params: Any = None, timeout: float = 30.0
    ) -> dict[str, Any]:  # the kube.Client protocol's reads
        if path == "/api/v1/namespaces/shop":
            return ns("shop")
        if path == "/api/v1/namespaces/shop/pods":
            return {"items": [pod("shop", "web", {"app": "web"})], "metadata": {}}
        if path.startswith("/apis/") and path.count("/") == 3:  # discovery of a group version
            raise kube.ApiError(404, "not found")
        return {"items": [], "metadata": {}}


def test_run_records_the_api_server_time_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """`audit` puts the API server (without credentials), the time, the config file and its
    digest into the result every format renders; the HTML header shows them."""
    monkeypatch.setattr(audit_lib.kube, "KubeClient", lambda _kubeconfig: ListingClient())
    monkeypatch.setattr(audit_lib.time, "time", lambda: 1_800_000_000.0)
    seen: list[AuditResult] = []
    real_render = audit_lib.render

    def render(result: AuditResult, fmt: str, **options: Any) -> str:
        seen.append(result)
        return real_render(result, fmt, **options)

    monkeypatch.setattr(audit_lib, "render", render)
    out = io.StringIO()
    code = audit_lib.run(
        CONFIG,
        namespace="shop",
        fmt="html",
        write_reports=False,
        out=out,
        err=io.StringIO(),
        config_file="cfg.yaml",
    )
    assert code == 1
    (result,) = seen
    assert result.server == "https://10.0.0.9:6443"
    assert result.origin.generated == "2027-01-15T08:00:00Z"
    assert result.origin.sources == ("cluster https://10.0.0.9:6443", "namespace shop")
    assert result.origin.config_file == "cfg.yaml"
    assert result.origin.config_digest == digest(CONFIG)
    page = out.getvalue()
    assert "secret" not in page
    assert '<dd id="source"><code>cluster https://10.0.0.9:6443</code>' in page
    assert f'<code id="config-digest">{digest(CONFIG)}</code>' in page
