"""Sites and read keys, stored in the meta table. Keys are kept only as SHA-256 hashes.

A key has 192 random bits, so a fast unsalted hash is enough to make a stolen table useless
without making every API call pay for a slow password hash.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import keys

DOMAIN_RE = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
KEY_PREFIX = "li_"


class SiteError(ValueError):
    """Invalid site definition."""


class SiteExists(SiteError):
    pass


class SiteNotFound(SiteError):
    pass


@dataclass(frozen=True)
class Site:
    domain: str
    tz: str = "UTC"
    public: bool = False
    created_at: int = 0
    # Goals as Plausible names them: a custom event name ("Signup") or "Visit /path" for a
    # pageview goal. Empty: every custom event name counts as a goal.
    goals: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()  # hostnames allowed to send events; empty: any


PAGEVIEW_GOAL_PREFIX = "Visit "


@dataclass(frozen=True)
class ApiKey:
    id: str  # the first 12 hex digits of the key's hash: safe to show, enough to revoke
    site: str
    created_at: int


def key_id(digest: str) -> str:
    return digest[:12]


def normalize_domain(domain: str) -> str:
    domain = domain.strip().lower().removeprefix("www.")
    if not DOMAIN_RE.fullmatch(domain):
        raise SiteError(f"{domain!r} is not a valid domain")
    return domain


def validate_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SiteError(f"{tz!r} is not a known time zone") from exc
    return tz


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SiteStore:
    """Sites and their keys. Reads of a site are cached briefly: ingest asks for every event."""

    def __init__(self, client: Any, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Site | None]] = {}

    def get(self, domain: str) -> Site | None:
        cached = self._cache.get(domain)
        now = time.monotonic()
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": keys.SITE_PK}, "sk": {"S": domain}},
        )
        site = _site_from_item(response["Item"]) if "Item" in response else None
        self._cache[domain] = (now, site)
        return site

    def add(self, domain: str, tz: str = "UTC", public: bool = False) -> Site:
        site = Site(normalize_domain(domain), validate_tz(tz), public, int(time.time()))
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": keys.SITE_PK},
                    "sk": {"S": site.domain},
                    "tz": {"S": site.tz},
                    "public": {"BOOL": site.public},
                    "created_at": {"N": str(site.created_at)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise SiteExists(f"site {site.domain} already exists") from None
        self._cache.pop(site.domain, None)
        return site

    def list(self) -> list[Site]:
        sites: list[Site] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.SITE_PK}},
        }
        while True:
            page = self._client.query(**kwargs)
            sites.extend(_site_from_item(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return sites
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def create_key(self, domain: str) -> str:
        """A new read key for the site; only its hash is stored (and a listing entry by id)."""
        if self.get(domain) is None:
            raise SiteNotFound(domain)
        key = KEY_PREFIX + secrets.token_urlsafe(24)
        digest = hash_key(key)
        created = {"N": str(int(time.time()))}
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": keys.api_key_pk(digest)},
                            "sk": {"S": keys.NO_SORT},
                            "site": {"S": domain},
                            "created_at": created,
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": keys.site_keys_pk(domain)},
                            "sk": {"S": digest},
                            "created_at": created,
                        },
                    }
                },
            ]
        )
        return key

    def list_keys(self, domain: str) -> builtins.list[ApiKey]:
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.site_keys_pk(domain)}},
        )
        return [
            ApiKey(key_id(item["sk"]["S"]), domain, int(item["created_at"]["N"]))
            for item in response["Items"]
        ]

    def revoke_key(self, domain: str, key_or_id: str) -> int:
        """Revoke one key (given whole, or by its id) or every key of the site ("all")."""
        digests = [
            item["sk"]["S"]
            for item in self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": keys.site_keys_pk(domain)}},
            )["Items"]
        ]
        wanted = hash_key(key_or_id) if key_or_id.startswith(KEY_PREFIX) else key_or_id
        chosen = [d for d in digests if key_or_id == "all" or d == wanted or key_id(d) == wanted]
        for digest in chosen:
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": keys.api_key_pk(digest)}, "sk": {"S": keys.NO_SORT}},
            )
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": keys.site_keys_pk(domain)}, "sk": {"S": digest}},
            )
        return len(chosen)

    def site_for_key(self, key: str) -> str | None:
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": keys.api_key_pk(hash_key(key))}, "sk": {"S": keys.NO_SORT}},
        )
        item = response.get("Item")
        return item["site"]["S"] if item else None


def _site_from_item(item: dict[str, Any]) -> Site:
    return Site(
        domain=item["sk"]["S"],
        tz=item.get("tz", {}).get("S", "UTC"),
        public=item.get("public", {}).get("BOOL", False),
        created_at=int(item.get("created_at", {}).get("N", "0")),
        goals=tuple(v["S"] for v in item.get("goals", {}).get("L", [])),
        hostnames=tuple(v["S"] for v in item.get("hostnames", {}).get("L", [])),
    )
