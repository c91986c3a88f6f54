"""The DR drill: each runbook of `platform dr`, run in order against a region that does not answer.

The program runs for real (offline engine) for every version of the stack file the runbook
writes; tests/drill.py plays the Pulumi engine and the cloud, in which the lost region's AWS
endpoints and cluster API do not answer. Each drill checks that every command finishes, that
nothing outside the region changes but what depends on it (and nothing account-wide is
replaced or deleted), and that the next `pulumi up` is a no-op. Stacks and regions come from the
checkout's stack files (a stack a user adds is drilled too).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace as _replace
from functools import cache
from pathlib import Path

import pytest
import yaml

from infra import addons, dr, graph, offline, stackset
from infra import config as cfg
from infra.offline import Plan
from tests.conftest import stack_names
from tests.drill import REVIEWER, Cloud, DirectPush, Engine, Precondition, Refused, Unreachable, day0_secrets

STACKS = stack_names()


@cache
def healthy(stack: str) -> Plan:
    """The stack as a real `pulumi up` records it: the program's resources and pulumi-eks's children."""
    return dr.with_eks_children(offline.run(stack))


def with_spokes() -> list[str]:
    """The stacks with a spoke (a stack of one region has no spoke to lose or move the hub to)."""
    return [s for s in STACKS if healthy(s).config.spoke_regions]


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
        """Declared through the account's provider, except the lost region's own traffic objects
        (global Route 53 objects that a region leaving the stack takes with it)."""
        index = self.before.by_urn()
        own = (
            {r.urn for r in dr.region_traffic_globals(self.before, self.region)}
            if self.book.kind != dr.REBUILD
            else set()
        )
        return {
            r.urn
            for r in self.before.resources
            if ((r.provider and index[r.provider].name == "aws-account") or r.name == "aws-account")
            and r.urn not in own
        }

    def outside(self) -> list[tuple[str, str]]:
        return [(c.op, c.urn) for c in self.engine.changes if self.region_of(c.urn) != self.region]


@cache
def runbook(stack: str, region: str, new_hub: str | None = None, stays_down: bool = False) -> dr.Runbook:
    return dr.build(offline.run(stack), region, new_hub=new_hub, stays_down=stays_down, raw=raw(stack))


Edit = Callable[[list[dr.Action]], list[dr.Action]]


def drill(
    stack: str,
    region: str,
    *,
    new_hub: str | None = None,
    stays_down: bool = False,
    edit: Edit | None = None,
    replicas: bool = True,
    recovered: frozenset[str] = frozenset(),
) -> Drill:
    """Run the runbook's actions in order (``edit``: the same runbook with a step dropped or moved;
    ``replicas``: whether day 0 replicated Argo CD's secrets to every region, as docs/addons.md says;
    ``recovered``: other stacks whose own runbook for the region has finished before this one)."""
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
    cloud.secrets = day0_secrets(before.config, replicas)
    # A replica that still runs the region: the runbook's stop step runs its runbook first.
    first = (
        frozenset(dr.replicas_still_running(before.config, region))
        if (new_hub or stays_down)
        else frozenset()
    )
    engine = Engine(stack, raw(stack), cloud, recovered=set(recovered), first=first)
    book = runbook(stack, region, new_hub, stays_down)
    actions = list(book.actions)
    for action in edit(actions) if edit is not None else actions:
        engine.run(action)
    return Drill(engine, book, before, region)


def assert_next_up_is_a_no_op(d: Drill) -> None:
    # The state tells the truth: nothing in it is gone from the cloud.
    assert not set(d.engine.state) & d.engine.cloud.gone, sorted(set(d.engine.state) & d.engine.cloud.gone)[
        :5
    ]
    # The stack file is back to its configured endpoints: the operator's address is withdrawn.
    assert d.engine.cloud.operator_cidr not in repr(d.engine.raw)
    assert d.engine.stack not in d.engine.frozen
    # main holds the stack file it applied: the runbook's pull request merged, or (a rebuild,
    # whose branch changes no stack file) none was needed.
    assert d.engine.repo.main[d.engine.stack] == d.engine.raw
    assert d.engine.repo.merged or (d.engine.changes_nothing() and d.engine.repo.pushed is None)
    assert d.engine.pending() == []
    assert_source_runbooks_ran_inside(d)
    d.engine.frozen.add(d.engine.stack)
    d.engine.run(dr.Up(d.engine.stack))  # and it runs without reaching the lost region


def assert_source_runbooks_ran_inside(d: Drill) -> None:
    """Each source stack's runbook the book runs inside (while its freeze was set) ran for real in
    an engine of its own: it finished (nothing gone in its state, nothing pending, the operator's
    address withdrawn), committed its stack file on the outer branch, which the outer merge took
    to main before lifting its freeze; a stack frozen with this one and not run inside stays
    frozen for its own runbook."""
    inside = {a.stack for a in d.book.actions if isinstance(a, dr.SourceRunbook)}
    assert set(d.engine.nested) == inside - d.engine.recovered_at_start
    for source, inner in d.engine.nested.items():
        assert source not in d.engine.frozen and source in d.engine.recovered
        assert not set(inner.state) & inner.cloud.gone
        assert inner.pending() == []
        assert inner.cloud.operator_cidr not in repr(inner.raw)
        assert d.engine.raw_of(source) == inner.raw
        assert d.engine.repo.main[source] == inner.raw
    if d.engine.nested:
        # One merge took both stack files to main: main passes the stack-set check (two pull
        # requests, the inner's first, would not: test_two_pull_requests_...).
        assert not [f for f in stackset.findings(d.engine.repo.configs()) if f.severity == "error"]
    also = {a.stack for a in d.book.actions if isinstance(a, dr.Freeze) and a.stack != d.engine.stack}
    assert d.engine.frozen == {s for s in also - set(d.engine.nested) if s not in d.engine.recovered}


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


def admitted_endpoints(d: Drill) -> set[str]:
    """The cluster components and control planes whose endpoint settings the runbook's own
    'Admit the operator' and 'Withdraw' steps update (their targeted `pulumi up`s)."""
    return {
        u
        for a in d.book.actions
        if isinstance(a, dr.Up) and a.stack == d.engine.stack and a.targets
        for u in a.targets
        if not a.target_dependents
    }


@pytest.mark.parametrize(
    ("stack", "which"),
    [(s, w) for s in STACKS for w in ("spoke", "hub") if w == "hub" or healthy(s).config.spoke_regions],
)
def test_a_region_that_comes_back_empty_is_rebuilt(stack: str, which: str) -> None:
    config = healthy(stack).config
    region = config.hub_region if which == "hub" else config.spoke_regions[-1]
    d = drill(stack, region)
    dependents = {r.urn for r in d.book.dependents} | admitted_endpoints(d)
    outside = d.outside()
    # Outside the region only what depends on it changes (and the endpoints that admit the
    # operator, then withdraw it), and only in place.
    assert {u for _, u in outside} <= dependents, sorted({u for _, u in outside} - dependents)
    assert {op for op, _ in outside} <= {"update"}, outside
    # Inside: everything comes back.
    after = {r.urn for r in dr.region_resources(d.engine.program(), region)}
    assert after <= set(d.engine.state)
    assert_nothing_account_wide_replaced_or_deleted(d)
    assert "platform:unreachableRegions" not in d.engine.raw
    # A rebuild leaves its stack file as it was (its marks cleared, the operator's address
    # withdrawn): nothing to publish, so no branch push and no pull request; the freeze is lifted
    # all the same, main holding the file it applied (dr.main_holds).
    assert d.engine.raw == raw(stack)
    assert d.engine.repo.pushed is None and not d.engine.repo.merged
    assert stack not in d.engine.frozen and d.engine.repo.main[stack] == d.engine.raw
    assert_next_up_is_a_no_op(d)


@pytest.mark.parametrize("stack", with_spokes())
def test_a_spoke_that_stays_down_leaves_the_stack_and_nothing_else_moves(stack: str) -> None:
    config = healthy(stack).config
    region = config.spoke_regions[0]
    d = drill(stack, region, stays_down=True)
    final = d.engine.program().config
    assert region not in final.region_names and final.hub_region == config.hub_region
    dependents = {r.urn for r in d.book.dependents} | admitted_endpoints(d)
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


@pytest.mark.parametrize("stack", with_spokes())
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
    # Argo CD's secrets: the new hub's replicas of the lost primaries are standalone now (they can
    # be rotated while the old hub's region is gone); the other regions' copies are untouched.
    for (where, name), primary in d.engine.secrets.items():
        assert primary == (new if where == new else old), (where, name, primary)


def argocd_reads_secrets(stack: str) -> bool:
    config = healthy(stack).config
    return config.spoke_regions[0] in config.addon_regions("external-secrets") and bool(
        addons.argocd_secret_names(config)
    )


@pytest.mark.parametrize("stack", [s for s in with_spokes() if argocd_reads_secrets(s)])
def test_a_hub_move_stops_before_its_update_when_argo_cds_secrets_are_not_in_the_new_hub(stack: str) -> None:
    """Day 0 without replicas: the runbook's check stops before the update that installs Argo CD
    on the new hub, naming the secret; nothing has been applied yet."""
    config = healthy(stack).config
    old, new = config.hub_region, config.spoke_regions[0]
    steps = runbook(stack, old, new).steps
    check = next(i for i, s in enumerate(steps) if any(isinstance(a, dr.ArgoCdSecrets) for a in s.actions))
    apply = next(i for i, s in enumerate(steps) if s.title.startswith("Apply it everywhere"))
    assert check < apply
    first = addons.argocd_secret_names(config)[0]
    with pytest.raises(Precondition, match=f"{first} does not exist in {new}"):
        drill(stack, old, new_hub=new, replicas=False)


@pytest.mark.parametrize("stack", [s for s in with_spokes() if argocd_reads_secrets(s)])
def test_without_the_secrets_check_the_moved_hubs_argo_cd_cannot_read_its_repository(stack: str) -> None:
    """The drill can fail: the same runbook without its check, after a day 0 without replicas,
    reaches the Applications' check or the deploy with no secrets for Argo CD in the new hub."""
    config = healthy(stack).config
    old, new = config.hub_region, config.spoke_regions[0]

    def without_check(actions: list[dr.Action]) -> list[dr.Action]:
        return [a for a in actions if not isinstance(a, dr.ArgoCdSecrets)]

    with pytest.raises(Precondition, match=f"Argo CD on {new} cannot read"):
        drill(stack, old, new_hub=new, replicas=False, edit=without_check)


