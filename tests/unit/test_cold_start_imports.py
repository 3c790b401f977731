"""What a cold start imports (decision 0022): modules the first request of a kind does not need
wait for the request that does."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import query_api.handler
print(int("jinja2" in sys.modules))
from query_api.rendering import templates
templates().get_template("realtime_card.html")
print(int("jinja2" in sys.modules))
"""


def test_query_handler_imports_jinja2_only_when_a_fragment_is_rendered() -> None:
    # In a fresh interpreter: this one has imported everything already.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["0", "1"]
