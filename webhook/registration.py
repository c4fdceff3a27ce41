"""The webhook configuration Guardrail is installed with, rendered from the config.

The exempt namespaces are configured once, in the config's `exemptions.namespaces` (SPEC 3.2);
every webhook's `namespaceSelector` follows from them. `deploy/base/webhook.yaml` is
`render(...)` of `deploy/base/config.yaml` (`guardrail manifests webhook`, `make manifests`), and
a test fails while the checked-in file is out of step. An admin who changes the exempt list in
an overlay of their own renders the selectors as a kustomize patch (`--patch`).

The template (templates/validatingwebhookconfiguration.yaml) is text, so that its comments reach
the rendered file: `${namespace}` becomes guardrail's namespace, and a line holding
`${exempt_namespace}` is repeated once per exempt namespace, sorted.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from importlib import resources
from typing import Any

import yaml

from webhook.config import OWN_NAMESPACE, Config
from webhook.policy.errors import ConfigError, GuardrailError

TEMPLATE = "validatingwebhookconfiguration.yaml"
_EXEMPT_NAMESPACE = "${exempt_namespace}"
# The exempt names whose creation is judged: all but guardrail's own, so that a webhook
# configuration left behind by a deleted namespace never blocks reinstalling guardrail
# (nothing would answer that call). With guardrail running, its namespace exists anyway.
_CLAIMABLE_NAMESPACE = "${claimable_namespace}"
# A label value no namespace name can be (namespace names have no dots).
NO_NAMESPACE = "none.guardrail.dev"
# A namespace name is a DNS-1123 label: anything else can never match a namespace, and could
# not be written into the template as a plain YAML scalar.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# DNS labels that YAML would read as something other than a string: written quoted.
_NOT_PLAIN = re.compile(r"[0-9].*|y|n|yes|no|on|off|true|false|null")


def exempt_namespaces(config: Config, source: str) -> tuple[str, ...]:
    """The namespaces every webhook leaves out: the config's exempt list (which holds
    guardrail's own namespace too), sorted so that the rendered file is stable."""
    names = sorted(config.exemptions.namespaces)
    for name in names:
        if not _DNS_LABEL.fullmatch(name):
            raise ConfigError(
                f"{name!r} is not a namespace name (a DNS-1123 label: lower-case letters,"
                " digits and '-', at most 63)",
                f"{source}: exemptions.namespaces",
            )
    return tuple(names)


def regenerate_command(source: str | None, namespace: str, *, patch: bool) -> str:
    """The command line that renders this output again (it heads the rendered file)."""
    words = ["guardrail", "manifests", "webhook"]
    if source is not None:
        words += ["--config", source]
    if namespace != OWN_NAMESPACE:
        words += ["--namespace", namespace]
    if patch:
        words.append("--patch")
    return " ".join(words)


def render(config: Config, *, source: str | None, namespace: str, patch: bool = False) -> str:
    """The ValidatingWebhookConfiguration for this config, or with `patch` only its webhooks'
    names and namespaceSelectors (a strategic-merge patch that kustomize applies by name)."""
    if not _DNS_LABEL.fullmatch(namespace):
        raise GuardrailError(f"{namespace!r} is not a namespace name", "--namespace")
    names = exempt_namespaces(config, source or "<defaults>")
    if namespace not in names:
        # load_config adds the namespace it is given; a Config built otherwise may lack it.
        names = tuple(sorted({*names, namespace}))
    full = _fill(names, namespace)
    command = regenerate_command(source, namespace, patch=patch)
    if patch:
        return _patch_header(command) + _selector_patch(full)
    return _header(command, namespace) + full


def _fill(names: Sequence[str], namespace: str) -> str:
    template = resources.files("webhook").joinpath("templates", TEMPLATE).read_text("utf-8")
    lines: list[str] = []
    for line in template.splitlines(keepends=True):
        if _EXEMPT_NAMESPACE in line:
            lines.extend(line.replace(_EXEMPT_NAMESPACE, _scalar(name)) for name in names)
        elif _CLAIMABLE_NAMESPACE in line:
            # `In` needs a value: with no exempt name to judge, one no namespace can have.
            claimable = [_scalar(name) for name in names if name != namespace] or [NO_NAMESPACE]
            lines.extend(line.replace(_CLAIMABLE_NAMESPACE, name) for name in claimable)
        else:
            lines.append(line)
    return string.Template("".join(lines)).substitute(namespace=_scalar(namespace))


def _scalar(name: str) -> str:
    return f'"{name}"' if _NOT_PLAIN.fullmatch(name) else name


def _header(command: str, namespace: str) -> str:
    return (
        "# GENERATED: do not edit by hand. Every namespaceSelector below lists the config's\n"
        f"# exemptions.namespaces and guardrail's own namespace ({namespace}); to change them,\n"
        "# change the config, then render this file again:\n"
        f"#   {command}\n"
        "#\n"
    )


def _patch_header(command: str) -> str:
    return (
        "# GENERATED: do not edit by hand. A kustomize patch (list it under `patches:` in your\n"
        "# overlay) that sets each webhook's namespaceSelector from the config's\n"
        "# exemptions.namespaces and guardrail's own namespace. Whenever the exempt list changes,\n"
        "# render it again:\n"
        f"#   {command}\n"
    )


def _selector_patch(full: str) -> str:
    document: dict[str, Any] = yaml.safe_load(full)
    patch = {
        "apiVersion": document["apiVersion"],
        "kind": document["kind"],
        "metadata": {"name": document["metadata"]["name"]},
        # Same order as the base: kustomize's strategic merge keeps the patch's order.
        "webhooks": [
            {"name": webhook["name"], "namespaceSelector": webhook["namespaceSelector"]}
            for webhook in document["webhooks"]
        ],
    }
    return yaml.safe_dump(patch, sort_keys=False, default_flow_style=False)
