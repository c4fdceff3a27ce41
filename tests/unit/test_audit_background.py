"""The background audit's pieces that need no cluster: its configuration, the Lease decision,
the gauge bookkeeping, and the `guardrail audit` command's failure channel."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from webhook.background import AuditGauges, LeaseRecord, lease_action, micro_time
from webhook.cli import main
from webhook.config import ConfigError, parse_config


@pytest.mark.parametrize(
    ("audit", "seconds", "report_api", "passes"),
    [
        ({}, 0.0, "wgpolicyk8s", False),
        ({"interval": "10m"}, 600.0, "wgpolicyk8s", False),
        ({"interval": "1h30m", "reportApi": "openreports"}, 5400.0, "openreports", False),
        ({"interval": 45, "includePasses": True}, 45.0, "wgpolicyk8s", True),
        ({"interval": "0"}, 0.0, "wgpolicyk8s", False),
        ({"interval": None}, 0.0, "wgpolicyk8s", False),
    ],
    ids=["absent", "minutes", "hours-and-openreports", "seconds-and-passes", "zero", "null"],
)
def test_audit_settings_parse(
    audit: dict[str, object], seconds: float, report_api: str, passes: bool
) -> None:
    """`audit:` takes an interval (0 or absent: off), a report API and includePasses."""
    settings = parse_config({"audit": audit}, "config.yaml").audit
    assert (settings.interval_seconds, settings.report_api, settings.include_passes) == (
        seconds,
        report_api,
        passes,
    )


@pytest.mark.parametrize(
    ("audit", "message"),
    [
        (
            {"interval": "ten minutes"},
            "config.yaml: audit.interval: must be a duration such as 30s, 10m or 1h (0 turns the audit off)",
        ),
        ({"interval": -5}, "config.yaml: audit.interval: must not be negative"),
        (
            {"interval": True},
            "config.yaml: audit.interval: must be a duration such as 30s, 10m or 1h (0 turns the audit off)",
        ),
        (
            {"reportApi": "kyverno"},
            "config.yaml: audit.reportApi: must be one of wgpolicyk8s, openreports",
        ),
        (
            {"includePasses": "yes"},
            "config.yaml: audit.includePasses: must be true or false, not a string",
        ),
        (
            {"intervall": "5m"},
            "config.yaml: audit.intervall: unknown field (expected one of includePasses, interval, reportApi)",
        ),
        ("5m", "config.yaml: audit: must be a mapping, not a string"),
    ],
    ids=["words", "negative", "boolean", "unknown-api", "passes-not-bool", "typo", "not-a-mapping"],
)
def test_bad_audit_settings_name_the_path(audit: object, message: str) -> None:
    """Each mistake in `audit:` is rejected with its exact path."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"audit": audit}, "config.yaml")
    assert str(caught.value) == message


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def record(holder: str, duration: int = 30) -> LeaseRecord:
    return LeaseRecord(holder, duration, "2026-01-01T00:00:00.000000Z", 3, "42")


@pytest.mark.parametrize(
    ("lease", "unchanged_for", "action"),
    [
        (None, 0.0, "create"),
        (record("me_1"), 100.0, "renew"),
        (record(""), 0.0, "acquire"),
        (record("other_2"), 29.0, "standby"),
        (record("other_2"), 31.0, "acquire"),
        (record("other_2", duration=60), 31.0, "standby"),
    ],
    ids=["no-lease", "ours", "released", "held", "expired", "held-longer-lease"],
)
def test_lease_action(lease: LeaseRecord | None, unchanged_for: float, action: str) -> None:
    """Create, renew, take a free or expired Lease, or stand by while another renews it."""
    assert lease_action(lease, "me_1", unchanged_for) == action


def test_micro_time_is_rfc3339_with_microseconds() -> None:
    """Lease times are metav1.MicroTime."""
    assert micro_time(1700000000.25) == "2023-11-14T22:13:20.250000Z"


def test_gauges_drop_namespaces_that_became_clean() -> None:
    """A namespace fixed since the last scan no longer shows in guardrail_audit_violations."""
    registry = CollectorRegistry()
    gauges = AuditGauges(registry, multiprocess=False)
    gauges.publish({("require-role-labels", "shop"): 3, ("require-default-deny", "blog"): 1})
    gauges.publish({("require-role-labels", "shop"): 2})
    text = generate_latest(registry).decode()
    assert 'guardrail_audit_violations{namespace="shop",policy="require-role-labels"} 2.0' in text
    assert 'namespace="blog"' not in text
    gauges.clear()
    assert "guardrail_audit_violations{" not in generate_latest(registry).decode()


def test_audit_of_an_unreachable_cluster_exits_2(tmp_path: Path) -> None:
    """No API server behind the kubeconfig: exit 2 and a one-line reason, no traceback."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{free_port()}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["audit", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 2
    # The kubeconfig skips TLS verification: one warning says so, then the reason.
    warning, reason = result.output.splitlines()
    assert warning.startswith("guardrail: warning: TLS verification is off for https://127.0.0.1:")
    assert reason.startswith("guardrail: https://127.0.0.1:")
    assert ": cannot reach the API server: " in reason


def test_audit_help_lists_its_flags() -> None:
    """`guardrail audit --help` documents the report flags."""
    result = CliRunner().invoke(main, ["audit", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--namespace",
        "--format",
        "--write-reports",
        "--include-passes",
        "--report-api [wgpolicyk8s|openreports]",
        "--kubeconfig",
    ):
        assert flag in result.output
