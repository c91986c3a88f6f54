"""The prod deploy's decisions, as pure functions over Argo CD Application objects.

Everything here reads plain dicts shaped like ``applications.argoproj.io/v1alpha1`` objects (the
CRD in ``../shared/crds/crd-application.yaml``) and returns values; nothing talks to a cluster.
:mod:`infra.deploy` fetches the objects and acts on these answers, so each rule of the promotion
("only what staging ran Synced and Healthy", "the sync we started has finished") is tested here
without a fake API at all.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

# The Helm parameters Argo CD Image Updater writes into each Application (issue 6 owns the names).
from infra.manifests.argocd import IMAGE_NAME_PARAMETER, IMAGE_TAG_PARAMETER, PRUNE_NEEDS_CONFIRMATION

# The chart's optional per-service digest pin, `image.digest.<service>`.
IMAGE_DIGEST_PARAMETER_PREFIX = "image.digest."

# Names of the `operation.info` items the deploy writes. Argo CD copies the operation, info
# included, into `status.operationState.operation` when it starts it, which is how the deploy
# tells its own sync from an earlier one: https://argo-cd.readthedocs.io/en/stable/user-guide/sync-kubectl/
INFO_DEPLOY_ID = "deploy-id"
INFO_IMAGE = "image"
INFO_VERIFIED = "verified"
INFO_REASON = "reason"

SYNCED = "Synced"
HEALTHY = "Healthy"
DEGRADED = "Degraded"
# status.operationState.phase values (gitops-engine's OperationPhase).
PHASE_RUNNING = "Running"
PHASE_TERMINATING = "Terminating"
PHASE_SUCCEEDED = "Succeeded"
PHASE_FAILED = "Failed"
PHASE_ERROR = "Error"


class ExitCode(IntEnum):
    """The command's exit status. Documented in ``--help`` and the README ("Deploying to prod")."""

    OK = 0  # every region synced, Healthy, or already up to date (or a dry run that would proceed)
    USAGE = 2  # bad flags, stack file or kubeconfig/context (argparse uses 2 as well)
    REFUSED = 3  # an image staging has not run Synced+Healthy, a missing Application, ...: nothing changed
    FAILED = 4  # a sync failed, the Application went Degraded, a canary aborted or stopped inconclusive; later regions untouched
    TIMED_OUT = 5  # a sync did not finish Synced+Healthy within the timeout; later regions untouched
    API_ERROR = 6  # a hub could not be reached or refused a call (401/403/5xx); later regions untouched
    INTERRUPTED = 130  # Ctrl-C; the sync already started keeps running in Argo CD


class Outcome(StrEnum):
    SYNCED = "synced"
    UNCHANGED = "unchanged"
    WOULD_SYNC = "would sync"
    REFUSED = "refused"
    FAILED = "failed"
    DEGRADED = "degraded"
    ABORTED = "canary aborted"
    INCONCLUSIVE = "canary inconclusive"
    TIMED_OUT = "timed out"
    API_ERROR = "api error"
    INTERRUPTED = "interrupted"
    NOT_STARTED = "not started"


EXIT_CODES: dict[Outcome, ExitCode] = {
    Outcome.SYNCED: ExitCode.OK,
    Outcome.UNCHANGED: ExitCode.OK,
    Outcome.WOULD_SYNC: ExitCode.OK,
    Outcome.NOT_STARTED: ExitCode.OK,
    Outcome.REFUSED: ExitCode.REFUSED,
    Outcome.FAILED: ExitCode.FAILED,
    Outcome.DEGRADED: ExitCode.FAILED,
    Outcome.ABORTED: ExitCode.FAILED,
    Outcome.INCONCLUSIVE: ExitCode.FAILED,
    Outcome.TIMED_OUT: ExitCode.TIMED_OUT,
    Outcome.API_ERROR: ExitCode.API_ERROR,
    Outcome.INTERRUPTED: ExitCode.INTERRUPTED,
}


def exit_code(outcomes: Iterable[Outcome]) -> ExitCode:
    """The exit status of a run: that of its first outcome that is not a success."""
    for outcome in outcomes:
        code = EXIT_CODES[outcome]
        if code is not ExitCode.OK:
            return code
    return ExitCode.OK


# --------------------------------------------------------------------------------------------
# Image references
# --------------------------------------------------------------------------------------------

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


