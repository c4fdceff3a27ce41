"""The config file re-read by a running `guardrail serve` (2 workers, over TLS): a change is
served without a restart, an invalid version keeps the config in use (logged with the exact
error, counted), a later valid version is picked up, and a SIGHUP ends with the newest valid
config. The file is laid out as the kubelet lays out a ConfigMap volume, and replaced the way
the kubelet replaces it (a new directory, the `..data` symlink renamed over)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.http.support import Server, pod, review, start_server, wait_for

pytestmark = pytest.mark.slow

RULE = "require-role-labels"
ENFORCE = f"exemptions:\n  usernames: [trusted-bot]\npolicies:\n  {RULE}: {{mode: enforce}}\n"
WARN = f"exemptions:\n  usernames: [trusted-bot]\npolicies:\n  {RULE}: {{mode: warn}}\n"
INVALID = f"exemptions:\n  usernames: [trusted-bot]\npolicies:\n  {RULE}: {{mode: loud}}\n"
EXACT_ERROR = f"policies.{RULE}.mode: must be one of enforce, warn, audit, off"


@dataclass
class ConfigMapVolume:
    """A directory laid out like a mounted ConfigMap: config.yaml -> ..data/config.yaml."""

    root: Path
    versions: int = 0

    @property
    def path(self) -> Path:
        return self.root / "config.yaml"

    def publish(self, text: str) -> None:
        """What the kubelet does on a ConfigMap update: write a new timestamped directory,
        point a new symlink at it and rename that over ..data (one atomic switch)."""
        self.versions += 1
        target = self.root / f"..2026_01_01_00_00_{self.versions:02d}.{os.getpid()}"
        target.mkdir()
        (target / "config.yaml").write_text(text)
        link = self.root / "..data_tmp"
        link.symlink_to(target.name)
        link.replace(self.root / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to("..data/config.yaml")

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@pytest.fixture
def volume(tmp_path: Path) -> ConfigMapVolume:
    mounted = ConfigMapVolume(tmp_path / "configmap")
    mounted.root.mkdir()
    mounted.publish(ENFORCE)
    return mounted


@pytest.fixture
def served(tmp_path: Path, volume: ConfigMapVolume) -> Iterator[Server]:
    running = start_server(
        tmp_path / "serve", config=None, extra_args=["--config", str(volume.path)]
    )
    yield running
    running.stop()


# -- what a user sees ----------------------------------------------------------------------------
def unlabelled_verdict(server: Server) -> dict[str, Any]:
    """A Pod missing its `role` label in namespace "shop" (isolated): only that rule applies."""
    return server.review(review(pod(labels={"app": "web"})))


def denied(server: Server, times: int = 8) -> bool:
    """Several reviews in a row (each on a new connection, so both workers) are denials."""
    for _ in range(times):
        response = unlabelled_verdict(server)
        if response["allowed"] or not response["status"]["message"].startswith(f"[{RULE}]"):
            return False
    return True


def warned(server: Server, times: int = 8) -> bool:
    """Several reviews in a row are allowed with the rule's warning."""
    for _ in range(times):
        response = unlabelled_verdict(server)
        if not response["allowed"] or not response.get("warnings", [""])[0].startswith(f"[{RULE}]"):
            return False
    return True


def samples(server: Server) -> list[tuple[str, dict[str, str], float]]:
    text = server.get("/metrics").text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def metric(server: Server, name: str) -> float | None:
    found = [value for sample, _labels, value in samples(server) if sample == name]
    return sum(found) if found else None


def hashes_by_worker(server: Server) -> dict[str, int]:
    """guardrail_config_hash per worker pid, of the workers alive now."""
    alive = {str(pid) for pid in workers(server)}
    return {
        labels["pid"]: int(value)
        for name, labels, value in samples(server)
        if name == "guardrail_config_hash" and labels.get("pid") in alive
    }


def every_worker_serves(server: Server, digest: str) -> bool:
    """Both workers report the config whose file has this SHA-256 (its first 52 bits)."""
    hashes = hashes_by_worker(server)
    return len(hashes) == 2 and set(hashes.values()) == {int(digest[:13], 16)}


