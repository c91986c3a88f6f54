"""What External Secrets Operator and the Cluster Autoscaler do with what the program gives them
(issue 17), at the pinned versions: ESO chart 2.9.0 / app v2.9.0, Cluster Autoscaler chart
9.59.0 / app 1.35.0. Each test applies one transcribed upstream rule (tests/contracts/addon_rules.py)
to the program's pure functions, the real chart rendered with ``helm template`` (where ``../shared``
and helm exist) or the offline plan, and shows with an altered input that the rule bites.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from infra import addons, naming, offline
from infra.config import StackConfig, load_stack_file
from infra.documents import addons_iam
from tests.addons_support import (
    addon_crd_errors,
    chart_package,
    cluster_generator,
    cluster_secrets,
    helm_template,
)
from tests.argocd_support import (
    generated_applications,
    helm_template_application,
    image_updater_parameters,
    rendered_objects,
    with_parameters,
)
from tests.conftest import ROOT, stack_names
from tests.contracts import addon_rules as rules

STACKS = stack_names()
ESO = "external-secrets"
CA = addons.CLUSTER_AUTOSCALER
TAG = "20261122.063000-0123abc"


def addon_applications(config: StackConfig, addon: str) -> list[dict[str, Any]]:
    """Every Application the add-on's ApplicationSets generate from the cluster Secrets."""
    secrets = list(cluster_secrets(config).values())
    return [
        app
        for s in addons.application_sets(config)
        if s["metadata"]["labels"][addons.LABEL_ADDON] == addon
        for app in cluster_generator(s, secrets)
    ]


def region_of(app: dict[str, Any]) -> str:
    return str(app["metadata"]["labels"][naming.LABEL_REGION])


def render(config: StackConfig, app: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    source = app["spec"]["source"]
    package = chart_package(source["chart"], source["targetRevision"])
    kube = config.region(region_of(app)).kubernetes_version + ".0"
    return helm_template(app, package, tmp_path, kube)


def stores_of(app: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        dict(o)
        for o in app["spec"]["source"]["helm"]["valuesObject"]["extraObjects"]
        if o["kind"] == "ClusterSecretStore"
    ]


def eso_configs() -> list[StackConfig]:
    return [c for c in (load_stack_file(s) for s in STACKS) if c.addon_regions(ESO)]


def ca_configs() -> list[StackConfig]:
    return [c for c in (load_stack_file(s) for s in STACKS) if c.addon_regions(CA)]


# --- External Secrets Operator ---------------------------------------------------------------------


@pytest.mark.parametrize("config", eso_configs(), ids=lambda c: c.stack)
def test_the_store_reads_with_the_controllers_pod_identity(
    config: StackConfig, tmp_path: Path, shared_dir: Path
) -> None:
    """external-secrets v2.9.0 providers/v1/aws/auth/auth.go: a provider with no ``auth`` block
    loads the AWS SDK's default chain, then assumes the store's ``role``; aws-sdk-go-v2 config
    resolve_credentials.go: in a container with no static keys and no web identity token (IRSA),
    that chain reads ``AWS_CONTAINER_CREDENTIALS_FULL_URI``, which EKS sets on the pods of a
    service account with a Pod Identity association (EKS user guide, "How EKS Pod Identity Agent
    works with a Pod"). The controller of the real chart, with the program's values, runs as the
    service account the association names and carries nothing earlier in the chain."""
    association = (addons.EXTERNAL_SECRETS_NAMESPACE, addons.EXTERNAL_SECRETS_SERVICE_ACCOUNT)
    assert association == (addons.CATALOG[ESO].namespace, addons.CATALOG[ESO].service_account)
    apps = addon_applications(config, ESO)
    for app in apps:
        region = region_of(app)
        roles = {
            s.store: addons.store_role_arn(config, region, s.consumer)
            for s in addons.store_roles(config, region)
        }
        for store in stores_of(app):
            provider = store["spec"]["provider"]["aws"]
            expected = ("default-chain", (roles[store["metadata"]["name"]],))
            assert rules.eso_aws_credentials(provider) == expected, region
    # The controller's pod does not depend on the cluster (the values differ only in
    # extraObjects): one render of the ~20 s chart suffices.
    objects = render(config, apps[0], tmp_path)
    (controller,) = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["spec"]["template"]["spec"].get("serviceAccountName") == association[1]
    ]
    assert controller["metadata"]["namespace"] == association[0]
    (account,) = [
        o for o in objects if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == association[1]
    ]
    assert rules.IRSA_ANNOTATION not in (account["metadata"].get("annotations") or {})
    for container in controller["spec"]["template"]["spec"]["containers"]:
        own = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
        assert rules.aws_sdk_go_v2_default_chain({**own, **rules.EKS_POD_IDENTITY_ENV}) == "container"
    # The rule bites: an auth block, or a role to assume, replaces the pod's own identity.
    with_keys = {**provider, "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "k", "key": "id"}}}}
    assert rules.eso_aws_credentials(with_keys)[0] == "secretRef"
    assert rules.eso_aws_credentials({k: v for k, v in provider.items() if k != "role"})[1] == ()
    irsa = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}
    assert rules.aws_sdk_go_v2_default_chain({**irsa, **rules.EKS_POD_IDENTITY_ENV}) == "web-identity"


