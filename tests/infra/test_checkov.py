"""checkov passes on terraform/, and every skip carries its reason inline.

checkov runs from its own virtualenv (`make infra-tools`: its boto3 pin excludes ours), offline:
BC_SKIP_MAPPING=TRUE and --skip-download keep it from calling Bridgecrew/Prisma.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from typing import Any

import pytest

from tests.infra import terraform as tf

CHECKOV = os.environ.get("CHECKOV", str(tf.REPO / ".venv-checkov" / "bin" / "checkov"))
SKIP = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")


@cache
def checkov_report() -> dict[str, Any]:
    if not os.path.exists(CHECKOV):
        pytest.fail(f"checkov not found at {CHECKOV}: run `make infra-tools`")
    done = subprocess.run(
        [
            CHECKOV,
            "-d",
            str(tf.TERRAFORM),
            "--skip-download",
            "-o",
            "json",
            "--framework",
            "terraform",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        timeout=300,
    )
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    (terraform,) = [r for r in reports if r.get("check_type") == "terraform"]
    result: dict[str, Any] = terraform
    return result


def test_checkov_finds_no_failed_check() -> None:
    report = checkov_report()
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 50  # it really looked at the resources


def test_every_skip_is_justified_inline() -> None:
    for path in sorted(tf.TERRAFORM.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            match = SKIP.search(line)
            assert match, f"{path.name}:{number}: malformed skip"
            reason = (match.group(2) or "").strip()
            assert len(reason) >= 30, f"{path.name}:{number}: {match.group(1)} needs a reason"


def test_every_skip_checkov_applied_is_one_written_in_the_hcl() -> None:
    skipped = checkov_report()["results"]["skipped_checks"]
    assert skipped, "expected the documented skips"
    for check in skipped:
        comment = check["check_result"].get("suppress_comment", "")
        assert len(comment) >= 30, (check["check_id"], check["resource"])
