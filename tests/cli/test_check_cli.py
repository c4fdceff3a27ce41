"""`guardrail check` end to end: a mixed manifest tree plus stdin, through click and a real process.

Every test runs twice: in-process through click's CliRunner and as a real `guardrail check`
subprocess, so the console script, stdin handling and exit codes are what a CI job sees.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from webhook.cli import main


def parse_xml(text: str) -> ET.Element:
    """Parse the JUnit report (our own output, so the stdlib parser is safe here)."""
    return ET.fromstring(text)  # noqa: S314 - not untrusted input: guardrail's own report


GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))

# The tree: every input form at once. Lines in comments are what the findings must point at.
TREE: dict[str, str] = {
    "README.md": "# Shop manifests\n\napiVersion: [this is not a manifest\n",
    "namespaces.yaml": """\
# The namespaces of the shop.
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Namespace
metadata:
  name: blog
""",  # shop at line 3, blog at line 8
    "values.yaml": "replicas: 3\nimage: nginx\n",  # not a Kubernetes object: a note
    ".github/ci.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: hidden}\n",  # skipped
    "shop/policies.json": """\
{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "default-deny", "namespace": "shop"},
     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    {
      "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
      "metadata": {"name": "open", "namespace": "shop"},
      "spec": {"podSelector": {"matchLabels": {"app": "old"}}, "ingress": [{}]}
    }
  ]
}
""",  # default-deny at line 5, open at line 8 (it reopens app=old pods: none in the tree)
    "shop/web.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web, role: frontend}}
    spec: {containers: [{name: web, image: nginx}]}
---
# a pod someone forgot to label fully
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: shop
  labels: {app: debug}
spec: {containers: [{name: sh, image: busybox}]}
""",  # debug at line 10
    "shop/nested/deeper/job.yml": """\
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
spec:
  template:
    metadata: {labels: {role: batch}}
    spec: {containers: [{name: m, image: migrate}], restartPolicy: Never}
""",
    "blog/app.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: blog, namespace: blog}
spec:
  template:
    metadata: {labels: {app: blog, role: web}}
    spec: {containers: [{name: blog, image: ghost}]}
