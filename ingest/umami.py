"""Umami's collect API (docs/compat.md §2), read into the same EventPayload as Plausible's format.

`POST /api/send` takes `{"type": "event" | "identify", "payload": {...}}`, `POST /api/batch` an
array of them. An event payload becomes a Plausible-shaped event (name or `pageview`, absolute URL,
referrer, props, screen width) and goes through `payload.parse_event`, so both formats share one
set of rules and one pipeline. `identify` is answered and never stored: it carries a person's id.

The payload's `website` names the site (docs/compat.md §7): its domain (`example.com`), the UUID
`website_id` derives from the domain, or any UUID attached to the site (an existing snippet's
`data-website-id`, found by SiteStore.site_for_umami_id). `@umami/node` calls from a server: no
`hostname`, and often no `url` (Umami counts those at `/`). Nothing here touches storage.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urljoin

from core.sites import UMAMI_NAMESPACE, derived_umami_id, site_domain
from ingest.enrich import strip_www
from ingest.payload import MAX_URL_BYTES, EventPayload, InvalidPayload, loads, parse_event

EVENT = "event"
IDENTIFY = "identify"
WEBSITE_NOT_FOUND = "Website not found."
# A derived website UUID is uuid5 of the domain in the DNS namespace (core/sites.py)
WEBSITE_NAMESPACE = UMAMI_NAMESPACE
MAX_TITLE_BYTES = 500
MAX_DATA_DEPTH = 4
# parse_event's field names, as a Umami payload calls them
_FIELDS = {"props": "data", "w": "screen"}
_SCREEN_RE = re.compile(r"(\d{1,5})x(\d{1,5})")
_HOST_RE = re.compile(r"[a-z0-9.-]{1,253}|\[[0-9a-f:.]+\]")


@dataclass(frozen=True)
class UmamiCall:
    """One collect call: the website it names, the hostname it was sent from, the raw payload."""

    kind: str  # EVENT or IDENTIFY
    website: str
    hostname: str
    payload: dict[str, Any]


def website_id(domain: str) -> str:
    """The UUID an Umami snippet may use as `data-website-id` for the site `domain`."""
    return derived_umami_id(domain)


def parse_send(body: bytes) -> UmamiCall:
    """The body of POST /api/send."""
    return parse_call(_json(body))


def parse_batch(body: bytes, max_calls: int) -> list[Any]:
    """The body of POST /api/batch: a list of calls, each parsed on its own (one bad call does
    not sink the rest, as in Umami, which answers per index)."""
    data = _json(body)
    if not isinstance(data, list) or not data:
        raise InvalidPayload({"request": ["batch must be a non-empty JSON array"]})
    if len(data) > max_calls:
        raise InvalidPayload({"request": [f"batch holds more than {max_calls} events"]})
    return data


def parse_call(data: Any) -> UmamiCall:
    if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
        raise InvalidPayload({"payload": ["is required and must be an object"]})
    kind, payload = data.get("type"), data["payload"]
    if kind not in (EVENT, IDENTIFY):
        raise InvalidPayload({"type": ["must be event or identify"]})
    website = payload.get("website")
    if not isinstance(website, str) or not website.strip() or len(website) > 253:
        raise InvalidPayload({"website": ["is required"]})
    if not (_is_uuid(website) or site_domain(website)):
        # Checked as normalised: lowercasing may grow it ("İ" is 2 bytes, "i̇" 3).
        raise InvalidPayload({"website": ["must be the site's domain or its website UUID"]})
    hostname = payload.get("hostname")
    hostname = strip_www(hostname.strip()) if isinstance(hostname, str) else ""
    if hostname and not _HOST_RE.fullmatch(hostname):
        raise InvalidPayload({"hostname": ["must be a host name"]})
    return UmamiCall(kind, website.strip(), hostname, payload)


def candidate_domains(call: UmamiCall) -> list[str]:
    """The site domains `website` may name, most specific first; their lookup decides.

    A domain names itself. A UUID names the domain whose `website_id` it is: the hostname the
    call was sent from or one of its parents (a site may count its subdomains). Computed, not
    read: a UUID no parent derives to (an attached one, or a call with no hostname) gives none,
    and is looked up by `website_uuid` instead.
    """
    if not _is_uuid(call.website):
        domain = site_domain(call.website)
        return [domain] if domain else []
    wanted = uuid.UUID(call.website)
    labels = call.hostname.split(".")
    parents = [".".join(labels[i:]) for i in range(len(labels) - 1)] if call.hostname else []
    return [
        d for d in parents if uuid.uuid5(WEBSITE_NAMESPACE, d) == wanted and site_domain(d) == d
    ]


def website_uuid(call: UmamiCall) -> str | None:
    """The call's website as a UUID to look up (attached or derived), or None for a domain."""
    return call.website if _is_uuid(call.website) else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def to_event(call: UmamiCall, domain: str) -> EventPayload:
    """A Umami event payload as the Plausible-format event it describes, validated as one."""
    payload = call.payload
    base = f"https://{call.hostname or domain}/"
    url = payload.get("url")
    referrer = payload.get("referrer")
    title = payload.get("title")
    if title is not None and not (
        isinstance(title, str) and len(unquote(title).encode()) <= MAX_TITLE_BYTES
    ):
        raise InvalidPayload({"title": [f"must be a string of at most {MAX_TITLE_BYTES} bytes"]})
    screen = payload.get("screen")
    width = _SCREEN_RE.fullmatch(screen) if isinstance(screen, str) else None
    if url is None or url == "":
        url = "/"  # @umami/node's track("name") sends none: Umami counts it at "/"
    event: dict[str, Any] = {
        "name": payload.get("name") or "pageview",
        # The tracker sends location's path and query; a full URL is taken as it is.
        "url": _absolute(url, base) if isinstance(url, str) else url,
        "domain": domain,
        # After an SPA navigation the referrer is the previous path: a self-referral.
        "referrer": _absolute(referrer, base) if isinstance(referrer, str) and referrer else None,
        "props": _flatten(payload.get("data")),
        "w": int(width.group(1)) if width else None,
    }
    return parse_event(event)


