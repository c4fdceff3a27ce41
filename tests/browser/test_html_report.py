"""The HTML report in a real browser (Debian's headless Chromium, driven by its command line:
--dump-dom and --screenshot, no webdriver).

Two pages: the report of `guardrail check examples/manifests examples/state` (the real command)
and a generated audit of 50,000-odd findings (tests/browser/big_report.py), each at 1400 and
420 px. They are compared on structure, not pixels: the DOM as Chromium holds it after the
page's script ran (header fields, errors before warnings before notes, compliance rows, copy
buttons and the command each copies, every finding accounted for), and the page's width as
the browser lays it out. Screenshots are kept under test-artifacts/ for people to look at.

Chromium will not make a window narrower than 500 px, so widths are measured in an iframe of
the exact width: a probe script added to a copy of the report opens every `<details>`, reads
`document.documentElement.scrollWidth` and writes it into the parent's DOM before the dump.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import htmldom
from tests.browser.big_report import SERVER, big_result, config, objects
from webhook.audit import AuditResult, audit_objects
from webhook.config import default_config, digest
from webhook.policy.model import Direction, Finding, Mode, Violation
from webhook.policy.rules.require_default_deny import default_deny_command
from webhook.report import render
from webhook.report.base import DOCS_URL, LEVELS, tally
from webhook.report.html import _SCRIPT

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WIDTHS = (1400, 420)
MAX_PAGE_BYTES = 3_000_000
HOSTILE = '<img src=x onerror="document.title=1">'
BOTH = [Direction.INGRESS, Direction.EGRESS]

# Runs inside the report (in its iframe): opens every <details>, then reports the layout.
PROBE = """<script id="test-probe">(function () {
  var opened = 0;
  Array.prototype.forEach.call(document.querySelectorAll("details"), function (d) {
    if (!d.open) { d.open = true; opened += 1; }
  });
  var root = document.documentElement;
  var out = parent.document.getElementById("measured");
  out.setAttribute("data-scroll-width", String(root.scrollWidth));
  out.setAttribute("data-client-width", String(root.clientWidth));
  out.setAttribute("data-inner-width", String(window.innerWidth));
  out.setAttribute("data-opened", String(opened));
  out.setAttribute("data-ready", document.body.getAttribute("data-ready") || "");
})();</script>"""
FRAME = """<!DOCTYPE html><html><body style="margin:0"><div id="measured"></div>
<iframe src="{src}" style="border:0;width:{width}px;height:900px"></iframe></body></html>"""
# Copy buttons, clicked by a script after the report's own: the clipboard API as a stub that
# records what it was given, or no clipboard API and document.execCommand answering `copied`.
CLIPBOARD = """<script>Object.defineProperty(navigator, "clipboard", {configurable: true,
  value: {writeText: function (text) {
    document.documentElement.setAttribute("data-clipboard", text);
    return Promise.resolve();
  }}});</script>"""
NO_CLIPBOARD = """<script>Object.defineProperty(navigator, "clipboard",
  {configurable: true, value: undefined});
document.execCommand = function (name) {
  document.documentElement.setAttribute("data-exec", name + ":" + String(getSelection()));
  return COPIED;
};</script>"""
# Scripts off but for a probe with the nonce: it reads what the reader would see.
NO_SCRIPT = (
    """<head><meta http-equiv="Content-Security-Policy" content="script-src 'nonce-probe'">"""
)
SEEN = """<script nonce="probe">(function () {
  var shown = function (node) { return node.getClientRects().length > 0; };
  var root = document.documentElement;
  root.setAttribute("data-filters-shown", String(shown(document.getElementById("filters"))));
  root.setAttribute("data-buttons-shown", String(
    Array.prototype.filter.call(document.querySelectorAll("button.copy"), shown).length));
  root.setAttribute("data-codes-shown", String(
    Array.prototype.filter.call(document.querySelectorAll(".fix code"), shown).length));
})();</script>"""
CLICK = """<script>document.querySelector("button.copy").click();
document.documentElement.setAttribute("data-selection", String(getSelection()));</script>"""


@dataclass(frozen=True)
class Page:
    name: str
    path: Path
    result: AuditResult | None  # the big report's result; None for the examples'


def chromium(tmp: Path, *args: str) -> str:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Page]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run scripts/install-test-deps", pytrace=False)
    tmp = tmp_path_factory.mktemp("html")
    examples = subprocess.run(
        [GUARDRAIL, "check", "--format", "html", "examples/manifests", "examples/state"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert examples.returncode == 1, examples.stderr  # legacy's pod would be denied
    (tmp / "examples.html").write_text(examples.stdout, encoding="utf-8")
    big = big_result()
    (tmp / "big.html").write_text(render(big, "html"), encoding="utf-8")
    (tmp / "sample.html").write_text(render(sample(), "html"), encoding="utf-8")
    return {
        "examples": Page("examples", tmp / "examples.html", None),
        "big": Page("50000", tmp / "big.html", big),
        "sample": Page("sample", tmp / "sample.html", None),
    }


def dumped(page: Path, tmp: Path, fragment: str = "", *flags: str) -> htmldom.Element:
    url = page.as_uri() + (f"#{fragment}" if fragment else "")
    return htmldom.parse(chromium(tmp, *flags, "--dump-dom", url))


def with_scripts(page: Path, tmp: Path, before: str = "", after: str = "") -> Path:
    """A copy of the page with test scripts before the report's own and at the end."""
    text = page.read_text(encoding="utf-8")
    text = text.replace('<script id="report-script">', before + '<script id="report-script">')
    copy = tmp / f"scripted-{page.name}"
    copy.write_text(text.replace("</body>", after + "</body>"), encoding="utf-8")
    return copy


