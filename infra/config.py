"""The one typed model of a stack's configuration.

Everything the program reads from a stack file is parsed and validated here, once, before any
resource is declared. Components receive a frozen :class:`StackConfig`; nothing else in the
program reads Pulumi config.

The model is declarative: each key is one field of a frozen pydantic dataclass, with its type,
default and description (``Field(description=...)``); pydantic validates all of it in one pass and
reports every error. The sections are pydantic *dataclasses* (not BaseModels) so the public API
stays what it was: assigning to a field raises AttributeError (FrozenInstanceError) and a
section can still be built positionally (``GitHubConfig(owner, repo, ...)``). The ``config:`` block of ``Pulumi.yaml`` and the editors' JSON Schema
(``schema/stack-config.schema.json``) are generated from these classes by
:mod:`infra.config_schema`. Adding a key is one field and its description here, then
``python -m infra.config_schema``.

Two entry points feed the same validation:

* :func:`load` reads the config the Pulumi engine hands to the program (``pulumi up``/``preview``
  and the offline plan, which sets the same values through the mock runtime);
* :func:`load_stack_file` reads a ``Pulumi.<stack>.yaml`` directly (tests, the deploy and DR
  commands).

Every error is a :class:`ConfigError`. It carries all the problems of the file at once
(``ConfigError.problems``), each naming the file and line where the stack file is known, the key
(``platform:...``), the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import gzip
import importlib.util
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic import TypeAdapter as _TypeAdapter
from pydantic.dataclasses import dataclass as _pydantic_dataclass
from pydantic_core import ArgsKwargs, PydanticCustomError, core_schema

from infra import chart_addons, naming, stack_yaml, versions
from infra.documents import eks as _eks
from infra.documents import github_plans as _github_plans
from infra.documents.addons_iam import secrets_prefix as addons_iam_secrets_prefix

NAMESPACE = "platform"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

Environment = str
SubjectForm = Literal["name", "id"]
GitHubPlan = _github_plans.Plan
RepositoryVisibility = _github_plans.Visibility
NatMode = Literal["single", "perAz"]
CapacityType = Literal["ON_DEMAND", "SPOT"]
RegistryRole = Literal["source", "replica"]
SyncMode = Literal["automated", "manual"]
WriteBackMethod = Literal["argocd", "git"]
UpdateStrategy = Literal["semver", "newest-build", "alphabetical", "digest"]
ScanMode = Literal["basic", "enhanced"]

# The partition every ARN this program writes is in (infra/documents/iam.py builds arn:aws:...).
PARTITION = "aws"


# --------------------------------------------------------------------------------------------
# AWS regions: read from botocore's endpoint data, not typed here
# --------------------------------------------------------------------------------------------


def _botocore_data() -> Path:
    # botocore/data/: the service models and endpoint data botocore ships, read as files
    # (botocore.loaders would import its whole HTTP stack, ~0.6 s, to read them).
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a declared dependency
        raise ModuleNotFoundError("botocore (a dependency in pyproject.toml) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def _endpoints() -> dict[str, Any]:
    # endpoints.json: the partitions, their regions and which services have an endpoint in each;
    # the data the AWS SDKs resolve endpoints from.
    data: dict[str, Any] = json.loads((_botocore_data() / "endpoints.json").read_text())
    return data


@functools.cache
def ec2_instance_types() -> frozenset[str]:
    """Every instance type the EC2 API accepts: the ``InstanceType`` enum of botocore's EC2 model
    (botocore/data/ec2/<latest API version>/service-2.json), which EKS node groups launch."""
    latest = max((_botocore_data() / "ec2").iterdir(), key=lambda p: p.name)
    model = latest / "service-2.json"
    text = (
        gzip.decompress(model.with_suffix(".json.gz").read_bytes())
        if not model.exists()
        else model.read_bytes()
    )
    return frozenset(json.loads(text)["shapes"]["InstanceType"]["enum"])


def partition_of(region: str) -> str | None:
    """The AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``, ...) botocore puts ``region`` in."""
    for partition in _endpoints()["partitions"]:
        if region in partition["regions"]:
            return str(partition["partition"])
    return None


def _service_regions(partition: Mapping[str, Any], service: str) -> set[str]:
    return set(partition["services"].get(service, {}).get("endpoints", {})) & set(partition["regions"])


def _known_regions() -> tuple[str, ...]:
    """Regions of partition ``aws`` with both EKS and ECR (``api.ecr``) endpoints in botocore, and
    an EKS add-on image registry account known to :mod:`infra.documents.eks` (nodes cannot start
    their add-ons without it)."""
    aws = next(p for p in _endpoints()["partitions"] if p["partition"] == PARTITION)
    offered = _service_regions(aws, "eks") & _service_regions(aws, "api.ecr")
    return tuple(sorted(r for r in offered if r in _eks.EKS_ADDON_REGISTRY_ACCOUNTS))


# Every region a stack may run in; a typo such as "us-west2" is refused rather than becoming a
# provider that fails half-way through an update.
KNOWN_REGIONS: tuple[str, ...] = _known_regions()


def _region_rule(value: Any) -> str:
    if isinstance(value, str) and value in KNOWN_REGIONS:
        return value
    allowed = f"expected an AWS region, one of: {', '.join(KNOWN_REGIONS)}"
    if isinstance(value, str):
        partition = partition_of(value)
        if partition is not None and partition != PARTITION:
            allowed = (
                f"{value} is in AWS partition {partition}; this platform writes ARNs of partition "
                f"{PARTITION} only. {allowed}"
            )
        elif partition == PARTITION:
            allowed = (
                f"{value} has no EKS add-on image registry account in infra/documents/eks.py "
                "(https://docs.aws.amazon.com/eks/latest/userguide/add-ons-images.html) or no EKS/ECR "
                f"endpoint in botocore's data; add it there first. {allowed}"
            )
        else:
            allowed = _did_you_mean(value, KNOWN_REGIONS) + allowed
    raise _fail(allowed, value)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<missing>"


_MISSING: Any = _Missing()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(missing)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong in a stack's config: where (file, line, key), the value, what is allowed."""

    key: str
    value: Any
    allowed: str
    file: str | None = None
    line: int | None = None
    # A problem of the file itself (not of one key's value) says it in its own words.
    message: str | None = None

    def __str__(self) -> str:
        where = (
            f"{self.file}:{self.line}: " if self.file and self.line else f"{self.file}: " if self.file else ""
        )
        if self.message is not None:
            return where + self.message
        return f"{where}{self.key}: {_show(self.value)} is not allowed; {self.allowed}"


class ConfigError(ValueError):
    """A stack configuration value is missing or not allowed.

    The message always names the key (``platform:...``), the value that was given and what is
    allowed (and, read from a stack file, the file and line), so the person reading it at 3 a.m.
    can fix the stack file without reading code. One error carries every problem found
    (``problems``), one per line of the message; ``key``/``value``/``allowed`` are the first's.
    """

    def __init__(self, key: str, value: Any, allowed: str, *, problems: Sequence[Problem] = ()) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem(key, value, allowed),)
        first = self.problems[0]
        self.key, self.value, self.allowed = first.key, first.value, first.allowed
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> ConfigError:
        first = problems[0]
        return cls(first.key, first.value, first.allowed, problems=problems)


def _fail(allowed: str, value: Any, *at: str | int) -> PydanticCustomError:
    """A validation error whose message is ``allowed``; ``at`` extends the key below the field."""
    return PydanticCustomError("platform", "{allowed}", {"allowed": allowed, "value": value, "at": at})


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


