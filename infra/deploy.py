"""``python -m infra.deploy prod``: promote to prod only what staging verified, one region at a time.

Prod's Applications never sync by themselves (``platform:argocd.sync: manual``): Argo CD Image
Updater moves their ``image.tag`` Helm parameter, and a person runs this command. It

1. lists the Applications the prod ApplicationSet generated on the prod hub (by the label
   ``naming.LABEL_APPLICATION_SET``) and checks there is one per region of
   ``platform:deploy.regionOrder``;
2. for every region, reads the image the Application would deploy and refuses unless staging's
   Application of the same region runs that image (repository path and tag, not the registry
   host) Synced and Healthy; ``--allow-unverified`` is the break-glass and needs the
   environment name typed (or ``--yes``);
3. then, region after region, re-reads and re-verifies the Application, requests a sync by
   patching its ``operation`` (conditional on the resourceVersion it verified), and waits with
   a progress display until Argo CD reports the sync Succeeded and the Application Synced and
   Healthy on the verified image, or the timeout passes;
4. stops at the first failure, leaving the later regions untouched, and prints a summary.

Everything goes through the Kubernetes API with the deployer/verifier roles of
infra/manifests/rbac.py (get, list, watch, patch on applications.argoproj.io in ``argocd``).
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from infra import naming, release_records
from infra.config import PROJECT_ROOT, ConfigError, StackConfig, load_stack_file
from infra.deploy_kube import Applications, HubError, KubeconfigError, connect
from infra.deploy_model import (
    Assessment,
    ExitCode,
    ImageRef,
    Outcome,
    Phase,
    Verification,
    assess,
    desired_image,
    exit_code,
    is_up_to_date,
    name_of,
    operation_in_progress,
    operation_patch,
    resource_version,
    sync_options,
    sync_revision,
    sync_sources,
    verify,
)

DEFAULT_POLL_INTERVAL = 5.0
# How often a conditional patch may lose the race against another writer (Image Updater, the
# application controller's status updates) before the deploy gives up on that region.
PATCH_ATTEMPTS = 3

Clock = Callable[[], float]
Sleep = Callable[[float], None]
InputFn = Callable[[str], str]
Connect = Callable[[str, str | None, str], Applications]

EXIT_CODES_HELP = """\
exit codes:
  0  every region synced and Healthy, or already up to date (a dry run: it would proceed)
  2  usage or configuration error: flags, stack file, kubeconfig or context
  3  refused: an image staging has not run Synced and Healthy, a missing Application or
     image.tag, an operation already running, or break-glass not confirmed; nothing changed
     in the refused region or after it
  4  failed: a sync failed, the Application went Degraded, a canary was aborted (its
     analysis failed: the summary names the service, step and metric) or paused on an
     inconclusive analysis (service and step; promote or abort it by hand); later regions
     untouched
  5  timed out: a sync did not finish Synced and Healthy in time (mid-canary: a Rollout not yet
     fully promoted); later regions untouched
  6  API error: a hub was unreachable or refused a call (401/403/5xx); later regions untouched
  130 interrupted (Ctrl-C); a sync already requested keeps running in Argo CD

contexts: the defaults are the aliases that
  aws eks update-kubeconfig --name platform-<env>-<hub region> --region <hub region> \\
      --alias platform-<env>-<hub region>
