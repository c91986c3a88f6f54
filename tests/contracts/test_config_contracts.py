"""External rules the config validation relies on, one test per rule, each naming its source.

The config accepts exactly what the system that consumes a value accepts; these tests pin how
that system reads the value, so a change of the rule (or of our reading of it) fails here. They
break the synthetic stack files of tests/fixtures/stacks, not the project's own (users change those).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from infra import config, config_schema, stack_yaml
from infra.documents import eks
from tests.conftest import ROOT, fixture_config_map


def _message(section: str, key: str, value: Any) -> str:
    raw = fixture_config_map("staging")
    raw[f"platform:{section}"] = {**raw[f"platform:{section}"], key: value}
    with pytest.raises(config.ConfigError) as info:
        config.from_flat(config.as_pulumi_config(raw), "staging")
    return str(info.value)


def test_image_updater_allow_tags_is_an_unanchored_case_insensitive_go_regexp() -> None:
    """argocd-image-updater v1.2.2, registry-scanner/pkg/image/options.go (ParseMatch): the match
    function before ':' is lower-cased, ``regexp`` compiles the rest with Go's regexp.Compile;
    matchfunc.go (MatchFuncRegexp) calls Regexp.Match, a search anywhere in the tag."""
    tag = "20261122.063000-0123abc"
    assert config.image_updater_tag_matches("regexp:[0-9]{8}", tag) is True  # unanchored
    assert config.image_updater_tag_matches("REGEXP:^[0-9]{8}", tag) is True
    assert config.image_updater_tag_matches("regexp:^v", tag) is False
    assert config.image_updater_tag_matches("any", tag) is True
    assert config.image_updater_tag_matches("semver:1.x", tag) is None  # unknown function: matches nothing


def test_a_pattern_go_cannot_compile_is_refused_although_python_can() -> None:
    """argocd-image-updater v1.2.2, registry-scanner/pkg/image/options.go: a pattern that Go's
    regexp (RE2 syntax, https://github.com/google/re2/wiki/Syntax: no lookaround) cannot compile
    is only logged ("Could not compile regexp"), and then no tag ever matches."""
    pattern = r"regexp:^(?=[0-9]{8})[0-9]{8}\.[0-9]{6}-[0-9a-f]{7,40}$"
    assert config.image_updater_tag_matches(pattern, "20261122.063000-0123abc") is None
    assert _message("imageUpdater", "allowTags", pattern) == (
        f"platform:imageUpdater.allowTags: {json.dumps(pattern)} is not allowed; expected a regular expression Image "
        "Updater can compile (Go RE2 syntax: no lookaround or backreferences); it would silently match no tag"
    )


def test_backslash_c_compiles_in_re2_but_not_in_gos_regexp() -> None:
    """Go's regexp (what Image Updater v1.2.2 compiles allowTags with) refuses ``\\C``: golang/go
    src/regexp/syntax/parse.go, ``case 'C': // any byte; not supported`` returns
    ErrInvalidEscape; https://pkg.go.dev/regexp/syntax lists RE2's syntax without it, while RE2's
    own list (google/re2 doc/syntax.txt) has ``\\C  match a single byte even in UTF-8 mode``.
    google-re2 compiles it, so the config checks it on its own; inside ``\\Q...\\E`` it is text."""
    import re2

    pattern = r"^[0-9]{8}\.[0-9]{6}-\C"
    assert re2.compile(pattern)  # RE2 accepts what Go refuses
    assert config.go_regexp_difference(pattern) is not None
    assert config.image_updater_tag_matches(f"regexp:{pattern}", "20261122.063000-0123abc") is None
    assert config.go_regexp_difference(r"\\C") is None  # an escaped backslash, then C
    assert config.go_regexp_difference(r"\Q\C\E") is None  # literal text
    assert _message("imageUpdater", "allowTags", f"regexp:{pattern}") == (
        f"platform:imageUpdater.allowTags: {json.dumps('regexp:' + pattern)} is not allowed; expected a regular "
        "expression Image Updater can compile (Go RE2 syntax); it has \\C (any byte), which Go's regexp "
        "refuses (invalid escape), so it would silently match no tag"
    )


def test_regions_are_botocores_aws_partition_regions_with_eks_and_ecr() -> None:
    """botocore/data/endpoints.json (installed botocore): partitions, their regions, and the
    services (eks, api.ecr) with an endpoint in each."""
    import botocore.session

    session = botocore.session.get_session()
    eks = set(session.get_available_regions("eks", partition_name="aws"))
    ecr = set(session.get_available_regions("ecr", partition_name="aws"))
    assert set(config.KNOWN_REGIONS) <= eks & ecr
    assert {"us-east-1", "us-west-2", "eu-west-1"} <= set(config.KNOWN_REGIONS)
    assert config.partition_of("cn-north-1") == "aws-cn"
    assert config.partition_of("us-gov-west-1") == "aws-us-gov"
    assert config.partition_of("us-west2") is None


@pytest.mark.parametrize("version", ["10.1.1", "1.2.4-rc.1", "0.1.0+build.5", "1.0.0-alpha.beta.1"])
def test_chart_versions_are_exact_semver_2_as_helm_requires(version: str) -> None:
    """Helm: Chart.yaml's "version: A SemVer 2 version (required)"
    (https://helm.sh/docs/topics/charts/#the-chartyaml-file; helm/helm#9728); the grammar is semver.org's
    (https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string)."""
    raw = fixture_config_map("staging")
    raw["platform:argocd"] = {**raw["platform:argocd"], "chartVersion": version}
    assert config.from_flat(config.as_pulumi_config(raw), "staging").argocd.chart_version == version


@pytest.mark.parametrize("version", ["10.x", "v10.1.1", "10.1", "01.1.1", "^10.1.1", "10.1.1-"])
def test_ranges_and_non_semver_chart_versions_are_refused(version: str) -> None:
    """Same sources: a range or prefix is not a SemVer 2 version, and would not pin one chart."""
    assert _message("argocd", "chartVersion", version) == (
        f'platform:argocd.chartVersion: "{version}" is not allowed; expected an exact chart version such as 10.1.1'
    )


# pulumi/pulumi sdk/go/common/workspace/project.json, $defs simpleConfigType/configItemsType/
# configTypeDeclaration: what `pulumi` accepts for one key of a project's config block.
_PULUMI_CONFIG_DECLARATION = {
    "$defs": {
        "simpleConfigType": {"enum": ["string", "integer", "boolean", "array"]},
        "configItemsType": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {
                    "oneOf": [{"$ref": "#/$defs/simpleConfigType"}, {"$ref": "#/$defs/configItemsType"}]
                },
                "items": {"$ref": "#/$defs/configItemsType"},
            },
            "if": {"properties": {"type": {"const": "array"}}},
            "then": {"required": ["items"]},
        },
    },
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "if": {"properties": {"type": {"const": "array"}}},
    "then": {"required": ["items"]},
    "properties": {
        "type": {"$ref": "#/$defs/simpleConfigType"},
        "items": {"$ref": "#/$defs/configItemsType"},
        "description": {"type": "string"},
        "secret": {"type": "boolean"},
        "default": {},
    },
}


def test_the_generated_project_config_block_is_what_pulumi_accepts() -> None:
    """pulumi/pulumi sdk/go/common/workspace/project.json (configTypeDeclaration), which
    ValidateProject in sdk/go/common/workspace/project.go checks every Pulumi.yaml against: a
    declared key needs a type of string, integer, boolean or array (arrays with items)."""
    check = jsonschema.Draft202012Validator(_PULUMI_CONFIG_DECLARATION)
    block = config_schema.project_config()
    assert block
    for key, declaration in block.items():
        assert [e.message for e in check.iter_errors(declaration)] == [], key
    # A map-valued key has no such type: declaring it, even with a description only, is refused.
    assert list(check.iter_errors({"description": "regions"}))
    assert list(check.iter_errors({"type": "object", "description": "regions"}))


def test_every_stack_file_sets_each_declared_key_without_default() -> None:
    """pulumi/pulumi sdk/go/common/workspace/project_test.go,
    TestStackConfigErrorsWhenMissingStackValueForConfigTypeWithNoDefault: a key declared in the
    project's config block without a default must be set by every stack ("Stack 'dev' is missing
    configuration value ..."), so the generated block declares no key the model lets a stack omit."""
    from tests.conftest import ROOT

    block = config_schema.project_config()
    required = {k for k, v in block.items() if "default" not in v}
    model_required = set(config_schema.model_schema()["required"])
    assert required <= model_required
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        keys = {k.split(":", 1)[1] for k in config.read_stack_file(path) if k.startswith("platform:")}
        assert required <= keys, path.name


def test_a_run_error_is_how_a_python_program_fails_without_a_traceback() -> None:
    """pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec: ``except pulumi.RunError as e:
    pulumi.log.error(str(e))`` (message only, non-zero exit), while any other exception is logged
    as "Program failed with an unhandled exception" with its traceback; pulumi/errors.py documents
    RunError as "a clean exit rather than the usual verbose unhandled error logic"."""
    import pulumi
    from pulumi import errors

    assert pulumi.RunError is errors.RunError
    assert "clean exit" in (errors.RunError.__doc__ or "")


@pytest.mark.parametrize(
    ("zones", "ok"),
    [
        (["us-east-1a", "us-east-1f"], True),
        (["us-east-1-bos-1a", "us-east-1a"], False),
        (["use1-az1", "us-east-1a"], False),
    ],
)
def test_availability_zones_are_the_regions_code_and_a_letter(zones: list[str], ok: bool) -> None:
    """AWS: an Availability Zone's name is its Region code followed by a letter identifier, e.g.
    us-east-1a (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html);
    Local Zones (us-east-1-bos-1a) and zone IDs (use1-az1) are not names EKS cluster subnets take."""
    raw = fixture_config_map("staging")
    raw["platform:regions"]["us-east-1"]["availabilityZones"] = zones
    if ok:
        assert config.from_flat(config.as_pulumi_config(raw), "staging").region(
            "us-east-1"
        ).availability_zones == tuple(zones)
    else:
        with pytest.raises(config.ConfigError, match="expected an availability zone of us-east-1"):
            config.from_flat(config.as_pulumi_config(raw), "staging")


@pytest.mark.parametrize(
    ("arn", "ok"),
    [
        ("arn:aws:iam::111122223333:role/PlatformAdmin", True),
        ("arn:aws:iam::111122223333:role/teams/platform/Admin+ops@x", True),
        ("arn:aws:iam::111122223333:role/" + "a" * 65, False),
        ("arn:aws:iam::111122223333:role/Plätform", False),  # \w would take it; IAM's class is ASCII
        ("arn:aws:iam::111122223333:user/PlatformAdmin", False),
        ("arn:aws:iam::11112222333:role/PlatformAdmin", False),
    ],
)
def test_cluster_admin_is_an_iam_role_arn_as_iam_names_roles(arn: str, ok: bool) -> None:
    """IAM CreateRole (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html):
    RoleName matches [\\w+=,.@-]+ with 1-64 characters; Path is / or /printable ASCII/; the ARN is
    arn:aws:iam::ACCOUNT:role/PATH+NAME (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html)."""
    raw = fixture_config_map("staging")
    raw["platform:clusterAdminRoleArn"] = arn
    if ok:
        assert config.from_flat(config.as_pulumi_config(raw), "staging").cluster_admin_role_arn == arn
    else:
        with pytest.raises(config.ConfigError, match="platform:clusterAdminRoleArn"):
            config.from_flat(config.as_pulumi_config(raw), "staging")


def test_instance_types_are_the_ec2_apis_instance_type_list() -> None:
    """botocore/data/ec2/<latest>/service-2.json, shape InstanceType: the enum of instance types the
    EC2 API accepts (what an EKS managed node group launches); a typo is refused, not launched."""
    types = config.ec2_instance_types()
    assert {"m6i.large", "m6a.large", "m6i.xlarge", "t3.medium"} <= types
    raw = fixture_config_map("staging")
    raw["platform:regions"]["us-east-1"]["nodeGroup"]["instanceTypes"] = ["m6i.lage"]
    with pytest.raises(config.ConfigError) as info:
        config.from_flat(config.as_pulumi_config(raw), "staging")
    assert str(info.value) == (
        'platform:regions.us-east-1.nodeGroup.instanceTypes[0]: "m6i.lage" is not allowed; did you mean '
        "'m6i.large'? expected an EC2 instance type such as m6i.large (botocore's EC2 InstanceType list)"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("n", "n"),
        ("True", True),
        ("FALSE", False),
        ("~", None),
        ("010", 8),  # ParseInt base 0: a leading 0 is octal
        ("0o10", 8),
        ("0x1F", 31),
        ("1_000", 1000),  # every _ removed first
        ("1:30", "1:30"),  # no base 60 (YAML 1.1's 90)
        ("1e3", 1000),  # a float, printed as 1000 and read back an int
        ("09", 9),  # not octal, but a float of YAML's float form
        (".5", 0.5),
        ("1.30", 1.3),
        ("2024-01-02", "2024-01-02 00:00:00 +0000 UTC"),  # time.Time.String()
        ("us-west-2", "us-west-2"),
    ],
)
def test_stack_file_scalars_are_typed_as_the_pulumi_clis_yaml_v3_types_them(text: str, value: Any) -> None:
    """The Pulumi CLI reads stack files with gopkg.in/yaml.v3 (pulumi/pulumi v3.259.0,
    sdk/go/common/encoding/marshal.go; sdk/go.mod yaml.v3 v3.0.1) into ``any``
    (sdk/go/common/resource/config/object.go, object.UnmarshalYAML) and re-reads the stack it
    wrote back (workspace/loaders.go, LoadProjectStackBytes); yaml.v3 resolves plain scalars in
    go-yaml/yaml v3 resolve.go: booleans only true/True/TRUE/false/False/FALSE, integers by
    strconv.ParseInt(s, 0, 64) without underscores, YAML-style floats, timestamps as time.Time.
    PyYAML (YAML 1.1) differs on yes/no/on/off, 0o10, 1e3, 09, 1:30 and dates."""
    loaded = yaml.load(f"v: {text}\n", Loader=stack_yaml.Loader)["v"]
    assert loaded == value and type(loaded) is type(value)
    assert yaml.load(f"v: '{text}'\n", Loader=stack_yaml.Loader)["v"] == text


def test_a_float_reaches_the_program_as_gos_json_writes_it() -> None:
    """object.MarshalString (pulumi/pulumi v3.259.0, sdk/go/common/resource/config/object.go)
    gives a float64 config value to the program as encoding/json writes it: shortest digits,
    fixed notation in [1e-6, 1e21), else an exponent without leading zeros."""
    assert config.as_pulumi_config({"a": 1.35, "b": 1e21, "c": 1e-7, "d": 1.5e-5, "e": None}) == {
        "a": "1.35",
        "b": "1e+21",
        "c": "1e-7",
        "d": "0.000015",
        "e": "null",  # a YAML null: an object whose JSON is null
    }


# eksctl v0.230.0, pkg/utils/instance/instance_types.go (generated by ec2geninfo from EC2
# DescribeInstanceTypes): the families by CPUArch (every size of a family agrees).
EKSCTL_ARM64_FAMILIES = frozenset(
    [
        "a1",
        "c6g",
        "c6gd",
        "c6gn",
        "c7g",
        "c7gd",
        "c7gn",
        "c8g",
        "c8gb",
        "c8gd",
        "c8gn",
        "c9g",
        "c9gd",
        "g5g",
        "hpc7g",
        "i4g",
        "i8g",
        "i8ge",
        "im4gn",
        "is4gen",
        "m6g",
        "m6gd",
        "m7g",
        "m7gd",
        "m8g",
        "m8gb",
        "m8gd",
        "m8gn",
        "m9g",
        "m9gd",
        "r6g",
        "r6gd",
        "r7g",
        "r7gd",
        "r8g",
        "r8gb",
        "r8gd",
        "r8gn",
        "t4g",
        "x2gd",
        "x8g",
    ]
)
EKSCTL_X86_64_FAMILIES = frozenset(
    [
        "c1",
        "c3",
        "c4",
        "c5",
        "c5a",
        "c5ad",
        "c5d",
        "c5n",
        "c6a",
        "c6i",
        "c6id",
        "c6in",
        "c7a",
        "c7i",
        "c7i-flex",
        "c8a",
        "c8i",
        "c8i-flex",
        "c8ib",
        "c8id",
        "c8in",
        "c8ine",
        "d2",
        "d3",
        "d3en",
        "dl2q",
        "f2",
        "g4ad",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "g6f",
        "g7",
        "g7e",
        "gr6",
        "gr6f",
        "h1",
        "hpc6a",
        "hpc6id",
        "hpc7a",
        "hpc8a",
        "i2",
        "i3",
        "i3en",
        "i4i",
        "i7i",
        "i7ie",
        "inf1",
        "inf2",
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m5a",
        "m5ad",
        "m5d",
        "m5dn",
        "m5n",
        "m5zn",
        "m6a",
        "m6i",
        "m6id",
        "m6idn",
        "m6in",
        "m7a",
        "m7i",
        "m7i-flex",
        "m8a",
        "m8azn",
        "m8i",
        "m8i-flex",
        "m8ib",
        "m8id",
        "m8idb",
        "m8idn",
        "m8in",
        "m8ine",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "p6-b300",
        "r3",
        "r4",
        "r5",
        "r5a",
        "r5ad",
        "r5b",
        "r5d",
        "r5dn",
        "r5n",
        "r6a",
        "r6i",
        "r6id",
        "r6idn",
        "r6in",
        "r7a",
        "r7i",
        "r7iz",
        "r8a",
        "r8i",
        "r8i-flex",
        "r8ib",
        "r8id",
        "r8idb",
        "r8idn",
        "r8in",
        "t1",
        "t2",
        "t3",
        "t3a",
        "trn1",
        "trn1n",
        "trn2",
        "u-3tb1",
        "u-6tb1",
        "u7i-12tb",
        "u7i-6tb",
        "u7i-8tb",
        "u7in-16tb",
        "u7in-24tb",
        "u7in-32tb",
        "vt1",
        "x1",
        "x1e",
        "x2idn",
        "x2iedn",
        "x2iezn",
        "x8aedz",
        "x8i",
        "z1d",
    ]
)


def test_instance_architectures_follow_describe_instance_types() -> None:
    """EC2 DescribeInstanceTypes (ProcessorInfo.SupportedArchitectures), as eksctl v0.230.0 ships
    it (pkg/utils/instance/instance_types.go): every family there has the same architecture here
    (a1 is arm64, which the "g" naming rule alone misses), and EC2 Mac types (Dedicated Hosts
    only) are refused as nodes."""
    for family in EKSCTL_ARM64_FAMILIES:
        assert eks.instance_architecture(f"{family}.large") == "arm64", family
    for family in EKSCTL_X86_64_FAMILIES:
        assert eks.instance_architecture(f"{family}.large") == "x86_64", family
    families = {eks.family(t) for t in config.ec2_instance_types()}
    assert {f for f in families if not eks.can_be_a_node(f"{f}.metal")} == {
        f for f in families if f.startswith("mac")
    }


def test_every_region_botocore_offers_eks_and_ecr_in_has_an_addon_registry_account() -> None:
    """EKS user guide, "View Amazon container image registries for Amazon EKS add-ons"
    (https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html; awsdocs/amazon-eks-user-guide
    latest/ug/workloads/add-ons-images.adoc) and eksctl v0.230.0 EKSResourceAccountID: every
    region of botocore's aws partition with EKS and ECR endpoints has its add-on registry account,
    so the config accepts each of them (ca-west-1 and the 2025 regions were refused before)."""
    aws = next(p for p in config._endpoints()["partitions"] if p["partition"] == config.PARTITION)
    offered = config._service_regions(aws, "eks") & config._service_regions(aws, "api.ecr")
    assert set(config.KNOWN_REGIONS) == offered
    assert eks.EKS_ADDON_REGISTRY_ACCOUNTS["ca-west-1"] == "761377655185"
    assert eks.EKS_ADDON_REGISTRY_ACCOUNTS["ap-southeast-7"] == "121268973566"


def test_pulumi_install_uses_the_lock_through_the_uv_toolchain() -> None:
    """Pulumi's Python language host, pulumi/pulumi v3.259.0 sdk/python/toolchain/uv.go: with
    runtime option ``toolchain: uv``, InstallDependencies (``pulumi install``) runs ``uv sync`` in
    the project directory with ``UV_PROJECT_ENVIRONMENT`` set to the ``virtualenv`` option, and
    ListPackages reads the packages from the nearest uv.lock (Pulumi docs, "Python": "Either pip,
    poetry or uv is required to install dependencies"; https://www.pulumi.com/docs/iac/languages-sdks/python/).
    ``uv sync`` installs exactly uv.lock when it matches pyproject.toml, so the same commit installs
    the same versions whichever way the venv is made."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv", "virtualenv": ".venv"}}
    assert (ROOT / "uv.lock").is_file() and (ROOT / "pyproject.toml").is_file()
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    # The lock is of this project (uv sync would otherwise re-resolve into a different set).
    assert any(p["name"] == pyproject["project"]["name"] for p in lock["package"])


def test_a_bare_pulumi_install_is_told_to_keep_the_lock() -> None:
    """pulumi/pulumi v3.259.0 sdk/python/toolchain/uv.go, InstallDependencies: ``uv sync`` with no
    ``--locked`` (it re-resolves and rewrites uv.lock when pyproject.toml changed), run with
    ``cmd.Environ()`` plus ``UV_PROJECT_ENVIRONMENT``, so the caller's ``UV_LOCKED`` reaches uv.
    uv 0.13.9 ``uv sync --help``: ``--locked  Assert that the uv.lock will remain unchanged
    [env: UV_LOCKED=]`` (https://docs.astral.sh/uv/reference/environment/#uv_locked); tried here:
    with ``UV_LOCKED=1`` a stale lock makes ``uv sync`` exit 1 and leaves it unchanged. The README
    says so, and the uv the project pins is that version."""
    readme = (ROOT / "README.md").read_text()
    assert "`UV_LOCKED=1 pulumi install`" in readme
    assert "installs `uv.lock` too" not in readme
    pins = (ROOT / "requirements-uv.txt").read_text()
    assert re.search(r"^uv==0\.13\.9 ", pins, re.M)


def test_every_pulumi_command_has_the_locked_uv_on_path() -> None:
    """pulumi/pulumi v3.259.0 sdk/python/toolchain/uv.go, newUv: with ``toolchain: uv`` the Python
    language host fails ("Could not find `uv` executable") unless ``uv`` is on PATH, for every
    command (preview and up too), so each CI job that runs pulumi/actions puts the uv ``make``
    installs (.uv/bin) on PATH before it, and ``make preview``/``make up`` do the same."""
    workflows = ROOT / ".github" / "workflows"
    jobs_with_pulumi = 0
    for path in sorted(workflows.glob("*.yml")):
        for name, job in (yaml.safe_load(path.read_text()).get("jobs") or {}).items():
            steps = job.get("steps") or []
            uses = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@")]
            if not uses:
                continue
            jobs_with_pulumi += 1
            adds = [
                i
                for i, s in enumerate(steps)
                if '"${GITHUB_WORKSPACE}/.uv/bin" >> "$GITHUB_PATH"' in str(s.get("run", ""))
            ]
            assert adds and min(adds) < min(uses), (
                f"{path.name} job {name}: .uv/bin is not on PATH for pulumi"
            )
    assert jobs_with_pulumi
    makefile = (ROOT / "Makefile").read_text()
    for target in ("preview", "up"):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert recipe and 'PATH="$(CURDIR)/$(UV_DIR)/bin:$$PATH" pulumi' in recipe.group(1), target
