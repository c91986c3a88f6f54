"""The GitHub Actions workflows, checked offline.

zizmor audits them; the rest are this platform's own rules: actions pinned to commits, an OIDC
token only for jobs that assume a role, no long-lived AWS keys, images pushed only from the deploy
branches with a tag Image Updater accepts and the sentinel last, and docs/github-actions.md
listing exactly the secrets and variables the workflows use. The scripts the workflows run are
executed here too, with `docker`, `gh` and the program replaced by recorders.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import config, naming, scan
from infra.components import github_repository
from infra.config import DEFAULT_ALLOW_TAGS, PROJECT_ROOT, StackConfig, load_stack_file
from infra.documents import iam
from infra.documents import runner as runner_docs

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
DOC = PROJECT_ROOT / "docs" / "github-actions.md"
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
PULUMI_ACTION = "pulumi/actions"
STACKS = ("staging", "prod")

_USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?:#\s*(?P<comment>.*))?$")
_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@[0-9a-f]{40}$")
_RELEASE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
_REFERENCE = re.compile(r"\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)")
_EXPRESSION = re.compile(r"^\$\{\{\s*(.+?)\s*\}\}$")
_ROLE_VARIABLE = re.compile(r"vars\.(STAGING|PROD)_([A-Z]+)_ROLE_ARN")
_AWS_KEY_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# configure-aws-credentials' session length for OIDC when role-duration-seconds is not given.
OIDC_DEFAULT_SESSION_SECONDS = 3600


# ----------------------------------------------------------------------------------------------
# Reading the workflows
# ----------------------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def _workflows() -> dict[str, dict[str, Any]]:
    return {p.name: _load(p) for p in _workflow_files()}


def _jobs(workflow: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    jobs = workflow["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _all_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, job_id, job) for name, wf in _workflows().items() for job_id, job in _jobs(wf).items()]


def _steps(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def _action(step: Mapping[str, Any]) -> str | None:
    uses = step.get("uses")
    return None if uses is None else str(uses).split("@", 1)[0]


def _step(job: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The step whose id or name is ``key``."""
    found = [s for s in _steps(job) if key in (s.get("id"), s.get("name"))]
    assert len(found) == 1, f"expected one step {key!r}, found {len(found)}"
    return found[0]


def _steps_using(job: Mapping[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if _action(s) == action]


def _expression(value: Any) -> str:
    match = _EXPRESSION.match(str(value))
    assert match, f"expected a single ${{{{ }}}} expression, got {value!r}"
    return match.group(1)


def _workflow(name: str) -> dict[str, Any]:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path} is missing"
    return _load(path)


# ----------------------------------------------------------------------------------------------
# Running the workflows' scripts
# ----------------------------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


def _run_step(step: Mapping[str, Any], tmp: Path, env: Mapping[str, str], cwd: Path | None = None) -> Run:
    """Run a step's script the way the runner does (bash -e, or `shell: python`)."""
    script = str(step["run"])
    output = tmp / f"github-output-{time.monotonic_ns()}"
    output.touch()
    shell = step.get("shell", "bash")
    if shell == "python":
        path = tmp / "step.py"
        cmd = [sys.executable, str(path)]
    else:
        assert shell == "bash", f"unexpected shell {shell!r}"
        path = tmp / "step.sh"
        cmd = ["bash", "--noprofile", "--norc", "-e", str(path)]
    path.write_text(script)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        **env,
    }
    proc = subprocess.run(
        cmd, cwd=cwd or tmp, env=full_env, capture_output=True, text=True, timeout=120, check=False
    )
    outputs: dict[str, str] = {}
    for line in output.read_text().splitlines():
        key, sep, value = line.partition("=")
        assert sep, f"GITHUB_OUTPUT line without '=': {line!r}"
        outputs[key] = value
    return Run(proc.returncode, proc.stdout, proc.stderr, outputs)