creates, e.g. platform-prod-us-west-2 and platform-staging-us-west-2.
"""


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 second, got {value}")
    return value


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 1 <= value <= 300:
        raise argparse.ArgumentTypeError(f"expected 1 to 300 seconds, got {text}")
    return value


def default_user() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"github:{actor}"
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


def build_parser(prog: str = "platform deploy") -> argparse.ArgumentParser:
    """The deploy command's options; ``prog`` is the command its usage and errors name."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Sync the stack's Argo CD Applications one region at a time (platform:deploy.regionOrder),\n"
            "refusing any image that staging's Application of the same region does not run Synced\n"
            "and Healthy. Talks only to the Kubernetes API of the two hubs; stops at the first failure."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", help="the stack to deploy (Pulumi.<stack>.yaml), e.g. prod")
    parser.add_argument(
        "--staging-stack",
        default="staging",
        metavar="STACK",
        help="the stack whose Applications verify the images (default: %(default)s)",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file holding both contexts (default: $KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument(
        "--prod-context",
        "--context",
        dest="prod_context",
        metavar="CONTEXT",
        help="kubeconfig context of the deployed stack's hub; --context is the same flag, as the "
        "deploy-prod workflow spells it (default: platform-<env>-<hub region>)",
    )
    parser.add_argument(
        "--staging-context",
        metavar="CONTEXT",
        help="kubeconfig context of the staging hub (default: platform-<staging env>-<hub region>)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read both hubs and print what would be synced; change nothing",
    )
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="break-glass: deploy images staging has not verified, after typing the environment name",
    )
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask for the typed confirmation that --allow-unverified needs (for CI)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        metavar="SECONDS",
        help="how long each Application may take to be Synced and Healthy "
        "(default: platform:deploy.timeoutSeconds)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_interval,
        default=DEFAULT_POLL_INTERVAL,
        metavar="SECONDS",
        help="longest wait between two progress checks, 1-300 (default: %(default)s)",
    )
    parser.add_argument(
        "--initiated-by",
        default=None,
        metavar="NAME",
        help="user name recorded in the sync operation (default: github:$GITHUB_ACTOR, else your login)",
    )
    return parser


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    stack: str
    staging_stack: str = "staging"
    kubeconfig: str | None = None
    prod_context: str | None = None
    staging_context: str | None = None
    dry_run: bool = False
    allow_unverified: bool = False
    yes: bool = False
    timeout: int | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    initiated_by: str | None = None


@dataclass(frozen=True)
class Target:
    region: str
    application: str
    staging_application: str


@dataclass(frozen=True)
class Decision:
    action: Literal["sync", "unchanged", "stop"]
    image: ImageRef | None
    detail: str
    verified: bool = False
    stop: Outcome = Outcome.REFUSED


@dataclass(frozen=True)
class RegionResult:
    region: str
    application: str
    image: str
    outcome: Outcome
    detail: str = ""
    seconds: float | None = None


@dataclass(frozen=True)
class Report:
    results: tuple[RegionResult, ...]
    exit_code: ExitCode
    message: str = ""


class UsageError(Exception):
    """Bad flags or configuration: exit code 2."""


@dataclass(frozen=True)
class Stacks:
    deploy: StackConfig
    staging: StackConfig
    targets: tuple[Target, ...]
    repository: str
    service: str

    @property
    def label_selector(self) -> str:
        app = naming.application_set_name(self.deploy.application.name, self.deploy.environment)
        return f"{naming.LABEL_APPLICATION_SET}={app}"


def load_stacks(stack: str, staging_stack: str, root: Path = PROJECT_ROOT) -> Stacks:
    try:
        deploy = load_stack_file(stack, root)
        staging = load_stack_file(staging_stack, root)
    except ConfigError as error:
        raise UsageError(str(error)) from error
    if deploy.argocd.sync != "manual":
        raise UsageError(
            f"stack {stack}: its Applications sync by themselves (platform:argocd.sync is "
            f"{deploy.argocd.sync}); this command deploys a manual-sync stack such as prod"
        )
    if deploy.image_updater.write_back_method != "argocd":
        raise UsageError(
            f"stack {stack}: Image Updater writes tags to Git (platform:imageUpdater.writeBackMethod "
            "git); this command reads them from the Applications' Helm parameters (write-back argocd)"
        )
    if deploy.environment == staging.environment:
        raise UsageError(f"stack {stack} cannot verify its images against itself ({staging_stack})")
    repository = naming.repository_name(deploy.ecr.prefix, deploy.sentinel_service)
    staging_repository = naming.repository_name(staging.ecr.prefix, staging.sentinel_service)
    if repository != staging_repository:
        # Replication keeps repository names, so prod runs staging's repositories by the same path.
        raise UsageError(
            f"stack {stack} deploys {repository} but {staging_stack} runs {staging_repository}: "
            "platform:ecr.prefix and platform:sentinelService must match across the promotion pair"
        )
    missing = [r for r in deploy.deploy.region_order if r not in staging.region_names]
    if missing:
        raise UsageError(
            f"stack {staging_stack} has no region {', '.join(missing)} to verify {stack}'s images against"
        )
    app = deploy.application.name
    targets = tuple(
        Target(
            region=region,
            application=naming.application_name(app, deploy.environment, region),
            staging_application=naming.application_name(
                staging.application.name, staging.environment, region
            ),
        )
        for region in deploy.deploy.region_order
    )
    return Stacks(deploy, staging, targets, repository, deploy.sentinel_service)


