"""Argo CD on the hub, as data: Helm values, cluster Secrets, AppProject, ApplicationSet, ImageUpdater.

Every function here is pure (config and plain values in, a dict out): the components in
``infra/components/argocd.py``, ``image_updater.py`` and ``applicationset.py`` only wrap them, and
the unit tests check them without Pulumi, against the upstream chart defaults and the CRDs the
pinned charts install (``../shared``).

How a tag reaches a cluster (write-back ``argocd``, the default):

1. CI pushes the sentinel image last; ECR replication copies it to each region's registry.
2. Image Updater sees the new tag in *that region's* registry (one ``applicationRef`` per region)
   and writes it into that region's Application as the Helm parameters below.
3. The ApplicationSet ignores the whole Helm parameter list, and its template sets no Helm
   parameter, so its merge patch never touches the list (:func:`ignore_application_differences`,
   :func:`check_application_template`).
4. Staging syncs automatically; prod waits for the deploy command (``python -m infra.deploy``),
   which reads ``spec.source.helm.parameters`` (:data:`IMAGE_TAG_PARAMETER`).

Before the first tag (a brand-new Application, a new region, a rebuilt hub) the shop chart
renders only a guard object (:data:`IMAGE_TAG_GUARD_KIND`): the render succeeds, so Argo CD
reports the Application as Helm and Image Updater writes the first tag, and every sync of that
render fails before it could prune anything (docs/argocd.md, "The first tag").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from infra import addons, naming, traffic
from infra.config import StackConfig
from infra.manifests import notifications, rollout_health

# --- Names other modules and tests rely on -------------------------------------------------------

# The Helm parameter Image Updater writes the tag into: the shop chart's one shared tag
# (charts/shop/values.yaml `image.tag`). The prod deploy command reads it back from
# `spec.source.helm.parameters`.
IMAGE_TAG_PARAMETER = "image.tag"
# Image Updater (v1.x, CR mode) ALWAYS writes a second parameter with the image's repository
# (registry/name without tag) next to the tag: when `manifestTargets.helm.name` is unset it
# falls back to `image.name` (pkg/argocd/update.go, SetHelmImage: `if hpImageName == "" {
# hpImageName = DefaultHelmImageName }`, then both parameters are merged). Omitting `name` does
# not stop that write, so we name the parameter explicitly and ignore exactly these two.
IMAGE_NAME_PARAMETER = "image.name"
IMAGE_UPDATER_PARAMETERS: tuple[str, str] = (IMAGE_NAME_PARAMETER, IMAGE_TAG_PARAMETER)
# What the shop chart renders while IMAGE_TAG_PARAMETER is unset: one object of this kind
# (apiVersion v1, which serves no such kind) and no workload
# (charts/shop/templates/image-tag-missing.yaml says why).
IMAGE_TAG_GUARD_API_VERSION = "v1"
IMAGE_TAG_GUARD_KIND = "ImageTagMissing"

ARGOPROJ_API = "argoproj.io/v1alpha1"
IMAGE_UPDATER_API = "argocd-image-updater.argoproj.io/v1alpha1"
SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
CLUSTER_ROLE_HUB = "hub"
CLUSTER_ROLE_SPOKE = "spoke"

# Local access: the server is a ClusterIP Service only (never a LoadBalancer or Ingress).
LOCAL_PORT = 8080
SERVER_SERVICE = f"{naming.ARGOCD_RELEASE}-server"
LOCAL_URL = f"https://localhost:{LOCAL_PORT}"

# ECR authorization tokens live 12 hours
# (https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry_auth.html); Image Updater
# re-runs the credentials script after `credsexpire`, so it must be shorter than that.
ECR_TOKEN_LIFETIME_HOURS = 12
CREDS_EXPIRE = "11h"
AUTH_SCRIPTS_DIR = "/scripts"  # where the chart mounts `authScripts.scripts`

EKS_CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


# --- Argo CD Helm values -------------------------------------------------------------------------


def argocd_domain(config: StackConfig) -> str:
    return config.argocd.hostname or f"localhost:{LOCAL_PORT}"


def port_forward_command(namespace: str = naming.ARGOCD_NAMESPACE) -> str:
    """How to reach the UI/API: the server is never exposed outside the cluster."""
    return f"kubectl -n {namespace} port-forward svc/{SERVER_SERVICE} {LOCAL_PORT}:443"


# argocd-cm keys Argo CD documents (v3.4.4 docs/operator-manual/argocd-cm.yaml) that the chart's
# values.yaml does not list among configs.cm's defaults; the chart writes configs.cm into argocd-cm
# as given (argo-cd 10.1.1 templates/argocd-configs/argocd-cm.yaml).
ARGOCD_CM_KEYS_BEYOND_CHART_DEFAULTS: tuple[str, ...] = (
    "cluster.inClusterEnabled",
    rollout_health.ARGOCD_CM_KEY,
)
# argocd-cmd-params-cm keys (v3.4.4 docs/operator-manual/argocd-cmd-params-cm.yaml) the chart's
# values.yaml does not list under configs.params; the chart writes every key of configs.params
# into that ConfigMap (argo-cd 10.1.1 templates/_helpers.tpl "argo-cd.config.params").
RESOURCE_HEALTH_PERSIST = "controller.resource.health.persist"
ARGOCD_PARAMS_KEYS_BEYOND_CHART_DEFAULTS: tuple[str, ...] = (RESOURCE_HEALTH_PERSIST,)


def argocd_values(config: StackConfig) -> dict[str, Any]:
    """Values for the argo-cd chart (``versions.ARGO_CD_CHART``).

    Every key exists in the chart's default values.yaml (tests walk this dict against
    ``../shared/upstream-charts/argo-cd/values.yaml``; a misspelt key would be silently ignored).
    """
    ha = config.argocd.ha
    # Chart README, "High Availability": redis-ha plus at least two replicas of the stateless
    # server, repo-server and ApplicationSet controller; the application controller stays at one
    # replica, because more replicas only shard *clusters* between them and we manage three.
    # https://github.com/argoproj/argo-helm/tree/main/charts/argo-cd#high-availability
    # redis-ha puts each Redis pod on its own node, so HA needs at least three hub nodes
    # (tests/unit/test_argocd_values.py holds the stack files to that).
    stateless_replicas = 2 if ha else 1
    # With HA, a drain keeps one replica of each stateless component serving. The chart renders
    # `minAvailable: {{ .minAvailable | default 0 }}` when no maxUnavailable is set (argo-cd
    # 10.1.1 templates/argocd-server/pdb.yaml and its siblings), so an enabled budget without a
    # value protects nothing. Without HA (one replica) there is no budget.
    pdb: dict[str, Any] = {"enabled": True, "minAvailable": 1} if ha else {"enabled": False}
    values: dict[str, Any] = {
        "global": {
            "domain": argocd_domain(config),
            "logging": {"format": "json", "level": "info"},
            # Spread replicas over nodes; with one replica in staging this is a no-op.
            "affinity": {"podAntiAffinity": "soft"},
            "networkPolicy": {"create": True},
        },
        "crds": {"install": True, "keep": True},
        "configs": {
            "cm": {
                # No local admin: nobody logs in with a shared password. Access is through the
                # Kubernetes API (EKS access entries), e.g. `argocd admin dashboard --core`, or SSO
                # once configured. https://argo-cd.readthedocs.io/en/stable/faq/#how-to-disable-admin-user
                "admin.enabled": False,
                # The in-cluster destination (https://kubernetes.default.svc, Argo CD's own service
                # account, cluster-admin on the hub) is off: the hub is registered like every other
                # cluster, by its cluster Secret and the Pod Identity role, so an Application can
                # reach only what the AppProject lists. Argo CD v3.4.4
                # docs/operator-manual/argocd-cm.yaml ("cluster.inClusterEnabled") and
                # docs/operator-manual/cluster-management.md.
                "cluster.inClusterEnabled": "false",
                "exec.enabled": False,
                "statusbadge.enabled": False,
                # Argo CD's own Rollout health check plus the canary's step and weight in the
                # message, so the deploy and `platform fleet` can show them from the Application
                # (infra/manifests/rollout_health.py; read by infra/deploy_model.py rollout_states).
                rollout_health.ARGOCD_CM_KEY: rollout_health.rollout_health_lua(),
            },
            "params": {
                # Each resource's health (status and message) in the Application's
                # status.resources, as before Argo CD 3.0 (v3.4.4
                # docs/operator-manual/upgrading/2.14-3.0.md, "Health status in the Application
                # CR": off by default since 3.0). The prod deploy reads every Rollout's health
                # there (infra/deploy_model.py rollout_healths): which service's canary is paused,
                # aborted or promoted, with the Rollout's own message, through the one
                # `get applications` its Role already has and no access to the spokes.
                RESOURCE_HEALTH_PERSIST: "true",
            },
            "rbac": {
                # Authenticated users get nothing unless a policy grants it.
                "policy.default": "",
            },
        },
        # No SSO is configured yet; Dex would be an unused, exposed login component.
        "dex": {"enabled": False},
        "redis-ha": {"enabled": ha},
        "controller": {
            "replicas": 1,
            "serviceAccount": {"create": True, "name": naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS[0]},
            # One replica: a budget would either block every node drain (minAvailable 1) or
            # protect nothing (the chart's default minAvailable 0). None.
            "pdb": {"enabled": False},
        },
        "server": {
            "replicas": stateless_replicas,
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
            "serviceAccount": {"create": True, "name": naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS[2]},
            "pdb": pdb,
        },
        "repoServer": {
            "replicas": stateless_replicas,
            "pdb": pdb,
        },
        "applicationSet": {
            "replicas": stateless_replicas,
            "serviceAccount": {"create": True, "name": naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS[1]},
            "pdb": pdb,
        },
    }
    # Argo CD notifications (platform:notifications): release records of the automatic syncs and
    # the chat webhook for failures; infra/manifests/notifications.py.
    argocd_url = f"https://{config.argocd.hostname}" if config.argocd.hostname else LOCAL_URL
    notification_values = notifications.values(config, argocd_url)
    if notification_values is not None:
        values["notifications"] = notification_values
    return values


# --- Image Updater Helm values -------------------------------------------------------------------


def ecr_auth_script_name(region: str) -> str:
    return f"ecr-{region}.sh"


def ecr_auth_script(region: str) -> str:
    """Prints ``AWS:<token>`` for one region's registry, as Image Updater's ``ext:`` source expects.

    The image ships the aws CLI (apk ``aws-cli`` in the image's Dockerfile, since v0.10.2:
    argoproj-labs/argocd-image-updater#237); credentials come from EKS Pod Identity through the
    CLI's container credential provider. ``set -e`` plus the assignment makes a failed call exit
    non-zero instead of printing an empty password.
    """
    return (
        "#!/bin/sh\n"
        f"# ECR token for {region}; Image Updater caches it for {CREDS_EXPIRE} (tokens live "
        f"{ECR_TOKEN_LIFETIME_HOURS}h).\n"
        "set -eu\n"
        f'token="$(aws ecr get-login-password --region {region})"\n'
        "printf 'AWS:%s\\n' \"$token\"\n"
    )


def registries(config: StackConfig) -> list[dict[str, Any]]:
    """One registry entry per region: each region's Applications pull from their own registry."""
    out = []
    for region in config.region_names:
        host = naming.registry_host(config.account_id, region)
        out.append(
            {
                "name": f"ECR {region}",
                "prefix": host,
                "api_url": f"https://{host}",
                "ping": True,
                "insecure": False,
                "credentials": f"ext:{AUTH_SCRIPTS_DIR}/{ecr_auth_script_name(region)}",
                "credsexpire": CREDS_EXPIRE,
            }
        )
    return out


def image_updater_values(config: StackConfig) -> dict[str, Any]:
    """Values for the argocd-image-updater chart (``versions.IMAGE_UPDATER_CHART``)."""
    return {
        "crds": {"install": True, "keep": True},
        # The Pod Identity association binds the IAM role to exactly this name.
        "serviceAccount": {"create": True, "name": naming.IMAGE_UPDATER_SERVICE_ACCOUNT},
        "rbac": {"enabled": True},
        "config": {
            "log.level": "info",
            "registries": registries(config),
        },
        "authScripts": {
            "enabled": True,
            "scripts": {ecr_auth_script_name(r): ecr_auth_script(r) for r in config.region_names},
        },
    }


# --- Cluster registration ------------------------------------------------------------------------


def cluster_role(config: StackConfig, region: str) -> str:
    return CLUSTER_ROLE_HUB if region == config.hub_region else CLUSTER_ROLE_SPOKE


def cluster_labels(environment: str, region: str, role: str) -> dict[str, str]:
    return {
        SECRET_TYPE_LABEL: "cluster",
        naming.LABEL_ENVIRONMENT: environment,
        naming.LABEL_REGION: region,
        naming.LABEL_CLUSTER_ROLE: role,
    }


def cluster_config(cluster_name: str, ca_data: str) -> dict[str, Any]:
    """The Secret's ``config``: IAM authentication, no token, and no ``roleARN``.

    Argo CD turns ``awsAuthConfig`` into ``argocd-k8s-auth aws --cluster-name <name>`` and adds
    ``--role-arn`` only when ``roleARN`` is set (argoproj/argo-cd v3.4.4,
    pkg/apis/application/v1alpha1/types.go, ``Cluster.RawRestConfig``). Without it,
    ``argocd-k8s-auth`` presigns ``sts:GetCallerIdentity`` with the AWS SDK's default credential
    chain (cmd/argocd-k8s-auth/commands/aws.go, ``config.LoadDefaultConfig``; the AssumeRole
    provider is used only ``if roleARN != ""``), whose container credentials provider serves the
    controller pod's EKS Pod Identity session
    (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-minimum-sdk.html). That session is
    the hub role itself, the principal every cluster's access entry names: one hop, no
    AssumeRole, no ``sts:TagSession`` for transitive session tags. Pinned by
    tests/contracts/test_pod_identity_chain.py.
    """
    return {
        "awsAuthConfig": {"clusterName": cluster_name},
        "tlsClientConfig": {"insecure": False, "caData": ca_data},
    }


def cluster_secret(
    config: StackConfig,
    region: str,
    *,
    cluster_name: str,
    endpoint: str,
    ca_data: str,
    vpc_id: str | None = None,
    traffic_facts: traffic.RegionFacts | None = None,
) -> dict[str, Any]:
    """An Argo CD cluster Secret (declarative setup). The hub is registered by its endpoint too,
    like the spokes, so every Application is generated and authenticated the same way; the
    ``in-cluster`` default destination is simply not selected by anything.

    It also carries the cluster's facts for the add-on ApplicationSets (GitOps Bridge, see
    :mod:`infra.addons`): ``enable_<addon>: "true"`` labels and the ``aws_*`` / ``<addon>_*``
    annotations. ``vpc_id`` is required once the cluster runs an add-on. ``traffic_facts`` (this
    region's certificate ARN, health check ID, web ACL ARN) is required with platform:traffic:
    they become the annotations the shop ApplicationSet hands the chart (:mod:`infra.traffic`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": naming.cluster_secret_name(config.environment, region),
            "namespace": naming.ARGOCD_NAMESPACE,
            "labels": {
                **addons.cluster_labels(config, region),
                **cluster_labels(config.environment, region, cluster_role(config, region)),
            },
            "annotations": {
                **addons.cluster_annotations(config, region, cluster_name=cluster_name, vpc_id=vpc_id),
                naming.ANNOTATION_ACCOUNT: config.account_id,
                naming.ANNOTATION_REGION: region,
                naming.ANNOTATION_CLUSTER_NAME: cluster_name,
                naming.ANNOTATION_REGISTRY: naming.registry_host(config.account_id, region),
                **traffic.cluster_annotations(config, region, traffic_facts),
            },
        },
        "type": "Opaque",
        "stringData": {
            "name": cluster_name,
            "server": endpoint,
            "config": json.dumps(cluster_config(cluster_name, ca_data), sort_keys=True),
        },
    }


def cluster_selector(environment: str) -> dict[str, Any]:
    """What the ApplicationSet's cluster generator selects: this environment's clusters."""
    return {"matchLabels": {naming.LABEL_ENVIRONMENT: environment}}


# --- AppProject ----------------------------------------------------------------------------------


def app_project(config: StackConfig, servers: Sequence[str]) -> dict[str, Any]:
    """The one project the generated Applications run in: one repo, the registered clusters'
    application namespace, and of cluster-scoped kinds only the Namespace CreateNamespace needs."""
    application = config.application
    return application_project(
        application.name, application.repo_url, application.namespace, config.environment, servers
    )


def application_project(
    name: str, repo_url: str, namespace: str, environment: str, servers: Sequence[str]
) -> dict[str, Any]:
    """:func:`app_project` from the settings it reads: the application's name, repository URL
    and namespace, the environment, and the clusters' API server URLs."""
    return {
        "apiVersion": ARGOPROJ_API,
        "kind": "AppProject",
        "metadata": {"name": naming.APP_PROJECT, "namespace": naming.ARGOCD_NAMESPACE},
        "spec": {
            "description": f"{name} in {environment}, one Application per region",
            "sourceRepos": [repo_url],
            "destinations": [{"server": server, "namespace": namespace} for server in servers],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
        },
    }


# Argo CD creates the `default` project at start-up, open to every repository, cluster and kind.
DEFAULT_PROJECT = "default"
# pulumi-kubernetes with server-side apply (the hub provider's enableServerSideApply) upserts a
# resource that already exists (argocd-server creates `default` at start-up), and takes over the
# fields another manager owns only with this annotation ("force an override for any conflicts").
# https://www.pulumi.com/registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply/
# ("Upsert a Resource"); pinned in tests/contracts/test_scanner_fixes.py.
PATCH_FORCE_ANNOTATION = "pulumi.com/patchForce"


def default_app_project() -> dict[str, Any]:
    """The ``default`` AppProject with every permission removed, so an Application that names no
    project (or ``default``) is refused instead of deploying anything anywhere. The manifest is
    the one Argo CD v3.4.4 docs/user-guide/projects.md ("The Default Project") gives."""
    return {
        "apiVersion": ARGOPROJ_API,
        "kind": "AppProject",
        "metadata": {
            "name": DEFAULT_PROJECT,
            "namespace": naming.ARGOCD_NAMESPACE,
            "annotations": {PATCH_FORCE_ANNOTATION: "true"},
        },
        "spec": {
            "sourceRepos": [],
            "sourceNamespaces": [],
            "destinations": [],
            "namespaceResourceBlacklist": [{"group": "*", "kind": "*"}],
        },
    }


# --- ApplicationSet ------------------------------------------------------------------------------


def _label(key: str) -> str:
    return "{{ index .metadata.labels " + json.dumps(key) + " }}"


def _annotation(key: str) -> str:
    return "{{ index .metadata.annotations " + json.dumps(key) + " }}"


def ignore_application_differences(config: StackConfig) -> list[dict[str, Any]]:
    """What the ApplicationSet must not touch: the whole Helm ``parameters`` list.

    The template sets no parameters (:func:`check_application_template`), so every parameter of
    a generated Application was written by Image Updater or by hand. Ignoring only Image
    Updater's two (a jq ``select``) is not enough: a parameter set by hand survives the ignore
    rule, the normalised live list then differs from the template's (none), and the
    controller's merge patch sets the whole list, deleting ``image.tag`` and ``image.name`` with
    it (argoproj/argo-cd v3.4.4 applicationset/utils/createOrUpdate.go; "Limitations of
    ignoreApplicationDifferences":
    https://argo-cd.readthedocs.io/en/stable/operator-manual/applicationset/Controlling-Resource-Modification/#limitations-of-ignoreapplicationdifferences).
    With the whole list ignored it never appears in a patch. The price: the ApplicationSet does
    not remove a parameter set by hand (remove it by hand; the policy pack keeps the template
    itself free of parameters). Pinned by tests/contracts/test_applicationset_merge_patch.py.
    With ``git`` write-back the tag lives in Git and there is nothing to ignore.
    """
    if config.image_updater.write_back_method != "argocd":
        return []
    return [{"jqPathExpressions": [".spec.source.helm.parameters"]}]


# Sync options that would let a sync go past the chart's tag guard (IMAGE_TAG_GUARD_KIND): with
# it, gitops-engine skips the API lookup that fails the guard's sync
# (gitops-engine/pkg/sync/sync_context.go v3.4.4, shouldSkipDryRunOnMissingResource).
GUARD_BYPASSING_SYNC_OPTIONS = frozenset({"SkipDryRunOnMissingResource=true"})


def check_application_template(template: Mapping[str, Any]) -> None:
    """Refuse an ApplicationSet template that could undo Image Updater's write-back or wipe a release.

    * No Helm ``parameters`` (and no multi-source ``sources``): the ApplicationSet controller
      updates an Application with a JSON merge patch computed from the normalised live object
      to the template (argoproj/argo-cd v3.4.4, applicationset/utils/createOrUpdate.go,
      ``client.MergeFrom``), and a merge patch replaces a list whole. Any template parameter
      that changes would replace the whole ``parameters`` list and delete ``image.tag`` with it
      unless the whole list is ignored ("Controlling Resource Modification", Limitations), and
      with the whole list ignored (:func:`ignore_application_differences`) a template parameter
      would never reach an existing Application. With no template parameter the list never
      appears in a patch.
    * No ``automated.allowEmpty: true``: auto-sync with prune must keep refusing to wipe out
      every resource (controller/appcontroller.go ``autoSync``).
    * None of :data:`GUARD_BYPASSING_SYNC_OPTIONS`.

    Raises ValueError naming the offending key. Pinned by
    tests/contracts/test_applicationset_merge_patch.py.
    """
    spec = template.get("spec") or {}
    if "sources" in spec:
        raise ValueError(
            "ApplicationSet template: spec.sources is not allowed (a merge patch replaces the whole "
            "list, Image Updater's parameters included); use spec.source"
        )
    helm = (spec.get("source") or {}).get("helm") or {}
    if helm.get("parameters"):
        names = ", ".join(str(p.get("name")) for p in helm["parameters"])
        raise ValueError(
            f"ApplicationSet template: spec.source.helm.parameters ({names}) is not allowed: the "
            "controller's merge patch would replace the whole list and delete the parameters "
            f"Image Updater writes ({', '.join(IMAGE_UPDATER_PARAMETERS)}); put values in a value file"
        )
    policy = spec.get("syncPolicy") or {}
    if (policy.get("automated") or {}).get("allowEmpty"):
        raise ValueError(
            "ApplicationSet template: spec.syncPolicy.automated.allowEmpty must not be true "
            "(auto-sync would prune every resource of an empty render)"
        )
    bypass = sorted(GUARD_BYPASSING_SYNC_OPTIONS & set(policy.get("syncOptions") or []))
    if bypass:
        raise ValueError(
            f"ApplicationSet template: spec.syncPolicy.syncOptions {bypass} is not allowed (a sync "
            "of a release without image.tag would no longer fail before pruning)"
        )


# The Prune option of a manually synced (prod) Application: every sync the API server starts
# (the UI, also per resource; `argocd app sync`, also `--resource` and `--core`) copies the
# Application's syncOptions into its operation (argo-cd v3.4.4 server/application/application.go
# ``Sync``), and gitops-engine then prunes nothing until the Application carries
# ``argocd.argoproj.io/deletion-approved`` (sync_context.go ``objRequiresPruneConfirmation``,
# ``WithDefaultPruneOption``). That closes what the chart's ImageTagMissing guard cannot: a sync of
# *selected* resources never looks the guard up (``getSyncTasks`` skips unselected resources), so
# a selected Deployment of a tag-less render would be pruned. The prod deploy writes its own
# operation without it (infra.deploy_model.sync_options): it syncs the whole Application, only one
# that has image.tag, so its prunes (a release that removes a resource) need no approval.
PRUNE_NEEDS_CONFIRMATION = "Prune=confirm"


def application_sync_options(config: StackConfig) -> list[str]:
    """``spec.syncPolicy.syncOptions`` of every generated Application.

    Server-side apply and the namespace for all; and for a manually synced environment (prod)
    :data:`PRUNE_NEEDS_CONFIRMATION`, so no sync but the prod deploy's prunes without an explicit
    approval (docs/argocd.md, "What the guard does not cover"). Not for automated sync: auto-sync
    copies the options too (controller/appcontroller.go ``autoSync``) and staging's prunes would
    all wait for a person.
    """
    options = ["CreateNamespace=true", "ServerSideApply=true"]
    if config.argocd.sync == "manual":
        options.append(PRUNE_NEEDS_CONFIRMATION)
    return options


# The namespace label that makes the AWS Load Balancer Controller's pod webhook inject its target
# health readiness gate (kubernetes-sigs/aws-load-balancer-controller v3.5.0
# docs/deploy/pod_readiness_gate.md; the chart's MutatingWebhookConfiguration ``mpod.elbv2.k8s.aws``
# selects namespaces by it, templates/webhook.yaml).
POD_READINESS_GATE_INJECT_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"
POD_READINESS_GATE_INJECT_VALUE = "enabled"


def managed_namespace_metadata(config: StackConfig) -> dict[str, Any] | None:
    """``spec.syncPolicy.managedNamespaceMetadata`` of every generated Application: with
    platform:traffic, the label that gives the storefront's pods the load balancer's readiness gate;
    None without it (no load balancer, nothing to wait for).

    With target type ``ip`` the ALB sends to pod IPs. Without the gate a pod counts as ready (and
    a rolling update or a canary step moves on, taking old pods away) as soon as its own probe
    passes, possibly before the ALB has registered it and found it healthy; with the gate the pod
    is ready only once its target is Healthy in the target group. The controller's webhook injects
    the gate at pod creation into pods of labelled namespaces that a Service with an ``ip``
    TargetGroupBinding selects (v3.5.0 pkg/inject/pod_readiness/pod_readiness_gate.go ``Mutate``):
    the storefront's pods only, the other services have no load balancer.

    The chart renders the Ingress into the release namespace, which Argo CD creates
    (``CreateNamespace=true``). Argo CD v3.4.4 applies these labels to that namespace whether it is
    new or already exists (controller/sync_namespace.go ``syncNamespace``: with
    ``managedNamespaceMetadata`` the namespace is synced, by server-side apply) in the PreSync
    phase, before the chart's objects (gitops-engine/pkg/sync/sync_context.go). Server-side apply
    keeps the labels other managers set (docs/user-guide/sync-options.md, "Namespace Metadata").
    The gate is injected at pod creation only, and only once the controller has made the Ingress's
    TargetGroupBinding: pods that ran before (an existing release, the very first pods of a new
    region) get it when the next release replaces them.
    """
    if config.traffic is None:
        return None
    return {"labels": {POD_READINESS_GATE_INJECT_LABEL: POD_READINESS_GATE_INJECT_VALUE}}


def application_set(config: StackConfig) -> dict[str, Any]:
    """One Application per registered cluster of this environment, named
    ``naming.application_name(app, env, region)`` from the cluster Secret's labels."""
    app = config.application
    env = config.environment
    region = _label(naming.LABEL_REGION)
    set_name = naming.application_set_name(app.name, env)
    base_files = naming.value_files(env, "REGION")
    # The last file is regional; build it from the same naming function, region templated.
    value_files = [*base_files[:-1], base_files[-1].replace("REGION", region)]
    helm: dict[str, Any] = {"valueFiles": value_files}
    # The per-cluster traffic values (infra.traffic.chart_values): a values object, never
    # parameters, which Image Updater owns (check_application_template).
    values = traffic.chart_values(config)
    if values is not None:
        helm["valuesObject"] = values
    app_sync: dict[str, Any] = {"syncOptions": application_sync_options(config)}
    namespace_metadata = managed_namespace_metadata(config)
    if namespace_metadata is not None:
        app_sync["managedNamespaceMetadata"] = namespace_metadata
    if config.argocd.sync == "automated":
        app_sync["automated"] = {"prune": True, "selfHeal": True}
        app_sync["retry"] = {
            "limit": 5,
            "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"},
        }
    spec: dict[str, Any] = {
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"clusters": {"selector": cluster_selector(env)}}],
        "template": {
            "metadata": {
                "name": naming.application_name(app.name, env, region),
                "labels": {
                    naming.LABEL_APPLICATION_SET: set_name,
                    naming.LABEL_ENVIRONMENT: env,
                    naming.LABEL_REGION: region,
                },
                "annotations": {
                    naming.ANNOTATION_ACCOUNT: _annotation(naming.ANNOTATION_ACCOUNT),
                    naming.ANNOTATION_REGISTRY: _annotation(naming.ANNOTATION_REGISTRY),
                },
            },
            "spec": {
                "project": naming.APP_PROJECT,
                "source": {
                    "repoURL": app.repo_url,
                    "path": app.path,
                    "targetRevision": app.revision,
                    "helm": helm,
                },
                "destination": {"server": "{{ .server }}", "namespace": app.namespace},
                "syncPolicy": app_sync,
            },
        },
    }
    ignore = ignore_application_differences(config)
    if ignore:
        spec["ignoreApplicationDifferences"] = ignore
    if config.argocd.sync == "manual":
        # Deleting an Application (or the set) must never delete what runs in prod.
        spec["syncPolicy"] = {"preserveResourcesOnDeletion": True}
    check_application_template(spec["template"])
    return {
        "apiVersion": ARGOPROJ_API,
        "kind": "ApplicationSet",
        "metadata": {"name": set_name, "namespace": naming.ARGOCD_NAMESPACE},
        "spec": spec,
    }


