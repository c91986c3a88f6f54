"""Every pinned version of the platform, in one place.

Bumping a chart, an add-on or a supported Kubernetes version is a one-line change here; the
config validation, the components and the policy pack all read these tables.
"""

from __future__ import annotations

import re

SEMVER_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")

# Kubernetes minor versions in EKS *standard* support, with the end of standard support.
# EKS gives each minor version 14 months of standard support, then 12 months of paid extended
# support: https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html
# A version leaves this table when its standard support ends; config validation and the
# `eks-version-in-standard-support` policy both refuse anything not listed.
EKS_STANDARD_SUPPORT: dict[str, str] = {
    "1.34": "2026-12-02",
    "1.35": "2027-03-27",
    "1.36": "2027-07-28",
}

# Chart versions. The CRDs and default values of these exact versions are what the tests check
# the program's custom resources and Helm values against (../shared/).
ARGO_CD_CHART = "argo-cd"
ARGO_CD_CHART_VERSION = "10.1.1"
IMAGE_UPDATER_CHART = "argocd-image-updater"
IMAGE_UPDATER_CHART_VERSION = "1.2.4"
ARGO_HELM_REPOSITORY = "https://argoproj.github.io/argo-helm"

# EKS managed add-on versions per Kubernetes minor version. CreateAddon refuses a version EKS
# does not list for the cluster's Kubernetes version (addonVersion "must match one of the versions
# returned by DescribeAddonVersions": https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAddon.html),
# so a version is pinned only with a source that lists it for that Kubernetes version
# (EKS_ADDON_SOURCES, one per pinned row; tests/unit/test_cluster_addon_versions.py holds the two
# tables together). ``None``: no source found that lists a version of this add-on for this
# Kubernetes version, so none is pinned and CreateAddon is called without ``addonVersion``
# (optional: "Required: No", same page), and EKS installs a version it lists itself; such an
# add-on does not move when the cluster's Kubernetes version does (docs/clusters.md). The user
# guide's tables list only the *latest* version per Kubernetes version, at the time of reading:
# a row cites the snapshot it was read from. A Kubernetes version in EKS_STANDARD_SUPPORT without
# a row here is refused by config; 1.36 has none yet.
EKS_ADDONS: dict[str, dict[str, str | None]] = {
    "1.34": {
        "vpc-cni": None,
        "kube-proxy": "v1.34.1-eksbuild.2",
        "coredns": "v1.12.4-eksbuild.1",
        "eks-pod-identity-agent": None,
    },
    "1.35": {
        "vpc-cni": None,
        "kube-proxy": "v1.35.3-eksbuild.2",
        "coredns": "v1.13.2-eksbuild.4",
        "eks-pod-identity-agent": None,
    },
}

# (Kubernetes version, add-on) -> where the pinned version is listed for that Kubernetes version.
EKS_ADDON_SOURCES: dict[tuple[str, str], str] = {
    ("1.34", "kube-proxy"): (
        "https://docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html, 'kube-proxy "
        "versions' table: '1.34 | v1.34.1-eksbuild.2'"
    ),
    ("1.34", "coredns"): (
        "https://docs.aws.amazon.com/eks/latest/userguide/managing-coredns.html, 'CoreDNS versions' "
        "table: '1.34 | v1.12.4-eksbuild.1'"
    ),
    ("1.35", "kube-proxy"): (
        "https://docs.amazonaws.cn/zh_cn/eks/latest/userguide/managing-kube-proxy.md, 'kube-proxy "
        "versions' table: '1.35 | v1.35.3-eksbuild.2' (the same user guide, China site; no "
        "docs.aws.amazon.com snapshot with a 1.35 row was found)"
    ),
    ("1.35", "coredns"): (
        "https://docs.amazonaws.cn/zh_cn/eks/latest/userguide/managing-coredns.md, 'CoreDNS "
        "versions' table: '1.35 | v1.13.2-eksbuild.4' (China site, as above)"
    ),
}

