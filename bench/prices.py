"""us-east-1 list prices (DESIGN.md), for every cost row of `make bench`."""

WRITE_UNIT = 0.625 / 1e6
READ_UNIT = 0.125 / 1e6
LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
LAMBDA_MEMORY_GB = 256 / 1024  # Terraform's memory size for each function
PEER_COST_PER_MILLION = 10.18  # serverless-website-analytics' published estimate


def per_million(
    pageviews: int,
    *,
    write_units: float,
    read_units: float,
    lambda_seconds: float,
    invocations: int,
    api_requests: int,
) -> tuple[float, float, float]:
    """(DynamoDB, Lambda, HTTP API) dollars per million pageviews, from what a run used."""
    scale = 1e6 / pageviews
    dynamo = (write_units * WRITE_UNIT + read_units * READ_UNIT) * scale
    lam = (
        lambda_seconds * LAMBDA_MEMORY_GB * LAMBDA_GB_SECOND + invocations * LAMBDA_REQUEST
    ) * scale
    return dynamo, lam, api_requests * HTTP_API_REQUEST * scale
