"""Argo CD notifications (infra/manifests/notifications.py): values the argo-cd chart knows,
rendered by ``helm template``, and read back the way notifications-engine reads its ConfigMap.

The engine's rules are transcribed here from the version Argo CD v3.4.4 vendors (its go.mod:
github.com/argoproj/notifications-engine v0.5.1-0.20260213231747-1dbe3de712f8), each test naming
the file; the stacks are synthetic variants of the project's stack files, with
``platform:notifications`` set (the example stacks leave it out).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import addons
from infra import config as cfg
from infra.manifests import argocd as m
from infra.manifests import notifications as n
from tests.argocd_support import (
    chart_defaults,
    generated_applications,
    render_go_template,
    require_shared,
    unknown_value_paths,
)
from tests.conftest import stack_config_map
from tests.unit.test_argocd_hardening import render as render_argocd

HELM = shutil.which("helm")
APP_ID, INSTALLATION_ID = 123456, 7654321


def with_notifications(stack: str, settings: dict[str, Any] | None = None) -> cfg.StackConfig:
    raw = stack_config_map(stack)
    env = raw.get("platform:environment", stack)
    raw["platform:notifications"] = settings or (
        {
            "githubApp": {"appId": APP_ID, "installationId": INSTALLATION_ID},
            "chatWebhookSecret": f"platform/{env}/chat-webhook",
        }
        if stack == "staging"
        else {"chatWebhookSecret": f"platform/{env}/chat-webhook"}
    )
    return cfg.from_flat(cfg.as_pulumi_config(raw), stack)


def config_error(stack: str, settings: Any, **changes: Any) -> str:
    raw = stack_config_map(stack)
    raw["platform:notifications"] = settings
    for key, value in changes.items():
        raw[f"platform:{key}"] = value
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.from_flat(cfg.as_pulumi_config(raw), stack)
    return " ".join(str(caught.value).split())


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_the_example_stacks_configure_no_notifications_and_the_values_stay_the_charts() -> None:
    for stack in ("staging", "prod"):
        config = cfg.load_stack_file(stack)
        assert config.notifications is None
        assert "notifications" not in m.argocd_values(config)
        assert n.external_secret(config) is None


def test_a_url_where_the_secret_name_belongs_is_refused() -> None:
    message = config_error("staging", {"chatWebhookSecret": "https://hooks.slack.com/services/T/B/x"})
    assert "platform:notifications.chatWebhookSecret" in message and "not the URL" in message


def test_a_secret_outside_the_environments_prefix_is_refused() -> None:
    message = config_error("staging", {"chatWebhookSecret": "platform/prod/chat"})
    assert "expected a secret name under platform/staging/" in message


def test_a_github_app_on_a_manual_sync_stack_is_refused() -> None:
    message = config_error("prod", {"githubApp": {"appId": 1, "installationId": 2}})
    assert "platform:notifications.githubApp" in message and "platform deploy" in message


def test_notifications_need_external_secrets_on_the_hub() -> None:
    raw = stack_config_map("staging")
    message = config_error("staging", {"chatWebhookSecret": "platform/staging/chat"}, addons={})
    hub = raw.get("platform:hubRegion", "us-west-2")
    assert "enable the external-secrets add-on on the hub" in message and hub in message


def test_unknown_keys_and_bad_ids_are_refused() -> None:
    assert "githubAp" in config_error("staging", {"githubAp": {}})
    assert "appId" in config_error("staging", {"githubApp": {"appId": "x", "installationId": 1}})


# --------------------------------------------------------------------------------------------
# The chart's keys, rendered
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_notifications_value_is_a_key_of_the_argo_cd_chart(stack: str) -> None:
    require_shared()
    values = m.argocd_values(with_notifications(stack))
    assert "notifications" in values
    # The rest of the values is held to the chart by tests/unit/test_argocd_values.py.
    assert unknown_value_paths({"notifications": values["notifications"]}, chart_defaults("argo-cd")) == []


def render_chart(config: cfg.StackConfig, tmp_path: Path) -> list[dict[str, Any]]:
    if HELM is None:
        pytest.skip("needs the helm binary to render the argo-cd chart")
    return render_argocd(config, tmp_path)


def notifications_cm(objects: list[dict[str, Any]]) -> dict[str, str]:
    (cm,) = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "argocd-notifications-cm"
    ]
    return dict(cm["data"])


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_chart_renders_the_config_map_and_leaves_the_secret_to_external_secrets(
    stack: str, tmp_path: Path
) -> None:
    config = with_notifications(stack)
    objects = render_chart(config, tmp_path)
    data = notifications_cm(objects)
    # argo-cd 10.1.1 templates/argocd-configs/argocd-notifications-secret.yaml renders only with
    # notifications.secret.create: the Secret is External Secrets' (one owner).
    assert not [
        o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == n.NOTIFICATIONS_SECRET
    ]
    context = yaml.safe_load(data["context"])
    assert context == {"argocdUrl": m.LOCAL_URL, "environment": config.environment}
    assert set(n.notifiers(config)) <= set(data)
    assert set(n.triggers()) <= set(data) and set(n.templates()) <= set(data)
    assert yaml.safe_load(data["subscriptions"]) == n.subscriptions(config)
    # No secret value anywhere in the values or the ConfigMap: only $key references.
    assert "BEGIN" not in yaml.safe_dump(data) and "https://hooks" not in yaml.safe_dump(data)


# --------------------------------------------------------------------------------------------
# Read back as notifications-engine reads it
# --------------------------------------------------------------------------------------------

# pkg/api/config.go (ParseConfig): `service.<type>` or `service.<type>.<name>` (name = type when
# absent); `template.<name>`; `trigger.<name>`; recipients `<service>[:<recipient>]`
# (GetGlobalDestinations splits on ':'); `[$][\w-]+` in a service's YAML is a key of the Secret
# (keyPattern, replaceServiceConfigSecrets).
SECRET_REFERENCE = re.compile(r"[$][\w-]+")
# pkg/triggers/service.go Condition: the YAML fields of a trigger condition.
TRIGGER_FIELDS = {"when", "send", "oncePer", "description"}
# pkg/services/github.go GitHubNotification / GitHubDeployment JSON fields.
GITHUB_FIELDS = {
    "status",
    "deployment",
    "pullRequestComment",
    "repoURLPath",
    "revisionPath",
    "checkRun",
    "repositoryDispatch",
}
GITHUB_DEPLOYMENT_FIELDS = {
    "state",
    "environment",
    "environmentURL",
    "logURL",
    "requiredContexts",
    "autoMerge",
    "transientEnvironment",
    "reference",
}
# GitHubOptions: appID, installationID, privateKey, enterpriseBaseURL, insecureSkipVerify (+ transport).
GITHUB_OPTIONS = {"appID", "installationID", "privateKey", "enterpriseBaseURL", "insecureSkipVerify"}
# pkg/services/webhook.go WebhookOptions (url, headers, basicAuth, ...) and WebhookNotification
# (method, body, path).
WEBHOOK_OPTIONS = {
    "url",
    "headers",
    "basicAuth",
    "insecureSkipVerify",
    "retryWaitMin",
    "retryWaitMax",
    "retryMax",
}
WEBHOOK_TEMPLATE_FIELDS = {"method", "body", "path"}
# GitHub REST deployment status states (https://docs.github.com/en/rest/deployments/statuses).
DEPLOYMENT_STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}


def services(data: dict[str, str]) -> dict[str, tuple[str, dict[str, Any]]]:
    out = {}
    for key, text in data.items():
        parts = key.split(".")
        if parts[0] == "service":
            assert len(parts) in (2, 3), key
            out[parts[-1]] = (parts[1], yaml.safe_load(text))
    return out


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_config_map_holds_together_as_the_engine_parses_it(stack: str) -> None:
    """notifications-engine pkg/api/config.go at 1dbe3de712f8 (the commit argo-cd v3.4.4 vendors)."""
    config = with_notifications(stack)
    values = m.argocd_values(config)["notifications"]
    data = {**values["notifiers"], **values["triggers"], **values["templates"]}
    found = services(data)
    templates = {k.split(".", 1)[1]: yaml.safe_load(v) for k, v in data.items() if k.startswith("template.")}
    triggers = {k.split(".", 1)[1]: yaml.safe_load(v) for k, v in data.items() if k.startswith("trigger.")}
    for name, conditions in triggers.items():
        for condition in conditions:
            assert set(condition) <= TRIGGER_FIELDS, name
            assert set(condition["send"]) <= set(templates), name
    for subscription in values["subscriptions"]:
        for recipient in subscription["recipients"]:
            assert recipient.split(":")[0] in found, recipient
        assert set(subscription["triggers"]) <= set(triggers)
    secret = n.external_secret(config)
    assert secret is not None
    secret_keys = {item["secretKey"] for item in secret["spec"]["data"]}
    for name, (kind, options) in found.items():
        allowed = GITHUB_OPTIONS if kind == "github" else WEBHOOK_OPTIONS
        assert set(options) <= allowed, name
        references = {r[1:] for r in SECRET_REFERENCE.findall(yaml.safe_dump(options))}
        assert references and references <= secret_keys, (name, references, secret_keys)
    if config.argocd.sync == "manual":
        assert "github" not in found  # prod: platform deploy records each region itself


def test_the_github_templates_are_deployments_that_neither_merge_nor_wait_for_checks() -> None:
    """pkg/services/github.go (1dbe3de712f8): autoMerge defaults to true and requiredContexts is
    sent as given; Send lists the revision's deployments in the environment and reuses the first."""
    for name, text in n.templates().items():
        template = yaml.safe_load(text)
        github = template["github"]
        assert set(github) <= GITHUB_FIELDS, name
        deployment = github["deployment"]
        assert set(deployment) <= GITHUB_DEPLOYMENT_FIELDS, name
        assert deployment["state"] in DEPLOYMENT_STATES
        assert deployment["autoMerge"] is False and deployment["requiredContexts"] == []
        for hook in (template.get("webhook") or {}).values():
            assert set(hook) <= WEBHOOK_TEMPLATE_FIELDS and hook["method"] == "POST"
    states = {yaml.safe_load(t)["github"]["deployment"]["state"] for t in n.templates().values()}
    assert states == {"queued", "in_progress", "success", "failure"}


