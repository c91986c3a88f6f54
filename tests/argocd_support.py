"""Test helpers for the Argo CD area (issue 6): CRD schemas, chart defaults, selectors, templates,
and the jq normalisation the ApplicationSet controller applies. No Pulumi here."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra import naming, traffic
from infra.config import StackConfig
from infra.manifests import argocd as manifests
from tests.conftest import SHARED

CRD_FILES = {
    ("argoproj.io", "Application"): "crd-application.yaml",
    ("argoproj.io", "ApplicationSet"): "crd-applicationset.yaml",
    ("argoproj.io", "AppProject"): "crd-appproject.yaml",
    ("argocd-image-updater.argoproj.io", "ImageUpdater"): "crd-imageupdaters.yaml",
    # argo-rollouts 2.41.0 (Argo Rollouts v1.9.0): ../shared/crds/argo-rollouts/ (its README).
    ("argoproj.io", "Rollout"): "argo-rollouts/rollouts.argoproj.io.yaml",
    ("argoproj.io", "AnalysisTemplate"): "argo-rollouts/analysistemplates.argoproj.io.yaml",
    ("argoproj.io", "AnalysisRun"): "argo-rollouts/analysisruns.argoproj.io.yaml",
}


def require_shared() -> Path:
    if not (SHARED / "crds").is_dir() or not (SHARED / "upstream-charts").is_dir():
        pytest.skip(f"{SHARED} (CRDs and upstream chart values) is absent; these checks need it")
    return SHARED


# --- CRDs ----------------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as a JSON Schema that refuses unknown fields.

    The API server *prunes* fields a structural schema does not list (silently, like Helm with a
    misspelt value), so for our purposes an unknown field is an error: objects with
    ``properties`` get ``additionalProperties: false`` unless they carry
    ``x-kubernetes-preserve-unknown-fields: true`` or already define ``additionalProperties``.
    ``x-kubernetes-int-or-string`` accepts both; ``nullable`` accepts null. CEL rules
    (``x-kubernetes-validations``) are not evaluated here.
    """
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_schema(group: str, kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of the served version of the CRD for ``group``/``kind``."""
    path = require_shared() / "crds" / CRD_FILES[(group, kind)]
    crd = yaml.safe_load(path.read_text())
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    served = [v for v in crd["spec"]["versions"] if v.get("served")]
    assert len(served) == 1, f"expected one served version in {path.name}"
    schema = _strict(served[0]["schema"]["openAPIV3Schema"])
    schema["x-served-version"] = served[0]["name"]
    return schema


@cache
def raw_crd_schema(group: str, kind: str) -> dict[str, Any]:
    """The served version's openAPIV3Schema exactly as the CRD file has it (``default`` included),
    for applying the API server's defaulting (``tests/contracts/upstream.py`` ``crd_default``)."""
    path = require_shared() / "crds" / CRD_FILES[(group, kind)]
    crd = yaml.safe_load(path.read_text())
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    (served,) = [v for v in crd["spec"]["versions"] if v.get("served")]
    schema = served["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def crd_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Every schema violation of a custom resource against its CRD (empty when valid)."""
    api_version = str(manifest["apiVersion"])
    group, _, version = api_version.rpartition("/")
    schema = crd_schema(group, str(manifest["kind"]))
    if schema["x-served-version"] != version:
        return [f"apiVersion {api_version}: the CRD serves {group}/{schema['x-served-version']}"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


# --- Upstream chart defaults ---------------------------------------------------------------------


@cache
def chart_defaults(chart: str) -> dict[str, Any]:
    data = yaml.safe_load((require_shared() / "upstream-charts" / chart / "values.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "null"


def unknown_value_paths(values: Mapping[str, Any], defaults: Mapping[str, Any], path: str = "") -> list[str]:
    """Paths in ``values`` that the chart's defaults do not have, or with a different kind.

    Keys are literal (``configs.cm`` has keys such as ``admin.enabled``). A map whose default is
    ``{}`` (``podAnnotations``, ``authScripts.scripts``...) is free-form; a list's items are
    free-form. A map with defaults is held to its documented keys even where the chart would
    pass any key through (``configs.cm``): the strict reading, so a typo still fails.
    """
    problems: list[str] = []
    for key, value in values.items():
        here = f"{path}.{key}" if path else str(key)
        if key not in defaults:
            problems.append(f"{here}: not a key of the chart's values")
            continue
        default = defaults[key]
        kind, default_kind = _kind(value), _kind(default)
        if default_kind == "map":
            if kind != "map":
                problems.append(f"{here}: a {kind} where the chart has a map")
            elif default:
                problems.extend(unknown_value_paths(value, default, here))
        elif default_kind == "list":
            if kind != "list":
                problems.append(f"{here}: a {kind} where the chart has a list")
        else:
            # A scalar: same kind, or anything scalar where the default is null or "".
            open_default = default_kind == "null" or (default_kind == "string" and default == "")
            if kind in ("map", "list") or (kind != default_kind and not open_default):
                problems.append(f"{here}: a {kind} where the chart has a {default_kind}")
    return problems


# --- Label selectors and Go templates ------------------------------------------------------------


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics (matchLabels AND matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_INDEX = re.compile(r'^index\s+(\.[A-Za-z0-9_.]+)\s+("(?:[^"\\]|\\.)*")$')
_FIELD = re.compile(r"^(\.[A-Za-z0-9_.]+)$")


def _lookup(params: Mapping[str, Any], dotted: str) -> Any:
    value: Any = params
    for part in dotted.strip(".").split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(f"map has no entry for key {part!r} (missingkey=error)")
        value = value[part]
    return value


class TemplateFailed(Exception):
    """Sprig's ``fail`` was called: the generation errors with this message."""


_REQUIRED = re.compile(
    r'\{\{\s*if not \((index\s+\.[A-Za-z0-9_.]+\s+"(?:[^"\\]|\\.)*")\)\s*\}\}'
    r'\{\{\s*fail\s+("(?:[^"\\]|\\.)*")\s*\}\}\{\{\s*end\s*\}\}'
)


def render_go_template(text: str, params: Mapping[str, Any]) -> str:
    """The subset of Go templates the ApplicationSets use, as Go's text/template runs them with
    ``missingkey=error``: ``.a.b`` of a missing key raises KeyError; ``index .a.b "k"`` of a
    missing key renders the zero value "" (``index`` is not governed by ``missingkey``: Go
    text/template doc, "index"; funcs.go ``index`` returns ``reflect.Zero`` of the element type);
    ``{{ if not (index ...) }}{{ fail "msg" }}{{ end }}`` raises TemplateFailed (Sprig's
    ``fail``) when that value is empty. Anything else raises ValueError."""

    def required(match: re.Match[str]) -> str:
        m = _INDEX.match(match.group(1))
        assert m is not None
        if not _index(m):
            raise TemplateFailed(json.loads(match.group(2)))
        return ""

    def _index(m: re.Match[str]) -> str:
        mapping = _lookup(params, m.group(1))
        return str(mapping.get(json.loads(m.group(2)), ""))

    def action(match: re.Match[str]) -> str:
        expr = match.group(1)
        if m := _INDEX.match(expr):
            return _index(m)
        if m := _FIELD.match(expr):
            return str(_lookup(params, m.group(1)))
        raise ValueError(f"template action not supported by this test renderer: {expr!r}")

    return _ACTION.sub(action, _REQUIRED.sub(required, text))


def render_template(template: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        return render_go_template(template, params)
    if isinstance(template, list):
        return [render_template(t, params) for t in template]
    if isinstance(template, dict):
        return {render_go_template(k, params): render_template(v, params) for k, v in template.items()}
    return template


def cluster_generator_params(secret: Mapping[str, Any]) -> dict[str, Any]:
    """What the cluster generator hands the template for one cluster Secret (goTemplate mode)."""
    data = secret["stringData"]
    meta = secret["metadata"]
    return {
        "name": data["name"],
        "server": data["server"],
        "metadata": {
            "labels": dict(meta.get("labels") or {}),
            "annotations": dict(meta.get("annotations") or {}),
        },
    }


# --- ignoreApplicationDifferences ----------------------------------------------------------------


def jq_available() -> bool:
    return shutil.which("jq") is not None


def jq_delete(document: Mapping[str, Any], expression: str) -> Any:
    """``del(<expression>)`` as Argo CD's jq ignore-normaliser applies it (gojq there, jq here)."""
    result = subprocess.run(
        ["jq", "-c", f"del({expression})"],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def normalise_application(app: Mapping[str, Any]) -> dict[str, Any]:
    """Drop empty lists/maps, as the controller's semantic comparison treats empty and absent alike."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: clean(v) for k, v in value.items()}
            return {k: v for k, v in out.items() if v not in ({}, [], None)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(copy.deepcopy(dict(app)))


# --- Rendering an Application's Helm source as Argo CD does --------------------------------------


def helm_template_application(
    app: Mapping[str, Any], repo_root: Path, kube_version: str
) -> subprocess.CompletedProcess[str]:
    """``helm template`` of a generated Application's single Helm source, as the repo-server runs it.

    argoproj/argo-cd v3.4.4, reposerver/repository/repository.go ``helmTemplate``: release name =
    the Application's name (``helm.releaseName`` unset), namespace = the destination namespace,
    ``--kube-version`` = the destination cluster's, the value files in order (relative to the
    source path), the ``valuesObject`` as one more values file, then each ``helm.parameters`` entry as ``--set name=value`` (``--set-string``
    with ``forceString``). The caller skips when ``helm`` is not on PATH.
    """
    helm_bin = shutil.which("helm")
    assert helm_bin is not None, "helm_template_application needs helm on PATH"
    spec = app["spec"]
    if "sources" in spec:
        raise NotImplementedError("multi-source Applications are not rendered here")
    source = spec["source"]
    helm = source.get("helm") or {}
    chart_dir = repo_root / source["path"]
    args = [
        helm_bin,
        "template",
        str(helm.get("releaseName") or app["metadata"]["name"]),
        str(chart_dir),
        "--namespace",
        str(spec["destination"]["namespace"]),
        "--kube-version",
        kube_version,
    ]
    for name in helm.get("valueFiles") or []:
        args += ["--values", str(chart_dir / name)]
    with tempfile.TemporaryDirectory() as scratch:
        values_object = helm.get("valuesObject")
        if values_object:
            # util/helm/cmd.go ``template``: the values object is written to a temporary file
            # and passed as the last --values, after the value files and before the --set
            # parameters.
            extra = Path(scratch) / "values-object.yaml"
            extra.write_text(yaml.safe_dump(values_object))
            args += ["--values", str(extra)]
        for parameter in helm.get("parameters") or []:
            flag = "--set-string" if parameter.get("forceString") else "--set"
            args += [flag, f"{parameter['name']}={parameter['value']}"]
        return subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)


def rendered_objects(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The objects of a successful ``helm template`` (fails the test with helm's error otherwise)."""
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# --- What the controllers produce from the program's manifests ----------------------------------


def generated_applications(config: StackConfig) -> dict[str, dict[str, Any]]:
    """Each region's Application as the ApplicationSet controller generates it from the program's
    ApplicationSet and cluster Secrets (``infra.manifests.argocd``), keyed by region. Brand new:
    no parameters, no status."""
    appset = manifests.application_set(config)
    selector = appset["spec"]["generators"][0]["clusters"]["selector"]
    apps: dict[str, dict[str, Any]] = {}
    for region in config.region_names:
        secret = manifests.cluster_secret(
            config,
            region,
            cluster_name=naming.cluster_name(config.environment, region),
            endpoint=f"https://{region}.eks.example.com",
            vpc_id=fake_vpc_id(region),
            ca_data="Q0EK",
            traffic_facts=example_traffic_facts(config, region),
        )
        labels = secret["metadata"]["labels"]
        if labels.get(manifests.SECRET_TYPE_LABEL) == "cluster" and selector_matches(selector, labels):
            app = render_template(appset["spec"]["template"], cluster_generator_params(secret))
            app.setdefault("apiVersion", manifests.ARGOPROJ_API)
            app.setdefault("kind", "Application")
            app["metadata"].setdefault("namespace", naming.ARGOCD_NAMESPACE)
            apps[region] = app
    return apps


def fake_vpc_id(region: str) -> str:
    """A VPC ID of the form EKS gives (``vpc-`` and 17 hex digits), distinct per region."""
    return "vpc-" + re.sub(r"[^0-9a-f]", "0", region.encode().hex())[:17]


def example_traffic_facts(config: StackConfig, region: str) -> traffic.RegionFacts | None:
    """What the program's traffic components would hand the cluster Secret of ``region`` (shaped
    as ACM, Route 53 and WAFv2 return them), or None without platform:traffic."""
    if config.traffic is None:
        return None
    account = config.account_id
    return traffic.RegionFacts(
        certificate_arn=f"arn:aws:acm:{region}:{account}:certificate/0a1b2c3d-{region}",
        health_check_id=f"abcdef01-2345-6789-abcd-{region.replace('-', '')[:12]:0<12}",
        waf_acl_arn=(
            f"arn:aws:wafv2:{region}:{account}:regional/webacl/{traffic.web_acl_name(config, region)}/0a1b2c3d"
            if config.traffic.waf
            else None
        ),
    )


def image_updater_parameters(config: StackConfig, region: str, tag: str) -> list[dict[str, str]]:
    """The Helm parameters Image Updater (write-back argocd) writes into ``region``'s Application:
    ``manifestTargets.helm.name`` = the watched image's repository, ``.tag`` = the tag
    (argocd-image-updater v1.2.2, pkg/argocd/argocd.go ``SetHelmImage``)."""
    name = naming.application_name(config.application.name, config.environment, region)
    (ref,) = [
        r for r in manifests.image_updater(config)["spec"]["applicationRefs"] if r["namePattern"] == name
    ]
    (image,) = ref["images"]
    helm = image["manifestTargets"]["helm"]
    return [{"name": helm["name"], "value": image["imageName"]}, {"name": helm["tag"], "value": tag}]


def with_parameters(app: Mapping[str, Any], parameters: list[dict[str, str]]) -> dict[str, Any]:
    """``app`` after Image Updater's write-back: the parameters merged in by name."""
    out = copy.deepcopy(dict(app))
    helm = out["spec"]["source"].setdefault("helm", {})
    current = {p["name"]: p for p in helm.get("parameters") or []}
    for parameter in parameters:
        current[parameter["name"]] = dict(parameter)
    helm["parameters"] = list(current.values())
    return out
