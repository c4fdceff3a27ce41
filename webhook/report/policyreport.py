"""`--format policyreport`: `wgpolicyk8s.io/v1alpha2` PolicyReports, one per namespace, and a
ClusterPolicyReport for cluster-scoped objects, as a multi-document YAML stream that
`kubectl apply -f -` accepts (Policy Reporter and Kyverno's UI read the same objects).

Results list failures only (reports must not bloat etcd) and the summary counts the results
listed, as Kyverno's do; every namespace judged gets a report, an empty one when clean.
Enforce and audit violations are `fail`, warn-mode and advisory ones `warn`; severity is the
policy's. A result is filed where the live audit files it (`summary.scope_of`): a namespace's
missing default-deny in that namespace's own report.

`cluster_reports` builds the reports `guardrail audit --write-reports` keeps in a cluster, in
either report API (`wgpolicyk8s.io/v1alpha2` or `openreports.io/v1alpha1`): every result
names its object with uid and carries a timestamp, passes are listed only when asked for, and
a namespace's missing default-deny is reported in that namespace's own report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import yaml

from webhook.policy import rule
from webhook.policy.model import Mode, Violation
from webhook.report.base import KNOWN_API_VERSIONS, ReportInput
from webhook.report.summary import scope_namespace, scope_of

API_VERSION = "wgpolicyk8s.io/v1alpha2"
SOURCE = "guardrail"
CATEGORY = "Network security"
CLUSTER_REPORT_NAME = "guardrail-cluster"
_Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def report_name(namespace: str) -> str:
    return f"guardrail-{namespace}" if namespace else CLUSTER_REPORT_NAME


def _entry(
    violation: Violation, resource: Mapping[str, Any], properties: Mapping[str, str]
) -> dict[str, Any]:
    """One PolicyReport result for a violation of one resource."""
    finding = violation.finding
    return {
        "policy": finding.policy,
        "rule": finding.policy,
        "result": _result(violation),
        "severity": str(rule(finding.policy).severity),
        "category": CATEGORY,
        "message": finding.message,
        "resources": [resource],
        "source": SOURCE,
        "scored": True,
        "properties": properties,
    }


def _result(violation: Violation) -> str:
    # An advisory finding (a new namespace without a default-deny) is a heads-up, not a failure.
    return "warn" if violation.mode is Mode.WARN or violation.finding.advisory else "fail"


def reports(result: ReportInput) -> list[dict[str, Any]]:
    """One report per scope (namespace, then the cluster), sorted, each with its summary.

    Results are placed as the live audit places them (`scope_of`), so `check --format
    policyreport` and `audit --write-reports` file the same finding in the same report.
    """
    # Looked up once per result: judged and violations may both be tens of thousands long.
    api_versions: dict[tuple[str, str, str], str] = {}
    scopes: dict[str, list[dict[str, Any]]] = {}
    for resource in result.judged:
        api_versions.setdefault(
            (resource.kind, resource.namespace, resource.name), resource.api_version
        )
        scopes.setdefault(scope_of(resource.kind, resource.namespace, resource.name), [])
    for violation in result.violations:
        finding = violation.finding
        api_version = api_versions.get((finding.kind, finding.namespace, finding.name))
        ref: dict[str, Any] = {
            "apiVersion": api_version or KNOWN_API_VERSIONS.get(finding.kind, "v1"),
            "kind": finding.kind,
            "name": finding.name,
        }
        if finding.namespace:
            ref["namespace"] = finding.namespace
        properties = {"mode": str(violation.mode)}
        if violation.file is not None:
            properties["file"] = violation.file
            if violation.line is not None:
                properties["line"] = str(violation.line)  # properties are map[string]string
        entry = _entry(violation, ref, properties)
        scopes.setdefault(scope_namespace(finding), []).append(entry)
    documents = []
    for namespace in sorted(scopes, key=lambda ns: (ns == "", ns)):
        results = scopes[namespace]
        metadata: dict[str, Any] = {"name": report_name(namespace)}
        if namespace:
            metadata["namespace"] = namespace
        metadata["labels"] = {"app.kubernetes.io/managed-by": SOURCE}
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
                "metadata": metadata,
                "summary": {
                    "pass": 0,  # failures only: passes would bloat etcd
                    "fail": sum(1 for r in results if r["result"] == "fail"),
                    "warn": sum(1 for r in results if r["result"] == "warn"),
                    "error": 0,
                    "skip": 0,
                },
                "results": results,
            }
        )
    return documents


def render(result: ReportInput) -> str:
    return dump(reports(result))


def dump(documents: Sequence[Mapping[str, Any]]) -> str:
    """Reports as a multi-document YAML stream (`kubectl apply -f -`); "" for none."""
    if not documents:
        return ""
    text: str = yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=120,
    )
    return text


# -- reports of a live cluster (`guardrail audit`, the background audit) ----------------------
@dataclass(frozen=True, slots=True)
class ReportApi:
    """Where reports live: the wgpolicyk8s.io API, or its successor openreports.io."""

    name: str
    api_version: str
    kind: str
    cluster_kind: str
    plural: str
    cluster_plural: str

    def path(self, namespace: str | None = None, name: str = "") -> str:
        """The REST path of the namespaced collection (all namespaces when None), the
        cluster collection ("" namespace), or of one object in them when `name` is given."""
        base = f"/apis/{self.api_version}"
        if namespace is None:
            path = f"{base}/{self.plural}"
        elif namespace:
            path = f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        else:
            path = f"{base}/{self.cluster_plural}"
        return f"{path}/{quote(name, safe='')}" if name else path


WGPOLICY = ReportApi(
    "wgpolicyk8s",
    API_VERSION,
    "PolicyReport",
    "ClusterPolicyReport",
    "policyreports",
    "clusterpolicyreports",
)
OPENREPORTS = ReportApi(
    "openreports", "openreports.io/v1alpha1", "Report", "ClusterReport", "reports", "clusterreports"
)
REPORT_APIS: Mapping[str, ReportApi] = {api.name: api for api in (WGPOLICY, OPENREPORTS)}
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
TRUNCATED_ANNOTATION = "guardrail.dev/results-truncated"
# etcd refuses objects over about 1.5 MB; a result is under 1 KB. Failures come first, so a
# namespace with thousands of unlabelled pods loses passes before it loses failures.
MAX_RESULTS_PER_REPORT = 1000
SUMMARY_KEYS = ("pass", "fail", "warn", "error", "skip")


@dataclass(frozen=True, slots=True)
class Subject:
    """A judged object as a report result names it (uid included: viewers link by it)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    def reference(self) -> dict[str, str]:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.uid:
            ref["uid"] = self.uid
        return ref


