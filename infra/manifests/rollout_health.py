"""The hub's health check for Argo Rollouts: Argo CD's own, plus the canary's step and weight.

Argo CD keeps only a status and a message per resource in the Application
(``status.resources[].health``). Its built-in check for a Rollout (argo-cd v3.4.4
``resource_customizations/argoproj.io/Rollout/health.lua``, kept verbatim beside this module as
``argocd_rollout_health_v3.4.4.lua``) surfaces the Rollout's ``status.phase`` and
``status.message``, which do not say where the canary stands. The hub's argocd-cm replaces that
check with the same script plus :data:`ADDITION`, which appends `` [canary step <i>/<n>, weight
<w>%]`` to the message: ``<i>`` is ``status.currentStepIndex`` (steps done), ``<n>`` the number of
``spec.strategy.canary.steps``, ``<w>`` ``status.canary.weights.canary.weight`` when the Rollout
routes traffic (absent otherwise: ``, weight ...`` is left out). A check in argocd-cm under
``resource.customizations.health.<group>_<kind>`` is used instead of the built-in one (argo-cd
v3.4.4 docs/operator-manual/health.md, "Way 1. Define a Custom Health Check in argocd-cm").

A check from argocd-cm runs without Lua's standard libraries unless
``resource.customizations.useOpenLibs.<group>_<kind>`` says otherwise (argo-cd v3.4.4
util/lua/lua.go ``runLuaWithResourceActionParameters`` opens only package, base, table and a safe
os; ``GetHealthScript`` opens all of them for built-in scripts only; health.md's note): the
hub leaves them closed, and the script, upstream's part included, uses nothing else
(``tostring``, ``table.getn``; gopher-lua's ``tostring`` of a whole number has no decimals).

The one reader of that message is :func:`infra.deploy_model.rollout_states` (the deploy and the
fleet view). ``tests/contracts/test_rollout_health_lua.py`` checks that the script is upstream's
but for the addition and runs upstream's test fixtures through it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

ARGOCD_CM_KEY = "resource.customizations.health.argoproj.io_Rollout"
UPSTREAM_FILE = Path(__file__).with_name("argocd_rollout_health_v3.4.4.lua")
# The line of upstream's phase branch after which the addition goes: hs.status and hs.message
# are the Rollout's phase and message there, and the script returns right after.
ANCHOR = "  hs.message = obj.status.message\n"
ADDITION = """\
  -- Added by the platform (infra/manifests/rollout_health.py): where the canary stands, which
  -- the Application's health would not carry otherwise. Read back by infra/deploy_model.py.
  local canary = obj.spec.strategy and obj.spec.strategy.canary
  if canary ~= nil and canary.steps ~= nil and obj.status.currentStepIndex ~= nil then
    local where = "canary step " .. tostring(obj.status.currentStepIndex) .. "/" .. tostring(table.getn(canary.steps))
    local weights = obj.status.canary and obj.status.canary.weights
    if weights ~= nil and weights.canary ~= nil and weights.canary.weight ~= nil then
      where = where .. ", weight " .. tostring(weights.canary.weight) .. "%"
    end
    if hs.message == nil or hs.message == "" then
      hs.message = "[" .. where .. "]"
    else
      hs.message = hs.message .. " [" .. where .. "]"
    end
  end
"""


def upstream_health_lua() -> str:
    """Argo CD v3.4.4's Rollout health check, verbatim."""
    return UPSTREAM_FILE.read_text(encoding="utf-8")


@cache
def rollout_health_lua() -> str:
    """The script for argocd-cm's :data:`ARGOCD_CM_KEY`: upstream's with :data:`ADDITION`.

    Raises ``ValueError`` if upstream's script no longer has the anchor line exactly once (a
    changed upstream must be looked at, not patched blindly)."""
    upstream = upstream_health_lua()
    if upstream.count(ANCHOR) != 1:
        raise ValueError(f"{UPSTREAM_FILE.name}: the line {ANCHOR.strip()!r} is not there exactly once")
    return upstream.replace(ANCHOR, ANCHOR + ADDITION)
