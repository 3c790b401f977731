"""`liveinsight segment add|list|remove` on the tables the environment names, as RUNBOOK.md uses
the CLI; the admin API and v2 read what it saves; filters v2 would refuse exit 2 saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.aws import make_client
from core.segments import SegmentStore
from tests.integration.cli_run import run


@pytest.fixture()
def site(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    assert run(capsys, tmp_path, "site", "add", "seg-cli.example", "--json")[0] == 0
    return "seg-cli.example"


def test_a_segment_saved_listed_and_removed_from_the_cli(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    filters = [["is", "visit:source", ["Google"]], ["contains", "event:page", ["/blog"]]]
    code, out, err = run(
        capsys, tmp_path, "segment", "add", "--site", site, "--name", "Google blog",
        json.dumps(filters), "--json",
    )  # fmt: skip
    assert code == 0, err
    saved = json.loads(out)["segments"][0]
    assert (saved["id"], saved["name"], saved["filters"]) == (1, "Google blog", filters)
    stored = SegmentStore(make_client("dynamodb"), aws_env["meta"]).get(site, 1)
    assert stored is not None and list(stored.filters) == filters
    code, out, _ = run(capsys, tmp_path, "segment", "list", "--site", site)
    assert out == f"1\tGoogle blog\t{json.dumps(filters)}\n"
    code, out, _ = run(capsys, tmp_path, "segment", "remove", "--site", site, "1", "--json")
    assert code == 0 and json.loads(out) == {"removed": 1}
    code, out, _ = run(capsys, tmp_path, "segment", "list", "--site", site, "--json")
    assert json.loads(out) == {"site": site, "segments": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--name", "x", "not json"), "not JSON"),
        (("add", "--name", "x", '{"is": 1}'), "JSON list"),
        (("add", "--name", "x", '[["is", "visit:nonsense", ["a"]]]'), "visit:nonsense"),
        (("add", "--name", "", '[["is", "visit:source", ["a"]]]'), "name"),
        (("remove", "7"), "no segment"),
    ],
)
def test_a_bad_segment_command_exits_2_saying_why(
    site: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, tmp_path, "segment", args[0], "--site", site, *args[1:])
    assert code == 2
    assert message in err
