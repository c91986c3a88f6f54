"""The README stays true to the code: its set-up commands, config keys and outputs."""

from __future__ import annotations

import re

from infra import config, naming
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_set_up_commands_and_the_makefile_has_them() -> None:
    first_block = README[README.index("```sh") : README.index("```", README.index("```sh") + 5)]
    assert "make plan" in first_block and "make test" in first_block
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^plan: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_config_key_is_in_the_readme_table() -> None:
    documented = set(re.findall(r"^\| `platform:(\w+)` \|", README, re.M))
    assert documented == set(config.TOP_LEVEL_KEYS)


def test_every_stack_output_is_in_the_readme_table() -> None:
    outputs = {v for k, v in vars(naming).items() if k.startswith("OUTPUT_")}
    section = README[README.index("## Outputs") : README.index("## Operations")]
    documented = set(re.findall(r"^\| `(\w+)` \|", section, re.M))
    assert documented == outputs


def test_linked_documents_exist() -> None:
    for link in re.findall(r"\]\((docs/[\w.-]+\.md)", README):
        assert (ROOT / link).is_file(), link
