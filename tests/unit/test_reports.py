"""Report renderers: each format says the same thing and parses as what it claims to be."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
import yaml

from tests import htmldom
from webhook.checking import CheckResult
from webhook.config import default_config, digest
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Direction, Finding, Mode, Violation
from webhook.policy.rules.require_default_deny import default_deny_command
from webhook.report import FORMATS, Resource, render
from webhook.report import html as html_report
from webhook.report.base import DOCS_URL, Origin
from webhook.report.compliance import NamespaceCompliance, compliance
from webhook.report.fixes import fix_command


def parse_xml(text: str) -> ET.Element:
    """Parse the JUnit report (our own output, so the stdlib parser is safe here)."""
    return ET.fromstring(text)  # noqa: S314 - not untrusted input: guardrail's own report


LABELS_MSG = (
    '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role. '
    "Add them under metadata.labels."
)
ALLOW_ALL_MSG = (
    '[restrict-allow-all] NetworkPolicy "open" in namespace "shop": rule spec.ingress[0] admits '
    "all traffic and cancels the namespace's default-deny. Restrict it with from peers or ports."
)
NAMESPACE_MSG = (
    '[require-default-deny] Namespace "blog" has no default-deny network policy for Ingress '
    'and Egress, so 1 workload in it would be rejected: Pod "post". Apply one first: ...'
)


def violation(
    policy: str,
    kind: str,
    namespace: str,
    name: str,
    message: str,
    mode: Mode = Mode.ENFORCE,
    file: str | None = None,
    line: int | None = None,
    *,
    advisory: bool = False,
) -> Violation:
    finding = Finding(policy, kind, namespace, name, message, message[:119], advisory=advisory)
    return Violation(finding, mode, file, line)


def sample() -> CheckResult:
    """Three resources in two files: an enforced, a warned and a namespace-level violation."""
    return CheckResult(
        resources=4,
        violations=[
            violation(
                "require-role-labels", "Pod", "shop", "web", LABELS_MSG, file="app/web.yaml", line=6
            ),
            violation(
                "restrict-allow-all",
                "NetworkPolicy",
                "shop",
                "open",
                ALLOW_ALL_MSG,
                Mode.WARN,
                "app/np.json",
                4,
            ),
            violation(
                "require-default-deny",
                "Namespace",
                "",
                "blog",
                NAMESPACE_MSG,
                Mode.AUDIT,
                "blog/post.yaml",
                1,
            ),
        ],
        judged=[
            Resource("v1", "Pod", "shop", "web", "app/web.yaml", 6),
            Resource("apps/v1", "Deployment", "shop", "api", "app/web.yaml", 20),
            Resource("networking.k8s.io/v1", "NetworkPolicy", "shop", "open", "app/np.json", 4),
            Resource("v1", "Pod", "blog", "post", "blog/post.yaml", 1),
        ],
    )


def empty() -> CheckResult:
    return CheckResult(
        resources=2,
        judged=[
            Resource("v1", "Pod", "shop", "ok", "ok.yaml", 1),
            Resource("v1", "Pod", "shop", "ok2", "ok.yaml", 9),
        ],
    )


# -- text --------------------------------------------------------------------------------------
def test_text_has_one_compiler_style_line_per_violation_and_a_summary() -> None:
    """Text: `file:line: level: message` (level follows mode), errors first, then the
    summary by policy and the totals, last."""
    assert render(sample(), "text") == (
        f"app/web.yaml:6: error: {LABELS_MSG}\n"
        f"app/np.json:4: warning: {ALLOW_ALL_MSG}\n"
        f"blog/post.yaml:1: note: {NAMESPACE_MSG}\n"
        "\n"
        "By policy:\n"
        "  require-role-labels   1 error\n"
        "  restrict-allow-all    1 warning\n"
        "  require-default-deny  1 note\n"
        "4 resources, 3 violations: 1 error, 1 warning, 1 note\n"
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (empty(), "2 resources, no violations\n"),
        (CheckResult(resources=1), "1 resource, no violations\n"),
        (
            CheckResult(
                resources=1,
                violations=[
                    violation(
                        "require-role-labels", "Pod", "", "p", LABELS_MSG, file="p.yaml", line=1
                    )
                ],
            ),
            f"p.yaml:1: error: {LABELS_MSG}\n\nBy policy:\n  require-role-labels  1 error\n"
            "1 resource, 1 violation: 1 error\n",
        ),
    ],
    ids=["clean", "singular-clean", "singular-violation"],
)
def test_text_summary_wording(result: CheckResult, expected: str) -> None:
    """A clean run says `no violations`; counts are pluralised correctly."""
    assert render(result, "text") == expected


def test_text_names_live_objects_without_a_file() -> None:
    """Violations from the cluster (no file) are located by `Kind namespace/name`."""
    result = CheckResult(
        resources=1, violations=[violation("require-role-labels", "Pod", "shop", "web", LABELS_MSG)]
    )
    assert render(result, "text").splitlines()[0] == f"Pod shop/web: error: {LABELS_MSG}"


def test_advisory_findings_are_warnings_in_text() -> None:
    """An advisory finding (never a denial) is marked `warning:` even in enforce mode."""
    result = CheckResult(
        resources=1,
        violations=[
            violation(
                "require-default-deny",
                "Namespace",
                "",
                "new",
                "[require-default-deny] x",
                file="ns.yaml",
                line=1,
                advisory=True,
            )
        ],
    )
    assert render(result, "text") == (
        "ns.yaml:1: warning: [require-default-deny] x\n\nBy policy:\n"
        "  require-default-deny  1 warning\n1 resource, 1 violation: 1 warning\n"
    )


# -- json --------------------------------------------------------------------------------------
def test_json_has_exactly_the_spec_schema() -> None:
    """JSON: SPEC §4's keys and, beside them, level, severity and docs; the summary's totals
    by level; file/line only from files."""
    result = sample()
    result.violations.append(violation("require-role-labels", "Pod", "live", "x", LABELS_MSG))
    doc = json.loads(render(result, "json"))
    assert doc["summary"] == {
        "resources": 4,
        "violations": 4,
        "errors": 2,
        "warnings": 1,
        "notes": 1,
        "unverified": 0,
        "unverifiedNamespaces": [],
    }
    assert doc["violations"][0] == {
        "policy": "require-role-labels",
        "mode": "enforce",
        "level": "error",
        "severity": "medium",
        "helpUri": "https://github.com/guardrail-dev/guardrail/blob/main/README.md#require-role-labels",
        "kind": "Pod",
        "namespace": "shop",
        "name": "web",
        "message": LABELS_MSG,
        "file": "app/web.yaml",
        "line": 6,
    }
    assert doc["violations"][2]["namespace"] == ""
    assert doc["violations"][2]["mode"] == "audit"
    assert set(doc["violations"][3]) == {
        "policy",
        "mode",
        "level",
        "severity",
        "helpUri",
        "kind",
        "namespace",
        "name",
        "message",
    }


def test_json_of_a_clean_run() -> None:
    """JSON of a clean run is the same object with an empty violation list."""
    assert json.loads(render(empty(), "json")) == {
        "summary": {
            "resources": 2,
            "violations": 0,
            "errors": 0,
            "warnings": 0,
            "notes": 0,
            "unverified": 0,
            "unverifiedNamespaces": [],
        },
        "violations": [],
    }


# -- sarif -------------------------------------------------------------------------------------
def test_sarif_has_a_rule_per_policy_and_located_results() -> None:
    """SARIF 2.1.0: rules for all four policies; levels error/warning/note; file and line."""
    doc = json.loads(render(sample(), "sarif"))
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "guardrail"
    # The shipped rules first, in this order; a rule added later comes after them.
    assert [r["id"] for r in driver["rules"]][:4] == [
        "require-role-labels",
        "require-default-deny",
        "protect-default-deny",
        "restrict-allow-all",
    ]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("require-role-labels", "error"),
        ("restrict-allow-all", "warning"),
        ("require-default-deny", "note"),
    ]
    for result in results:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    first = results[0]
    assert first["message"]["text"] == LABELS_MSG
    physical = first["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "app/web.yaml"}, "region": {"startLine": 6}}
    assert first["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "shop/Pod/web"


@pytest.mark.parametrize(
    ("file", "uri"),
    [
        ("<stdin>", "%3Cstdin%3E"),
        ("dir with space/a.yaml", "dir%20with%20space/a.yaml"),
        ("/abs/p.yaml", "file:///abs/p.yaml"),
    ],
    ids=["stdin", "space", "absolute"],
)
def test_sarif_uris_are_valid_uri_references(file: str, uri: str) -> None:
    """File names become URI references: percent-encoded, file:// for absolute paths."""
    result = CheckResult(
        resources=1,
        violations=[
            violation("require-role-labels", "Pod", "a", "b", LABELS_MSG, file=file, line=1)
        ],
    )
    doc = json.loads(render(result, "sarif"))
    location = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == uri


