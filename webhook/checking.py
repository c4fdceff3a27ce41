"""`guardrail check`: judge manifests offline with the webhook's own engine.

Each object is judged as the API server would send it on `kubectl apply` of a new object: a
CREATE by user `guardrail-check`, its namespace filled in (`default` when absent). The cluster
state is what the manifests contain (plus the live cluster's with `--cluster`).

- Every finding is the object's own, at its file and line, so SARIF annotations and JUnit
  cases land where the developer edits. A namespace lacking isolation also gets one
  headline (the rule's roll-up, with the fix), which text and HTML show over its workloads.
- A workload in a namespace of which the input holds nothing (no Namespace, no policy) is
  *unverified*: a warning, not a denial, unless `--strict`. An application repository holds
  no platform policies, and its CI must not fail on what the cluster already has.
"""

from __future__ import annotations

import difflib
import os
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from webhook import fixes, policy
from webhook.admission.judge import Judge
from webhook.config import Config, digest
from webhook.manifests import (
    CLUSTER_SCOPED_KINDS,
    STDIN_NAME,
    STDIN_PATH,
    Manifest,
    is_cluster_scoped,
    load_paths,
    read_text,
)
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Direction, Finding, Operation, Request, Violation
from webhook.policy.objects import NAMESPACED_FLAVORS, flavor_of
from webhook.policy.rules import require_default_deny
from webhook.report.base import Origin, Resource, utc_timestamp
from webhook.state.files import (
    DEFAULT_NAMESPACE,
    state_from_manifests,
    state_objects,
    with_default_namespace,
)
from webhook.state.index import IndexedState

CHECK_USERNAME = "guardrail-check"
# Real kinds that Guardrail does not judge, some a letter or two from one it does
# (StagedNetworkPolicy, GlobalNetworkSet): never reported as typos.
KNOWN_KINDS = CLUSTER_SCOPED_KINDS | {
    "ConfigMap",
    "ControllerRevision",
    "Endpoints",
    "EndpointSlice",
    "Event",
    "HorizontalPodAutoscaler",
    "Ingress",
    "Lease",
    "LimitRange",
    "NetworkSet",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "PodMonitor",
    "PodTemplate",
    "PolicyReport",
    "PrometheusRule",
    "Report",
    "ResourceQuota",
    "Role",
    "RoleBinding",
    "Secret",
    "Service",
    "ServiceAccount",
    "ServiceMonitor",
    "StagedKubernetesNetworkPolicy",
    "StagedNetworkPolicy",
    "Certificate",
    "Issuer",
}


@dataclass(slots=True)
class CheckResult:
    """What `check` found: counts, violations in input order, and notes on skipped input.

    `violations` holds one finding per object, at the object's own file and line. `headlines`
    says once, per (policy, namespace), what a rule's findings in that namespace have in
    common and how to fix them all (the namespace lacks a default-deny, or is not in the
    input): text and HTML show it over its findings; formats that annotate lines ignore it.
    """

    resources: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    judged: list[Resource] = field(default_factory=list)
    # Bad input found while judging the rest (`file:line: message`): exit 2 after the report.
    errors: list[str] = field(default_factory=list)
    headlines: dict[tuple[str, str], Violation] = field(default_factory=dict)
    # Namespaces with workloads of which the input says nothing (without --cluster).
    unverified: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the paths judged, or ["cluster"]
    origin: Origin = field(default_factory=Origin)  # when, what and with which config
    # The manifest each violation is about, for fixes.
    origins: dict[Violation, Manifest] = field(default_factory=dict)
    fixes: fixes.Plan = field(default_factory=fixes.Plan)

    @property
    def has_enforced_violation(self) -> bool:
        return any(v.enforced for v in self.violations)


@dataclass(frozen=True, slots=True)
class Selection:
    """What `check` reports: `--only`/`--skip` policy ids, `--strict` about unverified."""

    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    strict: bool = False

    def wants(self, policy_id: str) -> bool:
        return (not self.only or policy_id in self.only) and policy_id not in self.skip


