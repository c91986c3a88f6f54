"""The hub's Rollout health check (infra/manifests/rollout_health.py) is Argo CD v3.4.4's own plus
the canary's step and weight, and the deploy's one reader reads what it writes.

Sources: argoproj/argo-cd at tag v3.4.4, resource_customizations/argoproj.io/Rollout/health.lua,
health_test.yaml and testdata/ (copied verbatim: infra/manifests/argocd_rollout_health_v3.4.4.lua
and tests/contracts/argocd_rollout_health_v3.4.4/); docs/operator-manual/health.md ("Way 1":
argocd-cm's resource.customizations.health.<group>_<kind> replaces the built-in check). Argo CD
runs health scripts in gopher-lua (Lua 5.1) with the resource as the global ``obj``; the tests run
them in Lua 5.1 through lupa, with the same global. What this does not model: gopher-lua's own
conversion of the object (JSON numbers become Lua numbers in both).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import deploy_model
from infra.config import PROJECT_ROOT
from infra.manifests import argocd as argocd_manifests
from infra.manifests import rollout_health

FIXTURES = Path(__file__).with_name("argocd_rollout_health_v3.4.4")
# sha256 of argo-cd v3.4.4 resource_customizations/argoproj.io/Rollout/health.lua
# (`git show v3.4.4:resource_customizations/argoproj.io/Rollout/health.lua | sha256sum`).
UPSTREAM_SHA256 = "1100b787e08768379704f299dfc52dc9cb9e2ed4849f6c408b00003aee316e40"


def test_the_vendored_script_is_argo_cd_v3_4_4s() -> None:
    """health.lua at v3.4.4, byte for byte."""
    assert hashlib.sha256(rollout_health.upstream_health_lua().encode()).hexdigest() == UPSTREAM_SHA256


def test_our_script_is_upstreams_but_for_the_documented_addition() -> None:
    ours = rollout_health.rollout_health_lua()
    assert ours.count(rollout_health.ADDITION) == 1
    assert ours.replace(rollout_health.ADDITION, "", 1) == rollout_health.upstream_health_lua()
    # Inserted in the phase branch (the one every Rollout of controller v1.0+ takes), right after
    # the message is set and before the branch returns.
    after = ours.split(rollout_health.ANCHOR, 1)[1]
    assert after.startswith(rollout_health.ADDITION)
    assert after[len(rollout_health.ADDITION) :].lstrip().startswith("return hs")


def test_the_hub_installs_it_in_argocd_cm() -> None:
    """docs/operator-manual/health.md: the key is resource.customizations.health.<group>_<kind>."""
    from infra.config import load_stack_file

    for stack in ("staging", "prod"):
        config = load_stack_file(stack, PROJECT_ROOT)
        cm = argocd_manifests.argocd_values(config)["configs"]["cm"]
        assert cm["resource.customizations.health.argoproj.io_Rollout"] == rollout_health.rollout_health_lua()


def _fixtures() -> list[tuple[str, dict[str, str]]]:
    tests = yaml.safe_load((FIXTURES / "health_test.yaml").read_text())["tests"]
    return [(t["inputPath"], t["healthStatus"]) for t in tests]


def _run(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    lua51 = pytest.importorskip("lupa.lua51", reason="lupa (a dev dependency) runs the Lua")
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    # What an argocd-cm health check sees (argo-cd v3.4.4 util/lua/lua.go
    # runLuaWithResourceActionParameters without useOpenLibs): the base library, table, package
    # and a safe os; no string, math, io or debug. Lua 5.1's base library is modelled by _G
    # without those.
    call = runtime.eval(
        "function(obj, src)"
        "  local env = {obj = obj};"
        "  for k, v in pairs(_G) do env[k] = v end;"
        "  env.string = nil; env.math = nil; env.io = nil; env.debug = nil; env.coroutine = nil;"
        "  local f = assert(loadstring(src));"
        "  setfenv(f, env);"
        "  return f()"
        " end"
    )
    result = call(runtime.table_from(obj, recursive=True), script)
    return {k: result[k] for k in ("status", "message") if result[k] is not None}


def _where(obj: dict[str, Any], upstream: dict[str, Any]) -> str | None:
    """The canary part ADDITION should append, computed here from the object: only where
    upstream took its phase branch (its result is the Rollout's own phase and message; the
    branches before it, such as a generation not yet observed, return without the addition)."""
    status = obj.get("status") or {}
    steps = ((obj.get("spec") or {}).get("strategy") or {}).get("canary", {}) or {}
    phase = status.get("phase")
    if phase is None or "steps" not in steps or status.get("currentStepIndex") is None:
        return None
    if (upstream["status"], upstream.get("message", "")) != (
        "Suspended" if phase == "Paused" else phase,
        status.get("message") or "",
    ):
        return None
    where = f"canary step {int(status['currentStepIndex'])}/{len(steps['steps'])}"
    weight = ((status.get("canary") or {}).get("weights") or {}).get("canary", {}).get("weight")
    if weight is not None:
        where += f", weight {int(weight)}%"
    return where


@pytest.mark.parametrize(("path", "expected"), _fixtures(), ids=[p for p, _ in _fixtures()])
def test_upstream_fixtures_through_both_scripts_and_the_reader(path: str, expected: dict[str, str]) -> None:
    """health_test.yaml's expectations hold for upstream's script as run here (the harness is
    faithful), and for ours with the canary part appended exactly when the Rollout has a phase,
    canary steps and a step index; the deploy's reader gives back upstream's message, the step
    and the weight."""
    obj = yaml.safe_load((FIXTURES / path).read_text())
    want = {"status": expected["status"], "message": expected.get("message", "")}
    upstream = _run(rollout_health.upstream_health_lua(), obj)
    assert {"status": upstream["status"], "message": upstream.get("message", "")} == want
    ours = _run(rollout_health.rollout_health_lua(), obj)
    where = _where(obj, upstream)
    message = want["message"] if where is None else f"{want['message']} [{where}]".lstrip()
    assert ours == {"status": want["status"], "message": message} or (not message and "message" not in ours)
    states = deploy_model.rollout_states(
        {"status": {"resources": [{"group": "argoproj.io", "kind": "Rollout", "name": "r", "health": ours}]}}
    )
    assert states is not None
    (state,) = states
    assert state.message == want["message"]
    if where is not None:
        assert state.step_index == obj["status"]["currentStepIndex"]
        assert state.steps == len(obj["spec"]["strategy"]["canary"]["steps"])


def test_a_traffic_routed_canary_gets_its_weight() -> None:
    """No upstream fixture routes traffic; status.canary.weights.canary.weight (the Rollout CRD of
    argo-rollouts v1.9.0) is what the controller records when it does."""
    obj = yaml.safe_load((FIXTURES / "testdata/suspended_v1.0_pausedRollout.yaml").read_text())
    obj["status"]["canary"] = {"weights": {"canary": {"weight": 10}, "stable": {"weight": 90}}}
    ours = _run(rollout_health.rollout_health_lua(), obj)
    assert ours == {"status": "Suspended", "message": "CanaryPauseStep [canary step 1/8, weight 10%]"}
    states = deploy_model.rollout_states(
        {"status": {"resources": [{"group": "argoproj.io", "kind": "Rollout", "name": "r", "health": ours}]}}
    )
    assert states is not None
    (state,) = states
    assert (state.phase, state.step_index, state.steps, state.weight) == ("Paused", 1, 8, 10)
    # Upstream's fixture is not the chart's setWeight/pause/analysis triples, so the reader names
    # the Rollout's own step (infra.deploy_model RolloutState.describe).
    assert state.describe() == "r: Paused at rollout step 1/8, weight 10% (CanaryPauseStep)"