def default_context(config: StackConfig) -> str:
    """The alias `aws eks update-kubeconfig --alias platform-<env>-<hub>` gives the hub's context."""
    return naming.cluster_name(config.environment, config.hub_region)


class Deployer:
    """One run of the deploy; all collaborators injected so tests drive it with fakes of the
    Kubernetes API only, a fake clock and scripted answers."""

    def __init__(
        self,
        *,
        stacks: Stacks,
        prod: Applications,
        staging: Applications,
        options: Options,
        console: Console,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        input_fn: InputFn = input,
        deploy_id: str | None = None,
        records: release_records.Records | None = None,
    ) -> None:
        self.stacks = stacks
        # GitHub deployments per region (infra/release_records.py); none when not configured.
        self.records = records or release_records.NoRecords()
        self.prod = prod
        self.staging = staging
        self.options = options
        self.console = console
        self.clock = clock
        self.sleep = sleep
        self.input_fn = input_fn
        self.deploy_id = deploy_id or uuid.uuid4().hex[:12]
        self.timeout = float(options.timeout or stacks.deploy.deploy.timeout_seconds)
        self.username = options.initiated_by or default_user()
        # Break-glass: the unverified image each region's confirmation was given for.
        self.confirmed: dict[str, ImageRef] = {}

    @property
    def environment(self) -> str:
        return self.stacks.deploy.environment

    # -- deciding ------------------------------------------------------------------------------

    def decide(self, target: Target, app: Mapping[str, Any]) -> Decision:
        """What to do with one region's Application as it is now (reads staging if needed)."""
        image, problem = desired_image(app, self.stacks.repository, self.stacks.service)
        if image is None:
            return Decision("stop", None, f"{target.application}: {problem}")
        busy = operation_in_progress(app)
        if busy:
            return Decision("stop", image, f"{target.application}: {busy}")
        if is_up_to_date(app, image):
            return Decision("unchanged", image, "already Synced and Healthy on this image", True)
        verification = self._verify(target, image)
        if isinstance(verification, HubError):
            return Decision(
                "stop",
                image,
                f"cannot verify against staging: {verification}",
                stop=Outcome.API_ERROR,
            )
        if verification.verified:
            return Decision("sync", image, verification.reason, True)
        if self.options.allow_unverified:
            return Decision("sync", image, f"UNVERIFIED: {verification.reason}", False)
        return Decision(
            "stop",
            image,
            f"{target.application} would deploy {image}, but {verification.reason} "
            "(--allow-unverified is the break-glass)",
        )

    def _verify(self, target: Target, image: ImageRef) -> Verification | HubError:
        try:
            staging_app = self.staging.get(target.staging_application)
        except HubError as error:
            if error.not_found:
                return Verification(False, f"staging has no Application {target.staging_application}")
            if self.options.allow_unverified:
                # Break-glass exists for exactly this: staging itself is broken.
                return Verification(False, f"staging could not be read ({error})")
            return error
        return verify(image, staging_app)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Report:
        targets = self.stacks.targets
        try:
            found = {name_of(app): app for app in self.prod.list(self.stacks.label_selector)}
        except HubError as error:
            return self._stopped_before_start(Outcome.API_ERROR, str(error))
        expected = {t.application for t in targets}
        for extra in sorted(set(found) - expected):
            self.console.print(
                f"[yellow]note:[/] {escape(extra)} carries {escape(self.stacks.label_selector)} but its "
                "region is not in platform:deploy.regionOrder; left alone"
            )

        decisions: list[Decision] = []
        for target in targets:
            app = found.get(target.application)
            if app is None:
                decisions.append(
                    Decision(
                        "stop",
                        None,
                        f"{target.application} not found on the {self.environment} hub "
                        f"(namespace {naming.ARGOCD_NAMESPACE}, label {self.stacks.label_selector})",
                    )
                )
            else:
                decisions.append(self.decide(target, app))

        if any(d.action == "stop" for d in decisions):
            results = tuple(
                RegionResult(
                    t.region,
                    t.application,
                    str(d.image or "-"),
                    d.stop if d.action == "stop" else Outcome.NOT_STARTED,
                    d.detail,
                )
                for t, d in zip(targets, decisions, strict=True)
            )
            return Report(results, exit_code(r.outcome for r in results), "nothing was changed")

        unverified = [(t, d) for t, d in zip(targets, decisions, strict=True) if not d.verified]
        if self.options.dry_run:
            results = tuple(
                RegionResult(
                    t.region,
                    t.application,
                    str(d.image),
                    Outcome.WOULD_SYNC if d.action == "sync" else Outcome.UNCHANGED,
                    d.detail,
                )
                for t, d in zip(targets, decisions, strict=True)
            )
            note = "dry run: nothing was changed"
            if unverified:
                note += "; the unverified images above would need the environment name typed (or --yes)"
            return Report(results, ExitCode.OK, note)

        if unverified and not self._confirm(unverified):
            results = tuple(
                RegionResult(
                    t.region,
                    t.application,
                    str(d.image),
                    Outcome.REFUSED if not d.verified else Outcome.NOT_STARTED,
                    "break-glass not confirmed" if not d.verified else "",
                )
                for t, d in zip(targets, decisions, strict=True)
            )
            return Report(results, ExitCode.REFUSED, "nothing was changed")

        for target, decision in zip(targets, decisions, strict=True):
            if decision.action == "sync":
                self.records.queued(self._release(target, decision, found[target.application]))
        results_list: list[RegionResult] = []
        for index, target in enumerate(targets):
            try:
                result = self.deploy_region(target)
            except KeyboardInterrupt:
                result = RegionResult(
                    target.region,
                    target.application,
                    str(decisions[index].image),
                    Outcome.INTERRUPTED,
                    "interrupted; a sync already requested keeps running in Argo CD",
                )
            results_list.append(result)
            self.records.finished(result.region, result.outcome, result.detail)
            if exit_code([result.outcome]) is not ExitCode.OK:
                results_list.extend(
                    RegionResult(t.region, t.application, str(d.image), Outcome.NOT_STARTED, "")
                    for t, d in zip(targets[index + 1 :], decisions[index + 1 :], strict=True)
                )
                for t in targets[index + 1 :]:
                    self.records.finished(
                        t.region, Outcome.NOT_STARTED, f"the deploy stopped at {target.region}"
                    )
                break
        results = tuple(results_list)
        return Report(results, exit_code(r.outcome for r in results))

    def _release(self, target: Target, decision: Decision, app: Mapping[str, Any]) -> release_records.Release:
        assert decision.image is not None  # a sync decision always knows its image
        return release_records.Release(
            region=target.region,
            application=target.application,
            image=str(decision.image),
            tag=decision.image.tag,
            ref=sync_revision(app),
            deploy_id=self.deploy_id,
            verified=decision.detail,
            repo_url=release_records.revision_repository(app),
        )

    def _stopped_before_start(self, outcome: Outcome, message: str) -> Report:
        results = tuple(
            RegionResult(t.region, t.application, "-", Outcome.NOT_STARTED, "") for t in self.stacks.targets
        )
        return Report(results, exit_code([outcome]), f"{message}; nothing was changed")

    def _confirm(self, unverified: Sequence[tuple[Target, Decision]]) -> bool:
        self.console.print(
            f"[bold red]BREAK-GLASS:[/] these images have not been verified by {self.stacks.staging.stack}:"
        )
        for target, decision in unverified:
            self.console.print(
                f"  {target.region}: {escape(str(decision.image))} - {escape(decision.detail)}"
            )
        if not self.options.yes:
            try:
                answer = self.input_fn(
                    f'Type the environment name "{self.environment}" to deploy them anyway: '
                )
            except EOFError:
                answer = ""
            if answer.strip() != self.environment:
                self.console.print("[red]not confirmed[/]")
                return False
        for target, decision in unverified:
            assert decision.image is not None  # a sync decision always knows its image
            self.confirmed[target.region] = decision.image
        return True

    def deploy_region(self, target: Target) -> RegionResult:
        def result(
            outcome: Outcome, image: ImageRef | None, detail: str, seconds: float | None = None
        ) -> RegionResult:
            return RegionResult(
                target.region, target.application, str(image or "-"), outcome, detail, seconds
            )

        decision: Decision | None = None
        for _attempt in range(PATCH_ATTEMPTS):
            # Re-read and re-verify right before the patch: the run may be an hour old by now.
            try:
                app = self.prod.get(target.application)
            except HubError as error:
                return result(Outcome.API_ERROR, None, str(error))
            decision = self.decide(target, app)
            if decision.action == "stop":
                return result(decision.stop, decision.image, decision.detail)
            if decision.action == "unchanged":
                return result(Outcome.UNCHANGED, decision.image, decision.detail)
            assert decision.image is not None
            if not decision.verified and not decision.image.same_image(
                self.confirmed.get(target.region, ImageRef("", None))
            ):
                return result(
                    Outcome.REFUSED,
                    decision.image,
                    f"not the image the break-glass was confirmed for: {decision.detail}",
                )
            body = operation_patch(
                username=self.username,
                deploy_id=self.deploy_id,
                image=decision.image,
                verified=("yes: " if decision.verified else "NO, break-glass: ") + decision.detail,
                reason=f"python -m infra.deploy {self.stacks.deploy.stack}",
                revision=sync_revision(app),
                resource_version=resource_version(app),
                sources=sync_sources(app),
                options=sync_options(app),
            )
            try:
                self.prod.patch(target.application, body)
            except HubError as error:
                if error.conflict:
                    self.console.print(
                        f"{target.region}: the Application changed since it was read; re-verifying"
                    )
                    continue
                return result(Outcome.API_ERROR, decision.image, str(error))
            self.records.in_progress(target.region, f"sync requested: {decision.image}")
            break
        else:
            image = decision.image if decision else None
            return result(
                Outcome.REFUSED,
                image,
                f"the Application kept changing during {PATCH_ATTEMPTS} attempts to sync it",
            )
        assert decision is not None and decision.image is not None
        started = self.clock()
        outcome, detail = self.wait(target, decision.image, started + self.timeout)
        return result(outcome, decision.image, detail, self.clock() - started)

    def wait(self, target: Target, image: ImageRef, deadline: float) -> tuple[Outcome, str]:
        """Follow the sync until it is done, failed or the deadline passes.

        A watch with a server-side timeout of at most one poll interval delivers each status the
        controller writes; between windows the deadline is checked. Transient errors (no answer,
        429, 5xx) are retried until the deadline; anything else ends the wait.
        """
        name = target.application
        app: dict[str, Any] | None = None
        last: Assessment | None = None
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        # The live spinner only on a terminal; CI logs get the state-change lines printed below.
        live = Progress(
            *columns,
            console=self.console,
            transient=True,
            get_time=self.clock,
            disable=not self.console.is_terminal,
        )
        with live as progress:
            task = progress.add_task(f"{target.region} {name}: sync requested", total=None)

            def seen(obj: dict[str, Any]) -> Assessment:
                nonlocal last
                assessment = assess(obj, self.deploy_id, image, self.stacks.service)
                if assessment != last:
                    self.console.print(f"  {target.region}: {assessment.phase} - {escape(assessment.detail)}")
                    progress.update(task, description=f"{target.region} {name}: {escape(assessment.detail)}")
                    last = assessment
                return assessment

            while True:
                if self.clock() >= deadline:
                    detail = last.detail if last else "no status read"
                    if last is not None and last.mid_canary:
                        # Argo Rollouts goes on with the canary (or waits at its pause): the
                        # region is neither done nor failed, and the later regions stay untouched.
                        return (
                            Outcome.TIMED_OUT,
                            f"timed out mid-canary after {self.timeout:.0f}s, canary still in progress ({detail})",
                        )
                    return Outcome.TIMED_OUT, f"not Synced and Healthy after {self.timeout:.0f}s ({detail})"
                try:
                    if app is None:
                        app = self.prod.get(name)
                        assessment = seen(app)
                        if assessment.terminal:
                            return _outcome(assessment)
                        continue
                    window = max(1, math.ceil(min(self.options.poll_interval, deadline - self.clock())))
                    opened = self.clock()
                    events = 0
                    for obj in self.prod.watch(
                        name, resource_version=resource_version(app), timeout_seconds=window
                    ):
                        events += 1
                        app = obj
                        assessment = seen(obj)
                        if assessment.terminal:
                            return _outcome(assessment)
                    if events == 0 and self.clock() - opened < window / 2:
                        # The server ended the watch early without news (a proxy, a restart):
                        # pause rather than spin.
                        self.sleep(self.options.poll_interval)
                except HubError as error:
                    if error.gone:
                        app = None  # resourceVersion expired: read again, then watch from there
                        continue
                    if not error.transient:
                        return Outcome.API_ERROR, f"{error}; the sync's state is unknown, check Argo CD"
                    self.console.print(f"  {target.region}: {escape(str(error))}; retrying")
                    app = None
                    self.sleep(self.options.poll_interval)


