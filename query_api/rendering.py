"""The one Jinja2 environment of the query API's HTML fragments.

Built on the first fragment, not at import: the JSON routes never render one, and importing
Jinja2 is ~13 ms of a cold start (decision 0022).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jinja2


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,  # every value from events is escaped: paths, referrers, props
        undefined=jinja2.StrictUndefined,
    )