@dataclass(frozen=True)
class ImageRef:
    """An image by repository path, tag and digest.

    ``repository`` never includes the registry host: prod pulls replicas of staging's images
    from its own account's registry, so the same image has a different host in each stack.
    """

    repository: str
    tag: str | None
    digest: str | None = None
    registry: str | None = None

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def same_image(self, other: ImageRef) -> bool:
        """Same repository path and tag; and the same digest when both sides know one."""
        if self.repository != other.repository or self.tag != other.tag:
            return False
        return self.digest is None or other.digest is None or self.digest == other.digest


def parse_image(reference: str) -> ImageRef:
    """Split ``[registry/]path[:tag][@digest]`` the way the container runtime does.

    The first path component is a registry host when it contains a ``.`` or ``:`` or is
    ``localhost`` (the distribution reference grammar).
    """
    rest, _, digest = reference.partition("@")
    first, slash, remainder = rest.partition("/")
    registry: str | None = None
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    name, colon, tag = rest.rpartition(":")
    if not colon or "/" in tag:
        name, tag = rest, ""
    return ImageRef(repository=name, tag=tag or None, digest=digest or None, registry=registry)


def split_tag_value(value: str) -> tuple[str | None, str | None]:
    """An ``image.tag`` parameter value: ``<tag>`` or ``<tag>@<digest>`` (Image Updater's digest form)."""
    tag, _, digest = value.partition("@")
    return (tag or None, digest or None)


# --------------------------------------------------------------------------------------------
# Reading an Application
# --------------------------------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def name_of(app: Mapping[str, Any]) -> str:
    return str(_get(app, "metadata", "name") or "")


def resource_version(app: Mapping[str, Any]) -> str | None:
    value = _get(app, "metadata", "resourceVersion")
    return str(value) if value else None


def sync_status(app: Mapping[str, Any]) -> str:
    return str(_get(app, "status", "sync", "status") or "Unknown")


def health_status(app: Mapping[str, Any]) -> str:
    return str(_get(app, "status", "health", "status") or "Unknown")


