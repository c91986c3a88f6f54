"""One region's EKS cluster: its network, control plane, managed nodes, add-ons and a
Kubernetes provider for the components that deploy into it.

Rebuild critical path (issue 10): network → control plane → node group → coredns. Everything else
(IAM, KMS, launch template, vpc-cni/kube-proxy/pod-identity-agent add-ons) is created beside it,
never in series with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from infra import addons as addons_data
from infra import naming, providers, versions
from infra.components.network import RegionalNetwork, RegionalNetworkArgs
from infra.config import NatMode, NodeGroupConfig, StackConfig
from infra.documents import access
from infra.documents import eks as eks_docs
from infra.documents import kms as kms_docs
from infra.manifests import kubeconfig as kubeconfig_doc

TYPE = "platform:eks:RegionalCluster"

# Add-ons that adopt what EKS bootstraps on a new cluster (bootstrapSelfManagedAddons) and so can
# be created in parallel with the node group; coredns is the exception, see below.
# https://docs.aws.amazon.com/eks/latest/userguide/eks-add-ons.html
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
ADDONS_BESIDE_NODES: tuple[str, ...] = ("vpc-cni", "kube-proxy", POD_IDENTITY_AGENT)
# coredns is a Deployment: its managed add-on only turns ACTIVE once pods are scheduled, so it
# waits for nodes. https://docs.aws.amazon.com/eks/latest/userguide/coredns-add-on-create.html
ADDONS_AFTER_NODES: tuple[str, ...] = ("coredns",)
ADDONS: tuple[str, ...] = ADDONS_BESIDE_NODES + ADDONS_AFTER_NODES

# IMDSv2 only, one hop: processes on the node (kubelet, and the host-network aws-node,
# kube-proxy and pod-identity-agent) still reach IMDS, pods in their own network namespace do
# not, so no pod can borrow the node role (ECR pull, CNI). Pods get AWS credentials through EKS
# Pod Identity, which does not use IMDS.
# https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html
IMDS_HOP_LIMIT = 1
ROOT_DEVICE = "/dev/xvda"  # root volume of the EKS-optimized AL2023 AMIs


@dataclass(frozen=True)
class RegionalClusterArgs:
    environment: str
    account_id: str
    region: str
    vpc_cidr: str
    availability_zones: tuple[str, ...]
    kubernetes_version: str
    nat_gateways: NatMode
    public_access_cidrs: tuple[str, ...]
    node_group: NodeGroupConfig  # already typed and frozen by infra/config.py
    admin_role_arn: str
    ecr_prefix: str
    # Prod: KMS key and cluster protected, EKS deletion protection on.
    protect: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    # Extra inputs of the region's Kubernetes provider (infra.providers.kubernetes_options):
    # deleteUnreachable while the region is lost (platform:unreachableRegions), else nothing.
    kubernetes_provider_options: Mapping[str, Any] = field(default_factory=dict)
    # The Cluster Autoscaler add-on owns the node group's desired size (docs/addons.md).
    autoscaled: bool = False

    @property
    def cluster_name(self) -> str:
        return naming.cluster_name(self.environment, self.region)

    @classmethod
    def from_config(cls, config: StackConfig, region: str) -> RegionalClusterArgs:
        r = config.region(region)
        return cls(
            environment=config.environment,
            account_id=config.account_id,
            region=r.name,
            vpc_cidr=r.vpc_cidr,
            availability_zones=r.availability_zones,
            kubernetes_version=r.kubernetes_version,
            nat_gateways=r.nat_gateways,
            public_access_cidrs=r.public_access_cidrs,
            node_group=r.node_group,
            admin_role_arn=config.cluster_admin_role_arn,
            ecr_prefix=config.ecr.prefix,
            protect=config.is_prod,
            tags=naming.base_tags(config.environment, config.tags),
            kubernetes_provider_options=providers.kubernetes_options(config, region),
            autoscaled=region in config.addon_regions(addons_data.CLUSTER_AUTOSCALER),
        )


class RegionalCluster(pulumi.ComponentResource):
    """The EKS cluster of one region (resource name: the region)."""

    region: str
    aws_provider: aws.Provider
    network: RegionalNetwork
    control_plane_security_group: aws.ec2.SecurityGroup
    secrets_key: aws.kms.Key
    cluster: eks.Cluster
    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    k8s_provider: k8s.Provider
    node_role: aws.iam.Role
    launch_template: aws.ec2.LaunchTemplate
    node_group: aws.eks.NodeGroup
    addons: dict[str, aws.eks.Addon]
    pod_identity_agent: aws.eks.Addon

    def __init__(
        self,
        name: str,
        args: RegionalClusterArgs,
        provider: aws.Provider,
        opts: pulumi.ResourceOptions | None = None,
        hub_egress_cidrs: pulumi.Input[list[str]] | None = None,
        operators: Mapping[str, tuple[pulumi.Input[str], pulumi.Resource | None]] | None = None,
    ) -> None:
        """``operators``: access-entry name stem -> (IAM principal ARN, the role resource when
        this program manages it, else None) of each principal that runs ``pulumi up`` and needs
        this cluster's Kubernetes API (access.cluster_operators)."""
        if name != args.region:
            raise ValueError(f"a RegionalCluster is named after its region: {name!r} != {args.region!r}")
        super().__init__(TYPE, name, None, opts)
        region = args.region
        cluster_name = args.cluster_name
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.region = region
        self.aws_provider = provider

        self.network = RegionalNetwork(
            f"network-{region}",
            RegionalNetworkArgs(
                region=region,
                account_id=args.account_id,
                environment=args.environment,
                cluster_name=cluster_name,
                vpc_cidr=args.vpc_cidr,
                availability_zones=args.availability_zones,
                nat_gateways=args.nat_gateways,
                tags=tags,
            ),
            provider,
            opts=pulumi.ResourceOptions(parent=self),
        )

        # Envelope encryption of Secrets with a key of our own, rotated yearly. Losing the key
        # loses every Secret of the cluster, hence protect (and a 30-day deletion window).
        # https://docs.aws.amazon.com/eks/latest/userguide/envelope-encryption.html
        self.secrets_key = aws.kms.Key(
            f"eks-secrets-{region}",
            description=f"Envelope encryption of Kubernetes Secrets in EKS cluster {cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # Only the break-glass admin (clusterAdminRoleArn, the human who runs day 0) may
            # disable it, schedule its deletion or change this policy; CI's up role may not.
            policy=json.dumps(kms_docs.protected_key_policy(args.account_id, args.admin_role_arn)),
            # The policy denies CI's up role PutKeyPolicy, so KMS's lockout safety check would
            # refuse CreateKey by CI (API_CreateKey, BypassPolicyLockoutSafetyCheck); the
            # break-glass role keeps PutKeyPolicy. Pinned in tests/contracts/test_scanner_fixes.py.
            bypass_policy_lockout_safety_check=True,
            tags={**tags, "Name": f"{cluster_name}-secrets"},
            # Retained on delete in every stack, staging too: the key policy denies
            # ScheduleKeyDeletion to everyone but clusterAdminRoleArn, so CI's up role removing a
            # region would otherwise fail at this key. Retained, Pulumi drops it from the state
            # without a delete call (https://www.pulumi.com/docs/iac/concepts/options/retainondelete/);
            # the break-glass admin schedules its deletion by hand if the region never returns.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(protect=args.protect, retain_on_delete=True)
            ),
        )
        aws.kms.Alias(
            f"eks-secrets-{region}",
            name=f"alias/{cluster_name}-secrets",
            target_key_id=self.secrets_key.key_id,
            opts=child,
        )

        # The control plane's additional security group (EKS vpcConfig.securityGroupIds, on the
        # control plane's network interfaces only). It admits nothing by itself; the CI runners
        # of the hub get one rule from their own group on 443 (infra.components.runner). The
        # EKS-created cluster security group, shared with the nodes, admits only itself.
        # https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html
        # pulumi-eks passes clusterSecurityGroup as vpcConfig.securityGroupIds, also with
        # skipDefaultSecurityGroups (nodejs/eks/cluster/cluster.ts, v4.3.0 and main 7bf0c1b1);
        # the AWS provider updates that list in place (terraform-provider-aws 5.25.0 changelog).
        self.control_plane_security_group = aws.ec2.SecurityGroup(
            f"control-plane-{region}",
            vpc_id=self.network.vpc_id,
            description=f"EKS {cluster_name} control plane: HTTPS from the platform's CI runners only",
            tags={**tags, "Name": f"{cluster_name}-control-plane"},
            opts=child,
        )

        # Argo CD on the hub reaches a spoke's API through the spoke's public endpoint, from the
        # hub's NAT addresses and nowhere else; the hub itself (and every cluster's nodes) use
        # the private endpoint. Endpoint access: https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html
        # The same way the hub admits the NAT addresses of the stacks whose deploy reads it
        # (staging's hub admits prod's: infra.components.hub_readers); ``hub_egress_cidrs`` is
        # then those addresses.
        # Public only with something to admit: a public endpoint without CIDRs admits 0.0.0.0/0.
        public: pulumi.Input[bool] = bool(args.public_access_cidrs)
        allowed: pulumi.Input[list[str] | None] = list(args.public_access_cidrs) if public else None
        if hub_egress_cidrs is not None:
            configured = list(args.public_access_cidrs)
            admitted = pulumi.Output.from_input(hub_egress_cidrs).apply(
                lambda extra: sorted({*configured, *extra})
            )
            public = admitted.apply(bool)
            allowed = admitted.apply(lambda cidrs: cidrs or None)
        self.cluster = eks.Cluster(
            f"eks-{region}",
            name=cluster_name,
            version=args.kubernetes_version,
            vpc_id=self.network.vpc_id,
            # The control plane gets the private subnets only. EKS may put its cross-account
            # network interfaces in any subnet the cluster is given ("Amazon EKS can create its
            # network interfaces in any subnet that you specify":
            # https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html), and the
            # storefront's NetworkPolicy admits the public subnets (the ALB's nodes): given those
            # too, the control plane's addresses would be admitted with them. pulumi-eks makes
            # vpcConfig.subnetIds of publicSubnetIds + privateSubnetIds (pulumi/pulumi-eks
            # nodejs/eks/cluster/cluster.ts ``createCore``, v4.3.0 and main 7bf0c1b1); its node
            # groups are skipped, and ours name the private subnets themselves. The load balancer
            # controller still finds the public subnets by their ``kubernetes.io/role/elb`` tag
            # in the VPC, not through the cluster (infra.components.network.subnet_role_tags).
            # On an existing cluster this is an in-place UpdateClusterConfig, not a replacement
            # (infra/replacement.py, aws:eks/cluster:Cluster; docs/clusters.md).
            private_subnet_ids=self.network.private_subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=public,
            # pulumi-eks refuses CIDRs when the public endpoint is off.
            public_access_cidrs=allowed,
            authentication_mode=eks.AuthenticationMode.API,
            # No access entries here: the program declares them below as resources of its own,
            # so the Kubernetes provider can wait for them.
            enabled_cluster_log_types=list(eks_docs.CONTROL_PLANE_LOG_TYPES),
            encryption_config_key_arn=self.secrets_key.arn,
            deletion_protection=args.protect,
            # EXTENDED: EKS never upgrades the cluster behind the program's back. With STANDARD,
            # EKS upgrades the control plane itself when standard support ends, and the next
            # `pulumi up` would then try to set the older version from the stack file again (EKS
            # cannot downgrade) while the node group and add-ons lag a version behind. With
            # EXTENDED the cluster stays on its version (billed as extended support) until the
            # stack file moves it; config and the `eks-version-in-standard-support` policy keep
            # the stack files on versions in standard support, so that fee only comes with a
            # version left behind. https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=versions.EKS_UPGRADE_SUPPORT_TYPE),
            skip_default_node_group=True,
            # Managed node groups whose launch template names no security group get the
            # EKS-created cluster security group, which already allows control plane <-> nodes;
            # pulumi-eks's extra cluster/node groups would only matter for self-managed nodes.
            # https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html
            skip_default_security_groups=True,
            cluster_security_group=self.control_plane_security_group,
            # EKS installs self-managed vpc-cni, kube-proxy and coredns at creation; our managed
            # add-ons below adopt them. pulumi-eks must not install its own copies.
            bootstrap_self_managed_addons=True,
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=False),
            # Workloads get AWS credentials through EKS Pod Identity, which needs no IAM OIDC provider.
            create_oidc_provider=False,
            # Given (empty), so pulumi-eks never takes the operator's AWS_PROFILE (or aws:profile)
            # into its own provider's kubeconfig as `--profile` (pulumi/pulumi-eks
            # nodejs/eks/cluster/cluster.ts createCluster, main 7bf0c1b1: only when this is unset):
            # a DR update from a workstation would otherwise store a kubeconfig CI cannot use, and
            # each change of runner would show a diff. Whoever runs `up` is the identity.
            provider_credential_opts=eks.KubeconfigOptionsArgs(),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                providers={"aws": provider},
                protect=args.protect,
                # pulumi-eks always asks EKS for a standing admin entry for the cluster's creator
                # (pulumi/pulumi-eks v4.3.0 nodejs/eks/cluster/cluster.ts, bug #2373): turned off,
                # so the access entries below are the only ones. Transforms reach the children of
                # a packaged component: https://www.pulumi.com/docs/iac/concepts/options/transforms/
                transforms=[_no_creator_admin],
            ),
        )

        # Derived from a cluster output so every consumer waits for the control plane.
        self.cluster_name = self.cluster.kubeconfig.apply(lambda _kc: cluster_name)

        # The Kubernetes API access of each principal that runs `pulumi up` here
        # (access.cluster_operators): cluster-admin, cluster scope, through access entries
        # (authentication mode API, no aws-auth). https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
        self.operator_access: list[pulumi.Resource] = []
        for operator, (principal_arn, principal) in (operators or {}).items():
            # Follows the role if the program manages it (bound_to_principal); the admin's does not.
            bound = bound_to_principal(principal) if principal is not None else pulumi.ResourceOptions()
            entry = aws.eks.AccessEntry(
                f"{operator}-{region}",
                cluster_name=self.cluster_name,
                principal_arn=principal_arn,
                type="STANDARD",
                tags=tags,
                opts=pulumi.ResourceOptions.merge(child, bound),
            )
            association = aws.eks.AccessPolicyAssociation(
                f"{operator}-{region}",
                cluster_name=self.cluster_name,
                principal_arn=principal_arn,
                policy_arn=eks_docs.CLUSTER_ADMIN_ACCESS_POLICY_ARN,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions.merge(
                        bound_to_entry(entry) if principal is not None else pulumi.ResourceOptions(),
                        pulumi.ResourceOptions(depends_on=[entry]),
                    ),
                ),
            )
            self.operator_access += [entry, association]

        endpoint_and_ca = self.cluster.kubeconfig.apply(kubeconfig_doc.server_and_ca)
        # The add-ons that need the VPC read it from the cluster Secret (infra/addons.py).
        self.vpc_id: pulumi.Output[str] = self.network.vpc_id
        self.endpoint = endpoint_and_ca.apply(lambda pair: pair[0])
        self.certificate_authority = endpoint_and_ca.apply(lambda pair: pair[1])
        self.oidc_issuer = self.cluster.oidc_issuer
        self.kubeconfig = pulumi.Output.secret(
            endpoint_and_ca.apply(
                lambda pair: kubeconfig_doc.to_json(
                    kubeconfig_doc.kubeconfig(cluster_name, region, pair[0], pair[1])
                )
            )
        )
        # The kubeconfig authenticates as whoever runs `pulumi up`: nothing may use this provider
        # before that principal's access entry and policy exist.
        self.k8s_provider = k8s.Provider(
            f"k8s-{region}",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            **args.kubernetes_provider_options,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.operator_access),
        )

        # Node IAM: the two AWS policies nodes need to join and network, plus pull-only access to
        # this region's repositories (and the EKS add-on images).
        self.node_role = aws.iam.Role(
            f"nodes-{region}",
            name=naming.role_name(args.environment, f"nodes-{region}"),
            description=f"EC2 nodes of EKS cluster {cluster_name}",
            assume_role_policy=json.dumps(eks_docs.node_assume_role_policy()),
            tags=tags,
            opts=child,
        )
        node_iam: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"nodes-{arn.rsplit('/', 1)[1]}-{region}",
                role=self.node_role.name,
                policy_arn=arn,
                opts=child,
            )
            for arn in eks_docs.NODE_MANAGED_POLICY_ARNS
        ]
        node_iam.append(
            aws.iam.RolePolicy(
                f"nodes-ecr-pull-{region}",
                name="ecr-pull",
                role=self.node_role.id,
                policy=json.dumps(eks_docs.ecr_pull_policy(args.account_id, region, args.ecr_prefix)),
                opts=child,
            )
        )

        ng = args.node_group
        instance_tags = {**tags, "Name": f"{cluster_name}-node"}
        self.launch_template = aws.ec2.LaunchTemplate(
            f"nodes-{region}",
            description=f"Managed nodes of EKS cluster {cluster_name}",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=ng.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=instance_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=tags,
            opts=child,
        )

        self.node_group = aws.eks.NodeGroup(
            f"nodes-{region}",
            cluster_name=self.cluster_name,
            node_role_arn=self.node_role.arn,
            subnet_ids=self.network.private_subnet_ids,
            # The cluster's own version: a bump in the stack file upgrades the control plane
            # first (this input waits for it through cluster_name) and then rolls the nodes onto
            # that version's AMI. Without it a managed node group keeps the version it was created
            # with. The launch template names no AMI, so EKS picks the AMI of this version.
            # https://docs.aws.amazon.com/eks/latest/userguide/update-managed-node-group.html
            version=args.kubernetes_version,
            ami_type=eks_docs.ami_type(ng.instance_types),
            instance_types=list(ng.instance_types),
            capacity_type=ng.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=ng.min_size, desired_size=ng.desired_size, max_size=ng.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self.launch_template.id, version=self.launch_template.latest_version.apply(str)
            ),
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            tags=tags,
            # Nodes join only if they can reach the EKS API, STS and ECR: through NAT, so the
            # private routes and their associations come first, as do the role's permissions.
            # Where the Cluster Autoscaler runs it moves the desired size (between minSize and
            # maxSize); an update must not reset it to the stack file's desiredSize, which is then
            # only the size the node group is created with.
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[*self.network.egress, *node_iam],
                    ignore_changes=["scalingConfig.desiredSize"] if args.autoscaled else None,
                ),
            ),
        )

        addon_versions = versions.eks_addon_versions(args.kubernetes_version)
        self.addons = {}
        for addon in ADDONS:
            after_nodes = addon in ADDONS_AFTER_NODES
            self.addons[addon] = aws.eks.Addon(
                f"{addon}-{region}",
                cluster_name=self.cluster_name,
                addon_name=addon,
                addon_version=addon_versions[addon],
                # vpc-cni enforces NetworkPolicies only with its policy agent on (infra/addons.py
                # vpc_cni_configuration cites the EKS user guide); the others keep their defaults.
                configuration_values=json.dumps(addons_data.vpc_cni_configuration())
                if addon == "vpc-cni"
                else None,
                # Adopt the self-managed copy EKS bootstrapped, and keep the add-on's
                # configuration what this program says it is.
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                # Deleting the add-on resource (a rename, a refactor that re-parents it) must not
                # remove vpc-cni, kube-proxy, coredns or the Pod Identity agent from a live
                # cluster: with preserve, DeleteAddon keeps the software running and only stops
                # EKS managing it. https://docs.aws.amazon.com/eks/latest/APIReference/API_DeleteAddon.html
                preserve=True,
                tags=tags,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[self.node_group] if after_nodes else None)
                ),
            )

        # The agent that serves EKS Pod Identity credentials on every node: whatever runs a pod
        # with a Pod Identity association waits for it (infra.components.argocd).
        self.pod_identity_agent = self.addons[POD_IDENTITY_AGENT]

        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "endpoint": self.endpoint,
                "oidcIssuer": self.oidc_issuer,
                "kubeconfig": self.kubeconfig,
                "nodeGroup": self.node_group.arn,
            }
        )

    def summary(self) -> dict[str, Any]:
        """The entry of this cluster in the ``clusters`` stack output."""
        return {"name": self.cluster_name, "endpoint": self.endpoint, "oidcIssuer": self.oidc_issuer}


