"""What would make `guardrail check`'s input pass: exact, minimal fixes for a person to review.

    plan(violations, headlines, origins, settings, namespaces) -> Plan
        Plan.fixes[violation] -> Fix(description, path="shop/default-deny.yaml", document, ...)

Two kinds, built from what check found; pure (the caller reads the sources and writes files):

- **default-deny**: a namespace whose workloads would be rejected for want of isolation gets
  the NetworkPolicy require-default-deny names (`default-deny`, or `default-deny-egress` when
  only Egress is missing; another name when the input already has one so named), as
  `<namespace>/<name>.yaml` in the fix directory. Offered only where the engine, judging those
  workloads again with the policy added, says it isolates them, and never for a namespace the
  input says nothing about (unverified: the cluster may well have one).
- **labels**: an object missing required labels gets a kustomize strategic-merge patch that
  adds exactly those labels at its pod template's label path (`<namespace>/<kind>-<name>
  .patch.yaml`: apiVersion, kind, metadata.name and .namespace, the label path, nothing
  else), and, where its source file can be edited exactly (source_edits), the edit that adds
  them in place, for SARIF and `--write`.

A label's value is written only when it is known: `allowedValues` allows exactly one. Else it
is require-role-labels' PLACEHOLDER, a valid label value that the rule rejects, so the fixed
manifests apply and build but CI stays red until a person chooses (a role is a decision; a
guess that passes would hide that nobody made it). A wrong value is never changed: a selector
or a Service may depend on it, and only its owner knows which value is meant.

`Plan.kustomization()` is a kustomize Component: `components: [<dir>]` in the kustomization
that builds the manifests adds the policies and applies the patches (by target: group,
version, kind, name, namespace).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import yaml

from webhook.manifests import Manifest
from webhook.policy.model import Direction, Violation
from webhook.policy.rule import Settings
from webhook.policy.rules import require_default_deny, require_role_labels
from webhook.policy.rules.require_role_labels import ALLOWED_VALUES, LABELS, PLACEHOLDER
from webhook.policy.text import and_join
from webhook.policy.workloads import describe, labels_path, pod_template
from webhook.source_edits import Edit, Target, apply, label_edits, verified

KUSTOMIZATION = "kustomization.yaml"
# Kubernetes names: a namespace is a DNS label, most objects' names DNS subdomains. Manifests
# are untrusted; a name that is neither (`../x`, `a/b`) is rejected by the API server anyway,
# and must never become a path.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN_PART = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAME_MAX = 200  # bytes of a file name kept before a hash stands in for the rest (NAME_MAX 255)
_HEADER = "# Written by guardrail check --fix."


@dataclass(frozen=True, slots=True)
class SourceChange:
    """The exact edits that fix one object in its own source file."""

    file: str
    edits: tuple[Edit, ...]
    line: int  # where the object starts in the file
    digest: str  # SHA-256 of the text the edits were computed on: a changed file is not edited


@dataclass(frozen=True, slots=True)
class Fix:
    """A fix for one namespace's gap (`kind` "default-deny") or one object's labels ("labels")."""

    policy: str
    kind: str
    namespace: str
    description: str
    # Where `--fix DIR` writes it, relative to DIR ('/'-separated); None when it cannot be
    # targeted by name (an object with only generateName).
    path: str | None
    document: Mapping[str, Any]  # the NetworkPolicy, or the strategic-merge patch
    target: Mapping[str, str] | None = None  # a patch's kustomize target
    labels: Mapping[str, str] = field(default_factory=dict)  # labels a patch or edit adds
    label_path: tuple[str, ...] = ()
    placeholders: tuple[str, ...] = ()  # label keys set to PLACEHOLDER: a person must choose
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # allowed, per key
    source: SourceChange | None = None
    source_note: str = ""  # why there is no exact edit of the source, when there is none
    subject: str = ""  # `file:line: Deployment "web"`, for what is said about it

    @property
    def is_patch(self) -> bool:
        return self.target is not None

    def text(self) -> str:
        """The file `--fix DIR` writes: a header saying what it is and what to check, then YAML."""
        lines = [_HEADER, *(f"# {line}" for line in _wrap(self.description))]
        if self.is_patch:
            lines.append(
                "# A kustomize strategic-merge patch (see kustomization.yaml): not a manifest."
            )
        lines.extend(
            f"# {key}: choose one of {', '.join(self.choices[key])}."
            for key in self.placeholders
            if self.choices.get(key)
        )
        if self.kind == "default-deny":
            lines.append("# It denies every connection in those directions: allow what the pods")
            lines.append("# need (DNS, their peers) with further policies before applying it.")
        body = yaml.safe_dump(dict(self.document), sort_keys=False, default_flow_style=False)
        return "\n".join(lines) + "\n" + body


def _wrap(text: str, width: int = 96) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current] if current else lines


class Namespaces(Protocol):
    """What planning asks of the cluster state and the judge (checking implements it)."""

    def missing(self, namespace: str) -> tuple[Direction, ...]:
        """The directions a default-deny there must cover."""
        ...

    def policy_names(self, namespace: str) -> Collection[str]:
        """Names of the Kubernetes NetworkPolicies already there."""
        ...

    def resolved(
        self, namespace: str, policy: Mapping[str, Any], found: Sequence[Violation]
    ) -> list[Violation]:
        """Those of `found` that judging again, with `policy` added, no longer finds."""
        ...


@dataclass(slots=True)
class Plan:
    """Every fix found, by the violation it fixes, and notes on findings left as they are."""

    found: dict[Violation, Fix] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    directory: str | None = None  # `--fix DIR`, once written: where paths are relative to
    applied: frozenset[str] = frozenset()  # source files whose label fixes `--write` made

    def for_violation(self, violation: Violation) -> Fix | None:
        return self.found.get(violation)

    def unique(self) -> list[Fix]:
        """Each fix once (a namespace's fix serves all its workloads), in the order found."""
        seen: dict[int, Fix] = {}
        for fix in self.found.values():
            seen.setdefault(id(fix), fix)
        return list(seen.values())

    def is_applied(self, fix: Fix) -> bool:
        """Whether `--write` made this fix in its source file."""
        return fix.source is not None and fix.source.file in self.applied

    def files(self) -> dict[str, Fix]:
        """The files a fix directory holds, by path: the policies, and the patches of objects
        not fixed in place. Two fixes for one path (one object twice in the input) keep the
        first; a fix without a path (an object named by generateName) has no file."""
        found: dict[str, Fix] = {}
        for fix in self.unique():
            if fix.path is not None and not self.is_applied(fix):
                found.setdefault(fix.path, fix)
        return found

    def location(self, fix: Fix) -> str | None:
        """The written file's path, as the user named the directory; None without `--fix`."""
        if self.directory is None or fix.path is None or self.is_applied(fix):
            return None
        return f"{self.directory.rstrip('/')}/{fix.path}"

    def kustomization(self, files: Mapping[str, Fix]) -> str:
        """The fix directory's kustomization.yaml: a Component adding the policies and applying
        the patches to the objects of the kustomization that includes it."""
        resources = [path for path, fix in files.items() if not fix.is_patch]
        patches = [
            {"path": path, "target": dict(fix.target)}
            for path, fix in files.items()
            if fix.target is not None
        ]
        document: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1alpha1",
            "kind": "Component",
        }
        if resources:
            document["resources"] = resources
        if patches:
            document["patches"] = patches
        header = (
            f"{_HEADER}\n"
            "# A kustomize Component: add this directory to the `components:` of the\n"
            "# kustomization that builds your manifests; its patches apply to them there.\n"
        )
        return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def plan(
    violations: Sequence[Violation],
    headlines: Mapping[tuple[str, str], Violation],
    origins: Mapping[Violation, Manifest],
    settings: Settings,
    namespaces: Namespaces,
) -> Plan:
    """The fixes for these findings (see the module's docstring), without source edits."""
    result = Plan()
    _namespace_fixes(violations, headlines, origins, namespaces, result)
    for violation in violations:
        if violation.policy != require_role_labels.ID:
            continue
        manifest = origins.get(violation)
        if manifest is None:
            continue
        fix = label_fix(violation, manifest, settings)
        if isinstance(fix, Fix):
            result.found[violation] = fix
        else:
            result.notes.append(f"{_where(violation)}: not fixed: {fix}")
    return result


