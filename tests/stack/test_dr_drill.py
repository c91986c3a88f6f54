"""The DR drill: each runbook of `platform dr`, run in order against a region that does not answer.

The program runs for real (offline engine) for every version of the stack file the runbook
writes; tests/drill.py plays the Pulumi engine and the cloud, in which the lost region's AWS
endpoints and cluster API do not answer. Each drill checks that every command finishes, that
nothing outside the region changes but what depends on it (and nothing account-wide is
replaced or deleted), and that the next `pulumi up` is a no-op. Regions come from the loaded
stack files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest

from infra import config as cfg
from infra import dr, graph, offline
from infra.offline import Plan
from tests.drill import Cloud, Engine, Refused, Unreachable

STACKS = ("staging", "prod")


@cache
def healthy(stack: str) -> Plan:
    return offline.run(stack)


def raw(stack: str) -> dict[str, object]:
    return cfg.read_stack_file(cfg.stack_file(stack))


@dataclass
class Drill:
    engine: Engine
    book: dr.Runbook
    before: Plan
    region: str

    def region_of(self, urn: str, *, after: bool = False) -> str | None:
        """Where ``urn`` lives before the drill (or after it, for what the drill created)."""
        plans = (self.engine.program(), self.before) if after else (self.before, self.engine.program())
        for plan in plans:
            index = plan.by_urn()
            if urn in index:
                return plan.region_of(index[urn])
        return None

    def account_wide(self) -> set[str]:
        index = self.before.by_urn()
        return {
            r.urn
            for r in self.before.resources
            if (r.provider and index[r.provider].name == "aws-account") or r.name == "aws-account"
        }

    def outside(self) -> list[tuple[str, str]]:
        return [(c.op, c.urn) for c in self.engine.changes if self.region_of(c.urn) != self.region]


def drill(stack: str, region: str, *, new_hub: str | None = None, stays_down: bool = False) -> Drill:
    before = healthy(stack)
    own = {r.urn for r in dr.region_resources(before, region)}
    if new_hub or stays_down:
        # The region stays down: neither its AWS APIs nor its cluster answer.
        cloud = Cloud(aws_down={region}, clusters_down={region})
    else:
        # The region answers again, empty: its cluster and everything regional in it are gone.
        cloud = Cloud(
            clusters_down={region},
            gone={u for u in own if before.by_urn()[u].custom or before.by_urn()[u].remote},
        )
    engine = Engine(stack, raw(stack), cloud)
    book = dr.build(before, region, new_hub=new_hub, stays_down=stays_down, raw=engine.raw)
    for action in book.actions:
        engine.run(action)
    return Drill(engine, book, before, region)


def assert_next_up_is_a_no_op(d: Drill) -> None:
    assert d.engine.pending() == []
    d.engine.run(dr.Up(d.engine.stack))  # and it runs without reaching the lost region


# Types whose create is an upsert: IAM PutRolePolicy "adds or updates" an inline policy
# (botocore iam model; tests/contracts/test_dr_contracts.py). An inline policy that names a
# resource of the lost hub (the runners' connection) is forgotten with it and put again.
UPSERT_TYPES = ("aws:iam/rolePolicy:RolePolicy",)


def assert_nothing_account_wide_replaced_or_deleted(d: Drill) -> None:
    account = d.account_wide()
    assert account
    bad = [
        (c.op, c.urn)
        for c in d.engine.changes
        if c.urn in account
        and c.op != "update"
        and not (c.op in ("drop", "create") and d.before.by_urn()[c.urn].type in UPSERT_TYPES)
    ]
    assert not bad, bad
    # What was forgotten is declared again, and exists again in the state.
    for c in d.engine.changes:
        if c.urn in account and c.op == "drop":
            assert c.urn in d.engine.state, c.urn


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("which", ["spoke", "hub"])
def test_a_region_that_comes_back_empty_is_rebuilt(stack: str, which: str) -> None:
    config = healthy(stack).config
    region = config.hub_region if which == "hub" else config.spoke_regions[-1]
    d = drill(stack, region)
    dependents = {r.urn for r in d.book.dependents}
    outside = d.outside()
    # Outside the region only what depends on it changes, and only in place.
    assert {u for _, u in outside} <= dependents, sorted({u for _, u in outside} - dependents)
    assert {op for op, _ in outside} <= {"update"}, outside
    # Inside: everything comes back.
    after = {r.urn for r in dr.region_resources(d.engine.program(), region)}
    assert after <= set(d.engine.state)
    assert_nothing_account_wide_replaced_or_deleted(d)
    assert "platform:unreachableRegions" not in d.engine.raw
    assert_next_up_is_a_no_op(d)


@pytest.mark.parametrize("stack", STACKS)
def test_a_spoke_that_stays_down_leaves_the_stack_and_nothing_else_moves(stack: str) -> None:
    config = healthy(stack).config
    region = config.spoke_regions[0]
    d = drill(stack, region, stays_down=True)
    final = d.engine.program().config
    assert region not in final.region_names and final.hub_region == config.hub_region
    dependents = {r.urn for r in d.book.dependents}
    for op, urn in d.outside():
        # Elsewhere: in-place updates (the ApplicationSet, the policies naming the region's key),
        # and what existed only for the lost region (its cluster Secret on the hub) removed.
        assert op == "update" or urn in dependents, (op, urn)
        assert op not in ("create", "replace"), (op, urn)
    # No other region's cloud objects are created, replaced or deleted.
    others = set(config.region_names) - {region}
    for c in d.engine.changes:
        if d.region_of(c.urn) in others and c.op in ("delete", "drop"):
            assert c.urn in dependents, (c.op, c.urn)
    assert not [u for u in d.engine.state if d.region_of(u) == region]
    assert_nothing_account_wide_replaced_or_deleted(d)
    assert_next_up_is_a_no_op(d)


@pytest.mark.parametrize("stack", STACKS)
def test_the_hub_that_stays_down_moves_and_nothing_account_wide_is_recreated(stack: str) -> None:
    config = healthy(stack).config
    old, new = config.hub_region, config.spoke_regions[0]
    d = drill(stack, old, new_hub=new)
    final = d.engine.program().config
    assert final.hub_region == new and old not in final.region_names
    assert final.account_region == config.account_region
    for c in d.engine.changes:
        where = d.region_of(c.urn, after=True)
        if c.op in ("create", "replace") and c.urn not in d.account_wide():
            # Created only on the new hub (Argo CD, Image Updater, runners, cluster Secrets).
            assert where in (new, None), (c.op, c.urn, where)
    assert_nothing_account_wide_replaced_or_deleted(d)
    secrets = sorted(
        r.name for r in d.engine.program().of_type("kubernetes:core/v1:Secret") if "cluster" in r.name
    )
    assert d.book.hub_move is not None and d.book.hub_move["clusterSecrets"] == secrets
    # Only the account-wide objects still name the old hub (platform:accountRegion).
    assert not [u for u in d.engine.state if d.region_of(u, after=True) == old and u not in d.account_wide()]
    assert_next_up_is_a_no_op(d)


def test_without_delete_unreachable_the_refresh_would_fail() -> None:
    """The drill can fail: the same refresh with the providers as the state has them (no
    --run-program, so no deleteUnreachable) stops on the lost cluster."""
    before = healthy("prod")
    region = before.config.hub_region
    engine = Engine("prod", raw("prod"), Cloud(aws_down={region}, clusters_down={region}))
    objects = tuple(r.urn for r in dr.kubernetes_objects(before, region))
    assert objects
    with pytest.raises(Unreachable):
        engine.refresh(objects, run_program=False, command="pulumi refresh")


def test_a_whole_stack_up_with_the_region_down_would_not_finish() -> None:
    """Without the runbook's exclusions, the first update reaches the lost region."""
    before = healthy("staging")
    region = before.config.spoke_regions[0]
    engine = Engine("staging", raw("staging"), Cloud(aws_down={region}, clusters_down={region}))
    engine.raw = dr.EditStack("staging", remove_region=region).apply(engine.raw)
    with pytest.raises(Unreachable):
        engine.up((), False, (), "pulumi up")


