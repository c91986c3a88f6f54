"""The deploy's command line: --help documents every option and exit code; usage and config
errors exit 2 before any hub is contacted; kubeconfig contexts by default and by flag."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from infra import naming
from infra.config import PROJECT_ROOT
from infra.deploy import UsageError, build_parser, default_context, default_user, load_stacks, main
from infra.deploy_model import ExitCode
from tests.unit.test_deploy_fakehub import Harness, write_kubeconfig


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def help_text() -> str:
    # The real entry point, as `make deploy-prod ARGS=--help` runs it.
    result = subprocess.run(
        [sys.executable, "-m", "infra.deploy", "prod", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_documents_every_option(help_text: str) -> None:
    options = [s for action in build_parser()._actions for s in action.option_strings]
    assert {
        "--dry-run",
        "--allow-unverified",
        "--yes",
        "--kubeconfig",
        "--prod-context",
        "--staging-context",
    } <= set(options)
    for option in options:
        assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", help_text), f"{option} missing from --help"
    for action in build_parser()._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings} has no help text"


def test_help_documents_every_exit_code(help_text: str) -> None:
    for code in ExitCode:
        assert re.search(rf"^\s+{int(code)}\s+\S", help_text, re.MULTILINE), (
            f"exit code {int(code)} undocumented"
        )


def test_help_documents_the_default_contexts(help_text: str) -> None:
    assert "aws eks update-kubeconfig --name platform-<env>-<hub region>" in " ".join(help_text.split())
    assert naming.cluster_name("prod", "us-west-2") in help_text


def test_default_contexts_are_the_update_kubeconfig_aliases() -> None:
    stacks = load_stacks("prod", "staging")
    assert default_context(stacks.deploy) == f"platform-prod-{stacks.deploy.hub_region}"
    assert default_context(stacks.staging) == f"platform-staging-{stacks.staging.hub_region}"


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, console=Console(file=out, width=300, color_system=None))
    return code, out.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuch"], "Pulumi.<stack>.yaml"),
        (["staging"], "sync by themselves"),
        (["prod", "--staging-stack", "prod"], "cannot verify its images against itself"),
    ],
)
def test_configuration_errors_exit_2(argv: list[str], message: str) -> None:
    code, output = run(argv)
    assert code == ExitCode.USAGE
    assert message in " ".join(output.split())


@pytest.mark.parametrize(
    "flags", [["--timeout", "0"], ["--poll-interval", "0.5"], ["--poll-interval", "x"], ["--no-such-flag"]]
)
def test_bad_flags_exit_2(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prod", *flags]) == ExitCode.USAGE
    assert "usage:" in capsys.readouterr().err


def test_a_missing_context_or_kubeconfig_exits_2_before_any_call(h: Harness, tmp_path: Path) -> None:
    h.seed()
    code, output = run(["prod", "--kubeconfig", str(h.kubeconfig), "--prod-context", "nope"])
    assert code == ExitCode.USAGE and "nope" in output
    code, output = run(["prod", "--kubeconfig", str(tmp_path / "absent")])
    assert code == ExitCode.USAGE
    assert h.prod.calls == [] and h.staging.calls == []


def test_explicit_contexts(h: Harness, tmp_path: Path) -> None:
    h.seed()
    kubeconfig = write_kubeconfig(tmp_path / "other", {"blue": h.prod.url, "green": h.staging.url})
    code, output = run(
        [
            "prod",
            "--dry-run",
            "--kubeconfig",
            str(kubeconfig),
            "--prod-context",
            "blue",
            "--staging-context",
            "green",
        ]
    )
    assert code == ExitCode.OK, output
    assert h.prod.calls and h.staging.calls


def test_swapped_contexts_find_no_prod_applications(h: Harness) -> None:
    h.seed()
    code, _ = run(
        [
            "prod",
            "--dry-run",
            "--kubeconfig",
            str(h.kubeconfig),
            "--prod-context",
            h.staging_context,
            "--staging-context",
            h.prod_context,
        ]
    )
    # Pointed at the staging hub, the deploy lists Applications as the verifier role, which may
    # only get: the hub refuses the call, the command stops, and nothing is touched.
    assert code == ExitCode.API_ERROR
    assert h.staging.touched() == []


def test_initiated_by_defaults_to_the_github_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert default_user() == "github:octocat"
    monkeypatch.delenv("GITHUB_ACTOR")
    assert default_user() and not default_user().startswith("github:")


# --------------------------------------------------------------------------------------------
# Stack pairs the command refuses to work with
# --------------------------------------------------------------------------------------------


def write_stacks(root: Path, prod: dict[str, Any], staging: dict[str, Any]) -> Path:
    for name, config in (("prod", prod), ("staging", staging)):
        (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    return root


def test_the_real_stack_pair_loads(
    prod_map: dict[str, Any], staging_map: dict[str, Any], tmp_path: Path
) -> None:
    stacks = load_stacks("prod", "staging", write_stacks(tmp_path, prod_map, staging_map))
    assert [t.region for t in stacks.targets] == prod_map["platform:deploy"]["regionOrder"]
    assert stacks.targets[0].staging_application == naming.application_name(
        "shop", "staging", stacks.targets[0].region
    )


def test_git_write_back_is_refused(
    prod_map: dict[str, Any], staging_map: dict[str, Any], tmp_path: Path
) -> None:
    # A write-back branch other than main (main itself is refused earlier, by the config: the
    # protect-main ruleset would reject every push); the deploy still refuses git write-back.
    prod_map["platform:imageUpdater"].update(writeBackMethod="git", gitBranch="image-updates")
    with pytest.raises(UsageError, match="Helm parameters"):
        load_stacks("prod", "staging", write_stacks(tmp_path, prod_map, staging_map))


def test_a_different_repository_prefix_is_refused(
    prod_map: dict[str, Any], staging_map: dict[str, Any], tmp_path: Path
) -> None:
    staging_map["platform:ecr"]["prefix"] = "store"
    with pytest.raises(UsageError, match="store/web"):
        load_stacks("prod", "staging", write_stacks(tmp_path, prod_map, staging_map))


def test_a_prod_region_staging_lacks_is_refused(
    prod_map: dict[str, Any], staging_map: dict[str, Any], tmp_path: Path
) -> None:
    # A spoke of staging that prod runs too.
    region = next(r for r in staging_map["platform:regions"] if r != staging_map["platform:hubRegion"])
    assert region in prod_map["platform:regions"]
    del staging_map["platform:regions"][region]
    order = (staging_map.get("platform:deploy") or {}).get("regionOrder") or []
    if region in order:
        order.remove(region)
    with pytest.raises(UsageError, match=f"no region {region}"):
        load_stacks("prod", "staging", write_stacks(tmp_path, prod_map, staging_map))


def test_the_deploy_prod_workflow_passes_only_flags_the_command_knows() -> None:
    workflow = PROJECT_ROOT / ".github" / "workflows" / "deploy-prod.yml"
    if not workflow.is_file():
        pytest.skip(f"{workflow} is absent")
    steps = yaml.safe_load(workflow.read_text())["jobs"]["deploy"]["steps"]
    scripts = [str(s.get("run", "")) for s in steps if "infra.deploy" in str(s.get("run", ""))]
    assert scripts, "no step of deploy-prod.yml runs python -m infra.deploy"
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", "\n".join(scripts)))
    known = {s for action in build_parser()._actions for s in action.option_strings}
    assert flags, "the workflow passes no flags"
    assert flags <= known, f"deploy-prod.yml passes flags the command does not know: {sorted(flags - known)}"
    args = build_parser().parse_args(["prod", "--kubeconfig", "k", "--context", "c", "--yes", "--dry-run"])
    assert args.prod_context == "c" and args.yes and args.dry_run
