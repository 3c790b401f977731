"""Alert rules of a site and their state, in the meta table (issue 23, decision 0036).

A rule item (pk `ALERTS#<site>`, sk the rule's id) holds the rule, its webhook target and its
state: whether it is firing, how many times it crossed (`crossing`), when it last alerted, and the
idempotency key of a message decided but not yet handed to the queue (`pending`). Every change of
state is one conditional UpdateItem on the item's version (`ver`), so of the writers that see the
same crossing (a redelivered batch, a retry, another shard's instance) exactly one records it; the
key of what it recorded is `<rule id>.<crossing>.<alert|resolved>`, the same whoever sends it.

The webhook secret is stored as given: the delivery function signs each body with it (HMAC needs
the secret itself, not a hash). It is shown once, when the rule is made, never listed.
"""

from __future__ import annotations

import builtins
import ipaddress
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from core import keys
from core.aws import paged
from core.sites import PAGEVIEW_GOAL_PREFIX
from core.vocabulary import EVENTS, PAGEVIEWS

SPIKE, GOAL, DROP, REFERRER = "spike", "goal", "drop", "new_referrer"
KINDS = (SPIKE, GOAL, DROP, REFERRER)
STREAMED = (SPIKE, GOAL)  # evaluated as the realtime tier writes its minutes
SCHEDULED = (DROP, REFERRER)  # no event can trigger them: evaluated every minute (0037)
JSON, SLACK = "json", "slack"
FORMATS = (JSON, SLACK)
FIRED, RESOLVED = "alert", "resolved"
DEFAULT_COOLDOWN_SECONDS = 6 * 3600
MAX_COOLDOWN_SECONDS = 7 * 24 * 3600
MAX_RULES = 20  # per site: each is evaluated after every realtime batch of the site
MAX_THRESHOLD = 10_000_000
# A goal's window is read from minute items, which live 48 h; 60 minutes keeps a rule's read small.
MAX_WINDOW_MINUTES = 60
# A drop's silence is read newest first, one item per minute partition whatever its length
# (alerts/numbers.py): the bound is what "usually busy at this hour" still means.
MAX_DROP_MINUTES = 180
DEFAULT_DROP_MINUTES = 15
MAX_URL_LENGTH = 2000
MIN_SECRET_LENGTH, MAX_SECRET_LENGTH = 16, 200
SECRET_PREFIX = "whsec_"
MAX_EMAILS = 5  # recipients of one rule
MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit
# A plain address: local part of common characters, a dotted domain with a letter TLD. Stricter
# than RFC 5322 on purpose (no quotes, comments or IP literals): SES sends to these.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)


class AlertError(ValueError):
    """Invalid rule input."""


class RuleNotFound(AlertError):
    pass


