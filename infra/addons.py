"""Cluster add-ons through GitOps (the GitOps Bridge pattern), as data.

The program bootstraps only what GitOps cannot: Argo CD on the hub, and for each add-on that
calls AWS its IAM role and EKS Pod Identity association on each cluster
(:mod:`infra.components.addons`). It writes each cluster's facts into that cluster's Argo CD
cluster Secret, the way the GitOps Bridge does (gitops-bridge-dev/terraform-helm-gitops-bridge
``main.tf`` @714c425: the add-on switches become Secret *labels*, ``enable_<addon>: "true"``; the
metadata becomes *annotations*, ``aws_cluster_name``, ``aws_region``, ``aws_account_id``,
``aws_vpc_id``, ``<addon>_namespace``, ``<addon>_service_account``, ...). One ApplicationSet per
add-on then selects, with Argo CD's cluster generator, the clusters whose label switches it on,
and hands the annotations to the chart's values through Go templates
(argoproj/argo-cd v3.4.4 ``applicationset/generators/cluster.go``, ``getClusterParameters``:
with ``goTemplate`` the parameters are ``name``, ``nameNormalized``, ``server``, ``project`` and
``metadata.labels`` / ``metadata.annotations``; ``applicationset/utils/utils.go``,
``deeplyReplace``: strings inside ``helm.valuesObject`` are templated too).

Which chart each add-on comes from is :data:`infra.versions.ADDON_CHARTS`; which version an
environment runs, and on which of its clusters, is the stack file's ``platform:addons``. Adding
an add-on to one environment is therefore one entry in that stack file: it puts the label on the
chosen clusters' Secrets and declares the add-on's ApplicationSet on that environment's hub.

Everything here is a pure function of the config; tests render the ApplicationSets as the
cluster generator would and ``helm template`` the real chart packages (``../shared``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra import naming, versions
from infra.config import StackConfig
from infra.documents import addons_iam

ARGOPROJ_API = "argoproj.io/v1alpha1"
# The AppProject every add-on Application runs in (never the application's project).
ADDONS_PROJECT = "platform-addons"
# Label on each add-on ApplicationSet and the Applications it generates.
LABEL_ADDON = "platform.example.com/addon"

# Cluster Secret annotations (GitOps Bridge names) every cluster carries.
ANNOTATION_CLUSTER_NAME = "aws_cluster_name"
ANNOTATION_REGION = "aws_region"
ANNOTATION_ACCOUNT = "aws_account_id"
ANNOTATION_VPC = "aws_vpc_id"

KUBE_SYSTEM = "kube-system"


def snake(name: str) -> str:
    """``metrics-server`` -> ``metrics_server``: label and annotation keys use the GitOps Bridge's
    snake case."""
    return name.replace("-", "_")


def enable_label(addon: str) -> str:
    """The cluster Secret label that switches ``addon`` on (value ``"true"``)."""
    return f"enable_{snake(addon)}"


def namespace_annotation(addon: str) -> str:
    return f"{snake(addon)}_namespace"


def service_account_annotation(addon: str) -> str:
    return f"{snake(addon)}_service_account"


def role_arn_annotation(addon: str) -> str:
    """``aws_<addon>_iam_role_arn``; an add-on whose name already starts with ``aws-`` is not
    prefixed twice (``aws_load_balancer_controller_iam_role_arn``, the GitOps Bridge's name)."""
    name = snake(addon)
    return f"{name}_iam_role_arn" if name.startswith("aws_") else f"aws_{name}_iam_role_arn"


def annotation(key: str) -> str:
    """A Go template reading cluster Secret annotation ``key`` that fails the generation when the
    Secret lacks it (or it is empty).

    ``missingkey=error`` does not do that: it governs map lookups by field (``.a.b``), while
    ``index`` of a map returns the element type's zero value for a missing key (Go text/template
    doc, "index" and ``Option`` "missingkey"; funcs.go ``index``: ``reflect.Zero``), so a plain
    ``index`` renders "" and an add-on would run with an empty cluster name or region. Argo CD
    v3.4.4 offers Sprig's functions except ``env``, ``expandenv`` and ``getHostByName``
    (docs/operator-manual/applicationset/GoTemplate.md; applicationset/utils/utils.go), so Sprig's
    ``fail`` is available: rendering that cluster's Application errors with the message. The error
    stops the whole ApplicationSet, not only that cluster: v3.4.4
    ``applicationset/controllers/template/template.go`` ``GenerateApplications`` renders the other
    clusters but returns its first error, and ``applicationset_controller.go`` ``Reconcile`` then
    sets the ``ErrorOccurred`` condition and requeues before creating, updating or deleting any
    Application. So no Application of that add-on's set, on any cluster, is created or updated
    (a version bump reaches none) until the Secret is fixed; existing ones keep running as they
    are."""
    read = "index .metadata.annotations " + json.dumps(key)
    missing = json.dumps(f"cluster Secret annotation {key} is missing or empty")
    return "{{ if not (" + read + ") }}{{ fail " + missing + " }}{{ end }}{{ " + read + " }}"


def label(key: str) -> str:
    return "{{ index .metadata.labels " + json.dumps(key) + " }}"


@dataclass(frozen=True)
class Addon:
    """One add-on: where it runs and what it needs.

    ``values(config, role)`` gives the chart's values for a cluster of ``role`` (hub|spoke, None
    when the values do not depend on it), with
    Go templates where a value differs per cluster. ``cluster_kinds`` are the cluster-scoped
    kinds its chart renders ((group, kind); the add-ons' AppProject allows exactly these).
    ``service_account`` is set for an add-on that calls AWS through EKS Pod Identity.
    """

    name: str
    namespace: str
    values: Callable[[StackConfig, str | None], dict[str, Any]]
    cluster_kinds: tuple[tuple[str, str], ...]
    service_account: str | None = None
    # Whether the values differ between the hub and the spokes (one ApplicationSet per role then).
    per_role: bool = False
    # Namespaces beyond its own it writes to on the hub only (the AppProject allows them there).
    hub_namespaces: tuple[str, ...] = ()
    # Its IAM permission policy on the cluster of a region (an add-on that calls AWS).
    policy: Callable[[StackConfig, str], dict[str, Any]] | None = None
    # The roles its Pod Identity role assumes on the cluster of a region (External Secrets: one
    # per store), created with it.
    store_roles: Callable[[StackConfig, str], list[StoreRole]] | None = None
    # Fields of rendered objects that Argo CD neither diffs nor overwrites once they exist
    # (``ignoreDifferences`` entries, applied at sync with ``RespectIgnoreDifferences=true``).
    ignore_differences: tuple[Mapping[str, Any], ...] = ()
    summary: str = field(default="")

    @property
    def chart(self) -> Mapping[str, str]:
        return versions.ADDON_CHARTS[self.name]


# --- metrics-server ------------------------------------------------------------------------------


def metrics_server_values(config: StackConfig, role: str | None) -> dict[str, Any]:
    """Values for the metrics-server chart (kubernetes-sigs/metrics-server charts/metrics-server).

    It serves the ``metrics.k8s.io`` API the HorizontalPodAutoscalers read (``resource`` metrics);
    without it every HPA shows ``<unknown>`` and never scales. Two replicas and a disruption
    budget in prod, so a node drain never leaves the HPAs blind; the chart's PDB template takes
    ``minAvailable`` (metrics-server 3.13.1 templates/pdb.yaml).
    """
    ha = config.argocd.ha
    return {
        "replicas": 2 if ha else 1,
        "podDisruptionBudget": {"enabled": ha, "minAvailable": 1} if ha else {"enabled": False},
    }


# --- External Secrets Operator ------------------------------------------------------------------

EXTERNAL_SECRETS_API = "external-secrets.io/v1"
# The ClusterSecretStore on every cluster running External Secrets, for the application's namespace
# only; the shop chart's ExternalSecrets name it (charts/shop/values.yaml externalSecrets.store).
SECRET_STORE = "aws-secrets-manager"
# The hub's second store, for Argo CD's namespace only (repository credentials, notifications).
ARGOCD_SECRET_STORE = "aws-secrets-manager-argocd"
# Each store reads with its own role, assumed by the controller (``spec.provider.aws.role``), and
# each role reads only its consumer's secrets: the application's store cannot read Argo CD's.
STORE_APPLICATION = "app"
STORE_ARGOCD = "argocd"
EXTERNAL_SECRETS_NAMESPACE = "external-secrets"
EXTERNAL_SECRETS_SERVICE_ACCOUNT = "external-secrets"
# Argo CD applies a later sync wave only once the earlier one is healthy (argo-cd v3.4.4
# docs/user-guide/sync-waves.md), so the store and the ExternalSecrets in the chart's
# extraObjects wait for the CRDs, the controller and the webhook that validates them.
AFTER_THE_CONTROLLER = {"argocd.argoproj.io/sync-wave": "1"}
# Argo CD reads repository credential templates from Secrets with this label
# (argo-cd v3.4.4 docs/operator-manual/declarative-setup.md, "Repository Credentials").
REPO_CREDS_LABEL_VALUE = "repo-creds"


def secret_name(config: StackConfig, *parts: str) -> str:
    """A secret's name in AWS Secrets Manager: ``platform/<env>/<part>/...``, under the prefix
    the External Secrets role may read (infra/documents/addons_iam.py ``secrets_prefix``)."""
    return addons_iam.secrets_prefix(config.environment) + "/".join(parts)


def application_secrets_prefix(config: StackConfig) -> str:
    """Where the application's services keep their secrets: ``<prefix>/<service>`` each."""
    return secret_name(config, config.application.name)


def repo_creds_secret_name(config: StackConfig) -> str:
    """The Secrets Manager secret (hub region) holding Argo CD's credentials for the private
    repository: a JSON object with ``username`` and ``password`` (a token), or GitHub App keys
    ``githubAppID``, ``githubAppInstallationID``, ``githubAppPrivateKey``."""
    return secret_name(config, "argocd", "repo-creds")


def repo_creds_secret(config: StackConfig) -> str:
    return f"repo-creds-{config.application.name}"


@dataclass(frozen=True)
class StoreRole:
    """One External Secrets store of a cluster and the IAM role it reads with: ``consumer``
    (:data:`STORE_APPLICATION` | :data:`STORE_ARGOCD`), the ClusterSecretStore's name, the
    namespaces that may use it, and the secret ARNs (or ARN patterns) its role may read."""

    consumer: str
    store: str
    namespaces: tuple[str, ...]
    secrets: tuple[str, ...]


def argocd_secret_names(config: StackConfig) -> tuple[str, ...]:
    """The Secrets Manager secrets Argo CD's namespace reads (hub region): the repository
    credentials and the notifications' keys, when configured."""
    from infra.manifests import notifications  # it builds on this module's names

    return tuple(sorted({repo_creds_secret_name(config), *notifications.secret_keys(config).values()}))


def store_roles(config: StackConfig, region: str) -> list[StoreRole]:
    """The stores of the cluster of ``region``: the application's (every cluster running External
    Secrets; its services' secrets under ``<prefix>/<application>/``), and on the hub Argo CD's
    (exactly :func:`argocd_secret_names`)."""
    account = config.account_id
    out = [
        StoreRole(
            consumer=STORE_APPLICATION,
            store=SECRET_STORE,
            namespaces=(config.application.namespace,),
            secrets=(
                addons_iam.secret_prefix_arn(account, region, application_secrets_prefix(config) + "/"),
            ),
        )
    ]
    if region == config.hub_region:
        out.append(
            StoreRole(
                consumer=STORE_ARGOCD,
                store=ARGOCD_SECRET_STORE,
                namespaces=(naming.ARGOCD_NAMESPACE,),
                secrets=tuple(
                    addons_iam.secret_name_arn(account, region, n) for n in argocd_secret_names(config)
                ),
            )
        )
    return out


def store_role_follows_the_hub(consumer: str) -> bool:
    """Whether a store's role exists once per environment and follows the hub (Argo CD's), rather
    than once per cluster (the application's). A role that follows the hub keeps its name across a
    hub move and is declared through the account's provider, like Argo CD's other roles, so the
    move updates it in place instead of deleting one role and creating another (docs/dr.md)."""
    return consumer == STORE_ARGOCD


def store_role_name(config: StackConfig, region: str, consumer: str) -> str:
    """``platform-<env>-eso-<consumer>-<region>``, or ``platform-<env>-eso-<consumer>`` for a store
    that follows the hub (:func:`store_role_follows_the_hub`); at most :data:`ROLE_NAME_MAX`
    characters."""
    if store_role_follows_the_hub(consumer):
        return naming.role_name(config.environment, f"eso-{consumer}")
    return naming.role_name(config.environment, f"eso-{consumer}-{region}")


def store_role_arn(config: StackConfig, region: str, consumer: str) -> str:
    return f"arn:aws:iam::{config.account_id}:role/{store_role_name(config, region, consumer)}"


def store_role_annotation(consumer: str) -> str:
    """The cluster Secret annotation carrying a store's role ARN."""
    return f"aws_external_secrets_{consumer}_store_role_arn"


def _external_secrets_policy(config: StackConfig, region: str) -> dict[str, Any]:
    return addons_iam.external_secrets_controller_policy(
        [store_role_arn(config, region, s.consumer) for s in store_roles(config, region)]
    )


def _store(name: str, consumer: str, namespaces: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ClusterSecretStore",
        "metadata": {"name": name, "annotations": dict(AFTER_THE_CONTROLLER)},
        "spec": {
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": annotation(ANNOTATION_REGION),
                    "role": annotation(store_role_annotation(consumer)),
                }
            },
            "conditions": [{"namespaces": namespaces}],
        },
    }


