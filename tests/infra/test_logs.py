"""Every log line the functions write is JSON with level, service and correlation id, and none holds
an IP address or a user agent (DESIGN.md invariant 5). One correlation id follows an event from
ingest's "events ingested" line to the aggregator's "event aggregated" line (RUNBOOK.md) when
the id is traced (every id here: TRACE_ONE_IN is 1, so every line the functions can write is
checked; tests/infra/test_log_volume.py checks what is written at the default level).

The lines are captured exactly as Powertools formats them for CloudWatch (its registered
formatter), while ingest, the aggregator and the query API run through their real handlers on
moto: accepted, duplicate, bot, unknown site, invalid payload, a malformed stream record, a
redelivered batch, a commit that keeps failing (the error path), good and bad keys, sign-ins
refused and accepted.
Other loggers (botocore, mangum, ...) reach Lambda's root handler as plain text, so any record
of theirs at the root's WARNING level counts as a non-JSON line.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.logging.filters import SuppressFilter

import query_api.deps
from aggregator.store import AggregateStore, CommitOutcome
from core import observability
from core.observability import logger
from tests.integration.pipeline import DESKTOP_UA, Pipeline

SITE = "logs.example"
SERVICES = ("ingest", "aggregator", "query")
IPS = ("198.51.100.23", "203.0.113.77", "2001:db8::7", "127.0.0.1")
BOT_UA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
USER_AGENTS = (DESKTOP_UA, BOT_UA)


@dataclass
class Captured:
    lines: list[str]  # Powertools' JSON lines, as CloudWatch receives them
    foreign: list[str]  # records from other loggers that Lambda's root handler would print

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture()
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    attached = []
    for service in SERVICES:
        powertools = logger(service)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(powertools.registered_formatter)
        powertools._logger.addHandler(handler)
        attached.append((powertools, handler))
    foreign = io.StringIO()
    root_handler = logging.StreamHandler(foreign)
    root_handler.setLevel(logging.WARNING)
    for service in SERVICES:  # what Powertools does to Lambda's root handler at import
        root_handler.addFilter(SuppressFilter(service))
    logging.getLogger().addHandler(root_handler)
    result = Captured([], [])
    yield result
    logging.getLogger().removeHandler(root_handler)
    for powertools, handler in attached:
        powertools._logger.removeHandler(handler)


@pytest.fixture()
def run(aws_env: dict[str, str], captured: Captured, monkeypatch: pytest.MonkeyPatch) -> Captured:
    monkeypatch.setattr(observability, "TRACE_ONE_IN", 1)
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site(SITE)
    page = {"n": "pageview", "u": f"https://{SITE}/pricing?utm_source=x", "d": SITE}
    # ingest: accepted (IPv4, IPv6), a resend, a bot, an unknown site, an invalid payload
    assert pipeline.send({**page, "id": "resend-0001"}, ip=IPS[0]).status == 202
    assert pipeline.send({**page, "id": "resend-0001"}, ip=IPS[0]).status == 202
    assert (
        pipeline.send(page, ip=IPS[2], extra_headers={"referer": f"https://{SITE}/"}).status == 202
    )
    assert pipeline.send(page, ip=IPS[1], user_agent=BOT_UA).status == 202
    assert (
        pipeline.send({"n": "pageview", "u": "https://x.example/", "d": "x.example"}).status == 202
    )
    assert pipeline.send(None, raw=b"{not json", ip=IPS[1]).status == 400
    # aggregator: a batch with a malformed record, then the same batch again
    records = pipeline.read_stream()
    broken = {**records[0], "dynamodb": {**records[0]["dynamodb"], "NewImage": {"pk": {"S": "x"}}}}
    broken["dynamodb"]["SequenceNumber"] = "1"
    assert pipeline.aggregate([broken, *records]) == {"batchItemFailures": []}
    assert pipeline.aggregate(records) == {"batchItemFailures": []}
    # aggregator: a commit that keeps failing (throttled), so the batch stops with an error
    assert pipeline.send(page, ip=IPS[1]).status == 202
    monkeypatch.setattr(
        AggregateStore,
        "commit",
        lambda *a, **k: CommitOutcome(False, retryable=True, reason="Throttled"),
    )
    assert pipeline.aggregate(pipeline.read_stream())["batchItemFailures"]
    # query: good key, bad key, no key, unknown route
    assert pipeline.get(f"/api/realtime?site_id={SITE}", key).status == 200
    assert pipeline.get(f"/api/realtime/card?site_id={SITE}", key).status == 200
    assert pipeline.get(f"/api/realtime?site_id={SITE}", "li_nope").status == 401
    assert pipeline.get(f"/api/realtime?site_id={SITE}").status == 401
    assert pipeline.get("/api/nowhere").status == 404
    # query: sign-in refused (wrong password, then rate-limited) and accepted, from known addresses
    from query_api.auth import hash_password
    from tests.integration.edge_client import ORIGIN_ENVIRONMENT
    from tests.integration.edge_client import EdgeBrowser as Browser

    for name, value in ORIGIN_ENVIRONMENT.items():  # addresses as CloudFront names them
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH", hash_password("log test password"))
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", "l" * 48)
    monkeypatch.setenv("LIVEINSIGHT_LOGIN_FAILURES_PER_CLIENT", "1")
    query_api.deps.get_deps.cache_clear()
    assert Browser(pipeline, ip=IPS[0]).login("wrong password").status == 401
    assert Browser(pipeline, ip=IPS[0]).login("log test password").status == 429
    assert Browser(pipeline, ip=IPS[2]).login("log test password").status == 200
    captured.lines = [line for line in captured_text(captured).splitlines() if line.strip()]
    return captured


def captured_text(captured: Captured) -> str:
    for service in SERVICES:
        for handler in logger(service)._logger.handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(stream, io.StringIO):
                return stream.getvalue()
    return ""


def _foreign(captured: Captured) -> list[str]:
    root = logging.getLogger()
    for handler in root.handlers:
        stream = getattr(handler, "stream", None)
        if isinstance(stream, io.StringIO) and handler.level == logging.WARNING:
            return [line for line in stream.getvalue().splitlines() if line.strip()]
    return []


def test_every_line_is_json_with_level_and_service(run: Captured) -> None:
    assert len(run.lines) > 10
    for line in run.lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert record.get("level") in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, line
        assert record.get("service") in SERVICES, line
    services = {record["service"] for record in run.parsed()}
    assert {"ingest", "aggregator"} <= services
    levels = {record["level"] for record in run.parsed()}
    assert {"INFO", "WARNING", "ERROR"} <= levels  # the scenario reached the failure paths


def test_no_other_logger_writes_a_plain_text_line(run: Captured) -> None:
    assert _foreign(run) == []


def test_every_line_has_a_correlation_id(run: Captured) -> None:
    missing = [r["message"] for r in run.parsed() if not r.get("correlation_id")]
    assert missing == []


def test_ingest_and_query_lines_have_a_correlation_id(run: Captured) -> None:
    for record in run.parsed():
        if record["service"] in ("ingest", "query"):
            assert record.get("correlation_id"), record


def _ip_like_tokens(line: str) -> list[str]:
    found = []
    for token in re.findall(r"[0-9A-Fa-f:.]{7,}", line):
        try:
            ipaddress.ip_address(token.strip(".:"))
        except ValueError:
            continue
        found.append(token)
    return found


def test_no_line_holds_an_ip_address_or_a_user_agent(run: Captured) -> None:
    for line in [*run.lines, *_foreign(run)]:
        for ip in IPS:
            assert ip not in line, line
        assert _ip_like_tokens(line) == [], line
        for user_agent in USER_AGENTS:
            assert user_agent not in line, line
        assert "Mozilla/5.0" not in line and "Windows NT" not in line, line


def test_one_correlation_id_follows_an_event_from_ingest_to_the_aggregator(run: Captured) -> None:
    records = run.parsed()
    ingested = {
        r["correlation_id"]
        for r in records
        if r["message"] == "events ingested" and r.get("accepted", 0) > 0
    }
    aggregated = {r["correlation_id"]: r for r in records if r["message"] == "event aggregated"}
    # Every aggregated event carries the correlation id of the request that brought it, and
    # every accepted request reached the aggregator but the last one, whose batch was throttled.
    assert set(aggregated) <= ingested
    assert len(ingested - set(aggregated)) == 1
    for line in aggregated.values():
        assert line["event_id"] and line["sequence_number"] and line["site"] == SITE


# ---- RUNBOOK.md's Logs Insights queries ---------------------------------------------------------

INSIGHTS_WORDS = {"fields", "filter", "stats", "sort", "limit", "by", "as", "and", "or", "not"}
INSIGHTS_WORDS |= {"in", "like", "asc", "desc", "display", "parse", "dedup"}


def runbook_queries() -> list[str]:
    """The Logs Insights queries in RUNBOOK.md: its code blocks that start with a command."""
    from tests.infra.terraform import REPO

    blocks: list[str] = []
    block: list[str] | None = None
    for line in (REPO / "RUNBOOK.md").read_text().splitlines():
        if line.strip().startswith("```"):
            if block is None:
                block = [] if line.strip() == "```" else ["<other language>"]
            else:
                blocks.append("\n".join(block))
                block = None
        elif block is not None:
            block.append(line)
    return [b.strip() for b in blocks if re.match(r"(fields|filter|stats)\b", b.strip())]


def query_fields(query: str) -> set[str]:
    """The log fields a query reads (not @-fields, functions, aliases, strings or regexes)."""
    text = re.sub(r'"[^"]*"|\'[^\']*\'|/[^/\n]*/', " ", query)
    text = re.sub(r"\bas\s+\w+", " ", text)
    names = re.findall(r"(?<![@\w.])([A-Za-z_]\w*(?:\.\w+)*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in INSIGHTS_WORDS}


def test_runbook_has_queries_to_check() -> None:
    queries = runbook_queries()
    assert len(queries) >= 10
    assert any({"records", "counted", "retries"} <= query_fields(q) for q in queries)


def test_every_runbook_query_finds_its_fields_in_the_lines_it_filters(run: Captured) -> None:
    # (No access log since decision 0023: every query reads the functions' own lines.)
    records = run.parsed()
    for query in runbook_queries():
        fields = query_fields(query)
        if not fields:  # only Lambda's own fields (@type = "REPORT")
            continue
        message = re.search(r'message = "([^"]+)"', query)
        lines = [r for r in records if not message or r["message"] == message.group(1)]
        assert lines, f"no line matches: {query}"
        missing = {f for f in fields if not any(f.split(".")[0] in line for line in lines)}
        assert not missing, f"{sorted(missing)} in no line that {query!r} reads"
