"""`guardrail audit`: judge a live cluster with the webhook's own engine.

The sweep lists (paginated) namespaces, network policies (Kubernetes, and Calico and admin
network policies where served, exactly as the webhook's cache discovers them), pods and the
workload kinds, then hands every object to `checking.check_manifests` with the cluster's
namespaces and policies as the state: each object is judged as its creation would be judged
now, so the audit, `check` and the webhook give the same answer.

- An object created by a workload that is itself judged (a Pod whose controller is a
  ReplicaSet, a ReplicaSet whose controller is a Deployment, a Job of a CronJob) is not judged
  again: its owner's verdict covers it, and an admin fixes the Deployment, not its 40 pods.
  Transitively: a Deployment's pods are skipped through their ReplicaSet.
- Objects in exempt namespaces are not judged (nor counted), as the webhook never sees them.
- `--namespace` judges that namespace and what is in it; cluster-wide policies still count as
  providers of its default-deny but are not themselves judged.
- A namespace without a default-deny is one finding of kind `Namespace`, naming the workloads
  that would be rejected there (as in `check`).

The progress bar goes to stderr only when stderr is a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any
from urllib.parse import quote

import urllib3

from webhook import kube, policy, report
from webhook.checking import Selection, api_server, check_manifests, origin
from webhook.config import Config
from webhook.fixes import Plan
from webhook.manifests import Manifest
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Obj, Operation, Violation
from webhook.policy.objects import flavor_of
from webhook.policy.workloads import is_workload
from webhook.report import text as text_report
from webhook.report.base import Origin, Resource, fails
from webhook.report.policyreport import (
    REPORT_APIS,
    WGPOLICY,
    ReportApi,
    Subject,
    cluster_reports,
    dump,
)
from webhook.report.summary import breakdown, scope_namespace
from webhook.reports import write_reports as write_to_cluster  # `run` has a flag of that name
from webhook.state.index import IndexedState

EXIT_OK = 0
EXIT_VIOLATION = 1
PAGE_SIZE = "500"
AUDIT_FORMATS = ("text", "json", "sarif", "junit", "policyreport", "html")

# Order of kinds within a namespace in every report: the namespace, its policies, then
# workloads from the top of the ownership chain down to pods.
_KIND_RANK = {"Namespace": 0, **{r.kind: 2 + i for i, r in enumerate(kube.WORKLOADS)}}
_POLICY_RANK = 1


# -- progress -------------------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on a terminal; silent when the stream is not a terminal."""

    WIDTH = 30

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self.enabled = stream is not None and stream.isatty()
        self._shown = False
        self._last = 0.0

    def update(self, label: str, done: int, total: int | None, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:  # redraw at most ten times a second
            return
        self._last = now
        if total:
            filled = min(self.WIDTH, self.WIDTH * done // total)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"{label:<24} [{bar}] {done:,}/{total:,}"
        else:
            text = f"{label:<24} {done:,}"
        assert self.stream is not None
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.stream is not None and self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


# -- listing --------------------------------------------------------------------------------------
def listings(client: kube.Client) -> list[kube.ApiResource]:
    """Namespaces and every policy collection the cluster serves, then the workload kinds."""
    return [*kube.discover(client), *kube.WORKLOADS]


def collect(client: kube.Client, namespace: str | None, progress: Progress) -> list[dict[str, Any]]:
    """Every object the audit reads, whole but for managedFields (no policy reads them)."""
    objects: list[dict[str, Any]] = []
    for resource in listings(client):
        if resource is kube.NAMESPACES and namespace:
            try:
                one = client.get(f"{resource.url()}/{quote(namespace, safe='')}")
            except kube.ApiError as exc:
                if exc.status == 404:
                    raise GuardrailError(
                        f'namespace "{namespace}" not found', "--namespace"
                    ) from exc
                raise
            objects.append(kube.slim(one, resource, metadata=None))
            continue
        path = resource.url(namespace if (namespace and resource.namespaced) else None)
        objects.extend(_list_all(client, path, resource, progress))
    return objects


def _list_all(
    client: kube.Client, path: str, resource: kube.ApiResource, progress: Progress
) -> list[dict[str, Any]]:
    def shown(done: int, total: int | None) -> None:
        progress.update(f"listing {resource.name}", done, total)

    try:
        return kube.list_all(
            client,
            path,
            timeout=60.0,
            each=lambda item: kube.slim(item, resource, metadata=None),
            progress=shown,
            missing_ok=True,  # a kind this cluster does not serve
        ).items
    except kube.ApiError as exc:
        raise GuardrailError(f"cannot list {resource.name}: {exc}", path) from exc


# -- judging (pure) -------------------------------------------------------------------------------
@dataclass(slots=True)
class AuditResult:
    """What the audit found: the `check` result shape, plus what reports need of the objects."""

    resources: int = 0
    violations: list[Violation] = field(default_factory=list)
    judged: list[Resource] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    owned: int = 0  # objects skipped because a judged workload owns them
    exempt: int = 0  # objects in exempt namespaces
    subjects: dict[tuple[str, str, str], Subject] = field(default_factory=dict)
    passes: list[tuple[str, Subject]] = field(default_factory=list)
    include_passes: bool = False  # passes were asked for (the reports say what they list)
    namespace: str | None = None
    headlines: dict[tuple[str, str], Violation] = field(default_factory=dict)
    unverified: tuple[str, ...] = ()  # a live cluster settles every namespace
    server: str = ""  # the API server read (its URL, without credentials)
    origin: Origin = field(default_factory=Origin)  # when, what and with which config
    # No fixes: a live cluster's objects have no files to patch (check plans them).
    fixes: Plan = field(default_factory=Plan)

    @property
    def has_enforced_violation(self) -> bool:
        return any(v.enforced for v in self.violations)


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _group_kind(obj: Obj) -> tuple[str, str]:
    group = str(obj.get("apiVersion") or "").rpartition("/")[0]
    return group, str(obj.get("kind") or "")


def controller_uid(obj: Obj) -> str:
    """The uid of the object's controlling owner (ownerReferences[].controller), or ""."""
    refs = _meta(obj).get("ownerReferences")
    if not isinstance(refs, list):
        return ""
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return str(ref.get("uid") or "")
    return ""


def _scope_of(obj: Obj) -> str:
    meta = _meta(obj)
    if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
        return str(meta.get("name") or "")
    return str(meta.get("namespace") or "")


def _sort_key(obj: Obj) -> tuple[bool, str, int, str]:
    kind = str(obj.get("kind") or "")
    scope = _scope_of(obj)
    rank = _KIND_RANK.get(kind, _POLICY_RANK)
    return (scope == "", scope, rank, str(_meta(obj).get("name") or ""))


def audit_objects(
    objects: Sequence[dict[str, Any]],
    config: Config,
    *,
    namespace: str | None = None,
    include_passes: bool = False,
    selection: Selection = Selection(),  # noqa: B008 - frozen, so one shared default is safe
) -> AuditResult:
    """Judge listed objects with the webhook's engine; the listed namespaces and policies are
    the state. Pure: no I/O, so the same objects always give the same result."""
    state = IndexedState()
    for obj in objects:
        state.upsert(obj)
    workload_uids = {
        str(_meta(obj).get("uid"))
        for obj in objects
        if _meta(obj).get("uid") and is_workload(*_group_kind(obj))
    }
    exempt_namespaces = config.exemptions.namespaces
    result = AuditResult(namespace=namespace, include_passes=include_passes)
    chosen: list[dict[str, Any]] = []
    for obj in objects:
        scope = _scope_of(obj)
        if namespace is not None and scope != namespace:
            continue  # outside --namespace (cluster-wide policies only serve as state)
        if scope in exempt_namespaces:
            result.exempt += 1
            continue
        group, kind = _group_kind(obj)
        if not (
            is_workload(group, kind)
            or flavor_of(obj) is not None
            or (kind == "Namespace" and group == "")
        ):
            continue
        if is_workload(group, kind) and controller_uid(obj) in workload_uids:
            result.owned += 1
            continue
        chosen.append(obj)
    chosen.sort(key=_sort_key)

    checked = check_manifests(
        [Manifest(obj, "", 0) for obj in chosen], config, state, selection=selection
    )
    result.resources = checked.resources
    result.violations = [replace(v, file=None, line=None) for v in checked.violations]
    result.headlines = {
        key: replace(v, file=None, line=None) for key, v in checked.headlines.items()
    }
    result.judged = [Resource(r.api_version, r.kind, r.namespace, r.name) for r in checked.judged]
    for obj, resource in zip(chosen, result.judged, strict=True):
        subject = Subject(
            resource.api_version,
            resource.kind,
            resource.namespace,
            resource.name,
            str(_meta(obj).get("uid") or ""),
        )
        result.subjects[subject.key] = subject
    if include_passes:
        result.passes = passes(result, config.enabled_policies())
    return result


def passes(result: AuditResult, enabled: Iterable[str]) -> list[tuple[str, Subject]]:
    """(policy, object) for every policy that judges a judged object and found nothing.

    A policy applies to an object when it judges the object's kind on CREATE (the audit judges
    every object as its creation would be judged now). For a policy whose findings are rolled
    up per namespace, a namespace-level finding fails every object of that namespace.
    """
    enabled = set(enabled)
    failed = {
        (v.finding.policy, v.finding.kind, v.finding.namespace, v.finding.name)
        for v in result.violations
    }
    failed_namespaces = {
        (v.finding.policy, scope_namespace(v.finding))
        for v in result.violations
        if policy.rule(v.finding.policy).rollup is not None
    }
    found: list[tuple[str, Subject]] = []
    for subject in result.subjects.values():
        group = subject.api_version.rpartition("/")[0]
        for rule in policy.RULES:
            if not rule.judges_existing or rule.id not in enabled:
                continue
            if not rule.judges(group, subject.kind, Operation.CREATE):
                continue
            if (rule.id, *subject.key) in failed:
                continue
            if (rule.id, subject.namespace or subject.name) in failed_namespaces:
                continue
            found.append((rule.id, subject))
    return found


# -- output ---------------------------------------------------------------------------------------
# Namespaces listed in the text summary; the JSON and HTML reports have them all.
SHOWN_NAMESPACES = 10


def render_text(result: AuditResult, *, quiet: bool = False) -> str:
    """The findings (grouped, errors first), then the summary: by policy, the namespaces with
    most findings, and the totals, last so that thousands of findings do not scroll it away."""
    body = [] if quiet else text_report.finding_lines(result)
    title = "Guardrail audit" + (f' of namespace "{result.namespace}"' if result.namespace else "")
    lines = [title, _judged_line(result)]
    if body:
        lines += ["", *body]
    tally = breakdown(result.violations)
    if tally.total:
        lines += ["", "Namespaces with most findings:"]
        shown = list(tally.by_namespace.items())[:SHOWN_NAMESPACES]
        width = max(len(ns or "(cluster)") for ns, _ in shown)
        for ns, per in shown:
            cells = ", ".join(f"{policy} {count:,}" for policy, count in per.items())
            lines.append(f"  {ns or '(cluster)':<{width}}  {sum(per.values()):>6,}  {cells}")
        if len(tally.by_namespace) > SHOWN_NAMESPACES:
            lines.append(f"  … and {len(tally.by_namespace) - SHOWN_NAMESPACES:,} more namespaces")
    lines += ["", *text_report.summary_lines(result)]
    return "\n".join(lines) + "\n"


def _judged_line(result: AuditResult) -> str:
    extra = []
    if result.owned:
        extra.append(f"{result.owned:,} more owned by a judged workload")
    if result.exempt:
        extra.append(f"{result.exempt:,} in exempt namespaces not judged")
    text = f"{result.resources:,} objects judged"
    return text + (f" ({'; '.join(extra)})" if extra else "")


def render(
    result: AuditResult, fmt: str, *, api: ReportApi = WGPOLICY, now: float, quiet: bool = False
) -> str:
    if fmt == "text":
        return render_text(result, quiet=quiet)
    if fmt == "policyreport":
        return dump(reports(result, api=api, now=now))
    return report.render(result, fmt)


def reports(result: AuditResult, *, api: ReportApi, now: float) -> list[dict[str, Any]]:
    return cluster_reports(
        result.violations,
        result.subjects,
        now=now,
        passes=result.passes,
        include_passes=result.include_passes,
        api=api,
    )


# -- the command ----------------------------------------------------------------------------------
def sweep(
    client: kube.Client,
    config: Config,
    *,
    namespace: str | None = None,
    include_passes: bool = False,
    progress: Progress | None = None,
    selection: Selection = Selection(),  # noqa: B008 - frozen, so one shared default is safe
) -> AuditResult:
    """List and judge; GuardrailError when the API server cannot be read."""
    progress = progress or Progress(None)
    try:
        objects = collect(client, namespace, progress)
    except kube.ApiError as exc:
        raise GuardrailError(f"cannot read the cluster: {exc}", client.host) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise GuardrailError(f"cannot reach the API server: {exc}", client.host) from exc
    progress.update(f"judging {len(objects):,} objects", 0, None, force=True)
    result = audit_objects(
        objects, config, namespace=namespace, include_passes=include_passes, selection=selection
    )
    result.server = api_server(client.host)
    progress.clear()
    return result


def run(
    config: Config,
    *,
    namespace: str | None,
    fmt: str,
    write_reports: bool,
    include_passes: bool = False,
    report_api: str = "wgpolicyk8s",
    kubeconfig: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    quiet: bool = False,
    fail_on: str = "enforce",
    selection: Selection = Selection(),  # noqa: B008 - frozen, so one shared default is safe
    config_file: str | None = None,
) -> int:
    """Sweep the cluster, print the report, optionally write report objects; the exit code.
    `config_file` (where `config` was read; None for every default) goes into the header."""
    out = out or sys.stdout
    err = err or sys.stderr
    if fmt not in AUDIT_FORMATS:
        raise GuardrailError(f"unknown format {fmt!r} (expected one of {', '.join(AUDIT_FORMATS)})")
    api = REPORT_APIS.get(report_api)
    if api is None:
        raise GuardrailError(
            f"unknown report API {report_api!r} (expected one of {', '.join(REPORT_APIS)})"
        )
    client = kube.KubeClient(kubeconfig)
    progress = Progress(err)
    try:
        result = sweep(
            client,
            config,
            namespace=namespace,
            include_passes=include_passes,
            progress=progress,
            selection=selection,
        )
    finally:
        progress.clear()
    now = time.time()
    scope = [f"namespace {namespace}"] if namespace else []
    result.origin = origin("audit", [f"cluster {result.server}", *scope], config, config_file, now)
    out.write(render(result, fmt, api=api, now=now, quiet=quiet))
    out.flush()
    if write_reports:
        try:
            written = write_to_cluster(
                client, reports(result, api=api, now=now), api=api, namespace=namespace
            )
        except kube.ApiError as exc:
            raise GuardrailError(f"cannot write reports: {exc}", client.host) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise GuardrailError(f"cannot reach the API server: {exc}", client.host) from exc
        err.write(f"guardrail: {written.describe(api)}\n")
    return EXIT_VIOLATION if fails(result, fail_on) else EXIT_OK
