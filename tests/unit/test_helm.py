"""The Helm chart (deploy/helm/guardrail) against what `kubectl kustomize` renders of deploy/:
the same webhooks, RBAC, pods, Service, PDB, NetworkPolicies and config with the default
values; exemptions feeding both the config and the selectors; values checked by the schema;
`helm lint` clean (SPEC 5)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm import CHART, NAMESPACE, Doc, run_helm, template
from webhook import registration
from webhook.config import REPORT_APIS, OnError, load_config, parse_config
from webhook.policy import RULES
from webhook.policy.model import Mode

REPO = Path(__file__).resolve().parents[2]
GUARDRAIL = str(Path(sys.executable).with_name("guardrail"))
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
SERVICE_ACCOUNT = ("guardrail", NAMESPACE)
VALUES = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
# The config file's top-level keys (webhook/config.py parse_config), each a value of the chart.
CONFIG_KEYS = ("mode", "onError", "allowNamespaceModeLabel", "exemptions", "policies", "audit")

# The certificate loop's rights (self-managed mode): get/update of its one Secret and its one
# webhook configuration, by name. deploy/ may grant them or not yet; the chart, in
# self-managed mode only, must.
# (namespace, or "" for cluster-wide; group; resource; verb; name, or "*" for any)
Grant = tuple[str, str, str, str, str]
CERTIFICATE_LOOP_GRANTS = frozenset(
    {
        (NAMESPACE, "", "secrets", "get", "guardrail-tls"),
        (NAMESPACE, "", "secrets", "update", "guardrail-tls"),
        ("", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "get", "guardrail"),
        (
            "",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "update",
            "guardrail",
        ),
    }
)

# What a failed comparison asks for: deploy/ is the reference, the chart follows it.
ALIGN = (
    "the chart no longer renders what deploy/ does: change deploy/helm/guardrail to match (for "
    "a change of how deploy/ handles certificates: templates/certificates.yaml, templates/rbac.yaml "
    "and the default of certificates.selfManaged.args in values.yaml)"
)


def _kustomize(directory: Path) -> list[Doc]:
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
def kustomized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    """`kubectl kustomize` of a copy of deploy/ (the default) and of its cert-manager overlay."""
    deploy = tmp_path_factory.mktemp("deploy") / "deploy"
    shutil.copytree(REPO / "deploy", deploy, ignore=shutil.ignore_patterns("tls", "helm"))
    prepare = REPO / "scripts" / "install-self-signed"
    overlay = (deploy / "overlays" / "self-signed" / "kustomization.yaml").read_text()
    if prepare.is_file() and "tls/" in overlay:
        # That overlay generates its Secret from certificates the admin's machine makes.
        done = subprocess.run(
            [str(prepare), "--prepare-only", "--deploy-dir", str(deploy)],
            env={"PATH": "/usr/bin:/bin", "GUARDRAIL": GUARDRAIL},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return {
        "self-managed": _kustomize(deploy),
        "cert-manager": _kustomize(deploy / "overlays" / "cert-manager"),
    }


@pytest.fixture(scope="module")
def charted() -> dict[str, list[Doc]]:
    """`helm template` of the chart with the default values, in each certificate mode."""
    return {
        "self-managed": template(),
        "cert-manager": template("--set", "certificates.mode=cert-manager"),
    }


MODES = ("self-managed", "cert-manager")


def _one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} rendered"
    return found[0]


def _config_map_name(name: str) -> str:
    """kustomize's configMapGenerator appends a hash of the content; the chart does not."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def _identity(doc: Doc) -> tuple[str, str, str]:
    name = doc["metadata"]["name"]
    if doc["kind"] == "ConfigMap":
        name = _config_map_name(name)
    return doc["kind"], doc["metadata"].get("namespace", ""), name


RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def _grants(docs: list[Doc], subject: tuple[str, str] = SERVICE_ACCOUNT) -> set[Grant]:
    """Every (namespace, group, resource, verb, name) the ServiceAccount is granted through
    the bindings rendered, however the rules are split into roles."""
    roles = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs
    }
    grants: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and (s["name"], s["namespace"]) == subject
            for s in binding["subjects"]
        ):
            continue
        namespace = binding["metadata"].get("namespace", "")
        ref = binding["roleRef"]
        role_namespace = namespace if ref["kind"] == "Role" else ""
        role = roles[(ref["kind"], role_namespace, ref["name"])]
        for rule in role["rules"]:
            grants.update(
                (namespace, group, resource, verb, name)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
                for name in rule.get("resourceNames", ["*"])
            )
    return grants