@pytest.mark.parametrize("config", eso_configs(), ids=lambda c: c.stack)
def test_each_clusters_store_is_valid_for_the_pinned_crd(config: StackConfig, shared_dir: Path) -> None:
    """The ClusterSecretStore the chart's ``extraObjects`` create, as the ApplicationSet generates
    it for each cluster, validates against the external-secrets 2.9.0 CRD
    (../shared/crds/external-secrets), reads Secrets Manager of that cluster's own region (the
    region the Pod Identity role may read in) and is usable only from the namespaces named."""
    for app in addon_applications(config, ESO):
        region = region_of(app)
        expected = {s.store: s for s in addons.store_roles(config, region)}
        stores = stores_of(app)
        assert sorted(s["metadata"]["name"] for s in stores) == sorted(expected), region
        for store in stores:
            assert addon_crd_errors(store) == [], region
            provider = store["spec"]["provider"]["aws"]
            assert (provider["service"], provider["region"]) == ("SecretsManager", region)
            namespaces = {n for c in store["spec"]["conditions"] for n in c["namespaces"]}
            assert namespaces == set(expected[store["metadata"]["name"]].namespaces), region
    broken = copy.deepcopy(store)
    broken["spec"]["provider"]["aws"]["auth"] = {"podIdentity": {}}
    assert addon_crd_errors(broken)


def shop_external_secrets(config: StackConfig, region: str) -> list[dict[str, Any]]:
    app = with_parameters(
        generated_applications(config)[region], image_updater_parameters(config, region, TAG)
    )
    kube = config.region(region).kubernetes_version
    objects = rendered_objects(helm_template_application(app, ROOT, kube))
    return [o for o in objects if o["kind"] == "ExternalSecret"]


@pytest.mark.parametrize("config", eso_configs(), ids=lambda c: c.stack)
def test_the_role_allows_exactly_the_calls_the_external_secrets_make(config: StackConfig) -> None:
    """external-secrets v2.9.0 providers/v1/aws/secretsmanager/secretsmanager.go: a ``remoteRef``
    or ``dataFrom.extract`` without ``metadataPolicy: Fetch`` is one GetSecretValue;
    DescribeSecret only fetches tags (``Fetch``), ListSecrets/BatchGetSecretValue only serve
    ``dataFrom.find``. Every ExternalSecret the platform renders (the shop chart's per service,
    Argo CD's repository credentials on the hub) needs exactly the role's actions, no more."""
    for region in config.addon_regions(ESO):
        calls = {addons.SECRET_STORE: set[str](), addons.ARGOCD_SECRET_STORE: set[str]()}
        for external in shop_external_secrets(config, region):
            calls[external["spec"]["secretStoreRef"]["name"]] |= rules.eso_secretsmanager_calls(
                external["spec"]
            )
        if region == config.hub_region:
            external = addons.repo_creds_external_secret(config)
            calls[external["spec"]["secretStoreRef"]["name"]] |= rules.eso_secretsmanager_calls(
                external["spec"]
            )
        for store in addons.store_roles(config, region):
            (statement,) = addons_iam.external_secrets_read_policy(list(store.secrets))["Statement"]
            assert set(statement["Action"]) == calls[store.store], (region, store.store)
    # The rule bites: an ExternalSecret that fetches a secret's tags would need DescribeSecret.
    fetch = {"data": [{"secretKey": "k", "remoteRef": {"key": "platform/x", "metadataPolicy": "Fetch"}}]}
    assert rules.eso_secretsmanager_calls(fetch) == {"secretsmanager:DescribeSecret"}