# --------------------------------------------------------------------------------------------
# Leaf rules: each checks a value the way its consumer reads it and gives the JSON Schema
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Rule:
    """Annotated metadata: ``check`` runs before pydantic's own validation; ``schema`` is merged
    into the generated JSON Schema of the field."""

    check: Callable[[Any], Any]
    schema: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(schema)
        # An optional key (default null) is simply left out of a stack file: describe the value.
        branches = [b for b in out.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            out.update(branches[0])
        out.update(self.schema)
        return out

    def __hash__(self) -> int:
        return id(self)


def _text(pattern: str | None, what: str, *, optional: bool = False) -> _Rule:
    """A non-empty string, matching ``pattern`` (whole string) where given; ``optional``: or null."""
    rx = re.compile(pattern) if pattern else None

    def check(value: Any) -> Any:
        if value is None:
            if optional:
                return None
            raise _fail("this key is required", _MISSING)
        if not isinstance(value, str) or not value:
            raise _fail(f"expected a non-empty string{' (' + what + ')' if what else ''}", value)
        if rx is not None and not rx.fullmatch(value):
            raise _fail(f"expected {what}", value)
        return value

    return _Rule(check, {"minLength": 1, **({"pattern": f"^(?:{pattern})$"} if pattern else {})})


def _id_text(pattern: str, what: str) -> _Rule:
    """Like :func:`_text` (optional), but a YAML number is taken as its digits (GitHub IDs)."""
    inner = _text(pattern, what, optional=True)

    def check(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return inner.check(value)

    return _Rule(check, {"type": ["string", "integer"], "pattern": f"^(?:{pattern})$"})


def _whole(low: int, high: int) -> _Rule:
    def check(value: Any) -> int:
        # YAML gives ints; Pulumi CLI config of a top-level scalar gives strings: accept both,
        # but never a bool (True is an int in Python) or a float.
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _fail(f"expected a whole number from {low} to {high}", value)
        return value

    return _Rule(check, {"minimum": low, "maximum": high})


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise _fail("expected true or false", value)


def _choice(literal: Any) -> _Rule:
    choices = get_args(literal)

    def check(value: Any) -> Any:
        if value not in choices:
            raise _fail(f"expected one of: {', '.join(choices)}", value)
        return value

    return _Rule(check)


def _list_of(what: str, *, min_items: int = 0, unique: bool = True) -> _Rule:
    """A YAML list (a JSON array from the CLI); items are validated by their own type."""

    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _fail(f"expected a list of {what}", value)
        if len(value) < min_items:
            raise _fail(f"expected at least {min_items} {what}", list(value))
        if unique:
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    raise _fail(f"duplicate entry; each of the {what} must be unique", item, i)
                seen.append(item)
        return value

    schema: dict[str, Any] = {"minItems": min_items} if min_items else {}
    return _Rule(check, {**schema, **({"uniqueItems": True} if unique else {})})


def _ipv4_cidr(value: Any) -> str:
    if isinstance(value, str):
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError:
            net = None
        if net is not None and net.version == 4:
            return value
    raise _fail("expected an IPv4 network in CIDR form, such as 10.10.0.0/16", value)


def _kubernetes_version(value: Any) -> str:
    # EKS takes the minor version as a string ("1.35"); the ones it still supports at standard
    # price, and the add-on versions pinned for each, are the tables in infra/versions.py. A
    # version without pinned add-on versions is refused here, not by CreateAddon mid-update.
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads an unquoted 1.35 as a number (and 1.30 as 1.3), which EKS would not take.
        raise _fail(
            'expected a quoted string such as "1.35": YAML reads an unquoted version as a number', value
        )
    problem = versions.kubernetes_version_problem(value)
    if problem is not None:
        raise _fail(problem, value)
    return str(value)


# Semantic Versioning 2.0.0, the regular expression the specification itself gives
# (https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string).
# Helm requires a chart's version to be SemVer 2 ("version: A SemVer 2 version (required)",
# https://helm.sh/docs/topics/charts/#the-chartyaml-file; Helm's maintainers in helm/helm#9728:
# "version strings must comply with the Semantic version 2.0 specification"), and an exact
# version pins one chart, where a range ("10.x", "~10.1") would let a new chart in unreviewed.
SEMVER_PATTERN = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def _chart_version(example: str) -> _Rule:
    return _text(SEMVER_PATTERN, f"an exact chart version such as {example}")


# The tag scheme CI writes (build-images.yml): YYYYMMDD.HHMMSS-<short sha>. Sortable as text,
# unique per build, never reused: what an immutable repository and Image Updater both need.
DEFAULT_ALLOW_TAGS = r"regexp:^[0-9]{8}\.[0-9]{6}-[0-9a-f]{7,40}$"
_CI_TAG_EXAMPLE = "20261122.063000-0123abc"


def go_regexp_difference(expr: str) -> str | None:
    """What in ``expr`` RE2 compiles but Go's regexp refuses, or None.

    Go's regexp/syntax is RE2's syntax minus what its documentation leaves out
    (https://pkg.go.dev/regexp/syntax, generated from RE2's syntax list): ``\\C`` (any byte)
    is the one such construct; Go's parser returns ErrInvalidEscape for it (golang/go
    src/regexp/syntax/parse.go, ``case 'C': // any byte; not supported``), while RE2 (and
    google-re2, which :func:`image_updater_tag_matches` compiles with) accepts it. ``\\Q...\\E``
    text is literal in both, so a ``\\C`` there is no escape.
    """
    i = 0
    while i < len(expr):
        if expr.startswith("\\Q", i):
            end = expr.find("\\E", i + 2)
            i = len(expr) if end < 0 else end + 2
        elif expr[i] == "\\":
            if expr[i + 1 : i + 2] == "C":
                return "\\C (any byte), which Go's regexp refuses (invalid escape)"
            i += 2
        else:
            i += 1
    return None


def image_updater_tag_matches(allow_tags: str, tag: str) -> bool | None:
    """Whether Image Updater v1.2.2 lets ``tag`` through ``allow_tags``; None if it cannot compile it.

    argocd-image-updater v1.2.2, registry-scanner/pkg/image/options.go (ParseMatch): the text
    before the first ``:`` is the match function, compared case-insensitively (only ``regexp``
    exists besides ``any``); the rest is compiled with Go's ``regexp.Compile`` (RE2 syntax) and,
    if that fails, only logged: no tag ever matches. matchfunc.go (MatchFuncRegexp) then uses
    ``Regexp.Match``, which is a search, not a whole-string match. google-re2 is the RE2 that
    Go's syntax follows; what RE2 accepts and Go does not (:func:`go_regexp_difference`) is
    refused too.
    """
    import re2

    kind, sep, expr = allow_tags.partition(":")
    if allow_tags.lower() == "any":
        return True
    if not sep or kind.lower() != "regexp" or go_regexp_difference(expr) is not None:
        return None
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(expr, options)
    except re2.error:
        return None
    return compiled.search(tag) is not None


def _allow_tags(value: Any) -> str:
    if not isinstance(value, str) or not value.lower().startswith("regexp:"):
        raise _fail("expected 'regexp:<pattern>' matching the CI tag scheme", value)
    difference = go_regexp_difference(value.partition(":")[2])
    if difference is not None:
        raise _fail(
            f"expected a regular expression Image Updater can compile (Go RE2 syntax); it has "
            f"{difference}, so it would silently match no tag",
            value,
        )
    matches = image_updater_tag_matches(value, _CI_TAG_EXAMPLE)
    if matches is None:
        raise _fail(
            "expected a regular expression Image Updater can compile (Go RE2 syntax: no lookaround or "
            "backreferences); it would silently match no tag",
            value,
        )
    if not matches:
        raise _fail(
            "expected a pattern that accepts the CI tag scheme YYYYMMDD.HHMMSS-<short sha>, "
            f"e.g. {_CI_TAG_EXAMPLE}",
            value,
        )
    return value


def _repo_url(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not re.fullmatch(r"https://[A-Za-z0-9.-]+/[A-Za-z0-9._/-]+?(\.git)?", value)
        or "*" in value
    ):
        raise _fail(
            "expected an https Git URL without wildcards, such as https://github.com/acme/platform.git",
            value,
        )
    return value


_TAG_KEY_RE = re.compile(r"^[A-Za-z0-9 _.:/=+@-]{1,128}$")


def _tags(value: Any) -> dict[str, str]:
    # AWS tag rules: https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html (keys of
    # 1-128 characters, values up to 256, the aws: prefix reserved).
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail("expected a map of tag name to string value", value)
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _TAG_KEY_RE.match(key) or key.lower().startswith("aws:"):
            raise _fail("expected a tag key of 1-128 characters not starting with aws:", key, str(key))
        if not isinstance(item, str) or len(item) > 256:
            raise _fail("expected a string tag value of at most 256 characters", item, key)
        out[key] = item
    return out


# Patterns of the systems that read each value.
# AWS account ID: 12 digits (https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-identifiers.html).
AccountId = Annotated[str, _text(r"[0-9]{12}", "a 12-digit AWS account ID (quote it in YAML)")]
_ENV = _text(r"[a-z][a-z0-9]{1,11}", "staging, prod, or another lower-case name of 2-12 letters and digits")
# An ECR repository is <prefix>/<service>; ECR's name pattern allows more, these stay DNS-like.
_SERVICE = _text(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "a lower-case service name such as api")
_PREFIX = _text(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", "a lower-case name such as shop")
_BRANCH = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}"
_GH_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
# GitHub's numeric IDs (the owner_id/repository_id claims of its OIDC tokens).
_GH_ID = r"[1-9][0-9]{0,19}"
# IAM role ARN: role path and name characters of the IAM API (CreateRole: RoleName of ASCII letters,
# digits and _+=,.@- with 1-64 characters, Path of printable ASCII between slashes;
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
ROLE_ARN_RE = re.compile(r"^arn:aws:iam::([0-9]{12}):role/(?:[!-~]*/)?[A-Za-z0-9_+=,.@-]{1,64}$")
_OIDC_ARN = r"arn:aws:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com"


def _instance_type(value: Any) -> str:
    if not isinstance(value, str) or value not in ec2_instance_types():
        hint = _did_you_mean(value, sorted(ec2_instance_types())) if isinstance(value, str) else ""
        raise _fail(
            f"{hint}expected an EC2 instance type such as m6i.large (botocore's EC2 InstanceType list)", value
        )
    if not _eks.can_be_a_node(value):
        raise _fail(
            "EC2 Mac instances run only on Dedicated Hosts and cannot be EKS managed nodes; "
            "expected a Linux instance type such as m6i.large or m7g.large",
            value,
        )
    return value


# EC2 instance type: family.size (https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html).
_INSTANCE = _Rule(_instance_type, {"type": "string", "pattern": r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$"})
# Kubernetes DNS-1123 label (namespaces, names).
_K8S_NAME = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_HOST = r"(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------

# YAML keys are the fields' aliases (camelCase); unknown keys are errors, never ignored.
_SECTION = ConfigDict(
    extra="forbid", validate_by_alias=True, validate_by_name=False, hide_input_in_errors=False
)


def _from(source: str) -> dict[str, Any]:
    """Marks a field whose default comes from another key (``source``, filled in by
    :func:`_with_derived_defaults`): required in the model, optional in a stack file."""
    return {"x-defaultFrom": source}


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


class _Object:
    """Every section is a YAML map: anything else is refused with the keys it takes."""

    @model_validator(mode="before")
    @classmethod
    def _is_a_map(cls, value: Any) -> Any:
        if isinstance(value, ArgsKwargs | Mapping):
            return value
        if value is None:
            raise _fail("this key is required", _MISSING)
        raise _fail(f"expected an object with keys {', '.join(_aliases(cls))}", value)


@_pydantic_dataclass(frozen=True, config=_SECTION)
class NodeGroupConfig(_Object):
    instance_types: Annotated[
        tuple[Annotated[str, _INSTANCE], ...], _list_of("EC2 instance types", min_items=1)
    ] = Field(
        alias="instanceTypes", description="EC2 instance types of the managed node group, such as m6i.large."
    )
    min_size: Annotated[int, _whole(1, 450)] = Field(alias="minSize", description="Fewest nodes.")
    desired_size: Annotated[int, _whole(1, 450)] = Field(
        alias="desiredSize", description="Nodes at creation (minSize <= desiredSize <= maxSize)."
    )
    max_size: Annotated[int, _whole(1, 450)] = Field(alias="maxSize", description="Most nodes.")
    capacity_type: Annotated[CapacityType, _choice(CapacityType)] = Field(
        "ON_DEMAND", alias="capacityType", description="ON_DEMAND or SPOT; prod allows ON_DEMAND only."
    )
    disk_size_gib: Annotated[int, _whole(20, 1000)] = Field(
        50, alias="diskSizeGiB", description="Root volume of each node, in GiB."
    )

    @field_validator("instance_types")
    @classmethod
    def _one_architecture(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # One managed node group runs one AMI type (AL2023_x86_64_STANDARD or
        # AL2023_ARM_64_STANDARD: infra/documents/eks.py ami_type), so one CPU architecture.
        by_arch: dict[str, list[str]] = {}
        for instance_type in value:
            by_arch.setdefault(_eks.instance_architecture(instance_type), []).append(instance_type)
        if len(by_arch) > 1:
            mix = "; ".join(f"{arch}: {', '.join(types)}" for arch, types in sorted(by_arch.items()))
            raise _fail(
                f"expected instance types of one CPU architecture (a node group runs one AMI type), got {mix}",
                list(value),
            )
        return value

    @field_validator("capacity_type")
    @classmethod
    def _prod_on_demand(cls, value: str, info: ValidationInfo) -> str:
        if _context(info).get("environment") == "prod" and value != "ON_DEMAND":
            raise _fail("prod nodes must be ON_DEMAND (spot capacity can vanish)", value)
        return value

    @model_validator(mode="after")
    def _sizes_in_order(self) -> NodeGroupConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            sizes = {"minSize": self.min_size, "desiredSize": self.desired_size, "maxSize": self.max_size}
            raise _fail("expected minSize <= desiredSize <= maxSize", sizes)
        return self


@_pydantic_dataclass(frozen=True, config=_SECTION)
class RegionConfig(_Object):
    # The key of the region's entry under platform:regions (not written inside it).
    name: Annotated[str, _Rule(_region_rule)] = Field(description="The AWS region (the map key).")
    vpc_cidr: Annotated[str, _Rule(_ipv4_cidr, {"pattern": r"^[0-9./]+$"})] = Field(
        alias="vpcCidr",
        description="The VPC's IPv4 network, /16 to /20, not overlapping another region's.",
    )
    availability_zones: Annotated[
        tuple[Annotated[str, _text(None, "an availability zone name")], ...], _list_of("availability zones")
    ] = Field(
        alias="availabilityZones",
        description="2 to 6 availability zones of this region (its code and a letter). Checked by form "
        "only: which letters an account has is not known offline (names are mapped per account), so a "
        "zone the account lacks fails only when pulumi up creates its subnet.",
    )
    kubernetes_version: Annotated[
        str, _Rule(_kubernetes_version, {"enum": list(versions.usable_kubernetes_versions())})
    ] = Field(alias="kubernetesVersion", description="EKS Kubernetes minor version, one in standard support.")
    nat_gateways: Annotated[NatMode, _choice(NatMode)] = Field(
        json_schema_extra=_from("environment"),
        alias="natGateways",
        description="single or perAz. Default: perAz in prod, single elsewhere.",
    )
    public_access_cidrs: Annotated[
        tuple[Annotated[str, _Rule(_ipv4_cidr)], ...],
        _list_of("CIDRs allowed to reach the public API endpoint"),
    ] = Field(
        (),
        alias="publicAccessCidrs",
        description="CIDRs allowed to reach the public EKS API endpoint; empty for a private-only endpoint. "
        "Never 0.0.0.0/0 in prod.",
    )
    node_group: NodeGroupConfig = Field(alias="nodeGroup", description="The managed node group.")

    @field_validator("vpc_cidr")
    @classmethod
    def _room_for_subnets(cls, value: str) -> str:
        if not 16 <= ipaddress.ip_network(value).prefixlen <= 20:
            raise _fail("expected a VPC network from /16 to /20 (room for six subnets)", value)
        return value

    @field_validator("availability_zones")
    @classmethod
    def _zones_of_this_region(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # An availability zone's name is its region's code followed by a letter
        # (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html);
        # EKS places cluster subnets in availability zones only, not Local or Wavelength Zones.
        # Only the form is checked: the letters an account has are not listed anywhere offline
        # (botocore's data holds no zone list, only API examples) and differ by account, since
        # AWS maps zone names per account in its oldest regions
        # (https://docs.aws.amazon.com/global-infrastructure/latest/regions/az-ids.html).
        region = info.data.get("name")
        if region is None:
            return value
        for i, zone in enumerate(value):
            if not re.fullmatch(re.escape(region) + r"[a-z]", zone):
                raise _fail(f"expected an availability zone of {region}, such as {region}a", zone, i)
        if len(value) < 2:
            raise _fail(
                "expected at least 2 availability zones (EKS needs subnets in two zones)", list(value)
            )
        if len(value) > 6:
            raise _fail("expected at most 6 availability zones", list(value))
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _prod_never_open(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if _context(info).get("environment") == "prod":
            for i, cidr in enumerate(value):
                if ipaddress.ip_network(cidr).prefixlen == 0:
                    raise _fail(
                        "prod's public API endpoint must never be open to the internet; list office/VPN "
                        "CIDRs or leave publicAccessCidrs empty for a private-only endpoint",
                        cidr,
                        i,
                    )
        return value


@_pydantic_dataclass(frozen=True, config=_SECTION)
class EcrConfig(_Object):
    prefix: Annotated[str, _PREFIX] = Field(
        json_schema_extra=_from("application"),
        description="Repository name prefix (<prefix>/<service>). Default: platform:application's name.",
    )
    untagged_expiry_days: Annotated[int, _whole(1, 365)] = Field(
        14, alias="untaggedExpiryDays", description="Days after which untagged images expire."
    )
    keep_tagged_count: Annotated[int, _whole(10, 10000)] = Field(
        100, alias="keepTaggedCount", description="Tagged images kept per repository."
    )
    scanning: Annotated[ScanMode, _choice(ScanMode)] = Field(
        "basic", description="Image scanning: basic or enhanced (Amazon Inspector)."
    )
    # Where the staging registry's single replication configuration lives, and where CI pushes.
    primary_region: Annotated[str, _Rule(_region_rule)] = Field(
        json_schema_extra=_from("hubRegion"),
        alias="primaryRegion",
        description="The region CI pushes to and the replication configuration lives in. Default: hubRegion.",
    )


# GitHub accepts up to six teams and six users as required reviewers of an environment:
# https://docs.github.com/en/rest/deployments/environments#create-or-update-an-environment
MAX_REVIEWERS = 6


@_pydantic_dataclass(frozen=True, config=_SECTION)
class GitHubReviewersConfig(_Object):
    teams: Annotated[
        tuple[Annotated[int, _whole(1, 2**63 - 1)], ...], _list_of("numeric GitHub team IDs")
    ] = Field((), description=f"Numeric IDs of the teams that approve (at most {MAX_REVIEWERS}).")
    users: Annotated[
        tuple[Annotated[int, _whole(1, 2**63 - 1)], ...], _list_of("numeric GitHub user IDs")
    ] = Field((), description=f"Numeric IDs of the users who approve (at most {MAX_REVIEWERS}).")

    @field_validator("teams", "users")
    @classmethod
    def _at_most_six(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) > MAX_REVIEWERS:
            raise _fail(
                f"GitHub accepts at most {MAX_REVIEWERS} required reviewers of each kind", list(value)
            )
        return value


@_pydantic_dataclass(frozen=True, config=_SECTION)
class GitHubConfig(_Object):
    owner: Annotated[str, _text(_GH_NAME, "a GitHub owner name (no wildcards)")] = Field(
        description="The GitHub owner (user or organization) of the repository."
    )
    repository: Annotated[str, _text(_GH_NAME, "a GitHub repository name (no wildcards)")] = Field(
        description="The repository whose workflows assume the roles."
    )
    owner_id: Annotated[str | None, _id_text(_GH_ID, "the owner's numeric GitHub ID")] = Field(
        None, alias="ownerId", description="The owner's numeric GitHub ID (required when subjectForm is id)."
    )
    repository_id: Annotated[str | None, _id_text(_GH_ID, "the repository's numeric GitHub ID")] = Field(
        None,
        alias="repositoryId",
        description="The repository's numeric ID (required when subjectForm is id).",
    )
    subject_form: Annotated[SubjectForm, _choice(SubjectForm)] = Field(
        "name",
        alias="subjectForm",
        description="OIDC subject form: name (repo:OWNER/REPO:...) or id (repo:OWNER@ID/REPO@ID:...).",
    )
    deploy_branches: Annotated[
        tuple[Annotated[str, _text(_BRANCH, "a branch name without wildcards, such as deploy/staging")], ...],
        _list_of("branch names"),
    ] = Field(
        json_schema_extra=_from("environment"),
        alias="deployBranches",
        description="Branches CI builds and pushes images from. Default: none in prod, "
        "deploy/staging and deploy/debug elsewhere.",
    )
    environment: Annotated[str, _text(_BRANCH, "a GitHub environment name")] = Field(
        json_schema_extra=_from("environment"),
        description="The GitHub environment of this stack's up job. Default: platform:environment.",
    )
    deploy_environment: Annotated[str, _text(_BRANCH, "a GitHub environment name")] = Field(
        "production", alias="deployEnvironment", description="The GitHub environment of the prod deploy job."
    )
    existing_oidc_provider_arn: Annotated[
        str | None,
        _text(
            _OIDC_ARN,
            "the ARN of an existing token.actions.githubusercontent.com OIDC provider",
            optional=True,
        ),
    ] = Field(
        None,
        alias="oidcProviderArn",
        description="Use this existing GitHub OIDC provider of the account instead of creating one.",
    )
    # Who approves a job in this stack's environments (prod: github.environment and
    # deployEnvironment; another stack: its github.environment), all declared by prod's stack
    # (infra/components/github_repository.py).
    reviewers: GitHubReviewersConfig | None = Field(
        None,
        description="Required reviewers of this stack's GitHub environments, which prod's stack declares: "
        "{teams: [id], users: [id]} (numeric GitHub IDs). Required in prod; optional elsewhere.",
    )
    # Day 0: the CodeConnections connection is PENDING until a person authorizes it in the
    # console, and CodeBuild's CreateProject (CODECONNECTIONS auth) and CreateWebhook use the
    # connection at once (aws/aws-cdk#38504, hashicorp/terraform-provider-aws#40656), so the first
    # `up` declares the connection and the project's role alone (infra/components/runner.py).
    runner_connection_authorized: Annotated[bool, _Rule(_flag)] = Field(
        True,
        alias="runnerConnectionAuthorized",
        description="false on day 0: declare only the runners' CodeConnections connection (PENDING until a "
        "person authorizes it in the AWS console) and the project's role; set true (or remove) after "
        "authorizing it and run pulumi up again to declare the CodeBuild project and webhook.",
    )

    # The repository's GitHub plan and visibility decide which of the protections prod's stack
    # declares exist (infra/documents/github_plans.py): without them a role would trust an
    # environment nothing protects, so they are required and checked below.
    plan: Annotated[GitHubPlan, _choice(GitHubPlan)] = Field(
        description="The GitHub plan of the repository's owner: free, pro (a personal account), team "
        "(an organization) or enterprise (GitHub Enterprise Cloud). Decides which environment "
        'protections and rulesets exist (docs/github-actions.md, "What the GitHub plan must offer").'
    )
    visibility: Annotated[RepositoryVisibility, _choice(RepositoryVisibility)] = Field(
        description="The repository's visibility: public, private or internal (internal: GitHub Enterprise "
        "Cloud only)."
    )

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.repository}"

    @property
    def reviewer_teams(self) -> tuple[int, ...]:
        return self.reviewers.teams if self.reviewers is not None else ()

    @property
    def reviewer_users(self) -> tuple[int, ...]:
        return self.reviewers.users if self.reviewers is not None else ()

    @model_validator(mode="after")
    def _ids_for_the_id_form(self) -> GitHubConfig:
        if self.subject_form == "id" and (self.owner_id is None or self.repository_id is None):
            missing = "ownerId" if self.owner_id is None else "repositoryId"
            raise _fail(
                "required when github.subjectForm is id (subjects look like repo:OWNER@ID/REPO@ID:...)",
                _MISSING,
                missing,
            )
        return self

    @model_validator(mode="after")
    def _plan_offers_the_protection(self) -> GitHubConfig:
        # Prod's stack declares this stack's environment with its main-only branch rule (and its
        # reviewers, if any) and the ruleset on main; prod's roles trust those environments. A
        # plan without one of them leaves a trusted environment unprotected: refused.
        if not _github_plans.visibility_exists(self.plan, self.visibility):
            raise _fail(
                f"a {self.plan} plan has no internal repositories (GitHub Enterprise Cloud only); "
                "allowed: public or private, or plan enterprise",
                self.visibility,
                "visibility",
            )
        reviewers = bool(self.reviewer_teams or self.reviewer_users)
        lacking = _github_plans.missing(self.plan, self.visibility, reviewers=reviewers)
        if lacking:
            needed = [
                plan
                for plan in _github_plans.PLANS
                if all(plan in _github_plans.plans_offering(p, self.visibility) for p in lacking)
            ]
            raise _fail(
                f"on GitHub {self.plan} a {self.visibility} repository has no "
                f"{' and no '.join(_github_plans.WHAT[p] for p in lacking)}: the environments this "
                f"stack's roles trust would be unprotected; allowed: {', '.join(needed)}, or visibility public",
                self.plan,
                "plan",
            )
        return self


@_pydantic_dataclass(frozen=True, config=_SECTION)
class ArgoCdConfig(_Object):
    chart_version: Annotated[str, _chart_version("10.1.1")] = Field(
        versions.ARGO_CD_CHART_VERSION, alias="chartVersion", description="Exact argo-cd Helm chart version."
    )
    ha: Annotated[bool, _Rule(_flag)] = Field(
        json_schema_extra=_from("environment"),
        description="Highly available Argo CD (replicated, with PDBs). Default: true in prod.",
    )
    sync: Annotated[SyncMode, _choice(SyncMode)] = Field(
        json_schema_extra=_from("environment"),
        description="automated or manual sync of the ApplicationSet's Applications. Default: manual in prod.",
    )
    hostname: Annotated[str | None, _text(_HOST, "a DNS name such as argocd.example.com", optional=True)] = (
        Field(None, description="Argo CD's public host name, if it has one.")
    )


# A Secrets Manager secret name: letters, digits and /_+=.@- (AWS Secrets Manager CreateSecret,
# "Name": https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html).
# No ':' so a URL pasted where the NAME belongs is refused.
_SECRET_NAME = r"[A-Za-z0-9/_+=.@-]{1,512}"


@_pydantic_dataclass(frozen=True, config=_SECTION)
class GitHubAppConfig(_Object):
    app_id: Annotated[int, _whole(1, 10**15)] = Field(
        alias="appId", description="The GitHub App's numeric App ID (not secret)."
    )
    installation_id: Annotated[int, _whole(1, 10**15)] = Field(
        alias="installationId",
        description="The numeric ID of the App's installation on the repository's owner (not secret).",
    )


@_pydantic_dataclass(frozen=True, config=_SECTION)
class NotificationsConfig(_Object):
    github_app: GitHubAppConfig | None = Field(
        None,
        alias="githubApp",
        description="The GitHub App (appId, installationId) Argo CD's notifications controller records the "
        "automatic syncs with, as GitHub deployments <env>/<region>; its private key is the Secrets Manager "
        "secret platform/<env>/argocd/notifications-github-app-key in the hub region (docs/deploy.md). "
        "Only for a stack whose Applications sync by themselves (argocd.sync automated).",
    )
    chat_webhook_secret: Annotated[
        str | None,
        _text(
            _SECRET_NAME,
            "a Secrets Manager secret name such as platform/prod/chat-webhook, not the URL",
            optional=True,
        ),
    ] = Field(
        None,
        alias="chatWebhookSecret",
        description="The NAME of the Secrets Manager secret (hub region, under platform/<env>/) whose value "
        "is the chat webhook URL that sync failures, Degraded health and aborted canaries are posted to. "
        "Never the URL itself.",
    )


@_pydantic_dataclass(frozen=True, config=_SECTION)
class ImageUpdaterConfig(_Object):
    chart_version: Annotated[str, _chart_version("1.2.4")] = Field(
        versions.IMAGE_UPDATER_CHART_VERSION,
        alias="chartVersion",
        description="Exact argocd-image-updater Helm chart version.",
    )
    update_strategy: Annotated[UpdateStrategy, _choice(UpdateStrategy)] = Field(
        "alphabetical", alias="updateStrategy", description="How Image Updater picks the newest tag."
    )
    allow_tags: Annotated[str, _Rule(_allow_tags, {"pattern": "^[Rr][Ee][Gg][Ee][Xx][Pp]:"})] = Field(
        DEFAULT_ALLOW_TAGS,
        alias="allowTags",
        description="regexp:<RE2 pattern> of the tags Image Updater may deploy; must accept CI's tags.",
    )
    write_back_method: Annotated[WriteBackMethod, _choice(WriteBackMethod)] = Field(
        "argocd", alias="writeBackMethod", description="argocd (parameter overrides) or git (commits)."
    )
    git_branch: Annotated[str | None, _text(_BRANCH, "a branch name", optional=True)] = Field(
        None, alias="gitBranch", description="Branch Image Updater commits to (writeBackMethod git only)."
    )

    @model_validator(mode="after")
    def _branch_only_for_git(self) -> ImageUpdaterConfig:
        if self.write_back_method == "argocd" and self.git_branch is not None:
            raise _fail("only allowed when imageUpdater.writeBackMethod is git", self.git_branch, "gitBranch")
        return self


@_pydantic_dataclass(frozen=True, config=_SECTION)
class ApplicationConfig(_Object):
    name: Annotated[str, _text(_K8S_NAME, "a DNS-1123 label such as shop")] = Field(
        description="The application's name (a DNS-1123 label)."
    )
    repo_url: Annotated[str, _Rule(_repo_url, {"pattern": "^https://"})] = Field(
        alias="repoUrl", description="https URL of the Git repository holding the chart."
    )
    chart: Annotated[str, _text(_K8S_NAME, "a chart directory name under charts/")] = Field(
        json_schema_extra=_from("application.name"),
        description="Chart directory under charts/. Default: the application's name.",
    )
    revision: Annotated[str, _text(_BRANCH, "a branch, tag or commit")] = Field(
        "main", description="Git revision Argo CD tracks."
    )
    namespace: Annotated[str, _text(_K8S_NAME, "a Kubernetes namespace name")] = Field(
        json_schema_extra=_from("application.name"),
        description="Namespace the application runs in. Default: the application's name.",
    )

    @property
    def path(self) -> str:
        return f"charts/{self.chart}"

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, value: str) -> str:
        if value in ("argocd", "kube-system", "default", "kube-public"):
            raise _fail("expected a namespace of the application's own", value)
        return value


@_pydantic_dataclass(frozen=True, config=_SECTION)
class DeployConfig(_Object):
    region_order: Annotated[tuple[Annotated[str, _Rule(_region_rule)], ...], _list_of("regions")] = Field(
        json_schema_extra=_from("regions"),
        alias="regionOrder",
        description="Order the prod deploy command goes through the regions; unlisted regions follow. "
        "Default: the spokes, then the hub.",
    )
    timeout_seconds: Annotated[int, _whole(30, 7200)] = Field(
        900, alias="timeoutSeconds", description="How long the deploy waits for each region, in seconds."
    )


@_pydantic_dataclass(frozen=True, config=_SECTION)
class AddonConfig(_Object):
    chart_version: Annotated[str, _chart_version("3.13.1")] = Field(
        alias="chartVersion",
        description="Exact chart version this environment runs (infra/versions.py ADDON_CHARTS names the chart).",
    )
    regions: Annotated[
        tuple[Annotated[str, _Rule(_region_rule)], ...] | None, _Rule(_optional_regions, {"minItems": 1})
    ] = Field(None, description="The regions whose clusters run it. Default: every region of the stack.")


# Route 53 reads a hosted zone ID as the last '/'-separated piece of what it is given (botocore
# handlers.py fix_route53_ids, so "/hostedzone/Z0123..." and "Z0123..." name the same zone) and
# refuses one longer than 32 characters (botocore data/route53/2013-04-01 service-2.json, shape
# ResourceId: max 32). The IDs it issues are upper-case letters and digits.
_ZONE_ID = r"(?:/hostedzone/)?[A-Z0-9]{1,32}"
# Route 53 health checks: RequestInterval is 10 or 30 seconds (fast or standard), FailureThreshold
# 1 to 10, ResourcePath at most 255 characters (botocore route53 service-2.json, shapes
# RequestInterval, FailureThreshold, ResourcePath; https://docs.aws.amazon.com/Route53/latest/
# DeveloperGuide/health-checks-creating-values.html: "10 seconds or 30 seconds").
HEALTH_CHECK_INTERVALS = (10, 30)


def _health_check_interval(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        value = int(value)
    if isinstance(value, bool) or value not in HEALTH_CHECK_INTERVALS:
        raise _fail(
            "expected 10 or 30 (seconds: Route 53 offers fast and standard health checks only)", value
        )
    return int(value)


def _zone_id(value: Any) -> str:
    checked = _text(_ZONE_ID, "a Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ").check(value)
    return str(checked).rsplit("/", 1)[-1]


@_pydantic_dataclass(frozen=True, config=_SECTION)
class TrafficConfig(_Object):
    """How users reach the storefront (docs/traffic.md): the zone, the names, the health checks."""

    hosted_zone_id: Annotated[
        str, _Rule(_zone_id, {"type": "string", "minLength": 1, "pattern": f"^{_ZONE_ID}$"})
    ] = Field(
        alias="hostedZoneId",
        description="ID of an existing public Route 53 hosted zone in this stack's account (the one for "
        "zoneName), such as Z0123456789ABCDEFGHIJ; /hostedzone/<id> is read as <id>.",
    )
    zone_name: Annotated[str, _text(_HOST, "the hosted zone's DNS name, such as shop.example.com")] = Field(
        alias="zoneName",
        description="DNS name of that hosted zone; every name below is inside it. Staging and prod each "
        "own theirs (a zone or a delegated subdomain in their own account).",
    )
    host: Annotated[str, _text(_HOST, "a DNS name inside zoneName, such as www.shop.example.com")] = Field(
        json_schema_extra=_from("zoneName"),
        description="The public name users type; Route 53 latency records send each user to the nearest "
        "healthy region. Each region also answers at <region>.<host> (checks, operators). "
        "Default: www.<zoneName>.",
    )
    waf: Annotated[bool, _Rule(_flag)] = Field(
        json_schema_extra=_from("environment"),
        description="A regional AWS WAF web ACL with AWS managed rule groups in front of each region's load "
        "balancer. Default: true in prod (required there), false elsewhere.",
    )
    health_check_path: Annotated[
        str, _text(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,254}", "an absolute URL path such as /healthz")
    ] = Field(
        "/healthz",
        alias="healthCheckPath",
        description="Path Route 53's health checks and the load balancer request over HTTPS on each "
        "region's name; the storefront answers it with 2xx/3xx while it can serve.",
    )
    health_check_interval_seconds: Annotated[
        int, _Rule(_health_check_interval, {"type": "integer", "enum": list(HEALTH_CHECK_INTERVALS)})
    ] = Field(
        30,
        alias="healthCheckIntervalSeconds",
        description="Seconds between a Route 53 health checker's requests: 10 (fast, charged extra) or 30. "
        "Fixed once the health check exists (changing it replaces the check).",
    )
    failure_threshold: Annotated[int, _whole(1, 10)] = Field(
        3,
        alias="failureThreshold",
        description="Consecutive failed requests before Route 53 considers a region unhealthy (1 to 10).",
    )

    def region_host(self, region: str) -> str:
        """The name of one region's load balancer: ``<region>.<host>``."""
        return f"{region}.{self.host}"

    @field_validator("host")
    @classmethod
    def _host_in_zone(cls, value: str, info: ValidationInfo) -> str:
        zone = info.data.get("zone_name")
        if zone is not None and not value.endswith("." + zone):
            raise _fail(
                f"expected a name inside zoneName {zone} (such as www.{zone}): the program validates "
                "its certificate and ExternalDNS writes its records in that zone only",
                value,
            )
        # <region>.<host> must stay a valid DNS name (253 characters) for the longest region.
        if zone is not None and len(value) + 1 + max(len(r) for r in KNOWN_REGIONS) > 253:
            raise _fail("too long: <region>.<host> must fit in 253 characters", value)
        return value

    @field_validator("waf")
    @classmethod
    def _prod_has_a_waf(cls, value: bool, info: ValidationInfo) -> bool:
        if _context(info).get("environment") == "prod" and not value:
            raise _fail("prod's storefront is always behind AWS WAF; expected true (or leave it out)", value)
        return value


#: The add-ons platform:traffic needs in every region of the stack, with what each does there
#: (docs/traffic.md, "Who owns what"): without them a region has its certificate and health check
#: but no load balancer and no records, and nothing says so until users cannot reach it.
TRAFFIC_ADDONS: dict[str, str] = {
    "aws-load-balancer-controller": "creates the region's load balancer from the chart's Ingresses",
    "external-dns": "writes the region's DNS records (the public name's latency record and the region's name)",
}


def _optional_regions(value: Any) -> Any:
    return None if value is None else _list_of("regions", min_items=1).check(value)


def _addon_entries(value: Any) -> Any:
    """platform:addons is a map of add-on name (a key of infra/versions.py ADDON_CHARTS) to settings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail("expected a map of add-on name to {chartVersion, regions}", value)
    for name in value:
        if name not in versions.ADDON_CHARTS:
            raise _fail(
                f"unknown add-on; {_did_you_mean(str(name), list(versions.ADDON_CHARTS))}"
                f"expected one of: {', '.join(versions.ADDON_CHARTS)}",
                name,
                name,
            )
    return value


_ADDONS_SCHEMA = {"type": "object", "propertyNames": {"enum": list(versions.ADDON_CHARTS)}}


def _region_entries(value: Any) -> Any:
    """platform:regions is a map of region name to settings; the model keeps a tuple of them."""
    if not isinstance(value, Mapping) or not value:
        raise _fail("expected a non-empty map of AWS region name to its settings", value)
    return [{**body, "name": name} if isinstance(body, Mapping) else body for name, body in value.items()]


_REGIONS_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"enum": list(KNOWN_REGIONS)},
    "additionalProperties": {"$ref": "#/$defs/RegionConfig"},
}


@_pydantic_dataclass(frozen=True, config=_SECTION)
class StackConfig(_Object):
    # Not a key: the stack's name, from Pulumi (or the stack file's name).
    stack: str = Field(description="The stack's name (not a key).", exclude=True)
    environment: Annotated[Environment, _ENV] = Field(
        description="Environment name: staging, prod, or another lower-case name (e.g. debug)."
    )
    account_id: AccountId = Field(
        alias="accountId", description="The 12-digit AWS account this stack deploys into."
    )
    peer_account_id: AccountId = Field(
        alias="peerAccountId",
        description="The other account of the promotion pair: prod's account for staging (replication "
        "target), staging's account for prod (replication source).",
    )
    registry_role: Annotated[RegistryRole, _choice(RegistryRole)] = Field(
        json_schema_extra=_from("environment"),
        alias="registryRole",
        description="source (this account builds and pushes images; default for every environment but prod) "
        "or replica (receives images only by replication; default for prod).",
    )
    regions: Annotated[tuple[RegionConfig, ...], _Rule(_region_entries)] = Field(
        description="Map of region name to its settings: vpcCidr, availabilityZones, kubernetesVersion, "
        "natGateways, publicAccessCidrs, nodeGroup."
    )
    hub_region: Annotated[str, _Rule(_region_rule)] = Field(
        "us-west-2",
        alias="hubRegion",
        description="The region whose cluster runs Argo CD and Image Updater. Default us-west-2.",
    )
    account_region: Annotated[str, _Rule(_region_rule)] = Field(
        json_schema_extra=_from("hubRegion"),
        alias="accountRegion",
        description="The region of the AWS provider that declares the account-wide objects (IAM: the GitHub "
        "OIDC provider, the roles and policies with fixed names). IAM is global; this provider never follows "
        "the hub, so moving the hub changes nothing account-wide. Set it once and never change it "
        "(pulumi-aws replaces every resource of a provider whose region changes). Default: hubRegion.",
    )
    unreachable_regions: Annotated[tuple[Annotated[str, _Rule(_region_rule)], ...], _list_of("regions")] = (
        Field(
            (),
            alias="unreachableRegions",
            description="Disaster recovery only (docs/dr.md): regions whose AWS and Kubernetes endpoints do not answer. "
            "Their Kubernetes providers drop unreachable objects from the state (deleteUnreachable) and their AWS "
            "providers authenticate through a reachable region's STS. Each is one of the stack's regions or "
            "accountRegion; a replica (registryRole replica) may also keep its image source's lost ECR primary "
            "region after its hub left it (the stack-set check accepts the pair's primary regions disagreeing "
            "only while it is listed). Empty outside an incident.",
        )
    )
    cluster_admin_role_arn: Annotated[
        str,
        _text(
            ROLE_ARN_RE.pattern[1:-1], "an IAM role ARN such as arn:aws:iam::111122223333:role/PlatformAdmin"
        ),
    ] = Field(
        alias="clusterAdminRoleArn",
        description="IAM role granted cluster-admin on every cluster through an EKS access entry.",
    )
    services: Annotated[tuple[Annotated[str, _SERVICE], ...], _list_of("service names", min_items=1)] = Field(
        description="The services (one ECR repository each), in build order."
    )
    sentinel_service: Annotated[str, _text(None, "")] = Field(
        alias="sentinelService",
        description="The service whose image is pushed last; Image Updater watches it.",
    )
    application: ApplicationConfig = Field(
        description="What the ApplicationSet deploys: name, repoUrl, chart, revision, namespace."
    )
    ecr: EcrConfig = Field(
        json_schema_extra=_from("its keys' defaults"),
        description="Registry settings: prefix, untaggedExpiryDays, keepTaggedCount, scanning, primaryRegion.",
    )
    github: GitHubConfig = Field(
        description="GitHub settings: owner, repository, plan, visibility, ownerId, repositoryId, subjectForm, "
        "deployBranches, environment, deployEnvironment, oidcProviderArn, reviewers, runnerConnectionAuthorized."
    )
    argocd: ArgoCdConfig = Field(
        json_schema_extra=_from("its keys' defaults"),
        description="Argo CD settings: chartVersion, ha, sync (automated|manual), hostname.",
    )
    image_updater: ImageUpdaterConfig = Field(
        json_schema_extra=_from("its keys' defaults"),
        alias="imageUpdater",
        description="Image Updater settings: chartVersion, updateStrategy, allowTags, writeBackMethod "
        "(argocd|git), gitBranch.",
    )
    deploy: DeployConfig = Field(
        json_schema_extra=_from("its keys' defaults"),
        description="The prod deploy command: regionOrder, timeoutSeconds.",
    )
    addons: Annotated[Mapping[str, AddonConfig], _Rule(_addon_entries, _ADDONS_SCHEMA)] = Field(
        default_factory=dict,
        # Checked when absent too: platform:traffic needs two add-ons (_addons_follow_traffic).
        validate_default=True,
        description="Cluster add-ons Argo CD deploys (infra/addons.py): map of add-on name to chartVersion "
        "and optional regions (default: all).",
    )
    traffic: TrafficConfig | None = Field(
        default=None,
        description="How users reach the storefront (docs/traffic.md): hostedZoneId, zoneName, host, waf, "
        "healthCheckPath, healthCheckIntervalSeconds, failureThreshold. Needs the aws-load-balancer-controller "
        "and external-dns add-ons in every region. Without it nothing is reachable "
        "from outside the clusters.",
    )
    notifications: NotificationsConfig | None = Field(
        default=None,
        description="Argo CD notifications on the hub (optional): githubApp (release records of the automatic "
        "syncs) and chatWebhookSecret (the Secrets Manager secret NAME holding the chat webhook URL for "
        "failures). Needs the external-secrets add-on on the hub.",
    )
    tags: Annotated[
        Mapping[str, str], _Rule(_tags, {"additionalProperties": {"type": "string", "maxLength": 256}})
    ] = Field(default_factory=dict, description="Extra tags applied to every taggable AWS resource.")

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    def region(self, name: str) -> RegionConfig:
        for r in self.regions:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def spoke_regions(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions if r.name != self.hub_region)

    @property
    def reachable_regions(self) -> tuple[str, ...]:
        """The regions whose endpoints answer (all of them outside a DR incident), hub first."""
        first = [self.hub_region] if self.hub_region not in self.unreachable_regions else []
        return (*first, *(r for r in self.spoke_regions if r not in self.unreachable_regions))

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def builds_images(self) -> bool:
        """True for the account whose CI builds and pushes images (staging, debug, ...)."""
        return self.registry_role == "source"

    # -- defaults that depend on other keys, then rules across keys ------------------------------

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            return value
        return _with_derived_defaults(dict(value), _context(info))

    @field_validator("peer_account_id")
    @classmethod
    def _separate_accounts(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("account_id"):
            raise _fail(
                "must differ from platform:accountId: staging and prod live in separate accounts, and an "
                "account cannot be its own replication target",
                value,
            )
        return value

    @field_validator("regions")
    @classmethod
    def _separate_networks(cls, value: tuple[RegionConfig, ...]) -> tuple[RegionConfig, ...]:
        nets = [(r.name, ipaddress.ip_network(r.vpc_cidr)) for r in value]
        for i, (a, na) in enumerate(nets):
            for b, nb in nets[i + 1 :]:
                if na.overlaps(nb):
                    raise _fail(
                        f"overlaps regions.{a}.vpcCidr ({na}); every region needs its own address range "
                        "so the networks can be peered or routed later",
                        str(nb),
                        b,
                        "vpcCidr",
                    )
        return value

    @field_validator("hub_region")
    @classmethod
    def _hub_is_a_region(cls, value: str, info: ValidationInfo) -> str:
        return _one_of_the_stacks_regions(value, info)

    @field_validator("unreachable_regions")
    @classmethod
    def _unreachable_are_regions(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        names = _stack_region_names(info)
        account_region = info.data.get("account_region")
        # A replica keeps its image source's lost primary region after its hub moved out of it
        # (infra/dr.py, infra/stackset.py); no provider of the stack is in it, so it is inert here,
        # and the stack-set check (which knows the source) warns when it is not the source's. Each
        # entry is an AWS region already (the element's _region_rule): a typo is refused, not warned.
        replica = info.data.get("registry_role") == "replica"
        for i, region in enumerate(value):
            # The account's provider may stay in a region that left the stack (a moved hub).
            if region != account_region and not replica:
                _one_of_the_stacks_regions(region, info, i)
        if names and set(names) <= set(value):
            raise _fail(
                "at least one of the stack's regions must answer: the runbook runs through it", list(value)
            )
        return value

    @field_validator("cluster_admin_role_arn")
    @classmethod
    def _admin_in_this_account(cls, value: str, info: ValidationInfo) -> str:
        account = info.data.get("account_id")
        match = ROLE_ARN_RE.match(value)
        if account is not None and match is not None and match.group(1) != account:
            raise _fail(f"expected a role in this stack's account {account}", value)
        return value

    @field_validator("sentinel_service")
    @classmethod
    def _sentinel_is_a_service(cls, value: str, info: ValidationInfo) -> str:
        # The raw list when platform:services itself failed (one bad name must not hide this check).
        services = info.data.get("services", _context(info).get("services"))
        if services and value not in services:
            raise _fail(f"expected one of platform:services: {', '.join(map(str, services))}", value)
        return value

    @field_validator("ecr")
    @classmethod
    def _primary_is_a_region(cls, value: EcrConfig, info: ValidationInfo) -> EcrConfig:
        _one_of_the_stacks_regions(value.primary_region, info, "primaryRegion")
        return value

    @field_validator("github")
    @classmethod
    def _branches_follow_the_registry_role(cls, value: GitHubConfig, info: ValidationInfo) -> GitHubConfig:
        role = info.data.get("registry_role")
        if role == "source" and not value.deploy_branches:
            raise _fail(
                "a source registry needs at least one deploy branch for CI to push images from",
                [],
                "deployBranches",
            )
        if info.data.get("environment") == "prod" and not (value.reviewer_teams or value.reviewer_users):
            # Prod's environments gate every pulumi up and deploy of prod
            # (infra/components/github_repository.py): a gate nobody can open is refused here.
            raise _fail(
                "prod needs at least one reviewer (numeric team or user IDs, e.g. {teams: [1234567]}): "
                "its environments gate every pulumi up and deploy of prod",
                _MISSING,
                "reviewers",
            )
        if role == "replica" and value.deploy_branches:
            raise _fail(
                "a replica registry (prod) receives images only by replication; leave deployBranches empty",
                list(value.deploy_branches),
                "deployBranches",
            )
        return value

    @field_validator("image_updater")
    @classmethod
    def _git_write_back_not_onto_the_protected_branch(
        cls, value: ImageUpdaterConfig, info: ValidationInfo
    ) -> ImageUpdaterConfig:
        # Image Updater v1.2.2 (pkg/argocd/git.go commitChangesGit, update.go parseGitConfig) pushes
        # its commit to gitConfig.branch, or else to the Application's targetRevision
        # (application.revision). Prod's `protect-main` ruleset (infra/components/github_repository.py)
        # admits changes to the release branch of this stack's repository through a reviewed pull
        # request only, with no bypass actor, so such a push would be rejected on every image.
        application, github = info.data.get("application"), info.data.get("github")
        if value.write_back_method != "git" or application is None or github is None:
            return value
        branch = value.git_branch or application.revision
        repo = re.sub(r"\.git$", "", application.repo_url.rstrip("/")).lower()
        if branch == naming.RELEASE_BRANCH and repo == f"https://github.com/{github.slug}".lower():
            raise _fail(
                f"Image Updater's git write-back would push to {naming.RELEASE_BRANCH} of {github.slug}, "
                "which prod's protect-main ruleset admits through reviewed pull requests only; "
                "allowed: writeBackMethod argocd, or an application.revision (the branch Argo CD "
                f"tracks) and gitBranch other than {naming.RELEASE_BRANCH}",
                value.git_branch if value.git_branch is not None else _MISSING,
                "gitBranch",
            )
        return value

    @field_validator("addons")
    @classmethod
    def _addons_in_the_stacks_regions(
        cls, value: Mapping[str, AddonConfig], info: ValidationInfo
    ) -> Mapping[str, AddonConfig]:
        for name, addon in value.items():
            for i, region in enumerate(addon.regions or ()):
                _one_of_the_stacks_regions(region, info, name, "regions", i)
        return dict(sorted(value.items()))

    @field_validator("addons")
    @classmethod
    def _addons_follow_traffic(
        cls, value: Mapping[str, AddonConfig], info: ValidationInfo
    ) -> Mapping[str, AddonConfig]:
        # Whether platform:traffic is set is read from the raw keys (recorded by
        # _with_derived_defaults), not from the model: it is declared after platform:addons, and,
        # as a field validator rather than a model validator, these checks are reported together
        # with any other key's error (a wrong traffic key included) instead of hidden behind it.
        if not _context(info).get("traffic_set"):
            # ExternalDNS may change records only in platform:traffic's zone (its IAM policy names
            # that zone's ARN, infra/documents/addons_iam.py); without a zone it has nothing to manage.
            if "external-dns" in value:
                raise _fail(
                    "external-dns manages the records of platform:traffic's hosted zone; set platform:traffic "
                    "(hostedZoneId, zoneName) or remove external-dns",
                    {"chartVersion": value["external-dns"].chart_version},
                    "external-dns",
                )
            return value
        names = _stack_region_names(info) or []
        for name, role in TRAFFIC_ADDONS.items():
            addon = value.get(name)
            if addon is None:
                raise _fail(
                    f"platform:traffic needs the {name} add-on in every region of the stack "
                    f"({', '.join(names)}): it {role}; add {name}: "
                    f"{{chartVersion: {versions.ADDON_CHARTS[name]['tested']}}} or remove platform:traffic",
                    _MISSING,
                    name,
                )
            without = [r for r in names if addon.regions is not None and r not in addon.regions]
            if without:
                raise _fail(
                    f"platform:traffic serves the storefront from every region of the stack, and {name} "
                    f"{role} in each; {', '.join(without)} would have none: expected every region "
                    f"({', '.join(names)}), or leave regions out",
                    list(addon.regions or ()),
                    name,
                    "regions",
                )
        return value

    @field_validator("addons")
    @classmethod
    def _addons_the_chart_needs(
        cls, value: Mapping[str, AddonConfig], info: ValidationInfo
    ) -> Mapping[str, AddonConfig]:
        # The application's chart runs on every cluster of the stack (the ApplicationSet selects
        # them all); what it renders on each is read from its value files (infra/chart_addons.py).
        # A chart kept outside this checkout cannot be read, so it is not checked here.
        application, environment = info.data.get("application"), info.data.get("environment")
        names = _stack_region_names(info)
        if application is None or environment is None or not names:
            return value
        chart = PROJECT_ROOT / application.path
        if not chart.is_dir():
            return value
        missing: dict[str, tuple[chart_addons.Need, list[str]]] = {}
        for region in names:
            for need in chart_addons.needs(chart, environment, region):
                addon = value.get(need.addon)
                if addon is None or (addon.regions is not None and region not in addon.regions):
                    missing.setdefault(need.addon, (need, []))[1].append(region)
        for name, (need, without) in missing.items():
            why = (
                f"{application.path} renders {need.kind}s in {', '.join(without)} "
                f"({application.path}/{need.file} {need.key}: {json.dumps(need.value)}), and the {name} add-on "
                f"{chart_addons.CHART_ADDONS[name]}"
            )
            addon = value.get(name)
            if addon is None:
                raise _fail(
                    f"{why}; add {name}: {{chartVersion: {versions.ADDON_CHARTS[name]['tested']}}}, "
                    f"or change {need.key} in the chart's value files",
                    _MISSING,
                    name,
                )
            raise _fail(
                f"{why}; expected regions to include {', '.join(without)} (or leave regions out), "
                f"or change {need.key} in the chart's value files",
                list(addon.regions or ()),
                name,
                "regions",
            )
        return value

    @field_validator("notifications")
    @classmethod
    def _notifications_have_their_secrets(
        cls, value: NotificationsConfig | None, info: ValidationInfo
    ) -> NotificationsConfig | None:
        if value is None:
            return value
        env = info.data.get("environment")
        if value.chat_webhook_secret is not None and env is not None:
            prefix = addons_iam_secrets_prefix(env)
            if not value.chat_webhook_secret.startswith(prefix):
                raise _fail(
                    f"expected a secret name under {prefix} (the only prefix External Secrets may read)",
                    value.chat_webhook_secret,
                    "chatWebhookSecret",
                )
        argocd = info.data.get("argocd")
        if value.github_app is not None and argocd is not None and argocd.sync != "automated":
            raise _fail(
                "the notifications controller records only automatic syncs; this stack syncs by hand "
                "(platform:argocd.sync manual), where `platform deploy` records each region itself",
                {"appId": value.github_app.app_id, "installationId": value.github_app.installation_id},
                "githubApp",
            )
        hub = info.data.get("hub_region")
        if hub is not None and (value.github_app or value.chat_webhook_secret):
            regions = _addon_regions_in(info, "external-secrets")
            if regions is not _UNKNOWN and (regions is None or (regions != "all" and hub not in regions)):
                raise _fail(
                    f"the notifications' secrets reach Argo CD through External Secrets: enable the "
                    f"external-secrets add-on on the hub ({hub}) under platform:addons",
                    "githubApp" if value.github_app else value.chat_webhook_secret,
                )
        return value

    def addon_regions(self, name: str) -> tuple[str, ...]:
        """The regions whose clusters run add-on ``name`` (none when it is not enabled)."""
        addon = self.addons.get(name)
        if addon is None:
            return ()
        return tuple(r for r in self.region_names if addon.regions is None or r in addon.regions)

    @field_validator("deploy")
    @classmethod
    def _order_of_the_stacks_regions(cls, value: DeployConfig, info: ValidationInfo) -> DeployConfig:
        names = _stack_region_names(info)
        if not names:
            return value
        for i, region in enumerate(value.region_order):
            _one_of_the_stacks_regions(region, info, "regionOrder", i)
        if info.data.get("environment") == "prod":  # the stack deploy-prod.yml deploys
            _deploy_fits_in_its_session(len(names), value.timeout_seconds)
        if "regions" not in info.data:  # checked against the raw names; the stack is refused anyway
            return value
        # A region added to the stack but not yet to the order deploys after the listed ones, so
        # adding a region needs nothing but its entry under platform:regions.
        hub = info.data.get("hub_region", names[0])
        default = [r for r in names if r != hub] + [hub]
        order = (*value.region_order, *(r for r in default if r not in value.region_order))
        return DeployConfig(order, value.timeout_seconds)


# The deploy command's AWS sessions: deploy-prod.yml assumes the verify and deploy roles with
# role-duration-seconds 3600 (tests/unit/test_workflows.py holds the workflow to these numbers),
# and every token it fetches is signed with them, so the whole run must end within one session:
# each region's wait (platform:deploy.timeoutSeconds) plus the set-up and reading both hubs.
DEPLOY_SESSION_SECONDS = 3600
DEPLOY_SETUP_SECONDS = 600


def _deploy_fits_in_its_session(regions: int, timeout_seconds: int) -> None:
    """Refuse a prod stack (deploy-prod.yml runs ``platform deploy prod``) whose deploy cannot end
    within one session: ``regions * timeoutSeconds + DEPLOY_SETUP_SECONDS <= DEPLOY_SESSION_SECONDS``.
    Another stack's deploy runs by hand, with sessions of its operator's choosing."""
    budget = regions * timeout_seconds + DEPLOY_SETUP_SECONDS
    if budget > DEPLOY_SESSION_SECONDS:
        most = (DEPLOY_SESSION_SECONDS - DEPLOY_SETUP_SECONDS) // regions
        raise _fail(
            f"the deploy command waits up to timeoutSeconds in each of the {regions} regions "
            f"(platform:regions) plus {DEPLOY_SETUP_SECONDS} s of set-up, and must end within one "
            f"{DEPLOY_SESSION_SECONDS} s AWS session (role-duration-seconds in deploy-prod.yml): "
            f"{regions} x {timeout_seconds} + {DEPLOY_SETUP_SECONDS} = {budget} s > {DEPLOY_SESSION_SECONDS} s; "
            f"expected at most {most} with {regions} regions",
            timeout_seconds,
            "timeoutSeconds",
        )


def _stack_region_names(info: ValidationInfo) -> list[str] | None:
    """The names under platform:regions, or None when it is not a map.

    Read from the validated field, else from the raw map's keys (recorded by
    :func:`_with_derived_defaults`): pydantic v2 leaves a field that failed out of
    ``ValidationInfo.data``, and one wrong setting of one region must not hide every check against
    the region names (the hub, the deploy order, ecr.primaryRegion, ...) in the same report.
    """
    regions = info.data.get("regions")
    if regions is not None:
        return [r.name for r in regions]
    names = _context(info).get("region_names")
    return list(names) if names is not None else None


_UNKNOWN: Any = object()


def _addon_regions_in(info: ValidationInfo, name: str) -> Any:
    """The regions of add-on ``name``: ``"all"``, a list, None when it is not enabled, or
    ``_UNKNOWN`` when platform:addons is not a map.

    Read from the validated field, else from the raw map (recorded by
    :func:`_with_derived_defaults`): a wrong add-on entry, or a traffic add-on left out, must not
    hide the checks that need the add-ons in the same report."""
    addons = info.data.get("addons")
    if addons is not None:
        addon = addons.get(name)
        return None if addon is None else ("all" if addon.regions is None else list(addon.regions))
    raw = _context(info).get("addons", _UNKNOWN)
    if not isinstance(raw, Mapping):
        return _UNKNOWN
    entry = raw.get(name)
    if entry is None:
        return None
    regions = entry.get("regions") if isinstance(entry, Mapping) else None
    return list(regions) if isinstance(regions, list | tuple) else "all"


def _one_of_the_stacks_regions(value: str, info: ValidationInfo, *at: str | int) -> str:
    names = _stack_region_names(info)
    if names and value not in names:
        raise _fail(f"expected one of the stack's regions: {', '.join(map(str, names))}", value, *at)
    return value


def _with_derived_defaults(raw: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults that depend on another key (the environment, the hub, the application).

    Each filled path is recorded in ``context["derived"]`` with the key it came from, so an error
    in that key is not reported twice (once more at the path that copied it).
    """
    derived: dict[tuple[str, ...], str] = context.setdefault("derived", {})
    if "stack" in raw:
        context.setdefault("unknown", []).append(("stack", raw.pop("stack")))
    raw["stack"] = context.get("stack", "")
    environment = raw.get("environment")
    prod = environment == "prod"
    raw.setdefault("registryRole", "replica" if prod else "source")
    regions = raw.get("regions")
    names = list(regions) if isinstance(regions, Mapping) else []
    context["region_names"] = names if isinstance(regions, Mapping) else None
    services = raw.get("services")
    context["services"] = list(services) if isinstance(services, list | tuple) else None
    hub = raw.get("hubRegion", "us-west-2")
    if isinstance(regions, Mapping):
        raw["regions"] = {
            name: {"natGateways": "perAz" if prod else "single", **body}
            if isinstance(body, Mapping)
            else body
            for name, body in regions.items()
        }

    def section(key: str, defaults: Mapping[str, tuple[Any, str]]) -> None:
        body = raw.get(key, {})
        if body is None:
            body = {}
        if isinstance(body, Mapping):
            body = dict(body)
            for name, (default, source) in defaults.items():
                if name not in body:
                    derived[(key, name)] = source
                    if default is not _MISSING:
                        body[name] = default
            raw[key] = body

    app = raw.get("application")
    app_name = app.get("name") if isinstance(app, Mapping) else None
    if isinstance(app, Mapping) and app_name is not None:
        section("application", {"chart": (app_name, "application"), "namespace": (app_name, "application")})
    if "accountRegion" not in raw:
        derived[("accountRegion",)] = "hubRegion"
        raw["accountRegion"] = hub
    section("ecr", {"prefix": (app_name if app_name is not None else _MISSING, "application"),
                    "primaryRegion": (hub, "hubRegion")})  # fmt: skip
    if "github" in raw:
        section(
            "github",
            {
                "deployBranches": ([] if prod else ["deploy/staging", "deploy/debug"], "environment"),
                "environment": (environment if environment is not None else _MISSING, "environment"),
            },
        )
    section(
        "argocd", {"ha": (prod, "environment"), "sync": ("manual" if prod else "automated", "environment")}
    )
    section("imageUpdater", {})
    addons = raw.get("addons", {})
    context["addons"] = {} if addons is None else addons
    traffic = raw.get("traffic")
    context["traffic_set"] = traffic is not None
    if isinstance(traffic, Mapping):
        zone = traffic.get("zoneName")
        section(
            "traffic",
            {
                "host": (f"www.{zone}" if isinstance(zone, str) else _MISSING, "traffic.zoneName"),
                "waf": (prod, "environment"),
            },
        )
    order = [r for r in names if r != hub] + ([hub] if hub in names else [])
    section("deploy", {"regionOrder": (order, "hubRegion")})
    return raw


# --------------------------------------------------------------------------------------------
# Declared keys, derived from the model (Pulumi.yaml, the README table and the unknown-key check
# are held to them by tests)
# --------------------------------------------------------------------------------------------


def _fields(cls: type) -> Iterator[tuple[str, Any]]:
    """(key as written in YAML, pydantic FieldInfo) of a section, in declaration order."""
    for name, info in cls.__pydantic_fields__.items():  # type: ignore[attr-defined]
        yield (info.alias or name), info


def _aliases(cls: type) -> list[str]:
    if cls is RegionConfig:
        return [k for k, _ in _fields(cls) if k != "name"]
    if cls is StackConfig:
        return [k for k, _ in _fields(cls) if k != "stack"]
    return [k for k, _ in _fields(cls)]


TOP_LEVEL_KEYS: dict[str, str] = {k: str(f.description) for k, f in _fields(StackConfig) if k != "stack"}
REGION_KEYS = tuple(_aliases(RegionConfig))
NODE_GROUP_KEYS = tuple(_aliases(NodeGroupConfig))
ECR_KEYS = tuple(_aliases(EcrConfig))
GITHUB_KEYS = tuple(_aliases(GitHubConfig))
ARGOCD_KEYS = tuple(_aliases(ArgoCdConfig))
IMAGE_UPDATER_KEYS = tuple(_aliases(ImageUpdaterConfig))
APPLICATION_KEYS = tuple(_aliases(ApplicationConfig))
DEPLOY_KEYS = tuple(_aliases(DeployConfig))
ADDON_KEYS = tuple(_aliases(AddonConfig))
TRAFFIC_KEYS = tuple(_aliases(TrafficConfig))

# The section classes by the path of YAML keys that leads to them ("*" for a region's name).
SECTIONS: dict[tuple[str, ...], type] = {
    (): StackConfig,
    ("regions", "*"): RegionConfig,
    ("regions", "*", "nodeGroup"): NodeGroupConfig,
    ("ecr",): EcrConfig,
    ("github",): GitHubConfig,
    ("argocd",): ArgoCdConfig,
    ("imageUpdater",): ImageUpdaterConfig,
    ("application",): ApplicationConfig,
    ("deploy",): DeployConfig,
    ("addons", "*"): AddonConfig,
    ("traffic",): TrafficConfig,
}

_ADAPTER: _TypeAdapter[StackConfig] = _TypeAdapter(StackConfig)


# --------------------------------------------------------------------------------------------
# Validation: pydantic's errors become Problems naming key, value and what is allowed
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Source:
    """Where a config came from: the stack file, its lines per key path and its decoded values."""

    path: Path
    lines: Mapping[tuple[Any, ...], int]
    values: Mapping[str, Any]

    def read_here(self, raw: Mapping[str, Any], path: tuple[Any, ...]) -> bool:
        """Whether the value at ``path`` is the one this file holds (not one a test changed)."""
        return bool(path) and raw.get(path[0], _MISSING) == self.values.get(path[0], _MISSING)

    def line(self, raw: Mapping[str, Any], path: tuple[Any, ...]) -> int | None:
        if not self.read_here(raw, path):
            return None
        full: tuple[Any, ...] = (f"{NAMESPACE}:{path[0]}", *path[1:])
        while True:
            if full in self.lines:
                return self.lines[full]
            if not full:
                return None
            full = full[:-1]

    def problem(self, raw: Mapping[str, Any], path: tuple[Any, ...], value: Any, allowed: str) -> Problem:
        if not self.read_here(raw, path):
            return Problem(_key(path), value, allowed)
        return Problem(_key(path), value, allowed, self.path.name, self.line(raw, path))


def _key(path: Sequence[Any]) -> str:
    text = NAMESPACE + ":"
    for i, step in enumerate(path):
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if i else str(step))
    return text


def _section_at(path: Sequence[Any]) -> type | None:
    shape = tuple("*" if i == 1 and path[0] in ("regions", "addons") else p for i, p in enumerate(path))
    return SECTIONS.get(shape)


def _problems(exc: ValidationError, raw: Mapping[str, Any], context: Mapping[str, Any]) -> list[tuple]:
    """(path, value, allowed) of every error, with region indices turned back into region names."""
    regions = raw.get("regions")
    region_names = list(regions) if isinstance(regions, Mapping) else []
    out: list[tuple[tuple[Any, ...], Any, str]] = []
    for err in exc.errors():
        loc = list(err["loc"])
        if loc[:1] == ["regions"] and len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(region_names):
            loc[1] = region_names[loc[1]]
            if loc[2:] == ["name"]:
                loc = loc[:2]
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind == "platform":
            path, value, allowed = (*loc, *ctx.get("at", ())), ctx.get("value"), str(ctx["allowed"])
        elif kind == "missing":
            path, value, allowed = tuple(loc), _MISSING, "this key is required"
        elif kind in ("unexpected_keyword_argument", "extra_forbidden"):
            path, value = tuple(loc), err.get("input")
            section = _section_at(loc[:-1])
            keys = _aliases(section) if section is not None else []
            allowed = (
                f"unknown key '{loc[-1]}'; {_did_you_mean(str(loc[-1]), keys)}allowed keys: {', '.join(keys)}"
            )
        else:  # a rule pydantic itself applied; its own words
            path, value, allowed = tuple(loc), err.get("input"), str(err["msg"])
        out.append((tuple(path), value, allowed))
    for key, value in context.get("unknown", []):
        out.append(((key,), value, f"unknown key '{key}'; allowed keys: {', '.join(TOP_LEVEL_KEYS)}"))
    # A default copied from another key that is itself wrong is not a second error.
    failed = {p[0] for p, _, _ in out} | {".".join(map(str, p[:2])) for p, _, _ in out if len(p) > 1}
    derived: Mapping[tuple[str, ...], str] = context.get("derived", {})
    out = [
        o
        for o in out
        if not (o[0][:2] in derived and derived[o[0][:2]] in failed and o[0][0] != derived[o[0][:2]])
    ]
    seen: set[str] = set()
    unique = []
    for path, value, allowed in out:
        marker = f"{path}|{allowed}"
        if marker not in seen:
            seen.add(marker)
            unique.append((path, value, allowed))
    return unique


def _validate(raw: Mapping[str, Any], stack: str, source: _Source | None) -> StackConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{NAMESPACE}:*", raw, "expected a map of configuration keys")
    context: dict[str, Any] = {"stack": stack, "environment": raw.get("environment")}
    try:
        return _ADAPTER.validate_python(dict(raw), context=context)
    except ValidationError as exc:
        problems = []
        for path, value, allowed in _problems(exc, raw, context):
            if source is not None:
                problems.append(source.problem(raw, path, value, allowed))
            else:
                problems.append(Problem(_key(path), value, allowed))
        raise ConfigError.of(problems) from None


def parse(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate ``raw`` (the ``platform:`` keys without their namespace) into a StackConfig.

    Raises :class:`ConfigError` with every problem found.
    """
    return _validate(raw, stack, None)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _decode(value: Any) -> Any:
    """Pulumi hands structured config to the program as JSON text; scalars stay strings."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _platform_keys(flat: Mapping[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for full_key, value in flat.items():
        ns, _, key = full_key.partition(":")
        if ns == NAMESPACE:
            raw[key] = _decode(value)
    return raw


def from_flat(flat: Mapping[str, Any], stack: str, *, source: _Source | None = None) -> StackConfig:
    """Parse a flat ``{"platform:key": value}`` map (the shape Pulumi and stack files use)."""
    return _validate(_platform_keys(flat), stack, source)


def load() -> StackConfig:
    """Load the running Pulumi stack's configuration (inside ``pulumi up``/``preview``/mocks).

    Where the values are those of ``Pulumi.<stack>.yaml`` in the project, errors name its lines.
    """
    import pulumi
    from pulumi.runtime import config as runtime_config

    flat: dict[str, Any] = dict(runtime_config.get_config_env())
    flat.update(runtime_config.CONFIG.get())
    stack = pulumi.get_stack()
    try:
        return from_flat(flat, stack)
    except ConfigError as error:
        path = stack_file(stack)
        if not path.is_file():
            raise
        # Validate again knowing the file: lines for the values read from it, and the file's own
        # problems (invalid YAML, a duplicate key, a misspelt config:) first, as they explain the rest.
        try:
            read = _read(path)
        except ConfigError as unreadable:
            raise ConfigError.of([*unreadable.problems, *error.problems]) from None
        source = _Source(path, read.lines, _platform_keys(as_pulumi_config(read.config)))
        try:
            return from_flat(flat, stack, source=source)
        except ConfigError as located:
            raise ConfigError.of([*read.problems, *located.problems]) from None


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


# Top-level keys of a stack settings file: pulumi/pulumi sdk/go/common/workspace/project.go,
# type ProjectStack (secretsprovider, encryptedkey, encryptionsalt, config, environment).
STACK_FILE_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment")
# Namespaces a stack file of this project sets besides its own.
_OTHER_NAMESPACES = ("pulumi", "aws", "kubernetes", "eks")


@dataclasses.dataclass
class _Read:
    config: dict[str, Any]
    lines: dict[tuple[Any, ...], int]
    problems: list[Problem]


def _file_problem(name: str, line: int | None, message: str) -> Problem:
    return Problem("", _MISSING, "", name, line, message)


def _decode_file(name: str, raw: bytes) -> str:
    """The text of a stack file, decoded as the Pulumi CLI's YAML parser decodes it.

    yaml.v3 (go-yaml/yaml v3.0.1, readerc.go ``yaml_parser_determine_encoding``) reads UTF-16LE or
    UTF-16BE when the file starts with that byte order mark and UTF-8 otherwise (a UTF-8 byte order
    mark is skipped); anything else is a reader error there. Raises ``ConfigError`` naming the
    file, the line and the byte offset of the first byte that is not valid in that encoding.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding, allowed = "utf-16", "UTF-16 (it starts with a UTF-16 byte order mark)"
    else:
        encoding, allowed = "utf-8-sig", "UTF-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        bad = raw[exc.start : exc.end].hex(" ")
        raise ConfigError.of(
            [
                _file_problem(
                    name,
                    line,
                    f"byte offset {exc.start}: bytes {bad} are not valid {allowed}; "
                    "expected a UTF-8 text file (or UTF-16 with a byte order mark), "
                    "as the Pulumi CLI reads stack files with yaml.v3",
                )
            ]
        ) from None


def _read(path: Path) -> _Read:
    """The stack file's ``config:`` map with the line of every key, and every structural problem.

    PyYAML composes the document into nodes that carry their position (``start_mark``); values
    are built from those nodes with the plain scalars typed as the Pulumi CLI's yaml.v3 types them
    (:mod:`infra.stack_yaml`), so the program sees what ``pulumi up`` would give it.
    """
    name = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("stack file", str(path), "expected an existing Pulumi.<stack>.yaml") from None
    except OSError as exc:  # a directory of that name, no permission to read, ...
        raise ConfigError.of(
            [_file_problem(name, None, f"cannot be read ({exc.strerror}); expected a readable YAML file")]
        ) from None
    text = _decode_file(name, raw)
    # Scalars typed as the Pulumi CLI types them (yaml.v3: `yes` stays a string), not as PyYAML's
    # YAML 1.1 would (infra/stack_yaml.py).
    loader = stack_yaml.Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
            where = f" (column {mark.column + 1})" if mark is not None else ""
            line = mark.line + 1 if mark is not None else None
            raise ConfigError.of([_file_problem(name, line, f"invalid YAML{where}: {what}")]) from None
        result = _Read({}, {}, [])
        if node is None:
            result.problems.append(
                _file_problem(
                    name, None, f"the file is empty; expected a 'config:' map of {NAMESPACE}:* keys"
                )
            )
            return result
        if not isinstance(node, yaml.MappingNode):
            result.problems.append(
                _file_problem(
                    name, node.start_mark.line + 1, "expected a map with a 'config:' key at the top"
                )
            )
            return result
        doc = _build(loader, node, (), result, name)
        for key in doc:
            if key not in STACK_FILE_KEYS:
                hint = _did_you_mean(str(key), STACK_FILE_KEYS)
                result.problems.append(
                    _file_problem(
                        name,
                        result.lines.get((key,)),
                        f"unknown top-level key {str(key)!r}; {hint}a stack file has: {', '.join(STACK_FILE_KEYS)}",
                    )
                )
        config = doc.get("config")
        if config is None:
            result.problems.append(
                _file_problem(
                    name,
                    result.lines.get(("config",), node.start_mark.line + 1),
                    f"no settings: the stack's {NAMESPACE}:* keys go in a map under 'config:'",
                )
            )
        elif not isinstance(config, dict):
            result.problems.append(
                _file_problem(
                    name, result.lines.get(("config",)), "'config:' must be a map of namespace:key settings"
                )
            )
        else:
            result.config = config
            lines = {k[1:]: v for k, v in result.lines.items() if k[:1] == ("config",)}
            result.lines = lines
            for key in config:
                ns, sep, _ = str(key).partition(":")
                if not sep:
                    message = f"expected a namespaced key such as {NAMESPACE}:{key}"
                elif (
                    ns != NAMESPACE
                    and ns not in _OTHER_NAMESPACES
                    and difflib.get_close_matches(ns, [NAMESPACE])
                ):
                    message = f"unknown namespace '{ns}'; did you mean '{NAMESPACE}:'?"
                else:
                    continue
                result.problems.append(Problem(str(key), config[key], message, name, lines.get((key,))))
        return result
    finally:
        loader.dispose()


def _build(loader: Any, node: Any, path: tuple[Any, ...], result: _Read, name: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        written = {id(k) for k, _ in node.value}
        loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor): merged keys come first
        out: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if id(key_node) not in written:  # merged in: a key written here may override it
                out[key] = _build(loader, value_node, (*path, key), result, name)
                result.lines[(*path, key)] = line
                continue
            if key in explicit:
                first = result.lines[(*path, key)]
                result.lines[(*path, key)] = line  # the one YAML keeps (the last)
                value = _build(loader, value_node, (*path, key), result, name)
                result.problems.append(
                    Problem(
                        _file_key((*path, key)),
                        value,
                        f"duplicate key (also on line {first}); YAML keeps only one of them, so write it once",
                        name,
                        line,
                    )
                )
                out[key] = value
                continue
            explicit.add(key)
            result.lines[(*path, key)] = line
            out[key] = _build(loader, value_node, (*path, key), result, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            result.lines[(*path, i)] = item.start_mark.line + 1
            items.append(_build(loader, item, (*path, i), result, name))
        return items
    return loader.construct_object(node, deep=True)


def _file_key(path: Sequence[Any]) -> str:
    if len(path) >= 2 and path[0] == "config" and str(path[1]).startswith(f"{NAMESPACE}:"):
        return _key((str(path[1]).split(":", 1)[1], *path[2:]))
    return ".".join(str(p) for p in path)


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` map of a stack file, as written (YAML types kept).

    Raises :class:`ConfigError` naming the file and line for invalid YAML, a duplicate key, an
    empty file, a missing or misspelt ``config:``.
    """
    read = _read(path)
    if read.problems:
        raise ConfigError.of(read.problems)
    return read.config


def load_stack_file(stack: str, root: Path = PROJECT_ROOT) -> StackConfig:
    """Read and validate ``Pulumi.<stack>.yaml``; every problem of the file is in one ConfigError."""
    path = stack_file(stack, root)
    read = _read(path)
    # Encoded exactly as the Pulumi CLI hands it to the program, so a file that loads here loads
    # the same way under `pulumi up`.
    flat = as_pulumi_config(read.config)
    source = _Source(path, read.lines, _platform_keys(flat))
    try:
        config = from_flat(flat, stack, source=source) if not read.problems or read.config else None
    except ConfigError as exc:
        raise ConfigError.of([*read.problems, *exc.problems]) from None
    if read.problems or config is None:
        raise ConfigError.of(read.problems)
    return config


def as_pulumi_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Encode a stack file's config map as the Pulumi CLI passes it to a program.

    Objects and lists become JSON text, booleans ``true``/``false``, a null ``null``, floats as
    Go's encoding/json writes them, everything else ``str`` (pulumi/pulumi v3.259.0
    sdk/go/common/resource/config/object.go, ``MarshalString``). The offline plan uses this so
    the program reads exactly what ``pulumi up`` would give it.
    """
    out: dict[str, str] = {}
    for key, value in config.items():
        if value is None:
            out[key] = "null"
        elif isinstance(value, dict | list):
            out[key] = json.dumps(value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, float):
            out[key] = stack_yaml.go_json_float(value)
        else:
            out[key] = str(value)
    return out
