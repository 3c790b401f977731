"""What Lambda gives a handler: a context object, and one invocation at a time per instance.

A function has one warm instance by default: its invocations run one at a time, as on one Lambda
instance. The aggregator's tiers have one instance per stream shard (Lambda runs one batch per
shard at a time, and the shards' batches at once), so those run side by side in one process.
What the handlers keep at module level is built for that: clients and stores are thread-safe, and
metrics are EphemeralMetrics per function (core/observability.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    qualifier: str = ""  # the alias invoked, if any
    timeout_seconds: float = 30.0  # the function's configured timeout
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        return f"{arn}:{self.qualifier}" if self.qualifier else arn

    def get_remaining_time_in_millis(self) -> int:
        return max(0, round((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


def _instance_main_thread() -> None:
    # Lambda's Python runtime calls the handler on a main thread that has an event loop;
    # Mangum relies on asyncio.get_event_loop() finding it.
    asyncio.set_event_loop(asyncio.new_event_loop())


class LocalFunction:
    """A deployed function with `instances` warm instances (each a thread): an invocation runs on
    a free one, or waits for one."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        qualifier: str = "",
        instances: int = 1,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.name = name
        self.timeout_seconds = timeout_seconds
        self.qualifier = qualifier  # an alias: its own warm instances, as Lambda gives it
        self._handler = handler
        self._instance = ThreadPoolExecutor(
            max_workers=instances,
            thread_name_prefix=f"lambda-{name}{'-' + qualifier if qualifier else ''}",
            initializer=_instance_main_thread,
        )
        self._counting = threading.Lock()
        self.invocations = 0
        self.billed_seconds = 0.0  # handler time, what Lambda bills (for `make bench`)
        self._refusal: Any = None
        self._closed = False

    def invoke(self, event: dict[str, Any]) -> Any:
        if self._closed:
            return self._refused()
        with self._counting:
            self.invocations += 1
        try:
            future = self._instance.submit(self._timed, event)
        except RuntimeError:  # closed between the check and the submit
            return self._refused()
        return future.result()

    def close(self, refusal: Any = None) -> None:
        """Take no more invocations and wait for those already taken. Later ones get `refusal`
        (what the caller's side answers when the function cannot be reached) or raise."""
        self._refusal, self._closed = refusal, True
        self._instance.shutdown(wait=True)

    def _refused(self) -> Any:
        if self._refusal is None:
            raise FunctionClosedError(f"{self.name} is shut down")
        return self._refusal

    def _timed(self, event: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            context = LambdaContext(
                self.name, qualifier=self.qualifier, timeout_seconds=self.timeout_seconds
            )
            return self._handler(event, context)
        finally:
            elapsed = time.perf_counter() - started
            with self._counting:
                self.billed_seconds += elapsed


class FunctionClosedError(RuntimeError):
    """An invocation of a function that was shut down."""