def _recorder(bin_dir: Path, name: str, log: Path, body: str = "") -> None:
    """An executable `name` that appends its arguments (one call per line) to ``log``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> "{log}"\n{body}')
    exe.chmod(0o755)


def _calls(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


# ----------------------------------------------------------------------------------------------
# zizmor
# ----------------------------------------------------------------------------------------------


def _zizmor(target: Path) -> tuple[int, list[dict[str, Any]], str]:
    exe = Path(sys.executable).with_name("zizmor")
    binary = str(exe) if exe.exists() else shutil.which("zizmor")
    assert binary, "zizmor is not installed: pip install -e '.[dev]'"
    # Offline: no GitHub token, no online audits; ignore comments and config files are not honoured.
    env = {
        k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}
    }
    proc = subprocess.run(
        [binary, "--offline", "--no-config", "--no-ignores", "--format", "json", str(target)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    assert isinstance(findings, list), proc.stdout
    return proc.returncode, findings, proc.stderr


def test_the_four_workflows_exist() -> None:
    names = {p.name for p in _workflow_files()}
    assert {"build-images.yml", "preview.yml", "up.yml", "deploy-prod.yml"} <= names


def test_zizmor_finds_nothing() -> None:
    code, findings, stderr = _zizmor(WORKFLOWS)
    summary = [f"{f['ident']}: {f.get('desc', '')}" for f in findings]
    assert findings == [], summary
    assert code == 0, stderr
    # Not vacuous: zizmor audited every workflow.
    audited = {(PROJECT_ROOT / path).resolve() for path in re.findall(r"completed (\S+)", stderr)}
    assert {p.resolve() for p in _workflow_files()} <= audited, stderr


def test_zizmor_would_catch_an_unsafe_workflow(tmp_path: Path) -> None:
    # The check above is only worth something if zizmor audits, in this mode, what it is given.
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: pull_request_target\n"
        "permissions: write-all\n"
        "jobs:\n"
        "  bad:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with:\n"
        "          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    code, findings, _ = _zizmor(workflows)
    idents = {f["ident"] for f in findings}
    assert code != 0
    assert {"template-injection", "unpinned-uses", "artipacked"} <= idents, idents


def _zizmor_personas() -> list[str]:
    exe = scan.find_zizmor()
    assert exe, "zizmor is not installed: pip install -e '.[dev]'"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60, check=True)
    block = proc.stdout.split("--persona <PERSONA>", 1)[1].split("[default:", 1)[0]
    return re.findall(r"^\s*-\s*([a-z]+):", block, flags=re.MULTILINE)


def test_auditor_is_zizmors_strictest_persona() -> None:
    """zizmor's personas, from least to most findings: regular, pedantic ("code smells OK"),
    auditor ("false positives OK"): https://docs.zizmor.sh/usage/#using-personas (zizmor 1.x,
    `zizmor --help`). A new persona fails this test, so the scan below is moved to it."""
    assert sorted(_zizmor_personas()) == ["auditor", "pedantic", "regular"]


def test_zizmor_at_its_strictest_persona_finds_only_what_scan_skips_justifies() -> None:
    """`zizmor --persona auditor` over .github/workflows (infra.scan.run_zizmor, offline, no
    config, no ignore comments): every finding is justified in scan-skips.yaml and every zizmor
    entry there still matches a finding. Runs without checkov (tests/stack/test_scan.py needs it)."""
    findings = [f for f in scan.run_zizmor(WORKFLOWS) if f.framework == "zizmor"]
    skips = [s for s in scan.load_skips() if s.framework == "zizmor"]
    unjustified, stale = scan.judge(findings, skips)
    assert not unjustified, [f.line() for f in unjustified]
    assert not stale, [f"{s.check} {s.resources}" for s in stale]
    # The auditor persona sees more than the regular run above: the preview token outside an
    # environment, justified in scan-skips.yaml.
    assert {(f.check, f.resource) for f in findings} >= {("secrets-outside-env", "preview.yml:preview")}


def test_the_strict_zizmor_check_would_catch_a_new_finding(tmp_path: Path) -> None:
    # Not vacuous: a second job reading a secret outside an environment is not justified.
    workflows = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, workflows)
    (workflows / "build-images.yml").write_text(
        (workflows / "build-images.yml")
        .read_text()
        .replace(
            "          TAG: ${{ steps.tag.outputs.tag }}\n        run: |\n          set -euo pipefail\n          read -r",
            "          TAG: ${{ steps.tag.outputs.tag }}\n          LEAK: ${{ secrets.PROD_PULUMI_TOKEN }}\n        run: |\n          set -euo pipefail\n          read -r",
            1,
        )
    )
    findings = scan.run_zizmor(workflows)
    skips = [s for s in scan.load_skips() if s.framework == "zizmor"]
    unjustified, _ = scan.judge(findings, skips)
    assert ("secrets-outside-env", "build-images.yml:push") in {(f.check, f.resource) for f in unjustified}


# ----------------------------------------------------------------------------------------------
# Rules for every workflow
# ----------------------------------------------------------------------------------------------


def test_every_action_is_pinned_to_a_commit_with_its_release() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in _workflow_files():
        lines = [m for line in path.read_text().splitlines() if (m := _USES_LINE.match(line))]
        parsed = [s["uses"] for job in _jobs(_load(path)).values() for s in _steps(job) if "uses" in s]
        parsed += [j["uses"] for j in _jobs(_load(path)).values() if "uses" in j]
        # Every `uses:` the YAML has is one this line scan saw (no other spelling slips through).
        assert sorted(m.group("ref") for m in lines) == sorted(parsed), path.name
        for m in lines:
            ref, comment = m.group("ref"), (m.group("comment") or "").strip()
            assert _PINNED.match(ref), f"{path.name}: {ref} is not pinned to a full commit SHA"
            release = comment.split()[0] if comment else ""
            assert _RELEASE.match(release), f"{path.name}: {ref} needs a '# vX.Y.Z' comment"
            action, sha = ref.split("@")
            pins.setdefault(action, set()).add((sha, release))
    assert pins, "no actions found"
    for action, seen in pins.items():
        assert len(seen) == 1, f"{action} is pinned to different commits: {sorted(seen)}"


def test_only_jobs_that_assume_a_role_get_an_oidc_token() -> None:
    for name, wf in _workflows().items():
        top = wf.get("permissions")
        assert top in ({}, {"contents": "read"}), (
            f"{name}: top-level permissions must be {{}} or contents: read"
        )
        for job_id, job in _jobs(wf).items():
            token = isinstance(job.get("permissions"), dict) and job["permissions"].get("id-token") == "write"
            assumes = bool(_steps_using(job, CONFIGURE_AWS))
            assert token == assumes, f"{name}/{job_id}: id-token: write={token}, assumes a role={assumes}"


def test_every_job_states_least_permissions() -> None:
    for name, job_id, job in _all_jobs():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}/{job_id}: needs its own permissions map"
        for scope, level in perms.items():
            assert level in ("read", "write", "none"), f"{name}/{job_id}: {scope}: {level}"
            if level == "write":
                assert scope in {"id-token", "pull-requests", "deployments"}, (
                    f"{name}/{job_id}: {scope}: write"
                )
            if scope == "deployments" and level == "write":
                # Release records (infra/release_records.py): only the prod deploy writes them.
                assert (name, job_id) == ("deploy-prod.yml", "deploy"), f"{name}/{job_id}: deployments: write"
            if scope == "pull-requests" and level == "write":
                assert name == "preview.yml", f"{name}/{job_id} has no pull request to comment on"


# The steps that read the session configure-aws-credentials exported (to store it in a named
# profile) or drop it from their environment: the only places a credential variable may appear.
_SESSION_STEPS = {
    "deploy-prod.yml": {
        "Kubeconfig of the staging hub",
        "Kubeconfig of the prod hub",
        "python -m infra.deploy prod",
    }
}


def test_role_arns_come_from_variables_never_from_keys() -> None:
    for path in _workflow_files():
        text = path.read_text()
        for kind, ref in _REFERENCE.findall(text):
            if kind == "secrets":
                assert "AWS" not in ref.upper(), f"{path.name}: secret {ref}"
        # No key is ever handed to a workflow (env, with, secrets): only configure-aws-credentials
        # sets the credential variables, and only the session steps' scripts read or unset them.
        wf = _load(path)
        for job_id, job in _jobs(wf).items():
            for step in _steps(job):
                script = str(step.get("run", ""))
                rest = yaml.safe_dump({k: v for k, v in step.items() if k != "run"})
                for key in _AWS_KEY_NAMES:
                    assert key not in rest, f"{path.name}/{job_id}: {key} outside a script"
                    if key in script:
                        assert step.get("name") in _SESSION_STEPS.get(path.name, set()), (
                            f"{path.name}/{job_id}: {step.get('name')!r} reads {key}"
                        )
            job_rest = yaml.safe_dump({k: v for k, v in job.items() if k != "steps"})
            assert not any(key in job_rest for key in _AWS_KEY_NAMES), f"{path.name}/{job_id}"
        top = yaml.safe_dump({k: v for k, v in wf.items() if k != "jobs"})
        assert not any(key in top for key in _AWS_KEY_NAMES), path.name
    for name, job_id, job in _all_jobs():
        matrix_roles = [
            str(row.get("role")) for row in (job.get("strategy", {}).get("matrix", {}).get("include") or [])
        ]
        for step in _steps_using(job, CONFIGURE_AWS):
            inputs = step.get("with", {})
            assert not {"aws-access-key-id", "aws-secret-access-key"} & set(inputs), f"{name}/{job_id}"
            role = _expression(inputs["role-to-assume"])
            roles = [_expression(r) for r in matrix_roles] if role == "matrix.role" else [role]
            assert roles, f"{name}/{job_id}: matrix.role without matrix roles"
            for r in roles:
                assert re.fullmatch(r"vars\.[A-Z][A-Z0-9_]*_ROLE_ARN", r), f"{name}/{job_id}: {r}"


def test_checkouts_keep_no_credentials() -> None:
    for name, job_id, job in _all_jobs():
        for step in _steps_using(job, "actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{name}/{job_id}"


def test_no_expression_is_pasted_into_a_script() -> None:
    for name, job_id, job in _all_jobs():
        for step in _steps(job):
            if "run" in step:
                assert "${{" not in str(step["run"]), f"{name}/{job_id}: {step.get('name', step['run'])!r}"


def test_every_workflow_has_concurrency_and_every_job_a_timeout() -> None:
    for name, wf in _workflows().items():
        assert "group" in wf.get("concurrency", {}), f"{name}: no concurrency group"
        for job_id, job in _jobs(wf).items():
            timeout = job.get("timeout-minutes")
            assert isinstance(timeout, int) and 0 < timeout <= 180, f"{name}/{job_id}: timeout {timeout}"


def test_mutating_workflows_are_never_cancelled_half_way() -> None:
    for name in ("build-images.yml", "up.yml", "deploy-prod.yml"):
        assert _workflow(name)["concurrency"]["cancel-in-progress"] is False, name


def test_python_steps_that_read_the_stack_files_have_pyyaml() -> None:
    # `shell: python` is the setup-python interpreter unless .venv/bin was put first on the PATH;
    # infra.config needs PyYAML, which that bare interpreter lacks.
    for name, job_id, job in _all_jobs():
        steps = _steps(job)
        for index, step in enumerate(steps):
            script = str(step.get("run", ""))
            if step.get("shell") != "python" or not re.search(r"^\s*(from infra|import yaml)", script, re.M):
                continue
            earlier = "\n".join(str(s.get("run", "")) for s in steps[:index])
            ready = '/.venv/bin" >> "$GITHUB_PATH"' in earlier or re.search(r"pip install .*PyYAML", earlier)
            assert ready, (
                f"{name}/{job_id}: {step.get('id', step.get('name'))} imports infra or yaml without them"
            )


# ----------------------------------------------------------------------------------------------
# The roles the jobs assume (infra.documents.iam.role_specs)
# ----------------------------------------------------------------------------------------------


def _role_spec(variable: str) -> tuple[StackConfig, iam.RoleSpec]:
    """The stack config and role spec a ``vars.<STACK>_<PURPOSE>_ROLE_ARN`` variable names."""
    match = _ROLE_VARIABLE.fullmatch(variable)
    assert match, f"{variable}: not a <STACK>_<PURPOSE>_ROLE_ARN variable"
    cfg = load_stack_file(match.group(1).lower())
    specs = {s.purpose: s for s in iam.role_specs(cfg)}
    purpose = match.group(2).lower()
    assert purpose in specs, (
        f"{variable}: the {cfg.environment} stack has no {purpose} role ({sorted(specs)})"
    )
    return cfg, specs[purpose]


def _job_subjects(
    workflow: Mapping[str, Any], job: Mapping[str, Any], cfg: StackConfig, file: str
) -> set[str]:
    """Every `sub` the job's OIDC token can carry, in ``cfg``'s subject form, under the
    repository's subject template (repo, context, job_workflow_ref: iam.SUBJECT_CLAIM_KEYS)."""
    gh = cfg.github
    on = workflow["on"]
    branches = list((on.get("push") or {}).get("branches") or []) if "push" in on else []
    environment = job.get("environment")
    if isinstance(environment, Mapping):
        environment = environment.get("name")
    if environment is not None:
        # A job in an environment gets the environment subject, whatever its event; the ref is
        # the branch it runs on: a pushed branch, or for a dispatch whatever branch is chosen,
        # which the environment's deployment branch policy holds to the release branch.
        assert "${{" not in str(environment), f"environment {environment!r}: the subject must be static"
        refs = branches if set(on) == {"push"} else [iam.RELEASE_BRANCH]
        assert set(on) <= {"push", "workflow_dispatch"}, (
            f"{file}: an environment job triggered by {sorted(on)}"
        )
        return {iam.environment_subject(gh, str(environment), file, f"refs/heads/{b}") for b in refs}
    if set(on) == {"pull_request"}:
        return {iam.pull_request_subject(gh, file)}
    if set(on) == {"push"} and set(on["push"] or {}) == {"branches"}:
        return {iam.branch_subject(gh, b, file) for b in branches}
    raise AssertionError(f"cannot tell the subject of a job without environment triggered by {sorted(on)}")


