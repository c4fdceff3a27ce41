"""restrict-allow-all: network policies hold no rule that admits all traffic (SPEC 2.4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from webhook.policy import calico
from webhook.policy.cluster import ClusterState
from webhook.policy.engine import CompiledPolicy, broad_rules, compile_object
from webhook.policy.model import Direction, Finding, Mode, Obj, Operation, Request
from webhook.policy.objects import (
    ANP,
    CALICO,
    CALICO_GLOBAL,
    CNP,
    GLOBAL_FLAVORS,
    K8S,
    flavor_for,
    kinds_of,
)
from webhook.policy.rule import Rule, Settings, Severity
from webhook.policy.text import fit
from webhook.policy.workloads import ReviewedObject, reviewed_object

ID = "restrict-allow-all"
MAX_SELECTOR_WARNINGS = 5
# Flavors whose objects this rule reads. Not BANP: it is evaluated below every
# NetworkPolicy (and Calico tier), so its Allow rules cannot reopen any other default-deny.
_RULE_FLAVORS = frozenset({K8S, CALICO, CALICO_GLOBAL, ANP, CNP})


def check(request: Request, state: ClusterState, settings: Settings) -> list[Finding]:
    """A network policy must not hold a rule that admits all traffic (default mode: warn).

    Objects: CREATE/UPDATE of Kubernetes NetworkPolicy, Calico NetworkPolicy and
    GlobalNetworkPolicy, and AdminNetworkPolicy. Reads `spec.ingress` / `spec.egress` and the
    effective types (Kubernetes policyTypes, Calico types: rules of a direction the policy does
    not apply to do nothing). Allows rules restricted by ports or by peers other than
    match-everything ones (SPEC 2.5; for an ANP, Allow/Pass to `namespaces: {}`, every pod, or
    a /0 network). A Calico policy with a selector that does not parse also gets an advisory
    finding (a warning, never a denial: validating Calico objects is the API server's job).
    Example:

        [restrict-allow-all] NetworkPolicy "open" in namespace "shop": rule spec.ingress[0]
        admits all traffic and cancels the namespace's default-deny. Restrict it with from
        peers or ports.
    """
    del state  # the verdict depends on the object alone
    if request.operation not in (Operation.CREATE, Operation.UPDATE):
        return []
    flavor = flavor_for(request.group, request.kind)
    obj = request.obj
    if flavor not in _RULE_FLAVORS or not isinstance(obj, Mapping):
        return []
    subject = reviewed_object(request)
    if flavor not in GLOBAL_FLAVORS and subject.namespace in settings.exempt_namespaces:
        return []
    findings: list[Finding] = []
    if flavor in (CALICO, CALICO_GLOBAL):
        findings.extend(_selector_findings(obj, subject))
    rules = _allow_all_rules(obj, subject.namespace)
    if rules:
        findings.append(_allow_all_finding(rules, flavor, subject))
    return findings


def _allow_all_rules(obj: Obj, namespace: str) -> list[tuple[Direction, str]]:
    """(direction, path) of the Allow/Pass rules that admit all traffic, in applied directions.

    The isolation engine decides (SPEC 2.5): rules with no port or protocol restriction whose
    peers match an unnamed peer (together: split CIDRs, all-namespace selectors), and rules
    whose addresses leave out less than 1 % of an address family.
    """
    compiled = compile_object(obj, namespace)
    if not isinstance(compiled, CompiledPolicy):
        return []
    return [(rule.direction, rule.path) for rule in broad_rules(compiled)]


def _allow_all_finding(
    rules: Sequence[tuple[Direction, str]], flavor: str, subject: ReviewedObject
) -> Finding:
    paths = [path for _, path in rules]
    one = len(paths) == 1
    scope = (
        "the default-deny of every namespace it applies to"
        if flavor in GLOBAL_FLAVORS
        else "the namespace's default-deny"
    )
    if flavor in (K8S, ANP, CNP):
        directions = {direction for direction, _ in rules}
        peers = "/".join(
            word
            for d, word in ((Direction.INGRESS, "from"), (Direction.EGRESS, "to"))
            if d in directions
        )
        how = f"{peers} peers or ports"
    else:
        how = "source/destination criteria (selector, namespaceSelector, nets, ports) or a protocol"
    message = (
        f"[{ID}] {subject.phrase}: "
        f"{'rule' if one else 'rules'} {', '.join(paths)} "
        f"{'admits' if one else 'admit'} all traffic and {'cancels' if one else 'cancel'} "
        f"{scope}. Restrict {'it' if one else 'them'} with {how}."
    )
    summary = fit(
        message,
        f'[{ID}] {subject.kind} "{subject.name}": {", ".join(paths)} '
        f"{'admits' if one else 'admit'} all traffic, cancelling default-deny",
    )
    return subject.finding(ID, message, summary)


def _selector_findings(obj: Obj, subject: ReviewedObject) -> list[Finding]:
    """One advisory finding per Calico selector that does not parse, naming field and column.

    Advisory: Calico's API server owns the validation of its objects and rejects these itself
    (through the CRDs, Calico cannot enforce the policy), so Guardrail warns and never denies.
    """
    errors = calico.selector_errors(obj)
    findings: list[Finding] = []
    for count, (path, error) in enumerate(errors[:MAX_SELECTOR_WARNINGS], start=1):
        where = f"{path} column {error.column}" if error.column else path
        message = (
            f"[{ID}] {subject.phrase} has an invalid selector at {where}: "
            f"{error.message}; Calico will reject it."
        )
        if count == MAX_SELECTOR_WARNINGS and len(errors) > count:
            # Each warning costs the API server header space: name a few, count the rest.
            message += f" {len(errors) - count} more of its selectors are invalid too."
        # Field and column first, so that a long name is what a cut warning loses.
        short = f'[{ID}] invalid selector at {where} in {subject.kind} "{subject.name}"'
        findings.append(subject.finding(ID, message, fit(message, short), advisory=True))
    return findings


RULE = Rule(
    id=ID,
    title="RestrictAllowAll",
    summary="Network policies hold no rule that admits all traffic.",
    severity=Severity.MEDIUM,
    default_mode=Mode.WARN,
    settings=(),
    kinds=kinds_of(*_RULE_FLAVORS),
    operations=frozenset({Operation.CREATE, Operation.UPDATE}),
    needs_state=False,
    docs="restrict-allow-all",
    check=check,
)
