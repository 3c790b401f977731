"""An import's daily tables as Parquet (DuckDB, as the archive): written once at import, read by
the query function (query_api/imported.py)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from imports.plausible import Table


def column_types(table: Table) -> list[tuple[str, str]]:
    return [
        ("date", "DATE"),
        *((d, "VARCHAR") for d in table.dimensions),
        *((c, "BIGINT") for c in table.counters),
    ]


def write_table(con: Any, table: Table, rows: list[dict[str, str | int]], path: Path) -> None:
    columns = column_types(table)
    spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns) + "}"
    with tempfile.TemporaryDirectory(prefix="li-import-") as tmp:
        source = os.path.join(tmp, "rows.jsonl")
        with open(source, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False))
                out.write("\n")
        quoted_source = "'" + source.replace("'", "''") + "'"
        quoted_path = "'" + str(path).replace("'", "''") + "'"
        con.execute(
            f"COPY (SELECT * FROM read_json({quoted_source}, format='newline_delimited', "
            f"columns={spec}) ORDER BY date) TO {quoted_path} (FORMAT parquet, COMPRESSION zstd)"
        )
