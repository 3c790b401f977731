"""The one Jinja2 environment of the query API's HTML fragments."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,  # every value from events is escaped: paths, referrers, props
    undefined=jinja2.StrictUndefined,
)
