"""Each stack's canary schedule fits the deploy's wait per region (r19e finding 4).

The deploy waits up to ``platform:deploy.timeoutSeconds`` for a region to be Synced, Healthy and
every Rollout fully promoted (infra/deploy.py); a canary longer than that times out every deploy
mid-canary. The schedule is read from the stack's merged chart values (charts/shop values files,
``rollouts.steps`` and ``rollouts.analysis``), so a fork's own steps, pauses, measurement counts
and timeout are checked, not the example's.

What a canary takes, per entry of ``rollouts.steps`` (charts/shop/templates/_helpers.tpl
shop.canary: setWeight, pause, analysis):

* the pause;
* the analysis: ``count`` measurements ``interval`` apart, the first at once, so
  ``(count - 1) * interval`` (argo-rollouts v1.9.0 docs/features/analysis.md, "count",
  "interval");
* the scale event of the setWeight, and one more for the full promotion after the last step:
  the new pods start and pass their readiness probe (one ``probes.periodSeconds``), then the
  pod readiness gate waits for the load balancer to see them healthy: ``healthy-threshold-count``
  * ``healthcheck-interval-seconds``, defaults 2 * 15 s (aws-load-balancer-controller v3.5.0
  docs/guide/ingress/annotations.md; the chart sets neither). How long a container takes to
  start is the application's, not a documented figure: POD_START_SECONDS is this project's
  assumption.
"""

from __future__ import annotations

import re

import pytest

from infra.config import load_stack_file
from tests.unit.test_chart_render import COMBOS
from tests.unit.test_chart_values import Values, merged_values

# aws-load-balancer-controller v3.5.0 docs/guide/ingress/annotations.md defaults (not set by the chart).
ALB_HEALTHCHECK_INTERVAL_SECONDS = 15
ALB_HEALTHY_THRESHOLD_COUNT = 2
# Assumed: image pull and container start of a new canary pod, until its first readiness probe.
POD_START_SECONDS = 30

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def seconds(duration: str) -> float:
    """A Go duration as the charts write them (``3m``, ``90s``, ``1m30s``)."""
    parts = re.findall(r"([0-9]+)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * _UNITS[u] for n, u in parts)


def canary_seconds(values: Values) -> float:
    """The longest a healthy canary takes with these chart values (see the module docstring)."""
    rollouts = values["rollouts"]
    analysis = rollouts["analysis"]
    measuring = (int(analysis["count"]) - 1) * seconds(analysis["interval"])
    scale_event = (
        POD_START_SECONDS
        + int(values["probes"]["periodSeconds"])
        + ALB_HEALTHY_THRESHOLD_COUNT * ALB_HEALTHCHECK_INTERVAL_SECONDS
    )
    steps = rollouts["steps"]
    return sum(seconds(step["pause"]) + measuring for step in steps) + (len(steps) + 1) * scale_event


def test_the_schedule_sum_counts_every_part() -> None:
    values = {
        "rollouts": {
            "steps": [{"pause": "3m"}, {"pause": "1m30s"}],
            "analysis": {"count": 3, "interval": "1m"},
        },
        "probes": {"periodSeconds": 10},
    }
    scale_event = POD_START_SECONDS + 10 + ALB_HEALTHY_THRESHOLD_COUNT * ALB_HEALTHCHECK_INTERVAL_SECONDS
    assert canary_seconds(values) == 180 + 120 + 90 + 120 + 3 * scale_event


@pytest.mark.parametrize(("stack", "region"), COMBOS)
def test_the_canary_fits_the_deploys_timeout(stack: str, region: str) -> None:
    cfg = load_stack_file(stack)
    values = merged_values(cfg, region)
    if not values["rollouts"]["enabled"]:
        pytest.skip(f"{stack} {region}: rollouts are off, the release is a rolling update")
    needed = canary_seconds(values)
    timeout = cfg.deploy.timeout_seconds
    assert needed <= timeout, (
        f"{stack} {region}: the canary takes up to {needed:.0f}s (pauses, analyses, scale events) "
        f"but platform:deploy.timeoutSeconds is {timeout}: every deploy would time out mid-canary"
    )