def bound_to_principal(principal: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of an EKS access entry for an IAM role this program manages: replaced with the role.

    EKS binds an access entry to the principal's unique ID, not its ARN: "If you don't delete
    the access entry and ever recreate the IAM principal, even if it has the same ARN, the access
    entry won't work ... the roleID or userID ... is different for the recreated IAM principal"
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_AccessEntry.html, principalArn).
    So the entry is replaced with the role (``replaceWith``:
    https://www.pulumi.com/docs/iac/concepts/resources/options/replacewith/), and deleted before
    its replacement is created: the role keeps its ARN, a cluster holds one entry per principal
    ARN, and creating the new one first fails with ResourceInUseException
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessEntry.html).
    Not for ``clusterAdminRoleArn``, which the program does not manage: its entry changes only
    with that setting, to another ARN, so the new entry is created before the old one goes and
    the person running the `up` keeps access meanwhile; a recreated admin role is recovered by
    the step in docs/clusters.md.
    """
    return pulumi.ResourceOptions(delete_before_replace=True, replace_with=[principal])


def bound_to_entry(entry: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options of an access policy association: replaced (delete first) with its access entry.

    An association is a sub-resource of its entry (its API path is
    ``/clusters/{name}/access-entries/{principalArn}/access-policies/{policyArn}``:
    https://docs.aws.amazon.com/eks/latest/APIReference/API_DisassociateAccessPolicy.html), so it
    does not outlive a deleted entry; replaced with it, it is associated again with the new one
    and Pulumi's state stays true.
    """
    return pulumi.ResourceOptions(delete_before_replace=True, replace_with=[entry])


