"""When a report is due, and for which days (decision 0038). Pure: the clock is an argument.

A report covers whole local days of the site's zone: `weekly` the previous Monday to Sunday,
`monthly` the previous calendar month. It is due from SEND_HOUR local time on the first day
after its period (Monday, the 1st) to the end of that day: the hourly schedule gets ~16 tries,
and a period whose day passed without a run is not sent late (a Wednesday digest of last week
reads as noise). Whichever run of the day finds it due first sends it; the sent markers
(reports/store.py) make the others find it sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

WEEKLY, MONTHLY = "weekly", "monthly"
KINDS = (WEEKLY, MONTHLY)
SEND_HOUR = 8  # local time


@dataclass(frozen=True)
class Period:
    kind: str
    first: date
    last: date

    @property
    def id(self) -> str:
        """What the sent markers are keyed by: the week's Monday, or the month."""
        return self.first.isoformat() if self.kind == WEEKLY else self.first.strftime("%Y-%m")

    @property
    def label(self) -> str:
        if self.kind == MONTHLY:
            return self.first.strftime("%B %Y")
        return f"{self.first:%d %b} to {self.last:%d %b %Y}"


def local_now(now: datetime, tz: str) -> datetime:
    return now.astimezone(ZoneInfo(tz))


def last_complete(kind: str, today: date) -> Period:
    """The latest period of `kind` that ended before `today` (a local date)."""
    if kind == WEEKLY:
        monday = today - timedelta(days=today.weekday())
        return Period(kind, monday - timedelta(days=7), monday - timedelta(days=1))
    if kind == MONTHLY:
        last = today.replace(day=1) - timedelta(days=1)
        return Period(kind, last.replace(day=1), last)
    raise ValueError(f"a report is one of {', '.join(KINDS)}")


def due(kind: str, now: datetime, tz: str) -> Period | None:
    """The period a report of `kind` is due for at `now` in zone `tz`, or None."""
    local = local_now(now, tz)
    first_day = local.weekday() == 0 if kind == WEEKLY else local.day == 1
    if not first_day or local.hour < SEND_HOUR:
        return None
    return last_complete(kind, local.date())
