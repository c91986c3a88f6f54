"""Generate, from :mod:`infra.config`'s model, the two files that describe the stack config.

* ``Pulumi.yaml``'s ``config:`` block: every key whose type Pulumi's project file can declare,
  with that type and its description;
* ``schema/stack-config.schema.json``: the JSON Schema of a ``Pulumi.<stack>.yaml`` that editors
  use (the stack files name it in a ``yaml-language-server`` comment), with every key, nested
  ones too.

Neither file is edited by hand: change the model, then run ``python -m infra.config_schema``;
``python -m infra.config_schema --check`` (and tests/unit/test_config_schema.py) fail while a
committed file differs from what the model generates.

Pulumi's project file schema (pulumi/pulumi sdk/go/common/workspace/project.json, ``$defs``
``configTypeDeclaration``, which ``pulumi`` validates every Pulumi.yaml against) requires a
``type`` in each declared key, one of ``string``, ``integer``, ``boolean`` or ``array`` (with
``items``), besides ``description``, ``default`` and ``secret``. A key whose value is a map
(``regions``, ``ecr``, ...) has no such type, so it is not declared there: the JSON Schema
describes it (see :func:`project_config` for the keys with defaults).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from infra import config

PROJECT_FILE = config.PROJECT_ROOT / "Pulumi.yaml"
SCHEMA_FILE = config.PROJECT_ROOT / "schema" / "stack-config.schema.json"
# The comment that points editors (yaml-language-server) at the schema, first line of each stack file.
SCHEMA_COMMENT = "# yaml-language-server: $schema=schema/stack-config.schema.json"

# The types a Pulumi project file may declare (project.json, $defs simpleConfigType).
PULUMI_TYPES = ("string", "integer", "boolean", "array")

_HEADER = (
    "# Generated from infra/config.py by `python -m infra.config_schema`; do not edit by hand.\n"
    "# Only keys Pulumi can type (string, integer, boolean, array) and that are required or have a\n"
    "# constant default are declared; schema/stack-config.schema.json describes every key.\n"
)


def _clean(node: Any) -> Any:
    """Drop pydantic's generated titles and the model's private markers; keep what editors read."""
    if isinstance(node, dict):
        return {
            k: _clean(v)
            for k, v in node.items()
            if not (k in ("title", "x-defaultFrom") and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _optional_derived(section: dict[str, Any]) -> None:
    """A key whose default comes from another key is optional in the file."""
    props = section.get("properties", {})
    derived = {k for k, v in props.items() if isinstance(v, dict) and "x-defaultFrom" in v}
    if "required" in section:
        section["required"] = [k for k in section["required"] if k not in derived]
        if not section["required"]:
            del section["required"]


def model_schema() -> dict[str, Any]:
    """The JSON Schema of the ``platform:`` keys (without namespace), as the model generates it."""
    schema = copy.deepcopy(config._ADAPTER.json_schema(by_alias=True, mode="validation"))
    defs = schema.setdefault("$defs", {})
    for section in [schema, *defs.values()]:
        _optional_derived(section)
    # A region's name is its key under platform:regions, not a key of its settings.
    region = defs["RegionConfig"]
    region["properties"].pop("name", None)
    region["required"] = [k for k in region.get("required", []) if k != "name"]
    stack = schema["properties"]
    stack.pop("stack", None)
    schema["required"] = [k for k in schema.get("required", []) if k != "stack"]
    stack["regions"] = {"description": stack["regions"]["description"], **config._REGIONS_SCHEMA}
    return _clean(schema)  # type: ignore[no-any-return]


def stack_file_schema() -> dict[str, Any]:
    """The JSON Schema of a whole ``Pulumi.<stack>.yaml``."""
    model = model_schema()
    ns = config.NAMESPACE
    properties = {f"{ns}:{k}": v for k, v in model["properties"].items()}
    properties["pulumi:disable-default-providers"] = {
        "description": "Resource types whose default provider is disabled; this project disables all ('*').",
        "type": "array",
        "items": {"type": "string"},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Pulumi stack settings of the {ns} project",
        "description": "Generated from infra/config.py by `python -m infra.config_schema`; do not edit by hand.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{ns}:{k}" for k in model.get("required", [])],
                # Other namespaces (pulumi:, aws:, ...) are free; a platform: key must be one of ours.
                "propertyNames": {"anyOf": [{"not": {"pattern": f"^{ns}:"}}, {"enum": sorted(properties)}]},
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": model.get("$defs", {}),
    }


def _pulumi_type(prop: dict[str, Any]) -> dict[str, Any] | None:
    kind = prop.get("type")
    if kind in ("string", "integer", "boolean"):
        return {"type": kind}
    if kind == "array":
        items = _pulumi_type(prop.get("items", {}))
        return {"type": "array", "items": items} if items is not None else None
    return None


def project_config() -> dict[str, dict[str, Any]]:
    """The ``config:`` block of Pulumi.yaml: each typable key with its type and description.

    Pulumi requires every stack to set a declared key that has no ``default`` ("Stack 'dev' is
    missing configuration value ..."; pulumi/pulumi sdk/go/common/workspace/project_test.go,
    TestStackConfigErrorsWhenMissingStackValueForConfigTypeWithNoDefault), and applies a declared
    default to the program's config. So a key is declared when the model requires it, or with its
    default when that default is a constant; a key whose default depends on another key
    (registryRole follows the environment) cannot be declared without making it required.
    """
    schema = model_schema()
    required = set(schema.get("required", []))
    out: dict[str, dict[str, Any]] = {}
    for key, prop in schema["properties"].items():
        declared = _pulumi_type(prop)
        if declared is None or (key not in required and "default" not in prop):
            continue
        out[key] = {**declared, "description": config.TOP_LEVEL_KEYS[key]}
        if "default" in prop:
            out[key]["default"] = prop["default"]
    return out


def render_project_file(current: str) -> str:
    """``current`` (Pulumi.yaml's text) with its ``config:`` block replaced by the generated one."""
    lines = current.splitlines(keepends=True)
    head: list[str] = []
    for line in lines:
        if line.startswith("config:") or line == _HEADER.splitlines(keepends=True)[0]:
            break
        head.append(line)
    block = yaml.safe_dump({"config": project_config()}, sort_keys=False, width=1000, allow_unicode=True)
    return "".join(head) + _HEADER + block


def render_schema() -> str:
    return json.dumps(stack_file_schema(), indent=2) + "\n"


def outdated() -> list[Path]:
    """The committed files that differ from what the model generates."""
    stale = []
    if PROJECT_FILE.read_text() != render_project_file(PROJECT_FILE.read_text()):
        stale.append(PROJECT_FILE)
    if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text() != render_schema():
        stale.append(SCHEMA_FILE)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.config_schema",
        description="Write Pulumi.yaml's config block and schema/stack-config.schema.json from infra/config.py.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report files that are out of date (exit 1)"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = outdated()
        for path in stale:
            print(f"{path.name} is out of date; run python -m infra.config_schema", file=sys.stderr)
        return 1 if stale else 0
    PROJECT_FILE.write_text(render_project_file(PROJECT_FILE.read_text()))
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(render_schema())
    print(f"wrote {PROJECT_FILE.name} (config block) and {SCHEMA_FILE.relative_to(config.PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
