"""`liveinsight`: run the local stack and manage sites.

    liveinsight dev [--port 8000] [--demo-traffic]   the whole product on 127.0.0.1
    liveinsight site add DOMAIN [--tz Europe/Berlin] [--public] [--hostnames a,b] [--json]
    liveinsight site list [--json]
    liveinsight site update DOMAIN [--tz TZ] [--public|--private] [--hostnames a,b]
                            [--retention-months N] [--umami-id UUID | --no-umami-id] [--json]
    liveinsight site remove DOMAIN [--purge] [--json]   keys and shared links go too; aggregates
                                                   and the archive stay, unless --purge

    liveinsight key create|list|revoke --site DOMAIN [--key KEY_OR_ID|all] [--json]
    liveinsight goal add|remove --site DOMAIN GOAL [--json]    GOAL: Signup, or "Visit /path"
    liveinsight goal list --site DOMAIN [--json]
    liveinsight funnel add --site DOMAIN --name NAME STEP STEP... [--json]   STEP as a goal; `*` in paths
    liveinsight funnel list|remove --site DOMAIN [FUNNEL_ID] [--json]
    liveinsight segment add --site DOMAIN --name NAME FILTERS_JSON [--json]   v2 filters, e.g.
                            '[["is", "visit:source", ["Google"]]]'
    liveinsight segment list|remove --site DOMAIN [SEGMENT_ID] [--json]
    liveinsight alert add --site DOMAIN --kind spike --threshold N --webhook URL [--email A]...
                          [--format json|slack] [--secret S] [--cooldown-seconds N] [--json]
    liveinsight alert add --site DOMAIN --kind goal --goal "Visit /path"|NAME --threshold K
                          --window-minutes W --webhook URL [...]   the secret is shown this once
    liveinsight alert add --site DOMAIN --kind drop [--window-minutes M] --email A [...]
    liveinsight alert add --site DOMAIN --kind new_referrer [--threshold V] --webhook URL [...]
    liveinsight alert list|remove --site DOMAIN [RULE_ID] [--json]
    liveinsight report subscribe|unsubscribe --site DOMAIN --email A [--kind weekly|monthly]... [--json]
    liveinsight report list --site DOMAIN [--json]        subscribers and the reports sent
    liveinsight report send --site DOMAIN [--kind K] [--email A] [--now ISO] [--json]   what is
                            due now, or --kind's last complete period; once per recipient (SES)
    liveinsight share create|list|revoke --site DOMAIN [--label L] [--share TOKEN_OR_ID|all] [--json]
    liveinsight admin hash-password                 the admin password (stdin or prompt) → hash
    liveinsight dlq replay
    liveinsight rebuild --site DOMAIN --from 2026-11-20 --to 2026-11-27 [--source archive|events]
    liveinsight export --site DOMAIN --from 2026-11-01 --to 2026-11-30 --format parquet|csv [--out F]
    liveinsight import --site DOMAIN FILE [--kind plausible|umami] [--json]   Plausible's CSV export
                            (zip) or Umami's website_event CSV into the site's history
    liveinsight import list|remove --site DOMAIN [IMPORT_ID] [--json]

With `LIVEINSIGHT_META_TABLE` (and its siblings, `LIVEINSIGHT_DLQ_URL`) set in the environment,
as RUNBOOK.md sets them up, the commands work on that deployment with the AWS credentials at hand.
Otherwise they talk to a running `liveinsight dev`, or to the saved snapshot (a private moto is
started, the data changed and saved back).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from local.stack import (
    DEMO_DOMAIN,
    TABLE_PREFIX,
    LocalStack,
    MotoServer,
    StackConfig,
    aws_environment,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="liveinsight", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("LIVEINSIGHT_DATA_DIR", ".liveinsight")),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole stack locally")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument(
        "--demo-traffic", action="store_true", help="generate realistic visits to the demo site"
    )
    dev.add_argument("--demo-rate", type=float, default=1.5, help="demo events per second")
    dev.add_argument("--no-persist", action="store_true", help="start empty and save nothing")
    dev.add_argument(
        "--rollup-window",
        type=float,
        metavar="SECONDS",
        help="the rollup tier's batching window (default: core/schema.json's, as in AWS)",
    )
    dev.add_argument(
        "--stream-shards",
        type=int,
        default=StackConfig.stream_shards,
        choices=range(1, 17),
        metavar="N",
        help="stream shards to emulate, each tier with an instance per shard (default: %(default)s)",
    )
    dev.add_argument(
        "--faults",
        type=int,
        metavar="SEED",
        help="inject Lambda and DynamoDB faults (counts stay exact)",
    )
    dev.add_argument(
        "--verbose", action="store_true", help="print the Lambdas' JSON logs and metrics"
    )

    add_site_commands(commands)
    add_credential_commands(commands)
    add_funnel_commands(commands)
    add_segment_commands(commands)
    add_alert_commands(commands)
    add_report_commands(commands)

    dlq = commands.add_parser(
        "dlq", help="the dead-letter queue: the aggregator's batches, the archive's failed runs"
    )
    dlq.add_subparsers(dest="dlq_command", required=True).add_parser(
        "replay",
        help="re-run dead-lettered stream records and failed archive runs (a running "
        "`liveinsight dev`, or the deployment the environment names)",
    )
    rebuild = commands.add_parser("rebuild", help="recompute a site's aggregates from raw events")
    rebuild.add_argument("--site", required=True)
    rebuild.add_argument(
        "--from", dest="start", required=True, help="ISO time; no offset = site time"
    )
    rebuild.add_argument("--to", dest="end", required=True, help="ISO time; no offset = site time")
    rebuild.add_argument(
        "--source",
        choices=("archive", "events"),
        help="raw events from the event archive (any range; the default where there is one) or "
        "the events table (the last 7 days)",
    )
    export = commands.add_parser("export", help="a site's raw events from the event archive")
    export.add_argument("--site", required=True)
    export.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    export.add_argument("--format", choices=("parquet", "csv"), default="csv")
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")

    add_import_commands(commands)

    args = _parse(parser, argv)
    if args.command == "import":
        return run_import(args)
    if args.command == "dev":
        return run_dev(args)
    if args.command == "dlq":
        return run_dlq_replay(args)
    if args.command == "rebuild":
        return run_rebuild(args)
    if args.command == "export":
        return run_export(args)
    if args.command == "admin":
        return run_hash_password()
    if args.command == "key":
        return run_key(args)
    if args.command == "goal":
        return run_goal(args)
    if args.command == "report":
        return run_report(args)
    # A site's stored definitions, one store each.
    definitions = {"funnel": run_funnel, "segment": run_segment, "alert": run_alert}
    if args.command in definitions:
        return definitions[args.command](args)
    if args.command == "share":
        return run_share(args)
    return run_site(args)


def add_site_commands(commands: Any) -> None:
    site = commands.add_parser("site", help="manage sites").add_subparsers(
        dest="site_command", required=True
    )
    add = site.add_parser("add", help="create a site and print its tracker snippet and a read key")
    add.add_argument("domain")
    add.add_argument("--tz", default="UTC", help="the site's time zone, e.g. Europe/Berlin")
    add.add_argument("--public", action="store_true", help="anyone may read its stats")
    add.add_argument("--hostnames", type=_names, default=[], help=HOSTNAMES_HELP)
    add.add_argument("--json", action="store_true", help="machine-readable output")
    listing = site.add_parser("list", help="list sites")
    listing.add_argument("--json", action="store_true")
    update = site.add_parser("update", help="change a site's time zone, visibility or hostnames")
    update.add_argument("domain")
    update.add_argument("--tz", help="the site's time zone, e.g. Europe/Berlin")
    visibility = update.add_mutually_exclusive_group()
    visibility.add_argument("--public", dest="public", action="store_true", default=None)
    visibility.add_argument("--private", dest="public", action="store_false")
    update.add_argument("--hostnames", type=_names, help=HOSTNAMES_HELP + '; "" allows any')
    update.add_argument(
        "--retention-months",
        type=int,
        metavar="N",
        help="months of raw events the event archive keeps (1-120; default 24)",
    )
    umami = update.add_mutually_exclusive_group()
    umami.add_argument(
        "--umami-id",
        metavar="UUID",
        help="attach an existing Umami website id (a snippet's data-website-id), so the snippet "
        "and @umami/node work by changing only the host",
    )
    umami.add_argument(
        "--no-umami-id", action="store_true", help="detach the attached Umami website id"
    )
    update.add_argument("--json", action="store_true")
    remove = site.add_parser(
        "remove", help="delete a site with its keys and shared links (its aggregates stay)"
    )
    remove.add_argument("domain")
    remove.add_argument(
        "--purge",
        action="store_true",
        help="delete its data too: the event archive, aggregates, visitor states and raw events",
    )
    remove.add_argument("--json", action="store_true")

    admin = commands.add_parser("admin", help="the dashboard's admin sign-in")
    admin.add_subparsers(dest="admin_command", required=True).add_parser(
        "hash-password",
        help="read the admin password (stdin, or a prompt) and print its hash for deployment",
    )


def add_credential_commands(commands: Any) -> None:
    key = commands.add_parser("key", help="read keys of a site").add_subparsers(
        dest="key_command", required=True
    )
    for name, text in (
        ("create", "a new read key (shown once)"),
        ("list", "the site's keys, by id"),
        ("revoke", "revoke keys"),
    ):
        command = key.add_parser(name, help=text)
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")
        if name == "revoke":
            command.add_argument(
                "--key", required=True, help='the key, its id (from `key list`), or "all"'
            )

    goal = commands.add_parser("goal", help="goals of a site").add_subparsers(
        dest="goal_command", required=True
    )
    for name, text in (("add", "add a goal"), ("list", "the goals"), ("remove", "remove a goal")):
        command = goal.add_parser(name, help=text)
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")
        if name != "list":
            command.add_argument(
                "goal", help='a custom event name ("Signup") or "Visit /path" (an exact path)'
            )

    share = commands.add_parser(
        "share", help="shared links: read-only dashboard URLs of a site"
    ).add_subparsers(dest="share_command", required=True)
    for name, text in (
        ("create", "a new shared link (shown once)"),
        ("list", "the site's shared links, by id"),
        ("revoke", "revoke shared links (at once)"),
    ):
        command = share.add_parser(name, help=text)
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")
        if name == "create":
            command.add_argument("--label", default="", help="a name to recognise the link by")
        if name == "revoke":
            command.add_argument(
                "--share", required=True, help='the token, its id (from `share list`), or "all"'
            )


def add_funnel_commands(commands: Any) -> None:
    funnel = commands.add_parser(
        "funnel", help="funnels of a site: ordered steps counted within a visit"
    ).add_subparsers(dest="funnel_command", required=True)
    add = funnel.add_parser("add", help="define a funnel of 2 to 8 steps")
    add.add_argument("--name", required=True, help="1 to 120 characters, unique per site")
    add.add_argument(
        "steps", nargs="+", metavar="STEP", help='"Visit /path" (`*`: any characters) or an event'
    )
    listing = funnel.add_parser("list", help="the site's funnels")
    remove = funnel.add_parser("remove", help="delete a funnel")
    remove.add_argument("funnel_id", help="its id (from `funnel list`)")
    for command in (add, listing, remove):
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")


def add_segment_commands(commands: Any) -> None:
    segment = commands.add_parser(
        "segment", help="saved segments of a site: named filter sets"
    ).add_subparsers(dest="segment_command", required=True)
    add = segment.add_parser("add", help="save a segment")
    add.add_argument("--name", required=True, help="1 to 120 characters")
    add.add_argument("filters", metavar="FILTERS_JSON", help="Stats API v2 filters, as a JSON list")
    listing = segment.add_parser("list", help="the site's segments")
    remove = segment.add_parser("remove", help="delete a segment")
    remove.add_argument("segment_id", type=int, help="its number (from `segment list`)")
    for command in (add, listing, remove):
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")


def add_alert_commands(commands: Any) -> None:
    alert = commands.add_parser(
        "alert", help="alert rules of a site (spike, goal, drop, new top referrer): webhook, email"
    ).add_subparsers(dest="alert_command", required=True)
    add = alert.add_parser("add", help="add a rule (its webhook secret is shown this once)")
    add.add_argument("--kind", required=True, choices=("spike", "goal", "drop", "new_referrer"))
    add.add_argument(
        "--threshold",
        type=int,
        help="spike: current visitors above N; goal: K conversions within the window;"
        " new_referrer: the fewest visitors today's top source needs (default 1); drop: none",
    )
    add.add_argument("--webhook", metavar="URL", help="https (http to localhost)")
    add.add_argument(
        "--email",
        action="append",
        metavar="ADDRESS",
        help="email the alerts to ADDRESS (repeat, at most 5); with or instead of --webhook",
    )
    add.add_argument("--format", choices=("json", "slack"), default="json")
    add.add_argument("--secret", help="the HMAC key of the signature (default: a random one)")
    add.add_argument("--cooldown-seconds", type=int, help="at most one alert per (default: 6 h)")
    add.add_argument(
        "--goal", help='goal rules: a goal of the site, "Visit /path" or a custom event name'
    )
    add.add_argument(
        "--window-minutes",
        type=int,
        help="goal: 1 to 60 (default: 5); drop: no pageviews for 1 to 180 minutes (default: 15)",
    )
    listing = alert.add_parser("list", help="the site's rules (never their secrets)")
    remove = alert.add_parser("remove", help="delete a rule")
    remove.add_argument("rule_id", help="its id (from `alert list`)")
    for command in (add, listing, remove):
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")


HOSTNAMES_HELP = "hostnames allowed to send events, comma-separated (subdomains included)"


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run_dev(args: argparse.Namespace) -> int:
    config = StackConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        demo_traffic=args.demo_traffic,
        demo_rate=args.demo_rate,
        persist=not args.no_persist,
        faults_seed=args.faults,
        rollup_window_seconds=args.rollup_window,
        stream_shards=args.stream_shards,
    )
    console = sys.stdout
    if not args.verbose:
        # As in AWS, the functions' JSON logs and EMF metrics go to their own log, not the console.
        config.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = config.data_dir / "lambda.log"
        if log_path.exists() and log_path.stat().st_size > LOG_LIMIT:
            log_path.replace(log_path.with_suffix(".log.1"))
        sys.stdout = log_path.open("a", buffering=1)
        config.on_tick = log_rotation(sys.stdout, log_path)
    admin_password = local_sign_in(config.data_dir)
    # Installed before the stack starts: the front answers (and a Ctrl-C may come) before start()
    # returns, and a SIGINT then used to kill the process unsaved. A second one while starting
    # still interrupts at once.
    done, started = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if done.is_set() and not started.is_set():
            raise KeyboardInterrupt
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    stack = LocalStack(config)
    try:
        stack.start()
    except OSError as exc:
        print(f"liveinsight: cannot start: {exc}", file=sys.stderr)
        sys.stdout = console
        stack.moto.stop()
        return 1
    from core.schema import load_schema

    rollup_window = args.rollup_window
    if rollup_window is None:
        rollup_window = load_schema().tiers["rollup"].esm.maximum_batching_window_in_seconds
    started.set()
    print(
        f"\nLiveInsight is running at {stack.url}\n"
        f"  dashboard     {stack.url}/?site={DEMO_DOMAIN}\n"
        f"  demo site     {DEMO_DOMAIN} (public){'  · demo traffic on' if args.demo_traffic else ''}\n"
        f"  demo read key {stack.demo_key}\n"
        f"  admin         password {admin_password}  (sign in: POST /api/auth/login)\n"
        f'  tracker       <script defer data-domain="{DEMO_DOMAIN}" src="{stack.url}/js/script.js"></script>\n'
        f"  realtime API  curl -H 'Authorization: Bearer {stack.demo_key}' '{stack.url}/api/v1/stats/realtime/visitors?site_id={DEMO_DOMAIN}'\n"
        f"Realtime is seconds fresh; ranges (today, 7 days…) follow the rollup tier's "
        f"{rollup_window:g} s batches, as in AWS (--rollup-window to shorten).\n"
        f"Data is kept in {config.data_dir}/; the functions' logs in "
        f"{'this console' if args.verbose else config.data_dir / 'lambda.log'}. Press Ctrl-C to stop.\n",
        file=console,
        flush=True,
    )
    # Waited in short steps: Python runs a signal's handler in the main thread, but the kernel
    # may deliver SIGINT/SIGTERM to any of the stack's threads (dozens with a tier instance per
    # shard), and then nothing wakes a wait without a timeout: the stop was never noticed.
    while not done.wait(0.5):
        pass
    print("Stopping: draining the stream and saving data…", file=console, flush=True)
    saved = stack.stop()
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stack.stop_seconds.items())
    saying = f"Saved {saved} items to {stack.snapshot_path}" if config.persist else "Stopped"
    print(f"{saying} ({steps}).", file=console, flush=True)
    # Everything is saved and every thread is done: skip the interpreter's teardown, which frees
    # moto's objects one by one (seconds after a long run) and adds nothing.
    for stream in (sys.stdout, sys.stderr, console):
        stream.flush()
    os._exit(0)


LOG_LIMIT = 50 * 1024 * 1024  # lambda.log is rotated past this: one previous log is kept


def log_rotation(stream: Any, path: Path, limit: int = LOG_LIMIT) -> Callable[[], None]:
    """Housekeeping for a long `liveinsight dev`: past `limit`, the log the stream writes to
    becomes `.log.1` and the stream goes on in a fresh file (its descriptor is swapped under it,
    so every logger holding the stream follows)."""

    def rotate() -> None:
        if not path.exists() or path.stat().st_size <= limit:
            return
        stream.flush()
        path.replace(path.with_suffix(".log.1"))
        fresh = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.dup2(fresh, stream.fileno())
        finally:
            os.close(fresh)

    return rotate


@contextlib.contextmanager
def backend(data_dir: Path) -> Iterator[str]:
    """The AWS endpoint of a running dev stack, or a private moto over the saved snapshot."""
    from local import tables

    if "LIVEINSIGHT_META_TABLE" in os.environ:  # a deployment named by the environment (RUNBOOK.md)
        yield os.environ.get("LIVEINSIGHT_PUBLIC_URL", "https://YOUR-DASHBOARD")
        return
    state_file = data_dir / "stack.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if _alive(state):
            os.environ.update(aws_environment(state["aws_endpoint"]))
            yield state["url"]
            return
    moto = MotoServer()
    endpoint = moto.start()
    os.environ.update(aws_environment(endpoint))
    from core.aws import make_client

    client = make_client("dynamodb")
    names = tables.table_names(TABLE_PREFIX)
    tables.create_tables(client, names, with_stream=False)
    tables.load_snapshot(client, names, data_dir / "snapshot.json")
    s3, bucket = make_client("s3"), tables.bucket_name(TABLE_PREFIX)
    tables.create_bucket(s3, bucket)
    tables.load_bucket(s3, bucket, data_dir / "archive")
    try:
        yield "http://127.0.0.1:8000"
        tables.save_snapshot(client, names, data_dir / "snapshot.json")
        tables.save_bucket(s3, bucket, data_dir / "archive")
    finally:
        moto.stop()


def _alive(state: dict[str, Any]) -> bool:
    try:
        os.kill(int(state["pid"]), 0)
        with urllib.request.urlopen(state["url"] + "/api/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, KeyError, ValueError):
        return False


def run_dlq_replay(args: argparse.Namespace) -> int:
    deployment = "LIVEINSIGHT_META_TABLE" in os.environ  # named by the environment (RUNBOOK.md)
    state_file = args.data_dir / "stack.json"
    if not deployment and (
        not state_file.exists() or not _alive(json.loads(state_file.read_text()))
    ):
        print(
            "liveinsight: dlq replay needs a running `liveinsight dev` (the stream and queue live in it)",
            file=sys.stderr,
        )
        return 2
    with backend(args.data_dir):
        from core.aws import make_client
        from local.dlq import lambda_invoker, replay

        sqs = make_client("sqs")
        queue = (
            os.environ.get("LIVEINSIGHT_DLQ_URL")
            or sqs.get_queue_url(QueueName=f"{TABLE_PREFIX}-aggregator-dlq")["QueueUrl"]
        )
        # A deployment's functions are invoked where they run; the dev stack's run in its own
        # process, so here the CLI runs the same handlers against its moto.
        invoke_for = lambda_invoker(_lambda_client()) if deployment else _local_invoker()
        report = replay(sqs, make_client("dynamodbstreams"), queue, invoke_for)
    print(json.dumps(report.as_dict()))
    return 0 if report.ok else 1


def _lambda_client() -> Any:
    import botocore.config
    import botocore.session

    # A replayed compaction run may take the archive function's whole timeout (lambda.tf): wait
    # for it, and never send an invocation again that may still be running.
    config = botocore.config.Config(
        read_timeout=960, connect_timeout=5, retries={"mode": "standard", "max_attempts": 1}
    )
    return botocore.session.get_session().create_client("lambda", config=config)


def _local_invoker() -> Callable[[str], Callable[[dict[str, Any]], Any]]:
    """`invoke_for` over the dev stack's handlers, by the function name in the ARN (the local
    ESM's `aggregator[:tier]`, local/async_invoke.py's `archive:$LATEST`)."""
    from aggregator.handler import handler as aggregator_handler
    from aggregator.handler import qualifier
    from archive.handler import handler as archive_handler
    from local.runtime import LambdaContext

    def invoke_for(arn: str) -> Callable[[dict[str, Any]], Any]:
        name = arn.split(":")[6] if arn.count(":") >= 6 else ""
        if name == "archive":  # as the dev stack runs it (local/stack.py)
            return lambda e: archive_handler(e, LambdaContext("archive", timeout_seconds=900))
        if name == "aggregator":
            alias = qualifier(arn)
            return lambda e: aggregator_handler(e, LambdaContext("aggregator", qualifier=alias))
        raise ValueError(f"no local function for {arn!r}")

    return invoke_for


def run_rebuild(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    with backend(args.data_dir):
        from aggregator.rebuild import rebuild
        from core.aws import make_client
        from core.schema import load_schema
        from core.sites import SiteStore

        client = make_client("dynamodb")
        site = SiteStore(client, os.environ["LIVEINSIGHT_META_TABLE"], cache_seconds=0).get(
            args.site
        )
        if site is None:
            print(f"liveinsight: no site {args.site}", file=sys.stderr)
            return 2

        def parse(text: str) -> datetime:
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(site.tz))

        source = args.source or ("archive" if _archive_bucket() else "events")
        if source == "archive" and not _archive_bucket():
            print("liveinsight: no event archive (LIVEINSIGHT_ARCHIVE_BUCKET)", file=sys.stderr)
            return 2
        report = rebuild(
            client,
            os.environ["LIVEINSIGHT_EVENTS_TABLE"],
            os.environ["LIVEINSIGHT_AGGREGATES_TABLE"],
            site.domain,
            site.tz,
            parse(args.start),
            parse(args.end),
            datetime.now(UTC),
            load_schema().retention.minute_bucket_ttl_seconds,
            archive=_archive() if source == "archive" else None,
        )
    print(json.dumps({"source": source, **report.__dict__}))
    return 0


def _archive_bucket() -> str:
    return os.environ.get("LIVEINSIGHT_ARCHIVE_BUCKET", "")


def _archive() -> Any:
    """The event archive the environment names, read through a cache of this run's own."""
    import tempfile

    from archive.store import ArchiveStore
    from core.aws import make_client

    return ArchiveStore(
        make_client("s3"), _archive_bucket(), tempfile.mkdtemp(prefix="liveinsight-cli-")
    )


