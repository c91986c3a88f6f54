"""ECR documents as pure functions: no Pulumi, just the stack config and the returned dicts."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from infra import config, naming
from infra.documents import ecr
from tests import changes
from tests.conftest import stack_config_map


def load(raw: dict[str, Any], stack: str) -> config.StackConfig:
    return config.from_flat(config.as_pulumi_config(raw), stack)


@pytest.fixture(scope="module")
def staging() -> config.StackConfig:
    return config.load_stack_file("staging")


@pytest.fixture(scope="module")
def prod() -> config.StackConfig:
    return config.load_stack_file("prod")


def prefix_match(filter_value: str, repository: str) -> bool:
    """ECR's PREFIX_MATCH: the repository name starts with the filter string."""
    return repository.startswith(filter_value)


def with_regions(stack: str, count: int) -> config.StackConfig:
    """The example stack with ``count`` regions (the hub first), each with its own network."""
    raw = stack_config_map(stack)
    hub = raw["platform:hubRegion"]
    names = [hub, *[r for r in config.KNOWN_REGIONS if r != hub]][:count]
    template = next(iter(raw["platform:regions"].values()))
    raw["platform:regions"] = {
        name: {
            **template,
            "vpcCidr": str(ipaddress.ip_network(f"10.{100 + i}.0.0/16")),
            "availabilityZones": [f"{name}a", f"{name}b"],
        }
        for i, name in enumerate(names)
    }
    del raw["platform:deploy"]
    return load(raw, stack)


# --------------------------------------------------------------------------------------------
# Lifecycle policy
# --------------------------------------------------------------------------------------------


def test_lifecycle_policy_expires_untagged_by_age_and_keeps_the_newest_tagged() -> None:
    policy = ecr.lifecycle_policy(7, 200)
    rules = sorted(policy["rules"], key=lambda r: r["rulePriority"])
    assert [r["rulePriority"] for r in rules] == sorted({r["rulePriority"] for r in rules})
    untagged = [r for r in rules if r["selection"]["tagStatus"] == "untagged"]
    tagged = [r for r in rules if r["selection"]["tagStatus"] == "tagged"]
    assert len(untagged) == 1 and len(tagged) == 1 and len(rules) == 2
    assert untagged[0]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }
    sel = tagged[0]["selection"]
    assert (sel["countType"], sel["countNumber"]) == ("imageCountMoreThan", 200)
    # ECR refuses tagStatus=tagged without a tag filter; "*" must select every tag.
    assert sel.get("tagPatternList") == ["*"] or sel.get("tagPrefixList") == [""]
    assert all(r["action"] == {"type": "expire"} for r in rules)
    # A "tagStatus: any" rule would put the tagged count in reach of untagged images.
    assert "any" not in {r["selection"]["tagStatus"] for r in rules}


def test_lifecycle_policy_follows_each_stack(staging: config.StackConfig, prod: config.StackConfig) -> None:
    for c in (staging, prod):
        rules = {r["selection"]["tagStatus"]: r for r in ecr.stack_lifecycle_policy(c)["rules"]}
        assert rules["untagged"]["selection"]["countNumber"] == c.ecr.untagged_expiry_days
        assert rules["tagged"]["selection"]["countNumber"] == c.ecr.keep_tagged_count
    assert ecr.stack_lifecycle_policy(staging) != ecr.stack_lifecycle_policy(prod)
    json.dumps(ecr.stack_lifecycle_policy(prod))


@pytest.mark.parametrize(("days", "count"), [(0, 10), (1, 0)])
def test_lifecycle_policy_refuses_counts_that_would_expire_everything(days: int, count: int) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        ecr.lifecycle_policy(days, count)


# --------------------------------------------------------------------------------------------
# Filters and prefixes
# --------------------------------------------------------------------------------------------


def test_replication_filter_selects_exactly_the_platform_namespace(staging: config.StackConfig) -> None:
    f = ecr.replication_filter(staging.ecr.prefix)
    assert all(prefix_match(f, name) for name in ecr.repository_names(staging))
    # A bare "shop" would also replicate a neighbour's "shopping/..." repositories.
    assert not prefix_match(f, f"{staging.ecr.prefix}ping/api")
    assert not prefix_match(f, "other/api")
    assert 2 <= len(f) <= 256
    assert re.fullmatch(r"(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*", f), (
        "not the RepositoryFilter pattern of the ECR API"
    )


