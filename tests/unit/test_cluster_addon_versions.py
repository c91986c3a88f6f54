"""The EKS add-on version table (infra/versions.py) against the Kubernetes versions config accepts."""

from __future__ import annotations

import re

import pytest

from infra import versions
from infra.components.cluster import ADDONS

ADDON_VERSION = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$")


def test_every_supported_kubernetes_version_pins_every_addon() -> None:
    # A version config accepts but the table lacks would fail in the middle of `pulumi up`.
    assert set(versions.EKS_ADDONS) == set(versions.EKS_STANDARD_SUPPORT)
    for k8s, table in versions.EKS_ADDONS.items():
        assert set(table) == set(ADDONS), k8s


@pytest.mark.parametrize("k8s", sorted(versions.EKS_ADDONS))
def test_versions_are_exact_eks_builds(k8s: str) -> None:
    for addon, version in versions.EKS_ADDONS[k8s].items():
        assert ADDON_VERSION.match(version), (k8s, addon, version)


@pytest.mark.parametrize("k8s", sorted(versions.EKS_ADDONS))
def test_kube_proxy_matches_the_cluster_minor_version(k8s: str) -> None:
    # kube-proxy must not be newer or older than the control plane's minor version.
    assert versions.EKS_ADDONS[k8s]["kube-proxy"].startswith(f"v{k8s}.")
