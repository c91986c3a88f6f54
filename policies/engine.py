"""The neutral core of the policy pack: what a rule sees, what a rule is, how rules run.

Every rule of the pack is a plain function over a :class:`ResourceView` (resource rules) or a
:class:`StackView` (stack rules). Two thin adapters build those views:

* ``policies/pack.py`` from what the Pulumi engine hands a CrossGuard pack during
  ``pulumi preview --policy-pack policies`` (``ResourceValidationArgs``/``StackValidationArgs``);
* ``policies/offline.py`` from :class:`infra.offline.Plan` (the program run under mocks).

So one implementation of each rule serves both, and the tests exercise the same functions the
engine runs. Nothing here imports Pulumi.

Which environment a resource belongs to
---------------------------------------
The pack needs to know whether it judges prod. The *stack* decides: each stack of this project is
named after its environment (``Pulumi.<environment>.yaml``; ``tests/policies`` holds the stack
files to that), the pack reads the stack name the engine runs it for (``PULUMI_STACK``) and the
offline adapter the parsed ``platform:environment``. Kubernetes objects carry no AWS tags, so tags
alone could not decide it. Tags are a cross-check instead: ``tags-environment-matches-stack``
refuses an AWS resource whose ``platform:environment`` tag disagrees with the stack. Only when the
stack is unknown does a resource's own tag decide, and when neither is known a resource is judged
as prod (the strict side): a rule that only relaxes things outside prod never runs then.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from infra import naming

Level = Literal["mandatory", "advisory"]
Scope = Literal["resource", "stack"]
# Which stacks a rule judges: every stack, prod only, or every stack but prod.
Applies = Literal["all", "prod", "non-prod"]

PROD = "prod"
DOMAINS: tuple[str, ...] = ("eks", "network", "ecr", "iam", "gitops", "tagging")


class _Unknown:
    """A value the engine cannot know during preview (an output of a resource not yet created)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"

    def __bool__(self) -> bool:
        # An unknown value is neither truthy nor a violation by itself; rules test for it first.
        return False


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


_MISSING: Any = object()
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def dig(obj: Any, path: str, default: Any = None) -> Any:
    """``dig(props, "vpcConfig.publicAccessCidrs[0]")``; ``default`` when any step is absent.

    An unknown value part-way stops the walk and is returned as :data:`UNKNOWN`, so a rule can
    tell "not set" (default) from "not known yet".
    """
    current = obj
    for name, index in _PATH_TOKEN.findall(path):
        if is_unknown(current):
            return UNKNOWN
        if name:
            if not isinstance(current, Mapping) or name not in current:
                return default
            current = current[name]
        else:
            i = int(index)
            if not isinstance(current, Sequence) or isinstance(current, str) or i >= len(current):
                return default
            current = current[i]
    return current


def parse_json(value: Any) -> Any:
    """A policy document given as JSON text (as the AWS provider takes it) or as a mapping.

    Returns the parsed object, :data:`UNKNOWN` when the text is not known yet, or ``None`` when
    it is absent or not JSON.
    """
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return None


