"""The prod deploy end to end: the real command, the real Kubernetes client, two fake hubs.

Each scenario asserts the exit code, the summary, and exactly which prod Applications were
touched (a patch attempted) and patched (a patch accepted); the later regions of a failed run
must be untouched, and staging is never written to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import deploy_model
from infra.config import load_stack_file
from infra.deploy_model import ExitCode
from infra.manifests.argocd import application_set
from tests.contracts import rollouts_upstream
from tests.unit.test_deploy_fakehub import (
    APP_SYNC_OPTIONS,
    NEW_TAG,
    OLD_TAG,
    OTHER_TAG,
    TAG_PARAMETER,
    Harness,
    Script,
    closed_port,
    images,
    make_application,
    rollout_name,
    write_kubeconfig,
)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def image(h: Harness) -> str:
    """The sentinel's repository, ``<ecr.prefix>/<sentinel>``: what the deploy verifies and reports."""
    return f"{h.prod_config.ecr.prefix}/{h.prod_config.sentinel_service}"


def names(h: Harness, *regions: str) -> list[str]:
    return [h.prod.app_name(r) for r in regions]


def info(patch: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in patch["operation"]["info"]}


def set_tag(app: dict[str, Any], tag: str) -> None:
    for parameter in app["spec"]["source"]["helm"]["parameters"]:
        if parameter["name"] == TAG_PARAMETER:
            parameter["value"] = tag


def assert_untouched_staging(h: Harness) -> None:
    assert h.staging.touched() == []
    assert h.staging.used_verbs() <= {"get"}


# --------------------------------------------------------------------------------------------
# Success
# --------------------------------------------------------------------------------------------


def test_all_healthy_syncs_every_region_in_order_one_at_a_time(h: Harness) -> None:
    h.seed()
    # When each region's sync is requested, every earlier region must already be done.
    seen_before_patch: dict[str, list[tuple[str, str, str]]] = {}
    for i, region in enumerate(h.order):

        def record(
            _app: dict[str, Any], region: str = region, earlier: tuple[str, ...] = h.order[:i]
        ) -> None:
            seen_before_patch[region] = [
                (
                    h.prod.apps[name]["status"]["operationState"]["phase"],
                    h.prod.apps[name]["status"]["sync"]["status"],
                    h.prod.apps[name]["status"]["health"]["status"],
                )
                for name in names(h, *earlier)
            ]

        h.prod.after_patch[h.prod.app_name(region)] = record

    result = h.run("--initiated-by", "alice")

    assert result.code == ExitCode.OK, result.output
    assert h.prod.patched() == names(h, *h.order)
    for region in h.order:
        assert seen_before_patch[region] == [("Succeeded", "Synced", "Healthy")] * h.order.index(region)
        row = result.row(region)
        assert row["result"] == "synced"
        assert row["image"] == f"{image(h)}:{NEW_TAG}"
        app = h.prod.apps[h.prod.app_name(region)]
        assert app["status"]["summary"]["images"][-1].endswith(f"/{image(h)}:{NEW_TAG}")
    for name, patch in h.prod.accepted_patches:
        assert patch["operation"]["initiatedBy"] == {"username": "alice"}
        assert patch["operation"]["sync"]["syncStrategy"] == {"hook": {}}
        assert info(patch)["deploy-id"] == "deploy-test-1"
        assert info(patch)["verified"].startswith("yes")
        assert f"shop-staging-{name.removeprefix('shop-prod-')}" in info(patch)["verified"]
    assert_untouched_staging(h)


def test_a_release_that_removes_a_resource_finishes_synced(h: Harness) -> None:
    # The new release no longer renders a service: Argo CD deletes its objects only with prune
    # (the fake controller follows gitops-engine); without it each region would stay OutOfSync
    # and the deploy would end as a timeout.
    removed = ("Deployment/shop-legacy", "Service/shop-legacy", "ServiceAccount/shop-legacy")
    h.seed(script=Script(removes=removed))

    result = h.run("--timeout", "120")

    assert result.code == ExitCode.OK, result.output
    assert [result.result(r) for r in h.order] == ["synced"] * len(h.order)
    for name, patch in h.prod.accepted_patches:
        sync = patch["operation"]["sync"]
        assert sync["prune"] is True
        # The controller reads only the operation's options: the Application's own come along.
        # The Application's options but Prune=confirm (the deploy's own prunes need no approval).
        assert sync["syncOptions"] == [
            *(o for o in APP_SYNC_OPTIONS if o != "Prune=confirm"),
            "PruneLast=true",
        ]
        app = h.prod.apps[name]
        assert app["status"]["sync"]["status"] == "Synced"
        assert {r["name"] for r in app["status"]["operationState"]["syncResult"]["resources"]} == {
            "shop-legacy"
        }


