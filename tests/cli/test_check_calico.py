"""`guardrail check` over Calico and admin network policy manifests: the webhook's verdicts.

Each case is a small manifest tree: its namespaces, its policies (Kubernetes, Calico in both
API spellings, GlobalNetworkPolicies from Calico's documentation, ANP/BANP, staged policies)
and a Deployment per namespace. The exit code and the exact findings are what a CI job sees.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from webhook.cli import main

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))


def namespaces(*names: str, labels: str = "") -> str:
    meta = f", labels: {{{labels}}}" if labels else ""
    return "\n---\n".join(
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}{meta}}}" for name in names
    )


def deployments(*names: str) -> str:
    return "\n---\n".join(
        f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {name}}}
spec:
  template:
    metadata: {{labels: {{app: web, role: frontend}}}}
    spec: {{containers: [{{name: web, image: nginx}}]}}"""
        for name in names
    )


# https://docs.tigera.io/calico/latest/network-policy/get-started/kubernetes-default-deny
DOCS_GNP = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: deny-app-policy
spec:
  namespaceSelector: has(projectcalico.org/name) && projectcalico.org/name not in {"kube-system", "calico-system", "calico-apiserver"}
  types:
  - Ingress
  - Egress
  egress:
  - action: Allow
    protocol: UDP
    destination:
      selector: 'k8s-app == "kube-dns"'
      ports:
      - 53
  - action: Allow
    protocol: TCP
    destination:
      selector: 'k8s-app == "kube-dns"'
      ports:
      - 53
"""
# https://docs.tigera.io/calico/latest/network-policy/get-started/calico-policy/calico-policy-tutorial
TUTORIAL_GNP_CRD = """\
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: default-deny
spec:
  selector: projectcalico.org/namespace not in  {'kube-system', 'calico-system', 'calico-apiserver'}
  types:
  - Ingress
  - Egress
"""
CALICO_NPS = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop-v3}
spec:
  selector: all()
  types: [Ingress, Egress]
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop-crd}
spec:
  types: [Ingress, Egress]
  egress:
  - {action: Allow, protocol: UDP, destination: {ports: [53]}}
"""
STAGED = """\
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: default-deny, namespace: staged}
spec: {selector: all(), types: [Ingress, Egress]}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: default-deny}
spec: {selector: all(), types: [Ingress, Egress]}
"""
INGRESS_NP = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny-ingress, namespace: {ns}}}
spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
"""
BANP = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject:
    namespaces: {matchLabels: {isolation: baseline}}
  egress:
  - name: everything
    action: Deny
    to:
    - networks: [0.0.0.0/0, "::/0"]
"""
ANP = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: lockdown}
spec:
  priority: 20
  subject:
    namespaces: {matchLabels: {kubernetes.io/metadata.name: locked}}
  egress:
  - name: everything
    action: Deny
    to:
    - networks: [0.0.0.0/0]
    - networks: ["::/0"]
"""
BAD_SELECTOR = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-app}
spec:
  selector: app == web
  types: [Ingress]
"""
K8S_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
"""
CALICO_OPEN = """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: open, namespace: shop}
spec:
  selector: all()
  types: [Egress]
  ingress:
  - action: Allow
  egress:
  - action: Allow
