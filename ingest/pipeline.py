"""The ingest pipeline: `accept(payload, client, now, ...) -> Accepted | Dropped`, per site.

A named sequence of steps with a closed set of drop reasons, one metric per reason (Plausible's
Ingestion.Event pipeline is the model). Pure apart from the site lookup it is handed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.events import ENGAGEMENT, RawEvent
from core.sites import Site, site_domain
from ingest import channels, enrich
from ingest.payload import EventPayload
from ingest.visitor import Salts, visitor_id


class DropReason(StrEnum):
    BOT = "bot"
    UNKNOWN_SITE = "unknown_site"
    # Not a domain a site can have (a typo, or a hostile `d`): never looked up, never cached.
    INVALID_DOMAIN = "invalid_domain"
    INVALID_URL = "invalid_url"
    SPAM_REFERRER = "spam_referrer"
    # The page's hostname is not among the site's allowed hostnames (or their subdomains).
    HOSTNAME_NOT_ALLOWED = "hostname_not_allowed"


@dataclass(frozen=True)
class Client:
    """What we know of the sender. ip and user_agent are used for the hash, then forgotten."""

    ip: str
    user_agent: str
    country: str = ""
    region: str = ""  # ISO 3166-2, "DE-BY"
    city: str = ""
    correlation_id: str = ""


@dataclass(frozen=True)
class Accepted:
    event: RawEvent
    client_id: bool = False  # its id came from the client: a resend may carry it from elsewhere


@dataclass(frozen=True)
class Dropped:
    reason: DropReason
    site: str = ""


Outcome = Accepted | Dropped

MAX_SITES_PER_EVENT = 10  # `d` may name several sites; the rest of a longer list is ignored


# (site, today's visitor id, yesterday's or None, time in ms, keeps a session open) → the id the
# event counts under (ingest/sessions.py).
ContinueSession = Callable[[str, str, str | None, int, bool], str]


def accept(
    payload: EventPayload,
    client: Client,
    now: datetime,
    salts: Salts,
    find_site: Callable[[str], Site | None],
    continue_session: ContinueSession | None = None,
) -> list[Outcome]:
    """Validate-and-enrich one event; one outcome per site it is addressed to. With
    `continue_session`, ingest decides which visitor id the event counts under and the event
    carries no previous id; without, the aggregator decides from the previous id (events stored
    before decision 0024's fix carry one)."""
    ua = enrich.parse_user_agent(client.user_agent)
    if ua.is_bot:
        return [Dropped(DropReason.BOT)]
    try:
        page = enrich.parse_page_url(payload.url, payload.hash_mode)
    except enrich.UnsupportedScheme:
        return [Dropped(DropReason.INVALID_URL)]
    domains = _domains(payload.domain, page.hostname)
    ref = enrich.classify_referrer(payload.referrer, page.hostname, page.source_param)
    channel = channels.channel(
        ref.source,
        page.utm.get("utm_medium", ""),
        page.utm.get("utm_source", ""),
        page.utm.get("utm_campaign", ""),
        channels.click_id_of(payload.url),
    )
    ts = int(now.timestamp() * 1000)
    outcomes: list[Outcome] = []
    for domain in domains:
        if domain is None:
            outcomes.append(Dropped(DropReason.INVALID_DOMAIN))
            continue
        site = find_site(domain)
        if site is None:
            outcomes.append(Dropped(DropReason.UNKNOWN_SITE, domain))
            continue
        if not site.allows_hostname(page.hostname):
            outcomes.append(Dropped(DropReason.HOSTNAME_NOT_ALLOWED, domain))
            continue
        if ref.spam:
            outcomes.append(Dropped(DropReason.SPAM_REFERRER, domain))
            continue
        current = visitor_id(salts.current, site.domain, client.ip, client.user_agent)
        previous = (
            visitor_id(salts.previous, site.domain, client.ip, client.user_agent)
            if salts.previous
            else None
        )
        if continue_session is not None:
            counts = payload.name != ENGAGEMENT
            current = continue_session(site.domain, current, previous, ts, counts)
            previous = None
        event = RawEvent(
            event_id=payload.client_id or uuid.uuid4().hex,
            site=site.domain,
            ts=ts,
            name=payload.name,
            tz=site.tz,
            visitor_id=current,
            previous_visitor_id=previous,
            hostname=page.hostname,
            page=page.path,
            referrer=ref.referrer,
            source=ref.source,
            internal=ref.internal,
            country=client.country,
            region=client.region,
            city=client.city,
            channel=channel,
            browser=ua.browser,
            browser_version=ua.browser_version,
            os=ua.os,
            os_version=ua.os_version,
            device=enrich.device_from_screen(payload.screen_width, ua.device),
            interactive=payload.interactive,
            props=payload.props,
            revenue_amount=payload.revenue_amount,
            revenue_currency=payload.revenue_currency,
            scroll_depth=payload.scroll_depth,
            engaged_ms=payload.engaged_ms,
            correlation_id=client.correlation_id,
            **page.utm,
        )
        outcomes.append(Accepted(event, client_id=payload.client_id is not None))
    return outcomes


def _domains(declared: str | None, page_host: str) -> list[str | None]:
    """`d` may list several sites ("a.com,b.com"); without it, the page's own host. Each is
    normalised as a site's domain is (lowercase, no `www.`) and checked then, as normalising can
    grow a string past the key limit; None stands for one that is not a valid domain."""
    parts = [part for part in declared.split(",") if part.strip()] if declared else []
    seen: list[str | None] = []
    for part in parts or [page_host]:
        domain = site_domain(part)
        if domain is None or domain not in seen:
            seen.append(domain)
        if len(seen) == MAX_SITES_PER_EVENT:
            break
    return seen