def _outcome(assessment: Assessment) -> tuple[Outcome, str]:
    mapping = {
        Phase.SUCCEEDED: Outcome.SYNCED,
        Phase.DEGRADED: Outcome.DEGRADED,
        Phase.ABORTED: Outcome.ABORTED,
        Phase.INCONCLUSIVE: Outcome.INCONCLUSIVE,
        Phase.FAILED: Outcome.FAILED,
    }
    return mapping[assessment.phase], assessment.detail


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

_STYLES = {
    Outcome.SYNCED: "green",
    Outcome.UNCHANGED: "green",
    Outcome.WOULD_SYNC: "cyan",
    Outcome.NOT_STARTED: "dim",
}


def summary_table(environment: str, report: Report) -> Table:
    table = Table(title=f"{environment} deploy", box=box.SIMPLE, title_justify="left")
    for column in ("Region", "Application", "Image", "Result", "Time", "Detail"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        style = _STYLES.get(r.outcome, "bold red")
        seconds = "-" if r.seconds is None else f"{r.seconds:.0f}s"
        table.add_row(
            r.region, r.application, escape(r.image), f"[{style}]{r.outcome}[/]", seconds, escape(r.detail)
        )
    return table


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    input_fn: InputFn = input,
    connect_fn: Connect = connect,
    deploy_id: str | None = None,
    prog: str = "platform deploy",
    environ: Mapping[str, str] | None = None,
) -> int:
    console = console or Console()
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) and argparse's own usage errors (2)
        return int(exit_.code or 0)
    options = Options(**vars(args))
    try:
        stacks = load_stacks(options.stack, options.staging_stack)
        prod_context = options.prod_context or default_context(stacks.deploy)
        staging_context = options.staging_context or default_context(stacks.staging)
        prod = connect_fn(stacks.deploy.environment, options.kubeconfig, prod_context)
        staging = connect_fn(stacks.staging.environment, options.kubeconfig, staging_context)
    except (UsageError, KubeconfigError) as error:
        console.print(f"[red]error:[/] {escape(str(error))}")
        return int(ExitCode.USAGE)

    if options.dry_run:
        records: release_records.Records = release_records.NoRecords()
        records_note = "release records: off (dry run)"
    else:
        records, records_note = release_records.from_environment(
            os.environ if environ is None else environ, stacks.deploy.environment
        )
    deployer = Deployer(
        records=records,
        stacks=stacks,
        prod=prod,
        staging=staging,
        options=options,
        console=console,
        clock=clock,
        sleep=sleep,
        input_fn=input_fn,
        deploy_id=deploy_id,
    )
    order = " → ".join(t.region for t in stacks.targets)
    console.print(
        f"{'Dry run: ' if options.dry_run else ''}deploying the Applications labelled {escape(stacks.label_selector)} "
        f"(context {escape(prod_context)}), verified by {stacks.staging.stack} (context "
        f"{escape(staging_context)}); order {order}; deploy id {deployer.deploy_id}"
    )
    console.print(escape(records_note))
    try:
        report = deployer.run()
    finally:
        prod.close()
        staging.close()
    console.print(summary_table(stacks.deploy.environment, report))
    for warning in records.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if report.message:
        console.print(escape(report.message))
    console.print(f"exit code {int(report.exit_code)} ({report.exit_code.name.lower().replace('_', ' ')})")
    return int(report.exit_code)


if __name__ == "__main__":
    sys.exit(main(prog="python -m infra.deploy"))
