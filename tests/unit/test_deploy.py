"""Static checks of what `kubectl kustomize` renders from each overlay of deploy/, and of the
Dockerfile: the security, availability and webhook settings the install promises (SPEC 5)."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.checkout import copy_as_cloned
from webhook import registration, selfcerts
from webhook.cli import main, serve
from webhook.config import load_config
from webhook.policy.selector import matches, parse_selector
from webhook.policy.workloads import is_workload
from webhook.server import GRACEFUL_TIMEOUT_SECONDS

REPO = Path(__file__).resolve().parents[2]
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NAMESPACE = "guardrail-system"
OVERLAYS = ("default", "self-signed", "cert-manager")
# The overlays that bring their own certificates; the default (the base) makes its own.
FILE_OVERLAYS = ("self-signed", "cert-manager")
# The `guardrail` of the scripts runs this checkout's code, as the tests do.
PYTHONPATH = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
WEBHOOK_NAMES = (
    "workloads.guardrail.dev",
    "networkpolicies.guardrail.dev",
    "namespaces.guardrail.dev",
    "exempt-namespace-names.guardrail.dev",
)

Doc = dict[str, Any]


def _render(directory: Path) -> list[Doc]:
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def fresh_deploy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/ of a fresh clone: what `kubectl apply -k deploy/` sees with no step before it."""
    return copy_as_cloned("deploy", tmp_path_factory.mktemp("fresh"))


