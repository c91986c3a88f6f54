"""The `platform` CLI (infra/cli.py): one command with subcommands, its make aliases and README table."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from infra import bench, cli, config, deploy, dr, offline
from infra import plan as plan_module
from tests.conftest import ROOT, stack_config_map

README = (ROOT / "README.md").read_text()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env if env is not None else {"PATH": ""},
        check=False,
    )


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


# ---------------------------------------------------------------------------------------------
# Installed by the project, one command with subcommands
# ---------------------------------------------------------------------------------------------


def test_the_project_installs_the_platform_command_and_it_is_the_cli() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["platform"].partition(":")
    assert getattr(importlib.import_module(module), attr) is cli.main


def test_help_lists_exactly_the_operator_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert set(cli.app.commands) == {"plan", "diff", "dr", "deploy", "fleet", "bench"}
    for name in cli.app.commands:
        assert re.search(rf"^\s+{name}\s", result.stdout, re.M), result.stdout
        sub = _run(name, *(("prod",) if name == "deploy" else ()), "--help")
        assert sub.returncode == 0 and "usage" in sub.stdout.lower(), sub.stderr


def test_each_commands_help_and_usage_errors_name_the_platform_command() -> None:
    """`platform deploy --help` once said `usage: python -m infra.deploy`: every subcommand's usage
    line, and a usage error of the wrapped commands, names `platform <command>`."""
    for name in cli.app.commands:
        sub = _run(name, *(("prod",) if name == "deploy" else ()), "--help")
        usage = next(line for line in sub.stdout.splitlines() if line.lower().startswith("usage:"))
        assert usage.lower().startswith(f"usage: platform {name} "), usage
        assert "python -m" not in usage, usage
    wrong = _run("deploy", "prod", "--no-such-option")
    assert wrong.returncode == 2 and "platform deploy: error:" in wrong.stderr, wrong.stderr
    for module, prog in ((deploy, "platform deploy"), (dr, "platform dr"), (bench, "platform bench")):
        assert inspect.signature(module.main).parameters["prog"].default == prog, module.__name__


def _readme_commands() -> dict[str, tuple[str, str]]:
    section = README[README.index("### Commands") :]
    section = section[: section.index("\n### ", 5)]
    rows = re.findall(r"^\| `platform (\w+)` \|(.*?)\|(.*?)\|$", section, re.M)
    return {name: (alias.strip(), what.strip()) for name, alias, what in rows}


def test_the_readme_commands_table_matches_help() -> None:
    table = _readme_commands()
    assert set(table) == set(cli.app.commands)
    ctx = click.Context(cli.app, info_name="platform")
    for name, command in cli.app.commands.items():
        assert table[name][1] == command.get_short_help_str(limit=500), name
    makefile = (ROOT / "Makefile").read_text()
    for name, (alias, _) in table.items():
        for target in re.findall(r"`make ([\w-]+)", alias):
            recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
            assert recipe and f"platform {name}" in recipe.group(1), (target, name)
    assert cli.app.get_help(ctx)


# ---------------------------------------------------------------------------------------------
# The make targets are thin aliases that pass STACK and REGION only when given
# ---------------------------------------------------------------------------------------------


def _make_n(*args: str) -> str:
    out = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    [line] = [line for line in out.splitlines() if "platform " in line]
    return line


@pytest.mark.parametrize("stack", plan_module.available_stacks())
def test_make_plan_with_a_stack_plans_only_that_stack(stack: str) -> None:
    assert _make_n("plan", f"STACK={stack}").split()[1:] == ["plan", "--stack", stack]


def test_make_plan_alone_plans_every_stack() -> None:
    assert _make_n("plan").split()[1:] == ["plan", "--stack", "all"]


def _make_n_fails(*args: str) -> str:
    result = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "platform " not in result.stdout, result.stdout
    return result.stderr


@pytest.mark.parametrize("stack", plan_module.available_stacks())
def test_make_dr_requires_stack_and_region_and_runs_nothing_without_them(stack: str) -> None:
    """The Makefile's comment: dr uses STACK only when it is given, so `make dr` alone does not
    fall back to STACK's default; without REGION it says so too, before installing anything."""
    region = config.load_stack_file(stack).region_names[0]
    missing_stack = _make_n_fails("dr", f"REGION={region}")
    assert "make dr needs STACK=" in missing_stack
    assert all(s in missing_stack for s in plan_module.available_stacks())
    missing_region = _make_n_fails("dr", f"STACK={stack}")
    assert "make dr needs REGION=" in missing_region and f"Pulumi.{stack}.yaml" in missing_region
    assert _make_n("dr", f"STACK={stack}", f"REGION={region}").split()[1:] == [
        "dr",
        "--stack",
        stack,
        "--region",
        region,
    ]


# ---------------------------------------------------------------------------------------------
# plan: the policy check always runs; output never cut; clear errors
# ---------------------------------------------------------------------------------------------


