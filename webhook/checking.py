"""`guardrail check`: judge manifests offline with the webhook's own engine.

Each object is judged as the API server would send it on `kubectl apply` of a new object: a
CREATE by user `guardrail-check`, its namespace filled in (`default` when absent). The cluster
state is what the manifests contain, so a Pod is only fine when its namespace's default-deny
is among them. A namespace without one is reported once, as kind `Namespace`, naming the
workloads that would be rejected there, instead of once per workload (the rule's roll-up).
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from webhook import policy
from webhook.admission.judge import Judge
from webhook.config import Config
from webhook.manifests import CLUSTER_SCOPED_KINDS, Manifest, is_cluster_scoped, load_paths
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Operation, Request, Violation
from webhook.report.base import Resource
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
    """What `check` found: counts, violations in input order, and notes on skipped input."""

    resources: int = 0
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    judged: list[Resource] = field(default_factory=list)
    # Bad input found while judging the rest (`file:line: message`): exit 2 after the report.
    errors: list[str] = field(default_factory=list)

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
    result.errors.extend(likely_typos(loaded.manifests))
    return result


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
    manifests: Sequence[Manifest], config: Config, state: IndexedState | None = None
) -> CheckResult:
    """Judge each manifest; the state is the manifests' own unless given (the audit's cluster).

    Findings of a rule with a roll-up (require-default-deny) about one namespace are reported
    as the one finding the rule writes for the namespace, placed at the Namespace object when
    the input holds it (else at the first finding's object).
    """
    if state is None:
        state = state_from_manifests(manifests)
    judge = Judge(config, state)
    result = CheckResult(resources=len(manifests))
    # (position in the input, violation): the namespace summaries are slotted in afterwards.
    placed: list[tuple[int, Violation]] = []
    rolled: dict[tuple[str, str], list[tuple[int, Violation]]] = {}
    own: dict[tuple[str, str], tuple[int, Violation]] = {}
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
        try:
            violations = judge.violations(request)
        except GuardrailError as exc:
            raise GuardrailError(str(exc), manifest.where) from exc
        for violation in violations:
            located = replace(violation, file=manifest.file, line=manifest.line)
            finding = located.finding
            if policy.rule(finding.policy).rollup is None:
                placed.append((index, located))
            elif finding.kind == "Namespace" and not finding.namespace:
                own[(finding.policy, finding.name)] = (index, located)
            else:
                key = (finding.policy, finding.namespace)
                rolled.setdefault(key, []).append((index, located))

    for (policy_id, namespace), found in rolled.items():
        summarize = policy.rule(policy_id).rollup
        assert summarize is not None
        about_namespace = own.pop((policy_id, namespace), None)
        position = namespace_objects.get(namespace, found[0][0])
        anchor = manifests[position]
        summary = summarize(namespace, state, config.settings, [v.finding for _, v in found])
        mode = about_namespace[1].mode if about_namespace is not None else found[0][1].mode
        placed.append((position, Violation(summary, mode, anchor.file, anchor.line)))
    placed.extend(own.values())

    placed.sort(key=lambda item: item[0])  # stable: within an object, registry order stays
    result.violations = [violation for _, violation in placed]
    return result


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
