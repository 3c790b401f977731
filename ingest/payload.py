"""Validation of the Plausible-compatible event body (docs/compat.md §1) into typed payloads.

Every rule failure is collected as `{field: [message]}` and raised as InvalidPayload, which the
handler maps to a 400 with that body. Nothing here touches storage.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from core.events import MAX_PROP_KEY_BYTES

MAX_NAME = 120
MAX_URL_BYTES = 2000
MAX_PROPS = 30
MAX_PROP_VALUE_BYTES = 2000
CLIENT_ID_RE = re.compile(r"[0-9A-Za-z_-]{8,64}")

# short name → long name, as the Plausible trackers send them
ALIASES = {
    "n": "name",
    "u": "url",
    "d": "domain",
    "r": "referrer",
    "p": "props",
    "$": "revenue",
    "i": "interactive",
    "h": "hashMode",
}


class InvalidPayload(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class EventPayload:
    name: str
    url: str
    domain: str | None = None
    referrer: str | None = None
    props: dict[str, str] = field(default_factory=dict)
    revenue_amount: str = ""
    revenue_currency: str = ""
    interactive: bool = True
    hash_mode: bool = False
    screen_width: int | None = None
    scroll_depth: int | None = None
    engaged_ms: int | None = None
    client_id: str | None = None


def loads(body: bytes | str, **options: Any) -> Any:
    """JSON text, or InvalidPayload({"request": ...}) for anything that is not quite JSON."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text, **options)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8, bad JSON and integers over Python's 4,300-digit limit;
        # RecursionError a deeply nested array (64 KB of "[" is enough). Both are bad input.
        raise InvalidPayload({"request": ["body must be valid JSON"]}) from None
    if not _encodable(data):
        raise InvalidPayload({"request": ["body must be valid JSON"]})
    return data


