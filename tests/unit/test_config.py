"""The configuration file: defaults, exact error paths, modes and exemptions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from webhook.config import (
    DEFAULT_EXEMPT_NAMESPACES,
    Config,
    OnError,
    canonical,
    default_config,
    digest,
    load_config,
    parse_config,
)
from webhook.policy.errors import ConfigError
from webhook.policy.model import Direction, Mode, Namespace, Operation, Request
from webhook.policy.rules.require_default_deny import DIRECTIONS
from webhook.policy.rules.require_role_labels import ALLOWED_VALUES, LABELS

SPEC_EXAMPLE = """\
mode: enforce
onError: deny
allowNamespaceModeLabel: false
exemptions:
  namespaces: [kube-system, kube-public, kube-node-lease, calico-system, calico-apiserver, tigera-operator]
  usernames: []
  groups: []
policies:
  require-role-labels: {labels: [app, role], allowedValues: {}}
  require-default-deny: {directions: [Ingress, Egress]}
  protect-default-deny: {}
  restrict-allow-all: {mode: warn}
"""


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_spec_example_equals_defaults(tmp_path: Path) -> None:
    """The SPEC's example config, which spells out every default, loads as the defaults."""
    assert load_config(_write(tmp_path, SPEC_EXAMPLE)) == default_config()


def test_digest_is_of_the_config_not_of_its_spelling(tmp_path: Path) -> None:
    """A file spelling out every default (comments, order and all) has the digest of no file;
    the digest is `sha256:` and 64 hex digits, as report headers print it."""
    data = yaml.safe_load(SPEC_EXAMPLE)
    reordered = dict(reversed(list(data.items())))
    shuffled = "# the defaults, reordered\n" + yaml.safe_dump(reordered, sort_keys=False)
    spelled = digest(load_config(_write(tmp_path, SPEC_EXAMPLE)))
    assert spelled == digest(default_config())
    assert digest(load_config(_write(tmp_path, shuffled))) == spelled
    assert spelled.startswith("sha256:")
    assert len(spelled) == len("sha256:") + 64
    assert canonical(default_config())["policies"]["restrict-allow-all"] == {"mode": "warn"}


@pytest.mark.parametrize(
    "changed",
    [
        {"mode": "warn"},
        {"onError": "allow"},
        {"allowNamespaceModeLabel": True},
        {"exemptions": {"namespaces": ["kube-system"]}},
        {"exemptions": {"usernames": ["ci"]}},
        {"policies": {"restrict-allow-all": {"mode": "enforce"}}},
        {"policies": {"require-role-labels": {"labels": ["app", "role", "team"]}}},
        {"policies": {"require-role-labels": {"allowedValues": {"role": ["web"]}}}},
        {"policies": {"require-default-deny": {"directions": ["Ingress"]}}},
        {"audit": {"interval": "10m"}},
    ],
    ids=lambda changed: ".".join(str(k) for k in changed),
)
def test_digest_changes_with_any_setting(changed: dict[str, object]) -> None:
    """Every field of the config counts in its digest: a report names the config it used."""
    assert digest(parse_config(changed, "x")) != digest(default_config())


SHIPPED = (
    "require-role-labels",
    "require-default-deny",
    "protect-default-deny",
    "restrict-allow-all",
)


def test_defaults() -> None:
    """With no file, policies enforce except restrict-allow-all (warn); system namespaces exempt."""
    config = load_config(None)
    assert config.mode is Mode.ENFORCE
    assert config.on_error is OnError.DENY
    assert config.allow_namespace_mode_label is False
    assert {policy: config.modes[policy] for policy in SHIPPED} == {
        "require-role-labels": Mode.ENFORCE,
        "require-default-deny": Mode.ENFORCE,
        "protect-default-deny": Mode.ENFORCE,
        "restrict-allow-all": Mode.WARN,
    }
    assert set(DEFAULT_EXEMPT_NAMESPACES) | {"guardrail-system"} == config.exemptions.namespaces
    assert config.settings.get(LABELS) == ("app", "role")
    assert config.settings.get(DIRECTIONS) == (Direction.INGRESS, Direction.EGRESS)


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    """An empty config file means every default."""
    assert load_config(_write(tmp_path, "")) == default_config()


def test_global_mode_is_default_for_policies(tmp_path: Path) -> None:
    """`mode: audit` applies to every policy without its own mode; restrict-allow-all keeps warn."""
    config = load_config(_write(tmp_path, "mode: audit\n"))
    assert config.modes["require-role-labels"] is Mode.AUDIT
    assert config.modes["protect-default-deny"] is Mode.AUDIT
    assert config.modes["restrict-allow-all"] is Mode.WARN


