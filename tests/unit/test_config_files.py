"""Stack files as a person edits them: every error names the file, the line, the key, the value
and what is allowed; all errors of a file come at once; nothing ends in a traceback.

Each case writes a copy of a synthetic stack file (``tests/fixtures/stacks``: the edits replace
its exact lines, which a user's own stack files need not have) with one or more breakages, then
checks the whole message, with the line numbers read from the broken text itself (never hard-coded).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest

from infra import config
from tests.conftest import FIXTURE_STACKS


def stack_text(stack: str = "staging") -> str:
    return (FIXTURE_STACKS / f"Pulumi.{stack}.yaml").read_text()


def line_of(text: str, needle: str, after: str | None = None) -> int:
    """1-based number of the first line containing ``needle`` (after the line holding ``after``)."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line) + 1
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def errors_of(tmp_path: Path, text: str, stack: str = "staging") -> config.ConfigError:
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(text)
    with pytest.raises(config.ConfigError) as info:
        config.load_stack_file(stack, root=tmp_path)
    return info.value


def test_every_error_of_a_file_at_once_each_with_file_line_key_value_allowed(tmp_path: Path) -> None:
    text = (
        stack_text()
        .replace("vpcCidr: 10.11.0.0/16", "vpcCidr: 10.11.0.0/33")
        .replace("untaggedExpiryDays: 7", "untaggedExpiryDays: 0")
        .replace("sync: automated", "sync: auto")
    )
    error = errors_of(tmp_path, text)
    name = "Pulumi.staging.yaml"
    assert str(error).splitlines() == [
        f'{name}:{line_of(text, "10.11.0.0/33")}: platform:regions.us-east-1.vpcCidr: "10.11.0.0/33" is not '
        "allowed; expected an IPv4 network in CIDR form, such as 10.10.0.0/16",
        f"{name}:{line_of(text, 'untaggedExpiryDays: 0')}: platform:ecr.untaggedExpiryDays: 0 is not allowed; "
        "expected a whole number from 1 to 365",
        f'{name}:{line_of(text, "sync: auto")}: platform:argocd.sync: "auto" is not allowed; expected one of: '
        "automated, manual",
    ]
    assert [p.line for p in error.problems] == [
        line_of(text, "10.11.0.0/33"),
        line_of(text, "untaggedExpiryDays: 0"),
        line_of(text, "sync: auto"),
    ]
    # The first problem still answers the single-error API.
    assert (error.key, error.value) == ("platform:regions.us-east-1.vpcCidr", "10.11.0.0/33")


def test_one_regions_bad_setting_hides_no_check_against_the_region_names(tmp_path: Path) -> None:
    """pydantic v2 leaves a field that failed (here platform:regions, for one instance type) out of
    ValidationInfo.data; the checks of hubRegion, ecr.primaryRegion and deploy.regionOrder against
    the region names still run, on the raw keys of platform:regions."""
    loaded = config.load_stack_file("staging", root=FIXTURE_STACKS)
    names = loaded.region_names
    hub, primary, other = [r for r in config.KNOWN_REGIONS if r not in names][:3]
    order = [*loaded.deploy.region_order]
    order[1] = other
    text = (
        stack_text()
        .replace(f"hubRegion: {loaded.hub_region}", f"hubRegion: {hub}")
        .replace("    scanning: basic", f"    scanning: basic\n    primaryRegion: {primary}")
        .replace(
            f"regionOrder: [{', '.join(loaded.deploy.region_order)}]", f"regionOrder: [{', '.join(order)}]"
        )
        .replace("instanceTypes: [m6i.large,", "instanceTypes: [m6i.lrge,", 1)
    )
    allowed = f"expected one of the stack's regions: {', '.join(names)}"
    name = "Pulumi.staging.yaml"
    assert str(errors_of(tmp_path, text)).splitlines() == [
        f'{name}:{line_of(text, "m6i.lrge")}: platform:regions.{names[0]}.nodeGroup.instanceTypes[0]: "m6i.lrge" '
        "is not allowed; did you mean 'm6i.large'? expected an EC2 instance type such as m6i.large "
        "(botocore's EC2 InstanceType list)",
        f'{name}:{line_of(text, "hubRegion:")}: platform:hubRegion: "{hub}" is not allowed; {allowed}',
        f'{name}:{line_of(text, "primaryRegion:")}: platform:ecr.primaryRegion: "{primary}" is not allowed; '
        f"{allowed}",
        f'{name}:{line_of(text, "regionOrder:")}: platform:deploy.regionOrder[1]: "{other}" is not allowed; '
        f"{allowed}",
    ]


