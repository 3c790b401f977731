"""What the bill depends on in terraform/*.tf, read from the HCL (python-hcl2), never copied.

Memory sizes, architectures and log levels of the functions, log retention and log class, the
alarms (in alarm metrics, as CloudWatch bills them) and dashboards with their for_each / count
expanded, what serves each path (CloudFront, then an HTTP API, a REST API or a function URL), the
API access log's bytes per request, and every resource with a monthly price of its own.

A tiny evaluator understands literals, `var.x` (its default), `local.x...`, `each.key`,
`each.value.x`, `toset([...])`, `length(x)`, `a == b ? x : y`, `flag ? x : y` and the schema's
`jsondecode(file(...))`. Anything else it is asked to evaluate raises Unsupported, and so does a
resource type it has no price rule for: a change that could cost money fails the bill loudly
rather than being left out of it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hcl2

from bench import prices

REPO = Path(__file__).resolve().parent.parent
TERRAFORM = REPO / "terraform"

_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

# Resource types with no monthly or per-request price of their own (what they serve is priced
# where it is used: requests, GB, units), or one this module prices below.
FREE = {
    "aws_acm_certificate",
    "aws_acm_certificate_validation",
    "aws_apigatewayv2_api_mapping",
    "aws_apigatewayv2_domain_name",
    "aws_apigatewayv2_integration",
    "aws_apigatewayv2_route",
    "aws_apigatewayv2_stage",
    "aws_cloudfront_cache_policy",
    "aws_cloudfront_origin_access_control",
    "aws_cloudfront_origin_request_policy",
    "aws_cloudfront_response_headers_policy",
    "aws_cloudwatch_event_target",  # what a rule invokes is priced as that function's use
    "aws_cloudwatch_log_subscription_filter",
    "aws_cloudwatch_query_definition",
    "aws_iam_policy",
    "aws_iam_role",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_kms_alias",
    "aws_lambda_alias",
    "aws_lambda_event_source_mapping",  # DynamoDB Streams reads by a Lambda trigger are free
    # Async retries and the on-failure destination: the retries are invocations of the function,
    # the failure record an SQS request (the first million a month free; one per failed run)
    "aws_lambda_function_event_invoke_config",
    "aws_lambda_function_url",
    "aws_lambda_layer_version",
    "aws_lambda_permission",
    "aws_route53_record",
    "aws_s3_bucket",  # the archive's requests and bytes: bench/bill.py, from ArchiveFacts
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_notification",  # S3 event notifications cost nothing; the invocations are priced
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    # An SES identity and its MAIL FROM domain cost nothing; SES bills per message (decision
    # 0038: $0.10 per 1,000, none sent by the bill's traffic).
    "aws_sesv2_email_identity",
    "aws_sesv2_email_identity_mail_from_attributes",
    "aws_sns_topic",
    "aws_sns_topic_policy",
    "aws_sns_topic_subscription",
    "aws_sqs_queue",  # requests only; the dead-letter queue gets none in normal operation
    "aws_sqs_queue_policy",
    "random_id",
    "random_password",
}
# Priced per request, GB or unit by bench/bill.py, or counted here.
PRICED = {
    "aws_apigatewayv2_api",
    "aws_api_gateway_rest_api",
    "aws_cloudfront_distribution",
    "aws_cloudfront_function",
    "aws_cloudwatch_composite_alarm",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_log_group",
    "aws_cloudwatch_log_metric_filter",
    "aws_cloudwatch_metric_alarm",
    "aws_dynamodb_table",
    "aws_athena_workgroup",  # bytes scanned (bench/bill.py, Shape.athena_*)
    "aws_cloudwatch_event_rule",  # schedules: the invocations they make (FREE as events)
    "aws_scheduler_schedule",  # $1 per million after 14 M free; its runs: bench/bill.py
    "aws_glue_catalog_database",  # catalog objects: the first million free
    "aws_glue_catalog_table",
    "aws_kms_key",
    "aws_lambda_function",
    "aws_lambda_provisioned_concurrency_config",
    "aws_route53_zone",
    "aws_secretsmanager_secret",
    "aws_ssm_parameter",
    "aws_wafv2_web_acl",
}

# What API Gateway puts for each $context variable of an access log line, as it would for an
# ordinary request (a 16-character request id, a latency of two digits).
_CONTEXT_SAMPLES = {
    "requestId": "JkXb7hM9oAMEbGw=",
    "extendedRequestId": "JkXb7hM9oAMEbGw=",
    "status": "202",
    "responseLatency": "12",
    "integrationLatency": "10",
    "integrationStatus": "202",
    "integrationErrorMessage": "-",
    "integration.error": "-",
    "responseLength": "0",
    "requestTime": "06/Dec/2026:10:00:00 +0000",
    "requestTimeEpoch": "1796551200000",
    "httpMethod": "POST",
    "protocol": "HTTP/1.1",
    "path": "/api/event",
    "stage": "$default",
    "apiId": "a1b2c3d4e5",
    "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
    "error.message": "-",
    "error.responseType": "-",
}


class Unsupported(ValueError):
    """A Terraform form or resource type the bill cannot read: extend this module."""


@dataclass(frozen=True)
class FunctionFacts:
    name: str
    memory_mb: int
    architecture: str  # arm64 | x86_64
    log_level: str  # the effective level of application log lines
    platform_lines: bool  # START / END / REPORT written (not filtered by system_log_level)
    log_format: str  # Text | JSON
    provisioned_concurrency: int = 0


@dataclass(frozen=True)
class FixedItem:
    name: str
    usd_per_month: float
    covers: str


@dataclass(frozen=True)
class Route:
    """What a request to a path passes through, outermost first."""

    path: str
    cloudfront: bool
    origin: str  # http_api | rest_api | function_url | s3
    cloudfront_functions: int = 0  # CloudFront Functions run per request on its behaviour
    access_log_bytes: int = 0  # API Gateway access log line, message bytes


@dataclass(frozen=True)
class ArchiveFacts:
    """The event archive (terraform/archive.tf): written from one aggregator tier's batches,
    compacted by a scheduled function, optionally queried by Athena."""

    batch_window_seconds: float  # of the tier that writes it (core/schema.json)
    batch_size: int
    compaction_function: str
    compaction_runs_per_month: float  # from the schedule's rate
    athena: bool


@dataclass(frozen=True)
class TerraformFacts:
    functions: dict[str, FunctionFacts]
    log_retention_days: int
    log_ingestion_usd_per_gb: float  # by the function log groups' class
    alarms: int
    alarm_metrics: int  # what CloudWatch bills: one per metric an alarm evaluates
    composite_alarms: int
    dashboards: int
    log_metric_filters: int  # each creates a custom metric
    http_api: bool
    rest_api: bool
    function_urls: int
    cloudfront: bool
    pitr_tables: tuple[str, ...]
    fixed: tuple[FixedItem, ...] = field(default_factory=tuple)
    routes: dict[str, Route] = field(default_factory=dict)  # by a request's path
    archive: ArchiveFacts | None = None
    # Runs a month of each function a schedule invokes (a scheduled rule or EventBridge
    # Scheduler), by the function's key, and how many of them Scheduler makes.
    scheduled_runs: dict[str, float] = field(default_factory=dict)
    scheduler_invocations: float = 0.0

    def route(self, path: str) -> Route:
        return self.routes[path]


# ---- reading ------------------------------------------------------------------------------


class _Config:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.docs = [
            hcl2.loads(path.read_text(), serialization_options=_OPTIONS)
            for path in sorted(directory.glob("*.tf"))
        ]
        if not self.docs:
            raise Unsupported(f"no *.tf files in {directory}")
        self.resources: dict[str, dict[str, dict[str, Any]]] = {}
        for doc in self.docs:
            for entry in doc.get("resource", []):
                for rtype, named in entry.items():
                    self.resources.setdefault(rtype, {}).update(named)
        self.locals: dict[str, Any] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        for doc in self.docs:
            for entry in doc.get("locals", []):
                self.locals.update(entry)
            for entry in doc.get("variable", []):
                self.variables.update(entry)

    # -- the evaluator

    def evaluate(self, expression: Any, scope: dict[str, Any] | None = None) -> Any:
        # Shallow: a map or list comes back as written, its elements evaluated when read, so an
        # unreadable element nobody reads (a table name from a resource) does not matter.
        scope = scope or {}
        if not isinstance(expression, str) or "${" not in expression:
            return expression
        if expression.startswith("${") and _closing(expression, 1) == len(expression) - 1:
            return self._inner(expression[2:-1].strip(), scope)
        # A template: "${var.a}-${var.b}", each interpolation a simple one.
        return re.sub(
            r"\$\{([^{}]+)\}", lambda m: str(self._inner(m.group(1).strip(), scope)), expression
        )

    def _inner(self, inner: str, scope: dict[str, Any]) -> Any:
        if m := re.fullmatch(r"(.+?) (==|!=) (.+?) \? (.+) : (.+)", inner):
            left, op, right, yes, no = m.groups()
            equal = self._inner(left, scope) == self._inner(right, scope)
            return self._inner(yes if equal == (op == "==") else no, scope)
        if m := re.fullmatch(r"([\w.]+) \? (.+) : (.+)", inner):
            condition = self._inner(m.group(1), scope)
            if not isinstance(condition, bool):
                raise Unsupported(f"condition {m.group(1)} is {condition!r}, not a bool")
            return self._inner(m.group(2) if condition else m.group(3), scope)
        if m := re.fullmatch(r'"([^"$]*)"', inner):
            return m.group(1)
        if re.fullmatch(r"-?\d+(\.\d+)?", inner):
            return float(inner) if "." in inner else int(inner)
        if inner in ("true", "false"):
            return inner == "true"
        if m := re.fullmatch(r"toset\(\[(.*)\]\)", inner):
            return [self._inner(part.strip(), scope) for part in m.group(1).split(",")]
        if m := re.fullmatch(r"length\((.+)\)", inner):
            return len(self._inner(m.group(1), scope))
        if re.fullmatch(r'jsondecode\(file\("\$\{path\.module\}/([^"]+)"\)\)', inner):
            relative = re.fullmatch(r'jsondecode\(file\("\$\{path\.module\}/([^"]+)"\)\)', inner)
            assert relative is not None
            return json.loads((self.directory / relative.group(1)).read_text())
        if m := re.fullmatch(r"(var|local|each)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", inner):
            return self._path(m.group(1), m.group(2)[1:].split("."), scope)
        return self._compound(inner, scope)

    def _compound(self, inner: str, scope: dict[str, Any]) -> Any:
        """The forms dynamodb.tf keys its tables with: a for expression over a map, try(), a
        map index, and the names a for expression binds."""
        if m := re.fullmatch(r"\{for (\w+), (\w+) in ([^{}:]+) : ([^{}]+) => ([^{}]+)\}", inner):
            # `{for k, v in <map> : <key> => <value>}`, as dynamodb.tf keys the tables
            k, v, collection, key, value = m.groups()
            out = {}
            for each_k, each_v in dict(self._inner(collection.strip(), scope)).items():
                bound = {**scope, "for": {**scope.get("for", {}), k: each_k, v: each_v}}
                out[self._inner(key.strip(), bound)] = self._inner(value.strip(), bound)
            return out
        if m := re.fullmatch(r"try\((.+), (\w+)\)", inner):
            try:
                return self._inner(m.group(1), scope)
            except Unsupported:
                return self._inner(m.group(2), scope)
        if m := re.fullmatch(r"(.+)\[(\w+)\]", inner):
            collection, index = self._inner(m.group(1), scope), self._inner(m.group(2), scope)
            if not isinstance(collection, dict) or index not in collection:
                raise Unsupported(f"{m.group(1)} has no [{index!r}]")
            return self.evaluate(collection[index], scope)
        m = re.fullmatch(r"(\w+)((?:\.\w+)*)", inner)
        if m and m.group(1) in scope.get("for", {}):  # a name a for expression binds
            value = scope["for"][m.group(1)]
            for part in m.group(2)[1:].split(".") if m.group(2) else []:
                if not isinstance(value, dict) or part not in value:
                    raise Unsupported(f"{inner}: no {part!r}")
                value = value[part]
            return value
        raise Unsupported(f"expression ${{{inner}}}")

    def _path(self, head: str, parts: list[str], scope: dict[str, Any]) -> Any:
        if head == "var":
            variable = self.variables.get(parts[0])
            if variable is None or "default" not in variable:
                raise Unsupported(f"var.{parts[0]} has no default")
            value = variable["default"]
        elif head == "local":
            if parts[0] not in self.locals:
                raise Unsupported(f"local.{parts[0]} is not defined")
            value = self.evaluate(self.locals[parts[0]], scope)
        else:
            if "each" not in scope:
                raise Unsupported(f"each.{'.'.join(parts)} outside a for_each")
            value = scope["each"]
        for part in parts[1:] if head != "each" else parts:
            if not isinstance(value, dict) or part not in value:
                raise Unsupported(f"{head}.{'.'.join(parts)}: no {part!r}")
            value = self.evaluate(value[part], scope)
        return value

    def instances(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The scopes of a resource's instances: one, count of them, or one per for_each key."""
        if "count" in body and "for_each" in body:
            raise Unsupported("both count and for_each")
        if "count" in body:
            return [{"count": {"index": i}} for i in range(int(self.evaluate(body["count"])))]
        if "for_each" in body:
            collection = self.evaluate(body["for_each"])
            if isinstance(collection, dict):
                return [{"each": {"key": k, "value": v}} for k, v in collection.items()]
            if isinstance(collection, list):
                return [{"each": {"key": k, "value": k}} for k in collection]
            raise Unsupported(f"for_each over {collection!r}")
        return [{}]

    def expand(self, rtype: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(name, body, scope) of every instance of a resource type."""
        return [
            (name, body, scope)
            for name, body in self.resources.get(rtype, {}).items()
            for scope in self.instances(body)
        ]

    def resolve_text(self, expression: str, depth: int = 0) -> str:
        """An expression's text with every `local.x` replaced by its definition's text, to see
        which resources an origin's name finally comes from."""
        if depth > 8:
            raise Unsupported(f"locals nested too deep in {expression!r}")

        def local(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.locals:
                raise Unsupported(f"local.{name} is not defined")
            return self.resolve_text(json.dumps(self.locals[name]), depth + 1)

        return re.sub(r"local\.([A-Za-z_][A-Za-z0-9_]*)", local, expression)


# The paths the bill prices: the tracker's endpoint, the realtime card, the tracker script.
PATHS = ("/api/event", "/api/realtime/card", "/js/script.js")


def _closing(text: str, opening: int) -> int:
    """Index of the brace closing the one at `opening`."""
    depth = 0
    for i in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise Unsupported(f"unbalanced braces in {text!r}")


def read(directory: Path = TERRAFORM, paths: tuple[str, ...] = PATHS) -> TerraformFacts:
    config = _Config(directory)
    unknown = sorted(set(config.resources) - FREE - PRICED)
    if unknown:
        raise Unsupported(
            f"resource type(s) {', '.join(unknown)} in {directory}: add a price rule to "
            "bench/terraform_facts.py (FREE if it costs nothing of its own)"
        )
    functions = _functions(config)
    alarms, alarm_metrics = _alarms(config)
    retention, log_price = _log_groups(config)
    facts = TerraformFacts(
        functions=functions,
        log_retention_days=retention,
        log_ingestion_usd_per_gb=log_price,
        alarms=alarms,
        alarm_metrics=alarm_metrics,
        composite_alarms=len(config.expand("aws_cloudwatch_composite_alarm")),
        dashboards=len(config.expand("aws_cloudwatch_dashboard")),
        log_metric_filters=len(config.expand("aws_cloudwatch_log_metric_filter")),
        http_api=any(
            config.evaluate(body.get("protocol_type"), scope) == "HTTP"
            for _, body, scope in config.expand("aws_apigatewayv2_api")
        ),
        rest_api=bool(config.expand("aws_api_gateway_rest_api")),
        function_urls=len(config.expand("aws_lambda_function_url")),
        cloudfront=bool(config.expand("aws_cloudfront_distribution")),
        pitr_tables=_pitr_tables(config),
        fixed=tuple(_fixed_items(config, functions)),
        archive=_archive(config, functions),
        scheduled_runs={**_schedules(config), **_scheduler_runs(config)},
        scheduler_invocations=sum(_scheduler_runs(config).values()),
    )
    routes = {path: _route(config, facts, path) for path in paths}
    return replace(facts, routes=routes)


# ---- the parts ----------------------------------------------------------------------------


def _functions(config: _Config) -> dict[str, FunctionFacts]:
    provisioned: dict[str, int] = {}
    for _, body, scope in config.expand("aws_lambda_provisioned_concurrency_config"):
        target = str(body.get("function_name", ""))
        match = re.search(r"aws_lambda_function\.(\w+)(?:\[(each\.key|\"(\w+)\")\])?", target)
        if not match:
            raise Unsupported(f"provisioned concurrency for {target!r}")
        key = match.group(3) or (scope.get("each", {}).get("key") if match.group(2) else None)
        executions = int(config.evaluate(body["provisioned_concurrent_executions"], scope))
        provisioned[str(key or match.group(1))] = provisioned.get(str(key or match.group(1)), 0)
        provisioned[str(key or match.group(1))] += executions

    found: dict[str, FunctionFacts] = {}
    for name, body, scope in config.expand("aws_lambda_function"):
        key = str(scope["each"]["key"]) if "each" in scope else name
        memory = int(config.evaluate(body.get("memory_size", 128), scope))
        architectures = config.evaluate(body.get("architectures", ["x86_64"]), scope)
        if not isinstance(architectures, list) or len(architectures) != 1:
            raise Unsupported(f"architectures of {key}: {architectures!r}")
        level, log_format, platform = _log_level(config, body, scope, key)
        found[key] = FunctionFacts(
            name=key,
            memory_mb=memory,
            architecture=str(architectures[0]),
            log_level=level,
            platform_lines=platform,
            log_format=log_format,
            provisioned_concurrency=provisioned.get(key, 0),
        )
    if not found:
        raise Unsupported("no aws_lambda_function")
    return found


def _log_level(
    config: _Config, body: dict[str, Any], scope: dict[str, Any], key: str
) -> tuple[str, str, bool]:
    """(application level, log format, platform lines written) of one function."""
    level = "INFO"  # Powertools' default without POWERTOOLS_LOG_LEVEL
    for environment in body.get("environment", []):
        variables = environment.get("variables", {})
        if isinstance(variables, dict):
            if "POWERTOOLS_LOG_LEVEL" in variables:
                level = str(config.evaluate(variables["POWERTOOLS_LOG_LEVEL"], scope))
            continue
        # merge({...literal map...}, each.value.environment): read the one key from the text,
        # then the function's own environment map, which wins as merge's last argument.
        text = str(variables)
        if not text.startswith("${merge("):
            raise Unsupported(f"environment variables of {key}: {text[:80]!r}")
        if m := re.search(r"POWERTOOLS_LOG_LEVEL\s*=\s*([^,}\s]+)", text):
            level = str(config.evaluate("${" + m.group(1) + "}", scope))
        for extra in re.findall(r"(each\.value\.\w+|local\.[\w.]+)\s*\)", text):
            own = config.evaluate("${" + extra + "}", scope)
            if isinstance(own, dict) and "POWERTOOLS_LOG_LEVEL" in own:
                level = str(config.evaluate(own["POWERTOOLS_LOG_LEVEL"], scope))
    level = level.upper()
    if level not in LEVELS:
        raise Unsupported(f"log level {level!r} of {key}")
    log_format, platform = "Text", True
    for logging in body.get("logging_config", []):
        log_format = str(config.evaluate(logging.get("log_format", "Text"), scope))
        if log_format == "JSON":
            # Lambda filters JSON-format logs itself too: the stricter of the two levels holds.
            app = str(config.evaluate(logging.get("application_log_level", "INFO"), scope))
            system = str(config.evaluate(logging.get("system_log_level", "INFO"), scope))
            app = {"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(app.upper(), app.upper())
            if LEVELS.get(app, 0) > LEVELS[level]:
                level = app
            platform = system.upper() in ("DEBUG", "INFO", "TRACE")
    return level, log_format, platform


_RATE_SECONDS = {
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}


def _schedules(config: _Config) -> dict[str, float]:
    """Invocations a month of each function a scheduled rule targets, by the function's key."""
    rules: dict[str, float] = {}
    for name, body, scope in config.expand("aws_cloudwatch_event_rule"):
        expression = str(config.evaluate(body.get("schedule_expression", ""), scope))
        if not expression:
            continue  # an event pattern: priced by what sends the events
        rules[name] = _rate(expression, f"rule {name}")
    runs: dict[str, float] = {}
    for _, body, _ in config.expand("aws_cloudwatch_event_target"):
        rule = re.fullmatch(
            r"\$\{aws_cloudwatch_event_rule\.(\w+)(?:\[0\])?\.name\}", str(body["rule"])
        )
        target = re.fullmatch(r'\$\{aws_lambda_function\.this\["(\w+)"\]\.arn\}', str(body["arn"]))
        if not rule or not target:
            raise Unsupported(f"event target {body.get('rule')!r} -> {body.get('arn')!r}")
        if rule.group(1) in rules:
            runs[target.group(1)] = runs.get(target.group(1), 0.0) + rules[rule.group(1)]
    return runs


def _rate(expression: str, name: str) -> float:
    """Runs a month of a `rate(N unit)` schedule."""
    m = re.fullmatch(r"rate\((\d+) (minutes?|hours?|days?)\)", expression)
    if not m:
        raise Unsupported(f"schedule {expression!r} of {name}")
    return prices.SECONDS_PER_MONTH / (int(m.group(1)) * _RATE_SECONDS[m.group(2)])


def _scheduler_runs(config: _Config) -> dict[str, float]:
    """Invocations a month of each function an EventBridge Scheduler schedule targets."""
    runs: dict[str, float] = {}
    for name, body, scope in config.expand("aws_scheduler_schedule"):
        state = str(config.evaluate(body.get("state", "ENABLED"), scope))
        if state == "DISABLED":
            continue
        expression = str(config.evaluate(body["schedule_expression"], scope))
        targets = body.get("target", [])
        (target,) = targets if isinstance(targets, list) else [targets]
        arn = re.fullmatch(r'\$\{aws_lambda_function\.this\["(\w+)"\]\.arn\}', str(target["arn"]))
        if not arn:
            raise Unsupported(f"scheduler target {target.get('arn')!r} of {name}")
        runs[arn.group(1)] = runs.get(arn.group(1), 0.0) + _rate(expression, name)
    return runs


def _archive(config: _Config, functions: dict[str, FunctionFacts]) -> ArchiveFacts | None:
    if "archive" not in config.resources.get("aws_s3_bucket", {}):
        return None
    tiers = config.evaluate("${local.aggregator_tiers}")
    # The tier that writes hours, days and months archives its batches (decision 0027).
    (tier,) = [t for t in tiers.values() if set(t["granularities"]) - {"m"}]
    schedules = _schedules(config)
    # The compaction function among the scheduled ones (the reports' hourly rule, decision 0038,
    # targets another): the one whose handler is the archive's.
    handlers = config.evaluate("${local.functions}")
    scheduled = [
        name
        for name in schedules
        if name in functions
        and str(config.evaluate(handlers.get(name, {}).get("handler", ""))).startswith("archive.")
    ]
    if len(scheduled) != 1:
        raise Unsupported(f"archive compaction: scheduled functions {scheduled}")
    athena = bool(config.expand("aws_athena_workgroup"))
    return ArchiveFacts(
        batch_window_seconds=float(tier["maximum_batching_window_in_seconds"]),
        batch_size=int(tier["batch_size"]),
        compaction_function=scheduled[0],
        compaction_runs_per_month=schedules[scheduled[0]],
        athena=athena,
    )


def _alarms(config: _Config) -> tuple[int, int]:
    """(alarms, alarm metrics) of every aws_cloudwatch_metric_alarm instance."""
    alarms = metrics = 0
    for name, body, _ in config.expand("aws_cloudwatch_metric_alarm"):
        alarms += 1
        queries = body.get("metric_query", [])
        if "metric_name" in body and not queries:
            metrics += 1
            continue
        if not queries:
            raise Unsupported(f"alarm {name}: neither metric_name nor metric_query")
        queried = sum(1 for q in queries if q.get("metric"))
        bands = sum(1 for q in queries if "ANOMALY_DETECTION_BAND" in str(q.get("expression", "")))
        # An anomaly detection alarm bills as three alarm metrics (the metric and the band).
        metrics += prices.ANOMALY_ALARM_METRICS * bands if bands else queried
    return alarms, metrics


def _log_groups(config: _Config) -> tuple[int, float]:
    retention: set[int] = set()
    classes: set[str] = set()
    for name, body, scope in config.expand("aws_cloudwatch_log_group"):
        days = config.evaluate(body.get("retention_in_days", 0), scope)
        if not isinstance(days, int):
            raise Unsupported(f"retention of log group {name}: {days!r}")
        retention.add(days)
        classes.add(str(config.evaluate(body.get("log_group_class", "STANDARD"), scope)))
    if not retention:
        raise Unsupported("no aws_cloudwatch_log_group: the functions' logs would never expire")
    if 0 in retention:
        raise Unsupported("a log group without retention: its storage grows for ever")
    if classes - {"STANDARD", "INFREQUENT_ACCESS"}:
        raise Unsupported(f"log group class {classes}")
    price = prices.LOGS_INGESTION.usd
    if classes == {"INFREQUENT_ACCESS"}:
        price = prices.LOGS_INGESTION_INFREQUENT.usd
    return max(retention), price


def _pitr_tables(config: _Config) -> tuple[str, ...]:
    found = []
    for name, body, scope in config.expand("aws_dynamodb_table"):
        key = str(scope["each"]["key"]) if "each" in scope else name
        for pitr in body.get("point_in_time_recovery", []):
            if config.evaluate(pitr.get("enabled", False), scope) is True:
                found.append(key)
    return tuple(found)


def _fixed_items(config: _Config, functions: dict[str, FunctionFacts]) -> list[FixedItem]:
    items: list[FixedItem] = []

    def add(rtype: str, price: prices.Price, covers: str) -> None:
        count = len(config.expand(rtype))
        if count:
            items.append(
                FixedItem(f"{rtype} x {count}", count * price.usd, f"{covers}; {price.cite()}")
            )

    add("aws_kms_key", prices.KMS_KEY, "customer-managed KMS keys")
    add("aws_secretsmanager_secret", prices.SECRET, "Secrets Manager secrets")
    add("aws_route53_zone", prices.HOSTED_ZONE, "Route 53 hosted zones")
    advanced = sum(
        1
        for _, body, scope in config.expand("aws_ssm_parameter")
        if config.evaluate(body.get("tier", "Standard"), scope) == "Advanced"
    )
    if advanced:
        items.append(
            FixedItem(
                f"SSM advanced parameters x {advanced}",
                advanced * prices.SSM_ADVANCED_PARAMETER.usd,
                prices.SSM_ADVANCED_PARAMETER.cite(),
            )
        )
    for name, body, scope in config.expand("aws_wafv2_web_acl"):
        rules = len(body.get("rule", []))
        items.append(
            FixedItem(
                f"WAF web ACL {name} ({rules} rules)",
                prices.WAF_WEB_ACL.usd + rules * prices.WAF_RULE.usd,
                f"{prices.WAF_WEB_ACL.cite()}; requests ($0.60/M) not modelled",
            )
        )
        del scope
    for key, function in functions.items():
        if function.provisioned_concurrency:
            price = (
                prices.LAMBDA_PROVISIONED_GB_SECOND_ARM
                if function.architecture == "arm64"
                else prices.LAMBDA_PROVISIONED_GB_SECOND_X86
            )
            gb = function.memory_mb / 1024
            usd = function.provisioned_concurrency * gb * prices.SECONDS_PER_MONTH * price.usd
            items.append(
                FixedItem(
                    f"Lambda provisioned concurrency: {key} x {function.provisioned_concurrency}",
                    usd,
                    f"configured all month, traffic or not; {price.cite()}",
                )
            )
    return items


def _route(config: _Config, facts: TerraformFacts, path: str) -> Route:
    distributions = config.expand("aws_cloudfront_distribution")
    if len(distributions) > 1:
        raise Unsupported("more than one CloudFront distribution")
    if not distributions:
        return Route(path, cloudfront=False, origin=_direct_origin(facts, path))
    _, body, scope = distributions[0]
    if body.get("logging_config"):
        raise Unsupported("CloudFront standard logging (not modelled, and it records IPs)")
    behaviours = [*body.get("ordered_cache_behavior", []), *body["default_cache_behavior"]]
    behaviour = next(
        b
        for b in behaviours
        if "path_pattern" not in b or fnmatch.fnmatchcase(path, str(b["path_pattern"]))
    )
    if behaviour.get("lambda_function_association"):
        raise Unsupported(f"Lambda@Edge on {path} (not modelled)")
    functions = len(behaviour.get("function_association", []))
    origins = {str(o["origin_id"]): o for o in body.get("origin", [])}
    origin_id = str(config.evaluate(behaviour["target_origin_id"], scope))
    if origin_id not in origins:
        raise Unsupported(f"origin {origin_id!r} of the behaviour for {path}")
    origin = _origin_kind(config, str(origins[origin_id]["domain_name"]))
    access = _access_log_bytes(config, path) if origin == "http_api" else 0
    return Route(path, True, origin, functions, access)


def _direct_origin(facts: TerraformFacts, path: str) -> str:
    if facts.http_api:
        return "http_api"
    if facts.rest_api:
        return "rest_api"
    if facts.function_urls:
        return "function_url"
    raise Unsupported(f"nothing serves {path}")


def _origin_kind(config: _Config, domain_expression: str) -> str:
    text = config.resolve_text(domain_expression)
    kinds = {
        "http_api": ("aws_apigatewayv2_",),
        "rest_api": ("aws_api_gateway_",),
        "function_url": ("aws_lambda_function_url", "lambda-url", "function_url"),
        "s3": ("aws_s3_bucket",),
    }
    found = {kind for kind, marks in kinds.items() if any(mark in text for mark in marks)}
    if len(found) != 1:
        raise Unsupported(f"origin domain {domain_expression!r} (resolved: {text[:200]!r})")
    return found.pop()


def _access_log_bytes(config: _Config, path: str) -> int:
    """Bytes of one access log line for a request to `path`, from the stage's format."""
    total = 0
    for name, body, scope in config.expand("aws_apigatewayv2_stage"):
        for settings in body.get("access_log_settings", []):
            fmt = str(settings.get("format", ""))
            total += len(_render_access_format(fmt, path, f"stage {name}").encode())
        del scope
    return total


def _render_access_format(fmt: str, path: str, where: str) -> str:
    if m := re.fullmatch(r"\$\{jsonencode\(\{(.*)\}\)\}", fmt, re.S):
        pairs = re.findall(r'(\w+)\s*=\s*"([^"]*)"', m.group(1))
        if not pairs or len(pairs) != m.group(1).count("="):
            raise Unsupported(f"access log format of {where}: {fmt[:120]!r}")
        # Terraform's jsonencode: keys sorted, no spaces.
        template = json.dumps(dict(sorted(pairs)), separators=(",", ":"))
    elif "${" not in fmt:
        template = fmt
    else:
        raise Unsupported(f"access log format of {where}: {fmt[:120]!r}")
    route = "ANY " + path

    def sample(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "routeKey":
            return route
        if name not in _CONTEXT_SAMPLES:
            raise Unsupported(f"access log variable $context.{name} in {where}")
        return _CONTEXT_SAMPLES[name]

    return re.sub(r"\$context\.([A-Za-z.]+[A-Za-z])", sample, template)
