"""The policy layer stays pure: it imports the standard library and itself, nothing else.

import-linter (`make lint`) holds the contracts between Guardrail's own packages; this test holds
the part a list of forbidden modules cannot: no third-party import of any name in webhook/policy.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

POLICY = Path(__file__).resolve().parents[2] / "webhook" / "policy"


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_policy_imports_only_the_standard_library_and_itself() -> None:
    """Every import in webhook/policy is __future__, the standard library or webhook.policy."""
    wrong = [
        f"{path.relative_to(POLICY.parents[1])}:{line}: {module}"
        for path in sorted(POLICY.rglob("*.py"))
        for line, module in _imports(path)
        if module != "__future__"
        and module.split(".")[0] not in sys.stdlib_module_names
        and not (module == "webhook.policy" or module.startswith("webhook.policy."))
    ]
    assert wrong == []
