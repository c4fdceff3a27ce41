"""`guardrail check` on input that is wrong as a whole: it must not pass CI green (SPEC 4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
POD = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: {api}
kind: {kind}
metadata: {name: web, namespace: shop, labels: {app: web, role: frontend}}
spec: {containers: [{name: web, image: nginx}]}
"""


def _check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GUARDRAIL, "check", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_an_empty_directory_is_bad_input(tmp_path: Path) -> None:
    """No manifest at all (an empty directory, a path holding only other files) is exit 2."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("# nothing to judge\n")
    checked = _check("empty", "docs", cwd=tmp_path)
    assert checked.returncode == 2, checked.stdout
    assert "no manifests found in empty, docs" in checked.stderr


def test_a_kind_that_looks_like_a_typo_is_bad_input_and_the_rest_is_judged(
    tmp_path: Path,
) -> None:
    """`kind: Deploymnet` would be skipped as a kind Guardrail does not judge, and the file
    would pass: it is reported at its line with the likely kind, exit 2, and the report of
    everything else still printed."""
    (tmp_path / "app.yaml").write_text(
        POD.replace("{api}", "apps/v1").replace("{kind}", "Deploymnet")
    )
    checked = _check("app.yaml", cwd=tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert 'app.yaml:10: kind "Deploymnet" is not one Guardrail judges; did you mean ' in (
        checked.stderr
    )
    assert '"Deployment"?' in checked.stderr
    assert "3 resources" in checked.stdout


def test_real_kinds_near_judged_ones_are_not_typos(tmp_path: Path) -> None:
    """StagedNetworkPolicy, GlobalNetworkSet, a Service: real kinds, never reported."""
    docs = [
        POD.replace("{api}", "v1").replace("{kind}", "Pod"),
        "apiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\n"
        "metadata: {name: s, namespace: shop}\nspec: {selector: all()}\n",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: g}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n",
    ]
    (tmp_path / "all.yaml").write_text("---\n".join(docs))
    checked = _check("all.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "did you mean" not in checked.stderr


def test_a_lower_case_kind_is_reported_too(tmp_path: Path) -> None:
    """`kind: pod` is no kind the API server knows either."""
    (tmp_path / "pod.yaml").write_text(POD.replace("{api}", "v1").replace("{kind}", "pod"))
    checked = _check("pod.yaml", cwd=tmp_path)
    assert checked.returncode == 2
    assert 'kind "pod" is not one Guardrail judges; did you mean "Pod"?' in checked.stderr
