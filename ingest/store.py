"""Durable write of accepted events: one conditional PutItem each, before we answer 202.

An event's key is its visitor and its id (decision 0040), so the conditional Put refuses a resend
only when the resend hashes to the same visitor. An id the client sent (the native API's `id`)
can come back from another address or user agent, or after the daily salt turned: such an event
first puts a marker in the meta table, `EVID#<site>#<id>`, holding the visitor it is stored
under, on the condition that none exists. A resend finds the marker and is stored under the
marker's visitor, where the first try's item already is: refused. A first try that wrote its
marker and not its event (a crash between the two) is completed by the resend, under the same
visitor. Two writes for such an event, one for the rest (the trackers send no id).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core import keys
from core.events import RawEvent

MARKER_VISITOR = "v"


class EventStore:
    def __init__(self, client: Any, table: str, ttl_seconds: int, meta_table: str) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_seconds
        self._meta_table = meta_table

    def put(self, event: RawEvent, client_id: bool = False) -> bool:
        """Store the event; False when an event with the same id was stored before (a resend).
        `client_id`: the id came from the client, so a resend may hash to another visitor."""
        ttl = event.ts // 1000 + self._ttl_seconds
        if client_id:
            event = replace(event, visitor_id=self._first_visitor(event, ttl))
        try:
            self._client.put_item(
                TableName=self._table,
                Item=event.to_item(ttl=ttl),
                # Only ever PutItem on the streamed table: one INSERT record per new event.
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _first_visitor(self, event: RawEvent, ttl: int) -> str:
        """The visitor the event's id was first stored under: this event's, if it is the first."""
        try:
            self._client.put_item(
                TableName=self._meta_table,
                Item={
                    "pk": {"S": keys.resend_marker_pk(event.site, event.event_id)},
                    "sk": {"S": keys.NO_SORT},
                    MARKER_VISITOR: {"S": event.visitor_id},
                    "ttl": {"N": str(ttl)},
                },
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            first = exc.response.get("Item", {}).get(MARKER_VISITOR, {}).get("S")
            return str(first) if first else event.visitor_id
        return event.visitor_id
