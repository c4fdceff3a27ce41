"""`guardrail explain`: the verdict and the walk for a pod, a workload or a namespace's pods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from webhook.cli import main

ROOT = Path(__file__).resolve().parents[2]
STATE = str(ROOT / "examples" / "state")
CALICO_STATE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: crd.projectcalico.org/v1
kind: Tier
metadata: {name: platform}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: platform.observe, namespace: shop}
spec: {tier: platform, selector: all(), types: [Ingress]}
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["explain", *args])
    return result.exit_code, result.output


def test_an_isolated_workload_prints_the_walk_and_exits_0() -> None:
    """The README's web Deployment: both directions isolated by shop's default-deny."""
    code, out = run("--state", STATE, str(ROOT / "examples" / "manifests" / "web.yaml"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == 'Deployment "web" in namespace "shop": Ingress isolated, Egress isolated'
    assert "  pod labels: app=web, role=frontend" in lines
    assert (
        'Ingress: isolated - NetworkPolicy "default-deny" in namespace "shop" denies all Ingress'
        in lines
    )
    assert '    tier "default" (order 1000000, defaultAction Deny)' in lines
    assert '      NetworkPolicy "default-deny" in namespace "shop": selects it' in lines


def test_a_pod_nothing_selects_is_open_and_exits_1() -> None:
    """legacy has no policy: open, and the walk says no layer may select its pods."""
    code, out = run("--state", STATE, str(ROOT / "examples" / "manifests" / "legacy-pod.yaml"))
    assert code == 1
    assert out.splitlines()[0] == 'Pod "worker" in namespace "legacy": Ingress open, Egress open'
    assert "    no policy of any layer may select pods of this namespace" in out


def test_a_pass_tier_is_named_as_what_decided(tmp_path: Path) -> None:
    """A tier that passes what it does not decide isolates nothing: the explanation says so."""
    (tmp_path / "state.yaml").write_text(CALICO_STATE)
    code, out = run("--state", str(tmp_path), "-n", "shop", "--labels", "app=web")
    assert code == 1
    assert (
        'Ingress: open - tier "platform" passes what it does not decide (defaultAction Pass) and '
        "no policy in a later tier selects it"
    ) in out.splitlines()


def test_json_output_has_a_verdict_per_direction() -> None:
    """--format json: the target, and per direction the verdict, explanation, peers and walk."""
    code, out = run("--state", STATE, "-n", "shop", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["target"] == {
        "described": 'every pod of namespace "shop"',
        "namespace": "shop",
        "labels": None,
        "serviceAccount": None,
    }
    assert [d["verdict"] for d in doc["directions"]] == ["isolated", "isolated"]
    assert [p["peer"] for p in doc["directions"][0]["peers"]] == ["outside", "fresh-pod"] or len(
        doc["directions"][0]["peers"]
    ) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "explain: name a MANIFEST, or --namespace (and --labels)"),
        (("-n", "shop", "--labels", "app"), "--labels: label 1 ('app') is not key=value"),
    ],
    ids=["nothing-to-explain", "malformed-labels"],
)
def test_bad_input_is_exit_2_with_where(args: tuple[str, ...], message: str) -> None:
    """Bad flags say what is wrong and where, exit 2."""
    result = CliRunner().invoke(main, ["explain", "--state", STATE, *args])
    assert result.exit_code == 2
    assert f"guardrail: {message}" in result.output