def _without_ca_bundle(webhooks: Iterable[Doc]) -> list[Doc]:
    stripped = copy.deepcopy(list(webhooks))
    for webhook in stripped:
        webhook["clientConfig"].pop("caBundle", None)
    return stripped


def _pod_spec(deployment: Doc) -> Doc:
    spec = copy.deepcopy(deployment["spec"])
    for volume in spec["template"]["spec"]["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = _config_map_name(volume["configMap"]["name"])
    # The chart's checksum/config, in place of kustomize's hash suffix.
    spec["template"]["metadata"].pop("annotations", None)
    return spec


def _config(docs: list[Doc]) -> Any:
    return yaml.safe_load(_one(docs, "ConfigMap")["data"]["config.yaml"])


# -- the same objects as deploy/ ----------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_chart_renders_the_objects_of_deploy(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]], mode: str
) -> None:
    """Every object of deploy/ but the Namespace (Helm needs the release namespace before the
    chart), and no other, RBAC aside (compared as grants below)."""
    ours = {_identity(d) for d in charted[mode] if d["kind"] not in RBAC_KINDS}
    theirs = {
        _identity(d)
        for d in kustomized[mode]
        if d["kind"] not in RBAC_KINDS and d["kind"] != "Namespace"
    }
    assert ours == theirs, ALIGN


@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_webhooks_are_those_of_deploy(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]], mode: str
) -> None:
    """Each webhook whole (name, rules, matchConditions, namespaceSelector, failurePolicy,
    sideEffects, timeoutSeconds, admissionReviewVersions, matchPolicy, the Service it calls)
    in the same order; the chart never carries a caBundle, which guardrail's certificate loop
    or cert-manager's cainjector keeps."""
    ours = _one(charted[mode], "ValidatingWebhookConfiguration", "guardrail")
    theirs = _one(kustomized[mode], "ValidatingWebhookConfiguration", "guardrail")
    assert ours["webhooks"] == _without_ca_bundle(ours["webhooks"])
    assert ours["webhooks"] == _without_ca_bundle(theirs["webhooks"])
    annotations = ours["metadata"].get("annotations", {})
    assert annotations == theirs["metadata"].get("annotations", {})
    if mode == "cert-manager":
        assert annotations == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/guardrail-serving"}


@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_rbac_grants_what_deploy_grants(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]], mode: str
) -> None:
    """The ServiceAccount gets deploy/'s rights exactly, plus in self-managed mode the
    certificate loop's get/update of its one Secret and one webhook configuration by name;
    every role rendered is bound; no wildcard, no other Secret."""
    ours = _grants(charted[mode])
    theirs = _grants(kustomized[mode])
    assert ours - CERTIFICATE_LOOP_GRANTS == theirs - CERTIFICATE_LOOP_GRANTS, ALIGN
    if mode == "self-managed":
        assert ours >= CERTIFICATE_LOOP_GRANTS
    else:
        assert not ours & CERTIFICATE_LOOP_GRANTS
    assert all("*" not in (group, resource, verb) for _, group, resource, verb, _ in ours)
    assert {name for _, _, resource, _, name in ours if resource == "secrets"} <= {"guardrail-tls"}
    roles = {
        (d["kind"], d["metadata"]["name"]) for d in charted[mode] if d["kind"].endswith("Role")
    }
    bound = {
        (d["roleRef"]["kind"], d["roleRef"]["name"])
        for d in charted[mode]
        if d["kind"].endswith("RoleBinding")
    }
    assert roles == bound


@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_deployment_is_that_of_deploy(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]], mode: str
) -> None:
    """The whole Deployment spec: replicas, strategy, selector, pod and container security
    contexts, args, ports, probes, resources, volumes, spread, priority, grace period."""
    ours = _one(charted[mode], "Deployment", "guardrail")
    theirs = _one(kustomized[mode], "Deployment", "guardrail")
    assert _pod_spec(ours) == _pod_spec(theirs), ALIGN
    assert ours["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Service", "guardrail"),
        ("PodDisruptionBudget", "guardrail"),
        ("NetworkPolicy", "guardrail"),
        ("NetworkPolicy", "guardrail-pod-callers"),
    ],
    ids=["service", "pdb", "api-server-policy", "pod-callers-policy"],
)
def test_service_pdb_and_network_policies_are_those_of_deploy(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]], kind: str, name: str
) -> None:
    """Service 443 → https, the PDB keeping one pod, the two NetworkPolicies: the same specs."""
    ours = _one(charted["self-managed"], kind, name)
    theirs = _one(kustomized["self-managed"], kind, name)
    assert ours["spec"] == theirs["spec"]


