"""GitHub Actions OIDC: the account's provider and the roles CI assumes (issue 5).

The decisions (which roles, which subjects, which permissions) are pure functions in
:mod:`infra.documents.iam` and :mod:`infra.manifests.rbac`; this module only declares them:

* :class:`GitHubOidc` - the account's one ``token.actions.githubusercontent.com`` provider (or
  the ARN of an existing one) and one :class:`GitHubRole` per role spec;
* :class:`GitHubRole` - an IAM role, its trust, its permissions and, for the deploy and verify
  roles, its :class:`HubApplicationAccess`;
* :class:`HubApplicationAccess` - an EKS access entry on the hub mapping the role to a
  Kubernetes group, and the Role/RoleBinding that group gets in the Argo CD namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import naming
from infra.components.cluster import bound_to_principal
from infra.config import StackConfig
from infra.documents import iam
from infra.manifests import rbac


class HubCluster(Protocol):
    """What this module needs of the hub's cluster (infra.components.cluster.RegionalCluster)."""

    @property
    def cluster_name(self) -> pulumi.Output[str]: ...

    @property
    def k8s_provider(self) -> k8s.Provider: ...

    @property
    def aws_provider(self) -> aws.Provider: ...


# ---------------------------------------------------------------------------------------------
# Hub access: EKS access entry + namespaced RBAC
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubApplicationAccessArgs:
    principal_arn: pulumi.Input[str]
    # The role resource behind principal_arn: its replacement replaces the access entry.
    principal: pulumi.Resource
    spec: iam.HubAccessSpec
    hub: HubCluster
    tags: dict[str, str]
    # The Argo CD namespace (or anything that must exist before the Role): the Role lives there.
    namespace_dependency: pulumi.Resource | None = None
    namespace: str = naming.ARGOCD_NAMESPACE


class HubApplicationAccess(pulumi.ComponentResource):
    """One IAM role's access to the Argo CD Applications on the hub, and nothing else."""

    def __init__(
        self, name: str, args: HubApplicationAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:github:HubApplicationAccess", name, None, opts)
        spec = args.spec
        # STANDARD with a group and no access policy: the role gets exactly what the group's
        # RBAC grants. https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
        self.access_entry = aws.eks.AccessEntry(
            name,
            cluster_name=args.hub.cluster_name,
            principal_arn=args.principal_arn,
            type="STANDARD",
            kubernetes_groups=[spec.kubernetes_group],
            tags=args.tags,
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self, provider=args.hub.aws_provider),
                bound_to_principal(args.principal),
            ),
        )
        role_doc = rbac.role(spec.kubernetes_role, spec.verbs, args.namespace)
        binding_doc = rbac.role_binding(spec.kubernetes_role, spec.kubernetes_group, args.namespace)
        k8s_opts = pulumi.ResourceOptions(
            parent=self,
            provider=args.hub.k8s_provider,
            depends_on=[args.namespace_dependency] if args.namespace_dependency is not None else [],
        )
        self.role = k8s.rbac.v1.Role(
            name,
            metadata=_metadata(role_doc),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=rule["apiGroups"], resources=rule["resources"], verbs=rule["verbs"]
                )
                for rule in role_doc["rules"]
            ],
            opts=k8s_opts,
        )
        ref = binding_doc["roleRef"]
        self.role_binding = k8s.rbac.v1.RoleBinding(
            name,
            metadata=_metadata(binding_doc),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=ref["apiGroup"], kind=ref["kind"], name=ref["name"]),
            subjects=[
                k8s.rbac.v1.SubjectArgs(api_group=s["apiGroup"], kind=s["kind"], name=s["name"])
                for s in binding_doc["subjects"]
            ],
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[self.role])),
        )
        self.register_outputs(
            {
                "accessEntryArn": self.access_entry.access_entry_arn,
                "kubernetesGroup": spec.kubernetes_group,
                "role": spec.kubernetes_role,
            }
        )