def _assumed_roles() -> list[tuple[str, str, dict[str, Any], str]]:
    """(workflow, job id, configure-aws-credentials step, role variable) for every role assumed."""
    found: list[tuple[str, str, dict[str, Any], str]] = []
    for name, job_id, job in _all_jobs():
        rows = job.get("strategy", {}).get("matrix", {}).get("include") or []
        for step in _steps_using(job, CONFIGURE_AWS):
            role = _expression(step["with"]["role-to-assume"])
            variables = [_expression(r["role"]) for r in rows] if role == "matrix.role" else [role]
            found.extend((name, job_id, step, v) for v in variables)
    return found


def test_every_role_a_job_assumes_trusts_that_job() -> None:
    workflows = _workflows()
    assumed = _assumed_roles()
    assert assumed
    for name, job_id, _step, variable in assumed:
        cfg, spec = _role_spec(variable)
        subjects = _job_subjects(workflows[name], _jobs(workflows[name])[job_id], cfg, name)
        assert subjects <= set(spec.subjects), (
            f"{name}/{job_id} assumes {spec.role_name} with {sorted(subjects)}; it trusts {list(spec.subjects)}"
        )


def test_every_session_fits_its_role() -> None:
    for name, job_id, step, variable in _assumed_roles():
        _cfg, spec = _role_spec(variable)
        asked = int(step["with"].get("role-duration-seconds", OIDC_DEFAULT_SESSION_SECONDS))
        # STS refuses a DurationSeconds above the role's MaxSessionDuration.
        assert asked <= spec.max_session_seconds, f"{name}/{job_id}: {asked}s > {spec.role_name}'s limit"


def test_every_role_is_assumed_where_the_readme_says() -> None:
    # Who assumes what (README, "GitHub Actions roles"; docs/github-actions.md).
    used = {(name, variable) for name, _job, _step, variable in _assumed_roles()}
    assert used == {
        ("build-images.yml", "vars.STAGING_PUSH_ROLE_ARN"),
        ("preview.yml", "vars.STAGING_PREVIEW_ROLE_ARN"),
        ("preview.yml", "vars.PROD_PREVIEW_ROLE_ARN"),
        ("up.yml", "vars.STAGING_UP_ROLE_ARN"),
        ("up.yml", "vars.PROD_UP_ROLE_ARN"),
        ("deploy-prod.yml", "vars.STAGING_VERIFY_ROLE_ARN"),
        ("deploy-prod.yml", "vars.PROD_DEPLOY_ROLE_ARN"),
    }


def test_the_subject_check_would_catch_a_job_in_the_wrong_environment() -> None:
    # Not vacuous: the prod up role does not trust the deploy's environment, nor the staging
    # preview role a deploy job.
    wf = _workflow("up.yml")
    job = {**_jobs(wf)["prod"], "environment": "production"}
    cfg, spec = _role_spec("vars.PROD_UP_ROLE_ARN")
    assert not _job_subjects(wf, job, cfg, "up.yml") <= set(spec.subjects)
    cfg, spec = _role_spec("vars.STAGING_PREVIEW_ROLE_ARN")
    assert not _job_subjects(_workflow("deploy-prod.yml"), _deploy_job(), cfg, "deploy-prod.yml") <= set(
        spec.subjects
    )
    # Nor does a role trust its own environment named by another workflow (GitHub creates an
    # environment, unprotected, the first time a workflow names it): the subject carries the file.
    cfg, spec = _role_spec("vars.PROD_DEPLOY_ROLE_ARN")
    assert _job_subjects(_workflow("deploy-prod.yml"), _deploy_job(), cfg, "deploy-prod.yml") <= set(
        spec.subjects
    )
    assert not _job_subjects(_workflow("deploy-prod.yml"), _deploy_job(), cfg, "evil.yml") <= set(
        spec.subjects
    )


# ----------------------------------------------------------------------------------------------
# Reachability: the jobs that talk to a hub's Kubernetes API run where they reach it (issue 15)
# ----------------------------------------------------------------------------------------------


def _scripts(job: Mapping[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in _steps(job))


def _hub_stacks(job: Mapping[str, Any]) -> set[str]:
    """The stacks whose hub API the job talks to: `pulumi up` of a stack declares Kubernetes
    objects on its hub; the deploy reads and patches Applications on prod's hub."""
    stacks = {
        str(s["with"]["stack-name"])
        for s in _steps_using(job, PULUMI_ACTION)
        if s["with"].get("command") == "up"
    }
    if "infra.deploy" in _scripts(job):
        stacks.add("prod")
    return stacks


def test_every_job_that_touches_a_hub_runs_on_that_hubs_runner() -> None:
    touching = []
    for name, job_id, job in _all_jobs():
        stacks = _hub_stacks(job)
        if not stacks:
            continue
        touching.append((name, job_id))
        assert len(stacks) == 1, (
            f"{name}/{job_id} touches the hubs of {sorted(stacks)}: one runner reaches one hub"
        )
        cfg = load_stack_file(stacks.pop())
        # The label CodeBuild routes to the project in the hub's VPC (infra.components.runner).
        assert job["runs-on"] == runner_docs.runs_on_label(cfg.environment), (name, job_id)
        assert _workflow(name)["name"] in runner_docs.RUNNER_WORKFLOWS, name
    assert {n for n, _ in touching} == {"up.yml", "deploy-prod.yml"}


def test_the_hub_runner_webhook_takes_exactly_the_hub_workflows() -> None:
    groups = runner_docs.webhook_filter_groups()
    assert len(groups) == 1
    (group,) = groups
    assert {"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"} in group
    [names] = [f["pattern"] for f in group if f["type"] == "WORKFLOW_NAME"]
    hub_workflows = {_workflow(n)["name"] for n, _j, job in _all_jobs() if _hub_stacks(job)}
    other = {_workflow(n)["name"] for n, _j, job in _all_jobs() if not _hub_stacks(job)} - hub_workflows
    assert all(re.fullmatch(names, w) for w in hub_workflows)
    assert not any(re.fullmatch(names, w) for w in other), other


# The only events whose jobs run on a hub runner: a push to the release branch (which prod's
# ruleset admits through a reviewed pull request only) and a dispatch by hand (whose job runs in a
# main-only environment). Every other trigger (pull_request, pull_request_target, issue_comment,
# workflow_run, a push to another branch, schedule, ...) runs code a pull request or a branch can
# change, so none of its jobs may name a hub runner's label.
_RUNNER_TRIGGERS = {"push": {"branches": [iam.RELEASE_BRANCH]}, "workflow_dispatch": None}


def test_hub_runner_jobs_run_only_on_a_push_to_main_or_by_hand_in_a_main_only_environment() -> None:
    """The workflows' half of keeping pull requests off the hub runners: only push-to-main and
    workflow_dispatch workflows name a runner label, each such job runs in an environment prod's
    stack declares with the main-only branch rule, and no workflow another event starts names
    one. (The other half, and what remains, is in docs/github-actions.md, "What a job on the hub
    runner gets": CodeBuild cannot filter a queued job by its event or branch.)"""
    stacks = [load_stack_file(s) for s in ("prod", "staging")]
    prod = next(c for c in stacks if c.is_prod)
    main_only = {e.name for e in github_repository.managed_environments(prod, stacks)}
    runner_jobs = 0
    for name, wf in _workflows().items():
        on = wf["on"]
        labels = [str(job.get("runs-on")) for job in _jobs(wf).values()]
        on_runner = [
            job for job in _jobs(wf).values() if str(job.get("runs-on")).startswith(runner_docs.LABEL_PREFIX)
        ]
        if not on_runner:
            assert not any(runner_docs.LABEL_PREFIX in label for label in labels), name
            continue
        assert isinstance(on, dict) and set(on) <= set(_RUNNER_TRIGGERS), (name, on)
        for event, spec in on.items():
            if event == "push":
                assert spec == _RUNNER_TRIGGERS["push"], (name, spec)
        assert wf["name"] in runner_docs.RUNNER_WORKFLOWS, name
        for job in on_runner:
            runner_jobs += 1
            environment = job.get("environment")
            environment = environment.get("name") if isinstance(environment, dict) else environment
            assert environment in main_only, (name, environment, sorted(main_only))
    assert runner_jobs > 0


def test_no_job_on_a_github_hosted_runner_could_reach_a_hub() -> None:
    # The converse: nothing else is routed to a runner in a hub's VPC.
    for name, job_id, job in _all_jobs():
        if not _hub_stacks(job):
            assert not str(job["runs-on"]).startswith(runner_docs.LABEL_PREFIX), (name, job_id)


# ----------------------------------------------------------------------------------------------
# Pull requests never reach prod (issue 15)
# ----------------------------------------------------------------------------------------------


def _pull_request_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(n, j, job) for n, j, job in _all_jobs() if "pull_request" in _workflow(n)["on"]]


