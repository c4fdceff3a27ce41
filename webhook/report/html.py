"""`--format html`: one self-contained page, no external assets, for admins and auditors.

From the top:

- a header an auditor can cite: when (UTC), what was judged (the paths, or the API server),
  the config's digest and the mode of each policy, then the totals every format prints;
- compliance by namespace, worst first: resources with no error or warning finding out of
  the resources judged there;
- what to fix, errors first: each level's findings by namespace (most findings first) and by
  rule, each rule's fix said once, a command with a copy button where there is one
  (`fixes.fix_command`), then who needs it; every group says its level and why (the mode,
  or why an enforce-mode finding is only a warning);
- the counts by policy.

Big reports stay small: namespaces are collapsed (`<details>`) once there are more than a
few groups, a group lists `MEMBERS_SHOWN` of its findings and counts the rest, the first
`DETAILED_GROUPS` groups are shown in full and the next ones as one line each, and past
`LISTED_GROUPS` only counted; the page says how much is shown and that `--format json` has
every finding. 50,677 findings in 2,000 namespaces make a page of 1.6 MB.

A small inline script adds copy buttons (`navigator.clipboard`, else a selection and
`document.execCommand("copy")`, else the command stays selected for Ctrl+C) and filters by
level, policy and text, kept in the URL fragment (`#level=error&policy=...&q=shop`). Without
it the page is whole: every group is there, the commands are plain selectable text.

Every value from the cluster or a manifest is escaped (`html.escape`, quotes included), and
nothing from them ever reaches the script, which is one constant: it reads only the page's
own text and the attributes this module writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from webhook.policy.model import Violation
from webhook.report.base import (
    ERROR,
    LEVELS,
    NOTE,
    WARNING,
    ReportInput,
    help_uri,
    level_reason,
    location,
    plural,
    severity,
    summary_line,
    tally,
)
from webhook.report.compliance import NamespaceCompliance, compliance
from webhook.report.fixes import fix_command
from webhook.report.groups import Group, NamespaceBlock, by_namespace, same_key
from webhook.report.text import by_policy

MEMBERS_SHOWN = 10  # findings listed per group; the rest are counted
DETAILED_GROUPS = 300  # groups shown in full (title, fix, members), errors first
LISTED_GROUPS = 2_000  # groups shown at least as one line; the rest are counted
OPEN_GROUPS = 12  # up to this many groups, every namespace is shown open
COMPLIANCE_TOP = 10  # compliance rows always shown; the rest behind a <details>
COMPLIANCE_ROWS = 500  # compliance rows in all; the rest are counted
CLUSTER_SCOPE_LABEL = "(cluster-scoped)"

LEVEL_TITLES = {
    ERROR: ("Errors", "would be denied"),
    WARNING: ("Warnings", "allowed with a warning, or never denied whatever the mode"),
    NOTE: ("Notes", "audit mode: recorded, never denied"),
}

_STYLE = """
*{box-sizing:border-box}
[hidden]{display:none!important}
html{-webkit-text-size-adjust:100%}
body{font:15px/1.45 system-ui,sans-serif;color:#1d1d1f;margin:0 auto;padding:1rem;
max-width:80rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.2rem;margin:1.6rem 0 .5rem}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
p,li,dd,dt,summary,code,pre{overflow-wrap:anywhere}
td,th{overflow-wrap:break-word}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f6;border:1px solid #ddd;
border-radius:4px;padding:.4rem .5rem;margin:.2rem 0}
dl#origin{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.15rem .8rem;
margin:.6rem 0}
dl#origin dt{font-weight:600}dl#origin dd{margin:0;min-width:0}
#totals{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}
#totals li{border-radius:4px;padding:.2rem .6rem;border:1px solid #ccc}
.badge{display:inline-block;border-radius:3px;padding:0 .35rem;font-size:.8rem;
font-weight:600;color:#fff;vertical-align:baseline}
.badge.error,#totals .error{background:#b00020;color:#fff;border-color:#b00020}
.badge.warning,#totals .warning{background:#8a5a00;color:#fff;border-color:#8a5a00}
.badge.note,#totals .note{background:#5f6368;color:#fff;border-color:#5f6368}
table{border-collapse:collapse;width:100%;max-width:64rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{background:#f4f4f6;font-size:.85rem}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.meter{display:block;height:.45rem;background:#e6e6e9;border-radius:3px;overflow:hidden;
margin-top:.15rem;min-width:3rem}
.meter span{display:block;height:100%;background:#2e7d32}
details.ns{border:1px solid #ddd;border-radius:4px;margin:.4rem 0;background:#fff}
details.ns>summary{cursor:pointer;padding:.4rem .6rem;background:#f7f7f9}
details.ns[open]>summary{border-bottom:1px solid #ddd}
.group{padding:.5rem .6rem;border-top:1px solid #eee}
.group:first-of-type{border-top:0}
.meta{margin:0;font-size:.85rem;color:#444}
.title{margin:.3rem 0}
.fix{margin:.3rem 0}
.fix p{margin:.2rem 0;font-size:.85rem;font-weight:600}
button.copy{font:inherit;font-size:.85rem;padding:.15rem .6rem;cursor:pointer}
.members{margin:.3rem 0;padding-left:1.2rem}
.members li{margin:.1rem 0}
.where{color:#555}
.more,.left-out{color:#555;font-style:italic}
@media (max-width:40rem){
table.cards,table.cards tbody,table.cards tr{display:block;width:100%}
table.cards thead{display:none}
table.cards tr{border-bottom:1px solid #ddd;padding:.3rem 0}
table.cards td{display:inline-block;border:0;padding:0 .8rem 0 0;text-align:left}
table.cards td[data-label]::before{content:attr(data-label) " ";color:#555;font-size:.85rem}
table.cards td.name{display:block;font-weight:600;overflow-wrap:anywhere}
table.cards .meter{display:inline-block;width:3rem;margin:0 0 0 .3rem}
}
.filters{display:flex;flex-wrap:wrap;gap:.6rem;margin:.6rem 0;align-items:end}
.filters label{display:flex;flex-direction:column;font-size:.85rem;min-width:0}
.filters input,.filters select{font:inherit;max-width:100%}
"""

# One constant: reads only this page's own text and the ids and data-* attributes that
# html.py writes; never builds markup from the page (textContent, never innerHTML).
_SCRIPT = """
(function () {
  "use strict";
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }
  function say(button, text) {
    button.textContent = text;
    window.setTimeout(function () { button.textContent = "Copy"; }, 2500);
  }
  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function fallback(button, source) {
    selectText(source);
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
    say(button, copied ? "Copied" : "Selected: press Ctrl+C");
  }
  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(
        function () { say(button, "Copied"); },
        function () { fallback(button, source); });
    } else {
      fallback(button, source);
    }
  }
  each(document.querySelectorAll("button.copy"), function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { copy(button); });
  });

  var controls = {
    level: document.getElementById("filter-level"),
    policy: document.getElementById("filter-policy"),
    q: document.getElementById("filter-q")
  };
  var blocks = Array.prototype.slice.call(document.querySelectorAll("details.ns"));
  var shown = document.getElementById("shown-blocks");
  var state = {level: "", policy: "", q: ""};
  var filters = document.getElementById("filters");
  if (filters) { filters.hidden = false; }
  function read() {
    var hash = location.hash.replace(/^#/, "");
    if (hash.indexOf("=") === -1) { return false; }
    var params = new URLSearchParams(hash);
    Object.keys(state).forEach(function (key) { state[key] = params.get(key) || ""; });
    Object.keys(controls).forEach(function (key) {
      if (controls[key]) { controls[key].value = state[key]; }
    });
    return true;
  }
  function save() {
    var params = new URLSearchParams();
    Object.keys(state).forEach(function (key) { if (state[key]) { params.set(key, state[key]); } });
    var hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    apply();
  }
  function apply() {
    var needle = state.q.toLowerCase(), count = 0, opened = 0;
    var filtering = Boolean(state.level || state.policy || needle);
    blocks.forEach(function (block) {
      var groups = block.querySelectorAll(".group");
      var any = false;
      each(groups, function (group) {
        var fits = !state.policy || group.getAttribute("data-policy") === state.policy;
        group.hidden = !fits;
        if (fits) { any = true; }
      });
      var visible = any && (!state.level || block.getAttribute("data-level") === state.level) &&
        (!needle || block.textContent.toLowerCase().indexOf(needle) !== -1);
      block.hidden = !visible;
      if (visible) {
        count += 1;
        if (filtering && opened < 50) { block.open = true; opened += 1; }
      }
    });
    each(document.querySelectorAll("section.level"), function (section) {
      section.hidden = Boolean(state.level) && section.getAttribute("data-level") !== state.level;
    });
    if (shown) { shown.textContent = String(count); }
  }
  function reveal() {
    var id = location.hash.replace(/^#/, "");
    if (!id || id.indexOf("=") !== -1) { return; }
    var target = document.getElementById(id);
    if (target && target.tagName === "DETAILS") { target.open = true; target.scrollIntoView(); }
  }
  Object.keys(controls).forEach(function (key) {
    var control = controls[key];
    if (!control) { return; }
    control.addEventListener(control.tagName === "INPUT" ? "input" : "change", function () {
      state[key] = control.value;
      save();
    });
  });
  window.addEventListener("hashchange", function () { if (read()) { apply(); } reveal(); });
  read();
  apply();
  reveal();
  document.body.setAttribute("data-ready", "true");
})();
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _namespace_label(namespace: str) -> str:
    return namespace or CLUSTER_SCOPE_LABEL


@dataclass(slots=True)
class _Budget:
    """What is left to show, and what was shown: groups in full, as one line, members."""

    detailed: int = DETAILED_GROUPS
    listed: int = LISTED_GROUPS
    groups_detailed: int = 0
    groups_listed: int = 0
    members_shown: int = 0  # findings listed by name (or as the group's one finding)
    blocks: int = 0  # namespace blocks written, for their ids
    left_findings: int = 0  # findings of groups only counted
    fixes: int = 0  # fix commands written, for the ids their copy buttons name

    def fix_id(self) -> str:
        self.fixes += 1
        return f"fix-{self.fixes - 1}"


# -- header ---------------------------------------------------------------------------------------
def _header(result: ReportInput) -> str:
    origin = result.origin
    title = f"Guardrail {origin.command} report" if origin.command else "Guardrail report"
    rows = []
    if origin.generated:
        rows.append(("generated", "Generated (UTC)", f"<time>{_e(origin.generated)}</time>"))
    if origin.sources:
        sources = ", ".join(f"<code>{_e(s)}</code>" for s in origin.sources)
        rows.append(("source", "Judged", sources))
    if origin.config_digest:
        where = f"<code>{_e(origin.config_file)}</code>" if origin.config_file else "every default"
        rows.append(
            (
                "config",
                "Config",
                f'{where}, <code id="config-digest">{_e(origin.config_digest)}</code>',
            )
        )
    if origin.modes:
        modes = ", ".join(f"<code>{_e(p)}</code> {_e(m)}" for p, m in origin.modes)
        rows.append(("modes", "Modes", modes))
    origin_list = "".join(
        f'<dt>{label}</dt><dd id="{ident}">{value}</dd>' for ident, label, value in rows
    )
    t = tally(result)
    totals = "".join(
        f'<li class="{name}"><a href="#level-{name}" style="color:inherit">'
        f"{_e(plural(t.of(name), name))}</a>: {_e(LEVEL_TITLES[name][1])}</li>"
        for name in LEVELS
        if t.of(name)
    )
    unverified = ""
    if result.unverified:
        names = ", ".join(f"<code>{_e(n)}</code>" for n in result.unverified[:10])
        if len(result.unverified) > 10:
            names += f" and {len(result.unverified) - 10:,} more"
        unverified = (
            f'<p id="unverified">{_e(plural(t.unverified, "finding"))} in '
            f"{_e(plural(len(result.unverified), 'namespace'))} the input says nothing about "
            f"({names}) cannot be settled offline: they are warnings, not errors. Check with "
            "the platform's manifests or <code>--cluster</code>; <code>--strict</code> fails "
            "on them.</p>"
        )
    return (
        f'<header><h1>{_e(title)}</h1><dl id="origin">{origin_list}</dl>'
        f'<p id="summary-line"><strong>{_e(summary_line(result))}</strong></p>'
        f'<ul id="totals">{totals}</ul>{unverified}</header>'
    )


# -- compliance -----------------------------------------------------------------------------------
def _compliance_row(row: NamespaceCompliance, anchors: dict[str, str]) -> str:
    label = _e(_namespace_label(row.namespace))
    anchor = anchors.get(row.namespace)
    name = f'<a href="#{anchor}">{label}</a>' if anchor else label
    return (
        f'<tr data-ns="{_e(row.namespace)}"><td class="name">{name}</td>'
        f'<td class="num" data-label="Compliant">{row.percent} %'
        f'<span class="meter" aria-hidden="true"><span style="width:{row.percent}%"></span>'
        "</span></td>"
        f'<td class="num" data-label="Passing">{row.passing:,} of {row.resources:,}</td>'
        f'<td class="num" data-label="Errors">{row.errors:,}</td>'
        f'<td class="num" data-label="Warnings">{row.warnings:,}</td>'
        f'<td class="num" data-label="Notes">{row.notes:,}</td></tr>'
    )


def _compliance_table(ident: str, rows: Sequence[str]) -> str:
    return (
        f'<table class="cards" id="{ident}"><thead><tr><th scope="col">Namespace</th>'
        '<th scope="col" class="num">Compliant</th><th scope="col" class="num">Passing</th>'
        '<th scope="col" class="num">Errors</th><th scope="col" class="num">Warnings</th>'
        f'<th scope="col" class="num">Notes</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table>"
    )


def _compliance(result: ReportInput, anchors: dict[str, str]) -> str:
    if not result.judged:
        return ""
    found = compliance(result)
    rows = [_compliance_row(row, anchors) for row in found[:COMPLIANCE_ROWS]]
    whole = sum(1 for row in found if not row.failing)
    parts = [
        '<section id="compliance"><h2>Compliance by namespace</h2>'
        f"<p>Resources judged with no error or warning finding, out of all judged in the "
        f"namespace, least compliant first. {_e(plural(len(found), 'namespace'))}, "
        f"{whole:,} fully compliant.</p>",
        _compliance_table("compliance-table", rows[:COMPLIANCE_TOP]),
    ]
    if len(rows) > COMPLIANCE_TOP:
        parts.append(
            f'<details id="compliance-rest"><summary>The next {len(rows) - COMPLIANCE_TOP:,} '
            f"namespaces</summary>"
            f"{_compliance_table('compliance-more', rows[COMPLIANCE_TOP:])}</details>"
        )
    if len(found) > COMPLIANCE_ROWS:
        rest = found[COMPLIANCE_ROWS:]
        parts.append(
            f'<p id="compliance-left-out" class="left-out">And {len(rest):,} more namespaces, '
            f"each at least {rest[0].percent} % compliant "
            f"({sum(1 for r in rest if not r.failing):,} fully): "
            "<code>--format json</code> has every finding.</p>"
        )
    parts.append("</section>")
    return "".join(parts)


# -- findings -------------------------------------------------------------------------------------
def _member_label(violation: Violation) -> str:
    finding = violation.finding
    # The namespace is the block's own; the file and line say where to edit.
    where = f' <span class="where">{_e(location(violation))}</span>' if violation.file else ""
    return f"{_e(finding.kind)} &quot;{_e(finding.name)}&quot;{where}"


def _fix_block(command: str, budget: _Budget, scope: str) -> str:
    ident = budget.fix_id()
    return (
        f'<div class="fix"><p>Fix{_e(scope)}:</p><pre><code id="{ident}">{_e(command)}</code></pre>'
        f'<button type="button" class="copy" data-copy="{ident}" hidden>Copy</button></div>'
    )


def _group_title(group: Group, alike: bool) -> str:
    if group.headline is not None:
        return group.headline.finding.message
    first = group.members[0].finding
    if len(group.members) == 1:
        return first.message
    tag = f"[{group.policy}] "
    if not alike:
        return f"{tag}{plural(len(group.members), 'finding')}, each said below."
    kinds = {m.finding.kind for m in group.members}
    noun = plural(len(group.members), kinds.pop() if len(kinds) == 1 else "object")
    return f"{tag}{noun}, the same finding; the first: {first.message.removeprefix(tag)}"


def _group(group: Group, budget: _Budget) -> str:
    members = group.members
    first = members[0]
    reason = level_reason(first)
    meta = (
        f'<p class="meta"><span class="badge {group.level}">{group.level}</span> '
        f'<a class="docs" href="{_e(help_uri(group.policy))}"><code>{_e(group.policy)}</code></a>'
        f" · severity {_e(severity(group.policy))} · {_e(reason)} · "
        f"{_e(plural(len(members), 'finding'))}</p>"
    )
    opening = (
        f'<div class="group" data-policy="{_e(group.policy)}" data-level="{group.level}" '
        f'data-count="{len(members)}">{meta}'
    )
    if budget.detailed <= 0:
        budget.groups_listed += 1
        summary = (group.headline or first).finding.summary
        return (
            f'{opening}<p class="title">{_e(summary)}</p><p class="left-out">Details left out '
            "to keep the page small: <code>--format json</code> has every finding.</p></div>"
        )
    budget.detailed -= 1
    budget.groups_detailed += 1
    keys = {same_key(m) for m in members}
    alike = group.headline is not None or len(keys) == 1
    own_fixes = [fix_command(m) for m in members]
    group_fix = fix_command(group.headline) if group.headline is not None else None
    if group_fix is None and None not in own_fixes and len(set(own_fixes)) == 1:
        group_fix = own_fixes[0]
    title = _group_title(group, alike)
    if group_fix is not None:
        # Said once, in the fix block below the title, with its copy button.
        title = title.replace(group_fix, "the command below")
    parts = [opening, f'<p class="title">{_e(title)}</p>']
    if group_fix is not None:
        scope = f" (all {len(members):,})" if len(members) > 1 else ""
        parts.append(_fix_block(group_fix, budget, scope))
    if len(members) > 1 or group.headline is not None:
        items = []
        for member, fix in zip(members[:MEMBERS_SHOWN], own_fixes, strict=False):
            text = _member_label(member)
            own = None if group_fix is not None else fix
            if not alike:
                message = member.finding.message
                if own is not None:
                    message = message.replace(own, "the command below")
                text += f'<br><span class="message">{_e(message)}</span>'
            if own is not None:
                text += _fix_block(own, budget, "")
            items.append(f"<li>{text}</li>")
        hidden = len(members) - MEMBERS_SHOWN
        if hidden > 0:
            items.append(
                f'<li class="more" data-count="{hidden}">… and {hidden:,} more: '
                "<code>--format json</code> lists "
                "every one</li>"
            )
        budget.members_shown += min(len(members), MEMBERS_SHOWN)
        parts.append(f'<ul class="members">{"".join(items)}</ul>')
    else:
        budget.members_shown += 1
        if first.file:
            parts.append(f'<p class="where">{_e(location(first))}</p>')
    parts.append("</div>")
    return "".join(parts)


def _block_summary(block: NamespaceBlock) -> str:
    per = ", ".join(f"{_e(g.policy)} {len(g.members):,}" for g in block.groups)
    return (
        f"<summary><strong>{_e(_namespace_label(block.namespace))}</strong> · "
        f"{_e(plural(block.count, block.level))} ({per})</summary>"
    )


def _sections(blocks: Sequence[NamespaceBlock], budget: _Budget, anchors: dict[str, str]) -> str:
    total_groups = sum(len(b.groups) for b in blocks)
    open_all = total_groups <= OPEN_GROUPS
    per_level = {name: sum(len(b.groups) for b in blocks if b.level == name) for name in LEVELS}
    # Errors come first, but never take the whole page: each later level keeps a share.
    kept = {
        name: (min(count, DETAILED_GROUPS // 6), min(count, LISTED_GROUPS // 6))
        for name, count in per_level.items()
    }
    out: list[str] = []
    for index, name in enumerate(LEVELS):
        mine = [b for b in blocks if b.level == name]
        if not mine:
            continue
        held_detailed = sum(kept[later][0] for later in LEVELS[index + 1 :])
        held_listed = sum(kept[later][1] for later in LEVELS[index + 1 :])
        budget.detailed -= held_detailed
        budget.listed -= held_listed
        title, meaning = LEVEL_TITLES[name]
        count = sum(b.count for b in mine)
        out.append(
            f'<section class="level" id="level-{name}" data-level="{name}">'
            f"<h3>{title}: {_e(meaning)} ({count:,} in "
            f"{_e(plural(len(mine), 'namespace'))})</h3>"
        )
        left = _LeftOut()
        for block in mine:
            if budget.listed <= 0:
                left.add(block)
                budget.left_findings += block.count
                continue
            budget.listed -= len(block.groups)
            ident = f"ns-{budget.blocks}"
            budget.blocks += 1
            anchors.setdefault(block.namespace, ident)  # its first block: the worst level
            opened = " open" if open_all or ident == "ns-0" else ""
            body = "".join(_group(g, budget) for g in block.groups)
            out.append(
                f'<details class="ns" id="{ident}" data-level="{name}" '
                f'data-ns="{_e(block.namespace)}" data-count="{block.count}"{opened}>'
                f"{_block_summary(block)}{body}</details>"
            )
        if left.blocks:
            out.append(
                f'<p class="left-out" id="left-out-{name}" data-count="{left.findings}">'
                f"And {left.findings:,} more "
                f"{name}s in {_e(plural(left.blocks, 'namespace'))} "
                f"({_e(plural(left.groups, 'group'))}), not listed to keep the page small: "
                "<code>--format json</code> lists every one.</p>"
            )
        budget.detailed += held_detailed
        budget.listed += held_listed
        out.append("</section>")
    return "".join(out)


@dataclass(slots=True)
class _LeftOut:
    blocks: int = 0
    groups: int = 0
    findings: int = 0

    def add(self, block: NamespaceBlock) -> None:
        self.blocks += 1
        self.groups += len(block.groups)
        self.findings += block.count


def _filters(result: ReportInput) -> str:
    policies = list(by_policy(result.violations))
    policy_options = "".join(f'<option value="{_e(p)}">{_e(p)}</option>' for p in policies)
    t = tally(result)
    level_options = "".join(
        f'<option value="{name}">{LEVEL_TITLES[name][0].lower()}</option>'
        for name in LEVELS
        if t.of(name)
    )
    return (
        '<div class="filters" id="filters" hidden>'
        '<label>Level <select id="filter-level"><option value="">all</option>'
        f"{level_options}</select></label>"
        '<label>Policy <select id="filter-policy"><option value="">all</option>'
        f"{policy_options}</select></label>"
        '<label>Namespace or name <input id="filter-q" type="search" '
        'placeholder="text shown below"></label>'
        '<p>Namespaces shown: <span id="shown-blocks"></span></p></div>'
    )


def _findings(result: ReportInput, anchors: dict[str, str]) -> str:
    budget = _Budget()
    blocks = by_namespace(result)
    sections = _sections(blocks, budget, anchors)
    total = len(result.violations)
    groups = sum(len(b.groups) for b in blocks)
    counted = groups - budget.groups_detailed - budget.groups_listed
    if not counted and not budget.groups_listed and budget.members_shown == total:
        shown = f"Every one of the {total:,} findings is shown."
    else:
        shown = (
            f"{plural(total, 'finding')} in {plural(groups, 'group')} (a rule's findings in "
            "one namespace). "
            f"In full: {budget.groups_detailed:,} groups, naming {budget.members_shown:,} "
            f"findings (up to {MEMBERS_SHOWN} per group)"
            + (f"; as one line: {budget.groups_listed:,} groups" if budget.groups_listed else "")
            + (
                f"; counted only: {counted:,} groups ({budget.left_findings:,} findings)"
                if counted
                else ""
            )
            + ". <code>--format json</code> lists every finding."
        )
    return (
        '<section id="findings"><h2>What to fix, errors first</h2>'
        f'<p id="shown">{shown}</p>{_filters(result)}{sections}</section>'
    )


def _by_policy(result: ReportInput) -> str:
    rows = "".join(
        f'<tr><td class="name"><a class="docs" href="{_e(help_uri(policy))}">'
        f"<code>{_e(policy)}</code></a> ({_e(severity(policy))})</td>"
        + "".join(
            f'<td class="num" data-label="{LEVEL_TITLES[name][0]}">{per[name]:,}</td>'
            for name in LEVELS
        )
        + "</tr>"
        for policy, per in by_policy(result.violations).items()
    )
    return (
        '<section id="by-policy"><h2>By policy</h2>'
        '<table class="cards" id="policy-table"><thead><tr>'
        '<th scope="col">Policy</th><th scope="col" class="num">Errors</th>'
        '<th scope="col" class="num">Warnings</th><th scope="col" class="num">Notes</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def render(result: ReportInput) -> str:
    anchors: dict[str, str] = {}
    if result.violations:
        findings = _findings(result, anchors)  # first: it names the blocks compliance links to
        content = _compliance(result, anchors) + findings + _by_policy(result)
    else:
        content = _compliance(result, anchors) + '<p id="no-violations">No violations.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Guardrail report</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"{_header(result)}<main>{content}</main>"
        f'<script id="report-script">{_SCRIPT}</script></body></html>\n'
    )
