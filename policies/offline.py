"""The offline adapter: the pack's rules over :class:`infra.offline.Plan` (the program under mocks).

``python -m infra.plan`` prints :func:`format_results` of :func:`evaluate`; the tests run it over
both example stacks. Each view carries what ``policies/pack.py`` reads from the engine: the
resource's inputs, ``protect``, and the region and account of its AWS provider. Two differences,
both in the plan's favour: the plan also sees ``retainOnDelete`` (the engine's policy protocol does
not send it), and stack rules read inputs here where the engine hands them outputs (the same
properties for what the program declares; during preview the planned state).
"""

from __future__ import annotations

from collections.abc import Sequence

from infra import addons, stackset
from infra.config import StackConfig
from infra.offline import Plan, Resource
from policies.catalog import ALL_RULES
from policies.engine import (
    ResourceView,
    Result,
    Rule,
    StackView,
    account_from_provider,
    evaluate_stack,
)
from policies.gitops import staged_addons


def view_of(plan: Plan, resource: Resource, index: dict[str, Resource] | None = None) -> ResourceView:
    index = index if index is not None else plan.by_urn()
    provider_urn = resource.provider or resource.providers.get("aws")
    provider = index.get(provider_urn) if provider_urn else None
    aws_provider = provider if provider is not None and provider.type == "pulumi:providers:aws" else None
    return ResourceView(
        type=resource.type,
        urn=resource.urn,
        name=resource.name,
        props=resource.inputs,
        protect=resource.protect,
        retain_on_delete=resource.retain_on_delete,
        stack=plan.stack,
        stack_environment=plan.config.environment,
        region=plan.region_of(resource),
        account_id=account_from_provider(aws_provider.inputs) if aws_provider else None,
        parent=resource.parent,
        property_dependencies={k: tuple(v) for k, v in resource.property_dependencies.items()},
    )


def staged_from_checkout(config: StackConfig) -> dict[str, frozenset[str]] | None:
    """The add-on versions of the stack that stages ``config``'s (its image source, staging for
    prod: infra.stackset.deploy_readers), from that stack's file in the checkout: what staging's
    up applies, where CI's pack reads what it has applied (its ``addons`` output). None for a
    stack no file of the checkout stages, or one that is not the checkout's own file."""
    stacks = stackset.load()
    if stacks.get(stackset.file_name(config.stack)) != config:
        return None
    sources = [s for s in stacks.values() if config.stack in stackset.deploy_readers(s, stacks.values())]
    if len(sources) != 1:
        return None
    return staged_addons(addons.plan_summary(sources[0]))


def stack_view(plan: Plan) -> StackView:
    index = plan.by_urn()
    return StackView(
        resources=tuple(view_of(plan, r, index) for r in plan.resources),
        stack=plan.stack,
        environment=plan.config.environment,
        peer_account_id=plan.config.peer_account_id,
        staged_addons=staged_from_checkout(plan.config),
    )


def evaluate(plan: Plan, rules: Sequence[Rule] = ALL_RULES) -> list[Result]:
    """Every violation of the pack's rules in ``plan``."""
    return evaluate_stack(stack_view(plan), rules)


def mandatory(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if r.level == "mandatory"]


def format_results(results: Sequence[Result]) -> list[tuple[str, str, str, str]]:
    """Print-ready rows (policy, level, resource, message): mandatory first, then by policy and resource."""
    rows = [(r.policy, r.level, r.resource or "(stack)", r.message) for r in results]
    return sorted(rows, key=lambda row: (row[1] != "mandatory", row[0], row[2], row[3]))