def check_paths(
    paths: Sequence[str],
    config: Config,
    *,
    cluster: bool = False,
    stdin: BinaryIO | None = None,
    kubeconfig: str | None = None,
    selection: Selection = Selection(),
    config_file: str | None = None,
    now: float | None = None,
    plan_fixes: bool = False,
    source_edits: bool = False,
) -> CheckResult:
    """Load files, directories and `-` (stdin), and judge every object in them.

    With `cluster`, the state is the live cluster's namespaces and policies (listed once, with
    `kubeconfig` or the usual in-cluster / $KUBECONFIG resolution) plus the manifests' own,
    which win: they are what the cluster will hold once they are applied. Without it, a
    workload in a namespace the manifests say nothing about is *unverified*, not a violation
    (unless `selection.strict`): an application repository holds no platform policies.
    A file that cannot be parsed is reported in `errors` and the others are still judged.
    `config_file` (where `config` was read, None for every default) and `now` (the time,
    default the clock's) go into the report's header.
    Files that a kustomization in the input lists as patches are partial objects, not
    manifests: they are skipped with a note. With `plan_fixes`, `fixes` holds what would make
    the input pass (webhook/fixes.py); with `source_edits` too, each label fix also has its
    exact source edit where the file can be edited safely (reading and parsing those files
    again: what SARIF and `--write` need, and JSON does not pay for).
    """
    generated = time.time() if now is None else now
    loaded = load_paths(list(paths), stdin, keep_going=True)
    manifests, skipped = without_kustomize_patches(loaded.manifests)
    state = IndexedState() if cluster else state_from_manifests(manifests)
    server = ""
    if cluster:
        from webhook.kube import KubeClient  # noqa: PLC0415 - only with --cluster
        from webhook.state.live import read_cluster  # noqa: PLC0415 - only with --cluster

        client = KubeClient(kubeconfig)
        server = api_server(client.host)
        for obj in read_cluster(client):
            state.upsert(obj)
        for obj in state_objects(manifests):
            state.upsert(obj)
    described = None if cluster else described_namespaces(manifests)
    result = check_manifests(manifests, config, state, described=described, selection=selection)
    result.notes[:0] = [*loaded.notes, *skipped]
    result.errors.extend(str(error) for error in loaded.errors)
    result.errors.extend(likely_typos(manifests))
    result.sources = ["cluster", *paths] if cluster else list(paths)
    cluster_source = [f"cluster {server}"] if cluster else []
    result.origin = origin("check", [*cluster_source, *paths], config, config_file, generated)
    if plan_fixes:
        edited = manifests if source_edits else None
        result.fixes = plan_for(result, config, state, edited, from_stdin=STDIN_PATH in paths)
    return result


def origin(
    command: str, sources: Sequence[str], config: Config, config_file: str | None, now: float
) -> Origin:
    """What a report's header says of a run: when, what was judged, with which config."""
    return Origin(
        generated=utc_timestamp(now),
        command=command,
        sources=tuple("standard input" if s == "-" else s for s in sources),
        config_file=config_file or "",
        config_digest=digest(config),
        modes=tuple(
            (rule.id, str(config.modes.get(rule.id, config.mode))) for rule in policy.RULES
        ),
    )


