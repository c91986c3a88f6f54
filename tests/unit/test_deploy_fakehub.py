"""A fake hub for the deploy tests: Argo CD Applications behind the real Kubernetes REST paths.

The deploy command is exercised end to end with the official ``kubernetes`` client, a real
kubeconfig file and real HTTP on 127.0.0.1; only the API server (and the Argo CD application
controller behind it) is simulated, at the outermost boundary:

* ``GET/PATCH /apis/argoproj.io/v1alpha1/namespaces/argocd/applications[/<name>]`` with list,
  label selectors, field-selected watches (``?watch=true``), JSON merge patch and the
  ``metadata.resourceVersion`` precondition (409 Conflict);
* bearer-token authentication (401) and the hub's Role: a verb the role does not grant is
  answered 403, as RBAC would;
* a controller per Application: after an ``operation`` patch, each read (get or watch) moves it
  one step: picked up (Running), ``progressing_reads`` more steps of Progressing, then the
  scripted end: Synced/Healthy, Degraded, Failed, or stuck Running;
* a fake clock: a watch that brings no news "lasts" its timeoutSeconds, ``sleep`` advances it.

Every call is recorded (verb, name), so tests assert which Applications were touched.
This module holds the fake and the tests that it speaks the protocol the real client expects.
"""

from __future__ import annotations

import copy
import io
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from rich.console import Console

from infra import naming
from infra.config import PROJECT_ROOT, StackConfig, load_stack_file
from infra.deploy import main
from infra.deploy_kube import Applications, HubError, connect
from infra.manifests import rbac
from tests.contracts.upstream import apply_merge_patch

# The contract the fake holds the deploy to, written out rather than imported from the code
# under test: Image Updater's Helm parameter as the shop chart reads it.
TAG_PARAMETER = "image.tag"
NAME_PARAMETER = "image.name"
# The prod ApplicationSet template's spec.syncPolicy.syncOptions (infra/manifests/argocd.py);
# tests/unit/test_deploy_run.py holds this copy to the real template.
APP_SYNC_OPTIONS = ["CreateNamespace=true", "ServerSideApply=true", "Prune=confirm"]
OLD_TAG = "20260101.090000-1111111"
NEW_TAG = "20260102.100000-2222222"
OTHER_TAG = "20260102.110000-3333333"
TOKEN = "test-token"
APPS_PATH = re.compile(r"^/apis/argoproj\.io/v1alpha1/namespaces/([^/]+)/applications(?:/([^/]+))?$")

Outcome = Literal["healthy", "degraded", "failed", "stuck"]


class FakeClock:
    """Monotonic time that only moves when the code under test waits."""

    LIMIT = 1000.0 + 3600

    def __init__(self) -> None:
        self._now = 1000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            # No test waits a fake hour: a wait loop that ignores its deadline fails the test
            # instead of hanging it.
            if self._now > self.LIMIT:
                raise RuntimeError(
                    f"fake clock passed {self.LIMIT}s: the code under test never stops waiting"
                )

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


@dataclass
class Script:
    """How the simulated application controller reacts to a sync of one Application.

    ``removes``: resources (``Kind/name``) the Application manages that the new release no longer
    renders. As Argo CD does (gitops-engine sync_context.go ``pruneObject``; "The app will be out
    of sync if Argo CD expects a resource to be pruned", docs/user-guide/sync-options.md, v3.4.4),
    a sync deletes them only if its ``operation.sync.prune`` is true; otherwise it succeeds but
    leaves them, and the Application OutOfSync with each marked ``requiresPruning``.
    """

    progressing_reads: int = 2
    outcome: Outcome = "healthy"
    removes: tuple[str, ...] = ()
    # Argo Rollouts (issue 19): after the sync succeeded, the health one service's Rollout
    # reports at each further controller step, as Argo CD persists it in status.resources[]
    # (``(status, message)``: argo-cd v3.4.4 health.lua surfaces the Rollout's status.phase and
    # status.message, Paused as Suspended); the last state stays. The other services' Rollouts
    # are Healthy. Empty: the release has no Rollouts (plain Deployments).
    canary_service: str | None = None
    canary: tuple[tuple[str, str], ...] = ()


