"""The dependency graph helpers on a small hand-built plan."""

from __future__ import annotations

import pytest

from infra import config, graph
from infra.offline import Plan, Resource


def res(
    urn: str, deps: tuple[str, ...] = (), parent: str | None = None, provider: str | None = None
) -> Resource:
    return Resource(
        urn=urn,
        type="test:index:Thing",
        name=urn,
        custom=True,
        parent=parent,
        provider=provider,
        providers={},
        dependencies=list(deps),
        property_dependencies={},
        protect=False,
        retain_on_delete=False,
        delete_before_replace=False,
        ignore_changes=[],
        remote=False,
        inputs={},
    )


def plan(*resources: Resource) -> Plan:
    return Plan(
        stack="staging", config=config.load_stack_file("staging"), resources=list(resources), outputs={}
    )


def test_edges_include_parent_provider_and_dependencies() -> None:
    p = plan(res("vpc"), res("prov"), res("comp"), res("subnet", ("vpc",), parent="comp", provider="prov"))
    assert graph.dependencies(p)["subnet"] == {"vpc", "comp", "prov"}
    assert graph.dependents(p)["vpc"] == {"subnet"}


def test_closure_follows_dependents_transitively_and_nothing_else() -> None:
    p = plan(res("a"), res("b", ("a",)), res("c", ("b",)), res("d"), res("e", ("d",)))
    assert graph.closure({"a"}, graph.dependents(p)) == {"a", "b", "c"}


def test_critical_path_is_the_longest_chain_not_the_sum() -> None:
    # Two independent chains (two regions): the rebuild takes as long as the slower one.
    p = plan(res("cp1"), res("ng1", ("cp1",)), res("cp2"), res("ng2", ("cp2",)), res("tiny", ("ng1",)))
    minutes = {"cp1": 10.0, "ng1": 4.0, "cp2": 10.0, "ng2": 5.0, "tiny": 0.5}
    total, path = graph.critical_path(p, minutes)
    assert total == 15.0 and path == ["cp2", "ng2"]
    total, path = graph.critical_path(p, minutes, among={"cp1", "ng1", "tiny"})
    assert total == 14.5 and path == ["cp1", "ng1", "tiny"]


def test_a_diamond_is_not_a_cycle_but_a_cycle_is_reported() -> None:
    p = plan(res("a"), res("b", ("a",)), res("c", ("a", "b")), res("d", ("b", "c")))
    assert graph.critical_path(p, {"a": 1, "b": 1, "c": 1, "d": 1})[0] == 4
    with pytest.raises(ValueError, match="cycle"):
        graph.critical_path(plan(res("x", ("y",)), res("y", ("x",))), {"x": 1, "y": 1})