def as_list(value: Any) -> list[Any]:
    """IAM lets a single value stand for a one-element list (Action, Resource, Principal, ...)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


# ---------------------------------------------------------------------------------------------
# What a rule sees
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceView:
    """One resource as a rule sees it, whoever built the view.

    ``props`` are the resource's input properties with camelCase names, as the engine sends them
    (unknown values replaced by :data:`UNKNOWN`). ``retain_on_delete`` is ``None`` where it cannot
    be seen: the CrossGuard protocol (pulumi-policy 1.21's ``PolicyResourceOptions``) carries
    ``protect`` but not ``retainOnDelete``.
    """

    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool | None = None
    stack: str | None = None
    # The stack's environment (see the module docstring); None when the stack is unknown.
    stack_environment: str | None = None
    region: str | None = None
    account_id: str | None = None
    parent: str | None = None
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        return dig(self.props, path, default)

    @property
    def tags(self) -> Mapping[str, Any]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}

    @property
    def environment(self) -> str | None:
        if self.stack_environment:
            return self.stack_environment
        tagged = self.tags.get(naming.TAG_ENVIRONMENT)
        return tagged if isinstance(tagged, str) and tagged else None

    @property
    def is_prod(self) -> bool:
        # Unknown environment counts as prod: the strict reading (module docstring).
        return self.environment in (None, PROD)

    @property
    def label(self) -> str:
        return f"{self.type}::{self.name}"

    def depends_on(self, prop: str, urn: str) -> bool:
        return urn in self.property_dependencies.get(prop, ())


@dataclass(frozen=True)
class StackView:
    """Every resource of one stack, for the rules that judge resources together."""

    resources: tuple[ResourceView, ...]
    stack: str | None = None
    environment: str | None = None
    # The other account of the staging/prod pair, when the caller knows it (the offline plan from
    # platform:peerAccountId, the pack from its `peerAccountId` policy config).
    peer_account_id: str | None = None
    # The add-on chart versions the stack that stages this one (staging, for prod) runs,
    # {add-on: versions}, when the caller knows them (the offline plan from that stack's file,
    # the pack from its `stagedAddons` policy config); None when unknown.
    staged_addons: Mapping[str, frozenset[str]] | None = None

    @property
    def is_prod(self) -> bool:
        return self.environment in (None, PROD)

    def of_type(self, *types: str) -> list[ResourceView]:
        return [r for r in self.resources if r.type in types]


@dataclass(frozen=True)
class Finding:
    """A stack rule's violation: the message and, when it is about one resource, its URN."""

    message: str
    urn: str | None = None


ResourceCheck = Callable[[ResourceView], list[str]]
StackCheck = Callable[[StackView], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """One policy: its metadata (what the engine and the README show) and its check."""

    name: str
    domain: str
    description: str
    level: Level
    scope: Scope
    check: Callable[..., Any]
    applies_to: Applies = "all"
    # The resource types the rule reads (documentation; the check itself filters by type).
    resource_types: tuple[str, ...] = ()
    url: str | None = None

    def applies(self, environment: str | None) -> bool:
        prod = environment in (None, PROD)
        if self.applies_to == "prod":
            return prod
        if self.applies_to == "non-prod":
            return not prod
        return True

    def run_resource(self, view: ResourceView) -> list[str]:
        if self.scope != "resource":
            raise TypeError(f"{self.name} is a stack rule")
        if not self.applies(view.environment):
            return []
        return list(self.check(view))

    def run_stack(self, stack: StackView) -> list[Finding]:
        if self.scope != "stack":
            raise TypeError(f"{self.name} is a resource rule")
        if not self.applies(stack.environment):
            return []
        return list(self.check(stack))


def resource_rule(
    name: str,
    domain: str,
    description: str,
    level: Level,
    check: ResourceCheck,
    *,
    applies_to: Applies = "all",
    resource_types: Iterable[str] = (),
    url: str | None = None,
) -> Rule:
    return Rule(name, domain, description, level, "resource", check, applies_to, tuple(resource_types), url)


def stack_rule(
    name: str,
    domain: str,
    description: str,
    level: Level,
    check: StackCheck,
    *,
    applies_to: Applies = "all",
    resource_types: Iterable[str] = (),
    url: str | None = None,
) -> Rule:
    return Rule(name, domain, description, level, "stack", check, applies_to, tuple(resource_types), url)


# ---------------------------------------------------------------------------------------------
# Running rules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One violation of one rule."""

    policy: str
    level: Level
    domain: str
    message: str
    urn: str | None = None
    resource: str | None = None  # "type::name", or None for the stack as a whole


def evaluate_stack(stack: StackView, rules: Sequence[Rule]) -> list[Result]:
    """Run every rule over ``stack``: resource rules on each resource, stack rules once."""
    results: list[Result] = []
    by_urn = {r.urn: r for r in stack.resources}
    for rule in rules:
        if rule.scope == "resource":
            for view in stack.resources:
                for message in rule.run_resource(view):
                    results.append(Result(rule.name, rule.level, rule.domain, message, view.urn, view.label))
        else:
            for finding in rule.run_stack(stack):
                target = by_urn.get(finding.urn) if finding.urn else None
                results.append(
                    Result(
                        rule.name,
                        rule.level,
                        rule.domain,
                        finding.message,
                        finding.urn,
                        target.label if target else None,
                    )
                )
    return results


# ---------------------------------------------------------------------------------------------
# Small shared readers
# ---------------------------------------------------------------------------------------------


def account_from_provider(props: Mapping[str, Any] | None) -> str | None:
    """The account an AWS provider is pinned to (``allowedAccountIds``, a list or its JSON text)."""
    if not props:
        return None
    accounts = props.get("allowedAccountIds")
    if isinstance(accounts, str):
        try:
            accounts = json.loads(accounts)
        except json.JSONDecodeError:
            accounts = [accounts]
    if isinstance(accounts, list | tuple) and len(accounts) == 1 and isinstance(accounts[0], str):
        return accounts[0]
    return None


def region_from_provider(props: Mapping[str, Any] | None) -> str | None:
    if not props:
        return None
    region = props.get("region")
    return region if isinstance(region, str) and region else None


def refers_to(view: ResourceView, prop: str, target: ResourceView, *target_props: str) -> bool:
    """Whether ``view.<prop>`` points at ``target``: by value (its name/ARN/id) when known, or,
    while the value is still unknown during preview, by the engine's property dependency."""
    if view.depends_on(prop, target.urn):
        return True
    value = view.props.get(prop)
    if not isinstance(value, str):
        return False
    return any(value == target.props.get(p) for p in target_props if isinstance(target.props.get(p), str))
