"""platform:traffic (docs/traffic.md): values, defaults and exact messages.

Messages are asserted on the synthetic stack files (``tests/fixtures/stacks``); the project's own
stack files are checked for invariants only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra import config, placeholders, versions
from tests.conftest import FIXTURE_STACKS, fixture_config_map, stack_config_map, stack_names, without_traffic
from tests.conftest import config_error as message
from tests.conftest import load_map as load


def fixture_text(stack: str) -> str:
    return (FIXTURE_STACKS / f"Pulumi.{stack}.yaml").read_text()


def with_traffic(stack: str, **values: Any) -> dict[str, Any]:
    raw = fixture_config_map(stack)
    raw["platform:traffic"] = {**raw["platform:traffic"], **values}
    return raw


def test_a_stack_without_traffic_loads_and_has_none() -> None:
    assert load(without_traffic(fixture_config_map("staging"))).traffic is None


def test_defaults_follow_the_zone_and_the_environment() -> None:
    for stack in ("staging", "prod"):
        raw = fixture_config_map(stack)
        zone = raw["platform:traffic"]["zoneName"]
        raw["platform:traffic"] = {"hostedZoneId": "Z0123456789ABCDEFGHIJ", "zoneName": zone}
        traffic = load(raw, stack).traffic
        assert traffic is not None
        assert traffic.host == f"www.{zone}"
        assert traffic.waf is (stack == "prod")
        assert (
            traffic.health_check_path,
            traffic.health_check_interval_seconds,
            traffic.failure_threshold,
        ) == (
            "/healthz",
            30,
            3,
        )
        assert traffic.region_host("eu-west-1") == f"eu-west-1.www.{zone}"


def test_a_zone_id_is_read_as_route53_reads_it() -> None:
    # botocore handlers.py fix_route53_ids keeps the last '/'-separated piece.
    traffic = load(with_traffic("staging", hostedZoneId="/hostedzone/Z0123456789ABCDEFGHIJ")).traffic
    assert traffic is not None and traffic.hosted_zone_id == "Z0123456789ABCDEFGHIJ"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"hostedZoneId": "z0123abc"},
            'platform:traffic.hostedZoneId: "z0123abc" is not allowed; expected a Route 53 hosted zone ID '
            "such as Z0123456789ABCDEFGHIJ",
        ),
        (
            {"hostedZoneId": "Z" * 33},
            f'platform:traffic.hostedZoneId: "{"Z" * 33}" is not allowed; expected a Route 53 hosted zone '
            "ID such as Z0123456789ABCDEFGHIJ",
        ),
        (
            {"zoneName": "Shop.Example.com"},
            'platform:traffic.zoneName: "Shop.Example.com" is not allowed; expected the hosted zone\'s DNS '
            "name, such as shop.example.com",
        ),
        (
            {"host": "www.other.org"},
            'platform:traffic.host: "www.other.org" is not allowed; expected a name inside zoneName '
            "staging.shop.example.com (such as www.staging.shop.example.com): the program validates its "
            "certificate and ExternalDNS writes its records in that zone only",
        ),
        (
            {"healthCheckIntervalSeconds": 20},
            "platform:traffic.healthCheckIntervalSeconds: 20 is not allowed; expected 10 or 30 (seconds: "
            "Route 53 offers fast and standard health checks only)",
        ),
        (
            {"failureThreshold": 11},
            "platform:traffic.failureThreshold: 11 is not allowed; expected a whole number from 1 to 10",
        ),
        (
            {"healthCheckPath": "healthz"},
            'platform:traffic.healthCheckPath: "healthz" is not allowed; expected an absolute URL path such '
            "as /healthz",
        ),
        (
            {"waf": "yes"},
            'platform:traffic.waf: "yes" is not allowed; expected true or false',
        ),
        (
            {"hostedZone": "Z1"},
            "platform:traffic.hostedZone: \"Z1\" is not allowed; unknown key 'hostedZone'; did you mean "
            "'hostedZoneId'? allowed keys: " + ", ".join(config.TRAFFIC_KEYS),
        ),
    ],
)
def test_bad_values_are_named(values: dict[str, Any], expected: str) -> None:
    assert message(with_traffic("staging", **values)) == expected


def test_prod_requires_the_waf() -> None:
    assert message(with_traffic("prod", waf=False), "prod") == (
        "platform:traffic.waf: false is not allowed; prod's storefront is always behind AWS WAF; "
        "expected true (or leave it out)"
    )


def test_the_zone_keys_are_required() -> None:
    raw = fixture_config_map("staging")
    raw["platform:traffic"] = {"zoneName": "shop.example.com"}
    assert message(raw) == "platform:traffic.hostedZoneId: (missing) is not allowed; this key is required"


def test_traffic_is_an_object() -> None:
    raw = fixture_config_map("staging")
    raw["platform:traffic"] = "shop.example.com"
    assert message(raw) == (
        'platform:traffic: "shop.example.com" is not allowed; expected an object with keys '
        + ", ".join(config.TRAFFIC_KEYS)
    )


@pytest.mark.parametrize("stack", stack_names())
def test_the_project_stacks_names_are_inside_their_zone(stack: str) -> None:
    cfg = config.load_stack_file(stack)
    if cfg.traffic is None:
        pytest.skip(f"Pulumi.{stack}.yaml has no platform:traffic")
    for region in cfg.region_names:
        assert cfg.traffic.region_host(region).endswith("." + cfg.traffic.zone_name)
    if cfg.is_prod:
        assert cfg.traffic.waf


def test_example_zone_values_are_placeholders() -> None:
    """The example's zone is refused by a real up (infra/placeholders.py) and named offline."""
    for stack in stack_names():
        raw = stack_config_map(stack)
        if "platform:traffic" not in raw:
            continue
        found = {p.key for p in placeholders.find(load(raw, stack))}
        assert "platform:traffic.zoneName" in found or "platform:traffic.hostedZoneId" in found
    real = with_traffic("staging", hostedZoneId="Z0123456789ABCDEFGHIJ", zoneName="shop.acme-corp.io")
    real["platform:traffic"]["host"] = "www.shop.acme-corp.io"
    found = {p.key for p in placeholders.find(load(real))}
    assert not {"platform:traffic.zoneName", "platform:traffic.hostedZoneId"} & found


