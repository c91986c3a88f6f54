"""Cluster add-ons through GitOps (issue 17): what the program bootstraps for them.

:class:`ClusterAddons` declares, on the hub, the add-ons' AppProject and one ApplicationSet per
enabled add-on (:mod:`infra.addons` builds both as pure data). The clusters' facts reach those
ApplicationSets through the cluster Secrets' labels and annotations, which
:class:`infra.components.argocd.ClusterRegistration` writes. For each add-on that calls AWS,
:class:`AddonIdentity` is its IAM role and EKS Pod Identity association on each cluster that runs
it (documents in :mod:`infra.documents.addons_iam`). Argo CD does the rest: nothing here installs
an add-on itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import addons, naming
from infra.components.argocd import ArgoCdHub, Cluster
from infra.config import StackConfig
from infra.documents import addons_iam


@dataclass(frozen=True)
class ClusterAddonsArgs:
    config: StackConfig
    argocd: ArgoCdHub
    clusters: Mapping[str, Cluster]


def tags(config: StackConfig) -> dict[str, str]:
    return naming.base_tags(config.environment, config.tags)


class AddonIdentity(pulumi.ComponentResource):
    """One add-on's AWS identity on one cluster: an IAM role whose trust admits only EKS Pod
    Identity for that cluster, the add-on's namespace and service account, its permission
    policy, and the Pod Identity association (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-association.html)."""

    def __init__(
        self,
        name: str,
        config: StackConfig,
        cluster: Cluster,
        addon: addons.Addon,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("platform:addons:AddonIdentity", name, None, opts)
        region = cluster.region
        assert addon.service_account is not None and addon.policy is not None, addon.name
        child = pulumi.ResourceOptions(parent=self, provider=cluster.aws_provider)
        self.role = aws.iam.Role(
            name,
            name=addons.addon_role_name(config, region, addon.name),
            description=f"{addon.name} on {naming.cluster_name(config.environment, region)} (EKS Pod Identity)",
            assume_role_policy=json.dumps(
                addons_iam.addon_trust_policy(
                    config.account_id, config.environment, region, addon.namespace, addon.service_account
                )
            ),
            tags=tags(config),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            name,
            name=addon.name,
            role=self.role.id,
            policy=json.dumps(addon.policy(config, region)),
            opts=child,
        )
        self.association = aws.eks.PodIdentityAssociation(
            name,
            cluster_name=cluster.cluster_name,
            namespace=addon.namespace,
            service_account=addon.service_account,
            role_arn=self.role.arn,
            tags=tags(config),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.policy])),
        )
        self.register_outputs({"roleArn": self.role.arn})


class ClusterAddons(pulumi.ComponentResource):
    """The add-on ApplicationSets of one environment, on its hub."""

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:addons:ClusterAddons", name, None, opts)
        config, argocd = args.config, args.argocd
        # Each add-on that calls AWS: its role and Pod Identity association on each cluster that
        # runs it, before Argo CD can start its pods (a pod started before its association gets
        # no AWS credentials until it restarts).
        self.identities = {
            f"{addon.name}-{region}": AddonIdentity(
                f"{addon.name}-{region}",
                config,
                args.clusters[region],
                addon,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for region, addon in addons.identities(config)
        }
        # The CRDs come with the argo-cd release; a cluster is selected only once its Secret
        # (and with it the hub's access to it) exists.
        registrations = [r.secret for r in argocd.registrations.values()]
        associations = [i.association for i in self.identities.values()]
        on_hub = pulumi.ResourceOptions(
            parent=self,
            provider=argocd.k8s_provider,
            depends_on=[argocd.release, *registrations, *associations],
        )
        self.application_set_names: list[str] = []
        self.project: k8s.apiextensions.CustomResource | None = None
        sets = addons.application_sets(config)
        if sets:
            project: pulumi.Output[dict[str, Any]] = argocd.servers.apply(
                lambda servers: addons.addons_project(
                    config, dict(zip(config.region_names, servers, strict=True))
                )
            )
            self.project = k8s.apiextensions.CustomResource(
                "addons-project",
                api_version=addons.ARGOPROJ_API,
                kind="AppProject",
                metadata=project.apply(lambda m: m["metadata"]),
                spec=project.apply(lambda m: m["spec"]),
                opts=on_hub,
            )
            for manifest in sets:
                set_name = manifest["metadata"]["name"]
                k8s.apiextensions.CustomResource(
                    set_name,
                    api_version=manifest["apiVersion"],
                    kind=manifest["kind"],
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        on_hub, pulumi.ResourceOptions(depends_on=[self.project])
                    ),
                )
                self.application_set_names.append(set_name)
        self.summary = addons.plan_summary(config)
        self.register_outputs({"applicationSets": self.application_set_names, "clusters": self.summary})
