"""us-east-1 list prices (DESIGN.md), for every cost row of `make bench`."""

WRITE_UNIT = 0.625 / 1e6
READ_UNIT = 0.125 / 1e6
LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
LAMBDA_MEMORY_GB = 256 / 1024  # Terraform's memory size for each function
PEER_COST_PER_MILLION = 10.18  # serverless-website-analytics' published estimate