@pytest.mark.parametrize("config", eso_configs(), ids=lambda c: c.stack)
def test_each_store_serves_only_its_consumers_namespace(config: StackConfig) -> None:
    """external-secrets v2.9.0 pkg/controllers/secretstore/client_manager.go
    ``shouldProcessSecret``: a ClusterSecretStore with ``conditions`` serves only the namespaces
    they name. The application's namespace cannot use Argo CD's store (repository credentials,
    notifications keys) and Argo CD's namespace cannot use the application's; every ExternalSecret
    the platform renders names a store its namespace may use."""
    for app in addon_applications(config, ESO):
        region = region_of(app)
        stores = {s["metadata"]["name"]: s for s in stores_of(app)}
        app_store = stores[addons.SECRET_STORE]
        assert rules.eso_store_usable_from(app_store, config.application.namespace)
        assert not rules.eso_store_usable_from(app_store, naming.ARGOCD_NAMESPACE), region
        if region == config.hub_region:
            argocd_store = stores[addons.ARGOCD_SECRET_STORE]
            assert rules.eso_store_usable_from(argocd_store, naming.ARGOCD_NAMESPACE)
            assert not rules.eso_store_usable_from(argocd_store, config.application.namespace)
            externals = [
                o
                for o in app["spec"]["source"]["helm"]["valuesObject"]["extraObjects"]
                if o["kind"] == "ExternalSecret"
            ]
            for external in externals:
                store = stores[external["spec"]["secretStoreRef"]["name"]]
                assert rules.eso_store_usable_from(store, external["metadata"]["namespace"])
        else:
            assert set(stores) == {addons.SECRET_STORE}
        for external in shop_external_secrets(config, region):
            store = stores[external["spec"]["secretStoreRef"]["name"]]
            assert rules.eso_store_usable_from(store, config.application.namespace)
    # The rule bites: without conditions a ClusterSecretStore serves every namespace.
    open_store = {**app_store, "spec": {k: v for k, v in app_store["spec"].items() if k != "conditions"}}
    assert rules.eso_store_usable_from(open_store, naming.ARGOCD_NAMESPACE)


@pytest.mark.parametrize("config", eso_configs(), ids=lambda c: c.stack)
def test_only_the_clusters_controller_may_assume_each_stores_role(config: StackConfig) -> None:
    """EKS user guide, pod-id-abac.html: Pod Identity session tags are transitive, so the
    controller's AssumeRole into a store's role (external-secrets v2.9.0 auth.go, ``role``) also
    needs sts:TagSession (tests/contracts/upstream.py CHAINED_ASSUME_ROLE_FROM_POD_IDENTITY). Each
    store role's trust admits both calls from its cluster's controller role only; the controller's
    identity policy allows them on exactly its cluster's store roles, and reads no secret."""
    from tests.contracts import upstream

    for region in config.addon_regions(ESO):
        controller = addons.role_arn(config, region, ESO)
        policy = addons.CATALOG[ESO].policy
        assert policy is not None
        (statement,) = policy(config, region)["Statement"]
        assert set(statement["Action"]) == set(upstream.CHAINED_ASSUME_ROLE_FROM_POD_IDENTITY)
        stores = addons.store_roles(config, region)
        assert statement["Resource"] == sorted(
            addons.store_role_arn(config, region, s.consumer) for s in stores
        )
        others = [addons.role_arn(config, r, ESO) for r in config.addon_regions(ESO) if r != region]
        others += [
            addons.role_arn(config, region, a.name)
            for r, a in addons.identities(config)
            if a.name != ESO and r == region
        ]
        for store in stores:
            trust = addons_iam.external_secrets_store_trust_policy(controller)
            for action in upstream.CHAINED_ASSUME_ROLE_FROM_POD_IDENTITY:
                assert rules.iam_trust_admits(trust, controller, action), (region, store.store, action)
                assert not [o for o in others if rules.iam_trust_admits(trust, o, action)], (
                    region,
                    store.store,
                )
    # The rule bites: a trust with sts:AssumeRole alone refuses the tagged session.
    bare = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": controller}, "Action": "sts:AssumeRole"}]}
    assert not rules.iam_trust_admits(bare, controller, "sts:TagSession")