def test_one_bad_service_name_hides_no_check_of_the_sentinel(tmp_path: Path) -> None:
    loaded = config.load_stack_file("staging", root=FIXTURE_STACKS)
    services = [*loaded.services]
    services[0] = services[0].upper()
    sentinel = "not-a-service"
    assert sentinel not in services
    text = (
        stack_text()
        .replace(
            f"platform:services: [{', '.join(loaded.services)}]",
            f"platform:services: [{', '.join(services)}]",
        )
        .replace(
            f"platform:sentinelService: {loaded.sentinel_service}", f"platform:sentinelService: {sentinel}"
        )
    )
    problems = errors_of(tmp_path, text).problems
    assert [p.key for p in problems] == ["platform:services[0]", "platform:sentinelService"]
    assert problems[1].allowed == f"expected one of platform:services: {', '.join(services)}"


def test_invalid_yaml_names_the_file_and_line_not_unicode_string(tmp_path: Path) -> None:
    text = stack_text().replace(
        "  platform:services: [catalog, checkout, payments, web]", "  platform:services: [catalog, checkout"
    )
    message = str(errors_of(tmp_path, text))
    assert message.startswith("Pulumi.staging.yaml:"), message
    assert "invalid YAML" in message and "<unicode string>" not in message
    line = int(message.split(":")[1])
    assert line >= line_of(text, "platform:services: [catalog, checkout"), message
    assert "\n" not in message and "Traceback" not in message


def test_a_duplicate_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    text = stack_text().replace(
        "  platform:hubRegion: us-west-2\n",
        "  platform:hubRegion: us-west-2\n  platform:hubRegion: us-east-1\n",
    )
    first = line_of(text, "platform:hubRegion: us-west-2")
    second = line_of(text, "platform:hubRegion: us-east-1")
    assert str(errors_of(tmp_path, text)) == (
        f'Pulumi.staging.yaml:{second}: platform:hubRegion: "us-east-1" is not allowed; duplicate key (also on '
        f"line {first}); YAML keeps only one of them, so write it once"
    )


def test_a_duplicate_nested_key_is_an_error_too(tmp_path: Path) -> None:
    text = stack_text().replace(
        "    keepTaggedCount: 200\n", "    keepTaggedCount: 200\n    keepTaggedCount: 300\n"
    )
    assert str(errors_of(tmp_path, text)) == (
        f"Pulumi.staging.yaml:{line_of(text, 'keepTaggedCount: 300')}: platform:ecr.keepTaggedCount: 300 is not "
        f"allowed; duplicate key (also on line {line_of(text, 'keepTaggedCount: 200')}); YAML keeps only one of "
        "them, so write it once"
    )


def test_an_empty_file_says_so(tmp_path: Path) -> None:
    assert str(errors_of(tmp_path, "# nothing yet\n")) == (
        "Pulumi.staging.yaml: the file is empty; expected a 'config:' map of platform:* keys"
    )


def test_a_misspelt_config_key_says_what_is_wrong(tmp_path: Path) -> None:
    text = stack_text().replace("\nconfig:\n", "\nconfg:\n")
    line = line_of(text, "confg:")
    assert str(errors_of(tmp_path, text)).splitlines() == [
        f"Pulumi.staging.yaml:{line}: unknown top-level key 'confg'; did you mean 'config'? a stack file has: "
        "secretsprovider, encryptedkey, encryptionsalt, config, environment",
        # Where the document's map starts: here, the misspelt key itself.
        f"Pulumi.staging.yaml:{line}: no settings: the stack's platform:* keys go in a map under 'config:'",
    ]


