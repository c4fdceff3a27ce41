"""The config file re-read when it changes: what replaces the config in use, and what not."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from webhook.app import Metrics, create_app
from webhook.config import default_config
from webhook.config_reload import KEPT_NAME, ConfigFile, ConfigHooks, Loaded
from webhook.policy.errors import ConfigError
from webhook.policy.model import Mode
from webhook.state.index import IndexedState

RULE = "require-role-labels"
ENFORCE = "mode: enforce\n"
WARN = f"policies:\n  {RULE}: {{mode: warn}}\n"
BAD_MODE = f"policies:\n  {RULE}: {{mode: loud}}\n"
BAD_YAML = "policies: [unclosed\n"


class Recorder:
    """ConfigHooks that remember what they were told."""

    def __init__(self) -> None:
        self.in_use: list[tuple[str, bool]] = []
        self.failed: list[str] = []

    def hooks(self) -> ConfigHooks:
        return ConfigHooks(
            in_use=lambda loaded, current: self.in_use.append((loaded.sha256, current)),
            failed=lambda error: self.failed.append(str(error)),
        )


def replace(path: Path, text: str) -> None:
    """Write a new version the way an editor or `kubectl cp` would: a new file renamed in."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(text)
    temporary.replace(path)


def rewrite_in_place(path: Path, text: str) -> None:
    """Write a new version into the same inode (truncate and write)."""
    with path.open("w") as handle:
        handle.write(text)


def mode(file: ConfigFile) -> Mode:
    return file.current().mode_for(RULE)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(ENFORCE)
    return config


