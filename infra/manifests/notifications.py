"""Argo CD notifications on the hub, as data: the argo-cd chart's ``notifications`` values and the
ExternalSecret that fills the notifications Secret.

Two recipients, both optional (``platform:notifications``):

* ``github`` (``githubApp``, only for a stack that syncs by itself: staging): every automatic
  sync becomes a GitHub deployment ``<env>/<region>`` with statuses ``queued`` (the sync is
  requested, not started; best effort, see :data:`QUEUED_WHEN`), ``in_progress``, then
  ``success`` (Succeeded for the current revision and Healthy again after it:
  :data:`SUCCEEDED_WHEN`) or ``failure`` (sync Failed/Error, or Degraded). Prod's
  deploys are recorded by ``platform deploy`` itself (infra/release_records.py);
* ``chat`` (``chatWebhookSecret``): a JSON ``{"text": ...}`` POST for a failed sync or Degraded
  health (an aborted canary makes its Rollout, hence its Application, Degraded: argo-cd v3.4.4
  resource_customizations/argoproj.io/Rollout/health.lua surfaces the Rollout's ``status.phase``).

The semantics are those of the notifications-engine Argo CD v3.4.4 vendors (go.mod:
``github.com/argoproj/notifications-engine v0.5.1-0.20260213231747-1dbe3de712f8``):

* ``pkg/api/config.go`` ``ParseConfig``: ``service.<type>(.<name>)`` keys define services (the
  name is the type when absent), ``template.<name>`` and ``trigger.<name>`` keys, ``subscriptions``
  a YAML list whose recipients are ``<service>[:<recipient>]``; ``$<key>`` (regexp ``[$][\\w-]+``)
  in a service's configuration is replaced by that key of the notifications Secret;
* ``pkg/services/github.go``: ``GitHubOptions`` (``appID``, ``installationID``, ``privateKey``);
  a template's ``github.deployment`` (``state``, ``environment``, ``logURL``,
  ``requiredContexts``, ``autoMerge`` (default **true**), ``transientEnvironment``,
  ``reference``): ``Send`` lists the deployments of the revision and environment, reuses the
  first or creates one (no payload), then posts a status whose description is the template's
  ``message`` cut to 140 characters; the revision is ``revisionPath``
  (default ``{{.app.status.operationState.syncResult.revision}}``) and the repository
  ``repoURLPath`` (default ``{{.app.spec.source.repoURL}}``);
* ``pkg/services/webhook.go``: ``service.webhook.<name>`` takes ``url`` and ``headers``; a
  template's ``webhook.<name>`` has ``method`` and ``body``.

The triggers follow the Argo CD catalog (argo-cd v3.4.4 notifications_catalog/triggers/
on-sync-running.yaml, on-sync-succeeded.yaml, on-sync-failed.yaml, on-health-degraded.yaml) with
two changes: success is :data:`SUCCEEDED_WHEN`, and ``oncePer`` is the release (the commit *and*
the image tag, :func:`release_key`) for queued, running and success, because Image Updater's
write-back ``argocd`` changes the image without a new commit; failures are once per operation.

What the engine's ``deployment`` fields do (pkg/services/github.go ``Send``, 1dbe3de712f8), and
so what the records can and cannot be:

* ``ListDeployments(ref=<revisionPath>, environment=<environment>)``: the first one found is
  reused, else ``CreateDeployment(ref=<reference> or the revision, environment,
  requiredContexts, autoMerge, transientEnvironment)`` (no payload, no
  ``production_environment``), then ``CreateDeploymentStatus(state, logURL, description=the
  message cut to 140, environment, environmentURL)``. So there is one deployment per
  environment (``<env>/<region>``) and commit, and every template of a release must render the
  same revision to land on it: the queued template reads it from ``app.operation`` (the
  operation is not started), the others from ``operationState.syncResult``;
* ``reference`` is not set: the lookup is by the revision, so a ``reference`` different from it
  would never be found again and every status would create a new deployment;
* successive image tags of one commit (write-back ``argocd``) are successive statuses of that one
  deployment, each description naming its tag: a deployment per image would need a Git ref per
  image, which this write-back does not make.
"""

from __future__ import annotations

from typing import Any

import yaml

from infra import addons, naming
from infra.config import StackConfig

NOTIFICATIONS_SECRET = "argocd-notifications-secret"  # the chart's notifications.secret.name default
GITHUB_SERVICE = "github"
CHAT_SERVICE = "chat"
# Keys of NOTIFICATIONS_SECRET the services reference as $<key>.
GITHUB_PRIVATE_KEY = "github-privateKey"
CHAT_WEBHOOK_URL = "chat-webhook-url"

