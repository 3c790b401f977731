"""The viewer's location as ingest stores it, from CloudFront's viewer location headers (believed
only behind the origin secret, core/edge.py, decision 0016): the country (ingest/enrich.py),
the ISO 3166-2 subdivision and the city. Nothing finer: CloudFront's latitude, longitude, postal
code and time zone headers are never read, and the address only feeds the visitor hash.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_SUBDIVISION = re.compile(r"[A-Z0-9]{1,3}")  # ISO 3166-2's part after the country
MAX_CITY_LENGTH = 100


def region_from_header(country: str, value: str | None) -> str:
    """The ISO 3166-2 code ("DE-BY") from the country (already checked) and
    CloudFront-Viewer-Country-Region's subdivision part ("BY"); "" without both."""
    value = (value or "").strip().upper()
    return f"{country}-{value}" if country and _SUBDIVISION.fullmatch(value) else ""


def city_from_header(country: str, value: str | None) -> str:
    """CloudFront-Viewer-City as CloudFront names the city (percent-decoded if it came encoded:
    a header is ASCII); "" without a country, for control characters or a runaway length."""
    text = unquote((value or "").strip())
    if not country or not text or len(text) > MAX_CITY_LENGTH or not text.isprintable():
        return ""
    return text