@dataclass
class Call:
    verb: str
    name: str | None
    status: int


@dataclass
class Fault:
    status: int
    times: int
    message: str


# The API server's application/merge-patch+json (RFC 7386): one transcription, shared with the
# contract tests.
merge_patch = apply_merge_patch


def images(config: StackConfig, region: str, tag: str) -> list[str]:
    return [
        f"{naming.image_repository(config.account_id, region, config.ecr.prefix, service)}:{tag}"
        for service in config.services
    ]


def rollout_name(config: StackConfig, service: str) -> str:
    """The chart's name of a service's Rollout, ``<fullnameOverride>-<service>``."""
    values = yaml.safe_load((PROJECT_ROOT / config.application.path / "values.yaml").read_text())
    return f"{values['fullnameOverride']}-{service}"


def make_application(
    config: StackConfig,
    region: str,
    *,
    tag: str | None,
    running_tag: str,
    health: str = "Healthy",
    sync: str | None = None,
) -> dict[str, Any]:
    """An Application as the stack's ApplicationSet generates it and Argo CD reports it."""
    env, app = config.environment, config.application.name
    # What Image Updater writes (manifestTargets.helm in infra/manifests/argocd.py): the sentinel's
    # repository in this region's registry, and the tag.
    repository = naming.image_repository(
        config.account_id, region, config.ecr.prefix, config.sentinel_service
    )
    parameters = (
        []
        if tag is None
        else [{"name": NAME_PARAMETER, "value": repository}, {"name": TAG_PARAMETER, "value": tag}]
    )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": naming.application_name(app, env, region),
            "namespace": naming.ARGOCD_NAMESPACE,
            "labels": {naming.LABEL_APPLICATION_SET: naming.application_set_name(app, env)},
            "resourceVersion": "1",
        },
        "spec": {
            "project": naming.APP_PROJECT,
            "source": {
                "repoURL": config.application.repo_url,
                "path": config.application.path,
                "targetRevision": config.application.revision,
                "helm": {"valueFiles": list(naming.value_files(env, region)), "parameters": parameters},
            },
            "destination": {
                "name": naming.cluster_name(env, region),
                "namespace": config.application.namespace,
            },
            "syncPolicy": {"syncOptions": list(APP_SYNC_OPTIONS)},
        },
        "status": {
            "sync": {
                "status": sync or ("Synced" if tag == running_tag else "OutOfSync"),
                "revision": "a" * 40,
            },
            "health": {"status": health},
            "summary": {"images": images(config, region, running_tag)},
            "operationState": {
                "phase": "Succeeded",
                "startedAt": "2026-01-01T09:00:00Z",
                "operation": {"initiatedBy": {"username": "earlier"}, "sync": {"revision": "a" * 40}},
                "syncResult": {"revision": "a" * 40},
            },
        },
    }


