"""Keep guardrail's reports in a cluster current: create, update, delete.

The reports guardrail owns carry the label `app.kubernetes.io/managed-by: guardrail`. A run
lists them, then writes only what changed: a new report is created, a changed one replaced
(optimistic concurrency on resourceVersion, one retry on a conflict), an unchanged one left
alone (so a quiet cluster costs no etcd writes), and a report whose scope has no results any
more (a namespace that became clean, or was deleted) is deleted, as is a part a scope no
longer needs (`guardrail-shop-3` once shop's results fit in two). A result seen before keeps
its first timestamp, even when it moved to another part of its scope: `timestamp` says when
a problem was found, not when it was last seen.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from webhook.kube import ApiError, Client, list_all
from webhook.policy.errors import GuardrailError
from webhook.report.policyreport import MANAGED_BY_LABEL, SOURCE, ReportApi

log = logging.getLogger("guardrail.reports")

WRITE_THREADS = 8
MAX_LISTED_FAILURES = 5
MAX_LISTED_SPLIT_SCOPES = 5
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster reports


@dataclass(slots=True)
class Plan:
    """What to write: new reports, changed reports (with resourceVersion), stale ones."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0


@dataclass(slots=True)
class WriteSummary:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    reports: int = 0  # the reports the cluster should now hold, every part counted
    scopes: int = 0  # the namespaces (and the cluster) they are about
    parts: dict[str, int] = field(default_factory=dict)  # scope ("" cluster) -> parts, if > 1

    def describe(self, api: ReportApi) -> str:
        """`PolicyReports written: 2 created, ... (53 reports for 3 scopes; in parts: shop 51)`."""
        text = (
            f"{api.kind}s written: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.deleted} deleted"
        )
        text += f" ({self.reports} report{'' if self.reports == 1 else 's'}"
        if self.reports:
            text += f" for {self.scopes} scope{'' if self.scopes == 1 else 's'}"
        if self.parts:
            split = [f"{ns or '(cluster)'} {n}" for ns, n in self.parts.items()]
            more = len(split) - MAX_LISTED_SPLIT_SCOPES
            text += "; in parts: " + ", ".join(split[:MAX_LISTED_SPLIT_SCOPES])
            text += f" and {more} more" if more > 0 else ""
        text += ")"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} (namespace gone or terminating)"
        return text


def key_of(report: Mapping[str, Any]) -> Key:
    meta = report.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _result_identity(result: Mapping[str, Any]) -> tuple[Any, ...]:
    refs = tuple(
        (r.get("kind"), r.get("namespace"), r.get("name"), r.get("uid"))
        for r in result.get("resources") or ()
        if isinstance(r, Mapping)
    )
    return (result.get("policy"), result.get("result"), result.get("message"), refs)


def carry_timestamps(desired: dict[str, Any], existing: Mapping[str, Any]) -> dict[str, Any]:
    """desired with each result's timestamp taken from the same result in existing, if any."""
    return _carry(desired, _first_found([existing]))


def _first_found(reports: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], Any]:
    """Each result's timestamp in any of the reports (one scope's parts)."""
    earlier: dict[tuple[Any, ...], Any] = {}
    for report in reports:
        for result in report.get("results") or ():
            if isinstance(result, Mapping) and result.get("timestamp") is not None:
                earlier.setdefault(_result_identity(result), result["timestamp"])
    return earlier


def _carry(desired: dict[str, Any], earlier: Mapping[tuple[Any, ...], Any]) -> dict[str, Any]:
    results = []
    for result in desired.get("results") or ():
        stamp = earlier.get(_result_identity(result))
        results.append({**result, "timestamp": stamp} if stamp is not None else result)
    return {**desired, "results": results}


def _same(desired: Mapping[str, Any], existing: Mapping[str, Any]) -> bool:
    want_meta = desired.get("metadata") or {}
    have_meta = existing.get("metadata") or {}
    return (
        desired.get("results") == (existing.get("results") or [])
        and desired.get("summary") == existing.get("summary")
        and desired.get("source") == existing.get("source")
        and desired.get("configuration") == existing.get("configuration")
        and (want_meta.get("labels") or {}).items() <= (have_meta.get("labels") or {}).items()
        and (want_meta.get("annotations") or {}).items()
        <= (have_meta.get("annotations") or {}).items()
    )


def plan(desired: Sequence[dict[str, Any]], existing: Mapping[Key, Mapping[str, Any]]) -> Plan:
    """Compare the reports a run produced with the ones guardrail wrote before (pure)."""
    # A result may move between the parts of its scope (one fixed before it shifts the rest),
    # so its first timestamp is looked up in all of that scope's reports, not only the
    # report of the same name.
    by_scope: dict[str, list[Mapping[str, Any]]] = {}
    for (namespace, _), listed in existing.items():
        by_scope.setdefault(namespace, []).append(listed)
    earlier = {namespace: _first_found(olds) for namespace, olds in by_scope.items()}
    result = Plan()
    wanted: set[Key] = set()
    for fresh in desired:
        key = key_of(fresh)
        wanted.add(key)
        report = _carry(fresh, earlier.get(key[0], {}))
        old = existing.get(key)
        if old is None:
            result.create.append(report)
            continue
        if _same(report, old):
            result.unchanged += 1
            continue
        version = (old.get("metadata") or {}).get("resourceVersion")
        report["metadata"] = {**report["metadata"], "resourceVersion": version}
        result.update.append(report)
    result.delete = [dict(old) for key, old in existing.items() if key not in wanted]
    return result