def test_a_misspelt_namespace_is_an_error_not_a_missing_key_alone(tmp_path: Path) -> None:
    text = stack_text().replace("platform:environment: staging", "platfrom:environment: staging")
    lines = str(errors_of(tmp_path, text)).splitlines()
    assert lines[0] == (
        f'Pulumi.staging.yaml:{line_of(text, "platfrom:")}: platfrom:environment: "staging" is not allowed; '
        "unknown namespace 'platfrom'; did you mean 'platform:'?"
    )
    assert lines[1].endswith("platform:environment: (missing) is not allowed; this key is required"), lines


def test_an_unknown_nested_key_suggests_the_close_one(tmp_path: Path) -> None:
    text = stack_text().replace("    keepTaggedCount: 200", "    keepTaggedCuont: 200")
    assert str(errors_of(tmp_path, text)) == (
        f"Pulumi.staging.yaml:{line_of(text, 'keepTaggedCuont')}: platform:ecr.keepTaggedCuont: 200 is not "
        "allowed; unknown key 'keepTaggedCuont'; did you mean 'keepTaggedCount'? allowed keys: "
        + ", ".join(config.ECR_KEYS)
    )


def test_a_missing_nested_key_points_at_its_section(tmp_path: Path) -> None:
    text = stack_text().replace("      vpcCidr: 10.12.0.0/16\n", "")
    assert str(errors_of(tmp_path, text)) == (
        f"Pulumi.staging.yaml:{line_of(text, '  eu-west-1:')}: platform:regions.eu-west-1.vpcCidr: (missing) is "
        "not allowed; this key is required"
    )


def test_a_wrong_hub_is_reported_once_not_again_where_its_default_is_copied() -> None:
    raw = config.read_stack_file(config.stack_file("staging", FIXTURE_STACKS))
    raw = {**raw, "platform:hubRegion": "eu-central-1"}
    raw["platform:ecr"] = {k: v for k, v in raw["platform:ecr"].items() if k != "primaryRegion"}
    del raw["platform:deploy"]
    with pytest.raises(config.ConfigError) as info:
        config.from_flat(config.as_pulumi_config(raw), "staging")
    assert [p.key for p in info.value.problems] == ["platform:hubRegion"]


def test_a_region_of_another_partition_is_named_as_such() -> None:
    raw = config.read_stack_file(config.stack_file("staging", FIXTURE_STACKS))
    regions = dict(raw["platform:regions"])
    body = dict(
        next(iter(regions.values())), vpcCidr="10.99.0.0/16", availabilityZones=["cn-north-1a", "cn-north-1b"]
    )
    regions["cn-north-1"] = body
    with pytest.raises(config.ConfigError) as info:
        config.from_flat(config.as_pulumi_config({**raw, "platform:regions": regions}), "staging")
    assert info.value.problems[0].key == "platform:regions.cn-north-1"
    assert info.value.allowed.startswith(
        "cn-north-1 is in AWS partition aws-cn; this platform writes ARNs of partition aws only."
    )


def test_a_missing_stack_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load_stack_file("nosuch", root=tmp_path)
    assert str(info.value).startswith('stack file: "') and "expected an existing Pulumi.<stack>.yaml" in str(
        info.value
    )


