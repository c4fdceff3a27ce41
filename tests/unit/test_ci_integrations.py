"""The CI integrations a user copies from the README: the pre-commit hooks
(`.pre-commit-hooks.yaml`) run by the real pre-commit, in a scratch repository, on `git commit`
too; and the composite GitHub Action (`action.yml`), its shell steps run for real by a
*simulation* of the Actions runner (there is no runner offline): the runner's expressions,
`$GITHUB_OUTPUT` and `actions/setup-python` are stood in for by this file.

Both install a clean copy of this checkout with pip, dependencies from PyPI, as pre-commit and
the action do for a user: once per module each, about 20 s with pip's cache warm.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pre_commit.clientlib import load_manifest

from tests.checkout import copy_as_cloned

REPO = Path(__file__).resolve().parents[2]
HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"
ACTION_FILE = REPO / "action.yml"
INSTALL_TIMEOUT = 600  # a pip install of the checkout and its dependencies, cold cache

# --- manifests the scratch repositories hold ---------------------------------------------------

NAMESPACE = """\
# The platform's part: the namespace and its default-deny.
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""


def deployment(name: str, labels: str = "{app: web, role: frontend}") -> str:
    return f"""\
# A developer's workload.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: shop
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {labels}
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""


WEB = deployment("web")
WEB_WITHOUT_ROLE = deployment("web-without-role", labels="{app: web}")
ROLE_FINDING = (
    'k8s/shop/web-without-role.yaml:2: error: [require-role-labels] Deployment "web-without-role" '
    'in namespace "shop" is missing required labels in its pod template: role.'
)


def app_with_its_policy(index: int) -> str:
    """A workload shipped with the allow policy it needs, as application teams do: the policy
    selects it and isolates it for Ingress only, so without its namespace's default-deny in
    the same judgement the workload is open for Egress."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{index}
  namespace: shop
spec:
  selector:
    matchLabels: {{app: app-{index}}}
  template:
    metadata:
      labels: {{app: app-{index}, role: backend}}
    spec:
      containers:
        - name: app
          image: nginx:1.27
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: app-{index}-from-frontend
  namespace: shop
