"""`--format html`: one self-contained page, no external assets, for admins and auditors.

- A chart of the violations by policy and by namespace (CSS bars: no library, no canvas), each
  namespace bar a link that filters the table to that namespace.
- A table of every finding, sortable by any column and filterable by free text, policy, level
  and namespace, with a small inline script. The page works without it (the table is plain
  HTML, already sorted by namespace); with it, the view state lives in the URL fragment
  (`#q=web&policy=require-role-labels&ns=shop&sort=name&dir=desc`), so a filtered view can be
  bookmarked or sent to a colleague.

Every value from the cluster or a manifest is escaped (`html.escape`, quotes included) and
nothing from them ever reaches the script: a report of hostile input must not become hostile.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from webhook.policy import RULE_IDS
from webhook.report.base import ReportInput, level, location, summary_line
from webhook.report.summary import breakdown, scope_namespace

MAX_CHART_NAMESPACES = 25
_COLORS = ("#c0392b", "#2471a3", "#b9770e", "#7d3c98", "#566573")
_LEVELS = ("error", "warning", "audit")
_COLUMNS = (
    ("level", "Level"),
    ("policy", "Policy"),
    ("mode", "Mode"),
    ("kind", "Kind"),
    ("namespace", "Namespace"),
    ("name", "Name"),
    ("source", "Source"),
    ("message", "Message"),
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{margin-bottom:.2rem}h2{margin-top:2rem}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.4rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;white-space:nowrap}
th button{all:unset;cursor:pointer;font-weight:bold}
th button::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button::after{content:" \\25B2";color:#222}
th[aria-sort=descending] button::after{content:" \\25BC";color:#222}
.error{color:#b00020}.warning{color:#8a5a00}.audit{color:#555}
td.message{white-space:pre-wrap;word-break:break-word}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(24rem,1fr));gap:2rem}
.bars{display:grid;grid-template-columns:max-content 1fr max-content;gap:.3rem .6rem;
align-items:center}
.track{display:flex;height:1.1rem;background:#eee;border-radius:3px;overflow:hidden}
.seg{height:100%}.count{font-variant-numeric:tabular-nums;text-align:right}
.legend span{display:inline-block;margin-right:1rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
.filters{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0;align-items:end}
.filters label{display:flex;flex-direction:column;font-size:.85rem}
"""

# Reads and writes the view state in location.hash; never reads anything else from the page
# than the table's own cells and data attributes.
_SCRIPT = """
(function () {
  var table = document.getElementById("findings");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = {
    q: document.getElementById("filter-q"),
    policy: document.getElementById("filter-policy"),
    level: document.getElementById("filter-level"),
    ns: document.getElementById("filter-ns")
  };
  var shown = document.getElementById("shown-count");
  var state = {q: "", policy: "", level: "", ns: "", sort: "", dir: "asc"};
  var columns = {};
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
    columns[th.dataset.key] = index;
    th.querySelector("button").addEventListener("click", function () {
      var key = th.dataset.key;
      state.dir = state.sort === key && state.dir === "asc" ? "desc" : "asc";
      state.sort = key;
      save();
    });
  });
  function read() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    Object.keys(state).forEach(function (key) {
      state[key] = params.get(key) || (key === "dir" ? "asc" : "");
    });
    Object.keys(controls).forEach(function (key) {
      if (controls[key]) { controls[key].value = state[key]; }
    });
  }
  function save() {
    var params = new URLSearchParams();
    Object.keys(state).forEach(function (key) {
      if (state[key] && !(key === "dir" && state[key] === "asc")) {
        params.set(key, state[key]);
      }
    });
    var hash = params.toString();
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    apply();
  }
  function apply() {
    var column = columns[state.sort];
    if (column !== undefined) {
      var sign = state.dir === "desc" ? -1 : 1;
      var sorted = rows.slice().sort(function (a, b) {
        var x = a.cells[column].textContent, y = b.cells[column].textContent;
        return sign * x.localeCompare(y, undefined, {numeric: true, sensitivity: "base"}) ||
          (rows.indexOf(a) - rows.indexOf(b));
      });
      var fragment = document.createDocumentFragment();
      sorted.forEach(function (row) { fragment.appendChild(row); });
      body.appendChild(fragment);
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (th.dataset.key === state.sort) {
        th.setAttribute("aria-sort", state.dir === "desc" ? "descending" : "ascending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
    var needle = state.q.toLowerCase(), count = 0;
    rows.forEach(function (row) {
      var keys = row.cells[0].dataset;
      var visible = (!state.policy || keys.policy === state.policy) &&
        (!state.level || keys.level === state.level) &&
        (!state.ns || keys.ns === state.ns) &&
        (!needle || row.textContent.toLowerCase().indexOf(needle) !== -1);
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = String(count);
    document.body.dataset.ready = "true";
  }
  Object.keys(controls).forEach(function (key) {
    var control = controls[key];
    if (!control) { return; }
    control.addEventListener(control.tagName === "INPUT" ? "input" : "change", function () {
      state[key] = control.value;
      save();
    });
  });
  window.addEventListener("hashchange", function () { read(); apply(); });
  read();
  apply();
})();
"""


def _color(policy: str) -> str:
    index = RULE_IDS.index(policy) if policy in RULE_IDS else len(RULE_IDS)
    return _COLORS[min(index, len(_COLORS) - 1)]


