"""`liveinsight` and the event archive: retention, purge, export and rebuild (decision 0027)."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.parquet import read_events
from tests.faults import Traffic, stored_events
from tests.integration.pipeline import Pipeline
from tests.integration.test_cli import Cli, cli  # noqa: F401 - the fixture

START = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)


def loaded(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, seed: int, site: str) -> None:
    """A site's traffic through ingest, counted and archived by the single tier."""
    import ingest.handler

    traffic = Traffic.random(random.Random(seed), 30, 4, START)
    traffic.site = site
    for now, body, ip, ua in traffic.payloads():
        monkeypatch.setattr(ingest.handler, "now", lambda now=now: now)
        pipeline.send(body, ip=ip, user_agent=ua)
    monkeypatch.setattr("aggregator.processor.time.sleep", lambda _s: None)
    pipeline.pump()


def test_site_retention_is_set_validated_and_listed(cli: Cli) -> None:  # noqa: F811
    assert cli.ok("site", "add", "keep.example")["retention_months"] == 24
    updated = cli.ok("site", "update", "keep.example", "--retention-months", "6")
    assert updated["retention_months"] == 6 and updated["tz"] == "UTC"
    for bad in ("0", "121"):
        code, _, err = cli.run("site", "update", "keep.example", "--retention-months", bad)
        assert code == 2 and "retention" in err
    assert cli.ok("site", "list")["sites"][0]["retention_months"] == 6


def test_site_remove_purge_deletes_the_sites_archive_and_counters_only(
    cli: Cli,  # noqa: F811
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = Pipeline(aws_env)
    for domain in ("gone.example", "stays.example"):
        cli.ok("site", "add", domain)
        loaded(pipeline, monkeypatch, 1, domain)
    archive = pipeline.archive()
    gone_keys = [obj.key.key for obj in archive.objects("gone.example")]
    kept_before = {
        "objects": archive.objects("stays.example"),
        "items": [i for i in pipeline.scan("aggregates") if "stays.example" in i["pk"]["S"]],
    }
    assert gone_keys and kept_before["objects"] and kept_before["items"]

    # When the site is removed with --purge
    removed = cli.ok("site", "remove", "gone.example", "--purge")
    # Then its archive, aggregates, visitor states and raw events are gone, and said so
    assert sorted(removed["purged"]["archive_keys"]) == sorted(gone_keys)
    assert removed["purged"]["aggregates_items"] > 0 and removed["purged"]["raw_events"] > 0
    assert archive.objects("gone.example") == []
    assert not [i for i in pipeline.scan("aggregates") if "#gone.example#" in i["pk"]["S"]]
    assert not [i for i in pipeline.scan("events") if "#gone.example#" in i["pk"]["S"]]
    # and the other site's data is untouched
    assert archive.objects("stays.example") == kept_before["objects"]
    kept = [i for i in pipeline.scan("aggregates") if "stays.example" in i["pk"]["S"]]
    assert kept == kept_before["items"]
    # Purging a removed site again finds nothing left
    again = cli.ok("site", "remove", "gone.example", "--purge")
    assert again["purged"]["archive_objects"] == 0 and again["keys"] == 0
    # The human output names every object it deleted
    cli.ok("site", "add", "gone.example")
    loaded(pipeline, monkeypatch, 2, "gone.example")
    written = [obj.key.key for obj in archive.objects("gone.example")]
    capsys.readouterr()
    from local.cli import main

    assert (
        main(["--data-dir", str(cli._data_dir), "site", "remove", "gone.example", "--purge"]) == 0
    )
    out = capsys.readouterr().out
    assert "purged" in out and all(key in out for key in written)


def test_export_writes_the_sites_events_once_as_csv_or_parquet(
    cli: Cli,  # noqa: F811
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pipeline = Pipeline(aws_env)
    cli.ok("site", "add", "shop.example")
    loaded(pipeline, monkeypatch, 3, "shop.example")
    expected = sorted(e.event_id for e in stored_events(pipeline.ddb, pipeline.names))
    out = tmp_path / "events.parquet"
    assert (
        cli.run(
            "export",
            "--site",
            "shop.example",
            "--from",
            "2026-11-25",
            "--to",
            "2026-11-27",
            "--format",
            "parquet",
            "--out",
            str(out),
        )[0]
        == 0
    )
    assert sorted(e.event_id for e in read_events([out])) == expected
    csv_out = tmp_path / "events.csv"
    assert (
        cli.run(
            "export",
            "--site",
            "shop.example",
            "--from",
            "2026-11-25",
            "--to",
            "2026-11-27",
            "--format",
            "csv",
            "--out",
            str(csv_out),
        )[0]
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    assert sorted(r["event_id"] for r in rows) == expected
    code, _, err = cli.run(
        "export", "--site", "shop.example", "--from", "2026-11-27", "--to", "2026-11-25"
    )
    assert code == 2 and "after" in err


def test_rebuild_uses_the_archive_where_there_is_one(
    cli: Cli,  # noqa: F811
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = Pipeline(aws_env)
    cli.ok("site", "add", "shop.example")
    loaded(pipeline, monkeypatch, 4, "shop.example")
    stored = len(stored_events(pipeline.ddb, pipeline.names))
    for item in pipeline.scan("events"):  # the raw events expired
        pipeline.ddb.delete_item(
            TableName=aws_env["events"], Key={"pk": item["pk"], "sk": item["sk"]}
        )
    args = ("rebuild", "--site", "shop.example", "--from", "2026-11-01", "--to", "2026-12-01")
    code, report, _ = cli.run(*args)
    assert code == 0 and report["source"] == "archive" and report["events_read"] == stored
    code, report, _ = cli.run(*args, "--source", "events")
    assert code == 0 and report["source"] == "events" and report["events_read"] == 0