spec:
  podSelector:
    matchLabels: {{app: app-{index}}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector:
            matchLabels: {{role: frontend}}
"""


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without what would let a child see this checkout or this
    test run's git and Python settings (PYTHONPATH points at the worktree: an installed
    `guardrail` must import its own copy), plus `extra`."""
    dropped = ("PYTHON", "VIRTUAL_ENV", "GIT_", "GITHUB_", "RUNNER_", "PRE_COMMIT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env |= {
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
    }
    return env | extra


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=env or clean_environ(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This checkout as a fresh clone has it (what is tracked or would be added), committed in
    a repository of its own: what `repo:` and `uses:` point at. Its path and commit."""
    root = copy_as_cloned(".", tmp_path_factory.mktemp("guardrail")).resolve()
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Guardrail")
    return root, git(root, "rev-parse", "HEAD")


# --- the hooks' manifest -------------------------------------------------------------------


def hooks() -> dict[str, dict[str, Any]]:
    """The hooks as pre-commit itself reads them: its loader validates the schema and fills in
    the defaults (it raises on a file it would refuse)."""
    return {hook["id"]: hook for hook in load_manifest(str(HOOKS_FILE))}


def test_the_hooks_manifest_is_what_pre_commit_accepts() -> None:
    """Both hooks are Python hooks running this package's `guardrail check`, in one process
    per run (`require_serial`): a namespace's policies and its workloads are judged together."""
    found = hooks()
    assert sorted(found) == ["guardrail-check", "guardrail-check-tree"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for hook in found.values():
        assert hook["language"] == "python"
        assert hook["entry"].startswith("guardrail check")
        assert "guardrail" in scripts  # pip installs the entry's executable
        assert hook["require_serial"] is True
    assert found["guardrail-check"]["pass_filenames"] is True
    # A commit of only other YAML (mkdocs.yml) is not bad input; a broken manifest still is.
    assert found["guardrail-check"]["entry"] == "guardrail check --allow-empty"
    assert found["guardrail-check-tree"]["entry"] == "guardrail check"
    assert found["guardrail-check"]["args"] == []
    assert found["guardrail-check-tree"]["pass_filenames"] is False
    assert found["guardrail-check-tree"]["args"] == ["."]


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ("k8s/shop/web.yaml", True),
        ("deploy/app.yml", True),
        ("list.json", True),
        ("web.yaml.orig", False),
        ("README.md", False),
        ("Chart.lock", False),
        (".pre-commit-config.yaml", False),
        (".pre-commit-hooks.yaml", False),
        (".gitlab-ci.yml", False),
        (".github/workflows/ci.yml", False),
        ("apps/.github.yaml", True),
    ],
    ids=str,
)
def test_the_hooks_select_manifests_only(path: str, selected: bool) -> None:
    """`files` and `exclude`, matched as pre-commit matches them (re.search on the path), pick
    YAML and JSON files but not pre-commit's own files or CI definitions."""
    for hook in hooks().values():
        matched = bool(re.search(hook["files"], path)) and not re.search(hook["exclude"], path)
        assert matched is selected, hook["id"]


# --- the hooks, run by the real pre-commit -------------------------------------------------


@dataclass
class PreCommit:
    """pre-commit with one store (PRE_COMMIT_HOME) for the whole module, so the hook's
    environment is built once and reused, as it is on a developer's machine."""

    home: Path
    hook_repo: Path
    rev: str

    def environ(self, **extra: str) -> dict[str, str]:
        return clean_environ(PRE_COMMIT_HOME=str(self.home), PRE_COMMIT_COLOR="never", **extra)

    def repo(self, root: Path, files: dict[str, str], hook_ids: list[str], **options: Any) -> Path:
        """A developer's repository using the hooks as the README says, files staged."""
        init_repo(root)
        hook_entries = [{"id": hook_id, **options} for hook_id in hook_ids]
        config = {"repos": [{"repo": str(self.hook_repo), "rev": self.rev, "hooks": hook_entries}]}
        write_files(root, {".pre-commit-config.yaml": yaml.safe_dump(config), **files})
        git(root, "add", "-A")
        return root

    def run(self, repo: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", *args],
            cwd=repo,
            capture_output=True,
            text=True,
            env=self.environ(**extra),
            timeout=INSTALL_TIMEOUT,
            check=False,
        )

    def commit(self, repo: Path, message: str) -> subprocess.CompletedProcess[str]:
        """`git commit` with the hooks `pre-commit install` put in .git/hooks."""
        return subprocess.run(
            ["git", "-C", str(repo), "commit", "-q", "-m", message],
            capture_output=True,
            text=True,
            env=self.environ(),
            timeout=INSTALL_TIMEOUT,
            check=False,
        )


@pytest.fixture(scope="module")
def pre_commit(checkout: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> PreCommit:
    """pre-commit with the hook environment installed (pip installs the checkout)."""
    runner = PreCommit(tmp_path_factory.mktemp("pre-commit-home"), *checkout)
    repo = runner.repo(tmp_path_factory.mktemp("warm-up"), {}, ["guardrail-check"])
    done = runner.run(repo, "install-hooks")
    assert done.returncode == 0, done.stdout + done.stderr
    return runner


@pytest.mark.slow
def test_the_hook_fails_on_a_violation_and_names_its_file_and_line(
    pre_commit: PreCommit, tmp_path: Path
) -> None:
    """`pre-commit run --all-files` (what CI runs) fails when a manifest violates an enforced
    policy, and prints the finding at its file and line."""
    files = {
        "k8s/shop/namespace.yaml": NAMESPACE,
        "k8s/shop/web.yaml": WEB,
        "k8s/shop/web-without-role.yaml": WEB_WITHOUT_ROLE,
    }
    repo = pre_commit.repo(tmp_path, files, ["guardrail-check"])
    done = pre_commit.run(repo, "run", "--all-files")
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^guardrail check\.+Failed$", done.stdout, re.MULTILINE), done.stdout
    assert "- exit code: 1" in done.stdout
    assert ROLE_FINDING in done.stdout


@pytest.mark.slow
def test_the_hook_passes_fine_manifests(pre_commit: PreCommit, tmp_path: Path) -> None:
    """Labelled workloads in a namespace with a default-deny pass."""
    files = {"k8s/shop/namespace.yaml": NAMESPACE, "k8s/shop/web.yaml": WEB}
    repo = pre_commit.repo(tmp_path, files, ["guardrail-check"])
    done = pre_commit.run(repo, "run", "--all-files")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^guardrail check\.+Passed$", done.stdout, re.MULTILINE), done.stdout


@pytest.mark.slow
def test_git_commit_is_refused_until_the_manifest_is_fixed(
    pre_commit: PreCommit, tmp_path: Path
) -> None:
    """After `pre-commit install`, `git commit` of a violating manifest is refused with the
    finding; once fixed, the same commit goes through."""
    files = {
        "k8s/shop/namespace.yaml": NAMESPACE,
        "k8s/shop/web-without-role.yaml": WEB_WITHOUT_ROLE,
    }
    repo = pre_commit.repo(tmp_path, files, ["guardrail-check"])
    assert pre_commit.run(repo, "install").returncode == 0

    refused = pre_commit.commit(repo, "Add the web deployment")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert ROLE_FINDING in refused.stdout + refused.stderr
    assert subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"],
        capture_output=True,
        env=clean_environ(),
        timeout=60,
        check=False,
    ).returncode, "no commit was made"

    write_files(repo, {"k8s/shop/web-without-role.yaml": deployment("web-without-role")})
    git(repo, "add", "-A")
    accepted = pre_commit.commit(repo, "Add the web deployment")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert git(repo, "log", "--format=%s") == "Add the web deployment"


@pytest.mark.slow
def test_a_commit_of_no_manifest_skips_the_hook(pre_commit: PreCommit, tmp_path: Path) -> None:
    """A commit touching only pre-commit's configuration and CI definitions (YAML, but never
    manifests) does not run `guardrail check`, which would find no manifest in them."""
    files = {".github/workflows/ci.yml": "on: push\n", ".gitlab-ci.yml": "test: {script: [true]}\n"}
    repo = pre_commit.repo(tmp_path, files, ["guardrail-check"])
    done = pre_commit.run(repo, "run")  # the staged files, as on `git commit`
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^guardrail check\.+\(no files to check\)Skipped$", done.stdout, re.M)


@pytest.mark.slow
def test_one_invocation_judges_a_namespace_with_its_workloads(
    pre_commit: PreCommit, tmp_path: Path
) -> None:
    """Twelve files, the namespace's default-deny in one of them: the hook judges them in one
    `guardrail check` and passes. The control is the same hook without `require_serial`
    (run from the environment pre-commit built): pre-commit then splits the files into
    batches, two here (TRAVIS makes pre-commit use two jobs on any machine), and the batch
    without the default-deny reports a violation that is not there."""
    files = {"k8s/shop/namespace.yaml": NAMESPACE}
    files |= {f"k8s/shop/app-{i}.yaml": app_with_its_policy(i) for i in range(1, 12)}
    repo = pre_commit.repo(tmp_path, files, ["guardrail-check"])
    done = pre_commit.run(repo, "run", "--all-files", TRAVIS="true")
    assert done.returncode == 0, done.stdout + done.stderr

    [installed] = pre_commit.home.glob("repo*/py_env-*/bin/guardrail")
    hook = hooks()["guardrail-check"] | {
        "entry": f"{installed} check",
        "language": "system",
        "require_serial": False,
    }
    control = {"repos": [{"repo": "local", "hooks": [hook]}]}
    write_files(repo, {".pre-commit-config.yaml": yaml.safe_dump(control)})
    git(repo, "add", "-A")
    split = pre_commit.run(repo, "run", "--all-files", TRAVIS="true")
    assert split.returncode == 1, split.stdout + split.stderr
    assert "has no default-deny network policy for Egress" in split.stdout


@pytest.mark.slow
def test_the_tree_hook_judges_every_manifest_when_one_changes(
    pre_commit: PreCommit, tmp_path: Path
) -> None:
    """guardrail-check-tree runs over its directories whenever a manifest is committed: a
    commit that removes the namespace's default-deny is refused for the workloads it leaves
    open, which live in files the commit does not touch."""
    files = {"k8s/shop/namespace.yaml": NAMESPACE}
    files |= {f"k8s/shop/app-{i}.yaml": app_with_its_policy(i) for i in range(1, 3)}
    repo = pre_commit.repo(tmp_path, files, ["guardrail-check-tree"], args=["k8s"])
    assert pre_commit.run(repo, "install").returncode == 0
    first = pre_commit.commit(repo, "The shop namespace")
    assert first.returncode == 0, first.stdout + first.stderr

    write_files(repo, {"README.md": "# shop\n"})
    git(repo, "add", "-A")
    docs = pre_commit.commit(repo, "Docs")
    assert docs.returncode == 0, docs.stdout + docs.stderr
    assert re.search(r"\(whole tree\)\.+\(no files to check\)Skipped", docs.stdout + docs.stderr)

    namespace_only = NAMESPACE.split("---", maxsplit=1)[0]
    write_files(repo, {"k8s/shop/namespace.yaml": namespace_only})
    git(repo, "add", "-A")
    refused = pre_commit.commit(repo, "Drop the default-deny")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert "[require-default-deny]" in output
    assert 'Deployment "app-1"' in output
    assert git(repo, "log", "--format=%s").splitlines() == ["Docs", "The shop namespace"]


# --- the action's metadata -----------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION_FILE.read_text())
    return loaded


def expressions(value: Any) -> Iterator[str]:
    """Every `${{ }}` expression anywhere in a loaded YAML value."""
    if isinstance(value, str):
        yield from EXPRESSION.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from expressions(item)


def test_the_action_metadata_is_a_well_formed_composite_action() -> None:
    """What GitHub requires of a composite action's metadata: a name, a description, inputs
    with descriptions, outputs with a value, `runs.using: composite`, and a `shell` on every
    `run` step; each `uses` is pinned to a major version."""
    meta = action()
    assert isinstance(meta["name"], str)
    assert meta["name"]
    assert isinstance(meta["description"], str)
    assert meta["description"]
    assert meta["runs"]["using"] == "composite"
    for name, spec in meta["inputs"].items():
        assert name == name.lower(), "GitHub recommends lowercase input ids"
        assert spec["description"], name
        assert isinstance(spec.get("default", ""), str), f"{name}: inputs are strings"
    for name, spec in meta["outputs"].items():
        assert spec["description"], name
        assert EXPRESSION.fullmatch(spec["value"]), name
    steps = meta["runs"]["steps"]
    for step in steps:
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            assert step["shell"] == "bash", step.get("name")
        else:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]
    ids = [step["id"] for step in steps if "id" in step]
    assert len(ids) == len(set(ids))


