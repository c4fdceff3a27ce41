"""`guardrail check` as a developer's CI and an auditor meet it: no false alarms, no silent
passes, findings where the developer edits, and one set of counts in every format.

Each test runs the real `guardrail` console script in a subprocess, as a CI job does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny, namespace: {ns}}}
spec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, role: {role}}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"""
STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, role: db}}}}
    spec: {{containers: [{{name: c, image: postgres}}]}}
"""
POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}
spec: {{containers: [{{name: c, image: nginx}}]}}
"""
ALLOW_ALL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: open, namespace: {ns}}}
spec: {{podSelector: {{}}, ingress: [{{}}]}}
"""


def guardrail(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GUARDRAIL, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(root: Path, name: str, *docs: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(docs))


# -- 1. an application repository: no false alarm ----------------------------------------------
def test_an_app_repository_without_platform_policies_passes_with_a_warning(
    tmp_path: Path,
) -> None:
    """`cat web.yaml | guardrail check -`: the namespace's isolation is the platform's, not in
    the input: unverified (a warning, exit 0), saying what would settle it."""
    web = DEPLOYMENT.format(name="web", ns="shop", role="frontend")
    done = guardrail(tmp_path, "check", "-", stdin=web)
    assert done.returncode == 0, done.stdout + done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith('<stdin>:1: warning: [require-default-deny] Deployment "web" in ')
    assert 'not verified, the input holds nothing about namespace "shop"' in first
    assert "--cluster" in first
    assert "--strict" in first
    assert "Unverified: 1 namespace not in the input (shop)" in done.stdout
    assert done.stdout.endswith("1 resource, 1 violation: 1 warning\n")


def test_strict_makes_an_unverified_namespace_a_violation(tmp_path: Path) -> None:
    web = DEPLOYMENT.format(name="web", ns="shop", role="frontend")
    done = guardrail(tmp_path, "check", "--strict", "-", stdin=web)
    assert done.returncode == 1
    assert done.stdout.startswith('<stdin>:1: error: [require-default-deny] Deployment "web" in')
    assert "cannot run there" in done.stdout
    assert "Unverified" not in done.stdout


@pytest.mark.parametrize(
    "platform",
    [NAMESPACE.format(ns="shop"), ALLOW_ALL.format(ns="shop")],
    ids=["namespace-object", "a-policy-of-it"],
)
def test_a_namespace_the_input_describes_is_judged_not_unverified(
    tmp_path: Path, platform: str
) -> None:
    """Once the input holds the Namespace or one of its policies, its gap is a real error."""
    write(tmp_path, "platform.yaml", platform)
    write(tmp_path, "app.yaml", DEPLOYMENT.format(name="web", ns="shop", role="frontend"))
    done = guardrail(tmp_path, "check", "--format", "json", ".")
    assert done.returncode == 1, done.stdout
    doc = json.loads(done.stdout)
    (gap,) = [v for v in doc["violations"] if v["policy"] == "require-default-deny"]
    assert (gap["level"], gap["kind"], gap["file"], gap["line"]) == (
        "error",
        "Deployment",
        "./app.yaml",
        1,
    )
    assert "unverified" not in gap
    assert doc["summary"]["unverifiedNamespaces"] == []


def test_unverified_findings_are_marked_in_json_and_sarif(tmp_path: Path) -> None:
    write(tmp_path, "app.yaml", DEPLOYMENT.format(name="web", ns="shop", role="frontend"))
    doc = json.loads(guardrail(tmp_path, "check", "--format", "json", "app.yaml").stdout)
    assert doc["summary"]["unverified"] == 1
    assert doc["summary"]["unverifiedNamespaces"] == ["shop"]
    assert doc["violations"][0]["unverified"] is True
    assert doc["violations"][0]["level"] == "warning"
    sarif = json.loads(guardrail(tmp_path, "check", "--format", "sarif", "app.yaml").stdout)
    (result,) = sarif["runs"][0]["results"]
    assert (result["level"], result["properties"]["unverified"]) == ("warning", True)


# -- 2. one broken file: every other file still judged -----------------------------------------
def test_a_broken_file_is_reported_and_the_others_still_judged(tmp_path: Path) -> None:
    write(tmp_path, "a-ns.yaml", NAMESPACE.format(ns="shop"), DEFAULT_DENY.format(ns="shop"))
    write(tmp_path, "b-broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a: b\n")
    write(tmp_path, "c-pod.yaml", POD.format(name="web", ns="shop"))
    write(tmp_path, "d-broken.json", '{"kind": }')
    done = guardrail(tmp_path, "check", ".")
    assert done.returncode == 2
    assert done.stdout.startswith('./c-pod.yaml:1: error: [require-role-labels] Pod "web"')
    assert done.stdout.endswith("3 resources, 1 violation: 1 error\n")
    assert done.stderr.splitlines() == [
        "./b-broken.yaml:4: invalid YAML: mapping values are not allowed in this context "
        "(column 10)",
        "./d-broken.json:1: invalid JSON: Expecting value (column 10)",
        "guardrail: 2 files or objects could not be judged (above); the rest were judged",
    ]
    assert "Traceback" not in done.stderr


# -- 4. findings where the developer edits -----------------------------------------------------
def test_a_workload_rejected_for_its_namespace_fails_at_its_own_file_and_line(
    tmp_path: Path,
) -> None:
    """The StatefulSet is annotated in its own file (SARIF) and is a failing JUnit case; the
    Namespace's file gets no annotation of its own."""
    write(tmp_path, "platform/ns.yaml", NAMESPACE.format(ns="shop"))
    write(
        tmp_path,
        "app/db.yaml",
        "# the database\n" + STATEFULSET.format(name="db", ns="shop"),
    )
    sarif = json.loads(guardrail(tmp_path, "check", "--format", "sarif", "platform", "app").stdout)
    located = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in sarif["runs"][0]["results"]
    ]
    assert located == [("require-default-deny", "error", "app/db.yaml", 2)]

    junit = guardrail(tmp_path, "check", "--format", "junit", "platform", "app")
    assert junit.returncode == 1
    root = ET.fromstring(junit.stdout)  # noqa: S314 - guardrail's own report, not untrusted input
    failing = [
        (case.get("classname"), case.get("name"), case.get("file"), case.get("line"))
        for case in root.iter("testcase")
        if case.find("failure") is not None
    ]
    assert failing == [("app/db.yaml", "StatefulSet shop/db (line 2)", "app/db.yaml", "2")]
    assert root.get("failures") == "1"


