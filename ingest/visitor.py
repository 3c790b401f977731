"""The visitor id of docs/metrics.md and the daily salts behind it.

visitor id = BLAKE2b-64 keyed with the day's salt over (site, IP, user agent). The salt for a UTC
day is 32 random bytes created on first use that day; yesterday's is used only to continue a
session over midnight; anything older is deleted when a new day's salt is made (and carries a TTL
as a second line of defence). Without the salt the hash cannot be reversed to an IP address.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core import keys

SALT_BYTES = 32
SALT_LIFETIME = timedelta(hours=48)


def visitor_id(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    digest = hashlib.blake2b(
        f"{site}\x00{ip}\x00{user_agent}".encode(), key=salt, digest_size=8
    ).hexdigest()
    return digest


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Salts:
    current: bytes
    previous: bytes | None


class SaltStore:
    """Today's and yesterday's salt, cached per UTC day in the Lambda's memory."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self._cached: tuple[str, Salts] | None = None

    def salts(self, now: datetime) -> Salts:
        today = utc_day(now)
        if self._cached and self._cached[0] == today:
            return self._cached[1]
        stored = self._load()
        if today not in stored:
            stored[today] = self._create(today, now)
            self._delete_expired(stored, now)
        yesterday = utc_day(now - timedelta(days=1))
        salts = Salts(current=stored[today], previous=stored.get(yesterday))
        self._cached = (today, salts)
        return salts

    def _load(self) -> dict[str, bytes]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.SALT_PK}},
            ConsistentRead=True,
        )
        return {item["sk"]["S"]: bytes(item["salt"]["B"]) for item in response["Items"]}

    def _create(self, day: str, now: datetime) -> bytes:
        salt = secrets.token_bytes(SALT_BYTES)
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": keys.SALT_PK},
                    "sk": {"S": keys.salt_sk(day)},
                    "salt": {"B": salt},
                    "ttl": {"N": str(int((start + SALT_LIFETIME).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            # Another instance made today's salt first: everyone must use the same one.
            return self._load()[day]
        return salt

    def _delete_expired(self, stored: dict[str, bytes], now: datetime) -> None:
        keep = {utc_day(now), utc_day(now - timedelta(days=1))}
        for day in [d for d in stored if d not in keep]:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": keys.SALT_PK}, "sk": {"S": keys.salt_sk(day)}},
            )
            del stored[day]