def api_server(url: str) -> str:
    """The API server's URL as a report may show it: without any user or password in it."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def without_kustomize_patches(manifests: Sequence[Manifest]) -> tuple[list[Manifest], list[str]]:
    """The manifests but the patches of a kustomization of the input (files it lists under
    `patches`, `patchesStrategicMerge` or `patchesJson6902`), and a note for each one left
    out: a patch holds part of an object (a fix directory's label patches), which judged whole
    would be a finding.

    Only what is certainly a patch is left out, so that listing a file as a patch cannot hide
    it: an object of a file that a kustomization also lists under `resources`, or one whose
    kind and name no other object of the input has (a patch that patches nothing fails the
    build; the object is then applied some other way, or not at all), is judged.
    """
    patch_files, resource_files = _kustomize_files(manifests)
    if not patch_files:
        return list(manifests), []
    patch_of: dict[int, str] = {}  # id of a manifest in a patch file -> the kustomization
    for manifest in manifests:
        path = (
            None
            if manifest.file == STDIN_NAME
            else os.path.normpath(os.path.abspath(manifest.file))
        )
        listed_in = patch_files.get(path) if path is not None else None
        if listed_in is not None and path not in resource_files:
            patch_of[id(manifest)] = listed_in
    targets = {_kind_and_name(m.obj) for m in manifests if id(m) not in patch_of}
    kept, notes = [], []
    for manifest in manifests:
        listed_in = patch_of.get(id(manifest))
        if listed_in is not None and _kind_and_name(manifest.obj) in targets:
            notes.append(f"{manifest.where}: skipped: a kustomize patch (listed in {listed_in})")
        else:
            kept.append(manifest)
    return kept, notes


def _kustomize_files(manifests: Sequence[Manifest]) -> tuple[dict[str, str], set[str]]:
    """The files kustomizations of the input list as patches (each with the kustomization's
    file) and as resources."""
    patch_files: dict[str, str] = {}
    resource_files: set[str] = set()
    for manifest in manifests:
        obj = manifest.obj
        if not str(obj.get("apiVersion") or "").startswith("kustomize.config.k8s.io/"):
            continue
        base = os.path.dirname(os.path.abspath(manifest.file))
        for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
            entries = obj.get(key)
            for entry in entries if isinstance(entries, list) else []:
                path = entry.get("path") if isinstance(entry, dict) else entry
                # An inline patch (a YAML string) holds a line break; a path does not.
                if isinstance(path, str) and path and "\n" not in path:
                    patch_files[os.path.normpath(os.path.join(base, path))] = manifest.file
        resources = obj.get("resources")
        for entry in resources if isinstance(resources, list) else []:
            if isinstance(entry, str) and entry:
                resource_files.add(os.path.normpath(os.path.join(base, entry)))
    return patch_files, resource_files


def _kind_and_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return str(obj.get("kind") or ""), str(name or "")


def described_namespaces(manifests: Sequence[Manifest]) -> frozenset[str]:
    """Namespaces the manifests say something about: a Namespace object, or a policy in it."""
    return frozenset(
        str(
            obj["metadata"]["name"]
            if obj.get("kind") == "Namespace"
            else obj["metadata"]["namespace"]
        )
        for obj in state_objects(manifests)
        if isinstance(obj.get("metadata"), dict)
        and (obj.get("kind") == "Namespace" or is_namespaced_policy(obj))
    )


def is_namespaced_policy(obj: dict[str, Any]) -> bool:
    flavor = flavor_of(obj)
    return flavor is not None and flavor in NAMESPACED_FLAVORS


def likely_typos(manifests: Sequence[Manifest]) -> list[str]:
    """`file:line: kind "Deploymnet" is not one Guardrail judges; did you mean "Deployment"?`
    for each object whose kind is not judged but is one edit or two from one that is: such a
    manifest would otherwise pass unjudged, green in CI."""
    judged = sorted({kind for rule in policy.RULES for _, kind in rule.kinds})
    found = []
    for manifest in manifests:
        kind = manifest.obj.get("kind")
        if not isinstance(kind, str) or kind in judged or kind in KNOWN_KINDS:
            continue
        close = difflib.get_close_matches(kind, judged, n=1, cutoff=0.8)
        if not close and kind.lower() in {k.lower() for k in judged}:
            close = [next(k for k in judged if k.lower() == kind.lower())]
        if close:
            where = f"{manifest.file}:{manifest.line}" if manifest.line else manifest.file
            found.append(
                f'{where}: kind "{kind}" is not one Guardrail judges; did you mean "{close[0]}"?'
            )
    return found


def check_manifests(
    manifests: Sequence[Manifest],
    config: Config,
    state: IndexedState | None = None,
    *,
    described: frozenset[str] | None = None,
    selection: Selection = Selection(),
) -> CheckResult:
    """Judge each manifest; the state is the manifests' own unless given (the audit's cluster).

    Every finding is the object's own, at its file and line. A rule with a roll-up
    (require-default-deny) also gets a headline per namespace, placed at the Namespace object
    when the input holds it; the Namespace's own finding of that rule is then left out, since
    the headline says the same and its workloads carry the verdicts. With `described` (the
    namespaces the input says something about), findings of state-reading rules in any other
    namespace are unverified (warnings) unless `selection.strict`.
    """
    if state is None:
        state = state_from_manifests(manifests)
    judge = Judge(config, state)
    result = CheckResult(resources=len(manifests))
    namespace_objects: dict[str, Manifest] = {}
    rolled: dict[tuple[str, str], list[Violation]] = {}

    for manifest in manifests:
        request = request_for(manifest)
        result.judged.append(
            Resource(
                request.api_version,
                request.kind,
                request.namespace,
                request.name,
                manifest.file,
                manifest.line,
            )
        )
        if request.kind == "Namespace" and request.group == "":
            namespace_objects.setdefault(request.name, manifest)
        try:
            violations = judge.violations(request)
        except GuardrailError as exc:
            raise GuardrailError(str(exc), manifest.where) from exc
        unknown = (
            described is not None
            and not selection.strict
            and bool(request.namespace)
            and request.namespace not in described
        )
        for violation in violations:
            rule = policy.rule(violation.policy)
            if not selection.wants(rule.id):
                continue
            located = replace(violation, file=manifest.file, line=manifest.line)
            if unknown and rule.needs_state:
                located = unverified(located, request.namespace)
            result.violations.append(located)
            result.origins[located] = manifest
            if rule.rollup is not None and located.finding.namespace:
                rolled.setdefault((rule.id, located.finding.namespace), []).append(located)

    for (policy_id, namespace), found in rolled.items():
        result.headlines[(policy_id, namespace)] = _headline(
            policy_id, namespace, found, state, config, namespace_objects.get(namespace)
        )
    if result.headlines:
        result.violations = [
            v
            for v in result.violations
            if not (
                v.finding.kind == "Namespace"
                and not v.finding.namespace
                and (v.policy, v.finding.name) in result.headlines
            )
        ]
    result.unverified = sorted({ns for (_, ns), v in result.headlines.items() if v.unverified})
    return result


def _headline(
    policy_id: str,
    namespace: str,
    found: Sequence[Violation],
    state: IndexedState,
    config: Config,
    namespace_object: Manifest | None,
) -> Violation:
    """What a rule's findings in one namespace have in common, said once, with the fix."""
    file = namespace_object.file if namespace_object is not None else None
    line = namespace_object.line if namespace_object is not None else None
    if found[0].unverified:
        return Violation(
            _unverified_headline(policy_id, namespace, found), found[0].mode, file, line, True
        )
    summarize = policy.rule(policy_id).rollup
    assert summarize is not None
    summary = summarize(namespace, state, config.settings, [v.finding for v in found])
    return Violation(summary, found[0].mode, file, line)


