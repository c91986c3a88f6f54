"""Changes a user makes to the stack files, applied to config maps (``tests.conftest.stack_config_map``).

Each change picks a name the stack files do not use yet (a service, a region, an address range), so
a test that applies it keeps working in a fork that has already made the same change: the tests
derive what they expect from the config they load, never from the example's values.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from infra import config as cfg

SERVICES = "platform:services"
SENTINEL = "platform:sentinelService"
REGIONS = "platform:regions"
HUB = "platform:hubRegion"


def fresh_service(*raws: Mapping[str, Any], stem: str = "search") -> str:
    """A service name none of ``raws`` lists: ``stem``, else ``stem2``, ``stem3``..."""
    taken = {s for raw in raws for s in raw.get(SERVICES) or []}
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}{n}"
    return name


def add_service(raw: dict[str, Any], name: str) -> None:
    """Add ``name`` to ``platform:services`` before the sentinel, as docs/chart.md says."""
    services = list(raw[SERVICES])
    sentinel = raw.get(SENTINEL)
    at = services.index(sentinel) if sentinel in services else len(services)
    raw[SERVICES] = [*services[:at], name, *services[at:]]


def region_names(*raws: Mapping[str, Any]) -> list[str]:
    """The regions of ``raws``, first appearance first."""
    return list(dict.fromkeys(r for raw in raws for r in raw.get(REGIONS) or {}))


def fresh_region(*raws: Mapping[str, Any], prefer: Iterable[str] = ("eu-central-1",)) -> str:
    """An AWS region none of ``raws`` runs (``prefer`` first, then the config's known regions)."""
    taken = set(region_names(*raws))
    for region in (*prefer, *cfg.KNOWN_REGIONS):
        if region not in taken:
            return region
    raise AssertionError("every known region is taken")  # pragma: no cover


def fresh_cidr(*raws: Mapping[str, Any]) -> str:
    """A /16 of 10.0.0.0/8 that overlaps no region's ``vpcCidr`` in ``raws``."""
    used = [
        ipaddress.ip_network(str(settings["vpcCidr"]))
        for raw in raws
        for settings in (raw.get(REGIONS) or {}).values()
        if isinstance(settings, Mapping) and "vpcCidr" in settings
    ]
    for candidate in ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=16):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise AssertionError("10.0.0.0/8 is full")  # pragma: no cover


def add_region(raw: dict[str, Any], region: str, cidr: str | None = None) -> None:
    """Add ``region`` under ``platform:regions`` with the settings of the stack's last region.

    Its own address range (``cidr`` or a free /16) and as many zones of its own as the template
    region has (at most three: every AWS region has zones a to c).
    """
    regions = raw[REGIONS]
    template = copy.deepcopy(regions[list(regions)[-1]])
    zones = min(len(template.get("availabilityZones") or []), 3) or 2
    regions[region] = {
        **template,
        "vpcCidr": cidr or fresh_cidr(raw),
        "availabilityZones": [f"{region}{z}" for z in "abc"[:zones]],
    }
    keep_the_prod_deploy_within_its_session(raw)


def keep_the_prod_deploy_within_its_session(raw: dict[str, Any]) -> None:
    """Lower prod's ``deploy.timeoutSeconds`` so every region's wait fits one deploy-prod.yml
    session, as the add-a-region walk-through says (the config refuses a prod deploy that does not)."""
    if raw.get("platform:environment") != "prod":
        return
    deploy = raw.setdefault("platform:deploy", {})
    fits = (cfg.DEPLOY_SESSION_SECONDS - cfg.DEPLOY_SETUP_SECONDS) // len(raw[REGIONS])
    deploy["timeoutSeconds"] = min(int(deploy.get("timeoutSeconds", 900)), fits)


def other_region(raw: Mapping[str, Any], *not_: str | None) -> str:
    """A region of the stack that is none of ``not_`` (e.g. not the hub, not the primary)."""
    for region in raw[REGIONS]:
        if region not in not_:
            return str(region)
    raise AssertionError(f"the stack has no region but {not_}")  # pragma: no cover