def test_every_step_says_where_it_runs_and_how_long_it_takes() -> None:
    before = healthy("prod")
    for kwargs in ({}, {"stays_down": True}):
        book = dr.build(before, before.config.spoke_regions[0], **kwargs)  # type: ignore[arg-type]
        text = dr.render(book)
        for step in book.steps:
            assert step.runs_from and step.minutes > 0, step.title
        assert text.count("Runs from: ") == len(book.steps)
    from infra import bench

    book = dr.build(before, before.config.hub_region)
    rebuild = next(s for s in book.steps if s.title.startswith("Rebuild"))
    among = {r.urn for r in book.targets} | {r.urn for r in book.dependents}
    seconds, _ = graph.critical_path(before, {r.urn: bench.seconds_of(r) for r in before.resources}, among)
    assert rebuild.minutes == round(seconds / 60, 1)


def test_a_spoke_without_cluster_objects_gets_no_untargeted_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spoke whose cluster holds no Kubernetes objects of the stack: the runbook has no refresh
    step (a refresh without --target is the whole stack, through the lost endpoints), and the
    drill refuses such a refresh."""
    before = healthy("staging")
    region = before.config.spoke_regions[0]
    monkeypatch.setattr(dr, "kubernetes_objects", lambda plan, r: [])
    engine = Engine("staging", raw("staging"), Cloud(aws_down={region}, clusters_down={region}))
    book = dr.build(before, region, stays_down=True, raw=engine.raw)
    assert not [a for a in book.actions if isinstance(a, dr.Refresh) and not a.targets]
    with pytest.raises(Refused):
        engine.refresh((), run_program=True, command="pulumi refresh")
    with pytest.raises(ValueError, match="without targets"):
        dr.Refresh("staging", ())


def test_an_untargeted_kubernetes_provider_keeps_its_old_inputs() -> None:
    """The lost hub's objects refreshed with the program run but their provider not targeted: the
    engine loads that provider from its old state inputs (no deleteUnreachable) and the read
    fails, unless PULUMI_K8S_DELETE_UNREACHABLE=true (pulumi-kubernetes provider.go, read after v4.32.0) or
    the provider is targeted too. The runbook does both."""
    before = healthy("prod")
    region = before.config.hub_region
    engine = Engine("prod", raw("prod"), Cloud(aws_down={region}, clusters_down={region}))
    engine.raw = dr.EditStack("prod", (("platform:unreachableRegions", [region]),)).apply(engine.raw)
    objects = tuple(r.urn for r in dr.kubernetes_objects(before, region))
    providers = tuple(sorted({r.provider for r in dr.kubernetes_objects(before, region) if r.provider}))
    with pytest.raises(Unreachable):
        engine.refresh(objects, run_program=True, command="pulumi refresh")
    engine.refresh((*providers, *objects), run_program=True, command="pulumi refresh")
    assert not [u for u in objects if u in engine.state]
    book = dr.build(before, region, new_hub=before.config.spoke_regions[0], raw=raw("prod"))
    refreshes = [a for a in book.actions if isinstance(a, dr.Refresh)]
    assert refreshes and all(a.delete_unreachable for a in refreshes)
    assert all(a.command().startswith("PULUMI_K8S_DELETE_UNREACHABLE=true ") for a in refreshes)
    assert any(set(providers) <= set(a.targets) for a in refreshes)


def test_the_freeze_cancels_queued_and_waiting_runs_and_offers_pulumi_cancel() -> None:
    before = healthy("staging")
    book = dr.build(before, before.config.spoke_regions[0], stays_down=True, raw=raw("staging"))
    shells = [a.command() for a in book.actions if isinstance(a, dr.Shell)]
    for status in ("queued", "waiting"):
        assert any(f"--status {status}" in c and "gh run cancel" in c for c in shells), status
    assert any(c.startswith("pulumi cancel --stack staging --yes") for c in shells)