TRIGGER_QUEUED = "on-release-queued"
TRIGGER_RUNNING = "on-release-running"
TRIGGER_SUCCEEDED = "on-release-succeeded"
TRIGGER_FAILED = "on-release-failed"
TRIGGER_DEGRADED = "on-release-degraded"

TEMPLATE_QUEUED = "release-queued"
TEMPLATE_RUNNING = "release-running"
TEMPLATE_SUCCEEDED = "release-succeeded"
TEMPLATE_FAILED = "release-failed"
TEMPLATE_DEGRADED = "release-degraded"

# Once per sync operation (see the module docstring).
ONCE_PER_SYNC = "app.status.operationState?.startedAt"


def release_key(sync: str) -> str:
    """``oncePer`` of one release: ``<commit>/<image tag>`` of the sync at expr path ``sync`` (an
    operation's ``sync``, or ``operationState.syncResult``: both hold ``revision`` and the
    ``source`` with its Helm parameters; argo-cd v3.4.4 controller/appcontroller.go autoSync pins
    both, controller/sync.go newSyncOperationResult copies them). expr-lang's ``find``, ``?.``
    and ``??`` (expr-lang docs/language-definition.md; expr v1.17.8 per argo-cd v3.4.4 go.mod)."""
    return (
        f"{sync}.revision + '/' + (find({sync}.source?.helm?.parameters ?? [], "
        f".name == '{IMAGE_TAG}')?.value ?? '')"
    )


IMAGE_TAG = "image.tag"  # infra.manifests.argocd.IMAGE_TAG_PARAMETER (that module imports this one)
QUEUED_SYNC = "app.operation.sync"
RUNNING_SYNC = "app.status.operationState.syncResult"
ONCE_PER_RELEASE_QUEUED = release_key(QUEUED_SYNC)
ONCE_PER_RELEASE = release_key(RUNNING_SYNC)

# Queued: a sync operation is requested (``app.operation``, which the controller's autoSync sets
# before the operation starts and clears when it completes) and none is Running yet. Best effort:
# the controller often starts the operation within a second, and the notifications controller
# sees only the states its informer delivers.
QUEUED_WHEN = (
    "app.operation != nil and app.operation.sync != nil and app.operation.sync.revision != nil"
    " and app.operation.sync.revision != ''"
    " and (app.status.operationState == nil or app.status.operationState.phase != 'Running')"
)

# Success: the last operation Succeeded, it synced the revision Argo CD compares with now (not an
# older one) and left the Application Synced, and health *became* Healthy at or after the
# operation started. Healthy alone is not enough: Argo CD persists the operation's Succeeded
# right after applying (the last sync wave's health is not awaited) and the Application's health
# is still the one from before the new pods (argo-cd issue #9070). The catalog's on-deployed
# (argo-cd v3.4.4 notifications_catalog/triggers/on-deployed.yaml) compares
# app.status.health.lastTransitionTime (set by controller/appcontroller.go persistAppStatus
# only when the health status changes) with the operation, but its last clause
# (`... or lastTransitionTime.Before(startedAt)`, argo-cd #22204 for syncs that change no health)
# fires on exactly that pre-sync Healthy (argo-cd #22203). A release here always changes the
# image, so the workload goes Progressing (or Suspended at a canary pause) and back. The guards
# (`!= nil`) keep time.Parse (util/notification/expression/time/time.go: RFC 3339 or panic)
# off missing fields; a failed evaluation is "not triggered" anyway
# (notifications-engine pkg/triggers/service.go Run).
SUCCEEDED_WHEN = (
    "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded']"
    " and app.status.operationState.syncResult != nil"
    " and app.status.operationState.syncResult.revision == app.status.sync.revision"
    " and app.status.sync.status == 'Synced'"
    " and app.status.health.status == 'Healthy'"
    " and app.status.health.lastTransitionTime != nil"
    " and !time.Parse(app.status.health.lastTransitionTime)"
    ".Before(time.Parse(app.status.operationState.startedAt))"
)

_TAG = '{{range .app.spec.source.helm.parameters}}{{if eq .name "image.tag"}}{{.value}}{{end}}{{end}}'
_ENVIRONMENT = (
    f'{{{{index .app.metadata.labels "{naming.LABEL_ENVIRONMENT}"}}}}/'
    f'{{{{index .app.metadata.labels "{naming.LABEL_REGION}"}}}}'
)
_LOG_URL = (
    "{{.context.argocdUrl}}/applications/{{.app.metadata.namespace}}/{{.app.metadata.name}}?operation=true"
)


