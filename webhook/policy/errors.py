"""The one root exception for problems that are the user's input's fault."""

from __future__ import annotations


class GuardrailError(Exception):
    """Bad input (a manifest, the config, a flag, a selector), with where it is wrong.

    `where` is `file:line`, `file: json.path` or similar; str() gives `where: message`.
    """

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ConfigError(GuardrailError):
    """The configuration file is invalid."""


class ManifestError(GuardrailError):
    """A manifest file cannot be read or parsed."""


def type_name(value: object, *, json: bool = False) -> str:  # noqa: PLR0911 - one return per JSON type
    """How an error message names the type of a value a user sent.

    YAML words by default ("a mapping", "a list"), as in config files and manifests; JSON words
    ("an object", "an array") for AdmissionReview bodies, which are JSON.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array" if json else "a list"
    if isinstance(value, dict):
        return "an object" if json else "a mapping"
    return type(value).__name__
