"""Every storage key is built and parsed here, and nowhere else.

Layout (decision record 0001):

events table      pk  EV#<site>#<visitor id>  sk  <event id>     one raw event, TTL 7 days (no index:
                                                                  a rebuild scans, decision 0008);
                                                                  a visitor's events share a partition,
                                                                  so they are on one stream shard
                                                                  (0040). Before 0040: pk EV#<site>#
                                                                  <event id> alone (the legacy table)
aggregates table  pk  C#<site>#<granularity>#<dimension>         counter items, per bucket and shard:
                  sk  <bucket label>[#<shard>]                    a Query over sk reads a range;
                                                                  minutes: dimension `_#<k>`, pages,
                                                                  visitors, sources and the ids of
                                                                  counted events inside (0011, 0012),
                                                                  parts over 4 keys (0018);
                                                                  days and months: bases (shard 0),
                                                                  packed by folds (0015)
                  pk  C#<site>#<d|M>#+[<k>]                       slots: a chunk's deltas of a day or
                  sk  <bucket label>#s<time><random>              month, every dimension, packed (0015),
                                                                  over 4 keys `+`, `+1`…`+3` (0018)
                  pk  C#<site>#<d|M>#!prop_keys                   the prop keys a day or month admitted
                  sk  <bucket label>                              (string set `ks`, 0017)
                  pk  V#<site>#<visitor id>  sk  _                visitor state: the day's hits, which
                                                                  also record what was counted;
                  pk  V.<tier>#<site>#<visitor id>                the rollup tier's own (0010; the
                                                                  realtime tier keeps none, 0012)
meta table        pk  SITE   sk <domain>                          sites, all in one partition
                  pk  KEY#<sha256 of key>  sk  _                  API keys, stored only as hashes
                  pk  KEYS#<site>  sk <sha256 of key>             the site's keys (list, revoke)
                  pk  SHARE#<sha256 of token>  sk  _              shared-link tokens, only as hashes
                  pk  SHARES#<site>  sk <sha256 of token>         the site's shared links
                  pk  SESSION#<sha256 of session id>  sk  _       admin sessions, TTL at expiry
                  pk  LOGIN#<scope>  sk <window start>            failed sign-ins per window, TTL;
                                                                  scope: a keyed hash of the client
                                                                  address, or `all`
                  pk  SALT   sk <UTC date>                        daily visitor-hash salts
                  pk  SEEN#<site>#<visitor id>  sk  _             a visitor's last-seen time (TTL)
                  pk  EVID#<site>#<event id>  sk  _               a client-sent event id's first
                                                                  visitor: a resend from another
                                                                  address is stored once (TTL)
                  pk  ALERTS#<site>  sk <rule id>                 alert rules and their state (0036)
                  pk  ALERTLOG#<site>  sk log#<ms>#<key>          webhook deliveries (TTL), and
                                       sk sent#<key>              the keys delivered (TTL)

Counter attributes are top-level with encoded names (`<metric>|<dimension value>`), because ADD on
a nested map path fails when the parent map is missing. An item is stored with a short code for
the metric (`p|/blog`: STORED_METRICS, decision 0013) and read back under the full name; items
written before 0013 hold full names, and reading accepts both. Granularities: m (UTC minute), h
(UTC hour), d (site-local day), M (site-local month).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from core import vocabulary

SEP = "#"
NO_SORT = "_"
TOTALS = vocabulary.TOTALS
OTHER = "(other)"  # the value a full dimension item counts everything new under (bounded.py)


class KeyError_(ValueError):
    """A key string does not have the expected shape."""


class Granularity(StrEnum):
    MINUTE = "m"
    HOUR = "h"
    DAY = "d"
    MONTH = "M"


# ---- events table -----------------------------------------------------------------------------


# The partition is the visitor, the event id the sort key (decision 0040): DynamoDB streams an
# item's records on its partition's shard, so a visitor's events reach one aggregator instance
# in order, and a chunk rewrites the visitor's state once per window instead of once per shard.
# The conditional Put (`attribute_not_exists(pk)`) still refuses a resend: same id, same visitor.


def event_pk(site: str, visitor_id: str) -> str:
    return f"EV{SEP}{site}{SEP}{visitor_id}"


def event_sk(event_id: str) -> str:
    return event_id


def site_events_prefix(site: str) -> str:
    """The start every event key of the site has (a rebuild's Scan filters on it)."""
    return f"EV{SEP}{site}{SEP}"


def legacy_event_pk(site: str, event_id: str) -> str:
    return f"EV{SEP}{site}{SEP}{event_id}"


def parse_legacy_event_pk(pk: str) -> tuple[str, str]:
    """(site, event id) of a key of the events table before decision 0040, `EV#<site>#<id>`: the
    legacy table's, and raw events a local snapshot saved then."""
    parts = pk.split(SEP)
    if len(parts) < 3 or parts[0] != "EV":
        raise KeyError_(f"not an event key: {pk!r}")
    # The site (a domain) never holds '#'; the id is everything after it.
    return parts[1], SEP.join(parts[2:])


def parse_event_key(pk: str, sk: str) -> tuple[str, str, str]:
    """(site, visitor id, event id) of an events table item's key."""
    parts = pk.split(SEP)
    # Neither the site (a domain) nor the visitor id (a hex digest) ever holds '#'.
    if len(parts) != 3 or parts[0] != "EV" or not parts[1] or not parts[2] or not sk:
        raise KeyError_(f"not an event key: {pk!r}, {sk!r}")
    return parts[1], parts[2], sk


# ---- aggregates table -------------------------------------------------------------------------


def counter_pk(site: str, granularity: Granularity, dimension: str = TOTALS) -> str:
    return f"C{SEP}{site}{SEP}{granularity.value}{SEP}{dimension}"


def parse_counter_pk(pk: str) -> tuple[str, Granularity, str]:
    """(site, granularity, dimension); a minute partition (`C#<site>#m#_#<k>`) is the minute's
    totals dimension like the legacy key it splits."""
    parts = pk.split(SEP)
    if len(parts) == 5 and minute_partition(pk) is not None:
        return parts[1], Granularity.MINUTE, TOTALS
    if len(parts) != 4 or parts[0] != "C":
        raise KeyError_(f"not a counter key: {pk!r}")
    if slot_partition(pk) is not None:  # any of a bucket's slot keys (`+`, `+1`…): PENDING
        return parts[1], Granularity(parts[2]), PENDING
    return parts[1], Granularity(parts[2]), parts[3]


# Realtime's minute parts (aggregator/minutes.py) are spread over MINUTE_PARTITIONS partition keys,
# `C#<site>#m#_#<k>` with k = part % MINUTE_PARTITIONS (decision 0018): a partition takes 1,000
# write units a second, and a busy site's minute writes divide over the keys. Before 0018 every part
# was in `C#<site>#m#_` (the legacy key), which is only read now, while its items can matter.
MINUTE_PARTITIONS = 4


def minute_pk(site: str, part: int) -> str:
    return f"{counter_pk(site, Granularity.MINUTE)}{SEP}{part % MINUTE_PARTITIONS}"


def legacy_minute_pk(site: str) -> str:
    return counter_pk(site, Granularity.MINUTE)


def minute_pks(site: str) -> list[str]:
    """Every partition key a minute's parts can be under: the legacy key, then the spread ones."""
    return [legacy_minute_pk(site), *(minute_pk(site, k) for k in range(MINUTE_PARTITIONS))]


def minute_partition(pk: str) -> int | None:
    """k of a spread minute key `C#<site>#m#_#<k>`; None for any other key (the legacy one too)."""
    parts = pk.split(SEP)
    if (
        len(parts) == 5
        and parts[0] == "C"
        and parts[2] == Granularity.MINUTE.value
        and parts[3] == TOTALS
        and parts[4].isdigit()
        and int(parts[4]) < MINUTE_PARTITIONS
    ):
        return int(parts[4])
    return None


# Hot counters are spread over this many items per bucket: each transaction adds its deltas to one
# shard (its choice), and readers sum the shards. A partition takes 1,000 write units a second.
# The aggregator's chunks write shards 1..COUNTER_SHARDS and move a shard that has grown into
# shard 0, the bucket's base (aggregator/store.py, decision 0013); minutes use 0..3 as parts.
COUNTER_SHARDS = 4
BASE_SHARD = 0


def counter_sk(bucket: str, shard: int = 0) -> str:
    return bucket if shard == 0 else f"{bucket}{SEP}{shard}"


def parse_counter_sk(sk: str) -> str:
    """The bucket label of a (possibly sharded) counter item."""
    return sk.split(SEP, 1)[0]


def counter_range(first: str, last: str) -> tuple[str, str]:
    """sk bounds of a Query that returns every shard of the buckets first..last."""
    return first, f"{last}{SEP}~"


# A chunk leaves its deltas of a day or a month, every dimension at once, in one packed item of
# its own (a *slot*, decision 0015) under one of the PENDING keys (`slot_pk`, below); a fold later
# adds the slots into each dimension's base (shard 0) and deletes them. Readers sum both.
PENDING = "+"
PACKED = "z"  # a packed item's counters: zlib of JSON, every dimension's (`pack`, below)


# The prop keys a site's day or month admitted (aggregator/prop_keys.py, decision 0017): one item
# per bucket (sk = bucket label), all of a site's days (or months) in one partition, holding the
# keys as a string set. A key beyond the bound gets no dimension, and so no partition, of its own.
PROP_KEY_LIST = "!prop_keys"
KEY_SET = "ks"


def prop_key_list_pk(site: str, granularity: Granularity) -> str:
    return counter_pk(site, granularity, PROP_KEY_LIST)


# A site's slots of a day (or a month) are spread over SLOT_PARTITIONS partition keys (decision
# 0018 step 2): a partition takes 1,000 write units a second, and every slot is written and later
# deleted in a transaction. Partition 0 is `C#<site>#<d|M>#+`, the one key every slot had before
# 0018, and the others `#+1` … `#+3`. So slots written before the change are read and folded
# with the rest, as any writer's are, and no count changes across the upgrade.
SLOT_PARTITIONS = 4


def slot_pk(site: str, granularity: Granularity, partition: int) -> str:
    k = partition % SLOT_PARTITIONS
    return counter_pk(site, granularity, PENDING if k == 0 else f"{PENDING}{k}")


def slot_pks(site: str, granularity: Granularity) -> list[str]:
    """Every partition key a day's (or a month's) slots can be under: Query each to read them."""
    return [slot_pk(site, granularity, k) for k in range(SLOT_PARTITIONS)]


def slot_partition(pk: str) -> int | None:
    """k of a slot key `C#<site>#<d|M>#+[k]` (0 for the key without a number), else None."""
    parts = pk.split(SEP)
    if len(parts) != 4 or parts[0] != "C" or not parts[3].startswith(PENDING):
        return None
    if parts[2] not in (Granularity.DAY.value, Granularity.MONTH.value):
        return None
    k = parts[3][len(PENDING) :]
    if k == "":
        return 0
    if k.isdigit() and k[0] != "0" and int(k) < SLOT_PARTITIONS:
        return int(k)
    return None


def slot_sk(bucket: str, slot_id: str) -> str:
    return f"{bucket}{SEP}s{slot_id}"


def slot_range(first: str, last: str) -> tuple[str, str]:
    """sk bounds of a Query that returns the slots of the buckets first..last."""
    return f"{first}{SEP}s", f"{last}{SEP}s~"


# How a packed item holds its counters (decision 0025): zlib of the JSON
#     [2, {dimension: [[code, ...], {value: [count or null, ...]}, {total: count}]}]
# A dimension value's text is there once, with a count per short code (null: no such counter),
# where the first layout (a JSON object, decision 0015) repeated it in each `<code>|<value>` name:
# a slot of a quiet 300 s batch packs to ~35% fewer bytes, and a write is billed per started KB.
# Items in the first layout are read as they are (slots until folded, bases until refolded).
PACK_LAYOUT = 2


def pack(cells: Mapping[str, Mapping[str, int]]) -> bytes:
    """{dimension: {counter name: count}} as a packed item holds it, under short codes."""
    stored: dict[str, list[Any]] = {}
    for dimension, counters in sorted(cells.items()):
        rows: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for name, count in sorted(counters.items()):
            metric, value = parse_counter_attr(name)
            if value is None:
                totals[name] = count
            else:
                rows.setdefault(value, {})[STORED_METRICS[metric]] = count
        codes = sorted({code for row in rows.values() for code in row})
        table = {value: [row.get(code) for code in codes] for value, row in rows.items()}
        stored[dimension] = [codes, table, totals]
    return zlib.compress(json.dumps([PACK_LAYOUT, stored], separators=(",", ":")).encode(), 9)


def unpack(blob: bytes) -> dict[str, dict[str, int]]:
    """A packed item's {dimension: {counter: count}}, under full names, in either layout."""
    stored = json.loads(zlib.decompress(blob))
    if isinstance(stored, dict):  # the first layout: {dimension: {stored name: count}}
        return {
            dimension: {full_attr(name): int(count) for name, count in counters.items()}
            for dimension, counters in stored.items()
        }
    cells: dict[str, dict[str, int]] = {}
    for dimension, (codes, table, totals) in stored[1].items():
        metrics = [_METRIC_OF_CODE.get(code, code) for code in codes]
        counters = {full_attr(name): int(count) for name, count in totals.items()}
        for value, counts in table.items():
            for metric, count in zip(metrics, counts, strict=True):
                if count is not None:
                    counters[counter_attr(metric, value)] = int(count)
        cells[dimension] = counters
    return cells


def packed_cells(item: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """{dimension: counters} of a packed item (a slot, or a base written by a fold), else {}."""
    raw = item.get(PACKED, {}).get("B")
    return unpack(bytes(raw)) if raw is not None else {}


def visitor_pk(site: str, visitor_id: str, tier: str = "") -> str:
    """A tier's own visitor state (decision 0010); "" is the single-tier aggregator's."""
    return f"V.{tier}{SEP}{site}{SEP}{visitor_id}" if tier else f"V{SEP}{site}{SEP}{visitor_id}"


# A minute item (realtime, aggregator/minutes.py) holds, beside its counters and `pageviews|<page>`,
# binary sets of 8-byte visitor hashes: every visitor with an event in the minute, and per source
# (`arrivals|<source>`) those who arrived from it; and the 6-byte hashes of the events it counted.
VISITOR_IDS = "vids"
ARRIVALS = vocabulary.ARRIVALS
EVENT_IDS = "eids"


def counter_attr(metric: str, value: str | None = None) -> str:
    """Top-level attribute name of a counter: `pageviews`, or `pageviews|/blog` for a dimension."""
    return metric if value is None else f"{metric}|{value}"


# Stored, a dimension's counter is `<code>|<value>` (decision 0013, core/vocabulary.py).
STORED_METRICS = vocabulary.STORED_CODES
_METRIC_OF_CODE = {code: metric for metric, code in STORED_METRICS.items()}


def stored_attr(name: str) -> str:
    """The name a counter is written under: `pageviews|/blog` → `p|/blog`, totals as they are."""
    metric, sep, value = name.partition("|")
    return f"{STORED_METRICS[metric]}|{value}" if sep else name


def parse_counter_attr(name: str) -> tuple[str, str | None]:
    """(metric, dimension value) of a counter as named in code or as stored, before 0013 or after."""
    metric, sep, value = name.partition("|")
    if not sep:
        return metric, None
    return _METRIC_OF_CODE.get(metric, metric), value


def full_attr(name: str) -> str:
    """A counter's name as the code speaks it, whichever way it was stored."""
    return counter_attr(*parse_counter_attr(name))


# A counter item's bookkeeping, beside its counters: how many values it admitted (`n`) and their
# bytes (`b`), a shard's write units since its last move (`w`: written before decision 0015, still
# skipped when read), and the version every write adds one to (`ver`: minute parts and folds are
# conditioned on it).
COUNT_ATTR = "n"
BYTES_ATTR = "b"
SPENT_ATTR = "w"
VERSION = "ver"
NOT_COUNTERS = frozenset({"pk", "sk", "ttl", COUNT_ATTR, BYTES_ATTR, SPENT_ATTR, VERSION})


def item_counters(item: Mapping[str, Any]) -> dict[str, int]:
    """One stored counter item's counters under their full names (`pageviews|/blog`, `visits`),
    however each was stored; its key, expiry, bookkeeping and id sets aside."""
    counters: dict[str, int] = {}
    for name, value in item.items():
        if "N" in value and name not in NOT_COUNTERS:
            full = full_attr(name)
            counters[full] = counters.get(full, 0) + int(value["N"])
    for packed in packed_cells(item).values():
        for full, count in packed.items():
            counters[full] = counters.get(full, 0) + count
    return counters


def item_kind(pk: str, sk: str = "") -> str:
    """What kind of item a key names, for measuring what each kind costs (bench/writes.py):
    `raw event`, `visitor state`, `minute part`, `hour shard`, `day slot`, `month base`,
    `day key list`, … (`other` for anything else)."""
    if pk.startswith(f"EV{SEP}"):
        return "raw event"
    if pk.startswith(f"V{SEP}") or pk.startswith("V."):
        return "visitor state"
    try:
        _, gran, dimension = parse_counter_pk(pk)
    except (KeyError_, ValueError):
        return "other"
    if gran is Granularity.MINUTE:
        return "minute part"
    level = {Granularity.HOUR: "hour", Granularity.DAY: "day", Granularity.MONTH: "month"}[gran]
    if dimension == PENDING:
        return f"{level} slot"
    if dimension == PROP_KEY_LIST:
        return f"{level} key list"
    if gran is Granularity.HOUR:
        return "hour shard"
    return f"{level} base" if SEP not in sk else f"{level} shard"


# ---- time buckets -----------------------------------------------------------------------------
# Minute and hour buckets are UTC; day and month buckets are the site's local date, so "today" in
# the site's time zone is one item, a 30-day range 30 items and a year 12.


def minute_label(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def hour_label(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H")


def day_label(ts_ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m-%d")


def month_label(ts_ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, ZoneInfo(tz)).strftime("%Y-%m")


def bucket_label(granularity: Granularity, ts_ms: int, tz: str) -> str:
    if granularity is Granularity.MINUTE:
        return minute_label(ts_ms)
    if granularity is Granularity.HOUR:
        return hour_label(ts_ms)
    if granularity is Granularity.MONTH:
        return month_label(ts_ms, tz)
    return day_label(ts_ms, tz)


def minute_labels_between(start: datetime, end: datetime) -> list[str]:
    """Every UTC minute label from `start` to `end` inclusive, oldest first."""
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    end = end.astimezone(UTC).replace(second=0, microsecond=0)
    labels = []
    cursor = start
    while cursor <= end:
        labels.append(cursor.strftime("%Y-%m-%dT%H:%M"))
        cursor += timedelta(minutes=1)
    return labels


# ---- meta table -------------------------------------------------------------------------------

SITE_PK = "SITE"
SALT_PK = "SALT"


def api_key_pk(key_hash: str) -> str:
    return f"KEY{SEP}{key_hash}"


def site_keys_pk(site: str) -> str:
    """The listing of a site's keys (sk = key hash), so keys can be listed and revoked."""
    return f"KEYS{SEP}{site}"


def salt_sk(day: str) -> str:
    return day


def share_pk(token_hash: str) -> str:
    return f"SHARE{SEP}{token_hash}"


def site_shares_pk(site: str) -> str:
    """The listing of a site's shared links (sk = token hash), so they can be listed and revoked."""
    return f"SHARES{SEP}{site}"


def session_pk(session_hash: str) -> str:
    return f"SESSION{SEP}{session_hash}"


LOGIN_ALL = "all"


def login_attempts_pk(scope: str) -> str:
    """Failed sign-ins of one client (`scope` = a keyed hash of its address) or of all (`all`)."""
    return f"LOGIN{SEP}{scope}"


def login_window_sk(window_start: int) -> str:
    return f"{window_start:012d}"


def segments_pk(site: str) -> str:
    """A site's saved segments (sk = segment id): named filter sets (query_api/v2, issue 19)."""
    return f"SEGMENTS{SEP}{site}"


def funnels_pk(site: str) -> str:
    """A site's funnels (sk = funnel id): 2-8 ordered steps (issue 19)."""
    return f"FUNNELS{SEP}{site}"


RESEND_MARKER_PREFIX = "EVID"


def resend_marker_pk(site: str, event_id: str) -> str:
    """The marker of an event id a client sent (ingest/store.py): the visitor it was stored under."""
    return f"{RESEND_MARKER_PREFIX}{SEP}{site}{SEP}{event_id}"


def umami_website_pk(website_id: str) -> str:
    """The site an Umami website id names (sk `_`, attribute `site`): a UUID, canonical form,
    attached to the site or derived from its domain (core/sites.py, issue 21). One GetItem
    finds the site from the id an Umami snippet or @umami/node sends."""
    return f"UMAMI{SEP}{website_id}"


def alert_rules_pk(site: str) -> str:
    """A site's alert rules (sk = rule id), each with its own state (issue 23, decision 0036)."""
    return f"ALERTS{SEP}{site}"


def alert_log_pk(site: str) -> str:
    """A site's webhook deliveries (sk `log#<ms>#<key>`, TTL) and delivered keys (`sent#<key>`)."""
    return f"ALERTLOG{SEP}{site}"


ALERT_LOG_PREFIX = "log#"
ALERT_SENT_PREFIX = "sent#"


def alert_log_sk(at_ms: int, key: str) -> str:
    return f"{ALERT_LOG_PREFIX}{at_ms:013d}{SEP}{key}"


def alert_sent_sk(key: str) -> str:
    return f"{ALERT_SENT_PREFIX}{key}"
