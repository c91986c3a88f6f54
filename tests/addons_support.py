"""Test helpers for the cluster add-ons (issue 17): Argo CD's cluster generator as a small model,
the upstream chart packages in ../shared, and ``helm template`` of one generated Application.
No Pulumi here."""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import naming, versions
from infra.config import StackConfig
from infra.manifests import argocd as manifests
from tests.argocd_support import (
    example_traffic_facts,
    fake_vpc_id,
    render_template,
    require_shared,
    selector_matches,
)

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"


def cluster_secrets(config: StackConfig) -> dict[str, dict[str, Any]]:
    """Every cluster Secret the program writes for ``config``, keyed by region, with the facts
    the real cluster would give (name, endpoint, CA, VPC ID)."""
    return {
        region: manifests.cluster_secret(
            config,
            region,
            cluster_name=naming.cluster_name(config.environment, region),
            endpoint=f"https://{region}.eks.example.com",
            ca_data="Q0EK",
            vpc_id=fake_vpc_id(region),
            traffic_facts=example_traffic_facts(config, region),
        )
        for region in config.region_names
    }


def _sanitize_name(name: str) -> str:
    """argo-cd v3.4.4 applicationset/utils/utils.go ``SanitizeName`` (lower case, invalid runs
    to '-', trimmed), enough for cluster names."""
    return re.sub(r"[^a-z0-9-.]+", "-", name.lower()).strip("-.")