def test_template_prefix_means_the_same_namespace(staging: config.StackConfig) -> None:
    # ECR appends "/" to a creation template's prefix.
    assert ecr.template_prefix(staging.ecr.prefix) + "/" == ecr.replication_filter(staging.ecr.prefix)
    assert not ecr.template_prefix(staging.ecr.prefix).endswith("/")


def test_enhanced_scanning_rule_covers_every_repository(prod: config.StackConfig) -> None:
    (rule,) = ecr.enhanced_scanning_rules(prod.ecr.prefix)
    assert rule["scan_frequency"] == "CONTINUOUS_SCAN"
    (flt,) = rule["repository_filters"]
    assert flt["filter_type"] == "WILDCARD"
    pattern = "^" + re.escape(flt["filter"]).replace(r"\*", ".*") + "$"
    assert all(re.match(pattern, n) for n in ecr.repository_names(prod))
    assert not re.match(pattern, "other/api")


def test_registries_use_the_shared_naming(prod: config.StackConfig) -> None:
    assert ecr.registries(prod) == {
        r: f"{prod.account_id}.dkr.ecr.{r}.amazonaws.com" for r in prod.region_names
    }
    assert all(host == naming.registry_host(prod.account_id, r) for r, host in ecr.registries(prod).items())


# --------------------------------------------------------------------------------------------
# Replication rules
# --------------------------------------------------------------------------------------------


def destinations(rules: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["registry_id"], d["region"]) for rule in rules for d in rule["destinations"]}


def expected_destinations(source: config.StackConfig) -> set[tuple[str, str]]:
    """The source's other regions in its own account, and each of its regions in the peer's."""
    own = {(source.account_id, r) for r in source.region_names if r != source.ecr.primary_region}
    return own | {(source.peer_account_id, r) for r in source.region_names}


def test_staging_replicates_to_its_other_regions_and_every_prod_region(
    staging: config.StackConfig, prod: config.StackConfig
) -> None:
    rules = ecr.replication_rules(staging)
    assert destinations(rules) == expected_destinations(staging)
    assert {(prod.account_id, r) for r in prod.region_names} <= destinations(rules)
    assert (staging.account_id, staging.ecr.primary_region) not in destinations(rules)
    assert [f["filter"] for rule in rules for f in rule["repository_filters"]] == [f"{staging.ecr.prefix}/"]
    ecr.validate_replication(rules, staging.account_id, staging.ecr.primary_region)


def test_a_replica_replicates_nowhere(prod: config.StackConfig) -> None:
    assert ecr.replication_rules(prod) == []
    assert ecr.replication_destinations(prod) == ()


def test_the_primary_region_decides_the_destinations(staging: config.StackConfig) -> None:
    raw = stack_config_map("staging")
    primary = next(r for r in staging.region_names if r != staging.ecr.primary_region)
    raw["platform:ecr"]["primaryRegion"] = primary
    c = load(raw, "staging")
    got = destinations(ecr.replication_rules(c))
    assert (c.account_id, primary) not in got
    assert (c.account_id, staging.ecr.primary_region) in got and (c.peer_account_id, primary) in got
    assert got == expected_destinations(c)
    assert len(got) == 2 * len(c.region_names) - 1


def test_services_do_not_change_the_rules() -> None:
    raw = stack_config_map("staging")
    before = ecr.replication_rules(load(raw, "staging"))
    service = changes.fresh_service(raw)
    changes.add_service(raw, service)
    after_config = load(raw, "staging")
    assert ecr.replication_rules(after_config) == before
    assert f"{after_config.ecr.prefix}/{service}" in ecr.repository_names(after_config)


def test_thirteen_regions_fit_ecrs_25_destinations_and_fourteen_do_not() -> None:
    c13 = with_regions("staging", 13)
    rules = ecr.replication_rules(c13)
    assert len(destinations(rules)) == 25
    ecr.validate_replication(rules, c13.account_id, c13.ecr.primary_region)
    c14 = with_regions("staging", 14)
    with pytest.raises(ecr.ReplicationLimitError) as info:
        ecr.validate_replication(ecr.replication_rules(c14), c14.account_id, c14.ecr.primary_region)
    assert str(info.value) == (
        "replication configuration has 27 unique destinations across its rules; ECR allows at most 25"
    )


def rule(*dests: tuple[str, str], flt: str = "shop/") -> dict[str, Any]:
    return {
        "destinations": [{"registry_id": a, "region": r} for a, r in dests],
        "repository_filters": [{"filter": flt, "filter_type": "PREFIX_MATCH"}],
    }


