"""The files generated from the config model are up to date and describe what the model accepts."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from infra import config, config_schema
from tests.conftest import ROOT, stack_config_map


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(config_schema.SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_generated_files_are_up_to_date() -> None:
    stale = [p.name for p in config_schema.outdated()]
    assert stale == [], f"{stale} differ from the model: run python -m infra.config_schema"


def test_check_mode_exits_non_zero_when_a_file_is_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    stale = tmp_path / "stack-config.schema.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(config_schema, "SCHEMA_FILE", stale)
    assert config_schema.main(["--check"]) == 1


def test_every_stack_file_names_the_schema_and_passes_it() -> None:
    check = validator()
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        text = path.read_text()
        assert text.splitlines()[0] == config_schema.SCHEMA_COMMENT, (
            f"{path.name}: its first line names the schema for editors: {config_schema.SCHEMA_COMMENT}"
        )
        doc = {"config": config.read_stack_file(path)}
        assert [e.message for e in check.iter_errors(doc)] == [], path.name


def test_every_key_of_every_section_is_described() -> None:
    schema = config_schema.model_schema()
    sections = [schema, *schema["$defs"].values()]
    for section in sections:
        for key, prop in section["properties"].items():
            assert prop.get("description"), key


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("platform:accountId", "11112222333"),
        ("platform:registryRole", "mirror"),
        ("platform:hubRegoin", "us-west-2"),
        ("platform:services", []),
    ],
)
def test_the_schema_refuses_what_the_model_refuses(key: str, value: Any) -> None:
    raw = stack_config_map("staging")
    raw[key] = value
    with pytest.raises(config.ConfigError):
        config.from_flat(config.as_pulumi_config(raw), "staging")
    assert list(validator().iter_errors({"config": raw})), key


def test_a_region_key_outside_the_known_regions_is_refused_by_the_schema() -> None:
    raw = stack_config_map("staging")
    regions = copy.deepcopy(raw["platform:regions"])
    regions["us-west2"] = regions.pop(list(regions)[-1])
    raw["platform:regions"] = regions
    assert list(validator().iter_errors({"config": raw}))


def test_the_schema_requires_exactly_the_keys_the_model_requires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leave each key out of a real stack file: the model refuses it iff the schema requires it."""
    schema = config_schema.model_schema()
    base = stack_config_map("staging")
    sections: list[tuple[tuple[str, ...], dict[str, Any]]] = [((), schema)]
    sections += [((f"platform:{k}",), schema["$defs"][config.SECTIONS[(k,)].__name__]) for k in
                 ("ecr", "github", "argocd", "imageUpdater", "application", "deploy")]  # fmt: skip
    region = next(iter(base["platform:regions"]))
    sections.append((("platform:regions", region), schema["$defs"]["RegionConfig"]))
    sections.append((("platform:regions", region, "nodeGroup"), schema["$defs"]["NodeGroupConfig"]))
    for path, section in sections:
        for key in section["properties"]:
            raw = copy.deepcopy(base)
            parent: Any = raw
            for step in path:
                parent = parent[step]
            full = f"platform:{key}" if not path else key
            if full not in parent:
                continue
            del parent[full]
            if full == "platform:traffic":
                # Required only with external-dns on (config's cross-key rule, tested in
                # tests/unit/test_addon_traffic.py); the key itself is optional.
                parent.get("platform:addons", {}).pop("external-dns", None)
            if full == "platform:addons":
                # Required only with platform:traffic (its add-ons, config.TRAFFIC_ADDONS: the same
                # cross-key rule, tested in tests/unit/test_config_traffic.py).
                parent.pop("platform:traffic", None)
                # And where the application's chart renders what an add-on serves (config reads
                # charts/<chart>, tested in tests/unit/test_chart_addons.py): no chart is read here.
                monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
            try:
                config.from_flat(config.as_pulumi_config(raw), "staging")
                refused = False
            except config.ConfigError:
                refused = True
            monkeypatch.undo()
            assert refused == (key in section.get("required", [])), (path, key)
