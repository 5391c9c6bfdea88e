"""A fake WhatsApp Cloud API for tests and demos: records what it receives, fails on demand.

It responds to `POST /{version}/{phone_number_id}/messages` as the Graph API does (and
the media routes: upload, metadata and download): a message id on success, and on failure the Graph error body
`{"error": {"message", "type", "code", "error_data", "fbtrace_id"}}` with the
HTTP status the Graph API uses for that code. It checks the bearer token (190 when
wrong) and the basic shape of the message (100 when invalid), and can enforce the
pair rate limit (131056) and the business number's throughput (130429).

Use it in process through `httpx.MockTransport(fake.handler)`, or serve `fake.app`
on a loopback port (`python -m adapters.fake_graph --port 9000`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.conversation import mask_phone

__all__ = ["FakeGraphAPI", "GraphError", "ReceivedMessage"]

logger = logging.getLogger(__name__)

# HTTP status of the Graph API's response for each error code used here.
_STATUS_FOR_CODE = {
    0: 401,
    1: 400,
    2: 503,
    4: 400,
    100: 400,
    190: 401,
    130429: 400,
    131000: 500,
    131016: 500,
    131026: 400,
    131047: 400,
    131048: 400,
    131051: 400,
    131056: 400,
    133004: 503,
}
_MESSAGE_FOR_CODE = {
    0: "(#0) AuthException",
    1: "(#1) An unknown error occurred",
    2: "(#2) Service temporarily unavailable",
    4: "(#4) Application request limit reached",
    100: "(#100) Invalid parameter",
    190: "Error validating access token: Session has expired.",
    130429: "(#130429) Rate limit hit",
    131000: "(#131000) Something went wrong",
    131016: "(#131016) Service unavailable",
    131026: "(#131026) Message undeliverable",
    131047: "(#131047) Re-engagement message",
    131048: "(#131048) Spam rate limit hit",
    131051: "(#131051) Unsupported message type",
    131056: "(#131056) (Business Account, Consumer Account) pair rate limit hit",
    133004: "(#133004) Server temporarily unavailable",
}
_MESSAGE_TYPES = frozenset(
    {
        "text",
        "image",
        "audio",
        "document",
        "video",
        "sticker",
        "interactive",
        "template",
        "location",
        "reaction",
        "contacts",
    }
)


@dataclass(frozen=True)
class GraphError:
    """A failure to respond with: a Graph error code, or a bare HTTP status (code None)."""

    code: int | None = None
    status: int | None = None
    details: str = ""
    retry_after: float | None = None

    def response(self) -> Response:
        status = self.status or _STATUS_FOR_CODE.get(self.code or 0, 400)
        headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else None
        if self.code is None:
            return Response(f"HTTP {status}", status_code=status, headers=headers)
        error: dict[str, Any] = {
            "message": _MESSAGE_FOR_CODE.get(self.code, f"(#{self.code}) Error"),
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": secrets.token_urlsafe(12),
        }
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        return JSONResponse({"error": error}, status_code=status, headers=headers)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the fake accepted."""

    message_id: str
    phone_number_id: str
    to: str
    body: dict[str, Any]
    received_at: float

    @property
    def text(self) -> str:
        """The readable text: body of a text message, or body of an interactive message."""
        if self.body.get("type") == "text":
            return str(self.body["text"]["body"])
        if self.body.get("type") == "interactive":
            return str(self.body["interactive"]["body"]["text"])
        if self.body.get("type") == "image":
            return str(self.body["image"].get("caption", ""))
        return ""


