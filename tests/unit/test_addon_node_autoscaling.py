"""Node autoscaling (issue 17): the Cluster Autoscaler add-on gives the HPAs' pods nodes.

Derived from the stack files and the chart's value files."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra import addons, naming
from infra import config as cfg
from infra.config import StackConfig
from infra.documents import addons_iam
from infra.manifests import argocd as manifests
from tests.addons_support import cluster_generator, cluster_secrets
from tests.argocd_support import helm_template_application, rendered_objects
from tests.conftest import ROOT, stack_names

STACKS = stack_names()
CA = addons.CLUSTER_AUTOSCALER


def load(stack: str) -> StackConfig:
    return cfg.load_stack_file(stack)


def hpas(config: StackConfig, region: str) -> list[dict[str, Any]]:
    secrets = list(cluster_secrets(config).values())
    (app,) = [
        a
        for a in cluster_generator(manifests.application_set(config), secrets)
        if a["metadata"]["labels"][naming.LABEL_REGION] == region
    ]
    app = copy.deepcopy(app)
    app["spec"]["source"]["helm"]["parameters"] = [{"name": "image.tag", "value": "20260101.000000-abcdef0"}]
    objects = rendered_objects(
        helm_template_application(app, ROOT, config.region(region).kubernetes_version + ".0")
    )
    return [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_whose_hpas_can_scale_out_has_a_node_autoscaler_with_room(
    stack: str, shared_dir: object
) -> None:
    """An HPA that may add pods needs nodes for them: the cluster runs the Cluster Autoscaler and
    its node group may grow (maxSize > minSize)."""
    config = load(stack)
    checked = []
    for region in config.region_names:
        growing = [
            h for h in hpas(config, region) if h["spec"]["maxReplicas"] > h["spec"].get("minReplicas", 1)
        ]
        if not growing:
            continue
        checked.append(region)
        assert CA in addons.cluster_addons(config, region), region
        group = config.region(region).node_group
        assert group.max_size > group.min_size, region
    print(stack, "clusters with scaling HPAs:", checked)


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_autoscaler_scales_only_its_own_clusters_node_groups(stack: str) -> None:
    config = load(stack)
    for region in config.addon_regions(CA):
        policy = addons.CATALOG[CA].policy
        assert policy is not None
        describe, node_groups, scale = policy(config, region)["Statement"]
        cluster = naming.cluster_name(config.environment, region)
        assert node_groups["Resource"] == f"arn:aws:eks:{region}:{config.account_id}:nodegroup/{cluster}/*/*"
        assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in describe["Action"])
        assert sorted(scale["Action"]) == sorted(addons_iam.CLUSTER_AUTOSCALER_WRITE_ACTIONS)
        assert scale["Resource"].startswith(
            f"arn:aws:autoscaling:{region}:{config.account_id}:autoScalingGroup:"
        )
        key = f"aws:ResourceTag/k8s.io/cluster-autoscaler/{naming.cluster_name(config.environment, region)}"
        assert scale["Condition"] == {"Null": {key: "false"}}


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_autoscaler_discovers_the_cluster_by_the_tag_its_role_may_scale(stack: str) -> None:
    """The chart discovers the groups tagged ``k8s.io/cluster-autoscaler/<clusterName>`` (its
    default ``autoDiscovery.tags``); the rendered clusterName is the cluster the role's
    condition names."""
    config = load(stack)
    secrets = cluster_secrets(config)
    (app_set,) = [
        s for s in addons.application_sets(config) if s["metadata"]["labels"][addons.LABEL_ADDON] == CA
    ]
    for app in cluster_generator(app_set, list(secrets.values())):
        region = app["metadata"]["labels"][naming.LABEL_REGION]
        values = app["spec"]["source"]["helm"]["valuesObject"]
        assert values["autoDiscovery"]["clusterName"] == naming.cluster_name(config.environment, region)
        assert values["awsRegion"] == region
        assert values["rbac"]["serviceAccount"]["name"] == addons.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT
