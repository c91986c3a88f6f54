"""The standard scanners judge what both stacks declare (part of `make test`).

checkov (terraform_plan over the converted offline plans, kubernetes over the program's objects
and the rendered chart, github_actions over the workflows) and zizmor --persona auditor run ONCE
for the whole module, one process per framework; every failed check must be justified in
scan-skips.yaml and every entry there must still match something. The true findings fixed in
issue 15 (flow logs, default security groups, KMS key policies) are asserted PASSED by checkov
itself, for every VPC and key of every stack, so a regression fails here with checkov's words.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import pytest

from infra import offline, scan
from infra.plan import available_stacks

CHECKOV = scan.find_checkov()

pytestmark = [
    pytest.mark.skipif(
        CHECKOV is None,
        reason="checkov is not installed: `make test` installs it in .venv/checkov (its pins conflict "
        "with pulumi's, so it has its own environment); the conversion is still tested in "
        "tests/unit/test_scan_convert.py",
    ),
    pytest.mark.skipif(
        shutil.which("helm") is None,
        reason="helm is not on PATH: the chart cannot be rendered, so the scan would be incomplete",
    ),
]

STACKS = tuple(available_stacks())


@cache
def plans() -> tuple[offline.Plan, ...]:
    return tuple(offline.run(s) for s in STACKS)


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[scan.Finding]:
    return scan.scan(plans(), tmp_path_factory.mktemp("scan"))


def test_every_failed_check_is_justified_and_every_skip_is_used(findings: list[scan.Finding]) -> None:
    text, ok = scan.report(findings, scan.load_skips())
    assert ok, text


def test_every_scanner_ran(findings: list[scan.Finding]) -> None:
    ran = {f.framework for f in findings}
    assert {"terraform_plan", "kubernetes", "github_actions"} <= ran
    # Both stacks' plans were read (checkov names the file of each finding).
    files = {Path(f.file).name for f in findings if f.framework == "terraform_plan"}
    assert {f"{s}.tfplan.json" for s in STACKS} <= files


def _passed(findings: list[scan.Finding], check: str) -> dict[str, set[str]]:
    """{stack plan file: resources} on which ``check`` passed."""
    out: dict[str, set[str]] = {}
    for f in findings:
        if f.framework == "terraform_plan" and f.check == check:
            assert f.passed, f.line()
            out.setdefault(Path(f.file).name, set()).add(f.resource)
    return out


def _addresses(stack: offline.Plan, tf_type: str, prefix: str = "") -> set[str]:
    doc = scan.terraform_plan(stack)
    return {
        r["address"]
        for r in doc["planned_values"]["root_module"]["resources"]
        if r["type"] == tf_type and r["name"].startswith(prefix)
    }


@pytest.mark.parametrize(
    ("check", "tf_type"),
    [
        ("CKV2_AWS_11", "aws_vpc"),  # VPC flow logging is enabled in all VPCs
        ("CKV2_AWS_12", "aws_vpc"),  # the default security group of every VPC restricts all traffic
        ("CKV2_AWS_64", "aws_kms_key"),  # KMS key policy is defined
        ("CKV_AWS_158", "aws_cloudwatch_log_group"),  # log group encrypted with KMS
        ("CKV_AWS_338", "aws_cloudwatch_log_group"),  # log group kept at least a year
    ],
)
def test_issue_15_findings_pass_on_every_resource(
    findings: list[scan.Finding], check: str, tf_type: str
) -> None:
    passed = _passed(findings, check)
    for p in plans():
        expected = _addresses(p, tf_type)
        assert expected, f"{p.stack} declares no {tf_type}"
        assert passed.get(f"{p.stack}.tfplan.json", set()) == expected, check
