"""Report renderers: each format says the same thing and parses as what it claims to be."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml

from webhook.checking import CheckResult
from webhook.policy.errors import GuardrailError
from webhook.policy.model import Finding, Mode, Violation
from webhook.report import FORMATS, Resource, render


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
def test_html_is_one_escaped_page() -> None:
    """HTML: a self-contained table; markup from manifests is escaped, never interpreted."""
    result = CheckResult(
        resources=1,
        violations=[
            violation(
                "require-role-labels",
                "Pod",
                "a",
                "<script>alert(1)</script>",
                "[require-role-labels] <script>alert(1)</script>",
                file="x.yaml",
                line=1,
            )
        ],
    )
    page = render(result, "html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "1 resource, 1 violation: 1 error" in page
    assert "No violations." in render(empty(), "html")


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