def default_deny_fix(
    namespace: str, directions: Sequence[Direction], taken: Collection[str] = ()
) -> Fix:
    """The namespace's default-deny NetworkPolicy as a fix, under a name not yet taken there."""
    name = require_default_deny.default_deny_name(directions)
    if name in taken:
        name = f"guardrail-{name}"
    suffix = 2
    base = name
    while name in taken:
        name = f"{base}-{suffix}"
        suffix += 1
    manifest = require_default_deny.default_deny_manifest(namespace, directions, name)
    description = (
        f'Apply NetworkPolicy "{name}" in namespace "{namespace}": a default-deny for '
        f"{and_join(directions)} that selects every pod there."
    )
    return Fix(
        policy=require_default_deny.ID,
        kind="default-deny",
        namespace=namespace,
        description=description,
        path=f"{namespace}/{name}.yaml",
        document=manifest,
    )


def _namespace_fixes(
    violations: Sequence[Violation],
    headlines: Mapping[tuple[str, str], Violation],
    origins: Mapping[Violation, Manifest],
    namespaces: Namespaces,
    result: Plan,
) -> None:
    by_namespace: dict[str, list[Violation]] = {}
    for violation in violations:
        finding = violation.finding
        if violation.policy != require_default_deny.ID or violation not in origins:
            continue
        namespace = finding.namespace or (finding.name if finding.kind == "Namespace" else "")
        if namespace:
            by_namespace.setdefault(namespace, []).append(violation)
    for namespace, found in by_namespace.items():
        headline = headlines.get((require_default_deny.ID, namespace))
        if any(v.unverified for v in found) or (headline is not None and headline.unverified):
            result.notes.append(
                f'namespace "{namespace}": no default-deny written: the input holds nothing '
                "about it, and the cluster may already isolate it (check it with the "
                "platform's manifests or --cluster)"
            )
            continue
        if not _DNS_LABEL.fullmatch(namespace):
            result.notes.append(f'namespace "{namespace}": not fixed: not a valid namespace name')
            continue
        fix = default_deny_fix(
            namespace, namespaces.missing(namespace), namespaces.policy_names(namespace)
        )
        resolved = namespaces.resolved(namespace, fix.document, found)
        for violation in resolved:
            result.found[violation] = fix
        if resolved and headline is not None:
            result.found[headline] = fix
        left = [v for v in found if v not in resolved and not v.finding.advisory]
        if left:
            result.notes.append(
                f'namespace "{namespace}": a default-deny does not make '
                f"{_objects(left)} pass (a policy that allows all traffic, or a tier or "
                "cluster policy that decides first); see their findings"
            )


