"""When Pulumi replaces a resource instead of updating it: the rules the offline diff relies on.

Each test pins one behaviour read upstream (the source is in its docstring and in
infra/replacement.py, where the table lives). The diff must mark ``+-`` exactly where
``pulumi preview`` would.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from infra import offline, plan_diff, replacement
from infra import plan as plan_module

STACK = "urn:pulumi:s::platform::pulumi:pulumi:Stack"
AWS_A = f"{STACK}$pulumi:providers:aws::aws-a"
AWS_B = f"{STACK}$pulumi:providers:aws::aws-b"


def _resource(type_: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "urn": f"{STACK}${type_}::r",
        "type": type_,
        "name": "r",
        "custom": True,
        "provider": AWS_A,
        "protect": False,
        "retainOnDelete": False,
        "inputs": inputs,
        **extra,
    }


def _change(base: dict[str, Any], head: dict[str, Any]) -> plan_diff.ResourceChange:
    change = plan_diff.diff_resource(base, head)
    assert change is not None
    return change


def _set(inputs: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        inputs = inputs.setdefault(p, {})
    inputs[last] = value


def test_an_explicit_provider_change_replaces_a_custom_resource() -> None:
    """pulumi/pulumi pkg/resource/deploy/step_generator.go, providerChanged: "If one or both of
    these providers are not default providers, we will need to accept the diff and replace
    everything"; diff() then returns ReplaceKeys ["provider"]."""
    base = _resource("aws:iam/role:Role", {"name": "x"})
    head = {**base, "provider": AWS_B}
    change = _change(base, head)
    assert change.op == "replace" and change.replace_keys == ("provider",)


def test_a_component_has_no_provider_diff_of_its_own() -> None:
    """pulumi/pulumi pkg/resource/deploy/step_generator.go, diff(): "If there is no provider for
    this resource (which should only happen for component resources), simply return a 'diffs
    exist' result" - an update; the resources inside it are diffed on their own."""
    base = _resource("eks:index:Cluster", {"version": "1.34"}, custom=False, provider={"aws": AWS_A})
    head = copy.deepcopy(base)
    head["provider"] = {"aws": AWS_B}
    head["inputs"]["version"] = "1.35"
    assert _change(base, head).op == "update"


def test_ignore_changes_takes_the_old_value() -> None:
    """pulumi/pulumi pkg/resource/deploy/step_generator.go, processIgnoreChanges: "sets the value
    for each ignoreChanges property in inputs to the value from oldInputs"."""
    base = _resource("aws:eks/nodeGroup:NodeGroup", {"scalingConfig": {"desiredSize": 2, "maxSize": 4}})
    head = copy.deepcopy(base)
    head["inputs"]["scalingConfig"]["desiredSize"] = 3
    head["ignoreChanges"] = ["scalingConfig.desiredSize"]
    assert plan_diff.diff_resource(base, head) is None


def test_replace_on_changes_turns_an_update_into_a_replacement() -> None:
    """pulumi/pulumi pkg/resource/deploy/step_generator.go, applyReplaceOnChanges: a changed key
    contained in a replaceOnChanges path becomes a replace key."""
    base = _resource("aws:iam/role:Role", {"description": "a"})
    head = copy.deepcopy(base)
    head["inputs"]["description"] = "b"
    assert _change(base, head).op == "update"
    head["replaceOnChanges"] = ["description"]
    assert _change(base, head).replace_keys == ("description",)


@pytest.mark.parametrize("field", ["name", "namespace"])
@pytest.mark.parametrize(
    "type_",
    [
        "kubernetes:core/v1:Namespace",
        "kubernetes:core/v1:Secret",
        "kubernetes:argoproj.io/v1alpha1:ApplicationSet",
        "kubernetes:argoproj.io/v1alpha1:AppProject",
    ],
)
def test_kubernetes_replaces_any_kind_whose_name_or_namespace_changes(type_: str, field: str) -> None:
    """pulumi/pulumi-kubernetes provider/pkg/provider/diff.go: forceNewProperties starts with
    metadataForceNewProperties(".metadata") (".name", ".namespace") for every kind."""
    base = _resource(type_, {"metadata": {"name": "a", "namespace": "argocd", "labels": {"x": "1"}}})
    head = copy.deepcopy(base)
    head["inputs"]["metadata"][field] = "b"
    assert _change(base, head).replace_keys == (f"metadata.{field}",)
    head = copy.deepcopy(base)
    head["inputs"]["metadata"]["labels"]["x"] = "2"
    assert _change(base, head).op == "update"


