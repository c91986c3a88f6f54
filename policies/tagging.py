"""Tagging rules: the required tags on every taggable AWS resource, an environment tag that agrees
with the stack, and rotating KMS keys.

Which AWS types take no ``tags`` is listed in :data:`UNTAGGABLE_TYPES`; every other ``aws:`` type is
treated as taggable, so a new resource type is held to the rule until shown otherwise (the tests
check the list against the installed pulumi-aws SDK).
"""

from __future__ import annotations

from collections.abc import Mapping

from infra import naming
from policies.engine import ResourceView, Rule, is_unknown, resource_rule

EKS_COMPONENT = "eks:index:Cluster"
KMS_KEY = "aws:kms/key:Key"

# AWS resource types of (or next to) this platform whose pulumi-aws resource has no `tags` input.
UNTAGGABLE_TYPES: frozenset[str] = frozenset(
    {
        "aws:ec2/route:Route",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:codebuild/webhook:Webhook",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:ecr/registryPolicy:RegistryPolicy",
        "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration",
        "aws:ecr/replicationConfiguration:ReplicationConfiguration",
        "aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:kms/alias:Alias",
        # The way in (issue 18): DNS records and ACM's validation wait take no tags.
        "aws:acm/certificateValidation:CertificateValidation",
        "aws:route53/record:Record",
    }
)

# Components of other packages whose children the program cannot tag one by one: pulumi-eks
# forwards `tags` to what it creates as it sees fit. Their children are reported, not blocked.
THIRD_PARTY_COMPONENTS: tuple[str, ...] = (EKS_COMPONENT,)


def taggable(view: ResourceView) -> bool:
    if view.type == EKS_COMPONENT:
        return True  # pulumi-eks takes `tags` and applies them to the control plane
    return view.type.startswith("aws:") and view.type not in UNTAGGABLE_TYPES


def inside_third_party_component(view: ResourceView) -> bool:
    """Whether the URN's type chain (``parent$child$type``) passes through a third-party component."""
    chain = view.urn.split("::")[2] if view.urn.count("::") >= 3 else ""
    ancestors = chain.split("$")[:-1]
    return any(t in THIRD_PARTY_COMPONENTS for t in ancestors)


def missing_tags(view: ResourceView) -> list[str] | None:
    """The required tags ``view`` lacks; None when its tags cannot be known yet."""
    tags = view.props.get("tags")
    if is_unknown(tags):
        return None
    present = tags if isinstance(tags, Mapping) else {}
    return [
        t
        for t in naming.REQUIRED_TAGS
        if not (is_unknown(present.get(t)) or str(present.get(t) or "").strip())
    ]


def _message(view: ResourceView, missing: list[str]) -> str:
    return (
        f"{view.label} lacks the required tags {', '.join(missing)}; pass "
        "tags=naming.base_tags(config.environment, config.tags) when declaring it."
    )


def _required(view: ResourceView) -> list[str]:
    if not taggable(view) or inside_third_party_component(view):
        return []
    missing = missing_tags(view)
    return [_message(view, missing)] if missing else []


def _required_third_party(view: ResourceView) -> list[str]:
    if not taggable(view) or not inside_third_party_component(view):
        return []
    missing = missing_tags(view)
    return [_message(view, missing)] if missing else []


def _environment_tag(view: ResourceView) -> list[str]:
    if not taggable(view) or not view.stack_environment:
        return []
    tagged = view.tags.get(naming.TAG_ENVIRONMENT)
    if not isinstance(tagged, str) or not tagged or tagged == view.stack_environment:
        return []
    return [
        f"{view.label} is tagged {naming.TAG_ENVIRONMENT}={tagged} in the {view.stack_environment} stack; "
        "tag it with the stack's own environment (naming.base_tags(config.environment, ...))."
    ]


def _kms_rotation(view: ResourceView) -> list[str]:
    if view.type != KMS_KEY:
        return []
    # Automatic rotation exists only for symmetric encryption keys:
    # https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html
    spec = view.get("customerMasterKeySpec") or view.get("keySpec") or "SYMMETRIC_DEFAULT"
    usage = view.get("keyUsage") or "ENCRYPT_DECRYPT"
    if is_unknown(spec) or is_unknown(usage) or spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        return []
    rotation = view.get("enableKeyRotation")
    if is_unknown(rotation) or rotation is True:
        return []
    return [f"KMS key {view.name} does not rotate; set enableKeyRotation to true."]


RULES: tuple[Rule, ...] = (
    resource_rule(
        "tags-required",
        "tagging",
        "Every taggable AWS resource the program declares carries the platform's required tags.",
        "mandatory",
        _required,
        url="https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html",
    ),
    resource_rule(
        "tags-required-in-third-party-components",
        "tagging",
        "Taggable AWS resources created inside third-party components (pulumi-eks) carry the required tags.",
        "advisory",
        _required_third_party,
        url="https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html",
    ),
    resource_rule(
        "tags-environment-matches-stack",
        "tagging",
        "An AWS resource's environment tag names the environment of the stack that declares it.",
        "mandatory",
        _environment_tag,
    ),
    resource_rule(
        "kms-key-rotation",
        "tagging",
        "Every symmetric KMS key rotates automatically.",
        "mandatory",
        _kms_rotation,
        resource_types=(KMS_KEY,),
        url="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html",
    ),
)
