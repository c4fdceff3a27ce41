"""The Dockerfile's contract, checked without a container engine (none on the development
machines): what the image runs, as whom, from which files, and that it agrees with deploy/.

`problems()` reads a Dockerfile the way `docker build` does (continuations, comments, stages)
and lists every broken promise; the real Dockerfile has none, and each broken variant below is
caught, so the check is known to look at what it claims to.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.cli import serve

REPO = Path(__file__).resolve().parents[2]
SHELLS = {"sh", "bash", "ash", "dash", "zsh", "/bin/sh", "/bin/bash", "/bin/ash", "/usr/bin/sh"}


@dataclass(frozen=True)
class Instruction:
    verb: str
    args: str


def parse(text: str) -> list[list[Instruction]]:
    """The instructions of each stage (each starts with FROM), continuations joined."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and logical):
            continue  # comments (and blank lines) may sit inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        if logical.strip():
            verb, _, args = logical.strip().partition(" ")
            instruction = Instruction(verb.upper(), args.strip())
            if instruction.verb == "FROM":
                stages.append([])
            if stages:
                stages[-1].append(instruction)
        logical = ""
    return stages


def _exec_form(instruction: Instruction | None) -> list[str] | None:
    if instruction is None:
        return []
    try:
        value = json.loads(instruction.args)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _last(stage: list[Instruction], verb: str) -> Instruction | None:
    found = [i for i in stage if i.verb == verb]
    return found[-1] if found else None


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` (or a directory above it) out of the build context."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            ignored = not negated
    return ignored


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def problems(text: str, deployment: dict[str, Any], repo: Path = REPO) -> list[str]:  # noqa: PLR0912 - one check per promise, each with its message
    """Every way the Dockerfile `text` breaks its contract with deploy/'s `deployment`."""
    found: list[str] = []
    stages = parse(text)
    if len(stages) < 2:
        found.append("not multi-stage: the runtime stage must not hold the build tools")
        return found
    build, runtime = stages[0], stages[-1]
    pod = _pod(deployment)
    container = pod["containers"][0]

    # As whom: a numeric, non-root UID:GID (runAsNonRoot checks it without resolving names),
    # the same one deploy/ runs as.
    user = _last(runtime, "USER")
    match = re.fullmatch(r"(\d+):(\d+)", user.args) if user else None
    if match is None:
        found.append(f"USER must be a numeric UID:GID, not {user.args if user else 'unset'}")
    else:
        uid, gid = int(match.group(1)), int(match.group(2))
        if uid == 0 or gid == 0:
            found.append(f"USER {uid}:{gid} is root")
        security = pod["securityContext"]
        if (uid, gid) != (security.get("runAsUser"), security.get("runAsGroup")):
            found.append(
                f"USER {uid}:{gid} differs from the Deployment's runAsUser/runAsGroup "
                f"{security.get('runAsUser')}:{security.get('runAsGroup')}"
            )

    # What it runs: `guardrail serve`, exec form, no shell in between (gunicorn is PID 1 and
    # gets SIGTERM itself), with flags `guardrail serve` accepts.
    entrypoint, cmd = _exec_form(_last(runtime, "ENTRYPOINT")), _exec_form(_last(runtime, "CMD"))
    if entrypoint is None or cmd is None:
        found.append("ENTRYPOINT and CMD must be exec form (JSON arrays): no shell at runtime")
    else:
        argv = entrypoint + cmd
        if argv[:2] != ["guardrail", "serve"]:
            found.append(f"the image runs {argv[:2]}, not guardrail serve")
        if SHELLS & set(argv) or "-c" in argv:
            found.append(f"the image starts a shell: {argv}")
        try:
            serve.make_context("serve", argv[2:])
        except Exception as exc:  # noqa: BLE001 - click's usage errors, whatever their type
            found.append(f"guardrail serve rejects the image's arguments {argv[2:]}: {exc}")
        env = " ".join(i.args for i in runtime if i.verb == "ENV")
        if "/opt/guardrail/bin" not in env or "python -m venv /opt/guardrail" not in " ".join(
            i.args for i in build
        ):
            found.append("`guardrail` is not on PATH from the virtualenv the build stage made")
    # deploy/ relies on the entrypoint: it passes args only, and never needs a shell.
    if "command" in container:
        found.append("the Deployment replaces the image's entrypoint (command:)")
    if container.get("args", ["serve"])[0] != "serve":
        found.append(f"the Deployment's args do not start with serve: {container.get('args')}")
    hooks = [container.get("lifecycle", {}).get(h, {}) for h in ("preStop", "postStart")]
    probes = [container.get(p, {}) for p in ("readinessProbe", "livenessProbe", "startupProbe")]
    for action in hooks + probes:
        command = action.get("exec", {}).get("command")
        if command and command[0] in SHELLS:
            found.append(f"the Deployment runs a shell in the container: {command}")

    # From which files: every COPY source is in the checkout and in the build context.
    ignore = [
        line.strip()
        for line in (repo / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for instruction in [i for stage in stages for i in stage if i.verb in ("COPY", "ADD")]:
        words = [w for w in instruction.args.split() if not w.startswith("--")]
        if instruction.verb == "ADD":
            found.append(f"ADD {instruction.args}: use COPY (ADD fetches URLs and unpacks)")
        if "--from=" in instruction.args:
            continue
        for source in words[:-1]:
            if not (repo / source).exists():
                found.append(f"COPY {source}: no such file in the checkout")
            elif _ignored(source, ignore):
                found.append(f"COPY {source}: excluded from the build context by .dockerignore")

    # It agrees with deploy/ and the project: port, version, Python.
    exposed = {int(p.split("/")[0]) for i in runtime if i.verb == "EXPOSE" for p in i.args.split()}
    ports = {p["containerPort"] for p in container.get("ports", [])}
    if exposed != ports:
        found.append(
            f"EXPOSE {sorted(exposed)} differs from the Deployment's ports {sorted(ports)}"
        )
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    version = re.search(r"^ARG VERSION=(\S+)$", text, re.MULTILINE)
    if version is None or version.group(1) != project["version"]:
        found.append(f"ARG VERSION is not the project's version {project['version']}")
    if not container["image"].endswith(f":{project['version']}"):
        found.append(
            f"the Deployment's image {container['image']} is not tagged {project['version']}"
        )
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\d+)\.(\d+)", text, re.MULTILINE)
    least = re.fullmatch(r">=(\d+)\.(\d+)", project["requires-python"])
    if (
        base is None
        or least is None
        or (int(base[1]), int(base[2])) < (int(least[1]), int(least[2]))
    ):
        found.append(
            f"the base image's Python does not meet requires-python {project['requires-python']}"
        )
    return found


def _deployment() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "deploy/base/deployment.yaml").read_text())
    return doc


DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_the_dockerfile_keeps_its_contract() -> None:
    """Non-root numeric user (deploy/'s), exec-form `guardrail serve` with valid flags, no
    shell at runtime, every copied file present and in the build context, and the port,
    version and Python that deploy/ and pyproject.toml expect."""
    assert problems(DOCKERFILE, _deployment()) == []


def _replace(old: str, new: str) -> str:
    assert old in DOCKERFILE, old
    return DOCKERFILE.replace(old, new)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (_replace("USER 10001:10001", "USER guardrail"), "USER must be a numeric UID:GID"),
        (_replace("USER 10001:10001", "USER 0:0"), "is root"),
        (_replace("USER 10001:10001", "USER 10002:10002"), "differs from the Deployment's"),
        (_replace('ENTRYPOINT ["guardrail"]', "ENTRYPOINT guardrail"), "must be exec form"),
        (
            _replace('ENTRYPOINT ["guardrail"]', 'ENTRYPOINT ["/bin/sh", "-c", "guardrail"]'),
            "not guardrail serve",
        ),
        (_replace('CMD ["serve", ', 'CMD ["serve", "--no-such-flag", '), "rejects the image's"),
        (_replace("COPY webhook ./webhook", "COPY webhook src ./"), "COPY src: no such file"),
        (_replace("COPY webhook ./webhook", "COPY webhook tests ./"), "excluded from the build"),
        (_replace("EXPOSE 8443", "EXPOSE 8080"), "differs from the Deployment's ports"),
        (_replace("ARG VERSION=0.1.0", "ARG VERSION=0.0.9"), "not the project's version"),
        (_replace("python:3.11-slim", "python:3.10-slim"), "does not meet requires-python"),
    ],
    ids=[
        "user-name",
        "root",
        "other-uid",
        "shell-form",
        "shell-entrypoint",
        "bad-flag",
        "missing-file",
        "ignored-file",
        "port",
        "version",
        "python",
    ],
)
def test_each_broken_promise_is_caught(text: str, problem: str) -> None:
    assert any(problem in found for found in problems(text, _deployment())), problems(
        text, _deployment()
    )


def test_a_deployment_that_needs_a_shell_is_caught() -> None:
    deployment = _deployment()
    container = _pod(deployment)["containers"][0]
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 5"]}}}
    container["command"] = ["/bin/sh"]
    found = problems(DOCKERFILE, deployment)
    assert any("runs a shell in the container" in f for f in found), found
    assert any("replaces the image's entrypoint" in f for f in found), found


def test_an_overlay_points_deploy_at_the_image_it_built(tmp_path: Path) -> None:
    """The README's step after `docker push`: an `images:` entry in the admin's own overlay
    replaces the image (and a digest pins it) without editing deploy/."""
    shutil.copytree(REPO / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("tls"))
    overlay = tmp_path / "my-guardrail"
    overlay.mkdir()
    digest = "sha256:" + "ab" * 32
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources: [../deploy]\n"
        "images:\n"
        "  - name: ghcr.io/guardrail-dev/guardrail\n"
        "    newName: registry.example.com/guardrail\n"
        f"    digest: {digest}\n",
        encoding="utf-8",
    )
    kubectl = shutil.which("kubectl") or "/usr/bin/kubectl"
    done = subprocess.run(
        [kubectl, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [deployment] = [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "Deployment"]
    images = [c["image"] for c in _pod(deployment)["containers"]]
    assert images == [f"registry.example.com/guardrail@{digest}"]
