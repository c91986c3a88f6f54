"""The program: config → providers → components → outputs.

:func:`run` is what ``pulumi up`` runs (through ``infra/__main__.py``) and what the offline plan
runs under mocks. It declares nothing at import time; it creates resources only here, never
inside an ``apply``. Each section is one concept with its own component.
"""

from __future__ import annotations

from typing import Any

from infra import naming, placeholders, providers, stackset
from infra.components import hub_readers
from infra.components.addons import (
    CLUSTER_ADDONS,
    AddonIdentities,
    AddonIdentitiesArgs,
    ClusterAddons,
    ClusterAddonsArgs,
)
from infra.components.applicationset import ApplicationSet, ApplicationSetArgs
from infra.components.argocd import ArgoCdHub, ArgoCdHubArgs
from infra.components.cluster import RegionalCluster, build_clusters, cluster_outputs
from infra.components.github import GitHubOidc, GitHubOidcArgs
from infra.components.github_repository import (
    GitHubRepository,
    GitHubRepositoryArgs,
    owns_repository_settings,
)
from infra.components.image_updater import ImageUpdater, ImageUpdaterArgs
from infra.components.registry import Registry, RegistryArgs
from infra.components.runner import HubRunner, HubRunnerArgs
from infra.components.traffic import build_traffic
from infra.config import StackConfig


def run(config: StackConfig) -> dict[str, Any]:
    # The example's placeholders never reach AWS or GitHub: refused here in a real run, before
    # anything is declared; the offline plan lists them (infra.plan).
    placeholders.check(config)
    aws = providers.aws_providers(config)
    # IAM's objects with fixed names, through a provider that never follows the hub (providers.py).
    account = providers.account_provider(config)
    outputs: dict[str, Any] = {
        naming.OUTPUT_ENVIRONMENT: config.environment,
        naming.OUTPUT_HUB_REGION: config.hub_region,
    }
    # -- registry (issue 4) -------------------------------------------------------------------
    registries = Registry("registry", RegistryArgs(config=config, providers=aws, iam_provider=account))
    outputs[naming.OUTPUT_REGISTRIES] = registries.registries
    # The checkout's stack files: prod declares the other stacks' environments; a source stack's
    # hub admits the runners of the stacks whose deploy reads it.
    stacks = tuple(stackset.load().values())
    # -- github oidc (issue 5) ----------------------------------------------------------------
    # Before the clusters: the up role's access entry on the hub (what up.yml's `pulumi up`
    # authenticates as) needs the role, and the hub's Kubernetes provider waits for that entry.
    # The repository's subject template and protected environments exist before any role that
    # trusts them (issue 15): GitHub would otherwise create an environment, unprotected, the
    # first time a workflow names it.
    repository = (
        GitHubRepository(
            "repository",
            # The other stacks' up environments hold their Pulumi tokens: declared here too.
            GitHubRepositoryArgs(config=config, others=stacks),
        )
        if owns_repository_settings(config)
        else None
    )
    github = GitHubOidc(
        "github",
        GitHubOidcArgs(
            config=config,
            iam_provider=account,
            ecr_kms_key_arn=registries.regions[config.ecr.primary_region].key.arn,
            trust_prerequisites=tuple(repository.protection) if repository is not None else (),
        ),
    )
    if repository is not None:
        repository.publish_role_arns(config, {p: r.arn for p, r in github.roles.items()})
    outputs[naming.OUTPUT_GITHUB_ROLES] = github.role_arns
    # -- clusters (issue 3) -------------------------------------------------------------------
    # prod's deploy reads staging's hub from prod's runner: staging's hub admits prod's hub NAT
    # addresses, read from prod's stack output (infra/components/hub_readers.py).
    readers_egress = hub_readers.reader_egress_cidrs(stackset.deploy_readers(config, stacks))
    clusters: dict[str, RegionalCluster] = build_clusters(
        config, aws, up_role=github.up_role, hub_readers_egress=readers_egress
    )
    outputs.update(cluster_outputs(clusters))
    outputs[naming.OUTPUT_HUB_EGRESS_CIDRS] = clusters[config.hub_region].network.egress_cidrs
    # -- ci runners (issue 15): the jobs that talk to the hub's API run inside its VPC ----------
    HubRunner("runner", HubRunnerArgs(config=config, hub=clusters[config.hub_region], iam_provider=account))
    # -- argo cd (issue 6) --------------------------------------------------------------------
    # -- the way in (issue 18): certificates, health checks, web ACLs; their facts go into the
    # cluster Secrets, so they come before Argo CD ----------------------------------------------
    traffic = build_traffic(config, aws, account)
    # -- the add-ons' AWS identities (issue 17): before any cluster Secret, whose labels let Argo
    # CD start the add-ons' pods, which get Pod Identity credentials only if their association
    # exists when they are created ---------------------------------------------------------------
    identities = AddonIdentities(
        "addon-identities", AddonIdentitiesArgs.from_config(config, clusters, iam_provider=account)
    )
    argocd = ArgoCdHub(
        "argocd",
        ArgoCdHubArgs(
            config=config,
            clusters=clusters,
            iam_provider=account,
            traffic=traffic,
            cluster_prerequisites=identities.prerequisites,
        ),
    )
    ImageUpdater(
        "image-updater",
        ImageUpdaterArgs(config=config, hub=clusters[config.hub_region], argocd=argocd, iam_provider=account),
    )
    applications = ApplicationSet("applications", ApplicationSetArgs.from_config(config, argocd))
    outputs[naming.OUTPUT_ARGOCD] = {**argocd.output, "applicationSet": applications.application_set_name}
    # -- cluster add-ons through GitOps (issue 17) ----------------------------------------------
    cluster_addons = ClusterAddons(CLUSTER_ADDONS, ClusterAddonsArgs.from_config(config, argocd))
    outputs[naming.OUTPUT_ADDONS] = cluster_addons.summary
    # The deploy/verify Roles live in Argo CD's namespace: declared after it.
    github.grant_hub_access(clusters[config.hub_region], argocd.namespace)
    return outputs
