"""The registry: every rule's value is complete and everything else is derived from it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from webhook.config import default_config, parse_config
from webhook.fixes import Plan
from webhook.policy import RULE_IDS, RULES, rule
from webhook.policy.errors import ConfigError
from webhook.policy.model import Mode
from webhook.report import render
from webhook.report.base import Origin

ROOT = Path(__file__).resolve().parents[2]


def test_ids_are_unique_kebab_case_and_match_their_file() -> None:
    """Each rule's id is stable kebab-case and its file is rules/<id with underscores>.py."""
    assert len(set(RULE_IDS)) == len(RULE_IDS)
    for each in RULES:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", each.id), each.id
        module = each.check.__module__
        assert module == f"webhook.policy.rules.{each.id.replace('-', '_')}", module


@pytest.mark.parametrize("policy", RULE_IDS)
def test_every_rule_has_its_test_file_and_words(policy: str) -> None:
    """A rule's tests live in tests/unit/rules/test_<id>.py; it has a title and a summary."""
    each = rule(policy)
    assert (ROOT / "tests" / "unit" / "rules" / f"test_{policy.replace('-', '_')}.py").is_file()
    assert re.fullmatch(r"[a-z0-9-]+", each.docs)
    assert each.title
    assert each.summary.endswith(".")


@pytest.mark.parametrize(
    "policy",
    ["require-role-labels", "require-default-deny", "protect-default-deny", "restrict-allow-all"],
)
def test_the_readme_documents_each_shipped_rule_at_its_anchor(policy: str) -> None:
    """The README has a heading at each shipped rule's docs anchor (reports link to it)."""
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert rule(policy).docs in anchors


def test_config_accepts_exactly_the_keys_the_rules_declare() -> None:
    """policies.<id> takes `mode` plus the rule's settings keys; anything else names the path."""
    for each in RULES:
        keys = {"mode", *(s.key for s in each.settings)}
        body = {s.key: s.spelled for s in each.settings}
        assert parse_config({"policies": {each.id: body}}, "c.yaml") == default_config()
        with pytest.raises(ConfigError) as caught:
            parse_config({"policies": {each.id: {"nope": 1}}}, "c.yaml")
        assert str(caught.value) == (
            f"c.yaml: policies.{each.id}.nope: unknown field "
            f"(expected one of {', '.join(sorted(keys))})"
        )


def test_default_modes_come_from_the_rules() -> None:
    """A rule's default mode applies unless configured; None follows the global mode."""
    config = parse_config({"mode": "audit"}, "c.yaml")
    for each in RULES:
        assert config.modes[each.id] is (each.default_mode or Mode.AUDIT)


def test_sarif_rules_follow_the_registry() -> None:
    """SARIF lists every rule in registry order with its title; levels follow default modes."""
    log = json.loads(render(_Empty(), "sarif"))
    listed = log["runs"][0]["tool"]["driver"]["rules"]
    assert [entry["id"] for entry in listed] == list(RULE_IDS)
    for entry, each in zip(listed, RULES, strict=True):
        assert entry["name"] == each.title
        assert entry["shortDescription"]["text"] == each.summary
        level = "warning" if each.default_mode is Mode.WARN else "error"
        assert entry["defaultConfiguration"]["level"] == level


class _Empty:
    """A result with nothing in it: every field a renderer reads (base.ReportInput)."""

    resources = 0
    violations: tuple[()] = ()
    judged: tuple[()] = ()
    headlines: dict[tuple[str, str], object] = {}  # noqa: RUF012 - read only, never mutated
    unverified: tuple[()] = ()
    origin = Origin()
    fixes = Plan()
