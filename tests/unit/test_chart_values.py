"""The shop chart's value files: schema, layering, and agreement with the stack files.

Argo CD renders each regional Application with ``infra.naming.value_files(env, region)``; these
tests merge the same files the way Helm does and hold the result to ``values.schema.json`` and
to the stack configuration the Pulumi program reads, without needing a helm binary.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra import naming
from infra.chart_addons import helm_merge
from infra.config import DEFAULT_ALLOW_TAGS, PROJECT_ROOT, StackConfig, load_stack_file
from tests.conftest import stack_names

STACKS = stack_names()
# A tag of the scheme CI writes (YYYYMMDD.HHMMSS-<short sha>).
CI_TAG = "20261122.063000-0123abc"
DIGEST = "sha256:" + "0123456789abcdef" * 4

Values = dict[str, Any]


@cache
def stack(name: str) -> StackConfig:
    return load_stack_file(name)


def chart_dir(cfg: StackConfig) -> Path:
    return PROJECT_ROOT / cfg.application.path


def read_yaml(path: Path) -> Values:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: expected a YAML map at the top level"
    return doc


def merged_values(cfg: StackConfig, region: str) -> Values:
    merged: Values = {}
    for name in naming.value_files(cfg.environment, region):
        merged = helm_merge(merged, read_yaml(chart_dir(cfg) / name))
    return merged


@cache
def schema() -> Values:
    return json.loads((PROJECT_ROOT / "charts" / "shop" / "values.schema.json").read_text())


def schema_errors(values: Mapping[str, Any]) -> list[jsonschema.ValidationError]:
    return sorted(jsonschema.Draft7Validator(schema()).iter_errors(values), key=lambda e: list(e.path))


def combos() -> Iterator[tuple[str, str]]:
    for name in STACKS:
        for region in stack(name).region_names:
            yield name, region


COMBOS = list(combos())
COMBO_IDS = [f"{s}-{r}" for s, r in COMBOS]


def effective_min_replicas(service: Mapping[str, Any]) -> int:
    autoscaling = service.get("autoscaling") or {}
    return int(autoscaling["minReplicas"] if autoscaling.get("enabled") else service["replicas"])


# --------------------------------------------------------------------------------------------
# The merge helper: the layering tests below are only as right as it is.
# --------------------------------------------------------------------------------------------


def test_helm_merge_merges_maps_and_replaces_lists_and_scalars() -> None:
    base = {"a": {"x": 1, "y": [1, 2], "z": {"k": "v"}}, "b": 1, "gone": {"q": 1}}
    override = {"a": {"y": [3], "z": {"k2": "v2"}}, "b": 2, "gone": None}
    assert helm_merge(base, override) == {"a": {"x": 1, "y": [3], "z": {"k": "v", "k2": "v2"}}, "b": 2}
    assert base["a"] == {"x": 1, "y": [1, 2], "z": {"k": "v"}}, "the merge must not modify its inputs"


# --------------------------------------------------------------------------------------------
# The schema itself
# --------------------------------------------------------------------------------------------


def test_schema_is_draft_07_and_well_formed() -> None:
    assert schema()["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema())


def _object_schemas(node: Any, path: str = "#") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _object_schemas(value, f"{path}/{i}")


def test_every_object_with_declared_keys_rejects_unknown_keys() -> None:
    found = list(_object_schemas(schema()))
    assert len(found) > 10, "expected the schema to declare its objects' keys"
    # An if/then clause only adds conditions to the object it sits in.
    open_objects = [
        path
        for path, node in found
        if node.get("additionalProperties") is not False and not path.endswith(("/if", "/then"))
    ]
    assert open_objects == []


def test_every_setting_and_service_key_is_described() -> None:
    top = schema()["properties"]
    service = schema()["definitions"]["service"]["properties"]
    undocumented = [f"{k}" for k, v in top.items() if not v.get("description")]
    undocumented += [f"services.*.{k}" for k, v in service.items() if not v.get("description")]
    assert undocumented == []


# --------------------------------------------------------------------------------------------
# Every value-file combination Argo CD renders
# --------------------------------------------------------------------------------------------


def test_values_yaml_alone_is_valid() -> None:
    values = read_yaml(PROJECT_ROOT / "charts" / "shop" / "values.yaml")
    assert [e.message for e in schema_errors(values)] == []


@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_merged_values_are_valid(stack_name: str, region: str) -> None:
    values = merged_values(stack(stack_name), region)
    assert [f"{list(e.path)}: {e.message}" for e in schema_errors(values)] == []
    # What Image Updater adds on top must be accepted too.
    values["image"]["tag"] = CI_TAG
    values["image"]["digest"] = {stack(stack_name).sentinel_service: DIGEST}
    assert [f"{list(e.path)}: {e.message}" for e in schema_errors(values)] == []


# Each case: how to break staging's values in its first region, then where the one error must be reported
# (dotted path into the values, "" for the top level), which schema keyword must catch it, and a
# piece of its message.
BadCase = tuple[Callable[[Values], None], str, str, str]


def _set(path: str, value: Any) -> Callable[[Values], None]:
    def mutate(values: Values) -> None:
        *parents, leaf = path.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return mutate


def _delete(path: str) -> Callable[[Values], None]:
    def mutate(values: Values) -> None:
        *parents, leaf = path.split(".")
        node = values
        for key in parents:
            node = node[key]
        del node[leaf]

    return mutate


# The service the cases break: one of the stack's own, whatever the example names them.
SERVICE = stack("staging").services[0]

BAD_VALUES: dict[str, BadCase] = {
    "replicas as a string": (
        _set(f"services.{SERVICE}.replicas", "3"),
        f"services.{SERVICE}.replicas",
        "type",
        "'3'",
    ),
    "replicas as a boolean": (
        _set(f"services.{SERVICE}.replicas", True),
        f"services.{SERVICE}.replicas",
        "type",
        "True",
    ),
    "negative replicas": (
        _set(f"services.{SERVICE}.replicas", -1),
        f"services.{SERVICE}.replicas",
        "minimum",
        "-1",
    ),
    "unknown top-level key": (_set("replicaCount", 3), "", "additionalProperties", "'replicaCount'"),
    "unknown key in a service": (
        _set(f"services.{SERVICE}.replicaCount", 3),
        f"services.{SERVICE}",
        "additionalProperties",
        "'replicaCount'",
    ),
    "unknown key in global": (
        _set("global.regoin", "us-west-2"),
        "global",
        "additionalProperties",
        "'regoin'",
    ),
    "unknown key in resources": (
        _set(f"services.{SERVICE}.resources.requests.gpu", "1"),
        f"services.{SERVICE}.resources.requests",
        "additionalProperties",
        "'gpu'",
    ),
    "unknown key in an egress rule": (
        _set("networkPolicy.egress", [{"toPorts": [{"port": 443}]}]),
        "networkPolicy.egress.0",
        "additionalProperties",
        "'toPorts'",
    ),
    "service without a port": (
        _delete(f"services.{SERVICE}.port"),
        f"services.{SERVICE}",
        "required",
        "'port'",
    ),
    "service without resources": (
        _set(
            "services.search", {"port": 8080, "replicas": 1, "probes": {"liveness": "/l", "readiness": "/r"}}
        ),
        "services.search",
        "required",
        "'resources'",
    ),
    "privileged port": (_set(f"services.{SERVICE}.port", 80), f"services.{SERVICE}.port", "minimum", "80"),
    "port as a string": (
        _set(f"services.{SERVICE}.port", "8080"),
        f"services.{SERVICE}.port",
        "type",
        "'8080'",
    ),
    "memory without a unit suffix": (
        _set(f"services.{SERVICE}.resources.limits.memory", "256MB"),
        f"services.{SERVICE}.resources.limits.memory",
        "pattern",
        "'256MB'",
    ),
    "no memory limit": (
        _delete(f"services.{SERVICE}.resources.limits.memory"),
        f"services.{SERVICE}.resources.limits",
        "required",
        "'memory'",
    ),
    "relative probe path": (
        _set(f"services.{SERVICE}.probes.readiness", "readyz"),
        f"services.{SERVICE}.probes.readiness",
        "pattern",
        "'readyz'",
    ),
    "env value not a string": (
        _set(f"services.{SERVICE}.env.WORKERS", 4),
        f"services.{SERVICE}.env.WORKERS",
        "type",
        "4",
    ),
    "autoscaling on without maxReplicas": (
        _set(
            f"services.{SERVICE}.autoscaling",
            {"enabled": True, "minReplicas": 2, "targetCPUUtilizationPercentage": 70},
        ),
        f"services.{SERVICE}.autoscaling",
        "required",
        "'maxReplicas'",
    ),
    "autoscaling target above 100 percent": (
        _set(
            f"services.{SERVICE}.autoscaling",
            {"enabled": True, "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 150},
        ),
        f"services.{SERVICE}.autoscaling.targetCPUUtilizationPercentage",
        "maximum",
        "150",
    ),
    "service name not a DNS label": (
        lambda values: values["services"].update(Cart_v2=copy.deepcopy(values["services"][SERVICE])),
        "services",
        "pattern",
        "'Cart_v2'",
    ),
    "tag with a colon": (_set("image.tag", "v1:latest"), "image.tag", "pattern", "'v1:latest'"),
    "short digest": (
        _set("image.digest", {SERVICE: "sha256:abc"}),
        f"image.digest.{SERVICE}",
        "pattern",
        "'sha256:abc'",
    ),
    "digest as one string for every service": (
        _set("image.digest", DIGEST),
        "image.digest",
        "type",
        "'sha256:",
    ),
    "registry that is not ECR": (
        _set("global.registry", "docker.io"),
        "global.registry",
        "pattern",
        "'docker.io'",
    ),
    "unknown spread behaviour": (
        _set("topologySpread.zoneWhenUnsatisfiable", "Sometimes"),
        "topologySpread.zoneWhenUnsatisfiable",
        "enum",
        "'Sometimes'",
    ),
    "root user id": (_set("securityContext.runAsUser", 0), "securityContext.runAsUser", "minimum", "0"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES), ids=list(BAD_VALUES))
def test_bad_values_are_rejected(case: str) -> None:
    mutate, path, keyword, fragment = BAD_VALUES[case]
    values = merged_values(stack("staging"), stack("staging").region_names[0])
    assert schema_errors(values) == [], "the baseline must be valid for the case to mean anything"
    mutate(values)
    errors = schema_errors(values)
    found = [(".".join(str(p) for p in e.absolute_path), e.validator) for e in errors]
    assert found == [(path, keyword)], [e.message for e in errors]
    assert fragment in errors[0].message


# --------------------------------------------------------------------------------------------
# Agreement with the stack files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_name", STACKS)
def test_chart_is_the_one_the_application_deploys(stack_name: str) -> None:
    cfg = stack(stack_name)
    chart = read_yaml(chart_dir(cfg) / "Chart.yaml")
    assert chart["name"] == cfg.application.chart
    assert chart["apiVersion"] == "v2"
    assert chart["type"] == "application"
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", chart["version"])
    assert chart["appVersion"] and chart["maintainers"]
    # The chart's minimum Kubernetes version must admit every cluster the stack runs.
    minimum = re.fullmatch(r">=([0-9]+)\.([0-9]+)\.[0-9]+(-0)?", chart["kubeVersion"])
    assert minimum, f"expected a '>=X.Y.Z-0' kubeVersion, got {chart['kubeVersion']!r}"
    floor = (int(minimum.group(1)), int(minimum.group(2)))
    for region in cfg.regions:
        major, minor = (int(x) for x in region.kubernetes_version.split("."))
        assert (major, minor) >= floor, f"{region.name} runs {region.kubernetes_version}"


@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_regional_values_point_at_the_regions_registry(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    for name in naming.value_files(cfg.environment, region):
        assert (chart_dir(cfg) / name).is_file(), f"{cfg.application.path}/{name} is missing"
    regional = read_yaml(chart_dir(cfg) / naming.value_files(cfg.environment, region)[-1])
    assert regional["global"]["registry"] == naming.registry_host(cfg.account_id, region)
    assert regional["global"]["region"] == region
    merged = merged_values(cfg, region)
    assert merged["global"]["environment"] == cfg.environment
    assert merged["image"]["prefix"] == cfg.ecr.prefix


@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_services_are_exactly_the_stacks_services(stack_name: str, region: str) -> None:
    cfg = stack(stack_name)
    merged = merged_values(cfg, region)
    assert sorted(merged["services"]) == sorted(cfg.services)
    # Image Updater watches the sentinel's image; the chart must run it everywhere.
    assert merged["services"][cfg.sentinel_service].get("enabled", True) is True


def test_no_value_file_outside_the_stacks_regions() -> None:
    # A region dropped from a stack must take its value file with it, or it goes stale unseen.
    expected: set[str] = set()
    for name in STACKS:
        cfg = stack(name)
        for region in cfg.region_names:
            expected.update(naming.value_files(cfg.environment, region))
    present = {p.name for p in (PROJECT_ROOT / "charts" / "shop").glob("values*.yaml")}
    assert present == expected


@pytest.mark.parametrize(("stack_name", "region"), COMBOS, ids=COMBO_IDS)
def test_no_value_file_pins_the_image_tag(stack_name: str, region: str) -> None:
    # Image Updater owns image.tag (a Helm parameter, which wins over every file); a tag written
    # in a file would only mislead whoever reads it.
    assert merged_values(stack(stack_name), region)["image"]["tag"] == ""


def test_ci_tag_scheme_is_accepted_by_the_schema_and_image_updater() -> None:
    tag_pattern = schema()["properties"]["image"]["properties"]["tag"]["pattern"]
    assert re.search(tag_pattern, CI_TAG)
    assert re.fullmatch(DEFAULT_ALLOW_TAGS.removeprefix("regexp:"), CI_TAG)


@pytest.mark.parametrize("region", stack("prod").region_names)
def test_prod_runs_more_replicas_than_staging_and_autoscales(region: str) -> None:
    prod = merged_values(stack("prod"), region)["services"]
    staging = merged_values(stack("staging"), region)["services"]
    zones = len(stack("prod").region(region).availability_zones)
    for name, service in prod.items():
        assert service["autoscaling"]["enabled"] is True, f"prod {name} must autoscale"
        assert effective_min_replicas(service) > effective_min_replicas(staging[name]), name
        # At least one pod per zone, so losing a zone never takes a service down.
        assert effective_min_replicas(service) >= zones, name
        assert service["autoscaling"]["maxReplicas"] >= service["autoscaling"]["minReplicas"], name
    for name, service in staging.items():
        assert not (service.get("autoscaling") or {}).get("enabled"), f"staging {name} autoscales"