# -- junit -------------------------------------------------------------------------------------
def test_junit_has_a_suite_per_file_and_a_case_per_resource() -> None:
    """JUnit: suites by file, a testcase per judged resource, failures for enforced only."""
    root = parse_xml(render(sample(), "junit"))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures")) == ("5", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["app/web.yaml", "app/np.json", "blog/post.yaml"]
    web = suites["app/web.yaml"]
    assert [c.get("name") for c in web.findall("testcase")] == [
        "Pod shop/web (line 6)",
        "Deployment shop/api (line 20)",
    ]
    failure = web.find("testcase/failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message"), failure.text) == (
        "require-role-labels",
        LABELS_MSG,
        LABELS_MSG,
    )
    np_case = suites["app/np.json"].find("testcase")
    assert np_case is not None
    assert np_case.find("failure") is None
    assert np_case.findtext("system-out") == f"warning: {ALLOW_ALL_MSG}"
    # The namespace is not one of the judged objects: it gets a testcase of its own.
    blog = [c.get("name") for c in suites["blog/post.yaml"].findall("testcase")]
    assert blog == ["Pod blog/post (line 1)", "Namespace blog (line 1)"]


def test_junit_escapes_markup_and_control_characters() -> None:
    """Messages with markup and control characters still give well-formed XML, text intact."""
    nasty = '[require-role-labels] Pod "<x>&\'" label role="\x1b[31m" is not allowed.'
    result = CheckResult(
        resources=1,
        violations=[
            violation("require-role-labels", "Pod", "a", "<x>&'", nasty, file="a&b.yaml", line=1)
        ],
    )
    root = parse_xml(render(result, "junit"))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.text == nasty.replace("\x1b", "\\x1b")
    assert root.find("testsuite").get("name") == "a&b.yaml"  # type: ignore[union-attr]  # the test fails on None anyway


