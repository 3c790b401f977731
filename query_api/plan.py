"""The planner: each stats question goes to the counters when they answer it exactly, and to the
event archive otherwise (decision 0031).

The counters (query_api/counters.py) are exact, seconds-fresh and cheap, but keep one property at a
time; when a question needs more (two properties at once, visits by page, a filtered hourly
series, a value folded into "(other)") they refuse it with `NotExact`. The planner then reads
the archived events of the question's days (plus a day on each side: visits over midnight, the
next event after a page's last view) and asks the archive engine (query_api/archive_engine.py,
DuckDB) the same question. Without an archive the refusal stands: the caller's 400.

Each answer says which path gave it and how fresh it is: the counters' as of now, the archive's
as of its newest object (the rollup tier writes it every batch, up to 300 s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from core.sites import Site
from query_api import counters, parse
from query_api.metrics import Number
from query_api.reader import CounterReader

COUNTERS, ARCHIVE = "counters", "archive"

T = TypeVar("T")


class ArchiveFiles(Protocol):
    """What the planner needs of the archive (archive/store.py's ArchiveStore)."""

    def local_files(self, site: str, first_day: str, last_day: str) -> list[Path]: ...

    def newest(self, site: str) -> datetime | None: ...


class Engine(Protocol):
    def aggregate(
        self, query: parse.Query, compare: bool = False
    ) -> dict[str, dict[str, Number | None]]: ...

    def timeseries(self, query: parse.Query, interval: str) -> list[dict[str, Number | str]]: ...

    def breakdown(
        self, query: parse.Query, prop: parse.Property, limit: int = 100, page: int = 1
    ) -> tuple[list[dict[str, Number | str]], bool]: ...


def _archive_engine(site: Site, files: Sequence[Path]) -> Engine:
    # Imported on the archive path only: it brings DuckDB, ~0.1 s of a cold start (decision 0029).
    from query_api.archive_engine import ArchiveEngine

    return ArchiveEngine(site, files)


class Planner:
    """One site's stats questions, with the same methods as `counters.CounterEngine`; after each answer
    `answered_from` and `fresh_to` say which path answered and as of when."""

    def __init__(
        self,
        reader: CounterReader,
        site: Site,
        archive: ArchiveFiles | None,
        now: datetime,
        engine: Callable[[Site, Sequence[Path]], Engine] = _archive_engine,
    ) -> None:
        self.site = site
        self.counters = counters.CounterEngine(reader, site)
        self.archive = archive
        self.now = now
        self._engine = engine
        self.answered_from = COUNTERS
        self.fresh_to: datetime | None = now

    def aggregate(
        self, query: parse.Query, compare: bool = False
    ) -> dict[str, dict[str, Number | None]]:
        spans = [query.span, parse.previous_period(query.span)] if compare else [query.span]
        return self._answer(lambda engine: engine.aggregate(query, compare), spans)

    def timeseries(self, query: parse.Query, interval: str) -> list[dict[str, Number | str]]:
        return self._answer(lambda engine: engine.timeseries(query, interval), [query.span])

    def breakdown(
        self, query: parse.Query, prop: parse.Property, limit: int = 100, page: int = 1
    ) -> tuple[list[dict[str, Number | str]], bool]:
        return self._answer(lambda engine: engine.breakdown(query, prop, limit, page), [query.span])

    def prop_keys(self, span: parse.DateRange) -> list[tuple[str, int]]:
        return self.counters.prop_keys(span)

    def _answer(self, ask: Callable[[Engine], T], spans: list[parse.DateRange]) -> T:
        try:
            answer = ask(self.counters)
        except counters.NotExact:
            if self.archive is None:
                raise
        else:
            self.answered_from, self.fresh_to = COUNTERS, self.now
            return answer
        first = min(s.first for s in spans) - timedelta(days=1)
        last = max(s.last for s in spans) + timedelta(days=1)
        files = self.archive.local_files(self.site.domain, first.isoformat(), last.isoformat())
        answer = ask(self._engine(self.site, files))
        self.answered_from, self.fresh_to = ARCHIVE, self.archive.newest(self.site.domain)
        return answer