def workers(server: Server) -> list[int]:
    pid = server.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def reload_errors(server: Server) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "config_reload_failed"]


# -- the tests -----------------------------------------------------------------------------------
def test_changed_config_is_served_without_a_restart(
    served: Server, volume: ConfigMapVolume
) -> None:
    """The ConfigMap flips the rule to warn: within seconds every worker allows with a
    warning what it denied, no process restarted, and the metrics name the new config."""
    # Both workers up (the server is ready once one is) and serving the first version.
    wait_for("both workers", lambda: every_worker_serves(served, volume.digest()))
    before = workers(served)
    assert denied(served)

    volume.publish(WARN)
    wait_for("the warn config on every worker", lambda: warned(served), deadline=15)
    wait_for(
        "guardrail_config_hash of the new file on both workers",
        lambda: every_worker_serves(served, volume.digest()),
        deadline=15,
    )
    assert sorted(workers(served)) == sorted(before)  # reloaded in place, not restarted
    assert metric(served, "guardrail_config_last_reload_successful") == 1
    assert metric(served, "guardrail_config_reload_errors_total") == 0
    log = served.log()
    assert log.count('"event":"config_reloaded"') == 2  # one line per worker
    assert "Traceback" not in log


def test_invalid_config_keeps_the_one_in_use_until_fixed(
    served: Server, volume: ConfigMapVolume
) -> None:
    """A broken ConfigMap (an unknown mode): the verdicts stay those of the config in use,
    each worker logs the exact error once and counts it; a fixed ConfigMap is picked up."""
    volume.publish(WARN)
    wait_for(
        "the warn config", lambda: warned(served) and every_worker_serves(served, volume.digest())
    )
    in_use = volume.digest()

    volume.publish(INVALID)
    wait_for("both workers logging the error", lambda: len(reload_errors(served)) == 2)
    for line in reload_errors(served):
        assert line["level"] == "error"
        assert line["error"] == f"{volume.path}: {EXACT_ERROR}"
        assert line["in_use_sha256"] == in_use
    assert warned(served, times=12)  # still the warn config, on every worker
    assert every_worker_serves(served, in_use)
    assert metric(served, "guardrail_config_reload_errors_total") == 2  # once per worker
    assert metric(served, "guardrail_config_last_reload_successful") == 0
    assert len(reload_errors(served)) == 2  # not logged again every second

    volume.publish(ENFORCE)
    wait_for("the fixed config", lambda: denied(served))
    wait_for(
        "the fixed config on both workers", lambda: every_worker_serves(served, volume.digest())
    )
    assert metric(served, "guardrail_config_last_reload_successful") == 1
    assert metric(served, "guardrail_config_reload_errors_total") == 2


def test_sighup_ends_with_the_newest_valid_config(served: Server, volume: ConfigMapVolume) -> None:
    """SIGHUP restarts the workers: with the file invalid they serve the last valid config
    (not the one the server started with, and no crash loop); with a newer valid file
    written just before the signal, they serve that one."""
    volume.publish(WARN)
    wait_for("the warn config", lambda: every_worker_serves(served, volume.digest()))
    last_valid = volume.digest()
    volume.publish(INVALID)
    wait_for("the error logged", lambda: len(reload_errors(served)) == 2)

    old = set(workers(served))
    served.process.send_signal(signal.SIGHUP)
    wait_for(
        "two new workers",
        lambda: len(set(workers(served))) == 2 and not set(workers(served)) & old,
    )
    wait_for("the new workers answering", lambda: every_worker_serves(served, last_valid))
    assert warned(served, times=12)  # the last valid config, not the startup one (enforce)
    survivors = set(workers(served))
    assert served.process.poll() is None

    # A valid file written right before the signal: the new workers read it at start.
    volume.publish(ENFORCE)
    served.process.send_signal(signal.SIGHUP)
    wait_for(
        "two newer workers",
        lambda: len(set(workers(served))) == 2 and not set(workers(served)) & survivors,
    )
    wait_for("the newest config", lambda: every_worker_serves(served, volume.digest()))
    assert denied(served)
    log = served.log()
    assert log.count("Booting worker with pid") == 6  # 2 at start, 2 per SIGHUP: no crash loop
    assert "Traceback" not in log
