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
