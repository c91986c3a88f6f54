"""The kubeconfig builder (infra/manifests/kubeconfig.py), without Pulumi."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from infra.manifests import kubeconfig as kc

SERVER = "https://ABCDEF0123456789.gr7.eu-west-1.eks.amazonaws.com"
CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def test_exec_authentication_with_the_aws_cli() -> None:
    doc = kc.kubeconfig("platform-prod-eu-west-1", "eu-west-1", SERVER, CA)
    (user,) = doc["users"]
    exec_ = user["user"]["exec"]
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_["command"] == "aws"
    assert exec_["args"] == [
        "eks",
        "get-token",
        "--cluster-name",
        "platform-prod-eu-west-1",
        "--region",
        "eu-west-1",
    ]
    # No static credential of any kind.
    assert set(user["user"]) == {"exec"}
    assert "token" not in json.dumps(doc).replace("get-token", "")


def test_current_context_points_at_the_one_cluster_and_user() -> None:
    doc = kc.kubeconfig("c1", "us-east-1", SERVER, CA)
    (cluster,) = doc["clusters"]
    (context,) = doc["contexts"]
    assert cluster["cluster"] == {"server": SERVER, "certificate-authority-data": CA}
    assert doc["current-context"] == context["name"]
    assert context["context"] == {"cluster": cluster["name"], "user": doc["users"][0]["name"]}
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Config"


def test_kubernetes_client_loads_it() -> None:
    from kubernetes import config as k8s_config

    loader = k8s_config.kube_config.KubeConfigLoader(config_dict=kc.kubeconfig("c1", "us-east-1", SERVER, CA))
    assert loader.current_context["context"]["cluster"] == "c1"


def test_json_is_deterministic() -> None:
    a = kc.to_json(kc.kubeconfig("c1", "us-east-1", SERVER, CA))
    b = kc.to_json(json.loads(a))
    assert a == b
    assert yaml.safe_load(a) == json.loads(a)


def test_endpoint_and_ca_come_from_the_first_cluster_object_or_json() -> None:
    eks_kubeconfig = {
        "clusters": [{"name": "kubernetes", "cluster": {"server": SERVER, "certificate-authority-data": CA}}]
    }
    assert kc.server_and_ca(eks_kubeconfig) == (SERVER, CA)
    assert kc.server_and_ca(json.dumps(eks_kubeconfig)) == (SERVER, CA)


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"clusters": []},
        {"clusters": [{"cluster": {"server": SERVER}}]},
        {"clusters": [{"cluster": {"server": "http://plain", "certificate-authority-data": CA}}]},
        {"clusters": [{"cluster": {"server": SERVER, "certificate-authority-data": "not base64!"}}]},
        {
            "clusters": [
                {
                    "cluster": {
                        "server": SERVER,
                        "certificate-authority-data": base64.b64encode(b"hello").decode(),
                    }
                }
            ]
        },
    ],
)
def test_a_kubeconfig_without_a_usable_endpoint_or_ca_is_refused(broken: dict) -> None:
    with pytest.raises(ValueError):
        kc.server_and_ca(broken)
