"""`liveinsight …` run in-process against the tables the environment names, for the CLI round-trip
tests: the exit code (argparse's own refusals included) and what it printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.cli import main


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(["--data-dir", str(tmp_path), *args])
    except SystemExit as exc:  # argparse's own refusals (a bad choice, not a number) exit 2
        code = int(str(exc.code))
    out, err = capsys.readouterr()
    return code, out, err