def test_the_deployment_environment_is_env_slash_region_of_each_generated_application() -> None:
    config = with_notifications("staging")
    environment = yaml.safe_load(n.templates()[f"template.{n.TEMPLATE_RUNNING}"])["github"]["deployment"][
        "environment"
    ]
    apps = generated_applications(config)
    assert apps
    for app in apps.values():
        region = next(r for r in config.region_names if app["metadata"]["name"].endswith(r))
        assert render_go_template(environment, {"app": app}) == f"{config.environment}/{region}"


def test_the_triggers_are_the_catalogs_once_per_release_or_failure() -> None:
    """argo-cd v3.4.4 notifications_catalog/triggers: on-sync-running (phase in ['Running']),
    on-sync-succeeded (['Succeeded']), on-sync-failed (['Error', 'Failed']), on-health-degraded
    (health.status == 'Degraded'); oncePer is the release (commit and image tag) for queued,
    running and success, the operation's start for the failures, never the commit alone."""
    triggers = {k: yaml.safe_load(v)[0] for k, v in n.triggers().items()}
    when = {k.split(".", 1)[1]: t["when"] for k, t in triggers.items()}
    assert "phase in ['Running']" in when[n.TRIGGER_RUNNING]
    assert "phase in ['Succeeded']" in when[n.TRIGGER_SUCCEEDED]
    assert "app.status.health.status == 'Healthy'" in when[n.TRIGGER_SUCCEEDED]
    assert "phase in ['Error', 'Failed']" in when[n.TRIGGER_FAILED]
    assert when[n.TRIGGER_DEGRADED] == "app.status.health.status == 'Degraded'"
    assert when[n.TRIGGER_QUEUED] == n.QUEUED_WHEN
    once = {k.split(".", 1)[1]: t["oncePer"] for k, t in triggers.items()}
    assert once == {
        n.TRIGGER_QUEUED: n.ONCE_PER_RELEASE_QUEUED,
        n.TRIGGER_RUNNING: n.ONCE_PER_RELEASE,
        n.TRIGGER_SUCCEEDED: n.ONCE_PER_RELEASE,
        n.TRIGGER_FAILED: n.ONCE_PER_SYNC,
        n.TRIGGER_DEGRADED: n.ONCE_PER_SYNC,
    }
    # The tag the release key reads is the one Image Updater writes and the chart takes.
    assert n.IMAGE_TAG == m.IMAGE_TAG_PARAMETER