@dataclass(frozen=True)
class Target:
    """Where a rule's messages go: a signed webhook (`url` set), email recipients (`emails`, at
    most MAX_EMAILS), or both. A rule has at least one of them."""

    url: str = ""  # "" when the rule has no webhook
    secret: str = ""  # the webhook's HMAC key ("" without a webhook)
    format: str = JSON
    emails: tuple[str, ...] = ()

    @property
    def webhook(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class State:
    version: int = 0
    firing: bool = False
    crossing: int = 0
    last_alert_at: int = 0  # epoch seconds of the last alert sent (not resolved messages)
    pending: str = ""  # the key of a message recorded but not yet queued
    pending_since: int = 0
    value: int = 0  # the number that fired or resolved it last
    detail: str = ""  # what the number is about: a new top referrer's source


@dataclass(frozen=True)
class Rule:
    id: str
    site: str
    kind: str
    threshold: int
    target: Target
    goal: str = ""  # goal rules: "Visit /path" (pageviews) or a custom event's name
    # spike: current visitors (the last 5 minutes); goal: its window; drop: the silence it
    # fires on (no pageviews for this many minutes); new_referrer: 0 (today, site time)
    window_minutes: int = 5
    cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    created_at: int = 0
    state: State = State()

    def crossed(self, value: int) -> bool:
        """Spike: current visitors above N. Goal: K conversions or more within the window.
        (Drop and new_referrer are decided with more than a number: alerts/detect.py.)"""
        return value > self.threshold if self.kind == SPIKE else value >= self.threshold

    @property
    def goal_counter(self) -> str:
        """The minute items' counter a goal rule adds up: `pageviews|<path>` for "Visit /path",
        `events|<name>` for a custom event (aggregator/minutes.py)."""
        if self.goal.startswith(PAGEVIEW_GOAL_PREFIX):
            return keys.counter_attr(PAGEVIEWS, self.goal[len(PAGEVIEW_GOAL_PREFIX) :])
        return keys.counter_attr(EVENTS, self.goal)

    @property
    def scheduled(self) -> bool:
        """The minute schedule looks at it: its kind needs it, or it fires (so that it resolves
        when traffic stops entirely) or holds a message not queued yet."""
        return self.kind in SCHEDULED or self.state.firing or bool(self.state.pending)

    def out(self) -> dict[str, Any]:
        """As the admin API and the CLI show it: never the secret."""
        return {
            "id": self.id,
            "kind": self.kind,
            "threshold": self.threshold if self.kind != DROP else None,
            "goal": self.goal or None,
            "window_minutes": self.window_minutes if self.kind != REFERRER else None,
            "cooldown_seconds": self.cooldown_seconds,
            "webhook": (
                {"url": self.target.url, "format": self.target.format}
                if self.target.webhook
                else None
            ),
            "emails": list(self.target.emails),
            "created_at": self.created_at,
            "firing": self.state.firing,
            "last_alert_at": self.state.last_alert_at or None,
        }


def message_key(rule_id: str, crossing: int, kind: str) -> str:
    return f"{rule_id}.{crossing}.{kind}"


# ---- validation ---------------------------------------------------------------------------------


def validate_url(url: str) -> str:
    """https anywhere; http only to this machine (the local stack and tests' capture servers)."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH or not url.isprintable():
        raise AlertError(f"a webhook URL has 1 to {MAX_URL_LENGTH} printable characters")
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise AlertError("a webhook URL is https://host/path (no credentials in it)")
    if parts.scheme == "http" and not _loopback(host):
        raise AlertError("a webhook URL is https, except to localhost")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_emails(emails: Sequence[str] | None) -> tuple[str, ...]:
    """Up to MAX_EMAILS plain addresses, trimmed, the domain lower-cased, duplicates dropped."""
    if not emails:
        return ()
    if isinstance(emails, str):
        raise AlertError("a rule's emails are a list of addresses")
    out: list[str] = []
    for raw in emails:
        if not isinstance(raw, str):
            raise AlertError("a rule's emails are a list of addresses")
        address = raw.strip()
        if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(address) or ".." in address:
            raise AlertError(f"{raw[:80]!r} is not an email address (name@example.com)")
        local, domain = address.rsplit("@", 1)
        address = f"{local}@{domain.lower()}"
        if address not in out:
            out.append(address)
    if len(out) > MAX_EMAILS:
        raise AlertError(f"a rule emails at most {MAX_EMAILS} addresses")
    return tuple(out)


def validate_target(
    url: str | None, secret: str | None, format: str, emails: Sequence[str] | None
) -> Target:
    """A webhook, email recipients, or both; AlertError when neither or either is invalid."""
    addresses = validate_emails(emails)
    if format not in FORMATS:
        raise AlertError(f"a webhook's format is one of {', '.join(FORMATS)}")
    if url is None or url == "":
        if not addresses:
            raise AlertError("a rule goes to a webhook, to email recipients, or to both")
        if secret:
            raise AlertError("a webhook secret needs a webhook URL")
        return Target(format=format, emails=addresses)
    return Target(validate_url(url), validate_secret(secret), format, addresses)


def validate_secret(secret: str | None) -> str:
    """The owner's secret, or a new random one."""
    if secret is None or secret == "":
        return SECRET_PREFIX + secrets.token_urlsafe(24)
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH or not secret.isprintable():
        raise AlertError(
            f"a webhook secret has {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable characters"
        )
    return secret


def validate_rule(
    kind: str,
    threshold: int | None,
    goal: str | None,
    window_minutes: int | None,
    cooldown_seconds: int | None,
    site_goals: tuple[str, ...],
) -> tuple[str, int, str, int, int]:
    """(kind, threshold, goal, window, cool-down) of a valid rule; AlertError otherwise.
    spike: threshold N (required), no goal, window 5. goal: threshold K and a goal (required),
    window 1..60 (default 5). drop: no threshold, no goal, window M 1..180 (default 15).
    new_referrer: threshold = the fewest visitors today's top source needs (default 1), no goal,
    no window."""
    if kind not in KINDS:
        raise AlertError(f"a rule's kind is one of {', '.join(KINDS)}")
    cooldown = DEFAULT_COOLDOWN_SECONDS if cooldown_seconds is None else cooldown_seconds
    if not 0 <= cooldown <= MAX_COOLDOWN_SECONDS:
        raise AlertError(f"a rule's cool-down is 0 to {MAX_COOLDOWN_SECONDS} seconds")
    if kind != GOAL and goal:
        raise AlertError(f"a {kind} rule names no goal")
    goal = _goal(goal or "", site_goals) if kind == GOAL else ""
    return kind, _threshold(kind, threshold), goal, _window(kind, window_minutes), cooldown


def _threshold(kind: str, threshold: int | None) -> int:
    if threshold is None:
        if kind in STREAMED:
            raise AlertError(f"a {kind} rule has a threshold")
        return 0 if kind == DROP else 1
    if kind == DROP:
        raise AlertError("a drop rule has no threshold: it fires when no pageview comes")
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise AlertError("a rule's threshold is a whole number")
    if not 1 <= threshold <= MAX_THRESHOLD:
        raise AlertError(f"a rule's threshold is 1 to {MAX_THRESHOLD}")
    return threshold


def _window(kind: str, window_minutes: int | None) -> int:
    if kind == SPIKE:
        if window_minutes not in (None, 5):
            raise AlertError(
                "a spike rule watches current visitors (5 minutes): no goal, no window"
            )
        return 5
    if kind == REFERRER:
        if window_minutes is not None:
            raise AlertError("a new_referrer rule looks at today (site time): no window")
        return 0
    longest = MAX_DROP_MINUTES if kind == DROP else MAX_WINDOW_MINUTES
    default = DEFAULT_DROP_MINUTES if kind == DROP else 5
    window = default if window_minutes is None else window_minutes
    if isinstance(window, bool) or not 1 <= window <= longest:
        raise AlertError(f"a {kind} rule's window is 1 to {longest} minutes")
    return window


def _goal(goal: str, site_goals: tuple[str, ...]) -> str:
    if not goal:
        raise AlertError('a goal rule names a goal ("Visit /path" or a custom event\'s name)')
    if goal.startswith(PAGEVIEW_GOAL_PREFIX):
        if len(goal) <= len(PAGEVIEW_GOAL_PREFIX) or "*" in goal:
            raise AlertError("a goal rule's page is one path, without *")
    elif not goal.strip() or goal != goal.strip() or not goal.isprintable():
        raise AlertError("a custom event goal is its event's name, printable, not blank")
    if site_goals and goal not in site_goals:
        raise AlertError(f"{goal!r} is not one of the site's goals")
    return goal


# ---- the store ---------------------------------------------------------------------------------


class StateMoved(Exception):
    """Another writer changed the rule's state first: read it again."""


class RuleStore:
    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client, self._table, self._clock = client, table, clock

    @property
    def meta(self) -> tuple[Any, str]:
        return self._client, self._table

    def list(self, site: str, consistent: bool = False) -> builtins.list[Rule]:
        items = paged(
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.alert_rules_pk(site)}},
            ConsistentRead=consistent,
        )
        return sorted((_rule(site, item) for item in items), key=lambda r: (r.created_at, r.id))

    def get(self, site: str, rule_id: str) -> Rule | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=_key(site, rule_id),
            ConsistentRead=True,
        )
        return _rule(site, response["Item"]) if "Item" in response else None

    def add(
        self,
        site: str,
        kind: str,
        threshold: int | None,
        url: str | None,
        secret: str | None = None,
        format: str = JSON,
        goal: str | None = None,
        window_minutes: int | None = None,
        cooldown_seconds: int | None = None,
        site_goals: tuple[str, ...] = (),
        emails: Sequence[str] | None = None,
    ) -> Rule:
        kind, threshold, goal, window, cooldown = validate_rule(
            kind, threshold, goal, window_minutes, cooldown_seconds, site_goals
        )
        target = validate_target(url, secret, format, emails)
        if len(self.list(site, consistent=True)) >= MAX_RULES:
            raise AlertError(f"a site keeps at most {MAX_RULES} alert rules")
        rule = Rule(
            secrets.token_hex(6),
            site,
            kind,
            threshold,
            target,
            goal,
            window,
            cooldown,
            int(self._clock()),
        )
        self._client.put_item(
            TableName=self._table, Item=_item(rule), ConditionExpression="attribute_not_exists(pk)"
        )
        if rule.scheduled:
            ScheduleIndex(self._client, self._table).mark(site)
        return rule

    def remove(self, site: str, rule_id: str) -> None:
        response = self._client.delete_item(
            TableName=self._table, Key=_key(site, rule_id), ReturnValues="ALL_OLD"
        )
        if "Attributes" not in response:
            raise RuleNotFound(f"no alert rule {rule_id} for {site}")

    def remove_all(self, site: str) -> int:
        removed = 0
        for rule in self.list(site, consistent=True):
            self.remove(site, rule.id)
            removed += 1
        return removed

    def record(self, rule: Rule, state: State) -> Rule:
        """Move the rule from the state it was read with to `state`, if nobody moved it first
        (StateMoved otherwise). One conditional write: the idempotency of a crossing."""
        values: dict[str, Any] = {
            ":v": {"N": str(rule.state.version)},
            ":nv": {"N": str(rule.state.version + 1)},
            ":f": {"BOOL": state.firing},
            ":c": {"N": str(state.crossing)},
            ":l": {"N": str(state.last_alert_at)},
            ":p": {"S": state.pending},
            ":ps": {"N": str(state.pending_since)},
            ":x": {"N": str(state.value)},
            ":d": {"S": state.detail},
        }
        condition = "attribute_exists(pk) AND "
        if rule.state.version:
            condition += "ver = :v"
        else:
            condition += "attribute_not_exists(ver)"
            del values[":v"]
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(rule.site, rule.id),
                UpdateExpression=(
                    "SET ver = :nv, firing = :f, crossing = :c, last_alert_at = :l,"
                    " pending = :p, pending_since = :ps, last_value = :x, last_detail = :d"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StateMoved(rule.id) from None
            raise
        return replace(rule, state=replace(state, version=rule.state.version + 1))


def _key(site: str, rule_id: str) -> dict[str, Any]:
    return {"pk": {"S": keys.alert_rules_pk(site)}, "sk": {"S": rule_id}}


def _item(rule: Rule) -> dict[str, Any]:
    definition = {
        "kind": rule.kind,
        "threshold": rule.threshold,
        "goal": rule.goal,
        "window_minutes": rule.window_minutes,
        "cooldown_seconds": rule.cooldown_seconds,
        "url": rule.target.url,
        "format": rule.target.format,
        "emails": list(rule.target.emails),
    }
    item = {
        **_key(rule.site, rule.id),
        "rule": {"S": json.dumps(definition, separators=(",", ":"))},
        "created_at": {"N": str(rule.created_at)},
    }
    if rule.target.secret:
        item["secret"] = {"S": rule.target.secret}
    return item


def _rule(site: str, item: dict[str, Any]) -> Rule:
    d = json.loads(item["rule"]["S"])

    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    state = State(
        version=number("ver"),
        firing=bool(item.get("firing", {}).get("BOOL", False)),
        crossing=number("crossing"),
        last_alert_at=number("last_alert_at"),
        pending=item.get("pending", {}).get("S", ""),
        pending_since=number("pending_since"),
        value=number("last_value"),
        detail=item.get("last_detail", {}).get("S", ""),
    )
    return Rule(
        id=item["sk"]["S"],
        site=site,
        kind=d["kind"],
        threshold=int(d["threshold"]),
        target=Target(
            d["url"],
            item.get("secret", {}).get("S", ""),
            d["format"],
            tuple(d.get("emails", ())),
        ),
        goal=d["goal"],
        window_minutes=int(d["window_minutes"]),
        cooldown_seconds=int(d["cooldown_seconds"]),
        created_at=number("created_at"),
        state=state,
    )


# ---- the schedule's index ----------------------------------------------------------------------

# One item lists the sites the minute schedule must look at (decision 0037), so that a minute
# with none costs one small read: pk `ALERTS#` (no site is empty, so no site's rules are under
# it) and sk SCHEDULE_SK, one attribute `s|<site>` per site, its value a token set by whoever
# put the site there last. Whoever finds a site with nothing scheduled takes it out only if the
# token is still the one it read: a site marked again meanwhile (a new drop rule, a spike that
# fires) stays listed.
SCHEDULE_SK = "schedule"
_SITE_ATTR = "s|"


class ScheduleIndex:
    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table

    @property
    def _key(self) -> dict[str, Any]:
        return {"pk": {"S": keys.alert_rules_pk("")}, "sk": {"S": SCHEDULE_SK}}

    def mark(self, site: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET #s = :t",
            ExpressionAttributeNames={"#s": _SITE_ATTR + site},
            ExpressionAttributeValues={":t": {"S": secrets.token_hex(6)}},
        )

    def sites(self) -> dict[str, str]:
        """{site: token}: one eventually consistent GetItem (a site marked a second ago may
        wait for the next minute)."""
        item = self._client.get_item(TableName=self._table, Key=self._key).get("Item", {})
        return {
            name[len(_SITE_ATTR) :]: value["S"]
            for name, value in item.items()
            if name.startswith(_SITE_ATTR) and "S" in value
        }

    def unmark(self, site: str, token: str) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="REMOVE #s",
                ConditionExpression="#s = :t",
                ExpressionAttributeNames={"#s": _SITE_ATTR + site},
                ExpressionAttributeValues={":t": {"S": token}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
