"""`check`: manifests judged offline as CREATE requests, with the manifests as the cluster state."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from webhook.checking import CheckResult, api_server, check_paths
from webhook.config import Config, default_config, digest, parse_config
from webhook.policy.errors import GuardrailError
from webhook.report.base import Origin

DEFAULT_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny, namespace: {ns}}}
spec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}
"""
INGRESS_ONLY_DENY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny-ingress, namespace: {ns}}}
spec: {{podSelector: {{}}}}
"""
NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}, role: {role}}}
spec: {{containers: [{{name: c, image: nginx}}]}}
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  template:
    metadata: {{labels: {{app: {name}, role: web}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"""
CRONJOB = """\
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}, namespace: {ns}}}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {{labels: {{app: {name}, role: batch}}}}
        spec: {{containers: [{{name: c, image: busybox}}]}}
"""


def write(tmp_path: Path, name: str, *docs: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(docs))
    return str(path)


def rows(result: CheckResult) -> list[tuple[object, ...]]:
    """(policy, mode, kind, namespace, name, file, line, enforced) of each violation."""
    return [
        (
            v.policy,
            str(v.mode),
            v.finding.kind,
            v.finding.namespace,
            v.finding.name,
            Path(v.file).name if v.file else None,
            v.line,
            v.enforced,
        )
        for v in result.violations
    ]


def check(tmp_path: Path, config: Config | None = None, *names: str) -> CheckResult:
    return check_paths(
        [str(tmp_path / n) for n in names] or [str(tmp_path)], config or default_config()
    )


def test_missing_label_in_an_isolated_namespace_is_the_only_finding(tmp_path: Path) -> None:
    """A pod missing `role` where the input isolates its namespace gets exactly that finding."""
    write(tmp_path, "ns.yaml", NAMESPACE.format(ns="shop"), DEFAULT_DENY.format(ns="shop"))
    write(tmp_path, "pod.yaml", "# web pod\n" + POD.format(name="web", ns="shop", role="''"))
    result = check(tmp_path)
    assert rows(result) == [
        ("require-role-labels", "enforce", "Pod", "shop", "web", "pod.yaml", 2, True)
    ]
    assert result.violations[0].finding.message == (
        '[require-role-labels] Pod "web" in namespace "shop" is missing required labels: role. '
        "Add them under metadata.labels."
    )
    assert result.resources == 3
    assert result.has_enforced_violation


def test_workloads_of_a_namespace_without_default_deny_each_get_their_own_finding(
    tmp_path: Path,
) -> None:
    """Three workloads in an unisolated namespace: a finding each, at its own line, and one
    headline for the namespace naming them all, with the fix once."""
    write(
        tmp_path,
        "apps.yaml",
        NAMESPACE.format(ns="shop"),
        POD.format(name="a", ns="shop", role="web"),
        DEPLOYMENT.format(name="b", ns="shop"),
        CRONJOB.format(name="c", ns="shop"),
    )
    result = check(tmp_path)
    assert rows(result) == [
        ("require-default-deny", "enforce", "Pod", "shop", "a", "apps.yaml", 5, True),
        ("require-default-deny", "enforce", "Deployment", "shop", "b", "apps.yaml", 13, True),
        ("require-default-deny", "enforce", "CronJob", "shop", "c", "apps.yaml", 21, True),
    ]
    headline = result.headlines[("require-default-deny", "shop")]
    message = headline.finding.message
    assert message.startswith(
        '[require-default-deny] Namespace "shop" has no default-deny network policy for '
        'Ingress and Egress, so 3 workloads in it would be rejected: Pod "a", Deployment "b", '
        'CronJob "c". Apply one first: echo \'{"apiVersion":"networking.k8s.io/v1",'
    )
    assert message.endswith(
        '"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}\' | kubectl apply -f -'
    )
    assert (Path(headline.file or "").name, headline.line) == ("apps.yaml", 1)
    assert len(headline.finding.summary) < 120