def _no_creator_admin(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    props = eks_docs.without_creator_admin(args.type_, args.props)
    return None if props is None else pulumi.ResourceTransformResult(props=props, opts=args.opts)


def build_clusters(
    config: StackConfig,
    providers: Mapping[str, aws.Provider],
    up_role: aws.iam.Role | None = None,
    hub_readers_egress: pulumi.Input[list[str]] | None = None,
) -> dict[str, RegionalCluster]:
    """One RegionalCluster per configured region, each on that region's provider.

    The hub comes first: each spoke admits the hub's NAT addresses to its API endpoint, so Argo
    CD can manage it. The addresses exist seconds after the hub's network starts, long before
    any control plane, so this adds nothing to a spoke's build time.

    Each cluster gets the access entries of the principals that run ``pulumi up`` there
    (access.cluster_operators); ``up_role`` is the GitHub up role resource, whose ARN
    the entry takes (the entry must wait for the role: EKS accepts only an existing principal),
    or None to use the role's known ARN (tests that build clusters alone). The entries follow
    the role: a replaced role replaces them (:func:`bound_to_principal`).
    ``hub_readers_egress``: the NAT addresses of the stacks whose deploy reads this stack's hub
    (infra.components.hub_readers), which the hub's public endpoint admits besides its configured
    CIDRs; None when no stack reads it.
    """
    by_region: dict[str, dict[str, tuple[pulumi.Input[str], pulumi.Resource | None]]] = {
        r: {} for r in config.region_names
    }
    for operator in access.cluster_operators(config):
        arn: pulumi.Input[str] = operator.principal_arn
        principal: pulumi.Resource | None = None
        if operator.name == access.UP_OPERATOR and up_role is not None:
            arn, principal = up_role.arn, up_role
        for region in operator.regions:
            by_region[region][operator.name] = (arn, principal)
    hub = RegionalCluster(
        config.hub_region,
        RegionalClusterArgs.from_config(config, config.hub_region),
        providers[config.hub_region],
        hub_egress_cidrs=hub_readers_egress,
        operators=by_region[config.hub_region],
    )
    clusters = {config.hub_region: hub}
    for region in config.spoke_regions:
        clusters[region] = RegionalCluster(
            region,
            RegionalClusterArgs.from_config(config, region),
            providers[region],
            hub_egress_cidrs=hub.network.egress_cidrs,
            operators=by_region[region],
        )
    return {region: clusters[region] for region in config.region_names}


def cluster_outputs(clusters: Mapping[str, RegionalCluster]) -> dict[str, Any]:
    """The ``clusters`` and ``kubeconfigs`` stack outputs (naming.OUTPUT_*)."""
    return {
        naming.OUTPUT_CLUSTERS: {region: c.summary() for region, c in clusters.items()},
        naming.OUTPUT_KUBECONFIGS: pulumi.Output.secret(
            {region: c.kubeconfig for region, c in clusters.items()}
        ),
    }
