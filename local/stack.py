"""The embedded default: the whole product on one machine, in one process tree.

moto (DynamoDB, Streams, SQS, S3) on a free loopback port, tables from core/schema.json and the
event archive's bucket (decision 0027), one
stream poller per aggregator tier (an event source mapping per alias, decision 0010) calling the
real aggregator handler on each of `stream_shards` emulated shards at once, and the HTTP front calling the real ingest and query handlers. Data is
restored from and saved to `<data dir>/snapshot.json` (the archive's objects to `<data dir>/archive/`),
every minute and on stop. The archive's compaction function runs every `archive_every` seconds, as
its EventBridge schedule runs it in AWS: asynchronously, a run that fails after its retries going
to the dead-letter queue (local/async_invoke.py).

Housekeeping (every minute) keeps a long run bounded: expired items are swept (moto stores TTL but
never applies it), stream records both tiers have read and shard iterators past their lifetime
are freed (moto keeps both for ever, local/emulator.py), and `on_tick` runs (the CLI rotates the
functions' log there).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.observability import logger
from core.schema import EventSourceMapping, load_schema
from local import emulator, moto_patch, outbox, tables
from local.async_invoke import invoke_async, sqs_destination
from local.demo import DemoTraffic
from local.front import ORIGIN_ENVIRONMENT, PUBLIC_URL_VARIABLE, Front
from local.poller import StreamPoller, tier_pollers
from local.queue_poller import QueuePoller, alert_batch_size, create_alert_queues
from local.runtime import LocalFunction
from local.s3_notify import S3Notifications

log = logger("local-stack")

REPO = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = REPO / "dashboard" / "dist"
TRACKER_FILE = REPO / "tracker" / "dist" / "script.js"
DEMO_DOMAIN = "demo.liveinsight.test"
TABLE_PREFIX = "liveinsight-local"
EMAIL_DOMAIN = "liveinsight.test"  # the local SES identity (moto): mail goes to the outbox


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".liveinsight")
    demo_traffic: bool = False
    demo_rate: float = 1.5
    persist: bool = True
    snapshot_every: float = 60.0
    faults_seed: int | None = None  # inject Lambda and DynamoDB faults (local/faults.py)
    # The rollup tier's batching window; None: the schema's (what AWS gets). Tests shorten it.
    rollup_window_seconds: float | None = None
    # Stream shards the event source mapping emulates, each tier with an instance per shard
    # (a new on-demand table in AWS has several; moto has one).
    stream_shards: int = 4
    on_tick: Callable[[], None] | None = None  # more housekeeping, run with the snapshot's
    # The archive's compaction schedule (AWS: hourly); checked at each housekeeping tick.
    archive_every: float = 300.0
    # The reports schedule (AWS: hourly, decision 0038); each run sends what is due.
    reports_every: float = 3600.0
    # The alert schedule (AWS: EventBridge Scheduler, every minute; decision 0037).
    alert_schedule_every: float = 60.0


# What the front door answers when it cannot reach the function: here, while the stack stops. A
# tracker drops the event (never a 202 for an event that is not stored).
UNAVAILABLE = {
    "statusCode": 503,
    "headers": {"content-type": "application/json"},
    "body": '{"message":"Service Unavailable"}',
}


def aws_environment(endpoint: str, prefix: str = TABLE_PREFIX) -> dict[str, str]:
    """Environment for code talking to the local AWS: the handlers, the CLI, the tests."""
    names = tables.table_names(prefix)
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "LIVEINSIGHT_EVENTS_TABLE": names["events"],
        "LIVEINSIGHT_AGGREGATES_TABLE": names["aggregates"],
        "LIVEINSIGHT_META_TABLE": names["meta"],
        "LIVEINSIGHT_ARCHIVE_BUCKET": tables.bucket_name(prefix),
        # The local front's origin secret (its digest): the handlers believe what it says of viewers.
        **ORIGIN_ENVIRONMENT,
    }


class MotoServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        from moto.server import ThreadedMotoServer

        moto_patch.apply()
        # moto's werkzeug access log would print every DynamoDB call (the poller polls 10x a second).
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        self._server.stop()


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.moto = MotoServer(config.host)
        self.names = tables.table_names(TABLE_PREFIX)
        self.front: Front | None = None
        self.pollers: dict[str, StreamPoller] = {}
        self.demo: DemoTraffic | None = None
        self.demo_key: str | None = None
        self.functions: dict[str, LocalFunction] = {}
        self._ticker_stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._save_lock = threading.Lock()  # the last save is the stop's, never a tick's
        self._iterators_issued: dict[str, float] = {}
        self.stop_seconds: dict[str, float] = {}
        self._clients: dict[str, Any] = {}
        self.bucket = tables.bucket_name(TABLE_PREFIX)
        self._archive_run = time.monotonic()
        self._reports_run = time.monotonic()
        self.dlq_url = ""
        self.alerts_queue_url = self.alerts_dlq_url = ""
        self.alert_poller: QueuePoller | None = None
        self.s3_notifications: S3Notifications | None = None

    @property
    def snapshot_path(self) -> Path:
        return self.config.data_dir / "snapshot.json"

    @property
    def archive_dir(self) -> Path:
        return self.config.data_dir / "archive"

    @property
    def url(self) -> str:
        port = self.front.port if self.front else self.config.port
        return f"http://{self.config.host}:{port}"

    def client(self, service: str) -> Any:
        from core.aws import make_client

        if service not in self._clients:
            self._clients[service] = make_client(service)
        return self._clients[service]

    def start(self) -> None:
        endpoint = self.moto.start()
        os.environ.update(aws_environment(endpoint))
        ddb = self.client("dynamodb")
        tables.create_tables(ddb, self.names, with_stream=False)
        if self.config.persist:
            tables.load_snapshot(ddb, self.names, self.snapshot_path)
        tables.enable_streams(ddb, self.names)
        tables.sweep_expired(ddb, self.names)
        tables.create_bucket(self.client("s3"), self.bucket)
        if self.config.persist:
            tables.load_bucket(self.client("s3"), self.bucket, self.archive_dir)
        # The aggregator's failed batches and the archive function's failed runs (lambda.tf)
        self.dlq_url = dlq_url = self.client("sqs").create_queue(
            QueueName=f"{TABLE_PREFIX}-aggregator-dlq"
        )["QueueUrl"]

        # Alerts (decision 0036): the realtime tier queues them, the delivery function posts them
        self.alerts_queue_url, self.alerts_dlq_url = create_alert_queues(
            self.client("sqs"), TABLE_PREFIX
        )
        os.environ["LIVEINSIGHT_ALERTS_QUEUE_URL"] = self.alerts_queue_url
        # Email (decision 0038): SES on moto, the sender's domain verified; the mail is read at
        # the front's /_local/outbox. Reports sign their unsubscribe links with the session key.
        self.client("sesv2").create_email_identity(EmailIdentity=EMAIL_DOMAIN)
        os.environ.setdefault("LIVEINSIGHT_EMAIL_FROM", f"reports@{EMAIL_DOMAIN}")

        # Imported only now: the handlers build their clients lazily from this environment.
        from aggregator.handler import handler as aggregator_handler
        from alerts.handler import handler as alerts_handler
        from archive.handler import handler as archive_handler
        from ingest.handler import handler as ingest_handler
        from query_api.handler import handler as query_handler
        from reports.handler import handler as reports_handler

        tiers = load_schema().tiers
        self.functions = {
            "ingest": LocalFunction("ingest", ingest_handler),
            **{
                f"aggregator:{tier}": LocalFunction(
                    "aggregator", aggregator_handler, tier, instances=self.config.stream_shards
                )
                for tier in tiers
            },
            "query": LocalFunction("query", query_handler),
            # As Terraform (locals.tf: 300 s); a run stops between days before that.
            "archive": LocalFunction("archive", archive_handler, timeout_seconds=300),
            "alerts": LocalFunction("alerts", alerts_handler),
            "reports": LocalFunction("reports", reports_handler, timeout_seconds=300),
        }
        faults = None
        if self.config.faults_seed is not None:
            from aggregator.handler import get_client
            from local.faults import Faults

            faults = Faults.moderate(self.config.faults_seed)
            faults.install_on(get_client())
        window = self.config.rollup_window_seconds

        def esm_for(name: str, esm: EventSourceMapping) -> EventSourceMapping:
            if name == "rollup" and window is not None:
                return replace(esm, maximum_batching_window_in_seconds=window)
            return esm

        self.pollers = tier_pollers(
            self.client("dynamodbstreams"),
            self.client("sqs"),
            tables.stream_arn(ddb, self.names["events"]),
            lambda name: self.functions[f"aggregator:{name}"].invoke,
            dlq_url,
            faults=faults,
            esm_for=esm_for,
            shards=self.config.stream_shards,
        )
        for poller in self.pollers.values():
            poller.start()
        self.alert_poller = QueuePoller(
            self.client("sqs"),
            self.alerts_queue_url,
            self.functions["alerts"].invoke,
            batch_size=alert_batch_size(),
        )
        self.alert_poller.start()
        # The alert rules no event triggers, every minute, on a thread of their own (alerts.tf)
        from alerts.schedule import handler as alert_schedule_handler

        self.functions["alert_schedule"] = LocalFunction("alert_schedule", alert_schedule_handler)
        threading.Thread(target=self._alert_ticks, name="alert-schedule", daemon=True).start()
        # Umami imports asked through the admin API: S3 notifies each request to the archive
        # function (terraform/archive.tf, decision 0039), emulated on moto (local/s3_notify.py).
        self.s3_notifications = S3Notifications(
            self.client("s3"),
            self.client("sqs"),
            self.bucket,
            f"{TABLE_PREFIX}-s3-notifications",
            self.functions["archive"],
            sqs_destination(self.client("sqs"), dlq_url),
        )
        self.s3_notifications.start()
        self.front = Front(
            self.config.host,
            self.config.port,
            self.functions["ingest"],
            self.functions["query"],
            DASHBOARD_DIR,
            TRACKER_FILE,
            outbox=outbox.serve,
        )
        # As Terraform tells the deployed query function (decision 0023): behind a function URL
        # the request's Host is the URL's, so the dashboard's origin comes from the settings.
        os.environ[PUBLIC_URL_VARIABLE] = self.url
        self.front.start()
        self.demo_key = self._ensure_demo_site()
        if self.config.demo_traffic:
            self.demo = DemoTraffic(self.url, DEMO_DOMAIN, rate_per_second=self.config.demo_rate)
            self.demo.start()
        self._write_state(endpoint)
        self._ticker = threading.Thread(target=self._tick, name="housekeeping", daemon=True)
        self._ticker.start()

    def _ensure_demo_site(self) -> str:
        from core.sites import SiteExists, SiteStore

        sites = SiteStore(self.client("dynamodb"), self.names["meta"])
        key_file = self.config.data_dir / "demo-key"
        try:
            sites.add(DEMO_DOMAIN, tz="UTC", public=True)
        except SiteExists:
            if (
                key_file.exists()
                and sites.site_for_key(key_file.read_text().strip()) == DEMO_DOMAIN
            ):
                return key_file.read_text().strip()
        key = sites.create_key(DEMO_DOMAIN)
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        return key

    def _write_state(self, endpoint: str) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "pid": os.getpid(),
            "aws_endpoint": endpoint,
            "url": self.url,
            "token": secrets.token_hex(8),
        }
        (self.config.data_dir / "stack.json").write_text(json.dumps(state))

    def _tick(self) -> None:
        while not self._ticker_stop.wait(self.config.snapshot_every):
            try:
                self.housekeeping()
            except Exception:  # housekeeping must never take the stack down
                log.exception("housekeeping failed")

    def housekeeping(self) -> None:
        tables.sweep_expired(self.client("dynamodb"), self.names, until=self._ticker_stop)
        self.compact()
        if time.monotonic() - self._archive_run >= self.config.archive_every:
            self.compact_archive()
        if time.monotonic() - self._reports_run >= self.config.reports_every:
            self.send_reports()
        if self.config.persist and not self._ticker_stop.is_set():  # stopping: the stop saves
            self.save()
        if self.config.on_tick:
            self.config.on_tick()

    def save(self) -> int:
        with self._save_lock:
            saved = tables.save_snapshot(self.client("dynamodb"), self.names, self.snapshot_path)
            return saved + tables.save_bucket(self.client("s3"), self.bucket, self.archive_dir)

    def compact_archive(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Invoke the compaction function as its EventBridge schedule does: asynchronously, so a
        run that still fails after Lambda's retries lands in the dead-letter queue, as in AWS
        (terraform/archive.tf). Its summary, or None when it failed."""
        self._archive_run = time.monotonic()
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        result: dict[str, Any] | None = invoke_async(
            self.functions["archive"],
            {
                "version": "0",
                "id": secrets.token_hex(8),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "resources": [],
                "detail": {},
            },
            sqs_destination(self.client("sqs"), self.dlq_url),
        )
        return result

    def _alert_ticks(self) -> None:
        while not self._ticker_stop.wait(self.config.alert_schedule_every):
            self.run_alert_schedule()

    def run_alert_schedule(self, now: datetime | None = None) -> dict[str, Any] | None:
        """One run of the alert schedule, invoked as EventBridge Scheduler does: asynchronously,
        not retried (terraform/alerts.tf: the next minute's run looks again). Its summary, or
        None when it failed (logged)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        event = {"source": "aws.scheduler", "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        result: dict[str, Any] | None = invoke_async(
            self.functions["alert_schedule"], event, lambda _failure: None, retries=0
        )
        return result

    def send_reports(self, now: datetime | None = None) -> dict[str, Any] | None:
        """The reports schedule's run, invoked as EventBridge Scheduler does (asynchronously;
        terraform/reports.tf): what is due in each site's zone is mailed to the outbox."""
        self._reports_run = time.monotonic()
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        event = {"source": "aws.scheduler", "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        result: dict[str, Any] | None = invoke_async(
            self.functions["reports"], event, sqs_destination(self.client("sqs"), self.dlq_url)
        )
        return result

    def compact(self) -> None:
        """Free the stream records every tier has read (and no dead-lettered batch needs for a
        replay), and the shard iterators AWS would have expired."""
        floors = []
        for poller in self.pollers.values():
            read, dead = poller.stats.last_read_sequence_number, poller.stats.lowest_dead_lettered
            if not read:
                return
            floors.append(int(read) + 1)
            if dead:
                floors.append(int(dead))
        if floors:
            emulator.trim_stream(self.names["events"], min(floors))
        emulator.expire_iterators(self._iterators_issued, time.monotonic())

    def flush(self) -> None:
        """Every tier delivers what it has buffered, batching windows or not (for `make bench`)."""
        for poller in self.pollers.values():
            poller.flush()

    def stop(self, drain_timeout: float = 10.0) -> int:
        """Stop taking events, aggregate what was accepted, save, stop moto. Saving reads moto's
        memory (a second or so for tens of thousands of items), so it takes seconds at any age.
        The number of items saved; `stop_seconds` says how long each step took."""
        clock = _StepClock()
        self.stop_seconds = clock.steps
        self._ticker_stop.set()
        if self._ticker:
            self._ticker.join(drain_timeout)  # a tick's save ends first (the lock orders them)
        clock.step("housekeeping")
        if self.demo:
            self.demo.stop()
        if self.front:
            self.front.stop()  # no new connections from here on
        if "ingest" in self.functions:
            # Connections kept alive past the front's close get a 503; events already taken are
            # stored before the stream is drained.
            self.functions["ingest"].close(UNAVAILABLE)
        clock.step("front")
        # Every tier drains at once: what was accepted is aggregated before it is saved.
        draining = [
            threading.Thread(target=p.stop, kwargs={"drain": True, "timeout": drain_timeout})
            for p in self.pollers.values()
        ]
        for thread in draining:
            thread.start()
        for thread in draining:
            thread.join()
        if self.alert_poller:
            self.alert_poller.stop()
        if self.s3_notifications:
            self.s3_notifications.stop()
        for function in self.functions.values():
            function.close(UNAVAILABLE)
        clock.step("drain")
        saved = self.save() if self.config.persist else 0
        clock.step("save")
        (self.config.data_dir / "stack.json").unlink(missing_ok=True)
        self.moto.stop()
        clock.step("moto")
        return saved


class _StepClock:
    """Seconds each step of a sequence took (the stack's stop reports its own)."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._last = time.perf_counter()

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = round(now - self._last, 3)
        self._last = now
