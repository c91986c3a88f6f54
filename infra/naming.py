"""Names, labels, tags and stack-output keys: each defined once, here.

Every physical name the program gives a cloud or Kubernetes object is built by a function in
this module, so the chart values, the deploy command, the DR runbook and the tests all derive
the same names from the same config.
"""

from __future__ import annotations

from collections.abc import Mapping

PROJECT = "platform"

# --- Kubernetes objects on the hub -----------------------------------------------------------
ARGOCD_NAMESPACE = "argocd"
ARGOCD_RELEASE = "argocd"
IMAGE_UPDATER_RELEASE = "argocd-image-updater"
IMAGE_UPDATER_SERVICE_ACCOUNT = "argocd-image-updater"
ARGOCD_CONTROLLER_SERVICE_ACCOUNTS = (
    "argocd-application-controller",
    "argocd-applicationset-controller",
    "argocd-server",
)
APP_PROJECT = "platform"
# Kubernetes group the prod deploy role is mapped to through its EKS access entry.
DEPLOYER_GROUP = "platform:deployers"
DEPLOYER_ROLE = "platform-deployer"

# Labels on Argo CD cluster Secrets, which the ApplicationSet's cluster generator selects on.
LABEL_ENVIRONMENT = "platform.example.com/environment"
LABEL_REGION = "platform.example.com/region"
LABEL_CLUSTER_ROLE = "platform.example.com/cluster-role"  # hub | spoke
# Annotations on cluster Secrets carrying the cluster's metadata into the ApplicationSet.
ANNOTATION_ACCOUNT = "platform.example.com/account-id"
ANNOTATION_REGION = "platform.example.com/region"
ANNOTATION_CLUSTER_NAME = "platform.example.com/cluster-name"
ANNOTATION_REGISTRY = "platform.example.com/registry"
# Label the ApplicationSet puts on every Application it generates (the deploy command finds
# prod's Applications by it).
LABEL_APPLICATION_SET = "platform.example.com/application-set"

# --- Required tags ---------------------------------------------------------------------------
TAG_PROJECT = "platform:project"
TAG_ENVIRONMENT = "platform:environment"
TAG_MANAGED_BY = "platform:managed-by"
REQUIRED_TAGS = (TAG_PROJECT, TAG_ENVIRONMENT, TAG_MANAGED_BY)


def base_tags(environment: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags every taggable AWS resource carries (config tags cannot override these)."""
    tags = dict(extra or {})
    tags.update({TAG_PROJECT: PROJECT, TAG_ENVIRONMENT: environment, TAG_MANAGED_BY: "pulumi"})
    return dict(sorted(tags.items()))


# --- AWS names -------------------------------------------------------------------------------
def cluster_name(environment: str, region: str) -> str:
    return f"{PROJECT}-{environment}-{region}"


def repository_name(prefix: str, service: str) -> str:
    return f"{prefix}/{service}"


def registry_host(account_id: str, region: str) -> str:
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def image_repository(account_id: str, region: str, prefix: str, service: str) -> str:
    return f"{registry_host(account_id, region)}/{repository_name(prefix, service)}"


def ecr_kms_alias(environment: str) -> str:
    """The alias of each region's customer managed key that encrypts the ECR repositories."""
    return f"alias/{PROJECT}-{environment}-ecr"


# The IAM role ECR assumes to create repositories from a repository creation template.
ECR_TEMPLATE_ROLE_PURPOSE = "ecr-repository-templates"


def role_name(environment: str, purpose: str) -> str:
    """IAM role names are global to an account: prefix with project and environment."""
    return f"{PROJECT}-{environment}-{purpose}"


# --- GitHub Actions: the workflow files whose jobs assume the roles (.github/workflows/) --------
WORKFLOWS_DIR = ".github/workflows"
WORKFLOW_BUILD = "build-images.yml"
WORKFLOW_PREVIEW = "preview.yml"
WORKFLOW_UP = "up.yml"
WORKFLOW_DEPLOY = "deploy-prod.yml"


def runner_project_name(environment: str) -> str:
    """The CodeBuild project whose runners run the jobs that talk to ``environment``'s hub."""
    return f"{PROJECT}-{environment}-runner"


# --- Argo CD names ---------------------------------------------------------------------------
def application_set_name(app: str, environment: str) -> str:
    return f"{app}-{environment}"


def application_name(app: str, environment: str, region: str) -> str:
    return f"{app}-{environment}-{region}"


def cluster_secret_name(environment: str, region: str) -> str:
    return f"cluster-{cluster_name(environment, region)}"


def value_files(environment: str, region: str) -> tuple[str, str, str]:
    """The Helm value files each Application reads, most general first."""
    return ("values.yaml", f"values-{environment}.yaml", f"values-{environment}-{region}.yaml")


# --- Stack outputs: the documented contract (README, "Outputs") -----------------------------
OUTPUT_CLUSTERS = "clusters"  # {region: {name, endpoint, oidcIssuer}}
OUTPUT_KUBECONFIGS = "kubeconfigs"  # {region: kubeconfig JSON} (secret)
OUTPUT_REGISTRIES = "registries"  # {region: registry URL}
OUTPUT_GITHUB_ROLES = "githubRoles"  # {purpose: role ARN}
OUTPUT_ARGOCD = "argocd"  # {region, namespace, url, applicationSet}
OUTPUT_HUB_REGION = "hubRegion"
# [cidr]: the hub's NAT addresses, /32 each. The stack whose deploy reads another stack's hub
# (prod reads staging's) publishes them; the read stack admits them (infra.components.hub_readers).
OUTPUT_HUB_EGRESS_CIDRS = "hubEgressCidrs"
OUTPUT_ENVIRONMENT = "environment"
# {region: {add-on: chart version}}: what each cluster runs; prod's up reads staging's
# (policies/gitops.py gitops-addon-staged-before-prod).
OUTPUT_ADDONS = "addons"


# The release branch: up.yml runs on it, prod's environments deploy from it alone, and prod's
# `protect-main` ruleset admits changes to it through reviewed pull requests only
# (infra/components/github_repository.py).
RELEASE_BRANCH = "main"
