"""Small shared pieces of the policy model."""

from __future__ import annotations

import pytest

from webhook.policy.text import MESSAGE_SUMMARY_LIMIT, summarize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("short text", "short text"),
        ("x" * MESSAGE_SUMMARY_LIMIT, "x" * MESSAGE_SUMMARY_LIMIT),
        ("word " * 40, ("word " * 23).rstrip() + "…"),
        ("y" * 200, "y" * (MESSAGE_SUMMARY_LIMIT - 1) + "…"),
    ],
    ids=["fits", "exactly-the-limit", "cut-at-a-word", "no-space-to-cut-at"],
)
def test_summarize(text: str, expected: str) -> None:
    """Warnings stay under 120 characters, cut between words where possible, marked with …."""
    got = summarize(text)
    assert got == expected
    assert len(got) <= MESSAGE_SUMMARY_LIMIT
