"""Lambda's asynchronous invocation, emulated for the functions a schedule invokes (the archive's
compaction): a run that raises is retried, then its failure record goes to the on-failure
destination, shaped as Lambda writes it (terraform/archive.tf sends it to the dead-letter queue,
where `liveinsight dlq replay` runs it again).

Lambda waits a minute before the first retry and two before the second; here they follow at
once (a run is idempotent, and the housekeeping thread should not sleep for minutes).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from core.observability import logger
from local.runtime import LocalFunction

log = logger("local-async")

# terraform/archive.tf aws_lambda_function_event_invoke_config.archive (tests/infra checks).
MAXIMUM_RETRY_ATTEMPTS = 2
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:000000000000:function"


def function_arn(function: LocalFunction) -> str:
    """The ARN a failure record names: unqualified invocations run $LATEST."""
    return f"{ACCOUNT_ARN}:{function.name}:{function.qualifier or '$LATEST'}"


def failure_record(
    function: LocalFunction, event: dict[str, Any], error: Exception, attempts: int
) -> dict[str, Any]:
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn(function),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": str(error)[:1000], "errorType": type(error).__name__},
    }


def invoke_async(
    function: LocalFunction,
    event: dict[str, Any],
    on_failure: Callable[[dict[str, Any]], None],
    retries: int = MAXIMUM_RETRY_ATTEMPTS,
) -> Any:
    """Invoke; on an error retry up to `retries` times, then hand the failure record to
    `on_failure` and return None."""
    failure: Exception = RuntimeError("not invoked")
    for attempt in range(1, retries + 2):
        try:
            return function.invoke(event)
        except Exception as error:
            failure = error
            log.warning(
                "asynchronous invocation failed",
                extra={"function": function.name, "attempt": attempt, "error": repr(error)[:300]},
            )
    record = failure_record(function, event, failure, retries + 1)
    on_failure(record)
    log.error(
        "asynchronous invocation sent to its on-failure destination",
        extra={"function": function.name, "request_id": record["requestContext"]["requestId"]},
    )
    return None


def sqs_destination(sqs: Any, queue_url: str) -> Callable[[dict[str, Any]], None]:
    """An on-failure destination that is an SQS queue, as terraform/archive.tf's."""

    def send(record: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record, default=str))

    return send
