"""A stand-in for the clusters (issue 3) so the Argo CD components can be run under the offline
mocks on their own: per region an AWS provider, a Kubernetes provider and a node group, with the
attributes ``infra.components.argocd.Cluster`` needs. The whole-stack tests use the real clusters."""

from __future__ import annotations

import base64
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import naming, providers
from infra.components.applicationset import ApplicationSet, ApplicationSetArgs
from infra.components.argocd import ArgoCdHub, ArgoCdHubArgs
from infra.components.image_updater import ImageUpdater, ImageUpdaterArgs
from infra.config import StackConfig
from infra.manifests import argocd as manifests


def fake_endpoint(region: str) -> str:
    return f"https://FAKE{region.replace('-', '').upper()}.gr7.{region}.eks.amazonaws.com"


def fake_ca(region: str) -> str:
    return base64.b64encode(f"CA of {region}".encode()).decode()


class StubCluster(pulumi.ComponentResource):
    def __init__(self, config: StackConfig, region: str, aws_provider: aws.Provider) -> None:
        super().__init__("test:stub:Cluster", region, None, None)
        self.region = region
        self.aws_provider = aws_provider
        name = naming.cluster_name(config.environment, region)
        self.node_group = aws.eks.NodeGroup(
            f"nodes-{region}",
            cluster_name=name,
            node_role_arn=f"arn:aws:iam::{config.account_id}:role/nodes",
            subnet_ids=["subnet-1"],
            scaling_config={"desired_size": 1, "max_size": 1, "min_size": 1},
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider),
        )
        self.pod_identity_agent = aws.eks.Addon(
            f"eks-pod-identity-agent-{region}",
            cluster_name=name,
            addon_name="eks-pod-identity-agent",
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider),
        )
        # Carry a dependency on the "cluster", as the real attributes do.
        self.cluster_name = self.node_group.cluster_name
        self.endpoint = self.node_group.cluster_name.apply(lambda _: fake_endpoint(region))
        self.certificate_authority = self.node_group.cluster_name.apply(lambda _: fake_ca(region))
        self.vpc_id = self.node_group.cluster_name.apply(lambda _: f"vpc-{region}")
        self.k8s_provider = k8s.Provider(
            f"k8s-{region}",
            kubeconfig="{}",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


def program(config: StackConfig) -> dict[str, Any]:
    """The issue-6 part of infra/program.py, over stub clusters."""
    aws_providers = providers.aws_providers(config)
    clusters = {r: StubCluster(config, r, aws_providers[r]) for r in config.region_names}
    hub = ArgoCdHub("argocd", ArgoCdHubArgs(config=config, clusters=clusters))
    ImageUpdater(
        "image-updater", ImageUpdaterArgs(config=config, hub=clusters[config.hub_region], argocd=hub)
    )
    ApplicationSet("applications", ApplicationSetArgs.from_config(config, hub))
    return {naming.OUTPUT_ARGOCD: manifests.argocd_output(config)}