@pytest.mark.parametrize("stack", STACKS)
def test_without_delete_unreachable_the_refresh_would_fail(stack: str) -> None:
    """The drill can fail: the same refresh with the providers as the state has them (no
    --run-program, so no deleteUnreachable) stops on the lost cluster."""
    before = healthy(stack)
    region = before.config.hub_region
    engine = Engine(stack, raw(stack), Cloud(aws_down={region}, clusters_down={region}))
    objects = tuple(r.urn for r in dr.kubernetes_objects(before, region))
    assert objects
    with pytest.raises(Unreachable):
        engine.refresh(objects, run_program=False, command="pulumi refresh")


@pytest.mark.parametrize("stack", with_spokes())
def test_a_whole_stack_up_with_the_region_down_would_not_finish(stack: str) -> None:
    """Without the runbook's exclusions, the first update reaches the lost region."""
    before = healthy(stack)
    region = before.config.spoke_regions[0]
    engine = Engine(stack, raw(stack), Cloud(aws_down={region}, clusters_down={region}))
    engine.raw = dr.EditStack(stack, remove_region=region, admit=(before.config.hub_region,)).apply(
        engine.raw
    )
    with pytest.raises(Unreachable):
        engine.up((), False, (), "pulumi up")


@pytest.mark.parametrize("stack", with_spokes())
def test_every_step_says_where_it_runs_and_how_long_it_takes(stack: str) -> None:
    before = healthy(stack)
    for kwargs in ({}, {"stays_down": True}):
        book = dr.build(before, before.config.spoke_regions[0], **kwargs)  # type: ignore[arg-type]
        text = dr.render(book)
        for step in book.steps:
            # The one step counted as 0 min: a rebuild's approval, skipped since it opens no pull
            # request (its files end as they were: test_a_region_that_comes_back_empty_is_rebuilt).
            skipped = book.kind == dr.REBUILD and any(isinstance(a, dr.Approve) for a in step.actions)
            assert step.runs_from and (step.minutes > 0 or skipped), step.title
        assert text.count("Runs from: ") == len(book.steps)
    from infra import bench

    book = dr.build(before, before.config.hub_region)
    rebuild = next(s for s in book.steps if s.title.startswith("Rebuild"))
    # The bench table times the pulumi-eks component, not its children (the offline plan's view).
    program = offline.run(stack)
    among = {r.urn for r in book.targets} | {r.urn for r in book.dependents}
    seconds, _ = graph.critical_path(program, {r.urn: bench.seconds_of(r) for r in program.resources}, among)
    # The update runs from the workstation, admitted on the rebuilt hub only: every other public
    # endpoint it reads makes pulumi-eks wait (infra/bench.py EKS_ENDPOINT_WAIT_SECONDS), on top of
    # the build's critical path at most once per path, and the update lasts at least that wait.
    waiting = dr.endpoint_waits(program, [before.config.hub_region])
    if not waiting:
        assert rebuild.minutes == round(seconds / 60, 1)
    else:
        wait = bench.EKS_ENDPOINT_WAIT_SECONDS
        assert round(max(seconds, wait) / 60, 1) <= rebuild.minutes <= round((seconds + wait) / 60, 1)


