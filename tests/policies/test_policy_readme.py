"""The README's table of rules is generated from the pack's metadata and must equal it."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.catalog import ALL_RULES, TABLE_HEADER, rules_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_generated_table_has_one_row_per_rule_with_its_metadata() -> None:
    lines = rules_table().splitlines()
    assert lines[0] == TABLE_HEADER
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]
    assert [r[0] for r in rows] == [f"`{rule.name}`" for rule in ALL_RULES]
    assert [(r[1], r[2], r[4]) for r in rows] == [(rule.domain, rule.level, rule.scope) for rule in ALL_RULES]
    assert all(len(r) == 6 for r in rows)


def test_readme_table_equals_the_generated_one() -> None:
    text = README.read_text() if README.exists() else ""
    if TABLE_HEADER not in text:
        pytest.skip("README.md has no policy table yet (the lead merges /tmp/readme-8.md)")
    lines = text[text.index(TABLE_HEADER) :].splitlines()
    table = []
    for line in lines:
        if not line.startswith("|"):
            break
        table.append(line)
    assert "\n".join(table) + "\n" == rules_table(), "regenerate it: python -m policies.catalog"
