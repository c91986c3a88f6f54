"""A fake Pulumi engine and cloud for the DR drill: the outermost boundary, nothing inside faked.

The program runs for real under the offline engine (infra/offline.py) for every stack-file
version the runbook produces; this module plays the engine's side of ``pulumi refresh``,
``up``, ``state delete`` and ``preview`` over a state, against a cloud in which one region's
AWS endpoints and one cluster's API do not answer. Each rule is a transcription of upstream
behaviour, named where it is used; anything a rule does not cover raises.

* Which operations call a provider, and what ``--target``, ``--target-dependents`` and
  ``--exclude`` select: https://www.pulumi.com/docs/iac/guides/basics/targeted-updates/ ;
  ``pulumi refresh`` configures providers from the state unless ``--run-program``
  (https://www.pulumi.com/docs/iac/operations/stack-management/run-program/); ``pulumi state
  delete`` refuses a resource others depend on or are parented to, and a protected one without
  ``--force`` (https://www.pulumi.com/docs/iac/cli/commands/pulumi_state_delete/); an update
  never deletes or replaces a protected resource (https://www.pulumi.com/docs/iac/concepts/options/protect/).
* A resource whose provider reference changes is replaced when the new provider's DiffConfig
  says so (pulumi/pulumi pkg/resource/deploy/step_generator.go ``providerChanged``, v3.259.0);
  pulumi-aws says so when the region differs (pulumi/pulumi-aws#4000).
* pulumi-aws: a provider with ``allowedAccountIds`` asks STS who the caller is when it is
  configured, in ``stsRegion`` or else its region; IAM is a global endpoint.
* pulumi-kubernetes (provider/pkg/provider/provider.go, v4.32.0): on an unreachable cluster,
  Read returns "deleted" with ``deleteUnreachable`` and fails without it; Delete succeeds
  (state only) with it, except for a Helm Release, whose Delete always fails; Create and
  Update always fail. ``deleteUnreachable`` is the provider input, else the
  ``PULUMI_K8S_DELETE_UNREACHABLE`` environment variable (:func:`delete_unreachable`).
* pulumi-eks registers children under each ``eks:index:Cluster`` (infra.dr.eks_children, from
  nodejs/eks/cluster/cluster.ts): the engine records them, so the program's plan here includes them.
* Where the operator's commands reach: a cluster's Kubernetes API answers the operator's
  workstation only if its endpoint is public and admits the workstation's address
  (https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html); ``aws eks
  update-kubeconfig`` calls DescribeCluster, which fails for a cluster that does not exist; the
  deploy job of deploy-prod.yml is skipped while the stack is frozen, and reads the source stack's
  hub, which admits the stack's hub NAT addresses as of the source's last update (a StackReference).
* The repository (:class:`Repo`): ``main``'s stack files are apart from the checkout's branch.
  The ruleset ``protect-main`` (infra/components/github_repository.py; GitHub docs, available
  rules for rulesets: "Require a pull request before merging") refuses a direct push to main
  (GH013); pushing a ``dr/`` branch starts nothing; the pull request's author and its last pusher
  cannot approve it (``require_last_push_approval``) and any later push dismisses the approval
  (``dismiss_stale_reviews_on_push``); ``gh pr merge`` refuses a pull request without a valid
  approval (BLOCKED: cli/cli 44ee177 pkg/cmd/pr/merge/merge.go ``blockedReason``) and one whose
  head is not the pushed head (``--match-head-commit``). The merge gives main the branch's stack
  files, which must pass the stack-set check (infra.stackset), and is a push to main.
* A push to main starts up.yml, which runs a job for each stack that is not frozen on that
  stack's CodeBuild runners in its hub's region as main's stack file has it (``runs-on:
  codebuild-platform-<stack>-runner-...``, .github/workflows/up.yml). A stack whose hub is in the
  lost region has no runner there: its job stays queued until GitHub cancels it after 24 h (up to
  48 h; GitHub docs, usage limits for self-hosted runners,
  https://docs.github.com/en/actions/hosting-your-own-runners/managing-self-hosted-runners/usage-limits-for-self-hosted-runners),
  holding up.yml's workflow-wide ``pulumi-up`` concurrency group: the drill refuses such a merge,
  unless that stack's own runbook has finished. A freeze is lifted only where main's stack file is
  the one applied (a lift before the merge would let any other merge run the stack from main's old
  file). A source stack's runbook run inside another's (``dr.SourceRunbook``) runs in an engine of
  its own, sharing the repository variables, the checkout's stack files and the branch.
* Secrets Manager (Argo CD's secrets, infra/addons.py ``argocd_secret_names``): day 0 creates
  each in the hub's region with a replica in every other region of the stack (docs/addons.md);
  a replica is readable in its region while its primary's region is down, has the primary's ARN
  with the region changed, and StopReplicationToReplica, called in its region, makes it a
  standalone secret (https://docs.aws.amazon.com/secretsmanager/latest/userguide/replicate-secrets.html,
  .../standalone-secret.html). The hub's Argo CD reads them from its own region (its External
  Secrets store): the deploy and the Applications' check need them there.
* The state tells the truth: an update of a resource whose cloud object is gone fails (not
  found), and after the runbook no resource in the state is gone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import addons, dr, graph, offline, stackset
from infra import config as cfg
from infra.offline import Plan, Resource

K8S_PROVIDER = "pulumi:providers:kubernetes"
AWS_PROVIDER = "pulumi:providers:aws"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


class Unreachable(RuntimeError):
    """The command would stall or fail on an endpoint that does not answer."""


class Refused(RuntimeError):
    """The Pulumi CLI refuses the command (protected resource, a dependent left behind)."""


class Precondition(AssertionError):
    """A step runs before what it needs exists (a cluster, a context, an admitted address, the freeze)."""


def delete_unreachable(provider_inputs: Mapping[str, Any], environment: Mapping[str, str]) -> bool:
    """Whether a Kubernetes provider drops the objects of an unreachable cluster.

    pulumi/pulumi-kubernetes provider/pkg/provider/provider.go (v4.32.0, ``Configure``): the
    provider input ``deleteUnreachable`` ("kubernetes:config:deleteUnreachable") if it is set,
    ``== "true"``; else the environment variable ``PULUMI_K8S_DELETE_UNREACHABLE`` if it exists,
    ``== "true"``; else false.
    """
    given = provider_inputs.get("deleteUnreachable")
    if given is not None:
        return str(given).lower() == "true"
    if "PULUMI_K8S_DELETE_UNREACHABLE" in environment:
        return environment["PULUMI_K8S_DELETE_UNREACHABLE"] == "true"
    return False


@dataclass
class Change:
    op: str  # create, update, replace, delete, drop (refresh/state delete: state only)
    urn: str
    command: str


@dataclass
class Cloud:
    """Which endpoints answer. ``aws_down``: regions whose AWS APIs (STS included) do not answer;
    ``clusters_down``: regions whose cluster API does not answer; ``gone``: URNs whose cloud
    object no longer exists (a region lost with its contents)."""

    aws_down: set[str] = field(default_factory=set)
    clusters_down: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    # The operator workstation's address (the runbook's $OPERATOR_CIDR).
    operator_cidr: str = dr.OPERATOR_CIDR_STANDIN
    # Secrets Manager: (region, secret name) -> the region of its primary; None: as day 0
    # creates them (:func:`day0_secrets`).
    secrets: dict[tuple[str, str], str] | None = None


def day0_secrets(config: cfg.StackConfig, replicas: bool = True) -> dict[tuple[str, str], str]:
    """Argo CD's secrets as docs/addons.md has a person create them on day 0: in the hub's region,
    with a replica in every other region of the stack (``replicas``); none when the hub runs no
    External Secrets."""
    if config.hub_region not in config.addon_regions("external-secrets"):
        return {}
    regions = config.region_names if replicas else (config.hub_region,)
    return {(r, n): config.hub_region for r in regions for n in addons.argocd_secret_names(config)}


OPERATOR, REVIEWER = "operator", "reviewer"


@dataclass
class Repo:
    """The GitHub repository and the runbook's branch. ``main``: origin/main's stack files (from
    ``root``); ``branch``: the stack files as committed on the branch; ``subjects``: the branch's
    commit subjects not on main; ``pushed``: the branch's files as last pushed (``None``: never);
    ``pr``: a pull request is open; ``last_pusher``/``approved_by``: the people (``OPERATOR``,
    ``REVIEWER``)."""

    main: dict[str, dict[str, Any]]
    branch: dict[str, dict[str, Any]] = field(default_factory=dict)
    subjects: list[str] = field(default_factory=list)
    pushed: dict[str, dict[str, Any]] | None = None
    pushed_subjects: int = 0
    pr: bool = False
    author: str | None = None
    last_pusher: str | None = None
    approved_by: str | None = None
    merged: bool = False

    @classmethod
    def of(cls, root: Path) -> Repo:
        names = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        return cls({s: cfg.read_stack_file(cfg.stack_file(s, root)) for s in names})

    def configs(self) -> dict[str, cfg.StackConfig]:
        """main's stack files, loaded, keyed by file name (infra.stackset.load's shape)."""
        return {
            stackset.file_name(s): cfg.from_flat(cfg.as_pulumi_config(raw), s) for s, raw in self.main.items()
        }

    def push_branch(self, by: str) -> None:
        """``git push`` of the branch: starts no up.yml (it runs on pushes to main only); any push
        dismisses the approval and makes ``by`` the last pusher."""
        self.pushed = copy.deepcopy(self.branch)
        self.pushed_subjects = len(self.subjects)
        self.last_pusher = by
        self.approved_by = None

    def approve(self, by: str) -> None:
        if not self.pr:
            raise Precondition("gh pr review --approve: no pull request is open")
        if by in (self.author, self.last_pusher):
            raise Precondition(
                f"gh pr review --approve by {by}: the author ({self.author}) and the last pusher "
                f"({self.last_pusher}) cannot approve (require_last_push_approval)"
            )
        self.approved_by = by


@dataclass(frozen=True)
class DirectPush:
    """The runbook's last step before the pull request (issue 16): commit, ``git push`` to main,
    then lift the freeze. The drill refuses it, as protect-main does."""

    stack: str
    region: str
    lift: dr.Freeze | None = None

    def command(self) -> str:
        lift = f" && {self.lift.command()}" if self.lift is not None else ""
        return f"{dr.Commit(self.stack, self.region).command()} && git push{lift}"


RUNNER_PROJECT = "aws:codebuild/project:Project"
RUNNER_NEEDS_CONNECTION = frozenset({RUNNER_PROJECT, "aws:codebuild/webhook:Webhook"})


class Engine:
    """``root``: the checkout whose stack files the push and the other stacks are read from;
    ``frozen``, ``recovered`` and ``checkout`` are shared with the engine of a source stack's
    runbook run inside this one (:meth:`source_runbook`): the repository variables, and the other
    stacks' stack files as the runbooks have edited them."""

    def __init__(
        self,
        stack: str,
        raw: Mapping[str, Any],
        cloud: Cloud,
        root: Path = cfg.PROJECT_ROOT,
        *,
        frozen: set[str] | None = None,
        recovered: set[str] | None = None,
        checkout: dict[str, dict[str, Any]] | None = None,
        repo: Repo | None = None,
        first: frozenset[str] = frozenset(),
    ) -> None:
        self.stack = stack
        self.raw = copy.deepcopy(dict(raw))
        self.cloud = cloud
        self.root = root
        self._plans: dict[str, Plan] = {}
        healthy = self.program()
        # The state after the last successful `pulumi up`: exactly what the program declares.
        self.state: dict[str, Resource] = {r.urn: copy.deepcopy(r) for r in healthy.resources}
        if cloud.secrets is None:
            cloud.secrets = day0_secrets(healthy.config)
        self.secrets: dict[tuple[str, str], str] = cloud.secrets
        self.regions_of_state: dict[str, str | None] = dict(graph.region_index(healthy))
        self.changes: list[Change] = []
        # PULUMI_K8S_DELETE_UNREACHABLE=true in the environment of the running command.
        self.env_delete_unreachable = False
        # Stacks whose freeze variable is set (the runbook's Freeze action).
        self.frozen: set[str] = frozen if frozen is not None else set()
        # Other stacks whose own runbook has finished (their hub cluster ACTIVE where their stack
        # file puts it, their runners back, their freeze lifted).
        self.recovered: set[str] = recovered if recovered is not None else set()
        self.recovered_at_start = frozenset(self.recovered)
        # Other stacks' stack files as edited in the checkout during the drill.
        self.checkout: dict[str, dict[str, Any]] = checkout if checkout is not None else {}
        # GitHub: main's stack files, the branch, the pull request (shared with nested engines).
        self.repo: Repo = repo if repo is not None else Repo.of(root)
        # Stacks whose own runbook the book's stop step runs before this one (a replica that still
        # runs the region: infra.dr._replicas_first_steps); the drill does not run them, so the
        # stack-set findings naming their file at the merge are theirs to clear, not this merge's.
        self.first = first
        # The engines of the source stacks' runbooks run inside this one.
        self.nested: dict[str, Engine] = {}
        # The regions lost in the incident (down, or come back empty): other stacks' hub runners
        # there are gone until their own runbook brings them back.
        self.lost_regions: set[str] = set(cloud.aws_down | cloud.clusters_down)
        # How many times each resource was created: a re-created cluster has a new endpoint, a
        # re-created Elastic IP a new address.
        self.generation: dict[str, int] = {u: 0 for u in self.state}
        # Kube contexts written: cluster name -> generation of its control plane then.
        self.contexts: dict[str, int] = {}
        # The hub NAT addresses in the stack's outputs, and those the source stacks' hubs admit.
        self.published = self._hub_addresses()
        self.sources_admit = self.published
        # CodeConnections connections created by an update: PENDING until the runbook's
        # AuthorizeConnection (a person, in the console); CreateProject and CreateWebhook fail
        # against them (infra/components/runner.py).
        self.pending_connections: set[str] = set()

    # -- the program ---------------------------------------------------------------------------

    def program(self) -> Plan:
        """What the engine registers: the program's resources and pulumi-eks's children."""
        key = repr(sorted(self.raw.items(), key=lambda kv: kv[0]))
        if key not in self._plans:
            self._plans[key] = dr.with_eks_children(offline.run(self.stack, flat_config=self.raw))
        return self._plans[key]

    def _hub_addresses(self) -> frozenset[tuple[str, int]]:
        plan = self.program()
        hub = plan.config.hub_region
        return frozenset(
            (r.urn, self.generation.get(r.urn, 0))
            for r in plan.of_type("aws:ec2/eip:Eip")
            if plan.region_of(r) == hub and r.urn in self.state
        )

    def _cluster_of(self, region: str) -> Resource | None:
        for r in self.state.values():
            if r.type == dr.EKS_CONTROL_PLANE and self.regions_of_state.get(r.urn) == region:
                return r
        return None

    def _admits_operator(self, region: str) -> bool:
        """The region's cluster endpoint, as the state has it now, admits the operator's address."""
        component = next(
            (
                r
                for r in self.state.values()
                if r.type == dr.EKS_COMPONENT and self.regions_of_state.get(r.urn) == region
            ),
            None,
        )
        if component is None:
            return False
        public = component.inputs.get("endpointPublicAccess")
        return bool(public) and self.cloud.operator_cidr in (component.inputs.get("publicAccessCidrs") or [])

    # -- reachability --------------------------------------------------------------------------

    def _aws_provider_answers(self, provider: Resource) -> bool:
        sts = provider.inputs.get("stsRegion") or provider.inputs.get("region")
        return sts not in self.cloud.aws_down

    def _call(self, r: Resource, provider: Resource | None, verb: str, command: str) -> str:
        """'ok' or 'dropped' (deleteUnreachable); raises Unreachable."""
        if provider is None or not (r.custom or r.remote) or r.is_provider:
            return "ok"  # components and provider resources: the engine alone
        if provider.type == AWS_PROVIDER:
            if not self._aws_provider_answers(provider):
                raise Unreachable(f"{command}: {r.urn}: provider {provider.name} cannot reach STS")
            region = provider.inputs.get("region")
            if region in self.cloud.aws_down and not r.type.startswith(dr.GLOBAL_TYPE_PREFIXES):
                raise Unreachable(f"{command}: {verb} {r.urn} in {region}, whose AWS APIs do not answer")
            return "ok"
        if provider.type == K8S_PROVIDER:
            region = self.regions_of_state.get(provider.urn) or self.program().region_of(provider)
            if region not in self.cloud.clusters_down:
                if not self._admits_operator(str(region)):
                    raise Precondition(
                        f"{command}: {verb} {r.urn}: {region}'s cluster API does not admit the operator's "
                        f"address {self.cloud.operator_cidr}"
                    )
                return "ok"
            environment = {"PULUMI_K8S_DELETE_UNREACHABLE": "true"} if self.env_delete_unreachable else {}
            dropping = delete_unreachable(provider.inputs, environment)
            if verb == "read" and dropping:
                return "dropped"
            if verb == "delete" and dropping and r.type != HELM_RELEASE:
                return "dropped"
            raise Unreachable(f"{command}: {verb} {r.urn} on {region}'s unreachable cluster")
        if provider.type == "pulumi:providers:github":
            return "ok"
        raise NotImplementedError(provider.type)

    def _provider(self, r: Resource, source: Mapping[str, Resource]) -> Resource | None:
        # A packaged component (pulumi-eks's Cluster) calls AWS through its children, with the
        # provider it was given in ``providers``.
        ref = r.provider or (r.providers.get("aws") if r.remote else None)
        if not ref:
            return None
        found = source.get(ref) or self.state.get(ref)
        if found is None:
            raise Refused(f"{r.urn}: its provider {r.provider} is neither declared nor in the state")
        return found

    # -- commands ------------------------------------------------------------------------------

    def run(self, action: dr.Action | DirectPush) -> None:
        """Run one action of the runbook, after checking what it needs."""
        pulumi = isinstance(action, (dr.Refresh, dr.Up, dr.StateDelete, dr.Preview))
        if pulumi and getattr(action, "stack", None) == self.stack and self.stack not in self.frozen:
            raise Precondition(f"{action.command()}: {self.stack} is not frozen (up.yml may write its state)")
        if isinstance(action, dr.EditStack) and action.stack != self.stack:
            # Another stack's file in the checkout (a replica's ECR primary region): it stays valid.
            edited = action.apply(self.raw_of(action.stack), self.cloud.operator_cidr)
            cfg.from_flat(cfg.as_pulumi_config(edited), action.stack)
            self.checkout[action.stack] = edited
        elif isinstance(action, dr.EditStack):
            self.raw = action.apply(self.raw, self.cloud.operator_cidr)
            self.program()  # the edited stack file is valid: the program runs
        elif isinstance(action, dr.AuthorizeConnection):
            self.authorize(action)
        elif isinstance(action, dr.ArgoCdSecrets):
            self.argocd_secrets(action)
        elif isinstance(action, dr.Freeze):
            self.freeze(action)
        elif isinstance(action, dr.Refresh):
            self.refresh(action.targets, action.run_program, action.command(), action.delete_unreachable)
        elif isinstance(action, dr.Up) and action.stack != self.stack:
            self.source_up(action)
        elif isinstance(action, dr.Up):
            self.up(action.targets, action.target_dependents, action.excludes, action.command())
        elif isinstance(action, dr.StateDelete):
            self.state_delete(action.urns, action.target_dependents, action.force, action.command())
        elif isinstance(action, dr.Preview):
            pending = self.pending()
            if pending:
                raise AssertionError(f"preview --expect-no-changes: {pending[:5]}")
        elif isinstance(action, dr.Kubeconfig):
            self.kubeconfig(action)
        elif isinstance(action, dr.ListApplications):
            self._use_context(action.region, action.context, action.command())
            if not self._admits_operator(action.region):
                raise Precondition(f"{action.command()}: {action.region}'s API does not admit the operator")
            self._argocd_reads_its_secrets(action.command())
        elif isinstance(action, dr.Backfill):
            self.backfill(action)
        elif isinstance(action, dr.Deploy):
            self.deploy(action)
        elif isinstance(action, dr.Commit):
            self.commit(action)
        elif isinstance(action, dr.OpenPullRequest):
            self.open_pull_request(action)
        elif isinstance(action, dr.Approve):
            if self.repo.pr or not self.changes_nothing():
                self.repo.approve(action.by)
            # else no pull request was opened: the step is skipped, as its note says
        elif isinstance(action, dr.MergeAndLift):
            self.merge(action)
        elif isinstance(action, DirectPush):
            raise Precondition(
                f"{action.command()}: GH013: repository rule violations: protect-main requires a pull request "
                "(no bypass actor); the freeze stays set"
            )
        elif isinstance(action, dr.SourceRunbook):
            self.source_runbook(action)
        elif isinstance(action, dr.Shell):
            pass  # outside Pulumi: gh run list/cancel, git, writing the backfill script
        else:  # pragma: no cover
            raise NotImplementedError(action)

    def raw_of(self, stack: str) -> dict[str, Any]:
        """``stack``'s stack file as the checkout has it now."""
        if stack == self.stack:
            return self.raw
        if stack not in self.checkout:
            return cfg.read_stack_file(cfg.stack_file(stack, self.root))
        return self.checkout[stack]

    def config_of(self, stack: str) -> cfg.StackConfig:
        return cfg.from_flat(cfg.as_pulumi_config(self.raw_of(stack)), stack)

    def freeze(self, action: dr.Freeze) -> None:
        """``gh variable set`` / ``delete``; a freeze ``unless_recovered`` is not set for a stack
        whose own runbook has finished (its hub ACTIVE and its freeze lifted), as its command says.
        A lift is refused unless main's stack file of that stack is the one applied: lifted before
        the merge, any other merge would run up.yml's job of the stack from main's old file."""
        if action.lift:
            applied = self.raw_of(action.stack)
            if self.repo.main.get(action.stack) != applied:
                raise Precondition(
                    f"{action.command()}: main's Pulumi.{action.stack}.yaml is not the file this runbook "
                    "applied (the pull request is not merged): lifting now lets any push to main run "
                    f"{action.stack}'s job from main's old file"
                )
            self.frozen.discard(action.stack)
        elif (
            action.unless_recovered is None
            or action.stack not in self.recovered
            or action.stack in self.frozen
        ):
            self.frozen.add(action.stack)

    def source_runbook(self, action: dr.SourceRunbook) -> None:
        """A source stack's own runbook, run inside this one while its freeze is set: its actions
        run in an engine of their own against the same lost region, with the same repository
        variables and checkout. Skipped (its command says so) when the stack is not frozen."""
        subject = dr.commit_subject(action.stack, action.region)
        if action.stack not in self.frozen or subject in self.repo.subjects:
            return
        book = action.book
        own = dr.with_eks_children(offline.run(action.stack, flat_config=self.raw_of(action.stack)))
        if book.kind == dr.REBUILD:
            region_urns = {r.urn for r in dr.region_resources(own, book.region)}
            index = own.by_urn()
            cloud = Cloud(
                clusters_down={book.region},
                gone={u for u in region_urns if index[u].custom or index[u].remote},
                operator_cidr=self.cloud.operator_cidr,
            )
        else:
            cloud = Cloud(
                aws_down={book.region}, clusters_down={book.region}, operator_cidr=self.cloud.operator_cidr
            )
        inner = Engine(
            action.stack,
            self.raw_of(action.stack),
            cloud,
            self.root,
            frozen=self.frozen,
            recovered=self.recovered,
            checkout=self.checkout,
            repo=self.repo,
        )
        inner.lost_regions |= self.lost_regions
        self.nested[action.stack] = inner
        for a in book.actions:
            inner.run(a)
        # Finished: nothing left to apply and its commit on this branch (its freeze stays set
        # until this runbook's merge lifts it).
        if inner.pending() or subject not in self.repo.subjects:
            raise AssertionError(f"{action.command()}: {action.stack}'s runbook did not finish")
        self.checkout[action.stack] = inner.raw
        self.recovered.add(action.stack)

    def kubeconfig(self, action: dr.Kubeconfig) -> None:
        """``aws eks update-kubeconfig``: EKS DescribeCluster in the cluster's region."""
        if action.stack != self.stack:
            return  # another stack's cluster, outside the incident
        cluster = self._cluster_of(action.region)
        if action.region in self.cloud.aws_down:
            raise Precondition(f"{action.command()}: {action.region}'s EKS API does not answer")
        if cluster is None or cluster.urn in self.cloud.gone:
            raise Precondition(f"{action.command()}: {action.cluster} does not exist yet")
        self.contexts[action.cluster] = self.generation.get(cluster.urn, 0)

    def _use_context(self, region: str, context: str, command: str) -> None:
        cluster = self._cluster_of(region)
        if cluster is None or cluster.urn in self.cloud.gone or region in self.cloud.clusters_down:
            raise Precondition(f"{command}: {region}'s cluster does not answer")
        if self.contexts.get(context) != self.generation.get(cluster.urn, 0):
            raise Precondition(f"{command}: no kube context {context} for the cluster as it is now")

    def backfill(self, action: dr.Backfill) -> None:
        """The backfill copies into the region's repositories (they must exist) from the image
        source's registry in its primary region (it must exist too)."""
        repositories = [
            r
            for r in self.program().of_type("aws:ecr/repository:Repository")
            if self.program().region_of(r) == action.region
        ]
        missing = [r.urn for r in repositories if r.urn not in self.state or r.urn in self.cloud.gone]
        if not repositories or missing or action.region in self.cloud.aws_down:
            raise Precondition(
                f"{action.command()}: {action.region}'s repositories do not exist: {missing[:3]}"
            )
        # It reads the image source's registry in that stack's primary region (StartReplicationBackfill
        # there, or crane from it: docs/registry.md): lost too, it exists again only once the
        # source's own runbook has run.
        config = self.program().config
        if not config.builds_images:
            source = next(iter(dr.source_stacks(config, self.root)), None)
            if source is not None:
                primary = self.config_of(source).ecr.primary_region
                if primary in self.lost_regions and source not in self.recovered:
                    raise Precondition(
                        f"{action.command()}: {source}'s registry in {primary} is lost and its runbook has not run"
                    )

    def authorize(self, action: dr.AuthorizeConnection) -> None:
        """A person authorizes the connection named ``action.name`` in ``action.region``."""
        found = [
            u
            for u in self.pending_connections
            if self.state[u].inputs.get("name") == action.name
            and self.regions_of_state.get(u) == action.region
        ]
        if not found or action.region in self.cloud.aws_down:
            raise Precondition(f"{action.command()}: no pending connection {action.name} in {action.region}")
        self.pending_connections -= set(found)

    def argocd_secrets(self, action: dr.ArgoCdSecrets) -> None:
        """The runbook's check: DescribeSecret in ``action.region`` for each name (a missing one
        stops the step); a replica whose primary is in a lost region is promoted there."""
        if action.region in self.cloud.aws_down:
            raise Unreachable(f"{action.command()}: Secrets Manager in {action.region} does not answer")
        for name in action.names:
            primary = self.secrets.get((action.region, name))
            if primary is None:
                raise Precondition(f"{action.command()}: {name} does not exist in {action.region}")
            if primary in action.lost:
                self.secrets[(action.region, name)] = action.region

    def _argocd_reads_its_secrets(self, command: str) -> None:
        """Argo CD on the stack's hub, as the state has it now, reads its repository credentials
        and notification keys through External Secrets from Secrets Manager in the hub's region."""
        config = self.program().config
        hub = config.hub_region
        if hub not in config.addon_regions("external-secrets"):
            return
        missing = [
            n
            for n in addons.argocd_secret_names(config)
            if (hub, n) not in self.secrets or hub in self.cloud.aws_down
        ]
        if missing:
            raise Precondition(
                f"{command}: Argo CD on {hub} cannot read {missing} from Secrets Manager in {hub}"
            )

    def runners_ready(self) -> bool:
        """The hub's runners exist (the program declares and the state holds the CodeBuild
        project) and their connection is authorized."""
        projects = self.program().of_type(RUNNER_PROJECT)
        return (
            not self.pending_connections
            and bool(projects)
            and all(r.urn in self.state and r.urn not in self.cloud.gone for r in projects)
        )

    def deploy(self, action: dr.Deploy) -> None:
        """deploy-prod.yml's job: skipped while frozen; runs on the hub's runners, which need
        their connection authorized; reads the source stacks' hubs, which must admit this
        stack's current hub NAT addresses."""
        if action.stack in self.frozen:
            raise Precondition(f"{action.command()}: the job is skipped while {action.stack} is frozen")
        if not self.runners_ready():
            raise Precondition(
                f"{action.command()}: {action.stack}'s hub runners do not exist or their connection is PENDING"
            )
        self._argocd_reads_its_secrets(action.command())
        if dr.source_stacks(self.program().config, self.root) and self.sources_admit != self.published:
            raise Precondition(
                f"{action.command()}: the source stack's hub still admits the old hub addresses of {self.stack}"
            )

    def commit(self, action: dr.Commit) -> None:
        """``git commit`` of the stack file(s) on the branch (empty if unchanged)."""
        for other in action.also:
            if other not in self.checkout:
                raise AssertionError(f"{action.command()}: commits Pulumi.{other}.yaml, which no step edited")
        for s in (action.stack, *action.also):
            self.repo.branch[s] = copy.deepcopy(self.raw_of(s))
        self.repo.subjects.append(action.subject)

    def changes_nothing(self) -> bool:
        """The checkout's stack files, committed or not, are main's (dr.main_holds):
        no pull request is opened, none is merged."""
        stacks = {self.stack, *self.checkout, *self.repo.branch}
        return all(self.repo.main.get(s) == self.raw_of(s) for s in stacks)

    def open_pull_request(self, action: dr.OpenPullRequest) -> None:
        """Commit, push the branch (nothing runs), open the pull request."""
        self.commit(action.commit)
        if self.changes_nothing():
            return  # nothing pushed, no pull request (its command says so)
        self.repo.push_branch(OPERATOR)
        self.repo.pr, self.repo.author = True, OPERATOR

    def merge(self, action: dr.MergeAndLift) -> None:
        """``gh pr merge --squash --match-head-commit``, the MERGED check, then the lifts in order.
        The merge is refused without a valid approval (BLOCKED) or when the branch's head is not
        the pushed one; main then takes the branch's stack files, which must pass the stack-set
        check; the merge is a push to main (up.yml, :meth:`_up_yml_on_main`); then the lifts."""
        repo = self.repo
        command = action.command()
        if not repo.pr and self.changes_nothing():
            # Nothing to merge: main holds the applied files. This runbook pushes nothing, but
            # once its freeze is lifted the next push to main (anyone's) runs up.yml as a merge
            # would: every stack that is not frozen then needs its runners.
            self._up_yml_on_main(command)
            for lift in action.lifts:
                self.freeze(lift)
            return
        if not repo.pr or repo.pushed is None:
            raise Precondition(f"{command}: no pull request is open")
        if repo.approved_by is None:
            raise Precondition(
                f"{command}: BLOCKED: the base branch policy prohibits the merge (not approved)"
            )
        if repo.pushed_subjects != len(repo.subjects):
            raise Precondition(f"{command}: the pull request's head is not HEAD (--match-head-commit)")
        repo.main.update(copy.deepcopy(repo.pushed))
        errors = [
            f
            for f in stackset.findings(repo.configs())
            if f.severity == "error" and not {stackset.file_name(s) for s in self.first} & set(f.files)
        ]
        if errors:
            raise Precondition(f"{command}: main fails the stack-set check: {[f.message for f in errors]}")
        repo.merged, repo.pr = True, False
        repo.subjects.clear()
        self._up_yml_on_main(command)
        for lift in action.lifts:
            self.freeze(lift)

    def _up_yml_on_main(self, command: str) -> None:
        """A push to main: up.yml runs a job for every stack of main that is not frozen, on that
        stack's runners in its hub's region as main's stack file has it. This stack's runners must
        exist (with an authorized connection) there; another stack's runners are gone with a lost
        region until its own runbook has finished."""
        for _, config in sorted(self.repo.configs().items()):
            other = config.stack
            if other in self.frozen:
                continue  # its job is skipped (its `if:` checks its freeze variable)
            hub = config.hub_region
            if other == self.stack:
                ready = self.runners_ready() and hub not in self.cloud.aws_down
            else:
                ready = hub not in self.lost_regions or other in self.recovered
            if not ready:
                raise Precondition(
                    f"{command}: up.yml's job for {other} waits for a runner in {hub}, where it "
                    f"never gets one ({other} is not frozen); the run holds the pulumi-up group"
                )

    def source_up(self, action: dr.Up) -> None:
        """A targeted update of a source stack's hub cluster: it reads this stack's published
        hub addresses (StackReference, read on every update) and admits them."""
        if action.stack not in dr.source_stacks(self.program().config, self.root):
            raise NotImplementedError(f"an update of {action.stack} in {self.stack}'s runbook")
        if not action.targets or action.target_dependents or action.excludes:
            raise AssertionError(f"{action.command()}: expected a targeted update without dependents")
        # The source stack's regions are the same AWS regions: a target there must answer. Its
        # program as its stack file is now in the checkout (after its own runbook, if it ran).
        regions = {
            **graph.region_index(
                offline.run(
                    action.stack, flat_config=cfg.read_stack_file(cfg.stack_file(action.stack, self.root))
                )
            ),
            **graph.region_index(offline.run(action.stack, flat_config=self.raw_of(action.stack))),
        }
        down = sorted({r for u in action.targets if (r := regions.get(u)) is not None} & self.cloud.aws_down)
        if down:
            raise Precondition(f"{action.command()}: {action.stack}'s hub in {down} does not answer")
        self.sources_admit = self.published

    def refresh(
        self, targets: Iterable[str], run_program: bool, command: str, env_delete_unreachable: bool = False
    ) -> None:
        targets = tuple(targets)
        if not targets:
            # `pulumi refresh` without --target is the whole stack: every resource is read,
            # the lost region's through endpoints that do not answer.
            raise Refused(f"{command}: no --target, the whole stack would be refreshed")
        declared = {r.urn: r for r in self.program().resources} if run_program else {}
        for urn in targets:
            r = self.state.get(urn)
            if r is None:
                continue
            # Only a targeted provider takes the program's new inputs; an untargeted one is
            # loaded from its old state inputs (pulumi v3.259.0 step_generator.go
            # loadResourceProvider, providers/registry.go Same).
            provider = self._provider(r, {u: p for u, p in declared.items() if u in targets})
            self.env_delete_unreachable = env_delete_unreachable
            try:
                outcome = self._call(r, provider, "read", command)
            finally:
                self.env_delete_unreachable = False
            if outcome == "dropped" or urn in self.cloud.gone:
                self._forget(urn, "drop", command)

    def _forget(self, urn: str, op: str, command: str) -> None:
        del self.state[urn]
        self.changes.append(Change(op, urn, command))

    def state_delete(self, urns: Iterable[str], target_dependents: bool, force: bool, command: str) -> None:
        # Every URN is resolved before anything is deleted; one missing fails the whole command
        # (pulumi v3.259.0 pkg/cmd/pulumi/state/state_delete.go runStateDeleteResources,
        # io.go locateStackResource: resourceNotFoundError).
        urns = list(urns)
        missing = [u for u in urns if u not in self.state]
        if missing:
            raise Refused(f"{command}: not in the state: {missing[:3]}")
        chosen = set(urns)
        if target_dependents:
            chosen = graph.closure(chosen, self._state_dependents())
        for urn in chosen:
            if self.state[urn].protect and not force:
                raise Refused(f"{command}: {urn} is protected")
        left = set(self.state) - chosen
        for urn in left:
            if graph.edges(self.state[urn]) & chosen:
                raise Refused(f"{command}: {urn} depends on a resource being deleted")
        for urn in sorted(chosen):
            self._forget(urn, "drop", command)

    def _state_dependents(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in self.state.values():
            for d in graph.edges(r):
                out.setdefault(d, set()).add(r.urn)
        return out

    def plan_up(
        self, targets: Iterable[str], target_dependents: bool, excludes: Iterable[str]
    ) -> list[tuple[str, Resource, Resource | None]]:
        """What ``pulumi up`` would do: (op, new or old resource, old resource)."""
        desired = self.program()
        want = {r.urn: r for r in desired.resources}
        chosen: set[str] | None = None
        if targets:
            chosen = set(targets)
            if target_dependents:
                chosen = graph.closure(chosen, graph.dependents(desired)) | graph.closure(
                    chosen & set(self.state), self._state_dependents()
                )
        excluded = set(excludes)
        ops: list[tuple[str, Resource, Resource | None]] = []
        touched: set[str] = set()
        for r in desired.resources:  # declaration order: dependencies first
            if r.urn in excluded or (chosen is not None and r.urn not in chosen):
                continue
            old = self.state.get(r.urn)
            if old is None:
                ops.append(("create", r, None))
            elif old.provider != r.provider and self._provider_forces_replace(old, r, want):
                ops.append(("replace", r, old))
            elif _comparable(old) != _comparable(r) or (_data_edges(r) & touched and (r.custom or r.remote)):
                # A dependency created anew has new outputs (an endpoint, a CA, an ARN): the
                # offline mocks derive them from the inputs, so they look the same here.
                ops.append(("update", r, old))
                continue
            else:
                # A "same" step still records the resource's new dependencies in the state.
                ops.append(("same", r, old))
                continue
            touched.add(r.urn)
        # Deletes run dependents first: the reverse of the order resources were recorded in.
        for urn, old in reversed(list(self.state.items())):
            if urn in want or urn in excluded or (chosen is not None and urn not in chosen):
                continue
            ops.append(("delete", old, old))
        return ops

    def pending(self) -> list[tuple[str, str]]:
        """What a whole-stack ``pulumi up`` would change: (op, URN)."""
        return [(op, r.urn) for op, r, _ in self.plan_up((), False, ()) if op != "same"]

    def _provider_forces_replace(self, old: Resource, new: Resource, want: Mapping[str, Resource]) -> bool:
        old_p, new_p = self.state.get(old.provider or ""), want.get(new.provider or "")
        if old_p is None or new_p is None or old_p.type != new_p.type:
            return True
        if new_p.type == AWS_PROVIDER:
            return old_p.inputs.get("region") != new_p.inputs.get("region")
        return True

    def up(
        self, targets: Iterable[str], target_dependents: bool, excludes: Iterable[str], command: str
    ) -> None:
        want = {r.urn: r for r in self.program().resources}
        for op, r, old in self.plan_up(targets, target_dependents, excludes):
            if op == "same":
                self.state[r.urn] = copy.deepcopy(r)
                continue
            if op in ("delete", "replace") and old is not None and old.protect:
                raise Refused(f"{command}: {op} of protected {old.urn}")
            if op == "update" and r.urn in self.cloud.gone and (r.custom or r.remote) and not r.is_provider:
                raise Refused(f"{command}: update {r.urn}: not found (the state says it exists, it does not)")
            if (
                op in ("create", "update", "replace")
                and r.type in RUNNER_NEEDS_CONNECTION
                and self.pending_connections
            ):
                raise Refused(f"{command}: {op} {r.urn}: the runners' connection is PENDING")
            if op in ("create", "update", "replace"):
                self._call(r, self._provider(r, want), op, command)
            if op in ("create", "replace") and r.type == dr.RUNNER_CONNECTION:
                self.pending_connections.add(r.urn)
            if op in ("create", "replace"):
                self.cloud.gone.discard(r.urn)
                self.generation[r.urn] = self.generation.get(r.urn, -1) + 1
            if op in ("delete", "replace") and old is not None:
                outcome = self._call(old, self._provider(old, self.state), "delete", command)
                if op == "delete":
                    self._forget(old.urn, "delete" if outcome == "ok" else "drop", command)
                    continue
            self.state[r.urn] = copy.deepcopy(r)
            self.regions_of_state[r.urn] = self.program().region_of(r)
            self.changes.append(Change(op, r.urn, command))
            if r.type == dr.EKS_CONTROL_PLANE and op in ("create", "replace"):
                # A new cluster answers: its region's Kubernetes endpoint is back.
                self.cloud.clusters_down.discard(self.program().region_of(r) or "")
        self.published = self._hub_addresses()


def _data_edges(r: Resource) -> set[str]:
    deps = set(r.dependencies)
    for urns in r.property_dependencies.values():
        deps.update(urns)
    return deps


def _comparable(r: Resource) -> tuple[Any, ...]:
    return (r.type, r.provider, r.parent, r.protect, r.inputs)