def test_the_headline_sits_on_the_namespace_object_and_replaces_its_own_finding(
    tmp_path: Path,
) -> None:
    """The headline points at the Namespace object, wherever it is in the input; the
    Namespace's own advisory finding is left out (the headline says the same)."""
    write(tmp_path, "a-pods.yaml", POD.format(name="web", ns="shop", role="web"))
    write(tmp_path, "b-ns.yaml", "# namespaces\n\n" + NAMESPACE.format(ns="shop"))
    result = check(tmp_path)
    assert rows(result) == [
        ("require-default-deny", "enforce", "Pod", "shop", "web", "a-pods.yaml", 1, True)
    ]
    headline = result.headlines[("require-default-deny", "shop")]
    assert (Path(headline.file or "").name, headline.line) == ("b-ns.yaml", 3)
    assert '1 workload in it would be rejected: Pod "web".' in headline.finding.message


def test_long_workload_lists_are_cut_with_a_count(tmp_path: Path) -> None:
    """Beyond five workloads the headline lists the first five and `and N more`."""
    write(
        tmp_path,
        "pods.yaml",
        NAMESPACE.format(ns="big"),
        *(POD.format(name=f"p{i}", ns="big", role="web") for i in range(7)),
    )
    result = check(tmp_path)
    assert len(result.violations) == 7
    assert (
        '7 workloads in it would be rejected: Pod "p0", Pod "p1", Pod "p2", Pod "p3", Pod "p4" '
        "and 2 more." in result.headlines[("require-default-deny", "big")].finding.message
    )


def test_only_the_missing_direction_is_asked_for(tmp_path: Path) -> None:
    """With an Ingress-only default-deny, the message asks for Egress and names that policy."""
    write(
        tmp_path,
        "all.yaml",
        INGRESS_ONLY_DENY.format(ns="shop"),
        POD.format(name="web", ns="shop", role="web"),
    )
    (violation,) = check(tmp_path).violations
    message = violation.finding.message
    assert 'namespace "shop" has no default-deny network policy for Egress.' in message
    assert '"name":"default-deny-egress"' in message
    assert '"policyTypes":["Egress"]' in message


def test_a_namespace_with_no_workloads_and_no_default_deny_is_advisory(tmp_path: Path) -> None:
    """A new namespace alone is reported once as a warning; it does not fail the check."""
    write(tmp_path, "ns.yaml", NAMESPACE.format(ns="empty"))
    result = check(tmp_path)
    assert rows(result) == [
        ("require-default-deny", "enforce", "Namespace", "", "empty", "ns.yaml", 1, False)
    ]
    assert "pods created in it will be rejected" in result.violations[0].finding.message
    assert not result.has_enforced_violation


def test_objects_without_a_namespace_land_in_default(tmp_path: Path) -> None:
    """A pod and a default-deny without metadata.namespace both land in `default`: isolated."""
    pod = POD.format(name="web", ns="x", role="web").replace("  namespace: x\n", "")
    policy = DEFAULT_DENY.format(ns="x").replace(", namespace: x", "")
    write(tmp_path, "all.yaml", pod, policy)
    result = check(tmp_path)
    assert result.violations == []
    assert [(r.kind, r.namespace) for r in result.judged] == [
        ("Pod", "default"),
        ("NetworkPolicy", "default"),
    ]


def test_exempt_namespaces_are_not_judged(tmp_path: Path) -> None:
    """Objects in kube-system (exempt by default) produce no violation at all."""
    write(tmp_path, "sys.yaml", POD.format(name="proxy", ns="kube-system", role="''"))
    result = check(tmp_path)
    assert (result.resources, result.violations) == (1, [])


def test_allow_all_policy_is_a_warning_by_default(tmp_path: Path) -> None:
    """An allow-all rule is reported in warn mode and does not fail the check."""
    open_policy = (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        "metadata: {name: open, namespace: shop}\n"
        "spec: {podSelector: {}, ingress: [{}]}\n"
    )
    write(tmp_path, "np.yaml", open_policy)
    result = check(tmp_path)
    assert rows(result) == [
        ("restrict-allow-all", "warn", "NetworkPolicy", "shop", "open", "np.yaml", 1, False)
    ]
    assert "rule spec.ingress[0] admits all traffic" in result.violations[0].finding.message
    assert not result.has_enforced_violation