class FakeHub:
    """One hub's API server with Argo CD's Applications in namespace argocd."""

    def __init__(self, name: str, config: StackConfig, clock: FakeClock, verbs: tuple[str, ...]) -> None:
        self.name = name
        self.config = config
        self.clock = clock
        self.verbs = verbs
        self.apps: dict[str, dict[str, Any]] = {}
        self.scripts: dict[str, Script] = {}
        self.calls: list[Call] = []
        self.accepted_patches: list[tuple[str, dict[str, Any]]] = []
        self.before_patch: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.after_patch: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._faults: dict[tuple[str, str | None], Fault] = {}
        self._progress: dict[str, int] = {}
        self._canary: dict[str, int] = {}
        self._synced_source: dict[str, dict[str, Any]] = {}
        self._rv = 100
        self._lock = threading.RLock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                hub._handle(self, "GET")

            def do_PATCH(self) -> None:
                hub._handle(self, "PATCH")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    # -- test-facing -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, app: dict[str, Any], script: Script | None = None) -> None:
        name = app["metadata"]["name"]
        self.apps[name] = app
        self.scripts[name] = script or Script()

    def app_name(self, region: str) -> str:
        return naming.application_name(self.config.application.name, self.config.environment, region)

    def fail(
        self, verb: str, name: str | None, status: int, times: int = 1, message: str = "injected"
    ) -> None:
        self._faults[(verb, name)] = Fault(status, times, message)

    def used_verbs(self) -> set[str]:
        return {call.verb for call in self.calls}

    def touched(self) -> list[str]:
        """Applications a patch was attempted on, in order."""
        return [c.name for c in self.calls if c.verb == "patch" and c.name]

    def patched(self) -> list[str]:
        """Applications whose patch the API server accepted, in order."""
        return [name for name, _ in self.accepted_patches]

    # -- the API server --------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        match = APPS_PATH.match(url.path)
        watching = query.get("watch") in ("true", "1")
        name = match.group(2) if match else None
        if method == "PATCH":
            verb = "patch"
        elif name:
            verb = "get"
        else:
            verb = "watch" if watching else "list"
        if watching and query.get("fieldSelector", "").startswith("metadata.name="):
            name = query["fieldSelector"].split("=", 1)[1]
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""

        def answer(status: int, payload: Any) -> None:
            with self._lock:
                self.calls.append(Call(verb, name, status))
            data = json.dumps(payload).encode()
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)

        def error(status: int, reason: str, message: str) -> None:
            answer(
                status,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": reason,
                    "message": message,
                    "code": status,
                },
            )

        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return error(401, "Unauthorized", "Unauthorized")
        if match is None:
            return error(404, "NotFound", f"the server could not find the requested resource {url.path}")
        if verb not in self.verbs or match.group(1) != naming.ARGOCD_NAMESPACE:
            return error(
                403,
                "Forbidden",
                f'applications.argoproj.io is forbidden: User cannot {verb} resource "applications" '
                f'in API group "argoproj.io" in the namespace "{match.group(1)}"',
            )
        with self._lock:
            fault = self._faults.get((verb, name)) or self._faults.get((verb, None))
            if fault and fault.times > 0:
                fault.times -= 1
                return error(
                    fault.status, "InternalError" if fault.status >= 500 else "Injected", fault.message
                )
            if verb == "list":
                selector = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if p)
                items = [
                    copy.deepcopy(app)
                    for app in self.apps.values()
                    if all(app["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
                ]
                return answer(
                    200,
                    {
                        "apiVersion": "argoproj.io/v1alpha1",
                        "kind": "ApplicationList",
                        "items": items,
                        "metadata": {},
                    },
                )
            if name not in self.apps:
                return error(404, "NotFound", f'applications.argoproj.io "{name}" not found')
            if verb == "get":
                self._tick(name)
                return answer(200, copy.deepcopy(self.apps[name]))
            if verb == "patch":
                return self._patch(name, request, body, answer, error)
            # watch: one controller step per window; a window without news lasts timeoutSeconds.
            before = self.apps[name]["metadata"]["resourceVersion"]
            self._tick(name)
            app = self.apps[name]
            since = query.get("resourceVersion")
            changed = app["metadata"]["resourceVersion"] != (since or before) or since is None
            self.clock.advance(1 if changed else float(query.get("timeoutSeconds") or 1))
            self.calls.append(Call("watch", name, 200))
            kind = "ADDED" if since is None else "MODIFIED"
            lines = json.dumps({"type": kind, "object": app}) + "\n" if changed else ""
            data = lines.encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
        return None

    def _patch(
        self,
        name: str,
        request: BaseHTTPRequestHandler,
        body: bytes,
        answer: Callable[[int, Any], None],
        error: Callable[[int, str, str], None],
    ) -> None:
        if request.headers.get("Content-Type") != "application/merge-patch+json":
            return error(
                415, "UnsupportedMediaType", f"unsupported patch {request.headers.get('Content-Type')}"
            )
        hook = self.before_patch.pop(name, None)
        if hook is not None:  # another writer (Image Updater) gets in first
            hook(self.apps[name])
            self.apps[name]["metadata"]["resourceVersion"] = self._next_rv()
        patch = json.loads(body)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        current = self.apps[name]["metadata"]["resourceVersion"]
        if wanted is not None and wanted != current:
            return error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on applications.argoproj.io "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        updated = merge_patch(self.apps[name], patch)
        updated["metadata"]["resourceVersion"] = self._next_rv()
        self.apps[name] = updated
        self.accepted_patches.append((name, patch))
        self._progress.pop(name, None)
        hook = self.after_patch.pop(name, None)
        if hook is not None:  # another writer gets in before the controller starts the sync
            hook(self.apps[name])
            self.apps[name]["metadata"]["resourceVersion"] = self._next_rv()
        return answer(200, copy.deepcopy(updated))

    def _tick(self, name: str) -> None:
        """The application controller's next step for ``name``."""
        app = self.apps[name]
        script = self.scripts[name]
        status = app.setdefault("status", {})
        if "operation" in app:
            self._canary.pop(name, None)
            operation = app.pop("operation")
            # argo-cd v3.4.4 controller/sync.go SyncAppState/newSyncOperationResult: the source
            # synced is fixed when the operation starts: the operation's own, else the spec's now.
            sync_op = operation.get("sync") or {}
            synced = sync_op.get("source") if sync_op.get("source") or sync_op.get("sources") else None
            self._synced_source[name] = copy.deepcopy(synced or app["spec"]["source"])
            status["operationState"] = {
                "operation": operation,
                "phase": "Running",
                "message": "one or more tasks are running",
                "startedAt": "2026-01-02T10:00:00Z",
            }
            status["health"] = {"status": "Progressing"}
            self._progress[name] = script.progressing_reads
        elif name in self._canary:
            if self._canary[name] + 1 >= len(script.canary):
                return  # the canary's last state stays (promoted, aborted or stuck)
            self._canary[name] += 1
            self._set_rollouts(app, script)
        elif name in self._progress and status["operationState"]["phase"] == "Running":
            if script.outcome == "stuck":
                return
            if self._progress[name] > 0:
                self._progress[name] -= 1
                return
            self._finish(app, script.outcome)
        else:
            return
        app["metadata"]["resourceVersion"] = self._next_rv()

    def _finish(self, app: dict[str, Any], outcome: Outcome) -> None:
        status = app["status"]
        state = status["operationState"]
        if outcome == "failed":
            state.update(phase="Failed", message="one or more objects failed to apply")
            return
        name = app["metadata"]["name"]
        source = copy.deepcopy(self._synced_source[name])
        sync_op = state["operation"].get("sync", {})
        revision = sync_op.get("revision") or "b" * 40
        tag = next(p["value"] for p in source["helm"]["parameters"] if p["name"] == TAG_PARAMETER)
        region = next(r for r in self.config.region_names if app["metadata"]["name"].endswith(r))
        script = self.scripts[name]
        prune = sync_op.get("prune") is True
        # Argo CD then compares the live state with the spec: a spec that moved on is OutOfSync.
        moved_on = source != app["spec"]["source"]
        extra = [
            {"kind": key.split("/")[0], "name": key.split("/")[1], "requiresPruning": True}
            for key in script.removes
        ]
        state.update(
            phase="Succeeded",
            message="successfully synced (all tasks run)",
            syncResult={
                "revision": revision,
                "source": source,
                "resources": [
                    {
                        "kind": r["kind"],
                        "name": r["name"],
                        "status": "Pruned" if prune else "PruneSkipped",
                        "message": "pruned" if prune else "ignored (requires pruning)",
                    }
                    for r in extra
                ],
            },
        )
        if prune:
            script.removes = ()
            status["resources"] = []
            status["sync"] = {"status": "OutOfSync" if moved_on else "Synced", "revision": revision}
        else:
            status["resources"] = extra
            status["sync"] = {"status": "OutOfSync" if extra or moved_on else "Synced", "revision": revision}
        status["summary"] = {"images": images(self.config, region, tag)}
        if outcome == "degraded":
            status["health"] = {
                "status": "Degraded",
                "message": "Deployment shop-web has timed out progressing",
            }
        else:
            status["health"] = {"status": "Healthy"}
        if script.canary:
            self._canary[name] = 0
            self._set_rollouts(app, script)

    def _set_rollouts(self, app: dict[str, Any], script: Script) -> None:
        """Every service's Rollout in status.resources with its health; the Application's health
        is the worst of them (Argo CD's aggregation: Degraded over Progressing over Suspended
        over Healthy)."""
        status = app["status"]
        health, message = script.canary[self._canary[app["metadata"]["name"]]]
        others = [r for r in status.get("resources", []) if r.get("kind") != "Rollout"]
        rollouts: list[dict[str, Any]] = [
            {
                "group": "argoproj.io",
                "version": "v1alpha1",
                "kind": "Rollout",
                "namespace": self.config.application.namespace,
                "name": rollout_name(self.config, service),
                "status": "Synced",
                "health": (
                    {"status": health, **({"message": message} if message else {})}
                    if service == script.canary_service
                    else {"status": "Healthy"}
                ),
            }
            for service in self.config.services
        ]
        status["resources"] = others + rollouts
        order = ("Degraded", "Progressing", "Suspended", "Healthy")
        worst = min((r["health"]["status"] for r in rollouts), key=order.index)
        status["health"] = {"status": worst}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, contexts: dict[str, str]) -> Path:
    """A kubeconfig with one cluster, user and context per entry of ``contexts`` (name → URL)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": c, "cluster": {"server": url}} for c, url in contexts.items()],
                "users": [{"name": c, "user": {"token": TOKEN}} for c in contexts],
                "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
                "current-context": next(iter(contexts)),
            }
        )
    )
    return path


@dataclass
class RunResult:
    code: int
    output: str
    prompts: list[str] = field(default_factory=list)

    def row(self, region: str) -> dict[str, str]:
        """The summary table's row of ``region`` as {column: text}."""
        columns = ("region", "application", "image", "result", "time", "detail")
        for line in self.output.splitlines():
            cells = re.split(r"\s{2,}", line.strip())
            if cells and cells[0] == region and len(cells) >= 5:
                return dict(zip(columns, cells, strict=False))
        raise AssertionError(f"no summary row for {region} in:\n{self.output}")

    def result(self, region: str) -> str:
        return self.row(region)["result"]


class Harness:
    """Two fake hubs (prod deployer, staging verifier), their kubeconfig and a fake clock."""

    def __init__(self, tmp_path: Path) -> None:
        self.prod_config = load_stack_file("prod")
        self.staging_config = load_stack_file("staging")
        self.clock = FakeClock()
        self.prod = FakeHub("prod", self.prod_config, self.clock, rbac.DEPLOYER_VERBS).start()
        self.staging = FakeHub("staging", self.staging_config, self.clock, rbac.VERIFIER_VERBS).start()
        # Contexts named as `aws eks update-kubeconfig --alias platform-<env>-<hub>` names them.
        self.prod_context = naming.cluster_name("prod", self.prod_config.hub_region)
        self.staging_context = naming.cluster_name("staging", self.staging_config.hub_region)
        self.kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig",
            {self.prod_context: self.prod.url, self.staging_context: self.staging.url},
        )

    @property
    def order(self) -> tuple[str, ...]:
        return self.prod_config.deploy.region_order

    def seed(
        self,
        tag: str = NEW_TAG,
        *,
        staging_tag: str | None = None,
        running_tag: str = OLD_TAG,
        script: Script | None = None,
    ) -> None:
        """Prod's Applications moved to ``tag`` by Image Updater, still running ``running_tag``;
        staging's Applications Synced and Healthy on ``staging_tag`` (default: ``tag``)."""
        for region in self.order:
            self.prod.add(
                make_application(self.prod_config, region, tag=tag, running_tag=running_tag),
                copy.deepcopy(script) if script else None,
            )
            staged = staging_tag or tag
            self.staging.add(make_application(self.staging_config, region, tag=staged, running_tag=staged))

    def run(
        self, *flags: str, answers: tuple[str, ...] = (), environ: dict[str, str] | None = None
    ) -> RunResult:
        out = io.StringIO()
        console = Console(file=out, width=400, force_terminal=False, color_system=None)
        prompts: list[str] = []
        replies = iter(answers)

        def input_fn(prompt: str) -> str:
            prompts.append(prompt)
            try:
                return next(replies)
            except StopIteration:
                raise EOFError from None

        code = main(
            ["prod", "--kubeconfig", str(self.kubeconfig), *flags],
            console=console,
            clock=self.clock.now,
            sleep=self.clock.sleep,
            input_fn=input_fn,
            deploy_id="deploy-test-1",
            # Never the developer's own GITHUB_TOKEN: release records only where a test asks.
            environ=environ or {},
        )
        return RunResult(code, out.getvalue(), prompts)

    def close(self) -> None:
        self.prod.stop()
        self.staging.stop()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


