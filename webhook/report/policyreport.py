"""`--format policyreport`: `wgpolicyk8s.io/v1alpha2` PolicyReports, one per namespace, and a
ClusterPolicyReport for cluster-scoped objects, as a multi-document YAML stream that
`kubectl apply -f -` accepts (Policy Reporter and Kyverno's UI read the same objects).

Results list failures only (reports must not bloat etcd) and the summary counts the results
listed, as Kyverno's do; every namespace judged gets a report, an empty one when clean.
Enforce and audit violations are `fail`, warn-mode and advisory ones `warn`; severity is the
policy's.

`cluster_reports` builds the reports `guardrail audit --write-reports` keeps in a cluster, in
either report API (`wgpolicyk8s.io/v1alpha2` or `openreports.io/v1alpha1`): every result
names its object with uid and carries a timestamp, and passes are listed only when asked for.

Both place a result by `summary.scope_of`: a namespace's missing default-deny is in that
namespace's own report, offline and live alike. Neither drops a result: a namespace (or the
cluster) with more results than one object should hold (`MAX_RESULTS_PER_REPORT`, or
`MAX_RESULT_BYTES_PER_REPORT` of JSON, whichever comes first) gets several reports, its parts:
`guardrail-<ns>`, `guardrail-<ns>-2`, ... each labelled with its scope and part number.
"""

from __future__ import annotations

import json
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
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# Which namespace a report is about (`cluster` on cluster reports: no namespace can be confused
# with it, as those are another kind) and which of that scope's parts it is (1, 2, ...), so
# `kubectl get policyreports -A -l guardrail.dev/scope=shop` lists every part of a namespace.
SCOPE_LABEL = "guardrail.dev/scope"
PART_LABEL = "guardrail.dev/part"
CLUSTER_SCOPE_LABEL = "cluster"
# A report is one etcd object, and etcd refuses a write over 1.5 MiB by default: a scope's
# results are split into parts of at most this many results and this many bytes of results'
# JSON, whichever is reached first. The byte budget leaves half a MiB for metadata (labels,
# annotations, managedFields) and the rest of the object; the count keeps each part small
# enough for report viewers to load and page through.
MAX_RESULTS_PER_REPORT = 1000
MAX_RESULT_BYTES_PER_REPORT = 1_000_000
# A single result must fit a part whatever its message, so a message longer than this is cut
# (saying so in the message itself). Names are bounded by Kubernetes, messages by the rules,
# so only hostile input gets here: 16,384 characters are at most 98,304 bytes of JSON (a
# control character escapes to six), ten such results to a part.
MAX_MESSAGE_CHARS = 16_384
SUMMARY_KEYS = ("pass", "fail", "warn", "error", "skip")
# What the reports list (OpenReports' configuration.limits.statusFilter): guardrail writes no
# `error` or `skip` results, and `pass` only with --include-passes.
FAILURES_ONLY = ("fail", "warn")
WITH_PASSES = ("pass", "fail", "warn")
_Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def report_name(namespace: str, part: int = 1) -> str:
    """`guardrail-<ns>` (or `guardrail-cluster`), then `-2`, `-3`, ... for further parts.

    The first part keeps the name a scope's only report has always had, so a scope that fits
    in one report is where it was; a later part's name says which part it is.
    """
    name = f"guardrail-{namespace}" if namespace else CLUSTER_REPORT_NAME
    return name if part == 1 else f"{name}-{part}"


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
        "message": fit_message(finding.message),
        "resources": [resource],
        "source": SOURCE,
        "scored": True,
        "properties": properties,
    }


