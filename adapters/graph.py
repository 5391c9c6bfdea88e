"""The WhatsApp Cloud API (Graph API) client: send a message and classify the response.

Errors are classified by the Graph error `code` first and the HTTP status second,
because the Graph API reports most errors, throttling included, as HTTP 400 with
the code in the body (`{"error": {"code": 130429, ...}}`).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
import segno

__all__ = [
    "DEFAULT_API_URL",
    "GraphClient",
    "MediaDownload",
    "SendOutcome",
    "SendResult",
    "classify_error",
    "qr_png",
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
    """The deliverer's next step after one send attempt."""

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


def qr_png(text: str) -> bytes:
    """Render `text` as a QR code PNG, large enough to scan from a phone screen.

    `segno.make` picks a Micro QR code for short texts, which phone cameras and most
    door scanners do not read, so a full QR code is asked for explicitly, with the
    four-module quiet zone the QR standard requires.
    """
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=10, border=4)
    return buffer.getvalue()


@dataclass(frozen=True)
class MediaDownload:
    """A customer's photo or document fetched from the Graph API, or why it could not be."""

    content: bytes | None = None
    mime_type: str | None = None
    sha256: str | None = None
    error: SendResult | None = None


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


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify_error(status: int, body: Any, retry_after: float | None = None) -> SendResult:
    """Classify a non-2xx Graph API response into the deliverer's next step."""
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
        """Send one message from the business number `phone_number_id` to `to`.

        An image with a `_qr` text is rendered and uploaded first. When the upload fails
        for good, the message's `_fallback` text is sent instead, so the customer still
        gets the code.
        """
        if not phone_number_id:
            return SendResult(SendOutcome.FAILED, detail="no business phone number id to send from")
        fallback = payload.get("_fallback")
        payload = {key: value for key, value in payload.items() if not key.startswith("_")}
        image = payload.get("image")
        if isinstance(image, dict) and "_qr" in image:
            uploaded = await self.upload(
                phone_number_id, qr_png(str(image["_qr"])), "image/png", "ticket.png"
            )
            if uploaded.outcome is SendOutcome.ACCEPTED:
                image = {key: value for key, value in image.items() if key != "_qr"}
                payload = {**payload, "image": {**image, "id": uploaded.message_id}}
            elif uploaded.outcome is SendOutcome.FAILED and fallback:
                logger.warning(
                    "QR upload failed (code %s: %s); sending the text instead",
                    uploaded.error_code,
                    uploaded.detail,
                )
                payload = {"type": "text", "text": {"body": str(fallback), "preview_url": False}}
            else:
                return uploaded
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            **payload,
        }
        return await self._post(f"{self.base_url}/{phone_number_id}/messages", json=body)

    async def upload(
        self, phone_number_id: str, content: bytes, mime_type: str, filename: str
    ) -> SendResult:
        """Upload media; an accepted result carries the media id in `message_id`."""
        files = {"file": (filename, content, mime_type)}
        data = {"messaging_product": "whatsapp", "type": mime_type}
        return await self._post(
            f"{self.base_url}/{phone_number_id}/media", data=data, files=files, key="id"
        )

    async def download(self, media_id: str) -> MediaDownload:
        """Fetch a customer's media: its URL from the Graph API, then the bytes (both need the token).

        The URL expires a few minutes after the message arrives, so call this right away.
        """
        try:
            response = await self.http.get(f"{self.base_url}/{media_id}", headers=self._headers)
            meta = _json(response)
            if not response.is_success:
                return MediaDownload(
                    error=classify_error(response.status_code, meta, _retry_after(response))
                )
            url = meta.get("url") if isinstance(meta, dict) else None
            if not isinstance(url, str):
                return MediaDownload(
                    error=SendResult(SendOutcome.FAILED, detail="media answer has no url")
                )
            content_response = await self.http.get(url, headers=self._headers)
        except httpx.TimeoutException as error:
            return MediaDownload(
                error=SendResult(SendOutcome.RETRY, detail=f"timed out ({type(error).__name__})")
            )
        except httpx.TransportError as error:
            return MediaDownload(
                error=SendResult(
                    SendOutcome.RETRY, detail=f"network error ({type(error).__name__})"
                )
            )
        if not content_response.is_success:
            status = content_response.status_code
            return MediaDownload(
                error=classify_error(
                    status, _json(content_response), _retry_after(content_response)
                )
            )
        content = content_response.content
        mime_type = meta.get("mime_type")
        return MediaDownload(
            content,
            mime_type if isinstance(mime_type, str) else None,
            hashlib.sha256(content).hexdigest(),
        )

    async def _post(self, url: str, *, key: str = "messages", **request: Any) -> SendResult:
        """POST to the Graph API; `key` names where the new id is: "messages" or "id"."""
        try:
            response = await self.http.post(url, headers=self._headers, **request)
        except httpx.TimeoutException as error:
            return SendResult(SendOutcome.RETRY, detail=f"timed out ({type(error).__name__})")
        except httpx.TransportError as error:
            return SendResult(
                SendOutcome.RETRY, detail=f"network error ({type(error).__name__}: {error})"
            )
        if key != "id":
            return self._result(response)
        body = _json(response)
        if response.is_success and isinstance(body, dict) and body.get("id"):
            return SendResult(SendOutcome.ACCEPTED, message_id=str(body["id"]))
        if response.is_success:
            return SendResult(
                SendOutcome.FAILED, detail=f"HTTP {response.status_code} without a media id"
            )
        return classify_error(response.status_code, body, _retry_after(response))

    def _result(self, response: httpx.Response) -> SendResult:
        body = _json(response)
        if response.is_success:
            messages = body.get("messages") if isinstance(body, dict) else None
            if (
                isinstance(messages, list)
                and messages
                and isinstance(messages[0], dict)
                and messages[0].get("id")
            ):
                return SendResult(SendOutcome.ACCEPTED, message_id=str(messages[0]["id"]))
            # Whether the message was accepted is unknown, so retrying could send it twice.
            return SendResult(
                SendOutcome.FAILED, detail=f"HTTP {response.status_code} without a message id"
            )
        return classify_error(response.status_code, body, _retry_after(response))