def test_text_groups_a_namespace_gap_under_one_headline_with_the_fix_once(
    tmp_path: Path,
) -> None:
    write(tmp_path, "ns.yaml", NAMESPACE.format(ns="shop"))
    write(
        tmp_path,
        "apps.yaml",
        DEPLOYMENT.format(name="web", ns="shop", role="frontend"),
        STATEFULSET.format(name="db", ns="shop"),
    )
    done = guardrail(tmp_path, "check", "ns.yaml", "apps.yaml")
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        'ns.yaml:1: error: [require-default-deny] Namespace "shop" has no default-deny network '
        'policy for Ingress and Egress, so 2 workloads in it would be rejected: Deployment "web", '
        'StatefulSet "db". Apply one first: echo '
    )
    assert lines[1:3] == ['  apps.yaml:1: Deployment "web"', '  apps.yaml:10: StatefulSet "db"']
    assert done.stdout.count("kubectl apply") == 1
    assert lines[-1] == "3 resources, 2 violations: 2 errors"


# -- 5. one model of counts and levels ---------------------------------------------------------
CONFIG = """\
policies:
  require-role-labels: {mode: audit}
"""


def _counts_everywhere(tmp_path: Path, *args: str) -> dict[str, object]:
    def out(fmt: str) -> str:
        return guardrail(tmp_path, "check", "--format", fmt, *args).stdout

    doc = json.loads(out("json"))
    sarif = json.loads(out("sarif"))
    levels = [r["level"] for r in sarif["runs"][0]["results"]]
    junit = ET.fromstring(out("junit"))  # noqa: S314 - guardrail's own report
    return {
        "text": out("text").splitlines()[-1],
        "json": {k: doc["summary"][k] for k in ("errors", "warnings", "notes")},
        "sarif": {k: levels.count(k[:-1]) for k in ("errors", "warnings", "notes")},
        "junit failures": int(junit.get("failures") or 0),
        "json levels": sorted({(v["mode"], v["level"]) for v in doc["violations"]}),
    }


