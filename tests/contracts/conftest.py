"""Fixtures shared by the contract tests."""

from __future__ import annotations

import pytest

from tests.contracts.sync_support import DeployOperation, with_deploy_operation


@pytest.fixture
def deploy_operation() -> DeployOperation:
    """What ``python -m infra.deploy prod`` writes into an Application (the JSON merge patch of
    ``infra.deploy_model.operation_patch``, applied): ``deploy_operation(app, pinned=True)``."""
    return with_deploy_operation
