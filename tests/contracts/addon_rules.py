"""Transcriptions of the upstream rules the cluster add-ons rely on (issue 17).

Like :mod:`tests.contracts.upstream` and :mod:`tests.contracts.aws_rules`: one small function per
rule, each naming the file and tag (or document) it transcribes; only the cases the platform
reaches are transcribed, anything else raises, so a test cannot pass on an untranscribed case.

Pinned versions (``infra/versions.py`` ADDON_CHARTS, the stack files' ``platform:addons``):
External Secrets Operator chart 2.9.0 / app v2.9.0, Cluster Autoscaler chart 9.59.0 / app 1.35.0.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

ESO_APP_VERSION = "v2.9.0"
CLUSTER_AUTOSCALER_APP_VERSION = "1.35.0"

# --- External Secrets Operator v2.9.0: credentials --------------------------------------------


def eso_aws_credentials(provider: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Where ESO's AWS provider gets credentials for a store's ``spec.provider.aws``, and the
    roles it then assumes.

    external-secrets/external-secrets v2.9.0 providers/v1/aws/auth/auth.go: ``New`` calls
    ``constructCredsProvider``, which returns a provider for ``auth.jwt`` (IRSA-style
    AssumeRoleWithWebIdentity of a named service account) or ``auth.secretRef`` (static keys from a
    Secret) and ``nil, nil`` otherwise; with no provider, ``createConfiguration`` calls
    ``config.LoadDefaultConfig`` without ``WithCredentialsProvider``: the AWS SDK's default
    chain. ``additionalRoles`` and then ``role`` wrap it in ``stscreds.NewAssumeRoleProvider``.
    Returns ("jwt" | "secretRef" | "default-chain", the roles assumed in order).
    """
    auth = provider.get("auth") or {}
    if auth.get("jwt") is not None:
        source = "jwt"
    elif auth.get("secretRef") is not None:
        source = "secretRef"
    else:
        source = "default-chain"
    roles = [str(r) for r in provider.get("additionalRoles") or []]
    if provider.get("role"):
        roles.append(str(provider["role"]))
    return source, tuple(roles)


def eso_store_usable_from(store: Mapping[str, Any], namespace: str) -> bool:
    """Whether an ExternalSecret in ``namespace`` may use ``store``.

    external-secrets v2.9.0 pkg/controllers/secretstore/client_manager.go ``shouldProcessSecret``:
    a SecretStore serves its own namespace only (it is looked up there); a ClusterSecretStore
    without ``conditions`` serves every namespace; with conditions, a namespace is served when
    any condition's ``namespaces`` (matched as the label ``kubernetes.io/metadata.name``) names it.
    ``namespaceSelector`` and ``namespaceRegexes`` are not transcribed (the platform uses neither).
    """
    if store["kind"] == "SecretStore":
        return bool(store["metadata"].get("namespace") == namespace)
    conditions = store["spec"].get("conditions") or []
    if not conditions:
        return True
    for condition in conditions:
        if condition.get("namespaceSelector") or condition.get("namespaceRegexes"):
            raise NotImplementedError("namespaceSelector / namespaceRegexes are not transcribed")
        if namespace in (condition.get("namespaces") or []):
            return True
    return False


def iam_trust_admits(trust: Mapping[str, Any], caller_role_arn: str, action: str) -> bool:
    """Whether a role's trust policy lets a session of ``caller_role_arn`` call ``action``
    (sts:AssumeRole, sts:TagSession) on it: an Allow statement whose ``Principal.AWS`` is that
    role's ARN and whose ``Action`` lists the call (IAM user guide, "IAM JSON policy elements:
    Principal", IAM role principals). Conditions, Deny statements and wildcard principals are not
    transcribed (the platform's store roles use none) and raise."""
    admitted = False
    for statement in trust["Statement"]:
        if statement["Effect"] != "Allow" or statement.get("Condition"):
            raise NotImplementedError("Deny and conditions in a trust policy are not transcribed")
        principal = statement["Principal"].get("AWS")
        if principal == "*" or (isinstance(principal, str) and principal.endswith(":root")):
            raise NotImplementedError("wildcard and account principals are not transcribed")
        actions = statement["Action"]
        admitted |= principal == caller_role_arn and action in (
            [actions] if isinstance(actions, str) else actions
        )
    return admitted


