"""The CrossGuard adapter: the pack's rules as pulumi-policy policies.

``policies/__main__.py`` calls :func:`serve` when Pulumi runs the pack. Each :class:`Rule` becomes
one ``ResourceValidationPolicy`` or ``StackValidationPolicy`` with the rule's name, description and
enforcement level; its callback builds the same :class:`ResourceView`/:class:`StackView` the
offline adapter builds and runs the same check.

What the engine hands a pack, and how it is read:

* resource policies get the resource's *inputs* (camelCase), stack policies every resource's
  *outputs* (during preview: the planned state, inputs plus what is still unknown);
* values unknown during preview arrive wrapped so that reading them raises
  ``UnknownValueError``; :func:`plain` turns them into :data:`UNKNOWN`, so a rule judges every
  known property of a resource instead of pulumi-policy skipping the whole policy for it;
* ``retainOnDelete`` is not part of the protocol, so views built here leave it ``None``;
* the environment is the stack name (``PULUMI_STACK``, which pulumi-policy itself reads to
  configure the runtime), per the convention of ``policies/engine.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from policies.catalog import ALL_RULES
from policies.engine import (
    UNKNOWN,
    ResourceView,
    Rule,
    StackView,
    account_from_provider,
    region_from_provider,
)
from policies.gitops import STAGED_ADDONS_KEY, STAGED_RULE, staged_addons

PACK_NAME = "platform"
AWS_PROVIDER = "pulumi:providers:aws"
PEER_ACCOUNT_RULE = "ecr-registry-policy-peer-account"
PEER_ACCOUNT_KEY = "peerAccountId"

_SENTINELS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
    }
)
_LEVELS = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}


def plain(value: Any) -> Any:
    """Plain dicts and lists from pulumi-policy's unknown-checking proxies, unknowns as UNKNOWN."""
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            try:
                out[str(key)] = plain(value[key])
            except UnknownValueError:
                out[str(key)] = UNKNOWN
        return out
    if isinstance(value, Sequence):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def stack_environment() -> str | None:
    """The environment of the stack under preview: its name (``Pulumi.<environment>.yaml``)."""
    return os.environ.get("PULUMI_STACK") or None


def _provider_facts(provider: Any) -> tuple[str | None, str | None]:
    if provider is None or provider.resource_type != AWS_PROVIDER:
        return None, None
    props = plain(provider.props)
    return region_from_provider(props), account_from_provider(props)


def _view(
    type_: str,
    urn: str,
    name: str,
    props: Any,
    protect: bool | None,
    provider: Any,
    environment: str | None,
    parent: str | None,
    property_dependencies: dict[str, tuple[str, ...]] | None = None,
) -> ResourceView:
    # The engine does not send retainOnDelete to policy packs: None, not False.
    region, account = _provider_facts(provider)
    return ResourceView(
        type=type_,
        urn=urn,
        name=name,
        props=plain(props),
        protect=bool(protect),
        retain_on_delete=None,
        stack=environment,
        stack_environment=environment,
        region=region,
        account_id=account,
        parent=parent,
        property_dependencies=property_dependencies or {},
    )


def view_from_args(args: ResourceValidationArgs, environment: str | None) -> ResourceView:
    return _view(
        args.resource_type,
        args.urn,
        args.name,
        args.props,
        args.opts.protect,
        args.provider,
        environment,
        args.opts.parent,
    )


def view_from_resource(resource: PolicyResource, environment: str | None) -> ResourceView:
    parent = resource.parent.urn if resource.parent is not None else resource.opts.parent
    return _view(
        resource.resource_type,
        resource.urn,
        resource.name,
        resource.props,
        resource.opts.protect,
        resource.provider,
        environment,
        parent,
        {k: tuple(d.urn for d in deps) for k, deps in resource.property_dependencies.items()},
    )


def _resource_policy(rule: Rule, environment: Callable[[], str | None]) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.run_resource(view_from_args(args, environment())):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        enforcement_level=_LEVELS[rule.level],
        validate=validate,
        url=rule.url,
    )


def _stack_policy(rule: Rule, environment: Callable[[], str | None]) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        env = environment()
        config = args.get_config()
        peer = config.get(PEER_ACCOUNT_KEY) if rule.name == PEER_ACCOUNT_RULE else None
        stack = StackView(
            resources=tuple(view_from_resource(r, env) for r in args.resources),
            stack=env,
            environment=env,
            peer_account_id=peer if isinstance(peer, str) else None,
            staged_addons=staged_addons(config.get(STAGED_ADDONS_KEY)) if rule.name == STAGED_RULE else None,
        )
        for finding in rule.run_stack(stack):
            report_violation(finding.message, finding.urn)

    schema = None
    if rule.name == PEER_ACCOUNT_RULE:
        # Optional: the pack cannot read the stack's platform:peerAccountId, so it can be given
        # with `--policy-pack-config`; without it the rule still requires one consistent,
        # foreign account.
        schema = PolicyConfigSchema(
            properties={PEER_ACCOUNT_KEY: {"type": "string", "pattern": "^[0-9]{12}$"}}
        )
    if rule.name == STAGED_RULE:
        # What staging runs: staging's stack output `addons`, {region: {add-on: chart version}},
        # which up.yml passes (docs/addons.md); without it the rule judges nothing.
        schema = PolicyConfigSchema(
            properties={
                STAGED_ADDONS_KEY: {
                    "type": "object",
                    "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
                }
            }
        )
    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        enforcement_level=_LEVELS[rule.level],
        validate=validate,
        config_schema=schema,
        url=rule.url,
    )


def build_policies(
    rules: Sequence[Rule] = ALL_RULES, environment: Callable[[], str | None] = stack_environment
) -> list[Policy]:
    """One pulumi-policy policy per rule (constructing them starts nothing)."""
    return [
        _resource_policy(r, environment) if r.scope == "resource" else _stack_policy(r, environment)
        for r in rules
    ]


def serve() -> None:
    """Start the pack: PolicyPack's constructor serves the engine's gRPC calls until stopped."""
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=build_policies(),
        description="The GitOps platform's rules: EKS, ECR, IAM, GitOps and tagging.",
    )