# Sprig functions Argo CD v3.4.4 removes from the ApplicationSet templates' function map
# (applicationset/utils/utils.go ``init``: delete env, expandenv, getHostByName; GoTemplate.md:
# "The Sprig function library (except for env, expandenv and getHostByName) is available").
ARGOCD_REMOVED_SPRIG = frozenset({"env", "expandenv", "getHostByName"})
# Sprig v3's ``fail`` (functions.go genericMap) and Go's builtins ``if``/``not``/``index``/``end``.
_FUNCTIONS = re.compile(r"\{\{\s*(?:if\s+not\s+\()?\s*([A-Za-z]+)")


def test_the_annotation_check_uses_functions_argo_cd_keeps() -> None:
    """argo-cd v3.4.4 applicationset/utils/utils.go: the templates get Sprig's generic function
    map minus env, expandenv and getHostByName, so Sprig's ``fail`` (which the add-ons'
    annotation check calls, infra/addons.py ``annotation``) is there."""
    used = set(_FUNCTIONS.findall(addons.annotation("k")))
    assert used == {"index", "fail", "end"}
    assert not used & ARGOCD_REMOVED_SPRIG
    # The rule bites: a template calling a removed function would be refused.
    assert set(_FUNCTIONS.findall('{{ env "HOME" }}')) & ARGOCD_REMOVED_SPRIG


# --- Cluster Autoscaler -----------------------------------------------------------------------------


