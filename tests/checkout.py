"""The repository as a fresh clone has it, for tests of what a user gets from `git clone`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_as_cloned(path: str, target: Path) -> Path:
    """Copy `path` (a directory of the repository) under `target` as a fresh clone would have
    it: the files git tracks or would add, read from the working tree, never the ignored ones
    (such as certificates generated into deploy/overlays/self-signed/tls/). Return the copy."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard", "--", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, f"a git checkout is needed: {listed.stderr}"
    names = sorted(set(filter(None, listed.stdout.split("\0"))))
    assert names, f"git lists no file under {path}"
    for name in names:
        if (REPO / name).is_file():  # a tracked file deleted in the working tree is gone
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target / path
