"""Fixtures of the end-to-end tier: one real control plane shared by the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.e2e import build_cluster
from tests.e2e.guardrail import FIXTURES, GuardrailControl
from tests.e2e.harness import Cluster, ClusterError, Log, find_etcd

CALICO_CRDS = FIXTURES / "calico-crds.yaml"

# Why the servers could not be prepared before the tests, for the fixture to report as each
# e2e test's error (instead of an INTERNALERROR traceback from the hook, or a second build).
_PREPARE_ERROR = pytest.StashKey[str]()


def _progress(config: pytest.Config) -> Log:
    """Return a logger that reaches the terminal even while pytest captures output.

    A cold build of the servers takes minutes; silence for that long looks like a hang.
    """
    capture = config.pluginmanager.getplugin("capturemanager")
    terminal = config.pluginmanager.getplugin("terminalreporter")

    def log(message: str) -> None:
        line = f"[e2e] {message}"
        if capture is None or terminal is None:
            print(line, flush=True)
            return
        with capture.global_and_fixture_disabled():
            terminal.write_line(line)

    return log


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the servers and install etcd before the first test, when a selected test needs them.

    Done here rather than in the fixture so the cold build (minutes, once per machine) does
    not count against the first e2e test's pytest-timeout.
    """
    if session.config.option.collectonly:
        return
    if not any("cluster" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    log = _progress(session.config)
    try:
        if build_cluster.cached_binaries() is None:
            build_cluster.build(log=log)
        find_etcd(log=log)
    except (build_cluster.BuildError, ClusterError) as exc:
        log(f"error: {exc}")
        session.config.stash[_PREPARE_ERROR] = str(exc)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, with kubectl.

    Set GUARDRAIL_E2E_KEEP_TMP=1 to keep its directory (server logs, audit log) afterwards.
    """
    prepare_error = request.config.stash.get(_PREPARE_ERROR, None)
    if prepare_error is not None:
        pytest.fail(f"e2e cluster unavailable: {prepare_error}", pytrace=False)
    keep = os.environ.get("GUARDRAIL_E2E_KEEP_TMP", "") not in ("", "0")
    started = Cluster.start(log=_progress(request.config), keep_tmp=keep)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def guardrail(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GuardrailControl]:
    """The session's `guardrail serve`, started on demand per configuration.

    Calico's crd.projectcalico.org/v1 policy CRDs are installed first, so its discovery finds
    them. `guardrail.use("enforce" | "warn" | "audit")` starts (or reuses) the process serving
    that configuration; it is stopped after the session. Registration: the `webhook` fixture.
    """
    cluster.kubectl("apply", "-f", str(CALICO_CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CALICO_CRDS))
    control = GuardrailControl(cluster, tmp_path_factory.mktemp("guardrail"))
    try:
        yield control
    finally:
        # Registration first: nothing may call a webhook that is going away.
        control.unregister()
        control.stop()


@pytest.fixture(scope="module")
def webhook(guardrail: GuardrailControl) -> Iterator[GuardrailControl]:
    """guardrail registered with the API server (deploy/'s webhook configuration, pointed at
    127.0.0.1) for the length of one test module; unregistered after it."""
    guardrail.register()
    try:
        yield guardrail
    finally:
        guardrail.unregister()
