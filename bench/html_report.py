"""Benchmark (not a test): the HTML report of a 50,000-finding audit, its size and how long
headless Chromium takes to render it.

The audit is tests/browser/big_report.py's: 2,000 namespaces, 64,000 objects and 50,677
findings of every level, with the engine's own messages. For each round:

- `render`: Python's `report.render(result, "html")`;
- `page`: the page's size in bytes;
- `chromium in page`: milliseconds from navigation start until the page is parsed, its
  script has run and its layout is done, as the page itself measures them
  (`performance.now()` in a script added at its end, after forcing layout), at 1400 px;
- `chromium wall`: seconds for `chromium --headless --dump-dom` of the page, and of an empty
  page (the browser's own start and stop), so the difference is what the page costs.

Figures are printed (and written to bench/results/html-report.json), never asserted.

    .venv/bin/python bench/html_report.py [--rounds 3] [--namespaces 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.big_report import big_result  # noqa: E402 - after the sys.path set-up
from webhook.report import render  # noqa: E402 - after the sys.path set-up
from webhook.report.base import tally  # noqa: E402 - after the sys.path set-up

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)
# Added at the end of the page: parsed and scripted by now; reading offsetHeight lays it out.
PROBE = """<script>(function () {
  var parsed = performance.now();
  var height = document.body.offsetHeight;
  var laid = performance.now();
  document.documentElement.setAttribute("data-bench",
    JSON.stringify({parsed: parsed, laid: laid, height: height,
                    nodes: document.getElementsByTagName("*").length}));
})();</script>"""
EMPTY = "<!DOCTYPE html><html><head><title>empty</title></head><body></body></html>\n"


def chromium(profile: Path, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def in_page(dom: str) -> dict[str, Any]:
    marker = 'data-bench="'
    start = dom.index(marker) + len(marker)
    raw = dom[start : dom.index('"', start)].replace("&quot;", '"')
    found: dict[str, Any] = json.loads(raw)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--namespaces", type=int, default=2000)
    options = parser.parse_args()

    started = time.perf_counter()
    result = big_result(options.namespaces)
    built = time.perf_counter() - started
    t = tally(result)
    print(
        f"audit of {t.resources:,} objects, {t.violations:,} findings "
        f"({t.errors:,} errors, {t.warnings:,} warnings, {t.notes:,} notes) built in {built:.1f}s"
    )
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="guardrail-html-bench-") as tmp:
        folder = Path(tmp)
        empty = folder / "empty.html"
        empty.write_text(EMPTY, encoding="utf-8")
        for index in range(options.rounds):
            load = os.getloadavg()[0]
            started = time.perf_counter()
            page = render(result, "html")
            rendered = time.perf_counter() - started
            path = folder / "report.html"
            path.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
            profile = folder / f"profile-{index}"
            wall, dom = chromium(profile, path.as_uri())
            baseline, _ = chromium(profile, empty.as_uri())
            measured = in_page(dom)
            rounds.append(
                {
                    "render_s": round(rendered, 3),
                    "page_bytes": len(page.encode()),
                    "chromium_parsed_ms": round(measured["parsed"]),
                    "chromium_laid_out_ms": round(measured["laid"]),
                    "dom_elements": measured["nodes"],
                    "chromium_wall_s": round(wall, 2),
                    "chromium_empty_wall_s": round(baseline, 2),
                    "load_average": load,
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
    summary = {
        "findings": t.violations,
        "page_bytes": rounds[-1]["page_bytes"],
        "render_s": statistics.median(r["render_s"] for r in rounds),
        "chromium_laid_out_ms": statistics.median(r["chromium_laid_out_ms"] for r in rounds),
        "chromium_wall_s": statistics.median(r["chromium_wall_s"] for r in rounds),
        "chromium_empty_wall_s": statistics.median(r["chromium_empty_wall_s"] for r in rounds),
        "rounds": rounds,
        "date": time.strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
    }
    print(
        f"\n{t.violations:,} findings: page {summary['page_bytes'] / 1e6:.2f} MB, "
        f"rendered by Python in {summary['render_s']:.2f} s; Chromium: parsed, scripted and "
        f"laid out in {summary['chromium_laid_out_ms'] / 1000:.2f} s, --dump-dom "
        f"{summary['chromium_wall_s']:.2f} s (empty page {summary['chromium_empty_wall_s']:.2f} s)"
        f" (medians of {len(rounds)} rounds)"
    )
    out = REPO / "bench" / "results" / "html-report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
