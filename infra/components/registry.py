"""The container registry of a stack: ECR repositories in every region, replication, keys.

Images are built once, for staging, and prod runs exactly those images. Staging's registry
(``registryRole: source``) holds the stack's one replication configuration, in
``ecr.primaryRegion`` where CI pushes; it copies every repository under ``<prefix>/`` to staging's
other regions and to the prod account in all regions. Prod's registry (``registryRole: replica``)
lets only staging's account replicate into it and grants nothing else, so replication is the
only way an image reaches prod.

Every document (lifecycle policy, replication rules, registry policy, key policy, role policy)
comes from :mod:`infra.documents.ecr`; this module only declares resources.

Encryption: a customer managed KMS key per region, with yearly rotation, rather than the
AWS-managed ``aws/ecr`` key. It gives a key policy we control (prod denies deleting or disabling
it), CloudTrail records of every use, and the same key for the repositories Pulumi creates and
those a creation template creates. Cross-account replication needs nothing from it: ECR
re-encrypts each replicated image with the destination repository's key
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/encryption-at-rest.html). The cost is a
role for the creation templates, which ECR requires for a template with a KMS key or tags
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates-create.html).

Nothing is lost on delete: repositories and keys are ``retain_on_delete`` in every stack, and
protected in prod; no repository sets ``force_delete``, so even a retained-state mistake cannot
delete a repository that still holds images.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import naming
from infra.config import StackConfig
from infra.documents import ecr as docs

TYPE_REGISTRY = "platform:registry:Registry"
TYPE_REGIONAL_REGISTRY = "platform:registry:RegionalRegistry"

# KMS keeps a deleted key for this many days (the maximum) before destroying it; during that
# window a mistaken deletion can still be cancelled.
KEY_DELETION_WINDOW_DAYS = 30


def _stateful_options(config: StackConfig) -> dict[str, Any]:
    """Options of resources whose loss loses images: repositories and their keys.

    Retained everywhere: staging's repositories are the source of every image prod runs and of
    every backfill, and images cost little to keep; a staging ``destroy`` leaves them behind
    (re-adopt with ``pulumi import``). Protected only in prod, so staging can still be torn down
    or rebuilt without editing state, while a prod change that would delete one fails.
    """
    return {"protect": config.is_prod, "retain_on_delete": True}


@dataclass(frozen=True)
class RegionalRegistryArgs:
    config: StackConfig
    region: str
    provider: aws.Provider
    # Only for a replica registry: the role ECR assumes to create a repository from the template.
    template_role_arn: pulumi.Input[str] | None = None
    # service -> resources its repository here must wait for (the source registry's primary
    # region waits for the service's repositories in every other region, see Registry).
    repository_dependencies: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)


class RegionalRegistry(pulumi.ComponentResource):
    """One account's registry in one region: key, repositories, lifecycle, scanning, and (replica)
    the registry policy and the repository creation template."""

    key: aws.kms.Key
    repositories: dict[str, aws.ecr.Repository]
    scanning: aws.ecr.RegistryScanningConfiguration | None
    registry_policy: aws.ecr.RegistryPolicy | None
    template: aws.ecr.RepositoryCreationTemplate | None

    def __init__(self, name: str, args: RegionalRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_REGIONAL_REGISTRY, name, None, opts)
        config, region = args.config, args.region
        tags = naming.base_tags(config.environment, config.tags)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        stateful = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(**_stateful_options(config)))
        lifecycle_json = json.dumps(docs.stack_lifecycle_policy(config), sort_keys=True)

        self.key = aws.kms.Key(
            f"ecr-{region}",
            description=f"Encrypts the {config.environment} ECR repositories under {config.ecr.prefix}/ in {region}",
            enable_key_rotation=True,
            deletion_window_in_days=KEY_DELETION_WINDOW_DAYS,
            policy=json.dumps(docs.kms_key_policy(config.account_id, deny_key_deletion=config.is_prod)),
            tags=tags,
            opts=stateful,
        )
        self.alias = aws.kms.Alias(
            f"ecr-{region}",
            name=naming.ecr_kms_alias(config.environment),
            target_key_id=self.key.key_id,
            opts=child,
        )

        self.repositories = {}
        for service in config.services:
            repository = aws.ecr.Repository(
                f"{service}-{region}",
                name=naming.repository_name(config.ecr.prefix, service),
                # Tags are never moved: the tag a release names is the image that was tested.
                image_tag_mutability="IMMUTABLE",
                # Basic scanning on push; with registry-level enhanced scanning ECR ignores it,
                # and it takes over again if enhanced scanning is ever turned off.
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=self.key.arn)
                ],
                tags=tags,
                opts=pulumi.ResourceOptions.merge(
                    stateful,
                    pulumi.ResourceOptions(depends_on=list(args.repository_dependencies.get(service, ()))),
                ),
            )
            aws.ecr.LifecyclePolicy(
                f"{service}-{region}",
                repository=repository.name,
                policy=lifecycle_json,
                opts=child,
            )
            self.repositories[service] = repository

        # Registry-wide settings: one per account and region, never per repository.
        self.scanning = None
        if config.ecr.scanning == "enhanced":
            self.scanning = aws.ecr.RegistryScanningConfiguration(
                f"scanning-{region}",
                scan_type="ENHANCED",
                rules=[
                    aws.ecr.RegistryScanningConfigurationRuleArgs(
                        scan_frequency=rule["scan_frequency"],
                        repository_filters=[
                            aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(**f)
                            for f in rule["repository_filters"]
                        ],
                    )
                    for rule in docs.enhanced_scanning_rules(config.ecr.prefix)
                ],
                opts=child,
            )

        self.registry_policy = None
        self.template = None
        if not config.builds_images:
            if args.template_role_arn is None:
                raise ValueError("a replica registry needs the repository creation template role")
            # Safety net for a service staging pushes before prod's stack has its repository:
            # replication then creates it from this template, with the same settings.
            self.template = aws.ecr.RepositoryCreationTemplate(
                f"replication-{region}",
                prefix=docs.template_prefix(config.ecr.prefix),
                applied_fors=["REPLICATION"],
                description=f"Repositories replication creates under {config.ecr.prefix}/",
                image_tag_mutability="IMMUTABLE",
                encryption_configurations=[
                    aws.ecr.RepositoryCreationTemplateEncryptionConfigurationArgs(
                        encryption_type="KMS", kms_key=self.key.arn
                    )
                ],
                lifecycle_policy=lifecycle_json,
                custom_role_arn=args.template_role_arn,
                resource_tags=tags,
                opts=child,
            )
            self.registry_policy = aws.ecr.RegistryPolicy(
                f"replication-{region}",
                policy=json.dumps(
                    docs.registry_policy(
                        source_account=config.peer_account_id,
                        account_id=config.account_id,
                        region=region,
                        prefix=config.ecr.prefix,
                        # Granted because the template above gives such repositories our settings.
                        allow_create_repository=self.template is not None,
                    ),
                    sort_keys=True,
                ),
                # Nothing can be replicated into this region before the policy exists (the source
                # account needs it: https://docs.aws.amazon.com/AmazonECR/latest/userguide/registry-permissions-create-replication.html).
                # So the policy comes last: after the template that shapes repositories
                # replication creates, and after every repository this stack declares here, so
                # no image staging pushes while this `pulumi up` runs can make ECR create one of
                # them from the template first (the `up` would then fail with
                # RepositoryAlreadyExistsException).
                opts=pulumi.ResourceOptions.merge(
                    child,
                    pulumi.ResourceOptions(depends_on=[self.template, *self.repositories.values()]),
                ),
            )

        self.register_outputs(
            {
                "keyArn": self.key.arn,
                "repositoryUrls": {s: r.repository_url for s, r in self.repositories.items()},
                "registry": naming.registry_host(config.account_id, region),
            }
        )


@dataclass(frozen=True)
class RegistryArgs:
    config: StackConfig
    providers: Mapping[str, aws.Provider] = field(default_factory=dict)
    # The account's provider (infra.providers.account_provider) for the IAM objects with fixed
    # names: it never follows the hub, so a hub move updates them in place. None: the primary region's.
    iam_provider: aws.Provider | None = None


class Registry(pulumi.ComponentResource):
    """The stack's registry in all its regions, and the account-level pieces created once."""

    regions: dict[str, RegionalRegistry]
    replication: aws.ecr.ReplicationConfiguration | None
    template_role: aws.iam.Role | None
    registries: dict[str, str]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_REGISTRY, name, None, opts)
        config = args.config
        missing = [r for r in config.region_names if r not in args.providers]
        if missing:
            raise ValueError(f"no AWS provider for region(s) {', '.join(missing)}")
        primary = args.providers[config.ecr.primary_region]
        account = args.iam_provider or primary
        tags = naming.base_tags(config.environment, config.tags)

        # Validated before anything is declared: a rule set ECR would refuse stops here.
        rules = docs.replication_rules(config)
        docs.validate_replication(rules, config.account_id, config.ecr.primary_region)

        # Account singleton (IAM is global): the role ECR assumes for the creation templates.
        self.template_role = None
        template_role_arn: pulumi.Output[str] | None = None
        if not config.builds_images:
            self.template_role = aws.iam.Role(
                "ecr-repository-templates",
                name=naming.role_name(config.environment, naming.ECR_TEMPLATE_ROLE_PURPOSE),
                description="Assumed by ECR to create replicated repositories from the creation template",
                assume_role_policy=json.dumps(docs.template_role_trust_policy()),
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, provider=account),
            )
            template_role_arn = self.template_role.arn

        # In the source registry, a service's repository in the primary region (where CI pushes)
        # is created after its repositories in every other region of the stack: ECR replicates
        # within the account to a region whose repository does not exist yet by creating it with
        # its own defaults, and this stack's create of that repository would then fail with
        # RepositoryAlreadyExistsException. So nothing can be pushed before every destination
        # of the same account exists. (Prod's destinations exist first by the bootstrap order:
        # docs/registry.md.) https://docs.aws.amazon.com/AmazonECR/latest/userguide/replication.html
        built: dict[str, RegionalRegistry] = {}
        primary_last = sorted(config.region_names, key=lambda r: r == config.ecr.primary_region)
        for region in primary_last:
            waits: dict[str, list[pulumi.Resource]] = {}
            if config.builds_images and region == config.ecr.primary_region:
                waits = {
                    service: [built[r].repositories[service] for r in built] for service in config.services
                }
            built[region] = RegionalRegistry(
                f"registry-{region}",
                RegionalRegistryArgs(
                    config=config,
                    region=region,
                    provider=args.providers[region],
                    template_role_arn=template_role_arn,
                    repository_dependencies=waits,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.regions = {region: built[region] for region in config.region_names}

        if self.template_role is not None:
            key_arns: Sequence[pulumi.Output[str]] = [r.key.arn for r in self.regions.values()]
            aws.iam.RolePolicy(
                "ecr-repository-templates",
                role=self.template_role.name,
                policy=pulumi.Output.all(*key_arns).apply(
                    lambda arns: json.dumps(
                        docs.template_role_policy(config.account_id, config.ecr.prefix, arns), sort_keys=True
                    )
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=account),
            )

        # Account-and-region singleton: the source registry's one replication configuration.
        self.replication = None
        if rules:
            # Waits for every repository of the stack's other regions: CI pushes to the primary
            # region as soon as its repository exists, so when a region is added to a running
            # stack, a replication rule that reached the new region before its repositories would
            # make ECR create one with its own defaults and this `up` would fail with
            # RepositoryAlreadyExistsException (a service added later is covered by the
            # primary-last order above). Replication to the peer account relies on the bootstrap
            # order (the receiving stack first: docs/registry.md); ECR replicates each push once
            # and does not retry a failed replication.
            same_account_destinations = [
                repository
                for region, registry in self.regions.items()
                if region != config.ecr.primary_region
                for repository in registry.repositories.values()
            ]
            self.replication = aws.ecr.ReplicationConfiguration(
                f"replication-{config.ecr.primary_region}",
                replication_configuration=aws.ecr.ReplicationConfigurationReplicationConfigurationArgs(
                    rules=[
                        aws.ecr.ReplicationConfigurationReplicationConfigurationRuleArgs(
                            destinations=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleDestinationArgs(
                                    **d
                                )
                                for d in rule["destinations"]
                            ],
                            repository_filters=[
                                aws.ecr.ReplicationConfigurationReplicationConfigurationRuleRepositoryFilterArgs(
                                    **f
                                )
                                for f in rule["repository_filters"]
                            ],
                        )
                        for rule in rules
                    ]
                ),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=primary, depends_on=same_account_destinations
                ),
            )

        self.registries = docs.registries(config)
        self.register_outputs(
            {
                "registries": self.registries,
                "replicationDestinations": [
                    f"{d.registry_id}/{d.region}" for d in docs.replication_destinations(config)
                ],
            }
        )
