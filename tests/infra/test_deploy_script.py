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


def test_deploy_script_creates_the_sign_in_secrets_in_ssm_not_in_terraform() -> None:
    text = SCRIPT.read_text()
    # The names come from Terraform, after the apply that defines them
    entries = re.findall(r"output_entry secret_parameters (\w+)", text)
    assert sorted(entries) == sorted(tf.locals_()["secret_parameters"])
    assert "secret_parameters" in tf.outputs()
    assert text.index("tf apply") < text.index("output_entry secret_parameters")
    # Created once as SecureStrings (an existing one is left alone: no --overwrite), the value
    # from a private file, never on a command line
    (put,) = re.findall(r"aws ssm put-parameter[^\n]*\n[^\n]*", text)
    assert "--type SecureString" in put and '--value "file://$secret_file"' in put
    assert "--overwrite" not in put
    assert "chmod 600" in text and "trap 'rm -f \"$secret_file\"' EXIT" in text
    # And Terraform gets no secret
    assert "TF_VAR_" not in text
    assert not re.search(r"-var[ =][^\n]*(secret|password|key)", text)
