"""``platform fleet``: both stacks, every region, in one table (or JSON for scripts).

For each Application of the promotion pair (staging and prod, every region of each stack file) it
shows the image the Application would deploy (its ``image.tag`` Helm parameter: what a sync
applies), the image Argo CD reports running (``status.summary.images``), sync and health, the
canary (every Rollout the Application manages, its phase, step and weight, read by the deploy's
own :func:`infra.deploy_model.rollout_states`), and for prod whether
that image is staging-verified, by the deploy's own rule (:func:`infra.deploy_model.verify`
against staging's Application of the same region, as :class:`infra.deploy.Deployer` does).

It reads the hubs exactly as the deploy does: the same kubeconfig contexts
(:func:`infra.deploy.default_context`, or ``--prod-context``/``--staging-context``), the same
client (:mod:`infra.deploy_kube`), and only ``get`` on ``applications.argoproj.io``: the staging
verifier role grants nothing else (infra/manifests/rbac.py). A hub that cannot be reached
(no context, no answer, 401/403) is named with its error; the other hub is still shown.

Exit codes: 0 both hubs read; 2 a usage or configuration error (nothing read); 6 a hub could
not be reached or refused a read (the rows of the other hub are still printed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra import naming
from infra.config import StackConfig
from infra.deploy import Stacks, UsageError, default_context, load_stacks
from infra.deploy_kube import Applications, HubError, KubeconfigError, connect
from infra.deploy_model import (
    SUSPENDED,
    ExitCode,
    ImageRef,
    RolloutState,
    desired_image,
    health_status,
    rollout_states,
    running_images,
    sync_status,
    verify,
)

Connect = Callable[[str, str | None, str], Applications]


@dataclass(frozen=True)
class Hub:
    """One stack's hub as the fleet view reached it (``error`` empty when every read worked)."""

    stack: str
    environment: str
    context: str
    error: str = ""

    @property
    def reachable(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class Row:
    """One Application. Images are ``<repository>:<tag>[@digest]`` without the registry host."""

    stack: str
    region: str
    application: str
    desired: str | None = None
    running: tuple[str, ...] = ()
    sync: str = "Unknown"
    health: str = "Unknown"
    canary: tuple[str, ...] = ()
    canary_aborted: bool = False
    # Prod only: True/False by the deploy's rule, None when it does not apply or is unknown.
    verified: bool | None = None
    verification: str = ""
    problem: str = ""  # why something is unknown: hub unreachable, no Application, no image.tag


@dataclass(frozen=True)
class Fleet:
    hubs: tuple[Hub, ...]
    rows: tuple[Row, ...] = field(default=())

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if all(h.reachable for h in self.hubs) else ExitCode.API_ERROR

    def document(self) -> dict[str, Any]:
        """The ``--json`` document: ``{"hubs": [...], "applications": [...], "exitCode": int}``."""
        hubs = [{**asdict(h), "reachable": h.reachable} for h in self.hubs]
        rows = [{**asdict(r), "running": list(r.running), "canary": list(r.canary)} for r in self.rows]
        return {"hubs": hubs, "applications": rows, "exitCode": int(self.exit_code)}


def _canary_text(rollouts: Sequence[RolloutState] | None, app_health: str) -> tuple[tuple[str, ...], bool]:
    if rollouts:
        return tuple(r.describe() for r in rollouts), any(r.aborted for r in rollouts)
    if rollouts is None and app_health == SUSPENDED:
        # Argo CD 3.x keeps resource health out of the Application by default; a Suspended
        # Application is what a paused canary looks like from the hub then.
        return ("paused (a Rollout is Suspended)",), False
    return (), False


def _image_text(image: ImageRef) -> str:
    return str(ImageRef(image.repository, image.tag, image.digest))


class _Reader:
    """Reads one hub, remembering the first failure that makes the hub unreachable."""

    def __init__(self, apps: Applications | None, error: str = "") -> None:
        self.apps = apps
        self.error = error

    def get(self, name: str) -> tuple[dict[str, Any] | None, str]:
        if self.apps is None or self.error:
            return None, "hub unreachable"
        try:
            return self.apps.get(name), ""
        except HubError as error:
            if error.not_found:
                return None, f"no Application {name} on the hub"
            self.error = str(error)
            return None, "hub unreachable"


def _row(
    config: StackConfig, region: str, reader: _Reader, stacks: Stacks
) -> tuple[Row, dict[str, Any] | None, ImageRef | None]:
    name = naming.application_name(config.application.name, config.environment, region)
    app, problem = reader.get(name)
    if app is None:
        return Row(config.stack, region, name, problem=problem), None, None
    image, why = desired_image(app, stacks.repository, stacks.service)
    running = tuple(sorted({_image_text(i) for i in running_images(app, stacks.repository)}))
    health = health_status(app)
    canary, aborted = _canary_text(rollout_states(app), health)
    row = Row(
        config.stack,
        region,
        name,
        desired=_image_text(image) if image else None,
        running=running,
        sync=sync_status(app),
        health=health,
        canary=canary,
        canary_aborted=aborted,
        problem=why or "",
    )
    return row, app, image


def read_fleet(
    stacks: Stacks,
    *,
    kubeconfig: str | None = None,
    prod_context: str | None = None,
    staging_context: str | None = None,
    connect_fn: Connect = connect,
) -> Fleet:
    """Read both hubs (staging first: prod's verification needs its Applications)."""
    readers: dict[str, _Reader] = {}
    hubs: list[Hub] = []
    rows: list[Row] = []
    staging_apps: dict[str, dict[str, Any]] = {}
    pairs = ((stacks.staging, staging_context), (stacks.deploy, prod_context))
    try:
        for config, context_flag in pairs:
            context = context_flag or default_context(config)
            try:
                reader = _Reader(connect_fn(config.environment, kubeconfig, context))
            except KubeconfigError as error:
                reader = _Reader(None, str(error))
            readers[config.stack] = reader
            for region in config.region_names:
                row, app, image = _row(config, region, reader, stacks)
                if config is stacks.staging:
                    if app is not None:
                        staging_apps[region] = app
                elif image is not None:
                    row = _verified(row, image, staging_apps.get(region), readers[stacks.staging.stack])
                rows.append(row)
            hubs.append(Hub(config.stack, config.environment, context, reader.error))
    finally:
        for reader in readers.values():
            if reader.apps is not None:
                reader.apps.close()
    return Fleet(tuple(hubs), tuple(rows))


def _verified(row: Row, image: ImageRef, staging_app: Mapping[str, Any] | None, staging: _Reader) -> Row:
    """Prod's image against staging's Application of the same region: the deploy's rule."""
    if staging_app is None:
        reason = "staging hub unreachable" if staging.error else f"staging has no Application in {row.region}"
        return _replace(row, verified=None if staging.error else False, verification=reason)
    result = verify(image, staging_app)
    return _replace(row, verified=result.verified, verification=result.reason)


def _replace(row: Row, **changes: Any) -> Row:
    return Row(**{**asdict(row), **changes})


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

_GOOD = {"Synced", "Healthy"}


def _style(value: str) -> str:
    if value in _GOOD:
        return f"[green]{escape(value)}[/]"
    if value in ("Degraded", "Missing", "Unknown"):
        return f"[bold red]{escape(value)}[/]"
    return f"[yellow]{escape(value)}[/]"


def _tag(text: str | None, repository: str) -> str:
    """An image as its tag (and digest) when it is the sentinel repository, to keep columns short."""
    if not text:
        return "-"
    return text[len(repository) + 1 :] if text.startswith(repository + ":") else text


def table(fleet: Fleet, repository: str) -> Table:
    result = Table(
        title=f"fleet: {repository} (images by tag)", box=box.SIMPLE, title_justify="left", show_lines=False
    )
    for column in ("Stack", "Region", "Desired", "Running", "Sync", "Health", "Canary", "Verified"):
        result.add_column(column, overflow="fold")
    for row in fleet.rows:
        if row.problem and row.desired is None and not row.running:
            result.add_row(row.stack, row.region, f"[bold red]{escape(row.problem)}[/]", "", "", "", "", "")
            continue
        running = ", ".join(_tag(r, repository) for r in row.running) or "-"
        desired = _tag(row.desired, repository) if row.desired else f"[red]{escape(row.problem)}[/]"
        if row.desired and row.running and row.running != (row.desired,):
            running = f"[yellow]{escape(running)}[/]"
        canary = "\n".join(escape(c) for c in row.canary) or "-"
        if row.canary_aborted:
            canary = f"[bold red]{canary}[/]"
        if row.verified is True:
            verified = "[green]yes[/]"
        elif row.verified is False:
            verified = f"[bold red]NO[/]: {escape(row.verification)}"
        else:
            verified = escape(row.verification) or "-"
        result.add_row(
            row.stack,
            row.region,
            escape(desired) if row.desired else desired,
            running if running.startswith("[") else escape(running),
            _style(row.sync),
            _style(row.health),
            canary,
            verified,
        )
    return result


def render(fleet: Fleet, repository: str, console: Console) -> None:
    console.print(table(fleet, repository))
    for hub in fleet.hubs:
        if hub.reachable:
            console.print(f"{hub.stack} hub: read through context {escape(hub.context)}")
        else:
            console.print(
                f"[bold red]{hub.stack} hub NOT REACHED[/] (context {escape(hub.context)}): {escape(hub.error)}"
            )


def run(
    *,
    stack: str = "prod",
    staging_stack: str = "staging",
    kubeconfig: str | None = None,
    prod_context: str | None = None,
    staging_context: str | None = None,
    as_json: bool = False,
    console: Console | None = None,
    connect_fn: Connect = connect,
) -> int:
    """The command: exit code 0, 2 or 6 (module docstring)."""
    console = console or Console()
    try:
        stacks = load_stacks(stack, staging_stack)
    except UsageError as error:
        console.print(f"[red]error:[/] {escape(str(error))}")
        return int(ExitCode.USAGE)
    fleet = read_fleet(
        stacks,
        kubeconfig=kubeconfig,
        prod_context=prod_context,
        staging_context=staging_context,
        connect_fn=connect_fn,
    )
    if as_json:
        console.print_json(json.dumps(fleet.document()))
    else:
        render(fleet, stacks.repository, console)
    return int(fleet.exit_code)
