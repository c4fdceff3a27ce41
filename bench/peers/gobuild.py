"""Peers built from their Go modules with the Go toolchain, cached outside the repository.

Each binary lands in ``~/.cache/guardrail-bench/<name>-<version>/`` (``GUARDRAIL_BENCH_CACHE``
moves the root), beside a ``build.json`` saying how it was built and how long it took, and is
reused by every later run. A module is fetched through the Go module proxy (``go mod
download``): its source is also where the peer's CRDs are read from.

``go install MODULE/PKG@VERSION`` builds a module as a dependency, which Go refuses when the
module's own go.mod has ``replace`` directives (Kyverno's replaces
k8s.io/pod-security-admission); such a module is built with ``go build`` inside its downloaded,
checksum-verified source instead, so that its go.mod applies as the upstream Makefile's does.
`bench/apiserver.py --build-only` builds every peer ahead of a run.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Log = Callable[[str], None]

CACHE = Path(
    os.environ.get("GUARDRAIL_BENCH_CACHE", Path.home() / ".cache" / "guardrail-bench")
).expanduser()


def go() -> str:
    found = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(found, os.X_OK):
        raise SystemExit("bench: the Go toolchain (go) is not on PATH nor in /usr/local/go/bin")
    return found


def go_env() -> dict[str, str]:
    # Static binaries, as the upstream images are built (CGO_ENABLED=0 in both Makefiles).
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}


def module_dir(module: str, version: str) -> Path:
    """The module's source, from the module proxy, checked against sum.golang.org."""
    with tempfile.TemporaryDirectory() as scratch:
        # Outside any module, so the current directory's go.mod (if any) plays no part.
        out = subprocess.run(
            [go(), "mod", "download", "-json", f"{module}@{version}"],
            cwd=scratch,
            env=go_env(),
            check=True,
            capture_output=True,
            text=True,
        )
    return Path(json.loads(out.stdout)["Dir"])


def has_replace_directives(go_mod: Path) -> bool:
    return re.search(r"^\s*replace\b", go_mod.read_text(encoding="utf-8"), re.MULTILINE) is not None


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


@dataclass(frozen=True)
class GoBinary:
    """A command of a Go module at a pinned version."""

    name: str  # the cache directory's prefix: <name>-<version>
    module: str  # e.g. github.com/open-policy-agent/gatekeeper/v3
    version: str  # a release tag
    package: str  # the main package, relative to the module ("" for its root)
    binary: str  # the file name in the cache
    ldflags: str = ""

    @property
    def directory(self) -> Path:
        return CACHE / f"{self.name}-{self.version}"

    @property
    def path(self) -> Path:
        return self.directory / self.binary

    def build_info(self) -> dict[str, object]:
        info = self.directory / "build.json"
        return json.loads(info.read_text(encoding="utf-8")) if info.exists() else {}

    def ensure(self, log: Log) -> Path:
        """The binary, built first if it is not cached."""
        if self.path.exists():
            return self.path
        source = module_dir(self.module, self.version)
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f".{self.binary}.partial"
        package = f"{self.module}/{self.package}".rstrip("/")
        flags = ["-trimpath", *([f"-ldflags={self.ldflags}"] if self.ldflags else [])]
        started, load_before = time.monotonic(), load_average()
        if has_replace_directives(source / "go.mod"):
            command = [go(), "build", "-mod=readonly", *flags, "-o", str(partial)]
            command.append(f"./{self.package}" if self.package else ".")
            cwd = source
        else:
            bindir = Path(tempfile.mkdtemp(prefix="gobin-", dir=self.directory))
            command = [go(), "install", *flags, f"{package}@{self.version}"]
            cwd = bindir
        log(f"building {package}@{self.version} (go {command[1]}); load average {load_before}")
        env = go_env()
        if command[1] == "install":
            env["GOBIN"] = str(bindir)
        subprocess.run(command, cwd=cwd, env=env, check=True)
        if command[1] == "install":
            built = bindir / Path(package).name
            if Path(package).name.startswith("v") and Path(package).name[1:].isdigit():
                built = bindir / Path(package).parent.name  # a /vN major-version suffix
            built.replace(partial)
            shutil.rmtree(bindir, ignore_errors=True)
        seconds = time.monotonic() - started
        partial.replace(self.path)
        version = subprocess.run(
            [go(), "version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        info = {
            "module": self.module,
            "version": self.version,
            "package": package,
            "command": [Path(command[0]).name, *command[1:]],
            "cgo": "CGO_ENABLED=0",
            "go": version,
            "seconds": round(seconds, 1),
            "built": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "load_average": f"{load_before} -> {load_average()}",
            "nproc": os.cpu_count(),
        }
        (self.directory / "build.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        log(f"built {self.path} in {seconds:.0f} s")
        return self.path


def build_local(name: str, source: Path, log: Log) -> tuple[Path, dict[str, object]]:
    """A module of this repository (bench/floor), cached by the hash of its sources."""
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    directory = CACHE / f"{name}-{digest.hexdigest()[:12]}"
    binary = directory / name
    info_path = directory / "build.json"
    if binary.exists() and info_path.exists():
        return binary, json.loads(info_path.read_text(encoding="utf-8"))
    directory.mkdir(parents=True, exist_ok=True)
    log(f"building {source.name} with the Go toolchain")
    started = time.monotonic()
    partial = directory / f".{name}.partial"
    command = [go(), "build", "-trimpath", "-o", str(partial), "."]
    subprocess.run(command, cwd=source, env=go_env(), check=True)
    partial.replace(binary)
    info: dict[str, object] = {
        "source": str(source.name),
        "command": ["go", *command[1:]],
        "seconds": round(time.monotonic() - started, 1),
        "load_average": load_average(),
    }
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return binary, info
