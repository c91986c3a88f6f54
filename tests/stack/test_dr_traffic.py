"""The DR runbook's traffic steps (issue 18, docs/dr.md "Traffic: drain, then readmit"): the lost
region is drained by its failing health check (confirmed right after the prerequisites) and
readmitted only when the same check passes again (after the Applications are deployed)."""

from __future__ import annotations

from functools import cache

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
    # ExternalDNS needs the zone (the config refuses it without platform:traffic).
    raw.get("platform:addons", {}).pop("external-dns", None)
    config = cfg.from_flat(cfg.as_pulumi_config(raw), stack)
    where = {"workstation": "w", "hub": "h", "both-hubs": "b"}
    region = config.region_names[0]
    assert dr._traffic_drain_steps(config, region, where) == []
    assert dr._traffic_readmit_steps(config, region, dr.REBUILD, where) == []