# --------------------------------------------------------------------------------------------
# The fake speaks what the real client sends
# --------------------------------------------------------------------------------------------


def _client(h: Harness, context: str, hub: str) -> Applications:
    return connect(hub, str(h.kubeconfig), context)


def test_list_get_and_label_selector_through_the_real_client(harness: Harness) -> None:
    harness.seed()
    harness.prod.add({"metadata": {"name": "unrelated", "labels": {}, "resourceVersion": "1"}})
    prod = _client(harness, harness.prod_context, "prod")
    selector = f"{naming.LABEL_APPLICATION_SET}={naming.application_set_name('shop', 'prod')}"
    names = sorted(a["metadata"]["name"] for a in prod.list(selector))
    assert names == sorted(harness.prod.app_name(r) for r in harness.order)
    region = harness.order[0]
    assert (
        prod.get(harness.prod.app_name(region))["spec"]["source"]["helm"]["parameters"][1]["value"] == NEW_TAG
    )
    assert [c.verb for c in harness.prod.calls] == ["list", "get"]


def test_merge_patch_with_a_stale_resource_version_is_a_conflict(harness: Harness) -> None:
    harness.seed()
    prod = _client(harness, harness.prod_context, "prod")
    name = harness.prod.app_name(harness.order[0])
    with pytest.raises(HubError) as raised:
        prod.patch(name, {"metadata": {"resourceVersion": "0"}, "operation": {"sync": {}}})
    assert raised.value.conflict and "modified" in raised.value.reason
    prod.patch(name, {"metadata": {"resourceVersion": "1"}, "operation": {"sync": {}}})
    assert harness.prod.patched() == [name]
    assert harness.prod.apps[name]["operation"] == {"sync": {}}