def fit_message(message: str) -> str:
    """The message, or its first MAX_MESSAGE_CHARS characters and how much was cut."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return (
        f"{message[:MAX_MESSAGE_CHARS]}… (message cut to fit a report: {len(message):,} "
        "characters; guardrail audit --format json prints all of it)"
    )


def _result(violation: Violation) -> str:
    # An advisory finding (a new namespace without a default-deny) is a heads-up, not a failure.
    return "warn" if violation.mode is Mode.WARN or violation.finding.advisory else "fail"


def reports(result: ReportInput) -> list[dict[str, Any]]:
    """Every judged scope's reports (namespaces sorted, then the cluster), each with its summary.

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
    return _documents(scopes, WGPOLICY, FAILURES_ONLY)


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


# -- splitting a scope's results into parts ----------------------------------------------------
def result_bytes(result: Mapping[str, Any]) -> int:
    """The size of a result as the API server stores it (compact JSON, UTF-8)."""
    return len(json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode())


def split_results(results: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The results in order, cut into parts of at most MAX_RESULTS_PER_REPORT results and
    MAX_RESULT_BYTES_PER_REPORT bytes; one empty part for no results.

    One pass, each result measured once: a namespace with 50,000 results costs 50,000
    measurements, not a re-measure of the growing part per result.
    """
    parts: list[list[dict[str, Any]]] = [[]]
    used = 0
    for result in results:
        size = result_bytes(result) + 1  # the comma between array items
        current = parts[-1]
        if current and (
            len(current) >= MAX_RESULTS_PER_REPORT or used + size > MAX_RESULT_BYTES_PER_REPORT
        ):
            parts.append([])
            current = parts[-1]
            used = 0
        current.append(result)
        used += size
    return parts


def _documents(
    scopes: Mapping[str, Sequence[dict[str, Any]]], api: ReportApi, statuses: Sequence[str]
) -> list[dict[str, Any]]:
    """Each scope's parts (namespaces sorted, the cluster last), in order of part."""
    documents = []
    for namespace in sorted(scopes, key=lambda ns: (ns == "", ns)):
        for number, results in enumerate(split_results(scopes[namespace]), start=1):
            documents.append(_document(namespace, number, results, api, statuses))
    return documents


def _document(
    namespace: str,
    part: int,
    results: list[dict[str, Any]],
    api: ReportApi,
    statuses: Sequence[str],
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": report_name(namespace, part)}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {
        MANAGED_BY_LABEL: SOURCE,
        SCOPE_LABEL: namespace or CLUSTER_SCOPE_LABEL,
        PART_LABEL: str(part),
    }
    document: dict[str, Any] = {
        "apiVersion": api.api_version,
        "kind": api.kind if namespace else api.cluster_kind,
        "metadata": metadata,
    }
    if api is OPENREPORTS:
        # OpenReports' contract between generators and consumers: how many results a report
        # holds at most (more go to the scope's next part) and which statuses it lists.
        document["source"] = SOURCE
        document["configuration"] = {
            "limits": {"maxResults": MAX_RESULTS_PER_REPORT, "statusFilter": list(statuses)}
        }
    # Each part counts its own results: the parts of a scope add up to the scope's counts.
    document["summary"] = summary_of(results)
    document["results"] = results
    return document


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
    include_passes: bool | None = None,
    api: ReportApi = WGPOLICY,
) -> list[dict[str, Any]]:
    """The reports of every namespace with results, and of the cluster if it has any.

    A namespace-level finding (no default-deny) goes to that namespace's own report, where the
    people who can fix it (and read reports there) see it. Scopes without results get no
    report at all: the writer deletes a report whose namespace became clean. A scope with more
    results than a report holds gets several, its parts. `include_passes` (default: whether
    any passes are given) is what the reports say they list.
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
        info = rule(policy)
        scopes.setdefault(scope_of(subject.kind, subject.namespace, subject.name), []).append(
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
    listed = bool(passes) if include_passes is None else include_passes
    return _documents(scopes, api, WITH_PASSES if listed else FAILURES_ONLY)


def summary_of(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    summary = dict.fromkeys(SUMMARY_KEYS, 0)
    for result in results:
        outcome = str(result.get("result"))
        if outcome in summary:
            summary[outcome] += 1
    return summary