def test_pulumi_entry_point_reports_config_errors_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = config.Problem(
        "platform:accountId", "1", "expected a 12-digit AWS account ID", "Pulumi.x.yaml", 4
    )

    def broken() -> config.StackConfig:
        raise config.ConfigError.of([problem])

    monkeypatch.setattr(config, "load", broken)
    with pytest.raises(pulumi.RunError) as info:
        runpy.run_module("infra.__main__", run_name="__main__")
    assert str(info.value) == (
        "the stack's configuration is not valid:\n"
        'Pulumi.x.yaml:4: platform:accountId: "1" is not allowed; expected a 12-digit AWS account ID'
    )
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_under_pulumi_errors_name_the_stack_files_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config.load() (what `pulumi up` and the offline plan run) names the line when the value it
    refuses is the one in Pulumi.<stack>.yaml, and no file when the value came from elsewhere."""
    from infra import offline

    text = stack_text().replace("sync: automated", "sync: auto")
    path = tmp_path / "Pulumi.staging.yaml"
    path.write_text(text)
    monkeypatch.setattr(config, "stack_file", lambda stack, root=tmp_path: tmp_path / f"Pulumi.{stack}.yaml")
    flat = config.as_pulumi_config(config.read_stack_file(path))
    with pytest.raises(config.ConfigError) as info:
        offline.run_encoded("staging", flat)
    assert str(info.value) == (
        f'Pulumi.staging.yaml:{line_of(text, "sync: auto")}: platform:argocd.sync: "auto" is not allowed; '
        "expected one of: automated, manual"
    )
    flat["platform:argocd"] = flat["platform:argocd"].replace('"auto"', '"manul"')
    with pytest.raises(config.ConfigError) as info:
        offline.run_encoded("staging", flat)
    assert str(info.value).startswith('platform:argocd.sync: "manul" is not allowed')


def test_a_yaml_merge_key_overridden_in_place_is_not_a_duplicate(tmp_path: Path) -> None:
    """YAML merge keys (<<: *anchor) let a region reuse another's settings and override some."""
    text = stack_text().replace(
        "  platform:regions:\n    us-west-2:\n", "  platform:regions:\n    us-west-2: &region\n"
    )
    east = text.index("    us-east-1:\n")
    end = text.index("    eu-west-1:\n")
    text = (
        text[:east]
        + "    us-east-1:\n      <<: *region\n      vpcCidr: 10.11.0.0/16\n"
        + ("      availabilityZones: [us-east-1a, us-east-1b, us-east-1c]\n")
        + text[end:]
    )
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    east_region = config.load_stack_file("staging", root=tmp_path).region("us-east-1")
    assert east_region.vpc_cidr == "10.11.0.0/16"
    assert (
        east_region.node_group
        == config.load_stack_file("staging", root=FIXTURE_STACKS).region("us-west-2").node_group
    )


def test_the_plan_reports_every_problem_of_the_stack_file_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra import offline

    text = (
        stack_text()
        .replace("sync: automated", "sync: auto")
        .replace("    keepTaggedCount: 200\n", "    keepTaggedCount: 200\n    keepTaggedCount: 300\n")
    )
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    monkeypatch.setattr(config, "stack_file", lambda stack, root=tmp_path: tmp_path / f"Pulumi.{stack}.yaml")
    with pytest.raises(config.ConfigError) as info:
        offline.run("staging")
    assert [(p.key, p.line) for p in info.value.problems] == [
        ("platform:ecr.keepTaggedCount", line_of(text, "keepTaggedCount: 300")),
        ("platform:argocd.sync", line_of(text, "sync: auto")),
    ]


def test_under_pulumi_a_misspelt_config_key_is_named_before_the_missing_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `confg:` Pulumi hands the program no platform: keys; the error says why first."""
    from infra import offline

    text = stack_text().replace("\nconfig:\n", "\nconfg:\n")
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    monkeypatch.setattr(config, "stack_file", lambda stack, root=tmp_path: tmp_path / f"Pulumi.{stack}.yaml")
    with pytest.raises(config.ConfigError) as info:
        offline.run_encoded("staging", {})
    lines = str(info.value).splitlines()
    assert lines[0].startswith(
        f"Pulumi.staging.yaml:{line_of(text, 'confg:')}: unknown top-level key 'confg'; "
    )
    assert "platform:environment: (missing) is not allowed; this key is required" in lines[2]


@pytest.mark.parametrize("word", ["yes", "on", "Yes", "ON", "y"])
def test_yaml_1_1_booleans_stay_strings_as_pulumi_reads_them(tmp_path: Path, word: str) -> None:
    """PyYAML's YAML 1.1 made `ha: yes` a boolean true; the Pulumi CLI's yaml.v3 keeps `yes` a
    string (infra/stack_yaml.py), so the program would get "yes": the loader reads it as Pulumi
    does and the flag's rule refuses it, naming the line."""
    text = stack_text().replace("    ha: false\n", f"    ha: {word}\n")
    assert str(errors_of(tmp_path, text)) == (
        f'Pulumi.staging.yaml:{line_of(text, f"ha: {word}")}: platform:argocd.ha: "{word}" is not allowed; '
        "expected true or false"
    )


