"""Typed settings, read from the environment in this one module and validated at cold start.

Why not pydantic-settings: importing it costs ~0.4 s on this machine (measured with
`python -X importtime`), more than the ingest Lambda's whole 250 ms cold-start budget. A frozen
dataclass per Lambda, filled from `LIVEINSIGHT_*` variables with type coercion, gives the same
contract (typed, one place, fails fast on a bad value) for nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any, TypeVar, get_type_hints

PREFIX = "LIVEINSIGHT_"


class SettingsError(ValueError):
    """A required setting is missing or has the wrong type."""


T = TypeVar("T")


def _coerce(name: str, raw: str, kind: Any) -> Any:
    if kind is bool:
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{name} must be a boolean, got {raw!r}")
    try:
        return kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {kind.__name__}, got {raw!r}") from exc


def load(cls: type[T], env: Mapping[str, str] | None = None) -> T:
    """Fill the dataclass `cls` from `LIVEINSIGHT_<FIELD>` variables; defaults apply when unset."""
    env = os.environ if env is None else env
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        var = PREFIX + field.name.upper()
        if var in env:
            values[field.name] = _coerce(var, env[var], hints[field.name])
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise SettingsError(f"{var} is required")
    return cls(**values)


def parse_origin_digests(setting: str) -> tuple[bytes, ...]:
    """The origin secret digests a function accepts: comma-separated hex SHA-256 (decision 0016).
    Raises SettingsError for anything else, so a typo fails at cold start, not on every request."""
    digests = []
    for part in setting.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if not re.fullmatch(r"[0-9a-f]{64}", part):
            raise SettingsError(f"{PREFIX}ORIGIN_SECRET_SHA256: not a hex SHA-256 digest: {part!r}")
        digests.append(bytes.fromhex(part))
    return tuple(digests)


class _BehindCloudFront:
    """Settings of a function that takes the viewer from CloudFront's headers (core/edge.py)."""

    origin_secret_sha256: str

    def __post_init__(self) -> None:
        parse_origin_digests(self.origin_secret_sha256)

    @property
    def origin_digests(self) -> tuple[bytes, ...]:
        return parse_origin_digests(self.origin_secret_sha256)


@dataclasses.dataclass(frozen=True)
class IngestSettings(_BehindCloudFront):
    events_table: str
    meta_table: str
    max_body_bytes: int = 64 * 1024
    max_batch_events: int = 50
    # CloudFront-* headers (the viewer's address and country) are believed only with an origin
    # secret whose SHA-256 is listed here (core/edge.py, decision 0016); none listed: never.
    # X-Forwarded-For is client-controlled: trust it only behind a proxy you run.
    origin_secret_sha256: str = ""
    trust_forwarded_for: bool = False


@dataclasses.dataclass(frozen=True)
class AggregatorSettings:
    aggregates_table: str
    # DynamoDB allows 100 actions per transaction; leave head-room for counter items.
    max_transaction_items: int = 100
    max_transaction_attempts: int = 4
    # An instance folds a day's or a month's slots into its bases once it left this many there
    # (decision 0015).
    fold_at_slots: int = 16
    # The event archive's S3 bucket (decision 0027): the rollup tier (and the single tier) writes
    # the events it counted there. Empty: no archive.
    archive_bucket: str = ""
    # Alerts (decision 0036): the realtime tier reads the sites' rules in the meta table and
    # queues what crosses them. Either empty: no alerts, no read.
    meta_table: str = ""
    alerts_queue_url: str = ""


@dataclasses.dataclass(frozen=True)
class QuerySettings(_BehindCloudFront):
    aggregates_table: str
    meta_table: str
    # Sign-in (query_api/auth.py). Locally and in tests the values themselves; in AWS the names
    # of the SSM SecureString parameters that hold them (terraform/secrets.tf), read at run time,
    # so no secret sits in the function's environment. Neither set: sign-in is off.
    admin_password_hash: str = ""
    session_secret: str = ""
    admin_password_hash_parameter: str = ""
    session_secret_parameter: str = ""
    # The dashboard's origin (https://stats.example.com): the one Origin a signed-in browser may
    # send state-changing requests from, and the base of shared links. In AWS without a custom
    # domain, the name of an SSM String parameter holding it instead (Terraform writes the
    # distribution's domain there: the function cannot name the distribution that names its
    # URL, decision 0023), read on the admin paths that need it. Neither: the request's Host.
    public_url: str = ""
    public_url_parameter: str = ""
    session_hours: int = 12
    # Failed sign-ins allowed per window, per client address (hashed) and over all clients.
    login_failures_per_client: int = 5
    login_failures_global: int = 100
    login_window_seconds: int = 900
    secrets_cache_seconds: int = 300
    # As IngestSettings': the origin secrets whose CloudFront-Viewer-Address the login limit
    # believes.
    origin_secret_sha256: str = ""
    # The event archive (decision 0027) the questions counters cannot answer read; empty: none.
    # Its objects are fetched into a cache on local disk of at most this many bytes.
    archive_bucket: str = ""
    archive_cache_bytes: int = 256 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ArchiveSettings:
    """The compaction function's (archive/handler.py): the bucket, and the sites' retention."""

    archive_bucket: str
    meta_table: str
    # Days compacted per run stop once less than this is left of the invocation's time: the rest
    # waits for the next run.
    reserve_seconds: int = 60
    # Umami imports asked through the admin API rebuild their days' counters here
    # (imports/worker.py, decision 0039); compaction never reads it.
    aggregates_table: str = ""


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """The webhook delivery function's (alerts/handler.py): the rules and the delivery log in
    meta, the queue whose messages it delays between attempts."""

    meta_table: str
    alerts_queue_url: str
    webhook_timeout_seconds: float = 5.0
    # A failed attempt's message comes back after base x 2^(attempt - 1) seconds, at most max.
    retry_base_seconds: int = 15
    retry_max_seconds: int = 900
    # The verified SES identity's address alerts are emailed from (decision 0038); "" refuses to.
    email_from: str = ""
    # The alert schedule's (alerts/schedule.py, decision 0037), which shares this package's
    # settings: the counters its rules read. Required there (it refuses to start without).
    aggregates_table: str = ""


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    """The reports function's (reports/handler.py, decision 0038): the sites and subscriptions in
    meta, the counters and the archive the report's questions read (as the query function's),
    the SES sender, and what the links in a report need: the dashboard's origin and the session
    key the unsubscribe key is derived from (either directly, or an SSM parameter's name)."""

    meta_table: str
    aggregates_table: str
    email_from: str = ""
    archive_bucket: str = ""
    archive_cache_bytes: int = 256 * 1024 * 1024
    public_url: str = ""
    public_url_parameter: str = ""
    session_secret: str = ""
    session_secret_parameter: str = ""