def label_fix(violation: Violation, manifest: Manifest, settings: Settings) -> Fix | str:
    """The patch adding the labels the object lacks, or why there is none."""
    obj = manifest.obj
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    kind = str(obj.get("kind") or "")
    template = pod_template(group, kind, obj)
    path = labels_path(group, kind)
    if template is None or path is None:
        return "not a kind with a pod template"
    missing = require_role_labels.missing_labels(template.labels, settings.get(LABELS))
    if not missing:
        return (
            "its label values are for a person to choose or fix (a selector or a Service may "
            "depend on them)"
        )
    allowed = settings.get(ALLOWED_VALUES)
    labels = {
        key: allowed[key][0] if len(allowed.get(key, ())) == 1 else PLACEHOLDER for key in missing
    }
    placeholders = tuple(key for key, value in labels.items() if value == PLACEHOLDER)
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    literal_namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    namespace = violation.finding.namespace
    keys = tuple(path.split("."))
    description = _label_description(kind, name or violation.finding.name, namespace, labels, path)
    fix_path: str | None = None
    document: dict[str, Any] = {}
    target: dict[str, str] | None = None
    if name:
        if not (_DNS_LABEL.fullmatch(namespace) and _is_subdomain(name)):
            return f'"{namespace}/{name}" is not a valid namespace and name'
        patch_meta: dict[str, Any] = {"name": name}
        if literal_namespace:
            patch_meta["namespace"] = literal_namespace
        document = {"apiVersion": api_version, "kind": kind, "metadata": patch_meta}
        node = document
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = dict(labels)
        target = {
            **({"group": group} if group else {}),
            "version": version,
            "kind": kind,
            # kustomize reads target names as anchored regular expressions; a name's only
            # special character is the dot.
            "name": name.replace(".", "\\."),
            "namespace": namespace,
        }
        fix_path = f"{namespace}/{_file_name(kind, name)}"
    return Fix(
        subject=f'{_where(violation)}: {kind} "{name or violation.finding.name}"',
        policy=require_role_labels.ID,
        kind="labels",
        namespace=namespace,
        description=description,
        path=fix_path,
        document=document,
        target=target,
        labels=labels,
        label_path=keys,
        placeholders=placeholders,
        choices={key: tuple(allowed[key]) for key in placeholders if key in allowed},
    )