@pytest.mark.parametrize("mode", MODES, ids=MODES)
def test_config_is_that_of_deploy(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]], mode: str
) -> None:
    """config.yaml holds every key deploy/'s holds with the same value, and both load to the
    same configuration."""
    ours = _config(charted[mode])
    theirs = _config(kustomized[mode])
    assert {key: ours.get(key) for key in theirs} == theirs
    assert parse_config(ours, "chart") == parse_config(theirs, "deploy")


def test_cert_manager_objects_are_those_of_the_overlay(
    charted: dict[str, list[Doc]], kustomized: dict[str, list[Doc]]
) -> None:
    """The private CA chain and the serving certificate of deploy/overlays/cert-manager."""
    ours = {
        _identity(d): d["spec"]
        for d in charted["cert-manager"]
        if "cert-manager.io" in d["apiVersion"]
    }
    theirs = {
        _identity(d): d["spec"]
        for d in kustomized["cert-manager"]
        if "cert-manager.io" in d["apiVersion"]
    }
    assert ours == theirs
    assert len(ours) == 4


def test_self_managed_secret_is_created_empty(charted: dict[str, list[Doc]]) -> None:
    """In self-managed mode the chart creates guardrail-tls without data: the pods can mount it
    from the start, the loop fills it, and an upgrade has no data of its own to write back."""
    secret = _one(charted["self-managed"], "Secret", "guardrail-tls")
    assert "data" not in secret
    assert "stringData" not in secret
    assert not [d for d in charted["self-managed"] if "cert-manager.io" in d["apiVersion"]]
    assert not [d for d in charted["cert-manager"] if d["kind"] == "Secret"]


# -- values --------------------------------------------------------------------------------------
def _selector_values(docs: list[Doc]) -> dict[str, tuple[str, list[str]]]:
    webhooks = _one(docs, "ValidatingWebhookConfiguration", "guardrail")["webhooks"]
    found = {}
    for webhook in webhooks:
        (expression,) = webhook["namespaceSelector"]["matchExpressions"]
        assert expression["key"] == "kubernetes.io/metadata.name"
        found[webhook["name"]] = (expression["operator"], expression["values"])
    return found


@pytest.mark.parametrize(
    ("namespace", "exempt"),
    [
        (NAMESPACE, ["kube-system", "cert-manager", "monitoring"]),
        ("platform-guardrail", ["kube-system", "yes", "123", "platform-guardrail"]),
        ("guardrail", []),
    ],
    ids=["extra-namespaces", "other-release-namespace", "none"],
)
def test_exemptions_feed_config_and_every_selector(
    namespace: str, exempt: list[str], tmp_path: Path
) -> None:
    """exemptions.namespaces reaches the config as given and every namespaceSelector with the
    release namespace (but for exempt-namespace-names), sorted, `In` for exempt-namespace-names
    and `NotIn` for the others,
    exactly as `guardrail manifests webhook --namespace` renders from that config; the Service,
    certificate names and RBAC subjects follow the release namespace."""
    docs = template(
        "--set", "certificates.mode=cert-manager",
        values={"exemptions": {"namespaces": exempt}},
        namespace=namespace,
    )  # fmt: skip
    assert _config(docs)["exemptions"]["namespaces"] == exempt
    expected = sorted({*exempt, namespace})
    for name, (operator, values) in _selector_values(docs).items():
        reverse = name == "exempt-namespace-names.guardrail.dev"
        assert operator == ("In" if reverse else "NotIn")
        # The release namespace's creation is not judged (reinstalling must never be blocked).
        claimable = [n for n in expected if n != namespace] or ["none.guardrail.dev"]
        assert values == (claimable if reverse else expected), name
    config_file = tmp_path / "config.yaml"
    config_file.write_text(_one(docs, "ConfigMap")["data"]["config.yaml"])
    config = load_config(config_file, own_namespace=namespace)
    rendered = yaml.safe_load(registration.render(config, source=None, namespace=namespace))
    webhooks = _one(docs, "ValidatingWebhookConfiguration", "guardrail")["webhooks"]
    assert webhooks == rendered["webhooks"]
    serving = _one(docs, "Certificate", "guardrail-serving")["spec"]
    assert serving["dnsNames"] == [
        f"guardrail.{namespace}.svc",
        f"guardrail.{namespace}.svc.cluster.local",
    ]
    assert _grants(docs, ("guardrail", namespace))


