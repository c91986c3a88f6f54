"""Which input changes make Pulumi replace a resource instead of updating it, in one table.

The offline diff (:mod:`infra.plan_diff`) marks a changed resource ``+-`` (replace) when one of
these inputs changed, ``~`` (update) otherwise, as ``pulumi preview`` would. Where the answer
comes from:

* **The engine** (pulumi/pulumi ``pkg/resource/deploy/step_generator.go``, ``providerChanged``
  and ``diff``): a custom resource whose *explicit* provider reference changes is replaced
  ("If one or both of these providers are not default providers, we will need to accept the
  diff and replace everything"; ``ReplaceKeys: ["provider"]``). Every provider of this program is
  explicit (``infra/providers.py``), so moving a resource to another region's provider, or to
  another cluster's Kubernetes provider, replaces it. The same file's ``applyReplaceOnChanges``
  adds the paths of the ``replaceOnChanges`` resource option. A component resource has no
  provider: the engine only reports that its inputs changed; its children decide.
* **pulumi-aws** is bridged from terraform-provider-aws. The bridge writes
  ``willReplaceOnChanges`` into the schema for every ForceNew property
  (pulumi/pulumi-terraform-bridge ``pkg/tfgen/generate_schema.go``, ``genProperty``:
  ``WillReplaceOnChanges: prop.forceNew()``), and at run time replaces on the same ForceNew
  attributes. The schema is not shipped with the Python SDK (``pulumi_aws`` holds only
  ``pulumi-plugin.json``) and ``provider/cmd/pulumi-resource-aws/schema.json`` could not be
  fetched here (the repository exceeds the fetch limit), so the ForceNew markers were read in
  terraform-provider-aws itself; the file of each type is named in :data:`AWS_SOURCES`.
* **pulumi-kubernetes** (``provider/pkg/provider/diff.go``, ``forceNewProperties``): every kind
  is replaced when ``metadata.name`` or ``metadata.namespace`` changes; some kinds have more
  (a Secret's ``type``, ``data`` and ``stringData``; a RoleBinding's ``roleRef``; a ConfigMap's
  ``data`` and ``binaryData``). Custom resources (AppProject, ApplicationSet, ImageUpdater)
  have only the metadata rule.

A type in none of the tables (listed by :func:`unknown_types`) is shown as an update marked
"replacement not known"; add its ForceNew inputs here, with the source, when the program
starts declaring it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

#: Paths are Pulumi input names (camelCase, as the plan records them), dot-separated; a path
#: matches a change at that property or anywhere below it.
AWS_FORCE_NEW: Mapping[str, tuple[str, ...]] = {
    "aws:ecr/repository:Repository": ("name", "encryptionConfigurations"),
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": (),
    "aws:eks/nodeGroup:NodeGroup": (
        "amiType",
        "capacityType",
        "clusterName",
        "diskSize",
        "instanceTypes",
        "launchTemplate.id",
        "launchTemplate.name",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "nodeRoleArn",
        "remoteAccess",
        "subnetIds",
    ),
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn", "type"),
    # pulumi-eks's control plane (a child of eks:index:Cluster). vpcConfig.subnetIds,
    # securityGroupIds, the endpoint settings and the version are updated in place through
    # UpdateClusterConfig / UpdateClusterVersion (resourceClusterUpdate). remote_network_config is
    # ForceNew as a whole, and so are the cidrs of its remote_node_networks and remote_pod_networks.
    # The schema's CustomizeDiff also replaces the cluster when compute_config.node_role_arn
    # changes from a set value (setting it where it was unset is in place: IN_PLACE_CHANGES), and
    # when encryption_config is removed (not modelled here). The program sets none of these today.
    "aws:eks/cluster:Cluster": (
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "bootstrapSelfManagedAddons",
        "computeConfig.nodeRoleArn",
        "kubernetesNetworkConfig.ipFamily",
        "kubernetesNetworkConfig.serviceIpv4Cidr",
        "name",
        "outpostConfig.controlPlaneInstanceType",
        "outpostConfig.controlPlanePlacement.groupName",
        "remoteNetworkConfig",
        "remoteNetworkConfig.remoteNodeNetworks.cidrs",
        "remoteNetworkConfig.remotePodNetworks.cidrs",
        "roleArn",
    ),
    "aws:eks/addon:Addon": ("addonName", "clusterName"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": ("clusterName", "namespace", "serviceAccount"),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url",),
    "aws:kms/key:Key": ("customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId"),
    "aws:route53/healthCheck:HealthCheck": (
        "measureLatency",
        "referenceName",
        "requestInterval",
        "routingControlArn",
        "type",
    ),
    # cidrBlock: ForceNew in the schema and again in CustomizeDiff (unless IPAM derived it from
    # ipv4NetmaskLength); instanceTenancy: CustomizeDiff forces replacement for every change but
    # dedicated -> default (IN_PLACE_CHANGES), the only one EC2's ModifyVpcTenancy makes. Read in
    # vpc_.go at terraform-provider-aws commit 00081ce4 (an SDKv2 copy: the repository is too
    # large to fetch here, so the exact v6 tag pulumi-aws 7.51.1 bridges, later than v6.61.0 of
    # pulumi-aws 7.43.0's release notes, was not read; re-check this row on a provider upgrade).
    "aws:ec2/vpc:Vpc": ("cidrBlock", "instanceTenancy", "ipv4IpamPoolId", "ipv4NetmaskLength"),
    "aws:ec2/subnet:Subnet": (
        "availabilityZone",
        "availabilityZoneId",
        "cidrBlock",
        "ipv6Native",
        "outpostArn",
        "vpcId",
    ),
}

_TF = "hashicorp/terraform-provider-aws "
#: Where each row of :data:`AWS_FORCE_NEW` was read (the ``ForceNew: true`` / ``RequiresReplace``
#: markers of the resource's schema).
AWS_SOURCES: Mapping[str, str] = {
    "aws:ecr/repository:Repository": _TF + "internal/service/ecr/repository.go",
    "aws:ecr/replicationConfiguration:ReplicationConfiguration": _TF
    + "internal/service/ecr/replication_configuration.go (no ForceNew: create and update are one Put)",
    "aws:eks/nodeGroup:NodeGroup": _TF + "internal/service/eks/node_group.go",
    "aws:eks/accessEntry:AccessEntry": _TF + "internal/service/eks/access_entry.go",
    "aws:eks/cluster:Cluster": _TF
    + "internal/service/eks/cluster.go (the aws-sdk-go-v2 copy with control_plane_scaling_config: "
    "vpc_config.subnet_ids has no ForceNew, resourceClusterUpdate sends it alone in "
    "UpdateClusterConfig; remote_network_config, its cidrs and the compute_config CustomizeDiff "
    "read in the copy at commit 00555dc5); "
    "https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateClusterConfig.html",
    "aws:eks/addon:Addon": _TF + "internal/service/eks/addon.go",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": _TF
    + "internal/service/eks/pod_identity_association.go (plugin framework: RequiresReplace)",
    "aws:iam/role:Role": _TF + "internal/service/iam/role.go",
    "aws:iam/rolePolicy:RolePolicy": _TF + "internal/service/iam/role_policy.go",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _TF
    + "internal/service/iam/openid_connect_provider.go",
    "aws:kms/key:Key": _TF + "internal/service/kms/key.go",
    "aws:ec2/subnet:Subnet": _TF + "internal/service/ec2/vpc_subnet.go",
    "aws:route53/healthCheck:HealthCheck": _TF + "internal/service/route53/health_check.go",
    "aws:ec2/vpc:Vpc": _TF + "internal/service/ec2/vpc_.go (schema ForceNew and resourceVPCCustomizeDiff); "
    "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVpcTenancy.html",
}

#: In :data:`IN_PLACE_CHANGES`, a new value that stands for any value.
ANY_VALUE = "<any value>"

#: Inputs whose replacement the provider decides from the old and new value (a CustomizeDiff that
#: calls ForceNew conditionally): (type, input) -> the (old, new) changes made in place
#: (:data:`ANY_VALUE` as new: from that old value to any); every other change of the input
#: replaces (it is listed in :data:`AWS_FORCE_NEW`). ``None`` is an input the program does not
#: set, i.e. the provider's default.
IN_PLACE_CHANGES: Mapping[tuple[str, str], tuple[tuple[object, object], ...]] = {
    # internal/service/ec2/vpc_.go resourceVPCCustomizeDiff: ForceNew("instance_tenancy") unless
    # old == dedicated and new == default; the schema's default is default. EC2's ModifyVpcTenancy
    # accepts only default ("You cannot change the instance tenancy attribute to dedicated").
    ("aws:ec2/vpc:Vpc", "instanceTenancy"): (("dedicated", "default"), ("dedicated", None)),
    # internal/service/eks/cluster.go resourceCluster's CustomizeDiff: with compute_config in both
    # the old and new state, ForceNew("compute_config.0.node_role_arn") when the old role is not
    # empty and differs ("only force new if an existing role has changed, not if a new role is
    # added"). Adding or removing the whole compute_config is a change of computeConfig itself,
    # which the rule's path does not cover: in place, as the CustomizeDiff returns early.
    ("aws:eks/cluster:Cluster", "computeConfig.nodeRoleArn"): ((None, ANY_VALUE), ("", ANY_VALUE)),
}

#: The provider schema's default of an input of :data:`IN_PLACE_CHANGES`: an absent value and the
#: default are the same to the provider, so a change between them is no change at all
#: (vpc_.go: ``instance_tenancy`` defaults to ``default``).
SCHEMA_DEFAULTS: Mapping[tuple[str, str], object] = {
    ("aws:ec2/vpc:Vpc", "instanceTenancy"): "default",
}

#: Types the program declares whose ForceNew markers have not been read yet: the diff shows
#: their changes as updates marked "replacement not known". Reading one moves it to
#: :data:`AWS_FORCE_NEW` with its source.
NOT_READ: tuple[str, ...] = (
    "aws:ec2/eip:Eip",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/route:Route",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "aws:ecr/registryPolicy:RegistryPolicy",
    "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration",
    "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:kms/alias:Alias",
    "kubernetes:helm.sh/v3:Release",
    # Declared since the table was written (CI runners, security group rules, GitHub set-up).
    "aws:codebuild/project:Project",
    "aws:codebuild/webhook:Webhook",
    # Issue 15 (scanners' findings): VPC flow logs and the adopted default security group.
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    "aws:ec2/flowLog:FlowLog",
    "aws:codeconnections/connection:Connection",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
    "github:index/actionsRepositoryOidcSubjectClaimCustomizationTemplate:ActionsRepositoryOidcSubjectClaimCustomizationTemplate",
    "github:index/actionsVariable:ActionsVariable",
    "github:index/repositoryEnvironment:RepositoryEnvironment",
    "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
    # Issue 15 review: the ruleset on main and the workflow token settings (rules not read).
    "github:index/repositoryRuleset:RepositoryRuleset",
    "github:index/workflowRepositoryPermissions:WorkflowRepositoryPermissions",
    # Issue 18 (the way in): certificates, their validation records, the web ACLs.
    "aws:acm/certificate:Certificate",
    "aws:acm/certificateValidation:CertificateValidation",
    "aws:route53/record:Record",
    "aws:wafv2/webAcl:WebAcl",
)

#: Inputs that are sets, not lists: Terraform ``TypeSet`` attributes of the bridged provider
#: (the bridge types them as arrays in the Pulumi schema, but the provider compares them as sets:
#: hashicorp/terraform-plugin-sdk helper/schema, "TypeSet ... the order of the elements is not
#: significant"), so reordering their items changes nothing and is no replacement. Only sets
#: whose schema was read are listed, with the file; others still show a reorder.
SET_INPUTS: Mapping[str, tuple[str, ...]] = {
    # internal/service/eks/node_group.go: subnet_ids, taint, remote_access.source_security_group_ids.
    "aws:eks/nodeGroup:NodeGroup": ("subnetIds", "taints", "remoteAccess.sourceSecurityGroupIds"),
    # internal/service/eks/cluster.go: vpc_config's subnet_ids, security_group_ids,
    # public_access_cidrs; enabled_cluster_log_types.
    "aws:eks/cluster:Cluster": (
        "vpcConfig.subnetIds",
        "vpcConfig.securityGroupIds",
        "vpcConfig.publicAccessCidrs",
        "enabledClusterLogTypes",
    ),
    # internal/service/eks/access_entry.go: kubernetes_groups.
    "aws:eks/accessEntry:AccessEntry": ("kubernetesGroups",),
    # internal/service/iam/openid_connect_provider.go: client_id_list.
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("clientIdLists",),
    # internal/provider/provider.go: allowed_account_ids (the provider's own configuration).
    "pulumi:providers:aws": ("allowedAccountIds",),
}

KUBERNETES_METADATA_FORCE_NEW: tuple[str, ...] = ("metadata.name", "metadata.namespace")
KUBERNETES_KIND_FORCE_NEW: Mapping[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Secret": ("type", "stringData", "data"),
    "kubernetes:core/v1:ConfigMap": ("data", "binaryData"),
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": ("roleRef",),
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": ("roleRef",),
}
#: Kubernetes types that are not plain objects: the metadata rule does not apply to them, and
#: their own replacement rules were not read.
KUBERNETES_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")

PROVIDER_KEY = "provider"


def force_new_paths(type_: str) -> tuple[str, ...] | None:
    """The input paths whose change replaces a ``type_`` resource; None when not known."""
    if type_ in AWS_FORCE_NEW:
        return AWS_FORCE_NEW[type_]
    if type_.startswith("kubernetes:") and not type_.startswith(KUBERNETES_NOT_OBJECTS):
        return KUBERNETES_METADATA_FORCE_NEW + KUBERNETES_KIND_FORCE_NEW.get(type_, ())
    return None


def _covers(rule: str, path: Sequence[str | int]) -> bool:
    names = [p for p in path if isinstance(p, str)]
    parts = rule.split(".")
    return names[: len(parts)] == parts


def is_set_input(type_: str, path: Sequence[str | int]) -> bool:
    """Whether ``path`` (keys and list indices) is a set-typed input of ``type_`` (or inside one)."""
    return any(_covers(rule, path) for rule in SET_INPUTS.get(type_, ()))


def replace_keys(
    type_: str,
    changed: Iterable[Sequence[str | int]],
    replace_on_changes: Iterable[str] = (),
    values: Mapping[tuple[str | int, ...], tuple[object, object]] | None = None,
) -> list[str]:
    """The changed input paths (sequences of keys and list indices) that force replacement.

    ``replace_on_changes`` is the resource's own option (dotted paths, ``*`` for everything);
    list indices in a change's path are skipped when matching, as the engine's property paths
    match any element. ``values`` gives a changed path's (old, new) value (None when absent), for
    the inputs of :data:`IN_PLACE_CHANGES`; without it such a change counts as a replacement.
    """
    rules = list(force_new_paths(type_) or ())
    own = list(replace_on_changes)
    out = []
    for path in changed:
        if "*" in own or any(_covers(rule, path) for rule in own):
            out.append(".".join(str(p) for p in path if isinstance(p, str)))
            continue
        for rule in rules:
            if _covers(rule, path) and not _in_place(type_, rule, path, values or {}):
                out.append(".".join(str(p) for p in path if isinstance(p, str)))
                break
    return sorted(set(out))


def _in_place(
    type_: str,
    rule: str,
    path: Sequence[str | int],
    values: Mapping[tuple[str | int, ...], tuple[object, object]],
) -> bool:
    allowed = IN_PLACE_CHANGES.get((type_, rule))
    if allowed is None or tuple(path) not in values:
        return False
    old, new = values[tuple(path)]
    default = SCHEMA_DEFAULTS.get((type_, rule))
    if default is not None and (default if old is None else old) == (default if new is None else new):
        return True
    return any(old == o and (n == ANY_VALUE or new == n) for o, n in allowed)


def unknown_types(types: Iterable[str]) -> list[str]:
    """The custom resource types among ``types`` in neither the tables nor :data:`NOT_READ`."""
    return sorted(
        {
            t
            for t in types
            if not t.startswith("pulumi:providers:") and force_new_paths(t) is None and t not in NOT_READ
        }
    )