@pytest.mark.parametrize("stack", with_spokes()[:1])
def test_a_spoke_without_cluster_objects_gets_no_untargeted_refresh(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spoke whose cluster holds no Kubernetes objects of the stack: the runbook has no refresh
    step (a refresh without --target is the whole stack, through the lost endpoints), and the
    drill refuses such a refresh."""
    before = healthy(stack)
    region = before.config.spoke_regions[0]
    monkeypatch.setattr(dr, "kubernetes_objects", lambda plan, r: [])
    engine = Engine(stack, raw(stack), Cloud(aws_down={region}, clusters_down={region}))
    book = dr.build(before, region, stays_down=True, raw=engine.raw)
    assert not [a for a in book.actions if isinstance(a, dr.Refresh) and not a.targets]
    with pytest.raises(Refused):
        engine.refresh((), run_program=True, command="pulumi refresh")
    with pytest.raises(ValueError, match="without targets"):
        dr.Refresh(stack, ())


@pytest.mark.parametrize("stack", with_spokes())
def test_an_untargeted_kubernetes_provider_keeps_its_old_inputs(stack: str) -> None:
    """The lost hub's objects refreshed with the program run but their provider not targeted: the
    engine loads that provider from its old state inputs (no deleteUnreachable) and the read
    fails, unless PULUMI_K8S_DELETE_UNREACHABLE=true (pulumi-kubernetes provider.go, read after v4.32.0) or
    the provider is targeted too. The runbook does both."""
    before = healthy(stack)
    region = before.config.hub_region
    engine = Engine(stack, raw(stack), Cloud(aws_down={region}, clusters_down={region}))
    engine.raw = dr.EditStack(stack, (("platform:unreachableRegions", [region]),)).apply(engine.raw)
    objects = tuple(r.urn for r in dr.kubernetes_objects(before, region))
    providers = tuple(sorted({r.provider for r in dr.kubernetes_objects(before, region) if r.provider}))
    with pytest.raises(Unreachable):
        engine.refresh(objects, run_program=True, command="pulumi refresh")
    engine.refresh((*providers, *objects), run_program=True, command="pulumi refresh")
    assert not [u for u in objects if u in engine.state]
    book = dr.build(before, region, new_hub=before.config.spoke_regions[0], raw=raw(stack))
    refreshes = [a for a in book.actions if isinstance(a, dr.Refresh)]
    assert refreshes and all(a.delete_unreachable for a in refreshes)
    assert all(a.command().startswith("PULUMI_K8S_DELETE_UNREACHABLE=true ") for a in refreshes)
    assert any(set(providers) <= set(a.targets) for a in refreshes)


@pytest.mark.parametrize("stack", STACKS)
def test_the_freeze_cancels_queued_and_waiting_runs_and_offers_pulumi_cancel(stack: str) -> None:
    before = healthy(stack)
    book = dr.build(before, before.config.hub_region, raw=raw(stack))
    shells = [a.command() for a in book.actions if isinstance(a, dr.Shell)]
    # Only the runs that would write or deploy a stack this runbook freezes (its own, and any
    # other whose hub is in the region) past their freeze check: up.yml when its environment
    # waits for reviewers, deploy-prod.yml for the stack it deploys.
    frozen = [
        before.config,
        *(cfg.load_stack_file(s) for s in dr.hub_lost_stacks(before.config, [before.config.hub_region])),
    ]
    expected = {"up.yml" for c in frozen if c.github.reviewers is not None}
    expected |= {"deploy-prod.yml" for c in frozen if c.argocd.sync != "automated"}
    cancelled = {
        w for w in ("up.yml", "deploy-prod.yml") for c in shells if f"--workflow {w} " in c and "cancel" in c
    }
    assert cancelled == expected, (cancelled, expected)
    for workflow in expected:
        for status in ("queued", "waiting"):
            assert any(
                f"--workflow {workflow} --status {status}" in c and "gh run cancel" in c for c in shells
            )
    assert any(
        c.startswith(f"AWS_PROFILE={dr.aws_profile(stack)} pulumi cancel --stack {stack} --yes")
        for c in shells
    )


# --- The drill fails when a step is missing or misordered ---------------------------------------


def _in_eks_component(urn: str) -> bool:
    """A child of pulumi-eks's Cluster (its type chain passes through the component)."""
    return f"${dr.EKS_COMPONENT}$" in urn


def _without_eks_children(actions: list[dr.Action]) -> list[dr.Action]:
    out: list[dr.Action] = []
    for a in actions:
        if isinstance(a, dr.Up):
            a = _replace(
                a,
                targets=tuple(u for u in a.targets if not _in_eks_component(u)),
                excludes=tuple(u for u in a.excludes if not _in_eks_component(u)),
            )
        elif isinstance(a, dr.Refresh):
            a = _replace(a, targets=tuple(u for u in a.targets if not _in_eks_component(u)))
        elif isinstance(a, dr.StateDelete):
            a = _replace(a, urns=tuple(u for u in a.urns if not _in_eks_component(u)))
        out.append(a)
    return out


@pytest.mark.parametrize("stack", with_spokes()[:1])
def test_without_pulumi_eks_children_a_spoke_that_stays_down_stops_on_the_lost_region(stack: str) -> None:
    """pulumi-eks's children (the control plane, its role, its Kubernetes provider) are in the
    state but not in the program once the region leaves: left out of --exclude, the update deletes
    them through the lost region (or refuses, protected). The runbook names them."""
    region = healthy(stack).config.spoke_regions[0]
    book = runbook(stack, region, None, True)
    excluded = {u for a in book.actions if isinstance(a, dr.Up) for u in a.excludes}
    assert {u for u in excluded if _in_eks_component(u)}, "the runbook excludes pulumi-eks's children"
    with pytest.raises((Unreachable, Refused)):
        drill(stack, region, stays_down=True, edit=_without_eks_children)


@pytest.mark.parametrize("stack", STACKS[:1])
def test_without_pulumi_eks_children_a_rebuild_keeps_a_control_plane_that_is_gone(stack: str) -> None:
    """Left out of the refresh, the lost control plane stays in the state: the rebuild updates a
    cluster that does not exist, or the state ends up naming one."""
    region = healthy(stack).config.hub_region

    def run() -> None:
        assert_next_up_is_a_no_op(drill(stack, region, edit=_without_eks_children))

    with pytest.raises((Refused, AssertionError)):
        run()


def _drop(kind: type, where: Callable[[dr.Action], bool] = lambda a: True) -> Edit:
    return lambda actions: [a for a in actions if not (isinstance(a, kind) and where(a))]


@pytest.mark.parametrize("stack", with_spokes()[:1])
def test_without_the_operators_address_the_hub_move_cannot_reach_the_new_hub(stack: str) -> None:
    """The new hub's API admits the operator only through the runbook's admission (prod's is private)."""
    config = healthy(stack).config
    admits = _drop(dr.EditStack, lambda a: bool(getattr(a, "admit", ())))
    with pytest.raises(Precondition, match="does not admit the operator"):
        drill(stack, config.hub_region, new_hub=config.spoke_regions[0], edit=admits)


def _source_stacks_with_spokes() -> list[str]:
    return [s for s in with_spokes() if dr.source_stacks(healthy(s).config)]


@pytest.mark.parametrize("stack", _source_stacks_with_spokes())
def test_after_a_hub_move_the_deploy_waits_for_the_source_stacks_update(stack: str) -> None:
    """Staging's hub admits prod's hub NAT addresses (StackReference): after prod's hub moves,
    staging's targeted update runs before the deploy; without it the deploy cannot read staging."""
    config = healthy(stack).config
    book = runbook(stack, config.hub_region, config.spoke_regions[0])
    kinds = [(type(a).__name__, getattr(a, "stack", None)) for a in book.actions]
    sources = dr.source_stacks(config)
    first_source_up = min(i for i, (k, s) in enumerate(kinds) if k == "Up" and s in sources)
    first_deploy = min(i for i, (k, _) in enumerate(kinds) if k == "Deploy")
    assert first_source_up < first_deploy
    no_source_up = _drop(dr.Up, lambda a: getattr(a, "stack", stack) != stack)
    with pytest.raises(Precondition, match="old hub addresses"):
        drill(stack, config.hub_region, new_hub=config.spoke_regions[0], edit=no_source_up)


@pytest.mark.parametrize("stack", [s for s in STACKS if healthy(s).config.argocd.sync == "automated"][:1])
def test_the_hubs_kube_context_is_written_after_its_rebuild(stack: str) -> None:
    """`aws eks update-kubeconfig` for a hub that does not exist yet fails: moved before the
    rebuild (into the prerequisites), the drill stops there."""
    region = healthy(stack).config.hub_region

    def early(actions: list[dr.Action]) -> list[dr.Action]:
        kube = [a for a in actions if isinstance(a, dr.Kubeconfig)]
        assert kube, "the runbook writes the hub's context"
        return kube + [a for a in actions if not isinstance(a, dr.Kubeconfig)]

    with pytest.raises(Precondition, match="does not exist yet"):
        drill(stack, region, edit=early)


@pytest.mark.parametrize("stack", STACKS)
def test_every_pulumi_command_runs_frozen(stack: str) -> None:
    """Without the freeze, the first pulumi command of the runbook stops the drill (up.yml could
    write the same state), and the freeze set is the stack's own variable."""
    region = healthy(stack).config.hub_region
    book = runbook(stack, region)
    freezes = [a for a in book.actions if isinstance(a, dr.Freeze)]
    # The lifts come only in the merge step, after gh reports the pull request MERGED.
    lifts = [f for a in book.actions if isinstance(a, dr.MergeAndLift) for f in a.lifts]
    own = [a for a in (*freezes, *lifts) if a.stack == stack]
    assert [a.lift for a in own] == [False, True]
    assert dr.freeze_variable(stack) in own[0].command()
    # Other stacks are frozen only when their hub is lost too; lifted here only after the merge,
    # and only those whose own runbook ran inside this one (on this branch).
    others = {a.stack for a in freezes if a.stack != stack}
    assert others == set(dr.hub_lost_stacks(healthy(stack).config, [region]))
    assert not [a for a in freezes if a.stack != stack and a.lift]
    inside = {a.stack for a in book.actions if isinstance(a, dr.SourceRunbook)}
    assert {f.stack for f in lifts if f.stack != stack} == inside
    assert lifts[-1].stack == stack  # the outermost last
    with pytest.raises(Precondition, match="is not frozen"):
        drill(stack, region, edit=_drop(dr.Freeze))


def _hub_cases() -> list[tuple[str, str | None]]:
    """(stack, new hub or None for a rebuild) for each stack's hub region."""
    return [(s, n) for s in STACKS for n in (None, *healthy(s).config.spoke_regions[:1])]


@pytest.mark.parametrize(("stack", "new_hub"), _hub_cases())
def test_every_stack_whose_hub_is_lost_is_frozen_before_the_push(stack: str, new_hub: str | None) -> None:
    """A push to main runs up.yml's job of every stack that is not frozen on that stack's runners
    in its hub's region: another stack whose hub is in the lost region (from the stack files:
    both example hubs share one region) would queue its job for good and hold the pulumi-up
    group. The freeze step freezes it before the push; a source stack's own runbook comes
    before the push, and the push step names what stays frozen. Without that freeze the drill
    refuses the push (or, in a rebuild, the backfill that needs the skipped runbook first)."""
    config = healthy(stack).config
    region = config.hub_region
    book = runbook(stack, region, new_hub)
    others = dr.hub_lost_stacks(config, [region])
    assert others == sorted(s for s in STACKS if s != stack and cfg.load_stack_file(s).hub_region == region)
    actions = book.actions
    push = next(i for i, a in enumerate(actions) if isinstance(a, dr.OpenPullRequest))
    first_pulumi = next(
        i for i, a in enumerate(actions) if isinstance(a, (dr.Refresh, dr.Up, dr.StateDelete, dr.Preview))
    )
    for other in others:
        frozen_at = [i for i, a in enumerate(actions) if isinstance(a, dr.Freeze) and a.stack == other]
        assert frozen_at and frozen_at[0] < first_pulumi and frozen_at[0] < push, other
    titles = [s.title for s in book.steps]
    push_step = next(s for s in book.steps if any(isinstance(a, dr.MergeAndLift) for a in s.actions))
    for source in dr.source_stacks(config):
        nested = [i for i, t in enumerate(titles) if t.startswith(f"{source}'s hub is in {region} too")]
        if source in others:
            # Its own runbook runs while this stack is still frozen; this stack's push comes last.
            assert nested and nested[0] < titles.index(push_step.title)
    for other in others:
        assert any(other in n for n in push_step.notes), push_step.notes
    if not others:
        return
    # Unfrozen, a source's nested runbook is skipped: the drill stops at the merge (its up.yml job
    # would queue for good) or, in a rebuild, already at the backfill that needs that runbook's
    # registry.
    with pytest.raises(
        Precondition, match=r"never gets one|registry in .* is lost and its runbook has not run"
    ):
        drill(
            stack,
            region,
            new_hub=new_hub,
            edit=_drop(dr.Freeze, lambda a: getattr(a, "stack", stack) != stack),
        )


@pytest.mark.parametrize("stack", STACKS[:1])
def test_the_backfill_before_the_rebuild_finds_no_repositories(stack: str) -> None:
    """Moved before the rebuild, the backfill has no repositories to copy into."""
    region = healthy(stack).config.hub_region

    def early(actions: list[dr.Action]) -> list[dr.Action]:
        backfill = [a for a in actions if isinstance(a, dr.Backfill)]
        assert backfill, "the runbook backfills a rebuilt region"
        rest = [a for a in actions if not isinstance(a, dr.Backfill)]
        first_freeze = next(i for i, a in enumerate(rest) if isinstance(a, dr.Freeze))
        return rest[: first_freeze + 1] + backfill + rest[first_freeze + 1 :]

    with pytest.raises(Precondition, match="repositories do not exist"):
        drill(stack, region, edit=early)


@pytest.mark.parametrize(
    "stack", sorted(with_spokes(), key=lambda s: healthy(s).config.argocd.sync == "automated")[:1]
)
def test_the_moved_hubs_runners_wait_for_their_connection(stack: str) -> None:
    """The moved hub's runner connection is created PENDING: the update that moves the hub
    declares it alone, a person authorizes it, then the runners are created. Without the
    authorization the runners' update is refused; without the runners' step nothing runs on them."""
    config = healthy(stack).config
    old, new = config.hub_region, config.spoke_regions[0]
    kinds = [type(a).__name__ for a in runbook(stack, old, new).actions]
    authorize = kinds.index("AuthorizeConnection")
    assert kinds.index("Up") < authorize
    if "Deploy" in kinds:
        assert authorize < kinds.index("Deploy")
    with pytest.raises(Refused, match="connection is PENDING"):
        drill(stack, old, new_hub=new, edit=_drop(dr.AuthorizeConnection))
    runners = [
        a
        for a in runbook(stack, old, new).actions
        if isinstance(a, dr.Up) and any("codebuild/project:Project" in u for u in a.targets)
    ]
    assert len(runners) == 1
    restore = [
        a
        for a in runbook(stack, old, new).actions
        if isinstance(a, dr.EditStack) and [k for k, _ in a.set_keys] == ["platform:github"]
    ]
    assert restore
    # The key stays false and no runner is created: the preview has nothing left to do, the
    # deploy (which runs on the runners) is refused.
    no_runners = _drop(dr.Up, lambda a: a in runners)
    no_runners_at_all = lambda actions: no_runners([a for a in actions if a not in restore])  # noqa: E731
    if config.argocd.sync != "automated":
        with pytest.raises(Precondition, match="runners do not exist"):
            drill(stack, old, new_hub=new, edit=no_runners_at_all)


@pytest.mark.parametrize("stack", _source_stacks_with_spokes())
def test_a_source_stacks_hub_in_the_lost_region_is_brought_back_first(stack: str) -> None:
    """When a source stack's hub is in the lost region too (derived from the stack files), its
    own runbook comes before this stack's update of it, which targets its hub where it is after
    that runbook; the drill refuses an update of the source's hub in the down region."""
    config = healthy(stack).config
    old, new = config.hub_region, config.spoke_regions[0]
    book = runbook(stack, old, new)
    sources = dr.source_stacks(config)
    titles = [s.title for s in book.steps]
    for source in sources:
        source_config = cfg.load_stack_file(source)
        ups = [
            i
            for i, s in enumerate(book.steps)
            for a in s.actions
            if isinstance(a, dr.Up) and a.stack == source
        ]
        first = [i for i, t in enumerate(titles) if t.startswith(f"{source}'s hub is in {old} too")]
        if source_config.hub_region != old:
            assert not first
            continue
        assert first and first[0] < min(ups)
        regions = graph.region_index(offline.run(source))
        for i in ups:
            for a in book.steps[i].actions:
                if isinstance(a, dr.Up) and a.stack == source:
                    assert {regions.get(u) for u in a.targets} - {None} and old not in {
                        regions.get(u) for u in a.targets
                    }
    source_plans = {s: offline.run(s) for s in sources}
    stale = {s: tuple(dr.control_plane_urns(p, [p.config.hub_region])) for s, p in source_plans.items()}

    def old_targets(actions: list[dr.Action]) -> list[dr.Action]:
        return [
            _replace(a, targets=stale[a.stack]) if isinstance(a, dr.Up) and a.stack in stale else a
            for a in actions
        ]

    if any(p.config.hub_region == old for p in source_plans.values()):
        with pytest.raises(Precondition, match="does not answer"):
            drill(stack, old, new_hub=new, edit=old_targets)


def _nested_cases() -> list[tuple[str, str | None]]:
    """(stack, new hub or None) whose hub runbook runs a source stack's runbook inside it: a source
    whose hub is in this stack's hub region (from the stack files)."""
    return [
        (s, n)
        for s, n in _hub_cases()
        if any(
            cfg.load_stack_file(o).hub_region == healthy(s).config.hub_region
            for o in dr.source_stacks(healthy(s).config)
        )
    ]


@pytest.mark.parametrize(("stack", "new_hub"), _nested_cases())
def test_a_source_runbook_inside_takes_its_own_total(
    stack: str, new_hub: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The step that runs a source stack's runbook inside this one prints the command of exactly
    the runbook the drill runs (``platform dr ... --inside <this stack>``, run here through the
    CLI's own entry point, renders ``action.book``; without --inside it would print the
    standalone runbook, with its own branch and pull request), takes that runbook's own total
    from the same table, and this runbook's printed total includes it."""
    import shlex

    region = healthy(stack).config.hub_region
    book = runbook(stack, region, new_hub)
    inside = [(s, a) for s in book.steps for a in s.actions if isinstance(a, dr.SourceRunbook)]
    assert inside
    for step, action in inside:
        moved_to = (action.book.hub_move or {}).get("newHub")
        argv = shlex.split(action.platform_command)
        assert argv[:2] == [".venv/bin/platform", "dr"] and argv[argv.index("--inside") + 1] == stack
        capsys.readouterr()
        assert dr.main(["plan", *argv[2:]]) == 0
        assert capsys.readouterr().out == dr.render(action.book) + "\n"
        own = action.book
        assert step.minutes == own.minutes == round(sum(s.minutes for s in own.steps)) > 5
        command = action.command()
        assert f"platform dr --stack {action.stack} --region {region}" in command
        assert (f"--new-hub {moved_to}" in command) == (moved_to is not None)
        # Run only while its freeze is set and its commit is not on this branch yet (a restarted
        # runbook skips it): the command checks the branch first, then the variable.
        check = dr.is_frozen_check(action.stack, healthy(stack).config.github.slug)
        on_branch = (
            f"git log --format=%s origin/main..HEAD | grep -qx '{dr.commit_subject(action.stack, region)}'"
        )
        assert command.index(on_branch) < command.index(check)
        # The inner runbook ends with that commit, on this branch: no push, no pull request, no lift.
        inner = action.book.actions
        commits = [a for a in inner if isinstance(a, dr.Commit)]
        assert [c.subject for c in commits] == [dr.commit_subject(action.stack, region)]
        assert not [a for a in inner if isinstance(a, (dr.OpenPullRequest, dr.MergeAndLift))]
        assert not [a for a in inner if isinstance(a, dr.Freeze) and a.lift]
        assert not [c for a in inner for c in a.command().splitlines() if "git push" in c]
    total = round(sum(s.minutes for s in book.steps))
    assert f"Expected duration: about {total} min" in dr.render(book)
    assert total > sum(s.minutes for s, _ in inside)


@pytest.mark.parametrize("stack", sorted({s for s, _ in _nested_cases()}))
def test_a_source_whose_runbook_has_finished_is_neither_frozen_again_nor_run_again(stack: str) -> None:
    """A rebuild leaves the source's stack file as it was, so only AWS and GitHub tell whether its
    runbook has finished: then its hub cluster is ACTIVE and its freeze lifted, and this runbook
    neither freezes it again nor runs its runbook again, and says so. The drill's engine takes
    the source as recovered; without the condition it would be frozen and its runbook rerun."""
    config = healthy(stack).config
    region = config.hub_region
    sources = {a.stack for a in runbook(stack, region).actions if isinstance(a, dr.SourceRunbook)}
    assert sources
    for a in runbook(stack, region).actions:
        if isinstance(a, dr.Freeze) and a.stack in sources and not a.lift:
            assert a.unless_recovered is not None and a.unless_recovered.region == region
            assert "describe-cluster" in a.command() and "gh variable get" in a.command()
    d = drill(stack, region, recovered=frozenset(sources))
    assert not d.engine.nested
    assert not sources & d.engine.frozen
    merge = next(s for s in d.book.steps if any(isinstance(a, dr.MergeAndLift) for a in s.actions))
    # The merge step never claims the freeze was set: it lifts it if the freeze step set it, and
    # its lift passes when the variable does not exist.
    assert all(f"{s}'s freeze, if the freeze step set it" in merge.notes[0] for s in sources)
    lifts = [
        f for a in merge.actions if isinstance(a, dr.MergeAndLift) for f in a.lifts if f.stack in sources
    ]
    assert lifts and all(f.or_lifted and "was not found" in f.command() for f in lifts)
    assert_next_up_is_a_no_op(d)


def _publish(book: dr.Runbook) -> tuple[dr.OpenPullRequest, dr.Approve, dr.MergeAndLift]:
    (opened,) = [a for a in book.actions if isinstance(a, dr.OpenPullRequest)]
    (approve,) = [a for a in book.actions if isinstance(a, dr.Approve)]
    (merge,) = [a for a in book.actions if isinstance(a, dr.MergeAndLift)]
    return opened, approve, merge


def _applied(stack: str, book: dr.Runbook, region: str) -> Engine:
    """An engine whose stack file is the runbook's final one (its edits applied, as after its
    updates), its hub's runners ready, its stack frozen: where the push step starts."""
    cloud = Cloud(aws_down={region}, clusters_down={region})
    engine = Engine(stack, raw(stack), cloud)
    for a in book.actions:
        if isinstance(a, dr.EditStack) and a.stack == stack:
            engine.raw = a.apply(engine.raw, cloud.operator_cidr)
    engine.frozen.add(stack)
    return engine


@pytest.mark.parametrize("stack", with_spokes()[:1])
def test_a_direct_push_to_main_is_refused_and_leaves_the_freeze_set(stack: str) -> None:
    """protect-main refuses a direct push to main for everyone (GH013; GitHub docs, available rules
    for rulesets: "Require a pull request before merging"): the runbook's old last step (commit,
    `git push`, lift) fails for real, and the freeze stays. The runbook pushes only its dr/ branch."""
    config = healthy(stack).config
    region = config.spoke_regions[0]
    book = runbook(stack, region, None, True)
    engine = _applied(stack, book, region)
    old = DirectPush(stack, region, dr.Freeze(stack, config.github.slug, lift=True))
    with pytest.raises(Precondition, match="GH013"):
        engine.run(old)
    assert stack in engine.frozen and engine.repo.main[stack] == raw(stack)
    opened, _, _ = _publish(book)
    assert "git push -u origin HEAD" in opened.command() and "gh pr create" in opened.command()
    assert "--base main" in opened.command() and "git push origin main" not in opened.command()
    # Every push the commands run (not the advice quoted in an echo) pushes the runbook's branch.
    import re

    run = [re.sub(r'"[^"]*"', "", line) for s in book.steps for c in s.commands for line in c.splitlines()]
    pushes = [line for line in run if "git push" in line]
    assert pushes and all("git push -u origin HEAD" in line for line in pushes), pushes


@pytest.mark.parametrize("stack", with_spokes()[:1])
def test_an_unapproved_or_unmerged_pull_request_leaves_the_freeze_set(stack: str) -> None:
    """`gh pr merge` refuses a pull request nobody approved (BLOCKED: cli/cli merge.go
    blockedReason), so the chained lifts never run; pushing the branch runs nothing and lifts
    nothing; and a lift before the merge is refused (main's file is not the one applied)."""
    config = healthy(stack).config
    region = config.spoke_regions[0]
    book = runbook(stack, region, None, True)
    opened, approve, merge = _publish(book)
    engine = _applied(stack, book, region)
    with pytest.raises(Precondition, match="no pull request"):
        engine.run(merge)
    engine.run(opened)
    assert stack in engine.frozen and not engine.repo.merged
    with pytest.raises(Precondition, match="BLOCKED"):
        engine.run(merge)
    assert stack in engine.frozen and engine.repo.main[stack] == raw(stack)
    # The lift alone, before the merge: refused.
    with pytest.raises(Precondition, match="not merged"):
        engine.run(merge.lifts[-1])
    assert stack in engine.frozen
    engine.run(approve)
    engine.run(merge)
    assert stack not in engine.frozen and engine.repo.main[stack] == engine.raw


@pytest.mark.parametrize("stack", with_spokes()[:1])
def test_approval_by_the_author_or_the_last_pusher_is_refused_and_a_push_dismisses_it(stack: str) -> None:
    """require_last_push_approval (pulumi-github 6.15.0 RepositoryRulesetRulesPullRequestArgs: "the
    most recent reviewable push must be approved by someone other than the person who pushed it"),
    the author cannot approve, dismiss_stale_reviews_on_push: the approver must not push."""
    config = healthy(stack).config
    region = config.spoke_regions[0]
    book = runbook(stack, region, None, True)
    opened, approve, merge = _publish(book)
    assert approve.by == REVIEWER
    engine = _applied(stack, book, region)
    engine.run(opened)
    with pytest.raises(Precondition, match="cannot approve"):
        engine.run(_replace(approve, by=engine.repo.author or ""))
    engine.run(approve)
    # The approver pushes to the branch ("Update branch"): the approval is gone, and they can no
    # longer approve; the merge stays refused and the freeze set.
    engine.repo.push_branch(REVIEWER)
    with pytest.raises(Precondition, match="BLOCKED"):
        engine.run(merge)
    with pytest.raises(Precondition, match="cannot approve"):
        engine.run(approve)
    assert stack in engine.frozen


@pytest.mark.parametrize(("stack", "new_hub"), [c for c in _nested_cases() if c[1] is not None][:1])
def test_two_pull_requests_with_the_inner_stacks_first_are_refused(stack: str, new_hub: str | None) -> None:
    """Merging the inner (source) stack's file alone, before the outer's, leaves main with a pair
    of stack files the stack-set check refuses (r16t finding 4): the runbook makes one pull request
    of both; the drill refuses the other order."""
    region = healthy(stack).config.hub_region
    book = runbook(stack, region, new_hub)
    (inside,) = [a for a in book.actions if isinstance(a, dr.SourceRunbook)]
    inner = inside.book
    opened = dr.OpenPullRequest(inside.stack, inner.region, healthy(stack).config.github.slug, "inner first")
    merge = dr.MergeAndLift(inside.stack, healthy(stack).config.github.slug, ())
    cloud = Cloud(aws_down={region}, clusters_down={region})
    engine = Engine(inside.stack, raw(inside.stack), cloud)
    for a in inner.actions:
        if isinstance(a, dr.EditStack) and a.stack == inside.stack:
            engine.raw = a.apply(engine.raw, cloud.operator_cidr)
    engine.run(opened)
    engine.run(dr.Approve(inside.stack, healthy(stack).config.github.slug))
    with pytest.raises(Precondition, match="main fails the stack-set check"):
        engine.run(merge)
    assert any(stackset.file_name(stack) in f.files for f in stackset.findings(engine.repo.configs()))


@pytest.mark.parametrize("stack", sorted({s for s, _ in _nested_cases()})[:1])
def test_the_push_reads_the_other_stacks_from_the_checkout_it_is_given(stack: str, tmp_path: Path) -> None:
    """A fork planned from a copy (``root``): the freeze set, the source runbook inside and the
    drill's merge (main's stack files) read the other stacks there, not in the repository's checkout."""
    config = healthy(stack).config
    region = config.hub_region
    others = dr.hub_lost_stacks(config, [region])
    assert others
    for f in cfg.PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    # In the copy, every other stack's hub has left the region (its runbook moved it already).
    for other in others:
        other_config = cfg.load_stack_file(other)
        spoke = next(r for r in other_config.spoke_regions)
        other_raw = {
            **raw(other),
            "platform:hubRegion": spoke,
            "platform:accountRegion": other_config.account_region,
            # Its ECR primary region stays where it was (it follows the hub unless set): the pair
            # of stack files main holds still passes the stack-set check.
            "platform:ecr": {
                **dict(raw(other).get("platform:ecr") or {}),  # type: ignore[call-overload]
                "primaryRegion": other_config.ecr.primary_region,
            },
        }
        (tmp_path / f"Pulumi.{other}.yaml").write_text(yaml.safe_dump({"config": other_raw}, sort_keys=False))
    assert dr.hub_lost_stacks(config, [region], tmp_path) == []
    book = dr.build(offline.run(stack), region, raw=raw(stack), root=tmp_path)
    assert not [
        a
        for a in book.actions
        if isinstance(a, dr.SourceRunbook) or (isinstance(a, dr.Freeze) and a.stack != stack)
    ]
    publish = _publish(book)
    cloud = Cloud(aws_down={region}, clusters_down={region})
    # This stack frozen: the merge (a push to main) runs only the other stacks' jobs, on runners
    # where main's stack files put their hub.
    checkout = Engine(stack, raw(stack), cloud)
    checkout.frozen.add(stack)
    with pytest.raises(Precondition, match="never gets one"):
        for a in publish:
            checkout.run(a)
    assert stack in checkout.frozen
    forked = Engine(stack, raw(stack), cloud, tmp_path)
    forked.frozen.add(stack)
    for a in publish:
        forked.run(a)
    assert stack not in forked.frozen


def _source_shares_the_lost_hub(stack: str) -> bool:
    config = healthy(stack).config
    sources = dr.source_stacks(config)
    return (
        not config.builds_images
        and bool(sources)
        and cfg.load_stack_file(sources[0]).ecr.primary_region == config.hub_region
        and cfg.load_stack_file(sources[0]).hub_region == config.hub_region
    )


@pytest.mark.parametrize("stack", [s for s in STACKS if _source_shares_the_lost_hub(s)])
def test_a_replicas_backfill_waits_for_its_sources_runbook_when_the_sources_registry_is_lost_too(
    stack: str,
) -> None:
    """The replica's hub rebuild, where the image source's hub and ECR primary region are lost
    too: its backfill comes after the source's own runbook (which rebuilds that registry), and the
    drill stops the backfill moved before it."""
    region = healthy(stack).config.hub_region
    book = runbook(stack, region)
    kinds = [type(a) for a in book.actions]
    assert kinds.index(dr.Backfill) > kinds.index(dr.SourceRunbook)

    def backfill_first(actions: list[dr.Action]) -> list[dr.Action]:
        backfill = next(a for a in actions if isinstance(a, dr.Backfill))
        rest = [a for a in actions if a is not backfill]
        at = next(i for i, a in enumerate(rest) if isinstance(a, dr.SourceRunbook))
        return [*rest[:at], backfill, *rest[at:]]

    with pytest.raises(Precondition, match=r"registry in .* is lost and its runbook has not run"):
        drill(stack, region, edit=backfill_first)