def github_app_key_secret_name(config: StackConfig) -> str:
    """The Secrets Manager secret (hub region) whose value is the GitHub App's private key (PEM)."""
    return addons.secret_name(config, "argocd", "notifications-github-app-key")


def triggers() -> dict[str, str]:
    """``trigger.<name>`` entries (chart value ``notifications.triggers``)."""

    def trigger(when: str, description: str, template: str, once_per: str = ONCE_PER_SYNC) -> str:
        return yaml.safe_dump(
            [{"when": when, "description": description, "send": [template], "oncePer": once_per}],
            sort_keys=False,
            width=1_000_000,
        )

    started = "app.status.operationState != nil and app.status.operationState.phase"
    return {
        f"trigger.{TRIGGER_QUEUED}": trigger(
            QUEUED_WHEN, "A sync of the release is requested", TEMPLATE_QUEUED, ONCE_PER_RELEASE_QUEUED
        ),
        f"trigger.{TRIGGER_RUNNING}": trigger(
            # syncResult: the operation has resolved its revision (controller/sync.go SyncAppState;
            # the first Running state is persisted without it).
            f"{started} in ['Running'] and app.status.operationState.syncResult != nil",
            "A sync of the release is running",
            TEMPLATE_RUNNING,
            ONCE_PER_RELEASE,
        ),
        f"trigger.{TRIGGER_SUCCEEDED}": trigger(
            SUCCEEDED_WHEN,
            "The release synced and became Healthy after its sync started",
            TEMPLATE_SUCCEEDED,
            ONCE_PER_RELEASE,
        ),
        f"trigger.{TRIGGER_FAILED}": trigger(
            f"{started} in ['Error', 'Failed']", "The release's sync failed", TEMPLATE_FAILED
        ),
        f"trigger.{TRIGGER_DEGRADED}": trigger(
            "app.status.health.status == 'Degraded'",
            "The release is Degraded (an aborted canary included)",
            TEMPLATE_DEGRADED,
        ),
    }


# The image tag into $tag, for a chat text built with printf and JSON-escaped with sprig's toJson
# (notifications-engine pkg/templates/service.go renders templates with sprig.TxtFuncMap()).
_SET_TAG = (
    '{{- $tag := "" -}}{{- range .app.spec.source.helm.parameters -}}'
    '{{- if eq .name "image.tag" -}}{{- $tag = .value -}}{{- end -}}{{- end -}}'
)


def _template(message: str, state: str, chat: str | None = None, sync: str = RUNNING_SYNC) -> str:
    """One template: the GitHub deployment status ``state`` with ``message`` as its description,
    and, when ``chat`` (a printf call over ``$tag`` and the Application), the chat webhook's body.
    ``sync`` is the expr path of the sync whose revision the deployment is looked up by."""
    body: dict[str, Any] = {
        "message": message,
        GITHUB_SERVICE: {
            "repoURLPath": "{{.app.spec.source.repoURL}}",
            "revisionPath": f"{{{{.{sync}.revision}}}}",
            "deployment": {
                "state": state,
                "environment": _ENVIRONMENT,
                "logURL": _LOG_URL,
                # GitHub's defaults would check every status context of the commit and merge the
                # default branch into it (autoMerge defaults to true in github.go).
                "requiredContexts": [],
                "autoMerge": False,
                "transientEnvironment": False,
            },
        },
    }
    if chat is not None:
        body["webhook"] = {
            CHAT_SERVICE: {"method": "POST", "body": f'{_SET_TAG}{{"text": {{{{ {chat} | toJson }}}}}}'}
        }
    return yaml.safe_dump(body, sort_keys=False, width=1_000_000)


def templates() -> dict[str, str]:
    """``template.<name>`` entries (chart value ``notifications.templates``). The message (the
    GitHub status description, at most 140 characters) names the Application and the image tag."""
    app = "{{.app.metadata.name}}"
    failed_chat = (
        'printf "%s (%s): sync %s on image %s: %s" .app.metadata.name .context.environment '
        ".app.status.operationState.phase $tag .app.status.operationState.message"
    )
    degraded_chat = (
        'printf "%s (%s): Degraded on image %s (a failed sync, a crashing workload or an aborted canary): '
        '%s/applications/%s/%s" .app.metadata.name .context.environment $tag .context.argocdUrl '
        ".app.metadata.namespace .app.metadata.name"
    )
    return {
        f"template.{TEMPLATE_QUEUED}": _template(
            f"{app}: sync of image {_TAG} requested", "queued", sync=QUEUED_SYNC
        ),
        f"template.{TEMPLATE_RUNNING}": _template(f"{app}: syncing image {_TAG}", "in_progress"),
        f"template.{TEMPLATE_SUCCEEDED}": _template(f"{app}: Synced and Healthy on {_TAG}", "success"),
        f"template.{TEMPLATE_FAILED}": _template(
            f"{app}: sync {{{{.app.status.operationState.phase}}}} on {_TAG}: "
            "{{.app.status.operationState.message}}",
            "failure",
            failed_chat,
        ),
        f"template.{TEMPLATE_DEGRADED}": _template(f"{app}: Degraded on {_TAG}", "failure", degraded_chat),
    }


