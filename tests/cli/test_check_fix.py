"""`guardrail check --fix DIR` and `--write`, through the real console script.

What would make the input pass: each verified namespace's default-deny and kustomize label
patches in DIR (a Component), applied with the real `kubectl kustomize` and judged again; the
exact in-place edits of `--write`; `fix` in JSON and `fixes` in SARIF. Sources are never
touched without `--write`, DIR is never overwritten silently nor left, and a label value only
a person can choose stays a placeholder that Guardrail rejects.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
"""
WEB = """\
# The shop's web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels:
        app: web   # the selector's
    spec:
      containers: [{name: web, image: nginx}]
"""
# Only role: web is allowed, so a fix knows the value; app is not required here.
ONE_ROLE = "policies:\n  require-role-labels: {labels: [role], allowedValues: {role: [web]}}\n"


def run(cwd: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GUARDRAIL, *args],
        cwd=cwd,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def kustomize(root: Path, resources: list[str], components: list[str]) -> str:
    """`kubectl kustomize` of an overlay holding the user's manifests and the fix Component."""
    overlay = {"resources": resources, "components": components}
    (root / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    done = subprocess.run(
        [KUBECTL, "kustomize", str(root)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fixes_built_with_kustomize_make_the_input_pass(tmp_path: Path) -> None:
    """check -> --fix -> kubectl kustomize of the manifests plus the fix Component -> check
    exits 0: the namespace's default-deny and the known label value are what was missing."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB, "config.yaml": ONE_ROLE})
    before = run(tmp_path, "check", "--config", "config.yaml", "app")
    assert before.returncode == 1, before.stdout

    fixed = run(tmp_path, "check", "--config", "config.yaml", "--fix", "fixes", "app")
    assert fixed.returncode == 1, fixed.stderr  # the input itself is judged as it is
    assert sorted(
        p.relative_to(tmp_path / "fixes").as_posix() for p in (tmp_path / "fixes").rglob("*.yaml")
    ) == [
        "kustomization.yaml",
        "shop/default-deny.yaml",
        "shop/deployment-web.patch.yaml",
    ]
    for path in ("fixes/shop/default-deny.yaml", "fixes/shop/deployment-web.patch.yaml"):
        assert f"guardrail: wrote {path}\n" in fixed.stderr
    assert "REPLACE-ME" not in fixed.stderr  # the one allowed value is no placeholder

    built = kustomize(tmp_path, ["app/ns.yaml", "app/web.yaml"], ["fixes"])
    after = run(tmp_path, "check", "--config", "config.yaml", "-", stdin=built.encode())
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.endswith("3 resources, no violations\n")


def test_fix_files_hold_exactly_the_policy_and_only_the_label_path(tmp_path: Path) -> None:
    """The policy is require-default-deny's own; a patch names the object (apiVersion, kind,
    name, namespace) and the label path, nothing else; the Component targets each patch."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB})
    run(tmp_path, "check", "--fix", "fixes", "app")
    policy = yaml.safe_load((tmp_path / "fixes/shop/default-deny.yaml").read_text())
    assert policy == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "shop"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    patch_text = (tmp_path / "fixes/shop/deployment-web.patch.yaml").read_text()
    assert yaml.safe_load(patch_text) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"role": "REPLACE-ME"}}}},
    }
    assert "REPLACE-ME is a placeholder that guardrail rejects" in patch_text
    assert yaml.safe_load((tmp_path / "fixes/kustomization.yaml").read_text()) == {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": ["shop/default-deny.yaml"],
        "patches": [
            {
                "path": "shop/deployment-web.patch.yaml",
                "target": {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "name": "web",
                    "namespace": "shop",
                },
            }
        ],
    }


