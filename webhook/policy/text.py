"""Wording shared by the rules' messages: cutting a warning to fit, joining names."""

from __future__ import annotations

from collections.abc import Sequence

MESSAGE_SUMMARY_LIMIT = 119


def summarize(text: str, limit: int = MESSAGE_SUMMARY_LIMIT) -> str:
    """Cut text to fit a warning, at a word boundary when one is near, ending with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:  # a word boundary not too far back: keep whole words
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def fit(message: str, short: str) -> str:
    """The message itself when it fits a warning, else the purpose-built short text."""
    return message if len(message) <= MESSAGE_SUMMARY_LIMIT else summarize(short)


def and_join(names: Sequence[str]) -> str:
    """'Ingress', 'Ingress and Egress', 'a, b and c'."""
    names = [str(n) for n in names]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