# -- policyreport ------------------------------------------------------------------------------
def test_policyreport_has_a_report_per_namespace_holding_its_namespace_findings() -> None:
    """PolicyReport per namespace; a namespace's missing default-deny is in its own report
    (as the live audit files it), so no ClusterPolicyReport when nothing is cluster-scoped."""
    docs = list(yaml.safe_load_all(render(sample(), "policyreport")))
    assert [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs] == [
        ("PolicyReport", "guardrail-blog", "blog"),
        ("PolicyReport", "guardrail-shop", "shop"),
    ]
    assert all(d["apiVersion"] == "wgpolicyk8s.io/v1alpha2" for d in docs)
    blog, shop = docs
    assert blog["summary"] == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}
    assert shop["summary"] == {"pass": 0, "fail": 1, "warn": 1, "error": 0, "skip": 0}
    assert [(r["policy"], r["rule"], r["result"], r["severity"]) for r in shop["results"]] == [
        ("require-role-labels", "require-role-labels", "fail", "medium"),
        ("restrict-allow-all", "restrict-allow-all", "warn", "medium"),
    ]
    first = shop["results"][0]
    assert first["message"] == LABELS_MSG
    assert first["source"] == "guardrail"
    assert first["resources"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": "shop"}
    ]
    assert first["properties"] == {"mode": "enforce", "file": "app/web.yaml", "line": "6"}
    (namespace_result,) = blog["results"]
    assert (namespace_result["result"], namespace_result["severity"]) == ("fail", "high")
    assert namespace_result["resources"] == [
        {"apiVersion": "v1", "kind": "Namespace", "name": "blog"}
    ]


def test_policyreport_of_nothing_is_an_empty_stream() -> None:
    """With nothing judged there is no report, and the output is still valid (empty) YAML."""
    assert list(yaml.safe_load_all(render(CheckResult(), "policyreport"))) == []


# -- html and dispatch -------------------------------------------------------------------------
DENY_LEGACY = default_deny_command("legacy", [Direction.INGRESS, Direction.EGRESS])