def test_without_prune_that_release_would_time_out(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 13 item 7, the behaviour before: the sync succeeds, the Application stays OutOfSync.
    monkeypatch.setattr(deploy_model, "PRUNE", False)
    h.seed(script=Script(removes=("Deployment/shop-legacy",)))

    result = h.run("--timeout", "60", "--poll-interval", "10")

    assert result.code == ExitCode.TIMED_OUT
    assert h.prod.apps[h.prod.app_name(h.order[0])]["status"]["sync"]["status"] == "OutOfSync"


def test_the_fakes_application_sync_options_are_the_templates() -> None:
    template = application_set(load_stack_file("prod"))["spec"]["template"]
    assert template["spec"]["syncPolicy"]["syncOptions"] == APP_SYNC_OPTIONS


def test_a_region_already_running_the_image_is_left_alone(h: Harness) -> None:
    h.seed()
    first = h.order[0]
    h.prod.add(make_application(h.prod_config, first, tag=NEW_TAG, running_tag=NEW_TAG))

    result = h.run()

    assert result.code == ExitCode.OK, result.output
    assert result.result(first) == "unchanged"
    assert h.prod.touched() == names(h, *h.order[1:])
    assert [result.result(r) for r in h.order[1:]] == ["synced"] * (len(h.order) - 1)


def test_a_transient_error_while_waiting_is_retried(h: Harness) -> None:
    h.seed()
    first = h.prod.app_name(h.order[0])
    h.prod.fail("watch", first, 503, times=2)

    result = h.run()

    assert result.code == ExitCode.OK, result.output
    assert h.prod.patched() == names(h, *h.order)
    assert all(result.result(r) == "synced" for r in h.order)
    assert "503" in result.output and "retrying" in result.output


# --------------------------------------------------------------------------------------------
# Refusals: nothing is changed
# --------------------------------------------------------------------------------------------


def test_image_mismatch_in_any_region_refuses_before_touching_anything(h: Harness) -> None:
    h.seed()
    last = h.order[-1]
    h.staging.add(make_application(h.staging_config, last, tag=OTHER_TAG, running_tag=OTHER_TAG))

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []
    row = result.row(last)
    assert row["result"] == "refused"
    assert f"runs {image(h)}:{OTHER_TAG}" in row["detail"]
    assert f"would deploy {image(h)}:{NEW_TAG}" in row["detail"]
    assert [result.result(r) for r in h.order[:-1]] == ["not started"] * (len(h.order) - 1)
    assert_untouched_staging(h)


def test_staging_running_the_image_but_degraded_is_refused(h: Harness) -> None:
    h.seed()
    first = h.order[0]
    h.staging.add(
        make_application(h.staging_config, first, tag=NEW_TAG, running_tag=NEW_TAG, health="Degraded")
    )

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []
    assert "Synced/Degraded" in result.row(first)["detail"]


def test_a_missing_prod_application_refuses(h: Harness) -> None:
    h.seed()
    middle = h.order[1]
    del h.prod.apps[h.prod.app_name(middle)]

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []
    assert result.result(middle) == "refused"
    assert "not found on the prod hub" in result.row(middle)["detail"]


def test_a_missing_staging_application_refuses(h: Harness) -> None:
    h.seed()
    first = h.order[0]
    del h.staging.apps[h.staging.app_name(first)]

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []
    assert "staging has no Application" in result.row(first)["detail"]


def test_an_application_without_an_image_tag_refuses(h: Harness) -> None:
    h.seed()
    first = h.order[0]
    h.prod.add(make_application(h.prod_config, first, tag=None, running_tag=OLD_TAG))

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []
    assert "no Helm parameter image.tag" in result.row(first)["detail"]


def test_an_operation_already_running_refuses(h: Harness) -> None:
    h.seed()
    app = h.prod.apps[h.prod.app_name(h.order[1])]
    app["status"]["operationState"]["phase"] = "Running"
    app["status"]["operationState"]["operation"]["initiatedBy"] = {"username": "bob"}

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []
    assert "started by bob is running" in result.row(h.order[1])["detail"]


def test_image_updater_moving_the_tag_between_check_and_patch_is_caught(h: Harness) -> None:
    h.seed()
    first = h.prod.app_name(h.order[0])
    # Image Updater writes a newer tag just before the deploy's (conditional) patch lands.
    h.prod.before_patch[first] = lambda app: set_tag(app, OTHER_TAG)

    result = h.run()

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == [first]  # the patch was attempted, and rejected with 409 Conflict
    assert h.prod.patched() == []
    assert f"would deploy {image(h)}:{OTHER_TAG}" in result.row(h.order[0])["detail"]


# --------------------------------------------------------------------------------------------
# Break-glass
# --------------------------------------------------------------------------------------------


def test_break_glass_with_yes_deploys_the_unverified_image_without_asking(h: Harness) -> None:
    h.seed(staging_tag=OTHER_TAG)

    result = h.run("--allow-unverified", "--yes")

    assert result.code == ExitCode.OK, result.output
    assert result.prompts == []
    assert h.prod.patched() == names(h, *h.order)
    assert all(info(p)["verified"].startswith("NO, break-glass") for _, p in h.prod.accepted_patches)
    assert "BREAK-GLASS" in result.output


def test_break_glass_with_the_environment_name_typed(h: Harness) -> None:
    h.seed(staging_tag=OTHER_TAG)

    result = h.run("--allow-unverified", answers=("prod",))

    assert result.code == ExitCode.OK, result.output
    assert len(result.prompts) == 1 and '"prod"' in result.prompts[0]
    assert h.prod.patched() == names(h, *h.order)
    assert all(result.result(r) == "synced" for r in h.order)


@pytest.mark.parametrize("answers", [("staging",), ("yes",), ()], ids=["wrong-name", "yes", "no-terminal"])
def test_break_glass_not_confirmed_changes_nothing(h: Harness, answers: tuple[str, ...]) -> None:
    h.seed(staging_tag=OTHER_TAG)

    result = h.run("--allow-unverified", answers=answers)

    assert result.code == ExitCode.REFUSED
    assert len(result.prompts) == 1
    assert h.prod.touched() == []
    assert all(result.result(r) == "refused" for r in h.order)


def test_break_glass_covers_only_the_unverified_regions_it_confirmed(h: Harness) -> None:
    h.seed()
    first, last = h.order[0], h.order[-1]
    h.staging.add(make_application(h.staging_config, last, tag=OTHER_TAG, running_tag=OTHER_TAG))
    # After the confirmation, Image Updater moves the second (verified) region to an image staging never ran.
    h.prod.before_patch[h.prod.app_name(h.order[1])] = lambda app: set_tag(app, OTHER_TAG)

    result = h.run("--allow-unverified", "--yes")

    assert result.code == ExitCode.REFUSED
    assert h.prod.patched() == names(h, first)
    assert result.result(h.order[1]) == "refused"
    assert result.result(last) == "not started"


def test_staging_hub_unreachable(h: Harness, tmp_path: Path) -> None:
    h.seed()
    write_kubeconfig(
        h.kubeconfig,
        {h.prod_context: h.prod.url, h.staging_context: f"http://127.0.0.1:{closed_port()}"},
    )

    refused = h.run()
    assert refused.code == ExitCode.API_ERROR
    assert h.prod.touched() == []
    assert "cannot verify against staging" in refused.row(h.order[0])["detail"]

    broken_glass = h.run("--allow-unverified", "--yes")
    assert broken_glass.code == ExitCode.OK, broken_glass.output
    assert h.prod.patched() == names(h, *h.order)


# --------------------------------------------------------------------------------------------
# Failures: stop at the first, later regions untouched
# --------------------------------------------------------------------------------------------


def test_an_application_that_goes_degraded_stops_the_deploy(h: Harness) -> None:
    h.seed()
    second = h.order[1]
    h.prod.scripts[h.prod.app_name(second)] = Script(progressing_reads=3, outcome="degraded")

    result = h.run()

    assert result.code == ExitCode.FAILED
    assert h.prod.touched() == names(h, *h.order[:2])
    assert [result.result(r) for r in h.order] == ["synced", "degraded"] + ["not started"] * (
        len(h.order) - 2
    )
    assert "timed out progressing" in result.row(second)["detail"]


def test_a_failed_sync_stops_the_deploy(h: Harness) -> None:
    h.seed()
    h.prod.scripts[h.prod.app_name(h.order[0])] = Script(outcome="failed")

    result = h.run()

    assert result.code == ExitCode.FAILED
    assert h.prod.touched() == names(h, h.order[0])
    assert result.result(h.order[0]) == "failed"
    assert "failed to apply" in result.row(h.order[0])["detail"]


def test_a_sync_that_never_finishes_times_out(h: Harness) -> None:
    h.seed()
    h.prod.scripts[h.prod.app_name(h.order[0])] = Script(outcome="stuck")
    started = h.clock.now()

    result = h.run("--timeout", "60", "--poll-interval", "10")

    assert result.code == ExitCode.TIMED_OUT
    assert h.prod.touched() == names(h, h.order[0])
    row = result.row(h.order[0])
    assert row["result"] == "timed out"
    assert "after 60s" in row["detail"]
    assert 60 <= h.clock.now() - started <= 75
    assert [result.result(r) for r in h.order[1:]] == ["not started"] * (len(h.order) - 1)


def test_the_configured_timeout_applies_without_the_flag(h: Harness) -> None:
    h.seed()
    h.prod.scripts[h.prod.app_name(h.order[0])] = Script(outcome="stuck")
    started = h.clock.now()

    result = h.run("--poll-interval", "30")

    assert result.code == ExitCode.TIMED_OUT
    configured = h.prod_config.deploy.timeout_seconds
    assert configured <= h.clock.now() - started <= configured + 35


def test_image_updater_moving_the_tag_after_the_patch_does_not_change_what_is_synced(h: Harness) -> None:
    """The operation pins the verified source (argo-cd v3.4.4 controller/sync.go
    ``newSyncOperationResult``), so a tag Image Updater writes between the patch and the start of
    the sync is not deployed; the Application shows OutOfSync against the newer tag, and the
    deploy still succeeds, running only the verified image."""
    h.seed()
    first = h.prod.app_name(h.order[0])
    h.prod.after_patch[first] = lambda app: set_tag(app, OTHER_TAG)

    result = h.run()

    assert result.code == ExitCode.OK
    assert h.prod.patched() == names(h, *h.order)
    for region in h.order:
        app = h.prod.apps[h.prod.app_name(region)]
        assert app["status"]["summary"]["images"] == images(h.prod_config, region, NEW_TAG)
    assert h.prod.apps[first]["status"]["sync"]["status"] == "OutOfSync"
    assert f"since moved to {image(h)}:{OTHER_TAG}" in result.row(h.order[0])["detail"]


def test_a_sync_that_applied_another_image_is_a_failure(h: Harness) -> None:
    """Should the controller apply anything but the verified image anyway (an operation written
    without the pinned source, as before it), the deploy reports it instead of succeeding."""
    h.seed()
    first = h.prod.app_name(h.order[0])

    def drop_source_then_move(app: dict[str, Any]) -> None:
        app["operation"]["sync"].pop("source")
        set_tag(app, OTHER_TAG)

    h.prod.after_patch[first] = drop_source_then_move

    result = h.run()

    assert result.code == ExitCode.FAILED
    assert h.prod.patched() == [first]
    assert f"not the verified {image(h)}:" in result.row(h.order[0])["detail"]


@pytest.mark.parametrize("status", [403, 500])
def test_an_api_error_on_the_patch_stops_the_deploy(h: Harness, status: int) -> None:
    h.seed()
    second = h.prod.app_name(h.order[1])
    h.prod.fail("patch", second, status, times=5)

    result = h.run()

    assert result.code == ExitCode.API_ERROR
    assert h.prod.touched() == names(h, *h.order[:2])
    assert h.prod.patched() == names(h, h.order[0])
    assert [result.result(r) for r in h.order] == ["synced", "api error"] + ["not started"] * (
        len(h.order) - 2
    )
    assert f"HTTP {status}" in result.row(h.order[1])["detail"]


def test_a_forbidden_watch_ends_with_the_state_unknown(h: Harness) -> None:
    h.seed()
    h.prod.fail("watch", h.prod.app_name(h.order[0]), 403)

    result = h.run()

    assert result.code == ExitCode.API_ERROR
    assert h.prod.touched() == names(h, h.order[0])
    assert "state is unknown" in result.row(h.order[0])["detail"]


def test_prod_hub_unreachable(h: Harness) -> None:
    h.seed()
    write_kubeconfig(
        h.kubeconfig,
        {h.prod_context: f"http://127.0.0.1:{closed_port()}", h.staging_context: h.staging.url},
    )

    result = h.run()

    assert result.code == ExitCode.API_ERROR
    assert "unreachable" in result.output
    assert h.staging.calls == []
    assert all(result.result(r) == "not started" for r in h.order)


def test_prod_hub_refusing_the_list(h: Harness) -> None:
    h.seed()
    h.prod.fail("list", None, 401)

    result = h.run()

    assert result.code == ExitCode.API_ERROR
    assert h.prod.touched() == []
    assert "HTTP 401" in result.output


# --------------------------------------------------------------------------------------------
# Dry run
# --------------------------------------------------------------------------------------------


def test_dry_run_reads_and_changes_nothing(h: Harness) -> None:
    h.seed()

    result = h.run("--dry-run")

    assert result.code == ExitCode.OK, result.output
    assert h.prod.touched() == []
    assert h.prod.used_verbs() <= {"list", "get"}
    assert all(result.result(r) == "would sync" for r in h.order)
    assert all(h.prod.apps[n]["status"]["summary"]["images"][0].endswith(OLD_TAG) for n in names(h, *h.order))


def test_dry_run_reports_a_refusal_with_its_exit_code(h: Harness) -> None:
    h.seed(staging_tag=OTHER_TAG)

    result = h.run("--dry-run")

    assert result.code == ExitCode.REFUSED
    assert h.prod.touched() == []


def test_dry_run_with_break_glass_never_prompts(h: Harness) -> None:
    h.seed(staging_tag=OTHER_TAG)

    result = h.run("--dry-run", "--allow-unverified")

    assert result.code == ExitCode.OK
    assert result.prompts == []
    assert h.prod.touched() == []
    assert all(result.result(r) == "would sync" for r in h.order)
    assert "UNVERIFIED" in result.row(h.order[0])["detail"]


def test_a_benign_conflict_is_re_verified_and_retried(h: Harness) -> None:
    h.seed()
    first = h.prod.app_name(h.order[0])
    # The controller's status write bumps resourceVersion between the deploy's read and its patch.
    h.prod.before_patch[first] = lambda app: app["status"].update(reconciledAt="2026-01-02T10:00:01Z")

    result = h.run()

    assert result.code == ExitCode.OK, result.output
    assert h.prod.touched() == [first, *names(h, *h.order)]
    assert h.prod.patched() == names(h, *h.order)
    assert all(result.result(r) == "synced" for r in h.order)
    assert "re-verifying" in result.output


# --------------------------------------------------------------------------------------------
# Canary releases (issue 19): Argo Rollouts under the Application
# --------------------------------------------------------------------------------------------

PAUSED = ("Suspended", rollouts_upstream.PAUSE_REASON_CANARY_STEP)
ANALYSING = ("Progressing", rollouts_upstream.WAITING_FOR_STEPS)
PROMOTED = ("Healthy", "")


def aborted_at(step: int, metric: str) -> tuple[str, str]:
    """Argo CD's health of a Rollout whose analysis at chart step ``step`` failed on ``metric``
    (the chart names analysis metrics step-<n>-<metric>), from the v1.9.0 transcriptions."""
    run = rollouts_upstream.analysis_run_message(
        f"step-{step}-{metric}", "Failed", rollouts_upstream.failure_limit_reason(1, 0)
    )
    status = rollouts_upstream.aborted_rollout_status(2, run, step_index=3 * step - 1, steps=6)
    health = rollouts_upstream.argocd_rollout_health({"metadata": {"generation": 2}, "status": status})
    return health["status"], health["message"]


def test_a_promoted_canary_finishes_each_region_only_when_every_rollout_is_healthy(h: Harness) -> None:
    h.seed()
    service = h.prod_config.sentinel_service
    script = Script(canary_service=service, canary=(PAUSED, ANALYSING, PAUSED, ANALYSING, PROMOTED))
    for region in h.order:
        h.prod.scripts[h.prod.app_name(region)] = script
        script = Script(canary_service=service, canary=script.canary)
    # A region's sync is requested only once the earlier region's canary is promoted.
    for i, region in enumerate(h.order[1:], start=1):
        earlier = h.prod.app_name(h.order[i - 1])

        def check(_app: dict[str, Any], earlier: str = earlier) -> None:
            rollouts = deploy_model.rollout_states(h.prod.apps[earlier])
            assert rollouts and all(r.done for r in rollouts)

        h.prod.before_patch[h.prod.app_name(region)] = check

    result = h.run()

    assert result.code == ExitCode.OK, result.output
    assert [result.result(r) for r in h.order] == ["synced"] * len(h.order)
    assert h.prod.patched() == names(h, *h.order)
    # The progress lines show the canary moving through its steps.
    assert "canary:" in result.output and "Paused (CanaryPauseStep)" in result.output
    assert_untouched_staging(h)


def test_an_aborted_canary_stops_the_deploy_naming_service_step_and_metric(h: Harness) -> None:
    h.seed()
    second = h.order[1]
    service = h.prod_config.services[0]
    h.prod.scripts[h.prod.app_name(second)] = Script(
        canary_service=service, canary=(PAUSED, ANALYSING, PAUSED, aborted_at(2, "error-rate"))
    )

    result = h.run()

    assert result.code == ExitCode.FAILED
    assert h.prod.touched() == names(h, *h.order[:2])
    assert [result.result(r) for r in h.order] == ["synced", "canary aborted"] + ["not started"] * (
        len(h.order) - 2
    )
    detail = result.row(second)["detail"]
    assert rollout_name(h.prod_config, service) in detail
    assert "step 2" in detail and "metric error-rate Failed" in detail
    assert "failureLimit" in detail
    assert_untouched_staging(h)


def test_an_inconclusive_analysis_stops_the_deploy_at_once_naming_service_and_chart_step(h: Harness) -> None:
    """A prod analysis without data ends Inconclusive and pauses the Rollout
    (``InconclusiveAnalysisRun``, rollouts_upstream / argo-rollouts v1.9.0), which stays so until
    a person acts: the deploy stops at the first such read, long before the timeout, and leaves
    the later regions untouched. The hub's health check adds ``[canary step <i>/<n>, weight
    <w>%]`` (infra/manifests/rollout_health.py); Rollout step index 2 is the chart's step 1."""
    h.seed()
    second = h.order[1]
    service = h.prod_config.services[0]
    inconclusive = (
        "Suspended",
        f"{deploy_model.PAUSE_REASON_INCONCLUSIVE_ANALYSIS} [canary step 2/6, weight 10%]",
    )
    h.prod.scripts[h.prod.app_name(second)] = Script(
        canary_service=service, canary=(PAUSED, ANALYSING, inconclusive)
    )

    result = h.run("--timeout", "900", "--poll-interval", "10")

    assert result.code == ExitCode.FAILED, result.output
    assert h.prod.touched() == names(h, *h.order[:2])
    assert [result.result(r) for r in h.order] == ["synced", "canary inconclusive"] + ["not started"] * (
        len(h.order) - 2
    )
    row = result.row(second)
    assert f"{rollout_name(h.prod_config, service)}: analysis inconclusive at step 1/2" in row["detail"]
    # Stopped when it was read, not at the deadline.
    assert float(row["time"].rstrip("s")) < 900 / 2, row
    assert_untouched_staging(h)


def test_a_canary_still_running_at_the_deadline_is_a_timeout_mid_canary(h: Harness) -> None:
    h.seed()
    service = h.prod_config.sentinel_service
    h.prod.scripts[h.prod.app_name(h.order[0])] = Script(canary_service=service, canary=(ANALYSING, PAUSED))

    result = h.run("--timeout", "60", "--poll-interval", "10")

    assert result.code == ExitCode.TIMED_OUT
    assert h.prod.touched() == names(h, h.order[0])
    row = result.row(h.order[0])
    assert row["result"] == "timed out"
    assert "mid-canary" in row["detail"]
    assert f"{rollout_name(h.prod_config, service)}: Paused (CanaryPauseStep)" in row["detail"]
    assert [result.result(r) for r in h.order[1:]] == ["not started"] * (len(h.order) - 1)