def test_own_namespace_is_exempt(tmp_path: Path) -> None:
    """Guardrail's own namespace is exempt even when the list is replaced."""
    config = load_config(_write(tmp_path, "exemptions: {namespaces: [x]}\n"), own_namespace="gr")
    assert config.exemptions.namespaces == {"x", "gr"}
    assert config.settings.exempt_namespaces == {"x", "gr"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "policies:\n  require-role-labels:\n    mode: block\n",
            "config.yaml: policies.require-role-labels.mode: must be one of enforce, warn, audit, off",
        ),
        ("mode: 3\n", "config.yaml: mode: must be one of enforce, warn, audit, off"),
        ("onError: ignore\n", "config.yaml: onError: must be one of deny, allow"),
        (
            "allowNamespaceModeLabel: yes please\n",
            "config.yaml: allowNamespaceModeLabel: must be true or false, not a string",
        ),
        ("- a\n- b\n", "config.yaml: must be a mapping, not a list"),
        (
            "modes: enforce\n",
            "config.yaml: modes: unknown field (expected one of allowNamespaceModeLabel, audit, exemptions, mode, onError, policies)",
        ),
        ("policies: {require-labels: {}}\n", "config.yaml: policies.require-labels: unknown field"),
        (
            "exemptions: {namespaces: kube-system}\n",
            "config.yaml: exemptions.namespaces: must be a list of strings, not a string",
        ),
        (
            "exemptions: {usernames: [alice, 7]}\n",
            "config.yaml: exemptions.usernames[1]: must be a string, not a number",
        ),
        (
            "policies: {require-role-labels: {labels: [app, '']}}\n",
            "config.yaml: policies.require-role-labels.labels[1]: must not be empty",
        ),
        (
            "policies: {require-role-labels: {allowedValues: {tier: [a]}}}\n",
            "config.yaml: policies.require-role-labels.allowedValues.tier: label 'tier' is not in",
        ),
        (
            "policies: {require-default-deny: {directions: [Ingress, Sideways]}}\n",
            "config.yaml: policies.require-default-deny.directions[1]: must be one of Ingress, Egress",
        ),
        (
            "policies: {protect-default-deny: {labels: [a]}}\n",
            "config.yaml: policies.protect-default-deny.labels: unknown field (expected one of mode)",
        ),
        ("mode: [unclosed\n", "config.yaml:2: invalid YAML"),
        (b"mode: \xff\xfe\n", "config.yaml: not UTF-8 text"),
    ],
    ids=[
        "bad-policy-mode",
        "mode-not-string",
        "bad-onerror",
        "bool-as-string",
        "top-not-mapping",
        "unknown-top-field",
        "unknown-policy",
        "namespaces-not-list",
        "username-not-string",
        "empty-label",
        "allowed-values-unknown-label",
        "bad-direction",
        "unknown-policy-field",
        "yaml-syntax",
        "not-utf8",
    ],
)
def test_errors_name_the_path(tmp_path: Path, text: str | bytes, expected: str) -> None:
    """Each invalid config is rejected with `file: json.path: what is wrong`."""
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value).replace(str(tmp_path) + "/", "")
    assert message.startswith(expected)


def test_missing_file(tmp_path: Path) -> None:
    """A config path that does not exist names the path and the reason."""
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read: No such file"):
        load_config(tmp_path / "nope.yaml")


def test_huge_file(tmp_path: Path) -> None:
    """A config file over 1 MiB is refused before it is parsed."""
    with pytest.raises(ConfigError, match="larger than"):
        load_config(_write(tmp_path, "# x\n" * 300_000))


def test_allowed_values_and_directions(tmp_path: Path) -> None:
    """allowedValues and directions are read into the policy settings, duplicates dropped."""
    config = load_config(
        _write(
            tmp_path,
            (
                "policies:\n"
                "  require-role-labels: {labels: [app, role], allowedValues: {role: [web, db]}}\n"
                "  require-default-deny: {directions: [Egress, Egress]}\n"
            ),
        )
    )
    assert config.settings.get(ALLOWED_VALUES) == {"role": ("web", "db")}
    assert config.settings.get(DIRECTIONS) == (Direction.EGRESS,)


def _ns(label: str | None) -> Namespace:
    return Namespace("shop", {"guardrail.dev/mode": label} if label else {})


