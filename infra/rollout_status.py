"""Where an Argo Rollouts canary stands, as pure functions (shared by the fleet view and the deploy).

Two sources, both plain dicts:

* a ``Rollout`` object (``argoproj.io/v1alpha1``; the CRD the pinned argo-rollouts chart
  installs, ``../shared/crds/argo-rollouts/rollouts.argoproj.io.yaml``): :func:`canary_status`
  reads ``spec.strategy.canary.steps``, ``status.currentStepIndex`` (steps done; equal to the
  number of steps when fully promoted), ``status.phase`` (Healthy, Progressing, Paused,
  Degraded), ``status.abort``, ``status.message``, ``status.canary.weights.canary.weight`` and
  ``status.canary.currentStepAnalysisRunStatus`` (the failing analysis and its message);
* an Argo CD ``Application`` whose controller persists resource health
  (``status.resources[].health``): :func:`application_canaries` reads the entries of kind
  ``Rollout``. Argo CD's health check for a Rollout surfaces the Rollout's own ``status.phase``
  (``Paused`` as ``Suspended``) and ``status.message`` (argo-cd v3.4.4
  resource_customizations/argoproj.io/Rollout/health.lua). Since Argo CD 3.0 that health is kept
  out of the Application unless ``controller.resource.health.persist`` is ``"true"``
  (argo-cd v3.4.4 docs/operator-manual/upgrading/2.14-3.0.md); without it the entries carry no
  health and only the Application's aggregated health (``Suspended`` while a canary pauses) is
  known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROLLOUT_GROUP = "argoproj.io"
ROLLOUT_KIND = "Rollout"

# Rollout status.phase values (argo-rollouts pkg/apis/rollouts/v1alpha1 RolloutPhase).
PHASE_HEALTHY = "Healthy"
PHASE_PROGRESSING = "Progressing"
PHASE_PAUSED = "Paused"
PHASE_DEGRADED = "Degraded"
# What Argo CD's Rollout health check reports for a paused Rollout.
HEALTH_SUSPENDED = "Suspended"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


@dataclass(frozen=True)
class Canary:
    """One Rollout's canary: ``step`` of ``steps`` (None when unknown), ``weight`` in percent."""

    name: str
    phase: str
    step: int | None = None
    steps: int | None = None
    weight: int | None = None
    aborted: bool = False
    message: str = ""
    analysis: str = ""  # the current step's AnalysisRun: "<name> <status>: <message>"

    @property
    def promoted(self) -> bool:
        """Fully promoted and Healthy: every step done (when the steps are known)."""
        done = self.step is None or self.steps is None or self.step >= self.steps
        return self.phase == PHASE_HEALTHY and done and not self.aborted

    def describe(self) -> str:
        """One short line: ``web: step 2/4 (20%), Paused`` or ``web: ABORTED at step 1/4: ...``."""
        where = ""
        if self.step is not None and self.steps is not None:
            where = f"step {min(self.step + (0 if self.promoted else 1), self.steps)}/{self.steps}"
            if self.promoted:
                where = f"promoted ({self.steps}/{self.steps})"
        if self.weight is not None and not self.promoted:
            where = f"{where} ({self.weight}%)".strip()
        if self.aborted:
            text = f"{self.name}: ABORTED" + (f" at {where}" if where else "")
            detail = self.analysis or self.message
            return f"{text}: {detail}" if detail else text
        parts = [p for p in (where, self.phase) if p]
        text = f"{self.name}: {', '.join(parts)}"
        return f"{text}: {self.message}" if self.message and not self.promoted else text


def canary_status(rollout: Mapping[str, Any]) -> Canary:
    """The canary of one Rollout object (see the module docstring for the fields read)."""
    name = str(_get(rollout, "metadata", "name") or "")
    steps = _get(rollout, "spec", "strategy", "canary", "steps")
    index = _get(rollout, "status", "currentStepIndex")
    weight = _get(rollout, "status", "canary", "weights", "canary", "weight")
    run = _get(rollout, "status", "canary", "currentStepAnalysisRunStatus")
    analysis = ""
    if isinstance(run, Mapping) and run.get("name"):
        analysis = f"{run['name']} {run.get('status') or ''}".strip()
        if run.get("message"):
            analysis += f": {run['message']}"
    return Canary(
        name=name,
        phase=str(_get(rollout, "status", "phase") or "Unknown"),
        step=index if isinstance(index, int) else None,
        steps=len(steps) if isinstance(steps, list) else None,
        weight=weight if isinstance(weight, int) else None,
        aborted=_get(rollout, "status", "abort") is True,
        message=str(_get(rollout, "status", "message") or ""),
        analysis=analysis,
    )


def application_canaries(app: Mapping[str, Any]) -> tuple[Canary, ...]:
    """The Rollouts an Application manages, as its ``status.resources`` report them.

    The phase is the persisted health (``Suspended`` shown as the Rollout's ``Paused``); an
    entry without health (Argo CD 3.x's default) is ``Unknown``. A Degraded Rollout whose
    message says it was aborted (``RolloutAborted``) counts as aborted.
    """
    found: list[Canary] = []
    for resource in _get(app, "status", "resources") or ():
        if not isinstance(resource, Mapping):
            continue
        if resource.get("kind") != ROLLOUT_KIND or resource.get("group") != ROLLOUT_GROUP:
            continue
        raw = resource.get("health")
        health: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        status = str(health.get("status") or "Unknown")
        message = str(health.get("message") or "")
        found.append(
            Canary(
                name=str(resource.get("name") or ""),
                phase=PHASE_PAUSED if status == HEALTH_SUSPENDED else status,
                aborted=status == PHASE_DEGRADED and "abort" in message.lower(),
                message=message,
            )
        )
    return tuple(found)
