"""What GitHub and notifications-engine do, as the release records rely on it (one test per rule).

Sources: GitHub REST API 2022-11-28 (https://docs.github.com/en/rest/deployments/deployments,
https://docs.github.com/en/rest/deployments/statuses); GitHub Actions token permissions
(https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication);
argoproj/notifications-engine at 1dbe3de712f8 (the version argo-cd v3.4.4's go.mod pins):
pkg/services/github.go, pkg/api/config.go, pkg/triggers/service.go; argo-cd v3.4.4
notifications_catalog/triggers/, controller/appcontroller.go, controller/sync.go,
util/notification/expression/; argo-cd issues #9070 and #22203 (the on-deployed trigger's false
success). Trigger conditions are evaluated by tests/contracts/notifications_expr.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from infra import release_records
from infra.config import PROJECT_ROOT
from infra.manifests import notifications as n
from tests.contracts.notifications_expr import ExprError, evaluate, triggered


class RecordingApi(release_records.GitHubApi):
    """The real request bodies, captured instead of sent."""

    def __init__(self) -> None:
        super().__init__(repository="acme/platform", token="t")
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append((path, body))
        return {"id": 7}


def test_github_create_deployment_defaults_merge_and_check_contexts_so_the_record_turns_them_off() -> None:
    """GitHub REST "Create a deployment": ``auto_merge`` defaults to true (merge the default branch
    into ``ref``) and omitting ``required_contexts`` verifies every status context (409 when one
    is not success); an empty array bypasses the check."""
    api = RecordingApi()
    api.create_deployment(ref="a" * 40, environment="prod/eu-west-1", payload={"image": "x"}, description="d")
    (path, body), *_ = api.bodies
    assert path == "/deployments"
    assert body["auto_merge"] is False and body["required_contexts"] == []
    assert body["environment"] == "prod/eu-west-1" and body["ref"] == "a" * 40


def test_github_deployment_status_descriptions_are_at_most_140_characters() -> None:
    """GitHub REST "Create a deployment status": ``description`` maximum length 140."""
    api = RecordingApi()
    api.create_status(7, state="failure", description="x" * 500, log_url=None)
    (_, body), *_ = api.bodies
    assert len(body["description"]) == 140 and body["state"] == "failure"


def test_github_deployment_states_are_the_documented_set() -> None:
    """GitHub REST "Create a deployment status": state is one of error, failure, inactive,
    in_progress, queued, pending, success."""
    assert {
        "error",
        "failure",
        "inactive",
        "in_progress",
        "queued",
        "pending",
        "success",
    } == release_records.STATES
    assert set(release_records.FINAL_STATES.values()) | {
        release_records.QUEUED,
        release_records.IN_PROGRESS,
    } <= (release_records.STATES)


def test_the_job_token_needs_deployments_write_and_only_the_deploy_job_gets_it() -> None:
    """GitHub Actions: GITHUB_TOKEN has only the permissions the job's ``permissions`` lists;
    creating deployments and statuses needs ``deployments: write``."""
    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "deploy-prod.yml").read_text())
    job = workflow["jobs"]["deploy"]
    assert workflow["permissions"] == {}
    assert job["permissions"]["deployments"] == "write"
    (step,) = [s for s in job["steps"] if "infra.deploy" in str(s.get("run", ""))]
    assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


def test_notifications_engine_github_deployments_default_to_auto_merge_so_templates_turn_it_off() -> None:
    """notifications-engine pkg/services/github.go (1dbe3de712f8) GetTemplater: a nil
    ``deployment.autoMerge`` becomes true; ``requiredContexts`` is passed through as given."""
    for text in n.templates().values():
        deployment = yaml.safe_load(text)["github"]["deployment"]
        assert deployment["autoMerge"] is False and deployment["requiredContexts"] == []


def test_notifications_engine_replaces_dollar_keys_of_the_secret_in_service_config() -> None:
    """notifications-engine pkg/api/config.go (1dbe3de712f8): ``keyPattern = [$][\\w-]+``, each match
    in a service's YAML replaced by that key of the notifications Secret."""
    pattern = re.compile(r"[$][\w-]+")
    for key in (n.GITHUB_PRIVATE_KEY, n.CHAT_WEBHOOK_URL):
        assert pattern.fullmatch(f"${key}"), key