def _metadata(doc: dict[str, object]) -> k8s.meta.v1.ObjectMetaArgs:
    meta = doc["metadata"]
    assert isinstance(meta, dict)
    return k8s.meta.v1.ObjectMetaArgs(name=meta["name"], namespace=meta["namespace"])


# ---------------------------------------------------------------------------------------------
# One role
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHubRoleArgs:
    config: StackConfig
    spec: iam.RoleSpec
    provider_arn: pulumi.Input[str]
    iam_provider: aws.Provider
    hub: HubCluster | None = None
    argocd_namespace: pulumi.Resource | None = None
    ecr_kms_key_arn: pulumi.Input[str] | None = None
    # What must exist before the role can be assumed: the repository's subject template and the
    # protection of the environments its trust names (infra.components.github_repository).
    trust_prerequisites: tuple[pulumi.Resource, ...] = ()


class GitHubRole(pulumi.ComponentResource):
    """An IAM role one kind of GitHub workflow assumes, with its trust and permissions."""

    def __init__(self, name: str, args: GitHubRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:github:GitHubRole", name, None, opts)
        config, spec = args.config, args.spec
        self.spec = spec
        self._name = name
        tags = naming.base_tags(config.environment, config.tags)
        child = pulumi.ResourceOptions(parent=self, provider=args.iam_provider)

        self.boundary: aws.iam.Policy | None = None
        if spec.permissions_boundary:
            self.boundary = aws.iam.Policy(
                f"{name}-boundary",
                name=iam.boundary_policy_name(config.environment),
                description=f"Permissions boundary of {spec.role_name}",
                policy=json.dumps(iam.up_boundary_policy(config.account_id, config.environment)),
                tags=tags,
                opts=child,
            )

        trust = pulumi.Output.from_input(args.provider_arn).apply(
            lambda arn: json.dumps(iam.trust_policy(arn, spec.subjects, sid=_sid(spec.purpose)))
        )
        self.role = aws.iam.Role(
            name,
            name=spec.role_name,
            description=spec.description,
            assume_role_policy=trust,
            max_session_duration=spec.max_session_seconds,
            permissions_boundary=self.boundary.arn if self.boundary is not None else None,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=list(args.trust_prerequisites))
            ),
        )
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{arn.rsplit('/', 1)[-1]}",
                role=self.role.name,
                policy_arn=arn,
                opts=child,
            )
            for arn in spec.managed_policy_arns
        ]

        hub_cluster_name: pulumi.Input[str] = (
            args.hub.cluster_name
            if args.hub is not None
            else naming.cluster_name(config.environment, config.hub_region)
        )
        self.inline: aws.iam.RolePolicy | None = None
        if spec.has_inline_policy:
            document = pulumi.Output.all(
                pulumi.Output.from_input(hub_cluster_name),
                pulumi.Output.from_input(args.ecr_kms_key_arn),
            ).apply(
                lambda v: json.dumps(
                    iam.inline_policy(spec, iam.policy_context(config, str(v[0]), v[1] or None))
                )
            )
            self.inline = aws.iam.RolePolicy(
                name,
                name=f"{spec.role_name}-permissions",
                role=self.role.name,
                policy=document,
                opts=child,
            )

        self._tags = tags
        self.hub_access: HubApplicationAccess | None = None
        if args.hub is not None:
            self.grant_hub_access(args.hub, args.argocd_namespace)

        self.arn = self.role.arn
        self.register_outputs({"arn": self.role.arn, "name": self.role.name, "subjects": list(spec.subjects)})

    def grant_hub_access(self, hub: HubCluster, namespace: pulumi.Resource | None) -> None:
        """The role's access entry and RBAC on the hub, for a role whose spec has hub access.

        Separate from the constructor so the roles can exist before the clusters (the ``up``
        role's own access entry on the hub needs the role) while these Roles wait for Argo CD's
        namespace.
        """
        if self.spec.hub_access is None or self.hub_access is not None:
            return
        self.hub_access = HubApplicationAccess(
            self._name,
            HubApplicationAccessArgs(
                principal_arn=self.role.arn,
                principal=self.role,
                spec=self.spec.hub_access,
                hub=hub,
                tags=self._tags,
                namespace_dependency=namespace,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _sid(purpose: str) -> str:
    return "GitHubActions" + purpose.capitalize()


# ---------------------------------------------------------------------------------------------
# The provider and every role
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHubOidcArgs:
    config: StackConfig
    # IAM is global: the account's provider (infra.providers.account_provider, which never follows
    # the hub) declares the account's IAM objects, once.
    iam_provider: aws.Provider
    # The hub cluster; without it the deploy/verify roles get their IAM part only until
    # GitHubOidc.grant_hub_access (the program declares the roles before the clusters, since
    # the up role's access entry on the hub needs the role, and grants hub access after Argo CD).
    hub: HubCluster | None = None
    # The Argo CD namespace resource, so the deploy/verify Roles are created after it.
    argocd_namespace: pulumi.Resource | None = None
    # The CMK of the repositories CI pushes to (primary region), when they use one.
    ecr_kms_key_arn: pulumi.Input[str] | None = None
    # Created before every role: see GitHubRoleArgs.trust_prerequisites.
    trust_prerequisites: tuple[pulumi.Resource, ...] = ()


class GitHubOidc(pulumi.ComponentResource):
    """The account's GitHub OIDC provider and the roles GitHub Actions assumes through it."""

    def __init__(self, name: str, args: GitHubOidcArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:github:GitHubOidc", name, None, opts)
        config = args.config
        specs = iam.role_specs(config)
        existing = iam.existing_provider_arn(config)

        self.provider: aws.iam.OpenIdConnectProvider | None = None
        if existing is not None:
            # An account has one provider per URL; another stack or a bootstrap already made it.
            self.provider_arn: pulumi.Output[str] = pulumi.Output.from_input(existing)
        else:
            self.provider = aws.iam.OpenIdConnectProvider(
                name,
                url=iam.GITHUB_OIDC_URL,
                client_id_lists=[iam.STS_AUDIENCE],
                # No thumbprint: IAM validates GitHub's certificate against its own trusted CAs.
                # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_create_oidc_verify-thumbprint.html
                tags=naming.base_tags(config.environment, config.tags),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.iam_provider,
                    # Every CI credential in prod's account hangs off this one object.
                    protect=config.is_prod,
                ),
            )
            self.provider_arn = self.provider.arn

        self.roles: dict[str, GitHubRole] = {
            spec.purpose: GitHubRole(
                f"{name}-{spec.purpose}",
                GitHubRoleArgs(
                    config=config,
                    spec=spec,
                    provider_arn=self.provider_arn,
                    iam_provider=args.iam_provider,
                    hub=args.hub,
                    argocd_namespace=args.argocd_namespace,
                    ecr_kms_key_arn=args.ecr_kms_key_arn,
                    trust_prerequisites=args.trust_prerequisites,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for spec in specs
        }
        self.up_role_arn: pulumi.Output[str] = self.roles[iam.UP].arn
        self.up_role: aws.iam.Role = self.roles[iam.UP].role
        self.role_arns: pulumi.Output[dict[str, str]] = pulumi.Output.all(
            **{purpose: role.arn for purpose, role in self.roles.items()}
        )
        self.register_outputs({"providerArn": self.provider_arn, "roleArns": self.role_arns})

    def grant_hub_access(self, hub: HubCluster, argocd_namespace: pulumi.Resource) -> None:
        """Declare the deploy/verify roles' access to the hub's Applications, once Argo CD's
        namespace exists (a no-op for roles without hub access or already granted)."""
        for role in self.roles.values():
            role.grant_hub_access(hub, argocd_namespace)