def measured(page: Path, tmp: Path, width: int) -> dict[str, int | str]:
    """The page's layout in a viewport exactly `width` CSS pixels wide, every group open."""
    probed = with_scripts(page, tmp, after=PROBE)
    frame = tmp / f"frame-{width}.html"
    frame.write_text(FRAME.format(src=probed.name, width=width), encoding="utf-8")
    dom = dumped(frame, tmp, "", "--allow-file-access-from-files", "--window-size=1500,1000")
    attrs = dom.by_id("measured").attrs
    assert attrs.get("data-ready") == "true", "the report's script did not run in the frame"
    return {k.removeprefix("data-"): int(v) if v.isdigit() else v for k, v in attrs.items() if v}


def violation(
    policy: str, kind: str, namespace: str, name: str, mode: Mode = Mode.ENFORCE, text: str = ""
) -> Violation:
    message = text or f'[{policy}] {kind} "{name}" in namespace "{namespace}" breaks {policy}.'
    return Violation(Finding(policy, kind, namespace, name, message, message[:119]), mode)


def sample() -> AuditResult:
    """Findings of every level in four namespaces, one object with a hostile name, and a
    namespace without a default-deny whose fix has a copy button."""
    deny = default_deny_command("legacy", BOTH)
    legacy = (
        f'[require-default-deny] Pod "worker" in namespace "legacy" cannot run there: namespace '
        f'"legacy" has no default-deny network policy for Ingress and Egress. Apply one first: '
        f"{deny}"
    )
    return AuditResult(
        resources=40,
        violations=[
            violation("require-role-labels", "Pod", "shop", "web"),
            violation("require-role-labels", "Pod", "shop", "cart"),
            violation("require-role-labels", "Deployment", "blog", "api"),
            violation("require-default-deny", "Pod", "legacy", "worker", text=legacy),
            violation("restrict-allow-all", "NetworkPolicy", "shop", "open", Mode.WARN),
            violation("require-role-labels", "Pod", "ops", HOSTILE, Mode.AUDIT),
        ],
    )


# -- the examples' report ----------------------------------------------------------------------
def test_examples_report_says_when_what_and_what_to_fix(
    pages: dict[str, Page], tmp_path: Path
) -> None:
    """`guardrail check examples/manifests examples/state` as a page: the header (a fresh UTC
    time, the paths, the default config's digest, the modes), the totals, compliance worst
    first, and the errors by namespace, legacy's with its default-deny to copy."""
    dom = dumped(pages["examples"].path, tmp_path)
    assert dom.one("body").attrs.get("data-ready") == "true", "the page's script did not run"
    generated = datetime.strptime(dom.by_id("generated").text(), "%Y-%m-%dT%H:%M:%SZ")
    assert abs(generated.replace(tzinfo=UTC).timestamp() - time.time()) < 600
    assert dom.by_id("source").text() == "examples/manifests, examples/state"
    assert dom.by_id("config").text() == f"every default, {digest(default_config())}"
    assert dom.by_id("modes").text() == (
        "require-role-labels enforce, require-default-deny enforce, "
        "protect-default-deny enforce, restrict-allow-all warn"
    )
    assert dom.by_id("summary-line").text() == "6 resources, 2 violations: 2 errors"
    assert compliance_rows(dom) == [
        ("legacy", "50 %", "1 of 2"),
        ("shop", "75 %", "3 of 4"),
    ]
    assert [(b.attrs["data-level"], b.attrs["data-ns"]) for b in dom.all("details", "ns")] == [
        ("error", "legacy"),
        ("error", "shop"),
    ]
    (button,) = dom.all("button", "copy")
    assert not button.hidden
    assert button.text() == "Copy"
    assert dom.by_id(str(button.attrs["data-copy"])).text() == default_deny_command("legacy", BOTH)
    assert dom.by_id("shown").text() == "Every one of the 2 findings is shown."


