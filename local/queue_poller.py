"""The Lambda event source mapping for an SQS queue, emulated on moto's SQS (decision 0036).

As Lambda's: long polls, up to `batch_size` messages a batch, records shaped as Lambda passes them
(`messageId`, `receiptHandle`, `body`, `attributes` with `ApproximateReceiveCount`,
`eventSourceARN`); with ReportBatchItemFailures the messages not named in `batchItemFailures`
are deleted, the named ones stay and come back when their visibility ends; a function error
leaves the whole batch. The queue's redrive policy (maxReceiveCount) moves a message that keeps
failing to its dead-letter queue: moto applies it on receive, as SQS does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.observability import logger
from local.background import Loop

log = logger("local-sqs-esm")

Invoke = Callable[[dict[str, Any]], Any]


def to_lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


class QueuePoller(Loop):
    thread_name = "sqs-esm"
    failure = "queue poll failed"  # the mapping keeps polling, as Lambda's does

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        invoke: Invoke,
        batch_size: int = 10,
        wait_seconds: int = 1,
    ) -> None:
        self._sqs, self._url, self._invoke = sqs, queue_url, invoke
        self._batch_size, self._wait = batch_size, wait_seconds
        self._arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        super().__init__(log)
        self.invocations = 0
        self.deleted = 0

    def step(self) -> None:
        self.poll_once()

    def poll_once(self, wait_seconds: int | None = None) -> int:
        """One receive and its invocation; how many messages it received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait if wait_seconds is None else wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        records = [to_lambda_record(m, self._arn) for m in messages]
        self.invocations += 1
        try:
            response = self._invoke({"Records": records})
        except Exception:
            log.exception("function error: the batch stays on the queue")
            return len(messages)
        failed = {
            f.get("itemIdentifier")
            for f in (response or {}).get("batchItemFailures", [])
            if isinstance(f, dict)
        }
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)
                ],
            )
            self.deleted += len(done)
        return len(messages)


def create_alert_queues(sqs: Any, prefix: str) -> tuple[str, str]:
    """The alerts queue and its dead-letter queue, with core/schema.json's settings (Terraform's
    alerts.tf reads the same block): (queue URL, dead-letter queue URL)."""
    import json

    from core.schema import SCHEMA_PATH

    settings = json.loads(SCHEMA_PATH.read_text())["alert_queue"]
    dlq_url: str = sqs.create_queue(QueueName=f"{prefix}-alerts-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings["max_receive_count"]}
    queue_url: str = sqs.create_queue(
        QueueName=f"{prefix}-alerts",
        Attributes={
            "VisibilityTimeout": str(settings["visibility_timeout_seconds"]),
            "MessageRetentionPeriod": str(settings["message_retention_seconds"]),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def alert_batch_size() -> int:
    import json

    from core.schema import SCHEMA_PATH

    return int(json.loads(SCHEMA_PATH.read_text())["alert_queue"]["batch_size"])
