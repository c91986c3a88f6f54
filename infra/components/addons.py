"""Cluster add-ons through GitOps (issue 17): what the program bootstraps for them.

:class:`ClusterAddons` declares, on the hub, the add-ons' AppProject and one ApplicationSet per
enabled add-on (:mod:`infra.addons` builds both as pure data). The clusters' facts reach those
ApplicationSets through the cluster Secrets' labels and annotations, which
:class:`infra.components.argocd.ClusterRegistration` writes. For each add-on that calls AWS,
:class:`AddonIdentity` is its IAM role and EKS Pod Identity association on each cluster that runs
it (documents in :mod:`infra.documents.addons_iam`); :class:`AddonIdentities` declares them all
before Argo CD, and each cluster Secret waits for its cluster's. Argo CD does the rest: nothing here installs
an add-on itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import addons, naming
from infra.components.argocd import ArgoCdHub, Cluster
from infra.config import StackConfig
from infra.documents import addons_iam

# The program's ClusterAddons component; AddonIdentities' children were its children before.
CLUSTER_ADDONS = "addons"


@dataclass(frozen=True)
class AssumedRoleArgs:
    """A role the add-on's Pod Identity role assumes (External Secrets: one per store), with the
    key that names its Pulumi resources and its documents (:mod:`infra.documents.addons_iam`)."""

    key: str
    role_name: str
    description: str
    trust_policy: Mapping[str, Any]
    policy: Mapping[str, Any]
    # Once per environment, following the hub (infra.addons.store_role_follows_the_hub): declared
    # by AddonIdentities through the account's provider, not by the hub's AddonIdentity.
    follows_hub: bool = False


@dataclass(frozen=True)
class AddonIdentityArgs:
    """One add-on's AWS identity on the cluster of ``region``: the IAM role's name and documents
    (pure data from :mod:`infra.documents.addons_iam`), and the namespace and service account the
    Pod Identity association binds it to."""

    addon: str
    region: str
    namespace: str
    service_account: str
    role_name: str
    description: str
    trust_policy: Mapping[str, Any]
    policy: Mapping[str, Any]
    tags: Mapping[str, str]
    assumed_roles: tuple[AssumedRoleArgs, ...] = ()

    @classmethod
    def from_config(cls, config: StackConfig, region: str, addon: addons.Addon) -> AddonIdentityArgs:
        if addon.service_account is None or addon.policy is None:
            raise ValueError(f"add-on {addon.name} calls no AWS API: it has no Pod Identity role")
        cluster = naming.cluster_name(config.environment, region)
        controller = addons.role_arn(config, region, addon.name)
        stores = addon.store_roles(config, region) if addon.store_roles is not None else []
        return cls(
            addon=addon.name,
            region=region,
            namespace=addon.namespace,
            service_account=addon.service_account,
            role_name=addons.addon_role_name(config, region, addon.name),
            description=f"{addon.name} on {naming.cluster_name(config.environment, region)} (EKS Pod Identity)",
            trust_policy=addons_iam.addon_trust_policy(
                config.account_id, config.environment, region, addon.namespace, addon.service_account
            ),
            policy=addon.policy(config, region),
            tags=naming.base_tags(config.environment, config.tags),
            assumed_roles=tuple(
                AssumedRoleArgs(
                    key=f"store-{store.consumer}",
                    role_name=addons.store_role_name(config, region, store.consumer),
                    description=(
                        f"{addon.name} store {store.store} on the hub: {', '.join(store.namespaces)}"
                        if addons.store_role_follows_the_hub(store.consumer)
                        else f"{addon.name} store {store.store} on {cluster}: {', '.join(store.namespaces)}"
                    ),
                    trust_policy=addons_iam.external_secrets_store_trust_policy(controller),
                    policy=addons_iam.external_secrets_read_policy(list(store.secrets)),
                    follows_hub=addons.store_role_follows_the_hub(store.consumer),
                )
                for store in stores
            ),
        )


@dataclass(frozen=True)
class AddonIdentitiesArgs:
    """Every Pod Identity role and association of the environment's add-ons (one
    :class:`AddonIdentityArgs` per cluster and add-on that calls AWS, :func:`infra.addons.identities`),
    and the clusters they are declared on."""

    clusters: Mapping[str, Cluster]
    identities: tuple[AddonIdentityArgs, ...]
    # The account's provider (infra/providers.py): the roles that follow the hub are declared
    # through it, so a hub move changes neither their URN nor their provider.
    iam_provider: pulumi.ProviderResource | None = None

    @classmethod
    def from_config(
        cls,
        config: StackConfig,
        clusters: Mapping[str, Cluster],
        iam_provider: pulumi.ProviderResource | None = None,
    ) -> AddonIdentitiesArgs:
        return cls(
            clusters=clusters,
            iam_provider=iam_provider,
            identities=tuple(
                AddonIdentityArgs.from_config(config, region, addon)
                for region, addon in addons.identities(config)
            ),
        )


@dataclass(frozen=True)
class ClusterAddonsArgs:
    """What :class:`ClusterAddons` declares, as data computed from the config up front
    (:meth:`from_config`): the ApplicationSet manifests, the AppProject before the API server
    URLs are known, and the plan's per-cluster summary."""

    argocd: ArgoCdHub
    # The stack's regions in order; ``argocd.servers`` lists their API server URLs in this order.
    region_names: tuple[str, ...]
    application_sets: tuple[Mapping[str, Any], ...]
    project: addons.ProjectSpec
    # {region: {add-on: chart version}} (infra.addons.plan_summary).
    summary: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_config(cls, config: StackConfig, argocd: ArgoCdHub) -> ClusterAddonsArgs:
        return cls(
            argocd=argocd,
            region_names=config.region_names,
            application_sets=tuple(addons.application_sets(config)),
            project=addons.project_spec(config),
            summary=addons.plan_summary(config),
        )