def test_notifications_engine_names_a_service_by_its_last_key_part() -> None:
    """notifications-engine pkg/api/config.go ParseConfig: ``service.<type>`` is named <type>,
    ``service.webhook.<name>`` is named <name>; recipients are ``<service>[:<recipient>]``."""

    class Settings:
        github_app = type("App", (), {"app_id": 1, "installation_id": 2})()
        chat_webhook_secret = "platform/staging/chat"

    class Config:
        notifications = Settings()

    names = {key.split(".")[-1] for key in n.notifiers(Config())}  # type: ignore[arg-type]
    assert names == {n.GITHUB_SERVICE, n.CHAT_SERVICE}


def test_the_catalog_triggers_fire_on_the_operation_phase_and_health() -> None:
    """argo-cd v3.4.4 notifications_catalog/triggers/on-sync-running.yaml (phase in ['Running']),
    on-sync-succeeded.yaml (['Succeeded']), on-sync-failed.yaml (['Error', 'Failed']),
    on-health-degraded.yaml (health.status == 'Degraded')."""
    conditions = " ".join(yaml.safe_load(t)[0]["when"] for t in n.triggers().values())
    for phrase in ("in ['Running']", "in ['Succeeded']", "in ['Error', 'Failed']", "== 'Degraded'"):
        assert phrase in conditions


# argo-cd v3.4.4 notifications_catalog/triggers/on-deployed.yaml `when`, verbatim.
CATALOG_ON_DEPLOYED_V3_4_4 = (
    "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded'] and "
    "app.status.health.status == 'Healthy' and "
    "(!time.Parse(app.status.health.lastTransitionTime).Add(1 * time.Minute)"
    ".Before(time.Parse(app.status.operationState.finishedAt)) or "
    "time.Parse(app.status.health.lastTransitionTime).Before(time.Parse(app.status.operationState.startedAt)))"
)
REVISION, OLDER = "a" * 40, "b" * 40


def application(
    *,
    health_since: str | None,
    phase: str = "Succeeded",
    synced: str = REVISION,
    current: str = REVISION,
    sync_status: str = "Synced",
) -> dict[str, Any]:
    """An Application's status as the controller persists it: the operation started at 10:00:00
    and finished at 10:00:05 (applied; the last wave's health is not awaited)."""
    health: dict[str, Any] = {"status": "Healthy"}
    if health_since is not None:
        health["lastTransitionTime"] = health_since
    return {
        "status": {
            "operationState": {
                "phase": phase,
                "startedAt": "2026-12-01T10:00:00Z",
                "finishedAt": "2026-12-01T10:00:05Z",
                "syncResult": {"revision": synced},
            },
            "sync": {"status": sync_status, "revision": current},
            "health": health,
        }
    }


def succeeded_when() -> str:
    (condition,) = yaml.safe_load(n.triggers()[f"trigger.{n.TRIGGER_SUCCEEDED}"])
    assert condition["when"] == n.SUCCEEDED_WHEN
    return str(condition["when"])


def test_the_catalogs_on_deployed_fires_on_the_healthy_of_before_the_sync_and_ours_does_not() -> None:
    """argo-cd v3.4.4 notifications_catalog/triggers/on-deployed.yaml: its last clause
    (``lastTransitionTime.Before(startedAt)``, added by argo-cd PR #22204 for syncs that change no
    health) is true when health has not changed since before the sync, i.e. the old pods'
    Healthy (argo-cd issues #9070, #22203). controller/appcontroller.go persistAppStatus (v3.4.4)
    sets status.health.lastTransitionTime only when the health status changes."""
    before = application(health_since="2026-12-01T09:00:00Z")  # Healthy since the last release
    assert triggered(CATALOG_ON_DEPLOYED_V3_4_4, before)
    assert not triggered(succeeded_when(), before)
    # The new pods: Progressing at 10:00:06, Healthy again at 10:02:00.
    after = application(health_since="2026-12-01T10:02:00Z")
    assert triggered(succeeded_when(), after)
    # Healthy again exactly when the operation started still counts (not Before).
    assert triggered(succeeded_when(), application(health_since="2026-12-01T10:00:00Z"))


def test_success_needs_the_operation_of_the_revision_argo_cd_compares_with_now() -> None:
    """argo-cd v3.4.4 controller/sync.go SyncAppState: operationState.syncResult.revision is the
    commit the operation synced; status.sync.revision the one Argo CD compares with now."""
    assert not triggered(succeeded_when(), application(health_since="2026-12-01T10:02:00Z", synced=OLDER))
    assert not triggered(
        succeeded_when(), application(health_since="2026-12-01T10:02:00Z", sync_status="OutOfSync")
    )
    assert not triggered(succeeded_when(), application(health_since="2026-12-01T10:02:00Z", phase="Running"))