def listed(found: Sequence[Violation], limit: int = 5) -> str:
    names = [f'{v.finding.kind} "{v.finding.name}"' for v in found]
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def _unverified_headline(policy_id: str, namespace: str, found: Sequence[Violation]) -> Finding:
    count = f"{len(found):,} workload{'' if len(found) == 1 else 's'}"
    message = (
        f'[{policy_id}] Namespace "{namespace}" is not in the input (no Namespace object, no '
        f"network policy in it), so {count} in it could not be verified: {listed(found)}. "
        f"Check them with the platform's manifests too (guardrail check platform/ app/), "
        f"against the cluster (--cluster), or fail on this (--strict)."
    )
    summary = f'[{policy_id}] Namespace "{namespace}" is not in the input; {count} unverified'
    return Finding(policy_id, "Namespace", "", namespace, message, summary)


def unverified(violation: Violation, namespace: str) -> Violation:
    """The violation as a warning that the input cannot settle it, saying what would."""
    finding = violation.finding
    tag = f"[{finding.policy}] "
    message = (
        f'{tag}{finding.kind} "{finding.name}" in namespace "{namespace}": not verified, the '
        f'input holds nothing about namespace "{namespace}" (no Namespace, no network '
        f"policy). Add the platform's manifests or use --cluster; --strict fails on this."
    )
    summary = f'{tag}{finding.kind} "{finding.name}": namespace "{namespace}" not in the input'
    return replace(
        violation,
        finding=replace(finding, message=message, summary=summary),
        unverified=True,
    )