def test_rbac_denies_a_verb_the_role_does_not_grant(harness: Harness) -> None:
    harness.seed()
    staging = _client(harness, harness.staging_context, "staging")
    name = harness.staging.app_name(harness.order[0])
    with pytest.raises(HubError) as raised:
        staging.patch(name, {"operation": {"sync": {}}})
    assert raised.value.status == 403 and "forbidden" in raised.value.reason
    assert harness.staging.patched() == []


def test_watch_streams_the_controller_reacting_to_an_operation(harness: Harness) -> None:
    harness.seed(script=Script(progressing_reads=1))
    prod = _client(harness, harness.prod_context, "prod")
    name = harness.prod.app_name(harness.order[0])
    prod.patch(name, {"operation": {"sync": {"revision": "c" * 40}}})
    phases = []
    for _ in range(4):
        for obj in prod.watch(name, resource_version=None, timeout_seconds=5):
            phases.append((obj["status"]["operationState"]["phase"], obj["status"]["health"]["status"]))
    assert phases[0] == ("Running", "Progressing")
    assert phases[-1] == ("Succeeded", "Healthy")
    assert harness.prod.apps[name]["status"]["summary"]["images"][-1].endswith(
        f"/{harness.prod_config.ecr.prefix}/{harness.prod_config.sentinel_service}:{NEW_TAG}"
    )