"""

# (id, files, exit code, [(policy, mode, kind, namespace, name, file, line)])
CASES: list[tuple[str, dict[str, str], int, list[tuple[str, str, str, str, str, str, int]]]] = [
    (
        "docs-gnp-isolates-every-team",
        {
            "namespaces.yaml": namespaces("team-a", "team-b", "calico-system"),
            "policies/deny-app.yaml": DOCS_GNP,
            "apps.yaml": deployments("team-a", "team-b", "calico-system"),
        },
        0,
        [],
    ),
    (
        "tutorial-gnp-crd-spelling",
        {
            "namespaces.yaml": namespaces("team-a"),
            "gnp.yaml": TUTORIAL_GNP_CRD,
            "apps.yaml": deployments("team-a"),
        },
        0,
        [],
    ),
    (
        "calico-networkpolicies-both-spellings",
        {
            "namespaces.yaml": namespaces("shop-v3", "shop-crd"),
            "policies.yaml": CALICO_NPS,
            "apps.yaml": deployments("shop-v3", "shop-crd"),
        },
        0,
        [],
    ),
    (
        "staged-policies-never-count",
        {
            "namespaces.yaml": namespaces("staged"),
            "staged.yaml": STAGED,
            "apps.yaml": deployments("staged"),
        },
        1,
        [("require-default-deny", "enforce", "Deployment", "staged", "web", "apps.yaml", 1)],
    ),
    (
        "banp-egress-plus-kubernetes-ingress",
        {
            "namespaces.yaml": namespaces("base", labels="isolation: baseline"),
            "banp.yaml": BANP,
            "ingress.yaml": INGRESS_NP.format(ns="base"),
            "apps.yaml": deployments("base"),
        },
        0,
        [],
    ),
    (
        "banp-alone-lacks-ingress",
        {
            "namespaces.yaml": namespaces("base", labels="isolation: baseline"),
            "banp.yaml": BANP,
            "apps.yaml": deployments("base"),
        },
        1,
        [("require-default-deny", "enforce", "Deployment", "base", "web", "apps.yaml", 1)],
    ),
    (
        "anp-egress-plus-kubernetes-ingress",
        {
            "namespaces.yaml": namespaces("locked"),
            "anp.yaml": ANP,
            "ingress.yaml": INGRESS_NP.format(ns="locked"),
            "apps.yaml": deployments("locked"),
        },
        0,
        [],
    ),
    (
        "malformed-selector-is-a-warning",
        {
            "namespaces.yaml": namespaces("shop"),
            "k8s.yaml": K8S_DENY,
            "bad.yaml": BAD_SELECTOR,
            "apps.yaml": deployments("shop"),
        },
        0,
        [("restrict-allow-all", "warn", "GlobalNetworkPolicy", "", "deny-app", "bad.yaml", 1)],
    ),
    (
        "calico-allow-all-within-its-types",
        {
            "namespaces.yaml": namespaces("shop"),
            "k8s.yaml": K8S_DENY,
            "open.yaml": CALICO_OPEN,
        },
        0,
        # The allow-all reopens the namespace beside its default-deny: pods will be rejected.
        [
            ("require-default-deny", "enforce", "Namespace", "", "shop", "namespaces.yaml", 1),
            ("restrict-allow-all", "warn", "NetworkPolicy", "shop", "open", "open.yaml", 1),
        ],
    ),
]


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run_check(cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """`guardrail check --format json ARGS` in-process (click's CliRunner) from cwd."""
    import os  # noqa: PLC0415 - chdir is scoped to this helper

    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["check", "--format", "json", *args])
    finally:
        os.chdir(before)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.mark.parametrize(
    ("files", "code", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_calico_and_admin_trees_give_the_webhooks_verdicts(
    tmp_path: Path,
    files: dict[str, str],
    code: int,
    expected: list[tuple[str, str, str, str, str, str, int]],
) -> None:
    """Each provider shape isolates (or not) exactly as the webhook judges it, with exit codes."""
    write_tree(tmp_path, files)
    exit_code, doc, stderr = run_check(tmp_path, *sorted(files))
    assert exit_code == code, (doc, stderr)
    assert [
        (v["policy"], v["mode"], v["kind"], v["namespace"], v["name"], v["file"], v["line"])
        for v in doc["violations"]
    ] == expected


def test_messages_name_what_is_missing_and_where(tmp_path: Path) -> None:
    """The BANP-only namespace lacks Ingress alone; the bad selector is named by field and column."""
    write_tree(
        tmp_path,
        {
            "namespaces.yaml": namespaces("base", labels="isolation: baseline"),
            "banp.yaml": BANP,
            "bad.yaml": BAD_SELECTOR,
            "apps.yaml": deployments("base"),
        },
    )
    code, doc, _ = run_check(tmp_path, ".")
    assert code == 1
    messages = {v["policy"]: v["message"] for v in doc["violations"]}
    assert messages["require-default-deny"].startswith(
        '[require-default-deny] Deployment "web" in namespace "base" cannot run there: '
        'namespace "base" has no default-deny network policy for Ingress. Apply one first: '
    )
    assert messages["restrict-allow-all"] == (
        '[restrict-allow-all] GlobalNetworkPolicy "deny-app" has an invalid selector at '
        "spec.selector column 8: expected a quoted string after '==', found label 'web'; "
        "Calico will reject it."
    )


def test_enforce_mode_never_fails_on_a_malformed_selector(tmp_path: Path) -> None:
    """With restrict-allow-all enforced, an allow-all rule fails the run; a bad selector does not."""
    write_tree(
        tmp_path,
        {
            "config.yaml": "policies:\n  restrict-allow-all: {mode: enforce}\n",
            "m/namespaces.yaml": namespaces("shop"),
            "m/k8s.yaml": K8S_DENY,
            "m/bad.yaml": BAD_SELECTOR,
        },
    )
    code, doc, _ = run_check(tmp_path, "--config", "config.yaml", "m")
    assert code == 0
    assert [(v["policy"], v["mode"], v["name"]) for v in doc["violations"]] == [
        ("restrict-allow-all", "enforce", "deny-app")
    ]
    (tmp_path / "m" / "open.yaml").write_text(CALICO_OPEN)
    code, doc, _ = run_check(tmp_path, "--config", "config.yaml", "m")
    assert code == 1
    # The allow-all also reopens the namespace: its advisory (a warning) names it.
    assert [v["name"] for v in doc["violations"]] == ["deny-app", "shop", "open"]


def test_real_process_reads_a_calico_tree(tmp_path: Path) -> None:
    """The installed console script gives the same verdict as the in-process run."""
    write_tree(
        tmp_path,
        {
            "namespaces.yaml": namespaces("staged", "team-a"),
            "policies.yaml": DOCS_GNP,
            "staged.yaml": STAGED,
            "apps.yaml": deployments("team-a"),
        },
    )
    done = subprocess.run(
        [GUARDRAIL, "check", "--format", "json", "."],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
    )
    # The documentation's GNP covers "staged" too (it is no system namespace): all isolated.
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["violations"] == []
