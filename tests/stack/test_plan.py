"""The offline plan command: deterministic JSON, a diff that shows exactly what changed."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra import config, naming, offline, plan_diff
from infra import plan as plan_cli
from tests import changes
from tests.conftest import ROOT, stack_config_map

REPLICATION = "aws:ecr/replicationConfiguration:ReplicationConfiguration"


def test_same_config_gives_byte_identical_json(tmp_path: Path) -> None:
    # Two separate processes: nothing may depend on hash seeds, thread timing or dict order.
    files = []
    for name in ("a.json", "b.json"):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "infra.plan", "--stack", "prod", "--quiet", "--json", str(out)],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        files.append(out.read_bytes())
    assert files[0] == files[1]
    assert b'"prod"' in files[0] and b"[secret]" in files[0]


def test_json_redacts_secrets_and_names_providers_and_dependencies() -> None:
    doc = plan_cli.document([offline.run("prod")])
    resources = doc["stacks"]["prod"]["resources"]
    assert resources == sorted(resources, key=lambda r: r["urn"])
    custom = [r for r in resources if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    assert custom, "the plan declares custom resources"
    assert all(r["provider"] for r in custom), [r["urn"] for r in custom if not r["provider"]]
    assert any(r["dependencies"] for r in resources)
    assert (
        "kubeconfigs" not in doc["stacks"]["prod"]["outputs"]
        or doc["stacks"]["prod"]["outputs"]["kubeconfigs"] == "[secret]"
    )
    assert "desired state" in doc["note"] and "pulumi preview" in doc["note"]


def test_diff_of_one_config_value_shows_exactly_that_change() -> None:
    base = plan_cli.document([offline.run("prod")])
    raw = stack_config_map("prod")
    region = next(iter(raw["platform:regions"]))
    node_group = raw["platform:regions"][region]["nodeGroup"]
    old_max = node_group["maxSize"]
    node_group["maxSize"] = old_max + 3
    head = plan_cli.document([offline.run("prod", flat_config=raw)])
    text, count = plan_cli.render_diff(base, head)
    assert count == 1, text
    assert "0 to create, 1 to update, 0 to replace, 0 to delete" in text
    changed = [line for line in text.splitlines() if line.startswith("~ ")]
    assert len(changed) == 1 and "aws:eks/nodeGroup:NodeGroup" in changed[0], text
    assert f"    ~ scalingConfig.maxSize: {old_max} => {old_max + 3}" in text.splitlines()


def test_diff_shows_added_resources_and_no_change_as_none() -> None:
    base = plan_cli.document([offline.run("staging")])
    text, count = plan_cli.render_diff(base, base)
    assert count == 0 and "No changes." in text
    raw = stack_config_map("staging")
    new = changes.fresh_service(raw)
    changes.add_service(raw, new)
    text, count = plan_cli.render_diff(base, plan_cli.document([offline.run("staging", flat_config=raw)]))
    added = [line for line in text.splitlines() if line.startswith("+ ")]
    assert added and all(new in line for line in added), text
    assert not [line for line in text.splitlines() if line.startswith(("~ ", "+- ", "- "))], text
    assert count == len(added), text


def _diff(base: dict[str, Any], head: dict[str, Any], stack: str) -> plan_diff.StackDiff:
    [d] = plan_diff.diff_documents(base, head)
    assert d.stack == stack
    return d


def test_a_region_inserted_first_adds_replication_destinations_and_changes_none() -> None:
    """The issue's case: one inserted destination showed every later one as changed."""
    stack = "staging"
    raw = stack_config_map(stack)
    base = plan_cli.document([offline.run(stack, flat_config=raw)])
    regions = raw["platform:regions"]
    first = next(iter(regions))
    used = {r["vpcCidr"] for r in regions.values()}
    cidr = next(c for c in (f"10.{n}.0.0/16" for n in range(200, 250)) if c not in used)
    new_region = "us-east-2" if "us-east-2" not in regions else "ca-central-1"
    zones = {"us-east-2": ["us-east-2a", "us-east-2b"], "ca-central-1": ["ca-central-1a", "ca-central-1b"]}
    settings = copy.deepcopy(regions[first])
    settings.update(vpcCidr=cidr, availabilityZones=zones[new_region])
    # Right after the first region (the primary, whose own destination list skips it): the new
    # destinations land in the middle of the list, before every existing later one.
    raw["platform:regions"] = {first: regions[first], new_region: settings} | {
        k: v for k, v in regions.items() if k != first
    }
    head = plan_cli.document([offline.run(stack, flat_config=raw)])
    d = _diff(base, head, stack)
    [replication] = [r for r in d.resources if r.type == REPLICATION]
    assert replication.op == "update"
    assert {c.kind for c in replication.changes} == {"add"}, [c.render() for c in replication.changes]
    assert {c.new["region"] for c in replication.changes} == {new_region}
    accounts = {c.new["registryId"] for c in replication.changes}
    assert accounts == {raw["platform:accountId"], raw["platform:peerAccountId"]}
    assert not [r for r in d.resources if r.op in ("delete", "replace")], plan_diff.render_stack(d)