# --- ImageUpdater --------------------------------------------------------------------------------


def image_updater_name(config: StackConfig) -> str:
    return naming.application_set_name(config.application.name, config.environment)


def _git_target(config: StackConfig, region: str) -> str:
    regional = naming.value_files(config.environment, region)[-1]
    return f"helmvalues:/{config.application.path}/{regional}"


def image_updater(config: StackConfig) -> dict[str, Any]:
    """The ImageUpdater CR: the sentinel image, per region, from that region's registry.

    A region's Application moves only when the tag is in its *own* registry, i.e. after ECR
    replication reached it; the sentinel is pushed last, so every service's image is there too.
    """
    iu = config.image_updater
    refs = []
    for region in config.region_names:
        ref: dict[str, Any] = {
            "namePattern": naming.application_name(config.application.name, config.environment, region),
            "images": [
                {
                    "alias": config.sentinel_service,
                    "imageName": naming.image_repository(
                        config.account_id, region, config.ecr.prefix, config.sentinel_service
                    ),
                    # No commonUpdateSettings here or on the ref, by construction: the CRD
                    # defaults updateStrategy to semver inside any such block (see the spec's).
                    "manifestTargets": {"helm": {"name": IMAGE_NAME_PARAMETER, "tag": IMAGE_TAG_PARAMETER}},
                }
            ],
        }
        if iu.write_back_method == "git":
            git: dict[str, Any] = {"writeBackTarget": _git_target(config, region)}
            if iu.git_branch:
                git["branch"] = iu.git_branch
            ref["writeBackConfig"] = {"method": "git", "gitConfig": git}
        refs.append(ref)
    return {
        "apiVersion": IMAGE_UPDATER_API,
        "kind": "ImageUpdater",
        "metadata": {"name": image_updater_name(config), "namespace": naming.ARGOCD_NAMESPACE},
        "spec": {
            # Every setting lives here and only here. The CRD (chart 1.2.4; v1.2.2
            # api/v1alpha1/imageupdater_types.go `+kubebuilder:default:="semver"` and `=false`)
            # defaults updateStrategy and forceUpdate inside *every* commonUpdateSettings block
            # that is present (structural-schema defaulting, Kubernetes doc "CustomResourceDefinition
            # defaulting"; k8s.io/apiextensions-apiserver pkg/apiserver/schema/defaulting/
            # algorithm.go), and pkg/argocd/argocd.go mergeCommonUpdateSettings lets the more
            # specific block win (spec < applicationRefs[] < images[], parseImageList). A nested
            # block, even one holding only forceUpdate, would thus make the effective strategy
            # semver whatever the config says. An absent block stays nil and merges nothing, so
            # these settings reach every image.
            # forceUpdate: before the first tag nothing runs (the chart renders only its guard),
            # so the image is not in status.summary.images, and Image Updater updates only live
            # images unless forceUpdate adds it (pkg/argocd/argocd.go GetImagesFromApplication).
            # Pinned by tests/contracts/test_image_updater_settings.py and
            # tests/contracts/test_image_updater_source_type.py.
            "commonUpdateSettings": {
                "updateStrategy": iu.update_strategy,
                "allowTags": iu.allow_tags,
                "forceUpdate": True,
            },
            "writeBackConfig": {"method": iu.write_back_method},
            "applicationRefs": refs,
        },
    }


# --- Outputs -------------------------------------------------------------------------------------


def argocd_output(config: StackConfig) -> dict[str, Any]:
    """The OUTPUT_ARGOCD stack output: where Argo CD runs and how to reach it."""
    return {
        "region": config.hub_region,
        "namespace": naming.ARGOCD_NAMESPACE,
        "url": f"https://{argocd_domain(config)}",
        "portForward": port_forward_command(),
        "applicationSet": naming.application_set_name(config.application.name, config.environment),
    }
