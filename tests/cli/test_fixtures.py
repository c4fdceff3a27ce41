"""`guardrail test DIR`: fixture tests of a configuration, through the real command.

Most tests run in-process through click's CliRunner; the example suite and one hostile file
also run as a real `guardrail` process, so the console script and exit codes are what CI sees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from webhook.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))

STATE = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
"""
RESOURCES = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web, role: frontend}}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: unlabelled, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: worker, namespace: legacy, labels: {app: worker, role: batch}}
spec: {containers: [{name: worker, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: kube-system}
spec: {containers: [{name: debug, image: busybox}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: shop}
spec:
  podSelector: {matchLabels: {app: old}}
  policyTypes: [Ingress]
  ingress: [{}]
"""
UNLABELLED_MESSAGE = (
    '[require-role-labels] Pod "unlabelled" in namespace "shop" is missing required labels: role.'
)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def guardrail_test(*args: str) -> Run:
    result = CliRunner().invoke(main, ["test", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


def write_test(
    directory: Path, body: str, *, name: str = "guardrail-test.yaml", config: str | None = None
) -> Path:
    """A test directory: state.yaml, resources.yaml, an optional config.yaml and the test."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.yaml").write_text(STATE)
    (directory / "resources.yaml").write_text(RESOURCES)
    if config is not None:
        (directory / "config.yaml").write_text(config)
    test = directory / name
    test.write_text(body)
    return test


def header(*extra: str) -> str:
    lines = [
        "apiVersion: guardrail.dev/v1alpha1",
        "kind: Test",
        "metadata: {name: t}",
        "state: [state.yaml]",
        "resources: [resources.yaml]",
        *extra,
        "results:",
    ]
    return "\n".join(lines) + "\n"


def expect(policy: str, resource: str, result: str, message: str | None = None) -> str:
    text = f"  - policy: {policy}\n    resource: {resource}\n    result: {result}\n"
    if message is not None:
        text += f"    message: '{message}'\n"
    return text


def line_of(file: Path, text: str, after: str = "") -> int:
    """The 1-based line of the first line containing `text` (after the one containing `after`)."""
    lines = file.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and text in line) + 1


# -- the example suite -----------------------------------------------------------------------
def test_the_example_suite_passes_as_a_real_process() -> None:
    """`guardrail test examples/tests/` (the README's suite) holds: exit 0 and the counts."""
    run = subprocess.run(
        [GUARDRAIL, "test", "examples/tests/"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "16 expectations in 4 tests: 16 passed, 0 failed\n"
    assert run.stderr == ""


def test_a_wrong_expectation_in_a_copy_of_the_examples_fails_with_a_readable_diff(
    tmp_path: Path,
) -> None:
    """One expectation turned wrong: exit 1, its file:line, expected vs got, and the message
    Guardrail produced, while every other expectation still holds."""
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy)
    test = copy / "tests" / "shop" / "guardrail-test.yaml"
    text = test.read_text()
    wrong = text.replace(
        "resource: Deployment/shop/web-unlabelled\n    result: warn",
        "resource: Deployment/shop/web-unlabelled\n    result: pass",
    )
    assert wrong != text
    test.write_text(
        wrong.replace('    message: "missing required labels in its pod template: role"\n', "")
    )
    line = line_of(test, "resource: Deployment/shop/web-unlabelled")

    run = guardrail_test(str(copy / "tests"))

    assert run.code == 1, run.stdout + run.stderr
    assert run.stdout.splitlines() == [
        f"{test}:{line}: FAIL require-role-labels Deployment/shop/web-unlabelled: "
        "expected pass, got warn",
        '    [require-role-labels] Deployment "web-unlabelled" in namespace "shop" is missing '
        "required labels in its pod template: role. Add them under spec.template.metadata.labels.",
        "",
        "16 expectations in 4 tests: 15 passed, 1 failed",
    ]


# -- what pass, fail, warn, audit and skip mean ------------------------------------------------
@pytest.mark.parametrize(
    ("config", "result", "other"),
    [
        (None, "fail", "warn"),
        ("policies: {require-role-labels: {mode: warn}}\n", "warn", "fail"),
        ("policies: {require-role-labels: {mode: audit}}\n", "audit", "warn"),
    ],
    ids=["enforce-is-fail", "warn-mode-is-warn", "audit-mode-is-audit"],
)
def test_a_finding_is_fail_warn_or_audit_by_its_mode_and_the_other_levels_do_not_match(
    tmp_path: Path, config: str | None, result: str, other: str
) -> None:
    """The same finding is `fail` in enforce mode, `warn` in warn mode, `audit` in audit mode;
    an expectation of another level fails, showing both levels and Guardrail's message."""
    extra = ("config: config.yaml",) if config is not None else ()
    body = header(*extra) + expect("require-role-labels", "Pod/shop/unlabelled", result)
    test = write_test(tmp_path / "right", body, config=config)
    assert guardrail_test(str(test)).code == 0

    body = header(*extra) + expect("require-role-labels", "Pod/shop/unlabelled", other)
    test = write_test(tmp_path / "wrong", body, config=config)
    run = guardrail_test(str(test))
    assert run.code == 1, run.stdout + run.stderr
    line = line_of(test, "resource: Pod/shop/unlabelled")
    assert (
        f"{test}:{line}: FAIL require-role-labels Pod/shop/unlabelled: expected {other}, got {result}\n"
        f"    {UNLABELLED_MESSAGE}"
    ) in run.stdout


def test_an_advisory_finding_in_enforce_mode_is_a_warning(tmp_path: Path) -> None:
    """restrict-allow-all's default mode and require-default-deny's advisory on a new Namespace
    are both `warn`: allowed, with a warning kubectl prints."""
    (tmp_path / "namespace.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: new}\n"
    )
    body = (
        header().replace(
            "resources: [resources.yaml]", "resources: [resources.yaml, namespace.yaml]"
        )
        + expect("restrict-allow-all", "NetworkPolicy/shop/open", "warn", "admits all traffic")
        + expect("require-default-deny", "Namespace/new", "warn", "has no default-deny")
    )
    test = write_test(tmp_path, body)
    run = guardrail_test(str(test))
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout == "2 expectations in 1 test: 2 passed, 0 failed\n"


@pytest.mark.parametrize(
    ("extra", "config", "policy", "resource", "reason"),
    [
        (
            (),
            None,
            "require-role-labels",
            "NetworkPolicy/shop/open",
            "require-role-labels does not judge CREATE of NetworkPolicy.networking.k8s.io",
        ),
        (
            (),
            None,
            "require-role-labels",
            "Pod/kube-system/debug",
            'namespace "kube-system" is exempt',
        ),
        (
            ("config: config.yaml",),
            "policies: {require-role-labels: {mode: 'off'}}\n",
            "require-role-labels",
            "Pod/shop/unlabelled",
            "require-role-labels is off in the config",
        ),
        (
            ("config: config.yaml", "username: ci-bot"),
            "exemptions: {usernames: [ci-bot]}\n",
            "require-default-deny",
            "Pod/legacy/worker",
            'the requester "ci-bot" (or a group of it) is exempt',
        ),
        (
            ("config: config.yaml", "groups: [platform]"),
            "exemptions: {groups: [platform]}\n",
            "require-default-deny",
            "Pod/legacy/worker",
            'the requester "guardrail-test" (or a group of it) is exempt',
        ),
    ],
    ids=["kind-not-judged", "exempt-namespace", "policy-off", "exempt-user", "exempt-group"],
)
def test_skip_is_a_policy_that_does_not_judge_the_resource(
    tmp_path: Path,
    extra: tuple[str, ...],
    config: str | None,
    policy: str,
    resource: str,
    reason: str,
) -> None:
    """`skip`: the policy ignores the kind, is off, or the namespace or requester is exempt.
    Expecting `skip` holds; expecting `pass` instead fails and says why it was skipped."""
    test = write_test(
        tmp_path / "skip", header(*extra) + expect(policy, resource, "skip"), config=config
    )
    run = guardrail_test(str(test))
    assert run.code == 0, run.stdout + run.stderr

    test = write_test(
        tmp_path / "pass", header(*extra) + expect(policy, resource, "pass"), config=config
    )
    run = guardrail_test(str(test))
    assert run.code == 1, run.stdout + run.stderr
    assert f"{policy} {resource}: expected pass, got skip\n    (skipped: {reason})\n" in run.stdout


def test_pass_is_a_judged_resource_with_nothing_to_say_and_not_a_skip(tmp_path: Path) -> None:
    """A labelled pod passes require-role-labels; expecting `skip` for it fails."""
    body = header() + expect("require-role-labels", "Pod/shop/web", "pass")
    assert guardrail_test(str(write_test(tmp_path / "a", body))).code == 0
    body = header() + expect("require-role-labels", "Pod/shop/web", "skip")
    run = guardrail_test(str(write_test(tmp_path / "b", body)))
    assert run.code == 1
    assert (
        "require-role-labels Pod/shop/web: expected skip, got pass\n"
        "    (no finding: require-role-labels has nothing to say about it)\n"
    ) in run.stdout


def test_an_expected_message_must_be_part_of_guardrails_message(tmp_path: Path) -> None:
    """`message:` is a substring of the policy's message: it holds when it is one, and fails
    (same result, another message) when it is not."""
    body = header() + expect("require-role-labels", "Pod/shop/unlabelled", "fail", "labels: role")
    assert guardrail_test(str(write_test(tmp_path / "a", body))).code == 0
    body = header() + expect("require-role-labels", "Pod/shop/unlabelled", "fail", "labels: app")
    run = guardrail_test(str(write_test(tmp_path / "b", body)))
    assert run.code == 1
    assert (
        "require-role-labels Pod/shop/unlabelled: expected fail with a message containing "
        f'"labels: app", got fail with another message\n    {UNLABELLED_MESSAGE}'
    ) in run.stdout


def test_each_resource_is_judged_against_the_state_alone(tmp_path: Path) -> None:
    """A default-deny among the resources does not isolate a pod beside it: only `state` is the
    cluster, so one expectation never depends on which other resources a test holds."""
    (tmp_path / "legacy.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: default-deny, namespace: legacy}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n"
    )
    body = header().replace(
        "resources: [resources.yaml]", "resources: [legacy.yaml, resources.yaml]"
    ) + expect(
        "require-default-deny",
        "Pod/legacy/worker",
        "fail",
        'namespace "legacy" has no default-deny',
    )
    run = guardrail_test(str(write_test(tmp_path, body)))
    assert run.code == 0, run.stdout + run.stderr


def test_update_judges_the_resource_against_the_states_copy_as_old_object(tmp_path: Path) -> None:
    """operation UPDATE: the state's object of the same name is the oldObject, so weakening
    shop's default-deny to Ingress only is denied, and renaming it away is bad input."""
    (tmp_path / "weaker.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: default-deny, namespace: shop}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress]}\n"
    )
    body = header("operation: UPDATE").replace(
        "resources: [resources.yaml]", "resources: weaker.yaml"
    ) + expect("protect-default-deny", "NetworkPolicy/shop/default-deny", "fail", "Egress")
    run = guardrail_test(str(write_test(tmp_path, body)))
    assert run.code == 0, run.stdout + run.stderr


def test_several_resources_and_documents_count_one_expectation_each_in_json(tmp_path: Path) -> None:
    """`resources: [a, b]` is one expectation per resource, a file may hold several Tests, and
    `--format json` carries every result with its file and line."""
    first = header() + (
        "  - policy: require-default-deny\n"
        "    resources: [Pod/shop/web, Pod/shop/unlabelled]\n"
        "    result: pass\n"
    )
    second = header() + expect("require-default-deny", "Pod/legacy/worker", "pass")
    test = write_test(tmp_path, first + "---\n" + second)
    run = guardrail_test("--format", "json", str(tmp_path))
    assert run.code == 1, run.stdout + run.stderr
    document = json.loads(run.stdout)
    assert document["summary"] == {
        "tests": 2,
        "expectations": 3,
        "passed": 2,
        "failed": 1,
        "errors": 0,
    }
    wrong = [r for r in document["results"] if not r["passed"]]
    assert wrong == [
        {
            "test": "t",
            "file": str(test),
            "line": line_of(test, "resource: Pod/legacy/worker"),
            "policy": "require-default-deny",
            "resource": "Pod/legacy/worker",
            "expected": "pass",
            "expectedMessage": None,
            "got": "fail",
            "passed": False,
            "messages": [wrong[0]["messages"][0]],
            "reason": "",
        }
    ]
    assert wrong[0]["messages"][0].startswith(
        '[require-default-deny] Pod "worker" in namespace "legacy"'
    )


def test_test_files_are_found_recursively_by_name(tmp_path: Path) -> None:
    """`guardrail-test.yaml` and `*.guardrail-test.yaml` anywhere under DIR are tests; other
    YAML files and hidden directories are not."""
    body = header() + expect("require-role-labels", "Pod/shop/web", "pass")
    write_test(tmp_path / "a", body)
    write_test(tmp_path / "b" / "deep", body, name="labels.guardrail-test.yaml")
    write_test(tmp_path / ".hidden", body.replace("result: pass", "result: fail"))
    (tmp_path / "a" / "other-test.yaml").write_text(body.replace("result: pass", "result: fail"))
    run = guardrail_test(str(tmp_path))
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout == "2 expectations in 2 tests: 2 passed, 0 failed\n"


# -- bad input -----------------------------------------------------------------------------
BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}' if prev else 'lol'] * 10)}]\n"
    for prev, name in zip(
        ["", "a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e", "f"], strict=True
    )
)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (header() + "  - policy: [\n", 7, "invalid YAML: "),
        (header().replace("resources: [resources.yaml]\n", ""), 1, "resources: missing"),
        (
            header() + expect("require-role-label", "Pod/shop/web", "pass"),
            7,
            'results[0].policy: unknown policy "require-role-label"; did you mean '
            '"require-role-labels"? (policies: require-role-labels, require-default-deny, '
            "protect-default-deny, restrict-allow-all)",
        ),
        (
            header() + expect("require-role-labels", "Pod/shop/web", "denied"),
            9,
            'results[0].result: unknown result "denied" (expected one of pass, fail, warn, audit, skip)',
        ),
        (
            header() + expect("require-role-labels", "Pod/shop/web", "no"),
            9,
            "results[0].result: must be one of pass, fail, warn, audit, skip, not a boolean",
        ),
        (
            header() + expect("require-role-labels", "Pod/shop/nginx", "pass"),
            8,
            "results[0].resource: Pod/shop/nginx is not among the test's resources (NetworkPolicy/"
            "shop/open, Pod/kube-system/debug, Pod/legacy/worker, Pod/shop/unlabelled, Pod/shop/web)",
        ),
        (
            header() + expect("require-role-labels", "Pod/shop/wbe", "pass"),
            8,
            'results[0].resource: Pod/shop/wbe is not among the test\'s resources; did you mean "Pod/shop/web"?',
        ),
        (
            header() + expect("require-role-labels", "Pod/web", "pass"),
            8,
            'results[0].resource: Pod/web is not among the test\'s resources; did you mean "Pod/shop/web"?',
        ),
        (
            header() + expect("require-role-labels", "web", "pass"),
            8,
            'results[0].resource: "web" is not Kind/namespace/name',
        ),
        (
            header().replace("[resources.yaml]", "[resources.yaml, apps/]")
            + expect("require-role-labels", "Pod/shop/web", "pass"),
            5,
            "resources[1]: apps/: no such file or directory (relative to the test)",
        ),
        (
            header().replace("state: [state.yaml]", "config: missing.yaml")
            + expect("require-role-labels", "Pod/shop/web", "pass"),
            4,
            "config: missing.yaml: no such file or directory (relative to the test)",
        ),
        (
            header().replace(
                "state: [state.yaml]", "config: {policies: {require-role-labels: {mode: loud}}}"
            )
            + expect("require-role-labels", "Pod/shop/web", "pass"),
            4,
            "config: policies.require-role-labels.mode: must be one of enforce, warn, audit, off",
        ),
        (
            header() + "  - policy: require-role-labels\n    result: pass\n",
            7,
            "results[0]: give resource",
        ),
        (header().replace("results:", "resutls:") + "  - x\n", 6, "resutls: unknown field"),
        (
            header() + expect("require-role-labels", "Pod/shop/web", "pass", "labels"),
            10,
            "results[0].message: only a result of fail, warn or audit has a message, not pass",
        ),
        (header() + "  []\n", 6, "results: must be a list of expectations, not an empty list"),
        (
            header("operation: DELETE") + expect("require-role-labels", "Pod/shop/web", "skip"),
            9,
            "results[0].resource: Pod/shop/web: DELETE changes an object the cluster holds, so it "
            "must be in the test's state too",
        ),
        (header("operation: PATCH"), 6, "operation: must be one of CREATE, UPDATE, DELETE"),
        ("", 1, "empty: no Test in it"),
        ("# nothing but a comment\n", 1, "empty: no Test in it"),
        (
            "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\n",
            1,
            "not a Guardrail test: expected apiVersion guardrail.dev/v1alpha1 and kind Test",
        ),
        (
            "apiVersion: guardrail.dev/v1alpha1\nkind: Test\nresults: "
            + "[" * 300
            + "]" * 300
            + "\n",
            3,
            "nested more than 200 levels deep",
        ),
        (
            BILLION_LAUGHS,
            1,
            'YAML aliases expand to more than 10000 nodes (a "billion laughs" document)',
        ),
    ],
    ids=[
        "yaml-error",
        "no-resources",
        "unknown-policy",
        "unknown-result",
        "boolean-result",
        "resource-not-found",
        "resource-misspelt",
        "namespaced-resource-without-namespace",
        "malformed-resource-ref",
        "missing-resource-path",
        "missing-config-file",
        "invalid-inline-config",
        "no-resource-named",
        "unknown-field",
        "message-on-pass",
        "no-expectations",
        "delete-of-an-object-not-in-state",
        "unknown-operation",
        "empty-file",
        "only-a-comment",
        "another-tools-test",
        "deeply-nested",
        "billion-laughs",
    ],
)
def test_a_malformed_test_file_is_bad_input_at_its_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    """Each mistake is exit 2 with `file:line: message` on stderr, and no traceback."""
    test = write_test(tmp_path, body)
    run = guardrail_test(str(tmp_path))
    assert run.code == 2, run.stdout + run.stderr
    assert f"{test}:{line}: {message}" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_hostile_test_file_is_bad_input_in_a_real_process(tmp_path: Path) -> None:
    """A billion-laughs test file, as a real `guardrail test`: exit 2 at once, no traceback."""
    write_test(tmp_path, BILLION_LAUGHS)
    run = subprocess.run(
        [GUARDRAIL, "test", "."],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith(
        "guardrail-test.yaml:1: YAML aliases expand to more than 10000 nodes"
    )
    assert "Traceback" not in run.stderr


def test_problems_in_the_files_a_test_names_are_reported_at_their_own_line(tmp_path: Path) -> None:
    """A resource file that does not parse, and two resources a reference cannot tell apart,
    are bad input where they are."""
    body = header() + expect("require-role-labels", "Pod/shop/web", "pass")
    write_test(tmp_path / "broken", body)
    (tmp_path / "broken" / "resources.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n"
    )
    write_test(tmp_path / "twice", body)
    (tmp_path / "twice" / "again.yaml").write_text(RESOURCES)
    twice = tmp_path / "twice" / "guardrail-test.yaml"
    twice.write_text(body.replace("[resources.yaml]", "[resources.yaml, again.yaml]"))

    run = guardrail_test(str(tmp_path))

    assert run.code == 2, run.stdout + run.stderr
    assert f"{tmp_path / 'broken' / 'resources.yaml'}:3: invalid YAML: " in run.stderr
    assert (
        f"{twice}:8: results[0].resource: Pod/shop/web names 2 resources "
        f"({tmp_path / 'twice' / 'resources.yaml'}:1, {tmp_path / 'twice' / 'again.yaml'}:1)"
    ) in run.stderr


def test_a_bad_test_file_does_not_keep_the_others_from_running(tmp_path: Path) -> None:
    """The good tests run and are counted; the bad file is reported; exit 2."""
    write_test(tmp_path / "good", header() + expect("require-role-labels", "Pod/shop/web", "pass"))
    write_test(tmp_path / "bad", header() + expect("require-role-labels", "Pod/shop/web", "maybe"))
    run = guardrail_test(str(tmp_path))
    assert run.code == 2
    assert run.stdout == (
        "1 expectation in 1 test: 1 passed, 0 failed; 1 test file not run (bad input)\n"
    )
    assert 'results[0].result: unknown result "maybe"' in run.stderr


@pytest.mark.parametrize("layout", ["empty", "other-files"])
def test_no_test_files_is_bad_input(tmp_path: Path, layout: str) -> None:
    """An empty directory, or one with YAML but no test file, must not pass CI green."""
    if layout == "other-files":
        (tmp_path / "kyverno-test.yaml").write_text("apiVersion: cli.kyverno.io/v1alpha1\n")
    run = guardrail_test(str(tmp_path))
    assert run.code == 2
    assert run.stderr == f"no test files found in {tmp_path}\n"


def test_a_path_that_does_not_exist_is_bad_input(tmp_path: Path) -> None:
    run = guardrail_test(str(tmp_path / "nowhere"))
    assert run.code == 2
    assert run.stderr == f"{tmp_path / 'nowhere'}: no such file or directory\n"