def ok_body(visitor: str, now: datetime) -> str:
    """Umami's answer to an accepted call, its ids derived from the (salted, daily) visitor hash:
    the session is the visitor's day, the visit its UTC hour, as Umami's hourly visit salt has it.
    The tracker echoes `cache` back in x-umami-cache; it holds no state and is not read."""
    session = uuid.uuid5(WEBSITE_NAMESPACE, visitor)
    visit = uuid.uuid5(session, now.astimezone(UTC).strftime("%Y-%m-%dT%H"))
    return json.dumps({"cache": str(session), "sessionId": str(session), "visitId": str(visit)})


BOT_BODY = json.dumps({"beep": "boop"})


def error_body(message: str, status: int = 400) -> str:
    code = "bad-request" if status == 400 else "method-not-allowed"
    return json.dumps({"error": {"message": message, "code": code, "status": status}})


def error_message(exc: InvalidPayload) -> str:
    return "; ".join(
        f"{_FIELDS.get(field, field)}: {', '.join(messages)}"
        for field, messages in exc.errors.items()
    )


def batch_body(size: int, errors: list[dict[str, Any]]) -> str:
    """Umami's /api/batch answer: how many calls were processed, and why the others were not."""
    return json.dumps(
        {"size": size, "processed": size - len(errors), "errors": len(errors), "details": errors}
    )


def _json(body: bytes) -> Any:
    return loads(body)


def _absolute(url: str, base: str) -> str:
    if len(url.encode()) > MAX_URL_BYTES:
        return url  # parse_event reports the size against the field
    return url if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", url) else urljoin(base, url)


def _flatten(data: Any, prefix: str = "", depth: int = 0) -> Any:
    """Umami's event data may nest objects: their keys become dotted prop names, as Umami
    stores them; arrays become their JSON text. Anything but an object is left to parse_event."""
    if not isinstance(data, dict):
        return data
    if depth > MAX_DATA_DEPTH:
        raise InvalidPayload({"data": [f"nests more than {MAX_DATA_DEPTH} objects deep"]})
    props: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            props.update(_flatten(value, f"{name}.", depth + 1))
        elif isinstance(value, list):
            props[name] = json.dumps(value, separators=(",", ":"))
        else:
            props[name] = value
    return props