def timestamp(now: float) -> dict[str, int]:
    """A metav1.Timestamp, as the report CRDs declare `results[].timestamp`."""
    # Seconds are precise enough for "when was this found"; nanos is required by the schema.
    return {"seconds": int(now), "nanos": 0}


def cluster_reports(
    violations: Sequence[Violation],
    subjects: Mapping[tuple[str, str, str], Subject],
    *,
    now: float,
    passes: Sequence[tuple[str, Subject]] = (),
    api: ReportApi = WGPOLICY,
) -> list[dict[str, Any]]:
    """One report per namespace with results, and a cluster report if it has any.

    A namespace-level finding (no default-deny) goes to that namespace's own report, where the
    people who can fix it (and read reports there) see it. Scopes without results get no
    report at all: the writer deletes a report whose namespace became clean.
    """
    stamp = timestamp(now)
    scopes: dict[str, list[dict[str, Any]]] = {}
    for violation in violations:
        finding = violation.finding
        subject = subjects.get((finding.kind, finding.namespace, finding.name)) or Subject(
            KNOWN_API_VERSIONS.get(finding.kind, "v1"),
            finding.kind,
            finding.namespace,
            finding.name,
        )
        entry = _entry(violation, subject.reference(), {"mode": str(violation.mode)})
        entry["timestamp"] = stamp
        scopes.setdefault(scope_namespace(finding), []).append(entry)
    for policy, subject in passes:
        scope = scope_of(subject.kind, subject.namespace, subject.name)
        info = rule(policy)
        scopes.setdefault(scope, []).append(
            {
                "policy": policy,
                "rule": policy,
                "result": "pass",
                "severity": str(info.severity),
                "category": CATEGORY,
                "message": info.summary,
                "resources": [subject.reference()],
                "source": SOURCE,
                "scored": True,
                "timestamp": stamp,
            }
        )
    documents = []
    for namespace in sorted(scopes, key=lambda ns: (ns == "", ns)):
        results = scopes[namespace]
        metadata: dict[str, Any] = {"name": report_name(namespace)}
        if namespace:
            metadata["namespace"] = namespace
        metadata["labels"] = {MANAGED_BY_LABEL: SOURCE}
        document: dict[str, Any] = {
            "apiVersion": api.api_version,
            "kind": api.kind if namespace else api.cluster_kind,
            "metadata": metadata,
        }
        if api is OPENREPORTS:
            document["source"] = SOURCE
        # The summary counts every result, so `kubectl get` stays right when the list is cut.
        document["summary"] = summary_of(results)
        if len(results) > MAX_RESULTS_PER_REPORT:
            left_out = len(results) - MAX_RESULTS_PER_REPORT
            metadata["annotations"] = {TRUNCATED_ANNOTATION: str(left_out)}
            results = results[:MAX_RESULTS_PER_REPORT]
        document["results"] = results
        documents.append(document)
    return documents


def summary_of(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    summary = dict.fromkeys(SUMMARY_KEYS, 0)
    for result in results:
        outcome = str(result.get("result"))
        if outcome in summary:
            summary[outcome] += 1
    return summary