# The environment EKS adds to a pod whose service account has a Pod Identity association
# (EKS user guide, awsdocs/amazon-eks-user-guide @4d52b4d
# latest/ug/manage-access/aws-access/service-accounts.adoc, "How EKS Pod Identity Agent works
# with a Pod"; https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html).
EKS_POD_IDENTITY_ENV: Mapping[str, str] = {
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": (
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
    ),
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
}
# The annotation that makes EKS's IRSA webhook inject AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE
# (https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html).
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def pod_identity_admission(
    namespace: str, service_account: str, associations: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """The Pod Identity variables a pod of ``namespace``/``service_account`` gets when it is
    created, ``associations`` being the (namespace, service account) pairs associated at that
    moment (same guide, same section: "When Amazon EKS starts a new pod that uses a service account
    with an EKS Pod Identity association, the cluster adds the following content to the Pod
    manifest"). Only a new pod gets them: one created before its association has none, and its
    SDK's default chain finds no Pod Identity credentials until the pod is recreated."""
    return dict(EKS_POD_IDENTITY_ENV) if (namespace, service_account) in set(associations) else {}


def aws_sdk_go_v2_default_chain(env: Mapping[str, str]) -> str:
    """The credential source the AWS SDK for Go v2's default chain picks in a container with
    environment ``env`` and no shared config or credentials file (none is mounted).

    aws/aws-sdk-go-v2 config/resolve_credentials.go ``resolveCredentialChain``: static keys from
    the environment first, then a web identity token file (IRSA); otherwise
    ``resolveCredsFromProfile``: with an empty profile, ``AWS_CONTAINER_CREDENTIALS_FULL_URI``
    (the container credentials provider EKS Pod Identity uses), then
    ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` (ECS), then IMDS. Read at a stored commit of that
    file (02d654c); the pinned ESO v2.9.0 requires aws-sdk-go-v2/config v1.31.19 (go.mod), later
    than the minimum the EKS user guide names for Pod Identity (release-2023-11-14,
    service-accounts.adoc "Use pod identity with the AWS SDK"), which also accepts the agent's
    169.254.170.23 as a container credentials host.
    """
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return "environment"
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return "web-identity"
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return "container"
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return "ecs"
    return "imds"


# --- External Secrets Operator v2.9.0: the Secrets Manager calls --------------------------------


def eso_secretsmanager_calls(external_secret_spec: Mapping[str, Any]) -> set[str]:
    """The Secrets Manager API calls one ExternalSecret's refresh makes (IAM action names).

    external-secrets/external-secrets v2.9.0 providers/v1/aws/secretsmanager/secretsmanager.go:
    each ``data[].remoteRef`` is ``GetSecret`` and each ``dataFrom[].extract`` is
    ``GetSecretMap`` (which calls ``GetSecret``); both go through ``fetch`` ->
    ``constructSecretValue``: ``DescribeSecret`` when ``metadataPolicy: Fetch`` (the tags), else
    ``GetSecretValue``. ``dataFrom[].find`` (ListSecrets, BatchGetSecretValue) and PushSecret
    (writes) are not transcribed. ``Validate`` of the store only retrieves the credentials.
    """
    refs: list[Mapping[str, Any]] = [d["remoteRef"] for d in external_secret_spec.get("data") or []]
    for entry in external_secret_spec.get("dataFrom") or []:
        if set(entry) != {"extract"}:
            raise NotImplementedError(f"only dataFrom.extract is transcribed, not {sorted(entry)}")
        refs.append(entry["extract"])
    calls = set()
    for ref in refs:
        fetch = ref.get("metadataPolicy") == "Fetch"
        calls.add("secretsmanager:DescribeSecret" if fetch else "secretsmanager:GetSecretValue")
    return calls


# --- Cluster Autoscaler 1.35.0 on AWS -------------------------------------------------------------

# The AWS calls the AWS cloud provider makes: kubernetes/autoscaler cluster-autoscaler-1.35.0
# cluster-autoscaler/cloudprovider/aws/aws_wrapper.go (the autoScalingI, ec2I and eksI
# interfaces the provider is built on) and aws_util.go (DescribeInstanceTypes, the dynamic
# instance type list, the default). The README's full policy at that tag also lists
# autoscaling:DescribeAutoScalingInstances, which no code of that tag calls.
CLUSTER_AUTOSCALER_CALLS: frozenset[str] = frozenset(
    {
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeLaunchConfigurations",
        "autoscaling:DescribeScalingActivities",
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "ec2:DescribeImages",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:GetInstanceTypesFromInstanceRequirements",
        "eks:DescribeNodegroup",
    }
)
CLUSTER_AUTOSCALER_WRITES = frozenset(
    {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}
)


def ca_parse_auto_discovery(arg: str) -> dict[str, str]:
    """``--node-group-auto-discovery=asg:tag=k1,k2=v2`` -> {tag key: required value, "" = any}.

    cluster-autoscaler-1.35.0 cloudprovider/aws/aws_manager.go ``parseASGAutoDiscoverySpec``:
    discoverer ``asg``, the one key ``tag``, comma-separated ``key`` or ``key=value``.
    """
    prefix = "--node-group-auto-discovery="
    if not arg.startswith(prefix):
        raise ValueError(f"not an auto-discovery argument: {arg}")
    discoverer, _, param = arg[len(prefix) :].partition(":")
    key, _, value = param.partition("=")
    if discoverer != "asg" or key != "tag" or not value:
        raise ValueError(f"invalid spec: {arg}")
    tags: dict[str, str] = {}
    for label in value.split(","):
        k, sep, v = label.partition("=")
        tags[k] = v if sep else ""
    return tags


def ca_discovers(spec: Mapping[str, str], asg_tags: Mapping[str, str]) -> bool:
    """Whether auto-discovery finds an Auto Scaling group with ``asg_tags``.

    cluster-autoscaler-1.35.0 cloudprovider/aws/aws_wrapper.go ``getAutoscalingGroupsByTags``:
    one DescribeAutoScalingGroups filter per key, ``tag-key`` (any value) when the spec gives no
    value, ``tag:<key>`` with the value otherwise; the filters are ANDed (README "Auto-Discovery
    Setup": "will find the ASGs that have at least all the given tags").
    """
    return all(k in asg_tags and (v == "" or asg_tags[k] == v) for k, v in spec.items())


def ca_increase_size(current: int, delta: int, max_size: int) -> int:
    """The desired capacity a scale-up sets, or ValueError.

    cluster-autoscaler-1.35.0 cloudprovider/aws/aws_cloud_provider.go ``IncreaseSize``: refuses
    ``size+delta > ng.asg.maxSize``; the group's bounds are the ASG's MinSize/MaxSize
    (auto_scaling_groups.go, from DescribeAutoScalingGroups).
    """
    if delta <= 0:
        raise ValueError("size increase must be positive")
    if current + delta > max_size:
        raise ValueError(f"size increase too large - desired:{current + delta} max:{max_size}")
    return current + delta


def ca_may_delete_nodes(current: int, min_size: int) -> bool:
    """aws_cloud_provider.go ``DeleteNodes``: "min size reached, nodes will not be deleted" when
    ``size <= ng.MinSize()``."""
    return current > min_size


# Managed node groups: "Nodes launched as part of a managed node group are automatically tagged
# for auto-discovery by the Kubernetes Cluster Autoscaler" and "Amazon EKS tags managed node group
# resources so that they are configured to use the Kubernetes Cluster Autoscaler" (EKS user guide,
# awsdocs/amazon-eks-user-guide @4d52b4d latest/ug/nodes/managed-node-groups.adoc); the tags are
# the two keys the Cluster Autoscaler README's auto-discovery names. The tags a node group is
# *given* are not the ASG's: "These tags don't propagate to other resources in the node group,
# such as Auto Scaling groups or instances" (create-managed-node-group.adoc). The values EKS
# writes are not stated there, so nothing here depends on them.
def eks_managed_node_group_asg_tag_keys(cluster_name: str) -> frozenset[str]:
    return frozenset({"k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{cluster_name}"})


# --- IAM: one Allow statement ----------------------------------------------------------------------


def _null(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    # "Null": {key: "true"} matches when the key is absent from the request context, "false"
    # when it is present (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Null).
    return all((key not in context) == (str(v).lower() == "true") for key, v in condition.items())


def iam_statement_allows(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    """Whether one ``Allow`` statement matches a request (action and resource by IAM's
    wildcards, conditions: only ``Null`` is transcribed). ``context`` holds the request's
    condition keys, e.g. ``aws:ResourceTag/<key>`` for each tag of the resource (Amazon EC2 Auto
    Scaling's autoScalingGroup resource supports ``aws:ResourceTag/${TagKey}``:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html)."""
    if statement.get("Effect") != "Allow":
        raise NotImplementedError("only Allow statements are transcribed")
    actions = _as_list(statement["Action"])
    resources = _as_list(statement["Resource"])
    if not any(fnmatch.fnmatchcase(action, a) for a in actions):
        return False
    if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
        return False
    for operator, condition in (statement.get("Condition") or {}).items():
        if operator != "Null":
            raise NotImplementedError(f"condition operator {operator} is not transcribed")
        if not _null(condition, context):
            return False
    return True


def _as_list(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# --- vpc-cni EKS add-on: configurationValues -------------------------------------------------------

# The configuration values the program may pass to the vpc-cni add-on, with their JSON types and
# allowed values, as far as they could be read offline:
# * the EKS user guide (awsdocs/amazon-eks-user-guide @4d52b4d
#   latest/ug/networking/eks-networking-add-ons.adoc, "Enable the network policy parameter for
#   the add-on"): the JSON key ``"enableNetworkPolicy"`` with the *string* ``"true"``, add-on
#   ``v1.14.0-eksbuild.3`` or later; ``nodeAgent`` (an object: ``healthProbeBindAddr``,
#   ``metricsBindAddr``) and ``env`` (an object of strings) in the same section;
# * aws/amazon-vpc-cni-k8s charts/aws-vpc-cni (the add-on's chart) at every release tag from
#   v1.14.1 to v1.23.0 read (v1.14.1, v1.18.0, v1.20.0, v1.21.1, v1.23.0): values.yaml declares
#   ``enableNetworkPolicy: "false"`` (a string), templates/configmap.yaml writes it quoted to
#   ``enable-network-policy-controller`` of ``amazon-vpc-cni`` and templates/daemonset.yaml passes
#   ``--enable-network-policy={{ .Values.enableNetworkPolicy }}`` to the network policy agent.
# EKS refuses configuration values that do not match the add-on version's schema
# (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAddon.html, configurationValues:
# "must match the JSON schema returned by DescribeAddonConfiguration"). That schema itself
# (``aws eks describe-addon-configuration --addon-name vpc-cni --addon-version <v>``) needs an
# AWS account and was not read: a key outside this table is refused here until someone has.
VPC_CNI_CONFIGURATION: Mapping[str, tuple[type, frozenset[str] | None]] = {
    "enableNetworkPolicy": (str, frozenset({"true", "false"})),
    "nodeAgent": (dict, None),
    "env": (dict, None),
}


def vpc_cni_configuration_problems(values: Mapping[str, Any]) -> list[str]:
    """What in ``values`` (the add-on's configurationValues, parsed) the transcribed schema
    refuses: an unknown key, a value of another JSON type, or a value outside the allowed ones."""
    problems = []
    for key, value in values.items():
        if key not in VPC_CNI_CONFIGURATION:
            problems.append(f"{key}: not a key read in the vpc-cni configuration sources")
            continue
        kind, allowed = VPC_CNI_CONFIGURATION[key]
        if type(value) is not kind:
            problems.append(f"{key}: {value!r} is a {type(value).__name__}, expected a {kind.__name__}")
        elif allowed is not None and value not in allowed:
            problems.append(f"{key}: {value!r} is not one of {sorted(allowed)}")
    return problems


def vpc_cni_enforces_network_policies(values: Mapping[str, Any]) -> bool:
    """The chart's daemonset passes ``--enable-network-policy=<enableNetworkPolicy>`` to the
    network policy agent (default ``"false"`` in values.yaml): enforcement only with ``"true"``."""
    return values.get("enableNetworkPolicy", "false") == "true"
