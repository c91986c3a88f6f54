"""What GitHub and notifications-engine do, as the release records rely on it (one test per rule).

Sources: GitHub REST API 2022-11-28 (https://docs.github.com/en/rest/deployments/deployments,
https://docs.github.com/en/rest/deployments/statuses); GitHub Actions token permissions
(https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication);
argoproj/notifications-engine at 1dbe3de712f8 (the version argo-cd v3.4.4's go.mod pins):
pkg/services/github.go, pkg/api/config.go; argo-cd v3.4.4 notifications_catalog/triggers/.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from infra import release_records
from infra.config import PROJECT_ROOT
from infra.manifests import notifications as n


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
