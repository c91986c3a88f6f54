"""Builders for the policy tests: resource views and stacks as the adapters would build them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from infra import naming
from policies.catalog import rule
from policies.engine import Finding, ResourceView, StackView

PROJECT = "platform"


def urn(type_: str, name: str, stack: str = "prod", parents: tuple[str, ...] = ()) -> str:
    chain = "$".join((*parents, type_))
    return f"urn:pulumi:{stack}::{PROJECT}::{chain}::{name}"


def view(
    type_: str,
    name: str = "r",
    props: Mapping[str, Any] | None = None,
    *,
    environment: str | None = "prod",
    protect: bool = False,
    retain_on_delete: bool | None = False,
    region: str | None = "us-west-2",
    account_id: str | None = "444455556666",
    parents: tuple[str, ...] = (),
    deps: Mapping[str, tuple[str, ...]] | None = None,
) -> ResourceView:
    return ResourceView(
        type=type_,
        urn=urn(type_, name, environment or "unknown", parents),
        name=name,
        props=dict(props or {}),
        protect=protect,
        retain_on_delete=retain_on_delete,
        stack=environment,
        stack_environment=environment,
        region=region,
        account_id=account_id,
        property_dependencies=dict(deps or {}),
    )


def stack(*views: ResourceView, environment: str | None = "prod", peer: str | None = None) -> StackView:
    return StackView(resources=tuple(views), stack=environment, environment=environment, peer_account_id=peer)


def check(name: str, subject: ResourceView) -> list[str]:
    """The messages of resource rule ``name`` for ``subject``."""
    return rule(name).run_resource(subject)


def check_stack(name: str, subject: StackView) -> list[Finding]:
    return rule(name).run_stack(subject)


def tags(environment: str = "prod") -> dict[str, str]:
    return naming.base_tags(environment, {"team": "platform"})


def doc(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
