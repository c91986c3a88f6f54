"""Release records: the GitHub deployments the prod deploy leaves, against a fake GitHub API.

The fake answers the two REST paths the records use on 127.0.0.1 (no network), with the rules
GitHub documents (https://docs.github.com/en/rest/deployments/deployments and
https://docs.github.com/en/rest/deployments/statuses, API version 2022-11-28): a bearer token,
``ref`` and a known ``state`` required, descriptions of at most 140 characters (422 otherwise),
and, unless ``required_contexts`` is an empty list, a 409 for a commit whose checks GitHub would
verify. The deploy itself runs end to end against the fake hubs of test_deploy_fakehub.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from infra import release_records
from infra.deploy_model import ExitCode, Outcome
from infra.release_records import GitHubApi, GitHubRecords, Release
from tests.unit.test_deploy_fakehub import NEW_TAG, Harness, Script, closed_port

REPOSITORY = "acme/platform"
TOKEN = "ghs_job_token"
WORKFLOW_SHA = "c" * 40


@dataclass
class Deployment:
    id: int
    body: dict[str, Any]
    statuses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        return [s["state"] for s in self.statuses]


class FakeGitHub:
    """``POST /repos/{owner}/{repo}/deployments`` and ``.../deployments/{id}/statuses``."""

    def __init__(self, repository: str = REPOSITORY) -> None:
        self.repository = repository
        self.deployments: list[Deployment] = []
        self.refuse: int | None = None  # answer every call with this status
        self._lock = threading.Lock()
        github = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                github._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def by_environment(self) -> dict[str, Deployment]:
        return {d.body["environment"]: d for d in self.deployments}

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}")

        def answer(status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)

        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return answer(401, {"message": "Bad credentials"})
        if self.refuse:
            return answer(self.refuse, {"message": "Resource not accessible by integration"})
        prefix = f"/repos/{self.repository}/deployments"
        with self._lock:
            if request.path == prefix:
                if not body.get("ref"):
                    return answer(422, {"message": "ref is missing"})
                if body.get("required_contexts") != []:
                    return answer(409, {"message": "Conflict: Commit status checks failed for main."})
                if len(body.get("description", "")) > 140:
                    return answer(422, {"message": "description is too long (maximum is 140 characters)"})
                deployment = Deployment(len(self.deployments) + 1, body)
                self.deployments.append(deployment)
                return answer(201, {"id": deployment.id, "environment": body.get("environment")})
            if request.path.startswith(prefix + "/") and request.path.endswith("/statuses"):
                deployment_id = int(request.path[len(prefix) + 1 : -len("/statuses")])
                if not 0 < deployment_id <= len(self.deployments):
                    return answer(404, {"message": "Not Found"})
                if body.get("state") not in release_records.STATES:
                    return answer(422, {"message": f"state {body.get('state')} is not included in the list"})
                if len(body.get("description", "")) > 140:
                    return answer(422, {"message": "description is too long (maximum is 140 characters)"})
                self.deployments[deployment_id - 1].statuses.append(body)
                return answer(201, {"id": 1000 + deployment_id, "state": body["state"]})
        return answer(404, {"message": "Not Found"})


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.stop()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def actions_env(github: FakeGitHub) -> dict[str, str]:
    """What a GitHub Actions job's environment holds, the job's token exported as GITHUB_TOKEN."""
    return {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": github.repository,
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SHA": WORKFLOW_SHA,
    }


def release(region: str = "eu-west-1", ref: str | None = "a" * 40) -> Release:
    return Release(
        region, f"shop-prod-{region}", f"shop/web:{NEW_TAG}", NEW_TAG, ref, "d1", "yes: staging runs it"
    )


# --------------------------------------------------------------------------------------------
# The records on their own
# --------------------------------------------------------------------------------------------


def test_a_region_gets_a_deployment_with_queued_in_progress_and_success(github: FakeGitHub) -> None:
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod", "https://github.com/run/1")
    records.queued(release())
    records.in_progress("eu-west-1", "sync requested")
    records.finished("eu-west-1", Outcome.SYNCED, "Synced/Healthy")
    (deployment,) = github.deployments
    assert deployment.body["environment"] == "prod/eu-west-1"
    assert deployment.body["ref"] == "a" * 40
    assert deployment.body["auto_merge"] is False
    assert deployment.body["payload"]["imageTag"] == NEW_TAG
    assert deployment.body["payload"]["image"] == f"shop/web:{NEW_TAG}"
    assert deployment.states == ["queued", "in_progress", "success"]
    assert {s["log_url"] for s in deployment.statuses} == {"https://github.com/run/1"}
    assert records.warnings == []


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (Outcome.FAILED, "failure"),
        (Outcome.DEGRADED, "failure"),
        (Outcome.TIMED_OUT, "failure"),
        (Outcome.API_ERROR, "error"),
        (Outcome.NOT_STARTED, "error"),
    ],
)
def test_every_unsuccessful_outcome_closes_the_record_as_failure_or_error(
    github: FakeGitHub, outcome: Outcome, state: str
) -> None:
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod")
    records.queued(release())
    records.finished("eu-west-1", outcome, "x" * 400)  # a long detail is cut to GitHub's 140
    assert github.deployments[0].states == ["queued", state]
    assert records.warnings == []


def test_every_outcome_of_the_deploy_has_a_github_state() -> None:
    assert set(release_records.FINAL_STATES) == set(Outcome)
    assert set(release_records.FINAL_STATES.values()) <= release_records.STATES


def test_without_a_full_revision_the_workflow_commit_is_the_ref(github: FakeGitHub) -> None:
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod", fallback_ref=WORKFLOW_SHA)
    records.queued(release(ref="main"))
    assert github.deployments[0].body["ref"] == WORKFLOW_SHA


def test_github_refusing_or_unreachable_is_a_warning_never_an_exception(github: FakeGitHub) -> None:
    github.refuse = 403
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod")
    records.queued(release())
    records.finished("eu-west-1", Outcome.SYNCED, "")
    assert len(records.warnings) == 1
    assert "HTTP 403" in records.warnings[0] and "prod/eu-west-1" in records.warnings[0]

    down = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, f"http://127.0.0.1:{closed_port()}", timeout=2), "prod")
    down.queued(release())
    assert "unreachable" in down.warnings[0]


def test_records_are_on_only_with_a_token_and_a_repository(github: FakeGitHub) -> None:
    records, note = release_records.from_environment({}, "prod")
    assert isinstance(records, release_records.NoRecords) and "off" in note
    records, note = release_records.from_environment(
        {"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "nope"}, "prod"
    )
    assert isinstance(records, release_records.NoRecords) and "owner/name" in note
    records, note = release_records.from_environment(actions_env(github), "prod")
    assert isinstance(records, GitHubRecords)
    assert records.log_url == f"https://github.com/{REPOSITORY}/actions/runs/4242"
    assert "prod/<region>" in note


# --------------------------------------------------------------------------------------------
# The deploy leaves them
# --------------------------------------------------------------------------------------------


def test_a_deploy_leaves_one_successful_record_per_region(h: Harness, github: FakeGitHub) -> None:
    h.seed()
    result = h.run(environ=actions_env(github))
    assert result.code == ExitCode.OK, result.output
    records = github.by_environment()
    assert list(records) == [f"prod/{r}" for r in h.order]
    for region in h.order:
        deployment = records[f"prod/{region}"]
        assert deployment.states == ["queued", "in_progress", "success"]
        # The Git commit Argo CD compared (status.sync.revision) and the verified image's tag.
        assert deployment.body["ref"] == "a" * 40
        assert deployment.body["payload"]["imageTag"] == NEW_TAG
        assert deployment.body["payload"]["application"] == h.prod.app_name(region)
        assert deployment.body["payload"]["deployId"] == "deploy-test-1"


def test_a_failed_region_is_a_failure_and_the_later_regions_errors(h: Harness, github: FakeGitHub) -> None:
    h.seed()
    first, second, *later = h.order
    h.prod.scripts[h.prod.app_name(second)] = Script(outcome="degraded")
    result = h.run(environ=actions_env(github))
    assert result.code == ExitCode.FAILED, result.output
    records = github.by_environment()
    assert records[f"prod/{first}"].states == ["queued", "in_progress", "success"]
    assert records[f"prod/{second}"].states == ["queued", "in_progress", "failure"]
    for region in later:
        assert records[f"prod/{region}"].states == ["queued", "error"]
        assert f"stopped at {second}" in records[f"prod/{region}"].statuses[-1]["description"]


def test_a_dry_run_or_a_refused_deploy_leaves_no_record(h: Harness, github: FakeGitHub) -> None:
    h.seed()
    assert h.run("--dry-run", environ=actions_env(github)).code == ExitCode.OK
    h.staging.apps.clear()  # nothing verifies the image: refused before anything is synced
    assert h.run(environ=actions_env(github)).code == ExitCode.REFUSED
    assert github.deployments == []


def test_github_down_does_not_stop_the_deploy(h: Harness, github: FakeGitHub) -> None:
    h.seed()
    github.refuse = 500
    result = h.run(environ=actions_env(github))
    assert result.code == ExitCode.OK
    assert "warning: release record of prod/" in " ".join(result.output.split())
    assert h.prod.patched() == [h.prod.app_name(r) for r in h.order]


# --------------------------------------------------------------------------------------------
# The Application's repository and the workflow's
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/platform.git",
        "https://github.com/acme/platform",
        "https://github.com/Acme/Platform/",
        "https://token@github.com/acme/platform.git",
        "ssh://git@github.com/acme/platform.git",
        "ssh://git@github.com:22/acme/platform",
        "git@github.com:acme/platform.git",
        "git@github.com:acme/platform",
    ],
)
def test_every_url_form_of_one_repository_is_the_same_repository(url: str) -> None:
    assert release_records.repository_of(url) == ("github.com", "acme/platform")
    assert release_records.same_repository(url, "acme/platform", "https://github.com")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/shop-deploy.git",
        "git@github.com:other/platform.git",
        "https://github.example.com/acme/platform.git",  # same name, another server
        "https://github.com/acme",
        "not a url",
    ],
)
def test_another_repository_or_server_is_not_the_same(url: str) -> None:
    assert not release_records.same_repository(url, "acme/platform", "https://github.com")


def test_the_apps_commit_is_the_ref_when_the_app_lives_in_the_workflows_repository(
    github: FakeGitHub,
) -> None:
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod", fallback_ref=WORKFLOW_SHA)
    records.queued(replace(release(), repo_url=f"git@github.com:{REPOSITORY}.git"))
    (deployment,) = github.deployments
    assert deployment.body["ref"] == "a" * 40
    assert deployment.body["payload"]["appRevision"] == "a" * 40


def test_an_app_in_another_repository_is_recorded_on_the_workflows_commit(github: FakeGitHub) -> None:
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod", fallback_ref=WORKFLOW_SHA)
    records.queued(replace(release(), repo_url="https://github.com/acme/shop-deploy.git"))
    (deployment,) = github.deployments
    # The app's commit is not a ref of this repository: the workflow's commit is.
    assert deployment.body["ref"] == WORKFLOW_SHA
    assert deployment.body["payload"]["appRevision"] == "a" * 40
    assert deployment.body["payload"]["appRepository"] == "https://github.com/acme/shop-deploy.git"
    assert "acme/shop-deploy@" + "a" * 12 in deployment.body["description"]
    assert records.warnings == []


def test_an_app_in_another_repository_without_a_workflow_commit_is_a_warning(github: FakeGitHub) -> None:
    records = GitHubRecords(GitHubApi(REPOSITORY, TOKEN, github.url), "prod")
    records.queued(replace(release(), repo_url="https://github.com/acme/shop-deploy.git"))
    records.finished("eu-west-1", Outcome.SYNCED, "")
    assert github.deployments == []
    (warning,) = records.warnings
    assert "acme/shop-deploy" in warning and "GITHUB_SHA" in warning


def test_a_deploy_records_its_apps_commit_in_the_apps_own_repository(h: Harness) -> None:
    repository = release_records.repository_of(h.prod_config.application.repo_url)
    assert repository is not None
    fake = FakeGitHub(repository[1])
    try:
        h.seed()
        assert h.run(environ=actions_env(fake)).code == ExitCode.OK
        for deployment in fake.deployments:
            assert deployment.body["ref"] == "a" * 40
    finally:
        fake.stop()


def test_a_deploy_from_another_repository_records_the_workflows_commit(h: Harness) -> None:
    repository = release_records.repository_of(h.prod_config.application.repo_url)
    assert repository is not None
    fake = FakeGitHub(f"{repository[1]}-ops")  # the workflow runs in another repository
    try:
        h.seed()
        result = h.run(environ=actions_env(fake))
        assert result.code == ExitCode.OK, result.output
        assert [d.body["environment"] for d in fake.deployments] == [f"prod/{r}" for r in h.order]
        for deployment in fake.deployments:
            assert deployment.body["ref"] == WORKFLOW_SHA
            assert deployment.body["payload"]["appRevision"] == "a" * 40
            assert deployment.states == ["queued", "in_progress", "success"]
    finally:
        fake.stop()


def test_the_repository_is_the_one_of_the_source_whose_commit_is_recorded() -> None:
    single = {
        "spec": {"source": {"repoURL": "https://github.com/acme/platform.git", "targetRevision": "main"}}
    }
    assert release_records.revision_repository(single) == "https://github.com/acme/platform.git"
    multi = {
        "spec": {
            "sources": [
                {"repoURL": "https://charts.example.com", "chart": "shop"},
                {"repoURL": "git@github.com:acme/values.git", "targetRevision": "main", "ref": "values"},
            ]
        }
    }
    assert release_records.revision_repository(multi) == "git@github.com:acme/values.git"
    assert release_records.revision_repository({"spec": {}}) is None