def test_configured_modes_apply(tmp_path: Path) -> None:
    """With require-role-labels in audit mode, its finding is kept but no longer enforced."""
    config = parse_config(
        {
            "policies": {
                "require-role-labels": {"mode": "audit"},
                "require-default-deny": {"mode": "off"},
            }
        },
        "test",
    )
    write(tmp_path, "pod.yaml", POD.format(name="web", ns="shop", role="''"))
    result = check(tmp_path, config)
    assert rows(result) == [
        ("require-role-labels", "audit", "Pod", "shop", "web", "pod.yaml", 1, False)
    ]


def test_notes_of_skipped_documents_are_returned(tmp_path: Path) -> None:
    """Documents that are not objects are not judged and come back as notes."""
    write(tmp_path, "values.yaml", "replicas: 3\n")
    result = check(tmp_path)
    assert (result.resources, result.violations) == (0, [])
    assert result.notes == [
        f"{tmp_path / 'values.yaml'}:1: skipped: not a Kubernetes object "
        "(no apiVersion and no kind)"
    ]


def test_stdin_objects_are_judged_with_the_files(tmp_path: Path) -> None:
    """Objects from `-` share the state of the files: a piped pod uses their default-deny."""
    path = write(tmp_path, "ns.yaml", DEFAULT_DENY.format(ns="shop"))
    stdin = io.BytesIO(POD.format(name="piped", ns="shop", role="''").encode())
    result = check_paths([path, "-"], default_config(), stdin=stdin)
    assert rows(result) == [
        ("require-role-labels", "enforce", "Pod", "shop", "piped", "<stdin>", 1, True)
    ]


def test_cluster_state_without_a_kubeconfig_is_bad_input(tmp_path: Path) -> None:
    """`--cluster` with a kubeconfig that does not exist is a clear error naming the file."""
    missing = str(tmp_path / "missing")
    with pytest.raises(GuardrailError) as info:
        check_paths(
            ["-"], default_config(), cluster=True, stdin=io.BytesIO(b""), kubeconfig=missing
        )
    assert str(info.value) == (
        f"{missing}: cannot load Kubernetes client configuration: "
        "Invalid kube-config file. No configuration found."
    )


def test_the_result_says_when_what_and_with_which_config(tmp_path: Path) -> None:
    """check_paths records for the report's header the time (UTC, ISO), the paths as given
    (`-` as standard input), the config file and its digest, and each policy's mode."""
    path = write(tmp_path, "ns.yaml", NAMESPACE.format(ns="shop"))
    config = parse_config({"policies": {"restrict-allow-all": {"mode": "audit"}}}, "c.yaml")
    result = check_paths(
        [path, "-"], config, stdin=io.BytesIO(b""), config_file="c.yaml", now=1_800_000_000.5
    )
    assert result.origin == Origin(
        generated="2027-01-15T08:00:00Z",
        command="check",
        sources=(path, "standard input"),
        config_file="c.yaml",
        config_digest=digest(config),
        modes=(
            ("require-role-labels", "enforce"),
            ("require-default-deny", "enforce"),
            ("protect-default-deny", "enforce"),
            ("restrict-allow-all", "audit"),
        ),
    )
    assert check_paths([path], default_config()).origin.config_file == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://10.0.0.1:6443", "https://10.0.0.1:6443"),
        ("https://admin:secret@api.example.com:6443/k8s", "https://api.example.com:6443/k8s"),
        ("https://token@[fd00::1]:6443", "https://[fd00::1]:6443"),
    ],
    ids=["plain", "user-and-password", "ipv6-user"],
)
def test_api_server_is_shown_without_credentials(url: str, shown: str) -> None:
    """A kubeconfig's server URL may carry a user or password: a report never shows them."""
    assert api_server(url) == shown
