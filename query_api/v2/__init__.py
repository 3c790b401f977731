"""Plausible's Stats API v2 (`POST /api/v2/query`, docs/compat.md §6): parse (parse.py) → a
`V2Query` (model.py) → the counters when a question is one they keep (fast.py), the event archive
otherwise (engine.py) → the answer's JSON (answer.py)."""