@pytest.fixture(scope="module")
def deploy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/ with freshly generated certificates for the self-signed overlay
    (`scripts/install-self-signed --prepare-only`; never the checkout's own)."""
    deploy = copy_as_cloned("deploy", tmp_path_factory.mktemp("deploy"))
    done = subprocess.run(
        [
            str(REPO / "scripts" / "install-self-signed"),
            "--prepare-only",
            "--deploy-dir",
            str(deploy),
        ],
        env={"PATH": "/usr/bin:/bin", "GUARDRAIL": GUARDRAIL, **PYTHONPATH},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return deploy


@pytest.fixture(scope="module")
def rendered(fresh_deploy: Path, deploy_dir: Path) -> dict[str, list[Doc]]:
    """The default rendered from a fresh clone, each overlay from the prepared copy."""
    return {
        "default": _render(fresh_deploy),
        "self-signed": _render(deploy_dir / "overlays" / "self-signed"),
        "cert-manager": _render(deploy_dir / "overlays" / "cert-manager"),
    }


def _one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} rendered"
    return found[0]


def _all_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_strings(item)


# -- the Deployment ------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_pods_are_locked_down(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """Every container runs as a non-root UID, read-only, without privilege escalation or any
    capability, under the RuntimeDefault seccomp profile."""
    pod = _one(rendered[overlay], "Deployment", "guardrail")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod.get("hostNetwork") is not True
    assert pod.get("hostPID") is not True
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context.get("privileged") is not True, container["name"]
        assert context.get("runAsUser", 1) != 0, container["name"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_deployment_is_highly_available(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """2+ replicas spread over nodes and zones, a PodDisruptionBudget keeping one, a critical
    priority, Linux nodes only, and rollouts that never lower the serving count."""
    docs = rendered[overlay]
    deployment = _one(docs, "Deployment", "guardrail")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in pod["topologySpreadConstraints"]:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    pdb = _one(docs, "PodDisruptionBudget", "guardrail")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["minAvailable"] < spec["replicas"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_container_probes_resources_and_termination(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """Probes on /healthz and /readyz over HTTPS, a startup probe that waits out the master's
    list of a large cluster, requests and limits for CPU and memory, and a grace period longer
    than gunicorn's drain."""
    pod = _one(rendered[overlay], "Deployment", "guardrail")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/healthz"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        assert container[probe]["httpGet"]["port"] == container["ports"][0]["name"]
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) >= {"cpu", "memory"}, bound
    assert pod["terminationGracePeriodSeconds"] > GRACEFUL_TIMEOUT_SECONDS
    assert {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    } in container["env"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_config_and_certificates_are_mounted_for_reload(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """The config comes from the rendered ConfigMap and /tmp from a writable emptyDir. The
    default makes its own certificates (`--certificates=self-managed`): the certificate
    directory is a writable in-memory emptyDir the workers fill from the Secret. The overlays
    serve files (`--certificates=files`) from the whole Secret directory, read-only, no
    subPath, so rotation reaches the pod. The real `serve` accepts the rendered arguments."""
    docs = rendered[overlay]
    pod = _one(docs, "Deployment", "guardrail")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert all("subPath" not in m and "subPathExpr" not in m for m in mounts.values())
    config_map = _one(docs, "ConfigMap")
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
    assert "--config=/etc/guardrail/config/config.yaml" in container["args"]
    assert mounts["/etc/guardrail/config"]["name"] == "config"
    assert "--cert-dir=/etc/guardrail/tls" in container["args"]
    assert mounts["/etc/guardrail/tls"]["name"] == "tls"
    tls = {k: v for k, v in volumes["tls"].items() if k != "name"}
    params = serve.make_context("serve", container["args"][1:]).params
    assert params["cert_dir"] == "/etc/guardrail/tls"
    if overlay == "default":
        assert params["certificates"] == "self-managed"
        assert tls == {"emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
        assert mounts["/etc/guardrail/tls"].get("readOnly") is not True
    else:
        assert params["certificates"] == "files"
        assert tls == {"secret": {"secretName": "guardrail-tls", "defaultMode": 0o440}}
        assert mounts["/etc/guardrail/tls"]["readOnly"] is True
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]  # noqa: S108 - a path in the pod


def test_default_installs_from_a_fresh_clone(fresh_deploy: Path) -> None:
    """`kubectl kustomize deploy/` of a fresh clone (no overlays/self-signed/tls/, nothing
    generated first) renders the base: no step comes before `kubectl apply -k deploy/`."""
    assert not (fresh_deploy / "overlays" / "self-signed" / "tls").exists()
    kinds = {d["kind"] for d in _render(fresh_deploy)}
    assert {"Namespace", "Deployment", "Secret", "ValidatingWebhookConfiguration"} <= kinds
    # The copy really lacks what a step would have made: the alternative that needs one
    # (certificates from `guardrail certs` in overlays/self-signed/tls/) does not render.
    done = subprocess.run(
        [KUBECTL, "kustomize", str(fresh_deploy / "overlays" / "self-signed")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "tls.crt" in done.stderr


def test_default_keeps_its_certificates_in_an_empty_secret(
    rendered: dict[str, list[Doc]],
) -> None:
    """The default ships the Secret guardrail makes its certificates in (selfcerts.py) empty,
    so that a re-apply never overwrites what guardrail wrote, and no caBundle (guardrail
    writes it): the Secret, the webhook configuration, the Service and the namespace are
    the ones `serve --certificates=self-managed` writes and names."""
    docs = rendered["default"]
    secret = _one(docs, "Secret")
    assert secret["metadata"]["name"] == selfcerts.SECRET_NAME
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert secret["type"] == "Opaque"
    assert not secret.get("data")
    assert not secret.get("stringData")
    config = _one(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["name"] == selfcerts.WEBHOOK_CONFIGURATION
    assert "annotations" not in config["metadata"]  # no cert-manager injection either
    for webhook in config["webhooks"]:
        assert "caBundle" not in webhook["clientConfig"], webhook["name"]
    (container,) = _one(docs, "Deployment", "guardrail")["spec"]["template"]["spec"]["containers"]
    params = serve.make_context("serve", container["args"][1:]).params
    service = _one(docs, "Service")
    # The serving certificate names this Service (--service) in the pod's namespace.
    assert service["metadata"]["name"] == params["service"]
    assert service["metadata"]["namespace"] == NAMESPACE
    # The base's own lifetimes: 90 days for the serving certificate, 10 years for the CA.
    assert (params["cert_validity"], params["ca_validity"]) == ("90d", "3650d")
    assert selfcerts.CERT_VALIDITY.days == 90
    assert selfcerts.CA_VALIDITY.days == 3650


# -- the webhook configuration ------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_webhooks_fail_closed_fast_and_without_side_effects(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """Three webhooks under their stable names: Fail, None, Equivalent, v1, at most 5 s, the
    Service's port and /validate."""
    docs = rendered[overlay]
    config = _one(docs, "ValidatingWebhookConfiguration", "guardrail")
    service = _one(docs, "Service", "guardrail")
    assert tuple(w["name"] for w in config["webhooks"]) == WEBHOOK_NAMES
    for webhook in config["webhooks"]:
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["sideEffects"] == "None"
        assert webhook["matchPolicy"] == "Equivalent"
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert 1 <= webhook["timeoutSeconds"] <= 5
        assert webhook["clientConfig"]["service"] == {
            "name": "guardrail",
            "namespace": NAMESPACE,
            "path": "/validate",
            "port": service["spec"]["ports"][0]["port"],
        }


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_webhook_rules_name_exactly_what_the_policies_judge(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """No `*` group, version, resource or operation; workloads CREATE/UPDATE of every workload
    kind; network policies CREATE/UPDATE/DELETE; namespaces CREATE."""
    config = _one(rendered[overlay], "ValidatingWebhookConfiguration", "guardrail")
    matched: dict[str, set[tuple[str, str, str]]] = {}
    for webhook in config["webhooks"]:
        found = matched.setdefault(webhook["name"], set())
        for rule in webhook["rules"]:
            for field in ("apiGroups", "apiVersions", "resources", "operations"):
                assert "*" not in rule[field], (webhook["name"], field)
                # The one subresource: label changes through pods/status (SPEC 2.1).
                assert all("/" not in r or r == "pods/status" for r in rule["resources"])
            found.update(
                (g, r, o)
                for g in rule["apiGroups"]
                for r in rule["resources"]
                for o in rule["operations"]
            )
    workloads = {
        ("", "pods", "Pod"),
        ("", "replicationcontrollers", "ReplicationController"),
        ("apps", "deployments", "Deployment"),
        ("apps", "replicasets", "ReplicaSet"),
        ("apps", "statefulsets", "StatefulSet"),
        ("apps", "daemonsets", "DaemonSet"),
        ("batch", "jobs", "Job"),
        ("batch", "cronjobs", "CronJob"),
    }
    assert all(is_workload(group, kind) for group, _, kind in workloads)
    assert matched["workloads.guardrail.dev"] == {
        (g, r, o) for g, r, _ in workloads for o in ("CREATE", "UPDATE")
    } | {("", "pods/status", "UPDATE")}
    assert matched["networkpolicies.guardrail.dev"] == {
        (g, r, o)
        for g, r in (
            ("networking.k8s.io", "networkpolicies"),
            ("projectcalico.org", "networkpolicies"),
            ("projectcalico.org", "globalnetworkpolicies"),
            ("crd.projectcalico.org", "networkpolicies"),
            ("crd.projectcalico.org", "globalnetworkpolicies"),
            ("projectcalico.org", "tiers"),
            ("crd.projectcalico.org", "tiers"),
            ("policy.networking.k8s.io", "adminnetworkpolicies"),
            ("policy.networking.k8s.io", "baselineadminnetworkpolicies"),
            ("policy.networking.k8s.io", "clusternetworkpolicies"),
        )
        for o in ("CREATE", "UPDATE", "DELETE")
    }
    # UPDATE: a relabel can take a namespace out of the selector of what isolates it.
    assert matched["namespaces.guardrail.dev"] == {
        ("", "namespaces", "CREATE"),
        ("", "namespaces", "UPDATE"),
    }


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_namespace_selector_excludes_exactly_the_exempt_namespaces(
    rendered: dict[str, list[Doc]], overlay: str, tmp_path: Path
) -> None:
    """Each webhook's namespaceSelector excludes, by kubernetes.io/metadata.name, the config's
    exempt namespaces plus guardrail's own, and the rendered config loads cleanly."""
    docs = rendered[overlay]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(_one(docs, "ConfigMap")["data"]["config.yaml"])
    config = load_config(str(config_file), own_namespace=NAMESPACE)
    exempt = set(config.exemptions.namespaces) | {NAMESPACE}
    for webhook in _one(docs, "ValidatingWebhookConfiguration", "guardrail")["webhooks"]:
        (expression,) = webhook["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name"
        # The one webhook that sees only the exempt names: their creation is a privilege.
        reverse = webhook["name"] == "exempt-namespace-names.guardrail.dev"
        assert expression["operator"] == ("In" if reverse else "NotIn")
        # Guardrail's own namespace is not judged on creation: a configuration left behind by
        # a deleted namespace would otherwise block reinstalling guardrail.
        wanted = exempt - {NAMESPACE} if reverse else exempt
        assert set(expression["values"]) == wanted, webhook["name"]
        assert "objectSelector" not in webhook  # labels on the object could opt it out


BASE_CONFIG = "deploy/base/config.yaml"
BASE_WEBHOOK = "deploy/base/webhook.yaml"


def test_webhook_yaml_is_rendered_from_the_config() -> None:
    """deploy/base/webhook.yaml is exactly `guardrail manifests webhook` of deploy/base/config.yaml:
    the exempt namespaces are listed once, in the config (SPEC 3.2)."""
    config = load_config(REPO / BASE_CONFIG, own_namespace=NAMESPACE)
    expected = registration.render(config, source=BASE_CONFIG, namespace=NAMESPACE)
    found = (REPO / BASE_WEBHOOK).read_text()
    diff = "".join(
        difflib.unified_diff(
            found.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=BASE_WEBHOOK,
            tofile="rendered",
            n=1,
        )
    )
    assert found == expected, (
        f"{BASE_WEBHOOK} is out of step with {BASE_CONFIG} or with the template "
        f"webhook/templates/{registration.TEMPLATE}: run `make manifests`, never edit it by "
        f"hand.\n{diff[:3000]}"
    )


def _write_overlay(directory: Path, base: Path, config_text: str) -> Path:
    """An admin's own overlay as the README describes it: their config, and the selectors
    rendered from it as a patch by the CLI."""
    directory.mkdir()
    (directory / "config.yaml").write_text(config_text)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        # kustomize takes relative paths only.
        f"resources: [{os.path.relpath(base, directory)}]\n"
        "configMapGenerator:\n"
        "  - {name: guardrail-config, namespace: guardrail-system, behavior: replace,"
        " files: [config.yaml]}\n"
        "patches:\n"
        "  - path: namespace-selectors.yaml\n"
    )
    result = CliRunner().invoke(
        main,
        [
            "manifests",
            "webhook",
            "--config",
            str(directory / "config.yaml"),
            "--patch",
            "--out",
            str(directory / "namespace-selectors.yaml"),
        ],
    )
    assert result.exit_code == 0, result.output
    return directory


def test_selector_patch_moves_every_selector_of_an_overlay(
    deploy_dir: Path, rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    """An overlay whose config adds one exempt namespace and drops another, with the patch of
    `guardrail manifests webhook --patch`: all four selectors follow, and nothing else of the
    webhook configuration changes (caBundle, rules, order)."""
    config_text = (REPO / BASE_CONFIG).read_text().replace("tigera-operator]", "cert-manager]")
    assert "cert-manager]" in config_text
    overlay = _write_overlay(tmp_path / "mine", deploy_dir, config_text)
    docs = _render(overlay)
    webhooks = _one(docs, "ValidatingWebhookConfiguration", "guardrail")["webhooks"]
    base = _one(rendered["default"], "ValidatingWebhookConfiguration", "guardrail")["webhooks"]
    assert tuple(w["name"] for w in webhooks) == WEBHOOK_NAMES
    exempt = {"kube-system", "kube-public", "kube-node-lease", "calico-system"}
    exempt |= {"calico-apiserver", "cert-manager", NAMESPACE}
    for webhook, before in zip(webhooks, base, strict=True):
        (expression,) = webhook["namespaceSelector"]["matchExpressions"]
        (was,) = before["namespaceSelector"]["matchExpressions"]
        reverse = webhook["name"] == "exempt-namespace-names.guardrail.dev"
        wanted = exempt - {NAMESPACE} if reverse else exempt
        assert set(expression["values"]) == wanted, webhook["name"]
        assert (expression["key"], expression["operator"]) == (was["key"], was["operator"])
        assert {k: v for k, v in webhook.items() if k != "namespaceSelector"} == {
            k: v for k, v in before.items() if k != "namespaceSelector"
        }
    loaded = tmp_path / "loaded.yaml"
    loaded.write_text(_one(docs, "ConfigMap")["data"]["config.yaml"])
    config = load_config(loaded, own_namespace=NAMESPACE)
    assert set(config.exemptions.namespaces) == exempt


def test_manifests_check_reports_a_stale_file(tmp_path: Path) -> None:
    """`--check FILE` exits 0 for a file holding the same objects (comments aside), 1 with a
    diff for a stale one; a name that is no namespace name, or --out with --check, is bad
    input (2)."""
    args = ["manifests", "webhook", "--config", str(REPO / BASE_CONFIG)]
    good = tmp_path / "good.yaml"
    assert CliRunner().invoke(main, [*args, "--out", str(good)]).exit_code == 0
    assert CliRunner().invoke(main, [*args, "--check", str(good)]).exit_code == 0
    # The same objects under another header (the config's path typed otherwise) are in step.
    moved = tmp_path / "moved.yaml"
    moved.write_text(good.read_text().replace("--config ", "--config ./", 1))
    assert CliRunner().invoke(main, [*args, "--check", str(moved)]).exit_code == 0
    stale = tmp_path / "stale.yaml"
    stale.write_text(good.read_text().replace("            - tigera-operator\n", "", 1))
    result = CliRunner().invoke(main, [*args, "--check", str(stale)])
    assert result.exit_code == 1
    assert "+            - tigera-operator" in result.output
    both = CliRunner().invoke(main, [*args, "--out", str(good), "--check", str(good)])
    assert both.exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("exemptions: {namespaces: [kube-system, Kube_Public]}\n")
    result = CliRunner().invoke(main, ["manifests", "webhook", "--config", str(bad)])
    assert result.exit_code == 2
    assert "exemptions.namespaces: 'Kube_Public' is not a namespace name" in result.output


def test_rendered_names_stay_strings(tmp_path: Path) -> None:
    """Namespace names that YAML would read as a boolean or a number are quoted."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text("exemptions: {namespaces: ['yes', '123', 'off', kube-system]}\n")
    config = load_config(config_file, own_namespace="on")
    text = registration.render(config, source=str(config_file), namespace="on")
    document = yaml.safe_load(text)
    for webhook in document["webhooks"]:
        values = webhook["namespaceSelector"]["matchExpressions"][0]["values"]
        own = [] if webhook["name"] == "exempt-namespace-names.guardrail.dev" else ["on"]
        assert values == ["123", "kube-system", "off", *own, "yes"]
        assert webhook["clientConfig"]["service"]["namespace"] == "on"


def test_match_conditions_only_narrow_with_named_cel(rendered: dict[str, list[Doc]]) -> None:
    """The matchConditions are named CEL expressions on pods and on DELETEs, guarded with has()
    so that an absent field never turns into an evaluation error (which would fail closed)."""
    config = _one(rendered["default"], "ValidatingWebhookConfiguration", "guardrail")
    conditions = {w["name"]: w.get("matchConditions", []) for w in config["webhooks"]}
    assert [c["name"] for c in conditions["workloads.guardrail.dev"]] == [
        "not-a-mirror-pod",
        "pod-update-changes-labels",
    ]
    # No DELETE of a NetworkPolicy is skipped by its selector any more: a policy selecting only
    # some pods may be what isolates them (SPEC 2.6).
    assert [c["name"] for c in conditions["networkpolicies.guardrail.dev"]] == [
        "not-namespace-teardown",
    ]
    assert [c["name"] for c in conditions["namespaces.guardrail.dev"]] == [
        "create-or-labels-changed",
    ]
    for condition in conditions["workloads.guardrail.dev"]:
        assert condition["expression"].startswith("request.resource.resource != 'pods' ||")
    for condition in conditions["networkpolicies.guardrail.dev"]:
        assert condition["expression"].startswith("request.operation != 'DELETE' ||")
    for fields in re.findall(r"(?<!has\()\b(object|oldObject)\.metadata\.(\w+)", str(conditions)):
        assert fields[1] in ("labels", "annotations")


def test_self_signed_ca_bundle_is_the_generated_ca(rendered: dict[str, list[Doc]]) -> None:
    """The self-signed overlay's caBundle is the Secret's ca.crt, in every webhook, and the
    Secret (in place of the base's empty one: one Secret, of type kubernetes.io/tls) keeps its
    name (no hash) so that rotation updates it in place. The CA key is not in the cluster."""
    docs = rendered["self-signed"]
    secret = _one(docs, "Secret")
    assert secret["metadata"]["name"] == "guardrail-tls"
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    for webhook in _one(docs, "ValidatingWebhookConfiguration", "guardrail")["webhooks"]:
        assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]


def test_cert_manager_overlay_injects_its_ca(rendered: dict[str, list[Doc]]) -> None:
    """The cert-manager overlay issues guardrail-tls from a private CA for the Service's names
    and asks the cainjector for that CA; it carries no key material itself."""
    docs = rendered["cert-manager"]
    config = _one(docs, "ValidatingWebhookConfiguration", "guardrail")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/guardrail-serving"
    )
    serving = _one(docs, "Certificate", "guardrail-serving")["spec"]
    assert serving["secretName"] == "guardrail-tls"
    assert set(serving["dnsNames"]) == {
        f"guardrail.{NAMESPACE}.svc",
        f"guardrail.{NAMESPACE}.svc.cluster.local",
    }
    assert serving["issuerRef"]["name"] == "guardrail-ca"
    assert _one(docs, "Certificate", "guardrail-ca")["spec"]["isCA"] is True
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert all("caBundle" not in w["clientConfig"] for w in config["webhooks"])


def test_default_install_needs_no_custom_resource(rendered: dict[str, list[Doc]]) -> None:
    """`kubectl apply -k deploy/` uses built-in kinds only, so it works (and dry-runs) on a
    cluster without cert-manager."""
    groups = {d["apiVersion"].rpartition("/")[0] for d in rendered["default"]}
    assert groups <= {
        "",
        "apps",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
    }


# -- RBAC -----------------------------------------------------------------------------------------
READ = {"get", "list", "watch"}
REPORTS_WRITE = {"get", "list", "create", "update", "patch", "delete"}


def _grants(role: Doc) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in [*rule["apiGroups"], *rule["resources"], *rule["verbs"]]
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


def _rules_on(docs: list[Doc], group: str, resource: str) -> list[tuple[str, Doc]]:
    """Every rule of every Role and ClusterRole rendered that names `group`/`resource`."""
    return [
        (role["metadata"]["name"], rule)
        for role in docs
        if role["kind"] in ("Role", "ClusterRole")
        for rule in role["rules"]
        if group in rule["apiGroups"] and resource in rule["resources"]
    ]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_rbac_grants_only_what_guardrail_uses(rendered: dict[str, list[Doc]], overlay: str) -> None:
    """ClusterRole guardrail reads namespaces and network policies; guardrail-audit lists
    workloads and writes policy reports; the leader-election Role renews two Leases by name;
    the self-managed certificates get and update one Secret and one webhook configuration,
    by name (the overlays that bring their own certificates have neither). Nothing else: no wildcard, no other Secret, no create, list or watch of Secrets,
    no get or watch of workloads, no writes elsewhere."""
    docs = rendered[overlay]
    # Overlays with certificates of their own (files) get none of the loop's rights.
    loop = overlay == "default"
    roles = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"].endswith("Role")}
    assert roles == {
        ("ClusterRole", "guardrail"),
        ("ClusterRole", "guardrail-audit"),
        ("Role", "guardrail-leader-election"),
    } | (
        {("ClusterRole", "guardrail-webhook-ca"), ("Role", "guardrail-certificates")}
        if loop
        else set()
    )
    assert _grants(_one(docs, "ClusterRole", "guardrail")) == {
        ("", "namespaces"): READ,
        ("networking.k8s.io", "networkpolicies"): READ,
        ("projectcalico.org", "networkpolicies"): READ,
        ("projectcalico.org", "globalnetworkpolicies"): READ,
        ("crd.projectcalico.org", "networkpolicies"): READ,
        ("crd.projectcalico.org", "globalnetworkpolicies"): READ,
        ("projectcalico.org", "tiers"): READ,
        ("crd.projectcalico.org", "tiers"): READ,
        ("policy.networking.k8s.io", "adminnetworkpolicies"): READ,
        ("policy.networking.k8s.io", "baselineadminnetworkpolicies"): READ,
        ("policy.networking.k8s.io", "clusternetworkpolicies"): READ,
    }
    workloads = {
        ("", "pods"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
    }
    assert _grants(_one(docs, "ClusterRole", "guardrail-audit")) == {
        **{workload: {"list"} for workload in workloads},
        ("wgpolicyk8s.io", "policyreports"): REPORTS_WRITE,
        ("wgpolicyk8s.io", "clusterpolicyreports"): REPORTS_WRITE,
        ("openreports.io", "reports"): REPORTS_WRITE,
        ("openreports.io", "clusterreports"): REPORTS_WRITE,
    }
    role = _one(docs, "Role", "guardrail-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    create, renew = role["rules"]
    assert create == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["create"],
    }
    assert renew == {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["guardrail-audit", selfcerts.LEASE_NAME] if loop else ["guardrail-audit"],
        "verbs": ["get", "update"],
    }
    if not loop:
        assert not _rules_on(docs, "", "secrets")
        assert not _rules_on(
            docs, "admissionregistration.k8s.io", "validatingwebhookconfigurations"
        )
        bindings = {
            (d["kind"], d["metadata"]["name"]) for d in docs if d["kind"].endswith("Binding")
        }
        assert bindings == {
            ("ClusterRoleBinding", "guardrail"),
            ("ClusterRoleBinding", "guardrail-audit"),
            ("RoleBinding", "guardrail-leader-election"),
        }
        return
    # The self-managed certificates: exactly the Secret and the webhook configuration that
    # selfcerts.py reads and writes, by name, get and update only. No other rule anywhere
    # names Secrets or webhook configurations.
    certificates = _one(docs, "Role", "guardrail-certificates")
    assert certificates["metadata"]["namespace"] == NAMESPACE
    assert _rules_on(docs, "", "secrets") == [
        (
            "guardrail-certificates",
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": [selfcerts.SECRET_NAME],
                "verbs": ["get", "update"],
            },
        )
    ]
    assert _rules_on(docs, "admissionregistration.k8s.io", "validatingwebhookconfigurations") == [
        (
            "guardrail-webhook-ca",
            {
                "apiGroups": ["admissionregistration.k8s.io"],
                "resources": ["validatingwebhookconfigurations"],
                "resourceNames": [selfcerts.WEBHOOK_CONFIGURATION],
                "verbs": ["get", "update"],
            },
        )
    ]
    assert not _rules_on(docs, "admissionregistration.k8s.io", "mutatingwebhookconfigurations")
    bindings = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"].endswith("Binding")}
    assert bindings == {
        ("ClusterRoleBinding", "guardrail"),
        ("ClusterRoleBinding", "guardrail-audit"),
        ("ClusterRoleBinding", "guardrail-webhook-ca"),
        ("RoleBinding", "guardrail-leader-election"),
        ("RoleBinding", "guardrail-certificates"),
    }
    for kind, name in bindings:
        binding = _one(docs, kind, name)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": kind.removesuffix("Binding"),
            "name": name,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "guardrail", "namespace": NAMESPACE}
        ]
        if kind == "RoleBinding":
            assert binding["metadata"]["namespace"] == NAMESPACE


def test_guardrail_namespace_is_restricted(rendered: dict[str, list[Doc]]) -> None:
    """guardrail-system enforces Pod Security `restricted`."""
    labels = _one(rendered["default"], "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# -- who can reach the webhook (the NetworkPolicies) ----------------------------------------------
WEBHOOK_PORT = 8443


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector's verdict on a set of labels (matchLabels and the four operators)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        verdict = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not verdict:
            return False
    return True


def _address_admits(peer: Mapping[str, Any], source: str) -> bool:
    if "ipBlock" not in peer:
        return False
    address = ipaddress.ip_address(source)
    block = peer["ipBlock"]
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _peer_admits(peer: Mapping[str, Any], source: str | tuple[str, Mapping[str, str]]) -> bool:
    """An ingress peer's verdict on a source: an address (matched by ipBlock only) or a pod,
    (namespace, labels) (matched by namespaceSelector/podSelector only; whether an ipBlock
    also matches pod addresses is the network plugin's choice, so it is not assumed here)."""
    if isinstance(source, str):
        return _address_admits(peer, source)
    if "ipBlock" in peer:
        return False
    namespace, labels = source
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": namespace}
        in_namespace = _selects(peer["namespaceSelector"], namespace_labels)
    else:
        in_namespace = namespace == NAMESPACE  # a podSelector alone: the policy's namespace
    return in_namespace and _selects(peer.get("podSelector", {}), labels)


def _admitted(
    docs: list[Doc], source: str | tuple[str, Mapping[str, str]], port: int = WEBHOOK_PORT
) -> list[str]:
    """The NetworkPolicies of guardrail-system that admit `source` to a guardrail pod's port."""
    pod = _one(docs, "Deployment", "guardrail")["spec"]["template"]["metadata"]["labels"]
    names = []
    for policy in (d for d in docs if d["apiVersion"] == "networking.k8s.io/v1"):
        if policy["kind"] != "NetworkPolicy":
            continue
        spec = policy["spec"]
        if policy["metadata"]["namespace"] != NAMESPACE or not _selects(spec["podSelector"], pod):
            continue
        for rule in spec.get("ingress", []):
            ports = rule.get("ports")
            if ports is not None and not any(p.get("port") == port for p in ports):
                continue
            peers = rule.get("from")
            if peers is None or any(_peer_admits(peer, source) for peer in peers):
                names.append(policy["metadata"]["name"])
                break
    return names


CALLERS = {
    "calico-apiserver (Calico 3.31+)": ("calico-system", {"apiserver": "true"}),
    "calico-apiserver (before 3.31)": ("calico-apiserver", {"apiserver": "true"}),
    "konnectivity agent (AKS)": ("kube-system", {"app": "konnectivity-agent"}),
    "konnectivity agent (GKE)": ("kube-system", {"k8s-app": "konnectivity-agent"}),
    "Prometheus": ("monitoring", {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"}),
}
NOT_CALLERS = {
    "a tenant's pod": ("shop", {"app": "web", "role": "frontend"}),
    "a tenant's pod labelled as calico-apiserver": ("shop", {"apiserver": "true"}),
    "a tenant's pod labelled as a konnectivity agent": ("shop", {"app": "konnectivity-agent"}),
    "a tenant's pod labelled as Prometheus": ("shop", {"app.kubernetes.io/name": "prometheus"}),
    "another kube-system pod": ("kube-system", {"k8s-app": "kube-dns"}),
    "a pod of guardrail's own namespace": (NAMESPACE, {"app": "other"}),
}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=OVERLAYS)
def test_network_policies_admit_the_callers_and_only_the_webhook_port(
    rendered: dict[str, list[Doc]], overlay: str
) -> None:
    """Every pod in guardrail-system is isolated for ingress; only 8443 is open; pod callers
    are admitted by namespace name and labels, other pods are not; the API server's policy
    admits addresses (every address until narrowed per cluster). Egress stays open."""
    docs = rendered[overlay]
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert {p["metadata"]["name"] for p in policies} == {"guardrail", "guardrail-pod-callers"}
    assert {p["apiVersion"] for p in policies} == {"networking.k8s.io/v1"}
    for policy in policies:
        assert policy["spec"]["podSelector"] == {}
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"]["ingress"]:
            assert rule["ports"] == [{"protocol": "TCP", "port": WEBHOOK_PORT}]
            assert rule["from"], "a rule without `from` admits every source"
    for caller, source in CALLERS.items():
        assert _admitted(docs, source) == ["guardrail-pod-callers"], caller
        assert _admitted(docs, source, port=9090) == [], caller
    for other, source in NOT_CALLERS.items():
        assert _admitted(docs, source) == [], other
    # The API server's addresses differ per cluster: open to all until an overlay narrows it.
    for address in ("10.0.0.10", "203.0.113.7", "2001:db8::1"):
        assert _admitted(docs, address) == ["guardrail"], address
        assert _admitted(docs, address, port=22) == [], address


def readme_block(first_line: str) -> str:
    """The README's fenced block whose first line starts with `first_line`: its examples are
    tested as written."""
    text = (REPO / "README.md").read_text()
    found = re.search(rf"^```\w*\n({re.escape(first_line)}.*?)^```$", text, re.M | re.S)
    assert found, f"README.md: no block starting with {first_line!r}"
    return found.group(1)


# The README's narrowing patch ("Who can reach the webhook"): three control-plane nodes at
# 10.0.0.10-10.0.0.12.
NARROWING_PATCH_FIRST_LINE = "# my-guardrail/api-server-cidrs.yaml"


def test_narrowed_api_server_policy_admits_only_the_control_plane(
    deploy_dir: Path, tmp_path: Path
) -> None:
    """With the README's narrowing patch in an overlay, the API server's policy admits the
    control plane's addresses only, and the pod callers keep their own policy."""
    overlay = tmp_path / "narrowed"
    overlay.mkdir()
    (overlay / "api-server-cidrs.yaml").write_text(readme_block(NARROWING_PATCH_FIRST_LINE))
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{os.path.relpath(deploy_dir, overlay)}]\n"
        "patches: [{path: api-server-cidrs.yaml}]\n"
    )
    docs = _render(overlay)
    for address in ("10.0.0.10", "10.0.0.11", "10.0.0.12"):
        assert _admitted(docs, address) == ["guardrail"], address
    for address in ("10.0.0.13", "10.0.0.9", "203.0.113.7", "2001:db8::1"):
        assert _admitted(docs, address) == [], address
    for caller, source in CALLERS.items():
        assert _admitted(docs, source) == ["guardrail-pod-callers"], caller


def _overlay(directory: Path, deploy: Path, body: str) -> Path:
    directory.mkdir()
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{os.path.relpath(deploy, directory)}]\n"
        + body.replace("DEPLOY", os.path.relpath(deploy, directory))
    )
    return directory


def _calico_verdict(policy: Doc, source: str | tuple[str, Mapping[str, str]], port: int) -> str:
    """The first matching rule's action of a Calico policy for a source, or "none" (the next
    policy decides). A pod's workload endpoint carries its labels plus Calico's own; an address
    that is no pod matches no rule whose source has a selector (and these rules all have one)."""
    if isinstance(source, str):
        assert all("selector" in rule["source"] for rule in policy["spec"]["ingress"])
        return "none"
    namespace, labels = source
    endpoint = {**labels, "projectcalico.org/orchestrator": "k8s"}
    endpoint["projectcalico.org/namespace"] = namespace
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    for rule in policy["spec"]["ingress"]:
        ports = rule.get("destination", {}).get("ports")
        if ports is not None and port not in ports:
            continue
        source_rule = rule["source"]
        if matches(parse_selector(source_rule["namespaceSelector"]), namespace_labels) and matches(
            parse_selector(source_rule["selector"]), endpoint
        ):
            return str(rule["action"])
    return "none"


def test_calico_component_denies_every_pod_but_the_callers(
    deploy_dir: Path, tmp_path: Path
) -> None:
    """deploy/components/calico-deny-pods: a Calico policy ahead of the Kubernetes ones allows
    the callers that are pods and denies every other pod; anything else (addresses) goes on to
    the Kubernetes policy `guardrail`. It replaces guardrail-pod-callers (one caller list)."""
    overlay = _overlay(
        tmp_path / "calico", deploy_dir, "components: [DEPLOY/components/calico-deny-pods]\n"
    )
    docs = _render(overlay)
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"guardrail", "guardrail-deny-pods"}
    calico = policies["guardrail-deny-pods"]
    assert calico["apiVersion"] == "projectcalico.org/v3"
    assert calico["metadata"]["namespace"] == NAMESPACE
    # Calico orders Kubernetes NetworkPolicies at 1000 in the default tier: this comes first.
    assert "tier" not in calico["spec"]
    assert calico["spec"]["order"] < 1000
    assert calico["spec"]["selector"] == "all()"
    assert calico["spec"]["types"] == ["Ingress"]
    actions = [rule["action"] for rule in calico["spec"]["ingress"]]
    assert actions == ["Allow", "Allow", "Allow", "Deny"]
    for caller, source in CALLERS.items():
        assert _calico_verdict(calico, source, WEBHOOK_PORT) == "Allow", caller
        assert _calico_verdict(calico, source, 9090) == "Deny", caller
    for other, source in NOT_CALLERS.items():
        assert _calico_verdict(calico, source, WEBHOOK_PORT) == "Deny", other
    assert _calico_verdict(calico, "10.0.0.10", WEBHOOK_PORT) == "none"
    assert _admitted(docs, "10.0.0.10") == ["guardrail"]


def test_client_ca_component_requires_the_api_servers_certificate(
    deploy_dir: Path, tmp_path: Path
) -> None:
    """deploy/components/client-ca: the container gets --client-ca on a file of the mounted
    ConfigMap directory (no subPath), the overlay's generated ConfigMap is the one mounted,
    and the real `serve` command accepts the rendered arguments."""
    overlay = _overlay(
        tmp_path / "client-ca",
        deploy_dir,
        "components: [DEPLOY/components/client-ca]\n"
        "configMapGenerator:\n"
        "  - {name: guardrail-client-ca, namespace: guardrail-system, files: [ca.crt]}\n",
    )
    ca_pem = (deploy_dir / "overlays" / "self-signed" / "tls" / "ca.crt").read_text()
    (overlay / "ca.crt").write_text(ca_pem)
    docs = _render(overlay)
    pod = _one(docs, "Deployment", "guardrail")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (flag,) = [a for a in container["args"] if a.startswith("--client-ca=")]
    ca_file = Path(flag.removeprefix("--client-ca="))
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    mount = mounts[str(ca_file.parent)]
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    volume = {v["name"]: v for v in pod["volumes"]}[mount["name"]]
    config_map = _one(docs, "ConfigMap", volume["configMap"]["name"])
    assert config_map["metadata"]["name"].startswith("guardrail-client-ca-")
    assert config_map["data"][ca_file.name] == ca_pem
    context = serve.make_context("serve", container["args"][1:])
    assert context.params["client_ca"] == str(ca_file)
    # The rest of the pod's hardening is untouched.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


# -- the image ------------------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_non_root_and_exec_form() -> None:
    """Two stages from a slim Python base, a numeric non-root USER, OCI labels, `guardrail`
    as the exec-form entrypoint, no HEALTHCHECK, and a build context of runtime files only."""
    text = (REPO / "Dockerfile").read_text()
    instructions = [
        line.split(maxsplit=1)
        for line in text.splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    verbs = [parts[0] for parts in instructions]
    assert verbs.count("FROM") == 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    assert "HEALTHCHECK" not in verbs
    (user,) = [parts[1] for parts in instructions if parts[0] == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user)
    assert 'ENTRYPOINT ["guardrail"]' in text
    assert re.search(r'^CMD \["serve", ', text, re.MULTILINE)
    assert "org.opencontainers.image.source" in text
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!webhook/"]


def test_no_exempt_name_to_judge_still_renders_a_valid_selector(tmp_path: Path) -> None:
    """With no exempt namespace but guardrail's own, the exempt-names webhook's `In` list
    (which the API server refuses empty) holds a value no namespace name can have."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text("exemptions: {namespaces: []}\n")
    config = load_config(config_file, own_namespace=NAMESPACE)
    document = yaml.safe_load(registration.render(config, source=None, namespace=NAMESPACE))
    selectors = {
        w["name"]: w["namespaceSelector"]["matchExpressions"][0]["values"]
        for w in document["webhooks"]
    }
    assert selectors["exempt-namespace-names.guardrail.dev"] == [registration.NO_NAMESPACE]
    assert selectors["workloads.guardrail.dev"] == [NAMESPACE]