# The cluster upgrade policy (why EXTENDED: infra/components/cluster.py, docs/clusters.md).
# https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html
EKS_UPGRADE_SUPPORT_TYPE = "EXTENDED"


def usable_kubernetes_versions() -> tuple[str, ...]:
    """The versions a stack file may name: in standard support, with pinned add-on versions."""
    return tuple(v for v in EKS_STANDARD_SUPPORT if v in EKS_ADDONS)


def kubernetes_version_problem(version: object) -> str | None:
    """Why ``version`` cannot be a cluster's Kubernetes version, or None if it can.

    It must be in EKS standard support (EKS_STANDARD_SUPPORT) and have the pinned add-on
    versions the cluster installs (EKS_ADDONS).
    """
    if not isinstance(version, str) or version not in EKS_STANDARD_SUPPORT:
        return "expected a Kubernetes version in EKS standard support: " + ", ".join(EKS_STANDARD_SUPPORT)
    if version not in EKS_ADDONS:
        usable = ", ".join(usable_kubernetes_versions())
        return (
            f"Kubernetes {version} has no pinned EKS add-on versions (infra/versions.py EKS_ADDONS), "
            f"and EKS refuses an add-on version it does not list; expected one of: {usable}"
        )
    return None


def eks_addon_versions(version: str) -> dict[str, str | None]:
    """The pinned add-on versions of Kubernetes ``version`` (None: EKS picks, see EKS_ADDONS);
    ValueError naming the fix if the version has no row."""
    problem = kubernetes_version_problem(version)
    if problem is not None:
        raise ValueError(problem)
    return EKS_ADDONS[version]


# Cluster add-ons that Argo CD deploys from their upstream Helm charts (infra/addons.py). Which
# version each *environment* runs is its stack file's `platform:addons.<name>.chartVersion`, so
# staging can run a newer chart than prod; this table says where each chart comes from and which
# version the tests render (the packaged chart in ../shared/upstream-charts/). Repositories: each
# chart's README (kubernetes-sigs/metrics-server charts/metrics-server, external-secrets
# deploy/charts/external-secrets, kubernetes/autoscaler cluster-autoscaler/charts/cluster-autoscaler,
# aws/eks-charts stable/aws-load-balancer-controller (the EKS user guide's lbc-helm.adoc installs it
# from https://aws.github.io/eks-charts), kubernetes-sigs/external-dns charts/external-dns).
ADDON_CHARTS: dict[str, dict[str, str]] = {
    "metrics-server": {
        "repository": "https://kubernetes-sigs.github.io/metrics-server/",
        "chart": "metrics-server",
        "tested": "3.13.1",
    },
    "external-secrets": {
        "repository": "https://charts.external-secrets.io",
        "chart": "external-secrets",
        "tested": "2.9.0",
    },
    "cluster-autoscaler": {
        "repository": "https://kubernetes.github.io/autoscaler",
        "chart": "cluster-autoscaler",
        "tested": "9.59.0",
    },
    "aws-load-balancer-controller": {
        "repository": "https://aws.github.io/eks-charts",
        "chart": "aws-load-balancer-controller",
        "tested": "3.5.0",
    },
    "external-dns": {
        "repository": "https://kubernetes-sigs.github.io/external-dns/",
        "chart": "external-dns",
        "tested": "1.21.1",
    },
    # argoproj/argo-helm charts/argo-rollouts 2.41.0 = Argo Rollouts v1.9.0 (its appVersion).
    "argo-rollouts": {
        "repository": ARGO_HELM_REPOSITORY,
        "chart": "argo-rollouts",
        "tested": "2.41.0",
    },
}

# The Argo Rollouts release the chart above installs: the upstream source every Rollout, analysis
# and status rule of the shop chart and the deploy command was read at (argoproj/argo-rollouts).
ARGO_ROLLOUTS_VERSION = "v1.9.0"
