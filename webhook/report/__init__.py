"""Report renderers: one module per `--format`, each a pure function of a check/audit result."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from webhook.policy.errors import GuardrailError
from webhook.report import html, json, junit, policyreport, sarif, text
from webhook.report.base import ReportInput, Resource

Renderer = Callable[[ReportInput], str]

RENDERERS: Mapping[str, Renderer] = {
    "text": text.render,
    "json": json.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "policyreport": policyreport.render,
    "html": html.render,
}
FORMATS = tuple(RENDERERS)


def render(result: ReportInput, fmt: str) -> str:
    """The result in the named format, as the text to print (ends with a newline if any)."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise GuardrailError(
            f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})"
        )
    return renderer(result)


__all__ = ["FORMATS", "RENDERERS", "ReportInput", "Resource", "render"]