def test_the_action_refers_only_to_what_it_declares() -> None:
    """Every `inputs.x` is a declared input, every `steps.id.outputs.x` names an earlier step
    that writes `x` to $GITHUB_OUTPUT, and the scripts hold no expression at all: inputs reach
    them through `env:`, as data, never pasted into shell code."""
    meta = action()
    declared = set(meta["inputs"])
    steps = meta["runs"]["steps"]
    written: dict[str, set[str]] = {}
    for index, step in enumerate(steps):
        assert not EXPRESSION.search(step.get("run", "")), f"an expression in {step['name']}'s run"
        for expr in expressions(step):
            assert re.fullmatch(
                r"inputs\.[\w-]+|github\.action_path|steps\.[\w-]+\.outputs\.[\w-]+", expr
            ), expr
            if expr.startswith("inputs."):
                assert expr.removeprefix("inputs.") in declared, expr
            if expr.startswith("steps."):
                _, step_id, _, name = expr.split(".")
                earlier = {s.get("id") for s in steps[:index]}
                assert step_id in earlier, expr
                assert step_id == "python" or name in written[step_id], expr
        if "run" in step:
            written[step["id"]] = set(
                re.findall(r'echo "([\w-]+)=.*>> "\$GITHUB_OUTPUT"', step["run"])
            )
    for spec in meta["outputs"].values():
        _, step_id, _, name = EXPRESSION.fullmatch(spec["value"])[1].split(".")  # type: ignore[index]
        assert name in written[step_id], spec["value"]
    used = {
        expr.removeprefix("inputs.") for expr in expressions(steps) if expr.startswith("inputs.")
    }
    assert used == declared, "an input nothing reads"


