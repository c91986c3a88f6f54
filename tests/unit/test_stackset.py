"""Cross-stack checks (infra.stackset): stacks sharing an account, a source and its replica.

Every case starts from the checkout's own stack files and changes one thing, so the expectations
follow the config (accounts, regions, environments) rather than the example's values.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import config as cfg
from infra import stackset
from tests import changes
from tests.conftest import ROOT, config_error, stack_config_map

STAGING, PROD, DEBUG = "Pulumi.staging.yaml", "Pulumi.prod.yaml", "Pulumi.debug.yaml"


def load(raw: dict[str, Any], stack: str) -> cfg.StackConfig:
    return cfg.from_flat(cfg.as_pulumi_config(raw), stack)


def example() -> dict[str, cfg.StackConfig]:
    return {
        STAGING: load(stack_config_map("staging"), "staging"),
        PROD: load(stack_config_map("prod"), "prod"),
    }


# An account no stack file of the checkout deploys into.
ELSEWHERE = "999988887777"


def debug_in_stagings_account() -> dict[str, Any]:
    """A third stack copied from staging's file, environment ``debug``, in staging's account.

    Its peer (where it replicates to) is an account without a stack here, so it is nobody's source.
    """
    raw = stack_config_map("staging")
    raw["platform:environment"] = "debug"
    raw["platform:github"]["environment"] = "debug"
    raw["platform:peerAccountId"] = ELSEWHERE
    traffic = raw.get("platform:traffic")
    if traffic is not None:  # a public name of its own (docs/walkthroughs.md, a third stack)
        traffic["host"] = f"debug.{traffic['zoneName']}"
    return raw


def only(found: list[stackset.Finding], key: str) -> stackset.Finding:
    (finding,) = [f for f in found if f.key == key]
    return finding


def test_the_checkouts_stack_files_have_no_cross_stack_finding() -> None:
    assert stackset.findings(stackset.load(ROOT)) == []


# --- Stacks sharing an account ---------------------------------------------------------------


def test_a_copy_of_staging_in_stagings_account_is_refused_naming_both_files_each_key_and_what_is_allowed() -> (
    None
):
    staging = example()[STAGING]
    found = stackset.findings({**example(), DEBUG: load(debug_in_stagings_account(), "debug")})
    assert {f.severity for f in found} == {"error"}
    assert {f.files for f in found} == {(DEBUG, STAGING)}
    assert sorted(f.key for f in found) == [
        "platform:ecr.prefix",
        "platform:github.oidcProviderArn",
        "platform:registryRole",
    ]
    oidc = only(found, "platform:github.oidcProviderArn")
    assert str(oidc).startswith(
        f"error: {DEBUG} and {STAGING}: platform:github.oidcProviderArn: both deploy into account "
        f"{staging.account_id} and both create the account's one GitHub OIDC provider; allowed: "
    )
    assert (
        f"arn:aws:iam::{staging.account_id}:oidc-provider/token.actions.githubusercontent.com" in oidc.message
    )
    prefix = only(found, "platform:ecr.prefix")
    assert (
        f'"{staging.ecr.prefix}"' in prefix.message
        and "allowed: a different platform:ecr.prefix" in prefix.message
    )
    role = only(found, "platform:registryRole")
    assert (
        staging.ecr.primary_region in role.message and "allowed: one source stack per account" in role.message
    )


def test_a_third_stack_in_stagings_account_that_shares_no_singleton_passes() -> None:
    staging = example()[STAGING]
    raw = debug_in_stagings_account()
    raw["platform:github"]["oidcProviderArn"] = (
        f"arn:aws:iam::{staging.account_id}:oidc-provider/token.actions.githubusercontent.com"
    )
    raw["platform:ecr"]["prefix"] = f"{staging.ecr.prefix}-debug"
    # Its own primary region, so its replication configuration is not staging's.
    raw["platform:ecr"]["primaryRegion"] = changes.other_region(raw, staging.ecr.primary_region)
    assert stackset.findings({**example(), DEBUG: load(raw, "debug")}) == []


def test_the_same_environment_twice_in_one_account_is_refused() -> None:
    raw = debug_in_stagings_account()
    raw["platform:environment"] = "staging"
    found = stackset.findings({**example(), DEBUG: load(raw, "debug")})
    env = only(found, "platform:environment")
    assert env.files == (DEBUG, STAGING)
    assert 'both set "staging"' in env.message and "platform-staging-github-up" in env.message


def test_two_replicas_in_one_account_and_enhanced_scanning_are_refused() -> None:
    raw = stack_config_map("prod")
    raw["platform:environment"] = "prod2"
    raw["platform:github"]["environment"] = "prod2"
    found = stackset.findings({**example(), "Pulumi.prod2.yaml": load(raw, "prod2")})
    assert {f.key for f in found if f.files == (PROD, "Pulumi.prod2.yaml")} >= {
        "platform:registryRole",
        "platform:ecr.scanning",
        "platform:github.oidcProviderArn",
    }


def test_stacks_in_different_accounts_share_nothing() -> None:
    raw = debug_in_stagings_account()
    raw["platform:accountId"], raw["platform:peerAccountId"] = ELSEWHERE, example()[STAGING].account_id
    raw["platform:clusterAdminRoleArn"] = f"arn:aws:iam::{ELSEWHERE}:role/PlatformAdmin"
    # Its peer is staging's account: staging is a source, nothing there admits its images.
    found = stackset.findings({**example(), DEBUG: load(raw, "debug")})
    assert [(f.key, f.files) for f in found] == [("platform:peerAccountId", (DEBUG, STAGING))]
    assert "is a source too" in found[0].message
    raw["platform:peerAccountId"] = "777788889999"
    assert stackset.findings({**example(), DEBUG: load(raw, "debug")}) == []


# --- A source and its replica ----------------------------------------------------------------


def test_a_region_only_staging_runs_is_a_warning_naming_the_region_and_both_files() -> None:
    staging_raw, prod_raw = stack_config_map("staging"), stack_config_map("prod")
    region = changes.fresh_region(staging_raw, prod_raw)
    changes.add_region(staging_raw, region)
    found = stackset.findings({STAGING: load(staging_raw, "staging"), PROD: load(prod_raw, "prod")})
    (warning,) = found
    assert warning.severity == "warning" and warning.files == (STAGING, PROD)
    assert warning.key == "platform:regions"
    assert warning.message.startswith(f"{region} is a region of {STAGING} but not of {PROD}: ")
    assert f"into account {prod_raw['platform:accountId']} in {region}" in warning.message


def test_a_region_only_prod_runs_is_an_error() -> None:
    staging_raw, prod_raw = stack_config_map("staging"), stack_config_map("prod")
    region = changes.fresh_region(staging_raw, prod_raw)
    changes.add_region(prod_raw, region)
    (error,) = stackset.findings({STAGING: load(staging_raw, "staging"), PROD: load(prod_raw, "prod")})
    assert error.severity == "error" and error.files == (STAGING, PROD)
    assert f"{region} is a region of {PROD} but not of {STAGING}" in error.message
    assert "never receives an image" in error.message


def test_primary_regions_that_disagree_are_an_error_saying_what_to_set() -> None:
    staging_raw, prod_raw = stack_config_map("staging"), stack_config_map("prod")
    primary = load(staging_raw, "staging").ecr.primary_region
    prod_raw["platform:hubRegion"] = changes.other_region(prod_raw, primary)
    (error,) = stackset.findings({STAGING: load(staging_raw, "staging"), PROD: load(prod_raw, "prod")})
    assert error.key == "platform:ecr.primaryRegion"
    assert f"set platform:ecr.primaryRegion: {primary} in {PROD}" in error.message
    # Pinning it, as the message says, is the fix.
    prod_raw["platform:ecr"]["primaryRegion"] = primary
    assert stackset.findings({STAGING: load(staging_raw, "staging"), PROD: load(prod_raw, "prod")}) == []


def test_a_replica_may_list_only_its_sources_primary_region_outside_its_regions_as_unreachable() -> None:
    """The replica's config admits a region outside its regions in platform:unreachableRegions
    (its hub move keeps the source's lost primary region there: infra/dr.py); the pair's check
    warns about any other such region, which marks nothing."""
    staging_raw, prod_raw = stack_config_map("staging"), stack_config_map("prod")
    staging, prod = load(staging_raw, "staging"), load(prod_raw, "prod")
    outside = changes.fresh_region(staging_raw, prod_raw)
    assert outside not in (*prod.region_names, prod.account_region, staging.ecr.primary_region)
    prod_raw["platform:unreachableRegions"] = [outside]
    (warning,) = stackset.findings({STAGING: staging, PROD: load(prod_raw, "prod")})
    assert warning.severity == "warning" and warning.key == "platform:unreachableRegions"
    assert f"{outside} is in {PROD}'s platform:unreachableRegions" in warning.message
    assert "marks nothing" in warning.message
    # A source's config still refuses it: its providers are the only ones the list could mark.
    staging_raw["platform:unreachableRegions"] = [outside]
    with pytest.raises(cfg.ConfigError, match="unreachableRegions"):
        load(staging_raw, "staging")


def test_a_replicas_unreachable_region_outside_its_regions_must_be_an_aws_region(tmp_path: Path) -> None:
    """The replica's config cannot see its source's regions (the stack-set check warns about an
    AWS region that is not the source's), but each entry is an AWS region: a typo is refused,
    naming the file, the key, the value and what is allowed, before any resource."""
    prod_raw = stack_config_map("prod")
    prod = load(prod_raw, "prod")
    assert prod.registry_role == "replica"
    typo = prod.region_names[0].replace("-", "", 1)
    assert typo not in cfg.KNOWN_REGIONS
    prod_raw["platform:unreachableRegions"] = [typo]
    message = config_error(prod_raw, "prod")
    assert f'platform:unreachableRegions[0]: "{typo}" is not allowed' in message
    assert f"expected an AWS region, one of: {', '.join(cfg.KNOWN_REGIONS)}" in message
    # Read from the stack file, the error names the file too.
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": prod_raw}, sort_keys=False))
    with pytest.raises(cfg.ConfigError) as info:
        cfg.load_stack_file("prod", tmp_path)
    assert "Pulumi.prod.yaml" in str(info.value) and typo in str(info.value)


def test_a_source_replicating_into_a_stack_that_is_not_its_replica_is_refused() -> None:
    prod = example()[PROD]
    raw = debug_in_stagings_account()
    raw["platform:accountId"] = ELSEWHERE
    raw["platform:clusterAdminRoleArn"] = f"arn:aws:iam::{ELSEWHERE}:role/PlatformAdmin"
    raw["platform:peerAccountId"] = prod.account_id
    found = stackset.findings({**example(), DEBUG: load(raw, "debug")})
    error = only(found, "platform:peerAccountId")
    assert error.files == (DEBUG, PROD)
    assert f"admits replication only from account {prod.peer_account_id}" in error.message


def test_a_second_source_in_stagings_account_for_prods_replica_is_refused_naming_both() -> None:
    """A copy of staging in staging's account whose peer is prod's account passes the account
    check (prod admits staging's account): it is refused as a second source, not by a check that
    does not apply."""
    prod = example()[PROD]
    raw = debug_in_stagings_account()
    raw["platform:peerAccountId"] = prod.account_id
    raw["platform:ecr"]["prefix"] = f"{prod.ecr.prefix}-debug"
    found = stackset.findings({**example(), DEBUG: load(raw, "debug")})
    replication = [f for f in found if f.key == "platform:peerAccountId"]
    assert [f.files for f in replication] == [(DEBUG, PROD)]
    (error,) = replication
    assert error.severity == "error"
    assert f"whose stack {PROD} already has the source {STAGING}" in error.message
    assert "a replica admits exactly one source stack" in error.message
    assert "set Pulumi.debug.yaml's platform:peerAccountId to an account" in error.message
    # Nothing about debug and prod's regions or primary regions: those checks assume a real pair.
    assert not [f for f in found if f.files == (DEBUG, PROD) and f is not error]


# --- check(): what the offline plan calls -----------------------------------------------------


def write_checkout(tmp_path: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    for stack, raw in stacks.items():
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": raw}))
    return tmp_path


def test_check_prints_warnings_and_raises_every_error_at_once(tmp_path: Path) -> None:
    staging_raw, prod_raw = stack_config_map("staging"), stack_config_map("prod")
    region = changes.fresh_region(staging_raw, prod_raw)
    changes.add_region(staging_raw, region)
    out = io.StringIO()
    warnings = stackset.check(write_checkout(tmp_path, {"staging": staging_raw, "prod": prod_raw}), out)
    assert [w.severity for w in warnings] == ["warning"]
    assert out.getvalue() == f"{warnings[0]}\n"

    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_checkout(tmp_path, {"debug": debug_in_stagings_account()})
    with pytest.raises(stackset.StackSetError) as info:
        stackset.check(tmp_path, io.StringIO())
    header, *lines = str(info.value).splitlines()
    assert header == "the stack files clash (3 errors):"
    assert len(lines) == len(info.value.findings) == 3
    assert all(
        re.match(rf"  error: {re.escape(DEBUG)} and {re.escape(STAGING)}: platform:", line) for line in lines
    )


def test_the_deploy_readers_of_a_source_are_its_replicas() -> None:
    """Prod's deploy reads staging's hub: a source stack's readers are the stacks that build no
    images, run in its peerAccountId and name its account as their peer; a replica has none."""
    stacks = list(stackset.load().values())
    for config in stacks:
        readers = stackset.deploy_readers(config, stacks)
        expected = tuple(
            sorted(
                o.stack
                for o in stacks
                if config.builds_images
                and not o.builds_images
                and o.account_id == config.peer_account_id
                and o.peer_account_id == config.account_id
            )
        )
        assert readers == expected
        if not config.builds_images:
            assert readers == ()
    assert any(stackset.deploy_readers(c, stacks) for c in stacks)


@pytest.mark.parametrize(("key", "other"), [("plan", "free"), ("visibility", "internal")])
def test_stacks_of_one_repository_must_agree_on_its_plan_and_visibility(key: str, other: str) -> None:
    """Prod's stack declares staging's environment, so both files must describe the repository
    alike (a plan one file claims and the repository lacks would pass that file's check). The
    changed value is made valid on its own (public and enterprise offer everything)."""
    raw = stack_config_map("staging")
    raw["platform:github"].update({"plan": "enterprise", "visibility": "public", key: other})
    stacks = {**example(), STAGING: load(raw, "staging")}
    prod = stacks[PROD].github
    found = only(stackset.findings(stacks), f"platform:github.{key}")
    assert found.severity == "error" and found.files == (PROD, STAGING)
    theirs = {"plan": prod.plan, "visibility": prod.visibility}[key]
    assert f'one with "{theirs}", the other with "{raw["platform:github"][key]}"' in found.message


def test_two_stacks_with_one_public_name_are_refused() -> None:
    """Their ExternalDNS would write the same latency records (docs/traffic.md)."""
    staging = example()[STAGING]
    if staging.traffic is None:
        pytest.skip("the staging stack file has no platform:traffic")
    raw = debug_in_stagings_account()
    raw["platform:traffic"]["host"] = staging.traffic.host
    found = stackset.findings({**example(), DEBUG: load(raw, "debug")})
    clash = only(found, "platform:traffic.host")
    assert clash.files == (DEBUG, STAGING)
    assert f'both publish "{staging.traffic.host}"' in clash.message
    assert "allowed: a different platform:traffic.host per stack" in clash.message
