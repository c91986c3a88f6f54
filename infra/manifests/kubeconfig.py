"""The kubeconfig the program (and people) use to reach a cluster, as pure functions.

Authentication is always the AWS CLI exec plugin: the kubeconfig holds no credential, only the
endpoint, the cluster CA and the command that mints a short-lived token from whatever AWS
identity runs it, so access stays governed by EKS access entries.
https://docs.aws.amazon.com/eks/latest/userguide/create-kubeconfig.html
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def token_command(cluster_name: str, region: str) -> list[str]:
    """``aws`` arguments that mint a token for ``cluster_name`` in ``region``."""
    return ["eks", "get-token", "--cluster-name", cluster_name, "--region", region]


def kubeconfig(cluster_name: str, region: str, server: str, certificate_authority: str) -> dict[str, Any]:
    """A one-cluster kubeconfig with exec authentication.

    ``certificate_authority`` is the base64 PEM EKS returns (``certificateAuthority.data``).
    """
    check_server(server)
    check_certificate_authority(certificate_authority)
    context = cluster_name
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": certificate_authority},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": context,
        "preferences": {},
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": EXEC_API_VERSION,
                        "command": "aws",
                        "args": token_command(cluster_name, region),
                        # The token command never prompts, so it runs without a terminal (Pulumi, CI).
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }


def to_json(config: Mapping[str, Any]) -> str:
    """Serialised deterministically, so an unchanged cluster never shows a kubeconfig diff."""
    return json.dumps(config, sort_keys=True)


def check_server(server: str) -> None:
    if not isinstance(server, str) or not server.startswith("https://") or len(server) <= len("https://"):
        raise ValueError(f"expected the cluster API endpoint as an https:// URL, got {server!r}")


def check_certificate_authority(certificate_authority: str) -> None:
    try:
        pem = base64.b64decode(certificate_authority, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise ValueError("expected the cluster CA as base64-encoded PEM") from None
    if not pem.startswith(PEM_CERTIFICATE):
        raise ValueError("expected the cluster CA as base64-encoded PEM (-----BEGIN CERTIFICATE-----)")


def server_and_ca(eks_kubeconfig: Any) -> tuple[str, str]:
    """Endpoint and CA of the first cluster of a kubeconfig (an object or its JSON text), such as
    the ``kubeconfig`` output of a pulumi-eks ``Cluster``."""
    doc = json.loads(eks_kubeconfig) if isinstance(eks_kubeconfig, str) else eks_kubeconfig
    try:
        cluster = doc["clusters"][0]["cluster"]
        server = cluster["server"]
        ca = cluster["certificate-authority-data"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            "expected a kubeconfig with clusters[0].cluster.server and certificate-authority-data"
        ) from None
    check_server(server)
    check_certificate_authority(ca)
    return str(server), str(ca)