def test_a_region_added_at_the_top_of_the_regions_is_one_addition_in_each_list_it_joins() -> None:
    """Image Updater's applicationRefs (one per region, in platform:regions order) are matched by
    their namePattern: a region added first is one `+` line there, not every later ref changed.
    No existing resource is replaced or deleted, and every change to an existing one is an addition."""
    stack = "staging"
    raw = stack_config_map(stack)
    base_plan = offline.run(stack, flat_config=raw)
    base = plan_cli.document([base_plan])
    new_region = changes.fresh_region(raw)
    changes.add_region(raw, new_region)
    regions = raw["platform:regions"]
    raw["platform:regions"] = {new_region: regions[new_region]} | {
        k: v for k, v in regions.items() if k != new_region
    }
    head_plan = offline.run(stack, flat_config=raw)
    assert head_plan.config.region_names[0] == new_region
    d = _diff(base, plan_cli.document([head_plan]), stack)
    text = "\n".join(plan_diff.render_stack(d))
    assert not [r for r in d.resources if r.op in ("delete", "replace")], text
    updated = [r for r in d.resources if r.op == "update"]
    assert {c.kind for r in updated for c in r.changes} == {"add"}, text
    [updater] = [r for r in updated if r.type.endswith(":ImageUpdater")]
    app = naming.application_name(head_plan.config.application.name, head_plan.config.environment, new_region)
    assert [c.render().split(":")[0] for c in updater.changes] == [
        f"+ spec.applicationRefs[namePattern={app}]"
    ]


def test_a_hub_move_is_a_short_diff_with_every_provider_move_marked_replace() -> None:
    stack = "prod"
    base_plan = offline.run(stack)
    raw = stack_config_map(stack)
    new_hub = next(r for r in raw["platform:regions"] if r != base_plan.config.hub_region)
    raw["platform:hubRegion"] = new_hub
    head_plan = offline.run(stack, flat_config=raw)
    base, head = plan_cli.document([base_plan]), plan_cli.document([head_plan])
    d = _diff(base, head, stack)
    text, _ = plan_cli.render_diff(base, head)
    lines = text.splitlines()

    old = {r.urn: r for r in base_plan.resources}
    moved = {
        r.urn
        for r in head_plan.resources
        if r.custom and r.urn in old and (r.provider or None) != (old[r.urn].provider or None)
    }
    assert moved, "a hub move moves the hub's resources to the new hub's providers"
    replaced = {r.urn for r in d.resources if r.op == "replace"}
    assert moved <= replaced
    assert all("provider" in r.replace_keys for r in d.resources if r.urn in moved)
    # Readable and minimal: each changed resource named once, no dependency churn, the
    # provider move said once per group rather than once per resource.
    for r in d.resources:
        assert (
            sum(
                line.endswith(f"  {r.name}") or f"  {r.name} (" in line
                for line in lines
                if line.startswith(f"{plan_diff.OP_SYMBOL[r.op]} {r.type} ")
            )
            == 1
        ), r.name
    assert not [line for line in lines if "dependencies" in line]
    provider_lines = [line for line in lines if line.strip().startswith("~ provider:")]
    assert len(provider_lines) < len(moved) / 2, text
    assert len(lines) < 3 * len(d.resources), text
    assert f'~ output hubRegion: "{base_plan.config.hub_region}" => "{new_hub}"' in lines


def test_plan_command_prints_both_stacks_and_says_it_is_not_a_live_diff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.plan", "--stack", "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for stack in ("staging", "prod"):
        assert f"{stack} (environment {stack}" in result.stdout
    assert "not a diff against the live cloud" in " ".join(result.stdout.split())


def test_a_bad_stack_file_is_a_clear_error_and_no_traceback(tmp_path: Path) -> None:
    raw = stack_config_map("staging")
    raw["platform:hubRegion"] = "mars-1"
    try:
        offline.run("staging", flat_config=raw)
    except config.ConfigError as exc:
        assert "platform:hubRegion" in str(exc) and "mars-1" in str(exc)
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("a hub outside the regions was accepted")