def test_a_watch_without_news_lasts_its_timeout_on_the_fake_clock(harness: Harness) -> None:
    harness.seed()
    prod = _client(harness, harness.prod_context, "prod")
    name = harness.prod.app_name(harness.order[0])
    before = harness.clock.now()
    assert list(prod.watch(name, resource_version="1", timeout_seconds=7)) == []
    assert harness.clock.now() - before == 7


def test_unreachable_hub_is_a_hub_error_without_status(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", {"gone": f"http://127.0.0.1:{closed_port()}"})
    apps = connect("prod", str(kubeconfig), "gone")
    with pytest.raises(HubError) as raised:
        apps.list("a=b")
    assert raised.value.status == 0 and raised.value.transient


def test_the_controller_prunes_only_when_the_operation_says_so(harness: Harness) -> None:
    harness.seed()
    name = harness.prod.app_name(harness.order[0])
    removed = ("Deployment/shop-legacy", "Service/shop-legacy")
    client = _client(harness, harness.prod_context, "prod")
    for prune, expected in ((False, "OutOfSync"), (True, "Synced")):
        harness.prod.scripts[name] = Script(progressing_reads=0, removes=removed)
        client.patch(
            name, {"operation": {"sync": {"prune": prune}, "info": [{"name": "deploy-id", "value": "x"}]}}
        )
        for _ in range(4):
            app = client.get(name)
        assert app["status"]["operationState"]["phase"] == "Succeeded"
        assert app["status"]["sync"]["status"] == expected
        results = {r["status"] for r in app["status"]["operationState"]["syncResult"]["resources"]}
        assert results == ({"Pruned"} if prune else {"PruneSkipped"})
        assert [r["requiresPruning"] for r in app["status"]["resources"]] == ([] if prune else [True, True])


def test_the_controller_syncs_the_operations_source_else_the_spec_at_start(harness: Harness) -> None:
    """argo-cd v3.4.4 controller/sync.go ``newSyncOperationResult``: a spec change between the
    patch and the start (Image Updater moving the tag) is synced unless the operation carries
    its own source; Argo CD then compares with the moved spec (OutOfSync)."""
    harness.seed()
    region = harness.order[0]
    name = harness.prod.app_name(region)
    client = _client(harness, harness.prod_context, "prod")

    def set_tag(app: dict[str, Any], tag: str) -> None:
        for parameter in app["spec"]["source"]["helm"]["parameters"]:
            if parameter["name"] == TAG_PARAMETER:
                parameter["value"] = tag

    for pinned, synced_tag, sync_status in ((False, OTHER_TAG, "Synced"), (True, NEW_TAG, "OutOfSync")):
        set_tag(harness.prod.apps[name], NEW_TAG)
        harness.prod.scripts[name] = Script(progressing_reads=0)
        read = client.get(name)
        sync: dict[str, Any] = {"prune": True}
        if pinned:
            sync["source"] = read["spec"]["source"]
        harness.prod.after_patch[name] = lambda app: set_tag(app, OTHER_TAG)
        client.patch(name, {"operation": {"sync": sync, "info": [{"name": "deploy-id", "value": "x"}]}})
        for _ in range(3):
            app = client.get(name)
        state = app["status"]["operationState"]
        assert state["phase"] == "Succeeded"
        parameters = state["syncResult"]["source"]["helm"]["parameters"]
        assert [p["value"] for p in parameters if p["name"] == TAG_PARAMETER] == [synced_tag]
        assert app["status"]["summary"]["images"] == images(harness.prod_config, region, synced_tag)
        assert app["status"]["sync"]["status"] == sync_status
