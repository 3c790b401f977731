"""Tables of the local stack: created from core/schema.json, saved to and restored from disk.

moto keeps everything in memory, so `make dev` snapshots the tables on shutdown (and every
minute) and restores them on start. A snapshot reads moto's memory (local/emulator.py), not a
Scan: a Scan over HTTP took seconds a page, so the shutdown save grew with the data until it
outlasted the read timeout and was lost. The events table is restored *before* its stream is
enabled, so restored events are not re-aggregated: their counts are already in the restored
aggregates.
moto stores TTL but never enforces it; `sweep_expired` does what DynamoDB's TTL would.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from core import keys
from core.aws import paged
from core.schema import create_table_request, load_schema
from local import emulator


def table_names(prefix: str) -> dict[str, str]:
    return {logical: t.physical_name(prefix) for logical, t in load_schema().tables.items()}


def create_tables(client: Any, names: dict[str, str], *, with_stream: bool = True) -> None:
    schema = load_schema()
    existing = set(client.list_tables()["TableNames"])
    for logical, physical in names.items():
        if physical in existing:
            continue
        table = schema.tables[logical]
        client.create_table(**create_table_request(table, physical, with_stream=with_stream))
        if table.ttl_attribute:
            client.update_time_to_live(
                TableName=physical,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )


def enable_streams(client: Any, names: dict[str, str]) -> None:
    for logical, physical in names.items():
        view = load_schema().tables[logical].stream_view_type
        if not view:
            continue
        description = client.describe_table(TableName=physical)["Table"]
        if description.get("StreamSpecification", {}).get("StreamEnabled"):
            continue
        client.update_table(
            TableName=physical,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
        )


def stream_arn(client: Any, physical: str) -> str:
    arn: str = client.describe_table(TableName=physical)["Table"]["LatestStreamArn"]
    return arn


def scan_all(client: Any, physical: str) -> list[dict[str, Any]]:
    return list(paged(client.scan, TableName=physical))


def read_all(client: Any, physical: str) -> list[dict[str, Any]]:
    """Every item of a table: from moto's memory when it runs in this process, else a Scan."""
    items = emulator.table_items(physical)
    return scan_all(client, physical) if items is None else items


def _encode(value: Any) -> Any:
    """What JSON cannot hold, for json.dumps(default=...): binary values and sets."""
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode()}
    if isinstance(value, set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a DynamoDB value")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save_snapshot(client: Any, names: dict[str, str], path: Path) -> int:
    data = {logical: read_all(client, physical) for logical, physical in names.items()}
    # dumps, not dump: json.dump runs the pure-Python encoder, 5x slower on a few MB of events
    text = json.dumps({"version": 1, "saved_at": time.time(), "tables": data}, default=_encode)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snapshot-")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a torn snapshot
    return sum(len(items) for items in data.values())


def load_snapshot(client: Any, names: dict[str, str], path: Path) -> int:
    if not path.exists():
        return 0
    data = json.loads(path.read_text())
    restored = 0
    for logical, items in data.get("tables", {}).items():
        if logical not in names:
            continue
        decoded = _decode(items)
        if logical == "events":
            decoded = [_keyed_by_visitor(item) for item in decoded]
        for start in range(0, len(decoded), 25):
            batch = [{"PutRequest": {"Item": item}} for item in decoded[start : start + 25]]
            request: dict[str, Any] = {names[logical]: batch}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")
        restored += len(decoded)
    return restored


def _keyed_by_visitor(item: dict[str, Any]) -> dict[str, Any]:
    """A raw event saved before decision 0040 (keyed by its id alone), keyed as the events table
    keys it now: by visitor and id. Its counts are in the saved aggregates already, and the stream
    is enabled after the restore, so nothing counts it again."""
    if "sk" in item:
        return item
    site, event_id = keys.parse_legacy_event_pk(item["pk"]["S"])
    return {
        **item,
        "pk": {"S": keys.event_pk(site, item["visitor_id"]["S"])},
        "sk": {"S": keys.event_sk(event_id)},
    }


def sweep_expired(
    client: Any,
    names: dict[str, str],
    now: float | None = None,
    until: threading.Event | None = None,
) -> int:
    """Delete items whose TTL has passed, as DynamoDB's TTL process would (it too takes its
    time: a sweep stopped by `until` leaves the rest to the next)."""
    now = time.time() if now is None else now
    schema = load_schema()
    removed = 0
    for logical, physical in names.items():
        table = schema.tables[logical]
        if not table.ttl_attribute:
            continue
        key_names = [table.hash_key] + ([table.range_key] if table.range_key else [])
        ttl = table.ttl_attribute
        expired = [
            item
            for item in read_all(client, physical)
            if "N" in item.get(ttl, {}) and float(item[ttl]["N"]) < int(now)
        ]
        for item in expired:
            if until is not None and until.is_set():
                return removed
            client.delete_item(TableName=physical, Key={k: item[k] for k in key_names})
            removed += 1
    return removed


# ---- the event archive's bucket (decision 0027) ---------------------------------------------


def bucket_name(prefix: str) -> str:
    return f"{prefix}-archive"


def create_bucket(s3: Any, bucket: str) -> None:
    owned = (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists)
    with contextlib.suppress(*owned):
        s3.create_bucket(Bucket=bucket)


def _objects(s3: Any, bucket: str) -> dict[str, str]:
    """key → ETag (without quotes) of every object in the bucket."""
    found: dict[str, str] = {}
    request: dict[str, Any] = {"Bucket": bucket}
    while True:
        page = s3.list_objects_v2(**request)
        for entry in page.get("Contents", []):
            found[entry["Key"]] = entry["ETag"].strip('"')
        if not page.get("IsTruncated"):
            return found
        request["ContinuationToken"] = page["NextContinuationToken"]


def save_bucket(s3: Any, bucket: str, directory: Path) -> int:
    """Mirror the bucket into `directory` (a file per key): objects new or changed since the last
    save are fetched, those gone (compacted, expired, purged) are removed. Archive objects are
    written once and never changed, so a save after the first fetches only the new ones. Returns
    the number of objects kept."""
    import hashlib

    wanted = _objects(s3, bucket)
    directory.mkdir(parents=True, exist_ok=True)
    for key, etag in wanted.items():
        path = directory / key
        # A single-part upload's ETag is its MD5 (every archive object is one PutObject)
        if path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == etag:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".object-")
        with os.fdopen(fd, "wb") as out:
            out.write(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        os.replace(tmp, path)
    for path in sorted(directory.rglob("*"), reverse=True):  # files before their directories
        key = path.relative_to(directory).as_posix()
        if path.is_file() and key not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return len(wanted)


def load_bucket(s3: Any, bucket: str, directory: Path) -> int:
    """Put back the objects a save mirrored; how many."""
    if not directory.is_dir():
        return 0
    restored = 0
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            s3.put_object(
                Bucket=bucket, Key=path.relative_to(directory).as_posix(), Body=path.read_bytes()
            )
            restored += 1
    return restored