def test_every_format_counts_the_same_and_the_level_follows_the_mode(tmp_path: Path) -> None:
    (tmp_path / "guardrail.yaml").write_text(CONFIG)
    write(tmp_path, "m/ns.yaml", NAMESPACE.format(ns="shop"), ALLOW_ALL.format(ns="shop"))
    write(tmp_path, "m/app.yaml", POD.format(name="a", ns="shop"), POD.format(name="b", ns="shop"))
    found = _counts_everywhere(tmp_path, "--config", "guardrail.yaml", "m")
    # 2 pods x require-default-deny (enforce: error), 2 pods x role labels (audit: note),
    # the allow-all (warn: warning).
    assert found == {
        "text": "4 resources, 5 violations: 2 errors, 1 warning, 2 notes",
        "json": {"errors": 2, "warnings": 1, "notes": 2},
        "sarif": {"errors": 2, "warnings": 1, "notes": 2},
        "junit failures": 2,
        "json levels": [("audit", "note"), ("enforce", "error"), ("warn", "warning")],
    }


def test_the_summary_is_last_and_quiet_prints_only_it(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NAMESPACE.format(ns="shop"), DEFAULT_DENY.format(ns="shop"))
    write(tmp_path, "pods.yaml", *(POD.format(name=f"p{i}", ns="shop") for i in range(30)))
    full = guardrail(tmp_path, "check", ".").stdout.splitlines()
    quiet = guardrail(tmp_path, "check", "--quiet", ".")
    assert quiet.returncode == 1
    assert quiet.stdout.splitlines() == [
        "By policy:",
        "  require-role-labels  30 errors",
        "32 resources, 30 violations: 30 errors",
    ]
    assert full[-3:] == quiet.stdout.splitlines()
    bad = guardrail(tmp_path, "check", "--quiet", "--format", "json", ".")
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "--quiet prints the text summary" in bad.stderr


def test_identical_findings_are_grouped_in_text_and_listed_in_json(tmp_path: Path) -> None:
    """2,000 Pods in 40 namespaces missing `role`: one group in text, every one in JSON."""
    for n in range(40):
        ns = f"team-{n:02d}"
        write(
            tmp_path,
            f"{ns}.yaml",
            NAMESPACE.format(ns=ns),
            DEFAULT_DENY.format(ns=ns),
            *(POD.format(name=f"p{i:02d}", ns=ns) for i in range(50)),
        )
    text = guardrail(tmp_path, "check", ".").stdout.splitlines()
    assert text[0] == (
        "error: [require-role-labels] 2,000 Pods in 40 namespaces, the same "
        'finding; the first: Pod "p00" in namespace "team-00" is missing required labels: '
        "role. Add them under metadata.labels."
    )
    assert text[1] == '  ./team-00.yaml:10: Pod "p00"'
    assert text[11] == "  … and 1,990 more (--format json lists every one)"
    assert len(text) < 20
    doc = json.loads(guardrail(tmp_path, "check", "--format", "json", ".").stdout)
    assert len(doc["violations"]) == 2000


