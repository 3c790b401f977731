"""Durable write of accepted events: one conditional PutItem each, before we answer 202."""

from __future__ import annotations

from typing import Any

from core.events import RawEvent


class EventStore:
    def __init__(self, client: Any, table: str, ttl_seconds: int) -> None:
        self._client = client
        self._table = table
        self._ttl_seconds = ttl_seconds

    def put(self, event: RawEvent) -> bool:
        """Store the event; False when an event with the same id was stored before (a resend)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=event.to_item(ttl=event.ts // 1000 + self._ttl_seconds),
                # Only ever PutItem on the streamed table: one INSERT record per new event.
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
