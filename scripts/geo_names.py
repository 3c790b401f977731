"""Generate query_api/data/geo_names.json: English names of countries (ISO 3166-1 alpha-2) and
of their subdivisions (ISO 3166-2), from pycountry, for the dashboard and v2's `_name`
dimensions. pycountry itself (~23 MB of databases and locale files) is a dev dependency only:
the query function ships this ~150 KB table instead. tests/unit/test_geo_names.py holds the
table equal to what this script makes.

    .venv/bin/python -m scripts.geo_names          # rewrite the table
"""

from __future__ import annotations

import gettext
import json
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parent.parent / "query_api" / "data" / "geo_names.json"


def names() -> dict[str, dict[str, str]]:
    """{"countries": {"DE": "Germany"}, "regions": {"DE-BY": "Bavaria"}} from pycountry: a
    country's common name where it has one ("Taiwan", not "Taiwan, Province of China"), a
    subdivision's English name from pycountry's translations of ISO 3166-2 (its own names are
    the local ones: "Bayern")."""
    import pycountry

    english = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["en"])
    countries: dict[str, str] = {}
    for country in pycountry.countries:
        country_any: Any = country
        countries[country.alpha_2] = getattr(country_any, "common_name", None) or country.name
    regions = {s.code: english.gettext(s.name) for s in pycountry.subdivisions}
    return {"countries": dict(sorted(countries.items())), "regions": dict(sorted(regions.items()))}


def render() -> str:
    return json.dumps(names(), ensure_ascii=False, indent=0, sort_keys=True) + "\n"


def main() -> None:
    TABLE.write_text(render(), encoding="utf-8")
    print(f"wrote {TABLE} ({TABLE.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
