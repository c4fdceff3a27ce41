"""The config file of `guardrail serve`, re-read when it changes.

Each gunicorn worker checks the file's identity (device, inode, modification time and size of
what the path points to, symlinks followed) once a second in a thread of its own: a ConfigMap
volume's atomic `..data` symlink swap, a file renamed into place and a file edited in place are
all noticed, and a request never pays for the check (it reads the config in use: one
attribute). A changed file is read, parsed and validated exactly as at start:

- valid: it replaces the config for the requests that start from then on (one being judged
  finishes with the config it started with), and one JSON line says so;
- invalid (a YAML or schema error, unreadable, missing): the config in use stays, and one JSON
  error line gives the exact error (`config.yaml: policies.x.mode: must be one of ...`) once
  per version of the file, counted by `hooks.failed`. A later valid version is picked up.

A file that changes while it is being read is read again at the next check, never half.

Every valid config loaded is also kept in `keep_dir` (written atomically): a worker started
later, after a SIGHUP or in place of one that died, reads the file itself and, should the file
be invalid then, serves that last valid config rather than the one the server started with.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webhook.config import Config, config_from_bytes, read_config_bytes
from webhook.policy.errors import ConfigError

log = logging.getLogger("guardrail.config")

CHECK_INTERVAL_SECONDS = 1.0
# A file modified less than this before it was read is read again at the next checks.
RACY_NS = 2_000_000_000
KEPT_NAME = "last-valid-config.yaml"

FileIdentity = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Loaded:
    """A config in use: what it says, the SHA-256 of its bytes, and when it was loaded."""

    config: Config
    sha256: str
    loaded_at: float  # Unix time

    @property
    def hash_value(self) -> float:
        """The digest's first 52 bits as a number, exact in a float (a Prometheus sample)."""
        return float(int(self.sha256[:13], 16))


class ConfigHooks:
    """What a ConfigFile reports; the server wires these to Prometheus metrics."""

    def __init__(
        self,
        in_use: Callable[[Loaded, bool], None] = lambda _loaded, _current: None,
        failed: Callable[[ConfigError], None] = lambda _error: None,
    ) -> None:
        # (the config in use, whether it is what the file holds now): at start and after
        # every check that loaded a version of the file or failed to.
        self.in_use = in_use
        # One version of the file that failed to load.
        self.failed = failed


