"""The README stays true to the code: its set-up commands, config keys and outputs."""

from __future__ import annotations

import re
import tomllib

from infra import config, naming
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_set_up_commands_and_the_makefile_has_them() -> None:
    first_block = README[README.index("```sh") : README.index("```", README.index("```sh") + 5)]
    assert "make plan" in first_block and "make test" in first_block
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^plan: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def _prerequisites(makefile: str, target: str) -> list[str]:
    m = re.search(rf"^{target}:([^\n]*)$", makefile, re.M)
    assert m, target
    return m.group(1).split()


def test_the_readmes_first_lines_say_what_make_plan_and_make_test_need_and_run() -> None:
    """Both set-up commands install helm and checkov (make plan runs the scanners, which scan the
    chart as helm renders it): the README's first lines and the Makefile's header say so, not
    "only Python and make" with helm "for the chart tests"."""
    makefile = (ROOT / "Makefile").read_text()
    header = makefile[: makefile.index("\n\n")]
    start = README.index("```sh")
    intro = README[README.rindex("\n\n", 0, start - 2) : start]  # the paragraph before the block
    block = README[start : README.index("```", start + 5)]
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f"Python {python.removeprefix('>=')}+" in intro
    plan = _prerequisites(makefile, "plan")
    test = [p for t in ("test", "lint", "typecheck") for p in _prerequisites(makefile, t)]
    for text in (intro, header):
        assert "for the chart tests" not in text and "nothing but" not in text, text
        if "$(HELM)" in plan and "$(HELM)" in test:
            assert all(word in text for word in ("npm", "unzip", "helm")), text
        if "$(CHECKOV)" in plan:
            assert "checkov" in text, text
    if "infra.scan" in makefile[makefile.index("\nplan:") :].split("\n\n")[0]:
        assert "scanners" in block.splitlines()[1] and "scanners" in header
        assert "zizmor" in intro and "zizmor" in header


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