def _encodable(data: Any) -> bool:
    """False if a string holds a lone surrogate: JSON may escape half a UTF-16 pair ("\\ud800"),
    and Python keeps it as a str no UTF-8 encoder takes, so every byte-length check, DynamoDB and
    the log would fail on it later. Iterative: the data may nest as deep as json allowed."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def parse_body(body: bytes, max_events: int) -> list[EventPayload]:
    """Parse a request body: one event object, or (our extension) an array of them. An event may
    carry the engagement of the page an SPA navigation left (`l`, our extension): it comes first."""
    data = loads(body, parse_float=Decimal)
    if isinstance(data, list):
        if not data:
            raise InvalidPayload({"request": ["batch must hold at least one event"]})
        if len(data) > max_events:
            raise InvalidPayload({"request": [f"batch holds more than {max_events} events"]})
        errors: dict[str, list[str]] = {}
        events = []
        for index, item in enumerate(data):
            try:
                events.extend(parse_with_left(item))
            except InvalidPayload as exc:
                errors.update({f"{index}.{k}": v for k, v in exc.errors.items()})
        if errors:
            raise InvalidPayload(errors)
        return events
    return parse_with_left(data)


# Our tracker's extension (decision 0041): an SPA navigation's pageview carries the engagement of
# the page it leaves, {u, sd, e}, so the pair costs one request instead of two.
LEFT = "l"


def parse_with_left(data: Any) -> list[EventPayload]:
    """The event, after the engagement it carries if any. An engagement that is not valid is
    dropped, as a tracker endpoint drops what it cannot count, and the event still counts."""
    event = parse_event(data)
    left = data.get(LEFT)
    if left is None:
        return [event]
    if not isinstance(left, dict):
        raise InvalidPayload({LEFT: ["must be an object: the engagement of the page left"]})
    engagement = {
        **{k: data[k] for k in ("d", "domain", "h", "hashMode") if k in data},
        "n": "engagement",
        "u": left.get("u"),
        "sd": left.get("sd"),
        "e": left.get("e"),
    }
    if event.client_id is not None:  # a resend of the event carries the same engagement
        engagement["id"] = left_id(event.client_id)
    try:
        left_event = parse_event(engagement)
    except InvalidPayload:
        return [event]
    # pushState cannot leave the page's origin: a page "left" elsewhere is none our tracker saw
    if _origin(left_event.url) != _origin(event.url):
        return [event]
    return [left_event, event]


def left_id(client_id: str) -> str:
    """The id of the engagement an event with a client id carries: its own, and the same on every
    resend of the event, so a resend stores it once as it does the event (ingest/store.py)."""
    return "l-" + hashlib.blake2b(client_id.encode(), digest_size=16).hexdigest()


def _origin(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.netloc.lower()
    except ValueError:  # an unbalanced [ in the host: enrich refuses the URL, with a 400
        return ("", url)


def parse_event(data: Any) -> EventPayload:
    if not isinstance(data, dict):
        raise InvalidPayload({"request": ["event must be a JSON object"]})
    raw: dict[str, Any] = {ALIASES.get(str(k), str(k)): v for k, v in data.items()}
    errors: dict[str, list[str]] = {}

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        fail("name", "is required")
    elif len(name) > MAX_NAME:
        fail("name", f"must be at most {MAX_NAME} characters")
    url = raw.get("url")
    if not isinstance(url, str) or not url.strip():
        fail("url", "is required")
    elif len(url.encode()) > MAX_URL_BYTES:
        fail("url", f"must be at most {MAX_URL_BYTES} bytes")
    domain = _optional_str(raw, "domain", 1000, fail)
    referrer = _optional_str(raw, "referrer", MAX_URL_BYTES, fail)
    props = _props(raw.get("props"), fail)
    amount, currency = _revenue(raw.get("revenue"), fail)
    interactive = raw.get("interactive", True)
    if not isinstance(interactive, bool):
        fail("interactive", "must be a boolean")
    hash_mode = raw.get("hashMode", False)
    if hash_mode not in (0, 1, True, False, None):
        fail("hashMode", "must be 0 or 1")
    width = _optional_int(raw, "w", 0, 100_000, fail)
    scroll = _optional_int(raw, "sd", 0, 100, fail)
    engaged = _optional_int(raw, "e", 0, 86_400_000, fail)
    client_id = raw.get("id")
    if client_id is not None and not (
        isinstance(client_id, str) and CLIENT_ID_RE.fullmatch(client_id)
    ):
        fail("id", "must be 8-64 characters of [0-9A-Za-z_-] (a ULID or UUID)")
    if errors:
        raise InvalidPayload(errors)
    assert isinstance(name, str) and isinstance(url, str)
    return EventPayload(
        name=name.strip(),
        url=url.strip(),
        domain=domain,
        referrer=referrer,
        props=props,
        revenue_amount=amount,
        revenue_currency=currency,
        interactive=bool(interactive),
        hash_mode=bool(hash_mode),
        screen_width=width,
        scroll_depth=scroll,
        engaged_ms=engaged,
        client_id=client_id,
    )


def _optional_str(raw: dict[str, Any], key: str, max_bytes: int, fail: Any) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        fail(key, "must be a string")
        return None
    if len(value.encode()) > max_bytes:
        fail(key, f"must be at most {max_bytes} bytes")
        return None
    return value or None


def _optional_int(raw: dict[str, Any], key: str, low: int, high: int, fail: Any) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        fail(key, "must be a number")
        return None
    if not low <= value <= high:
        fail(key, f"must be between {low} and {high}")
        return None
    return int(value)


def _props(value: Any, fail: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):  # the older tracker sends props as a JSON string
        try:
            value = loads(value, parse_float=Decimal)
        except InvalidPayload:  # as in parse_body: bad input, not a crash
            fail("props", "must be an object or a JSON string of one")
            return {}
    if not isinstance(value, dict):
        fail("props", "must be an object or a JSON string of one")
        return {}
    if len(value) > MAX_PROPS:
        fail("props", f"must have at most {MAX_PROPS} keys")
        return {}
    props: dict[str, str] = {}
    for key, item in value.items():
        if not key or len(key.encode()) > MAX_PROP_KEY_BYTES:
            fail("props", f"keys must be 1-{MAX_PROP_KEY_BYTES} bytes")
            return {}
        if item is None:
            continue
        if isinstance(item, dict | list):
            fail("props", "values must be strings, numbers or booleans")
            return {}
        text = ("true" if item else "false") if isinstance(item, bool) else str(item)
        if len(text.encode()) > MAX_PROP_VALUE_BYTES:
            fail("props", f"values must be at most {MAX_PROP_VALUE_BYTES} bytes")
            return {}
        if text:
            props[key] = text
    return props


def _revenue(value: Any, fail: Any) -> tuple[str, str]:
    if value is None:
        return "", ""
    if not isinstance(value, dict):
        fail("revenue", "must be an object with currency and amount")
        return "", ""
    currency, amount = value.get("currency"), value.get("amount")
    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        fail("revenue", "currency must be an ISO 4217 code")
        return "", ""
    try:
        decimal = Decimal(str(amount)) if isinstance(amount, str | int | Decimal) else None
    except InvalidOperation:
        decimal = None
    if decimal is None or not decimal.is_finite():
        fail("revenue", "amount must be a number")
        return "", ""
    return str(decimal), currency