def test_a_placeholder_keeps_ci_red_until_a_person_chooses(tmp_path: Path) -> None:
    """Without a known value the fix writes REPLACE-ME, says so loudly, and the built result
    still fails on it; once a value is chosen in the patch it passes."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB})
    fixed = run(tmp_path, "check", "--fix", "fixes", "app")
    assert (
        "guardrail: warning: REPLACE-ME is a placeholder that Guardrail rejects: choose the "
        "values of these labels before applying them: fixes/shop/deployment-web.patch.yaml: role"
    ) in fixed.stderr
    built = kustomize(tmp_path, ["app/ns.yaml", "app/web.yaml"], ["fixes"])
    still = run(tmp_path, "check", "-", stdin=built.encode())
    assert still.returncode == 1
    assert 'role="REPLACE-ME" is a placeholder to replace' in still.stdout
    patch = tmp_path / "fixes/shop/deployment-web.patch.yaml"
    patch.write_text(patch.read_text().replace("role: REPLACE-ME", "role: frontend"))
    built = kustomize(tmp_path, ["app/ns.yaml", "app/web.yaml"], ["fixes"])
    chosen = run(tmp_path, "check", "-", stdin=built.encode())
    assert chosen.returncode == 0, chosen.stdout


def test_without_write_no_source_byte_changes(tmp_path: Path) -> None:
    """--fix, --format json and --format sarif never modify an input file."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB, "app/pod.json": POD_JSON})
    before = digests(tmp_path / "app")
    for args in (["--fix", "fixes"], ["--format", "json"], ["--format", "sarif"]):
        run(tmp_path, "check", *args, "app")
    assert digests(tmp_path / "app") == before


def test_a_fix_file_that_differs_is_refused_unless_forced(tmp_path: Path) -> None:
    """A rerun with identical fixes is fine; a file a person edited is refused (exit 2, named,
    nothing written), and --force replaces it; --force without --fix is bad input."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB})
    run(tmp_path, "check", "--fix", "fixes", "app")
    again = run(tmp_path, "check", "--fix", "fixes", "app")
    assert again.returncode == 1
    assert (
        "guardrail: unchanged fixes/shop/default-deny.yaml (it holds the fix already)"
        in again.stderr
    )
    patch = tmp_path / "fixes/shop/deployment-web.patch.yaml"
    patch.write_text(patch.read_text().replace("REPLACE-ME", "frontend"))
    policy = tmp_path / "fixes/shop/default-deny.yaml"
    policy.unlink()
    refused = run(tmp_path, "check", "--fix", "fixes", "app")
    assert refused.returncode == 2
    assert (
        "guardrail: fixes/shop/deployment-web.patch.yaml: exists and differs from the fix; "
        "not overwritten (--force replaces it)"
    ) in refused.stderr
    assert not policy.exists()  # refused before anything was written
    assert "frontend" in patch.read_text()
    forced = run(tmp_path, "check", "--fix", "fixes", "--force", "app")
    assert forced.returncode == 1, forced.stderr
    assert "REPLACE-ME" in patch.read_text()
    assert policy.exists()
    alone = run(tmp_path, "check", "--force", "app")
    assert alone.returncode == 2
    assert "--force replaces files in the --fix directory; give --fix DIR" in alone.stderr


def test_an_unverified_namespace_gets_no_default_deny(tmp_path: Path) -> None:
    """An application repository (no Namespace, no policy) gets its label patches but never a
    default-deny: the cluster may have one, and the input cannot say."""
    write(tmp_path, {"app/web.yaml": WEB})
    fixed = run(tmp_path, "check", "--fix", "fixes", "app")
    assert not (tmp_path / "fixes/shop/default-deny.yaml").exists()
    assert (tmp_path / "fixes/shop/deployment-web.patch.yaml").exists()
    assert (
        'guardrail: namespace "shop": no default-deny written: the input holds nothing about it'
        in fixed.stderr
    )


def test_only_the_missing_direction_and_never_a_taken_name(tmp_path: Path) -> None:
    """A namespace isolated for Ingress only gets default-deny-egress; one whose policy named
    default-deny isolates nothing gets a policy under a name that does not replace it."""
    ingress_only = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-in, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
    taken = """\
