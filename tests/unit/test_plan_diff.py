"""The offline diff compares by identity and marks replace vs update (infra/plan_diff.py).

Pure tests on small JSON plans shaped like ``platform plan --json`` writes them; the whole-stack
cases (an inserted replication destination, a hub move) are in tests/stack/test_plan.py.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from infra import plan_diff, replacement

STACK_URN = "urn:pulumi:s::platform::pulumi:pulumi:Stack"
AWS_A = f"{STACK_URN}$pulumi:providers:aws::aws-us-west-2"
AWS_B = f"{STACK_URN}$pulumi:providers:aws::aws-us-east-1"


def _resource(type_: str, name: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "urn": f"{STACK_URN}${type_}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "parent": STACK_URN,
        "provider": AWS_A,
        "dependencies": [],
        "protect": False,
        "retainOnDelete": False,
        "inputs": inputs,
    }
    r.update(extra)
    return r


def _doc(*resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"stacks": {"s": {"resources": list(resources), "outputs": outputs or {}}}}


def _replication(destinations: list[dict[str, str]]) -> dict[str, Any]:
    return _resource(
        "aws:ecr/replicationConfiguration:ReplicationConfiguration",
        "replication",
        {"replicationConfiguration": {"rules": [{"destinations": destinations}]}},
    )


def _one(base: dict[str, Any], head: dict[str, Any]) -> plan_diff.ResourceChange:
    [d] = plan_diff.diff_documents(base, head)
    [r] = d.resources
    return r


DESTS = [{"registryId": "111", "region": "us-east-1"}, {"registryId": "222", "region": "us-west-2"}]


def test_an_item_inserted_in_the_middle_of_a_keyed_list_is_one_addition_and_nothing_else() -> None:
    head_dests = [DESTS[0], {"registryId": "222", "region": "ap-south-1"}, DESTS[1]]
    r = _one(_doc(_replication(DESTS)), _doc(_replication(head_dests)))
    assert r.op == "update"
    assert [(c.kind, c.new) for c in r.changes] == [("add", {"registryId": "222", "region": "ap-south-1"})]
    assert (
        r.changes[0].path
        == "replicationConfiguration.rules[0].destinations[registryId=222,region=ap-south-1]"
    )


def test_an_image_updater_ref_inserted_first_is_one_addition_keyed_by_its_name_pattern() -> None:
    def updater(*apps: str) -> dict[str, Any]:
        refs = [{"namePattern": a, "images": [{"alias": "web", "imageName": f"{a}/web"}]} for a in apps]
        return _resource(
            "kubernetes:argocd-image-updater.argoproj.io/v1alpha1:ImageUpdater",
            "image-updater",
            {"spec": {"applicationRefs": refs}},
        )

    r = _one(_doc(updater("shop-a", "shop-b")), _doc(updater("shop-new", "shop-a", "shop-b")))
    assert [(c.kind, c.path) for c in r.changes] == [("add", "spec.applicationRefs[namePattern=shop-new]")]


def test_a_scalar_inserted_at_the_front_of_a_list_is_one_addition() -> None:
    base = _resource("aws:eks/nodeGroup:NodeGroup", "nodes", {"subnetIds": ["b", "c"]})
    head = copy.deepcopy(base)
    head["inputs"]["subnetIds"] = ["a", "b", "c"]
    r = _one(_doc(base), _doc(head))
    assert [(c.kind, c.new) for c in r.changes] == [("add", "a")]


def test_an_item_replaced_by_another_is_a_removal_and_an_addition_not_a_change() -> None:
    head_dests = [DESTS[0], {"registryId": "333", "region": "us-west-2"}]
    r = _one(_doc(_replication(DESTS)), _doc(_replication(head_dests)))
    assert sorted((c.kind, json.dumps(c.old or c.new)) for c in r.changes) == [
        ("add", json.dumps({"registryId": "333", "region": "us-west-2"})),
        ("remove", json.dumps(DESTS[1])),
    ]


def test_a_field_changed_inside_a_keyed_item_is_named_by_the_item_key() -> None:
    policy = {"Statement": [{"Sid": "A", "Action": "s3:Get"}, {"Sid": "B", "Action": "ecr:Get"}]}
    base = _resource("aws:iam/rolePolicy:RolePolicy", "p", {"policy": json.dumps(policy)})
    head = copy.deepcopy(base)
    policy["Statement"][1]["Action"] = "ecr:List"
    head["inputs"]["policy"] = json.dumps(policy)
    r = _one(_doc(base), _doc(head))
    assert [c.render() for c in r.changes] == ['~ policy.Statement[Sid=B].Action: "ecr:Get" => "ecr:List"']
    assert r.op == "update", "a role policy's document is updated in place (PutRolePolicy)"


def test_a_reordered_list_is_reported_once_and_a_shift_is_not() -> None:
    base = _resource("aws:eks/nodeGroup:NodeGroup", "nodes", {"instanceTypes": ["m6i.large", "m6a.large"]})
    head = copy.deepcopy(base)
    head["inputs"]["instanceTypes"] = ["m6a.large", "m6i.large"]
    r = _one(_doc(base), _doc(head))
    assert [c.render() for c in r.changes] == ["~ instanceTypes: order changed"]
    assert r.op == "replace" and r.replace_keys == ("instanceTypes",)


def test_a_reordered_set_typed_input_is_no_change_but_a_changed_member_still_replaces() -> None:
    """NodeGroup subnetIds is a Terraform TypeSet (terraform-provider-aws
    internal/service/eks/node_group.go; infra/replacement.py SET_INPUTS): the provider compares it
    as a set, so a new order is no diff at all, while instanceTypes (a TypeList) reordered is a
    replacement. A member added to the set is still a ForceNew change."""
    base = _resource(
        "aws:eks/nodeGroup:NodeGroup",
        "nodes",
        {"subnetIds": ["subnet-a", "subnet-b", "subnet-c"], "instanceTypes": ["m6i.large"]},
    )
    head = copy.deepcopy(base)
    head["inputs"]["subnetIds"] = ["subnet-c", "subnet-a", "subnet-b"]
    assert plan_diff.diff_resource(base, head) is None
    head["inputs"]["subnetIds"] = ["subnet-c", "subnet-a", "subnet-b", "subnet-d"]
    r = _one(_doc(base), _doc(head))
    assert [c.render() for c in r.changes] == ['+ subnetIds[3]: "subnet-d"']
    assert r.op == "replace" and r.replace_keys == ("subnetIds",)


def test_a_reordered_set_of_an_update_only_resource_and_of_a_provider_is_no_change() -> None:
    """EKS access entry kubernetesGroups (access_entry.go TypeSet) and the AWS provider's
    allowedAccountIds (provider TypeSet): reordering them changes nothing."""
    base = _resource("aws:eks/accessEntry:AccessEntry", "e", {"kubernetesGroups": ["a", "b"]})
    head = copy.deepcopy(base)
    head["inputs"]["kubernetesGroups"] = ["b", "a"]
    assert plan_diff.diff_resource(base, head) is None
    base = _resource("pulumi:providers:aws", "aws-us-west-2", {"allowedAccountIds": '["1", "2"]'})
    head = copy.deepcopy(base)
    head["inputs"]["allowedAccountIds"] = '["2", "1"]'
    assert plan_diff.diff_resource(base, head) is None


def test_a_force_new_input_marks_a_replacement_and_says_which() -> None:
    base = _resource(
        "aws:ecr/repository:Repository", "shop-web", {"name": "shop/web", "imageTagMutability": "IMMUTABLE"}
    )
    head = copy.deepcopy(base)
    head["inputs"]["name"] = "shop/www"
    assert _one(_doc(base), _doc(head)).replace_keys == ("name",)
    head = copy.deepcopy(base)
    head["inputs"]["imageTagMutability"] = "MUTABLE"
    assert _one(_doc(base), _doc(head)).op == "update"


def test_a_protected_resource_to_replace_is_flagged() -> None:
    base = _resource("aws:ecr/repository:Repository", "shop-web", {"name": "shop/web"}, protect=True)
    head = copy.deepcopy(base)
    head["provider"] = AWS_B
    r = _one(_doc(base), _doc(head))
    assert r.op == "replace" and r.replace_keys == ("provider",)
    assert any("PROTECTED" in n for n in r.notes)


def test_a_component_whose_providers_change_is_updated_not_replaced() -> None:
    base = _resource("eks:index:Cluster", "eks", {"version": "1.35"}, custom=False, provider={"aws": AWS_A})
    head = copy.deepcopy(base)
    head["provider"] = {"aws": AWS_B}
    r = _one(_doc(base), _doc(head))
    assert r.op == "update" and not r.replace_keys
    assert r.changes[0].render() == '~ provider: {"aws": "aws-us-west-2"} => {"aws": "aws-us-east-1"}'


def test_dependencies_alone_are_no_change_and_ignore_changes_is_honoured() -> None:
    base = _resource("aws:eks/nodeGroup:NodeGroup", "nodes", {"scalingConfig": {"desiredSize": 2}})
    head = copy.deepcopy(base)
    head["dependencies"] = ["urn:other"]
    assert plan_diff.diff_documents(_doc(base), _doc(head))[0].resources == []
    head["inputs"]["scalingConfig"]["desiredSize"] = 5
    head["ignoreChanges"] = ["scalingConfig.desiredSize"]
    assert plan_diff.diff_documents(_doc(base), _doc(head))[0].resources == []


def test_replace_on_changes_option_is_honoured() -> None:
    base = _resource("aws:ecr/repository:Repository", "r", {"imageTagMutability": "IMMUTABLE"})
    head = copy.deepcopy(base)
    head["inputs"]["imageTagMutability"] = "MUTABLE"
    head["replaceOnChanges"] = ["imageTagMutability"]
    assert _one(_doc(base), _doc(head)).replace_keys == ("imageTagMutability",)


def test_a_type_outside_the_table_is_an_update_marked_unknown() -> None:
    type_ = "aws:ec2/routeTable:RouteTable"
    assert type_ in replacement.NOT_READ and replacement.force_new_paths(type_) is None
    base = _resource(type_, "private", {"vpcId": "vpc-1"})
    head = copy.deepcopy(base)
    head["inputs"]["vpcId"] = "vpc-2"
    r = _one(_doc(base), _doc(head))
    assert r.op == "update" and any("replacement not known" in n for n in r.notes)


def test_created_deleted_and_output_changes_and_the_rendered_symbols() -> None:
    kept = _resource("aws:iam/role:Role", "kept", {"name": "kept"})
    gone = _resource("aws:iam/role:Role", "gone", {"name": "gone"}, retainOnDelete=True)
    new = _resource("aws:iam/role:Role", "new", {"name": "new"})
    moved = _resource("aws:iam/role:Role", "moved", {"name": "moved"})
    moved_head = {**moved, "provider": AWS_B}
    [d] = plan_diff.diff_documents(
        _doc(kept, gone, moved, outputs={"hubRegion": "us-west-2"}),
        _doc(kept, new, moved_head, outputs={"hubRegion": "us-east-1"}),
    )
    assert plan_diff.summary(d) == (
        "Stack s: 1 to create, 0 to update, 1 to replace, 1 to delete; 1 output value(s) changed"
    )
    lines = plan_diff.render_stack(d)
    assert "+- aws:iam/role:Role  moved (replace: provider changed)" in lines
    assert "- aws:iam/role:Role  gone" in lines and "+ aws:iam/role:Role  new" in lines
    assert '~ output hubRegion: "us-west-2" => "us-east-1"' in lines
    assert any("left in the cloud" in line for line in lines)
    text, count = plan_diff.render([d], "note")
    assert count == 4 and text.startswith("Offline plan diff. note\n")


def test_resources_with_identical_changes_are_listed_under_one_block() -> None:
    roles = [_resource("aws:iam/role:Role", n, {"name": n}) for n in ("a", "b", "c")]
    moved = [{**r, "provider": AWS_B} for r in roles]
    [d] = plan_diff.diff_documents(_doc(*roles), _doc(*moved))
    lines = plan_diff.render_stack(d)
    assert lines[1:] == [
        "+- aws:iam/role:Role  a",
        "+- aws:iam/role:Role  b",
        "+- aws:iam/role:Role  c",
        "    ^ these 3 resources (replace: provider changed):",
        '    ~ provider: "aws-us-west-2" => "aws-us-east-1"',
    ]
