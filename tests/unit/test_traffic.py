"""infra/traffic.py: the failover bound, the per-region values, and docs/traffic.md's figure."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra import config, traffic
from infra.config import PROJECT_ROOT, TrafficConfig
from tests.conftest import fixture_config_map, stack_names, without_traffic

DOC = PROJECT_ROOT / "docs" / "traffic.md"


def defaults() -> TrafficConfig:
    raw = fixture_config_map("staging")
    raw["platform:traffic"] = {"hostedZoneId": "Z0123456789ABCDEFGHIJ", "zoneName": "shop.example.org"}
    cfg = config.from_flat(config.as_pulumi_config(raw), "staging")
    assert cfg.traffic is not None
    return cfg.traffic


def test_the_docs_figure_is_the_functions() -> None:
    """docs/traffic.md states the bound of the default values; it must be what the function computes."""
    block = re.search(r"<!-- failover-bound:.*?-->\n(.*?)\n<!-- /failover-bound -->", DOC.read_text(), re.S)
    assert block is not None, "docs/traffic.md lost its failover-bound block"
    bound = traffic.failover_bound(defaults())
    assert block.group(1) == f"**{bound.total_seconds} s** with the defaults: {bound.formula()}."
    assert f"{traffic.readmission_bound(defaults())} s with the defaults" in DOC.read_text()


@pytest.mark.parametrize(("interval", "threshold"), [(10, 1), (30, 3), (10, 10), (30, 10)])
def test_the_bound_counts_each_failure_as_an_interval_and_a_request_timeout(
    interval: int, threshold: int
) -> None:
    """threshold x (interval + request timeout) + alias TTL; readmission adds the record's
    propagation and one more request timeout (the rules: tests/contracts/test_traffic_failover.py)."""
    raw = fixture_config_map("staging")
    raw["platform:traffic"] = {
        **raw["platform:traffic"],
        "healthCheckIntervalSeconds": interval,
        "failureThreshold": threshold,
    }
    cfg = config.from_flat(config.as_pulumi_config(raw), "staging")
    assert cfg.traffic is not None
    timeout = traffic.REQUEST_TIMEOUT_SECONDS[traffic.health_check_args(cfg, cfg.region_names[0])["type"]]
    bound = traffic.failover_bound(cfg.traffic)
    assert bound.request_timeout_seconds == timeout
    assert bound.total_seconds == threshold * (interval + timeout) + traffic.ALIAS_TTL_SECONDS
    assert traffic.readmission_bound(cfg.traffic) == (
        traffic.RECORD_PROPAGATION_SECONDS
        + timeout
        + threshold * (interval + timeout)
        + traffic.ALIAS_TTL_SECONDS
    )


@pytest.mark.parametrize("stack", stack_names())
def test_each_regions_health_check_requests_its_own_name_over_https(stack: str) -> None:
    cfg = config.load_stack_file(stack)
    if cfg.traffic is None:
        pytest.skip(f"{stack} has no platform:traffic")
    for region in cfg.region_names:
        args: dict[str, Any] = traffic.health_check_args(cfg, region)
        assert args == {
            "type": "HTTPS",
            "fqdn": cfg.traffic.region_host(region),
            "port": 443,
            "resource_path": cfg.traffic.health_check_path,
            "request_interval": cfg.traffic.health_check_interval_seconds,
            "failure_threshold": cfg.traffic.failure_threshold,
            "enable_sni": True,
        }
        assert traffic.certificate_names(cfg.traffic, region) == (
            cfg.traffic.host,
            cfg.traffic.region_host(region),
        )


def test_the_web_acl_runs_each_managed_group_once_with_its_own_actions() -> None:
    rules = traffic.web_acl_rules("acl")
    assert [r["statement"]["managed_rule_group_statement"]["name"] for r in rules] == list(
        traffic.MANAGED_RULE_GROUPS
    )
    assert sorted(r["priority"] for r in rules) == list(range(len(rules)))
    assert all(r["override_action"] == {"none": {}} for r in rules)
    names = [r["visibility_config"]["metric_name"] for r in rules]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("stack", stack_names())
def test_cluster_annotations_carry_what_the_values_object_reads(stack: str) -> None:
    cfg = config.load_stack_file(stack)
    region = cfg.region_names[0]
    facts = traffic.RegionFacts("arn:aws:acm:x", "hc", "arn:aws:wafv2:x" if traffic.waf_on(cfg) else None)
    annotations = traffic.cluster_annotations(cfg, region, facts)
    values = traffic.chart_values(cfg)
    if cfg.traffic is None:
        assert annotations == {} and values is None
        return
    assert values is not None
    read = set(re.findall(r'index \.metadata\.annotations "([^"]+)"', repr(values)))
    assert read <= set(annotations)
    # The rest are for the ExternalDNS add-on: the zone it may write.
    assert set(annotations) - read == {traffic.ANNOTATION_ZONE_ID, traffic.ANNOTATION_ZONE_NAME}
    assert annotations[traffic.ANNOTATION_ZONE_ID] == cfg.traffic.hosted_zone_id
    if cfg.traffic.waf:
        with pytest.raises(ValueError, match="web ACL"):
            traffic.cluster_annotations(cfg, region, traffic.RegionFacts("arn", "hc", None))


def test_plan_summary_says_a_stack_without_traffic_is_not_reachable() -> None:
    raw = without_traffic(fixture_config_map("staging"))
    cfg = config.from_flat(config.as_pulumi_config(raw), "staging")
    (line,) = traffic.plan_summary(cfg)
    assert "NOT reachable from outside" in line
