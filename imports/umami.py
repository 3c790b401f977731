"""Umami's raw-event export (`website_event` rows, as Umami Cloud's data export and its
migration guide describe them, session columns joined in) turned into our raw events.

A row is one event: `event_type` 1 a pageview, 2 a custom event named `event_name`; other types
(Umami's own bookkeeping) are skipped and counted. From each row:
- the event id is a digest of the site and Umami's `event_id` (or of the whole row when the
  export has none), so importing a file again, or an export overlapping an earlier one, gives the
  same ids, and every reader of the archive keeps each id once;
- the visitor id is a keyed BLAKE2b of (site, Umami's session id, UTC day), as ingest's ids are
  daily: Umami's session id (itself a salted hash at Umami) is never stored;
- page, hostname, referrer, source and UTM values as ingest derives them (ingest/enrich.py);
  browser, OS and device from Umami's keys, named as we name them.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from core.events import PAGEVIEW, RawEvent
from imports.errors import ImportRefused
from imports.formats import UMAMI_REQUIRED
from ingest.enrich import MAX_DIMENSION_LENGTH, UTM_FIELDS, classify_referrer, strip_www

MAX_ROWS = 5_000_000
PAGEVIEW_TYPE, CUSTOM_TYPE = "1", "2"
REQUIRED = UMAMI_REQUIRED
# Not secret: Umami's session id is already a salted hash; this keeps it out of our files.
VISITOR_KEY = b"liveinsight-umami-import-v1"

# Umami's browser keys (its `browser` column) → the names we store (Plausible's).
BROWSERS = {
    "chrome": "Chrome",
    "crios": "Chrome",
    "chromium-webview": "Chrome",
    "firefox": "Firefox",
    "fxios": "Firefox",
    "safari": "Safari",
    "ios": "Safari",
    "ios-webview": "Safari",
    "edge": "Microsoft Edge",
    "edge-chromium": "Microsoft Edge",
    "edge-ios": "Microsoft Edge",
    "opera": "Opera",
    "opera-mini": "Opera",
    "samsung": "Samsung Browser",
    "yandexbrowser": "Yandex Browser",
    "brave": "Brave",
    "facebook": "Facebook",
    "instagram": "Instagram",
    "ie": "Internet Explorer",
}
OPERATING_SYSTEMS = {
    "mac os": "Mac",
    "macos": "Mac",
    "ios": "iOS",
    "ipados": "iPadOS",
    "android os": "Android",
    "android": "Android",
    "linux": "GNU/Linux",
    "chrome os": "Chrome OS",
    "chromeos": "Chrome OS",
}
DEVICES = {"desktop": "Desktop", "laptop": "Laptop", "mobile": "Mobile", "tablet": "Tablet"}


@dataclass
class UmamiExport:
    events: list[RawEvent]
    skipped: dict[str, int] = field(default_factory=dict)  # reason → rows


def parse(data: bytes, filename: str, site: str, tz: str) -> UmamiExport:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(f"{filename}: not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
    except csv.Error as exc:
        raise ImportRefused(f"{filename}: not CSV ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportRefused(
            f"{filename}: not Umami's website_event export (missing column(s) {', '.join(missing)})"
        )
    reader.fieldnames = header
    export = UmamiExport([])
    try:
        for line, row in enumerate(reader, start=2):
            if line - 1 > MAX_ROWS:
                raise ImportRefused(f"more than {MAX_ROWS:,} rows: import it in parts")
            event = _event(row, site, tz, filename, line, export.skipped)
            if event is not None:
                export.events.append(event)
    except csv.Error as exc:
        raise ImportRefused(f"{filename} line {reader.line_num}: not CSV ({exc})") from None
    if not export.events:
        raise ImportRefused(f"{filename}: no pageviews or custom events in it")
    return export


def _event(
    row: dict[str, str | None],
    site: str,
    tz: str,
    filename: str,
    line: int,
    skipped: dict[str, int],
) -> RawEvent | None:
    def cell(name: str) -> str:
        value = row.get(name)
        return value.strip()[:MAX_DIMENSION_LENGTH] if isinstance(value, str) else ""

    kind = cell("event_type")
    if kind not in (PAGEVIEW_TYPE, CUSTOM_TYPE):
        skipped["other event types"] = skipped.get("other event types", 0) + 1
        return None
    name = PAGEVIEW if kind == PAGEVIEW_TYPE else cell("event_name")[:120]
    if not name:
        raise ImportRefused(f"{filename} line {line}: a custom event (event_type 2) without a name")
    session = cell("session_id")
    if not session:
        raise ImportRefused(f"{filename} line {line}: no session_id")
    moment = _timestamp(cell("created_at"), filename, line)
    hostname = strip_www(cell("hostname").lower()) or site
    query = dict(parse_qsl(cell("url_query").lstrip("?")))
    utm = {f: cell(f) or query.get(f, "")[:MAX_DIMENSION_LENGTH] for f in UTM_FIELDS}
    referrer_domain = cell("referrer_domain")
    referrer = ""
    if referrer_domain:
        referrer = f"https://{referrer_domain}{cell('referrer_path') or ''}"
    source_param = utm["utm_source"] or query.get("ref", "") or query.get("source", "")
    classified = classify_referrer(referrer, hostname, source_param[:MAX_DIMENSION_LENGTH])
    day = moment.strftime("%Y-%m-%d")
    visitor = hashlib.blake2b(
        f"{site}\x00{session}\x00{day}".encode(), key=VISITOR_KEY, digest_size=8
    ).hexdigest()
    identity = cell("event_id") or "\x1f".join(f"{k}={row.get(k) or ''}" for k in sorted(row))
    event_id = "umami-" + hashlib.sha256(f"{site}\x00{identity}".encode()).hexdigest()[:32]
    browser, os_name = cell("browser"), cell("os")
    return RawEvent(
        event_id=event_id,
        site=site,
        ts=int(moment.timestamp() * 1000),
        name=name,
        visitor_id=visitor,
        tz=tz,
        hostname=hostname,
        page=cell("url_path") or "/",
        referrer=classified.referrer,
        source=classified.source,
        internal=classified.internal,
        country=cell("country").upper()[:2],
        browser=BROWSERS.get(browser.lower(), browser),
        os=_os(os_name),
        device=DEVICES.get(cell("device").lower(), cell("device").capitalize()),
        utm_medium=utm["utm_medium"],
        utm_source=utm["utm_source"],
        utm_campaign=utm["utm_campaign"],
        utm_content=utm["utm_content"],
        utm_term=utm["utm_term"],
    )


def _os(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith("windows"):
        return "Windows"
    return OPERATING_SYSTEMS.get(lowered, name)


def _timestamp(raw: str, filename: str, line: int) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" UTC", ""))
    except ValueError:
        raise ImportRefused(
            f"{filename} line {line}: created_at {raw[:40]!r} is not a date and time"
        ) from None
    # Umami stores UTC; an export without an offset is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