def _chart(result: ReportInput) -> str:
    tally = breakdown(result.violations)
    if not tally.total:
        return ""
    top = max(tally.by_policy.values())
    policy_rows = []
    for policy, count in tally.by_policy.items():
        width = 100 * count / top
        policy_rows.append(
            f'<span class="label">{escape(policy)}</span>'
            f'<span class="track"><span class="seg" style="width:{width:.2f}%;'
            f'background:{_color(policy)}"></span></span>'
            f'<span class="count" data-policy="{escape(policy)}">{count}</span>'
        )
    namespaces = list(tally.by_namespace.items())
    shown = namespaces[:MAX_CHART_NAMESPACES]
    widest = max(sum(counts.values()) for _, counts in shown)
    ns_rows = []
    for namespace, counts in shown:
        total = sum(counts.values())
        label = namespace or "(cluster-scoped)"
        segments = "".join(
            f'<span class="seg" title="{escape(policy)}: {count}" '
            f'style="width:{100 * count / widest:.2f}%;background:{_color(policy)}"></span>'
            for policy, count in counts.items()
        )
        link = f"#ns={escape(_fragment_value(namespace))}" if namespace else "#"
        ns_rows.append(
            f'<a class="label" href="{link}">{escape(label)}</a>'
            f'<span class="track">{segments}</span>'
            f'<span class="count" data-ns="{escape(namespace)}">{total}</span>'
        )
    rest = namespaces[MAX_CHART_NAMESPACES:]
    more = ""
    if rest:
        count = sum(sum(c.values()) for _, c in rest)
        more = f"<p>and {len(rest)} more namespaces with {count} violations.</p>"
    legend = "".join(
        f'<span><i style="background:{_color(p)}"></i>{escape(p)}</span>' for p in tally.by_policy
    )
    return (
        '<section class="charts" id="summary">'
        f'<div><h2>Violations by policy</h2><div class="bars" id="by-policy">'
        f"{''.join(policy_rows)}</div></div>"
        f'<div><h2>Violations by namespace</h2><p class="legend">{legend}</p>'
        f'<div class="bars" id="by-namespace">{"".join(ns_rows)}</div>{more}</div>'
        "</section>"
    )


def _fragment_value(text: str) -> str:
    # Namespace names are DNS labels, but escape what URLSearchParams would misread anyway.
    return quote(text, safe="")


def _filters(result: ReportInput) -> str:
    policies = sorted({v.policy for v in result.violations}, key=_policy_order)
    namespaces = sorted({scope_namespace(v.finding) for v in result.violations})
    policy_options = "".join(f'<option value="{escape(p)}">{escape(p)}</option>' for p in policies)
    level_options = "".join(f'<option value="{lv}">{lv}</option>' for lv in _LEVELS)
    ns_options = "".join(
        f'<option value="{escape(ns)}">{escape(ns or "(cluster-scoped)")}</option>'
        for ns in namespaces
    )
    return (
        '<div class="filters">'
        '<label>Search <input id="filter-q" type="search" placeholder="text in any column">'
        "</label>"
        f'<label>Policy <select id="filter-policy"><option value="">all</option>'
        f"{policy_options}</select></label>"
        f'<label>Level <select id="filter-level"><option value="">all</option>'
        f"{level_options}</select></label>"
        f'<label>Namespace <select id="filter-ns"><option value="">all</option>'
        f"{ns_options}</select></label>"
        "</div>"
    )


def _policy_order(policy: str) -> tuple[int, str]:
    return (RULE_IDS.index(policy) if policy in RULE_IDS else len(RULE_IDS), policy)


def _table(result: ReportInput) -> str:
    rows = []
    for violation in result.violations:
        finding = violation.finding
        severity = level(violation)
        # The row's filter keys ride on its first cell: rows stay bare `<tr>`s.
        keys = (
            f'data-policy="{escape(finding.policy)}" data-level="{severity}" '
            f'data-ns="{escape(scope_namespace(finding))}"'
        )
        cells = (
            f'<td class="{severity}" {keys}>{escape(severity)}</td>',
            f"<td>{escape(finding.policy)}</td>",
            f"<td>{escape(str(violation.mode))}</td>",
            f"<td>{escape(finding.kind)}</td>",
            f"<td>{escape(finding.namespace)}</td>",
            f"<td>{escape(finding.name)}</td>",
            f"<td>{escape(location(violation))}</td>",
            f'<td class="message">{escape(finding.message)}</td>',
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(
        f'<th data-key="{key}" scope="col"><button type="button">{title}</button></th>'
        for key, title in _COLUMNS
    )
    total = len(rows)
    return (
        f'<h2>Findings</h2>{_filters(result)}<p>Showing <span id="shown-count">{total}</span> '
        f'of <span id="total-count">{total}</span> findings.</p>'
        f'<table id="findings"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render(result: ReportInput) -> str:
    content = _chart(result) + _table(result) if result.violations else "<p>No violations.</p>"
    script = f'<script id="report-script">{_SCRIPT}</script>' if result.violations else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Guardrail report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Guardrail report</h1>"
        f'<p id="summary-line">{escape(summary_line(result))}</p>'
        f"{content}{script}</body></html>\n"
    )