def pod_denied(namespace: str, name: str, file: str, line: int) -> Violation:
    message = (
        f'[require-default-deny] Pod "{name}" in namespace "{namespace}" cannot run there: '
        f'namespace "{namespace}" has no default-deny network policy for Ingress and Egress. '
        f"Apply one first: {default_deny_command(namespace, [Direction.INGRESS, Direction.EGRESS])}"
    )
    return violation("require-default-deny", "Pod", namespace, name, message, file=file, line=line)


def html_sample() -> CheckResult:
    """Every level, and each reason a finding of an enforce-mode policy is only a warning:
    three pods rejected for their namespace's sake (one headline), an unverified workload,
    an advisory namespace, a warn-mode policy and an audit-mode one."""
    legacy = [pod_denied("legacy", f"worker-{i}", "legacy.yaml", 1 + 10 * i) for i in range(3)]
    headline = violation(
        "require-default-deny",
        "Namespace",
        "",
        "legacy",
        '[require-default-deny] Namespace "legacy" has no default-deny network policy for '
        'Ingress and Egress, so 3 workloads in it would be rejected: Pod "worker-0", Pod '
        f'"worker-1", Pod "worker-2". Apply one first: {DENY_LEGACY}',
        file="legacy.yaml",
        line=40,
    )
    unverified = replace(
        violation(
            "require-default-deny",
            "Deployment",
            "app",
            "api",
            '[require-default-deny] Deployment "api" in namespace "app": not verified',
            file="app.yaml",
            line=1,
        ),
        unverified=True,
    )
    advisory = violation(
        "require-default-deny",
        "Namespace",
        "",
        "fresh",
        '[require-default-deny] Namespace "fresh" has no default-deny network policy',
        file="fresh.yaml",
        line=1,
        advisory=True,
    )
    return CheckResult(
        resources=9,
        violations=[
            *legacy,
            violation(
                "require-role-labels", "Pod", "shop", "web", LABELS_MSG, file="w.yaml", line=6
            ),
            unverified,
            advisory,
            violation(
                "restrict-allow-all",
                "NetworkPolicy",
                "shop",
                "open",
                ALLOW_ALL_MSG,
                Mode.WARN,
                "np.yaml",
                1,
            ),
            violation(
                "require-default-deny",
                "Namespace",
                "",
                "blog",
                NAMESPACE_MSG,
                Mode.AUDIT,
                "blog.yaml",
                1,
            ),
        ],
        judged=[
            *(
                Resource("v1", "Pod", "legacy", f"worker-{i}", "legacy.yaml", 1 + 10 * i)
                for i in range(3)
            ),
            Resource("v1", "Namespace", "", "legacy", "legacy.yaml", 40),
            Resource("v1", "Pod", "shop", "web", "w.yaml", 6),
            Resource("v1", "Pod", "shop", "ok", "w.yaml", 20),
            Resource("networking.k8s.io/v1", "NetworkPolicy", "shop", "open", "np.yaml", 1),
            Resource("apps/v1", "Deployment", "app", "api", "app.yaml", 1),
            Resource("v1", "Namespace", "", "fresh", "fresh.yaml", 1),
            Resource("v1", "Namespace", "", "blog", "blog.yaml", 1),
        ],
        headlines={("require-default-deny", "legacy"): headline},
        unverified=["app"],
        origin=Origin(
            generated="2027-01-15T08:00:00Z",
            command="check",
            sources=("legacy.yaml", "standard input"),
            config_file="<config>.yaml",
            config_digest=digest(default_config()),
            modes=(("require-role-labels", "enforce"), ("restrict-allow-all", "warn")),
        ),
    )


