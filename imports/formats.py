"""Telling the export formats apart without parsing them: light enough for the query function,
which takes Plausible uploads and must not import ingest's enrichment (imports/umami.py) to refuse
an Umami file."""

from __future__ import annotations

# the columns of Umami's website_event export an import needs
UMAMI_REQUIRED = ("session_id", "created_at", "url_path", "event_type")


def looks_like_umami(data: bytes) -> bool:
    head = data[:4096].decode("utf-8", "replace").splitlines()[:1]
    columns = {c.strip().strip('"').lower() for c in head[0].split(",")} if head else set()
    return all(c in columns for c in UMAMI_REQUIRED)