def _identity(path: Path) -> FileIdentity | None:
    try:
        s = path.stat()
    except OSError:
        return None
    return (s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size)


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class ConfigFile:
    """The config file a server runs with and the config it last loaded from it.

    Build it with `open` (in the master, before workers fork: an invalid file is an error
    then); each worker calls `start` once, after the fork.
    """

    def __init__(
        self,
        path: Path,
        loaded: Loaded,
        identity: FileIdentity | None,
        *,
        read_ns: int = 0,
        own_namespace: str | None = None,
        keep_dir: Path | None = None,
        check_interval: float = CHECK_INTERVAL_SECONDS,
    ) -> None:
        self.path = path
        self.source = str(path)
        self.own_namespace = own_namespace
        self.keep_dir = keep_dir
        self.check_interval = check_interval
        self.hooks = ConfigHooks()
        self._loaded = loaded
        # The version of the file examined last: its identity (None: missing) and the SHA-256
        # of its bytes ("" if unreadable); None when unknown. Whether it failed to load.
        self._seen: tuple[FileIdentity | None, str] | None = (
            None if identity is None else (identity, loaded.sha256)
        )
        self._failed = False
        self._read_ns = read_ns
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        own_namespace: str | None = None,
        keep_dir: Path | None = None,
        check_interval: float = CHECK_INTERVAL_SECONDS,
    ) -> ConfigFile:
        """Load and validate the file now; ConfigError when it is invalid."""
        file = Path(path)
        identity = _identity(file)
        read_ns = time.time_ns()
        raw = read_config_bytes(file)
        config = config_from_bytes(raw, str(path), own_namespace=own_namespace)
        if _identity(file) != identity:
            identity = None  # changed while read: the first check reads it again
        opened = cls(
            file,
            Loaded(config, _sha256(raw), time.time()),
            identity,
            read_ns=read_ns,
            own_namespace=own_namespace,
            keep_dir=keep_dir,
            check_interval=check_interval,
        )
        if keep_dir is not None:
            keep_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            opened._keep(raw)
        return opened

    # -- reads -----------------------------------------------------------------------------
    def current(self) -> Config:
        """The config in use (cheap: one attribute read; the checks run in a thread)."""
        return self._loaded.config

    @property
    def loaded(self) -> Loaded:
        return self._loaded

    @property
    def up_to_date(self) -> bool:
        """Whether the config in use is what the file held when last checked."""
        return not self._failed

    # -- checks ----------------------------------------------------------------------------
    def start(self, hooks: ConfigHooks | None = None) -> None:
        """In a worker: load the file's newest valid version now, then check once a second.

        The worker starts from the last valid config any worker loaded (kept in `keep_dir`),
        not the one the server started with, then reads the file: a valid file replaces it,
        an invalid one leaves it in use.
        """
        self.hooks = hooks or ConfigHooks()
        if self._use_kept():
            self._seen = None  # read the file whatever its identity
        self.check()
        self._report()
        threading.Thread(target=self._check_forever, name="guardrail-config", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Load the file if it changed; True when the config in use changed."""
        with self._lock:
            version = self._new_version()
            if version is None:
                return False
            identity, raw, digest = version
            try:
                config = config_from_bytes(raw, self.source, own_namespace=self.own_namespace)
            except ConfigError as exc:
                self._fail(identity, digest, exc)
                return False
            except Exception as exc:  # a bug in validation must not stop the checks
                log.exception("unexpected error loading the config file")
                error = ConfigError(f"could not be loaded: {exc}", self.source)
                self._fail(identity, digest, error)
                return False
            return self._use(raw, digest, config, identity)

    def _new_version(self) -> tuple[FileIdentity | None, bytes, str] | None:
        """The file's identity, bytes and SHA-256 if they are not the version examined last.

        None when nothing changed, when the file changed while being read (read again at
        the next check) and when it cannot be read (that is a failed version, here).
        """
        identity = _identity(self.path)
        seen = self._seen
        if seen is not None and seen[0] == identity and not self._racy(identity):
            return None
        read_ns = time.time_ns()
        try:
            raw = read_config_bytes(self.path)
        except ConfigError as exc:  # missing, unreadable, too large
            self._read_ns = read_ns
            if seen != (identity, ""):
                self._fail(identity, "", exc)
            return None
        if _identity(self.path) != identity:
            return None
        self._read_ns = read_ns
        digest = _sha256(raw)
        if seen == (identity, digest):
            return None  # read again only because its timestamp is recent: unchanged
        return identity, raw, digest

    def _racy(self, identity: FileIdentity | None) -> bool:
        """Whether the file could have changed since it was read without its identity changing.

        Timestamps have a granularity (a clock tick; seconds on some file systems): a file
        rewritten in place with the same size right after it was read can keep its mtime. As
        git does with its index, a file modified shortly before it was read is read again,
        until its mtime is older than the read by more than any granularity.
        """
        return identity is not None and identity[2] + RACY_NS >= self._read_ns

    def _check_forever(self) -> None:
        while not self._stop.wait(self.check_interval):
            try:
                self.check()
            except Exception:
                log.exception("could not check the config file")

    def _use(self, raw: bytes, digest: str, config: Config, identity: FileIdentity | None) -> bool:
        """Serve this valid version from now on (caller holds the lock)."""
        was_failing = self._failed
        self._seen = (identity, digest)
        self._failed = False
        fields = {"event": "config_reloaded", "config": self.source, "sha256": digest}
        if digest == self._loaded.sha256:
            # Touched, or put back as it was after an invalid version: nothing to swap.
            if was_failing:
                log.info(
                    "config file valid again, the same as the config in use",
                    extra={"fields": {**fields, "pid": os.getpid()}},
                )
                self._report()
            return False
        self._loaded = Loaded(config, digest, time.time())
        self._keep(raw)
        log.info(
            "config file reloaded",
            extra={"fields": {**fields, "pid": os.getpid(), "modes": _modes(config)}},
        )
        self._report()
        return True

    def _fail(self, identity: FileIdentity | None, digest: str, exc: ConfigError) -> None:
        """Keep the config in use; log and count this version's error, once."""
        self._seen = (identity, digest)
        self._failed = True
        log.error(
            "config file not reloaded, the config in use stays: %s",
            exc,
            extra={
                "fields": {
                    "event": "config_reload_failed",
                    "config": self.source,
                    "error": str(exc),
                    "in_use_sha256": self._loaded.sha256,
                    "pid": os.getpid(),
                }
            },
        )
        try:
            self.hooks.failed(exc)
        except Exception:
            log.exception("could not count a failed config reload")
        self._report()

    def _report(self) -> None:
        try:
            self.hooks.in_use(self._loaded, not self._failed)
        except Exception:
            log.exception("could not report the config in use")

    # -- the last valid config, for workers started later -----------------------------------
    def _keep(self, raw: bytes) -> None:
        if self.keep_dir is None:
            return
        kept = self.keep_dir / KEPT_NAME
        temporary = self.keep_dir / f".{KEPT_NAME}.{os.getpid()}"
        try:
            temporary.write_bytes(raw)
            temporary.replace(kept)  # atomic: a worker starting now reads one whole version
        except OSError as exc:
            log.warning("could not keep a copy of the config: %s", exc)

    def _use_kept(self) -> bool:
        """Serve the last valid config kept in `keep_dir`; whether it differs from the config
        in use."""
        if self.keep_dir is None:
            return False
        kept = self.keep_dir / KEPT_NAME
        try:
            raw = read_config_bytes(kept)
            config = config_from_bytes(raw, str(kept), own_namespace=self.own_namespace)
        except ConfigError as exc:
            log.warning("the last valid config cannot be read: %s", exc)
            return False
        digest = _sha256(raw)
        if digest == self._loaded.sha256:
            return False
        self._loaded = Loaded(config, digest, time.time())
        return True


def _modes(config: Config) -> dict[str, str]:
    return {policy: str(mode) for policy, mode in config.modes.items()}
