"""Our own docs: the definitions and wire formats the code and tests cite live in the repository
(docs/metrics.md, docs/compat.md), and every citation names something that is there.

Nothing tracked may point outside the repository at the product brief's copies (a `shared/`
folder beside it) or at the old upper-case METRICS/COMPAT file names; the decision records are
history and may mention them. A section of docs/compat.md cited by number must exist, and a
part of docs/metrics.md cited by name (quoted after the file's name) must be in it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HISTORY = "docs/decisions/"  # decision records: what was true when written, left as it is
# Spelled in pieces, so that this file does not name what it looks for.
SHARED = ("/".join(("..", "shared", "")), "/".join(("", "work", "shared", "")))
OLD_NAMES = tuple(name + ".md" for name in ("METRICS", "COMPAT"))
# Folders never tracked (.gitignore): skipped when the tree is walked without git.
UNTRACKED = frozenset(
    {".git", ".venv", ".venv-checkov", "node_modules", "__pycache__", ".pytest_cache",
     ".mypy_cache", ".ruff_cache", ".hypothesis", ".liveinsight", "dist", "build",
     ".terraform", "test-results"}
)  # fmt: skip

SECTION_CITED = re.compile(r"compat\.md §(\d+)")
SECTION_HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)
# metrics.md, or [metrics.md](metrics.md), then a quoted name (it may wrap) or `: Identity`
PHRASE_CITED = re.compile(r"metrics\.md(?:\]\([^)]*\))?(?:\s+\"([^\"]{1,80})\"|: ([A-Z][a-z]+))")


def tracked_files() -> list[str]:
    """The repository's tracked files (relative paths); the walked tree without git."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return sorted(_walked(ROOT))
    return sorted(p for p in listed.decode().split("\0") if p and (ROOT / p).is_file())


def _walked(folder: Path) -> Iterator[str]:
    for path in folder.iterdir():
        if path.is_dir():
            if path.name not in UNTRACKED and not path.name.endswith(".egg-info"):
                yield from _walked(path)
        elif path.is_file():
            yield path.relative_to(ROOT).as_posix()


def texts() -> Iterator[tuple[str, str]]:
    """(path, text) of every tracked text file outside the decision records."""
    for name in tracked_files():
        if name.startswith(HISTORY):
            continue
        data = (ROOT / name).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: an image
        yield name, data.decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def files() -> list[tuple[str, str]]:
    found = list(texts())
    assert len(found) > 100, "the repository's files were not found"
    return found


def test_the_docs_the_code_cites_are_in_the_repository() -> None:
    for name in ("metrics.md", "compat.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
    for old in OLD_NAMES:
        assert not (DOCS / old).exists(), f"docs/{old} is back: the docs are lower case now"


def test_no_tracked_file_points_at_the_product_briefs_folder(
    files: list[tuple[str, str]],
) -> None:
    found = [
        f"{name}:{number}"
        for name, text in files
        for number, line in enumerate(text.splitlines(), 1)
        if any(path in line for path in SHARED)
    ]
    assert not found, f"outside the repository (cite docs/ instead): {found}"


def test_no_tracked_file_cites_the_old_upper_case_docs(files: list[tuple[str, str]]) -> None:
    found = [
        f"{name}:{number}"
        for name, text in files
        for number, line in enumerate(text.splitlines(), 1)
        if any(old in line for old in OLD_NAMES)
    ]
    assert not found, f"cite docs/metrics.md or docs/compat.md: {found}"


def test_every_cited_compat_section_exists(files: list[tuple[str, str]]) -> None:
    sections = set(SECTION_HEADING.findall((DOCS / "compat.md").read_text()))
    cited = {(name, section) for name, text in files for section in SECTION_CITED.findall(text)}
    assert cited, "no file cites a section of docs/compat.md"
    missing = sorted(f"{name}: §{section}" for name, section in cited if section not in sections)
    assert not missing, f"docs/compat.md has no such section: {missing}"


def test_every_cited_metrics_phrase_is_in_metrics_md(files: list[tuple[str, str]]) -> None:
    metrics = " ".join((DOCS / "metrics.md").read_text().split())
    cited = {
        (name, " ".join((quoted or word).split()))
        for name, text in files
        for quoted, word in PHRASE_CITED.findall(text)
    }
    assert cited, "no file cites a part of docs/metrics.md by name"
    missing = sorted(f"{name}: {phrase!r}" for name, phrase in cited if phrase not in metrics)
    assert not missing, f"docs/metrics.md does not say: {missing}"