def _secrets_of(job: Mapping[str, Any]) -> set[str]:
    return {ref for kind, ref in _REFERENCE.findall(yaml.safe_dump(dict(job))) if kind == "secrets"}


def _stack_tokens() -> dict[str, str]:
    """Each stack's Pulumi token secret, ``<STACK>_PULUMI_TOKEN``."""
    return {s: github_repository.pulumi_token_secret(load_stack_file(s)) for s in STACKS}


def test_no_pull_request_job_holds_an_up_credential_or_an_environment() -> None:
    environment_secrets = set().union(
        *(_secrets_of(job) for _n, _j, job in _all_jobs() if job.get("environment") is not None)
    )
    assert set(_stack_tokens().values()) <= environment_secrets
    pr_jobs = _pull_request_jobs()
    assert pr_jobs
    for name, job_id, job in pr_jobs:
        assert job.get("environment") is None, f"{name}/{job_id} runs in an environment meant for a deploy"
        shared = _secrets_of(job) & environment_secrets
        assert not shared, f"{name}/{job_id} reads {sorted(shared)}, which the environment jobs hold"


def test_each_up_job_reads_its_own_stacks_token_and_no_other() -> None:
    """Per-stack tokens: staging's environment never holds prod's token, nor prod's staging's.
    Each is a secret of its own environment (GitHub gives an environment's secrets only to jobs
    that name it: https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments#environment-secrets)."""
    tokens = _stack_tokens()
    assert len(set(tokens.values())) == len(tokens)
    for stack, job in _jobs(_workflow("up.yml")).items():
        # prod's job also reads staging's `addons` output with its own token (docs/addons.md).
        for step in _steps_using(job, PULUMI_ACTION):
            assert _expression(step["env"]["PULUMI_ACCESS_TOKEN"]) == f"secrets.{tokens[stack]}", stack
        others = set(tokens.values()) - {tokens[stack]}
        assert not _secrets_of(job) & others, (stack, _secrets_of(job) & others)


def test_every_secret_is_out_of_reach_of_a_pull_request_and_of_other_branches() -> None:
    """No write secret is reachable from a pull-request job, nor from an environment a PR branch
    may deploy to. A secret is read either by a job in an environment that the stack owning the
    repository's settings declares with a release-branch-only deployment rule (GitHub: an
    environment with "Selected branches and tags" admits only the branches its rules name,
    https://docs.github.com/en/actions/reference/workflows-and-actions/deployments-and-environments#deployment-branches-and-tags),
    or by a pull-request job, and then only the read-only preview token (documented as Stack Read)."""
    configs = [load_stack_file(s) for s in STACKS]
    [owner] = [c for c in configs if github_repository.owns_repository_settings(c)]
    managed = {e.name for e in github_repository.managed_environments(owner, configs)}
    rows = {r["name"]: r for r in _doc_table()}
    readers = 0
    for name, job_id, job in _all_jobs():
        secrets = _secrets_of(job)
        if not secrets:
            continue
        readers += 1
        environment = job.get("environment")
        if environment is not None:
            assert environment in managed, (
                f"{name}/{job_id} reads {sorted(secrets)} in the environment {environment!r}, which no "
                f"stack declares with a main-only rule (declared: {sorted(managed)})"
            )
            continue
        assert "pull_request" in _workflow(name)["on"], (
            f"{name}/{job_id} reads {sorted(secrets)} outside an environment"
        )
        for secret in secrets:
            assert "Stack Read" in rows[secret]["value"], secret
    assert readers >= 3


def test_the_secret_check_would_catch_a_secret_in_an_undeclared_environment() -> None:
    # Not vacuous: an environment named in no stack file is not managed.
    configs = [load_stack_file(s) for s in STACKS]
    [owner] = [c for c in configs if github_repository.owns_repository_settings(c)]
    managed = {e.name for e in github_repository.managed_environments(owner, configs)}
    assert "pr-scratch" not in managed
    assert {c.github.environment for c in configs} <= managed


def test_the_pull_request_state_token_is_documented_as_read_only() -> None:
    rows = {r["name"]: r for r in _doc_table()}
    for _name, _job, job in _pull_request_jobs():
        for secret in _secrets_of(job):
            assert "Stack Read" in rows[secret]["value"], secret
    for stack, token in _stack_tokens().items():
        assert "never the repository" in rows[token]["value"], token
        assert f"`{load_stack_file(stack).github.environment}` environment" in rows[token]["value"], token
    assert "secret of the `prod` environment" in rows["REPOSITORY_ADMIN_TOKEN"]["value"]


def test_no_pull_request_job_assumes_a_role_that_reads_data() -> None:
    for name, job_id, _step, variable in _assumed_roles():
        if "pull_request" not in _workflow(name)["on"]:
            continue
        cfg, spec = _role_spec(variable)
        assert spec.purpose == iam.PREVIEW, (name, job_id, variable)
        assert spec.managed_policy_arns == (iam.VIEW_ONLY_ACCESS,), (name, variable)
        guard = iam.inline_policy(spec, iam.policy_context(cfg))
        assert guard is not None
        denied = {a for st in guard["Statement"] if st["Effect"] == "Deny" for a in st["Action"]}
        assert set(iam.DATA_READ_ACTIONS) <= denied