def test_validate_replication_rule_count() -> None:
    ten = [rule(("444455556666", "us-east-1")) for _ in range(10)]
    ecr.validate_replication(ten, "111122223333", "us-west-2")
    with pytest.raises(ecr.ReplicationLimitError) as info:
        ecr.validate_replication([*ten, rule(("444455556666", "us-east-1"))], "111122223333", "us-west-2")
    assert str(info.value) == "replication configuration has 11 rules; ECR allows at most 10 per registry"


def test_validate_replication_counts_unique_destinations_across_rules() -> None:
    regions = config.KNOWN_REGIONS
    a = rule(*[("444455556666", r) for r in regions[:20]])
    b = rule(*[("444455556666", r) for r in regions[10:25]])  # overlaps a: 25 unique
    ecr.validate_replication([a, b], "111122223333", "us-west-2")
    c = rule(*[("555566667777", r) for r in regions[:1]])
    with pytest.raises(ecr.ReplicationLimitError, match="26 unique destinations"):
        ecr.validate_replication([a, b, c], "111122223333", "us-west-2")


def test_validate_replication_refuses_itself_duplicates_and_bad_filters() -> None:
    with pytest.raises(ecr.ReplicationLimitError) as info:
        ecr.validate_replication([rule(("111122223333", "us-west-2"))], "111122223333", "us-west-2")
    assert str(info.value) == (
        "replication rule 0 replicates to its own registry 111122223333 in us-west-2; a registry cannot "
        "be its own replication destination"
    )
    with pytest.raises(ecr.ReplicationLimitError, match="more than once"):
        ecr.validate_replication(
            [rule(("444455556666", "us-east-1"), ("444455556666", "us-east-1"))], "111122223333", "us-west-2"
        )
    with pytest.raises(ecr.ReplicationLimitError, match="has no destinations"):
        ecr.validate_replication([rule()], "111122223333", "us-west-2")
    with pytest.raises(ecr.ReplicationLimitError, match="not a valid repository name prefix"):
        ecr.validate_replication(
            [rule(("444455556666", "us-east-1"), flt="Shop/*")], "111122223333", "us-west-2"
        )


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert doc["Version"] == "2012-10-17"
    return list(doc["Statement"])


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def test_registry_policy_lets_only_the_source_account_replicate(prod: config.StackConfig) -> None:
    doc = ecr.registry_policy(
        source_account=prod.peer_account_id,
        account_id=prod.account_id,
        region="eu-west-1",
        prefix="shop",
        allow_create_repository=True,
    )
    (st,) = statements(doc)
    assert st["Effect"] == "Allow"
    assert st["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    assert sorted(as_list(st["Action"])) == ["ecr:CreateRepository", "ecr:ReplicateImage"]
    assert as_list(st["Resource"]) == ["arn:aws:ecr:eu-west-1:444455556666:repository/shop/*"]


def test_registry_policy_without_templates_grants_replication_only() -> None:
    doc = ecr.registry_policy(
        source_account="111122223333",
        account_id="444455556666",
        region="us-east-1",
        prefix="shop",
        allow_create_repository=False,
    )
    assert [as_list(s["Action"]) for s in statements(doc)] == [["ecr:ReplicateImage"]]


def test_registry_policy_refuses_its_own_account() -> None:
    with pytest.raises(ValueError, match="own account"):
        ecr.registry_policy(
            source_account="444455556666",
            account_id="444455556666",
            region="us-east-1",
            prefix="shop",
            allow_create_repository=True,
        )


def test_kms_key_policy_trusts_only_its_account_and_prod_cannot_delete() -> None:
    staging_doc = ecr.kms_key_policy("111122223333", deny_key_deletion=False)
    (root,) = statements(staging_doc)
    assert root["Effect"] == "Allow" and root["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    prod_doc = ecr.kms_key_policy("444455556666", deny_key_deletion=True)
    allows = [s for s in statements(prod_doc) if s["Effect"] == "Allow"]
    denies = [s for s in statements(prod_doc) if s["Effect"] == "Deny"]
    assert {json.dumps(s["Principal"]) for s in allows} == {'{"AWS": "arn:aws:iam::444455556666:root"}'}
    assert len(denies) == 1 and {"kms:ScheduleKeyDeletion", "kms:DisableKey"} <= set(denies[0]["Action"])
    assert "111122223333" not in json.dumps(prod_doc)


def test_template_role_policies() -> None:
    trust = statements(ecr.template_role_trust_policy())
    assert [s["Principal"] for s in trust] == [{"Service": "ecr.amazonaws.com"}]
    keys = ["arn:aws:kms:us-east-1:444455556666:key/b", "arn:aws:kms:us-west-2:444455556666:key/a"]
    doc = ecr.template_role_policy("444455556666", "shop", list(reversed(keys)))
    by_sid = {s["Sid"]: s for s in statements(doc)}
    assert by_sid["CreatePlatformRepositories"]["Resource"] == "arn:aws:ecr:*:444455556666:repository/shop/*"
    assert by_sid["UseRegistryKeys"]["Resource"] == sorted(keys)
    assert "*" not in as_list(by_sid["UseRegistryKeys"]["Resource"])
    with pytest.raises(ValueError):
        ecr.template_role_policy("444455556666", "shop", [])


# --------------------------------------------------------------------------------------------
# Backfill
# --------------------------------------------------------------------------------------------


def script(c: config.StackConfig, region: str) -> str:
    return "\n".join(ecr.backfill_commands(c, region))


def test_backfill_of_a_destination_starts_an_ecr_replication_backfill(
    prod: config.StackConfig, staging: config.StackConfig
) -> None:
    # Every destination of the source's replication (a prod region, a staging secondary) is filled
    # by ECR's own replication backfill, started in the source's primary region: nothing is
    # pushed, deleted or re-tagged anywhere.
    for c, region in ((prod, prod.spoke_regions[-1]), (staging, staging.spoke_regions[-1])):
        assert region != c.ecr.primary_region
        text = script(c, region)
        source_account = c.peer_account_id if not c.builds_images else c.account_id
        (start,) = [line for line in text.splitlines() if "start-replication-backfill" in line]
        assert f"--registry-id {source_account} --region {c.ecr.primary_region}" in start
        assert f"--destination region={region},registryId={c.account_id}" in start
        for forbidden in ("put-image", "batch-delete-image", "crane copy"):
            assert forbidden not in text


def test_backfill_of_the_source_primary_copies_from_another_region(staging: config.StackConfig) -> None:
    # The primary region is no replication destination: it is restored by crane copies from the
    # first other region of the same account, pushes that replication then sends on. Only the
    # newest images (and the tags given as arguments), only those it lacks by digest (issue 16:
    # not every tag of every repository; resumable), and nothing in the source is deleted.
    primary = staging.ecr.primary_region
    first = next(r for r in staging.region_names if r != primary)
    restored = script(staging, primary)
    assert "start-replication-backfill" not in restored and staging.peer_account_id not in restored
    src, dst = (
        naming.registry_host(staging.account_id, first),
        naming.registry_host(staging.account_id, primary),
    )
    assert f'crane copy "{src}/$1@$2" "{dst}/$1:$3"' in restored
    assert f"[:{ecr.BACKFILL_NEWEST}]" in restored
    # Skipped only when the destination's tag names the same digest (digest AND tag present).
    assert (
        f'describe-images --region {primary} --repository-name "$1" --image-ids imageTag="$3" '
        '--query \'imageDetails[0].imageDigest\' --output text 2>/dev/null)" = "$2" ]' in restored
    )
    assert 'imageDigest="$2"' not in restored
    for name in ecr.repository_names(staging):
        assert (
            f"describe-images --region {first} --repository-name {name} --filter tagStatus=TAGGED" in restored
        )
    assert 'for tag in "$@"; do' in restored
    for forbidden in ("batch-delete-image", "put-image", "crane delete", "crane tag", "crane ls"):
        assert forbidden not in restored


def test_backfill_of_a_destination_follows_a_backfill_already_running(prod: config.StackConfig) -> None:
    # Run twice (an interrupted operator), the script does not start a second backfill: ECR allows
    # one per destination region at a time (botocore ecr StartReplicationBackfill documentation).
    text = script(prod, prod.spoke_regions[0])
    listing = text.index("list-replication-backfills")
    start = text.index("start-replication-backfill")
    assert listing < start
    assert "'PREPARING','IN_PROGRESS'" in text and 'if [ -z "$id" ] || [ "$id" = None ]; then' in text


def test_backfill_refuses_what_it_cannot_do(staging: config.StackConfig) -> None:
    with pytest.raises(ValueError, match="not one of the stack's regions"):
        ecr.backfill_commands(staging, next(r for r in config.KNOWN_REGIONS if r not in staging.region_names))
    single = with_regions("staging", 1)
    with pytest.raises(ValueError, match="only region"):
        ecr.backfill_commands(single, single.hub_region)


@pytest.mark.parametrize(("stack", "where"), [("prod", "a spoke"), ("staging", "the primary region")])
def test_backfill_script_is_valid_bash(stack: str, where: str, tmp_path: Any) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    c = config.load_stack_file(stack)
    region = c.ecr.primary_region if where == "the primary region" else c.spoke_regions[0]
    path = tmp_path / "backfill.sh"
    path.write_text(script(c, region) + "\n")
    result = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# A fake `aws` for the crane path: DescribeImages answered from a JSON registry file
# ({region: {repository: [imageDetail, ...]}}) in pages of ECR's default size, printed as the AWS
# CLI prints them (tests/contracts/aws_cli.py aws_cli_query_output, pinned by the contract test
# of the same name); a tag lookup that misses fails as ImageNotFoundException does.
_FAKE_AWS = """#!{python}
import json, sys
sys.path.insert(0, {root!r})
from tests.contracts import aws_cli

args = sys.argv[1:]
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default
if args[:2] == ["ecr", "get-login-password"]:
    print("password")
    sys.exit(0)
assert args[:2] == ["ecr", "describe-images"], args
images = json.load(open({registry!r})).get(opt("--region"), {{}}).get(opt("--repository-name"), [])
ids = opt("--image-ids")
if ids is not None:
    tag = ids.split("=", 1)[1]
    images = [d for d in images if tag in d["imageTags"]]
    if not images:
        print("An error occurred (ImageNotFoundException)", file=sys.stderr)
        sys.exit(254)
page = aws_cli.ECR_DESCRIBE_IMAGES_PAGE
pages = [{{"imageDetails": images[i : i + page]}} for i in range(0, max(len(images), 1), page)]
sys.stdout.write(aws_cli.aws_cli_query_output(pages, opt("--query"), opt("--output")))
"""
_FAKE_CRANE = """#!/usr/bin/env bash
if [ "$1" = copy ]; then echo "$2 $3" >> {log!r}; else cat > /dev/null; fi
"""


def test_the_crane_backfill_copies_the_newest_images_overall_and_skips_what_the_region_holds(
    staging: config.StackConfig, tmp_path: Any
) -> None:
    """Run against a fake aws that pages DescribeImages like the AWS CLI: each repository of the
    replica holds more than one page of tagged images, pushed so that the first page holds older
    ones; the script copies exactly the newest BACKFILL_NEWEST of each (not the newest of each
    page), skips the one whose tag the region already holds on the same digest, and copies a tag
    given as an argument."""
    import sys

    from infra.config import PROJECT_ROOT
    from tests.contracts import aws_cli

    bash, jq = shutil.which("bash"), shutil.which("jq")
    if bash is None or jq is None:
        pytest.skip("the backfill script needs bash and jq on PATH")
    primary = staging.ecr.primary_region
    replica = next(r for r in staging.region_names if r != primary)
    page = aws_cli.ECR_DESCRIBE_IMAGES_PAGE
    count = page + page // 2
    registry: dict[str, dict[str, list[dict[str, Any]]]] = {replica: {}, primary: {}}
    for n, repo in enumerate(ecr.repository_names(staging)):
        # The oldest images first: the first page holds none of the newest.
        registry[replica][repo] = [
            {
                "imageDigest": f"sha256:{n:02x}{i:062x}",
                "imageTags": [f"v{i}"],
                "imagePushedAt": 1_700_000_000 + i,
            }
            for i in range(count)
        ]
    first = ecr.repository_names(staging)[0]
    held = registry[replica][first][-1]
    registry[primary][first] = [held]
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "copies.log"
    log.touch()
    for name, text in (
        (
            "aws",
            _FAKE_AWS.format(
                python=sys.executable, root=str(PROJECT_ROOT), registry=str(tmp_path / "registry.json")
            ),
        ),
        ("crane", _FAKE_CRANE.format(log=str(log))),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "backfill.sh").write_text(script(staging, primary) + "\n")
    result = subprocess.run(
        [bash, str(tmp_path / "backfill.sh"), "v3"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "SOURCE_PROFILE": "staging", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    copied = {tuple(line.split()) for line in log.read_text().splitlines()}
    src_host = naming.registry_host(staging.account_id, replica)
    dst_host = naming.registry_host(staging.account_id, primary)
    expected = set()
    for repo, images in registry[replica].items():
        newest = sorted(images, key=lambda d: -d["imagePushedAt"])[: ecr.BACKFILL_NEWEST]
        for d in [*newest, images[3]]:
            if d is not held:
                expected.add(
                    (f"{src_host}/{repo}@{d['imageDigest']}", f"{dst_host}/{repo}:{d['imageTags'][0]}")
                )
    assert copied == expected
    assert f"present: {first}@{held['imageDigest']}" in result.stdout