def cluster_generator(
    application_set: Mapping[str, Any], secrets: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The Applications the ApplicationSet controller generates from ``secrets``.

    A model of argoproj/argo-cd v3.4.4 ``applicationset/generators/cluster.go``:
    ``getSecretsByClusterName`` lists the Secrets matching the generator's selector *plus*
    ``argocd.argoproj.io/secret-type: cluster`` (``metav1.AddLabelToSelector``); with a
    non-empty selector the local cluster is never added (``ignoreLocalClusters``);
    ``getClusterParameters`` gives ``name``, ``nameNormalized``, ``server``, ``project`` (``""``
    without one) and, with ``goTemplate``, ``metadata.labels`` / ``metadata.annotations`` (each
    only when non-empty). Each generator's ``values`` land under ``.values``. The template is
    then rendered with ``missingkey=error`` (tests/argocd_support.py ``render_template``:
    ``.a.b`` and ``index .a.b "k"``, the only forms the program's templates use). A render error
    for any one cluster raises, i.e. the set yields no Application at all: v3.4.4
    ``applicationset/controllers/template/template.go`` returns its first error and
    ``applicationset_controller.go`` ``Reconcile`` returns on it (``ErrorOccurred``) before
    creating, updating or deleting any Application.
    """
    spec = application_set["spec"]
    assert spec.get("goTemplate") is True, "the program's ApplicationSets use goTemplate"
    assert "missingkey=error" in (spec.get("goTemplateOptions") or [])
    out = []
    for generator in spec["generators"]:
        clusters = generator["clusters"]
        selector = clusters.get("selector") or {}
        assert selector.get("matchLabels") or selector.get("matchExpressions"), (
            "an empty selector adds in-cluster"
        )
        for secret in secrets:
            meta = secret["metadata"]
            labels = dict(meta.get("labels") or {})
            if labels.get(SECRET_TYPE_LABEL) != "cluster" or not selector_matches(selector, labels):
                continue
            data = secret["stringData"]
            params: dict[str, Any] = {
                "name": data["name"],
                "nameNormalized": _sanitize_name(data["name"]),
                "server": data["server"],
                "project": data.get("project", ""),
                "metadata": {},
            }
            if labels:
                params["metadata"]["labels"] = labels
            if meta.get("annotations"):
                params["metadata"]["annotations"] = dict(meta["annotations"])
            if clusters.get("values"):
                params["values"] = {k: render_template(v, params) for k, v in clusters["values"].items()}
            app = render_template(spec["template"], params)
            app.setdefault("apiVersion", "argoproj.io/v1alpha1")
            app.setdefault("kind", "Application")
            app["metadata"].setdefault("namespace", naming.ARGOCD_NAMESPACE)
            out.append(app)
    return out


# --- Upstream chart packages ---------------------------------------------------------------------


def chart_package(chart: str, version: str) -> Path:
    """``../shared/upstream-charts/<chart>-<version>.tgz``; skips when ../shared or that version is
    absent (a stack may pin a version newer than the packaged one: docs/addons.md, "Versions per
    environment"). The skip reason names the missing package, the directory it belongs in and how
    to fetch it, since a skip leaves the bumped version unrendered while the run stays green."""
    path = require_shared() / "upstream-charts" / f"{chart}-{version}.tgz"
    if not path.is_file():
        repository = next(
            (c["repository"] for c in versions.ADDON_CHARTS.values() if c["chart"] == chart), None
        )
        fetch = (
            f"helm pull {chart} --repo {repository} --version {version} --destination {path.parent}"
            if repository
            else f"helm package the chart {chart} at {version} into {path.parent}"
        )
        pytest.skip(
            f"{path.name} is not in {path.parent}, so {chart} {version} is NOT rendered or checked "
            f"against its chart; put the package there ({fetch}) and in CI's ../shared/upstream-charts"
        )
    return path


@cache
def chart_defaults(chart: str, version: str) -> dict[str, Any]:
    """The chart's own values.yaml, read from its package."""
    with tarfile.open(chart_package(chart, version)) as tar:
        member = tar.extractfile(f"{chart}/values.yaml")
        assert member is not None
        data = yaml.safe_load(member.read())
    assert isinstance(data, dict)
    return data


def helm_template(
    app: Mapping[str, Any], package: Path, tmp_path: Path, kube_version: str
) -> list[dict[str, Any]]:
    """``helm template`` of a generated add-on Application's chart source, as the repo-server runs
    it (argo-cd v3.4.4 reposerver/repository/repository.go ``helmTemplate``: release name
    ``helm.releaseName``, namespace = the destination's, ``--kube-version`` of the cluster,
    ``valuesObject`` as a values file)."""
    helm_bin = shutil.which("helm")
    if helm_bin is None:
        pytest.skip("helm is not on PATH")
    source = app["spec"]["source"]
    values = tmp_path / f"{app['metadata']['name']}.values.yaml"
    values.write_text(yaml.safe_dump(source["helm"].get("valuesObject") or {}))
    args = [
        helm_bin,
        "template",
        source["helm"]["releaseName"],
        str(package),
        "--namespace",
        app["spec"]["destination"]["namespace"],
        "--kube-version",
        kube_version,
        "--include-crds",
        "--values",
        str(values),
    ]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return unlisted([doc for doc in yaml.safe_load_all(result.stdout) if doc])


def unlisted(objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The objects Argo CD applies: a ``kind: List`` (the aws-load-balancer-controller chart wraps
    its IngressClass in one) stands for its items (argo-cd v3.4.4
    reposerver/repository/repository.go ``GenerateManifests``: ``obj.IsList()`` ->
    ``EachListItem``)."""
    out: list[dict[str, Any]] = []
    for obj in objects:
        if obj.get("kind") == "List" and str(obj.get("apiVersion")) == "v1":
            out.extend(dict(item) for item in obj.get("items") or [])
        else:
            out.append(dict(obj))
    return out


# Kinds by scope, for checking the add-ons' AppProject (an unknown kind fails the test, so a new
# kind is classified by a person).
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "Namespace",
        "PriorityClass",
        "IngressClass",
        "IngressClassParams",
        "ClusterSecretStore",
        "ClusterExternalSecret",
        "ClusterGenerator",
        "ClusterPushSecret",
    }
)
NAMESPACED = frozenset(
    {
        "ConfigMap",
        "Deployment",
        "DaemonSet",
        "ExternalSecret",
        "HorizontalPodAutoscaler",
        "Job",
        "Lease",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Secret",
        "SecretStore",
        "Service",
        "ServiceAccount",
        "StatefulSet",
        "Pod",
    }
)


def cluster_scoped_kinds(objects: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    out = set()
    for obj in objects:
        kind = str(obj["kind"])
        group = str(obj["apiVersion"]).rpartition("/")[0]
        if kind in CLUSTER_SCOPED:
            out.add((group, kind))
        else:
            assert kind in NAMESPACED, (
                f"classify the scope of {obj['apiVersion']} {kind} in tests/addons_support.py"
            )
    return out


# --- CRDs of the add-on charts (../shared/crds/<chart>/) ---------------------------------------


@cache
def _addon_crds() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for path in sorted((require_shared() / "crds").glob("*/*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if isinstance(crd, dict) and crd.get("kind") == "CustomResourceDefinition":
            out[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    return out


def addon_crd_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Every schema violation of a custom resource against the CRD of the pinned chart
    (``../shared/crds/<chart>/``; unknown fields refused as the API server would prune them,
    see tests/argocd_support.py ``_strict``)."""
    import jsonschema

    from tests.argocd_support import _strict

    group, _, version = str(manifest["apiVersion"]).rpartition("/")
    crd = _addon_crds().get((group, str(manifest["kind"])))
    assert crd is not None, f"no CRD for {manifest['apiVersion']} {manifest['kind']} in ../shared/crds"
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if version not in served:
        return [f"apiVersion {manifest['apiVersion']}: the CRD serves {sorted(served)}"]
    schema = _strict(served[version]["schema"]["openAPIV3Schema"])
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(dict(manifest))
    ]