def _by_hand_table() -> list[dict[str, str]]:
    text = DOC.read_text()
    begin, end = "<!-- by-hand:begin -->", "<!-- by-hand:end -->"
    assert begin in text and end in text, f"{DOC.name}: the by-hand markers are missing"
    lines = [ln.strip() for ln in text.split(begin, 1)[1].split(end, 1)[0].strip().splitlines()]
    header = [c.strip().lower() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


def test_the_doc_lists_every_setting_still_set_by_hand_and_nothing_the_program_declares() -> None:
    rows = _by_hand_table()
    named = {n.strip() for r in rows for n in r["setting"].split(",")}
    # Every secret and variable the workflows read is set by a person, but the role ARNs that
    # prod's stack publishes itself (infra.components.github_repository)...
    used = {ref for path in _workflow_files() for _kind, ref in _REFERENCE.findall(path.read_text())}
    published = {
        github_repository.role_variable(cfg, s.purpose)
        for cfg in map(load_stack_file, STACKS)
        if github_repository.owns_repository_settings(cfg)
        for s in iam.role_specs(cfg)
    }
    assert published and published <= used
    assert not published & named, published & named
    used -= published
    assert used <= named, used - named
    # ...plus the one handshake the runners need, and nothing else.
    extra = named - used
    assert extra == {"CodeConnections connection `platform-<environment>-runner`"}, extra
    # What the program declares is not in the list: the subject template, the environments'
    # reviewers and branch rules (infra.components.github_repository).
    text = " ".join(r["setting"].lower() for r in rows)
    for managed in ("subject", "reviewer", "deployment branch", "environment protection"):
        assert managed not in text, managed


def _doc_table() -> list[dict[str, str]]:
    text = DOC.read_text()
    begin, end = "<!-- secrets-and-variables:begin -->", "<!-- secrets-and-variables:end -->"
    assert begin in text and end in text, f"{DOC.name}: the table markers are missing"
    lines = [ln.strip() for ln in text.split(begin, 1)[1].split(end, 1)[0].strip().splitlines()]
    header = [c.strip().lower() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]
    assert rows, "the table is empty"
    return rows


def test_the_doc_lists_exactly_the_secrets_and_variables_the_workflows_use() -> None:
    kinds = {"secrets": "secret", "vars": "variable"}
    used = {
        (path.name, kinds[kind], ref)
        for path in _workflow_files()
        for kind, ref in _REFERENCE.findall(path.read_text())
    }
    documented = {(r["workflow"], r["kind"], r["name"]) for r in _doc_table()}
    assert documented == used, {"undocumented": used - documented, "unused": documented - used}


def test_the_documented_role_arns_follow_the_naming_contract() -> None:
    purposes = {stack: {s.purpose for s in iam.role_specs(load_stack_file(stack))} for stack in STACKS}
    assert purposes == {"staging": {"push", "preview", "up", "verify"}, "prod": {"preview", "up", "deploy"}}
    roles = [r for r in _doc_table() if r["name"].endswith("_ROLE_ARN")]
    assert roles
    for row in roles:
        match = re.fullmatch(r"(STAGING|PROD)_([A-Z]+)_ROLE_ARN", row["name"])
        assert match, row["name"]
        stack, purpose = match.group(1).lower(), match.group(2).lower()
        assert purpose in purposes[stack], f"{row['name']}: {stack} has no {purpose} role"
        cfg = load_stack_file(stack)
        role = naming.role_name(cfg.environment, f"github-{purpose}")
        assert row["value"] == f"arn:aws:iam::{cfg.account_id}:role/{role}", row


# ----------------------------------------------------------------------------------------------
# build-images.yml
# ----------------------------------------------------------------------------------------------


def _build_job() -> dict[str, Any]:
    jobs = _jobs(_workflow("build-images.yml"))
    pushing = [job for job in jobs.values() if _steps_using(job, "aws-actions/amazon-ecr-login")]
    assert len(pushing) == 1, "expected one job that pushes images"
    return pushing[0]


def test_images_are_pushed_only_from_the_deploy_branches() -> None:
    staging = load_stack_file("staging")
    on = _workflow("build-images.yml")["on"]
    assert set(on) == {"push"}, f"build-images must run on push only, not {sorted(on)}"
    assert set(on["push"]) == {"branches"}
    assert on["push"]["branches"] == list(staging.github.deploy_branches)
    assert load_stack_file("prod").github.deploy_branches == (), "prod never builds images"


def test_images_are_pushed_with_the_staging_push_role() -> None:
    [step] = _steps_using(_build_job(), CONFIGURE_AWS)
    assert _expression(step["with"]["role-to-assume"]) == "vars.STAGING_PUSH_ROLE_ARN"


def test_latest_is_never_pushed() -> None:
    text = (WORKFLOWS / "build-images.yml").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert not re.search(r"\blatest\b", code)


def test_the_tag_format_is_one_image_updater_accepts() -> None:
    script = str(_step(_build_job(), "tag")["run"])
    formats = re.findall(r"date -u \+([%A-Za-z.:_-]+)", script)
    assert len(formats) == 1, "the tag must come from one `date -u +FORMAT`"
    sha = "0123456789abcdef0123456789abcdef01234567"
    tag = f"{time.strftime(formats[0], time.gmtime())}-{sha[:7]}"
    for allow in (DEFAULT_ALLOW_TAGS, load_stack_file("staging").image_updater.allow_tags):
        assert re.fullmatch(allow.removeprefix("regexp:"), tag), (tag, allow)


def test_the_tag_step_makes_one_tag_of_the_commit(tmp_path: Path) -> None:
    sha = "89abcdef0123456789abcdef0123456789abcdef"
    before = time.strftime("%Y%m%d.%H%M%S", time.gmtime())
    run = _run_step(_step(_build_job(), "tag"), tmp_path, {"GITHUB_SHA": sha})
    after = time.strftime("%Y%m%d.%H%M%S", time.gmtime())
    assert run.returncode == 0, run.stderr
    tag = run.outputs["tag"]
    assert re.fullmatch(DEFAULT_ALLOW_TAGS.removeprefix("regexp:"), tag), tag
    stamp, short = tag.split("-")
    assert short == sha[:7]
    assert before <= stamp <= after


def _services_dir(root: Path, services: tuple[str, ...]) -> Path:
    for service in services:
        (root / "services" / service).mkdir(parents=True)
        (root / "services" / service / "Dockerfile").write_text("FROM scratch\n")
    return root


def _stack_step_env(branch: str = "deploy/staging", tag: str = "20261122.063000-0123abc") -> dict[str, str]:
    return {"PYTHONPATH": str(PROJECT_ROOT), "GITHUB_REF_NAME": branch, "TAG": tag}


def test_the_stack_step_orders_the_sentinel_last(tmp_path: Path) -> None:
    cfg = load_stack_file("staging")
    work = _services_dir(tmp_path / "work", cfg.services)
    run = _run_step(_step(_build_job(), "stack"), tmp_path, _stack_step_env(), cwd=work)
    assert run.returncode == 0, run.stderr
    services = run.outputs["services"].split()
    assert services[-1] == cfg.sentinel_service == run.outputs["sentinel"]
    assert services == [s for s in cfg.services if s != cfg.sentinel_service] + [cfg.sentinel_service]
    registry = naming.registry_host(cfg.account_id, cfg.ecr.primary_region)
    assert run.outputs["registry"] == registry
    assert run.outputs["repository-base"] == f"{registry}/{cfg.ecr.prefix}"
    assert run.outputs["region"] == cfg.ecr.primary_region


@pytest.mark.parametrize(
    ("case", "env", "drop"),
    [
        ("not a deploy branch", _stack_step_env(branch="main"), None),
        ("a tag Image Updater ignores", _stack_step_env(tag="latest"), None),
        ("a service without a Dockerfile", _stack_step_env(), load_stack_file("staging").services[0]),
    ],
)
def test_the_stack_step_refuses(tmp_path: Path, case: str, env: dict[str, str], drop: str | None) -> None:
    services = tuple(s for s in load_stack_file("staging").services if s != drop)
    work = _services_dir(tmp_path / "work", services)
    run = _run_step(_step(_build_job(), "stack"), tmp_path, env, cwd=work)
    assert run.returncode != 0, case
    assert "::error::" in run.stdout + run.stderr, case
    assert run.outputs == {}, case


def _push_env(tmp: Path, services: str, login_registry: str | None = None) -> dict[str, str]:
    registry = "111122223333.dkr.ecr.us-west-2.amazonaws.com"
    _recorder(tmp / "bin", "docker", tmp / "docker.log")
    return {
        "PATH": f"{tmp / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SERVICES": services,
        "SENTINEL": "web",
        "REGISTRY": registry,
        "REPOSITORY_BASE": f"{registry}/shop",
        "LOGIN_REGISTRY": login_registry or registry,
        "TAG": "20261122.063000-0123abc",
        "GITHUB_SHA": "0123abc" + "0" * 33,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/platform",
    }


def _push_step() -> dict[str, Any]:
    job = _build_job()
    [step] = [s for s in _steps(job) if "docker push" in str(s.get("run", ""))]
    return step


def test_every_image_is_built_before_any_push_and_the_sentinel_goes_last(tmp_path: Path) -> None:
    cfg = load_stack_file("staging")
    order = [s for s in cfg.services if s != cfg.sentinel_service] + [cfg.sentinel_service]
    run = _run_step(_push_step(), tmp_path, _push_env(tmp_path, " ".join(order)))
    assert run.returncode == 0, run.stderr
    calls = _calls(tmp_path / "docker.log")
    verbs = [c[0] for c in calls]
    assert verbs == ["build"] * len(order) + ["push"] * len(order)
    base, tag = "111122223333.dkr.ecr.us-west-2.amazonaws.com/shop", "20261122.063000-0123abc"
    pushed = [c[1] for c in calls if c[0] == "push"]
    assert pushed == [f"{base}/{s}:{tag}" for s in order]
    assert pushed[-1].split("/")[-1].startswith(f"{cfg.sentinel_service}:")
    builds = [c for c in calls if c[0] == "build"]
    assert [b[-1] for b in builds] == [f"services/{s}" for s in order]
    assert all(f"{base}/{s}:{tag}" in b for s, b in zip(order, builds, strict=True))


@pytest.mark.parametrize(
    ("case", "services", "login"),
    [
        ("the sentinel is not last", "web catalog checkout payments", None),
        (
            "logged in to another account",
            "catalog checkout payments web",
            "999999999999.dkr.ecr.us-west-2.amazonaws.com",
        ),
    ],
)
def test_the_push_step_refuses(tmp_path: Path, case: str, services: str, login: str | None) -> None:
    run = _run_step(_push_step(), tmp_path, _push_env(tmp_path, services, login))
    assert run.returncode != 0, case
    assert _calls(tmp_path / "docker.log") == [], f"{case}: docker ran"


# ----------------------------------------------------------------------------------------------
# preview.yml
# ----------------------------------------------------------------------------------------------


def test_preview_runs_the_tests_with_helm() -> None:
    job = _jobs(_workflow("preview.yml"))["test"]
    assert _steps_using(job, "azure/setup-helm"), "the chart tests need helm"
    assert any(str(s.get("run", "")).strip() == "make test" for s in _steps(job))
    assert _workflow("preview.yml")["on"] == {"pull_request": None}


def _plan_step() -> dict[str, Any]:
    job = _jobs(_workflow("preview.yml"))["plan-diff"]
    [step] = [s for s in _steps(job) if "infra.plan" in str(s.get("run", ""))]
    return step


# A stand-in for the program: records its arguments and working directory, writes the file
# named after --json, prints what it was asked.
_PROGRAM = """echo "cwd=$(basename "$PWD")" >> "{log}"
{fail}
prev=""
for a in "$@"; do
  if [ "$prev" = "--json" ]; then echo '{{}}' > "$a"; fi
  prev="$a"
done
echo "+ $(basename "$0") $*"
"""


@pytest.mark.parametrize("base_has_plan", [True, False])
def test_the_plan_diff_step_plans_both_sides_of_each_stack(tmp_path: Path, base_has_plan: bool) -> None:
    work, plans = tmp_path / "work", tmp_path / "plans"
    (work / ".base").mkdir(parents=True)
    log = tmp_path / "python.log"
    fail_in_base = 'if [ "$(basename "$PWD")" = .base ]; then exit 1; fi' if not base_has_plan else ""
    for name in ("python", "platform"):
        _recorder(work / ".venv" / "bin", name, log, _PROGRAM.format(log=log, fail=fail_in_base))
    run = _run_step(_plan_step(), tmp_path, {"PLANS": str(plans)}, cwd=work)
    assert run.returncode == 0, run.stderr
    calls = [line for line in log.read_text().splitlines() if not line.startswith("cwd=")]
    for stack in STACKS:
        # The base with its own program (python -m from .base), the PR with the installed CLI.
        assert f"-m infra.plan --stack {stack} --quiet --json {plans}/base-{stack}.json" in calls
        diff_call = f"diff {plans}/base-{stack}.json --stack {stack} --json {plans}/head-{stack}.json"
        assert (diff_call in calls) is base_has_plan
        assert f"plan --stack {stack}" in calls
    body = (plans / "comment.md").read_text()
    assert body.startswith("<!-- platform:plan-diff -->\n")
    for stack in STACKS:
        # The diff first, the full tree folded under it.
        diff_at = body.index(f"#### `{stack}`")
        fold_at = body.index(f"<details><summary>Full plan of <code>{stack}</code></summary>")
        assert diff_at < body.index("```diff", diff_at) < fold_at
        assert "+ platform plan --stack " + stack in body[fold_at:]
    assert ("The base has no offline plan" in body) is not base_has_plan


@pytest.mark.parametrize(("existing", "method"), [("", "POST"), ("4242\n77", "PATCH")])
def test_the_plan_diff_comment_is_updated_in_place(tmp_path: Path, existing: str, method: str) -> None:
    job = _jobs(_workflow("preview.yml"))["plan-diff"]
    [step] = [s for s in _steps(job) if "gh api" in str(s.get("run", ""))]
    assert "head.repo.full_name == github.repository" in str(step.get("if", "")), "forks cannot comment"
    log = tmp_path / "gh.log"
    listing = f'if [ "$2" = "--paginate" ]; then printf "%s" "{existing}"; fi\n'
    _recorder(tmp_path / "bin", "gh", log, listing)
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "GH_TOKEN": "token",
        "PR_NUMBER": "7",
        "BODY": str(tmp_path / "comment.md"),
        "GITHUB_REPOSITORY": "acme/platform",
    }
    run = _run_step(step, tmp_path, env)
    assert run.returncode == 0, run.stderr
    calls = _calls(log)
    assert len(calls) == 2
    assert calls[0][:3] == ["api", "--paginate", "repos/acme/platform/issues/7/comments"]
    write = calls[1]
    assert write[:3] == ["api", "--method", method]
    target = (
        "repos/acme/platform/issues/comments/4242"
        if method == "PATCH"
        else "repos/acme/platform/issues/7/comments"
    )
    assert write[3] == target