def cluster_secret_store(config: StackConfig, role: str | None) -> dict[str, Any]:
    """The application's store: AWS Secrets Manager of the cluster's own region, read with the
    application store's role, which the controller assumes with its Pod Identity credentials
    (no ``auth`` block: the AWS SDK's default chain, then ``role``: external-secrets v2.9.0
    providers/v1/aws/auth/auth.go ``createConfiguration``), usable only from the application's
    namespace (``conditions``: pkg/controllers/secretstore/client_manager.go
    ``shouldProcessSecret``)."""
    return _store(SECRET_STORE, STORE_APPLICATION, [config.application.namespace])


def argocd_secret_store(config: StackConfig) -> dict[str, Any]:
    """On the hub: Argo CD's store, usable only from Argo CD's namespace, with the role that reads
    exactly Argo CD's secrets."""
    return _store(ARGOCD_SECRET_STORE, STORE_ARGOCD, [naming.ARGOCD_NAMESPACE])


def repo_creds_external_secret(config: StackConfig) -> dict[str, Any]:
    """On the hub: Argo CD's credential template for the application's repository, from Secrets
    Manager. Every key of the JSON secret is copied (``dataFrom.extract``); the template adds the
    ``url`` the credentials apply to (a prefix match: argo-cd v3.4.4 declarative-setup.md) and the
    ``repo-creds`` label (``mergePolicy: Merge`` keeps the extracted keys)."""
    return {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": {
            "name": repo_creds_secret(config),
            "namespace": naming.ARGOCD_NAMESPACE,
            "annotations": dict(AFTER_THE_CONTROLLER),
        },
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": ARGOCD_SECRET_STORE},
            "target": {
                "name": repo_creds_secret(config),
                "creationPolicy": "Owner",
                "template": {
                    "metadata": {"labels": {"argocd.argoproj.io/secret-type": REPO_CREDS_LABEL_VALUE}},
                    "mergePolicy": "Merge",
                    "data": {"type": "git", "url": config.application.repo_url},
                },
            },
            "dataFrom": [{"extract": {"key": repo_creds_secret_name(config)}}],
        },
    }


