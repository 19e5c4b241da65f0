"""Amazon SES (API v2) with boto3: ``send_email`` with the raw MIME bytes the composer made.

Credentials come from boto3's usual chain (environment, shared files, an instance role);
``SES_ENDPOINT_URL`` points it elsewhere (tests use moto's server). boto3's own retries
are off: what a failure means (slow down, the recipient's problem, our credentials) is
decided here, once, like for every other transport.

SES has no idempotency key: an answer lost after SES accepted a message cannot be told
from a failed send, so it is the recipient's transient failure and a retry may repeat it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)

from dashboard.dispatch.transports import (
    Payload,
    Refused,
    SendResult,
    SlowDown,
    Transport,
    TransportSpec,
    Unreachable,
)

THROTTLED = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})
#: Errors that stop every send until someone fixes the account or the configuration.
ACCOUNT = frozenset(
    {
        "AccessDeniedException",
        "AccountSuspendedException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "MailFromDomainNotVerifiedException",
        "SendingPausedException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
#: boto3 sessions are not thread-safe to create clients from; clients are.
_client_lock = threading.Lock()


@dataclass(frozen=True)
class SESSettings:
    region: str
    endpoint_url: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SESSettings:
        return cls(
            region=config["SES_REGION"],
            endpoint_url=config.get("SES_ENDPOINT_URL") or None,
            timeout=float(config.get("MAIL_TIMEOUT_SECONDS", 30.0)),
        )


def ses_spec(config: dict[str, Any]) -> TransportSpec:
    settings = SESSettings.from_config(config)
    return TransportSpec("ses", lambda: SESTransport(settings))


class SESTransport(Transport):
    def __init__(self, settings: SESSettings):
        self.settings = settings
        self.client: Any = None

    def open(self) -> None:
        if self.client is None:
            settings = self.settings
            config = Config(
                connect_timeout=min(settings.timeout, 10.0),
                read_timeout=settings.timeout,
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            with _client_lock:
                self.client = boto3.session.Session().client(
                    "sesv2",
                    region_name=settings.region,
                    endpoint_url=settings.endpoint_url,
                    config=config,
                )

    def send(self, payload: Payload) -> SendResult:
        self.open()
        try:
            answer = self.client.send_email(
                FromEmailAddress=payload.sender,
                Destination={"ToAddresses": [payload.recipient]},
                Content={"Raw": {"Data": payload.data}},
            )
        except ClientError as error:
            return classify_error(error)
        except NoCredentialsError as error:
            raise Refused(f"SES: {error}", setting="AWS credentials") from error
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            raise Unreachable(f"cannot reach SES: {error}") from error
        except BotoCoreError as error:  # read timeout, connection closed mid-answer
            return SendResult.transient(f"SES: {type(error).__name__}: {error}")
        return SendResult.sent(answer.get("MessageId"))


def classify_error(error: ClientError) -> SendResult:
    """An error answer of SES; raises for what is nobody's fault (``Unreachable`` family)."""
    details = error.response.get("Error", {})
    code = str(details.get("Code") or "")
    message = str(details.get("Message") or error)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{status} {code}: {message}"
    if code in THROTTLED or status == 429:
        raise SlowDown(text, quota="quota" in message.lower())
    if code == "LimitExceededException":
        raise SlowDown(text, quota=True)
    if code in ACCOUNT or status in (401, 403) or _sender_not_verified(code, message):
        raise Refused(text, setting="MAIL_DEFAULT_SENDER and the AWS account")
    if status >= 500:
        return SendResult.transient(text)
    return SendResult.permanent(text)


def _sender_not_verified(code: str, message: str) -> bool:
    """SES refuses every message from an identity it has not verified: a setting, not a
    recipient's problem."""
    lowered = message.lower()
    return code == "MessageRejected" and ("not verified" in lowered or "authority" in lowered)
