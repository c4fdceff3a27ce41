"""`make run` (scripts/run-demo) on a terminal: the two verdicts as kubectl would print them,
then the server's log in readable lines, and never a JSON line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.http.support import free_port
from tests.http.terminal import Terminal, json_objects

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "run-demo"
VENV = Path(sys.executable).parent.parent
DENIED = (
    'Error from server (Forbidden): error when creating "examples/manifests/web-without-role.yaml": '
    'admission webhook "workloads.guardrail.dev" denied the request: [require-role-labels] '
    'Deployment "web" in namespace "shop" is missing required labels in its pod template: role. '
    "Add them under spec.template.metadata.labels."
)
ALLOWED = "deployment.apps/web created (guardrail review: allowed)"
# `12:00:01 WARN  admission  denied Pod legacy/legacy-worker  [require-default-deny] ...`
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO |WARN |ERROR|DEBUG|CRIT ) \S+  \S")

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="run-demo polls with curl")


def test_make_run_shows_both_verdicts_and_no_json(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    bind = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "VENV": str(VENV),
        "GUARDRAIL_BIND": bind,
        "GUARDRAIL_CERT_DIR": str(tmp_path / "certs"),
        "TMPDIR": str(tmpdir),
        # This checkout's code, whichever virtualenv runs it.
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("GUARDRAIL_LOG_FORMAT", None)
    terminal = Terminal([str(DEMO)], env=env, cwd=REPO)
    try:
        terminal.wait_for("its log follows (Ctrl-C stops it).")
        # Once the demo is done, a review from another terminal shows in the followed log.
        review = subprocess.run(
            [
                str(VENV / "bin" / "guardrail"),
                "review",
                "--url",
                f"https://{bind}/validate",
                "--ca",
                str(tmp_path / "certs" / "ca.crt"),
                "examples/manifests/legacy-pod.yaml",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
            check=False,
        )
        assert review.returncode == 1, review.stderr
        terminal.wait_for("denied Pod legacy/")
        code = terminal.stop()
    finally:
        terminal.close()
    lines = terminal.lines()
    assert json_objects(lines) == []
    assert DENIED in lines
    assert ALLOWED in lines
    assert lines.index(DENIED) < lines.index(ALLOWED)
    # The server's start-up lines never reach the terminal; the followed log is readable.
    assert not [line for line in lines if "Booting worker" in line or "Listening at" in line]
    logged = [line for line in lines if "denied Pod legacy/" in line]
    assert len(logged) == 1
    assert TEXT_LINE.match(logged[0]), logged[0]
    assert code == 143
    assert list(tmpdir.iterdir()) == []  # the log file went with the server
