"""A daemon thread that repeats one step until stopped, as AWS's pollers go on: an exception is
logged and the loop waits a second (the SQS mapping, the S3 notification emulation)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any


class Loop(ABC):
    thread_name = "loop"
    failure = "step failed"  # the log line of a step that raised

    def __init__(self, log: Any) -> None:
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def step(self) -> None:
        """One round of the loop's work."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                self._log.exception(self.failure)
                self._stop.wait(1.0)