def test_kubernetes_replaces_a_secret_whose_data_changes() -> None:
    """pulumi/pulumi-kubernetes provider/pkg/provider/diff.go: core v1 "Secret": properties{".type",
    ".stringData", ".data"} - an Argo CD cluster Secret with a new endpoint or CA is replaced."""
    base = _resource("kubernetes:core/v1:Secret", {"metadata": {"name": "c"}, "stringData": {"server": "a"}})
    head = copy.deepcopy(base)
    head["inputs"]["stringData"]["server"] = "b"
    assert _change(base, head).replace_keys == ("stringData.server",)


def test_an_ecr_replication_destination_is_added_in_place() -> None:
    """hashicorp/terraform-provider-aws internal/service/ecr/replication_configuration.go: no
    ForceNew attribute; Create and Update are the same PutReplicationConfiguration."""
    dest = {"registryId": "1", "region": "us-east-1"}
    base = _resource(
        "aws:ecr/replicationConfiguration:ReplicationConfiguration",
        {"replicationConfiguration": {"rules": [{"destinations": [dest]}]}},
    )
    head = copy.deepcopy(base)
    head["inputs"]["replicationConfiguration"]["rules"][0]["destinations"].insert(
        0, {"registryId": "1", "region": "eu-west-1"}
    )
    change = _change(base, head)
    assert change.op == "update" and [c.kind for c in change.changes] == ["add"]


@pytest.mark.parametrize(
    ("type_", "path"),
    [(t, p) for t, paths in replacement.AWS_FORCE_NEW.items() for p in paths],
    ids=lambda v: str(v),
)
def test_every_force_new_input_of_the_table_replaces(type_: str, path: str) -> None:
    """terraform-provider-aws, the file named for the type in infra/replacement.AWS_SOURCES: the
    attribute is ForceNew (SDKv2) or has a RequiresReplace plan modifier (plugin framework), and
    the bridge replaces on it (pulumi/pulumi-terraform-bridge pkg/tfgen/generate_schema.go,
    genProperty: WillReplaceOnChanges: prop.forceNew())."""
    assert type_ in replacement.AWS_SOURCES
    base = _resource(type_, {})
    _set(base["inputs"], path, "old")
    head = copy.deepcopy(base)
    _set(head["inputs"], path, "new")
    assert _change(base, head).replace_keys == (path,)


VPC = "aws:ec2/vpc:Vpc"


def test_a_vpcs_address_range_replaces_it_and_its_dns_settings_update_in_place() -> None:
    """hashicorp/terraform-provider-aws internal/service/ec2/vpc_.go: cidr_block is ForceNew (the
    schema, and resourceVPCCustomizeDiff for a change of an existing VPC); enable_dns_support and
    enable_dns_hostnames are updated by resourceVPCUpdate (ModifyVpcAttribute); tags in place."""
    base = _resource(VPC, {"cidrBlock": "10.10.0.0/16", "enableDnsSupport": True, "enableDnsHostnames": True})
    head = copy.deepcopy(base)
    head["inputs"]["cidrBlock"] = "10.20.0.0/16"
    change = _change(base, head)
    assert change.op == "replace" and change.replace_keys == ("cidrBlock",)
    head = copy.deepcopy(base)
    head["inputs"].update(enableDnsHostnames=False, tags={"team": "platform"})
    change = _change(base, head)
    assert change.op == "update" and change.replace_keys == ()


@pytest.mark.parametrize(
    ("old", "new", "replaced"),
    [
        (None, "dedicated", True),
        ("default", "dedicated", True),
        ("dedicated", "default", False),
        ("dedicated", None, False),
        # The schema's default: an absent input and "default" are the same value, no change.
        (None, "default", False),
        ("default", None, False),
    ],
)
def test_a_vpcs_tenancy_is_changed_in_place_only_from_dedicated_to_default(
    old: str | None, new: str | None, replaced: bool
) -> None:
    """hashicorp/terraform-provider-aws internal/service/ec2/vpc_.go resourceVPCCustomizeDiff:
    ForceNew("instance_tenancy") unless old is dedicated and new is default (the schema's default,
    so also when the input is removed); EC2 ModifyVpcTenancy accepts only default
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVpcTenancy.html)."""

    def vpc(tenancy: str | None) -> dict[str, Any]:
        inputs: dict[str, Any] = {"cidrBlock": "10.10.0.0/16"}
        if tenancy is not None:
            inputs["instanceTenancy"] = tenancy
        return _resource(VPC, inputs)

    change = _change(vpc(old), vpc(new))
    assert (change.op, change.replace_keys) == (
        ("replace", ("instanceTenancy",)) if replaced else ("update", ())
    )