""",
    "nokind.yaml": "apiVersion: v1\nmetadata: {name: orphan}\n",  # a YAML doc without kind
}
STDIN = b"""\
# piped from another tool
apiVersion: v1
kind: Pod
metadata: {name: piped, namespace: shop}
spec: {containers: [{name: c, image: nginx}]}
"""

# (policy, mode, kind, namespace, name, file, line), in input order. The blog Deployment is
# rejected for its namespace's sake, and its finding is at its own file and line.
EXPECTED = [
    ("require-default-deny", "enforce", "Deployment", "blog", "blog", "tree/blog/app.yaml", 1),
    (
        "require-role-labels",
        "enforce",
        "Job",
        "shop",
        "migrate",
        "tree/shop/nested/deeper/job.yml",
        1,
    ),
    ("restrict-allow-all", "warn", "NetworkPolicy", "shop", "open", "tree/shop/policies.json", 8),
    ("require-role-labels", "enforce", "Pod", "shop", "debug", "tree/shop/web.yaml", 10),
    ("require-role-labels", "enforce", "Pod", "shop", "piped", "<stdin>", 2),
]
EXPECTED_NOTES = [
    "tree/nokind.yaml:1: skipped: not a Kubernetes object (no kind)",
    "tree/values.yaml:1: skipped: not a Kubernetes object (no apiVersion and no kind)",
]
RESOURCES = 9  # 2 namespaces, 2 policies, 2 deployments, 1 job, 1 pod in files + 1 on stdin


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


Invoke = Callable[[Path, list[str], bytes], Run]


def via_runner(cwd: Path, args: list[str], stdin: bytes) -> Run:
    """Run the click command in this process, as CliRunner does for unit-level CLI tests."""
    import os  # noqa: PLC0415 - chdir is scoped to this helper

    before = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, args, input=stdin)
    finally:
        os.chdir(before)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def via_process(cwd: Path, args: list[str], stdin: bytes) -> Run:
    """Run the installed `guardrail` console script as a subprocess."""
    done = subprocess.run(
        [GUARDRAIL, *args], cwd=cwd, input=stdin, capture_output=True, timeout=120, check=False
    )
    return Run(done.returncode, done.stdout.decode(), done.stderr.decode())


INVOKERS = pytest.mark.parametrize("invoke", [via_runner, via_process], ids=["runner", "process"])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, text in TREE.items():
        path = tmp_path / "tree" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@INVOKERS
def test_mixed_tree_and_stdin_give_the_exact_findings(tree: Path, invoke: Invoke) -> None:
    """Multi-doc YAML, JSON List, nested dirs, non-manifests and stdin: exact findings, exit 1."""
    run = invoke(tree, ["check", "--format", "json", "tree", "-"], STDIN)
    assert run.code == 1, run.stderr
    doc = json.loads(run.stdout)
    assert doc["summary"] == {
        "resources": RESOURCES,
        "violations": len(EXPECTED),
        "errors": 4,
        "warnings": 1,
        "notes": 0,
        "unverified": 0,
        "unverifiedNamespaces": [],
    }
    assert [
        (v["policy"], v["mode"], v["kind"], v["namespace"], v["name"], v["file"], v["line"])
        for v in doc["violations"]
    ] == EXPECTED
    messages = [v["message"] for v in doc["violations"]]
    assert messages[0].startswith(
        '[require-default-deny] Deployment "blog" in namespace "blog" cannot run there: '
        'namespace "blog" has no default-deny network policy for Ingress and Egress. Apply one '
        "first: echo '"
    )
    assert messages[1] == (
        '[require-role-labels] Job "migrate" in namespace "shop" is missing required labels in '
        "its pod template: app. Add them under spec.template.metadata.labels."
    )
    assert "rule spec.ingress[0] admits all traffic" in messages[2]
    assert messages[4] == (
        '[require-role-labels] Pod "piped" in namespace "shop" is missing required labels: '
        "app, role. Add them under metadata.labels."
    )
    assert run.stderr.splitlines() == EXPECTED_NOTES


@INVOKERS
def test_text_report_of_the_tree(tree: Path, invoke: Invoke) -> None:
    """One `file:line: level:` line per finding, errors first, then the summary last."""
    run = invoke(tree, ["check", "tree", "-"], STDIN)
    assert run.code == 1
    lines = run.stdout.splitlines()
    assert [line.split(" [", 1)[0] for line in lines[:5]] == [
        "tree/blog/app.yaml:1: error:",
        "tree/shop/nested/deeper/job.yml:1: error:",
        "tree/shop/web.yaml:10: error:",
        "<stdin>:2: error:",
        "tree/shop/policies.json:8: warning:",
    ]
    assert lines[5:] == [
        "",
        "By policy:",
        "  require-default-deny  1 error",
        "  require-role-labels   3 errors",
        "  restrict-allow-all    1 warning",
        "9 resources, 5 violations: 4 errors, 1 warning",
    ]


@INVOKERS
@pytest.mark.parametrize(
    ("fmt", "check_output"),
    [
        ("sarif", "sarif"),
        ("junit", "junit"),
        ("policyreport", "policyreport"),
        ("html", "html"),
    ],
    ids=["sarif", "junit", "policyreport", "html"],
)
def test_every_format_parses_as_what_it_claims(
    tree: Path, invoke: Invoke, fmt: str, check_output: str
) -> None:
    """SARIF is SARIF JSON, JUnit is XML, policyreport is YAML reports, html is a page."""
    run = invoke(tree, ["check", "--format", fmt, "tree", "-"], STDIN)
    assert run.code == 1, run.stderr
    if check_output == "sarif":
        doc = json.loads(run.stdout)
        results = doc["runs"][0]["results"]
        assert doc["version"] == "2.1.0"
        assert [(r["ruleId"], r["level"]) for r in results] == [
            (row[0], "warning" if row[1] == "warn" else "error") for row in EXPECTED
        ]
        located = results[3]["locations"][0]["physicalLocation"]
        assert located == {
            "artifactLocation": {"uri": "tree/shop/web.yaml"},
            "region": {"startLine": 10},
        }
    elif check_output == "junit":
        root = parse_xml(run.stdout)
        assert root.get("failures") == "4"
        failed = [
            case.get("name") for case in root.iter("testcase") if case.find("failure") is not None
        ]
        assert failed == [
            "Deployment blog/blog (line 1)",
            "Job shop/migrate (line 1)",
            "Pod shop/debug (line 10)",
            "Pod shop/piped (line 2)",
        ]
    elif check_output == "policyreport":
        docs = list(yaml.safe_load_all(run.stdout))
        assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
            ("PolicyReport", "guardrail-blog"),
            ("PolicyReport", "guardrail-shop"),
        ]
        # The Deployment rejected for blog's missing default-deny is in blog's own report.
        assert [r["resources"][0]["kind"] for r in docs[0]["results"]] == ["Deployment"]
        assert docs[1]["summary"]["fail"] == 3
        assert docs[1]["summary"]["warn"] == 1
    else:
        assert run.stdout.startswith("<!DOCTYPE html>")
        groups = re.findall(r'<div class="group"[^>]* data-count="(\d+)"', run.stdout)
        assert sum(int(count) for count in groups) == len(EXPECTED)
        assert '<dd id="source"><code>tree</code>, <code>standard input</code></dd>' in run.stdout


CLEAN = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web, role: frontend}}
spec: {containers: [{name: web, image: nginx}]}
"""


