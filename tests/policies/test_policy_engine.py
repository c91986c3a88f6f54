"""The neutral core: reading props, environments, rule metadata, running rules, printing results."""

from __future__ import annotations

import re

import pytest

from policies import ecr, eks, gitops, iam, network, tagging
from policies.catalog import ALL_RULES, rule
from policies.engine import (
    DOMAINS,
    UNKNOWN,
    Finding,
    Result,
    account_from_provider,
    dig,
    evaluate_stack,
    is_unknown,
    parse_json,
    resource_rule,
    stack_rule,
)
from policies.offline import format_results, mandatory
from tests.policies.support import stack, tags, view

KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


# --- reading -----------------------------------------------------------------------------------


def test_dig_walks_maps_and_lists() -> None:
    props = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert dig(props, "a.b[1].c") == 2
    assert dig(props, "a.b[5].c", "none") == "none"
    assert dig(props, "a.x.c") is None
    assert dig({"a": "text"}, "a[0]") is None


def test_dig_tells_unknown_from_missing() -> None:
    assert is_unknown(dig({"a": UNKNOWN}, "a.b.c"))
    assert dig({"a": {}}, "a.b.c", "missing") == "missing"
    assert not UNKNOWN  # never truthy: a rule cannot mistake it for a set flag


def test_parse_json() -> None:
    assert parse_json('{"a": 1}') == {"a": 1}
    assert parse_json({"a": 1}) == {"a": 1}
    assert parse_json("not json") is None
    assert parse_json(None) is None
    assert is_unknown(parse_json(UNKNOWN))


@pytest.mark.parametrize(
    ("props", "account"),
    [
        ({"allowedAccountIds": '["444455556666"]'}, "444455556666"),
        ({"allowedAccountIds": ["111122223333"]}, "111122223333"),
        ({"allowedAccountIds": ["1", "2"]}, None),
        ({}, None),
        (None, None),
    ],
)
def test_account_from_provider(props: dict[str, object] | None, account: str | None) -> None:
    assert account_from_provider(props) == account


# --- environments ------------------------------------------------------------------------------


def test_the_stack_decides_the_environment_over_tags() -> None:
    v = view("aws:ec2/vpc:Vpc", "v", {"tags": tags("staging")}, environment="prod")
    assert v.environment == "prod" and v.is_prod


def test_tags_decide_only_when_the_stack_is_unknown_and_nothing_means_prod() -> None:
    assert view("aws:ec2/vpc:Vpc", "v", {"tags": tags("staging")}, environment=None).environment == "staging"
    nothing = view("kubernetes:core/v1:Secret", "s", {}, environment=None)
    assert nothing.environment is None and nothing.is_prod


@pytest.mark.parametrize(
    ("applies", "environment", "runs"),
    [
        ("all", "prod", True),
        ("all", "staging", True),
        ("prod", "prod", True),
        ("prod", "staging", False),
        ("prod", None, True),
        ("non-prod", "staging", True),
        ("non-prod", "debug", True),
        ("non-prod", "prod", False),
        ("non-prod", None, False),
    ],
)
def test_rule_applies_per_environment(applies: str, environment: str | None, runs: bool) -> None:
    r = resource_rule("x", "eks", "X.", "mandatory", lambda v: ["hit"], applies_to=applies)  # type: ignore[arg-type]
    assert r.applies(environment) is runs
    assert r.run_resource(view("t", "n", {}, environment=environment)) == (["hit"] if runs else [])


def test_rules_of_one_scope_refuse_the_other() -> None:
    with pytest.raises(TypeError):
        resource_rule("x", "eks", "X.", "mandatory", lambda v: []).run_stack(stack())
    with pytest.raises(TypeError):
        stack_rule("x", "eks", "X.", "mandatory", lambda s: []).run_resource(view("t"))


# --- the catalogue -----------------------------------------------------------------------------


def test_rule_names_are_unique_kebab_case() -> None:
    names = [r.name for r in ALL_RULES]
    assert len(names) == len(set(names))
    assert [n for n in names if not KEBAB.match(n)] == []


def test_every_rule_has_a_one_sentence_description_a_level_and_a_domain_module() -> None:
    modules = {"eks": eks, "network": network, "ecr": ecr, "iam": iam, "gitops": gitops, "tagging": tagging}
    for r in ALL_RULES:
        assert r.description.endswith(".") and ". " not in r.description.rstrip("."), r.name
        assert r.level in ("mandatory", "advisory"), r.name
        assert r.domain in DOMAINS and r in modules[r.domain].RULES, r.name


def test_every_domain_has_mandatory_rules() -> None:
    for domain in DOMAINS:
        assert any(r.domain == domain and r.level == "mandatory" for r in ALL_RULES), domain


def test_rule_lookup() -> None:
    assert rule("ecr-immutable-tags").domain == "ecr"
    with pytest.raises(KeyError):
        rule("no-such-rule")


# --- running and printing ----------------------------------------------------------------------


def test_evaluate_runs_resource_rules_per_resource_and_stack_rules_once() -> None:
    per_resource = resource_rule("per-resource", "eks", "X.", "mandatory", lambda v: [f"bad {v.name}"])
    once = stack_rule(
        "once",
        "ecr",
        "Y.",
        "advisory",
        lambda s: [Finding("stack-wide"), Finding("about a", s.resources[0].urn)],
    )
    a, b = view("t:a:A", "a"), view("t:b:B", "b")
    results = evaluate_stack(stack(a, b), [per_resource, once])
    assert results == [
        Result("per-resource", "mandatory", "eks", "bad a", a.urn, "t:a:A::a"),
        Result("per-resource", "mandatory", "eks", "bad b", b.urn, "t:b:B::b"),
        Result("once", "advisory", "ecr", "stack-wide", None, None),
        Result("once", "advisory", "ecr", "about a", a.urn, "t:a:A::a"),
    ]


def test_format_results_rows_put_mandatory_first() -> None:
    results = [
        Result("z-advisory", "advisory", "eks", "later", "u1", "t::r1"),
        Result("b-rule", "mandatory", "ecr", "second", "u2", "t::r2"),
        Result("a-rule", "mandatory", "ecr", "first", None, None),
    ]
    assert format_results(results) == [
        ("a-rule", "mandatory", "(stack)", "first"),
        ("b-rule", "mandatory", "t::r2", "second"),
        ("z-advisory", "advisory", "t::r1", "later"),
    ]
    assert [r.policy for r in mandatory(results)] == ["b-rule", "a-rule"]