def test_unchanged_file_is_not_read_again(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose identity did not change, written well before it was read, costs a stat."""
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    file = ConfigFile.open(path)
    before = file.current()

    def no_read(_path: object) -> bytes:
        raise AssertionError("read again")

    monkeypatch.setattr("webhook.config_reload.read_config_bytes", no_read)
    assert file.check() is False
    assert file.check() is False
    assert file.current() is before


def test_recently_written_unchanged_file_stays(path: Path) -> None:
    file = ConfigFile.open(path)
    before = file.current()
    assert file.check() is False  # read again (recent mtime), the same bytes
    assert file.current() is before


def test_valid_change_replaces_the_config(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    file = ConfigFile.open(path)
    file.hooks = recorder.hooks()
    assert mode(file) is Mode.ENFORCE
    replace(path, WARN)
    with caplog.at_level(logging.INFO, logger="guardrail.config"):
        assert file.check() is True
    assert mode(file) is Mode.WARN
    assert file.up_to_date
    assert recorder.in_use == [(file.loaded.sha256, True)]
    assert recorder.failed == []
    [record] = caplog.records
    assert record.getMessage() == "config file reloaded"
    assert record.fields["event"] == "config_reloaded"  # type: ignore[attr-defined]
    assert record.fields["modes"][RULE] == "warn"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            BAD_MODE,
            "policies.require-role-labels.mode: must be one of enforce, warn, audit, off",
        ),
        (BAD_YAML, "invalid YAML: "),
        ("mode: enforce\nnope: 1\n", "nope"),
    ],
    ids=["schema", "yaml", "unknown-key"],
)
def test_invalid_change_keeps_the_config_in_use(
    path: Path, caplog: pytest.LogCaptureFixture, text: str, error: str
) -> None:
    """Logged once with the exact error (file and path), counted once, the old config stays;
    a later valid version is picked up."""
    recorder = Recorder()
    file = ConfigFile.open(path)
    file.hooks = recorder.hooks()
    before = file.current()
    replace(path, text)
    with caplog.at_level(logging.INFO, logger="guardrail.config"):
        assert file.check() is False
        assert file.check() is False  # the same version: neither logged nor counted again
    assert file.current() is before
    assert not file.up_to_date
    [failure] = recorder.failed
    assert failure.startswith(f"{path}")
    assert error in failure
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.fields["error"] == failure  # type: ignore[attr-defined]
    assert record.fields["event"] == "config_reload_failed"  # type: ignore[attr-defined]
    assert recorder.in_use == [(file.loaded.sha256, False)]

    replace(path, WARN)
    assert file.check() is True
    assert mode(file) is Mode.WARN
    assert file.up_to_date
    assert recorder.in_use[-1] == (file.loaded.sha256, True)


def test_schema_error_message_is_exact(path: Path) -> None:
    recorder = Recorder()
    file = ConfigFile.open(path)
    file.hooks = recorder.hooks()
    replace(path, BAD_MODE)
    file.check()
    assert recorder.failed == [
        f"{path}: policies.require-role-labels.mode: must be one of enforce, warn, audit, off"
    ]


def test_missing_and_unreadable_files_keep_the_config_in_use(path: Path) -> None:
    recorder = Recorder()
    file = ConfigFile.open(path)
    file.hooks = recorder.hooks()
    replace(path, WARN)
    file.check()
    path.unlink()
    assert file.check() is False
    assert file.check() is False
    path.mkdir()  # a directory where the file was: it exists and cannot be read as a file
    assert file.check() is False
    assert mode(file) is Mode.WARN
    assert recorder.failed == [
        f"{path}: cannot read: No such file or directory",
        f"{path}: cannot read: Is a directory",
    ]
    path.rmdir()
    path.write_text(ENFORCE)
    assert file.check() is True
    assert mode(file) is Mode.ENFORCE


def test_configmap_volume_symlink_swap(tmp_path: Path) -> None:
    """The kubelet's layout: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/,
    a new version written to a new directory and ..data renamed over atomically."""
    volume = tmp_path / "volume"
    volume.mkdir()

    def publish(version: str, text: str) -> None:
        target = volume / f"..{version}"
        target.mkdir()
        (target / "config.yaml").write_text(text)
        link = volume / "..data_tmp"
        link.symlink_to(target.name)
        link.replace(volume / "..data")

    publish("v1", ENFORCE)
    (volume / "config.yaml").symlink_to("..data/config.yaml")
    file = ConfigFile.open(volume / "config.yaml")
    assert mode(file) is Mode.ENFORCE
    publish("v2", WARN)
    assert file.check() is True
    assert mode(file) is Mode.WARN
    publish("v3", BAD_MODE)
    assert file.check() is False
    assert mode(file) is Mode.WARN


def test_same_size_rewrite_in_place_within_a_timestamp_tick(path: Path) -> None:
    """A rewrite that keeps the inode, the size and (forced here) the mtime is still seen
    while the mtime is recent: the file is read again and its digest compared."""
    file = ConfigFile.open(path)
    stamp = path.stat().st_mtime_ns
    same_size = "mode: audit  \n"
    assert len(same_size) == len(ENFORCE)
    rewrite_in_place(path, same_size)
    os.utime(path, ns=(stamp, stamp))
    assert file.check() is True
    assert file.current().mode is Mode.AUDIT


def test_rewrite_back_to_the_config_in_use_clears_the_failure(path: Path) -> None:
    recorder = Recorder()
    file = ConfigFile.open(path)
    file.hooks = recorder.hooks()
    before = file.current()
    replace(path, BAD_MODE)
    file.check()
    replace(path, ENFORCE)
    assert file.check() is False  # nothing to swap: the same bytes as the config in use
    assert file.current() is before
    assert file.up_to_date
    assert recorder.in_use[-1] == (file.loaded.sha256, True)


def test_own_namespace_survives_a_reload(path: Path) -> None:
    file = ConfigFile.open(path, own_namespace="guardrail-prod")
    replace(path, "exemptions: {namespaces: [team-x]}\n")
    assert file.check() is True
    assert file.current().exemptions.namespaces == {"team-x", "guardrail-prod"}


def test_invalid_at_open_is_an_error(path: Path) -> None:
    path.write_text(BAD_MODE)
    with pytest.raises(ConfigError, match=r"policies\.require-role-labels\.mode"):
        ConfigFile.open(path)


def test_worker_start_loads_the_newest_valid_version(path: Path, tmp_path: Path) -> None:
    """A worker forked after the file changed (a SIGHUP, a replaced worker) serves the file's
    version, not the one the master opened."""
    keep = tmp_path / "keep"
    master = ConfigFile.open(path, keep_dir=keep)
    replace(path, WARN)
    recorder = Recorder()
    master.start(recorder.hooks())
    master.stop()
    assert mode(master) is Mode.WARN
    assert recorder.in_use[-1] == (master.loaded.sha256, True)
    assert (keep / KEPT_NAME).read_text() == WARN


def test_worker_start_with_an_invalid_file_serves_the_last_valid_one(
    path: Path, tmp_path: Path
) -> None:
    """The master opened v1; a worker loaded v2 (kept); the file is now invalid: a worker
    started now serves v2, and says the file failed."""
    keep = tmp_path / "keep"
    master = ConfigFile.open(path, keep_dir=keep)
    first_worker = ConfigFile.open(path, keep_dir=keep)
    replace(path, WARN)
    assert first_worker.check() is True
    replace(path, BAD_MODE)

    recorder = Recorder()
    master.start(recorder.hooks())  # what a worker forked from the master now does
    master.stop()
    assert mode(master) is Mode.WARN
    assert not master.up_to_date
    assert len(recorder.failed) == 1
    assert recorder.in_use[-1] == (master.loaded.sha256, False)


def test_worker_start_without_a_kept_copy_keeps_the_master_config(path: Path) -> None:
    master = ConfigFile.open(path)
    replace(path, BAD_YAML)
    master.start()
    master.stop()
    assert mode(master) is Mode.ENFORCE
    assert master.current() == default_config()


def test_hash_value_is_exact_in_a_float() -> None:
    loaded = Loaded(default_config(), "f" * 64, 0.0)
    assert loaded.hash_value == float(2**52 - 1)
    assert int(loaded.hash_value) == int("f" * 13, 16)


# -- through the app ------------------------------------------------------------------------------
def _pod_review(uid: str) -> bytes:
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop",
            "name": "web",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    return json.dumps(review).encode()


def test_app_judges_each_request_with_the_config_in_use(path: Path) -> None:
    """create_app(ConfigFile.current): a reload changes the verdict of the next request, an
    invalid version does not, and the metrics say which config is in use."""
    off = '  require-default-deny: {mode: "off"}\n'
    path.write_text(f"policies:\n  {RULE}: {{mode: enforce}}\n{off}")
    file = ConfigFile.open(path)
    metrics = Metrics()
    file.hooks = metrics.config_hooks()
    client = create_app(file.current, IndexedState(), metrics=metrics).test_client()

    def verdict() -> dict[str, Any]:
        response: dict[str, Any] = client.post("/validate", data=_pod_review("u")).get_json()
        return response["response"]

    denied = verdict()
    assert denied["allowed"] is False
    assert denied["status"]["message"].startswith("[require-role-labels]")

    replace(path, f"policies:\n  {RULE}: {{mode: warn}}\n{off}")
    assert file.check()
    warned = verdict()
    assert warned["allowed"] is True
    assert warned["warnings"][0].startswith("[require-role-labels]")

    replace(path, BAD_MODE)
    assert not file.check()
    assert verdict()["allowed"] is True  # still the warn config
    scrape = client.get("/metrics").get_data(as_text=True)
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    assert samples["guardrail_config_reload_errors_total"] == 1
    assert samples["guardrail_config_last_reload_successful"] == 0
    assert samples["guardrail_config_hash"] == file.loaded.hash_value
    assert samples["guardrail_config_last_reload_success_timestamp_seconds"] == (
        file.loaded.loaded_at
    )


def test_no_config_file_no_reload_metrics() -> None:
    """Without a config file nothing is reloaded: no gauge claims a failed reload."""
    assert b"guardrail_config_" not in Metrics().render()
