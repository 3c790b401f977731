"""Visitor ids and the daily salts behind them (docs/metrics.md: Identity; DESIGN.md invariant 5).

SaltStore runs against moto's in-process DynamoDB through a real botocore client: no network.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from moto import mock_aws

from core import keys
from core.aws import make_client
from core.schema import create_table_request, load_schema
from ingest.visitor import SALT_BYTES, Salts, SaltStore, utc_day, visitor_id

TABLE = "meta"
DAY1 = datetime(2026, 3, 29, 9, 30, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)

# ---- visitor_id ----------------------------------------------------------------------------------

SALT = bytes(range(32))
BASE = (SALT, "example.com", "203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0")


def test_visitor_id_is_a_deterministic_64_bit_hex_digest() -> None:
    first, second = visitor_id(*BASE), visitor_id(*BASE)

    assert first == second
    assert len(first) == 16 and int(first, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        (bytes(32), *BASE[1:]),
        (BASE[0], "other.org", *BASE[2:]),
        (*BASE[:2], "203.0.113.8", BASE[3]),
        (*BASE[:3], BASE[3] + " "),
    ],
    ids=["salt", "site", "ip", "user-agent"],
)
def test_visitor_id_changes_when_any_input_changes(changed: tuple[bytes, str, str, str]) -> None:
    assert visitor_id(*changed) != visitor_id(*BASE)


def test_visitor_id_fields_cannot_run_into_each_other() -> None:
    # "example.com" + "1.2.3.4" must not hash like "example.com1" + ".2.3.4"
    assert visitor_id(SALT, "example.com", "1.2.3.4", "ua") != visitor_id(
        SALT, "example.com1", ".2.3.4", "ua"
    )


def test_visitor_id_is_keyed_so_it_is_not_a_plain_hash_of_the_inputs() -> None:
    unkeyed = hashlib.blake2b("\x00".join(BASE[1:]).encode(), digest_size=8).hexdigest()

    assert visitor_id(*BASE) != unkeyed


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2026, 3, 29, 0, 0, tzinfo=UTC), "2026-03-29"),
        (datetime(2026, 3, 29, 23, 59, 59, 999_999, tzinfo=UTC), "2026-03-29"),
        # 23:30 in New York is already the next UTC day
        (datetime(2026, 3, 29, 23, 30, tzinfo=ZoneInfo("America/New_York")), "2026-03-30"),
        # 00:30 in Berlin is still the previous UTC day
        (datetime(2026, 3, 29, 0, 30, tzinfo=ZoneInfo("Europe/Berlin")), "2026-03-28"),
    ],
)
def test_salt_day_is_the_utc_date(now: datetime, day: str) -> None:
    assert utc_day(now) == day


# ---- SaltStore under moto ------------------------------------------------------------------------


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        dynamodb = make_client("dynamodb")
        dynamodb.create_table(
            **create_table_request(load_schema().tables["meta"], TABLE, with_stream=False)
        )
        yield dynamodb


def stored_salts(client: Any) -> dict[str, dict[str, Any]]:
    items = client.scan(TableName=TABLE)["Items"]
    return {item["sk"]["S"]: item for item in items if item["pk"]["S"] == keys.SALT_PK}


def put_salt(client: Any, day: str, salt: bytes) -> None:
    client.put_item(
        TableName=TABLE,
        Item={"pk": {"S": keys.SALT_PK}, "sk": {"S": keys.salt_sk(day)}, "salt": {"B": salt}},
    )


class CountingClient:
    """Delegates to the real client, counting the calls made (a spy, not a fake)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if callable(attr):

            def spy(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                return attr(*args, **kwargs)

            return spy
        return attr


def test_first_call_of_a_day_creates_a_salt_that_expires_after_48_hours(client: Any) -> None:
    salts = SaltStore(client, TABLE).salts(DAY1)

    assert len(salts.current) == SALT_BYTES
    assert salts.previous is None
    item = stored_salts(client)["2026-03-29"]
    assert bytes(item["salt"]["B"]) == salts.current
    expires = datetime(2026, 3, 31, tzinfo=UTC).timestamp()
    assert int(item["ttl"]["N"]) == int(expires)


def test_same_utc_day_gives_the_same_salt_to_every_instance(client: Any) -> None:
    # Given one instance made today's salt in the morning
    morning = SaltStore(client, TABLE).salts(DAY1)

    # When another instance (a fresh Lambda) asks late in the same UTC day
    evening = SaltStore(client, TABLE).salts(DAY1.replace(hour=23, minute=59))

    # Then it reads the same salt instead of making its own
    assert evening == morning
    assert list(stored_salts(client)) == ["2026-03-29"]


def test_next_utc_day_gets_a_new_salt_and_keeps_yesterday_as_previous(client: Any) -> None:
    store = SaltStore(client, TABLE)
    day1 = store.salts(DAY1)

    day2 = store.salts(DAY2)

    assert day2.current != day1.current
    assert day2.previous == day1.current
    assert sorted(stored_salts(client)) == ["2026-03-29", "2026-03-30"]


def test_salts_older_than_yesterday_are_deleted_when_a_day_begins(client: Any) -> None:
    # Given salts of three, two and one days ago
    for days_ago in (3, 2, 1):
        put_salt(client, utc_day(DAY3 - timedelta(days=days_ago)), bytes([days_ago]) * 32)

    # When the first event of today arrives
    salts = SaltStore(client, TABLE).salts(DAY3)

    # Then only today's and yesterday's salts remain
    assert sorted(stored_salts(client)) == ["2026-03-30", "2026-03-31"]
    assert salts.previous == bytes([1]) * 32


def test_after_a_gap_day_there_is_no_previous_salt(client: Any) -> None:
    store = SaltStore(client, TABLE)
    store.salts(DAY1)

    salts = store.salts(DAY3)

    assert salts.previous is None
    assert list(stored_salts(client)) == ["2026-03-31"]


def test_salts_are_cached_for_the_rest_of_the_utc_day(client: Any) -> None:
    spy = CountingClient(client)
    store = SaltStore(spy, TABLE)
    first = store.salts(DAY1)
    calls_for_first = len(spy.calls)

    again = store.salts(DAY1 + timedelta(hours=10))

    assert again == first
    assert len(spy.calls) == calls_for_first


def test_concurrent_creation_is_resolved_by_the_conditional_put(client: Any) -> None:
    # Given two instances that both find no salt for today...
    winner = SaltStore(client, TABLE)

    class LosesTheRace(CountingClient):
        def put_item(self, **kwargs: Any) -> Any:
            # ...and the other instance writes its salt between our read and our write
            winner.salts(DAY1)
            return self._inner.put_item(**kwargs)

    loser = SaltStore(LosesTheRace(client), TABLE)

    # When the slower one tries to create today's salt
    lost = loser.salts(DAY1)

    # Then its conditional put fails and it adopts the winner's salt: one salt for everyone
    assert lost == winner.salts(DAY1) == Salts(current=lost.current, previous=None)
    stored = stored_salts(client)
    assert list(stored) == ["2026-03-29"]
    assert bytes(stored["2026-03-29"]["salt"]["B"]) == lost.current
