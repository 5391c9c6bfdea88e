"""The WhatsApp Cloud API (Graph API) client: send a message and classify the answer.

Errors are classified by the Graph error `code` first and the HTTP status second,
because the Graph API reports most errors, throttling included, as HTTP 400 with
the code in the body (`{"error": {"code": 130429, ...}}`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

__all__ = [
    "DEFAULT_API_URL",
    "GraphClient",
    "SendOutcome",
    "SendResult",
    "classify_error",
]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://graph.facebook.com/v23.0"

# Authentication failed: 190 is an expired or revoked access token, 0 any other
# authentication error. Nothing can be sent until the token is replaced.
AUTH_CODES = frozenset({0, 190})
# The business number sent too many messages to one customer (pair rate limit):
# wait before writing to that customer again, and only that customer.
RECIPIENT_LIMIT_CODES = frozenset({131056})
# Temporary: unknown or unavailable service (1, 2, 131016, 133004), app or account
# throttling (4, 80007, 130429), spam rate limit (131048), "something went wrong"
# (131000) and maintenance (131057).
RETRYABLE_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131048, 131057, 133004})


class SendOutcome(Enum):
    """What the deliverer should do after one send attempt."""

    # The Graph API accepted the message and returned its id.
    ACCEPTED = "accepted"
    # A temporary failure: try the same message again later.
    RETRY = "retry"
    # The pair rate limit: hold every message to this recipient for a while.
    RETRY_RECIPIENT = "retry_recipient"
    # The access token is invalid: hold all sending until a send succeeds.
    PAUSE_ALL = "pause_all"
    # A permanent failure: record the reason and never retry.
    FAILED = "failed"


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    message_id: str | None = None
    error_code: int | None = None
    detail: str = ""
    # Seconds from a Retry-After header, when the server sent one.
    retry_after: float | None = None


def _error_fields(body: Any) -> tuple[int | None, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    message = details or error.get("message") or ""
    return (code if isinstance(code, int) else None), str(message)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify_error(status: int, body: Any, retry_after: float | None = None) -> SendResult:
    """Classify a non-2xx Graph API answer into what the deliverer should do."""
    code, detail = _error_fields(body)
    detail = detail or f"HTTP {status}"
    if code in AUTH_CODES or (code is None and status == 401):
        return SendResult(
            SendOutcome.PAUSE_ALL, error_code=code, detail=detail, retry_after=retry_after
        )
    if code in RECIPIENT_LIMIT_CODES:
        return SendResult(
            SendOutcome.RETRY_RECIPIENT, error_code=code, detail=detail, retry_after=retry_after
        )
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return SendResult(
            SendOutcome.RETRY, error_code=code, detail=detail, retry_after=retry_after
        )
    return SendResult(SendOutcome.FAILED, error_code=code, detail=detail)


class GraphClient:
    """Sends messages through one shared `httpx.AsyncClient`, so connections are kept alive."""

    def __init__(self, base_url: str, access_token: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self.http = http

    async def send(self, phone_number_id: str, to: str, payload: dict[str, Any]) -> SendResult:
        """Send one message from the business number `phone_number_id` to `to`."""
        if not phone_number_id:
            return SendResult(SendOutcome.FAILED, detail="no business phone number id to send from")
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            **payload,
        }
        url = f"{self.base_url}/{phone_number_id}/messages"
        try:
            response = await self.http.post(url, json=body, headers=self._headers)
        except httpx.TimeoutException as error:
            return SendResult(SendOutcome.RETRY, detail=f"timed out ({type(error).__name__})")
        except httpx.TransportError as error:
            return SendResult(
                SendOutcome.RETRY, detail=f"network error ({type(error).__name__}: {error})"
            )
        return self._result(response)

    def _result(self, response: httpx.Response) -> SendResult:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.is_success:
            messages = body.get("messages") if isinstance(body, dict) else None
            if (
                isinstance(messages, list)
                and messages
                and isinstance(messages[0], dict)
                and messages[0].get("id")
            ):
                return SendResult(SendOutcome.ACCEPTED, message_id=str(messages[0]["id"]))
            # Accepted or not, nobody can tell: retrying could send the message twice.
            return SendResult(
                SendOutcome.FAILED, detail=f"HTTP {response.status_code} without a message id"
            )
        return classify_error(response.status_code, body, _retry_after(response))