def test_preview_previews_each_stack_with_the_policy_pack_and_its_own_comment() -> None:
    job = _jobs(_workflow("preview.yml"))["preview"]
    rows = job["strategy"]["matrix"]["include"]
    assert sorted(r["stack"] for r in rows) == sorted(STACKS)
    for row in rows:
        assert _expression(row["role"]) == f"vars.{row['stack'].upper()}_PREVIEW_ROLE_ARN"
    [step] = _steps_using(job, PULUMI_ACTION)
    inputs = step["with"]
    assert inputs["command"] == "preview"
    assert inputs["policyPacks"] == "policies"
    assert inputs["comment-on-pr"] is True
    assert _expression(inputs["stack-name"]) == "matrix.stack"
    # The read-only team token: a pull request never holds up.yml's write token (issue 15).
    assert _expression(step["env"]["PULUMI_ACCESS_TOKEN"]) == "secrets.PULUMI_PREVIEW_TOKEN"
    # The action edits the comment whose body starts with "`preview` on <project>/<stack>": no
    # stack's heading may be a prefix of another's, or one stack would overwrite the other.
    if inputs.get("edit-pr-comment", True) is not False:
        for a in STACKS:
            for b in STACKS:
                assert a == b or not b.startswith(a), (a, b)


# ----------------------------------------------------------------------------------------------
# up.yml
# ----------------------------------------------------------------------------------------------


def test_up_applies_the_receiving_registry_first_each_in_its_stacks_environment() -> None:
    wf = _workflow("up.yml")
    assert wf["on"] == {"push": {"branches": ["main"]}}
    jobs = _jobs(wf)
    assert set(jobs) == {"staging", "prod"}
    staging, prod = load_stack_file("staging"), load_stack_file("prod")
    assert jobs["staging"]["environment"] == staging.github.environment
    # prod's github.environment (`prod`, whose reviewers approve prod's `pulumi up`), never its
    # deployEnvironment (`production`, the deploy's gate): the up role trusts only the former.
    assert jobs["prod"]["environment"] == prod.github.environment == "prod"
    assert jobs["prod"]["environment"] != prod.github.deploy_environment
    # The stack that receives images by replication is applied before the one that sends them
    # (docs/registry.md, "Bootstrap order"): ECR does not retry a replication that failed.
    assert staging.builds_images and not prod.builds_images
    assert "needs" not in jobs["prod"]
    assert jobs["staging"]["needs"] in ("prod", ["prod"])
    for stack, job in jobs.items():
        [aws] = _steps_using(job, CONFIGURE_AWS)
        assert _expression(aws["with"]["role-to-assume"]) == f"vars.{stack.upper()}_UP_ROLE_ARN"
        [pulumi] = [s for s in _steps_using(job, PULUMI_ACTION) if s["with"]["command"] == "up"]
        assert pulumi["with"]["stack-name"] == stack
        assert pulumi["with"]["policyPacks"] == "policies"
        assert _steps(job).index(aws) < _steps(job).index(pulumi)
        # Besides its up, a job only reads outputs (prod: staging's `addons`, for the pack).
        others = [s for s in _steps_using(job, PULUMI_ACTION) if s is not pulumi]
        assert all(s["with"]["command"] == "output" for s in others), stack


def test_prods_up_hands_the_pack_what_staging_runs() -> None:
    """gitops-addon-staged-before-prod judges prod's add-on versions against staging's stack
    output ``addons`` (policies/gitops.py): prod's up reads it first and passes it as the rule's
    policy config (pulumi/actions ``command: output`` sets each stack output as a step output;
    ``policyPackConfigs`` is ``--policy-pack-config``)."""
    job = _jobs(_workflow("up.yml"))["prod"]
    [read] = [s for s in _steps_using(job, PULUMI_ACTION) if s["with"]["command"] == "output"]
    [up] = [s for s in _steps_using(job, PULUMI_ACTION) if s["with"]["command"] == "up"]
    assert read["with"]["stack-name"] == "staging"
    steps = _steps(job)
    [config] = [s for s in steps if "gitops-addon-staged-before-prod" in str(s.get("run", ""))]
    assert steps.index(read) < steps.index(config) < steps.index(up)
    assert f"steps.{read['id']}.outputs.{naming.OUTPUT_ADDONS}" in str(config["env"]["STAGED_ADDONS"])
    assert str(config["env"]["CONFIG_FILE"]) == str(up["with"]["policyPackConfigs"])


# ----------------------------------------------------------------------------------------------
# deploy-prod.yml
# ----------------------------------------------------------------------------------------------


def _deploy_job() -> dict[str, Any]:
    return _jobs(_workflow("deploy-prod.yml"))["deploy"]


def test_deploy_prod_is_manual_and_behind_the_production_environment() -> None:
    wf = _workflow("deploy-prod.yml")
    assert set(wf["on"]) == {"workflow_dispatch"}
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"dry-run", "allow-unverified"}
    assert inputs["dry-run"]["type"] == inputs["allow-unverified"]["type"] == "boolean"
    assert inputs["allow-unverified"]["default"] is False
    assert _deploy_job()["environment"] == load_stack_file("prod").github.deploy_environment