def existing_reports(client: Client, api: ReportApi, namespace: str | None) -> dict[Key, Any]:
    """guardrail's reports now in the cluster: in one namespace, or everywhere (and cluster)."""
    paths = [api.path(namespace)] if namespace else [api.path(None), api.path("")]
    found: dict[Key, Any] = {}
    for path in paths:
        for item in _list(client, path, api):
            found[key_of(item)] = item
    return found


def _list(client: Client, path: str, api: ReportApi) -> list[dict[str, Any]]:
    try:
        return list_all(
            client, path, params={"labelSelector": f"{MANAGED_BY_LABEL}={SOURCE}"}
        ).items
    except ApiError as exc:
        if exc.status == 404:
            raise GuardrailError(
                f"the cluster does not serve {api.api_version} {api.plural}: install "
                f"the {api.kind} CRDs first"
                + (
                    " (Kyverno and Policy Reporter ship them), or use --report-api openreports"
                    if api.name == "wgpolicyk8s"
                    else " (openreports/reports-api), or use --report-api wgpolicyk8s"
                ),
                path,
            ) from exc
        raise


def write_reports(  # noqa: PLR0915 - create/update/delete closures share one error policy
    client: Client,
    documents: Sequence[dict[str, Any]],
    *,
    api: ReportApi,
    namespace: str | None,
    annotations: Mapping[str, str] | None = None,
    still_allowed: Callable[[], bool] = lambda: True,
) -> WriteSummary:
    """Make the cluster's guardrail reports (in `namespace`, or all) match `documents`.

    `still_allowed` is asked once before writing: the background audit passes "do I still
    hold the Lease", so a replica that lost it mid-scan writes nothing.
    """
    desired = [_annotated(document, annotations) for document in documents]
    work = plan(desired, existing_reports(client, api, namespace))
    per_scope = Counter(key_of(report)[0] for report in desired)
    summary = WriteSummary(
        unchanged=work.unchanged,
        reports=len(desired),
        scopes=len(per_scope),
        parts={scope: count for scope, count in per_scope.items() if count > 1},
    )
    if not still_allowed():
        return summary
    failures: list[str] = []

    def create(report: dict[str, Any]) -> str:
        ns, _ = key_of(report)
        try:
            client.send("POST", api.path(ns), report)
        except ApiError as exc:
            if exc.status == 409:  # written meanwhile (another run): replace it
                return update(at_current_version(report))
            if _namespace_gone(exc):
                return "skipped"
            raise
        return "created"

    def at_current_version(report: dict[str, Any]) -> dict[str, Any]:
        """The report with the resourceVersion the cluster holds now (to replace it)."""
        current = client.get(api.path(*key_of(report)))
        version = (current.get("metadata") or {}).get("resourceVersion")
        return {**report, "metadata": {**report["metadata"], "resourceVersion": version}}

    def update(report: dict[str, Any]) -> str:
        ns, name = key_of(report)
        try:
            client.send("PUT", api.path(ns, name), report)
        except ApiError as exc:
            if exc.status == 409:  # changed since listed: once more on the fresh version
                client.send("PUT", api.path(ns, name), at_current_version(report))
                return "updated"
            if exc.status == 404:
                return create({**report, "metadata": _without_version(report["metadata"])})
            if _namespace_gone(exc):
                return "skipped"
            raise
        return "updated"

    def delete(report: dict[str, Any]) -> str:
        ns, name = key_of(report)
        try:
            client.send("DELETE", api.path(ns, name))
        except ApiError as exc:
            if exc.status != 404:
                raise
        return "deleted"

    jobs: list[tuple[Callable[[dict[str, Any]], str], dict[str, Any]]] = [
        *((create, r) for r in work.create),
        *((update, r) for r in work.update),
        *((delete, r) for r in work.delete),
    ]

    def run(job: tuple[Callable[[dict[str, Any]], str], dict[str, Any]]) -> tuple[str, str]:
        action, report = job
        ns, name = key_of(report)
        where = f"{ns}/{name}" if ns else name
        try:
            return action(report), where
        except Exception as exc:  # noqa: BLE001 - one report failing must not stop the others
            return f"failed: {exc}", where

    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        for outcome, where in pool.map(run, jobs):
            if outcome == "created":
                summary.created += 1
            elif outcome == "updated":
                summary.updated += 1
            elif outcome == "deleted":
                summary.deleted += 1
            elif outcome == "skipped":
                summary.skipped.append(where)
            else:
                failures.append(f"{where}: {outcome.removeprefix('failed: ')}")
    if failures:
        listed = "; ".join(failures[:MAX_LISTED_FAILURES])
        more = len(failures) - MAX_LISTED_FAILURES
        raise GuardrailError(
            f"could not write {len(failures)} {api.kind}(s): {listed}"
            + (f" and {more} more" if more > 0 else "")
        )
    return summary


def _annotated(document: dict[str, Any], annotations: Mapping[str, str] | None) -> dict[str, Any]:
    if not annotations:
        return document
    meta = document["metadata"]
    merged = {**meta.get("annotations", {}), **annotations}
    return {**document, "metadata": {**meta, "annotations": merged}}


def _without_version(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "resourceVersion"}


def _namespace_gone(exc: Exception) -> bool:
    """The namespace was deleted, or is being deleted, since the scan listed it."""
    text = str(exc)
    status = getattr(exc, "status", 0)
    return (status == 404 and "namespaces" in text) or (
        status == 403 and "being terminated" in text
    )
