"""The reports schedule's run (decision 0038): for each site, the reports due in its zone now,
sent once per recipient, kind and period.

A run costs one Query (every site, for their zones) when nothing is due anywhere; a site whose
report is due adds one Query of its subscriptions, and a site with recipients the report's
questions (asked once per site and period, only once a recipient's marker is claimed) and one
SES message per recipient. The query side is imported only then.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.mail import Mail
from core.observability import logger
from core.sites import Site
from reports import content, unsubscribe
from reports.schedule import KINDS, Period, due
from reports.store import ReportStore

log = logger("reports")

Build = Callable[[Site, Period, datetime], content.Report]
SendMail = Callable[[Mail], str]


@dataclass(frozen=True)
class Links:
    """Where the links in a report point: the dashboard's origin and the unsubscribe key."""

    base_url: Callable[[], str]
    key: Callable[[], bytes | None]


@dataclass(frozen=True)
class Sent:
    site: str
    kind: str
    period: str
    email: str
    message_id: str


class Runner:
    def __init__(
        self,
        sites: Callable[[], list[Site]],
        store: ReportStore,
        build: Build,
        send: SendMail,
        links: Links,
    ) -> None:
        self.sites, self.store, self.build, self.send, self.links = sites, store, build, send, links

    def run(self, now: datetime) -> list[Sent]:
        """What the schedule does each hour."""
        sent: list[Sent] = []
        for site in self.sites():
            periods = [p for kind in KINDS if (p := due(kind, now, site.tz)) is not None]
            if periods:
                sent += self.send_due(site, periods, now)
        return sent

    def send_due(self, site: Site, periods: list[Period], now: datetime) -> list[Sent]:
        subs = self.store.subscriptions(site.domain, consistent=True)
        sent: list[Sent] = []
        for period in periods:
            recipients = [s.email for s in subs if period.kind in s.kinds]
            sent += self.send_period(site, period, recipients, now)
        return sent

    def send_period(
        self, site: Site, period: Period, recipients: list[str], now: datetime
    ) -> list[Sent]:
        """The report of `period` to each recipient that has not had it."""
        report: content.Report | None = None
        sent: list[Sent] = []
        stamp = int(now.timestamp())
        for address in recipients:
            if not self.store.claim(site.domain, period.kind, period.id, address, stamp):
                continue  # sent, or being sent, by another run
            try:
                report = report or self.build(site, period, now)
                message_id = self.send(self.mail(report, address))
            except Exception as exc:  # the next hourly run of the day tries again
                self.store.release(site.domain, period.kind, period.id, address)
                log.warning(
                    "report not sent",
                    extra={"site": site.domain, "kind": period.kind, "error": repr(exc)[:200]},
                )
                continue
            self.store.mark_sent(site.domain, period.kind, period.id, address, stamp, message_id)
            sent.append(Sent(site.domain, period.kind, period.id, address, message_id))
        if sent:
            log.info(
                "reports sent",
                extra={
                    "site": site.domain,
                    "kind": period.kind,
                    "period": period.id,
                    "n": len(sent),
                },
            )
        return sent

    def mail(self, report: content.Report, address: str) -> Mail:
        base, key = self.links.base_url(), self.links.key()
        if key is None:
            raise RuntimeError("no session-signing key: an unsubscribe link cannot be signed")
        link = unsubscribe.link(base, key, report.site, address, report.period.kind)
        dates = {"from": report.period.first.isoformat(), "to": report.period.last.isoformat()}
        query = urllib.parse.urlencode({"site": report.site, "period": "custom", **dates})
        dashboard = f"{base.rstrip('/')}/?{query}"
        return content.mail(report, address, link, dashboard)


def summary(sent: list[Sent]) -> dict[str, Any]:
    return {"sent": len(sent), "reports": [s.__dict__ for s in sent]}