def test_a_string_key_written_no_is_the_string_no(tmp_path: Path) -> None:
    """`no` where a string is expected: PyYAML read False (refused as not a string, or turned into
    "False"); Pulumi passes the text "no", and so does the loader."""
    text = stack_text().replace("  platform:environment: staging\n", "  platform:environment: no\n")
    (tmp_path / "Pulumi.staging.yaml").write_text(text)
    assert config.read_stack_file(tmp_path / "Pulumi.staging.yaml")["platform:environment"] == "no"
    assert config.load_stack_file("staging", root=tmp_path).environment == "no"


def test_a_region_without_a_known_addon_registry_names_file_key_and_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A region botocore offers EKS and ECR in, but whose EKS add-on registry account
    infra/documents/eks.py does not know, is refused with the file, line, key and region, never
    given another region's account (the nodes could not pull their add-ons)."""
    from infra.documents import eks

    region = "ca-west-1"
    accounts = {r: a for r, a in eks.EKS_ADDON_REGISTRY_ACCOUNTS.items() if r != region}
    monkeypatch.setattr(eks, "EKS_ADDON_REGISTRY_ACCOUNTS", accounts)
    monkeypatch.setattr(config, "KNOWN_REGIONS", config._known_regions())
    text = stack_text().replace(
        "  platform:regions:\n",
        f"  platform:regions:\n    {region}:\n      vpcCidr: 10.99.0.0/16\n"
        f"      availabilityZones: [{region}a, {region}b]\n      kubernetesVersion: '1.35'\n"
        "      nodeGroup: {instanceTypes: [m6i.large], minSize: 1, desiredSize: 1, maxSize: 2}\n",
    )
    message = str(errors_of(tmp_path, text)).splitlines()[0]
    assert message.startswith(
        f'Pulumi.staging.yaml:{line_of(text, f"    {region}:")}: platform:regions.{region}: "{region}" is not '
        f"allowed; {region} has no EKS add-on image registry account in infra/documents/eks.py"
    ), message


def test_a_stack_file_that_is_not_utf8_names_file_line_and_byte_offset(tmp_path: Path) -> None:
    """yaml.v3 (go-yaml/yaml v3.0.1 readerc.go) reads UTF-8, or UTF-16 after its byte order mark."""
    raw = stack_text().encode()
    at = raw.index(b"\n", raw.index(b"\n") + 1) + 1  # the start of line 3
    (tmp_path / "Pulumi.staging.yaml").write_bytes(raw[:at] + b"# caf\xe9\n" + raw[at:])
    with pytest.raises(config.ConfigError) as info:
        config.load_stack_file("staging", root=tmp_path)
    assert str(info.value) == (
        f"Pulumi.staging.yaml:3: byte offset {at + 5}: bytes e9 are not valid UTF-8; expected a "
        "UTF-8 text file (or UTF-16 with a byte order mark), as the Pulumi CLI reads stack files "
        "with yaml.v3"
    )


def test_a_utf8_or_utf16_byte_order_mark_is_read_as_yaml_v3_reads_it(tmp_path: Path) -> None:
    for raw in (b"\xef\xbb\xbf" + stack_text().encode(), stack_text().encode("utf-16")):
        (tmp_path / "Pulumi.staging.yaml").write_bytes(raw)
        assert config.load_stack_file("staging", root=tmp_path) == config.load_stack_file(
            "staging", root=FIXTURE_STACKS
        )


def test_a_directory_named_like_a_stack_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.debug.yaml").mkdir()
    with pytest.raises(config.ConfigError) as info:
        config.load_stack_file("debug", root=tmp_path)
    assert str(info.value) == (
        "Pulumi.debug.yaml: cannot be read (Is a directory); expected a readable YAML file"
    )
