"""`guardrail review` against a real `guardrail serve` over verified TLS, printed as kubectl would.

The server (tests/http/conftest.py) believes in namespace "shop" isolated by a default-deny,
namespace "open" without one, and exempts user `trusted-bot`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.http.support import Server, free_port, make_certs
from webhook.cli import main

GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))

LABELLED = """\
apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: shop, labels: {app: web, role: frontend}}
spec: {containers: [{name: c, image: nginx}]}
"""
UNLABELLED = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: nginx}]}
"""
IN_OPEN = LABELLED.replace("name: ok, namespace: shop", "name: lonely, namespace: open")
# In "legacy", which nothing isolates: it reopens nothing, so it is only warned about.
ALLOW_ALL = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow, namespace: legacy}
spec: {podSelector: {}, ingress: [{}]}
"""
DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
"""
NEW_NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: fresh}\n"
LABELS_DENIAL = (
    '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role. '
    "Add them under metadata.labels."
)


def run_review(
    server: Server, manifest: str, *extra: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    args = [
        GUARDRAIL,
        "review",
        "--url",
        f"{server.url}/validate",
        "--ca",
        server.ca,
        *extra,
        manifest,
    ]
    return subprocess.run(
        args,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write(tmp_path: Path, name: str, *docs: str) -> str:
    path = tmp_path / name
    path.write_text("---\n".join(docs))
    return str(path)


@pytest.mark.parametrize(
    ("docs", "extra", "code", "stdout", "stderr"),
    [
        (
            [LABELLED],
            [],
            0,
            ["pod/ok created (guardrail review: allowed)"],
            [],
        ),
        (
            [UNLABELLED],
            [],
            1,
            [],
            [
                'Error from server (Forbidden): error when creating "{file}": admission webhook '
                f'"workloads.guardrail.dev" denied the request: {LABELS_DENIAL}'
            ],
        ),
        (
            [ALLOW_ALL],
            [],
            0,
            ["networkpolicy.networking.k8s.io/allow created (guardrail review: allowed)"],
            [
                'Warning: [restrict-allow-all] NetworkPolicy "allow": spec.ingress[0] admits all '
                "traffic, cancelling default-deny"
            ],
        ),
        (
            [NEW_NAMESPACE],
            [],
            0,
            ["namespace/fresh created (guardrail review: allowed)"],
            [
                'Warning: [require-default-deny] Namespace "fresh": pods will be rejected until a '
                "default-deny for Ingress and Egress exists"
            ],
        ),
        (
            [DEFAULT_DENY],
            ["--operation", "DELETE"],
            1,
            [],
            [
                'Error from server (Forbidden): error when deleting "{file}": admission webhook '
                '"networkpolicies.guardrail.dev" denied the request: [protect-default-deny] Deleting '
                'NetworkPolicy "default-deny" in namespace "shop" would leave namespace "shop" '
                "without a default-deny for Ingress and Egress. Apply a replacement default-deny "
                "there first, or delete the namespace if it is no longer needed."
            ],
        ),
        (
            [DEFAULT_DENY],
            ["--operation", "UPDATE"],
            0,
            ["networkpolicy.networking.k8s.io/default-deny configured (guardrail review: allowed)"],
            [],
        ),
        (
            [LABELLED],
            ["--operation", "DELETE"],
            0,
            ['pod "ok" deleted (guardrail review: allowed)'],
            [],
        ),
        (
            [UNLABELLED],
            ["--username", "trusted-bot"],
            0,
            ["pod/web created (guardrail review: allowed)"],
            [],
        ),
    ],
    ids=[
        "allowed",
        "denied-labels",
        "warned-allow-all",
        "namespace-advisory",
        "delete-default-deny-denied",
        "update-default-deny-allowed",
        "delete-pod-allowed",
        "exempt-user",
    ],
)
def test_review_prints_the_verdict_as_kubectl_would(
    server: Server,
    tmp_path: Path,
    docs: list[str],
    extra: list[str],
    code: int,
    stdout: list[str],
    stderr: list[str],
) -> None:
    """Each verdict is printed in kubectl's words; exit 0 when allowed, 1 when denied."""
    file = write(tmp_path, "manifest.yaml", *docs)
    done = run_review(server, file, *extra)
    assert done.returncode == code, done.stderr
    assert done.stdout.splitlines() == stdout
    assert done.stderr.splitlines() == [line.replace("{file}", file) for line in stderr]


def test_every_object_of_a_stream_is_reviewed(server: Server, tmp_path: Path) -> None:
    """A multi-document manifest is reviewed object by object; one denial makes it exit 1."""
    file = write(tmp_path, "all.yaml", LABELLED, UNLABELLED, IN_OPEN)
    done = run_review(server, file)
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["pod/ok created (guardrail review: allowed)"]
    denials = done.stderr.splitlines()
    assert len(denials) == 2
    assert denials[0].endswith(LABELS_DENIAL)
    assert denials[1].startswith(
        f'Error from server (Forbidden): error when creating "{file}": admission webhook '
        '"workloads.guardrail.dev" denied the request: [require-default-deny] Pod "lonely" in '
        'namespace "open" cannot run there: namespace "open" has no default-deny network '
        "policy for Ingress and Egress. Apply one first: echo '"
    )


def test_stdin_is_named_like_kubectl_names_it(server: Server) -> None:
    """A manifest piped on `-` is called "STDIN" in the denial, as kubectl does."""
    done = run_review(server, "-", stdin=UNLABELLED.encode())
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        'Error from server (Forbidden): error when creating "STDIN": admission webhook '
        f'"workloads.guardrail.dev" denied the request: {LABELS_DENIAL}'
    ]


def test_review_through_click(server: Server, tmp_path: Path) -> None:
    """The click command in-process gives the same verdict and exit code."""
    file = write(tmp_path, "pod.yaml", UNLABELLED)
    result = CliRunner().invoke(
        main, ["review", "--url", f"{server.url}/validate", "--ca", server.ca, file]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.endswith(f"denied the request: {LABELS_DENIAL}\n")


# -- errors: exit 2 with what went wrong ---------------------------------------------------------
def test_connection_refused_names_the_url(tmp_path: Path, server: Server) -> None:
    """Nothing listening: exit 2, the URL and `connection refused`, no traceback."""
    file = write(tmp_path, "pod.yaml", LABELLED)
    url = f"https://127.0.0.1:{free_port()}/validate"
    done = subprocess.run(
        [GUARDRAIL, "review", "--url", url, "--ca", server.ca, file],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"guardrail: cannot reach {url}: connection refused (is `guardrail serve` running there?)\n"
    )


def test_a_certificate_from_another_ca_is_refused(server: Server, tmp_path: Path) -> None:
    """TLS is verified: a CA that did not sign the server's certificate fails with exit 2."""
    make_certs(tmp_path / "other")
    file = write(tmp_path, "pod.yaml", LABELLED)
    url = f"{server.url}/validate"
    done = subprocess.run(
        [GUARDRAIL, "review", "--url", url, "--ca", str(tmp_path / "other/ca.crt"), file],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"guardrail: cannot reach {url}: TLS certificate verification failed: "
    )
    assert "certificate" in done.stderr.split("failed: ", 1)[1]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ["--ca", "{tmp}/missing.crt", "{file}"],
            "guardrail: {tmp}/missing.crt: cannot load the CA certificate: No such file or "
            "directory (pass --ca with the CA that signed the webhook's certificate, e.g. "
            "certs/ca.crt)\n",
        ),
        (
            ["--url", "ftp://127.0.0.1/validate", "{file}"],
            "guardrail: --url must be an https:// URL such as https://127.0.0.1:8443/validate, "
            "not 'ftp://127.0.0.1/validate'\n",
        ),
        (
            ["{tmp}/empty.yaml"],
            "guardrail: {tmp}/empty.yaml: no Kubernetes objects to review\n",
        ),
        (
            ["{tmp}/nope.yaml"],
            "guardrail: {tmp}/nope.yaml: no such file or directory\n",
        ),
    ],
    ids=["missing-ca", "bad-url", "no-objects", "missing-manifest"],
)
def test_bad_arguments_exit_2(server: Server, tmp_path: Path, args: list[str], stderr: str) -> None:
    """A missing CA, a wrong URL or a manifest without objects: exit 2 and what is wrong."""
    file = write(tmp_path, "pod.yaml", LABELLED)
    write(tmp_path, "empty.yaml", "# nothing here\n")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{file}", file) for a in args]
    if "--ca" not in argv:
        argv = ["--ca", server.ca, *argv]
    if "--url" not in argv:
        argv = ["--url", f"{server.url}/validate", *argv]
    done = subprocess.run(
        [GUARDRAIL, "review", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == stderr.replace("{tmp}", str(tmp_path))