def test_a_missing_transition_time_or_operation_is_not_a_success_and_not_an_error() -> None:
    """argo-cd v3.4.4 util/notification/expression/time/time.go: Parse panics on anything but
    RFC 3339; notifications-engine pkg/triggers/service.go Run: an evaluation error is "not
    triggered". The condition guards each field so it evaluates to false instead."""
    assert evaluate(succeeded_when(), application(health_since=None)) is False
    assert evaluate(succeeded_when(), {"status": {"health": {"status": "Healthy"}}}) is False
    # The catalog's condition errors on the same Application (time.Parse(nil)).
    with pytest.raises(ExprError):
        evaluate(CATALOG_ON_DEPLOYED_V3_4_4, application(health_since=None))


def when_of(trigger: str) -> tuple[str, str]:
    (condition,) = yaml.safe_load(n.triggers()[f"trigger.{trigger}"])
    return str(condition["when"]), str(condition["oncePer"])


def released(tag: str, *, operation: bool, phase: str | None, result: bool = True) -> dict[str, Any]:
    """An automated sync of ``tag`` at REVISION: ``operation`` requested (argo-cd v3.4.4
    controller/appcontroller.go autoSync: ``Sync.Revision`` the compared commit, ``Sync.Source``
    the spec's source), and the operation state in ``phase`` (None: no operation yet)."""
    source = {
        "helm": {
            "parameters": [{"name": "image.name", "value": "shop/web"}, {"name": "image.tag", "value": tag}]
        }
    }
    status: dict[str, Any] = {"sync": {"status": "OutOfSync", "revision": REVISION}}
    if phase is not None:
        state: dict[str, Any] = {"phase": phase, "startedAt": "2026-12-01T10:00:00Z"}
        if result:
            state["syncResult"] = {"revision": REVISION, "source": source}
        status["operationState"] = state
    app: dict[str, Any] = {"status": status}
    if operation:
        app["operation"] = {"sync": {"revision": REVISION, "source": source}}
    return app


def test_queued_is_a_requested_operation_that_has_not_started() -> None:
    """argo-cd v3.4.4 controller/appcontroller.go: autoSync sets ``operation`` (SetAppOperation)
    before the operation runs; processRequestedAppOperation persists a Running operationState
    (NewOperationState, no syncResult yet), setOperationState clears ``operation`` on completion."""
    when, _ = when_of(n.TRIGGER_QUEUED)
    assert triggered(when, released("v2", operation=True, phase="Succeeded"))  # the previous one
    assert triggered(when, released("v2", operation=True, phase=None))  # a first sync
    assert not triggered(when, released("v2", operation=True, phase="Running"))
    assert not triggered(when, released("v2", operation=False, phase="Succeeded"))
    # The running trigger waits for the resolved revision (controller/sync.go SyncAppState).
    running, _ = when_of(n.TRIGGER_RUNNING)
    assert not triggered(running, released("v2", operation=True, phase="Running", result=False))
    assert triggered(running, released("v2", operation=True, phase="Running"))


def test_a_release_is_its_commit_and_image_tag_the_same_for_queued_running_and_success() -> None:
    """notifications-engine pkg/controller/state.go (1dbe3de712f8): a condition with ``oncePer``
    is sent once per distinct value. Image Updater's write-back argocd changes the tag without a
    commit, so the commit alone would record only the first image of a commit."""
    _, queued = when_of(n.TRIGGER_QUEUED)
    _, running = when_of(n.TRIGGER_RUNNING)
    _, succeeded = when_of(n.TRIGGER_SUCCEEDED)
    first = released("v1", operation=True, phase="Running")
    second = released("v2", operation=True, phase="Running")
    assert (
        evaluate(queued, first) == evaluate(running, first) == evaluate(succeeded, first) == f"{REVISION}/v1"
    )
    assert evaluate(running, second) == f"{REVISION}/v2"
    # No tag yet (the chart's guard render) is still a key, not an error.
    bare = {"operation": {"sync": {"revision": REVISION}}}
    assert evaluate(queued, bare) == f"{REVISION}/"
