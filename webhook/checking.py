"""`guardrail check`: judge manifests offline with the webhook's own engine.

Each object is judged as the API server would send it on `kubectl apply` of a new object: a
CREATE by user `guardrail-check`, its namespace filled in (`default` when absent). The cluster
state is what the manifests contain, so a Pod is only fine when its namespace's default-deny
is among them. A namespace without one is reported once, as kind `Namespace`, naming the
workloads that would be rejected there, instead of once per workload.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from webhook import policy
from webhook.admission.decide import apply_modes
from webhook.config import Config
from webhook.errors import GuardrailError
from webhook.manifests import Manifest, is_cluster_scoped, load_paths
from webhook.policy import isolation
from webhook.policy.model import Direction, Finding, Operation, Request, Violation, summarize
from webhook.report.base import Resource
from webhook.state.files import (
    DEFAULT_NAMESPACE,
    state_from_manifests,
    state_objects,
    with_default_namespace,
)
from webhook.state.index import IndexedState

CHECK_USERNAME = "guardrail-check"
DEFAULT_DENY = isolation.REQUIRE_DEFAULT_DENY
MAX_LISTED_WORKLOADS = 5


@dataclass(slots=True)
class CheckResult:
    """What `check` found: counts, violations in input order, and notes on skipped input."""

    resources: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    judged: list[Resource] = field(default_factory=list)

    @property
    def has_enforced_violation(self) -> bool:
        return any(v.enforced for v in self.violations)


def check_paths(
    paths: Sequence[str],
    config: Config,
    *,
    cluster: bool = False,
    stdin: BinaryIO | None = None,
    kubeconfig: str | None = None,
) -> CheckResult:
    """Load files, directories and `-` (stdin), and judge every object in them.

    With `cluster`, the state is the live cluster's namespaces and policies (listed once, with
    `kubeconfig` or the usual in-cluster / $KUBECONFIG resolution) plus the manifests' own,
    which win: they are what the cluster will hold once they are applied.
    """
    loaded = load_paths(list(paths), stdin)
    state = None
    if cluster:
        from webhook.kube import KubeClient  # noqa: PLC0415 - only with --cluster
        from webhook.state.live import read_cluster  # noqa: PLC0415 - only with --cluster

        state = IndexedState()
        for obj in read_cluster(KubeClient(kubeconfig)):
            state.upsert(obj)
        for obj in state_objects(loaded.manifests):
            state.upsert(obj)
    result = check_manifests(loaded.manifests, config, state)
    result.notes[:0] = loaded.notes
    return result


def check_manifests(
    manifests: Sequence[Manifest], config: Config, state: IndexedState | None = None
) -> CheckResult:
    """Judge each manifest; the state is the manifests' own unless given (the audit's cluster)."""
    if state is None:
        state = state_from_manifests(manifests)
    result = CheckResult(resources=len(manifests))
    # (position in the input, violation): the namespace summaries are slotted in afterwards.
    placed: list[tuple[int, Violation]] = []
    by_namespace: dict[str, list[tuple[int, Violation]]] = {}
    advisories: dict[str, tuple[int, Violation]] = {}
    namespace_objects: dict[str, int] = {}

    for index, manifest in enumerate(manifests):
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
            namespace_objects.setdefault(request.name, index)
        if config.exemptions.exempts(request):
            continue
        try:
            findings = policy.evaluate(request, state, config.settings, config.enabled_policies())
        except GuardrailError as exc:
            raise GuardrailError(str(exc), manifest.where) from exc
        for violation in apply_modes(findings, config, state.namespace(request.namespace)):
            located = replace(violation, file=manifest.file, line=manifest.line)
            finding = located.finding
            if finding.policy != DEFAULT_DENY:
                placed.append((index, located))
            elif finding.kind == "Namespace" and not finding.namespace:
                advisories[finding.name] = (index, located)
            else:
                by_namespace.setdefault(finding.namespace, []).append((index, located))

    for namespace, workloads in by_namespace.items():
        advisory = advisories.pop(namespace, None)
        position = namespace_objects.get(namespace, workloads[0][0])
        anchor = manifests[position]
        missing = isolation.missing_directions(
            state.providers(namespace), config.settings.directions
        )
        summary = namespace_violation(
            namespace, missing or config.settings.directions, [v for _, v in workloads]
        )
        mode = advisory[1].mode if advisory is not None else workloads[0][1].mode
        placed.append((position, Violation(summary, mode, anchor.file, anchor.line)))
    placed.extend(advisories.values())

    placed.sort(key=lambda item: item[0])  # stable: within an object, registry order stays
    result.violations = [violation for _, violation in placed]
    return result


def namespace_violation(
    namespace: str, missing: Sequence[Direction], workloads: Sequence[Violation]
) -> Finding:
    """One finding for a namespace without a default-deny, naming who would be rejected."""
    wanted = _and([str(d) for d in missing])
    names = [f'{v.finding.kind} "{v.finding.name}"' for v in workloads]
    listed = ", ".join(names[:MAX_LISTED_WORKLOADS])
    if len(names) > MAX_LISTED_WORKLOADS:
        listed += f" and {len(names) - MAX_LISTED_WORKLOADS} more"
    count = f"{len(names)} workload{'' if len(names) == 1 else 's'}"
    message = (
        f'[{DEFAULT_DENY}] Namespace "{namespace}" has no default-deny network policy for '
        f"{wanted}, so {count} in it would be rejected: {listed}. "
        f"Apply one first: {isolation.default_deny_command(namespace, missing)}"
    )
    short = (
        f'[{DEFAULT_DENY}] Namespace "{namespace}" has no default-deny for {wanted}; '
        f"{count} would be rejected"
    )
    return Finding(
        policy=DEFAULT_DENY,
        kind="Namespace",
        namespace="",
        name=namespace,
        message=message,
        summary=summarize(short),
    )


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


def _and(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
