"""``platform fleet`` against the deploy tests' fake hubs (real client, real kubeconfig, real HTTP).

Expectations come from the loaded stack files (regions, Application names, the sentinel
repository), never from the example's values.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from infra import cli, fleet, naming
from infra.deploy_model import ExitCode
from infra.rollout_status import Canary, application_canaries, canary_status
from tests.unit.test_deploy_fakehub import (
    NEW_TAG,
    OLD_TAG,
    OTHER_TAG,
    Harness,
    closed_port,
    make_application,
    write_kubeconfig,
)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def seed_all_regions(h: Harness, *, prod_tag: str = NEW_TAG, staging_tag: str = NEW_TAG) -> None:
    """Every region of both stack files: staging Synced/Healthy on ``staging_tag``, prod moved to
    ``prod_tag`` by Image Updater and still running OLD_TAG."""
    for region in h.staging_config.region_names:
        h.staging.add(make_application(h.staging_config, region, tag=staging_tag, running_tag=staging_tag))
    for region in h.prod_config.region_names:
        h.prod.add(make_application(h.prod_config, region, tag=prod_tag, running_tag=OLD_TAG))


def run(h: Harness, *flags: str, kubeconfig: Path | None = None) -> tuple[int, str]:
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=False, color_system=None)
    code = fleet.run(
        kubeconfig=str(kubeconfig or h.kubeconfig),
        as_json="--json" in flags,
        console=console,
    )
    return code, out.getvalue()


def rows(output: str) -> list[dict[str, Any]]:
    return list(json.loads(output)["applications"])


def repository(h: Harness) -> str:
    return naming.repository_name(h.prod_config.ecr.prefix, h.prod_config.sentinel_service)


def test_both_stacks_every_region_desired_running_and_verified(h: Harness) -> None:
    seed_all_regions(h)
    code, output = run(h, "--json")
    assert code == ExitCode.OK, output
    doc = json.loads(output)
    expected = [("staging", r) for r in h.staging_config.region_names] + [
        ("prod", r) for r in h.prod_config.region_names
    ]
    assert [(r["stack"], r["region"]) for r in doc["applications"]] == expected
    repo = repository(h)
    for row in doc["applications"]:
        assert row["desired"] == f"{repo}:{NEW_TAG}"
        if row["stack"] == "staging":
            assert row["running"] == [f"{repo}:{NEW_TAG}"] and row["verified"] is None
            assert (row["sync"], row["health"]) == ("Synced", "Healthy")
        else:
            # Image Updater moved the tag; the old one still runs; staging runs the new one.
            assert row["running"] == [f"{repo}:{OLD_TAG}"] and row["sync"] == "OutOfSync"
            assert row["verified"] is True, row
    assert all(h_["reachable"] for h_ in doc["hubs"])
    # Only reads, and only `get`: the staging verifier role grants nothing else.
    assert h.staging.used_verbs() == {"get"} and h.prod.used_verbs() == {"get"}
    assert h.prod.touched() == [] and h.staging.touched() == []


def test_an_image_staging_does_not_run_is_not_verified(h: Harness) -> None:
    seed_all_regions(h, prod_tag=NEW_TAG, staging_tag=OTHER_TAG)
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    prod_rows = [r for r in rows(output) if r["stack"] == "prod"]
    assert prod_rows and all(r["verified"] is False for r in prod_rows)
    assert all(OTHER_TAG in r["verification"] for r in prod_rows)


def test_an_unreachable_hub_is_named_the_other_still_shown_exit_6(h: Harness, tmp_path: Path) -> None:
    seed_all_regions(h)
    kubeconfig = write_kubeconfig(
        tmp_path / "half",
        {h.prod_context: h.prod.url, h.staging_context: f"http://127.0.0.1:{closed_port()}"},
    )
    code, output = run(h, "--json", kubeconfig=kubeconfig)
    assert code == ExitCode.API_ERROR
    doc = json.loads(output)
    hubs = {hub["stack"]: hub for hub in doc["hubs"]}
    assert hubs["staging"]["reachable"] is False and "unreachable" in hubs["staging"]["error"]
    assert hubs["prod"]["reachable"] is True
    for row in doc["applications"]:
        if row["stack"] == "staging":
            assert row["problem"] == "hub unreachable" and row["desired"] is None
        else:
            assert row["desired"] and row["running"], row  # prod is still read
            assert row["verified"] is None and row["verification"] == "staging hub unreachable"
    # The table says it in words a person sees at once.
    code, text = run(h, kubeconfig=kubeconfig)
    assert code == ExitCode.API_ERROR
    assert f"staging hub NOT REACHED (context {h.staging_context})" in " ".join(text.split())


def test_a_context_missing_from_the_kubeconfig_is_an_unreachable_hub(h: Harness, tmp_path: Path) -> None:
    seed_all_regions(h)
    kubeconfig = write_kubeconfig(tmp_path / "prod-only", {h.prod_context: h.prod.url})
    code, output = run(h, "--json", kubeconfig=kubeconfig)
    assert code == ExitCode.API_ERROR
    hubs = {hub["stack"]: hub for hub in json.loads(output)["hubs"]}
    assert h.staging_context in hubs["staging"]["error"]
    assert hubs["prod"]["reachable"]


def test_a_missing_application_and_a_missing_tag_are_rows_not_failures(h: Harness) -> None:
    seed_all_regions(h)
    first, *_ = h.prod_config.region_names
    del h.prod.apps[h.prod.app_name(first)]
    last = h.staging_config.region_names[-1]
    h.staging.add(make_application(h.staging_config, last, tag=None, running_tag=OLD_TAG))
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    by = {(r["stack"], r["region"]): r for r in rows(output)}
    assert "no Application" in by[("prod", first)]["problem"]
    assert "image.tag" in by[("staging", last)]["problem"] and by[("staging", last)]["desired"] is None


def test_the_canary_step_is_shown_when_a_rollout_exists(h: Harness) -> None:
    seed_all_regions(h)
    region = h.prod_config.region_names[0]
    app = h.prod.apps[h.prod.app_name(region)]
    app["status"]["health"] = {"status": "Suspended"}
    app["status"]["resources"] = [
        {
            "group": "argoproj.io",
            "kind": "Rollout",
            "name": "shop-web",
            "health": {"status": "Suspended", "message": "CanaryPauseStep"},
        }
    ]
    code, output = run(h, "--json")
    assert code == ExitCode.OK
    (row,) = [r for r in rows(output) if (r["stack"], r["region"]) == ("prod", region)]
    assert row["canary"] == ["shop-web: Paused: CanaryPauseStep"]
    _, text = run(h)
    assert "shop-web: Paused: CanaryPauseStep" in text


def test_the_cli_runs_the_fleet_view(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 6

    monkeypatch.setattr(fleet, "run", fake_run)
    assert cli.main(["fleet", "--json", "--staging-context", "s", "--context", "p"]) == 6
    assert calls[0]["as_json"] is True
    assert (calls[0]["prod_context"], calls[0]["staging_context"]) == ("p", "s")
    assert cli.main(["fleet", "--no-such-flag"]) == 2


def test_a_bad_stack_is_a_usage_error() -> None:
    out = io.StringIO()
    assert fleet.run(stack="nosuch", console=Console(file=out)) == ExitCode.USAGE
    assert "Pulumi.<stack>.yaml" in " ".join(out.getvalue().split()) or "nosuch" in out.getvalue()


# --------------------------------------------------------------------------------------------
# The Rollout reading shared with the deploy (infra/rollout_status.py)
# --------------------------------------------------------------------------------------------


def rollout(index: int | None, phase: str, *, abort: bool = False, **status: Any) -> dict[str, Any]:
    steps = [{"setWeight": 20}, {"pause": {"duration": "5m"}}, {"setWeight": 50}, {"pause": {}}]
    body: dict[str, Any] = {"phase": phase, **status}
    if index is not None:
        body["currentStepIndex"] = index
    if abort:
        body["abort"] = True
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "shop-web"},
        "spec": {"strategy": {"canary": {"steps": steps}}},
        "status": body,
    }


def test_canary_status_reads_step_weight_and_promotion() -> None:
    paused = canary_status(
        rollout(1, "Paused", message="CanaryPauseStep", canary={"weights": {"canary": {"weight": 20}}})
    )
    assert (paused.step, paused.steps, paused.weight, paused.promoted) == (1, 4, 20, False)
    assert paused.describe() == "shop-web: step 2/4 (20%), Paused: CanaryPauseStep"
    done = canary_status(rollout(4, "Healthy"))
    assert done.promoted and done.describe() == "shop-web: promoted (4/4), Healthy"
    # Healthy but steps left (a fresh status) is not promoted.
    assert not canary_status(rollout(2, "Healthy")).promoted


def test_canary_status_names_the_failed_analysis_of_an_aborted_rollout() -> None:
    aborted = canary_status(
        rollout(
            2,
            "Degraded",
            abort=True,
            message="RolloutAborted: Rollout aborted update to revision 3",
            canary={
                "currentStepAnalysisRunStatus": {
                    "name": "shop-web-7f9-3-2",
                    "status": "Failed",
                    "message": 'Metric "error-rate" assessed Failed due to failed (1) > failureLimit (0)',
                }
            },
        )
    )
    assert aborted.aborted and not aborted.promoted
    assert aborted.describe().startswith("shop-web: ABORTED at step 3/4: shop-web-7f9-3-2 Failed: Metric")


def test_canary_status_fields_exist_in_the_pinned_rollouts_crd() -> None:
    """The fields canary_status reads are in the Rollout CRD the pinned argo-rollouts chart
    installs (../shared/crds/argo-rollouts/rollouts.argoproj.io.yaml)."""
    import yaml

    from tests.conftest import SHARED

    path = SHARED / "crds" / "argo-rollouts" / "rollouts.argoproj.io.yaml"
    if not path.exists():
        pytest.skip(f"{path} is absent (CI always has ../shared)")
    crd = yaml.safe_load(path.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    status = schema["status"]["properties"]
    assert {"phase", "message", "abort", "currentStepIndex"} <= set(status)
    assert "weight" in status["canary"]["properties"]["weights"]["properties"]["canary"]["properties"]
    run = status["canary"]["properties"]["currentStepAnalysisRunStatus"]["properties"]
    assert {"name", "status", "message"} <= set(run)
    assert "steps" in schema["spec"]["properties"]["strategy"]["properties"]["canary"]["properties"]


def test_application_canaries_without_persisted_health_are_unknown() -> None:
    app = {"status": {"resources": [{"group": "argoproj.io", "kind": "Rollout", "name": "shop-web"}]}}
    assert application_canaries(app) == (Canary("shop-web", "Unknown"),)
    degraded = {
        "status": {
            "resources": [
                {
                    "group": "argoproj.io",
                    "kind": "Rollout",
                    "name": "shop-web",
                    "health": {"status": "Degraded", "message": "RolloutAborted: Rollout aborted update"},
                },
                {"group": "apps", "kind": "Deployment", "name": "other"},
            ]
        }
    }
    (canary,) = application_canaries(degraded)
    assert canary.aborted and canary.describe().startswith("shop-web: ABORTED")
