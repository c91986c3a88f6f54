"""The contract between Image Updater's write-back and the shop chart (charts/shop).

Image Updater writes Helm parameters into each Application (write-back ``argocd``). Helm parameters
override every value file, and the chart's values.schema.json refuses unknown keys, so every
parameter Image Updater writes must be a value the chart accepts, or the next render fails.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from typing import Any

import jsonschema
import pytest
import yaml

from infra import naming
from infra.config import PROJECT_ROOT, StackConfig, load_stack_file
from infra.manifests import argocd as m

STACKS = ("staging", "prod")
CI_TAG = "20261122.063000-0123abc"


def merged_values(config: StackConfig, region: str) -> dict[str, Any]:
    def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for k, v in override.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    values: dict[str, Any] = {}
    for name in naming.value_files(config.environment, region):
        values = merge(
            values, yaml.safe_load((PROJECT_ROOT / config.application.path / name).read_text()) or {}
        )
    return values


def written_parameters(config: StackConfig, region: str) -> dict[str, str]:
    """The Helm parameters Image Updater writes into this region's Application."""
    app = naming.application_name(config.application.name, config.environment, region)
    (ref,) = [r for r in m.image_updater(config)["spec"]["applicationRefs"] if r["namePattern"] == app]
    (image,) = ref["images"]
    helm = image["manifestTargets"]["helm"]
    return {helm["name"]: image["imageName"], helm["tag"]: CI_TAG}


def set_parameter(values: dict[str, Any], dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def cases() -> list[tuple[str, str]]:
    return [(s, r) for s in STACKS for r in load_stack_file(s).region_names]


def test_the_tag_parameter_is_the_charts_shared_tag() -> None:
    for stack in STACKS:
        config = load_stack_file(stack)
        schema = json.loads((PROJECT_ROOT / config.application.path / "values.schema.json").read_text())
        assert m.IMAGE_TAG_PARAMETER == "image.tag"
        assert "tag" in schema["properties"]["image"]["properties"]


# Image Updater always writes the repository parameter (image.name) next to image.tag
# (SetHelmImage defaults an unset manifestTargets.helm.name to image.name): the chart must accept
# it, and refuse one that points outside the region's registry.


@pytest.mark.parametrize(("stack", "region"), cases())
def test_chart_schema_accepts_what_image_updater_writes(stack: str, region: str) -> None:
    config = load_stack_file(stack)
    values = merged_values(config, region)
    for name, value in written_parameters(config, region).items():
        set_parameter(values, name, value)
    schema = json.loads((PROJECT_ROOT / config.application.path / "values.schema.json").read_text())
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(values)]
    assert errors == []


@pytest.mark.skipif(shutil.which("helm") is None, reason="needs the helm binary to render the chart")
def test_chart_renders_with_image_updaters_parameters() -> None:
    config = load_stack_file("staging")
    region = config.hub_region
    chart = PROJECT_ROOT / config.application.path
    cmd = ["helm", "template", "shop", str(chart)]
    for name in naming.value_files(config.environment, region):
        cmd += ["-f", str(chart / name)]
    for name, value in written_parameters(config, region).items():
        cmd += ["--set-string", f"{name}={value}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("helm") is None, reason="needs the helm binary to render the chart")
def test_chart_refuses_an_image_name_from_another_regions_registry() -> None:
    config = load_stack_file("prod")
    region, other = config.region_names[0], config.region_names[1]
    chart = PROJECT_ROOT / config.application.path
    cmd = ["helm", "template", "shop", str(chart)]
    for name in naming.value_files(config.environment, region):
        cmd += ["-f", str(chart / name)]
    wrong = f"{naming.registry_host(config.account_id, other)}/{config.ecr.prefix}/{config.sentinel_service}"
    cmd += ["--set-string", "image.tag=20261122.063000-0123abc", "--set-string", f"image.name={wrong}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode != 0
    assert "is not in this region's registry" in done.stderr