apiVersion: v1
kind: Namespace
metadata: {name: blog}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: blog}
spec: {podSelector: {matchLabels: {app: old}}, policyTypes: [Ingress, Egress]}
---
apiVersion: v1
kind: Pod
metadata: {name: post, namespace: blog, labels: {app: post, role: api}}
spec: {containers: [{name: c, image: x}]}
"""
    labelled = WEB.replace("app: web   # the selector's", "app: web\n        role: web")
    write(
        tmp_path,
        {
            "app/ns.yaml": NAMESPACE,
            "app/np.yaml": ingress_only,
            "app/web.yaml": labelled,
            "app/blog.yaml": taken,
        },
    )
    run(tmp_path, "check", "--fix", "fixes", "app")
    egress = yaml.safe_load((tmp_path / "fixes/shop/default-deny-egress.yaml").read_text())
    assert egress["metadata"]["name"] == "default-deny-egress"
    assert egress["spec"]["policyTypes"] == ["Egress"]
    blog = yaml.safe_load((tmp_path / "fixes/blog/guardrail-default-deny.yaml").read_text())
    assert blog["metadata"] == {"name": "guardrail-default-deny", "namespace": "blog"}
    built = kustomize(
        tmp_path, ["app/ns.yaml", "app/np.yaml", "app/web.yaml", "app/blog.yaml"], ["fixes"]
    )
    assert run(tmp_path, "check", "-", stdin=built.encode()).returncode == 0


def test_no_default_deny_where_it_would_not_isolate(tmp_path: Path) -> None:
    """Where a policy allows all traffic, a default-deny beside it isolates nothing (policies
    add up): the engine judges the namespace again, so none is written, and the user is told."""
    open_policy = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: shop}
spec: {podSelector: {}, ingress: [{}], egress: [{}], policyTypes: [Ingress, Egress]}
"""
    labelled = WEB.replace("app: web   # the selector's", "app: web\n        role: web")
    write(
        tmp_path, {"app/ns.yaml": NAMESPACE, "app/np.yaml": open_policy, "app/web.yaml": labelled}
    )
    fixed = run(tmp_path, "check", "--fix", "fixes", "app")
    assert fixed.returncode == 1
    assert not (tmp_path / "fixes").exists()
    assert (
        'guardrail: namespace "shop": a default-deny does not make Deployment "web" pass'
    ) in fixed.stderr


HOSTILE = """\
apiVersion: v1
kind: Pod
metadata: {name: ../../../escaped, namespace: shop}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ../../outside}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: a/b, namespace: shop}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: ..}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ..}
spec: {containers: [{name: c, image: x}]}
"""


def test_hostile_names_never_escape_the_fix_directory(tmp_path: Path) -> None:
    """Names with `..` or `/` (rejected by any API server, but manifests are untrusted) get no
    file at all, and everything written stays inside DIR."""
    write(tmp_path, {"work/app/ns.yaml": NAMESPACE, "work/app/bad.yaml": HOSTILE})
    work = tmp_path / "work"
    fixed = run(work, "check", "--fix", "fixes", "app")
    assert fixed.returncode == 1, fixed.stderr
    outside = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.startswith(("work/app/", "work/fixes/")) for p in outside), outside
    written = sorted(
        p.relative_to(work / "fixes").as_posix() for p in (work / "fixes").rglob("*") if p.is_file()
    )
    assert written == ["kustomization.yaml", "shop/default-deny.yaml"]
    assert '"shop/../../../escaped" is not a valid namespace and name' in fixed.stderr
    assert '"../../outside/web" is not a valid namespace and name' in fixed.stderr
    assert 'namespace "..": not fixed: not a valid namespace name' in fixed.stderr