def compliance_rows(dom: htmldom.Element) -> list[tuple[str, ...]]:
    """(namespace, compliant, passing) per row of the table shown first."""
    rows = dom.by_id("compliance-table").one("tbody").all("tr")
    return [tuple(td.text() for td in row.all("td")[:3]) for row in rows]


# -- the 50,000-finding report ---------------------------------------------------------------------
def test_big_report_is_small_and_accounts_for_every_finding(
    pages: dict[str, Page], tmp_path: Path
) -> None:
    """50,000-odd findings make a page under 3 MB; errors come before warnings before notes;
    per level the findings in the page's blocks and the count of those left out add up to
    the level's total; compliance is worst first; every copy button copies its namespace's
    own default-deny."""
    page = pages["big"]
    assert page.result is not None
    t = tally(page.result)
    assert t.violations >= 50_000
    assert all(t.of(name) for name in LEVELS)
    assert page.path.stat().st_size < MAX_PAGE_BYTES
    dom = dumped(page.path, tmp_path)
    assert dom.one("body").attrs.get("data-ready") == "true"
    assert dom.by_id("source").text() == f"cluster {SERVER}"
    assert dom.by_id("summary-line").text() == (
        f"{t.resources:,} resources, {t.violations:,} violations: {t.errors:,} errors, "
        f"{t.warnings:,} warnings, {t.notes:,} notes"
    )
    sections = [s.attrs["data-level"] for s in dom.all("section", "level")]
    assert sections == ["error", "warning", "note"]
    for name in LEVELS:
        section = dom.by_id(f"level-{name}")
        shown = sum(int(str(b.attrs["data-count"])) for b in section.all("details", "ns"))
        left = section.all("p", "left-out")
        left_count = sum(int(str(p.attrs["data-count"])) for p in left if p.id)
        assert shown + left_count == t.of(name), name
        assert shown > 0
    assert "--format json lists every finding" in dom.by_id("shown").text()
    percents = [int(row[1].removesuffix(" %")) for row in compliance_rows(dom)]
    assert percents == sorted(percents)
    assert "--format json has every finding" in dom.by_id("compliance-left-out").text()
    buttons = dom.all("button", "copy")
    assert buttons
    for button in buttons:
        block = button.parent
        while block is not None and "ns" not in block.classes:
            block = block.parent
        assert block is not None
        namespace = str(block.attrs["data-ns"])
        assert dom.by_id(str(button.attrs["data-copy"])).text() == default_deny_command(
            namespace, BOTH
        )
    groups = dom.all("div", "group")
    assert all(len(g.all("li")) <= 11 for g in groups)  # ten named, then "… and N more"


def test_compliance_link_opens_a_collapsed_namespace(
    pages: dict[str, Page], tmp_path: Path
) -> None:
    """In the big report namespaces are collapsed; a compliance row links to its namespace's
    block, and following the link opens it."""
    source = htmldom.parse(pages["big"].path.read_text(encoding="utf-8"))
    link = source.by_id("compliance-table").all("a")[3]
    target = str(link.attrs["href"]).removeprefix("#")
    assert "open" not in source.by_id(target).attrs
    dom = dumped(pages["big"].path, tmp_path, target)
    opened = dom.by_id(target)
    assert "open" in opened.attrs
    assert opened.attrs["data-ns"] == link.text()


