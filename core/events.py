"""The raw event: what ingest writes to the events table and the aggregator reads from its stream.

It carries everything the aggregates need, already enriched, and nothing that identifies a person:
no IP address, no user agent string — only the salted visitor hash and parsed browser/OS fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from core import keys

PAGEVIEW = "pageview"
ENGAGEMENT = "engagement"
MAX_PROP_KEY_BYTES = 300  # a prop key ingest stores (Plausible's bound); readers refuse longer


class MalformedEvent(ValueError):
    """A stored record cannot be read back as a RawEvent."""


@dataclass(frozen=True)
class RawEvent:
    event_id: str
    site: str
    ts: int  # server receive time, epoch milliseconds (UTC)
    name: str
    visitor_id: str
    tz: str = "UTC"
    previous_visitor_id: str | None = None  # yesterday's salt: continues a session over midnight
    hostname: str = ""
    page: str = "/"
    referrer: str = ""
    source: str = "Direct / None"
    utm_medium: str = ""
    utm_source: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_term: str = ""
    country: str = ""
    region: str = ""  # ISO 3166-2 subdivision, "DE-BY" (CloudFront-Viewer-Country-Region)
    city: str = ""  # as CloudFront names it (CloudFront-Viewer-City)
    channel: str = ""  # acquisition channel, derived at ingest (ingest/channels.py)
    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    device: str = ""
    interactive: bool = True
    internal: bool = False  # referred by the site itself (not an arrival, for realtime's sources)
    props: dict[str, str] = field(default_factory=dict)
    revenue_amount: str = ""
    revenue_currency: str = ""
    scroll_depth: int | None = None
    engaged_ms: int | None = None
    correlation_id: str = ""

    @property
    def is_pageview(self) -> bool:
        return self.name == PAGEVIEW

    @property
    def is_engagement(self) -> bool:
        return self.name == ENGAGEMENT

    # ---- to and from DynamoDB ----------------------------------------------------------------

    def to_item(self, ttl: int) -> dict[str, Any]:
        """The PutItem `Item`, in DynamoDB's wire format (no boto3 serializer at ingest)."""
        item: dict[str, Any] = {
            "pk": {"S": keys.event_pk(self.site, self.visitor_id)},
            "sk": {"S": keys.event_sk(self.event_id)},
            "ttl": {"N": str(ttl)},
        }
        for name, value in asdict(self).items():
            if value is None or value == "" or value == {} or (name == "internal" and not value):
                continue  # DynamoDB rejects empty sets/keys; absent means default
            if isinstance(value, bool):
                item[name] = {"BOOL": value}
            elif isinstance(value, int):
                item[name] = {"N": str(value)}
            elif isinstance(value, dict):
                item[name] = {"M": {k: {"S": v} for k, v in value.items()}}
            else:
                item[name] = {"S": str(value)}
        return item

    @classmethod
    def from_image(cls, image: Mapping[str, Any]) -> RawEvent:
        """Read a deserialized item (plain Python values, numbers as Decimal or int)."""
        try:
            values: dict[str, Any] = {}
            for name in cls.__dataclass_fields__:
                if name not in image:
                    continue
                value = image[name]
                if name in {"ts", "scroll_depth", "engaged_ms"}:
                    value = int(value) if isinstance(value, int | Decimal | str) else _bad(name)
                elif name in {"interactive", "internal"}:
                    value = bool(value)
                elif name == "props":
                    value = {str(k): str(v) for k, v in dict(value).items()}
                else:
                    value = str(value)
                values[name] = value
            for required in ("event_id", "site", "ts", "name", "visitor_id"):
                if required not in values:
                    raise MalformedEvent(f"missing {required}")
            return cls(**values)
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise MalformedEvent(str(exc)) from exc


def _bad(name: str) -> Any:
    raise MalformedEvent(f"{name} is not a number")
