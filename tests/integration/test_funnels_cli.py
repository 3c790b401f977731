"""`liveinsight funnel add|list|remove`, round trip on the tables the environment names, as
RUNBOOK.md uses the CLI; bad definitions exit 2 saying why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.aws import make_client
from core.funnels import FunnelStore
from tests.integration.cli_run import run


@pytest.fixture()
def site(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    assert run(capsys, tmp_path, "site", "add", "cli.example", "--json")[0] == 0
    return "cli.example"


def test_a_funnel_added_listed_and_removed_from_the_cli(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        capsys, tmp_path, "funnel", "add", "--site", site, "--name", "Docs", "--json",
        "Visit /", "Visit /docs/*", "Download",
    )  # fmt: skip
    assert code == 0, err
    added: dict[str, Any] = json.loads(out)["funnels"][0]
    assert [s["label"] for s in added["steps"]] == ["Visit /", "Visit /docs/*", "Download"]
    # the admin API and the stats routes read the same item
    stored = FunnelStore(make_client("dynamodb"), aws_env["meta"]).get(site, added["id"])
    assert stored.name == "Docs" and stored.steps[1].value == "/docs/*"
    code, out, _ = run(capsys, tmp_path, "funnel", "list", "--site", site)
    assert out == f"{added['id']}\tDocs\tVisit / → Visit /docs/* → Download\n"
    code, out, _ = run(capsys, tmp_path, "funnel", "remove", "--site", site, added["id"], "--json")
    assert code == 0 and json.loads(out) == {"removed": added["id"]}
    code, out, _ = run(capsys, tmp_path, "funnel", "list", "--site", site, "--json")
    assert json.loads(out) == {"site": site, "funnels": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--name", "x", "Visit /"), "2 to 8 steps"),
        (("add", "--name", "x", "Visit /", "engagement"), "not a custom event"),
        (("remove", "0123456789ab"), "no funnel"),
    ],
)
def test_a_bad_funnel_command_exits_2_saying_why(
    site: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, tmp_path, "funnel", args[0], "--site", site, *args[1:], "--json")
    assert code == 2 and message in json.loads(err)["error"]


def test_funnels_of_an_unknown_site_exit_2(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, tmp_path, "funnel", "list", "--site", "nowhere.example")
    assert code == 2 and "no site" in err
