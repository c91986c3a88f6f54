"""The EKS add-on version table (infra/versions.py) against the Kubernetes versions config accepts."""

from __future__ import annotations

import re

import pytest

from infra import versions
from infra.components.cluster import ADDONS

ADDON_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$")


def test_every_pinned_kubernetes_version_pins_every_addon() -> None:
    # Only versions in standard support have rows, and a row pins every add-on the cluster installs.
    assert set(versions.EKS_ADDONS) <= set(versions.EKS_STANDARD_SUPPORT)
    for k8s, table in versions.EKS_ADDONS.items():
        assert set(table) == set(ADDONS), k8s


@pytest.mark.parametrize("k8s", sorted(versions.EKS_STANDARD_SUPPORT))
def test_a_version_without_addon_rows_is_refused_by_name(k8s: str) -> None:
    # A version config accepted but the table lacked would fail in the middle of `pulumi up`.
    problem = versions.kubernetes_version_problem(k8s)
    if k8s in versions.EKS_ADDONS:
        assert problem is None
        assert versions.eks_addon_versions(k8s) == versions.EKS_ADDONS[k8s]
    else:
        assert problem is not None
        assert f"Kubernetes {k8s} has no pinned EKS add-on versions (infra/versions.py EKS_ADDONS)" in problem
        with pytest.raises(ValueError, match="no pinned EKS add-on versions"):
            versions.eks_addon_versions(k8s)


@pytest.mark.parametrize("k8s", sorted(versions.EKS_ADDONS))
def test_versions_are_exact_eks_builds(k8s: str) -> None:
    for addon, version in versions.EKS_ADDONS[k8s].items():
        assert version is None or ADDON_VERSION.match(version), (k8s, addon, version)


def test_every_pinned_version_is_cited_and_every_citation_names_its_version() -> None:
    """A pinned add-on version is one a source lists for that Kubernetes version (CreateAddon
    refuses any other): each pinned row has a source that quotes exactly that row, and no source
    is left for a row that pins nothing."""
    pinned = {(k8s, a): v for k8s, t in versions.EKS_ADDONS.items() for a, v in t.items() if v is not None}
    assert set(versions.EKS_ADDON_SOURCES) == set(pinned)
    for (k8s, addon), version in pinned.items():
        source = versions.EKS_ADDON_SOURCES[(k8s, addon)]
        assert source.startswith(("https://docs.aws.amazon.com/", "https://docs.amazonaws.cn/")), source
        assert f"'{k8s} | {version}'" in source, (k8s, addon)


@pytest.mark.parametrize("k8s", sorted(versions.EKS_ADDONS))
def test_kube_proxy_matches_the_cluster_minor_version(k8s: str) -> None:
    # kube-proxy must not be newer or older than the control plane's minor version; it is the
    # add-on tied to the control plane's version, so it is always pinned.
    kube_proxy = versions.EKS_ADDONS[k8s]["kube-proxy"]
    assert kube_proxy is not None and kube_proxy.startswith(f"v{k8s}.")
