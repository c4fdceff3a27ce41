"""The registry: every rule, in the order reports and messages list them.

Adding a rule is its file `rules/<id>.py` (exporting `RULE`), its tests
`tests/unit/rules/test_<id>.py`, and its line here.
"""

from __future__ import annotations

from webhook.policy.rule import Rule
from webhook.policy.rules import (
    protect_default_deny,
    require_default_deny,
    require_role_labels,
    restrict_allow_all,
)

RULES: tuple[Rule, ...] = (
    require_role_labels.RULE,
    require_default_deny.RULE,
    protect_default_deny.RULE,
    restrict_allow_all.RULE,
)
