"""Release records: a GitHub deployment per environment and region for every prod deploy.

The deploy command (:mod:`infra.deploy`) calls a :class:`Records` with four verbs and nothing
else; this module turns them into GitHub REST calls:

* :meth:`Records.queued` (a region the run is going to sync) creates a deployment
  ``POST /repos/{owner}/{repo}/deployments`` with ``environment`` ``<env>/<region>``
  (e.g. ``prod/us-east-1``), ``ref`` the Git commit the sync pins, ``payload`` the image, its tag,
  the Application, its repository and revision, and the deploy id, then the status ``queued``.
  The deployment is created in the workflow's repository (``GITHUB_REPOSITORY``) and GitHub
  resolves ``ref`` there: when the Application's ``repoURL`` is another repository
  (:func:`same_repository`, https/ssh/scp forms and ``.git`` alike), its commit is not a ref of
  this one, so the record is made on the workflow's commit (``GITHUB_SHA``) and the app's
  revision is in the payload and the description;
* :meth:`Records.in_progress` (the sync was requested) adds the status ``in_progress``;
* :meth:`Records.finished` adds ``success`` (Synced and Healthy on the verified image),
  ``failure`` (sync failed, Degraded, timed out, refused at its turn) or ``error`` (the run
  stopped before or around it: API error, interrupted, not started after an earlier failure).

GitHub's rules, from the REST reference (https://docs.github.com/en/rest/deployments/deployments
and https://docs.github.com/en/rest/deployments/statuses, API version 2022-11-28):

* ``auto_merge`` defaults to true (GitHub would try to merge the default branch into ``ref``) and
  ``required_contexts`` defaults to *every* commit status context (the deployment is refused with
  409 unless all are green): the deploy records what already happened, so both are switched off;
* a status ``description`` is at most 140 characters;
* states: ``error``, ``failure``, ``inactive``, ``in_progress``, ``queued``, ``pending``, ``success``;
* the token needs the repository permission ``deployments: write`` (fine-grained tokens and
  ``GITHUB_TOKEN`` alike: https://docs.github.com/en/actions/security-for-github-actions/security-guides/automatic-token-authentication#permissions-for-the-github_token).

A record is evidence, not a gate: when GitHub cannot be reached or refuses, the deploy prints a
warning and goes on (the deploy itself is recorded in Argo CD's history either way). Which token:
:func:`from_environment` (``GITHUB_TOKEN`` and ``GITHUB_REPOSITORY``; in ``deploy-prod.yml`` the
job's own short-lived token, never a stored key).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import urllib3

from infra.deploy_model import Outcome

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
DESCRIPTION_LIMIT = 140
TASK = "deploy"

QUEUED = "queued"
IN_PROGRESS = "in_progress"
SUCCESS = "success"
FAILURE = "failure"
ERROR = "error"
STATES = frozenset({"error", "failure", "inactive", "in_progress", "queued", "pending", "success"})

# Which GitHub state closes each deploy outcome.
FINAL_STATES: dict[Outcome, str] = {
    Outcome.SYNCED: SUCCESS,
    Outcome.UNCHANGED: SUCCESS,
    Outcome.FAILED: FAILURE,
    Outcome.DEGRADED: FAILURE,
    Outcome.TIMED_OUT: FAILURE,
    # A canary the analysis aborted (and rolled back): the release failed in that region.
    Outcome.ABORTED: FAILURE,
    # A canary paused on an Inconclusive analysis: not released there until a person acts.
    Outcome.INCONCLUSIVE: FAILURE,
    Outcome.REFUSED: FAILURE,
    Outcome.API_ERROR: ERROR,
    Outcome.INTERRUPTED: ERROR,
    Outcome.NOT_STARTED: ERROR,
    Outcome.WOULD_SYNC: ERROR,
}

_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# scp-like Git URLs (``git@github.com:owner/name.git``): no scheme, ``host:path``.
_SCP_URL = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^\s]+)$")
DEFAULT_SERVER_URL = "https://github.com"


def repository_of(url: str | None) -> tuple[str, str] | None:
    """``(host, owner/name)``, lower-cased, of a Git URL in the forms Argo CD takes for a GitHub
    repository: ``https://host/owner/name(.git)``, ``ssh://git@host(:port)/owner/name(.git)`` and
    scp-like ``git@host:owner/name(.git)``; None when it names no ``owner/name``. GitHub names
    are case-insensitive; the port and user are not part of the repository."""
    if not url:
        return None
    text = url.strip()
    scp = _SCP_URL.match(text) if "://" not in text else None
    if scp:
        host, path = scp.group("host"), scp.group("path")
    else:
        parsed = urlsplit(text)
        if not parsed.scheme or not parsed.hostname:
            return None
        host, path = parsed.hostname, parsed.path
    parts = [part for part in path.strip("/").split("/") if part]
    if len(parts) != 2:
        return None
    owner, name = parts
    if name.lower().endswith(".git"):
        name = name[: -len(".git")]
    return host.lower(), f"{owner}/{name}".lower()


def revision_repository(app: Mapping[str, Any]) -> str | None:
    """The ``repoURL`` of the source whose commit :func:`infra.deploy_model.sync_revision` returns:
    the single ``spec.source`` (``status.sync.revision`` is its commit), else the first of
    ``spec.sources`` with a ``targetRevision``."""
    spec = app.get("spec") or {}
    source = spec.get("source")
    if isinstance(source, Mapping) and not spec.get("sources"):
        url = source.get("repoURL")
        return str(url) if url else None
    for item in spec.get("sources") or []:
        if isinstance(item, Mapping) and item.get("targetRevision"):
            url = item.get("repoURL")
            return str(url) if url else None
    return None


def same_repository(repo_url: str | None, repository: str, server_url: str = DEFAULT_SERVER_URL) -> bool:
    """Whether the Application's Git ``repo_url`` is the repository the records are written to
    (``owner/name`` on ``server_url``, the workflow's ``GITHUB_SERVER_URL``)."""
    mine = repository_of(f"{server_url.rstrip('/')}/{repository}")
    return mine is not None and repository_of(repo_url) == mine


def environment_name(environment: str, region: str) -> str:
    """The GitHub environment of one region's records: ``<env>/<region>``, e.g. ``prod/us-east-1``."""
    return f"{environment}/{region}"


def short(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """``text`` cut to GitHub's description limit (140 characters), with an ellipsis if cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Release:
    """What one region's record says was deployed."""

    region: str
    application: str
    image: str  # repository path, tag and digest, as the deploy verified it
    tag: str | None
    ref: str | None  # the Git commit the sync pins (the Application's status.sync.revision)
    deploy_id: str
    verified: str
    repo_url: str | None = None  # the Git repository ``ref`` is a commit of (spec.source.repoURL)

    def payload(self) -> dict[str, str]:
        return {
            "application": self.application,
            "image": self.image,
            "imageTag": self.tag or "",
            "deployId": self.deploy_id,
            "verified": short(self.verified, 500),
            "appRepository": self.repo_url or "",
            "appRevision": self.ref or "",
        }


class Records(Protocol):
    """The deploy's whole interface to release records."""

    def queued(self, release: Release) -> None: ...

    def in_progress(self, region: str, detail: str) -> None: ...

    def finished(self, region: str, outcome: Outcome, detail: str) -> None: ...

    @property
    def warnings(self) -> list[str]: ...


class NoRecords:
    """Records switched off (no GitHub token, or a dry run): every call does nothing."""

    def __init__(self) -> None:
        self._warnings: list[str] = []

    def queued(self, release: Release) -> None:
        return None

    def in_progress(self, region: str, detail: str) -> None:
        return None

    def finished(self, region: str, outcome: Outcome, detail: str) -> None:
        return None

    @property
    def warnings(self) -> list[str]:
        return self._warnings


class GitHubError(Exception):
    """A GitHub REST call failed (``status`` 0: no answer)."""

    def __init__(self, what: str, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"GitHub {what} failed ({f'HTTP {status}' if status else 'unreachable'}): {message}")


@dataclass
class GitHubApi:
    """The two REST calls the records need, over urllib3 (already a dependency of the kube client)."""

    repository: str  # owner/name
    token: str
    api_url: str = API_URL
    timeout: float = 10.0
    _pool: urllib3.PoolManager = field(default_factory=urllib3.PoolManager, repr=False)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        try:
            response = self._pool.request(
                "POST",
                url,
                body=json.dumps(body).encode(),
                headers={
                    "Accept": "application/vnd.github+json",
                    "Authorization": f"Bearer {self.token}",
                    "X-GitHub-Api-Version": API_VERSION,
                    "Content-Type": "application/json",
                    "User-Agent": "platform-deploy",
                },
                timeout=self.timeout,
                retries=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise GitHubError(f"POST {path}", 0, f"{type(error).__name__}: {error}") from error
        try:
            answer = json.loads(response.data or b"{}")
        except ValueError:
            answer = {}
        if response.status != 201:
            message = answer.get("message") if isinstance(answer, dict) else None
            raise GitHubError(f"POST {path}", response.status, str(message or response.reason))
        return answer if isinstance(answer, dict) else {}

    def create_deployment(
        self, *, ref: str, environment: str, payload: Mapping[str, str], description: str
    ) -> int:
        """``POST /repos/{owner}/{repo}/deployments``; the new deployment's id.

        201 is a deployment; 202 means GitHub merged the default branch into ``ref`` instead
        (impossible with ``auto_merge`` false) and 409 a failed ``required_contexts`` check
        (impossible with an empty list): both are errors here.
        """
        answer = self._post(
            "/deployments",
            {
                "ref": ref,
                "task": TASK,
                "auto_merge": False,
                "required_contexts": [],
                "payload": dict(payload),
                "environment": environment,
                "description": short(description),
                "production_environment": environment.split("/", 1)[0] == "prod",
                "transient_environment": False,
            },
        )
        deployment_id = answer.get("id")
        if not isinstance(deployment_id, int):
            raise GitHubError("POST /deployments", 201, "the answer has no deployment id")
        return deployment_id

    def create_status(self, deployment_id: int, *, state: str, description: str, log_url: str | None) -> None:
        """``POST /repos/{owner}/{repo}/deployments/{id}/statuses``."""
        if state not in STATES:
            raise ValueError(f"not a deployment state: {state!r}; GitHub knows {', '.join(sorted(STATES))}")
        body: dict[str, Any] = {"state": state, "description": short(description)}
        if log_url:
            body["log_url"] = log_url
        self._post(f"/deployments/{deployment_id}/statuses", body)


class GitHubRecords:
    """Release records in one repository for one environment (``prod``): one deployment per region."""

    def __init__(
        self,
        api: GitHubApi,
        environment: str,
        log_url: str | None = None,
        fallback_ref: str | None = None,
        server_url: str = DEFAULT_SERVER_URL,
    ) -> None:
        self.api = api
        self.environment = environment
        self.log_url = log_url
        self.fallback_ref = fallback_ref
        self.server_url = server_url
        self.deployments: dict[str, int] = {}
        self._warnings: list[str] = []

    @property
    def warnings(self) -> list[str]:
        return self._warnings

    def _warn(self, region: str, error: GitHubError) -> None:
        self._warnings.append(f"release record of {environment_name(self.environment, region)}: {error}")

    def queued(self, release: Release) -> None:
        name = environment_name(self.environment, release.region)
        description = f"{release.image} to {release.application}"
        if release.repo_url is None or same_repository(
            release.repo_url, self.api.repository, self.server_url
        ):
            ref = commit_ref(release.ref, self.fallback_ref)
        else:
            # The revision is a commit of the Application's repository, not of the one the
            # deployment is created in: GitHub resolves ``ref`` in its own repository (422 for
            # an unknown one, or worse, the same SHA or branch name meaning something else).
            # The workflow's commit exists there; the app's revision goes to the payload and
            # the description.
            ref = self.fallback_ref if self.fallback_ref and _SHA.match(self.fallback_ref) else None
            app_repo = repository_of(release.repo_url)
            description += (
                f" (app {app_repo[1] if app_repo else release.repo_url}@{(release.ref or '?')[:12]})"
            )
            if ref is None:
                self._warnings.append(
                    f"release record of {name}: the Application's revision is a commit of "
                    f"{release.repo_url}, not of {self.api.repository}, and there is no GITHUB_SHA "
                    "to record it on"
                )
                return
        if ref is None:
            self._warnings.append(
                f"release record of {name}: no Git commit to record (no revision, no GITHUB_SHA)"
            )
            return
        try:
            deployment_id = self.api.create_deployment(
                ref=ref,
                environment=name,
                payload=release.payload(),
                description=description,
            )
            self.deployments[release.region] = deployment_id
            self.api.create_status(
                deployment_id, state=QUEUED, description=f"queued: {release.image}", log_url=self.log_url
            )
        except GitHubError as error:
            self._warn(release.region, error)

    def _status(self, region: str, state: str, detail: str) -> None:
        deployment_id = self.deployments.get(region)
        if deployment_id is None:
            return  # its creation failed (already warned) or the region was never queued
        try:
            self.api.create_status(deployment_id, state=state, description=detail, log_url=self.log_url)
        except GitHubError as error:
            self._warn(region, error)

    def in_progress(self, region: str, detail: str) -> None:
        self._status(region, IN_PROGRESS, detail)

    def finished(self, region: str, outcome: Outcome, detail: str) -> None:
        self._status(region, FINAL_STATES[outcome], f"{outcome}: {detail}" if detail else str(outcome))


def commit_ref(revision: str | None, fallback: str | None) -> str | None:
    """The ``ref`` of a record: the Git commit the sync pins when it is a full SHA (Argo CD's
    ``status.sync.revision``), else the workflow's commit (``GITHUB_SHA``)."""
    if revision and _SHA.match(revision):
        return revision
    if fallback and _SHA.match(fallback):
        return fallback
    return revision or fallback


def from_environment(env: Mapping[str, str], environment: str) -> tuple[Records, str]:
    """The records a run makes, and a line saying so.

    On when ``GITHUB_TOKEN`` and ``GITHUB_REPOSITORY`` (``owner/name``) are set, as in the
    ``deploy-prod`` workflow (the job's token, ``deployments: write``); ``GITHUB_API_URL`` is
    GitHub's (Enterprise) API, ``GITHUB_SERVER_URL`` and ``GITHUB_RUN_ID`` make each status link
    to the run. Anything else: no records, and the line says why.
    """
    token = env.get("GITHUB_TOKEN", "").strip()
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    if not token or not repository:
        return NoRecords(), "release records: off (GITHUB_TOKEN and GITHUB_REPOSITORY are not both set)"
    if not _REPOSITORY.match(repository):
        return NoRecords(), f"release records: off (GITHUB_REPOSITORY is {repository!r}, not owner/name)"
    log_url = None
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_RUN_ID"):
        log_url = f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{repository}/actions/runs/{env['GITHUB_RUN_ID']}"
    api = GitHubApi(repository=repository, token=token, api_url=env.get("GITHUB_API_URL") or API_URL)
    return (
        GitHubRecords(
            api,
            environment,
            log_url,
            env.get("GITHUB_SHA") or None,
            env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER_URL,
        ),
        f"release records: GitHub deployments in {repository} ({environment_name(environment, '<region>')})",
    )
