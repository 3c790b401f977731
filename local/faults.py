"""Fault injection for the local stack: what Lambda and DynamoDB do to an aggregator on a bad day.

Off by default; `liveinsight dev --faults SEED` and the tests turn it on. Two seams:
- the event source mapping (local/poller.py): duplicate invocations, a lost response after the
  function ran (Lambda sees a timeout: the batch is retried or bisected although it committed),
  a crash before the function runs, and several simulated shards whose batches interleave, so
  records arrive out of order across partition keys;
- the aggregator's DynamoDB client: TransactWriteItems answered with throttling or a transaction
  conflict, as botocore would raise them after its own retries.
Every choice comes from one seeded random generator, so a failing schedule can be replayed (with
the poller's own `shards`, delivered side by side, which invocation draws which choice depends on
thread timing).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


@dataclass
class Faults:
    seed: int = 0
    shards: int = 1  # simulated shards, taking turns on one thread (the poller's `shards` wins)
    duplicate: float = 0.0  # a successful invocation is delivered again
    lost_response: float = 0.0  # the function ran (and committed) but Lambda saw a timeout
    crash_before: float = 0.0  # the instance died before the handler ran
    throttle: float = 0.0  # TransactWriteItems → ProvisionedThroughputExceededException
    conflict: float = 0.0  # TransactWriteItems → TransactionConflictException
    counts: dict[str, int] = field(default_factory=dict)
    # Kinds that happen at their first chance whatever the draw: a campaign that must exercise
    # them does not depend on thread timing (which invocation draws which number).
    force: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @classmethod
    def moderate(cls, seed: int) -> Faults:
        return cls(
            seed,
            shards=3,
            duplicate=0.1,
            lost_response=0.1,
            crash_before=0.05,
            throttle=0.1,
            conflict=0.05,
        )

    def happens(self, name: str) -> bool:
        drawn = self._random.random() < getattr(self, name)
        if drawn or (name in self.force and name not in self.counts):
            self.counts[name] = self.counts.get(name, 0) + 1
            return True
        return False

    def pick(self, choices: list[Any]) -> Any:
        return self._random.choice(choices)

    def install_on(self, client: Any) -> None:
        """Throttle or conflict some of this DynamoDB client's transactions, before they run."""

        def before_transaction(**_: Any) -> None:
            for name, code in (
                ("throttle", "ProvisionedThroughputExceededException"),
                ("conflict", "TransactionConflictException"),
            ):
                if self.happens(name):
                    raise client.exceptions.from_code(code)(
                        {"Error": {"Code": code, "Message": f"injected {name}"}},
                        "TransactWriteItems",
                    )

        client.meta.events.register("before-call.dynamodb.TransactWriteItems", before_transaction)


class InjectedCrash(RuntimeError):
    """The function's instance died (injected)."""


__all__ = ["ClientError", "Faults", "InjectedCrash"]