# -- selection and exit codes ------------------------------------------------------------------
def _mixed(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", NAMESPACE.format(ns="shop"), ALLOW_ALL.format(ns="shop"))
    write(tmp_path, "pod.yaml", POD.format(name="a", ns="shop"))


@pytest.mark.parametrize(
    ("flags", "code", "policies"),
    [
        ([], 1, {"require-default-deny", "require-role-labels", "restrict-allow-all"}),
        (["--only", "restrict-allow-all"], 0, {"restrict-allow-all"}),
        (["--only", "require-role-labels,restrict-allow-all"], 1, None),
        (["--skip", "require-default-deny", "--skip", "require-role-labels"], 0, None),
        (["--only", "restrict-allow-all", "--fail-on", "warn"], 1, {"restrict-allow-all"}),
        (["--fail-on", "WARN", "--skip", "require-default-deny,require-role-labels"], 1, None),
    ],
    ids=["all", "only", "only-comma", "skip-twice", "fail-on-warn", "fail-on-any-case"],
)
def test_only_skip_and_fail_on(
    tmp_path: Path, flags: list[str], code: int, policies: set[str] | None
) -> None:
    _mixed(tmp_path)
    done = guardrail(tmp_path, "check", "--format", "json", *flags, ".")
    assert done.returncode == code, done.stderr
    found = {v["policy"] for v in json.loads(done.stdout)["violations"]}
    if policies is not None:
        assert found == policies
    if "--skip" in flags:
        assert "require-default-deny" not in found


def test_an_unknown_policy_id_is_bad_input(tmp_path: Path) -> None:
    """A typo in --only would otherwise report nothing and pass: exit 2 naming the ids."""
    _mixed(tmp_path)
    done = guardrail(tmp_path, "check", "--only", "require-role-label", ".")
    assert (done.returncode, done.stdout) == (2, "")
    assert "unknown policy 'require-role-label'" in done.stderr
    assert "require-role-labels" in done.stderr
    assert "Traceback" not in done.stderr


def test_audit_mode_notes_never_fail_even_with_fail_on_warn(tmp_path: Path) -> None:
    (tmp_path / "guardrail.yaml").write_text(CONFIG)
    write(tmp_path, "ns.yaml", NAMESPACE.format(ns="shop"), DEFAULT_DENY.format(ns="shop"))
    write(tmp_path, "pod.yaml", POD.format(name="a", ns="shop"))
    done = guardrail(tmp_path, "check", "--config", "guardrail.yaml", "--fail-on", "warn", ".")
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("./pod.yaml:1: note: [require-role-labels]")


def test_allow_empty_accepts_input_without_manifests_but_not_broken_input(
    tmp_path: Path,
) -> None:
    """--allow-empty (what the pre-commit hook passes): a commit of mkdocs.yml is fine; a file
    that does not parse still is not."""
    (tmp_path / "mkdocs.yml").write_text("site_name: docs\n")
    strict = guardrail(tmp_path, "check", "mkdocs.yml")
    assert strict.returncode == 2
    assert "no manifests found in mkdocs.yml" in strict.stderr
    allowed = guardrail(tmp_path, "check", "--allow-empty", "mkdocs.yml")
    assert (allowed.returncode, allowed.stdout) == (0, "0 resources, no violations\n")
    (tmp_path / "bad.yaml").write_text("a: b: c\n")
    broken = guardrail(tmp_path, "check", "--allow-empty", "bad.yaml")
    assert (broken.returncode, broken.stdout) == (2, "")
    assert broken.stderr.startswith("bad.yaml:1: invalid YAML")


def test_sarif_paths_are_from_the_repository_root(tmp_path: Path) -> None:
    """`check .` finds ./k8s/web.yaml; code scanning knows the file as k8s/web.yaml."""
    write(tmp_path, "k8s/web.yaml", POD.format(name="web", ns="shop"))
    sarif = json.loads(guardrail(tmp_path, "check", "--format", "sarif", ".").stdout)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    }
    assert uris == {"k8s/web.yaml"}


def test_json_and_sarif_say_when_what_and_with_which_config(tmp_path: Path) -> None:
    """The HTML header's facts are in the machine formats too: two runs' configs compare by
    digest, whatever the file's spelling."""
    write(tmp_path, "k8s/web.yaml", POD.format(name="web", ns="shop"))
    (tmp_path / "a.yaml").write_text(CONFIG)
    (tmp_path / "b.yaml").write_text("# the same, spelled out\n" + CONFIG)
    doc = json.loads(
        guardrail(tmp_path, "check", "--format", "json", "--config", "a.yaml", "k8s").stdout
    )
    origin = doc["origin"]
    assert origin["command"] == "check"
    assert origin["sources"] == ["k8s"]
    assert origin["configFile"] == "a.yaml"
    assert origin["configDigest"].startswith("sha256:")
    assert origin["modes"]["require-role-labels"] == "audit"
    assert origin["generated"].endswith("Z")
    other = json.loads(
        guardrail(tmp_path, "check", "--format", "json", "--config", "b.yaml", "k8s").stdout
    )
    assert other["origin"]["configDigest"] == origin["configDigest"]
    default = json.loads(guardrail(tmp_path, "check", "--format", "json", "k8s").stdout)
    assert default["origin"]["configFile"] is None
    assert default["origin"]["configDigest"] != origin["configDigest"]
    sarif = json.loads(
        guardrail(tmp_path, "check", "--format", "sarif", "--config", "a.yaml", "k8s").stdout
    )
    (invocation,) = sarif["runs"][0]["invocations"]
    assert invocation["properties"]["configDigest"] == origin["configDigest"]
    assert invocation["startTimeUtc"].endswith("Z")
