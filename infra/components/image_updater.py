"""Argo CD Image Updater on the hub (issue 6).

:class:`ImageUpdater` declares the updater's IAM role (read-only ECR, through EKS Pod Identity),
the argocd-image-updater Helm release and the ``ImageUpdater`` custom resource that watches the
sentinel image per region. Values, the CR and the IAM documents are pure functions
(:mod:`infra.manifests.argocd`, :mod:`infra.documents.argocd_iam`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import naming, versions
from infra.components.argocd import ArgoCdHub, Cluster, tags
from infra.config import StackConfig
from infra.documents import argocd_iam
from infra.manifests import argocd as manifests


@dataclass(frozen=True)
class ImageUpdaterArgs:
    config: StackConfig
    hub: Cluster
    argocd: ArgoCdHub
    # The account's provider (infra.providers.account_provider) for the IAM objects with fixed
    # names: it never follows the hub, so a hub move updates them in place. None: the hub's.
    iam_provider: aws.Provider | None = None


class ImageUpdater(pulumi.ComponentResource):
    """Image Updater: moves each region's Application to the newest tag in that region's registry."""

    def __init__(self, name: str, args: ImageUpdaterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:image_updater:ImageUpdater", name, None, opts)
        config, hub = args.config, args.hub
        on_hub_aws = pulumi.ResourceOptions(parent=self, provider=hub.aws_provider)
        on_account = pulumi.ResourceOptions(parent=self, provider=args.iam_provider or hub.aws_provider)

        self.role = aws.iam.Role(
            "image-updater",
            name=naming.role_name(config.environment, argocd_iam.IMAGE_UPDATER_ROLE_PURPOSE),
            description="Argo CD Image Updater on the hub (EKS Pod Identity): reads ECR only",
            assume_role_policy=json.dumps(
                argocd_iam.image_updater_trust_policy(
                    config.account_id, config.environment, config.hub_region
                )
            ),
            tags=tags(config),
            opts=on_account,
        )
        self.role_policy = aws.iam.RolePolicy(
            "image-updater-ecr-read",
            role=self.role.id,
            policy=json.dumps(
                argocd_iam.image_updater_ecr_policy(config.account_id, config.region_names, config.ecr.prefix)
            ),
            opts=on_account,
        )
        self.pod_identity = aws.eks.PodIdentityAssociation(
            "image-updater",
            cluster_name=hub.cluster_name,
            namespace=naming.ARGOCD_NAMESPACE,
            service_account=naming.IMAGE_UPDATER_SERVICE_ACCOUNT,
            role_arn=self.role.arn,
            tags=tags(config),
            opts=on_hub_aws,
        )

        on_hub_k8s = pulumi.ResourceOptions(parent=self, provider=hub.k8s_provider)
        self.values: dict[str, Any] = manifests.image_updater_values(config)
        self.release = k8s.helm.v3.Release(
            "image-updater",
            name=naming.IMAGE_UPDATER_RELEASE,
            chart=versions.IMAGE_UPDATER_CHART,
            version=config.image_updater.chart_version,
            repository_opts={"repo": versions.ARGO_HELM_REPOSITORY},
            namespace=args.argocd.namespace.metadata.apply(lambda m: m.name),
            values=self.values,
            opts=pulumi.ResourceOptions.merge(
                on_hub_k8s,
                pulumi.ResourceOptions(
                    # Nodes to run on and credentials before the pod starts. Not Argo CD's
                    # release: its Application CRD is the first thing that install applies, and
                    # an updater started a moment earlier restarts until the CRD is there. So
                    # the two installs run side by side and the hub's rebuild waits for one
                    # Helm release, not two in a row (python -m infra.bench). The Pod Identity
                    # agent serves the credentials (see ArgoCdHub's release).
                    depends_on=[hub.node_group, hub.pod_identity_agent, self.pod_identity],
                ),
            ),
        )
        manifest = manifests.image_updater(config)
        self.custom_resource = k8s.apiextensions.CustomResource(
            "image-updater",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            # The ImageUpdater CRD comes with the chart.
            opts=pulumi.ResourceOptions.merge(on_hub_k8s, pulumi.ResourceOptions(depends_on=[self.release])),
        )
        self.register_outputs(
            {
                "roleArn": self.role.arn,
                "release": self.release.name,
                "imageUpdater": manifest["metadata"]["name"],
            }
        )