def notifiers(config: StackConfig) -> dict[str, str]:
    """``service.*`` entries (chart value ``notifications.notifiers``); secrets only as ``$key``."""
    settings = config.notifications
    out: dict[str, str] = {}
    if settings is None:
        return out
    if settings.github_app is not None:
        out[f"service.{GITHUB_SERVICE}"] = yaml.safe_dump(
            {
                "appID": settings.github_app.app_id,
                "installationID": settings.github_app.installation_id,
                "privateKey": f"${GITHUB_PRIVATE_KEY}",
            },
            sort_keys=False,
            width=1_000_000,
        )
    if settings.chat_webhook_secret is not None:
        out[f"service.webhook.{CHAT_SERVICE}"] = yaml.safe_dump(
            {
                "url": f"${CHAT_WEBHOOK_URL}",
                "headers": [{"name": "Content-Type", "value": "application/json"}],
            },
            sort_keys=False,
            width=1_000_000,
        )
    return out


def subscriptions(config: StackConfig) -> list[dict[str, Any]]:
    """Default subscriptions for the application's Applications (selected by the ApplicationSet label)."""
    settings = config.notifications
    if settings is None:
        return []
    selector = (
        f"{naming.LABEL_APPLICATION_SET}="
        f"{naming.application_set_name(config.application.name, config.environment)}"
    )
    out: list[dict[str, Any]] = []
    if settings.github_app is not None:
        out.append(
            {
                "recipients": [GITHUB_SERVICE],
                "selector": selector,
                "triggers": [
                    TRIGGER_QUEUED,
                    TRIGGER_RUNNING,
                    TRIGGER_SUCCEEDED,
                    TRIGGER_FAILED,
                    TRIGGER_DEGRADED,
                ],
            }
        )
    if settings.chat_webhook_secret is not None:
        out.append(
            {
                "recipients": [CHAT_SERVICE],
                "selector": selector,
                "triggers": [TRIGGER_FAILED, TRIGGER_DEGRADED],
            }
        )
    return out


def values(config: StackConfig, argocd_url: str) -> dict[str, Any] | None:
    """The argo-cd chart's ``notifications`` values, or None when nothing is configured (the
    chart's defaults: a controller with no service). The Secret is not the chart's (no value may
    hold a key): External Secrets writes it (:func:`external_secret`)."""
    if config.notifications is None:
        return None
    return {
        "enabled": True,
        "argocdUrl": argocd_url,
        # {{.context.environment}} in the chat texts: which stack's hub is speaking.
        "context": {"environment": config.environment},
        "secret": {"create": False},
        "notifiers": notifiers(config),
        "triggers": triggers(),
        "templates": templates(),
        "subscriptions": subscriptions(config),
    }


def secret_keys(config: StackConfig) -> dict[str, str]:
    """The notifications Secret's keys and the Secrets Manager secret each comes from."""
    settings = config.notifications
    out: dict[str, str] = {}
    if settings is None:
        return out
    if settings.github_app is not None:
        out[GITHUB_PRIVATE_KEY] = github_app_key_secret_name(config)
    if settings.chat_webhook_secret is not None:
        out[CHAT_WEBHOOK_URL] = settings.chat_webhook_secret
    return out


def external_secret(config: StackConfig) -> dict[str, Any] | None:
    """On the hub: ``argocd-notifications-secret`` from Secrets Manager, through the cluster's
    store (read with External Secrets' Pod Identity role: no key anywhere in Git, values or stack
    config). Each key is a whole secret value (``remoteRef.key``, no property)."""
    keys = secret_keys(config)
    if not keys:
        return None
    return {
        "apiVersion": addons.EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": {
            "name": NOTIFICATIONS_SECRET,
            "namespace": naming.ARGOCD_NAMESPACE,
            "annotations": dict(addons.AFTER_THE_CONTROLLER),
        },
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": addons.ARGOCD_SECRET_STORE},
            "target": {"name": NOTIFICATIONS_SECRET, "creationPolicy": "Owner"},
            "data": [{"secretKey": key, "remoteRef": {"key": name}} for key, name in keys.items()],
        },
    }
