"""`--format junit`: JUnit XML, for CI systems that show test results (GitLab, Jenkins).

A testsuite per source file (or `cluster` for live objects), a testcase per judged resource.
A resource with an enforce-mode violation fails, with every such message in its `<failure>`;
warn and audit findings do not fail (the check's exit code does not either) and go to the
testcase's `<system-out>`. Text from manifests is made safe for XML 1.0, which cannot carry
control characters even escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from webhook.policy.model import Violation
from webhook.report.base import ReportInput, Resource, level, object_label

CLUSTER_SUITE = "cluster"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """text with characters XML 1.0 forbids shown as `\\xNN` (they cannot be escaped)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(slots=True)
class _Case:
    resource: Resource
    violations: list[Violation] = field(default_factory=list)


def _cases(result: ReportInput) -> dict[str, list[_Case]]:
    """Testcases by suite (file), in input order, each with its violations."""
    suites: dict[str, list[_Case]] = {}
    by_key: dict[tuple[str, str, str, str], _Case] = {}
    for resource in result.judged:
        case = _Case(resource)
        suite = resource.file if resource.file is not None else CLUSTER_SUITE
        suites.setdefault(suite, []).append(case)
        by_key.setdefault((suite, resource.kind, resource.namespace, resource.name), case)
    for violation in result.violations:
        finding = violation.finding
        suite = violation.file if violation.file is not None else CLUSTER_SUITE
        key = (suite, finding.kind, finding.namespace, finding.name)
        found = by_key.get(key)
        if found is None:
            # Not one of the judged objects: e.g. a namespace reported for its workloads.
            found = _Case(
                Resource(
                    "",
                    finding.kind,
                    finding.namespace,
                    finding.name,
                    violation.file,
                    violation.line,
                )
            )
            suites.setdefault(suite, []).append(found)
            by_key[key] = found
        found.violations.append(violation)
    return suites


def _testcase(suite: str, case: _Case) -> tuple[ET.Element, bool]:
    resource = case.resource
    name = object_label(resource.kind, resource.namespace, resource.name)
    attrs = {"classname": xml_safe(suite), "name": xml_safe(name)}
    if resource.file is not None:
        attrs["file"] = xml_safe(resource.file)
        if resource.line is not None:
            attrs["line"] = str(resource.line)
            attrs["name"] = xml_safe(f"{name} (line {resource.line})")
    element = ET.Element("testcase", attrs)
    enforced = [v for v in case.violations if v.enforced]
    others = [v for v in case.violations if not v.enforced]
    if enforced:
        failure = ET.SubElement(
            element,
            "failure",
            {
                "message": xml_safe(
                    enforced[0].finding.message
                    if len(enforced) == 1
                    else f"{len(enforced)} violations"
                ),
                "type": xml_safe(", ".join(dict.fromkeys(v.policy for v in enforced))),
            },
        )
        failure.text = xml_safe("\n".join(v.finding.message for v in enforced))
    if others:
        out = ET.SubElement(element, "system-out")
        out.text = xml_safe("\n".join(f"{level(v)}: {v.finding.message}" for v in others))
    return element, bool(enforced)


def render(result: ReportInput) -> str:
    root = ET.Element("testsuites", {"name": "guardrail"})
    total_tests = total_failures = 0
    for suite_name, cases in _cases(result).items():
        suite = ET.SubElement(root, "testsuite", {"name": xml_safe(suite_name)})
        failures = 0
        for case in cases:
            element, failed = _testcase(suite_name, case)
            suite.append(element)
            failures += failed
        _count(suite, len(cases), failures)
        total_tests += len(cases)
        total_failures += failures
    _count(root, total_tests, total_failures)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _count(element: ET.Element, tests: int, failures: int) -> None:
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", "0")
    element.set("skipped", "0")
