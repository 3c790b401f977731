"""`liveinsight` site, goal, share, key and admin commands with --json, round trip.

With LIVEINSIGHT_META_TABLE in the environment (the aws_env fixture sets it) the CLI works on
that deployment's tables, as RUNBOOK.md uses it; here the tables are moto's.
"""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from local.cli import local_sign_in, main
from query_api.auth import verify_password
from tests.integration.pipeline import Pipeline


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
        self._capsys = capsys
        self._data_dir = data_dir

    def run(self, *args: str) -> tuple[int, Any, str]:
        """Exit code, stdout parsed as JSON (or None), stderr."""
        self._capsys.readouterr()
        code = main(["--data-dir", str(self._data_dir), *args])
        out, err = self._capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, err

    def ok(self, *args: str) -> Any:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        return out


@pytest.fixture()
def cli(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    return Cli(capsys, tmp_path)


def test_site_add_update_list_and_remove(cli: Cli) -> None:
    created = cli.ok(
        "site", "add", "www.Example.com", "--tz", "Europe/Berlin", "--hostnames", "example.com"
    )
    assert (created["domain"], created["tz"], created["public"]) == (
        "example.com",
        "Europe/Berlin",
        False,
    )
    assert created["hostnames"] == ["example.com"] and created["key"].startswith("li_")
    assert 'data-domain="example.com"' in created["snippet"]

    updated = cli.ok(
        "site",
        "update",
        "example.com",
        "--tz",
        "UTC",
        "--public",
        "--hostnames",
        "a.example, b.example",
    )
    assert (updated["tz"], updated["public"], updated["hostnames"]) == (
        "UTC",
        True,
        ["a.example", "b.example"],
    )
    assert (
        cli.ok("site", "update", "example.com", "--private", "--hostnames", "")["hostnames"] == []
    )
    assert [(s["domain"], s["public"]) for s in cli.ok("site", "list")["sites"]] == [
        ("example.com", False)
    ]

    removed = cli.ok("site", "remove", "example.com")
    assert removed == {"removed": "example.com", "keys": 1, "shares": 0, "aggregates_kept": True}
    assert cli.ok("site", "list") == {"sites": []}


@pytest.mark.parametrize(
    "args",
    [
        ("site", "add", "not a domain"),
        ("site", "add", "x.example", "--tz", "Mars/Base"),
        ("site", "add", "x.example", "--hostnames", "https://x.example"),
        ("site", "update", "nope.example", "--public"),
        ("site", "remove", "nope.example"),
        ("goal", "add", "--site", "nope.example", "Signup"),
        ("share", "create", "--site", "nope.example"),
    ],
)
def test_invalid_commands_exit_2_with_a_json_error(cli: Cli, args: tuple[str, ...]) -> None:
    code, out, err = cli.run(*args, "--json")
    assert code == 2 and out is None
    assert json.loads(err)["error"]


def test_goals_round_trip(cli: Cli) -> None:
    cli.ok("site", "add", "example.com")
    assert cli.ok("goal", "add", "--site", "example.com", "Signup")["goals"] == ["Signup"]
    assert cli.ok("goal", "add", "--site", "example.com", "Visit /pricing")["goals"] == [
        "Signup",
        "Visit /pricing",
    ]
    code, _, err = cli.run("goal", "add", "--site", "example.com", "Visit /blog/*", "--json")
    assert code == 2 and "exact paths" in err
    assert cli.ok("goal", "remove", "--site", "example.com", "Signup") == {
        "site": "example.com",
        "goals": ["Visit /pricing"],
    }
    assert cli.ok("goal", "list", "--site", "example.com")["goals"] == ["Visit /pricing"]


def test_shares_round_trip_and_revoke_works_at_once(cli: Cli, aws_env: dict[str, str]) -> None:
    cli.ok("site", "add", "example.com")
    share = cli.ok("share", "create", "--site", "example.com", "--label", "Board")
    assert share["token"].startswith("lis_") and share["label"] == "Board"
    assert f"auth={share['token']}" in share["url"] and "site=example.com" in share["url"]
    assert [s["id"] for s in cli.ok("share", "list", "--site", "example.com")["shares"]] == [
        share["id"]
    ]
    pipeline = Pipeline(aws_env)
    path = f"/api/realtime?site_id=example.com&auth={share['token']}"
    assert pipeline.get(path).status == 200

    assert cli.ok("share", "revoke", "--site", "example.com", "--share", share["id"]) == {
        "revoked": 1
    }
    assert pipeline.get(path).status == 401
    assert cli.ok("share", "list", "--site", "example.com") == {"shares": []}
    code, out, _ = cli.run("share", "revoke", "--site", "example.com", "--share", "all", "--json")
    assert (code, out) == (1, {"revoked": 0})


def test_keys_still_round_trip(cli: Cli) -> None:
    cli.ok("site", "add", "example.com")
    key = cli.ok("key", "create", "--site", "example.com")["key"]
    assert len(cli.ok("key", "list", "--site", "example.com")["keys"]) == 2
    assert cli.ok("key", "revoke", "--site", "example.com", "--key", key) == {"revoked": 1}


def test_hash_password_reads_stdin_and_prints_a_verifiable_hash(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["admin", "hash-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("scrypt$") and verify_password("a long enough password", printed)

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["admin", "hash-password"]) == 2
    assert "at least" in capsys.readouterr().err


def test_local_sign_in_makes_the_password_once_and_keeps_it_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LIVEINSIGHT_ADMIN_PASSWORD_HASH", "LIVEINSIGHT_SESSION_SECRET"):
        # local_sign_in sets them in os.environ: recorded here, so they are taken back afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)

    first = local_sign_in(tmp_path)
    secret = (tmp_path / "session-secret").read_text().strip()
    monkeypatch.delenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH")
    monkeypatch.delenv("LIVEINSIGHT_SESSION_SECRET")
    second = local_sign_in(tmp_path)

    assert first == second and len(first) >= 16
    assert verify_password(first, os.environ["LIVEINSIGHT_ADMIN_PASSWORD_HASH"])
    assert os.environ["LIVEINSIGHT_SESSION_SECRET"] == secret
    for name in ("admin-password", "session-secret"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