# -- layout ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["examples", "big", "sample"])
def test_no_horizontal_scroll(
    pages: dict[str, Page], tmp_path: Path, name: str, width: int
) -> None:
    """With every group open, the page is no wider than the viewport at 420 and 1400 px."""
    layout = measured(pages[name].path, tmp_path, width)
    assert layout["inner-width"] == width
    assert layout["scroll-width"] <= layout["client-width"] <= width, layout
    if name == "big":
        assert int(layout["opened"]) > 100  # the collapsed groups were measured too


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["examples", "big"])
def test_screenshots_are_kept_as_artifacts(
    pages: dict[str, Page], tmp_path: Path, name: str, width: int
) -> None:
    """Screenshots at 1400 and 420 px land in test-artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = pages[name]
    shot = ARTIFACTS / f"html-report-{page.name}-{width}.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, f"--window-size={width},1600", f"--screenshot={shot}", page.path.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (width, 1600)  # IHDR: width, height
    assert len(data) > 20_000  # a rendered page, not a blank one


# -- the script: filters, copy buttons, and the page without it ----------------------------------
def shown_blocks(dom: htmldom.Element) -> list[str]:
    return [str(b.attrs["data-ns"]) for b in dom.all("details", "ns") if not b.hidden]


@pytest.mark.parametrize(
    ("fragment", "expected", "policies"),
    [
        ("", ["shop", "blog", "legacy", "shop", "ops"], None),
        ("level=warning", ["shop"], {"restrict-allow-all"}),
        ("policy=require-default-deny", ["legacy"], {"require-default-deny"}),
        ("q=CART", ["shop"], {"require-role-labels"}),
        ("level=error&policy=require-role-labels", ["shop", "blog"], {"require-role-labels"}),
    ],
    ids=["all", "by-level", "by-policy", "free-text", "level-and-policy"],
)
def test_fragment_filters_the_groups(
    pages: dict[str, Page],
    tmp_path: Path,
    fragment: str,
    expected: list[str],
    policies: set[str] | None,
) -> None:
    """The URL fragment's level, policy and text filters are applied by the page's script."""
    dom = dumped(pages["sample"].path, tmp_path, fragment)
    assert not dom.by_id("filters").hidden
    assert shown_blocks(dom) == expected
    assert dom.by_id("shown-blocks").text() == str(len(expected))
    if policies is not None:
        visible = {str(g.attrs["data-policy"]) for g in dom.all("div", "group") if not g.hidden}
        assert visible == policies


@pytest.mark.parametrize(
    ("before", "copied", "label"),
    [
        (CLIPBOARD, None, "Copied"),
        (NO_CLIPBOARD.replace("COPIED", "true"), "true", "Copied"),
        (NO_CLIPBOARD.replace("COPIED", "false"), "false", "Selected: press Ctrl+C"),
    ],
    ids=["clipboard-api", "exec-command", "select-for-ctrl-c"],
)
def test_copy_button_copies_the_fix(
    pages: dict[str, Page], tmp_path: Path, before: str, copied: str | None, label: str
) -> None:
    """The copy button hands the command to navigator.clipboard; without it, it selects the
    command and asks document.execCommand to copy; when that fails too, the command stays
    selected and the button says to press Ctrl+C."""
    command = default_deny_command("legacy", BOTH)
    page = with_scripts(pages["examples"].path, tmp_path, before=before, after=CLICK)
    dom = dumped(page, tmp_path)
    root = dom.one("html").attrs
    assert dom.one("button", "copy").text() == label
    if copied is None:
        assert root.get("data-clipboard") == command
    else:
        assert root.get("data-exec") == f"copy:{command}"
        assert root.get("data-selection") == command


def test_page_is_whole_without_script(pages: dict[str, Page], tmp_path: Path) -> None:
    """With the report's script blocked (a Content-Security-Policy), every group and command
    is on the page and shown; the copy buttons and the filters, which need the script, are
    not shown."""
    text = pages["examples"].path.read_text(encoding="utf-8")
    page = tmp_path / "no-script.html"
    text = text.replace("<head>", NO_SCRIPT, 1).replace("</body>", SEEN + "</body>")
    page.write_text(text, encoding="utf-8")
    dom = dumped(page, tmp_path)
    assert dom.one("body").attrs.get("data-ready") is None
    seen = dom.one("html").attrs
    assert (seen["data-filters-shown"], seen["data-buttons-shown"]) == ("false", "0")
    assert seen["data-codes-shown"] == "1"
    assert [c.text() for c in dom.one("div", "fix").all("code")] == [
        default_deny_command("legacy", BOTH)
    ]
    assert sum(int(str(g.attrs["data-count"])) for g in dom.all("div", "group")) == 2


def test_hostile_names_stay_text(pages: dict[str, Page], tmp_path: Path) -> None:
    """Markup in an object name is shown as text: no element is made from it, and the page's
    one script is the report's constant."""
    dom = dumped(pages["sample"].path, tmp_path, "level=note")
    assert dom.all("img") == []
    (ops,) = [b for b in dom.all("details", "ns") if not b.hidden]
    assert HOSTILE in ops.text()
    html = pages["sample"].path.read_text(encoding="utf-8")
    assert html.count("<script") == 1
    script = re.search(r'<script id="report-script">(.*)</script>', html, re.S)
    assert script is not None
    assert script[1] == _SCRIPT
    assert "http://" not in html  # self-contained: nothing fetched
    # The only addresses are links to the rules' docs, never a fetched asset.
    assert set(re.findall(r"https://[^\"#]*", html)) <= {DOCS_URL}
    assert 'src="https://' not in html


def test_generated_audit_is_what_the_engine_finds() -> None:
    """The big report's namespaces are copies of 21 judged ones: for 42 namespaces the copies
    are exactly what the audit's engine finds when it judges every object."""
    copied = big_result(42, 6)
    judged = audit_objects(objects(42, 6), config())
    assert copied.violations == judged.violations
    assert copied.headlines == judged.headlines
    assert copied.judged == judged.judged