def test_every_config_field_is_a_value() -> None:
    """values.yaml spells out each config key and each rule's mode and settings with their
    defaults, and the schema knows exactly those keys and the enums config.py accepts."""
    config = {key: VALUES[key] for key in CONFIG_KEYS}
    assert parse_config(config, "values.yaml") == parse_config({}, "defaults")
    properties = SCHEMA["properties"]
    assert set(properties["mode"]["enum"]) == {m.value for m in Mode}
    assert set(properties["onError"]["enum"]) == {o.value for o in OnError}
    assert set(properties["audit"]["properties"]["reportApi"]["enum"]) == set(REPORT_APIS)
    policies = properties["policies"]["properties"]
    assert set(VALUES["policies"]) == set(policies) == {rule.id for rule in RULES}
    for rule in RULES:
        keys = {setting.key for setting in rule.settings}
        assert set(policies[rule.id]["properties"]) == {"mode", *keys}, rule.id
        assert set(policies[rule.id]["properties"]["mode"]["enum"]) == {m.value for m in Mode}
        listed = VALUES["policies"][rule.id]
        for setting in rule.settings:
            assert listed[setting.key] == setting.spelled, (rule.id, setting.key)
        if rule.default_mode is None:
            # Unset, so that the top-level mode (e.g. --set mode=audit) applies to it.
            assert "mode" not in listed, rule.id
        else:
            assert listed["mode"] == rule.default_mode.value, rule.id


def test_config_values_reach_the_config_and_roll_the_pods(charted: dict[str, list[Doc]]) -> None:
    """Top-level mode, onError, the namespace label, requester exemptions, a policy's mode and
    settings and the audit land in config.yaml, which loads; the pods' checksum changes."""
    values = {
        "mode": "audit",
        "onError": "allow",
        "allowNamespaceModeLabel": True,
        "exemptions": {"usernames": ["ci-bot"], "groups": ["platform"]},
        "policies": {
            "require-role-labels": {"labels": ["app"], "allowedValues": {"app": ["web"]}},
            "require-default-deny": {"mode": "warn", "directions": ["Ingress"]},
        },
        "audit": {"interval": "10m", "reportApi": "openreports", "includePasses": True},
    }
    docs = template(values=values)
    config = _config(docs)
    assert config["mode"] == "audit"
    assert config["exemptions"]["usernames"] == ["ci-bot"]
    assert config["exemptions"]["namespaces"] == VALUES["exemptions"]["namespaces"]
    assert config["policies"]["require-role-labels"] == values["policies"]["require-role-labels"]
    loaded = parse_config(config, "chart")
    assert loaded.mode is Mode.AUDIT
    assert loaded.on_error is OnError.ALLOW
    assert loaded.allow_namespace_mode_label is True
    assert loaded.exemptions.groups == {"platform"}
    assert loaded.modes["require-default-deny"] is Mode.WARN
    # No mode of its own: the top-level one.
    assert loaded.modes["require-role-labels"] is Mode.AUDIT
    assert loaded.audit.interval_seconds == 600
    assert loaded.audit.report_api == "openreports"

    def checksum(rendered: list[Doc]) -> str:
        pod = _one(rendered, "Deployment", "guardrail")["spec"]["template"]
        return str(pod["metadata"]["annotations"]["checksum/config"])

    assert checksum(docs) != checksum(charted["self-managed"])


