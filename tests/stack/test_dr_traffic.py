"""The DR runbook's traffic steps (issue 18, docs/dr.md "Traffic: drain, then readmit"): the lost
region is drained by its failing health check (confirmed right after the prerequisites) and
readmitted only when the same check passes again (after the Applications are deployed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from infra import config as cfg
from infra import dr, offline, traffic
from tests.conftest import stack_config_map, stack_names

TRAFFIC_STACKS = [s for s in stack_names() if cfg.load_stack_file(s).traffic is not None]


@cache
def plan(stack: str) -> offline.Plan:
    return offline.run(stack)


def titles(book: dr.Runbook) -> list[str]:
    return [s.title for s in book.steps]


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_a_rebuild_drains_first_and_readmits_after_the_applications(stack: str) -> None:
    p = plan(stack)
    assert p.config.traffic is not None
    region = p.config.spoke_regions[0]
    book = dr.build(p, region)
    names = titles(book)
    drain = names.index(f"Traffic: confirm {region} is drained")
    readmit = names.index(f"Traffic: {region} is readmitted when healthy")
    assert drain == 1, "right after the prerequisites, before anything changes"
    deploy = next(
        i for i, t in enumerate(names) if t.startswith(("Deploy the Applications", "Applications come back"))
    )
    assert readmit == len(names) - 1 and readmit > deploy
    host = p.config.traffic.region_host(region)
    for step in (book.steps[drain], book.steps[readmit]):
        assert any(host in c and "get-health-check-status" in c for c in step.commands)
    bound = traffic.failover_bound(p.config.traffic)
    assert any(bound.formula() in n for n in book.steps[drain].notes)
    # Nothing in the runbook disables or inverts a health check (a disabled check counts as healthy).
    assert not any("update-health-check" in c for s in book.steps for c in s.commands)


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_a_region_that_stays_down_is_drained_and_not_readmitted(stack: str) -> None:
    p = plan(stack)
    region = p.config.spoke_regions[0]
    names = titles(dr.build(p, region, stays_down=True))
    assert f"Traffic: confirm {region} is drained" in names
    assert not [n for n in names if "readmitted" in n]


def test_a_stack_without_traffic_has_no_traffic_steps() -> None:
    stack = stack_names()[0]
    raw = stack_config_map(stack)
    raw.pop("platform:traffic", None)
    # ExternalDNS manages platform:traffic's zone: it goes with it (infra/config.py refuses it alone).
    addons = raw.get("platform:addons")
    if isinstance(addons, dict):
        raw["platform:addons"] = {k: v for k, v in addons.items() if k != "external-dns"}
    config = cfg.from_flat(cfg.as_pulumi_config(raw), stack)
    where = {"workstation": "w", "hub": "h", "both-hubs": "b"}
    region = config.region_names[0]
    assert dr._traffic_drain_steps(config, region, where) == []
    assert dr._traffic_readmit_steps(config, region, dr.REBUILD, where) == []


@pytest.mark.parametrize("stack", [s for s in TRAFFIC_STACKS if cfg.load_stack_file(s).spoke_regions])
def test_a_hub_move_drains_deletes_the_records_and_does_not_readmit(stack: str) -> None:
    """The old hub leaves the stack: its records are deleted by the runbook and its health check
    by the update, so nothing can readmit it, and the drain step says so."""
    p = plan(stack)
    region = p.config.hub_region
    book = dr.build(p, region, new_hub=p.config.spoke_regions[0])
    names = titles(book)
    assert not [n for n in names if "readmitted" in n]
    drain = book.steps[names.index(f"Traffic: confirm {region} is drained")]
    assert not any("rebuilt region is readmitted" in n for n in drain.notes)
    assert any("records are deleted later in this runbook" in n for n in drain.notes)
    delete = names.index(f"Traffic: delete {region}'s records")
    update = names.index(f"Apply it everywhere but {region}")
    assert names.index(f"Traffic: confirm {region} is drained") < delete < update


@pytest.mark.parametrize("stack", TRAFFIC_STACKS)
def test_a_rebuild_drain_note_says_the_check_readmits(stack: str) -> None:
    p = plan(stack)
    region = p.config.spoke_regions[0]
    book = dr.build(p, region)
    drain = book.steps[titles(book).index(f"Traffic: confirm {region} is drained")]
    assert any("rebuilt region is readmitted" in n for n in drain.notes)


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None, reason="needs jq and bash")
@pytest.mark.parametrize("records", [0, 2])
def test_the_record_deletion_passes_when_the_region_has_no_record(tmp_path: Path, records: int) -> None:
    """The deletion command exits 0 with nothing to delete (no call), and calls Route 53 otherwise."""
    stack = TRAFFIC_STACKS[0]
    config = plan(stack).config
    region = config.spoke_regions[0] if config.spoke_regions else config.hub_region
    where = {"workstation": "w", "hub": "h", "both-hubs": "b"}
    (step,) = dr._traffic_records_removal_steps(config, region, where)
    listing, change = step.commands
    batch = re.search(r"> (\S+)$", listing)
    assert batch is not None
    local = tmp_path / "batch.json"
    local.write_text(json.dumps({"Changes": [{"Action": "DELETE"}] * records}))
    calls = tmp_path / "calls"
    aws = tmp_path / "aws"
    aws.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    aws.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", change.replace(batch.group(1), str(local))], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert calls.exists() == (records > 0)


@pytest.mark.skipif(shutil.which("jq") is None or shutil.which("bash") is None, reason="needs jq and bash")
@pytest.mark.parametrize("listing_fails", [True, False])
def test_a_failed_record_listing_stops_the_step(tmp_path: Path, listing_fails: bool) -> None:
    """A failed ``list-resource-record-sets`` (credentials, throttling) fails the listing command
    and writes no batch; a listing that works gives the region's records as DELETE changes."""
    stack = TRAFFIC_STACKS[0]
    config = plan(stack).config
    assert config.traffic is not None
    region = config.spoke_regions[0] if config.spoke_regions else config.hub_region
    where = {"workstation": "w", "hub": "h", "both-hubs": "b"}
    (step,) = dr._traffic_records_removal_steps(config, region, where)
    listing, _ = step.commands
    command = listing
    for path in re.findall(r"/tmp/\S+\.json", listing):
        command = command.replace(path, str(tmp_path / Path(path).name))
    batch = tmp_path / Path(re.findall(r"/tmp/\S+\.json", listing)[-1]).name
    records = {
        "ResourceRecordSets": [
            {"Name": config.traffic.host + ".", "Type": "A", "SetIdentifier": region},
            {"Name": config.traffic.host + ".", "Type": "A", "SetIdentifier": "elsewhere-1"},
        ]
    }
    aws = tmp_path / "aws"
    aws.write_text("#!/bin/sh\nexit 255\n" if listing_fails else f"#!/bin/sh\necho '{json.dumps(records)}'\n")
    aws.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True)
    if listing_fails:
        assert result.returncode != 0
        assert not batch.exists()
    else:
        assert result.returncode == 0, result.stderr
        changes = json.loads(batch.read_text())["Changes"]
        assert [c["ResourceRecordSet"]["SetIdentifier"] for c in changes] == [region]
