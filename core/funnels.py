"""Funnels: named, ordered steps of a site (issue 19), stored in the meta table under
`keys.funnels_pk(site)`, one item per funnel (sk = its id).

A step is written as a goal is (core/sites.py): "Visit /path" for a pageview of a path, where
`*` matches any run of characters (query_api/parse.py `wildcard_match`, never a regex), or a
custom event's name ("Signup"). A funnel has 2 to 8 steps and a name of 1 to 120 characters,
unique within its site. How a funnel is counted is query_api/funnels.py's.

Errors are core.sites' kinds (`SiteError`: invalid, `Missing`, `Duplicate`), so the admin API
maps them to 400, 404 and 409 as it does the sites'.
"""

from __future__ import annotations

import builtins
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core import keys
from core.aws import paged
from core.sites import PAGEVIEW_GOAL_PREFIX, Duplicate, Missing, SiteError, SiteStore

MIN_STEPS, MAX_STEPS = 2, 8
MAX_NAME_LENGTH = 120
MAX_STEP_LENGTH = 500  # a page path or an event name
MAX_WILDCARDS = 10  # `*` in one step, as parse.MAX_PATTERNS bounds a filter's
MAX_FUNNELS = 100  # per site: the dashboard lists them all
PAGE, EVENT = "page", "event"
ID_HEX = 12
# names the tracker uses for itself: a step on them would never be a custom event
RESERVED_EVENTS = frozenset({"pageview", "engagement"})


class FunnelError(SiteError):
    """An invalid funnel definition."""


class FunnelNotFound(Missing):
    pass


class FunnelExists(Duplicate):
    pass


@dataclass(frozen=True)
class Step:
    kind: str  # PAGE | EVENT
    value: str  # a path (with `*`) or an event name

    @property
    def label(self) -> str:
        """As a goal is spelled (and as Plausible labels a funnel's steps)."""
        return PAGEVIEW_GOAL_PREFIX + self.value if self.kind == PAGE else self.value


@dataclass(frozen=True)
class Funnel:
    id: str
    site: str
    name: str
    steps: tuple[Step, ...]
    created_at: int = 0


def parse_step(text: str) -> Step:
    """ "Visit /path*" → a page step; any other text → a custom event step."""
    if not isinstance(text, str):
        raise FunnelError('a step is a string: "Visit /path" or a custom event name')
    step = text.strip()
    if not step:
        raise FunnelError("a step cannot be empty")
    if not step.isprintable():
        raise FunnelError("a step cannot hold control characters")
    if step.startswith(PAGEVIEW_GOAL_PREFIX):
        path = step.removeprefix(PAGEVIEW_GOAL_PREFIX).strip()
        if not path.startswith("/"):
            raise FunnelError("a page step is 'Visit /path', the path starting with '/'")
        if any(c.isspace() for c in path):
            raise FunnelError("a page step's path has no spaces")
        if len(path) > MAX_STEP_LENGTH:
            raise FunnelError(f"a page step's path has at most {MAX_STEP_LENGTH} characters")
        if path.count("*") > MAX_WILDCARDS:
            raise FunnelError(f"a page step has at most {MAX_WILDCARDS} '*' wildcards")
        return Step(PAGE, path)
    if len(step) > MAX_STEP_LENGTH:
        raise FunnelError(f"an event step has at most {MAX_STEP_LENGTH} characters")
    if step in RESERVED_EVENTS:
        raise FunnelError(f"{step!r} is not a custom event: use 'Visit /path' for a page step")
    return Step(EVENT, step)


def validate_name(name: str) -> str:
    if not isinstance(name, str):
        raise FunnelError("a funnel's name is a string")
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise FunnelError(f"a funnel's name has 1 to {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise FunnelError("a funnel's name cannot hold control characters")
    return name


def validate_steps(steps: Sequence[str]) -> tuple[Step, ...]:
    if isinstance(steps, str) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise FunnelError(f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps")
    parsed = tuple(parse_step(s) for s in steps)
    for index, step in enumerate(parsed):
        if step in parsed[:index]:  # as Plausible's: a goal is in a funnel once
            raise FunnelError(f"step {step.label!r} is in the funnel twice")
    return parsed


def valid_id(funnel_id: str) -> bool:
    return len(funnel_id) == ID_HEX and all(c in "0123456789abcdef" for c in funnel_id)


class FunnelStore:
    """A site's funnels in the meta table. The caller checks that the site exists."""

    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    @classmethod
    def beside(cls, sites: SiteStore) -> FunnelStore:
        """The store over the meta table that `sites` reads: the query API builds its stores
        in one composition root (query_api/deps.py), which has none for funnels of its own."""
        client, table = sites.meta
        return cls(client, table)

    def list(self, site: str) -> builtins.list[Funnel]:
        """The site's funnels, oldest first."""
        items = paged(
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.funnels_pk(site)}},
        )
        return sorted((_funnel(site, i) for i in items), key=lambda f: (f.created_at, f.id))

    def get(self, site: str, funnel_id: str) -> Funnel:
        if not valid_id(funnel_id):
            raise FunnelNotFound(f"no funnel {funnel_id[:40]!r} for {site}")
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": keys.funnels_pk(site)}, "sk": {"S": funnel_id}},
        )
        if "Item" not in response:
            raise FunnelNotFound(f"no funnel {funnel_id} for {site}")
        return _funnel(site, response["Item"])

    def add(self, site: str, name: str, steps: Sequence[str]) -> Funnel:
        funnel = Funnel(
            secrets.token_hex(ID_HEX // 2),
            site,
            validate_name(name),
            validate_steps(steps),
            int(self._clock()),
        )
        existing = self.list(site)
        if any(f.name == funnel.name for f in existing):
            raise FunnelExists(f"{site} has a funnel named {funnel.name!r} already")
        if len(existing) >= MAX_FUNNELS:
            raise FunnelError(f"at most {MAX_FUNNELS} funnels per site")
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": keys.funnels_pk(site)},
                "sk": {"S": funnel.id},
                "name": {"S": funnel.name},
                "steps": {
                    "L": [
                        {"M": {"kind": {"S": s.kind}, "value": {"S": s.value}}}
                        for s in funnel.steps
                    ]
                },
                "created_at": {"N": str(funnel.created_at)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return funnel

    def remove(self, site: str, funnel_id: str) -> Funnel:
        funnel = self.get(site, funnel_id)
        self._client.delete_item(
            TableName=self._table,
            Key={"pk": {"S": keys.funnels_pk(site)}, "sk": {"S": funnel.id}},
        )
        return funnel


def _funnel(site: str, item: dict[str, Any]) -> Funnel:
    return Funnel(
        id=item["sk"]["S"],
        site=site,
        name=item["name"]["S"],
        steps=tuple(Step(s["M"]["kind"]["S"], s["M"]["value"]["S"]) for s in item["steps"]["L"]),
        created_at=int(item.get("created_at", {}).get("N", "0")),
    )