def run_export(args: argparse.Namespace) -> int:
    with backend(args.data_dir):
        from archive.export import ExportError, export_to
        from core.aws import make_client
        from core.sites import SiteStore, site_domain

        if not _archive_bucket():
            print("liveinsight: no event archive (LIVEINSIGHT_ARCHIVE_BUCKET)", file=sys.stderr)
            return 2
        sites = SiteStore(make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"])
        # A removed site's archive can still be exported (until purged): the domain is enough.
        site = sites.get(args.site)
        domain = site.domain if site else site_domain(args.site)
        if domain is None:
            print(f"liveinsight: {args.site!r} is not a domain", file=sys.stderr)
            return 2
        import tempfile

        with tempfile.TemporaryDirectory(prefix="liveinsight-export-") as tmp:
            target = args.out or Path(tmp) / f"events.{args.format}"
            try:
                count = export_to(_archive(), domain, args.first, args.last, args.format, target)
            except ExportError as exc:
                print(f"liveinsight: {exc}", file=sys.stderr)
                return 2
            if args.out is None:
                sys.stdout.flush()
                sys.stdout.buffer.write(target.read_bytes())
                sys.stdout.buffer.flush()
    if args.out is not None:
        print(f"{count} events of {domain} written to {args.out}", file=sys.stderr)
    return 0


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """`import remove --site S ID`: the id after the options (argparse takes a command's
    positionals in one run)."""
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "import" or any(e.startswith("-") for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.target += extra
    return args


def add_import_commands(commands: Any) -> None:
    command = commands.add_parser(
        "import",
        help="import Plausible's CSV export or Umami's website_event export; list or remove imports",
    )
    command.add_argument("--site", required=True)
    command.add_argument("--kind", choices=("plausible", "umami"), help="default: from the file")
    command.add_argument("--json", action="store_true")
    command.add_argument(
        "target",
        nargs="+",
        metavar="FILE | list | remove ID",
        help="a file to import, or list / remove ID",
    )


def run_import(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    action, *rest = args.target
    if action in ("list", "remove") and len(rest) != (1 if action == "remove" else 0):
        print("liveinsight: import list --site S, or import remove --site S ID", file=sys.stderr)
        return 2
    with backend(args.data_dir):
        from core.aws import make_client
        from core.sites import SiteStore
        from imports.errors import ImportNotFound, ImportRefused
        from imports.recount import archive_recount
        from imports.service import import_file, remove_import
        from imports.store import ImportStore

        if not _archive_bucket():
            print(
                "liveinsight: imports need the event archive (LIVEINSIGHT_ARCHIVE_BUCKET)",
                file=sys.stderr,
            )
            return 2
        client = make_client("dynamodb")
        site = SiteStore(client, os.environ["LIVEINSIGHT_META_TABLE"], cache_seconds=0).get(
            args.site
        )
        if site is None:
            print(f"liveinsight: no site {args.site}", file=sys.stderr)
            return 2
        archive = _archive()
        store = ImportStore(archive)
        now = datetime.now(UTC)
        recount = archive_recount(
            client, os.environ["LIVEINSIGHT_AGGREGATES_TABLE"], archive, site, now
        )
        try:
            if action == "list":
                out: dict[str, Any] = {"imports": [m.out() for m in store.manifests(site.domain)]}
            elif action == "remove":
                out = {"removed": remove_import(store, site, rest[0], recount).id}
            else:
                path = Path(action)
                if not path.is_file():
                    print(f"liveinsight: no file {action}", file=sys.stderr)
                    return 2
                manifest, new = import_file(
                    store, site, path.read_bytes(), path.name, now, recount, args.kind
                )
                out = {"import": manifest.out(), "new": new}
        except (ImportRefused, ImportNotFound) as exc:
            return _failed(exc, args.json)
    if args.json:
        print(json.dumps(out))
    elif "imports" in out:
        for m in out["imports"]:
            spans = ", ".join(f"{a}..{b}" for a, b in m["ranges"])
            print(f"{m['id']}\t{m['kind']}\t{m['filename']}\t{spans}")
    elif "removed" in out:
        print(f"import {out['removed']} removed")
    else:
        m = out["import"]
        spans = ", ".join(f"{a}..{b}" for a, b in m["ranges"])
        said = "imported" if out["new"] else "was imported before"
        print(f"{m['filename']} {said} as {m['id']} ({m['kind']}): days {spans}")
    return 0


def run_key(args: argparse.Namespace) -> int:
    from core.aws import make_client
    from core.sites import SiteError, SiteStore

    with backend(args.data_dir):
        sites = SiteStore(
            make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"], cache_seconds=0
        )
        try:
            if args.key_command == "create":
                key = sites.create_key(args.site)
                print(json.dumps({"site": args.site, "key": key}) if args.json else key)
            elif args.key_command == "list":
                listed = sites.list_keys(args.site)
                if args.json:
                    keys = [
                        {"id": k.id, "site": k.site, "created_at": k.created_at} for k in listed
                    ]
                    print(json.dumps({"keys": keys}))
                else:
                    for k in listed:
                        print(f"{k.id}\t{k.site}\tcreated {k.created_at}")
            else:
                revoked = sites.revoke_key(args.site, args.key)
                print(
                    json.dumps({"revoked": revoked}) if args.json else f"{revoked} key(s) revoked"
                )
                return 0 if revoked else 1
        except SiteError as exc:
            print(f"liveinsight: {exc}", file=sys.stderr)
            return 2
    return 0


def run_site(args: argparse.Namespace) -> int:
    from core.aws import make_client
    from core.sites import KEEP, SiteError, SiteStore

    with backend(args.data_dir) as url:
        sites = SiteStore(
            make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"], cache_seconds=0
        )
        try:
            if args.site_command == "list":
                return _print_sites(sites.list(), args.json)
            if args.site_command == "add":
                return _add_site(sites, args, url)
            if args.site_command == "update":
                site = sites.update(
                    args.domain,
                    tz=args.tz,
                    public=args.public,
                    hostnames=args.hostnames,
                    retention_months=args.retention_months,
                    umami_id=None
                    if args.no_umami_id
                    else (KEEP if args.umami_id is None else args.umami_id),
                )
                print(json.dumps(_site_json(site)) if args.json else _site_line(site))
                return 0
            removal = _remove(sites, args.domain, args.purge)
        except SiteError as exc:
            return _failed(exc, args.json)
        purged = _purge(removal.domain) if args.purge else None
    shown: dict[str, Any] = {
        "removed": removal.domain,
        "keys": removal.keys,
        "shares": removal.shares,
        "aggregates_kept": purged is None,
    }
    if purged is not None:
        shown["purged"] = purged
    if args.json:
        print(json.dumps(shown))
    elif purged is None:
        print(
            f"Site {removal.domain} removed with {removal.keys} key(s) and {removal.shares} "
            "shared link(s); its aggregated stats stay in the aggregates table."
        )
    else:
        print(
            f"Site {removal.domain} removed with {removal.keys} key(s) and {removal.shares} "
            f"shared link(s), and purged: {purged['archive_objects']} archive object(s), "
            f"{purged['aggregates_items']} aggregates item(s), {purged['raw_events']} raw "
            "event(s)."
        )
        for key in purged["archive_keys"]:
            print(f"  deleted s3://{_archive_bucket()}/{key}")
    return 0


def _remove(sites: Any, domain: str, purge: bool) -> Any:
    """Remove the site; with --purge a site removed before is fine: its data is purged."""
    from core.sites import Removal, SiteNotFound, normalize_domain

    try:
        return sites.remove(domain)
    except SiteNotFound:
        if not purge:
            raise
        return Removal(normalize_domain(domain), 0, 0)


def _purge(domain: str) -> dict[str, Any]:
    """Delete the site's data: archive objects first (the longest-lived), then its items."""
    from core.aws import make_client
    from core.schema import load_schema
    from core.sites import purge_items

    archive_keys: list[str] = []
    if _archive_bucket():
        from imports.store import ImportStore

        archive = _archive()
        archive_keys = archive.purge(domain) + ImportStore(archive).purge(domain)  # its imports too
    ddb = make_client("dynamodb")
    schema = load_schema().tables
    counts = {}
    for logical, variable in (
        ("aggregates", "LIVEINSIGHT_AGGREGATES_TABLE"),
        ("events", "LIVEINSIGHT_EVENTS_TABLE"),
    ):
        table = schema[logical]
        key_names = [table.hash_key] + ([table.range_key] if table.range_key else [])
        counts[logical] = purge_items(ddb, os.environ[variable], key_names, domain)
    return {
        "archive_objects": len(archive_keys),
        "archive_keys": archive_keys,
        "aggregates_items": counts["aggregates"],
        "raw_events": counts["events"],
    }


def _add_site(sites: Any, args: argparse.Namespace, url: str) -> int:
    created = sites.add(args.domain, tz=args.tz, public=args.public, hostnames=args.hostnames)
    key = sites.create_key(created.domain)
    snippet = f'<script defer data-domain="{created.domain}" src="{url}/js/script.js"></script>'
    if args.json:
        print(json.dumps({**_site_json(created), "key": key, "snippet": snippet}))
    else:
        print(
            f"Site {created.domain} created ({created.tz}).\n\nAdd to every page:\n  {snippet}\n\nRead key (shown once):\n  {key}"
        )
    return 0


def _site_json(site: Any) -> dict[str, Any]:
    return {
        "domain": site.domain,
        "tz": site.tz,
        "public": site.public,
        "hostnames": list(site.hostnames),
        "goals": list(site.goals),
        "created_at": site.created_at,
        "retention_months": site.retention_months,
        "umami_id": site.umami_id,  # attached, or None
        "umami_derived_id": site.derived_umami_id,
    }


def _site_line(site: Any) -> str:
    hosts = ",".join(site.hostnames) or "any host"
    return f"{site.domain}\t{site.tz}\t{'public' if site.public else 'private'}\t{hosts}"


def _print_sites(listed: list[Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"sites": [_site_json(s) for s in listed]}))
    else:
        for site in listed:
            print(_site_line(site))
    return 0


def _failed(exc: Exception, as_json: bool) -> int:
    print(json.dumps({"error": str(exc)}) if as_json else f"liveinsight: {exc}", file=sys.stderr)
    return 2


def run_goal(args: argparse.Namespace) -> int:
    from core.aws import make_client
    from core.sites import SiteError, SiteStore

    with backend(args.data_dir):
        sites = SiteStore(
            make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"], cache_seconds=0
        )
        try:
            if args.goal_command == "add":
                site = sites.add_goal(args.site, args.goal)
            elif args.goal_command == "remove":
                site = sites.remove_goal(args.site, args.goal)
            else:
                site = sites.require(args.site)
        except SiteError as exc:
            return _failed(exc, args.json)
    if args.json:
        print(json.dumps({"site": site.domain, "goals": list(site.goals)}))
    else:
        for goal in site.goals:
            print(goal)
    return 0


def run_funnel(args: argparse.Namespace) -> int:
    from core.aws import make_client
    from core.funnels import FunnelStore
    from core.sites import SiteError, SiteStore

    with backend(args.data_dir):
        client, table = make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"]
        funnels = FunnelStore(client, table)
        try:
            site = SiteStore(client, table, cache_seconds=0).require(args.site).domain
            if args.funnel_command == "add":
                shown = [funnels.add(site, args.name, args.steps)]
            elif args.funnel_command == "remove":
                removed = funnels.remove(site, args.funnel_id)
                print(json.dumps({"removed": removed.id}) if args.json else f"removed {removed.id}")
                return 0
            else:
                shown = funnels.list(site)
        except SiteError as exc:
            return _failed(exc, args.json)
    if args.json:
        print(json.dumps({"site": site, "funnels": [_funnel_json(f) for f in shown]}))
    else:
        for f in shown:
            print(f"{f.id}\t{f.name}\t{' → '.join(s.label for s in f.steps)}")
    return 0


def _funnel_json(funnel: Any) -> dict[str, Any]:
    steps = [{"label": s.label, "kind": s.kind, "value": s.value} for s in funnel.steps]
    return {"id": funnel.id, "name": funnel.name, "steps": steps, "created_at": funnel.created_at}


def run_segment(args: argparse.Namespace) -> int:
    from core.aws import make_client
    from core.segments import SegmentError, SegmentStore
    from core.sites import SiteError, SiteStore
    from query_api.errors import BadRequest
    from query_api.v2.segments_api import check_filters

    with backend(args.data_dir):
        client, table = make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"]
        segments = SegmentStore(client, table)
        try:
            site = SiteStore(client, table, cache_seconds=0).require(args.site)
            if args.segment_command == "add":
                try:
                    filters = json.loads(args.filters)
                except ValueError as exc:
                    raise SegmentError(f"FILTERS_JSON is not JSON: {exc}") from None
                if not isinstance(filters, list):
                    raise SegmentError("FILTERS_JSON is a JSON list of v2 filters")
                try:
                    check_filters(filters, site)
                except BadRequest as exc:
                    raise SegmentError(exc.message) from None
                shown = [segments.add(site.domain, args.name, filters)]
            elif args.segment_command == "remove":
                segments.remove(site.domain, args.segment_id)
                gone = args.segment_id
                print(json.dumps({"removed": gone}) if args.json else f"removed {gone}")
                return 0
            else:
                shown = segments.list(site.domain)
        except (SiteError, SegmentError) as exc:
            return _failed(exc, args.json)
    if args.json:
        print(json.dumps({"site": site.domain, "segments": [s.out() for s in shown]}))
    else:
        for s in shown:
            print(f"{s.id}\t{s.name}\t{json.dumps(list(s.filters))}")
    return 0


def run_alert(args: argparse.Namespace) -> int:
    import re

    from alerts.rules import AlertError, RuleStore
    from core.aws import make_client
    from core.sites import SiteError, SiteStore

    with backend(args.data_dir):
        client, table = make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"]
        rules = RuleStore(client, table)
        try:
            site = SiteStore(client, table, cache_seconds=0).require(args.site)
            if args.alert_command == "add":
                rule = rules.add(
                    site.domain,
                    args.kind,
                    args.threshold,
                    args.webhook,
                    args.secret,
                    args.format,
                    args.goal,
                    args.window_minutes,
                    args.cooldown_seconds,
                    site.goals,
                    emails=args.email,
                )
                shown = [rule.out()]
                # As the admin API's creation: the secret is shown here and never again.
                if shown[0]["webhook"]:
                    shown[0]["webhook"]["secret"] = rule.target.secret
            elif args.alert_command == "remove":
                if not re.fullmatch(r"[0-9a-f]{12}", args.rule_id):
                    raise AlertError(f"an alert rule's id is 12 hex digits, not {args.rule_id!r}")
                rules.remove(site.domain, args.rule_id)
                gone = args.rule_id
                print(json.dumps({"removed": gone}) if args.json else f"removed {gone}")
                return 0
            else:
                shown = [r.out() for r in rules.list(site.domain, consistent=True)]
        except (SiteError, AlertError) as exc:
            return _failed(exc, args.json)
    if args.json:
        print(json.dumps({"site": site.domain, "alerts": shown}))
        return 0
    for r in shown:
        what = {
            "spike": f"current visitors > {r['threshold']}",
            "drop": f"no pageviews for {r['window_minutes']} min in a usual hour",
            "new_referrer": f"new top referrer today (≥ {r['threshold']} visitors)",
        }.get(r["kind"], f"{r['goal']} ≥ {r['threshold']} in {r['window_minutes']} min")
        hook = r["webhook"] or {}
        where = [f"{hook['format']} {hook['url']}"] if hook else []
        where += [f"email {a}" for a in r["emails"]]
        print(f"{r['id']}\t{r['kind']}\t{what}\t{', '.join(where)}")
        if "secret" in hook:
            print(f"webhook secret (shown this once): {hook['secret']}")
    return 0


def add_report_commands(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="email reports of a site, weekly and monthly (decision 0038)"
    ).add_subparsers(dest="report_command", required=True)
    subscribe = report.add_parser("subscribe", help="send the site's reports to an address")
    unsubscribe = report.add_parser("unsubscribe", help="stop the site's reports to an address")
    listing = report.add_parser("list", help="the site's subscribers and the latest reports sent")
    send = report.add_parser(
        "send", help="send the reports due now by SES, once per recipient and period"
    )
    for command in (subscribe, unsubscribe):
        command.add_argument("--email", required=True, metavar="ADDRESS")
        command.add_argument(
            "--kind", action="append", choices=REPORT_KINDS, help="repeat; default: both"
        )
    send.add_argument("--email", metavar="ADDRESS", help="only to this subscriber")
    send.add_argument(
        "--kind",
        choices=REPORT_KINDS,
        help="its last complete period, due or not (default: whatever is due at --now)",
    )
    send.add_argument("--now", metavar="ISO", help="run as at this time (no offset = site time)")
    for command in (subscribe, unsubscribe, listing, send):
        command.add_argument("--site", required=True)
        command.add_argument("--json", action="store_true")


REPORT_KINDS = ("weekly", "monthly")  # reports/schedule.py KINDS


def run_report(args: argparse.Namespace) -> int:
    """The admin API's subscriptions (reports/store.py) and the schedule's run (reports/run.py)."""
    from core.aws import make_client
    from core.mail import MailError, normal_address
    from core.sites import SiteError, SiteStore
    from reports.store import ReportError, ReportStore

    deployment = "LIVEINSIGHT_META_TABLE" in os.environ
    with backend(args.data_dir) as url:
        client, table = make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"]
        store = ReportStore(client, table)
        try:
            site = SiteStore(client, table, cache_seconds=0).require(args.site)
            if args.report_command == "subscribe":
                store.subscribe(site.domain, args.email, args.kind or REPORT_KINDS)
            elif args.report_command == "unsubscribe":
                address, kinds = normal_address(args.email), args.kind or REPORT_KINDS
                if not [k for k in kinds if store.unsubscribe(site.domain, address, k)]:
                    raise ReportError(
                        f"{address} gets no {' or '.join(kinds)} report of {site.domain}"
                    )
            elif args.report_command == "send":
                if not deployment:
                    _local_report_sender(args.data_dir, url)
                return _print_sent(args, site.domain, *_send_reports(args, site, store))
            subs = [s.out() for s in store.subscriptions(site.domain, consistent=True)]
            history = store.sent(site.domain) if args.report_command == "list" else []
        except (SiteError, ReportError, MailError) as exc:
            return _failed(exc, args.json)
    if args.json:
        shown: dict[str, Any] = {"site": site.domain, "subscriptions": subs}
        print(json.dumps({**shown, "sent": history} if args.report_command == "list" else shown))
        return 0
    for sub in subs:
        print(f"{sub['email']}\t{', '.join(sub['kinds'])}")
    for h in history:
        print(f"{h['status']}\t{h['kind']}\t{h['period']}\t{h['email']}")
    return 0


def _print_sent(
    args: argparse.Namespace, domain: str, sent: list[dict[str, Any]], failed: list[str]
) -> int:
    if args.json:
        print(json.dumps({"site": domain, "sent": sent, "failed": failed}))
    else:
        for s in sent:
            print(f"sent\t{s['kind']}\t{s['period']}\t{s['email']}")
        if not sent and not failed:
            print(f"nothing to send for {domain} (sent already, or none due)")
    for error in failed:
        print(f"liveinsight: not sent: {error}", file=sys.stderr)
    return 1 if failed else 0


def _local_report_sender(data_dir: Path, url: str) -> None:
    """The local stack's sender (moto's SES, its domain verified), session key and origin, as
    `liveinsight dev` sets them: the links in a report work on the running stack."""
    from core.aws import make_client
    from local.stack import EMAIL_DOMAIN

    os.environ.setdefault("LIVEINSIGHT_EMAIL_FROM", f"reports@{EMAIL_DOMAIN}")
    if not os.environ.get("LIVEINSIGHT_SESSION_SECRET"):
        os.environ["LIVEINSIGHT_SESSION_SECRET"] = _kept_secret(data_dir / "session-secret", 48)
    os.environ.setdefault("LIVEINSIGHT_PUBLIC_URL", url)
    ses = make_client("sesv2")
    with contextlib.suppress(ses.exceptions.AlreadyExistsException):
        ses.create_email_identity(EmailIdentity=EMAIL_DOMAIN)


def _send_reports(
    args: argparse.Namespace, site: Any, store: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """What `report send` sends: the periods due at --now (as the hourly schedule), or --kind's
    last complete one; to every subscriber of it, or --email only. The sent markers hold as for
    the schedule: a report already sent to an address is not sent again."""
    import logging
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from core.mail import normal_address
    from reports import handler, run
    from reports.schedule import KINDS, due, last_complete, local_now
    from reports.store import ReportError

    try:
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    except ValueError:
        raise ReportError(
            f"--now: {args.now[:40]!r} is not an ISO time (2025-03-17T09:30)"
        ) from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=ZoneInfo(site.tz))
    if args.kind:
        periods = [last_complete(args.kind, local_now(now, site.tz).date())]
    else:
        periods = [p for kind in KINDS if (p := due(kind, now, site.tz)) is not None]
    subs = store.subscriptions(site.domain, consistent=True)
    only = normal_address(args.email) if args.email else None
    if only and only not in {s.email for s in subs}:
        raise ReportError(f"{only} gets no report of {site.domain}")
    for cached in (handler.get_config, handler.get_runner, handler.make_ses, handler._parameter):
        cached.cache_clear()  # the environment was set up after any earlier use
    failed: list[str] = []
    config = handler.get_config()

    def send(message: Any) -> str:
        from core import mail

        try:
            return mail.send(handler.make_ses(), message, config.email_from)
        except Exception as exc:
            failed.append(f"{message.to}: {exc}")
            raise

    runner = run.Runner(
        lambda: [site],
        store,
        handler.build,
        send,
        run.Links(handler.public_url, handler.session_key),
    )
    level = run.log.log_level
    run.log.setLevel(logging.CRITICAL)  # its lines are the Lambda's; the CLI says it itself
    try:
        sent: list[run.Sent] = []
        for period in periods:
            to = [s.email for s in subs if period.kind in s.kinds and only in (None, s.email)]
            sent += runner.send_period(site, period, to, now)
    finally:
        run.log.setLevel(level)
    return [s.__dict__ for s in sent], failed


def run_share(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from core.aws import make_client
    from core.sites import SiteError, SiteStore

    with backend(args.data_dir) as url:
        sites = SiteStore(
            make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"], cache_seconds=0
        )
        try:
            if args.share_command == "create":
                token, link = sites.create_share(args.site, args.label)
                shown = {**asdict(link), "token": token, "url": _share_url(url, link.site, token)}
                print(json.dumps(shown) if args.json else f"{shown['url']}\n(id {link.id})")
            elif args.share_command == "list":
                sites.require(args.site)
                listed = sites.list_shares(args.site)
                if args.json:
                    print(json.dumps({"shares": [asdict(link) for link in listed]}))
                else:
                    for link in listed:
                        print(f"{link.id}\t{link.site}\tcreated {link.created_at}\t{link.label}")
            else:
                revoked = sites.revoke_share(args.site, args.share)
                print(
                    json.dumps({"revoked": revoked}) if args.json else f"{revoked} link(s) revoked"
                )
                return 0 if revoked else 1
        except SiteError as exc:
            return _failed(exc, args.json)
    return 0


def _share_url(base: str, domain: str, token: str) -> str:
    from urllib.parse import urlencode

    return f"{base.rstrip('/')}/?{urlencode({'site': domain, 'auth': token})}"


def run_hash_password() -> int:
    """For deployment (RUNBOOK.md): the password from stdin (one line) or a prompt, hashed."""
    import getpass

    from query_api.auth import PasswordHashError, hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Admin password: ")
        if getpass.getpass("Once more: ") != password:
            print("liveinsight: the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        print(hash_password(password))
    except PasswordHashError as exc:
        print(f"liveinsight: {exc}", file=sys.stderr)
        return 2
    return 0


def local_sign_in(data_dir: Path) -> str:
    """The local stack's admin password, made once and kept in the data dir (as the demo key),
    and its hash and a session secret in this process's environment, where the query handler
    reads its settings. A hash already in the environment is kept."""
    from query_api.auth import hash_password

    if os.environ.get("LIVEINSIGHT_ADMIN_PASSWORD_HASH"):
        password = "(from LIVEINSIGHT_ADMIN_PASSWORD_HASH)"
    else:
        password = _kept_secret(data_dir / "admin-password", 15)
        os.environ["LIVEINSIGHT_ADMIN_PASSWORD_HASH"] = hash_password(password)
    if not os.environ.get("LIVEINSIGHT_SESSION_SECRET"):
        os.environ["LIVEINSIGHT_SESSION_SECRET"] = _kept_secret(data_dir / "session-secret", 48)
    return password


def _kept_secret(path: Path, nbytes: int) -> str:
    import secrets

    if path.exists() and len(path.read_text().strip()) >= 16:
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value + "\n")
    return value


if __name__ == "__main__":
    sys.exit(main())