def test_every_status_of_a_release_renders_the_same_revision_so_it_lands_on_one_deployment() -> None:
    """pkg/services/github.go Send (1dbe3de712f8): the deployment is looked up by the rendered
    revisionPath and environment; the queued template reads the requested operation (argo-cd
    v3.4.4 autoSync pins ``operation.sync.revision``), the others the operation's syncResult."""
    config = with_notifications("staging")
    app = next(iter(generated_applications(config).values()))
    revision = "f" * 40
    app = {
        **app,
        "operation": {"sync": {"revision": revision}},
        "status": {"operationState": {"syncResult": {"revision": revision}}},
    }
    rendered = set()
    for text in n.templates().values():
        github = yaml.safe_load(text)["github"]
        assert "reference" not in github["deployment"]  # a reference would never be found again
        rendered.add(
            (
                render_go_template(github["revisionPath"], {"app": app}),
                render_go_template(github["deployment"]["environment"], {"app": app}),
            )
        )
    (only,) = rendered
    assert only[0] == revision and only[1].startswith(f"{config.environment}/")


def test_failures_go_to_chat_successes_do_not() -> None:
    config = with_notifications("staging")
    chat = [s for s in n.subscriptions(config) if s["recipients"] == [n.CHAT_SERVICE]]
    assert [s["triggers"] for s in chat] == [[n.TRIGGER_FAILED, n.TRIGGER_DEGRADED]]
    for trigger in chat[0]["triggers"]:
        (template,) = yaml.safe_load(n.triggers()[f"trigger.{trigger}"])[0]["send"]
        assert n.CHAT_SERVICE in yaml.safe_load(n.templates()[f"template.{template}"])["webhook"]


