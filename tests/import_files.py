"""Small, realistic export files made in the test: Plausible's CSV export (a zip of per-table
daily CSVs, named and shaped as Plausible writes them) and Umami's website_event export, with
the numbers each holds, to compare what LiveInsight answers against."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


@dataclass
class PlausibleFile:
    data: bytes
    days: list[str]
    visitors: dict[
        str, dict[str, int]
    ]  # day → visitors, pageviews, bounces, visits, visit_duration
    sources: dict[tuple[str, str], int]  # (day, source) → visitors
    pages: dict[tuple[str, str], int]  # (day, page) → pageviews
    countries: dict[tuple[str, str], int]  # (day, country) → visitors


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def plausible_export(first: date, days: int, seed: int = 0) -> PlausibleFile:
    """A zip as Plausible's export writes it: `imported_<table>_<first>_<last>.csv` each."""
    span = [first + timedelta(days=n) for n in range(days)]
    stamp = f"{span[0]:%Y%m%d}_{span[-1]:%Y%m%d}"
    visitors, sources, pages, countries = {}, {}, {}, {}
    v_rows, s_rows, p_rows, e_rows, x_rows, l_rows, d_rows, b_rows, o_rows, c_rows = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    for n, day in enumerate(span):
        label = day.isoformat()
        google, direct = 6 + n + seed, 4 + (n % 3)
        total = google + direct
        visits = total + 2
        pageviews = visits * 2 + n
        bounces = visits // 3
        duration = visits * 40 + n
        visitors[label] = {
            "visitors": total,
            "pageviews": pageviews,
            "bounces": bounces,
            "visits": visits,
            "visit_duration": duration,
        }
        v_rows.append([label, total, pageviews, bounces, visits, duration])
        sources[(label, "Google")] = google
        sources[(label, "Direct / None")] = direct
        s_rows.append(
            [
                label,
                "Google",
                "",
                "",
                "",
                "",
                "",
                "",
                google * 2,
                google,
                google + 1,
                google * 40,
                google // 3,
            ]
        )
        s_rows.append(
            [label, "", "", "", "", "", "", "", direct * 2, direct, direct + 1, direct * 40, 1]
        )
        for page, views in (("/", pageviews - 5), ("/pricing", 5)):
            pages[(label, page)] = views
            p_rows.append(
                [label, "imp.example", page, views // 2, views // 2, views, "", views // 2]
            )
        e_rows.append([label, "/", total, visits, duration, bounces, pageviews])
        x_rows.append([label, "/pricing", total, duration, visits, bounces, pageviews])
        countries[(label, "DE")] = google
        countries[(label, "US")] = direct
        l_rows.append([label, "DE", "DE-BE", 0, google, google + 1, google * 40, 1, google * 2])
        l_rows.append([label, "US", "US-CA", 0, direct, direct + 1, direct * 40, 1, direct * 2])
        d_rows.append([label, "Desktop", total, visits, duration, bounces, pageviews])
        b_rows.append([label, "Firefox", "120.0", total, visits, duration, bounces, pageviews])
        o_rows.append([label, "GNU/Linux", "", total, visits, duration, bounces, pageviews])
        c_rows.append([label, "Signup", "", "", 2, 3])
    tables = {
        "visitors": (
            ["date", "visitors", "pageviews", "bounces", "visits", "visit_duration"],
            v_rows,
        ),
        "sources": (
            [
                "date",
                "source",
                "referrer",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_content",
                "utm_term",
                "pageviews",
                "visitors",
                "visits",
                "visit_duration",
                "bounces",
            ],
            s_rows,
        ),
        "pages": (
            [
                "date",
                "hostname",
                "page",
                "visits",
                "visitors",
                "pageviews",
                "scroll_depth",
                "pageleave_visitors",
            ],
            p_rows,
        ),
        "entry_pages": (
            [
                "date",
                "entry_page",
                "visitors",
                "entrances",
                "visit_duration",
                "bounces",
                "pageviews",
            ],
            e_rows,
        ),
        "exit_pages": (
            ["date", "exit_page", "visitors", "visit_duration", "exits", "bounces", "pageviews"],
            x_rows,
        ),
        "locations": (
            [
                "date",
                "country",
                "region",
                "city",
                "visitors",
                "visits",
                "visit_duration",
                "bounces",
                "pageviews",
            ],
            l_rows,
        ),
        "devices": (
            ["date", "device", "visitors", "visits", "visit_duration", "bounces", "pageviews"],
            d_rows,
        ),
        "browsers": (
            [
                "date",
                "browser",
                "browser_version",
                "visitors",
                "visits",
                "visit_duration",
                "bounces",
                "pageviews",
            ],
            b_rows,
        ),
        "operating_systems": (
            [
                "date",
                "operating_system",
                "operating_system_version",
                "visitors",
                "visits",
                "visit_duration",
                "bounces",
                "pageviews",
            ],
            o_rows,
        ),
        "custom_events": (["date", "name", "link_url", "path", "visitors", "events"], c_rows),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (header, rows) in tables.items():
            archive.writestr(f"imported_{name}_{stamp}.csv", _csv(header, rows))
    return PlausibleFile(
        buffer.getvalue(), [d.isoformat() for d in span], visitors, sources, pages, countries
    )


UMAMI_HEADER = [
    "website_id", "session_id", "visit_id", "event_id", "hostname", "browser", "os", "device",
    "screen", "language", "country", "subdivision1", "city", "url_path", "url_query",
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "referrer_path",
    "referrer_query", "referrer_domain", "page_title", "event_type", "event_name", "tag",
    "created_at", "job_id",
]  # fmt: skip


@dataclass
class UmamiFile:
    data: bytes
    pageviews: dict[str, int] = field(default_factory=dict)  # day → pageviews
    visitors: dict[str, int] = field(default_factory=dict)  # day → distinct sessions
    events: dict[str, int] = field(default_factory=dict)  # day → custom events
    pages: dict[str, int] = field(default_factory=dict)  # page → pageviews over all days
    sources: dict[str, int] = field(default_factory=dict)  # source → visitors over all days


def umami_export(first: date, days: int, hostname: str) -> UmamiFile:
    """Umami Cloud's export of `website_event` rows with the session's columns joined in."""
    website = str(uuid.UUID(int=7))
    out = UmamiFile(b"")
    rows: list[list[object]] = []
    number = 0
    for n in range(days):
        day = first + timedelta(days=n)
        label = day.isoformat()
        for s in range(3 + n):
            session = str(uuid.UUID(int=1000 * n + s + 1))
            visit = str(uuid.UUID(int=500_000 + 1000 * n + s))
            google = s % 2 == 0
            start = datetime(day.year, day.month, day.day, 9 + s % 8, 5 * s % 60)
            paths = ["/", "/blog"] if s % 3 else ["/"]
            for k, path in enumerate(paths):
                number += 1
                rows.append([
                    website, session, visit, str(uuid.UUID(int=9_000_000 + number)), hostname,
                    "crios" if s % 4 == 1 else "firefox", "iOS" if s % 4 == 1 else "Linux",
                    "mobile" if s % 4 == 1 else "desktop", "1920x1080", "en-US", "DE", "DE-BE",
                    "Berlin", path, "", "", "", "", "", "", "/search" if google and k == 0 else "",
                    "", "www.google.com" if google and k == 0 else "", "Title", 1, "", "",
                    (start + timedelta(minutes=k)).strftime("%Y-%m-%d %H:%M:%S"), "",
                ])  # fmt: skip
                out.pageviews[label] = out.pageviews.get(label, 0) + 1
                out.pages[path] = out.pages.get(path, 0) + 1
            if s == 0:
                number += 1
                rows.append([
                    website, session, visit, str(uuid.UUID(int=9_000_000 + number)), hostname,
                    "firefox", "Linux", "desktop", "1920x1080", "en-US", "DE", "", "", "/", "",
                    "", "", "", "", "", "", "", "", "", 2, "Signup", "",
                    (start + timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S"), "",
                ])  # fmt: skip
                out.events[label] = out.events.get(label, 0) + 1
            out.visitors[label] = out.visitors.get(label, 0) + 1
            source = "Google" if google else "Direct / None"
            out.sources[source] = out.sources.get(source, 0) + 1
    out.data = _csv(UMAMI_HEADER, rows).encode()
    return out
