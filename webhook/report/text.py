"""The human report: findings compiler style, grouped, errors first; the summary last.

    app/web.yaml:1: error: [require-role-labels] Pod "web" in namespace "shop" is missing ...
    app/ns.yaml:1: error: [require-default-deny] Namespace "shop" has no default-deny ... Apply
      one first: echo '...' | kubectl apply -f -
      app/web.yaml:3: Deployment "web"
      app/db.yaml:1: StatefulSet "db"

    By policy:
      require-role-labels   1 error
      require-default-deny  2 errors
    12 resources, 3 violations: 3 errors

`file:line:` first so editors and CI annotate the line; every finding says its level (error:
would be denied, warning:, note:). The summary comes last so a long report does not scroll
it away; `--quiet` prints only the summary.
"""

from __future__ import annotations

from collections.abc import Sequence

from webhook.policy.model import Violation
from webhook.report.base import LEVELS, ReportInput, level, location, plural, summary_line
from webhook.report.groups import Group, groups

# Members listed under a group's title; the rest are counted (JSON and SARIF list them all).
SHOWN_MEMBERS = 10


def render(result: ReportInput) -> str:
    lines = finding_lines(result)
    if lines:
        lines.append("")
    return "\n".join([*lines, *summary_lines(result)]) + "\n"


def finding_lines(result: ReportInput) -> list[str]:
    return [line for group in groups(result) for line in _group_lines(group)]


def render_summary(result: ReportInput) -> str:
    return "\n".join(summary_lines(result)) + "\n"


def _tagged(message: str, policy: str) -> str:
    tag = f"[{policy}]"
    return message if message.startswith(tag) else f"{tag} {message}"


def _group_lines(group: Group) -> list[str]:
    marker = f"{group.level}: "
    if len(group.members) == 1:
        only = group.members[0]
        return [f"{location(only)}: {marker}{_tagged(only.finding.message, only.policy)}"]
    headline = group.headline
    where = f"{location(headline)}: " if headline is not None and headline.file else ""
    lines = [f"{where}{marker}{_tagged(group.title, group.policy)}"]
    lines.extend(f"  {_member(member)}" for member in group.members[:SHOWN_MEMBERS])
    hidden = len(group.members) - SHOWN_MEMBERS
    if hidden > 0:
        lines.append(f"  … and {hidden:,} more (--format json lists every one)")
    return lines


def _member(violation: Violation) -> str:
    finding = violation.finding
    label = f'{finding.kind} "{finding.name}"'
    if violation.file is not None:
        return f"{location(violation)}: {label}"
    return f'{label} in namespace "{finding.namespace}"' if finding.namespace else label


def by_policy(violations: Sequence[Violation]) -> dict[str, dict[str, int]]:
    """{policy: {level: count}}, policies in the order their first finding came."""
    found: dict[str, dict[str, int]] = {}
    for violation in violations:
        per = found.setdefault(violation.policy, dict.fromkeys(LEVELS, 0))
        per[level(violation)] += 1
    return found


def summary_lines(result: ReportInput) -> list[str]:
    lines: list[str] = []
    tallies = by_policy(result.violations)
    if tallies:
        width = max(len(p) for p in tallies)
        lines.append("By policy:")
        for policy, per in tallies.items():
            text = ", ".join(plural(per[name], name) for name in LEVELS if per[name])
            lines.append(f"  {policy:<{width}}  {text}")
    if result.unverified:
        count = sum(1 for v in result.violations if v.unverified)
        names = ", ".join(result.unverified[:5])
        if len(result.unverified) > 5:
            names += f" and {len(result.unverified) - 5:,} more"
        lines.append(
            f"Unverified: {plural(len(result.unverified), 'namespace')} not in the input "
            f"({names}), so {plural(count, 'finding')} cannot be settled offline: check with "
            f"the platform's manifests or --cluster; --strict fails on them"
        )
    lines.append(summary_line(result))
    return lines
