"""The pinned helm that scripts/install-helm builds, and what it renders of the chart.

scripts/install-test-deps (run by `make test`) builds helm once into the e2e cache; the tests
run it for real and fail, never skip, when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "guardrail"
INSTALL_HELM = REPO / "scripts" / "install-helm"
RELEASE = "guardrail"
NAMESPACE = "guardrail-system"

Doc = dict[str, Any]


def helm_version() -> str:
    """The version scripts/install-helm pins, e.g. ``v3.22.0``."""
    match = re.search(r"^HELM_VERSION=(v\S+)$", INSTALL_HELM.read_text(encoding="utf-8"), re.M)
    assert match is not None, f"{INSTALL_HELM}: no HELM_VERSION= line"
    return match.group(1)


def helm_binary() -> Path:
    """Where scripts/install-helm puts the pinned helm; the test fails when it is not there."""
    configured = os.environ.get("GUARDRAIL_E2E_CACHE")
    cache = (
        Path(configured).expanduser().resolve()
        if configured
        else Path.home() / ".cache" / "guardrail-e2e"
    )
    path = cache / f"helm-{helm_version()}" / "helm"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"helm {helm_version()} is not installed at {path}: run scripts/install-test-deps "
            "(or scripts/install-helm alone), as `make test` does",
            pytrace=False,
        )
    return path


def run_helm(
    *args: str, values: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """helm with these arguments; ``values`` reach it as a values file on its standard input."""
    command = [str(helm_binary()), *args]
    if values is not None:
        command += ["--values", "-"]
    return subprocess.run(
        command,
        input=json.dumps(values) if values is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def template(
    *args: str, values: Mapping[str, Any] | None = None, namespace: str = NAMESPACE
) -> list[Doc]:
    """The objects `helm template guardrail deploy/helm/guardrail` renders."""
    done = run_helm("template", RELEASE, str(CHART), "--namespace", namespace, *args, values=values)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