@dataclass
class FakeGraphAPI:
    """State of the fake: accepted messages, rejected attempts and scripted failures."""

    access_token: str = "test-token"
    # Messages per recipient allowed within `pair_window` seconds; None disables it.
    pair_limit: int | None = None
    pair_window: float = 6.0
    # Messages per second per business number; None disables it.
    throughput: int | None = None
    clock: Callable[[], float] = time.monotonic
    messages: list[ReceivedMessage] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], int | None]] = field(default_factory=list)
    _failures: deque[GraphError] = field(default_factory=deque)
    _delays: deque[float] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _recent: dict[str, deque[float]] = field(default_factory=dict)
    _timeouts: int = 0
    _run: str = field(default_factory=lambda: secrets.token_hex(4).upper())
    # Uploaded or preloaded media: id -> (bytes, mime type); ids of uploads in order.
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)
    _upload_failures: deque[GraphError] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST"])]
        )

    # --- scripting ----------------------------------------------------------------------

    def fail_next(self, error: GraphError, times: int = 1) -> None:
        """Answer the next `times` sends with `error`."""
        self._failures.extend([error] * times)

    def clear_failures(self) -> None:
        """Forget scripted failures, delays and timeouts that have not happened yet."""
        self._failures.clear()
        self._delays.clear()
        self._timeouts = 0

    def timeout_next(self, times: int = 1) -> None:
        """Make the next `times` sends time out: a read timeout through MockTransport,
        a 30-second stall when served."""
        self._timeouts += times

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Wait `seconds` before answering each of the next `times` sends."""
        self._delays.extend([seconds] * times)

    def texts_to(self, recipient: str) -> list[str]:
        return [message.text for message in self.messages if message.to == recipient]

    # --- serving ------------------------------------------------------------------------

    async def handler(self, request: httpx.Request) -> httpx.Response:
        """Handler for `httpx.MockTransport`: the same answers without a server."""
        is_message = request.method == "POST" and request.url.path.endswith("/messages")
        if is_message and self._timeouts:
            self._timeouts -= 1
            self.rejected.append(({}, None))
            raise httpx.ReadTimeout("fake Graph API did not respond", request=request)
        base = f"{request.url.scheme}://{request.url.netloc.decode()}"
        response = await self._dispatch(
            request.method,
            request.url.path,
            dict(request.headers),
            request.content,
            base,
        )
        return httpx.Response(
            response.status_code, headers=dict(response.headers), content=bytes(response.body)
        )

    async def _endpoint(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return await self._dispatch(
            request.method, request.url.path, dict(request.headers), await request.body(), base
        )

    async def _dispatch(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, base: str
    ) -> Response:
        """Route a request: messages, media uploads, media metadata and media downloads."""
        parts = path.strip("/").split("/")
        authorization = headers.get("authorization", "")
        if method == "POST" and len(parts) == 3 and parts[2] == "messages":
            return await self._answer(parts[1], authorization, raw)
        if method == "POST" and len(parts) == 3 and parts[2] == "media":
            return self._upload(authorization, headers.get("content-type", ""), raw)
        if method == "GET" and len(parts) == 2 and parts[0] == "download":
            return self._download(authorization, parts[1])
        if method == "GET" and len(parts) == 2:
            return self._media_metadata(authorization, parts[1], base)
        return GraphError(100, details=f"Unsupported {method} request to {path}").response()

    # --- media -----------------------------------------------------------------------------

    def add_media(self, media_id: str, content: bytes, mime_type: str) -> None:
        """Make `media_id` downloadable, as a photo a customer sent would be."""
        self.media[media_id] = (content, mime_type)

    def fail_next_upload(self, error: GraphError, times: int = 1) -> None:
        self._upload_failures.extend([error] * times)

    def _upload(self, authorization: str, content_type: str, raw: bytes) -> Response:
        if authorization != f"Bearer {self.access_token}":
            return GraphError(190, details="The access token is invalid or has expired.").response()
        if self._upload_failures:
            return self._upload_failures.popleft().response()
        file_part = _multipart_file(content_type, raw)
        if file_part is None:
            return GraphError(100, details="The parameter file is required.").response()
        content, mime_type = file_part
        media_id = f"{int(self._run, 16)}{next(self._ids):06d}"
        self.media[media_id] = (content, mime_type)
        self.uploads.append(media_id)
        return JSONResponse({"id": media_id})

    def _media_metadata(self, authorization: str, media_id: str, base: str) -> Response:
        if authorization != f"Bearer {self.access_token}":
            return GraphError(190, details="The access token is invalid or has expired.").response()
        if media_id not in self.media:
            return GraphError(
                100, details=f"Unsupported get request. Object with ID '{media_id}' does not exist."
            ).response()
        content, mime_type = self.media[media_id]
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{base}/download/{media_id}",
                "mime_type": mime_type,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "id": media_id,
            }
        )

    def _download(self, authorization: str, media_id: str) -> Response:
        if authorization != f"Bearer {self.access_token}":
            return Response(status_code=401)
        if media_id not in self.media:
            return Response(status_code=404)
        content, mime_type = self.media[media_id]
        return Response(content, media_type=mime_type)

    async def _answer(self, phone_number_id: str, authorization: str, raw: bytes) -> Response:
        if self._timeouts:
            self._timeouts -= 1
            await asyncio.sleep(30)
        if self._delays:
            await asyncio.sleep(self._delays.popleft())
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        error = self._check(phone_number_id, authorization, body)
        if error is not None:
            self.rejected.append((body if isinstance(body, dict) else {}, error.code))
            return error.response()
        assert isinstance(body, dict)
        # Unique across runs of the fake, as the real API's ids are.
        message_id = f"wamid.FAKE{self._run}{next(self._ids):06d}"
        received = ReceivedMessage(message_id, phone_number_id, body["to"], body, self.clock())
        self.messages.append(received)
        shown = received.text or f"[{body.get('type')}]"
        logger.info("accepted %s to %s: %s", message_id, mask_phone(received.to), shown)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": message_id}],
            }
        )

    def _check(self, phone_number_id: str, authorization: str, body: Any) -> GraphError | None:
        if authorization != f"Bearer {self.access_token}":
            return GraphError(190, details="The access token is invalid or has expired.")
        if self._failures:
            return self._failures.popleft()
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return GraphError(100, details="The parameter messaging_product is required.")
        kind = body.get("type", "text")
        if not isinstance(body.get("to"), str) or kind not in _MESSAGE_TYPES or kind not in body:
            return GraphError(100, details="Invalid parameter: check `to`, `type` and its object.")
        return self._rate_limit(phone_number_id, str(body["to"]))

    def _rate_limit(self, phone_number_id: str, recipient: str) -> GraphError | None:
        now = self.clock()
        if self.throughput is not None:
            window = self._recent.setdefault(f"number:{phone_number_id}", deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.throughput:
                return GraphError(
                    130429,
                    details="Message failed to send because there were too many messages sent from this phone number.",
                )
            window.append(now)
        if self.pair_limit is not None:
            pair = self._recent.setdefault(f"pair:{phone_number_id}:{recipient}", deque())
            while pair and now - pair[0] >= self.pair_window:
                pair.popleft()
            if len(pair) >= self.pair_limit:
                return GraphError(
                    131056,
                    details="Too many messages sent from this phone number to the same phone number in a short period of time.",
                )
            pair.append(now)
        return None


def _multipart_file(content_type: str, raw: bytes) -> tuple[bytes, str] | None:
    """Return (content, mime type) of the `file` part of a multipart/form-data body."""
    if "boundary=" not in content_type:
        return None
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    for part in raw.split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            mime_type = "application/octet-stream"
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-type:"):
                    mime_type = line.split(b":", 1)[1].strip().decode()
            return body.removesuffix(b"\r\n"), mime_type
    return None


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Serve a fake WhatsApp Cloud API on loopback.")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (default 9000)")
    parser.add_argument(
        "--token", default="test-token", help="access token it accepts (default test-token)"
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    fake = FakeGraphAPI(access_token=arguments.token)
    uvicorn.run(fake.app, host="127.0.0.1", port=arguments.port, access_log=False)


if __name__ == "__main__":
    main()
