"""us-east-1 list prices for every line item of the bill (bench/bill.py), each with its source.

Every figure: list price as of 2026-12, read from the page named beside it (pay-as-you-go, the
first volume tier; a bill past a tier's end is slightly lower than modelled). Free tiers are the
always-free offers, per account and shared with whatever else runs there; bench/bill.py shows
totals with and without them.
"""

from __future__ import annotations

from dataclasses import dataclass

AS_OF = "2026-12"


@dataclass(frozen=True)
class Price:
    usd: float  # per `unit`
    unit: str
    source: str  # the page the figure was read from

    def cite(self) -> str:
        return f"list price as of {AS_OF}, from {self.source}"


DYNAMODB = "https://aws.amazon.com/dynamodb/pricing/on-demand/"
LAMBDA = "https://aws.amazon.com/lambda/pricing/"
API_GATEWAY = "https://aws.amazon.com/api-gateway/pricing/"
CLOUDFRONT = "https://aws.amazon.com/cloudfront/pricing/"
CLOUDWATCH = "https://aws.amazon.com/cloudwatch/pricing/"
S3 = "https://aws.amazon.com/s3/pricing/"
SQS = "https://aws.amazon.com/sqs/pricing/"
SES = "https://aws.amazon.com/ses/pricing/"
KMS = "https://aws.amazon.com/kms/pricing/"
WAF = "https://aws.amazon.com/waf/pricing/"
SECRETS_MANAGER = "https://aws.amazon.com/secrets-manager/pricing/"
SSM = "https://aws.amazon.com/systems-manager/pricing/"
ROUTE53 = "https://aws.amazon.com/route53/pricing/"
EVENTBRIDGE = "https://aws.amazon.com/eventbridge/pricing/"
ATHENA = "https://aws.amazon.com/athena/pricing/"
GLUE = "https://aws.amazon.com/glue/pricing/"

# DynamoDB on-demand (AWS halved these in November 2024). A failed conditional write is billed
# like a successful one. Streams: GetRecords by a Lambda trigger is free.
WRITE_REQUEST_UNIT = Price(0.625 / 1e6, "write request unit", DYNAMODB)
READ_REQUEST_UNIT = Price(0.125 / 1e6, "read request unit", DYNAMODB)
DYNAMODB_STORAGE = Price(0.25, "GB-month", DYNAMODB)
DYNAMODB_PITR = Price(0.20, "GB-month of continuous backup", DYNAMODB)
STREAMS_LAMBDA_READS = Price(0.0, "GetRecords by a Lambda trigger", DYNAMODB)
DYNAMODB_FREE_STORAGE_GB = 25.0

# Lambda (arm64, the first tier). Free: 1 M requests and 400,000 GB-s a month.
LAMBDA_GB_SECOND_ARM = Price(0.0000133334, "GB-second (arm64)", LAMBDA)
LAMBDA_GB_SECOND_X86 = Price(0.0000166667, "GB-second (x86_64)", LAMBDA)
LAMBDA_REQUEST = Price(0.20 / 1e6, "request", LAMBDA)
# Provisioned concurrency bills every second it is configured, traffic or not.
LAMBDA_PROVISIONED_GB_SECOND_ARM = Price(0.0000033334, "GB-second provisioned (arm64)", LAMBDA)
LAMBDA_PROVISIONED_GB_SECOND_X86 = Price(0.0000041667, "GB-second provisioned (x86_64)", LAMBDA)
LAMBDA_FREE_REQUESTS = 1_000_000
LAMBDA_FREE_GB_SECONDS = 400_000.0
# A function gets one full vCPU at 1,769 MB and a proportional share below (Lambda's docs).
LAMBDA_FULL_CORE_MB = 1769

# Fronts. A function URL has no charge of its own (only the function's requests and time).
HTTP_API_REQUEST = Price(1.00 / 1e6, "HTTP API request", API_GATEWAY)
REST_API_REQUEST = Price(3.50 / 1e6, "REST API request", API_GATEWAY)
FUNCTION_URL_REQUEST = Price(0.0, "function URL request", LAMBDA)

# CloudFront (United States, Mexico & Canada). Free: 1 TB out and 10 M requests a month
# (always free since 2021). Request bodies sent on to the origin are billed as data out to origin.
CLOUDFRONT_REQUEST = Price(0.0100 / 10_000, "HTTPS request", CLOUDFRONT)
CLOUDFRONT_DATA_OUT = Price(0.085, "GB out to viewers (first 10 TB)", CLOUDFRONT)
CLOUDFRONT_DATA_TO_ORIGIN = Price(0.020, "GB out to the origin", CLOUDFRONT)
CLOUDFRONT_FUNCTION = Price(0.10 / 1e6, "CloudFront Functions invocation", CLOUDFRONT)
CLOUDFRONT_FREE_REQUESTS = 10_000_000
CLOUDFRONT_FREE_GB = 1024.0

# CloudWatch. A log event is billed at its message's bytes plus 26; storage is the compressed
# size. Free: 5 GB of logs (ingestion, storage and Insights scans together), 10 custom metrics,
# 10 alarm metrics, 3 dashboards of up to 50 metrics. A custom metric is prorated by the hours
# it is published in; an alarm bills per metric it evaluates (an anomaly band: 3).
LOGS_INGESTION = Price(0.50, "GB ingested", CLOUDWATCH)
LOGS_INGESTION_INFREQUENT = Price(0.25, "GB ingested (Infrequent Access class)", CLOUDWATCH)
LOGS_STORAGE = Price(0.03, "GB-month stored (compressed)", CLOUDWATCH)
LOG_EVENT_OVERHEAD_BYTES = 26
CUSTOM_METRIC = Price(0.30, "metric-month", CLOUDWATCH)
ALARM_METRIC = Price(0.10, "standard-resolution alarm metric-month", CLOUDWATCH)
ANOMALY_ALARM_METRICS = 3
COMPOSITE_ALARM = Price(0.50, "composite alarm-month", CLOUDWATCH)
DASHBOARD = Price(3.00, "dashboard-month", CLOUDWATCH)
LOGS_FREE_GB = 5.0
FREE_CUSTOM_METRICS = 10
FREE_ALARM_METRICS = 10
FREE_DASHBOARDS = 3