def test_the_action_scripts_parse_as_bash() -> None:
    """`bash -n` accepts every `run` script."""
    for step in action()["runs"]["steps"]:
        if "run" in step:
            done = subprocess.run(
                ["bash", "-n"],
                input=step["run"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert done.returncode == 0, f"{step['name']}: {done.stderr}"


# --- the action, run by a simulation of the runner -----------------------------------------


@dataclass
class StepRun:
    returncode: int
    log: str
    outputs: dict[str, str]


def read_github_output(path: Path) -> dict[str, str]:
    """The file command $GITHUB_OUTPUT: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                value.append(inner)
            outputs[name] = "\n".join(value)
        elif line:
            name, _, text = line.partition("=")
            outputs[name] = text
    return outputs


@dataclass
class SimulatedRunner:
    """What the GitHub Actions runner does with a composite action, done here: the inputs'
    defaults and the caller's `with:`, `${{ }}` replaced in each step's `env` and `with`, each
    `run` written to a file and run as `bash --noprofile --norc -eo pipefail FILE` (the
    runner's command for `shell: bash`) in the workspace with a fresh $GITHUB_OUTPUT, whose
    lines become `steps.<id>.outputs`. `actions/setup-python` is not run: it stands for the
    Python running these tests (3.11+), whatever `python-version` asks for."""

    action_path: Path
    workspace: Path
    temp: Path
    inputs: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def with_inputs(self, workspace: Path, given: dict[str, str]) -> SimulatedRunner:
        """The same runner (the steps run so far kept) for another use of the action."""
        defaults = {name: spec.get("default", "") for name, spec in action()["inputs"].items()}
        unknown = set(given) - set(defaults)
        assert not unknown, f"not inputs of the action: {unknown}"
        return SimulatedRunner(
            self.action_path, workspace, self.temp, defaults | given, dict(self.outputs)
        )

    def evaluate(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            expr = match[1]
            if expr == "github.action_path":
                return str(self.action_path)
            if expr.startswith("inputs."):
                return self.inputs[expr.removeprefix("inputs.")]
            if m := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr):
                return self.outputs.get(m[1], {}).get(m[2], "")
            raise AssertionError(f"the simulation does not know ${{{{ {expr} }}}}")

        return EXPRESSION.sub(value, text)

    def run_step(self, step: dict[str, Any]) -> StepRun:
        if "uses" in step:
            assert step["uses"].startswith("actions/setup-python@"), step["uses"]
            given = {k: self.evaluate(str(v)) for k, v in step["with"].items()}
            assert given["python-version"] == self.inputs["python-version"]
            assert given["update-environment"].lower() == "false", "the job's Python is left alone"
            result = StepRun(
                0, "", {"python-version": given["python-version"], "python-path": sys.executable}
            )
        else:
            script = self.temp / f"{step['id']}.sh"
            script.write_text(step["run"])
            github_output = self.temp / f"{step['id']}.output"
            github_output.write_text("")
            env = clean_environ(
                CI="true",
                GITHUB_ACTIONS="true",
                GITHUB_WORKSPACE=str(self.workspace),
                GITHUB_ACTION_PATH=str(self.action_path),
                GITHUB_OUTPUT=str(github_output),
                RUNNER_TEMP=str(self.temp),
            )
            env |= {name: self.evaluate(str(v)) for name, v in step.get("env", {}).items()}
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=self.workspace,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
            result = StepRun(done.returncode, done.stdout, read_github_output(github_output))
        if "id" in step:
            self.outputs[step["id"]] = result.outputs
        return result

    def run(self, first: int = 0, last: int | None = None) -> StepRun:
        """Run steps first..last (all by default); stop at the first that fails, as the runner
        does. The last step run."""
        result = StepRun(0, "", {})
        for step in action()["runs"]["steps"][first:last]:
            result = self.run_step(step)
            if result.returncode != 0:
                break
        return result

    def action_outputs(self) -> dict[str, str]:
        return {name: self.evaluate(spec["value"]) for name, spec in action()["outputs"].items()}


def step_index(step_id: str) -> int:
    return next(i for i, s in enumerate(action()["runs"]["steps"]) if s.get("id") == step_id)


@pytest.fixture(scope="module")
def installed(
    checkout: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> SimulatedRunner:
    """The action's steps up to and including its install, run once for the module: the
    checkout is pip-installed into a virtual environment in $RUNNER_TEMP."""
    workspace = tmp_path_factory.mktemp("workspace")
    runner = SimulatedRunner(checkout[0], workspace, tmp_path_factory.mktemp("runner-temp"), {})
    runner = runner.with_inputs(workspace, {})
    done = runner.run(last=step_index("install") + 1)
    assert done.returncode == 0, done.log
    assert Path(runner.outputs["install"]["guardrail"]).is_file()
    return runner


def use_action(
    installed: SimulatedRunner, workspace: Path, files: dict[str, str], **given: str
) -> tuple[StepRun, dict[str, str]]:
    """A workflow step `uses: <the action>` with `given`, in a workspace holding `files`: the
    steps after the install (done once by `installed`). The step's result and the action's
    outputs."""
    write_files(workspace, files)
    runner = installed.with_inputs(workspace, given)
    done = runner.run(first=step_index("install") + 1)
    return done, runner.action_outputs()


def sarif_problems(document: dict[str, Any], workspace: Path) -> list[str]:
    """What code scanning reads from a SARIF 2.1.0 file that is missing or wrong here."""
    problems = []
    if document.get("version") != "2.1.0" or "sarif-2.1.0" not in document.get("$schema", ""):
        problems.append("not SARIF 2.1.0")
    [run] = document["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    if run["tool"]["driver"]["name"] != "guardrail" or len(set(rules)) != len(rules):
        problems.append("tool.driver: name or rules")
    for result in run["results"]:
        where = json.dumps(result)[:200]
        if result["ruleId"] not in rules or rules[result.get("ruleIndex", 0)] != result["ruleId"]:
            problems.append(f"ruleId/ruleIndex: {where}")
        if (
            result["level"] not in {"error", "warning", "note", "none"}
            or not result["message"]["text"]
        ):
            problems.append(f"level/message: {where}")
        physical = result["locations"][0]["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        if uri.startswith("/") or ".." in uri.split("/") or not (workspace / uri).is_file():
            problems.append(f"uri {uri!r} is not a file of the workspace")
        if not (
            isinstance(physical["region"]["startLine"], int)
            and physical["region"]["startLine"] >= 1
        ):
            problems.append(f"startLine: {where}")
    return problems


FINE = {"k8s/shop/namespace.yaml": NAMESPACE, "k8s/shop/web.yaml": WEB}
VIOLATING = FINE | {"k8s/shop/web-without-role.yaml": WEB_WITHOUT_ROLE}


@pytest.mark.slow
def test_the_action_writes_sarif_and_fails_on_a_violation(
    installed: SimulatedRunner, tmp_path: Path
) -> None:
    """With its defaults the action judges the workspace, writes guardrail.sarif there with
    the finding at its file and line, sets the outputs, prints the finding in the log, and
    fails the step (exit code 1)."""
    done, outputs = use_action(installed, tmp_path, VIOLATING)
    assert done.returncode == 1, done.log
    assert outputs == {"report": "guardrail.sarif", "exit-code": "1"}
    sarif = json.loads((tmp_path / "guardrail.sarif").read_text())
    assert sarif_problems(sarif, tmp_path) == []
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "require-role-labels"
    location = result["locations"][0]["physicalLocation"]
    assert Path(location["artifactLocation"]["uri"]) == Path("k8s/shop/web-without-role.yaml")
    assert location["region"]["startLine"] == 2
    assert "[require-role-labels]" in done.log
    assert "guardrail check exited 1; sarif report: guardrail.sarif" in done.log


@pytest.mark.slow
def test_the_action_only_reports_when_told_not_to_fail(
    installed: SimulatedRunner, tmp_path: Path
) -> None:
    """`fail: false`: the same violation leaves the step green, the exit code in the output."""
    done, outputs = use_action(installed, tmp_path, VIOLATING, fail="false", paths="k8s")
    assert done.returncode == 0, done.log
    assert outputs["exit-code"] == "1"
    sarif = json.loads((tmp_path / "guardrail.sarif").read_text())
    assert sarif_problems(sarif, tmp_path) == []
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["require-role-labels"]


@pytest.mark.slow
def test_the_action_passes_fine_manifests(installed: SimulatedRunner, tmp_path: Path) -> None:
    """Fine manifests: exit code 0, a SARIF file with no results."""
    done, outputs = use_action(
        installed, tmp_path, FINE, paths="k8s/shop/namespace.yaml\nk8s/shop/web.yaml"
    )
    assert done.returncode == 0, done.log
    assert outputs == {"report": "guardrail.sarif", "exit-code": "0"}
    sarif = json.loads((tmp_path / "guardrail.sarif").read_text())
    assert sarif_problems(sarif, tmp_path) == []
    assert sarif["runs"][0]["results"] == []


@pytest.mark.slow
def test_bad_input_fails_the_action_even_when_told_not_to_fail(
    installed: SimulatedRunner, tmp_path: Path
) -> None:
    """A manifest that does not parse is bad input (exit code 2): the step fails whatever
    `fail` says, and the log names the file and line."""
    files = FINE | {"k8s/shop/broken.yaml": "kind: Deployment\nmetadata: [\n"}
    done, outputs = use_action(installed, tmp_path, files, fail="false")
    assert done.returncode == 2, done.log
    assert outputs["exit-code"] == "2"
    assert "k8s/shop/broken.yaml:" in done.log


@pytest.mark.parametrize(
    "given",
    [{"config": "guardrail/config.yaml"}, {"args": "--config guardrail/config.yaml"}],
    ids=["config", "args"],
)
@pytest.mark.slow
def test_the_action_passes_config_args_format_and_output(
    installed: SimulatedRunner, tmp_path: Path, given: dict[str, str]
) -> None:
    """`config` (or the same flag in `args`), `format` and `output` reach `guardrail check`: a
    config turning the role-label policy to warn makes the violation a warning (exit code 0),
    and the JUnit report lands in a directory the action creates."""
    config = "policies:\n  require-role-labels:\n    mode: warn\n"
    files = VIOLATING | {"guardrail/config.yaml": config}
    done, outputs = use_action(
        installed,
        tmp_path,
        files,
        paths="k8s",
        format="junit",
        output="reports/guardrail.xml",
        **given,
    )
    assert done.returncode == 0, done.log
    assert outputs == {"report": "reports/guardrail.xml", "exit-code": "0"}
    text = (tmp_path / "reports" / "guardrail.xml").read_text()
    report = ET.fromstring(text)  # noqa: S314 - not untrusted input: guardrail's own report
    assert report.tag in {"testsuites", "testsuite"}
    assert "require-role-labels" in text
    assert "guardrail check exited 0; junit report: reports/guardrail.xml" in done.log


@pytest.mark.slow
def test_the_action_refuses_a_fail_input_that_is_not_a_boolean(
    installed: SimulatedRunner, tmp_path: Path
) -> None:
    """`fail: yes` is neither true nor false: an error, not a guess."""
    done, _ = use_action(installed, tmp_path, FINE, fail="yes")
    assert done.returncode == 2
    assert "::error::input 'fail' must be true or false, not 'yes'" in done.log


# --- the README's snippets -----------------------------------------------------------------


def readme_section() -> str:
    """The README's "CI integrations" section."""
    text = (REPO / "README.md").read_text()
    return text.split("\n## CI integrations\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_uses_the_hooks_and_the_action_as_declared() -> None:
    """The README's pre-commit configurations name hooks that exist; its workflow passes only
    inputs the action has, uploads the report the action writes even when the check failed
    (`if: always()`) and grants `security-events: write`; its GitLab job keeps the JUnit
    report it writes."""
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme_section(), re.S)]
    configs = [b for b in blocks if "repos" in b]
    [workflow] = [b for b in blocks if "jobs" in b]
    [gitlab] = [b["guardrail"] for b in blocks if "guardrail" in b]
    assert len(configs) == 2
    for config in configs:
        [repo] = config["repos"]
        assert {hook["id"] for hook in repo["hooks"]} <= set(hooks())
    meta = action()
    [job] = workflow["jobs"].values()
    assert job["permissions"]["security-events"] == "write"
    [guardrail] = [s for s in job["steps"] if "guardrail" in s.get("uses", "")]
    assert set(guardrail.get("with", {})) <= set(meta["inputs"])
    [upload] = [s for s in job["steps"] if "upload-sarif" in s.get("uses", "")]
    assert re.fullmatch(r"github/codeql-action/upload-sarif@v\d+", upload["uses"])
    assert upload["if"] == "always()"
    written = guardrail.get("with", {}).get("output", meta["inputs"]["output"]["default"])
    assert upload["with"]["sarif_file"] == written
    assert guardrail.get("with", {}).get("format", meta["inputs"]["format"]["default"]) == "sarif"
    assert gitlab["artifacts"]["when"] == "always"
    report = gitlab["artifacts"]["reports"]["junit"]
    assert any(
        "--format junit" in line and line.endswith(f"> {report}") for line in gitlab["script"]
    )


def test_the_readme_lists_the_action_inputs_and_outputs() -> None:
    """The README's table of inputs is the action's, defaults included, and it names each
    output."""
    section = readme_section()
    table = section.split("| input | default |", 1)[1].split("\n\n", 1)[0]
    rows = [[cell.strip() for cell in row.split("|")[1:3]] for row in table.splitlines()[2:]]
    inputs = {name.strip("`"): default.strip("`") for name, default in rows}
    meta = action()
    assert inputs == {name: spec.get("default", "") for name, spec in meta["inputs"].items()}
    for name in meta["outputs"]:
        assert f"`{name}`" in section.split("Outputs:", 1)[1].split("\n\n", 1)[0]
