"""``platform``: the operator commands in one CLI (installed by ``pip install -e .``, see
pyproject.toml ``[project.scripts]``; the ``make`` targets call it).

    platform plan [--stack STACK] [--json FILE] [--diff BASE] [--quiet]
    platform diff BASE [--stack STACK] [--json FILE]
    platform dr --stack STACK --region REGION [--new-hub REGION | --stays-down] [--backfill-script FILE] [--inside STACK] [--json]
    platform deploy STACK [deploy options]        (platform deploy prod --help: its options)
    platform fleet [--json] [--kubeconfig PATH] [--prod-context C] [--staging-context C]
    platform bench [--repeats N]

Built on click (a well-kept CLI library: subcommands, ``--help``, usage errors with exit code
2). ``dr``, ``deploy`` and ``bench`` wrap the ``main`` functions of :mod:`infra.dr`,
:mod:`infra.deploy` and :mod:`infra.bench`, which keep their own argument parsing, so
``python -m infra.deploy`` and the others still work and the workflows need not change.

Exit codes: 0 success; 1 a mandatory policy fails (``plan``) or the wrapped command's own
failure codes (``deploy``: see ``platform deploy prod --help``); 2 a usage or configuration
error, always with a message and never a traceback.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from infra import config as cfg

ALL = "all"


def _stacks() -> list[str]:
    from infra import plan as plan_module

    return plan_module.available_stacks()


def _selected(stack: str, allow_all: bool = True) -> list[str]:
    """The stacks ``--stack`` names: one stack, or every stack file's for ``all`` (when
    ``allow_all``; a command about one stack, ``dr``, lists and takes only real stacks)."""
    stacks = _stacks()
    if stack == ALL and allow_all:
        return stacks
    if stack not in stacks:
        allowed = ", ".join([*stacks, ALL] if allow_all else stacks)
        reason = (
            "names every stack; this command takes one"
            if stack == ALL
            else f"has no stack file Pulumi.{stack}.yaml"
        )
        raise click.BadParameter(f'"{stack}" {reason}; expected one of: {allowed}', param_hint="--stack")
    return [stack]


def _writable(path: Path | None, option: str) -> None:
    """Refuse, before any work, a file that cannot be written (a missing folder, a folder)."""
    if path is None:
        return
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name", param_hint=option)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(
            f"cannot write {path}: the folder {parent} does not exist (create it first)", param_hint=option
        )


def _read_plan(path: Path) -> Any:
    """The saved plan at ``path``, refused (exit 2, the path and every problem named) when it is
    missing, not JSON, or not the shape ``platform plan --json`` writes."""
    from infra import plan_diff

    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise click.BadParameter(f"{path} does not exist", param_hint="BASE") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"cannot read the plan {path}: {exc}", param_hint="BASE") from None
    try:
        plan_diff.check_document(doc)
    except plan_diff.PlanFormatError as exc:
        problems = "".join(f"\n  {line}" for line in str(exc).splitlines())
        raise click.BadParameter(
            f"{path} is not a plan written by `platform plan --json`:{problems}", param_hint="BASE"
        ) from None
    return doc


def _build(stacks: Sequence[str]) -> list[Any]:
    """The plans of ``stacks``, after the checks across every stack file of the checkout."""
    from infra import plan as plan_module
    from infra import stackset

    try:
        stackset.check()  # across every stack file: clashes in one account, region mismatches
        return plan_module.build_plans(stacks)
    except (cfg.ConfigError, stackset.StackSetError) as exc:
        raise _Error(f"configuration error: {exc}") from None


def _write_json(path: Path, doc: Any) -> None:
    from infra import plan as plan_module

    try:
        path.write_text(plan_module.dumps(doc))
    except OSError as exc:
        raise _Error(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"wrote {path}", err=True)


class _Failed(click.ClickException):
    """A finished run whose outcome is a failure (exit 1), its reason already printed."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Error(click.ClickException):
    """A configuration or input error (exit 2, like click's own usage errors)."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(context_settings=CONTEXT)
def app() -> None:
    """The platform's operator commands: the offline plan and its diff, the DR runbook, the prod
    deploy, the fleet view and the benchmark. None of them changes the cloud except deploy."""


STACK_HELP = "a stack (Pulumi.<stack>.yaml) or 'all'"


@app.command(short_help="Offline plan: each stack's resources, highlights and policy results.")
@click.option("--stack", default=ALL, show_default=True, metavar="STACK", help=STACK_HELP)
@click.option(
    "--json",
    "json_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="also write the deterministic JSON plan (secrets redacted) to FILE",
)
@click.option(
    "--diff",
    "base",
    type=click.Path(path_type=Path),
    metavar="BASE",
    help="also print what changed against a saved JSON plan",
)
@click.option(
    "--quiet", is_flag=True, help="no tree; the policy check still runs and its failures are printed"
)
def plan(stack: str, json_file: Path | None, base: Path | None, quiet: bool) -> None:
    """Offline plan: each stack's resources, highlights and policy results.

    Runs the real program under Pulumi's mock runtime with the stack file's config: the
    program's desired state, not a diff against the live cloud (that is `pulumi preview`).
    Exits 1 if a mandatory policy fails, with or without --quiet.
    """
    from infra import plan as plan_module

    stacks = _selected(stack)
    _writable(json_file, "--json")
    base_doc = _read_plan(base) if base else None
    # A short-lived command: the collector's passes over the SDKs' many objects cost more than
    # the memory they would return before the process exits (see `make bench`).
    gc.disable()
    plans = _build(stacks)
    console = plan_module.make_console()
    violations = plan_module.render(plans, console, tree=not quiet)
    doc = plan_module.document(plans)
    if json_file:
        _write_json(json_file, doc)
    if base_doc is not None:
        text, _ = plan_module.render_diff(base_doc, doc)
        click.echo(text)
    if violations:
        raise _Failed(f"{violations} mandatory policy violation(s); the plan is not deployable")


@app.command(short_help="Offline plan diff against a saved JSON plan, replacements marked.")
@click.argument("base", type=click.Path(path_type=Path))
@click.option("--stack", default=ALL, show_default=True, metavar="STACK", help=STACK_HELP)
@click.option(
    "--json",
    "json_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="also write this checkout's JSON plan to FILE",
)
def diff(base: Path, stack: str, json_file: Path | None) -> None:
    """Offline plan diff against a saved JSON plan, replacements marked.

    Plans this checkout and compares it with BASE (a `platform plan --json` file) resource by
    resource (by URN) and list item by key: `+` create, `-` delete, `~` update, `+-` replace
    (and why). Policy results are `platform plan`'s job.
    """
    from infra import plan as plan_module

    stacks = _selected(stack)
    _writable(json_file, "--json")
    base_doc = _read_plan(base)
    gc.disable()
    doc = plan_module.document(_build(stacks))
    if json_file:
        _write_json(json_file, doc)
    text, _ = plan_module.render_diff(base_doc, doc)
    click.echo(text, nl=False)


@app.command(short_help="Disaster recovery: the ordered runbook for one lost region of a stack.")
@click.option("--stack", required=True, metavar="STACK", help="the stack (Pulumi.<stack>.yaml)")
@click.option("--region", metavar="REGION", help="the region to rebuild (one of the stack's regions)")
@click.option(
    "--new-hub", metavar="REGION", help="when the hub is lost: the surviving region to move Argo CD to"
)
@click.option("--stays-down", is_flag=True, help="a spoke that stays down: take it out of the stack")
@click.option(
    "--backfill-script",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="write the region's ECR backfill script to FILE (the runbook's backfill step)",
)
@click.option(
    "--inside",
    metavar="STACK",
    help="the stack whose runbook runs this one (its step prints this command): stay on its dr/ branch",
)
@click.option("--json", "as_json", is_flag=True, help="print targets, dependents and steps as JSON")
def dr(
    stack: str,
    region: str | None,
    new_hub: str | None,
    stays_down: bool,
    backfill_script: Path | None,
    inside: str | None,
    as_json: bool,
) -> None:
    """Disaster recovery: the ordered runbook for one lost region of a stack (docs/dr.md).

    A region that comes back: --region. A spoke that stays down: --stays-down. The hub that
    stays down: --new-hub REGION. Each step says where it runs from and how long it takes. The
    URNs come from running the program offline with the stack's config (infra/dr.py; also
    `python -m infra.dr plan`).
    """
    from infra import dr as dr_module

    _selected(stack, allow_all=False)
    if new_hub and stays_down:
        raise click.UsageError(
            "--new-hub and --stays-down exclude each other: --stays-down takes a lost spoke out of the "
            "stack, --new-hub moves a lost hub to a surviving region; give one of them"
        )
    if not region:
        try:
            regions = ", ".join(cfg.load_stack_file(stack).region_names)
        except cfg.ConfigError as exc:
            raise _Error(f"configuration error: {exc}") from None
        raise click.UsageError(
            f"--region is required: the region to rebuild; the regions of {stack} are: {regions}"
        )
    argv = ["plan", "--stack", stack, "--region", region]
    if new_hub:
        argv += ["--new-hub", new_hub]
    if stays_down:
        argv.append("--stays-down")
    if backfill_script is not None:
        _writable(backfill_script, "--backfill-script")
        argv += ["--backfill-script", str(backfill_script)]
    if inside:
        argv += ["--inside", inside]
    if as_json:
        argv.append("--json")
    _exit_with(dr_module.main(argv))


@app.command(
    short_help="Prod deploy: sync the Applications region by region, verified by staging.",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def deploy(args: tuple[str, ...]) -> None:
    """Prod deploy: sync the Applications region by region, verified by staging.

    Every argument goes to the deploy command (infra/deploy.py): `platform deploy prod --help` lists them.
    """
    from infra import deploy as deploy_module

    _exit_with(deploy_module.main(list(args)))


@app.command(short_help="Fleet view: both stacks' Applications, images, sync, health, canary, verified.")
@click.option("--stack", default="prod", show_default=True, metavar="STACK", help="the deployed stack")
@click.option(
    "--staging-stack",
    default="staging",
    show_default=True,
    metavar="STACK",
    help="the stack whose Applications verify the deployed stack's images",
)
@click.option(
    "--kubeconfig",
    metavar="PATH",
    help="kubeconfig holding both contexts (default: $KUBECONFIG or ~/.kube/config)",
)
@click.option(
    "--prod-context",
    "--context",
    "prod_context",
    metavar="CONTEXT",
    help="context of the deployed stack's hub (default: platform-<env>-<hub region>, as the deploy)",
)
@click.option(
    "--staging-context",
    metavar="CONTEXT",
    help="context of the staging hub (default: platform-<env>-<hub region>)",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON document instead of the table")
def fleet(
    stack: str,
    staging_stack: str,
    kubeconfig: str | None,
    prod_context: str | None,
    staging_context: str | None,
    as_json: bool,
) -> None:
    """Fleet view: for both stacks and every region, the image each Application would deploy and
    the one it runs, sync and health, the canary step, and whether prod's image is
    staging-verified (the deploy's own rule). Reads the hubs through the deploy's contexts, `get`
    only (infra/fleet.py, docs/deploy.md "Fleet view").

    Exit codes: 0 both hubs read; 2 usage or configuration error; 6 a hub could not be reached
    (it is named; the other hub's Applications are still shown).
    """
    from infra import fleet as fleet_module

    _exit_with(
        fleet_module.run(
            stack=stack,
            staging_stack=staging_stack,
            kubeconfig=kubeconfig,
            prod_context=prod_context,
            staging_context=staging_context,
            as_json=as_json,
        )
    )


@app.command(short_help="Benchmark: the plan against its floor, scaling, rebuild critical paths, set-up.")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="runs per timing; the median counts",
)
@click.option(
    "--no-setup", is_flag=True, help="leave out a fresh clone's set-up time and make test's peak memory"
)
def bench(repeats: int, no_setup: bool) -> None:
    """Benchmark: the plan against its floor, scaling, rebuild critical paths, set-up.

    Measured on this machine (several minutes; infra/bench.py, also `python -m infra.bench`).
    """
    from infra import bench as bench_module

    _exit_with(bench_module.main(["--repeats", str(repeats), *(["--no-setup"] if no_setup else [])]))


def _exit_with(code: int) -> None:
    if code:
        raise click.exceptions.Exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``platform`` console script; returns the exit code instead of raising SystemExit."""
    try:
        result = app.main(
            args=list(sys.argv[1:] if argv is None else argv), prog_name="platform", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