# --- the add-ons the way in needs (infra/config.py TRAFFIC_ADDONS) --------------------------------


def test_the_traffic_addons_are_addons_the_program_knows() -> None:
    assert set(config.TRAFFIC_ADDONS) <= set(versions.ADDON_CHARTS)


@pytest.mark.parametrize("name", list(config.TRAFFIC_ADDONS))
def test_traffic_without_an_addon_it_needs_is_refused_naming_the_addon(name: str) -> None:
    raw = fixture_config_map("staging")
    raw["platform:addons"].pop(name)
    regions = ", ".join(raw["platform:regions"])
    assert message(raw) == (
        f"platform:addons.{name}: (missing) is not allowed; platform:traffic needs the {name} add-on in "
        f"every region of the stack ({regions}): it {config.TRAFFIC_ADDONS[name]}; add {name}: "
        f"{{chartVersion: {versions.ADDON_CHARTS[name]['tested']}}} or remove platform:traffic"
    )


@pytest.mark.parametrize("name", list(config.TRAFFIC_ADDONS))
def test_traffic_with_an_addon_in_some_regions_only_is_refused_naming_the_others(name: str) -> None:
    raw = fixture_config_map("staging")
    first, *others = list(raw["platform:regions"])
    raw["platform:addons"][name] = {**raw["platform:addons"][name], "regions": [first]}
    assert message(raw) == (
        f'platform:addons.{name}.regions: ["{first}"] is not allowed; platform:traffic serves the storefront '
        f"from every region of the stack, and {name} {config.TRAFFIC_ADDONS[name]} in each; "
        f"{', '.join(others)} would have none: expected every region ({', '.join([first, *others])}), "
        "or leave regions out"
    )
    # Listing every region is the same as leaving regions out.
    raw["platform:addons"][name]["regions"] = [*others, first]
    assert load(raw).addon_regions(name) == load(raw).region_names


def test_traffic_without_any_addon_is_refused_in_the_file_with_the_other_errors(tmp_path: Path) -> None:
    """No platform:addons at all (the key is optional) is refused too, with the file's other errors."""
    text = fixture_text("staging")
    start = text.index("  platform:addons:\n")
    end = text.index("  platform:traffic:\n")
    text = text[:start] + text[end:]
    text = text.replace("hostedZoneId: Z0EXAMPLESTAGING0000", "hostedZoneId: zone-1")
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    with pytest.raises(config.ConfigError) as info:
        config.load_stack_file("staging", root=tmp_path)
    lines = str(info.value).splitlines()
    first = next(iter(config.TRAFFIC_ADDONS))
    # A missing key is reported at the line of the map it belongs in (here the file's config map).
    config_line = text.splitlines().index("config:") + 1
    assert lines[0].startswith(
        f"Pulumi.staging.yaml:{config_line}: platform:addons.{first}: (missing) is not allowed; platform:traffic "
    )
    zone_line = text.splitlines().index("    hostedZoneId: zone-1") + 1
    assert lines[1] == (
        f'Pulumi.staging.yaml:{zone_line}: platform:traffic.hostedZoneId: "zone-1" is not allowed; expected a '
        "Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ"
    )
    assert len(lines) == 2


def test_a_stack_without_traffic_needs_no_traffic_addons() -> None:
    raw = without_traffic(fixture_config_map("staging"))
    raw["platform:addons"] = {
        k: v for k, v in raw["platform:addons"].items() if k not in config.TRAFFIC_ADDONS
    }
    assert not set(load(raw).addons) & set(config.TRAFFIC_ADDONS)


def test_external_dns_without_a_zone_is_reported_with_the_files_other_errors(tmp_path: Path) -> None:
    """A cross-key check is reported together with another key's error, not hidden behind it."""
    text = fixture_text("staging")
    start = text.index("  platform:traffic:\n")
    end = text.index("  platform:deploy:\n")
    text = (text[:start] + text[end:]).replace("sync: automated", "sync: auto")
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    with pytest.raises(config.ConfigError) as info:
        config.load_stack_file("staging", root=tmp_path)
    lines = text.splitlines()
    dns_line = next(i for i, line in enumerate(lines) if line.startswith("    external-dns:")) + 1
    sync_line = lines.index("    sync: auto") + 1
    version = fixture_config_map("staging")["platform:addons"]["external-dns"]["chartVersion"]
    assert sorted(str(info.value).splitlines()) == sorted(
        [
            f'Pulumi.staging.yaml:{sync_line}: platform:argocd.sync: "auto" is not allowed; expected one of: '
            "automated, manual",
            f'Pulumi.staging.yaml:{dns_line}: platform:addons.external-dns: {{"chartVersion": "{version}"}} is '
            "not allowed; external-dns manages the records of platform:traffic's hosted zone; set "
            "platform:traffic (hostedZoneId, zoneName) or remove external-dns",
        ]
    )
