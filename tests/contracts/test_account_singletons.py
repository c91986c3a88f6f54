"""Which AWS objects a second stack in the same account would collide with (infra/stackset.py).

Read in the AWS API models botocore ships (botocore/data/<service>/<version>/service-2.json, the
same models the AWS CLI and SDKs are generated from), one test per behaviour:

* ECR ``PutReplicationConfiguration``, ``PutRegistryPolicy`` and ``PutRegistryScanningConfiguration``
  take no name or repository: the object is the registry's (one per account and region), and
  each call "creates or updates" it, replacing what another stack put there;
* ECR ``CreateRepositoryCreationTemplate`` is keyed by ``prefix`` within a registry;
* IAM ``CreateOpenIDConnectProvider`` is keyed by ``Url`` alone and fails with
  EntityAlreadyExists for a second provider of the same URL in an account;
* IAM ``CreateRole`` (``RoleName``) and KMS ``CreateAlias`` (``AliasName``) fail for a name that
  exists in the account (and region, for KMS): names the program derives from the environment.
"""

from __future__ import annotations

from typing import Any

import botocore.session as botocore_session
import pytest


def operation(service: str, name: str) -> Any:
    return botocore_session.get_session().get_service_model(service).operation_model(name)


@pytest.mark.parametrize(
    "name", ["PutReplicationConfiguration", "PutRegistryPolicy", "PutRegistryScanningConfiguration"]
)
def test_ecr_registry_settings_are_one_per_registry_and_replaced_whole(name: str) -> None:
    op = operation("ecr", name)
    members = set(op.input_shape.members)
    # Nothing names the object: no repository, no id; the optional registryId is the account.
    assert not members & {"repositoryName", "name", "id", "prefix"}, members
    assert "Creates or updates" in op.documentation


def test_ecr_repository_creation_templates_are_keyed_by_prefix() -> None:
    op = operation("ecr", "CreateRepositoryCreationTemplate")
    assert "prefix" in op.input_shape.required_members
    assert "TemplateAlreadyExistsException" in {e.name for e in op.error_shapes}


def test_the_github_oidc_provider_is_one_per_url_per_account() -> None:
    op = operation("iam", "CreateOpenIDConnectProvider")
    assert op.input_shape.required_members == ["Url"]
    assert "EntityAlreadyExistsException" in {e.name for e in op.error_shapes}


@pytest.mark.parametrize(
    ("service", "name", "key", "error"),
    [
        ("iam", "CreateRole", "RoleName", "EntityAlreadyExistsException"),
        ("kms", "CreateAlias", "AliasName", "AlreadyExistsException"),
    ],
)
def test_role_names_and_key_aliases_are_unique_in_an_account(
    service: str, name: str, key: str, error: str
) -> None:
    op = operation(service, name)
    assert key in op.input_shape.required_members
    assert error in {e.name for e in op.error_shapes}
