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

# EKS managed add-on versions per Kubernetes minor version
# (`aws eks describe-addon-versions --kubernetes-version 1.35 --addon-name coredns`).
EKS_ADDONS: dict[str, dict[str, str]] = {
    "1.34": {
        "vpc-cni": "v1.20.4-eksbuild.1",
        "kube-proxy": "v1.34.1-eksbuild.2",
        "coredns": "v1.12.4-eksbuild.1",
        "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    },
    "1.35": {
        "vpc-cni": "v1.21.1-eksbuild.1",
        "kube-proxy": "v1.35.0-eksbuild.2",
        "coredns": "v1.13.1-eksbuild.1",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.1",
    },
    "1.36": {
        "vpc-cni": "v1.21.1-eksbuild.1",
        "kube-proxy": "v1.36.0-eksbuild.1",
        "coredns": "v1.13.1-eksbuild.1",
        "eks-pod-identity-agent": "v1.3.10-eksbuild.1",
    },
}
