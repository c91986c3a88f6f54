"""Argo CD on the hub and the registration of every cluster with it (issue 6).

* :class:`ArgoCdHub` - on the hub cluster (``config.hub_region``): the hub IAM role that the
  Argo CD controllers get through EKS Pod Identity, the ``argocd`` Namespace and the argo-cd Helm
  release; and one :class:`ClusterRegistration` per cluster, the hub included.
* :class:`ClusterRegistration` - on one cluster: an EKS access entry for the hub role with
  AmazonEKSClusterAdminPolicy (declared with *that* cluster's regional provider), and on the hub
  the Argo CD cluster Secret that the ApplicationSet's cluster generator selects.

Values, Secrets and IAM documents are pure functions (:mod:`infra.manifests.argocd`,
:mod:`infra.documents.argocd_iam`); this module only declares them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import naming, traffic, versions
from infra.components.cluster import bound_to_entry, bound_to_principal
from infra.components.traffic import RegionTraffic
from infra.config import StackConfig
from infra.documents import argocd_iam
from infra.manifests import argocd as manifests


class Cluster(Protocol):
    """What this module needs of a cluster (infra.components.cluster.RegionalCluster)."""

    @property
    def region(self) -> str: ...

    @property
    def cluster_name(self) -> pulumi.Output[str]: ...

    @property
    def endpoint(self) -> pulumi.Output[str]: ...

    @property
    def certificate_authority(self) -> pulumi.Output[str]: ...

    @property
    def vpc_id(self) -> pulumi.Output[str]: ...

    @property
    def k8s_provider(self) -> k8s.Provider: ...

    @property
    def aws_provider(self) -> aws.Provider: ...

    @property
    def node_group(self) -> pulumi.Resource: ...

    @property
    def pod_identity_agent(self) -> pulumi.Resource: ...


def tags(config: StackConfig) -> dict[str, str]:
    return naming.base_tags(config.environment, config.tags)


# ---------------------------------------------------------------------------------------------
# One cluster: access entry + cluster Secret
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRegistrationArgs:
    config: StackConfig
    cluster: Cluster
    hub_role_arn: pulumi.Output[str]
    hub_role: pulumi.Resource
    hub_k8s_provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    # This region's certificate, health check and web ACL (platform:traffic); None without it.
    traffic: RegionTraffic | None = None
    # What must exist on the cluster before Argo CD may start pods there: its add-ons' Pod Identity
    # associations and the Pod Identity agent (infra.components.addons.AddonIdentities).
    prerequisites: tuple[pulumi.Resource, ...] = ()


class ClusterRegistration(pulumi.ComponentResource):
    """Lets the hub role administer one cluster, and tells Argo CD about it."""

    def __init__(
        self, region: str, args: ClusterRegistrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:argocd:ClusterRegistration", region, None, opts)
        config, cluster = args.config, args.cluster
        # The access entry belongs to the target cluster, so it is created with that cluster's
        # regional provider. EKS API authentication, nothing through aws-auth:
        # https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
        on_cluster = pulumi.ResourceOptions(parent=self, provider=cluster.aws_provider)
        self.access_entry = aws.eks.AccessEntry(
            f"argocd-{region}",
            cluster_name=cluster.cluster_name,
            principal_arn=args.hub_role_arn,
            type="STANDARD",
            tags=tags(config),
            # Replaced with the hub role: EKS binds the entry to the role's unique ID.
            opts=pulumi.ResourceOptions.merge(on_cluster, bound_to_principal(args.hub_role)),
        )
        self.access_policy = aws.eks.AccessPolicyAssociation(
            f"argocd-{region}",
            cluster_name=cluster.cluster_name,
            principal_arn=args.hub_role_arn,
            policy_arn=manifests.EKS_CLUSTER_ADMIN_POLICY,
            access_scope={"type": "cluster"},
            opts=pulumi.ResourceOptions.merge(
                on_cluster,
                pulumi.ResourceOptions.merge(
                    bound_to_entry(self.access_entry), pulumi.ResourceOptions(depends_on=[self.access_entry])
                ),
            ),
        )

        facts = args.traffic
        manifest = pulumi.Output.all(
            cluster.cluster_name,
            cluster.endpoint,
            cluster.certificate_authority,
            cluster.vpc_id,
            facts.certificate_arn if facts is not None else None,
            facts.health_check_id if facts is not None else None,
            facts.waf_acl_arn if facts is not None else None,
        ).apply(
            lambda v: manifests.cluster_secret(
                config,
                region,
                cluster_name=v[0],
                endpoint=v[1],
                ca_data=v[2],
                vpc_id=v[3],
                traffic_facts=traffic.RegionFacts(v[4], v[5], v[6]) if facts is not None else None,
            )
        )
        string_data: pulumi.Output[dict[str, str]] = manifest.apply(lambda m: m["stringData"])
        # The Secret holds no credential (authentication is IAM), but it is a Secret: its config
        # stays marked secret in Pulumi's state and previews.
        self.secret = k8s.core.v1.Secret(
            f"argocd-cluster-{region}",
            metadata=manifest.apply(lambda m: m["metadata"]),
            type="Opaque",
            string_data={
                "name": string_data["name"],
                "server": string_data["server"],
                "config": pulumi.Output.secret(string_data["config"]),
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.hub_k8s_provider,
                # Argo CD starts using a cluster as soon as its Secret appears: grant access first.
                # Its labels switch the add-ons on, and EKS Pod Identity gives a pod credentials
                # only if the association exists when the pod is created ("When Amazon EKS starts
                # a new pod that uses a service account with an EKS Pod Identity association, the
                # cluster adds" the credential variables, EKS user guide pod-id-how-it-works): the
                # add-ons' associations and the agent come first too.
                depends_on=[args.namespace, self.access_policy, *args.prerequisites],
            ),
        )
        self.server = cluster.endpoint
        self.register_outputs({"server": self.server, "secret": self.secret.metadata.apply(lambda m: m.name)})


# ---------------------------------------------------------------------------------------------
# The hub
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArgoCdHubArgs:
    config: StackConfig
    clusters: Mapping[str, Cluster]
    # The account's provider (infra.providers.account_provider) for the IAM objects with fixed
    # names: it never follows the hub, so a hub move updates them in place. None: the hub's.
    iam_provider: aws.Provider | None = None
    # Each region's traffic facts (infra.components.traffic.build_traffic); empty without
    # platform:traffic. They go into the cluster Secrets' annotations.
    traffic: Mapping[str, RegionTraffic] | None = None
    # Per region, what its cluster Secret waits for (AddonIdentities.prerequisites: the add-ons'
    # Pod Identity associations and the agent); empty without add-ons that call AWS.
    cluster_prerequisites: Mapping[str, tuple[pulumi.Resource, ...]] | None = None


class ArgoCdHub(pulumi.ComponentResource):
    """Argo CD installed on the hub, with the identity and cluster access it runs with."""

    def __init__(self, name: str, args: ArgoCdHubArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:argocd:ArgoCdHub", name, None, opts)
        config = args.config
        missing = sorted(set(config.region_names) - set(args.clusters))
        if missing:
            raise ValueError(f"ArgoCdHub needs a cluster in every region; missing: {', '.join(missing)}")
        hub = args.clusters[config.hub_region]
        self.hub_region = config.hub_region
        on_hub_aws = pulumi.ResourceOptions(parent=self, provider=hub.aws_provider)

        # IAM is global: one role per account and environment, declared once, through the
        # account's provider (a hub move must not re-create it: infra/providers.py).
        on_account = pulumi.ResourceOptions(parent=self, provider=args.iam_provider or hub.aws_provider)
        role_name = naming.role_name(config.environment, argocd_iam.ARGOCD_ROLE_PURPOSE)
        self.role = aws.iam.Role(
            "argocd",
            name=role_name,
            description="Argo CD controllers on the hub (EKS Pod Identity); admin on every cluster "
            "through EKS access entries",
            assume_role_policy=json.dumps(
                argocd_iam.argocd_trust_policy(config.account_id, config.environment, config.hub_region)
            ),
            tags=tags(config),
            opts=on_account,
        )
        # No permission policy: the role needs no AWS API. argocd-k8s-auth presigns
        # sts:GetCallerIdentity, which needs no permission
        # (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html), and what
        # the role may do in a cluster comes from that cluster's access entry.
        # https://docs.aws.amazon.com/eks/latest/userguide/pod-id-association.html
        self.pod_identities = [
            aws.eks.PodIdentityAssociation(
                f"argocd-{service_account}",
                cluster_name=hub.cluster_name,
                namespace=naming.ARGOCD_NAMESPACE,
                service_account=service_account,
                role_arn=self.role.arn,
                tags=tags(config),
                opts=on_hub_aws,
            )
            for service_account in naming.ARGOCD_CONTROLLER_SERVICE_ACCOUNTS
        ]

        on_hub_k8s = pulumi.ResourceOptions(parent=self, provider=hub.k8s_provider)
        self.namespace = k8s.core.v1.Namespace(
            "argocd",
            metadata={"name": naming.ARGOCD_NAMESPACE},
            # In prod the namespace holds the Applications that run production; never let an
            # update or destroy delete it as a side effect.
            opts=pulumi.ResourceOptions.merge(
                on_hub_k8s, pulumi.ResourceOptions(retain_on_delete=config.is_prod)
            ),
        )
        self.values: dict[str, Any] = manifests.argocd_values(config)
        self.release = k8s.helm.v3.Release(
            "argocd",
            name=naming.ARGOCD_RELEASE,
            chart=versions.ARGO_CD_CHART,
            version=config.argocd.chart_version,
            repository_opts={"repo": versions.ARGO_HELM_REPOSITORY},
            namespace=self.namespace.metadata.apply(lambda m: m.name),
            values=self.values,
            # redis-ha's StatefulSet and the CRDs can take longer than Helm's 5-minute default.
            timeout=900,
            max_history=10,
            opts=pulumi.ResourceOptions.merge(
                on_hub_k8s,
                pulumi.ResourceOptions(
                    # Pods need nodes; and the Pod Identity associations must exist before the
                    # controllers' pods start, or those pods get no AWS credentials until they
                    # are restarted. So must the agent that serves those credentials: "EKS Pod
                    # Identity provides credentials to your workloads with an additional EKS Auth
                    # API and an agent pod that runs on each node"
                    # (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html);
                    # the add-on is ACTIVE once its DaemonSet runs, which needs the nodes too, so
                    # the wait costs the rebuild little. Nothing else: this release is on the
                    # hub's rebuild path.
                    depends_on=[hub.node_group, hub.pod_identity_agent, *self.pod_identities],
                ),
            ),
        )

        self.registrations = {
            region: ClusterRegistration(
                region,
                ClusterRegistrationArgs(
                    config=config,
                    cluster=args.clusters[region],
                    hub_role_arn=self.role.arn,
                    hub_role=self.role,
                    hub_k8s_provider=hub.k8s_provider,
                    namespace=self.namespace,
                    traffic=(args.traffic or {}).get(region),
                    prerequisites=tuple((args.cluster_prerequisites or {}).get(region, ())),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for region in config.region_names
        }
        self.servers: pulumi.Output[list[str]] = pulumi.Output.all(
            *[self.registrations[r].server for r in config.region_names]
        ).apply(list)
        self.k8s_provider = hub.k8s_provider
        self.output: dict[str, Any] = manifests.argocd_output(config)
        self.register_outputs(
            {
                "roleArn": self.role.arn,
                "namespace": naming.ARGOCD_NAMESPACE,
                "release": self.release.name,
                "servers": self.servers,
            }
        )
