"""Build the real kube-apiserver and kube-controller-manager once per pinned Kubernetes release.

The Go module under ``tests/e2e/cluster/`` pins ``k8s.io/kubernetes`` and its staging modules;
this script builds its two tools into a cache outside the repository::

    ${GUARDRAIL_E2E_CACHE:-$HOME/.cache/guardrail-e2e}/<version>/bin/{kube-apiserver,kube-controller-manager}

with ``GOCACHE`` and ``GOMODCACHE`` under the same cache directory, so a machine pays the cold
build (minutes) once and every later run starts in seconds. It is idempotent, serialises
concurrent builders with a lock file, and safe to interrupt: binaries are built in a temporary
directory next to ``bin/`` and renamed into place only when both are complete.

Standard library only, so pytest's fixture and a shell can both call it::

    python tests/e2e/build_cluster.py            # build if missing, print the bin directory
    python tests/e2e/build_cluster.py --force    # rebuild even if cached
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent / "cluster"
BINARIES = ("kube-apiserver", "kube-controller-manager")
_BUILD_PREFIX = ".build-"
_HEARTBEAT_SECONDS = 20.0

Log = Callable[[str], None]


class BuildError(Exception):
    """The cluster binaries could not be built; the message says why and what to do."""


def _stderr_log(message: str) -> None:
    print(f"[build_cluster] {message}", file=sys.stderr, flush=True)


def pinned_version(go_mod: Path = MODULE_DIR / "go.mod") -> str:
    """Return the k8s.io/kubernetes version the Go module requires, e.g. ``v1.36.3``."""
    text = go_mod.read_text(encoding="utf-8")
    # Matches the require line (single or block form) but not the replace lines, which
    # never name k8s.io/kubernetes itself.
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\d+\.\d+\.\d+\S*)", text, re.M)
    if match is None:
        raise BuildError(f"{go_mod}: no `require k8s.io/kubernetes vX.Y.Z` line found")
    return match.group(1)


def cache_root() -> Path:
    """Return the cache directory shared by every pinned version and the Go caches."""
    configured = os.environ.get("GUARDRAIL_E2E_CACHE")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".cache" / "guardrail-e2e"


def bin_dir(version: str | None = None) -> Path:
    """Return where the binaries of ``version`` (default: the pinned one) live once built."""
    return cache_root() / (version or pinned_version()) / "bin"


def cached_binaries(version: str | None = None) -> dict[str, Path] | None:
    """Return the built binaries by name, or None when any of them is missing."""
    directory = bin_dir(version)
    paths = {name: directory / name for name in BINARIES}
    if all(path.is_file() and os.access(path, os.X_OK) for path in paths.values()):
        return paths
    return None


@contextlib.contextmanager
def _locked(path: Path, log: Log) -> Iterator[None]:
    """Hold an exclusive lock so two test runs never build into the same cache at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another build holds {path}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOCACHE=str(root / "go-build"),
        GOMODCACHE=str(root / "gomod"),
        # -mod=mod: the module copy may be built by a newer Go that wants to add go.sum
        # lines; it must not fail on that, and it never touches the repository's files.
        GOFLAGS="-mod=mod",
        CGO_ENABLED="0",
    )
    return env


def _ldflags(version: str) -> str:
    # Without these the servers report v0.0.0-master, which kubectl prints and skew checks read.
    major, minor = version.lstrip("v").split(".")[:2]
    stamps = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
    }
    parts = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        parts += [f"-X {pkg}.{key}={value}" for key, value in stamps.items()]
    return " ".join(parts)


def _run_go_build(
    name: str, *, version: str, src: Path, out: Path, env: dict[str, str], log: Log
) -> None:
    go = shutil.which("go", path=env.get("PATH")) or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise BuildError("`go` is not on PATH; install Go 1.26+ to build the e2e cluster")
    command = [
        go,
        "build",
        "-v",
        "-trimpath",
        f"-ldflags={_ldflags(version)}",
        "-o",
        str(out / name),
        f"k8s.io/kubernetes/cmd/{name}",
    ]
    started = time.monotonic()
    compiled = 0
    tail: list[str] = []
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(_HEARTBEAT_SECONDS):
            log(f"  {name}: {compiled} packages built, {time.monotonic() - started:.0f}s")

    log(f"building {name} (k8s.io/kubernetes {version}) ...")
    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    # Its own process group, so an interrupted build stops go and every compiler it started
    # (a signal sent to this process alone would otherwise leave them running).
    proc = subprocess.Popen(
        command,
        cwd=src,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            # `go build -v` names each package it compiles; anything else is a diagnostic.
            compiled += 1
            tail = [*tail[-40:], line.rstrip()]
        code = proc.wait()
    finally:
        done.set()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if code != 0:
        detail = "\n".join(tail)
        raise BuildError(f"`go build` of {name} failed with exit code {code}:\n{detail}")
    log(f"built {name} in {time.monotonic() - started:.0f}s")


def build(*, force: bool = False, log: Log = _stderr_log) -> Path:
    """Build both binaries of the pinned release unless cached; return their directory."""
    version = pinned_version()
    root = cache_root()
    version_dir = root / version
    target = version_dir / "bin"
    if not force and cached_binaries(version) is not None:
        log(f"reusing {target}")
        return target
    with _locked(version_dir / ".lock", log):
        # Another process may have finished the build while we waited for the lock.
        if not force and cached_binaries(version) is not None:
            log(f"reusing {target}")
            return target
        # Leftovers of an interrupted (killed) build are never reused, only removed.
        for stale in version_dir.glob(f"{_BUILD_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=version_dir))
        try:
            src, out = work / "src", work / "bin"
            src.mkdir()
            out.mkdir()
            # A copy, so `-mod=mod` can never rewrite the repository's go.mod / go.sum.
            for name in ("go.mod", "go.sum"):
                shutil.copy2(MODULE_DIR / name, src / name)
            env = _go_env(root)
            log(f"cache {root} (GOCACHE, GOMODCACHE and binaries); this takes minutes when cold")
            started = time.monotonic()
            for name in BINARIES:
                _run_go_build(name, version=version, src=src, out=out, env=env, log=log)
            if target.exists():
                shutil.rmtree(target)
            out.rename(target)
            log(f"done in {time.monotonic() - started:.0f}s: {target}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: build if needed and print the bin directory on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    # A plain `kill` must clean up like Ctrl-C does: the temporary build directory goes.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        print(build(force=args.force))
    except BuildError as exc:
        _stderr_log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        _stderr_log("interrupted; nothing was left in the cache")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