def ca_discovery(objects: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [a for a in container.get("command", []) + container.get("args", []) if "auto-discovery" in a]
    (arg,) = args
    return rules.ca_parse_auto_discovery(arg.strip())


@pytest.mark.parametrize("config", ca_configs(), ids=lambda c: c.stack)
def test_auto_discovery_finds_exactly_its_clusters_managed_node_group(
    config: StackConfig, tmp_path: Path, shared_dir: Path
) -> None:
    """cluster-autoscaler chart 9.59.0 templates/deployment.yaml renders
    ``--node-group-auto-discovery=asg:tag=<autoDiscovery.tags>`` (default: the ``enabled`` and
    ``<clusterName>`` keys); CA 1.35.0 ``parseASGAutoDiscoverySpec``/``getAutoscalingGroupsByTags``
    match key-only tags by presence. EKS tags each managed node group's ASG with both keys
    (EKS user guide, managed-node-groups.adoc): each cluster's autoscaler finds its own node
    group and no other cluster's."""
    for app in addon_applications(config, CA):
        region = region_of(app)
        spec = ca_discovery(render(config, app, tmp_path))
        assert set(spec.values()) == {""}, spec  # keys only: EKS's values do not matter
        for other in config.region_names:
            tags = dict.fromkeys(
                rules.eks_managed_node_group_asg_tag_keys(naming.cluster_name(config.environment, other)), "x"
            )
            assert rules.ca_discovers(spec, tags) == (other == region), (region, other)
        # The rule bites: the node group's own tags never reach the ASG, only EKS's do.
        assert not rules.ca_discovers(spec, {"platform:environment": config.environment})


@pytest.mark.parametrize("config", ca_configs(), ids=lambda c: c.stack)
def test_the_role_scales_only_the_groups_its_cluster_discovers(config: StackConfig) -> None:
    """The two writes (SetDesiredCapacity, TerminateInstanceInAutoScalingGroup: the README's
    "second block of actions", restricted "using tag based conditionals") are allowed on an ASG
    carrying ``k8s.io/cluster-autoscaler/<this cluster>`` (a ``Null`` condition: any value) in
    the cluster's region and account, and on no other cluster's group."""
    for region in config.addon_regions(CA):
        policy = addons_iam.cluster_autoscaler_policy(config.account_id, region, config.environment)
        (scale,) = [s for s in policy["Statement"] if "Condition" in s]
        asg = f"arn:aws:autoscaling:{region}:{config.account_id}:autoScalingGroup:1a2b:autoScalingGroupName/eks-nodes-1a2b"
        for owner in {naming.cluster_name(config.environment, r) for r in config.region_names} | {
            "someone-else"
        }:
            context = {
                f"aws:ResourceTag/{k}": "owned" for k in rules.eks_managed_node_group_asg_tag_keys(owner)
            }
            mine = owner == naming.cluster_name(config.environment, region)
            for action in rules.CLUSTER_AUTOSCALER_WRITES:
                assert rules.iam_statement_allows(scale, action, asg, context) == mine, (region, owner)
        other_region = asg.replace(f":{region}:", ":mars-east-1:")
        own = {
            f"aws:ResourceTag/{k}": ""
            for k in rules.eks_managed_node_group_asg_tag_keys(
                naming.cluster_name(config.environment, region)
            )
        }
        assert not rules.iam_statement_allows(scale, "autoscaling:SetDesiredCapacity", other_region, own)
        assert not any(
            s is not scale
            and set(rules.CLUSTER_AUTOSCALER_WRITES)
            & set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            for s in policy["Statement"]
        )


@pytest.mark.parametrize("config", ca_configs(), ids=lambda c: c.stack)
def test_the_policy_grants_exactly_the_calls_the_autoscaler_makes(config: StackConfig) -> None:
    """cluster-autoscaler-1.35.0 cloudprovider/aws/aws_wrapper.go and aws_util.go: the AWS calls
    of the AWS cloud provider, nothing else (DescribeTags and DescribeAutoScalingInstances are no
    longer called at that tag)."""
    for region in config.addon_regions(CA):
        policy = addons_iam.cluster_autoscaler_policy(config.account_id, region, config.environment)
        granted: set[str] = set()
        for statement in policy["Statement"]:
            action = statement["Action"]
            granted |= {action} if isinstance(action, str) else set(action)
        assert granted == rules.CLUSTER_AUTOSCALER_CALLS, sorted(granted ^ rules.CLUSTER_AUTOSCALER_CALLS)


@cache
def planned(stack: str) -> offline.Plan:
    return offline.run(stack)


@pytest.mark.parametrize("config", ca_configs(), ids=lambda c: c.stack)
def test_the_autoscaler_scales_within_the_stack_files_bounds(config: StackConfig) -> None:
    """CA 1.35.0 aws_cloud_provider.go ``IncreaseSize`` refuses past the ASG's MaxSize and
    ``DeleteNodes`` stops at its MinSize; EKS sets the ASG's bounds from the node group's
    ``scalingConfig`` (https://docs.aws.amazon.com/eks/latest/APIReference/API_NodegroupScalingConfig.html).
    The plan's node groups carry the stack file's minSize/maxSize, and where the autoscaler runs
    Pulumi leaves the desired size to it (``ignoreChanges``), so an update never undoes a scale."""
    plan = planned(config.stack)
    groups = plan.of_type("aws:eks/nodeGroup:NodeGroup")
    assert sorted(str(plan.region_of(g)) for g in groups) == sorted(config.region_names)
    for group in groups:
        region = str(plan.region_of(group))
        bounds = config.region(region).node_group
        scaling = group.inputs["scalingConfig"]
        assert (scaling["minSize"], scaling["maxSize"]) == (bounds.min_size, bounds.max_size), region
        autoscaled = region in config.addon_regions(CA)
        assert ("scalingConfig.desiredSize" in group.ignore_changes) == autoscaled, region
        if not autoscaled:
            continue
        desired = scaling["desiredSize"]
        room = bounds.max_size - desired
        if room > 0:
            assert rules.ca_increase_size(desired, room, bounds.max_size) == bounds.max_size
        with pytest.raises(ValueError, match="too large"):
            rules.ca_increase_size(desired, room + 1, bounds.max_size)
        assert rules.ca_may_delete_nodes(bounds.min_size + 1, bounds.min_size)
        assert not rules.ca_may_delete_nodes(bounds.min_size, bounds.min_size)