# --------------------------------------------------------------------------------------------
# The Secret, through External Secrets on the hub
# --------------------------------------------------------------------------------------------


def test_the_hubs_external_secrets_fill_the_notifications_secret_from_secrets_manager() -> None:
    config = with_notifications("staging")
    hub_objects = addons.external_secrets_values(config, "hub")["extraObjects"]
    (secret,) = [o for o in hub_objects if o["metadata"]["name"] == n.NOTIFICATIONS_SECRET]
    assert secret["metadata"]["namespace"] == "argocd"
    remote = {item["secretKey"]: item["remoteRef"]["key"] for item in secret["spec"]["data"]}
    assert remote == {
        n.GITHUB_PRIVATE_KEY: f"platform/{config.environment}/argocd/notifications-github-app-key",
        n.CHAT_WEBHOOK_URL: f"platform/{config.environment}/chat-webhook",
    }
    # Through Argo CD's store (hub only, argocd namespace only), whose role reads exactly these.
    assert secret["spec"]["secretStoreRef"]["name"] == addons.ARGOCD_SECRET_STORE
    (store,) = [o for o in hub_objects if o["metadata"]["name"] == addons.ARGOCD_SECRET_STORE]
    assert store["spec"]["conditions"] == [{"namespaces": ["argocd"]}]
    assert set(remote.values()) <= set(addons.argocd_secret_names(config))
    spoke = addons.external_secrets_values(config, "spoke")["extraObjects"]
    assert not [o for o in spoke if o["metadata"]["name"] == n.NOTIFICATIONS_SECRET]
