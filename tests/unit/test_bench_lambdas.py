"""`make bench` times every packaged function's cold start: each needs its row's goal (a function
added to scripts/package.py without one used to stop the bench with a KeyError)."""

from __future__ import annotations

from bench import lambdas
from scripts.package import FUNCTIONS


def test_every_packaged_function_has_a_cold_start_goal() -> None:
    assert set(FUNCTIONS) <= set(lambdas.COLD_START_GOALS)


def test_a_cold_start_row_names_its_goal() -> None:
    measured = lambdas.ColdStart(
        import_seconds=0.1, invocation_seconds=0.1, total_seconds=0.2, cpu_seconds=0.15
    )
    for name in FUNCTIONS:
        rows = lambdas.cold_start_rows(name, measured, invoked=name == "ingest")
        assert rows[0]["goal"] == lambdas.COLD_START_GOALS[name]
        assert rows[0]["value"] == (200.0 if name == "ingest" else 100.0)