def test_deploy_prod_runs_with_the_prod_deploy_role() -> None:
    steps = _steps(_deploy_job())
    [deploy] = [s for s in steps if "infra.deploy" in str(s.get("run", ""))]
    before = [s for s in steps[: steps.index(deploy)] if _action(s) == CONFIGURE_AWS]
    assert before, "no role assumed before the deploy"
    assert _expression(before[-1]["with"]["role-to-assume"]) == "vars.PROD_DEPLOY_ROLE_ARN"


def _kubeconfig_steps() -> dict[str, dict[str, Any]]:
    """The steps writing a hub's kubeconfig entry, by the stack their CLUSTER names."""
    runs = [s for s in _steps(_deploy_job()) if "update-kubeconfig" in str(s.get("run", ""))]
    found: dict[str, dict[str, Any]] = {}
    for step in runs:
        match = re.fullmatch(r"steps\.hubs\.outputs\.(\w+)-cluster", _expression(step["env"]["CLUSTER"]))
        assert match, step["env"]["CLUSTER"]
        found[match.group(1)] = step
    assert len(found) == len(runs)
    return found


def test_each_hub_is_described_with_its_own_accounts_role() -> None:
    # staging: the verify role (trusts this environment; the preview role trusts pull requests
    # only); prod: the deploy role. Each kubeconfig step follows the role of its account.
    steps = _steps(_deploy_job())
    expected = {"staging": "vars.STAGING_VERIFY_ROLE_ARN", "prod": "vars.PROD_DEPLOY_ROLE_ARN"}
    for stack, step in _kubeconfig_steps().items():
        [role] = [s for s in steps[: steps.index(step)] if _action(s) == CONFIGURE_AWS][-1:]
        assert _expression(role["with"]["role-to-assume"]) == expected[stack], stack
        assert _expression(role["with"]["aws-region"]) == f"steps.hubs.outputs.{stack}-region"
        assert _expression(step["env"]["REGION"]) == f"steps.hubs.outputs.{stack}-region"
    roles = [_expression(s["with"]["role-to-assume"]) for s in _steps_using(_deploy_job(), CONFIGURE_AWS)]
    assert roles == ["vars.STAGING_VERIFY_ROLE_ARN", "vars.PROD_DEPLOY_ROLE_ARN"]


def test_the_hub_clusters_come_from_the_stack_files(tmp_path: Path) -> None:
    run = _run_step(_step(_deploy_job(), "hubs"), tmp_path, {"PYTHONPATH": str(PROJECT_ROOT)})
    assert run.returncode == 0, run.stderr
    for stack in STACKS:
        cfg = load_stack_file(stack)
        assert run.outputs[f"{stack}-cluster"] == naming.cluster_name(cfg.environment, cfg.hub_region)
        assert run.outputs[f"{stack}-region"] == cfg.hub_region


def test_both_hubs_get_a_kubeconfig_entry_each_with_its_own_profile() -> None:
    steps = _kubeconfig_steps()
    assert set(steps) == set(STACKS)
    profiles = {stack: step["env"]["PROFILE"] for stack, step in steps.items()}
    assert profiles == {"staging": "staging-verify", "prod": "prod-deploy"}
    # One script for both, so the two accounts' entries cannot drift apart.
    assert steps["staging"]["run"] == steps["prod"]["run"]
    [deploy] = [s for s in _steps(_deploy_job()) if "infra.deploy" in str(s.get("run", ""))]
    for step in (*steps.values(), deploy):
        # The profiles' file is where the deploy (and the exec plugin it starts) looks for it.
        for key in ("KUBECONFIG", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            assert str(step["env"][key]).startswith("${{ runner.temp }}/"), (step["name"], key)
        assert step["env"]["AWS_SHARED_CREDENTIALS_FILE"] == deploy["env"]["AWS_SHARED_CREDENTIALS_FILE"]
        assert step["env"]["KUBECONFIG"] == deploy["env"]["KUBECONFIG"]


_SESSION = {
    "AWS_ACCESS_KEY_ID": "ASIAFAKESESSIONKEY01",
    "AWS_SECRET_ACCESS_KEY": "fake/secret+access/key0123456789abcdefghij",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEFakeSessionToken//0123456789==",
}


def _kubeconfig_env(tmp: Path, stack: str) -> dict[str, str]:
    # `aws`, replaced: records its arguments and the credential variables it was started with.
    _recorder(
        tmp / "bin",
        "aws",
        tmp / "aws.log",
        f'env | grep -E "^AWS_(ACCESS|SECRET|SESSION)" >> "{tmp}/aws.env" || true\n',
    )
    return {
        **_SESSION,
        "PATH": f"{tmp / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PROFILE": _kubeconfig_steps()[stack]["env"]["PROFILE"],
        "CLUSTER": f"platform-{stack}-us-west-2",
        "REGION": "us-west-2",
        "KUBECONFIG": str(tmp / "kubeconfig"),
        "AWS_CONFIG_FILE": str(tmp / "aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws" / "credentials"),
    }


def test_the_kubeconfig_steps_keep_each_session_in_its_own_profile(tmp_path: Path) -> None:
    steps = _kubeconfig_steps()
    sessions = {}
    for stack in ("staging", "prod"):  # the workflow's order
        env = _kubeconfig_env(tmp_path, stack)
        sessions[env["PROFILE"]] = {k: f"{v}-{stack}" for k, v in _SESSION.items()}
        run = _run_step(steps[stack], tmp_path, {**env, **sessions[env["PROFILE"]]})
        assert run.returncode == 0, run.stderr
        for value in sessions[env["PROFILE"]].values():
            assert value not in run.stdout + run.stderr, "a credential was printed"
    credentials = tmp_path / "aws" / "credentials"
    assert credentials.stat().st_mode & 0o077 == 0, oct(credentials.stat().st_mode)
    parser = configparser.ConfigParser()
    parser.read(credentials)
    assert set(parser.sections()) == {"staging-verify", "prod-deploy"}
    for profile, session in sessions.items():
        assert dict(parser[profile]) == {k.lower(): v for k, v in session.items()}
    calls = _calls(tmp_path / "aws.log")
    assert len(calls) == 2
    for call, stack in zip(calls, ("staging", "prod"), strict=True):
        assert call[:2] == ["eks", "update-kubeconfig"]
        assert (
            call[call.index("--name") + 1] == call[call.index("--alias") + 1] == f"platform-{stack}-us-west-2"
        )
        assert call[call.index("--kubeconfig") + 1] == str(tmp_path / "kubeconfig")
        assert call[call.index("--profile") + 1] == steps[stack]["env"]["PROFILE"]
    # update-kubeconfig ran with the profile alone, no value on its command line.
    assert not (tmp_path / "aws.env").read_text().strip()
    log = (tmp_path / "aws.log").read_text()
    assert not any(v in log for s in sessions.values() for v in s.values())


def test_a_kubeconfig_step_refuses_to_write_a_profile_twice(tmp_path: Path) -> None:
    step = _kubeconfig_steps()["staging"]
    env = _kubeconfig_env(tmp_path, "staging")
    assert _run_step(step, tmp_path, env).returncode == 0
    run = _run_step(step, tmp_path, env)
    assert run.returncode != 0
    assert "::error::" in run.stdout
    assert len(_calls(tmp_path / "aws.log")) == 1


_STAGING_HUB, _PROD_HUB = "platform-staging-us-west-2", "platform-prod-us-west-2"


def _kubeconfig_as_written(profiles: Mapping[str, str | None]) -> dict[str, Any]:
    """A kubeconfig as `aws eks update-kubeconfig --alias C [--profile P]` writes it."""

    def user(profile: str | None) -> dict[str, Any]:
        exec_: dict[str, Any] = {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks"],
        }
        if profile is not None:
            exec_["env"] = [{"name": "AWS_PROFILE", "value": profile}]
        return {"exec": exec_}

    arn = "arn:aws:eks:us-west-2:{}:cluster/{}"
    accounts = {_STAGING_HUB: "111122223333", _PROD_HUB: "444455556666"}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [
            {
                "name": c,
                "context": {"cluster": arn.format(accounts[c], c), "user": arn.format(accounts[c], c)},
            }
            for c in profiles
        ],
        "users": [{"name": arn.format(accounts[c], c), "user": user(p)} for c, p in profiles.items()],
    }