class _Namespaces:
    """fixes.Namespaces over the state check judged with: a proposed default-deny is judged
    by the same engine, with the policy added to the state and then taken out again."""

    def __init__(self, result: CheckResult, config: Config, state: IndexedState) -> None:
        self._result = result
        self._config = config
        self._state = state
        self._judge = Judge(config, state)

    def missing(self, namespace: str) -> tuple[Direction, ...]:
        directions = self._config.settings.get(require_default_deny.DIRECTIONS)
        found = require_default_deny.missing_for_every_pod(self._state, namespace, directions)
        return found or directions

    def policy_names(self, namespace: str) -> Collection[str]:
        return {
            str((obj.get("metadata") or {}).get("name") or "")
            for obj in self._state.policies_in(namespace)
            if obj.get("apiVersion") == "networking.k8s.io/v1"
            and obj.get("kind") == "NetworkPolicy"
        }

    def resolved(
        self, namespace: str, policy: Mapping[str, Any], found: Sequence[Violation]
    ) -> list[Violation]:
        added = dict(policy)
        self._state.upsert(added)
        try:
            resolved = []
            for violation in found:
                manifest = self._result.origins.get(violation)
                if manifest is None:
                    continue
                again = self._judge.violations(request_for(manifest))
                if not any(v.policy == violation.policy for v in again):
                    resolved.append(violation)
            return resolved
        finally:
            self._state.remove(added)


def plan_for(
    result: CheckResult,
    config: Config,
    state: IndexedState,
    manifests: Sequence[Manifest] | None,
    *,
    from_stdin: bool = False,
) -> fixes.Plan:
    """What would make the input pass; given the manifests judged, each label fix also has its
    exact source edit where its file can be edited safely (objects read from stdin have no
    file to edit)."""
    plan = fixes.plan(
        result.violations,
        result.headlines,
        result.origins,
        config.settings,
        _Namespaces(result, config, state),
    )
    if manifests is None:
        return plan
    files = {
        fix_violation.file
        for fix_violation, fix in plan.found.items()
        if fix.kind == "labels" and fix_violation.file is not None
    }
    for file in sorted(files):
        if from_stdin and file == STDIN_NAME:
            for violation, fix in list(plan.found.items()):
                if fix.kind == "labels" and violation.file == STDIN_NAME:
                    plan.found[violation] = replace(fix, source_note="it was read from stdin")
            continue
        try:
            text = read_text(file)
        except GuardrailError as exc:
            for violation, fix in list(plan.found.items()):
                if fix.kind == "labels" and violation.file == file:
                    plan.found[violation] = replace(fix, source_note=f"cannot read it again: {exc}")
            continue
        loaded = [m for m in manifests if m.file == file]
        fixes.with_source_edits(plan, file, text, loaded)
    return plan


def request_for(manifest: Manifest) -> Request:
    """The CREATE request `kubectl apply` of this new object would send (namespace filled)."""
    obj: dict[str, Any] = manifest.obj
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind") or "")
    if is_cluster_scoped(kind):
        namespace = ""
    else:
        # The API server fills in the namespace before admission; policies read it there too.
        obj = with_default_namespace(obj, DEFAULT_NAMESPACE)
        namespace = str(obj["metadata"]["namespace"])
    meta = obj.get("metadata")
    name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
    return Request(
        uid=str(uuid.uuid4()),
        kind=kind,
        group=group,
        version=version,
        namespace=namespace,
        name=name,
        operation=Operation.CREATE,
        obj=obj,
        username=CHECK_USERNAME,
    )