def _sources(holder: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """``source`` and every entry of ``sources`` of a spec, operation or syncResult."""
    if not isinstance(holder, Mapping):
        return []
    found: list[Mapping[str, Any]] = []
    if isinstance(holder.get("source"), Mapping):
        found.append(holder["source"])
    for source in holder.get("sources") or ():
        if isinstance(source, Mapping):
            found.append(source)
    return found


def helm_parameter_values(holder: Mapping[str, Any] | None, name: str) -> tuple[str, ...]:
    """Every distinct value of Helm parameter ``name`` across the holder's sources, in order."""
    values: list[str] = []
    for source in _sources(holder):
        for parameter in _get(source, "helm", "parameters") or ():
            if isinstance(parameter, Mapping) and parameter.get("name") == name:
                value = str(parameter.get("value") or "")
                if value not in values:
                    values.append(value)
    return tuple(values)


def image_from_parameters(
    holder: Mapping[str, Any] | None, repository: str, service: str
) -> tuple[ImageRef | None, str | None]:
    """The sentinel image a spec (or a finished sync's ``syncResult``) deploys, or why it can't tell."""
    tags = helm_parameter_values(holder, IMAGE_TAG_PARAMETER)
    if not tags or tags == ("",):
        return (
            None,
            f"no Helm parameter {IMAGE_TAG_PARAMETER} (Argo CD Image Updater has not written one yet)",
        )
    if len(tags) > 1:
        return None, f"ambiguous Helm parameter {IMAGE_TAG_PARAMETER}: {', '.join(tags)}"
    names = helm_parameter_values(holder, IMAGE_NAME_PARAMETER)
    for name in names:
        # Image Updater writes the registry/repository next to the tag; it must be the sentinel's.
        if name and parse_image(name).repository != repository:
            return None, f"Helm parameter {IMAGE_NAME_PARAMETER} is {name}, not an image of {repository}"
    tag, digest = split_tag_value(tags[0])
    if tag is None:
        return None, f"Helm parameter {IMAGE_TAG_PARAMETER} has no tag: {tags[0]!r}"
    pinned = helm_parameter_values(holder, IMAGE_DIGEST_PARAMETER_PREFIX + service)
    if len(pinned) == 1 and pinned[0]:
        digest = pinned[0]
    if digest is not None and not _DIGEST_RE.match(digest):
        return None, f"Helm parameter {IMAGE_TAG_PARAMETER} has a malformed digest: {digest!r}"
    return ImageRef(repository=repository, tag=tag, digest=digest), None


def desired_image(
    app: Mapping[str, Any], repository: str, service: str
) -> tuple[ImageRef | None, str | None]:
    """The sentinel image a sync of ``app`` would deploy now (its ``spec``), or why it can't tell."""
    return image_from_parameters(_get(app, "spec"), repository, service)


def running_images(app: Mapping[str, Any], repository: str) -> tuple[ImageRef, ...]:
    """The images of ``repository`` Argo CD reports the Application's live resources run."""
    images = _get(app, "status", "summary", "images") or ()
    refs = (parse_image(str(image)) for image in images if isinstance(image, str))
    return tuple(ref for ref in refs if ref.repository == repository)


def operation_in_progress(app: Mapping[str, Any]) -> str | None:
    """Why a new sync must not be started now, or None."""
    if _get(app, "operation") is not None:
        who = _get(app, "operation", "initiatedBy", "username") or "someone"
        return f"an operation requested by {who} is waiting to start; let it finish first"
    phase = _get(app, "status", "operationState", "phase")
    if phase in (PHASE_RUNNING, PHASE_TERMINATING):
        who = _get(app, "status", "operationState", "operation", "initiatedBy", "username") or "someone"
        return f"an operation started by {who} is {str(phase).lower()}; let it finish first"
    return None


def is_up_to_date(app: Mapping[str, Any], desired: ImageRef) -> bool:
    """Already Synced and Healthy, running exactly ``desired``: a sync would change nothing."""
    running = running_images(app, desired.repository)
    return (
        sync_status(app) == SYNCED
        and health_status(app) == HEALTHY
        and bool(running)
        and all(desired.same_image(image) for image in running)
    )


def sync_revision(app: Mapping[str, Any]) -> str | None:
    """The Git revision to sync: the commit Argo CD last compared (what `Synced` refers to),
    else the Application's target revision."""
    revision = _get(app, "status", "sync", "revision")
    if revision:
        return str(revision)
    for source in _sources(_get(app, "spec")):
        if source.get("targetRevision"):
            return str(source["targetRevision"])
    return None


# --------------------------------------------------------------------------------------------
# Verification against staging
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    verified: bool
    reason: str
    staging_images: tuple[ImageRef, ...] = ()


def _images_text(images: Sequence[ImageRef]) -> str:
    return ", ".join(sorted({str(image) for image in images})) or "no image"


def verify(desired: ImageRef, staging_app: Mapping[str, Any]) -> Verification:
    """Has staging's Application run ``desired`` Synced and Healthy?

    Compares repository path and tag (and digest where both are known), never the registry
    host: prod's registry is a replica in another account.
    """
    name = name_of(staging_app)
    running = running_images(staging_app, desired.repository)
    sync, health = sync_status(staging_app), health_status(staging_app)
    runs = f"staging {name} runs {_images_text(running)} ({sync}/{health})"
    if not running:
        return Verification(False, f"{runs}: it reports no image of {desired.repository}", running)
    mismatched = [image for image in running if not desired.same_image(image)]
    if mismatched:
        return Verification(False, f"{runs}, not {desired}", running)
    if sync != SYNCED or health != HEALTHY:
        return Verification(False, f"{runs}: {desired} is not yet Synced and Healthy there", running)
    return Verification(True, runs, running)


# --------------------------------------------------------------------------------------------
# The sync operation and its progress
# --------------------------------------------------------------------------------------------


# What prod's sync prunes: every resource of the Application that the verified release no longer
# renders, and only after everything else of the release is applied and healthy (PruneLast).
# Without prune such a resource stays live, the Application stays OutOfSync ("The app will be out
# of sync if Argo CD expects a resource to be pruned", argo-cd v3.4.4
# docs/user-guide/sync-options.md) and the deploy would end as a timeout. A resource annotated
# `argocd.argoproj.io/sync-options: Prune=false` is still kept (the annotation overrides the
# operation). A release without image.tag never gets here (refused earlier), and its render is the
# chart's ImageTagMissing guard, whose sync fails before pruning (docs/argocd.md, "The first tag").
PRUNE = True
PRUNE_LAST = "PruneLast=true"


def sync_options(app: Mapping[str, Any]) -> list[str]:
    """The sync options for an ``operation`` the deploy writes: the Application's own
    ``spec.syncPolicy.syncOptions`` (CreateNamespace, ServerSideApply) but ``Prune=confirm``,
    then PruneLast.

    The controller reads only the operation's options (argo-cd v3.4.4 controller/sync.go,
    ``syncOp.SyncOptions``); the API server and auto-sync copy the Application's options into the
    operation, an operation written through the Kubernetes API gets only what it carries.
    Pinned by tests/contracts/test_sync_options.py.
    """
    options = [str(o) for o in (_get(app, "spec", "syncPolicy", "syncOptions") or ())]
    # Not the Application's ``Prune=confirm`` (infra.manifests.argocd.PRUNE_NEEDS_CONFIRMATION,
    # which makes every other sync's prunes wait for an approval): the deploy syncs the whole
    # Application, only one with image.tag (refused earlier otherwise), so a release that removes
    # a resource prunes it without a person approving the deletion.
    options = [o for o in options if o != PRUNE_NEEDS_CONFIRMATION]
    return list(dict.fromkeys([*options, PRUNE_LAST]))


def sync_sources(app: Mapping[str, Any]) -> dict[str, Any]:
    """The ``source`` (or ``sources``) the deploy's operation pins: a copy of the verified
    Application's own, Helm parameters included, so the sync applies exactly what was verified.

    argo-cd v3.4.4 controller/sync.go ``newSyncOperationResult``: when the controller starts an
    operation it takes ``op.Sync.Source``/``op.Sync.Sources`` if either is set, otherwise
    ``app.Spec.GetSource()``/``app.Spec.Sources`` *as they are then*, and ``SyncAppState`` renders
    and applies that source (``CompareAppState`` with ``state.SyncResult.Source``). Without it an
    Image Updater write between the deploy's patch and the start would be synced unverified. The
    API server's own sync does the same (server/application/application.go ``Sync``:
    ``Source: a.Spec.GetSource()`` unless the Application has multiple sources, ``Sources:
    a.Spec.Sources``). Returns ``{"source": {...}}`` or ``{"sources": [...]}``. Pinned by
    tests/contracts/test_sync_source.py.
    """
    spec = _get(app, "spec") or {}
    if spec.get("sources"):
        return {"sources": copy.deepcopy(list(spec["sources"]))}
    source = spec.get("source")
    if not isinstance(source, Mapping):
        raise ValueError(f"Application {name_of(app)} has neither spec.source nor spec.sources")
    return {"source": copy.deepcopy(dict(source))}


def operation_patch(
    *,
    username: str,
    deploy_id: str,
    image: ImageRef,
    verified: str,
    reason: str,
    revision: str | None,
    resource_version: str | None,
    sources: Mapping[str, Any],
    options: Sequence[str] = (PRUNE_LAST,),
) -> dict[str, Any]:
    """The JSON merge patch that asks Argo CD to sync an Application, with prune.

    Setting ``operation`` is what ``argocd app sync`` does through the API server; doing it
    through the Kubernetes API needs neither the argocd CLI nor an Argo CD account:
    https://argo-cd.readthedocs.io/en/stable/user-guide/sync-kubectl/
    ``metadata.resourceVersion`` makes the patch conditional: if Image Updater (or anyone) changed
    the Application after it was verified, the API server answers 409 Conflict instead of
    syncing an image nobody checked; ``sources`` (:func:`sync_sources` of the Application read)
    covers a change after the patch and before the controller starts the sync. ``options`` is
    :func:`sync_options` of the Application read; ``prune`` is :data:`PRUNE`.
    """
    sync: dict[str, Any] = {
        "syncStrategy": {"hook": {}},
        "prune": PRUNE,
        "syncOptions": list(options),
        **copy.deepcopy(dict(sources)),
    }
    if revision:
        sync["revision"] = revision
    patch: dict[str, Any] = {
        "operation": {
            "initiatedBy": {"username": username},
            "info": [
                {"name": INFO_REASON, "value": reason},
                {"name": INFO_DEPLOY_ID, "value": deploy_id},
                {"name": INFO_IMAGE, "value": str(image)},
                {"name": INFO_VERIFIED, "value": verified},
            ],
            "sync": sync,
        }
    }
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    return patch


# --------------------------------------------------------------------------------------------
# Argo Rollouts (issue 19): where each service's canary stands
# --------------------------------------------------------------------------------------------

ROLLOUT_GROUP = "argoproj.io"
ROLLOUT_KIND = "Rollout"
# Rollout status.phase values (argo-rollouts v1.9.0 pkg/apis/rollouts/v1alpha1/types.go
# RolloutPhase) and Argo CD's name for a paused one (argo-cd v3.4.4
# resource_customizations/argoproj.io/Rollout/health.lua: phase "Paused" -> "Suspended", any other
# phase surfaced as it is, with status.message as the health message).
ROLLOUT_HEALTHY = "Healthy"
ROLLOUT_PROGRESSING = "Progressing"
ROLLOUT_PAUSED = "Paused"
ROLLOUT_DEGRADED = "Degraded"
SUSPENDED = "Suspended"
# utils/conditions/conditions.go RolloutAbortedReason; the controller's phase message of an aborted
# Rollout is "<reason>: <condition message>" (utils/rollout/rolloututil.go CalculateRolloutPhase),
# the condition message "Rollout aborted update to revision N: <abort message>"
# (rollout/sync.go, RolloutAbortedMessage), and a failed step analysis's abort message
# "Step-based analysis phase error/failed: <AnalysisRun status.message>" (rollout/analysis.go),
# whose worst metric reads 'Metric "<name>" assessed <phase> due to <why>' (analysis/analysis.go).
ROLLOUT_ABORTED_REASON = "RolloutAborted"
# pkg/apis/rollouts/v1alpha1/types.go PauseReasonInconclusiveAnalysis: the pause condition an
# Inconclusive step analysis adds (rollout/analysis.go), and, as the first pause condition's
# reason, a paused Rollout's whole phase message (utils/rollout/rolloututil.go CalculateRolloutPhase).
PAUSE_REASON_INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysisRun"
# The shop chart writes each entry of rollouts.steps as three Rollout steps: setWeight, pause,
# analysis (charts/shop/templates/_helpers.tpl shop.canary). Rollout step index i (0-based) is
# in chart step i // 3 + 1, the numbering of the analysis metrics' names (step-<n>-<metric>).
ROLLOUT_STEPS_PER_CHART_STEP = 3
_ASSESSED = re.compile(r'Metric "(?P<metric>[^"]+)" assessed (?P<phase>\w+) due to (?P<why>.*)$')
# The shop chart names each analysis metric step-<n>-<metric> (charts/shop/templates/
# analysistemplate.yaml): the step number reaches the abort message only that way.
_STEP_METRIC = re.compile(r"^step-(?P<step>[0-9]+)-(?P<metric>.+)$")
# What the hub's Rollout health check appends to the Rollout's message (infra/manifests/
# rollout_health.py ADDITION): " [canary step <i>/<n>, weight <w>%]", the weight only when the
# Rollout routes traffic, no leading space when the message was empty.
_CANARY_WHERE = re.compile(
    r"^(?P<message>.*?) ?\[canary step (?P<index>[0-9]+)/(?P<steps>[0-9]+)(?:, weight (?P<weight>[0-9]+)%)?\]$",
    re.DOTALL,
)


@dataclass(frozen=True)
class HealthMessage:
    """A Rollout's health message as the hub's check writes it: the Rollout's own message, and
    where its canary stands (``index`` steps done of ``steps``; ``weight`` percent of the
    traffic), each None when the message does not say."""

    message: str
    index: int | None = None
    steps: int | None = None
    weight: int | None = None


def read_health_message(text: str) -> HealthMessage:
    """Split the hub's Rollout health message (see _CANARY_WHERE); a message without the
    canary part (a Rollout without steps, an Argo CD without the hub's check) is kept whole."""
    found = _CANARY_WHERE.match(text)
    if found is None:
        return HealthMessage(text)
    weight = found["weight"]
    return HealthMessage(
        found["message"], int(found["index"]), int(found["steps"]), int(weight) if weight else None
    )


@dataclass(frozen=True)
class CanaryFailure:
    """What failed a canary, read from an aborted Rollout's message. ``step`` is the chart's
    canary step (1-based entry of ``rollouts.steps``), ``metric`` the analysis metric; either is
    None when the message does not say (an abort by hand, a progress deadline)."""

    step: int | None
    metric: str | None
    phase: str | None
    why: str


def canary_failure(message: str) -> CanaryFailure:
    """Parse the abort message of a Rollout (see ROLLOUT_ABORTED_REASON for its shape)."""
    found = _ASSESSED.search(message)
    if found is None:
        return CanaryFailure(None, None, None, message)
    metric: str = found["metric"]
    step: int | None = None
    named = _STEP_METRIC.match(metric)
    if named is not None:
        step, metric = int(named["step"]), named["metric"]
    return CanaryFailure(step, metric, found["phase"], found["why"])


@dataclass(frozen=True)
class RolloutState:
    """One Rollout's canary as a person reads it.

    ``phase``: Healthy | Progressing | Paused | Degraded (Argo CD's Suspended reads as Paused);
    ``aborted``: the canary was aborted (traffic back on the stable version); ``done``: fully
    promoted and Healthy; ``step_index`` / ``steps``: the Rollout's ``status.currentStepIndex`` and
    its number of canary steps, ``weight`` the canary's share of the traffic (percent, only when
    the Rollout routes traffic), when the source shows them (a Rollout object does, and so does
    the hub's health check: infra/manifests/rollout_health.py); ``failure``: what aborted it.
    """

    name: str
    phase: str
    message: str
    aborted: bool
    done: bool
    step_index: int | None = None
    steps: int | None = None
    failure: CanaryFailure | None = None
    weight: int | None = None

    @property
    def inconclusive(self) -> bool:
        """Paused because a step analysis ended Inconclusive: final until a person promotes or
        aborts the Rollout (argo-rollouts v1.9.0 docs/features/analysis.md "Inconclusive Runs")."""
        return self.phase == ROLLOUT_PAUSED and self.message == PAUSE_REASON_INCONCLUSIVE_ANALYSIS

    def chart_step(self) -> tuple[int, int] | None:
        """``(n, of)``: the chart's canary step (1-based entry of ``rollouts.steps``, as in the
        analysis metrics' names and so in abort messages) the Rollout is at, and how many there
        are; None when the step is unknown or the Rollout's steps are not the chart's triples."""
        per = ROLLOUT_STEPS_PER_CHART_STEP
        if self.step_index is None or not self.steps or self.steps % per:
            return None
        of = self.steps // per
        return min(self.step_index // per + 1, of), of

    def describe(self) -> str:
        """``web: canary aborted at step 2, metric error-rate Failed (failed (1) > failureLimit (0))``,
        ``web: analysis inconclusive at step 1/2, weight 10% (InconclusiveAnalysisRun): ...`` or
        ``web: Paused at step 1/2, weight 10% (CanaryPauseStep)``; every step number is the
        chart's (:meth:`chart_step`), the Rollout's own index only where the steps are not the
        chart's."""
        if self.aborted and self.failure is not None:
            f = self.failure
            at = f" at step {f.step}" if f.step is not None else ""
            what = f", metric {f.metric} {f.phase} ({f.why})" if f.metric else f": {f.why}"
            return f"{self.name}: canary aborted{at}{what}"
        chart = self.chart_step()
        if chart is not None:
            at = f" at step {chart[0]}/{chart[1]}"
        elif self.step_index is not None and self.steps:
            at = f" at rollout step {self.step_index}/{self.steps}"
        else:
            at = ""
        if self.weight is not None and not self.done:
            at += f", weight {self.weight}%"
        if self.inconclusive:
            return (
                f"{self.name}: analysis inconclusive{at} ({self.message}): a measurement met neither "
                "condition (no datapoint?); the canary holds its weight until a person promotes or aborts it"
            )
        detail = f" ({self.message})" if self.message else ""
        return f"{self.name}: {self.phase}{at}{detail}"


def rollout_state(rollout: Mapping[str, Any]) -> RolloutState:
    """Read a Rollout object (``argoproj.io/v1alpha1``, as the Kubernetes API returns it).

    argo-rollouts v1.9.0: ``status.phase`` / ``status.message`` are computed by the controller
    (utils/rollout/rolloututil.go ``GetRolloutPhase``: until ``status.observedGeneration`` equals
    ``metadata.generation`` the phase is Progressing, "waiting for rollout spec update to be
    observed"); ``status.abort`` marks an aborted update; ``status.currentStepIndex`` the canary
    step; fully promoted means ``status.stableRS == status.currentPodHash`` (``IsFullyPromoted``).
    Pure: the deploy reads the same facts from Argo CD (:func:`rollout_states`), the fleet view
    may read Rollouts directly.
    """
    status = _get(rollout, "status") or {}
    name = str(_get(rollout, "metadata", "name") or "")
    observed = str(status.get("observedGeneration") or "")
    generation = str(_get(rollout, "metadata", "generation") or "")
    phase, message = str(status.get("phase") or ROLLOUT_PROGRESSING), str(status.get("message") or "")
    if observed.isdigit() and generation and observed != generation:
        phase, message = ROLLOUT_PROGRESSING, "waiting for rollout spec update to be observed"
    aborted = bool(status.get("abort"))
    steps = _get(rollout, "spec", "strategy", "canary", "steps")
    index = status.get("currentStepIndex")
    weight = _get(status, "canary", "weights", "canary", "weight")
    promoted = bool(status.get("stableRS")) and status.get("stableRS") == status.get("currentPodHash")
    return RolloutState(
        name=name,
        phase=phase,
        message=message,
        aborted=aborted,
        done=promoted and phase == ROLLOUT_HEALTHY and not aborted,
        step_index=int(index) if isinstance(index, int) else None,
        steps=len(steps) if isinstance(steps, list) else None,
        failure=canary_failure(message) if aborted else None,
        weight=weight if isinstance(weight, int) else None,
    )


def rollout_states(app: Mapping[str, Any]) -> list[RolloutState] | None:
    """Every Rollout of an Application, from the health Argo CD persists in
    ``status.resources[]`` (``health.status``, ``health.message``: the Rollout's phase and
    message, argo-cd v3.4.4 health.lua, plus the canary's step and weight that the hub's own
    check adds, infra/manifests/rollout_health.py, split off by :func:`read_health_message`;
    persisted because the hub sets ``controller.resource.health.persist``,
    infra/manifests/argocd.py). The one reader of that health: the deploy and the fleet view both
    use it. None when the Application lists Rollouts without their health (persisting off:
    ``status.resourceHealthSource: appTree``); then only the Application's aggregated health tells.
    """
    out: list[RolloutState] = []
    for resource in _get(app, "status", "resources") or ():
        if not isinstance(resource, Mapping):
            continue
        if resource.get("kind") != ROLLOUT_KIND or resource.get("group") != ROLLOUT_GROUP:
            continue
        health = resource.get("health")
        if not isinstance(health, Mapping) or not health.get("status"):
            return None
        status = str(health["status"])
        phase = ROLLOUT_PAUSED if status == SUSPENDED else status
        read = read_health_message(str(health.get("message") or ""))
        message = read.message
        aborted = phase == ROLLOUT_DEGRADED and message.startswith(ROLLOUT_ABORTED_REASON)
        out.append(
            RolloutState(
                name=str(resource.get("name") or ""),
                phase=phase,
                message=message,
                aborted=aborted,
                done=phase == ROLLOUT_HEALTHY,
                step_index=read.index,
                steps=read.steps,
                failure=canary_failure(message) if aborted else None,
                weight=read.weight,
            )
        )
    return sorted(out, key=lambda r: r.name)


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SETTLING = "settling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEGRADED = "degraded"
    ABORTED = "aborted"
    INCONCLUSIVE = "inconclusive"


TERMINAL_PHASES = frozenset(
    {Phase.SUCCEEDED, Phase.FAILED, Phase.DEGRADED, Phase.ABORTED, Phase.INCONCLUSIVE}
)


@dataclass(frozen=True)
class Assessment:
    phase: Phase
    detail: str
    # A canary was under way (some Rollout not yet promoted) when this was read.
    mid_canary: bool = False

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES


def _info(operation: Any, name: str) -> str | None:
    for item in _get(operation, "info") or ():
        if isinstance(item, Mapping) and item.get("name") == name:
            return str(item.get("value"))
    return None


def assess(app: Mapping[str, Any], deploy_id: str, desired: ImageRef, service: str) -> Assessment:
    """Where the sync this deploy started stands, judged from one read of the Application.

    Done means: our operation (recognised by its deploy id) Succeeded, the Application is Synced
    and Healthy, every Rollout it manages fully promoted and Healthy (:func:`rollout_states`), and
    Argo CD reports the desired image running. A failed or errored operation, or Degraded health
    after the sync, is a failure; an aborted canary is ``Phase.ABORTED`` naming the service, the
    step and the metric; a canary paused on an Inconclusive analysis is ``Phase.INCONCLUSIVE``
    naming the service and the step (the metric stays in the AnalysisRun, which the Application's
    ``status.resources`` does not list).
    """
    state = _get(app, "status", "operationState")
    if _info(_get(state, "operation"), INFO_DEPLOY_ID) != deploy_id:
        if _get(app, "operation") is not None:
            return Assessment(Phase.QUEUED, "waiting for the application controller to start the sync")
        return Assessment(Phase.QUEUED, "waiting for the sync to be reported in status.operationState")
    phase = _get(state, "phase")
    message = str(_get(state, "message") or "")
    if phase in (PHASE_FAILED, PHASE_ERROR):
        return Assessment(Phase.FAILED, f"sync {str(phase).lower()}: {message}".rstrip(": "))
    if phase != PHASE_SUCCEEDED:
        return Assessment(Phase.RUNNING, f"sync {str(phase or 'pending').lower()}: {message}".rstrip(": "))
    applied, _ = image_from_parameters(_get(state, "syncResult"), desired.repository, service)
    if applied is not None and not desired.same_image(applied):
        return Assessment(
            Phase.FAILED,
            f"the sync applied {applied}, not the verified {desired}: the Application changed after it "
            "was verified; prod now runs an image staging has not verified",
        )
    sync, health = sync_status(app), health_status(app)
    rollouts = rollout_states(app)
    aborted = [r for r in rollouts or () if r.aborted]
    if aborted:
        # Argo Rollouts has already sent the traffic back to the stable version and scaled the
        # canary down; the region is not done and the deploy stops here.
        return Assessment(
            Phase.ABORTED,
            "; ".join(r.describe() for r in aborted) + "; the stable version serves all traffic",
        )
    if health == DEGRADED:
        detail = str(_get(app, "status", "health", "message") or "")
        degraded = [r.describe() for r in rollouts or () if r.phase == ROLLOUT_DEGRADED]
        detail = "; ".join([detail, *degraded]).strip("; ")
        return Assessment(Phase.DEGRADED, f"{sync}/{health}: {detail}".rstrip(": "))
    inconclusive = [r for r in rollouts or () if r.inconclusive]
    if inconclusive:
        # Final until a person acts: waiting would only run into the timeout. The canary keeps
        # its weight; the region is not done and the deploy stops here, like an abort.
        return Assessment(Phase.INCONCLUSIVE, "; ".join(r.describe() for r in inconclusive))
    canary = [r for r in rollouts or () if not r.done]
    if canary:
        return Assessment(
            Phase.SETTLING,
            f"sync succeeded; {sync}/{health}; canary: " + "; ".join(r.describe() for r in canary),
            mid_canary=True,
        )
    if rollouts is None and health == SUSPENDED:
        return Assessment(
            Phase.SETTLING, f"sync succeeded; {sync}/{health} (a canary is paused)", mid_canary=True
        )
    # The operation pins the verified source (sync_sources), so Image Updater may have moved the
    # spec to a newer tag meanwhile: Argo CD then compares the live state with that newer spec and
    # reports OutOfSync, as for any prod Application waiting for its next deploy. Only then is
    # OutOfSync no reason to wait; what runs must still be exactly the verified image.
    spec_image, _ = desired_image(app, desired.repository, service)
    moved_on = (
        spec_image
        if applied is not None and spec_image is not None and not desired.same_image(spec_image)
        else None
    )
    if (sync != SYNCED and moved_on is None) or health != HEALTHY:
        return Assessment(Phase.SETTLING, f"sync succeeded; now {sync}/{health}")
    running = running_images(app, desired.repository)
    if not running or not all(desired.same_image(image) for image in running):
        return Assessment(
            Phase.SETTLING,
            f"{sync}/{health}; waiting for Argo CD to report {desired} (now {_images_text(running)})",
        )
    if moved_on is not None:
        return Assessment(
            Phase.SUCCEEDED,
            f"{health}, running {desired}; the Application has since moved to {moved_on}, which a "
            "later deploy verifies",
        )
    return Assessment(Phase.SUCCEEDED, f"{sync}/{health}, running {desired}")