@pytest.mark.parametrize(
    ("case", "profiles", "ok"),
    [
        ("each its own", {_STAGING_HUB: "staging-verify", _PROD_HUB: "prod-deploy"}, True),
        ("swapped", {_STAGING_HUB: "prod-deploy", _PROD_HUB: "staging-verify"}, False),
        ("staging without", {_STAGING_HUB: None, _PROD_HUB: "prod-deploy"}, False),
        ("prod without", {_STAGING_HUB: "staging-verify", _PROD_HUB: None}, False),
        ("no staging context", {_PROD_HUB: "prod-deploy"}, False),
    ],
)
def test_the_profile_check(tmp_path: Path, case: str, profiles: dict[str, str | None], ok: bool) -> None:
    step = _step(_deploy_job(), "profiles")
    assert _expression(step["env"]["STAGING_CONTEXT"]) == "steps.hubs.outputs.staging-cluster"
    assert _expression(step["env"]["PROD_CONTEXT"]) == "steps.hubs.outputs.prod-cluster"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(_kubeconfig_as_written(profiles)))
    env = {"KUBECONFIG": str(kubeconfig), "STAGING_CONTEXT": _STAGING_HUB, "PROD_CONTEXT": _PROD_HUB}
    run = _run_step(step, tmp_path, env)
    assert (run.returncode == 0) is ok, (case, run.stdout, run.stderr)
    if not ok:
        assert "::error::" in run.stdout + run.stderr, case


def test_the_profile_check_runs_before_the_deploy_and_the_sessions_are_removed_after() -> None:
    steps = _steps(_deploy_job())
    names = [s.get("id") or s.get("name") for s in steps]
    kubeconfig = [steps.index(s) for s in _kubeconfig_steps().values()]
    [deploy] = [i for i, s in enumerate(steps) if "infra.deploy" in str(s.get("run", ""))]
    assert max(kubeconfig) < names.index("profiles") < deploy
    cleanup = steps[-1]
    assert cleanup.get("if") == "always()"
    assert str(cleanup["run"]).strip() == 'rm -rf "${RUNNER_TEMP}/aws"'
    for index in kubeconfig:
        assert steps[index]["env"]["AWS_SHARED_CREDENTIALS_FILE"] == "${{ runner.temp }}/aws/credentials"


def test_the_deploy_fits_in_its_sessions() -> None:
    # Every token the deploy fetches is signed with the verify or deploy session: the whole run
    # (each region's sync, plus set-up and reading both hubs) must end before they expire.
    # The config refuses a manual-sync stack whose deploy outlasts DEPLOY_SESSION_SECONDS
    # (infra/config.py): the workflow's sessions must be exactly that long.
    prod = load_stack_file("prod")
    budget = len(prod.regions) * prod.deploy.timeout_seconds + config.DEPLOY_SETUP_SECONDS
    for step in _steps_using(_deploy_job(), CONFIGURE_AWS):
        _cfg, spec = _role_spec(_expression(step["with"]["role-to-assume"]))
        seconds = int(step["with"].get("role-duration-seconds", OIDC_DEFAULT_SESSION_SECONDS))
        assert seconds == config.DEPLOY_SESSION_SECONDS, (spec.role_name, seconds)
        assert budget <= seconds <= spec.max_session_seconds, (spec.role_name, budget, seconds)


@pytest.mark.parametrize(
    ("dry_run", "allow_unverified"), [("true", "false"), ("false", "false"), ("false", "true")]
)
def test_the_deploy_step_passes_the_inputs_as_flags(
    tmp_path: Path, dry_run: str, allow_unverified: str
) -> None:
    steps = _steps(_deploy_job())
    [deploy] = [s for s in steps if "infra.deploy" in str(s.get("run", ""))]
    assert _expression(deploy["env"]["DRY_RUN"]) == "inputs.dry-run"
    assert _expression(deploy["env"]["ALLOW_UNVERIFIED"]) == "inputs.allow-unverified"
    assert _expression(deploy["env"]["PROD_CONTEXT"]) == "steps.hubs.outputs.prod-cluster"
    assert _expression(deploy["env"]["STAGING_CONTEXT"]) == "steps.hubs.outputs.staging-cluster"
    log = tmp_path / "python.log"
    # The program, replaced: records its arguments and the credentials it was started with.
    _recorder(
        tmp_path / ".venv" / "bin", "python", log, f'env | grep "^AWS_" >> "{tmp_path}/python.env" || true\n'
    )
    env = {
        **_SESSION,
        "AWS_PROFILE": "leftover",
        "DRY_RUN": dry_run,
        "ALLOW_UNVERIFIED": allow_unverified,
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
        "PROD_CONTEXT": "platform-prod-us-west-2",
        "STAGING_CONTEXT": "platform-staging-us-west-2",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws" / "credentials"),
    }
    run = _run_step(deploy, tmp_path, env)
    assert run.returncode == 0, run.stderr
    [call] = _calls(log)
    assert call[:3] == ["-m", "infra.deploy", "prod"]
    assert "--yes" in call
    assert call[call.index("--kubeconfig") + 1] == str(tmp_path / "kubeconfig")
    assert call[call.index("--prod-context") + 1] == "platform-prod-us-west-2"
    assert call[call.index("--staging-context") + 1] == "platform-staging-us-west-2"
    # No session in its environment: each context's exec plugin uses its own profile.
    seen = (tmp_path / "python.env").read_text().split()
    assert seen == [f"AWS_SHARED_CREDENTIALS_FILE={tmp_path / 'aws' / 'credentials'}"], seen
    assert ("--dry-run" in call) is (dry_run == "true")
    assert ("--allow-unverified" in call) is (allow_unverified == "true")


# ----------------------------------------------------------------------------------------------
# Token permissions (docs/github-actions.md, "Token permissions")
# ----------------------------------------------------------------------------------------------


def _permissions_table() -> list[dict[str, str]]:
    text = DOC.read_text()
    begin, end = "<!-- token-permissions:begin -->", "<!-- token-permissions:end -->"
    assert begin in text and end in text, f"{DOC.name}: the token-permissions markers are missing"
    lines = [ln.strip() for ln in text.split(begin, 1)[1].split(end, 1)[0].strip().splitlines()]
    header = [c.strip().lower() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


def test_the_doc_lists_every_token_permission_of_every_job_and_why() -> None:
    """Each workflow grants nothing at its top (`permissions: {}`) and each job exactly the
    GITHUB_TOKEN permissions the doc's table lists, each with a reason. GitHub: a workflow's or
    job's `permissions` key sets the token's permissions, and unlisted ones are `none`
    (https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#permissions)."""
    documented = {(r["workflow"], r["job"], r["permission"]): r for r in _permissions_table()}
    declared = {}
    for name, wf in _workflows().items():
        assert wf.get("permissions") == {}, f"{name}: permissions at the top must be {{}}"
        for job_id, job in _jobs(wf).items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{name}/{job_id}: a job names its permissions"
            for permission, access in perms.items():
                declared[(name, job_id, permission)] = access
    assert set(declared) == set(documented), (
        sorted(set(declared) - set(documented)),
        sorted(set(documented) - set(declared)),
    )
    for key, access in declared.items():
        assert documented[key]["access"] == access, key
        assert len(documented[key]["why"]) > 10, key
    # Writes are the OIDC token, PR comments and the prod deploy's release records only.
    writes = {key[2] for key, access in declared.items() if access == "write"}
    assert writes <= {"id-token", "pull-requests", "deployments"}, writes
    deployment_writers = {(n, j) for (n, j, p), a in declared.items() if p == "deployments" and a == "write"}
    assert deployment_writers <= {("deploy-prod.yml", "deploy")}, deployment_writers
    # Only pull-request jobs may comment.
    for (name, _job, permission), access in declared.items():
        if permission == "pull-requests" and access == "write":
            assert "pull_request" in _workflow(name)["on"], name


def test_no_workflow_hard_codes_the_region_of_its_sts_call() -> None:
    """configure-aws-credentials v4.1.0 (src/CredentialsClient.ts) builds its STSClient in
    ``aws-region``: a literal region breaks a fork in other regions and a moved hub."""
    for name, workflow in _workflows().items():
        for job_name, job in _jobs(workflow).items():
            for step in _steps_using(job, CONFIGURE_AWS):
                assert _expression(step["with"]["aws-region"]), (name, job_name)


@pytest.mark.parametrize("name", ["up.yml", "preview.yml"])
def test_the_pulumi_jobs_take_their_sts_region_from_the_stack_files_hub(name: str, tmp_path: Path) -> None:
    for job in _jobs(_workflow(name)).values():
        for step in _steps_using(job, CONFIGURE_AWS):
            assert _expression(step["with"]["aws-region"]) == "steps.hub.outputs.region"
            hub = _step(job, "hub")
            assert _steps(job).index(hub) < _steps(job).index(step)
            for stack in STACKS:
                run = _run_step(hub, tmp_path, {"PYTHONPATH": str(PROJECT_ROOT), "STACK": stack})
                assert run.returncode == 0, run.stderr
                assert run.outputs["region"] == load_stack_file(stack).hub_region
