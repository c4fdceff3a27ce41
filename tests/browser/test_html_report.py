"""The HTML report rendered by a real browser (Debian's headless Chromium): the counts, the
rows, sorting and filtering driven through the URL fragment the page's script honours, and
hostile names staying text. A screenshot is kept under test-artifacts/ for people to look at."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from webhook.audit import AuditResult
from webhook.policy.model import Finding, Mode, Violation
from webhook.report import render

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
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
HOSTILE = '<img src=x onerror="document.title=1">'


def violation(
    policy: str, kind: str, namespace: str, name: str, mode: Mode = Mode.ENFORCE
) -> Violation:
    message = f'[{policy}] {kind} "{name}" in namespace "{namespace}" breaks {policy}.'
    return Violation(Finding(policy, kind, namespace, name, message, message[:119]), mode)


def sample() -> AuditResult:
    """Seven findings in three namespaces, one of them with a hostile object name."""
    return AuditResult(
        resources=40,
        violations=[
            violation("require-role-labels", "Pod", "shop", "web"),
            violation("require-role-labels", "Pod", "shop", "cart"),
            violation("require-role-labels", "Deployment", "blog", "api"),
            violation("require-default-deny", "Namespace", "", "blog"),
            violation("require-default-deny", "Namespace", "", "ops"),
            violation("restrict-allow-all", "NetworkPolicy", "shop", "open", Mode.WARN),
            violation("require-role-labels", "Pod", "ops", HOSTILE),
        ],
    )


@dataclass
class Row:
    attrs: dict[str, str | None]
    cells: list[str] = field(default_factory=list)

    @property
    def visible(self) -> bool:
        return "hidden" not in self.attrs


class Dom(HTMLParser):
    """The parts of the dumped DOM the tests read: table rows, element texts by id, tags."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[Row] = []
        self.by_id: dict[str, str] = {}
        self.tags: list[str] = []
        self.body: dict[str, str | None] = {}
        self._in_tbody = False
        self._cell: list[str] | None = None
        self._ids: list[tuple[str, str, list[str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "body":
            self.body = attributes
        if tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows.append(Row(attributes))
        elif tag == "td" and self._in_tbody:
            self._cell = []
        if attributes.get("id"):
            self._ids.append((tag, str(attributes["id"]), []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].cells.append("".join(self._cell))
            self._cell = None
        if self._ids and self._ids[-1][0] == tag:
            _, ident, parts = self._ids.pop()
            self.by_id[ident] = "".join(parts)
            if self._ids:
                self._ids[-1][2].extend(parts)

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._ids:
            self._ids[-1][2].append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.fail("chromium is not installed: run scripts/install-test-deps", pytrace=False)
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render(sample(), "html"), encoding="utf-8")
    return path


def chromium(tmp: Path, *args: str) -> str:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered(page: Path, tmp: Path, fragment: str = "") -> Dom:
    url = page.as_uri() + (f"#{fragment}" if fragment else "")
    dom = Dom(chromium(tmp, "--dump-dom", url))
    assert dom.body.get("data-ready") == "true", "the page's script did not run"
    return dom


def names(dom: Dom) -> list[str]:
    return [row.cells[5] for row in dom.rows if row.visible]


def test_counts_chart_and_rows_render(page: Path, tmp_path: Path) -> None:
    """All seven findings show, with the chart's counts by policy and by namespace."""
    dom = rendered(page, tmp_path)
    assert dom.by_id["summary-line"] == "40 resources, 7 violations (6 enforced)"
    assert (dom.by_id["shown-count"], dom.by_id["total-count"]) == ("7", "7")
    assert len(dom.rows) == 7
    assert all(row.visible for row in dom.rows)
    assert dom.by_id["by-policy"] == "require-role-labels4require-default-deny2restrict-allow-all1"
    assert dom.by_id["by-namespace"] == "shop3blog2ops2"
    assert dom.rows[0].cells[:6] == [
        "error",
        "require-role-labels",
        "enforce",
        "Pod",
        "shop",
        "web",
    ]


@pytest.mark.parametrize(
    ("fragment", "expected_names", "shown"),
    [
        ("policy=require-default-deny", ["blog", "ops"], "2"),
        ("ns=shop", ["web", "cart", "open"], "3"),
        ("level=warning", ["open"], "1"),
        ("q=CART", ["cart"], "1"),
        ("sort=name", [HOSTILE, "api", "blog", "cart", "open", "ops", "web"], "7"),
        ("sort=name&dir=desc&policy=require-role-labels", ["web", "cart", "api", HOSTILE], "4"),
    ],
    ids=["by-policy", "by-namespace", "by-level", "free-text", "sorted", "sorted-desc-filtered"],
)
def test_fragment_sorts_and_filters_the_table(
    page: Path, tmp_path: Path, fragment: str, expected_names: list[str], shown: str
) -> None:
    """The URL fragment's sort and filters are applied by the page's script on load."""
    dom = rendered(page, tmp_path, fragment)
    assert names(dom) == expected_names
    assert dom.by_id["shown-count"] == shown


def test_hostile_names_stay_text(page: Path, tmp_path: Path) -> None:
    """Markup in an object name is shown as text: no element is created from it."""
    dom = rendered(page, tmp_path, "ns=ops")
    assert "img" not in dom.tags
    assert HOSTILE in names(dom)
    html = page.read_text(encoding="utf-8")
    assert "http://" not in html  # self-contained: nothing fetched
    assert "https://" not in html
    assert html.count("<script") == 1


def test_screenshot_is_kept_as_an_artifact(page: Path, tmp_path: Path) -> None:
    """A full-page screenshot lands in test-artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "html-report.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, "--window-size=1280,1000", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000  # a rendered page, not a blank one
