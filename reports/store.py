"""Report subscriptions and sent markers of a site, in the meta table (decision 0038).

Partition `REPORTS#<site>`: one item per recipient (sk `sub#<address>`, the kinds it gets as a
string set) and one marker per report sent (sk `sent#<kind>#<period>#<address>`). A marker is
claimed with a conditional write before the mail goes out, so of two runs that find the same
report due (the schedule run twice, a retried invocation) one sends it; it is `sending` until
SES accepted the mail, then `sent`. A `sending` marker older than STALE_SECONDS (a run that died
between the claim and SES) may be claimed again: at most once unless a run dies mid-send.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from core.aws import paged
from core.mail import MailError, normal_address
from reports.schedule import KINDS

PK_PREFIX = "REPORTS#"
SUB, SENT = "sub#", "sent#"
MAX_RECIPIENTS = 10  # per site
STALE_SECONDS = 900  # longer than the function's timeout
MARKER_TTL_SECONDS = 400 * 24 * 3600  # a year of monthly markers and some
SENDING, DONE = "sending", "sent"


class ReportError(ValueError):
    """Invalid subscription input."""


def reports_pk(site: str) -> str:
    return PK_PREFIX + site


def sub_sk(address: str) -> str:
    return SUB + address


def sent_sk(kind: str, period: str, address: str) -> str:
    return f"{SENT}{kind}#{period}#{address}"


@dataclass(frozen=True)
class Subscription:
    email: str
    kinds: tuple[str, ...]

    def out(self) -> dict[str, Any]:
        return {"email": self.email, "kinds": list(self.kinds)}


def validate(entries: Iterable[tuple[str, Iterable[str]]]) -> list[Subscription]:
    """(address, kinds) pairs as subscriptions: addresses normalised and unique, kinds known."""
    out: dict[str, Subscription] = {}
    for raw, kinds in entries:
        try:
            address = normal_address(raw)
        except MailError as exc:
            raise ReportError(str(exc)) from None
        chosen = tuple(k for k in KINDS if k in set(kinds))
        if unknown := set(kinds) - set(KINDS):
            raise ReportError(f"a report is one of {', '.join(KINDS)}, not {sorted(unknown)[0]!r}")
        if chosen:
            out[address] = Subscription(address, chosen)
    if len(out) > MAX_RECIPIENTS:
        raise ReportError(f"a site's reports go to at most {MAX_RECIPIENTS} addresses")
    return list(out.values())


class ReportStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table

    def subscriptions(self, site: str, consistent: bool = False) -> builtins.list[Subscription]:
        items = paged(
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sub)",
            ExpressionAttributeValues={":pk": {"S": reports_pk(site)}, ":sub": {"S": SUB}},
            ConsistentRead=consistent,
        )
        subs = [
            Subscription(item["sk"]["S"][len(SUB) :], tuple(k for k in KINDS if k in kinds))
            for item in items
            if (kinds := set(item.get("kinds", {}).get("SS", [])))
        ]
        return sorted(subs, key=lambda s: s.email)

    def replace(self, site: str, subs: builtins.list[Subscription]) -> None:
        """The site's subscriptions become exactly `subs`."""
        wanted = {s.email for s in subs}
        for old in self.subscriptions(site, consistent=True):
            if old.email not in wanted:
                self._client.delete_item(TableName=self._table, Key=self._sub_key(site, old.email))
        for sub in subs:
            self._client.put_item(
                TableName=self._table,
                Item={**self._sub_key(site, sub.email), "kinds": {"SS": list(sub.kinds)}},
            )

    def subscribe(self, site: str, address: str, kinds: Iterable[str]) -> Subscription:
        subs = validate([(address, kinds)])
        if not subs:
            raise ReportError("name at least one report (weekly, monthly)")
        sub = subs[0]
        current = self.subscriptions(site, consistent=True)
        if sub.email not in {s.email for s in current} and len(current) >= MAX_RECIPIENTS:
            raise ReportError(f"a site's reports go to at most {MAX_RECIPIENTS} addresses")
        response = self._client.update_item(
            TableName=self._table,
            Key=self._sub_key(site, sub.email),
            UpdateExpression="ADD kinds :k",
            ExpressionAttributeValues={":k": {"SS": list(sub.kinds)}},
            ReturnValues="ALL_NEW",
        )
        kinds_now = set(response["Attributes"]["kinds"]["SS"])
        return Subscription(sub.email, tuple(k for k in KINDS if k in kinds_now))

    def unsubscribe(self, site: str, address: str, kind: str) -> bool:
        """Stop `kind` for the address; whether it was subscribed to it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._sub_key(site, address),
                UpdateExpression="DELETE kinds :k",
                ConditionExpression="contains(kinds, :one)",
                ExpressionAttributeValues={":k": {"SS": [kind]}, ":one": {"S": kind}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove_all(self, site: str) -> int:
        items = list(
            paged(
                self._client.query,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": reports_pk(site)}},
                ConsistentRead=True,
            )
        )
        for item in items:
            self._client.delete_item(
                TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]}
            )
        return len(items)

    # ---- sent markers ---------------------------------------------------------------------

    def claim(self, site: str, kind: str, period: str, address: str, now: int) -> bool:
        """Whether this run sends the report (no other run has sent or is sending it)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **self._sent_key(site, kind, period, address),
                    "status": {"S": SENDING},
                    "at": {"N": str(now)},
                    "ttl": {"N": str(now + MARKER_TTL_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(pk) OR (#s = :sending AND #at < :stale)",
                ExpressionAttributeNames={"#s": "status", "#at": "at"},
                ExpressionAttributeValues={
                    ":sending": {"S": SENDING},
                    ":stale": {"N": str(now - STALE_SECONDS)},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_sent(
        self, site: str, kind: str, period: str, address: str, now: int, message_id: str
    ) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._sent_key(site, kind, period, address),
            UpdateExpression="SET #s = :sent, #at = :at, message_id = :m",
            ExpressionAttributeNames={"#s": "status", "#at": "at"},
            ExpressionAttributeValues={
                ":sent": {"S": DONE},
                ":at": {"N": str(now)},
                ":m": {"S": message_id},
            },
        )

    def release(self, site: str, kind: str, period: str, address: str) -> None:
        """A failed send: the next run tries again."""
        self._client.delete_item(
            TableName=self._table, Key=self._sent_key(site, kind, period, address)
        )

    def sent(self, site: str, limit: int = 20) -> builtins.list[dict[str, Any]]:
        """The latest reports sent (markers), newest period first."""
        items = paged(
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sent)",
            ExpressionAttributeValues={":pk": {"S": reports_pk(site)}, ":sent": {"S": SENT}},
        )
        out = []
        for item in items:
            kind, period, address = item["sk"]["S"][len(SENT) :].split("#", 2)
            out.append(
                {
                    "kind": kind,
                    "period": period,
                    "email": address,
                    "status": item["status"]["S"],
                    "at": int(item["at"]["N"]),
                }
            )
        return sorted(out, key=lambda e: (e["period"], e["at"]), reverse=True)[:limit]

    @staticmethod
    def _sub_key(site: str, address: str) -> dict[str, Any]:
        return {"pk": {"S": reports_pk(site)}, "sk": {"S": sub_sk(address)}}

    @staticmethod
    def _sent_key(site: str, kind: str, period: str, address: str) -> dict[str, Any]:
        return {"pk": {"S": reports_pk(site)}, "sk": {"S": sent_sk(kind, period, address)}}
