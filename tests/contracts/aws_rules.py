"""Transcriptions of the AWS (EKS, ECR) and Pulumi engine rules the platform relies on.

Like :mod:`tests.contracts.upstream` (the Argo CD side): one small function per rule, each naming
the document it transcribes; only the cases the platform reaches are transcribed. The contract
tests apply these rules to the program's plan and show, with a altered plan, that each rule bites.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra import offline

# --- EKS access entries ---------------------------------------------------------------------------

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
RESOURCE_IN_USE = "ResourceInUseException"


def eks_create_access_entry(existing: Iterable[tuple[str, str]], cluster: str, principal_arn: str) -> str:
    """CreateAccessEntry: "An IAM principal can't be included in more than one access entry" of a
    cluster (https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html); the
    API answers ResourceInUseException
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessEntry.html).
    Returns "created" or the error."""
    return RESOURCE_IN_USE if (cluster, principal_arn) in set(existing) else "created"


def eks_creator_entry(bootstrap_cluster_creator_admin_permissions: bool, creator_arn: str) -> tuple[str, ...]:
    """CreateCluster ``accessConfig.bootstrapClusterCreatorAdminPermissions``: true gives the
    cluster's creator a cluster-admin access entry, read at creation only
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessConfigRequest.html).
    The principals EKS itself adds an entry for."""
    return (creator_arn,) if bootstrap_cluster_creator_admin_permissions else ()


def eks_entry_authenticates(entry_bound_to_id: str, caller_id: str) -> bool:
    """AccessEntry ``principalArn`` (https://docs.aws.amazon.com/eks/latest/APIReference/API_AccessEntry.html):
    "If you don't delete the access entry and ever recreate the IAM principal, even if it has the
    same ARN, the access entry won't work ... the roleID or userID ... is different for the
    recreated IAM principal". An entry authenticates the principal whose unique ID it was
    created for."""
    return entry_bound_to_id == caller_id


def eks_is_cluster_admin(
    principal_arn: str,
    cluster: str,
    entries: Iterable[Mapping[str, object]],
    associations: Iterable[Mapping[str, object]],
) -> bool:
    """Access entries and access policies
    (https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html,
    https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html): with
    authentication mode API the cluster authenticates a principal only through its access entry,
    and a STANDARD entry authorizes what its associated access policies grant;
    AmazonEKSClusterAdminPolicy with ``accessScope`` ``cluster`` is cluster-admin. ``entries`` /
    ``associations``: the CreateAccessEntry / AssociateAccessPolicy inputs."""
    has_entry = any(
        e.get("clusterName") == cluster and e.get("principalArn") == principal_arn for e in entries
    )
    admin = any(
        a.get("clusterName") == cluster
        and a.get("principalArn") == principal_arn
        and a.get("policyArn") == CLUSTER_ADMIN_POLICY
        and a.get("accessScope") == {"type": "cluster"}
        for a in associations
    )
    return has_entry and admin


def aws_eks_get_token_identity(args: Iterable[str], caller_arn: str) -> str:
    """AWS CLI ``aws eks get-token``
    (https://awscli.amazonaws.com/v2/documentation/api/latest/reference/eks/get-token.html): the
    token is a presigned sts:GetCallerIdentity of the caller's credentials, or of ``--role-arn``
    when given; ``--profile`` picks other credentials (not transcribed)."""
    args = list(args)
    if "--profile" in args:
        raise NotImplementedError("profiles are not transcribed")
    if "--role-arn" in args:
        return args[args.index("--role-arn") + 1]
    return caller_arn


# --- Pulumi engine: ordering and replacement -------------------------------------------------------


def may_complete_before(plan: offline.Plan, first: str, second: str) -> bool:
    """The Pulumi engine starts a resource's step once every resource it depends on (``dependsOn``
    and the resources whose outputs its inputs use) is done, and runs independent steps in
    parallel (https://www.pulumi.com/docs/iac/concepts/resources/options/dependson/,
    https://www.pulumi.com/docs/iac/concepts/how-pulumi-works/). So ``first`` can be created or
    updated before ``second`` unless it depends on it, directly or through other resources."""
    index = plan.by_urn()
    seen: set[str] = set()
    todo = [first]
    while todo:
        urn = todo.pop()
        for dep in index[urn].dependencies if urn in index else ():
            if dep == second:
                return False
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return True


def replaced_together(plan: offline.Plan, replaced: Iterable[str]) -> set[str]:
    """``replaceWith`` (https://www.pulumi.com/docs/iac/concepts/resources/options/replacewith/):
    "force a replace operation on the current resource every time one of the given resources is
    replaced" - the resources an update replaces when it replaces ``replaced``."""
    out = set(replaced)
    changed = True
    while changed:
        changed = False
        for r in plan.resources:
            if r.urn not in out and out.intersection(r.replace_with):
                out.add(r.urn)
                changed = True
    return out


def create_before_delete(resource: offline.Resource) -> bool:
    """``deleteBeforeReplace`` (https://www.pulumi.com/docs/iac/concepts/resources/options/deletebeforereplace/):
    "By default, to minimize downtime, Pulumi creates new instances of resources before deleting
    old ones"; with the option the old one is deleted first."""
    return not resource.delete_before_replace


def without_option(plan: offline.Plan, urns: Iterable[str], **fields: object) -> offline.Plan:
    """A copy of ``plan`` whose resources ``urns`` have ``fields`` changed: the failing cases."""
    chosen = set(urns)
    resources = [dataclasses.replace(r, **fields) if r.urn in chosen else r for r in plan.resources]  # type: ignore[arg-type]
    return offline.Plan(plan.stack, plan.config, resources, copy.deepcopy(plan.outputs))


def without_resources(plan: offline.Plan, urns: Iterable[str]) -> offline.Plan:
    """A copy of ``plan`` without the resources ``urns`` (and without edges to them)."""
    gone = set(urns)
    resources = [
        dataclasses.replace(r, dependencies=[d for d in r.dependencies if d not in gone])
        for r in plan.resources
        if r.urn not in gone
    ]
    return offline.Plan(plan.stack, plan.config, resources, copy.deepcopy(plan.outputs))


# --- ECR replication ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaDestination:
    """One destination registry of a replication rule, at the moment of a push."""

    same_account: bool
    repository_exists: bool
    # Cross-account only: the destination's registry policy.
    allows_replicate: bool = False
    allows_create_repository: bool = False


REPLICATED = "replicated"
CREATED_BY_REPLICATION = "repository created by replication"
LOST = "replication failed (not retried)"
ALREADY_EXISTS = "RepositoryAlreadyExistsException"


def ecr_replicate_one_push(d: ReplicaDestination) -> str:
    """What one push does at one destination.

    * https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication.html: a replication
      action occurs once per push; within the account a missing destination repository is
      created (with the repository creation template if one matches, else ECR's defaults).
    * https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-replication.html:
      cross-account, the destination's registry policy must allow ecr:ReplicateImage, and
      ecr:CreateRepository for ECR to create a missing repository; a failed replication shows
      only in CloudTrail and is not retried.
    """
    if not d.same_account and not d.allows_replicate:
        return LOST
    if d.repository_exists:
        return REPLICATED
    if d.same_account or d.allows_create_repository:
        return CREATED_BY_REPLICATION
    return LOST


def ecr_create_repository(exists: bool) -> str:
    """CreateRepository on a name that exists fails with RepositoryAlreadyExistsException
    (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html)."""
    return ALREADY_EXISTS if exists else "created"


def push_race(
    plan: offline.Plan, enabler: str, repository: str, destination: ReplicaDestination
) -> str | None:
    """The failure a push can cause while ``plan``'s `up` runs, or None.

    ``enabler`` is the resource whose create/update makes replication reach ``repository``'s
    region (a registry policy, a replication configuration, the primary-region repository CI
    pushes to). If the engine may complete it before the repository (:func:`may_complete_before`),
    a push in between meets a destination without the repository (``destination`` gives the
    rest): ECR creates it, and the stack's own CreateRepository then fails; or the image is lost.
    """
    if not may_complete_before(plan, enabler, repository):
        return None
    outcome = ecr_replicate_one_push(dataclasses.replace(destination, repository_exists=False))
    if outcome == CREATED_BY_REPLICATION:
        return ecr_create_repository(exists=True)
    return None if outcome == REPLICATED else outcome


# --- EKS cluster lifecycle ------------------------------------------------------------------------


def eks_delete_addon_keeps_software(preserve: bool) -> bool:
    """DeleteAddon ``preserve`` (https://docs.aws.amazon.com/eks/latest/APIReference/API_DeleteAddon.html):
    "Specifying this option preserves the add-on software on your cluster but Amazon EKS stops
    managing any settings for the add-on." Without it the add-on's software is removed."""
    return preserve


def eks_node_group_version_after_update(created_with: str, version_input: str | None) -> str:
    """Managed node group version
    (https://docs.aws.amazon.com/eks/latest/userguide/update-managed-node-group.html): a node
    group keeps the Kubernetes version it was created with until an update sets its ``version``;
    without a ``version`` input nothing asks EKS to move it."""
    return version_input if version_input is not None else created_with


def eks_version_after_standard_support(support_type: str, stack_version: str, next_version: str) -> str:
    """Cluster upgrade policy (https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html):
    "If your upgrade policy is EXTENDED, the cluster will not be automatically upgraded, and will
    enter extended support. If your upgrade policy is STANDARD, it will be automatically
    upgraded." The live version once standard support of ``stack_version`` ends."""
    if support_type == "EXTENDED":
        return stack_version
    if support_type == "STANDARD":
        return next_version
    raise NotImplementedError(support_type)


# pulumi/pulumi-eks provider/cmd/pulumi-resource-eks/schema.json: the first release whose
# ``eks:index:Cluster`` has each input the program passes (read at tags v4.0.0, v4.0.1, v4.1.0).
PULUMI_EKS_CLUSTER_INPUT_SINCE: dict[str, tuple[int, int, int]] = {
    "deletionProtection": (4, 1, 0),
    **dict.fromkeys(
        (
            "upgradePolicy",
            "skipDefaultSecurityGroups",
            "bootstrapSelfManagedAddons",
            "useDefaultVpcCni",
            "corednsAddonOptions",
            "kubeProxyAddonOptions",
            "authenticationMode",
            "createOidcProvider",
            "encryptionConfigKeyArn",
        ),
        (4, 0, 0),
    ),
}


def pulumi_eks_release_lacking(inputs: Iterable[str], release: tuple[int, int, int]) -> list[str]:
    """The inputs (of those transcribed) that pulumi-eks ``release`` does not have yet."""
    return sorted(i for i in inputs if PULUMI_EKS_CLUSTER_INPUT_SINCE.get(i, (0, 0, 0)) > release)


# --- EKS control-plane subnets ---------------------------------------------------------------------


def pulumi_eks_control_plane_subnet_ids(inputs: Mapping[str, Any]) -> list[str]:
    """The ``vpcConfig.subnetIds`` pulumi-eks gives the control plane for these component inputs.

    pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts ``createCore`` (v4.3.0, unchanged at main
    7bf0c1b1; the installed 4.4.0 SDK documents the same three arguments): ``subnetIds`` when set,
    else ``[...publicSubnetIds, ...privateSubnetIds]``; ``subnetIds`` together with either of the
    others is refused. Without a ``vpcId`` the default VPC's subnets are used (not transcribed).
    """
    if inputs.get("vpcId") is None:
        raise NotImplementedError("the default VPC's subnets are not transcribed")
    subnet_ids = inputs.get("subnetIds")
    public = inputs.get("publicSubnetIds")
    private = inputs.get("privateSubnetIds")
    if subnet_ids is not None and (public is not None or private is not None):
        raise ValueError(
            "subnetIds, and the use of publicSubnetIds and/or privateSubnetIds are mutually exclusive"
        )
    if subnet_ids is not None:
        return [str(s) for s in subnet_ids]
    return [str(s) for s in [*(public or []), *(private or [])]]


def eks_control_plane_eni_subnets(cluster_subnet_ids: Iterable[str]) -> frozenset[str]:
    """The subnets EKS may put the control plane's cross-account network interfaces in: "Amazon
    EKS can create its network interfaces in any subnet that you specify when you create a
    cluster", and after a version update "in the same subnets as the original network interfaces
    or in different subnets" of those specified
    (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html, Subnet requirements)."""
    return frozenset(cluster_subnet_ids)


def eks_update_cluster_subnets_accepted(
    created_with_zones: Iterable[str], new_zones: Iterable[str], same_vpc: bool
) -> bool:
    """UpdateClusterConfig with new ``resourcesVpcConfig.subnetIds``: "at least two subnets that
    are in different Availability Zones", "the subnets must be in the same VPC as the subnets that
    the cluster was created with"
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateClusterConfig.html), and "All
    subnets that you add must be in the same set of AZs as originally provided when you created
    the cluster ... you must provide at least one subnet in each of the ... Availability Zones"
    (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html, VPC requirements)."""
    new = set(new_zones)
    return same_vpc and len(new) >= 2 and new == set(created_with_zones)


def _physical_id(resource: offline.Resource) -> str:
    # The mock runtime's ARNs end in the resource's ID (infra/offline.py _prefixed).
    return str(resource.outputs["arn"]).rsplit("/", 1)[1]


def subnets_by_id(plan: offline.Plan) -> dict[str, offline.Resource]:
    """The plan's subnets by their (mock) ID."""
    return {_physical_id(s): s for s in plan.of_type("aws:ec2/subnet:Subnet")}


def public_subnet_ids(plan: offline.Plan) -> frozenset[str]:
    """The plan's public subnets: "a subnet with a route table that includes a route to an
    internet gateway" (https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html, Subnet
    requirements; the AWS Load Balancer Controller v3.5.0 classifies reachability the same way,
    docs/deploy/subnet_discovery.md "Subnet reachability")."""
    gateways = {_physical_id(g) for g in plan.of_type("aws:ec2/internetGateway:InternetGateway")}
    to_internet = {
        str(r.inputs["routeTableId"])
        for r in plan.of_type("aws:ec2/route:Route")
        if r.inputs.get("gatewayId") in gateways
    }
    return frozenset(
        str(a.inputs["subnetId"])
        for a in plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        if a.inputs.get("routeTableId") in to_internet and a.inputs.get("subnetId")
    )