def external_secrets_values(config: StackConfig, role: str | None) -> dict[str, Any]:
    """Values for the external-secrets chart (external-secrets/external-secrets
    deploy/charts/external-secrets): the controller under the service account the Pod Identity
    association names, and the cluster's store (plus, on the hub, Argo CD's repository
    credentials) as ``extraObjects`` the chart renders with ``tpl`` (templates/extra-manifests.yaml)."""
    from infra.manifests import notifications  # it builds on this module's names

    objects = [cluster_secret_store(config, role)]
    if role == "hub":
        objects += [argocd_secret_store(config), repo_creds_external_secret(config)]
        # Argo CD notifications' Secret (GitHub App key, chat webhook URL), when configured.
        notifications_secret = notifications.external_secret(config)
        if notifications_secret is not None:
            objects.append(notifications_secret)
    return {
        "installCRDs": True,
        "serviceAccount": {"create": True, "name": EXTERNAL_SECRETS_SERVICE_ACCOUNT},
        "extraObjects": objects,
    }


# --- Cluster Autoscaler ---------------------------------------------------------------------------

CLUSTER_AUTOSCALER = "cluster-autoscaler"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"


def cluster_autoscaler_values(config: StackConfig, role: str | None) -> dict[str, Any]:
    """Values for the cluster-autoscaler chart (kubernetes/autoscaler
    cluster-autoscaler/charts/cluster-autoscaler): AWS, auto-discovery of this cluster's managed
    node group (by the tags EKS puts on its Auto Scaling group; the chart's default
    ``autoDiscovery.tags``), the cluster's region, the service account the Pod Identity
    association names. It scales the node group between the stack file's ``nodeGroup.minSize``
    and ``maxSize`` (the Auto Scaling group's bounds; it only moves the desired size). Arguments
    (cluster-autoscaler FAQ, "What are the parameters to CA?"): ``least-waste`` picks the
    instance type leaving the least idle CPU; node-local ``emptyDir`` (the shop pods' ``/tmp``)
    does not block scale-down."""
    return {
        "cloudProvider": "aws",
        "awsRegion": annotation(ANNOTATION_REGION),
        "autoDiscovery": {"clusterName": annotation(ANNOTATION_CLUSTER_NAME)},
        "rbac": {"serviceAccount": {"create": True, "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
        "customArgs": ["--expander=least-waste", "--skip-nodes-with-local-storage=false"],
    }


# --- AWS Load Balancer Controller ---------------------------------------------------------------

LOAD_BALANCER_CONTROLLER = "aws-load-balancer-controller"
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
# The IngressClass the chart creates (its ``ingressClass``; the controller is
# ``ingress.k8s.aws/alb``): the shop chart's Ingress names it in ``spec.ingressClassName``.
INGRESS_CLASS = "alb"
# The controller's webhook certificate: the chart generates a new CA and serving certificate each
# time it is rendered (templates/_helpers.tpl ``webhookCerts``: ``genCA``; ``keepTLSSecret`` reads
# the live Secret with Helm's ``lookup``, which Argo CD's ``helm template`` cannot do), and writes
# the same render's CA into both webhook configurations and the Secret (templates/webhook.yaml).
# Argo CD re-renders on every manifest refresh, so without this the Application is always
# OutOfSync, and a sync would replace the CA in the configurations before the pods reload the
# new certificate from the Secret, failing every admission call in between
# (kubernetes-sigs/aws-load-balancer-controller#1828). Argo CD applies these fields only when it
# creates the objects (one render: matching CA and certificate), then leaves them alone.
LOAD_BALANCER_CONTROLLER_WEBHOOK = "aws-load-balancer-webhook"
LOAD_BALANCER_CONTROLLER_TLS_SECRET = "aws-load-balancer-tls"
_CA_BUNDLES = (".webhooks[]?.clientConfig.caBundle",)
LOAD_BALANCER_CONTROLLER_GENERATED: tuple[Mapping[str, Any], ...] = (
    {"group": "", "kind": "Secret", "name": LOAD_BALANCER_CONTROLLER_TLS_SECRET, "jsonPointers": ["/data"]},
    {
        "group": "admissionregistration.k8s.io",
        "kind": "MutatingWebhookConfiguration",
        "name": LOAD_BALANCER_CONTROLLER_WEBHOOK,
        "jqPathExpressions": list(_CA_BUNDLES),
    },
    {
        "group": "admissionregistration.k8s.io",
        "kind": "ValidatingWebhookConfiguration",
        "name": LOAD_BALANCER_CONTROLLER_WEBHOOK,
        "jqPathExpressions": list(_CA_BUNDLES),
    },
)


def load_balancer_controller_values(config: StackConfig, role: str | None) -> dict[str, Any]:
    """Values for the aws-load-balancer-controller chart (aws/eks-charts
    stable/aws-load-balancer-controller 3.5.0, app v3.5.0).

    * ``clusterName``, ``region``, ``vpcId`` from the cluster Secret's annotations: the controller
      tags what it creates with ``elbv2.k8s.aws/cluster: <clusterName>`` (the tag its IAM policy's
      conditions require) and picks subnets tagged for this cluster; region and VPC are passed so
      it never asks the instance metadata service (the nodes' IMDSv2 hop limit keeps pods from it).
    * The service account the Pod Identity association names, with no IRSA annotation.
    * The chart's IngressClass ``alb`` (``createIngressClassResource``), not the default class:
      an Ingress is handled only when it names it. No IngressClassParams (``create: false``): the
      chart's default one is empty and referenced by nothing; the Ingress's annotations set the
      scheme, certificate and target type.
    * ``defaultTargetType: ip``: the ALB sends to pod IPs (the chart's advice for the Amazon VPC
      CNI), so the path to the pods is the ALB's security group, which NetworkPolicies can name.
    * ``enableServiceMutatorWebhook: false``: that webhook only sets ``loadBalancerClass`` on new
      ``type: LoadBalancer`` Services (webhooks/core/service_mutator.go at v3.5.0), which this
      platform has none of, yet it is called for *every* Service created in the cluster with
      ``failurePolicy: Fail`` and no namespace selector (values.yaml
      ``serviceMutatorWebhookConfig``): while no controller pod answers (day 0, a rebuilt
      region, both replicas rescheduling) no Service could be created anywhere. A LoadBalancer
      Service that wants this controller sets ``loadBalancerClass: service.k8s.aws/nlb``.
    * Two replicas and a PodDisruptionBudget: its Ingress validating webhook fails closed.
    """
    return {
        "clusterName": annotation(ANNOTATION_CLUSTER_NAME),
        "region": annotation(ANNOTATION_REGION),
        "vpcId": annotation(ANNOTATION_VPC),
        "serviceAccount": {"create": True, "name": LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT},
        "replicaCount": 2,
        "podDisruptionBudget": {"maxUnavailable": 1},
        "ingressClass": INGRESS_CLASS,
        "createIngressClassResource": True,
        "ingressClassConfig": {"default": False},
        "ingressClassParams": {"create": False},
        "defaultTargetType": "ip",
        "enableServiceMutatorWebhook": False,
    }


# --- ExternalDNS ---------------------------------------------------------------------------------

EXTERNAL_DNS = "external-dns"
EXTERNAL_DNS_NAMESPACE = "external-dns"
EXTERNAL_DNS_SERVICE_ACCOUNT = "external-dns"
# Sync, not upsert-only: each cluster's ExternalDNS owns only the records whose TXT registry
# record carries its owner ID (plan/plan.go at v0.21.0 filters deletes and updates by
# ``OwnerID``), so deleting is safe for the other regions' records, and a record whose Ingress
# is gone is removed instead of pointing at a deleted load balancer (docs/addons.md).
EXTERNAL_DNS_POLICY = "sync"


def external_dns_owner_id(config: StackConfig, region: str) -> str:
    """The TXT registry owner of a cluster's records: its cluster name, unique per environment and
    region and the same after the region is rebuilt, so the rebuilt ExternalDNS takes its old
    records back and no region's ExternalDNS ever deletes another's."""
    return naming.cluster_name(config.environment, region)


def external_dns_values(config: StackConfig, role: str | None) -> dict[str, Any]:
    """Values for the external-dns chart (kubernetes-sigs/external-dns charts/external-dns 1.21.1,
    app 0.21.0): Route 53 (``provider.name: aws``), names from Ingresses only, the TXT registry
    with this cluster's owner ID (its ``aws_cluster_name`` annotation, :func:`external_dns_owner_id`),
    only platform:traffic's zone (``domainFilters`` by name, ``--zone-id-filter`` by ID,
    ``--aws-zone-type=public``: flags of pkg/apis/externaldns/types.go at v0.21.0), policy
    :data:`EXTERNAL_DNS_POLICY`. Route 53 is global, but the AWS SDK needs a region: the cluster's,
    as ``AWS_DEFAULT_REGION`` (docs/tutorials/aws.md at v0.21.0, "Using Helm"). Pod Identity
    credentials need no annotation (same tutorial, "EKS Pod Identity Associations").

    ValueError when the stack has no platform:traffic (config refuses external-dns without it)."""
    if config.traffic is None:
        raise ValueError("external-dns needs platform:traffic (hostedZoneId, zoneName)")
    return {
        "provider": {"name": "aws"},
        "sources": ["ingress"],
        "policy": EXTERNAL_DNS_POLICY,
        "registry": "txt",
        "txtOwnerId": annotation(ANNOTATION_CLUSTER_NAME),
        "domainFilters": [config.traffic.zone_name],
        "extraArgs": {"zone-id-filter": config.traffic.hosted_zone_id, "aws-zone-type": "public"},
        "env": [{"name": "AWS_DEFAULT_REGION", "value": annotation(ANNOTATION_REGION)}],
        "serviceAccount": {"create": True, "name": EXTERNAL_DNS_SERVICE_ACCOUNT},
    }


def _external_dns_policy(config: StackConfig, region: str) -> dict[str, Any]:
    if config.traffic is None:
        raise ValueError("external-dns needs platform:traffic (hostedZoneId, zoneName)")
    return addons_iam.external_dns_policy(config.traffic.hosted_zone_id)


# --- Argo Rollouts ------------------------------------------------------------------------------

ARGO_ROLLOUTS = "argo-rollouts"
ARGO_ROLLOUTS_NAMESPACE = "argo-rollouts"
# The chart's serviceAccount.name; the Pod Identity association names exactly this account.
ARGO_ROLLOUTS_SERVICE_ACCOUNT = "argo-rollouts"


def argo_rollouts_values(config: StackConfig, role: str | None) -> dict[str, Any]:
    """Values for the argo-rollouts chart (argoproj/argo-helm charts/argo-rollouts 2.41.0, Argo
    Rollouts v1.9.0): the controller under the service account the Pod Identity association
    names, with ALB target group verification on and the cluster's region for its AWS clients.

    * ``controller.awsVerifyTargetGroup`` adds ``--aws-verify-target-group``
      (templates/controller/deployment.yaml). Beyond checking that the load balancer really carries
      each ``setWeight`` before the next step (argo-rollouts v1.9.0
      docs/features/traffic-management/alb.md, "TargetGroup weight verification"), it is what
      fills the Rollout's ``status.alb`` (rollout/trafficrouting/alb/alb.go ``VerifyWeight``: without
      it ``Status.ALB = nil``), whose load balancer and canary target group names the shop chart's
      analysis reads for CloudWatch's dimensions (docs/chart.md).
    * ``AWS_REGION``: the AWS SDK's default config (config.LoadDefaultConfig in utils/aws/aws.go and
      metricproviders/cloudwatch/cloudwatch.go) takes the region from the environment, and the
      cloudwatch provider's doc says to set it (docs/analysis/cloudwatch.md, "Setup").
    * Two replicas (leader election) in prod, like the other controllers.
    """
    return {
        "installCRDs": True,
        "serviceAccount": {"create": True, "name": ARGO_ROLLOUTS_SERVICE_ACCOUNT},
        "controller": {
            "replicas": 2 if config.argocd.ha else 1,
            "awsVerifyTargetGroup": True,
            "extraEnv": [{"name": "AWS_REGION", "value": annotation(ANNOTATION_REGION)}],
        },
        "dashboard": {"enabled": False},
    }


RBAC = "rbac.authorization.k8s.io"
ADMISSION = "admissionregistration.k8s.io"

CATALOG: dict[str, Addon] = {
    "metrics-server": Addon(
        name="metrics-server",
        namespace=KUBE_SYSTEM,
        values=metrics_server_values,
        cluster_kinds=(
            ("apiregistration.k8s.io", "APIService"),
            (RBAC, "ClusterRole"),
            (RBAC, "ClusterRoleBinding"),
        ),
        summary="Resource metrics API for the HorizontalPodAutoscalers",
    ),
    "external-secrets": Addon(
        name="external-secrets",
        namespace=EXTERNAL_SECRETS_NAMESPACE,
        values=external_secrets_values,
        cluster_kinds=(
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            (ADMISSION, "ValidatingWebhookConfiguration"),
            ("external-secrets.io", "ClusterSecretStore"),
            (RBAC, "ClusterRole"),
            (RBAC, "ClusterRoleBinding"),
        ),
        service_account=EXTERNAL_SECRETS_SERVICE_ACCOUNT,
        policy=_external_secrets_policy,
        store_roles=store_roles,
        per_role=True,
        hub_namespaces=(naming.ARGOCD_NAMESPACE,),
        summary="Secrets from AWS Secrets Manager (Pod Identity); Argo CD's repository credentials",
    ),
    "cluster-autoscaler": Addon(
        name="cluster-autoscaler",
        namespace=KUBE_SYSTEM,
        values=cluster_autoscaler_values,
        cluster_kinds=((RBAC, "ClusterRole"), (RBAC, "ClusterRoleBinding")),
        service_account=CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
        policy=lambda config, region: addons_iam.cluster_autoscaler_policy(
            config.account_id, region, config.environment
        ),
        summary="Adds and removes managed nodes for pods that do not fit",
    ),
    "aws-load-balancer-controller": Addon(
        name="aws-load-balancer-controller",
        namespace=KUBE_SYSTEM,
        values=load_balancer_controller_values,
        cluster_kinds=(
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            (ADMISSION, "MutatingWebhookConfiguration"),
            (ADMISSION, "ValidatingWebhookConfiguration"),
            ("networking.k8s.io", "IngressClass"),
            (RBAC, "ClusterRole"),
            (RBAC, "ClusterRoleBinding"),
        ),
        service_account=LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
        policy=lambda config, region: addons_iam.load_balancer_controller_policy(config.account_id, region),
        ignore_differences=LOAD_BALANCER_CONTROLLER_GENERATED,
        summary="Application Load Balancers for Ingresses of class alb (Pod Identity)",
    ),
    "external-dns": Addon(
        name="external-dns",
        namespace=EXTERNAL_DNS_NAMESPACE,
        values=external_dns_values,
        cluster_kinds=(
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            (RBAC, "ClusterRole"),
            (RBAC, "ClusterRoleBinding"),
        ),
        service_account=EXTERNAL_DNS_SERVICE_ACCOUNT,
        policy=_external_dns_policy,
        summary="Route 53 records of the Ingresses, in platform:traffic's zone (Pod Identity)",
    ),
    ARGO_ROLLOUTS: Addon(
        name=ARGO_ROLLOUTS,
        namespace=ARGO_ROLLOUTS_NAMESPACE,
        values=argo_rollouts_values,
        cluster_kinds=(
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            (RBAC, "ClusterRole"),
            (RBAC, "ClusterRoleBinding"),
        ),
        service_account=ARGO_ROLLOUTS_SERVICE_ACCOUNT,
        policy=lambda config, region: addons_iam.argo_rollouts_policy(region),
        summary="Canary releases of the shop's services: ALB traffic shifting, CloudWatch analysis (Pod Identity)",
    ),
}


def catalog() -> dict[str, Addon]:
    """Every add-on the program knows; its keys are exactly ``versions.ADDON_CHARTS``'s."""
    missing = sorted(set(versions.ADDON_CHARTS) ^ set(CATALOG))
    if missing:
        raise ValueError(f"add-ons in only one of versions.ADDON_CHARTS and infra.addons.CATALOG: {missing}")
    return CATALOG


def enabled(config: StackConfig) -> list[Addon]:
    """The add-ons this stack runs on at least one cluster, by name."""
    known = catalog()
    return [known[name] for name in sorted(config.addons) if config.addon_regions(name)]


def cluster_addons(config: StackConfig, region: str) -> dict[str, str]:
    """``{add-on: chart version}`` that the cluster of ``region`` runs."""
    return {
        addon.name: config.addons[addon.name].chart_version
        for addon in enabled(config)
        if region in config.addon_regions(addon.name)
    }


# --- The cluster Secret's labels and annotations -------------------------------------------------


def cluster_labels(config: StackConfig, region: str) -> dict[str, str]:
    """``enable_<addon>: "true"`` for each add-on the cluster runs (nothing for the others: a
    missing label and ``"false"`` both leave the cluster unselected)."""
    return {enable_label(name): "true" for name in cluster_addons(config, region)}


def role_arn(config: StackConfig, region: str, addon: str) -> str:
    return f"arn:aws:iam::{config.account_id}:role/{addon_role_name(config, region, addon)}"


# IAM role names have at most 64 characters
# (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html, RoleName).
ROLE_NAME_MAX = 64
# Shorter role-name parts where ``platform-<env>-<addon>-<region>`` could pass 64 characters
# (an environment of 12 characters in a region of 14).
_ROLE_PURPOSE = {"aws-load-balancer-controller": "lb-controller"}


def addon_role_name(config: StackConfig, region: str, addon: str) -> str:
    """One role per add-on and cluster (IAM is global; the region keeps each cluster's apart):
    ``platform-<env>-<addon>-<region>``, at most :data:`ROLE_NAME_MAX` characters for any
    environment and region config accepts."""
    return naming.role_name(config.environment, f"{_ROLE_PURPOSE.get(addon, addon)}-{region}")


def identities(config: StackConfig) -> list[tuple[str, Addon]]:
    """(region, add-on) of every Pod Identity role the program creates, in a stable order."""
    return [
        (region, addon)
        for addon in enabled(config)
        if addon.service_account is not None
        for region in config.addon_regions(addon.name)
    ]


def cluster_annotations(
    config: StackConfig, region: str, *, cluster_name: str, vpc_id: str | None
) -> dict[str, str]:
    """The facts add-ons read: account, region, cluster name, VPC ID, and per add-on the
    namespace, service account and (for Pod Identity add-ons) the role ARN.

    ``vpc_id`` is required as soon as the cluster runs an add-on (ValueError otherwise).
    """
    runs = cluster_addons(config, region)
    out = {
        ANNOTATION_ACCOUNT: config.account_id,
        ANNOTATION_REGION: region,
        ANNOTATION_CLUSTER_NAME: cluster_name,
    }
    if vpc_id is not None:
        out[ANNOTATION_VPC] = vpc_id
    else:
        readers = [n for n in runs if ANNOTATION_VPC in annotations_read(application_set(config, CATALOG[n]))]
        if readers:
            raise ValueError(f"the cluster Secret of {region} needs the VPC ID: {', '.join(readers)} read it")
    for name in runs:
        addon = CATALOG[name]
        out[namespace_annotation(name)] = addon.namespace
        if addon.service_account is not None:
            out[service_account_annotation(name)] = addon.service_account
            out[role_arn_annotation(name)] = role_arn(config, region, name)
        for store in addon.store_roles(config, region) if addon.store_roles is not None else ():
            out[store_role_annotation(store.consumer)] = store_role_arn(config, region, store.consumer)
    return out


# --- The ApplicationSets -------------------------------------------------------------------------


def application_set_name(addon: str, role: str | None = None) -> str:
    return f"addon-{addon}" if role is None else f"addon-{addon}-{role}"


def _selector(config: StackConfig, addon: Addon, role: str | None) -> dict[str, Any]:
    labels = {naming.LABEL_ENVIRONMENT: config.environment, enable_label(addon.name): "true"}
    if role is not None:
        labels[naming.LABEL_CLUSTER_ROLE] = role
    return {"matchLabels": labels}


def _sync_policy(addon: Addon) -> dict[str, Any]:
    """Add-ons sync automatically in every environment, prod included: their version reaches a
    hub only through a reviewed stack-file change and that environment's approved ``pulumi up``,
    and an add-on that waits for a manual sync (the HPAs' metrics, the nodes they need) is an
    outage, not a safeguard. Prod never runs a version newer than staging's (the policy rule
    gitops-addon-staged-before-prod, docs/addons.md). The application's own ApplicationSet keeps
    prod's manual sync.

    An add-on with ``ignore_differences`` also syncs with ``RespectIgnoreDifferences=true``: Argo
    CD then keeps the live value of those fields when it syncs an existing object, and applies
    the rendered one only when it creates the object (argo-cd v3.4.4
    docs/user-guide/sync-options.md, "Respect ignore differences configs")."""
    options = ["CreateNamespace=true", "ServerSideApply=true"]
    if addon.ignore_differences:
        options.append("RespectIgnoreDifferences=true")
    return {
        "automated": {"prune": True, "selfHeal": True},
        "syncOptions": options,
        "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}},
    }


def application_set(config: StackConfig, addon: Addon, role: str | None = None) -> dict[str, Any]:
    """The ApplicationSet deploying ``addon`` to every cluster of this environment whose Secret
    carries its ``enable_`` label (and, with ``role``, that cluster role).

    One Application per selected cluster, ``<addon>-<cluster name>``, from the upstream chart at
    this environment's pinned version, Helm release ``<addon>`` in the add-on's namespace.
    """
    chart = addon.chart
    version = config.addons[addon.name].chart_version
    set_name = application_set_name(addon.name, role)
    values = addon.values(config, role)
    spec: dict[str, Any] = {
        "goTemplate": True,
        "goTemplateOptions": ["missingkey=error"],
        "generators": [{"clusters": {"selector": _selector(config, addon, role)}}],
        "template": {
            "metadata": {
                "name": f"{addon.name}-{{{{ .name }}}}",
                "labels": {
                    LABEL_ADDON: addon.name,
                    naming.LABEL_ENVIRONMENT: config.environment,
                    naming.LABEL_REGION: label(naming.LABEL_REGION),
                },
            },
            "spec": {
                "project": ADDONS_PROJECT,
                "source": {
                    "repoURL": chart["repository"],
                    "chart": chart["chart"],
                    "targetRevision": version,
                    "helm": {"releaseName": addon.name, "valuesObject": values},
                },
                "destination": {"server": "{{ .server }}", "namespace": addon.namespace},
                "syncPolicy": _sync_policy(addon),
            },
        },
    }
    if addon.ignore_differences:
        spec["template"]["spec"]["ignoreDifferences"] = [dict(d) for d in addon.ignore_differences]
    if config.is_prod:
        # Removing the label (or the add-on's entry) deletes the Application, never what runs.
        spec["syncPolicy"] = {"preserveResourcesOnDeletion": True}
    return {
        "apiVersion": ARGOPROJ_API,
        "kind": "ApplicationSet",
        "metadata": {
            "name": set_name,
            "namespace": naming.ARGOCD_NAMESPACE,
            "labels": {LABEL_ADDON: addon.name},
        },
        "spec": spec,
    }


def application_sets(config: StackConfig) -> list[dict[str, Any]]:
    """Every add-on ApplicationSet of this environment's hub, by name."""
    out = []
    for addon in enabled(config):
        if addon.per_role:
            out += [application_set(config, addon, role) for role in ("hub", "spoke")]
        else:
            out.append(application_set(config, addon))
    return sorted(out, key=lambda s: s["metadata"]["name"])


@dataclass(frozen=True)
class ProjectSpec:
    """What the add-ons' AppProject allows, before the clusters' API server URLs are known:
    ``destinations`` are (region, namespace) pairs, ``cluster_kinds`` (group, kind) pairs."""

    environment: str
    source_repos: tuple[str, ...]
    destinations: tuple[tuple[str, str], ...]
    cluster_kinds: tuple[tuple[str, str], ...]
    # The namespaces the add-on Applications create (CreateNamespace=true): the Namespace kind is
    # cluster-scoped, so the whitelist must name them (by name, nothing else).
    created_namespaces: tuple[str, ...] = ()

    def manifest(self, servers: Mapping[str, str]) -> dict[str, Any]:
        """The AppProject, ``servers`` mapping each region to its cluster's API server URL."""
        destinations = sorted({(servers[region], namespace) for region, namespace in self.destinations})
        return {
            "apiVersion": ARGOPROJ_API,
            "kind": "AppProject",
            "metadata": {"name": ADDONS_PROJECT, "namespace": naming.ARGOCD_NAMESPACE},
            "spec": {
                "description": f"Cluster add-ons of {self.environment} (docs/addons.md)",
                "sourceRepos": list(self.source_repos),
                "destinations": [
                    {"server": server, "namespace": namespace} for server, namespace in destinations
                ],
                # A namespace that does not exist yet becomes a sync task of its own with
                # CreateNamespace=true, and that task passes the project's cluster-resource check
                # like any other (argo-cd v3.4.4 controller/sync_namespace.go, gitops-engine
                # sync_context.go autoCreateNamespace, AppProject.IsGroupKindNamePermitted):
                # without these entries the first sync on a new cluster fails with
                # "resource :Namespace is not permitted". ``name`` limits each entry to one
                # namespace (crd-appproject.yaml of v3.4.4: ClusterResourceRestrictionItem.name).
                "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in self.cluster_kinds]
                + [{"group": "", "kind": "Namespace", "name": n} for n in self.created_namespaces],
            },
        }


def project_spec(config: StackConfig) -> ProjectSpec:
    """The enabled add-ons' chart repositories, their namespaces on the clusters that run them
    (Argo CD's namespace on the hub only for an add-on that writes there), and of cluster-scoped
    kinds only those their charts render (tests compare with ``helm template`` of each chart)."""
    addons = enabled(config)
    return ProjectSpec(
        environment=config.environment,
        source_repos=tuple(sorted({a.chart["repository"] for a in addons})),
        destinations=tuple(
            sorted(
                {
                    (region, namespace)
                    for a in addons
                    for region in config.addon_regions(a.name)
                    for namespace in (
                        (a.namespace, *a.hub_namespaces) if region == config.hub_region else (a.namespace,)
                    )
                }
            )
        ),
        cluster_kinds=tuple(sorted({k for a in addons for k in a.cluster_kinds})),
        created_namespaces=tuple(sorted({a.namespace for a in addons if a.namespace != KUBE_SYSTEM})),
    )


def addons_project(config: StackConfig, servers: Mapping[str, str]) -> dict[str, Any]:
    """The AppProject of the add-on Applications (:func:`project_spec`), ``servers`` mapping each
    region to its API server URL."""
    return project_spec(config).manifest(servers)


_ANNOTATION_READ = re.compile(r'index \.metadata\.annotations "([^"]+)"')


def annotations_read(application_set_manifest: Mapping[str, Any]) -> set[str]:
    """The cluster Secret annotations an ApplicationSet's template reads: every
    ``index .metadata.annotations "<key>"`` in the template's strings (keys and values, at any
    depth). Read from the strings themselves, not from their JSON text, where the quotes around
    the key are escaped."""
    return {
        key
        for text in _strings(application_set_manifest["spec"]["template"])
        for key in _ANNOTATION_READ.findall(text)
    }


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


# --- EKS managed add-on configuration ------------------------------------------------------------


def vpc_cni_configuration() -> dict[str, str]:
    """``configurationValues`` of the vpc-cni EKS add-on: enforce NetworkPolicies.

    Without ``enableNetworkPolicy`` the VPC CNI runs no network policy agent and every
    NetworkPolicy (the shop chart's, Argo CD's) is accepted by the API and enforced by nothing.
    The key and its string value ``"true"`` are the EKS user guide's ("Configure your cluster for
    Kubernetes network policies", eks-networking-add-ons.adoc: ``{ "enableNetworkPolicy": "true" }``
    as the add-on's configuration values, add-on v1.14.0-eksbuild.3 or later); the add-on's chart
    (aws/amazon-vpc-cni-k8s charts/aws-vpc-cni, v1.14.1 to v1.23.0) declares it as a string and
    passes it to the agent's ``--enable-network-policy``. EKS validates configuration values
    against the add-on version's schema
    (``aws eks describe-addon-configuration --addon-name vpc-cni --addon-version <v>``, not
    readable offline); tests/contracts/test_vpc_cni_configuration.py pins the keys.
    """
    return {"enableNetworkPolicy": "true"}


def plan_summary(config: StackConfig) -> dict[str, dict[str, str]]:
    """``{region: {add-on: version}}``: what the offline plan and docs/addons.md show."""
    return {region: cluster_addons(config, region) for region in config.region_names}
