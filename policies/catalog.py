"""Every rule of the pack, in one ordered list, and the README table generated from it."""

from __future__ import annotations

from collections.abc import Sequence

from policies import ecr, eks, gitops, iam, network, tagging
from policies.engine import Rule

ALL_RULES: tuple[Rule, ...] = (
    *eks.RULES,
    *network.RULES,
    *ecr.RULES,
    *iam.RULES,
    *gitops.RULES,
    *tagging.RULES,
)

_APPLIES = {"all": "every stack", "prod": "prod", "non-prod": "every stack but prod"}
TABLE_HEADER = "| Rule | Domain | Enforcement | Stacks | Scope | What it checks |"


def rule(name: str) -> Rule:
    for r in ALL_RULES:
        if r.name == name:
            return r
    raise KeyError(name)


def rules_table(rules: Sequence[Rule] = ALL_RULES) -> str:
    """The Markdown table of the rules (README, "Policy pack"), generated so it cannot drift."""
    lines = [TABLE_HEADER, "| --- | --- | --- | --- | --- | --- |"]
    for r in rules:
        what = r.description.replace("|", "\\|")
        lines.append(
            f"| `{r.name}` | {r.domain} | {r.level} | {_APPLIES[r.applies_to]} | {r.scope} | {what} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m policies.catalog > table.md
    print(rules_table(), end="")