def _failing_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stack_config_map("prod")
    raw["platform:argocd"]["sync"] = "automated"  # gitops-prod-manual-sync is mandatory
    monkeypatch.setattr(plan_module, "build_plans", lambda stacks: [offline.run("prod", flat_config=raw)])


@pytest.mark.parametrize("quiet", [True, False])
def test_a_mandatory_violation_fails_the_plan_with_or_without_quiet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], quiet: bool
) -> None:
    _failing_prod(monkeypatch)
    code = cli.main(["plan", "--stack", "prod", *(["--quiet"] if quiet else [])])
    out, err = capsys.readouterr()
    assert code == 1
    assert "gitops-prod-manual-sync" in out
    assert "mandatory policy violation" in err
    assert ("prod (environment prod" in out) is not quiet  # the tree only without --quiet


def test_plan_output_is_not_cut_at_80_columns_when_not_a_terminal() -> None:
    result = _run("plan", "--stack", "prod")  # stdout is a pipe, no $COLUMNS
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) > 80
    assert "…" not in result.stdout
    prod = config.load_stack_file("prod")
    for region in prod.region_names:
        assert f"platform-{prod.environment}-{region}" in result.stdout


def test_console_width_follows_columns_then_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Pipe:
        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.delenv("COLUMNS", raising=False)
    assert plan_module.make_console(Pipe()).width == plan_module.NOT_A_TERMINAL_WIDTH  # type: ignore[arg-type]
    monkeypatch.setenv("COLUMNS", "132")
    assert plan_module.make_console(Pipe()).width == 132  # type: ignore[arg-type]


