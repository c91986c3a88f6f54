"""The DR runbook: what a region's rebuild targets, what it drags along, and a hub move."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from infra import dr, graph, naming, offline
from infra.offline import Plan
from tests.conftest import stack_names

STACKS = stack_names()
SECRET = "kubernetes:core/v1:Secret"


@cache
def plan(stack: str) -> Plan:
    return offline.run(stack)


def cases() -> list[tuple[str, str]]:
    return [(s, r) for s in STACKS for r in plan(s).config.region_names]


@pytest.mark.parametrize(("stack", "region"), cases())
def test_targets_are_exactly_the_regions_own_resources(stack: str, region: str) -> None:
    """On the stack as the engine records it: the program's resources and pulumi-eks's children."""
    p = dr.with_eks_children(plan(stack))
    targets, _ = dr.rebuild_sets(p, region)
    target_urns = {r.urn for r in targets}
    # The region's providers are targets too (their inputs change with unreachableRegions); the
    # account's provider and the global objects (IAM, Route 53: dr.GLOBAL_TYPE_PREFIXES) are not
    # (infra/providers.py).
    expected = {
        r.urn
        for r in p.resources
        if p.region_of(r) == region
        and not r.type.startswith(dr.GLOBAL_TYPE_PREFIXES)
        and r.name != "aws-account"
    }
    assert target_urns == expected
    assert any(r.type == "eks:index:Cluster" for r in targets)
    assert any(r.type == "aws:eks/cluster:Cluster" for r in targets)
    assert any(r.type == "aws:ecr/repository:Repository" for r in targets)


@pytest.mark.parametrize(("stack", "region"), cases())
def test_dependents_are_exactly_what_waits_on_the_targets(stack: str, region: str) -> None:
    p = plan(stack)
    targets, dependents = dr.rebuild_sets(p, region)
    target_urns = {r.urn for r in targets}
    chosen = target_urns | {r.urn for r in dependents}
    deps = graph.dependencies(p)
    # Every dependent waits (directly) on something rebuilt...
    for r in dependents:
        assert deps[r.urn] & chosen, r.urn
    # ...and nothing left out waits on anything rebuilt: --target-dependents would add it.
    for r in p.resources:
        if r.urn not in chosen:
            assert not deps[r.urn] & chosen, r.urn


@pytest.mark.parametrize("stack", STACKS)
def test_a_spoke_rebuild_re_registers_its_cluster_on_the_hub_and_touches_no_other_cluster(stack: str) -> None:
    p = plan(stack)
    hub = p.config.hub_region
    spoke, *others = p.config.spoke_regions
    targets, dependents = dr.rebuild_sets(p, spoke)
    touched = targets + dependents
    secrets = [r for r in dependents if r.type == SECRET and p.region_of(r) == hub]
    assert [s.name for s in secrets] == [f"argocd-cluster-{spoke}"]
    assert not [r for r in touched if r.type == "eks:index:Cluster" and p.region_of(r) != spoke]
    assert not [r for r in touched if r.type == "kubernetes:helm.sh/v3:Release"], "Argo CD is not reinstalled"
    assert not [r for r in touched if p.region_of(r) in others]


@pytest.mark.parametrize("stack", STACKS)
def test_after_a_hub_move_a_spoke_rebuild_still_touches_no_other_cluster(stack: str, tmp_path: Path) -> None:
    """The same invariant in a fork whose hub moved off the first region of platform:regions (and
    off accountRegion): rebuilding that old hub, now a spoke, re-registers only its own cluster
    (the shared certificate-validation record follows the hub, not the first region)."""
    if _moved_hub_fork(tmp_path) is None:
        pytest.skip("no spoke shared by every stack to move the hub to")
    p = offline.run(stack, flat_config=dr.cfg.read_stack_file(dr.cfg.stack_file(stack, tmp_path)))
    hub = p.config.hub_region
    for spoke in p.config.spoke_regions:
        others = [r for r in p.config.region_names if r not in (spoke, hub)]
        targets, dependents = dr.rebuild_sets(p, spoke)
        secrets = [r for r in dependents if r.type == SECRET and p.region_of(r) == hub]
        assert [s.name for s in secrets] == [f"argocd-cluster-{spoke}"], spoke
        # Route 53 objects report the account provider's region (global; each region's own are
        # its traffic components' children): only regional resources are checked here.
        regional = [r for r in targets + dependents if not r.type.startswith(dr.GLOBAL_TYPE_PREFIXES)]
        assert not [r for r in regional if p.region_of(r) in others], spoke


@pytest.mark.parametrize("stack", STACKS)
def test_a_hub_rebuild_reinstalls_argo_cd_and_keeps_every_cluster_registered(stack: str) -> None:
    p = plan(stack)
    targets, _ = dr.rebuild_sets(p, p.config.hub_region)
    releases = {r.inputs["chart"] for r in targets if r.type == "kubernetes:helm.sh/v3:Release"}
    assert releases == {"argo-cd", "argocd-image-updater"}
    secrets = sorted(r.name for r in targets if r.type == SECRET and r.name.startswith("argocd-cluster-"))
    assert secrets == sorted(f"argocd-cluster-{r}" for r in p.config.region_names)


@pytest.mark.parametrize("stack", STACKS)
def test_moving_the_hub_gives_a_valid_plan_with_all_clusters_registered(stack: str) -> None:
    p = plan(stack)
    new_hub = p.config.spoke_regions[0]
    book = dr.build(p, p.config.hub_region, new_hub=new_hub)
    assert book.hub_move is not None
    # The lost hub leaves the stack until it returns: the other regions stay registered.
    assert book.hub_move["clusterSecrets"] == sorted(
        f"argocd-cluster-{r}" for r in p.config.region_names if r != p.config.hub_region
    )
    moved, created, _ = dr.hub_move(p, new_hub)
    assert moved.config.hub_region == new_hub
    releases = [r for r in moved.of_type("kubernetes:helm.sh/v3:Release")]
    assert releases and {moved.region_of(r) for r in releases} == {new_hub}
    assert any(r.type == "kubernetes:argoproj.io/v1alpha1:ApplicationSet" for r in created)
    from policies import offline as policy_offline

    assert policy_offline.mandatory(policy_offline.evaluate(moved)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_runbook_is_ordered_and_uses_the_programs_urns(stack: str) -> None:
    p = plan(stack)
    region = p.config.region_names[-1]
    book = dr.build(p, region)
    text = dr.render(book)
    freeze = dr.freeze_variable(stack)
    order = [
        f"gh variable set {freeze} ",
        "platform:unreachableRegions",
        "add $OPERATOR_CIDR to platform:regions.",
        "pulumi refresh",
        "--target-dependents",
        "Restore the images",
        "--expect-no-changes",
        "remove $OPERATOR_CIDR from platform:regions.",
        # Through a reviewed pull request (protect-main refuses a direct push); the lift only after
        # gh reports it MERGED.
        "git push -u origin HEAD",
        "gh pr create --repo",
        "gh pr review",
        "gh pr merge",
        "= MERGED ]",
        f"gh variable delete {freeze} ",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions), positions
    # The branch is made first, in the prerequisites, before anything is frozen or committed.
    assert text.index(f'git switch -c "dr/{stack}-{region}-') < positions[0] < text.index("git commit")
    urns = {r.urn for r in dr.with_eks_children(p).resources}
    assert book.target_urns and set(book.target_urns) <= urns
    for urn in book.target_urns:
        assert f"--target '{urn}'" in text
    # pulumi-eks's control plane of the region is among them (the offline plan does not show it).
    assert any(u.endswith(f"$aws:eks/cluster:Cluster::eks-{region}-eksCluster") for u in book.target_urns)
    for where in ("Pulumi state backend", "Git", "ECR"):
        assert where in text
    if p.config.argocd.sync == "manual":
        assert "gh workflow run deploy-prod.yml" in text
        assert text.index(f"gh variable delete {freeze} ") < text.index("gh workflow run deploy-prod.yml")
    else:
        assert "automated sync" in text
    assert not [c for c in (c for s in book.steps for c in s.commands) if "python" in c]


def runbook_cases() -> list[tuple[str, str, str | None, bool]]:
    """(stack, region, new hub, stays down): the hub rebuilt and moved, a spoke rebuilt and
    kept out, for each stack of the checkout (regions from its stack file)."""
    out: list[tuple[str, str, str | None, bool]] = []
    for s in STACKS:
        c = plan(s).config
        out.append((s, c.hub_region, None, False))
        if c.spoke_regions:
            out += [
                (s, c.hub_region, c.spoke_regions[0], False),
                (s, c.spoke_regions[-1], None, False),
                (s, c.spoke_regions[-1], None, True),
            ]
    return out


# A program that acts on AWS, where a command can start: the line's start, after a shell
# operator or a command substitution, or after an environment assignment.
_AWS_PROGRAM = re.compile(r"(?:^|&&|\|\||\||;|\$\(|\bthen)\s*((?:[A-Z_]+=\S+\s+)*)(pulumi|aws|kubectl)\s")


def _identities(command: str) -> list[tuple[str, str | None]]:
    """(program, profile) of every pulumi, aws and kubectl call of a printed command: the profile
    from an ``AWS_PROFILE=`` prefix or the call's ``--profile``; comments left out."""
    out: list[tuple[str, str | None]] = []
    for line in command.split("\n"):
        line = re.sub(r"(^|\s)#.*$", "", line)
        for match in _AWS_PROGRAM.finditer(line):
            env = dict(a.split("=", 1) for a in match.group(1).split())
            rest = re.split(r"&&|\|\||\||;|\)", line[match.end() :], maxsplit=1)[0]
            flag = re.search(r"--profile\s+(\S+)", rest)
            out.append((match.group(2), env.get("AWS_PROFILE") or (flag.group(1) if flag else None)))
    return out


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_every_printed_aws_command_names_the_identity_it_runs_as(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """Each pulumi, aws and kubectl command of the runbook says which AWS identity it runs as:
    the profile of the stack it acts on (dr.aws_profile; staging's targeted update as staging,
    the backfill as the image source, the freeze step's look at another lost hub as that hub's
    stack); a command without one runs as whatever the shell has."""
    p = plan(stack)
    book = dr.build(p, region, new_hub=new_hub, stays_down=stays_down)
    sources = dr.source_stacks(p.config)
    also_frozen = dr.hub_lost_stacks(p.config, [region])
    allowed = {dr.aws_profile(s) for s in (stack, *sources, *also_frozen)}
    for action in book.actions:
        if isinstance(action, dr.Freeze) and action.unless_recovered is not None:
            assert action.unless_recovered.profile == dr.aws_profile(action.stack), action.command()
    # Each profile the runbook uses is checked in its prerequisites.
    prerequisites = " ".join(book.steps[0].commands)
    for name in allowed:
        assert f"aws sts get-caller-identity --profile {name}" in prerequisites, name
    seen = 0
    for action in book.actions:
        calls = _identities(action.command())
        for program, profile in calls:
            assert profile is not None, f"{program} without a profile: {action.command()}"
            assert profile in allowed, (profile, action.command())
            if isinstance(action, dr.Refresh | dr.Up | dr.StateDelete | dr.Preview | dr.ListApplications):
                assert profile == dr.aws_profile(action.stack), action.command()
        seen += len(calls)
        if isinstance(action, dr.Backfill):
            image_source = stack if p.config.builds_images else sources[0]
            assert action.source_profile == dr.aws_profile(image_source)
    assert seen
    # The staging update after a prod hub move or rebuild runs as staging.
    for action in book.actions:
        if isinstance(action, dr.Up) and action.stack != stack:
            assert action.command().startswith(f"AWS_PROFILE={dr.aws_profile(action.stack)} pulumi up")


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_every_update_from_the_workstation_includes_pulumi_eks_endpoint_wait(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """pulumi-eks polls each public endpoint for up to 60 x (1 s + 5 s) in every `pulumi up`
    (infra/bench.py EKS_ENDPOINT_WAIT_SECONDS, the table `make bench` uses); an endpoint that does
    not admit the workstation never answers. Each update of a stack that has such a cluster (public,
    in a region the runbook never admits the operator to) lasts at least that wait, an update of
    endpoint settings alone the wait after the EKS update; a preview (a dry run) does not wait."""
    from infra import bench

    p = plan(stack)
    book = dr.build(p, region, new_hub=new_hub, stays_down=stays_down)
    wait = bench.EKS_ENDPOINT_WAIT_SECONDS / 60
    admitted = {r for a in book.actions if isinstance(a, dr.EditStack) for r in a.admit}
    checked = 0
    for step in book.steps:
        ups = [a for a in step.actions if isinstance(a, dr.Up)]
        if not ups:
            continue
        (up,) = ups
        stack_plan = plan(up.stack)
        never_admitted = [
            c
            for c in stack_plan.of_type(dr.EKS_COMPONENT)
            if c.inputs.get("endpointPublicAccess")
            and (up.stack != stack or stack_plan.region_of(c) not in admitted)
        ]
        if never_admitted:
            assert step.minutes >= wait, (step.title, step.minutes)
            endpoint_only = up.targets and all(
                t.endswith(f"::{dr.EKS_COMPONENT}") or f"${dr.EKS_COMPONENT}" in t for t in up.targets
            )
            if endpoint_only:
                # An EKS endpoint update (5 min) and the state work (1 min) come before the wait.
                assert step.minutes >= wait + 5 + 1, (step.title, step.minutes)
            checked += 1
    assert checked or not any(
        c.inputs.get("endpointPublicAccess") and p.region_of(c) not in admitted
        for c in p.of_type(dr.EKS_COMPONENT)
    )


def test_the_identity_parser_sees_a_missing_profile() -> None:
    assert _identities("pulumi up --stack prod") == [("pulumi", None)]
    assert _identities("AWS_PROFILE=prod pulumi login && AWS_PROFILE=prod pulumi stack select prod") == [
        ("pulumi", "prod"),
        ("pulumi", "prod"),
    ]
    assert _identities('aws a --profile x --id "$(aws b --query c)"   # aws d') == [
        ("aws", "x"),
        ("aws", None),
    ]
    assert _identities("if jq -e x; then aws route53 y --profile p; fi") == [("aws", "p")]


def _after_runbook(book: dr.Runbook, stack: str, root: Path = dr.cfg.PROJECT_ROOT) -> dict[str, object]:
    """``stack``'s stack file in ``root`` once every edit of ``book`` is made."""
    raw = dr.cfg.read_stack_file(dr.cfg.stack_file(stack, root))
    for action in book.actions:
        if isinstance(action, dr.EditStack) and action.stack == stack:
            raw = action.apply(raw)
    return raw


def _write_stack(root: Path, stack: str, raw: dict[str, object]) -> None:
    import yaml

    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": raw}, sort_keys=False))


@pytest.mark.parametrize(
    "stack", [s for s in STACKS if not plan(s).config.builds_images and plan(s).config.spoke_regions]
)
def test_a_replica_hub_move_leaves_a_primary_region_the_stack_set_accepts(stack: str, tmp_path: Path) -> None:
    """After a replica's hub move its stack file loads (its config refuses a primary region
    outside its regions) and the stack-set check that `make plan` runs has no error, so the
    source's own runbook can start; once that runbook has run too, the pair agrees again."""
    from infra import stackset

    p = plan(stack)
    old, new_hub = p.config.hub_region, p.config.spoke_regions[0]
    book = dr.build(p, old, new_hub=new_hub)
    for f in dr.cfg.PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    _write_stack(tmp_path, stack, _after_runbook(book, stack))
    moved = stackset.load(tmp_path)
    errors = [f for f in stackset.findings(moved) if f.severity == "error"]
    assert not errors, errors
    for source in dr.source_stacks(p.config):
        source_config = moved[stackset.file_name(source)]
        target = dr.source_primary_after(source_config, [old], new_hub)
        assert moved[stackset.file_name(stack)].ecr.primary_region == target
        if source_config.ecr.primary_region == old and source_config.hub_region == old:
            # The stack-set warning names the source's runbook as a command that runs: the
            # stack's name (not its file name) and the lost region.
            (warning,) = [f for f in stackset.findings(moved) if f.key == "platform:ecr.primaryRegion"]
            command = re.search(r"platform dr --stack (\S+) --region (\S+)", warning.message)
            assert command is not None and command.groups() == (source, old), warning.message
            assert (
                f"before {stackset.file_name(stack)}'s runbook's pull request merges its stack file"
                in warning.message
            )
            # The source's own runbook, as the step before the staging update says.
            source_book = dr.build(plan(source), old, new_hub=target)
            _write_stack(tmp_path, source, _after_runbook(source_book, source))
            both = stackset.load(tmp_path)
            assert not [f for f in stackset.findings(both) if f.key == "platform:ecr.primaryRegion"]


def _moved_hub_fork(root: Path) -> str | None:
    """The checkout's stack files in ``root`` with every hub moved, once, to a spoke all stacks
    share (docs/walkthroughs.md, "Move the hub"): ``accountRegion`` stays where it was, so the hub
    and the account region differ. Returns the new hub, or None when no stack has a spoke both share."""
    configs = {s: plan(s).config for s in STACKS}
    shared = [
        r for r in configs[STACKS[0]].spoke_regions if all(r in c.region_names for c in configs.values())
    ]
    if not shared:
        return None
    for f in dr.cfg.PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(f, root / f.name)
    for s, c in configs.items():
        raw = dr.cfg.read_stack_file(dr.cfg.stack_file(s))
        _write_stack(
            root, s, {**raw, "platform:hubRegion": shared[0], "platform:accountRegion": c.account_region}
        )
    return shared[0]


def test_after_a_hub_move_a_replicas_next_hub_move_leaves_stack_files_the_program_accepts(
    tmp_path: Path,
) -> None:
    """A fork whose hub is not the account region loses its hub: each replica's runbook, then its
    source's own runbook, leaves stack files that load, plan, and pass the stack-set check with
    no error (`platform plan` runs that check, infra/cli.py), for every stack of the pair."""
    from infra import stackset

    hub = _moved_hub_fork(tmp_path)
    if hub is None:
        pytest.skip("no spoke shared by every stack to move the hub to")
    forked = stackset.load(tmp_path)
    replicas = [c for c in forked.values() if not c.builds_images and len(c.region_names) > 1]
    assert replicas, "the example stacks have a replica with spokes"
    for replica in replicas:
        assert replica.hub_region == hub and replica.account_region != hub
        raw = dr.cfg.read_stack_file(dr.cfg.stack_file(replica.stack, tmp_path))
        p = offline.run(replica.stack, flat_config=raw)
        new_hub = p.config.spoke_regions[0]
        book = dr.build(p, hub, new_hub=new_hub, raw=raw, root=tmp_path)
        after = _after_runbook(book, replica.stack, tmp_path)
        # The source's lost primary region stays marked while the pair disagrees.
        assert hub in after["platform:unreachableRegions"]  # type: ignore[operator]
        _write_stack(tmp_path, replica.stack, after)
        offline.run(replica.stack, flat_config=after)
        moved = stackset.load(tmp_path)
        errors = [f for f in stackset.findings(moved) if f.severity == "error"]
        assert not errors, errors
        for source in dr.source_stacks(replica, tmp_path):
            source_config = moved[stackset.file_name(source)]
            if source_config.hub_region != hub:
                continue
            target = dr.source_primary_after(source_config, [hub], new_hub)
            assert moved[stackset.file_name(replica.stack)].ecr.primary_region == target
            source_raw = dr.cfg.read_stack_file(dr.cfg.stack_file(source, tmp_path))
            source_plan = offline.run(source, flat_config=source_raw)
            source_book = dr.build(source_plan, hub, new_hub=target, raw=source_raw, root=tmp_path)
            source_after = _after_runbook(source_book, source, tmp_path)
            _write_stack(tmp_path, source, source_after)
            offline.run(source, flat_config=source_after)
            both = stackset.load(tmp_path)
            assert not [f for f in stackset.findings(both) if f.severity == "error"]
            assert not [f for f in stackset.findings(both) if f.key == "platform:ecr.primaryRegion"]
            # The replica's entry for the source's old primary region now marks nothing: the check
            # says to remove it (docs/dr.md), and once removed, nothing is left to report.
            stale = [f for f in stackset.findings(both) if f.key == "platform:unreachableRegions"]
            if hub == replica.account_region:
                assert not stale, stale
                continue
            assert stale and all("remove it" in f.message and hub in f.message for f in stale), stale
            replica_raw = dr.cfg.read_stack_file(dr.cfg.stack_file(replica.stack, tmp_path))
            kept = [r for r in replica_raw["platform:unreachableRegions"] if r != hub]
            replica_raw["platform:unreachableRegions"] = kept
            if not kept:
                del replica_raw["platform:unreachableRegions"]
            _write_stack(tmp_path, replica.stack, replica_raw)
            assert not stackset.findings(stackset.load(tmp_path))


def test_a_region_outside_the_stack_or_a_hub_move_from_a_spoke_is_refused() -> None:
    p = plan("prod")
    with pytest.raises(dr.cfg.ConfigError, match="--region"):
        dr.build(p, next(r for r in dr.cfg.KNOWN_REGIONS if r not in p.config.region_names))
    spoke, other = p.config.spoke_regions[0], p.config.spoke_regions[1]
    with pytest.raises(dr.cfg.ConfigError, match="--new-hub") as spoke_error:
        dr.build(p, spoke, new_hub=other)
    # The problem is --region (a spoke), not the new hub; the lost spoke is never "surviving".
    assert f"only when --region is the hub ({p.config.hub_region})" in str(spoke_error.value)
    assert f"--region {spoke} is a spoke" in str(spoke_error.value)
    assert "surviving" not in str(spoke_error.value)
    hub = p.config.hub_region
    for bad in (hub, next(r for r in dr.cfg.KNOWN_REGIONS if r not in p.config.region_names)):
        with pytest.raises(dr.cfg.ConfigError, match="surviving region") as hub_error:
            dr.build(p, hub, new_hub=bad)
        listed = str(hub_error.value).rsplit(": ", 1)[1]
        assert listed.split(", ") == [r for r in p.config.region_names if r != hub]


def test_the_command_prints_the_runbook(capsys: pytest.CaptureFixture[str]) -> None:
    spoke = plan("staging").config.spoke_regions[0]
    assert dr.main(["plan", "--stack", "staging", "--region", spoke]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Disaster recovery runbook: rebuild {spoke} (a spoke) of stack staging")
    assert dr.main(["plan", "--stack", "staging", "--region", "mars-1"]) == 2


def _account_wide(p: Plan) -> list[offline.Resource]:
    """IAM (a global service) plus the account's provider: nothing of it lives in one region."""
    return [
        r
        for r in p.resources
        if r.type.startswith("aws:iam/") and p.by_urn()[r.provider or ""].name == "aws-account"
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_every_fixed_name_iam_object_is_declared_through_the_account_provider(stack: str) -> None:
    p = plan(stack)
    index = p.by_urn()
    for r in p.resources:
        if not r.type.startswith("aws:iam/"):
            continue
        name = str(r.inputs.get("name") or r.inputs.get("role") or "")
        # Per-region IAM (node roles, the clusters' own) carries its region in its name and goes
        # with the region; every other IAM object is the account's.
        if any(region in name or r.name.endswith(region) for region in p.config.region_names):
            continue
        provider = index[r.provider or ""]
        assert provider.name == "aws-account", (r.type, r.name, provider.name)
        assert provider.inputs["region"] == p.config.account_region


@pytest.mark.parametrize("stack", STACKS)
def test_a_hub_move_replaces_or_deletes_nothing_account_wide(stack: str) -> None:
    """pulumi/pulumi step_generator.go ``providerChanged`` (v3.259.0): a resource whose provider
    reference changes is replaced when the new provider's DiffConfig says so, and pulumi-aws says
    so when the region differs (pulumi/pulumi-aws#4000). The offline diff marks a provider change
    as a replacement (infra/plan_diff.py): both must find none for the account-wide objects."""
    p = plan(stack)
    account = _account_wide(p)
    assert account, "the stack declares IAM objects through the account provider"
    for new_hub in p.config.spoke_regions:
        moved, created, deleted = dr.hub_move(p, new_hub)
        touched = {r.urn for r in created} | {r.urn for r in deleted}
        after = moved.by_urn()
        for r in account:
            assert r.urn not in touched, (new_hub, r.urn)
            assert r.urn in after and after[r.urn].provider == r.provider, (new_hub, r.urn)
        assert not [r for r in created + deleted if r.type.startswith("aws:iam/")], new_hub


def test_the_command_writes_the_backfill_script_and_refuses_a_hub_that_stays_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = plan("prod")
    spoke = p.config.spoke_regions[0]
    script = tmp_path / "backfill.sh"
    assert dr.main(["plan", "--stack", "prod", "--region", spoke, "--backfill-script", str(script)]) == 0
    assert script.read_text() == dr.backfill_script(p.config, spoke)
    bash = shutil.which("bash")
    if bash is not None:
        assert subprocess.run([bash, "-n", str(script)], check=False).returncode == 0
    assert dr.main(["plan", "--stack", "prod", "--region", p.config.hub_region, "--stays-down"]) == 2
    assert "--new-hub" in capsys.readouterr().err
    # A region that leaves the stack gets no backfill: the script is refused, nothing written.
    leaving = tmp_path / "leaving.sh"
    for how in (["--stays-down"], ["--new-hub", spoke]):
        where = spoke if how == ["--stays-down"] else p.config.hub_region
        argv = ["plan", "--stack", "prod", "--region", where, *how, "--backfill-script", str(leaving)]
        assert dr.main(argv) == 2
        assert "only for a region that is rebuilt" in capsys.readouterr().err
        assert not leaving.exists()
    # The runbook names the saved script, never pastes it.
    text = dr.render(dr.build(p, spoke))
    assert f"--backfill-script backfill-prod-{spoke}.sh" in text and "#!/usr/bin/env bash" not in text


FAKE_AWS = """#!/bin/bash
# Secrets Manager as the runbook's check sees it: $SECRETS holds "region name primary" lines.
echo "$*" >> "$CALLS"
case "$*" in *"--profile "*-unknown*) echo "The config profile could not be found" >&2; exit 255;; esac
region=$(sed -n 's/.*--region \\([^ ]*\\).*/\\1/p' <<< "$*")
id=$(sed -n 's/.*--secret-id \\([^ ]*\\).*/\\1/p' <<< "$*")
line=$(grep -F "$region $id " "$SECRETS" | head -n 1)
[ -n "$line" ] || { echo "ResourceNotFoundException: $id in $region" >&2; exit 254; }
case "$*" in
  *describe-secret*) echo "${line##* }" ;;
  *stop-replication-to-replica*) echo "arn:aws:secretsmanager:$region:1:secret:$id-AbCdEf" ;;
esac
"""


def _run_secrets_check(
    action: dr.ArgoCdSecrets, secrets: list[str], tmp_path: Path
) -> tuple[int, str, list[str]]:
    """Run the printed check against a fake ``aws`` that knows ``secrets`` ("region name primary")."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "aws"
    fake.write_text(FAKE_AWS)
    fake.chmod(0o755)
    (tmp_path / "secrets").write_text("".join(f"{s}\n" for s in secrets))
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SECRETS": str(tmp_path / "secrets"), "CALLS": str(calls)}
    done = subprocess.run(
        ["bash", "-c", action.command()], env=env, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr, calls.read_text().splitlines()


def _secrets_checks(stack: str, region: str, new_hub: str | None) -> list[dr.ArgoCdSecrets]:
    book = dr.build(plan(stack), region, new_hub=new_hub)
    return [a for a in book.actions if isinstance(a, dr.ArgoCdSecrets)]


@pytest.mark.parametrize("stack", [s for s in STACKS if plan(s).config.spoke_regions])
def test_a_hub_move_checks_argo_cds_secrets_in_the_new_hub_and_promotes_lost_primaries(
    stack: str, tmp_path: Path
) -> None:
    """The hub move's check reads Argo CD's secrets (infra/addons.py argocd_secret_names) in the new
    hub's region, as the stack's profile, promotes a replica whose primary is in the lost hub's
    region (StopReplicationToReplica in the replica's region) and stops, without touching the
    operator's shell, on a missing one."""
    from infra import addons

    config = plan(stack).config
    old, new = config.hub_region, config.spoke_regions[0]
    checks = _secrets_checks(stack, old, new)
    if new not in config.addon_regions("external-secrets"):
        assert checks == []
        return
    (check,) = checks
    names = addons.argocd_secret_names(config)
    assert (check.region, check.names, old in check.lost) == (new, names, True)
    assert subprocess.run(["bash", "-n", "-c", check.command()], check=False).returncode == 0
    # Day 0's replicas: each is promoted, in the new hub's region only.
    code, out, calls = _run_secrets_check(check, [f"{new} {n} {old}" for n in names], tmp_path)
    assert code == 0, out
    promoted = [c for c in calls if "stop-replication-to-replica" in c]
    assert len(promoted) == len(names) and all(f"--region {new} " in c for c in calls)
    assert all(f"--profile {dr.aws_profile(stack)} " in c for c in calls)
    # Already standalone there (a second run, or created by hand): nothing to promote.
    code, out, calls = _run_secrets_check(check, [f"{new} {n} {new}" for n in names], tmp_path)
    assert code == 0 and not [c for c in calls if "stop-replication" in c], out
    # One missing: the check fails, names it, and runs in a subshell (the shell goes on).
    code, out, _ = _run_secrets_check(check, [f"{new} {n} {old}" for n in names[1:]], tmp_path)
    assert code != 0 and f"missing in {new}: {names[0]}" in out
    # Another error (here: a profile the fake does not know) is quoted, not called "missing".
    denied = dr.ArgoCdSecrets(check.stack + "-unknown", check.region, check.names, check.lost)
    code, out, _ = _run_secrets_check(denied, [f"{new} {n} {old}" for n in names], tmp_path)
    assert code != 0 and "cannot read" in out and "could not be found" in out and "missing" not in out
    wrapped = subprocess.run(
        ["bash", "-c", check.command() + "; echo still-here"],
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "SECRETS": str(tmp_path / "secrets"),
            "CALLS": str(tmp_path / "calls"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert "still-here" in wrapped.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_a_hub_rebuild_checks_argo_cds_secrets_before_the_rebuild_and_promotes_nothing(stack: str) -> None:
    config = plan(stack).config
    book = dr.build(plan(stack), config.hub_region)
    checks = [(i, a) for i, s in enumerate(book.steps) for a in s.actions if isinstance(a, dr.ArgoCdSecrets)]
    if config.hub_region not in config.addon_regions("external-secrets"):
        assert checks == []
        return
    ((index, check),) = checks
    rebuild = next(i for i, s in enumerate(book.steps) if s.title.startswith(f"Rebuild {config.hub_region}"))
    assert index < rebuild and check.region == config.hub_region and check.lost == ()
    assert "stop-replication" not in check.command()


def _surviving_replica_fork(root: Path) -> tuple[str, str, str, str] | None:
    """The checkout's stack files in ``root`` with a replica whose hub is not its image source's:
    (source, replica, the source's hub, a source spoke the replica has too), the replica's hub
    moved to another of its spokes and its ECR primary region pinned to the source's hub."""
    configs = {s: plan(s).config for s in STACKS}
    for f in dr.cfg.PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(f, root / f.name)
    for source, sc in configs.items():
        if not sc.builds_images or "primaryRegion" in (
            dr.cfg.read_stack_file(dr.cfg.stack_file(source)).get("platform:ecr") or {}
        ):
            continue
        hub = sc.hub_region
        for replica in dr.stackset.deploy_readers(sc, configs.values()):
            rc = configs[replica]
            new = next((r for r in sc.spoke_regions if r in rc.region_names), None)
            survivor = next((r for r in rc.region_names if r not in (hub, new)), None)
            if new is None or survivor is None or hub not in rc.region_names:
                continue
            raw = dr.cfg.read_stack_file(dr.cfg.stack_file(replica))
            ecr = dict(raw.get("platform:ecr") or {})
            _write_stack(
                root,
                replica,
                {
                    **raw,
                    "platform:hubRegion": survivor,
                    "platform:accountRegion": rc.account_region,
                    "platform:ecr": {**ecr, "primaryRegion": hub},
                },
            )
            return source, replica, hub, new
    return None


def test_a_source_hub_move_sets_a_surviving_replicas_primary_region_and_pushes_both_files(
    tmp_path: Path,
) -> None:
    """A fork whose replica's hub survives and pins the source's primary region: the source's hub
    move edits the replica's platform:ecr.primaryRegion to the source's new one, its pull request
    commits both stack files, and the pair then passes the stack-set check; the drill runs it (the edit
    is valid, the push commits only what a step edited)."""
    from infra import stackset
    from tests.drill import Cloud, Engine

    found = _surviving_replica_fork(tmp_path)
    if found is None:
        pytest.skip("no replica sharing its source's hub and a spoke of it")
    source, replica, hub, new = found
    assert not [f for f in stackset.findings(stackset.load(tmp_path)) if f.severity == "error"]
    source_raw = dr.cfg.read_stack_file(dr.cfg.stack_file(source, tmp_path))
    book = dr.build(
        offline.run(source, flat_config=source_raw), hub, new_hub=new, raw=source_raw, root=tmp_path
    )
    edits = [a for a in book.actions if isinstance(a, dr.EditStack) and a.stack == replica]
    assert edits and dict(edits[0].set_keys)["platform:ecr"]["primaryRegion"] == new
    (push,) = [a for a in book.actions if isinstance(a, dr.OpenPullRequest)]
    assert push.also == (replica,) and f"Pulumi.{replica}.yaml" in push.command()
    for stack in (source, replica):
        _write_stack(tmp_path, stack, _after_runbook(book, stack, tmp_path))
    both = stackset.load(tmp_path)
    assert not [f for f in stackset.findings(both) if f.key == "platform:ecr.primaryRegion"]
    # The drill, from the fork's files as they were before the runbook.
    _surviving_replica_fork(tmp_path)
    # The replica still lists the lost region: the runbook's stop step runs its runbook first
    # (the drill does not run it), so the stack-set findings naming it at the merge are its own.
    first = frozenset(dr.replicas_still_running(dr.cfg.load_stack_file(source, tmp_path), hub, tmp_path))
    engine = Engine(source, source_raw, Cloud(aws_down={hub}, clusters_down={hub}), tmp_path, first=first)
    for action in book.actions:
        engine.run(action)
    assert engine.checkout[replica]["platform:ecr"]["primaryRegion"] == new  # type: ignore[index]
    # One pull request took both files to main; the freeze was lifted after its merge.
    assert engine.repo.main[replica] == engine.checkout[replica] and engine.repo.main[source] == engine.raw
    assert source not in engine.frozen


def _source_cases() -> list[tuple[str, str, bool]]:
    """(source stack, region, stays down): every region an image source shares with a replica,
    taken out of the source (a spoke kept out; the hub moved)."""
    from infra import stackset

    stacks = stackset.load()
    out: list[tuple[str, str, bool]] = []
    for s in STACKS:
        c = plan(s).config
        readers = [stacks[stackset.file_name(r)] for r in stackset.deploy_readers(c, stacks.values())]
        if len(c.region_names) < 2:
            continue
        for region in c.region_names:
            if any(region in r.region_names for r in readers):
                out.append((s, region, region != c.hub_region))
    return out


@pytest.mark.parametrize(("stack", "region", "stays_down"), _source_cases())
def test_a_source_takes_a_region_out_only_after_its_replicas_and_the_stack_set_agrees(
    stack: str, region: str, stays_down: bool, tmp_path: Path
) -> None:
    """The stack-set check (`make plan`, every runbook's first step) refuses a replica region its
    source does not replicate into: so while a replica still lists the region, the source's
    runbook starts with a stop naming the replica's runbook; after the replica's runbook the stop
    is gone and both stack files pass the check. Taking it out of the source first fails it."""
    from infra import stackset

    p = plan(stack)
    survivors = [r for r in p.config.region_names if r != region]
    new_hub = None if stays_down else survivors[0]
    book = dr.build(p, region, new_hub=new_hub, stays_down=stays_down)
    replicas = dr.replicas_still_running(p.config, region)
    assert replicas
    stops = [s for s in book.steps if s.title.startswith("Stop:")]
    assert [s.title for s in stops] == [f"Stop: {r}'s runbook for {region} comes first" for r in replicas]
    assert book.steps[1] is stops[0]
    for f in dr.cfg.PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    # The wrong order: the source alone.
    _write_stack(tmp_path, stack, _after_runbook(book, stack))
    assert [f for f in stackset.findings(stackset.load(tmp_path)) if f.severity == "error"]
    # The order the stop says: each replica's printed runbook, then the source's, printed again.
    for f in dr.cfg.PROJECT_ROOT.glob("Pulumi*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    for replica in replicas:
        (command,) = stops[
            [s.title for s in stops].index(f"Stop: {replica}'s runbook for {region} comes first")
        ].commands
        args = command.split("#")[0].split()
        replica_hub = args[args.index("--new-hub") + 1] if "--new-hub" in args else None
        replica_book = dr.build(
            plan(replica), region, new_hub=replica_hub, stays_down="--stays-down" in args, root=tmp_path
        )
        stop = stops[[t.title for t in stops].index(f"Stop: {replica}'s runbook for {region} comes first")]
        # The stop takes the replica's runbook's own total, and moves its hub where this one's goes.
        # The same whole minutes as that runbook's printed header (Runbook.minutes).
        assert stop.minutes == replica_book.minutes == round(sum(t.minutes for t in replica_book.steps))
        assert f"about {stop.minutes:g} min" in dr.render(replica_book)
        if replica_hub is not None and new_hub in plan(replica).config.region_names:
            assert replica_hub == new_hub
        # The source's runbook run inside the replica's (both hubs lost) has no stop: the
        # replica's runbook has taken the region out of its own stack file by then. Followed on its
        # own, this runbook then ends at the stop, and its header counts only that far.
        inside = [a for a in replica_book.actions if isinstance(a, dr.SourceRunbook) and a.stack == stack]
        for action in inside:
            assert not [t for t in action.book.steps if t.title.startswith("Stop:")]
        assert stop.ends_here == bool(inside)
        if inside:
            assert book.followed[-1] is stop and "this runbook ends here" in dr.render(book)
            assert book.minutes == round(sum(t.minutes for t in book.steps[: book.steps.index(stop) + 1]))
        _write_stack(tmp_path, replica, _after_runbook(replica_book, replica, tmp_path))
    again = dr.build(p, region, new_hub=new_hub, stays_down=stays_down, root=tmp_path)
    assert not [s for s in again.steps if s.title.startswith("Stop:")]
    _write_stack(tmp_path, stack, _after_runbook(again, stack, tmp_path))
    errors = [f for f in stackset.findings(stackset.load(tmp_path)) if f.severity == "error"]
    assert not errors, errors


@cache
def _book(stack: str, region: str, new_hub: str | None, stays_down: bool) -> dr.Runbook:
    return dr.build(plan(stack), region, new_hub=new_hub, stays_down=stays_down)


def _words(command: str) -> set[str]:
    return set(re.findall(r"[\w.+-]+", re.sub(r"(^|\s)#.*$", "", command, flags=re.M)))


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_the_prerequisites_check_that_every_tool_the_steps_call_is_installed(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """One check in the prerequisites lists exactly the tools the printed steps (and the saved
    backfill script, when a step runs it) call: crane only for the crane copy of the source's
    primary region, kubectl only when a step lists Applications, jq only for a standalone jq (a
    step's, or the crane path's, which reads the newest images as JSON)."""
    book = _book(stack, region, new_hub, stays_down)
    prerequisites, *rest = book.steps
    assert prerequisites.title == "Prerequisites"
    [check] = [c for c in prerequisites.commands if "command -v" in c]
    listed = re.fullmatch(r"for t in ([\w ]+); do .*", check.split("   #")[0])
    assert listed is not None, check
    tools = listed.group(1).split()
    commands = [c for s in rest for c in s.commands] + [c for c in prerequisites.commands if c != check]
    backfill = any(isinstance(a, dr.Backfill) for a in book.actions)
    script = book.backfill_script if backfill and book.backfill_script else ""
    words = set().union(*(_words(c) for c in [*commands, script]))
    for tool in tools:
        assert tool in words, f"{tool} is checked but no step calls it"
    assert ("crane" in tools) == ("crane copy" in script)
    assert ("kubectl" in tools) == any(isinstance(a, dr.ListApplications) for a in book.actions)
    assert ("jq" in tools) == any(
        re.search(r"(^|[;&|]\s*|then )\s*jq ", c, re.M) for c in [*commands, script]
    )
    assert ("gh" in tools) == any("gh " in c for c in commands)
    assert {"aws", "pulumi", "curl", "git"} <= set(tools)


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_every_step_names_the_identity_its_commands_run_as(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """gh runs as a GitHub identity (repository admin, or a token with Variables, Actions,
    Contents and Pull requests write), the pull request's approval as a second person's, the backfill as the image source's profile and role, the deploy job as the stack's
    deploy role through OIDC; prod's wording stays out of a stack whose endpoints are public."""
    from infra import stackset
    from infra.documents import iam

    p = plan(stack)
    config = p.config
    book = _book(stack, region, new_hub, stays_down)
    sources = dr.source_stacks(config)
    image_source = stack if config.builds_images else sources[0]
    source_config = stackset.load()[stackset.file_name(image_source)]
    github = dr.github_identity(config.github.slug)
    for step in book.steps:
        runs_gh = any(re.search(r"(^|[;&|]\s*)gh ", c, re.M) for c in step.commands)
        if any(isinstance(a, dr.Approve) for a in step.actions):
            # The approval is a second person's, under their own identity, never the operator's.
            assert github not in step.runs_from and "their own GitHub identity" in step.runs_from
            assert "neither the author nor the last pusher" in step.runs_from
            continue
        assert (github in step.runs_from) == runs_gh, step.title
        assert "prod's is private" not in step.runs_from
        if any(isinstance(a, dr.Backfill) for a in step.actions):
            assert f"with the {dr.aws_profile(image_source)} profile" in step.runs_from
            assert f"as {source_config.cluster_admin_role_arn}" in step.runs_from
            if source_config.cluster_admin_role_arn != config.cluster_admin_role_arn:
                assert config.cluster_admin_role_arn not in step.runs_from
        if any(isinstance(a, dr.Deploy) for a in step.actions):
            [deploy] = [s for s in iam.role_specs(config) if s.purpose == iam.DEPLOY]
            assert f"as arn:aws:iam::{config.account_id}:role/{deploy.role_name}" in step.runs_from
            assert config.github.deploy_environment in step.runs_from
        hub_cidrs = config.region(new_hub or config.hub_region).public_access_cidrs
        if "'Admit the operator' step added" in step.runs_from:
            assert ("private otherwise" in step.runs_from) == (not hub_cidrs), step.runs_from
            assert all(c in step.runs_from for c in hub_cidrs), step.runs_from
    # The image source account is checked once, and only when it is another profile.
    [prerequisites] = [s for s in book.steps if s.title == "Prerequisites"]
    checked = [c for c in prerequisites.commands if "sts get-caller-identity" in c]
    # ...and each other stack whose hub is lost too (the freeze step asks EKS whether it is back).
    others = dr.hub_lost_stacks(config, sorted({*config.unreachable_regions, region}))
    profiles = {dr.aws_profile(stack), dr.aws_profile(image_source), *(dr.aws_profile(o) for o in others)}
    assert len(checked) == len(profiles)
    assert {re.search(r"--profile (\S+)", c).group(1) for c in checked} == profiles  # type: ignore[union-attr]


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_the_admit_and_runner_notes_say_what_their_steps_do(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """The 'Admit the operator' note claims a targeted update only when the step has one; the
    runner step counts the resources its update targets and names only the workflows whose jobs
    run on this stack's runners."""
    config = plan(stack).config
    book = _book(stack, region, new_hub, stays_down)
    [admit] = [s for s in book.steps if s.title.startswith("Admit the operator")]
    note = " ".join(admit.notes)
    ups = [a for a in admit.actions if isinstance(a, dr.Up)]
    assert ("targeted update" in note) == bool(ups), note
    assert ("no update" in note) == (not ups), note
    admitted = [r for r in config.region_names if naming.cluster_name(config.environment, r) in admit.title]
    cidrs = {c for r in admitted for c in config.region(r).public_access_cidrs}
    assert admitted
    assert ("private otherwise" in note) == (not cidrs), note
    assert all(c in note for c in cidrs), note
    for step in book.steps:
        if not step.title.startswith("Create ") or "runners" not in step.title:
            continue
        [up] = [a for a in step.actions if isinstance(a, dr.Up)]
        text = " ".join(step.notes)
        assert f"the runners' {len(up.targets)} resources" in text
        assert ("deploy-prod.yml" in text) == (config.argocd.sync != "automated"), text
        assert f"up.yml's {stack} job" in text


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_the_backfill_note_says_what_its_scripts_path_copies(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """ECR's replication backfill replicates every image the replication configuration matches
    (README, docs/registry.md): only the crane path skips what the region holds, so only its note
    says the script copies what the region lacks."""
    from infra.documents import ecr as ecr_documents

    book = _book(stack, region, new_hub, stays_down)
    steps = [s for s in book.steps if any(isinstance(a, dr.Backfill) for a in s.actions)]
    assert len(steps) == (1 if book.backfill_script else 0)
    for step in steps:
        note = " ".join(step.notes)
        by_copy = ecr_documents.restored_by_copy(plan(stack).config, region)
        assert by_copy == ("crane copy" in (book.backfill_script or ""))
        assert ("not only those the region lacks" in note) == (not by_copy), note
        assert ("skipped" in note and "TAG..." in note) == by_copy, note


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_the_mark_unreachable_note_names_the_account_provider_when_it_switches_too(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """infra/providers.py gives the account's provider the incident inputs when accountRegion is
    the lost region (docs/dr.md): the note says so exactly then."""
    config = plan(stack).config
    [mark] = [
        s for s in _book(stack, region, new_hub, stays_down).steps if s.title == f"Mark {region} unreachable"
    ]
    note = " ".join(mark.notes)
    assert ("the account's provider" in note) == (config.account_region == region), note


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_listed_global_resources_are_labelled_by_what_they_are(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """A printed resource line says "global IAM" only for an IAM type and "global Route 53" only
    for a Route 53 type; every global type has a label."""
    listed = [
        line.strip()
        for s in _book(stack, region, new_hub, stays_down).steps
        for note in s.notes
        for line in note.splitlines()
        if "(global " in line
    ]
    for line in listed:
        rtype = line.split()[0]
        kind = re.search(r"\((global [^,]+),", line)
        assert kind is not None, line
        assert kind.group(1) == next(k for p, k in dr.GLOBAL_KINDS.items() if rtype.startswith(p)), line
    assert set(dr.GLOBAL_TYPE_PREFIXES) == set(dr.GLOBAL_KINDS)


@pytest.mark.parametrize(("stack", "region", "new_hub", "stays_down"), runbook_cases())
def test_the_deploy_step_takes_its_minutes_from_the_bench_table(
    stack: str, region: str, new_hub: str | None, stays_down: bool
) -> None:
    """Two workflow runs (dry run, deploy) and each region the deploy still reaches, from
    infra/bench.py's rows, rounded to 0.1 min like every step."""
    from infra import bench

    config = plan(stack).config
    deploys = [
        s
        for s in _book(stack, region, new_hub, stays_down).steps
        if any(isinstance(a, dr.Deploy) for a in s.actions)
    ]
    assert len(deploys) == (0 if config.argocd.sync == "automated" else 1)
    rows = dict(bench.TYPICAL_TABLE_ROWS).values()
    assert bench.DEPLOY_RUN_SECONDS in rows and bench.DEPLOY_REGION_SECONDS in rows
    # A region that leaves the stack (stays down, or the hub that moves) leaves regionOrder.
    reached = [r for r in config.deploy.region_order if not ((stays_down or new_hub) and r == region)]
    for step in deploys:
        seconds = 2 * bench.DEPLOY_RUN_SECONDS + len(reached) * bench.DEPLOY_REGION_SECONDS
        assert step.minutes == round(seconds / 60, 1) == round(step.minutes, 1)
    for step in _book(stack, region, new_hub, stays_down).steps:
        assert step.minutes == round(step.minutes, 1), (step.title, step.minutes)


def _both_hubs_lost_cases() -> list[tuple[str, str, str]]:
    """(stack, its hub region, --new-hub): every surviving region of every stack whose hub
    region holds a replica's hub too (both hubs lost: the stop step names the replica's
    --new-hub, and the replica's runbook runs this one inside it with its own)."""
    out: list[tuple[str, str, str]] = []
    for s in STACKS:
        c = plan(s).config
        replicas = dr.replicas_still_running(c, c.hub_region)
        if any(plan(r).config.hub_region == c.hub_region for r in replicas):
            lost = {*c.unreachable_regions, c.hub_region}
            out += [(s, c.hub_region, r) for r in c.region_names if r not in lost]
    return out


@pytest.mark.parametrize(("stack", "region", "new_hub"), _both_hubs_lost_cases())
def test_the_stop_step_and_the_replicas_nested_step_move_this_hub_to_one_region(
    stack: str, region: str, new_hub: str
) -> None:
    """Both hubs lost, this runbook first: its stop step gives the replica's runbook a --new-hub
    and says with which --new-hub that runbook runs this one; the replica's runbook, printed
    with that --new-hub, runs this stack's runbook with exactly that region (dr.paired_hub for
    both). The operator's --new-hub is kept whenever the replica has that region."""
    book = dr.build(plan(stack), region, new_hub=new_hub)
    stops = [s for s in book.steps if s.title.startswith("Stop:") and "runs this one" in s.commands[0]]
    assert stops, [s.title for s in book.steps]
    for stop in stops:
        replica = stop.title.split("'s runbook")[0].removeprefix("Stop: ")
        args = stop.commands[0].split("#")[0].split()
        replica_hub = args[args.index("--new-hub") + 1]
        if new_hub in plan(replica).config.region_names:
            assert replica_hub == new_hub
        nested = [
            a
            for a in dr.build(plan(replica), region, new_hub=replica_hub).actions
            if isinstance(a, dr.SourceRunbook) and a.stack == stack
        ]
        assert len(nested) == 1
        moved_to = (nested[0].book.hub_move or {}).get("newHub")
        assert moved_to is not None and f"--new-hub {moved_to}" in nested[0].command()
        note = " ".join(stop.notes)
        assert f"with --new-hub {moved_to}" in note, note
        assert (f"(not {new_hub}:" in note) == (moved_to != new_hub), note


@pytest.mark.parametrize("stack", STACKS)
def test_a_lost_account_region_outside_the_stack_gets_the_switch_not_a_runbook(stack: str) -> None:
    """A fork's accountRegion outside its regions (docs/dr.md, "The account region alone"): the
    command refuses a runbook for it and says what to do (list it in unreachableRegions of the
    stack file), and once it is listed, that nothing else is; the config accepts it listed."""
    c = plan(stack).config
    elsewhere = next(r for r in dr.cfg.KNOWN_REGIONS if r not in c.region_names)
    raw = dr.cfg.read_stack_file(dr.cfg.stack_file(stack))
    fork = offline.run(stack, flat_config={**raw, "platform:accountRegion": elsewhere})
    with pytest.raises(dr.cfg.ConfigError) as refused:
        dr.build(fork, elsewhere)
    message = str(refused.value)
    assert f'--region: "{elsewhere}"' in message or f"--region: {elsewhere}" in message, message
    assert (
        "accountRegion" in message
        and f"add it to platform:unreachableRegions in Pulumi.{stack}.yaml" in message
    )
    assert all(r in message for r in c.region_names)
    listed = offline.run(
        stack,
        flat_config={**raw, "platform:accountRegion": elsewhere, "platform:unreachableRegions": [elsewhere]},
    )
    assert listed.config.unreachable_regions == (elsewhere,)
    with pytest.raises(dr.cfg.ConfigError, match=r"already .*: nothing else to do"):
        dr.build(listed, elsewhere)
    # Any other region outside the stack is refused as before.
    other = next(r for r in dr.cfg.KNOWN_REGIONS if r not in c.region_names and r != elsewhere)
    with pytest.raises(dr.cfg.ConfigError, match="expected one of the stack's regions"):
        dr.build(fork, other)