def _label_description(
    kind: str, name: str, namespace: str, labels: Mapping[str, str], path: str
) -> str:
    added = ", ".join(f"{key}={value}" for key, value in labels.items())
    text = f"Add {added} under {path} of {describe(kind, name, namespace)}."
    placeholders = [key for key, value in labels.items() if value == PLACEHOLDER]
    if placeholders:
        text += (
            f" {PLACEHOLDER} is a placeholder that guardrail rejects: choose the value of "
            f"{', '.join(placeholders)}."
        )
    return text


def _is_subdomain(name: str) -> bool:
    return len(name) <= 253 and all(_DNS_SUBDOMAIN_PART.fullmatch(p) for p in name.split("."))


def _file_name(kind: str, name: str) -> str:
    stem = f"{kind.lower()}-{name}"
    if len(stem) > _NAME_MAX:
        digest = hashlib.sha256(stem.encode()).hexdigest()[:12]
        stem = f"{stem[:_NAME_MAX]}-{digest}"
    return f"{stem}.patch.yaml"


def with_source_edits(
    result: Plan, file: str, text: str, loaded: Sequence[Manifest] | None = None
) -> None:
    """Attach to each label fix of objects in `file` the exact edit of `text` that fixes it,
    kept only when re-reading the edited text finds exactly the objects of `loaded` (what was
    read from the file and judged; else `text` read again) with the labels added; a fix whose
    object cannot be edited safely says why in `source_note`."""
    before: str | Sequence[Manifest] = text if loaded is None else loaded
    fixes = [
        (violation, fix)
        for violation, fix in result.found.items()
        if fix.kind == "labels" and violation.file == file and violation.line is not None
    ]
    if not fixes:
        return
    targets = {
        v.line: Target(v.line, fix.label_path, fix.labels) for v, fix in fixes if v.line is not None
    }
    found = label_edits(text, list(targets.values()))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    good = {line: edits for line, edits in found.items() if isinstance(edits, list)}
    # Two objects edited at one place share their labels through a YAML anchor: editing it
    # once would fix both, twice would write each label twice. Neither is left to chance.
    starts: dict[int, int] = {}
    for edits in good.values():
        for edit in edits:
            starts[edit.start] = starts.get(edit.start, 0) + 1
    shared = {line for line, edits in good.items() if any(starts[e.start] > 1 for e in edits)}
    for line in shared:
        found[line] = "its labels are shared with another object (a YAML anchor)"
        del good[line]
    if good and not _all_verified(file, text, before, good, targets):
        good = {
            line: edits
            for line, edits in good.items()
            if _all_verified(file, text, before, {line: edits}, targets)
        }
    for violation, fix in fixes:
        line = violation.line or 0
        if line in good:
            change = SourceChange(file, tuple(good[line]), line, digest)
            updated = replace(fix, source=change)
        else:
            reason = found.get(line)
            note = (
                reason if isinstance(reason, str) else "the edit would change more than the labels"
            )
            updated = replace(fix, source_note=note)
        result.found[violation] = updated


def _all_verified(
    file: str,
    text: str,
    before: str | Sequence[Manifest],
    edits: Mapping[int, list[Edit]],
    targets: Mapping[int, Target],
) -> bool:
    after = apply(text, [edit for line_edits in edits.values() for edit in line_edits])
    changes = {line: (targets[line].path, targets[line].labels) for line in edits}
    return verified(file, before, after, changes)


def _where(violation: Violation) -> str:
    if violation.file is not None and violation.line is not None:
        return f"{violation.file}:{violation.line}"
    finding = violation.finding
    return describe(finding.kind, finding.name, finding.namespace)


def _objects(found: Sequence[Violation]) -> str:
    names = [f'{v.finding.kind} "{v.finding.name}"' for v in found]
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