def test_json_into_a_missing_folder_is_a_clear_error_before_planning(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "plan.json"
    result = _run("plan", "--stack", "prod", "--json", str(target))
    assert result.returncode == 2
    _no_traceback(result)
    assert f"the folder {target.parent} does not exist" in result.stderr
    assert "resources" not in result.stdout, "refused before any work"


def test_an_unknown_stack_names_the_stacks_there_are() -> None:
    result = _run("plan", "--stack", "nope")
    assert result.returncode == 2
    _no_traceback(result)
    for stack in plan_module.available_stacks():
        assert stack in result.stderr
    assert "Pulumi.nope.yaml" in result.stderr


def test_diff_of_a_missing_or_broken_base_is_a_clear_error(tmp_path: Path) -> None:
    result = _run("diff", str(tmp_path / "none.json"), "--stack", "prod")
    assert result.returncode == 2 and "does not exist" in result.stderr
    _no_traceback(result)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = _run("diff", str(broken), "--stack", "prod")
    assert result.returncode == 2 and "cannot read the plan" in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize(
    ("doc", "named"),
    [
        ([], "(the document): Input should be a valid dictionary"),
        (
            {"format": 1, "stacks": {"prod": {"resources": "all"}}},
            "stacks.prod.resources: Input should be a valid list",
        ),
        (
            {"format": 1, "stacks": {"prod": {"resources": [{"type": "aws:x", "name": "x"}]}}},
            "stacks.prod.resources[0].urn: Field required",
        ),
        ({"format": 99, "stacks": {}}, "format: 99 is not this checkout's plan format 1"),
    ],
    ids=["a list", "resources not a list", "a resource without urn", "another format"],
)
def test_diff_of_a_base_that_is_json_but_not_a_plan_is_a_clear_error(
    tmp_path: Path, doc: Any, named: str
) -> None:
    """Valid JSON of the wrong shape once ended in a KeyError/TypeError traceback in the diff."""
    base = tmp_path / "base.json"
    base.write_text(json.dumps(doc))
    result = _run("diff", str(base), "--stack", "prod")
    assert result.returncode == 2, result.stdout + result.stderr
    _no_traceback(result)
    assert f"{base} is not a plan written by `platform plan --json`:" in result.stderr, result.stderr
    assert named in result.stderr, result.stderr
    result = _run("plan", "--stack", "prod", "--quiet", "--diff", str(base))
    assert result.returncode == 2 and named in result.stderr, result.stderr
    _no_traceback(result)


def test_diff_against_its_own_plan_has_no_changes(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    assert cli.main(["plan", "--stack", "staging", "--quiet", "--json", str(base)]) == 0
    result = _run("diff", str(base), "--stack", "staging")
    assert result.returncode == 0, result.stderr
    assert "Stack staging: 0 to create, 0 to update, 0 to replace, 0 to delete" in result.stdout
    assert "No changes." in result.stdout


# ---------------------------------------------------------------------------------------------
# dr, deploy, bench: wrappers of the modules' main functions
# ---------------------------------------------------------------------------------------------


def test_dr_without_region_is_a_clear_error_naming_the_stacks_regions() -> None:
    result = _run("dr", "--stack", "prod")
    assert result.returncode == 2
    _no_traceback(result)
    for region in config.load_stack_file("prod").region_names:
        assert region in result.stderr


def test_dr_lists_only_real_stacks_and_refuses_all() -> None:
    stacks = plan_module.available_stacks()
    for bad in ("nope", cli.ALL):
        result = _run("dr", "--stack", bad, "--region", "x")
        assert result.returncode == 2
        _no_traceback(result)
        assert f"expected one of: {', '.join(stacks)}" in result.stderr
        assert f"{', '.join(stacks)}, {cli.ALL}" not in result.stderr
    # plan still takes all.
    with pytest.raises(click.BadParameter, match=f"{', '.join(stacks)}, {cli.ALL}"):
        cli._selected("nope")


@pytest.mark.parametrize("stack", plan_module.available_stacks())
def test_dr_refuses_new_hub_with_stays_down_as_exclusive(
    stack: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _record(monkeypatch, dr)
    regions = config.load_stack_file(stack).region_names
    for region in regions:
        args = ["dr", "--stack", stack, "--region", region, "--new-hub", regions[-1], "--stays-down"]
        assert cli.main(args) == 2
        assert "--new-hub and --stays-down exclude each other" in capsys.readouterr().err
    assert calls == []


def test_python_m_infra_dr_refuses_new_hub_with_stays_down() -> None:
    stack = plan_module.available_stacks()[0]
    regions = config.load_stack_file(stack).region_names
    args = ["plan", "--stack", stack, "--region", regions[-1], "--new-hub", regions[0], "--stays-down"]
    result = subprocess.run(
        [sys.executable, "-m", "infra.dr", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "not allowed with argument" in result.stderr, result.stderr


def _record(monkeypatch: pytest.MonkeyPatch, module: Any, code: int = 0) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake(argv: list[str] | None = None, **_: Any) -> int:
        calls.append(list(argv or []))
        return code

    monkeypatch.setattr(module, "main", fake)
    return calls


def test_dr_calls_the_runbook_with_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record(monkeypatch, dr)
    regions = config.load_stack_file("prod").region_names
    assert cli.main(["dr", "--stack", "prod", "--region", regions[0], "--new-hub", regions[1], "--json"]) == 0
    assert calls == [["plan", "--stack", "prod", "--region", regions[0], "--new-hub", regions[1], "--json"]]


def test_dr_passes_inside_through(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record(monkeypatch, dr)
    stacks = plan_module.available_stacks()
    stack, outer = stacks[0], stacks[-1]
    region = config.load_stack_file(stack).region_names[0]
    assert cli.main(["dr", "--stack", stack, "--region", region, "--inside", outer]) == 0
    assert calls == [["plan", "--stack", stack, "--region", region, "--inside", outer]]


@pytest.mark.parametrize("stack", plan_module.available_stacks())
def test_dr_inside_must_name_a_stack_whose_runbook_runs_this_one(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--inside names the stack whose runbook runs this one: a replica of this stack (its image
    source), for this stack's lost hub only; the error names the option, the bad value and what
    is allowed, before anything is built."""
    stacks = plan_module.available_stacks()
    own = config.load_stack_file(stack)
    outers = [s for s in stacks if s != stack and stack in dr.source_stacks(config.load_stack_file(s))]
    for bad in sorted({stack, "nope", *stacks} - set(outers)):
        assert dr.main(["plan", "--stack", stack, "--region", own.hub_region, "--inside", bad]) == 2
        err = capsys.readouterr().err
        assert "--inside" in err and bad in err and "Traceback" not in err
        if outers:
            assert err.rsplit("one of ", 1)[-1].strip().split(", ") == outers, err
        else:
            assert "none" in err, err
    for outer in outers:
        for spoke in own.spoke_regions:
            assert dr.main(["plan", "--stack", stack, "--region", spoke, "--inside", outer]) == 2
            assert "only for" in capsys.readouterr().err
        args = ["plan", "--stack", stack, "--region", own.hub_region, "--stays-down", "--inside", outer]
        assert dr.main(args) == 2 and "only for" in capsys.readouterr().err


def test_deploy_passes_every_argument_through_and_keeps_its_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _record(monkeypatch, deploy, code=3)
    assert cli.main(["deploy", "prod", "--dry-run", "--timeout", "60"]) == 3
    assert calls == [["prod", "--dry-run", "--timeout", "60"]]


def test_deploy_help_is_the_deploy_commands_own() -> None:
    result = _run("deploy", "prod", "--help")
    assert result.returncode == 0
    assert "--allow-unverified" in result.stdout and "--dry-run" in result.stdout


def test_bench_passes_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _record(monkeypatch, bench)
    assert cli.main(["bench", "--repeats", "2"]) == 0
    assert cli.main(["bench", "--no-setup"]) == 0
    assert calls == [["--repeats", "2"], ["--repeats", "5", "--no-setup"]]
    assert cli.main(["bench", "--repeats", "0"]) == 2


def test_python_m_infra_plan_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.plan", "--stack", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "Pulumi.nope.yaml" in result.stderr