def test_the_aws_sdk_ships_no_schema_so_the_table_is_kept_here() -> None:
    """pulumi-aws's Python SDK holds only pulumi-plugin.json, not the provider schema with its
    willReplaceOnChanges markers; if a future SDK ships it, read the markers from there."""
    spec = importlib.util.find_spec("pulumi_aws")
    assert spec is not None and spec.origin is not None
    package = Path(spec.origin).parent
    assert (package / "pulumi-plugin.json").is_file()
    assert not list(package.glob("schema*.json"))


@pytest.mark.parametrize("stack", plan_module.available_stacks())
def test_every_type_the_program_declares_is_in_the_table_or_listed_as_not_read(stack: str) -> None:
    """infra/replacement.py: a new resource type must be classified (its ForceNew inputs read and
    cited, or listed in NOT_READ) before the diff can say whether it is replaced."""
    types = {r.type for r in offline.run(stack).resources if r.custom}
    assert replacement.unknown_types(types) == []


def test_a_replacement_of_a_resource_that_stays_protected_is_flagged() -> None:
    """https://www.pulumi.com/docs/iac/operations/stack-management/protecting-against-undesired-changes/:
    a protected resource - "any deployment that would delete it (including a replacement) fails
    with an error"; pulumi/pulumi#8873 ("Allow replace if either old or new protect is false")."""
    base = _resource("aws:iam/openIdConnectProvider:OpenIdConnectProvider", {"url": "a"}, protect=True)
    head = {**copy.deepcopy(base), "provider": AWS_B}
    assert any("PROTECTED" in note for note in _change(base, head).notes)
    head["protect"] = False
    change = _change(base, head)
    assert change.op == "replace" and not any("PROTECTED" in note for note in change.notes)


CLUSTER = "aws:eks/cluster:Cluster"
ROLE_A = "arn:aws:iam::123456789012:role/auto-nodes-a"
ROLE_B = "arn:aws:iam::123456789012:role/auto-nodes-b"


@pytest.mark.parametrize(
    ("old", "new", "replaced"),
    [
        (None, ROLE_A, False),
        (ROLE_A, ROLE_B, True),
        (ROLE_A, None, True),
    ],
)
def test_an_eks_auto_mode_node_role_replaces_the_cluster_only_when_a_set_role_changes(
    old: str | None, new: str | None, replaced: bool
) -> None:
    """hashicorp/terraform-provider-aws internal/service/eks/cluster.go resourceCluster's
    CustomizeDiff: with compute_config in the old and the new state, ForceNew
    ("compute_config.0.node_role_arn") when the old role is not empty and differs ("only force
    new if an existing role has changed, not if a new role is added"); a role added where there
    was none is an update."""

    def cluster(role: str | None) -> dict[str, Any]:
        compute: dict[str, Any] = {"enabled": True, "nodePools": ["general-purpose"]}
        if role is not None:
            compute["nodeRoleArn"] = role
        return _resource(CLUSTER, {"name": "hub", "computeConfig": compute})

    change = _change(cluster(old), cluster(new))
    assert (change.op, change.replace_keys) == (
        ("replace", ("computeConfig.nodeRoleArn",)) if replaced else ("update", ())
    )


def test_an_eks_clusters_remote_network_config_replaces_it() -> None:
    """hashicorp/terraform-provider-aws internal/service/eks/cluster.go: remote_network_config is
    ForceNew, and so are remote_node_networks.cidrs and remote_pod_networks.cidrs (EKS Hybrid
    Nodes): adding, removing or changing them replaces the cluster."""
    remote = {"remoteNodeNetworks": {"cidrs": ["10.200.0.0/16"]}}
    base = _resource(CLUSTER, {"name": "hub"})
    head = copy.deepcopy(base)
    head["inputs"]["remoteNetworkConfig"] = remote
    assert _change(base, head).op == "replace"
    changed = copy.deepcopy(head)
    changed["inputs"]["remoteNetworkConfig"]["remotePodNetworks"] = {"cidrs": ["10.201.0.0/16"]}
    assert _change(head, changed).op == "replace"