@pytest.mark.parametrize(
    ("allow_label", "policy_mode", "label", "expected"),
    [
        (False, "enforce", "audit", Mode.ENFORCE),
        (True, "enforce", "audit", Mode.AUDIT),
        (True, "enforce", "warn", Mode.WARN),
        (True, "audit", "warn", Mode.AUDIT),
        (True, "enforce", "off", Mode.ENFORCE),
        (True, "enforce", "enforce", Mode.ENFORCE),
        (True, "off", "audit", Mode.OFF),
        (True, "enforce", None, Mode.ENFORCE),
    ],
    ids=[
        "label-ignored-by-default",
        "relax-to-audit",
        "relax-to-warn",
        "never-tighten",
        "off-not-allowed",
        "enforce-label-noop",
        "off-stays-off",
        "no-label",
    ],
)
def test_namespace_mode_label(
    allow_label: bool, policy_mode: str, label: str | None, expected: Mode
) -> None:
    """The namespace label relaxes a policy only when allowed, and never tightens or disables."""
    config = parse_config(
        {
            "allowNamespaceModeLabel": allow_label,
            "policies": {"require-role-labels": {"mode": policy_mode}},
        },
        "config.yaml",
    )
    assert config.mode_for("require-role-labels", _ns(label)) is expected


def _request(
    namespace: str = "shop",
    username: str = "dev",
    groups: tuple[str, ...] = (),
    kind: str = "Pod",
    name: str = "web",
) -> Request:
    return Request(
        uid="u",
        kind=kind,
        group="",
        version="v1",
        namespace=namespace,
        name=name,
        operation=Operation.CREATE,
        username=username,
        groups=groups,
    )


@pytest.mark.parametrize(
    ("request_", "exempt"),
    [
        (_request(namespace="kube-system"), True),
        (_request(namespace="guardrail-system"), True),
        (_request(), False),
        (_request(username="ci-bot"), True),
        (_request(groups=("system:authenticated", "platform")), True),
        # An exempt name is a privilege (SPEC 3.2): a Namespace is never exempt by its name,
        # even with request.namespace set to it as the API server does.
        (_request(namespace="kube-system", kind="Namespace", name="kube-system"), False),
        (_request(namespace="", kind="Namespace", name="shop"), False),
    ],
    ids=[
        "system-namespace",
        "own-namespace",
        "ordinary",
        "username",
        "group",
        "namespace-object-never-by-its-name",
        "ordinary-namespace-object",
    ],
)
def test_exemptions(request_: Request, exempt: bool) -> None:
    """Exemptions match the request's namespace, username or groups, never object labels."""
    config = parse_config(
        {
            "exemptions": {
                "namespaces": ["kube-system"],
                "usernames": ["ci-bot"],
                "groups": ["platform"],
            }
        },
        "config.yaml",
    )
    assert config.exemptions.exempts(request_) is exempt


def test_enabled_policies_skips_off() -> None:
    """A policy in mode off is not evaluated at all."""
    config = parse_config({"policies": {"restrict-allow-all": {"mode": "off"}}}, "c")
    assert "restrict-allow-all" not in config.enabled_policies()
    assert isinstance(config, Config)


@pytest.mark.parametrize(
    ("request_", "claims"),
    [
        (_request(namespace="", kind="Namespace", name="tigera-operator"), True),
        (_request(namespace="", kind="Namespace", name="shop"), False),
        (
            _request(namespace="", kind="Namespace", name="tigera-operator", username="ci-bot"),
            False,
        ),
        (
            _request(
                namespace="", kind="Namespace", name="tigera-operator", groups=("system:masters",)
            ),
            False,
        ),
        (_request(namespace="tigera-operator", name="web"), False),
    ],
    ids=["tenant", "ordinary-name", "exempt-user", "system-masters", "not-a-namespace"],
)
def test_only_exempt_requesters_may_create_an_exempt_namespace(
    request_: Request, claims: bool
) -> None:
    """Creating a Namespace named in exemptions.namespaces is a privilege (SPEC 3.2)."""
    config = parse_config({"exemptions": {"usernames": ["ci-bot"]}}, "config.yaml")
    assert config.exemptions.claims_exempt_name(request_) is claims


def test_a_bare_off_is_the_off_mode(tmp_path: Path) -> None:
    """`mode: off` unquoted is what people write; YAML reads it as false, Guardrail as off."""
    path = tmp_path / "config.yaml"
    path.write_text("policies:\n  restrict-allow-all: {mode: off}\n")
    config = load_config(str(path))
    assert config.modes["restrict-allow-all"].value == "off"