def test_a_symbolic_link_out_of_the_fix_directory_is_refused(tmp_path: Path) -> None:
    """DIR/shop linking elsewhere is refused (exit 2) and nothing is written through it."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB})
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "fixes").mkdir()
    (tmp_path / "fixes/shop").symlink_to(tmp_path / "elsewhere")
    refused = run(tmp_path, "check", "--fix", "fixes", "app")
    assert refused.returncode == 2
    assert "would be written outside the fix directory" in refused.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_fix_directory_inside_the_input_is_not_judged_as_workloads(tmp_path: Path) -> None:
    """DIR may live in the input: it is written after the input is read, and a later check of
    the tree judges its policies but not its patches (files a kustomization lists as patches)."""
    write(tmp_path, {"tree/ns.yaml": NAMESPACE, "tree/web.yaml": WEB})
    first = run(tmp_path, "check", "--fix", "tree/fixes", "tree")
    assert first.returncode == 1
    again = run(tmp_path, "check", "--format", "json", "tree")
    found = json.loads(again.stdout)["violations"]
    assert [(v["policy"], v["file"]) for v in found] == [("require-role-labels", "tree/web.yaml")]
    assert (
        "tree/fixes/shop/deployment-web.patch.yaml:5: skipped: a kustomize patch "
        "(listed in tree/fixes/kustomization.yaml)"
    ) in again.stderr


@pytest.mark.parametrize(
    "kustomization",
    [
        # the same file a resource and a patch: kustomize builds its objects
        "resources: [web.yaml]\npatches: [{path: web.yaml}]\n",
        # a patch of nothing in the input: the object is applied some other way, or fails
        "patchesStrategicMerge: [web.yaml]\n",
    ],
    ids=["resource-and-patch", "patch-of-nothing"],
)
def test_listing_a_file_as_a_patch_cannot_hide_it(tmp_path: Path, kustomization: str) -> None:
    """Only what is certainly a patch is left out: an object of a file also listed as a
    resource, or one no other object of the input has the kind and name of, is judged."""
    write(
        tmp_path,
        {
            "tree/ns.yaml": NAMESPACE,
            "tree/web.yaml": WEB,
            "tree/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\n"
            "kind: Kustomization\n" + kustomization,
        },
    )
    result = run(tmp_path, "check", "--format", "json", "tree")
    assert result.returncode == 1, result.stderr
    found = json.loads(result.stdout)["violations"]
    assert ("require-role-labels", "tree/web.yaml") in [(v["policy"], v["file"]) for v in found]
    assert "skipped" not in result.stderr


# -- --write --------------------------------------------------------------------------------
POD_JSON = """\
{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "api",
    "namespace": "shop",
    "labels": {
      "app": "api"
    }
  },
  "spec": {"containers": [{"name": "c", "image": "x"}]}
}
"""
WRITES = [
    pytest.param(
        WEB,
        WEB.replace(
            "app: web   # the selector's\n",
            "app: web   # the selector's\n        role: REPLACE-ME\n",
        ),
        id="block-with-comments",
    ),
    pytest.param(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {app: p}}\nspec: {}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop, labels: {app: p, role: REPLACE-ME}}\nspec: {}\n",
        id="flow",
    ),
    pytest.param(
        POD_JSON,
        POD_JSON.replace('"app": "api"\n', '"app": "api",\n      "role": "REPLACE-ME"\n'),
        id="json",
    ),
    pytest.param(
        "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: p\r\n  namespace: shop\r\n  labels:\r\n    app: p\r\n",
        "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: p\r\n  namespace: shop\r\n  labels:\r\n    app: p\r\n    role: REPLACE-ME\r\n",
        id="crlf",
    ),
    pytest.param(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n    namespace: shop\n"
        "- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: b, namespace: shop}\n  spec:\n    template:\n      spec: {containers: []}\n",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: a\n    namespace: shop\n"
        "    labels:\n      app: REPLACE-ME\n      role: REPLACE-ME\n"
        "- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: b, namespace: shop}\n  spec:\n    template:\n"
        "      metadata:\n        labels:\n          app: REPLACE-ME\n          role: REPLACE-ME\n      spec: {containers: []}\n",
        id="list",
    ),
    pytest.param(
        '# two\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: shop\n  labels:\n    app: a\n    role: ""\n'
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  namespace: shop\n  labels: {app: b, role: x}\n",
        "# two\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: shop\n  labels:\n    app: a\n    role: REPLACE-ME\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  namespace: shop\n  labels: {app: b, role: x}\n",
        id="multi-document-empty-value",
    ),
]


@pytest.mark.parametrize(("source", "expected"), WRITES)
def test_write_adds_exactly_the_labels_in_place(tmp_path: Path, source: str, expected: str) -> None:
    """--write inserts the missing labels where a person would, keeping every other byte
    (comments, flow style, JSON, CRLF, List items, other documents); the rewritten file then
    fails only on the placeholder."""
    name = "app/obj.json" if source.startswith("{") else "app/obj.yaml"
    write(tmp_path, {name: source})
    done = run(tmp_path, "check", "--write", "app")
    assert done.returncode == 1
    assert (tmp_path / name).read_bytes() == expected.encode()
    assert f"guardrail: rewrote {name}: added " in done.stderr
    again = run(tmp_path, "check", "--format", "json", "app")
    messages = [
        v["message"]
        for v in json.loads(again.stdout)["violations"]
        if v["policy"] == "require-role-labels"
    ]
    assert messages
    assert all("is a placeholder to replace" in m for m in messages), messages


def test_write_with_a_known_value_makes_the_file_pass(tmp_path: Path) -> None:
    """With one allowed value the in-place edit is the whole fix."""
    write(tmp_path, {"app/web.yaml": WEB, "config.yaml": ONE_ROLE})
    run(tmp_path, "check", "--config", "config.yaml", "--write", "app")
    assert "        role: web\n" in (tmp_path / "app/web.yaml").read_text()
    assert run(tmp_path, "check", "--config", "config.yaml", "app").returncode == 0


UNSAFE = [
    pytest.param(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n"
        "    name: a\n    namespace: shop\n    labels: &shared {app: a}\n- apiVersion: v1\n"
        "  kind: Pod\n  metadata:\n    name: b\n    namespace: shop\n    labels: *shared\n",
        "its labels are a YAML anchor",
        id="anchor-shared-by-two-fixed-objects",
    ),
    pytest.param(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n"
        "    name: a\n    namespace: shop\n    labels: &l {app: a}\n- apiVersion: v1\n"
        "  kind: Pod\n  metadata:\n    name: b\n    namespace: shop\n    labels:\n"
        "      <<: *l\n      role: r\n",
        "its labels are a YAML anchor",
        id="anchor-reused-by-an-object-that-passes",
    ),
    pytest.param(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: shop\n  labels:\nspec: {}\n",
        "metadata.labels is not a mapping",
        id="null-labels",
    ),
    pytest.param(
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "shop"}}'
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "shop"}}\n',
        "its text cannot be read for editing",
        id="json-stream-on-one-line",
    ),
    pytest.param(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: shop\u2028  labels: {app: a}\n",
        "line breaks other than",
        id="odd-line-break",
    ),
]


@pytest.mark.parametrize(("source", "reason"), UNSAFE)
def test_write_leaves_a_file_it_cannot_edit_exactly(
    tmp_path: Path, source: str, reason: str
) -> None:
    """Where no exact edit exists the file stays byte for byte as it was, the reason is said,
    and --fix DIR still gets its patch."""
    name = "app/obj.json" if source.startswith("{") else "app/obj.yaml"
    write(tmp_path, {name: source})
    done = run(tmp_path, "check", "--write", "--fix", "fixes", "app")
    assert (tmp_path / name).read_bytes() == source.encode()
    assert "not rewritten" in done.stderr
    assert reason in done.stderr, done.stderr
    assert "its patch is fixes/shop/pod-" in done.stderr
    assert "rewrote" not in done.stderr


def test_write_never_touches_stdin_and_keeps_file_mode(tmp_path: Path) -> None:
    """Objects from stdin are never rewritten (there is no file); a rewritten file keeps its
    mode, and one reached through a symbolic link is edited where it is, the link kept."""
    write(tmp_path, {"real/web.yaml": WEB})
    (tmp_path / "real/web.yaml").chmod(0o640)
    (tmp_path / "app").mkdir()
    (tmp_path / "app/web.yaml").symlink_to(tmp_path / "real/web.yaml")
    piped = run(tmp_path, "check", "--write", "-", stdin=WEB.encode())
    assert '<stdin>:2: Deployment "web": not rewritten: it was read from stdin' in piped.stderr
    done = run(tmp_path, "check", "--write", "app/web.yaml")
    assert "guardrail: rewrote app/web.yaml" in done.stderr
    assert (tmp_path / "app/web.yaml").is_symlink()
    assert "role: REPLACE-ME" in (tmp_path / "real/web.yaml").read_text()
    assert (tmp_path / "real/web.yaml").stat().st_mode & 0o777 == 0o640


def test_write_with_fix_puts_only_policies_and_unwritten_patches_in_the_directory(
    tmp_path: Path,
) -> None:
    """Labels made in place need no patch: DIR holds the default-deny, and kustomization.yaml
    lists no patch for them."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB})
    run(tmp_path, "check", "--write", "--fix", "fixes", "app")
    assert sorted(p.name for p in (tmp_path / "fixes").rglob("*.yaml")) == [
        "default-deny.yaml",
        "kustomization.yaml",
    ]
    assert "patches" not in yaml.safe_load((tmp_path / "fixes/kustomization.yaml").read_text())


