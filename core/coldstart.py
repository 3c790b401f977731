"""What a Lambda's handler module does once, at cold start, before its own imports.

Importing FastAPI, pydantic and botocore allocates ~100,000 objects that live as long as the
process; the cyclic garbage collector walks them again and again while they are created (~35 ms of
the query function's ~350 ms import, decision 0022) and finds nothing to free. So the handler
modules import with the collector off, then freeze what was imported (moved out of the
collector's view: later collections of a warm instance skip it too) and turn the collector back on,
the sequence the `gc.freeze` documentation gives for long-lived start-up objects.
"""

from __future__ import annotations

import gc
from types import TracebackType


class imports_without_gc:  # lower case: used as `with imports_without_gc():`
    # A class, not @contextmanager: this module runs before the handler's imports and imports
    # nothing that allocates much (contextlib would, and trigger the collections it is to avoid).
    def __enter__(self) -> None:
        gc.disable()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        gc.freeze()
        gc.enable()