def _assumed_role(
    name: str,
    assumed: AssumedRoleArgs,
    tags: Mapping[str, str],
    assumer: aws.iam.Role,
    opts: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role ``assumer`` assumes, and its permission policy. Its trust names ``assumer``, which
    IAM resolves to that role's unique ID: created after it, and replaced with it (a re-created
    role has a new ID; the old trust would name nobody)."""
    role = aws.iam.Role(
        name,
        name=assumed.role_name,
        description=assumed.description,
        assume_role_policy=json.dumps(assumed.trust_policy),
        tags=dict(tags),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(depends_on=[assumer], replace_with=[assumer], delete_before_replace=True),
        ),
    )
    policy = aws.iam.RolePolicy(
        name,
        name=assumed.key,
        role=role.id,
        policy=json.dumps(assumed.policy),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role])),
    )
    return role, policy


class AddonIdentity(pulumi.ComponentResource):
    """One add-on's AWS identity on one cluster: an IAM role whose trust admits only EKS Pod
    Identity for that cluster, the add-on's namespace and service account, its permission
    policy, and the Pod Identity association (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-association.html)."""

    def __init__(
        self,
        name: str,
        args: AddonIdentityArgs,
        cluster: Cluster,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("platform:addons:AddonIdentity", name, None, opts)
        self.region = args.region
        child = pulumi.ResourceOptions(parent=self, provider=cluster.aws_provider)
        self.role = aws.iam.Role(
            name,
            name=args.role_name,
            description=args.description,
            assume_role_policy=json.dumps(args.trust_policy),
            tags=dict(args.tags),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            name,
            name=args.addon,
            role=self.role.id,
            policy=json.dumps(args.policy),
            opts=child,
        )
        # The roles it assumes. Their trust names this role, which IAM resolves to its unique ID:
        # created after it, and replaced with it (a re-created role has a new ID; the old trust
        # would name nobody). The association waits for them: the add-on never starts without.
        self.assumed: dict[str, aws.iam.Role] = {}
        store_policies: list[aws.iam.RolePolicy] = []
        for assumed in (a for a in args.assumed_roles if not a.follows_hub):
            # Named "<add-on>-<key>-<region>": per-region IAM ends with its region (tests/stack/test_dr.py).
            key = f"{args.addon}-{assumed.key}-{args.region}"
            role, policy = _assumed_role(key, assumed, args.tags, self.role, child)
            store_policies.append(policy)
            self.assumed[assumed.key] = role
        self.association = aws.eks.PodIdentityAssociation(
            name,
            cluster_name=cluster.cluster_name,
            namespace=args.namespace,
            service_account=args.service_account,
            role_arn=self.role.arn,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[self.policy, *store_policies])
            ),
        )
        self.register_outputs({"roleArn": self.role.arn})


class AddonIdentities(pulumi.ComponentResource):
    """Every add-on's AWS identity on every cluster that runs it, declared before Argo CD learns
    of any cluster.

    EKS Pod Identity gives a pod credentials only if its association exists when the pod is
    created: "When Amazon EKS starts a new pod that uses a service account with an EKS Pod Identity
    association, the cluster adds" the credential variables and token volume to the pod's manifest
    (EKS user guide, https://docs.aws.amazon.com/eks/latest/userguide/pod-id-how-it-works.html;
    tests/contracts/test_pod_identity_chain.py); a pod created earlier runs without them until it
    is recreated. Argo CD starts an add-on's pods on a cluster as soon as that cluster's Secret
    carries the add-on's label, so :attr:`prerequisites` (per region: the associations and the
    Pod Identity agent) go into
    :class:`infra.components.argocd.ArgoCdHubArgs`, and each cluster Secret waits for them.
    """

    def __init__(
        self, name: str, args: AddonIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:addons:AddonIdentities", name, None, opts)
        # These were ClusterAddons' children until the Secret had to wait for them: the alias
        # keeps their URNs, so existing stacks keep their roles and associations.
        moved = pulumi.ResourceOptions(
            parent=self,
            aliases=[pulumi.Alias(parent=pulumi.create_urn(CLUSTER_ADDONS, "platform:addons:ClusterAddons"))],
        )
        self.identities = {
            f"{identity.addon}-{identity.region}": AddonIdentity(
                f"{identity.addon}-{identity.region}",
                identity,
                args.clusters[identity.region],
                opts=moved,
            )
            for identity in args.identities
        }
        # The roles that follow the hub: one per environment, parented here and declared through
        # the account's provider, so their URN and provider survive a hub move (an in-place update
        # of the trust and policy). Created after the hub's controller role their trust names, and
        # replaced with it (IAM resolves the named role to its unique ID).
        hub_policies: dict[str, list[pulumi.Resource]] = {}
        for spec in args.identities:
            identity = self.identities[f"{spec.addon}-{spec.region}"]
            for assumed in (a for a in spec.assumed_roles if a.follows_hub):
                name_ = f"{spec.addon}-{assumed.key}"
                role, policy = _assumed_role(
                    name_,
                    assumed,
                    spec.tags,
                    identity.role,
                    pulumi.ResourceOptions(parent=self, provider=args.iam_provider),
                )
                identity.assumed[assumed.key] = role
                hub_policies.setdefault(spec.region, []).append(policy)
        self.prerequisites: dict[str, tuple[pulumi.Resource, ...]] = {
            region: (
                cluster.pod_identity_agent,
                *(i.association for i in self.identities.values() if i.region == region),
                *hub_policies.get(region, ()),
            )
            for region, cluster in args.clusters.items()
        }
        self.register_outputs({"roles": {key: i.role.arn for key, i in self.identities.items()}})


class ClusterAddons(pulumi.ComponentResource):
    """The add-on ApplicationSets of one environment, on its hub."""

    def __init__(
        self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("platform:addons:ClusterAddons", name, None, opts)
        argocd = args.argocd
        # The CRDs come with the argo-cd release; a cluster is selected only once its Secret exists,
        # and that Secret waits for the hub's access to the cluster and for the cluster's add-on
        # Pod Identity associations (AddonIdentities, before ArgoCdHub).
        registrations = [r.secret for r in argocd.registrations.values()]
        on_hub = pulumi.ResourceOptions(
            parent=self,
            provider=argocd.k8s_provider,
            depends_on=[argocd.release, *registrations],
        )
        self.application_set_names: list[str] = []
        self.project: k8s.apiextensions.CustomResource | None = None
        sets = args.application_sets
        if sets:
            regions, spec = args.region_names, args.project
            project: pulumi.Output[dict[str, Any]] = argocd.servers.apply(
                lambda servers: spec.manifest(dict(zip(regions, servers, strict=True)))
            )
            self.project = k8s.apiextensions.CustomResource(
                "addons-project",
                api_version=addons.ARGOPROJ_API,
                kind="AppProject",
                metadata=project.apply(lambda m: m["metadata"]),
                spec=project.apply(lambda m: m["spec"]),
                opts=on_hub,
            )
            for manifest in sets:
                set_name = manifest["metadata"]["name"]
                k8s.apiextensions.CustomResource(
                    set_name,
                    api_version=manifest["apiVersion"],
                    kind=manifest["kind"],
                    metadata=dict(manifest["metadata"]),
                    spec=dict(manifest["spec"]),
                    opts=pulumi.ResourceOptions.merge(
                        on_hub, pulumi.ResourceOptions(depends_on=[self.project])
                    ),
                )
                self.application_set_names.append(set_name)
        self.summary = {region: dict(running) for region, running in args.summary.items()}
        self.register_outputs({"applicationSets": self.application_set_names, "clusters": self.summary})