def test_deployment_values(charted: dict[str, list[Doc]]) -> None:
    """Replicas, image (digest over tag), resources, scheduling, the certificate loop's flags
    (self-managed only), extra flags and the client CA reach the Deployment."""
    digest = "sha256:" + "a" * 64
    values = {
        "replicas": 3,
        "image": {"repository": "registry.example.com/guardrail", "digest": digest},
        # Helm merges maps with the defaults: null removes a default (here the CPU limit).
        "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": None, "memory": "1Gi"}},
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {}},
        "podAnnotations": {"team": "platform"},
        "podLabels": {"tier": "admission"},
        "server": {"workers": 4, "threads": 4},
        "certificates": {"selfManaged": {"args": ["--cert-validity=720h"]}},
        "extraArgs": ["--log-format=json"],
        "clientCA": {"configMapName": "guardrail-client-ca"},
    }
    deployment = _one(template(values=values), "Deployment", "guardrail")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == f"registry.example.com/guardrail@{digest}"
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "system"}
    assert pod["spec"]["tolerations"] == values["tolerations"]
    assert pod["spec"]["affinity"] == values["affinity"]
    assert pod["metadata"]["annotations"]["team"] == "platform"
    assert pod["metadata"]["labels"] == {"app": "guardrail", "role": "webhook", "tier": "admission"}
    default = _one(charted["self-managed"], "Deployment", "guardrail")
    (default_container,) = default["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        *(a for a in default_container["args"] if not a.startswith(("--workers", "--threads"))),
        "--workers=4",
        "--threads=4",
        "--client-ca=/etc/guardrail/client-ca/ca.crt",
        "--cert-validity=720h",
        "--log-format=json",
    ]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts["/etc/guardrail/client-ca"]]["configMap"] == {
        "name": "guardrail-client-ca"
    }
    tagged = _one(
        template("--set", "image.tag=0.2.0", "--set", "certificates.mode=cert-manager",
                 values={"certificates": {"selfManaged": {"args": ["--unused"]}}}),
        "Deployment",
        "guardrail",
    )  # fmt: skip
    (tagged_container,) = tagged["spec"]["template"]["spec"]["containers"]
    assert tagged_container["image"] == "ghcr.io/guardrail-dev/guardrail:0.2.0"
    assert "--unused" not in tagged_container["args"]


def test_optional_objects_can_be_left_out() -> None:
    """networkPolicy.enabled and podDisruptionBudget.enabled false drop those objects; a
    cert-manager issuerRef of the admin's replaces the private CA chain."""
    docs = template(
        "--set", "networkPolicy.enabled=false",
        "--set", "podDisruptionBudget.enabled=false",
        "--set", "certificates.mode=cert-manager",
        values={"certificates": {"certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}}},
    )  # fmt: skip
    kinds = {d["kind"] for d in docs}
    assert not kinds & {"NetworkPolicy", "PodDisruptionBudget", "Issuer"}
    (certificate,) = [d for d in docs if d["kind"] == "Certificate"]
    assert certificate["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}
    assert certificate["spec"]["secretName"] == "guardrail-tls"
    narrowed = template(
        values={"networkPolicy": {"apiServerCIDRs": ["10.0.0.10/32"], "podCallers": []}}
    )
    assert [d["metadata"]["name"] for d in narrowed if d["kind"] == "NetworkPolicy"] == [
        "guardrail"
    ]
    policy = _one(narrowed, "NetworkPolicy", "guardrail")
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.10/32"}}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "mode=bogus"], "at '/mode': value must be one of 'enforce', 'warn', 'audit', 'off'"),
        (["--set", "onError=ignore"], "at '/onError': value must be one of 'deny', 'allow'"),
        (["--set", "certificates.mode=vault"], "at '/certificates/mode': value must be one of"),
        (["--set", "policies.require-role-labels.mode=never"], "at '/policies/require-role-labels/mode'"),
        (["--set", "policies.no-such-policy.mode=warn"], "additional properties 'no-such-policy' not allowed"),
        (["--set", "policies.require-default-deny.directions[0]=Sideways"], "/directions/0"),
        (["--set", "exemptions.namspaces[0]=x"], "additional properties 'namspaces' not allowed"),
        (["--set", "exemptions.namespaces[0]=Kube_System"], "'Kube_System' does not match pattern"),
        (["--set", "audit.interval=often"], "at '/audit/interval'"),
        (["--set", "webhook.timeoutSeconds=60"], "at '/webhook/timeoutSeconds'"),
        (["--set", "image.digest=latest"], "at '/image/digest'"),
        (["--set", "replicas=1"], "podDisruptionBudget.minAvailable (1) must be below replicas (1)"),
    ],
    ids=[
        "mode", "on-error", "certificate-mode", "policy-mode", "unknown-policy", "direction",
        "misspelt-key", "namespace-name", "audit-interval", "timeout", "digest", "pdb",
    ],
)  # fmt: skip
def test_bad_values_fail_at_template_time(args: list[str], message: str) -> None:
    """The schema (and the one cross-value check) reject bad values before anything is
    applied, naming the value's path."""
    done = run_helm("template", "guardrail", str(CHART), "--namespace", NAMESPACE, *args)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["--strict"], ["--strict", "--set", "certificates.mode=cert-manager"]],
    ids=["lint", "strict", "strict-cert-manager"],
)
def test_helm_lint_passes(args: list[str]) -> None:
    """`helm lint` finds nothing (--strict: not even a warning) in either certificate mode."""
    done = run_helm("lint", str(CHART), "--namespace", NAMESPACE, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout
    assert "[ERROR]" not in done.stdout
