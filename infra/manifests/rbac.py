"""Kubernetes RBAC for the people and jobs that drive deploys, as pure functions.

The prod deploy command (``python -m infra.deploy``) talks to Argo CD only through the
Kubernetes API, as the GitHub ``deploy`` role (prod) and ``verify`` role (staging) mapped by
EKS access entries to the groups below. These rules are the whole of what those roles may do;
the deploy command's tests check that the verbs it calls are exactly these.
"""

from __future__ import annotations

from typing import Any

from infra import naming

ARGO_GROUP = "argoproj.io"
APPLICATIONS = "applications"

# Prod: find, read, watch and trigger syncs (patching `operation`) of Applications.
DEPLOYER_VERBS: tuple[str, ...] = ("get", "list", "watch", "patch")
# Staging: read what runs, to verify an image before promoting it. The deploy reads each
# staging Application by name, so `get` is all it needs (tests/unit/test_deploy_rbac.py).
VERIFIER_VERBS: tuple[str, ...] = ("get",)

DEPLOYER_GROUP = naming.DEPLOYER_GROUP
VERIFIER_GROUP = "platform:verifiers"
DEPLOYER_ROLE = naming.DEPLOYER_ROLE
VERIFIER_ROLE = "platform-verifier"


def application_rules(verbs: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"apiGroups": [ARGO_GROUP], "resources": [APPLICATIONS], "verbs": list(verbs)}]


def role(name: str, verbs: tuple[str, ...], namespace: str = naming.ARGOCD_NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": application_rules(verbs),
    }


def role_binding(name: str, group: str, namespace: str = naming.ARGOCD_NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}],
    }