def test_html_is_one_escaped_page() -> None:
    """HTML: one self-contained page; markup from manifests is escaped, never interpreted, and
    the one script is the module's constant: nothing from the input reaches it."""
    hostile = "<script>alert(1)</script>\"'&"
    result = CheckResult(
        resources=1,
        violations=[
            violation(
                "require-role-labels",
                hostile,
                hostile,
                hostile,
                f"[require-role-labels] {hostile}",
                file=hostile,
                line=1,
            )
        ],
        judged=[Resource("v1", hostile, hostile, hostile, hostile, 1)],
        origin=Origin(generated="now", sources=(hostile,), config_file=hostile, config_digest="d"),
    )
    page = render(result, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert page.count("<script") == 1
    assert page.split('<script id="report-script">')[1].split("</script>")[0] == html_report._SCRIPT
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in page
    assert "http://" not in page
    # Self-contained: nothing fetched; the only addresses are links to the rules' docs.
    assert set(re.findall(r"https://[^\"#]*", page)) <= {DOCS_URL}
    assert 'src="https://' not in page
    assert "1 resource, 1 violation: 1 error" in page
    assert "No violations." in render(empty(), "html")


def test_html_header_says_when_what_and_which_config() -> None:
    """The header: generation time, what was judged, the config file and digest, the modes,
    then the totals every format prints; a result built by hand has no header rows."""
    dom = htmldom.parse(render(html_sample(), "html"))
    assert dom.one("h1").text() == "Guardrail check report"
    assert dom.by_id("generated").text() == "2027-01-15T08:00:00Z"
    assert dom.by_id("source").text() == "legacy.yaml, standard input"
    assert dom.by_id("config").text() == f"<config>.yaml, {digest(default_config())}"
    assert dom.by_id("modes").text() == "require-role-labels enforce, restrict-allow-all warn"
    assert dom.by_id("summary-line").text() == (
        "9 resources, 8 violations: 4 errors, 3 warnings, 1 note"
    )
    assert [li.text() for li in dom.by_id("totals").all("li")] == [
        "4 errors: would be denied",
        "3 warnings: allowed with a warning, or never denied whatever the mode",
        "1 note: audit mode: recorded, never denied",
    ]
    assert (
        "1 finding in 1 namespace the input says nothing about (app)"
        in dom.by_id("unverified").text()
    )
    bare = htmldom.parse(render(sample(), "html"))
    assert bare.by_id("origin").all("dd") == []
    assert bare.one("h1").text() == "Guardrail report"


def test_html_errors_come_first_by_namespace_and_rule() -> None:
    """Levels in order (errors, warnings, notes); in each, a block per namespace, most findings
    first, holding one group per rule; the three rejected pods are one group under their
    namespace's headline."""
    dom = htmldom.parse(render(html_sample(), "html"))
    blocks = [
        (b.attrs["data-level"], b.attrs["data-ns"], b.attrs["data-count"])
        for b in dom.all("details", "ns")
    ]
    assert blocks == [
        ("error", "legacy", "3"),
        ("error", "shop", "1"),
        ("warning", "app", "1"),
        ("warning", "fresh", "1"),
        ("warning", "shop", "1"),
        ("note", "blog", "1"),
    ]
    legacy = dom.all("details", "ns")[0]
    group = legacy.one("div", "group")
    assert group.one("p", "title").text() == (
        '[require-default-deny] Namespace "legacy" has no default-deny network policy for '
        'Ingress and Egress, so 3 workloads in it would be rejected: Pod "worker-0", Pod '
        '"worker-1", Pod "worker-2". Apply one first: the command below'
    )
    assert [li.text() for li in group.one("ul", "members").all("li")] == [
        'Pod "worker-0" legacy.yaml:1',
        'Pod "worker-1" legacy.yaml:11',
        'Pod "worker-2" legacy.yaml:21',
    ]


def test_html_says_each_fix_once_with_a_copy_button() -> None:
    """A namespace's fix is one command, once, in a code block its copy button names; the
    button is hidden until the script shows it (without script the command is plain text)."""
    page = render(html_sample(), "html")
    dom = htmldom.parse(page)
    buttons = dom.all("button", "copy")
    assert len(buttons) == 1
    assert "hidden" in buttons[0].attrs
    assert dom.by_id(str(buttons[0].attrs["data-copy"])).text() == DENY_LEGACY
    assert dom.text().count(DENY_LEGACY) == 1
    assert dom.one("div", "fix").one("p").text() == "Fix (all 3):"


def test_html_level_follows_mode_and_says_why() -> None:
    """Each group says its level and the reason in the mode's words: an enforce-mode finding
    that is only a warning says it is unverified or advisory."""
    dom = htmldom.parse(render(html_sample(), "html"))
    metas = {(g.attrs["data-level"], g.one("p", "meta").text()) for g in dom.all("div", "group")}
    assert metas == {
        (
            "error",
            "error require-default-deny · severity high · enforce mode: would be denied · 3 findings",
        ),
        (
            "error",
            "error require-role-labels · severity medium · enforce mode: would be denied · 1 finding",
        ),
        (
            "warning",
            "warning require-default-deny · severity high · enforce mode, but unverified: the input holds "
            "nothing about its namespace, so it cannot be settled offline · 1 finding",
        ),
        (
            "warning",
            "warning require-default-deny · severity high · enforce mode, but advisory: never denied, it warns "
            "of rejections to come · 1 finding",
        ),
        (
            "warning",
            "warning restrict-allow-all · severity medium · warn mode: allowed with a warning · 1 finding",
        ),
        (
            "note",
            "note require-default-deny · severity high · audit mode: recorded, never denied · 1 finding",
        ),
    }


def test_html_compliance_by_namespace_worst_first() -> None:
    """Per namespace: resources with no error or warning finding out of those judged there,
    least compliant first; a note does not count against it; a row links to its findings."""
    dom = htmldom.parse(render(html_sample(), "html"))
    rows = [
        [td.text() for td in row.all("td")]
        for row in dom.by_id("compliance-table").one("tbody").all("tr")
    ]
    assert rows == [
        ["app", "0 %", "0 of 1", "0", "1", "0"],
        ["fresh", "0 %", "0 of 1", "0", "1", "0"],
        ["legacy", "25 %", "1 of 4", "3", "0", "0"],
        ["shop", "33 %", "1 of 3", "1", "1", "0"],
        ["blog", "100 %", "1 of 1", "0", "0", "1"],
    ]
    link = dom.by_id("compliance-table").all("a")[2]
    assert link.text() == "legacy"
    target = dom.by_id(str(link.attrs["href"]).removeprefix("#"))
    assert (target.tag, target.attrs["data-ns"], target.attrs["data-level"]) == (
        "details",
        "legacy",
        "error",
    )


def test_compliance_counts_each_judged_manifest_and_skips_notes() -> None:
    """Two manifests of one Deployment are two resources (check judges both); findings of
    audit-mode policies leave the figure alone; cluster-scoped objects are the scope ""."""
    result = CheckResult(
        resources=4,
        violations=[
            violation(
                "require-role-labels",
                "Deployment",
                "shop",
                "web",
                LABELS_MSG,
                file="a.yaml",
                line=1,
            ),
            violation(
                "require-role-labels", "Pod", "shop", "p", LABELS_MSG, Mode.AUDIT, "p.yaml", 1
            ),
        ],
        judged=[
            Resource("apps/v1", "Deployment", "shop", "web", "a.yaml", 1),
            Resource("apps/v1", "Deployment", "shop", "web", "b.yaml", 1),
            Resource("v1", "Pod", "shop", "p", "p.yaml", 1),
            Resource("projectcalico.org/v3", "GlobalNetworkPolicy", "", "g", "g.yaml", 1),
        ],
    )
    assert compliance(result) == [
        NamespaceCompliance("shop", resources=3, failing=1, errors=1, warnings=0, notes=1),
        NamespaceCompliance("", resources=1, failing=0, errors=0, warnings=0, notes=0),
    ]
    assert compliance(result)[0].percent == 66


def test_fix_command_is_the_rules_own_command() -> None:
    """The command in a require-default-deny message is found whole, as the rule wrote it."""
    assert fix_command(pod_denied("legacy", "w", "f.yaml", 1)) == DENY_LEGACY
    ingress = default_deny_command("shop", [Direction.INGRESS])
    message = f'[require-default-deny] Pod "w" in namespace "shop" ... Apply one first: {ingress}'
    assert fix_command(violation("require-default-deny", "Pod", "shop", "w", message)) == ingress


@pytest.mark.parametrize(
    ("namespace", "scope", "command"),
    [
        ("x'; touch /tmp/owned; echo '", "x'; touch /tmp/owned; echo '", None),
        ("legacy", "other", None),
        ("legacy", "legacy", DENY_LEGACY.replace('"podSelector":{}', '"podSelector":{"a":1}')),
        ("legacy", "legacy", DENY_LEGACY.replace("kubectl apply", "kubectl delete")),
        ("legacy", "legacy", "Add them under metadata.labels."),
    ],
    ids=["quote-in-namespace", "another-namespace", "altered-json", "another-verb", "none"],
)
def test_fix_command_refuses_what_the_rule_did_not_write(
    namespace: str, scope: str, command: str | None
) -> None:
    """No command is offered unless it is exactly the rule's default-deny for the finding's
    own, valid namespace: a manifest's name must never become someone's shell line."""
    text = command or default_deny_command(namespace, [Direction.INGRESS, Direction.EGRESS])
    message = f'[require-default-deny] Pod "w" in namespace "{scope}" ... Apply one first: {text}'
    assert fix_command(violation("require-default-deny", "Pod", scope, "w", message)) is None


def test_html_group_lists_ten_and_counts_the_rest() -> None:
    """A group names MEMBERS_SHOWN of its findings and counts the others."""
    result = CheckResult(
        resources=25,
        violations=[pod_denied("legacy", f"w{i:02d}", "l.yaml", i + 1) for i in range(25)],
    )
    dom = htmldom.parse(render(result, "html"))
    items = dom.one("ul", "members").all("li")
    assert len(items) == html_report.MEMBERS_SHOWN + 1
    assert items[-1].attrs["data-count"] == "15"
    assert items[-1].text() == "… and 15 more: --format json lists every one"
    assert dom.by_id("shown").text().startswith("25 findings in 1 group (")


def test_html_of_50000_findings_is_small_and_counts_every_one() -> None:
    """50,000 findings in 50,000 namespaces (the worst case: nothing groups) make a page
    under 3 MB that still accounts for every finding: per level, the blocks shown and the
    count of those left out add up to the total, and it says `--format json` has them all."""
    result = CheckResult(
        resources=50_000,
        violations=[
            violation(
                "require-role-labels" if i % 5 else "restrict-allow-all",
                "Pod",
                f"team-{i:05d}",
                f"pod-{i:05d}",
                LABELS_MSG.replace("shop", f"team-{i:05d}").replace("web", f"pod-{i:05d}"),
                Mode.ENFORCE if i % 5 else Mode.WARN,
                f"apps/team-{i:05d}.yaml",
                1,
            )
            for i in range(50_000)
        ],
    )
    page = render(result, "html")
    assert len(page.encode()) < 3_000_000
    dom = htmldom.parse(page)
    for name, total in (("error", 40_000), ("warning", 10_000)):
        section = dom.by_id(f"level-{name}")
        shown = sum(int(str(b.attrs["data-count"])) for b in section.all("details", "ns"))
        left = int(str(dom.by_id(f"left-out-{name}").attrs["data-count"]))
        assert shown + left == total
        assert shown > 0
    assert "--format json lists every finding" in dom.by_id("shown").text()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_a_clean_run(fmt: str) -> None:
    """Every --format renders a run with no violations without error, ending in a newline."""
    assert render(empty(), fmt).endswith("\n")


def test_unknown_format_is_an_error() -> None:
    """An unknown format name is a GuardrailError listing the known ones."""
    with pytest.raises(GuardrailError) as info:
        render(empty(), "csv")
    assert str(info.value) == (
        "unknown report format 'csv' (expected one of text, json, sarif, junit, policyreport, html)"
    )


def _github_anchor(heading: str) -> str:
    """The fragment GitHub gives a README heading: lower case, punctuation dropped, spaces -."""
    text = heading.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def test_every_rules_help_uri_points_at_a_heading_of_the_readme() -> None:
    """helpUri (JSON, SARIF) leads to the rule's own section, not a dead fragment."""
    from pathlib import Path  # noqa: PLC0415 - this test alone reads the README

    from webhook.policy import RULE_IDS  # noqa: PLC0415 - as above
    from webhook.report.base import DOCS_URL, help_uri  # noqa: PLC0415 - as above

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    anchors = {
        _github_anchor(line.lstrip("#")) for line in readme.splitlines() if line.startswith("#")
    }
    for policy_id in RULE_IDS:
        uri = help_uri(policy_id)
        base, _, fragment = uri.partition("#")
        assert base == DOCS_URL
        assert fragment in anchors, (policy_id, fragment)


def test_html_names_each_rules_severity_and_links_its_docs() -> None:
    page = render(sample(), "html")
    assert (
        'href="https://github.com/guardrail-dev/guardrail/blob/main/README.md#require-role-labels"'
        in page
    )
    assert "severity medium" in page
    assert "severity high" in page  # require-default-deny
