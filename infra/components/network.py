"""One region's network for its EKS cluster: a VPC with a public and a private subnet per zone.

Nodes live only in the private subnets and reach the internet (ECR, the EKS API, STS) through
NAT: one gateway per zone (prod, survives the loss of a zone) or a single one (staging, cheaper).
The public subnets hold the NAT gateways and internet-facing load balancers.
https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.config import NatMode
from infra.documents import kms as kms_docs

# Re-exported: the layout moved to a pure module (infra/traffic.py reads it without Pulumi).
from infra.subnets import MAX_ZONES as MAX_ZONES
from infra.subnets import SubnetPlan as SubnetPlan
from infra.subnets import subnet_layout as subnet_layout

TYPE = "platform:network:RegionalNetwork"


# Subnet tags the AWS Load Balancer Controller and the in-tree service controller use to pick
# subnets. https://docs.aws.amazon.com/eks/latest/userguide/network-load-balancing.html
ELB_ROLE_TAG = "kubernetes.io/role/elb"

# VPC flow logs (every accepted and rejected flow) go to a CloudWatch Logs group encrypted with a
# key of its own and kept a year: the span an incident review reaches back over, and the
# minimum checkov's CKV_AWS_338 accepts. https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html
FLOW_LOG_RETENTION_DAYS = 365
FLOW_LOG_TRAFFIC = "ALL"
# Records aggregate over at most one minute instead of the default ten.
FLOW_LOG_AGGREGATION_SECONDS = 60


def flow_log_group_name(cluster_name: str) -> str:
    return f"/platform/vpc-flow-logs/{cluster_name}"


INTERNAL_ELB_ROLE_TAG = "kubernetes.io/role/internal-elb"


def cluster_tag(cluster_name: str) -> str:
    return f"kubernetes.io/cluster/{cluster_name}"


def subnet_role_tags(cluster_name: str, *, public: bool) -> dict[str, str]:
    """The Kubernetes tags of a cluster's public or private subnet: this cluster's tag (``shared``)
    and the load balancer role (``elb`` for internet-facing, ``internal-elb`` for internal), value
    ``"1"``. The AWS Load Balancer Controller v3.5.0 discovers subnets by exactly these
    (tests/contracts/test_traffic_addons.py)."""
    return {cluster_tag(cluster_name): "shared", (ELB_ROLE_TAG if public else INTERNAL_ELB_ROLE_TAG): "1"}


def nat_zones(availability_zones: Sequence[str], mode: NatMode) -> tuple[str, ...]:
    """The zones that get a NAT gateway. ``single`` keeps the first zone's, so switching modes
    adds or removes gateways without replacing the one that stays."""
    return tuple(availability_zones) if mode == "perAz" else (availability_zones[0],)


@dataclass(frozen=True)
class RegionalNetworkArgs:
    region: str
    account_id: str
    environment: str
    cluster_name: str
    vpc_cidr: str
    availability_zones: tuple[str, ...]
    nat_gateways: NatMode
    tags: Mapping[str, str] = field(default_factory=dict)


class RegionalNetwork(pulumi.ComponentResource):
    """VPC, subnets, internet gateway, NAT and routes of one region."""

    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    nat_gateways: list[aws.ec2.NatGateway]
    # The resources nodes need before they can reach the internet: the private default routes and
    # the route table associations that put them in force. The node group depends on these.
    egress: list[pulumi.Resource]

    default_security_group: aws.ec2.DefaultSecurityGroup
    flow_log: aws.ec2.FlowLog

    def __init__(
        self,
        name: str,
        args: RegionalNetworkArgs,
        provider: aws.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        region = args.region
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        layout = subnet_layout(args.vpc_cidr, args.availability_zones)

        def tags(name_tag: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
            return {**args.tags, **(extra or {}), "Name": name_tag}

        self.vpc = aws.ec2.Vpc(
            f"vpc-{region}",
            cidr_block=args.vpc_cidr,
            # Both are required for the private API endpoint to resolve inside the VPC.
            # https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags(args.cluster_name),
            opts=child,
        )
        # AWS creates every VPC with a default security group that admits all traffic between its
        # members and all egress. Nothing here uses it (EKS makes its own cluster security group);
        # adopting it with no rules removes them, so nothing attached to it by mistake talks.
        # https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"default-sg-{region}",
            vpc_id=self.vpc.id,
            tags=tags(f"{args.cluster_name}-default-deny"),
            opts=child,
        )
        self.flow_log = self._flow_logs(args, child, tags)
        igw = aws.ec2.InternetGateway(
            f"igw-{region}", vpc_id=self.vpc.id, tags=tags(args.cluster_name), opts=child
        )

        self.public_subnets = []
        self.private_subnets = []
        for plan in layout:
            zone = plan.availability_zone
            self.public_subnets.append(
                aws.ec2.Subnet(
                    f"public-{zone}",
                    vpc_id=self.vpc.id,
                    availability_zone=zone,
                    cidr_block=plan.public_cidr,
                    # Load balancers and NAT gateways get their own addresses; nothing launched
                    # here needs one by default.
                    map_public_ip_on_launch=False,
                    tags=tags(
                        f"{args.cluster_name}-public-{zone}", subnet_role_tags(args.cluster_name, public=True)
                    ),
                    opts=child,
                )
            )
            self.private_subnets.append(
                aws.ec2.Subnet(
                    f"private-{zone}",
                    vpc_id=self.vpc.id,
                    availability_zone=zone,
                    cidr_block=plan.private_cidr,
                    map_public_ip_on_launch=False,
                    tags=tags(
                        f"{args.cluster_name}-private-{zone}",
                        subnet_role_tags(args.cluster_name, public=False),
                    ),
                    opts=child,
                )
            )

        public_rt = aws.ec2.RouteTable(
            f"public-rt-{region}", vpc_id=self.vpc.id, tags=tags(f"{args.cluster_name}-public"), opts=child
        )
        public_default = aws.ec2.Route(
            f"public-default-{region}",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )
        public_assocs = [
            aws.ec2.RouteTableAssociation(
                f"public-rta-{plan.availability_zone}",
                route_table_id=public_rt.id,
                subnet_id=subnet.id,
                opts=child,
            )
            for plan, subnet in zip(layout, self.public_subnets, strict=True)
        ]

        # A NAT gateway only forwards once its public subnet routes to the internet gateway.
        # https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-working-with.html
        nat_ready = pulumi.ResourceOptions(depends_on=[public_default, *public_assocs])
        nats: dict[str, aws.ec2.NatGateway] = {}
        eips: list[aws.ec2.Eip] = []
        for zone in nat_zones(args.availability_zones, args.nat_gateways):
            index = args.availability_zones.index(zone)
            eip = aws.ec2.Eip(
                f"nat-eip-{zone}", domain="vpc", tags=tags(f"{args.cluster_name}-nat-{zone}"), opts=child
            )
            eips.append(eip)
            nats[zone] = aws.ec2.NatGateway(
                f"nat-{zone}",
                allocation_id=eip.allocation_id,
                subnet_id=self.public_subnets[index].id,
                connectivity_type="public",
                tags=tags(f"{args.cluster_name}-{zone}"),
                opts=pulumi.ResourceOptions.merge(child, nat_ready),
            )
        self.nat_gateways = list(nats.values())

        self.egress = []
        for plan, subnet in zip(layout, self.private_subnets, strict=True):
            zone = plan.availability_zone
            nat = nats.get(zone) or nats[args.availability_zones[0]]
            rt = aws.ec2.RouteTable(
                f"private-rt-{zone}",
                vpc_id=self.vpc.id,
                tags=tags(f"{args.cluster_name}-private-{zone}"),
                opts=child,
            )
            self.egress.append(
                aws.ec2.Route(
                    f"private-default-{zone}",
                    route_table_id=rt.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    opts=child,
                )
            )
            self.egress.append(
                aws.ec2.RouteTableAssociation(
                    f"private-rta-{zone}", route_table_id=rt.id, subnet_id=subnet.id, opts=child
                )
            )

        # The addresses this region's pods reach other regions from: the hub's are the only
        # clients admitted to the spokes' public API endpoints (see infra/components/cluster.py).
        self.egress_cidrs: pulumi.Output[list[str]] = pulumi.Output.all(*[e.public_ip for e in eips]).apply(
            lambda ips: sorted(f"{ip}/32" for ip in ips)
        )
        self.vpc_id: pulumi.Output[str] = self.vpc.id
        self.public_subnet_ids: pulumi.Output[list[str]] = pulumi.Output.all(
            *[s.id for s in self.public_subnets]
        )
        self.private_subnet_ids: pulumi.Output[list[str]] = pulumi.Output.all(
            *[s.id for s in self.private_subnets]
        )
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "natGatewayIds": pulumi.Output.all(*[n.id for n in self.nat_gateways]),
                "egressCidrs": self.egress_cidrs,
            }
        )

    def _flow_logs(
        self,
        args: RegionalNetworkArgs,
        child: pulumi.ResourceOptions,
        tags: Callable[[str], dict[str, str]],
    ) -> aws.ec2.FlowLog:
        """The VPC's flow log: a KMS-encrypted log group kept FLOW_LOG_RETENTION_DAYS, the role
        VPC Flow Logs delivers with, and the flow log itself (sources in infra/documents/kms.py)."""
        region, account = args.region, args.account_id
        group_name = flow_log_group_name(args.cluster_name)
        key = aws.kms.Key(
            f"flow-logs-{region}",
            description=f"Encryption of the VPC flow logs of {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(kms_docs.log_key_policy(account, region, group_name)),
            tags=tags(f"{args.cluster_name}-flow-logs"),
            opts=child,
        )
        group = aws.cloudwatch.LogGroup(
            f"flow-logs-{region}",
            name=group_name,
            retention_in_days=FLOW_LOG_RETENTION_DAYS,
            kms_key_id=key.arn,
            tags=tags(f"{args.cluster_name}-flow-logs"),
            opts=child,
        )
        role = aws.iam.Role(
            f"flow-logs-{region}",
            name=naming.role_name(args.environment, f"flow-logs-{region}"),
            description=f"VPC Flow Logs delivery into {group_name}",
            assume_role_policy=json.dumps(kms_docs.flow_logs_assume_role_policy(account, region)),
            tags=tags(f"{args.cluster_name}-flow-logs"),
            opts=child,
        )
        delivery = aws.iam.RolePolicy(
            f"flow-logs-{region}",
            name="deliver-flow-logs",
            role=role.id,
            policy=json.dumps(kms_docs.flow_logs_delivery_policy(account, region, group_name)),
            opts=child,
        )
        return aws.ec2.FlowLog(
            f"flow-logs-{region}",
            vpc_id=self.vpc.id,
            traffic_type=FLOW_LOG_TRAFFIC,
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=FLOW_LOG_AGGREGATION_SECONDS,
            tags=tags(f"{args.cluster_name}-flow-logs"),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[delivery])),
        )