# -- JSON and SARIF -------------------------------------------------------------------------
def test_json_carries_a_fix_per_finding(tmp_path: Path) -> None:
    """`fix` holds the manifest or the patch, the path in the fix directory, the file written
    (null without --fix), and with --write the exact source edit made."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB})
    plain = json.loads(run(tmp_path, "check", "--format", "json", "app").stdout)
    by_policy = {v["policy"]: v["fix"] for v in plain["violations"]}
    deny = by_policy["require-default-deny"]
    assert deny["path"] == "shop/default-deny.yaml"
    assert deny["file"] is None
    assert deny["manifest"]["kind"] == "NetworkPolicy"
    labels = by_policy["require-role-labels"]
    assert labels["patch"]["spec"] == {"template": {"metadata": {"labels": {"role": "REPLACE-ME"}}}}
    assert labels["target"]["name"] == "web"
    assert labels["placeholders"] == ["role"]
    assert "source" not in labels
    fixed = json.loads(run(tmp_path, "check", "--format", "json", "--fix", "fixes", "app").stdout)
    files = {v["policy"]: v["fix"]["file"] for v in fixed["violations"]}
    assert files == {
        "require-default-deny": "fixes/shop/default-deny.yaml",
        "require-role-labels": "fixes/shop/deployment-web.patch.yaml",
    }
    written = json.loads(run(tmp_path, "check", "--format", "json", "--write", "app").stdout)
    [made] = [v["fix"] for v in written["violations"] if v["policy"] == "require-role-labels"]
    assert made["source"] == {
        "file": "app/web.yaml",
        "edits": [
            {
                "startLine": 14,
                "startColumn": 1,
                "endLine": 14,
                "endColumn": 1,
                "text": "        role: REPLACE-ME\n",
            }
        ],
        "applied": True,
    }
    assert made["file"] is None  # made in place: no patch


def _apply_sarif(text: str, replacements: list[dict[str, Any]]) -> str:
    """Apply SARIF replacements as a consumer would: regions of the unmodified text, by
    line and column (lines end at \\n), last first."""
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    for replacement in sorted(
        replacements,
        key=lambda r: (r["deletedRegion"]["startLine"], r["deletedRegion"]["startColumn"]),
        reverse=True,
    ):
        region = replacement["deletedRegion"]
        start = offset(region["startLine"], region["startColumn"])
        end = offset(region.get("endLine", region["startLine"]), region["endColumn"])
        text = text[:start] + replacement["insertedContent"]["text"] + text[end:]
    return text


def test_sarif_fixes_apply_to_the_same_result_as_write(tmp_path: Path) -> None:
    """A label result's SARIF fix, applied by line and column to the source, gives exactly the
    file --write makes; a namespace gap's fix is a new file under GUARDRAIL_FIXES."""
    write(tmp_path, {"app/ns.yaml": NAMESPACE, "app/web.yaml": WEB, "app/pod.json": POD_JSON})
    sarif = json.loads(run(tmp_path, "check", "--format", "sarif", "app").stdout)
    run_ = sarif["runs"][0]
    assert run_["columnKind"] == "unicodeCodePoints"
    assert "uri" not in run_["originalUriBaseIds"]["GUARDRAIL_FIXES"]
    sources = {}
    for result in run_["results"]:
        [fix] = result["fixes"]
        assert fix["description"]["text"]
        [change] = fix["artifactChanges"]
        assert change["replacements"]
        assert all("deletedRegion" in r for r in change["replacements"])
        if result["ruleId"] == "require-role-labels":
            uri = change["artifactLocation"]["uri"]
            sources[uri] = _apply_sarif((tmp_path / uri).read_text(), change["replacements"])
        else:
            assert change["artifactLocation"] == {
                "uri": "shop/default-deny.yaml",
                "uriBaseId": "GUARDRAIL_FIXES",
            }
            [insert] = change["replacements"]
            assert insert["deletedRegion"] == {"startLine": 1, "startColumn": 1, "endColumn": 1}
            assert yaml.safe_load(insert["insertedContent"]["text"])["kind"] == "NetworkPolicy"
    assert sorted(sources) == ["app/pod.json", "app/web.yaml"]
    run(tmp_path, "check", "--write", "app")
    for uri, text in sources.items():
        assert (tmp_path / uri).read_text() == text
    fixed = json.loads(run(tmp_path, "check", "--format", "sarif", "--fix", "fixes", "app").stdout)
    base = fixed["runs"][0]["originalUriBaseIds"]["GUARDRAIL_FIXES"]["uri"]
    assert base == (tmp_path / "fixes").as_uri() + "/"


def test_check_help_shows_the_fix_options() -> None:
    """`check --help` explains --fix, --write and --force and shows a --fix example."""
    shown = subprocess.run(
        [GUARDRAIL, "check", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0
    for text in ("--fix DIR", "--write", "--force", "guardrail check --fix fixes/ k8s/"):
        assert text in shown.stdout