@INVOKERS
def test_clean_manifests_exit_zero(tmp_path: Path, invoke: Invoke) -> None:
    """No violation: exit 0 and a summary that says so."""
    (tmp_path / "ok.yaml").write_text(CLEAN)
    run = invoke(tmp_path, ["check", "ok.yaml"], b"")
    assert (run.code, run.stdout, run.stderr) == (0, "2 resources, no violations\n", "")


@INVOKERS
def test_warnings_only_exit_zero(tmp_path: Path, invoke: Invoke) -> None:
    """Warn-mode findings are reported but do not fail the check."""
    (tmp_path / "np.yaml").write_text(
        CLEAN.split("---\n", maxsplit=1)[0]
        + "---\n"
        + (
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            "metadata: {name: open, namespace: shop}\nspec: {podSelector: {}, ingress: [{}]}\n"
        )
    )
    run = invoke(tmp_path, ["check", "np.yaml"], b"")
    assert run.code == 0
    assert run.stdout.startswith("np.yaml:6: warning: [restrict-allow-all]")
    assert run.stdout.endswith("2 resources, 1 violation: 1 warning\n")


@INVOKERS
@pytest.mark.parametrize(
    ("files", "args", "stdin", "stderr"),
    [
        (
            {"bad.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a: b\n"},
            ["check", "bad.yaml"],
            b"",
            "bad.yaml:4: invalid YAML: mapping values are not allowed in this context "
            "(column 10)\n",
        ),
        (
            {"dir/bad.json": '{"apiVersion": "v1",\n "kind": }\n'},
            ["check", "dir"],
            b"",
            "dir/bad.json:2: invalid JSON: Expecting value (column 10)\n",
        ),
        ({}, ["check", "missing.yaml"], b"", "missing.yaml: no such file or directory\n"),
        (
            {},
            ["check", "-"],
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: [\n",
            "<stdin>:3: invalid YAML: while parsing a flow node: did not find expected node "
            "content (column 1)\n",
        ),
        (
            {"latin1.yaml": b"# caf\xe9\napp: caf\xe9\n"},
            ["check", "latin1.yaml"],
            b"",
            "latin1.yaml:1: not valid UTF-8: byte 0xe9 at column 6\n",
        ),
    ],
    ids=["yaml-syntax", "json-in-directory", "missing-path", "stdin-syntax", "invalid-utf8"],
)
def test_bad_input_exits_2_with_file_and_line(
    tmp_path: Path,
    invoke: Invoke,
    files: dict[str, str | bytes],
    args: list[str],
    stdin: bytes,
    stderr: str,
) -> None:
    """Bad input: exit 2, `file:line: message` on stderr, nothing on stdout, no traceback."""
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run = invoke(tmp_path, args, stdin)
    assert (run.code, run.stdout, run.stderr) == (2, "", stderr)


@INVOKERS
def test_cluster_flag_with_unreachable_api_is_bad_input(tmp_path: Path, invoke: Invoke) -> None:
    """`--cluster` whose API server does not answer exits 2 naming it, without a traceback."""
    (tmp_path / "ok.yaml").write_text(CLEAN)
    (tmp_path / "kubeconfig").write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "x",'
        ' "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}'
    )
    run = invoke(tmp_path, ["check", "--cluster", "--kubeconfig", "kubeconfig", "ok.yaml"], b"")
    assert (run.code, run.stdout) == (2, "")
    assert run.stderr.startswith(
        "https://127.0.0.1:9: cannot read the cluster's namespaces and network policies: "
    )
    assert "Connection refused" in run.stderr
    assert "Traceback" not in run.stderr