# S3 Standard, SQS standard queues, SES outbound mail.
S3_PUT = Price(0.005 / 1000, "PUT request", S3)
S3_GET = Price(0.0004 / 1000, "GET request", S3)
S3_STORAGE = Price(0.023, "GB-month", S3)
# LIST requests are billed as PUT, COPY, POST, LIST requests; DELETE is free.
S3_LIST = Price(0.005 / 1000, "LIST request", S3)
S3_DELETE = Price(0.0, "DELETE request", S3)

# The archive's schedule and its optional distributed engine (issue 18, decision 0030). A
# scheduled rule's events are AWS service events: free (EventBridge Scheduler would be $1.00 per
# million after 14 M free a month). Athena bills the bytes its queries scan, at least 10 MB a
# query; the Glue Data Catalog's first million objects and requests a month are free.
EVENTBRIDGE_SCHEDULED_EVENT = Price(0.0, "scheduled rule event", EVENTBRIDGE)
EVENTBRIDGE_SCHEDULER_INVOCATION = Price(1.00 / 1e6, "Scheduler invocation", EVENTBRIDGE)
EVENTBRIDGE_SCHEDULER_FREE = 14_000_000  # invocations a month, always free
ATHENA_SCANNED = Price(5.00, "TB scanned (SQL queries, 10 MB minimum a query)", ATHENA)
ATHENA_MIN_BYTES = 10 * 1024 * 1024
GLUE_CATALOG_OBJECT = Price(1.00 / 100_000, "catalog object-month past the first million", GLUE)
SQS_REQUEST = Price(0.40 / 1e6, "request", SQS)
SES_EMAIL = Price(0.10 / 1000, "email", SES)

# Fixed monthly items Terraform could add (terraform_facts reads them).
KMS_KEY = Price(1.00, "customer-managed key-month", KMS)
WAF_WEB_ACL = Price(5.00, "web ACL-month", WAF)
WAF_RULE = Price(1.00, "rule-month", WAF)
SECRET = Price(0.40, "secret-month", SECRETS_MANAGER)
SSM_ADVANCED_PARAMETER = Price(0.05, "advanced parameter-month", SSM)
HOSTED_ZONE = Price(0.50, "hosted zone-month", ROUTE53)

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24

# ---- the peers, as anchors -----------------------------------------------------------------

# serverless-website-analytics' own "worst case projected costs" (USD a month, by pageviews a
# month), from its README.
PEER_SWA_SOURCE = (
    "https://github.com/rehanvdm/serverless-website-analytics#worst-case-projected-costs"
)
PEER_SWA_MONTHLY = {
    10_000: 2.01,
    100_000: 3.24,
    1_000_000: 14.64,
    10_000_000: 128.74,
    100_000_000: 1288.39,
}

# Plausible Cloud, Growth plan billed monthly (USD a month, up to that many pageviews a month).
# Past 10 M a month Plausible quotes a custom (enterprise) price: no published figure.
PLAUSIBLE_SOURCE = "https://plausible.io/#pricing"
PLAUSIBLE_MONTHLY = {
    10_000: 9,
    100_000: 19,
    200_000: 29,
    500_000: 49,
    1_000_000: 69,
    2_000_000: 89,
    5_000_000: 129,
    10_000_000: 169,
}


def plausible_monthly(pageviews: int) -> float | None:
    """Plausible's monthly price for a volume, None past its largest published plan."""
    for limit, usd in sorted(PLAUSIBLE_MONTHLY.items()):
        if pageviews <= limit:
            return float(usd)
    return None


def peer_anchor(pageviews: int) -> str:
    """The peers' published monthly figures for a volume, as a table's anchor text."""
    parts = []
    if pageviews in PEER_SWA_MONTHLY:
        parts.append(f"serverless-website-analytics worst case ${PEER_SWA_MONTHLY[pageviews]:,.2f}")
    plausible = plausible_monthly(pageviews)
    parts.append(
        f"Plausible Cloud ${plausible:,.0f}" if plausible is not None else "Plausible: custom price"
    )
    return "; ".join(parts)


# Per million pageviews: serverless-website-analytics' worst case at 1 M a month.
PEER_SWA_PER_MILLION = PEER_SWA_MONTHLY[1_000_000]


def per_million(
    pageviews: int,
    *,
    write_units: float,
    read_units: float,
    lambda_seconds: float,
    invocations: int,
    api_requests: int,
    memory_mb: int = 256,
) -> tuple[float, float, float]:
    """(DynamoDB, Lambda, HTTP API) dollars per million pageviews: the narrow figure some
    bench rows (bench/aggregation.py) still give for a tier's own units. The full bill is
    bench/bill.py's."""
    scale = 1e6 / pageviews
    dynamo = (write_units * WRITE_REQUEST_UNIT.usd + read_units * READ_REQUEST_UNIT.usd) * scale
    lam = (
        lambda_seconds * memory_mb / 1024 * LAMBDA_GB_SECOND_ARM.usd
        + invocations * LAMBDA_REQUEST.usd
    ) * scale
    return dynamo, lam, api_requests * HTTP_API_REQUEST.usd * scale
