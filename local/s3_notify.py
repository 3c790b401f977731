"""S3 event notifications to a Lambda function, emulated on moto (decision 0039): the archive
bucket notifies the archive function of each import request stored under imports/
(terraform/archive.tf `aws_s3_bucket_notification.archive`).

moto matches a notification's prefix and suffix and builds S3's event (`{"Records": [...]}`) as
S3 does, but can deliver it only to SQS (its Lambda needs Docker). So the bucket's notification
goes to a queue of the emulator's own, and each event is handed to the function as S3 does:
an asynchronous invocation, retried, then sent to the on-failure destination
(local/async_invoke.py). The queue is transport only; AWS has none.
"""

from __future__ import annotations

import json
from typing import Any

from core.observability import logger
from local.async_invoke import invoke_async
from local.background import Loop
from local.runtime import LocalFunction

log = logger("local-s3-notify")

# As terraform/archive.tf's filter (tests/infra checks the two agree).
PREFIX = "imports/"
SUFFIX = "/request.json"


class S3Notifications(Loop):
    thread_name = "s3-notify"
    failure = "S3 notification delivery failed"  # as S3's delivery, it goes on

    def __init__(
        self,
        s3: Any,
        sqs: Any,
        bucket: str,
        queue_name: str,
        function: LocalFunction,
        on_failure: Any,
    ) -> None:
        self._sqs, self._function, self._on_failure = sqs, function, on_failure
        self.url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": "import-requests",
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": PREFIX},
                                    {"Name": "suffix", "Value": SUFFIX},
                                ]
                            }
                        },
                    }
                ]
            },
        )
        super().__init__(log)
        self.delivered = 0

    def deliver(self, wait_seconds: int = 0) -> int:
        """Invoke the function once per notification waiting; how many were delivered."""
        count = 0
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            if not messages:
                return count
            for message in messages:
                event = json.loads(message["Body"])
                if "Records" in event:  # not S3's s3:TestEvent, sent when it is configured
                    invoke_async(self._function, event, self._on_failure)
                    count += 1
                    self.delivered += 1
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            wait_seconds = 0

    def step(self) -> None:
        self.deliver(wait_seconds=1)
