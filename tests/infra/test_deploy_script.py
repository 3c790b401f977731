"""scripts/deploy.sh cannot run here (no AWS), so it is checked the way it can be: it parses,
shellcheck finds nothing (where installed), and every Terraform output it reads exists."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.infra import terraform as tf

SCRIPT = tf.REPO / "scripts" / "deploy.sh"


def test_deploy_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_deploy_script_is_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_deploy_script_reads_only_outputs_terraform_defines() -> None:
    used = set(re.findall(r"\$\(output (\w+)\)", SCRIPT.read_text()))
    assert {"static_bucket", "cloudfront_distribution_id", "dashboard_url", "api_url"} <= used
    assert used <= set(tf.outputs())


def test_deploy_script_packages_before_terraform_reads_the_zips() -> None:
    text = SCRIPT.read_text()
    assert text.index("make package") < text.index("tf apply")
    assert "set -euo pipefail" in text
