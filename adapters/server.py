"""The WhatsApp webhook server: Starlette routes over the conversation service and the outbox.

`POST /webhook` checks, in order, the body size (413), Meta's signature (401) and
the JSON (400). Then the whole body is handled in one database transaction: each
status updates its outbox entry, and each message records its id, runs its turn and
queues its replies, each in a savepoint of its own. Only then does the server respond
200, so a crash before the commit makes Meta send the body again, and a message id
already recorded is skipped. The deliverer sends the queued replies afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.admin import admin_routes
from adapters.card_payments import card_payment_routes
from adapters.config import LOG_FORMAT, ServerConfig
from adapters.conversation import ConversationService, mask_phone, utc_now
from adapters.delivery import Deliverer, LogSender, Sender
from adapters.graph import GraphClient
from adapters.payloads import InboundItem, StatusItem, WebhookBatch, parse_webhook
from adapters.receipts import ReceiptFetcher
from adapters.signatures import verify_signature
from adapters.sweeper import Sweeper
from engine import Bot, OutgoingMessage, load_bot
from engine.messages import plain_text
from storage import OutboxStatus, StatusChange, Store, Transaction

__all__ = ["WhatsAppServer", "app_from_environment", "create_app"]

logger = logging.getLogger(__name__)

# WhatsApp's customer service window: free-form messages within 24 hours of the
# customer's last message.
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)

_STATUSES = {
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "read": OutboxStatus.READ,
    "failed": OutboxStatus.FAILED,
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """Return the raw body, or None when it is larger than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class WhatsAppServer:
    """The server's parts and their lifecycle; one per process."""

    def __init__(
        self,
        config: ServerConfig,
        bot: Bot,
        *,
        sender: Sender | None = None,
        clock: Callable[[], datetime] = utc_now,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.bot = bot
        self.clock = clock
        self._sender = sender
        self._http_transport = http_transport
        self._http: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.store: Store
        self.service: ConversationService
        self.deliverer: Deliverer
        self.sweeper: Sweeper

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        self.store = await Store.open(self.config.db_path)
        self.service = ConversationService(
            self.bot, self.store, self.clock, on_replies=self.queue_replies
        )
        sender = self._make_sender()
        self.deliverer = Deliverer(self.store, sender, clock=self.clock)
        self.receipts = (
            ReceiptFetcher(self.store, sender) if isinstance(sender, GraphClient) else None
        )
        await self.service.start()
        self.sweeper = Sweeper(
            self.service, interval_seconds=self.config.sweep_seconds, on_expired=self.deliverer.wake
        )
        if background:
            self._tasks = [
                asyncio.create_task(self.deliverer.run(), name="deliverer"),
                asyncio.create_task(self.sweeper.run(), name="sweeper"),
            ]
            if self.receipts is not None:
                self._tasks.append(asyncio.create_task(self.receipts.run(), name="receipts"))
        logger.info(
            "admin API %s; card payment webhook %s",
            "enabled" if self.config.admin_token else "disabled (set ADMIN_TOKEN to enable it)",
            "enabled"
            if self.config.payments_secret
            else "disabled (set PAYMENTS_WEBHOOK_SECRET to enable it)",
        )
        logger.info(
            "serving bot %r (flows %s) on database %s%s",
            self.bot.name,
            self.bot.version,
            self.config.db_path,
            " in development mode: no signature checks, replies logged, not sent"
            if self.config.dev
            else "",
        )

    def _make_sender(self) -> Sender:
        if self._sender is not None:
            return self._sender
        if self.config.dev:
            return LogSender()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            transport=self._http_transport,
        )
        return GraphClient(self.config.api_url, self.config.access_token or "", self._http)

    async def stop(self) -> None:
        self.deliverer.stop()
        self.sweeper.stop()
        if self.receipts is not None:
            self.receipts.stop()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except TimeoutError:
                task.cancel()
        if self._http is not None:
            await self._http.aclose()
        await self.store.close()
        logger.info("server stopped")

    # --- replies --------------------------------------------------------------------------

    async def queue_replies(
        self, transaction: Transaction, phone: str, messages: list[OutgoingMessage], now: datetime
    ) -> None:
        """Queue replies in the caller's transaction, from the number the customer wrote to.

        WhatsApp delivers free-form messages only within 24 hours of the customer's last
        message. Later news (a transfer that cleared, an expired reservation) goes as
        the bot's approved `notification_template`; without one it is recorded as
        undeliverable for the operator instead of being sent to certain failure.
        """
        contact = await transaction.contacts.get(phone)
        phone_number_id = contact.phone_number_id if contact else self.config.phone_number_id
        if not phone_number_id:
            logger.warning(
                "no business phone number known for %s; set WHATSAPP_PHONE_NUMBER_ID",
                mask_phone(phone),
            )
        window_open = (
            contact is not None and now - contact.last_inbound_at < CUSTOMER_SERVICE_WINDOW
        )
        if window_open:
            payloads = [message.payload() for message in messages]
            await transaction.outbox.enqueue(phone, phone_number_id, payloads, now)
            return
        template = self.bot.notification_template
        if template is not None:
            payloads = [template_payload(template, message) for message in messages]
            await transaction.outbox.enqueue(phone, phone_number_id, payloads, now)
            return
        ids = await transaction.outbox.enqueue(
            phone, phone_number_id, [m.payload() for m in messages], now
        )
        detail = "outside the 24-hour window and the bot has no notification_template"
        for entry_id in ids:
            await transaction.outbox.mark_failed(entry_id, None, detail, now)
        logger.warning(
            "%d messages to %s recorded as undeliverable: %s", len(ids), mask_phone(phone), detail
        )

    # --- what the admin and payment routes use -----------------------------------------

    @property
    def admin_token(self) -> str | None:
        return self.config.admin_token

    def now(self) -> datetime:
        return self.clock()

    def after_notifications(self) -> None:
        """Send what admin or payment routes queued without waiting for the next poll."""
        self.deliverer.wake()

    # --- routes ---------------------------------------------------------------------------

    async def verify(self, request: Request) -> Response:
        """Return the challenge of Meta's subscription check when the verify token matches."""
        params = request.query_params
        token = params.get("hub.verify_token", "")
        expected = self.config.verify_token
        if (
            params.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(token.encode(), expected.encode())
        ):
            logger.info("webhook subscription verified")
            return PlainTextResponse(params.get("hub.challenge", ""))
        logger.warning("webhook verification rejected: wrong mode or verify token")
        return PlainTextResponse("Forbidden", status_code=403)

    async def receive(self, request: Request) -> Response:
        body = await _read_body(request, self.config.max_body_bytes)
        if body is None:
            logger.warning("webhook body over %d bytes rejected", self.config.max_body_bytes)
            return _error(413, f"body larger than {self.config.max_body_bytes} bytes")
        signature = request.headers.get("x-hub-signature-256")
        if not self.config.dev and not verify_signature(
            self.config.app_secret or "", body, signature
        ):
            if signature:
                logger.warning(
                    "webhook rejected: X-Hub-Signature-256 does not match; check WHATSAPP_APP_SECRET"
                )
            else:
                logger.warning("webhook rejected: no X-Hub-Signature-256 header")
            return _error(401, "missing or invalid X-Hub-Signature-256")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            logger.warning("webhook body is not JSON (%d bytes); rejected", len(body))
            return _error(400, "body is not valid JSON")

        batch = parse_webhook(payload, self.config.phone_number_id)
        failures = await self.process(batch)
        if failures:
            # What succeeded is committed; Meta's retry finds those ids recorded.
            return _error(500, f"{failures} item(s) could not be handled; send the body again")
        return JSONResponse({"status": "ok"})

    async def health(self, request: Request) -> Response:
        try:
            await asyncio.wait_for(self.store.ping(), timeout=2.0)
        except Exception as error:
            logger.error("health check failed: the database is not responding (%s)", error)
            return JSONResponse(
                {"status": "unavailable", "database": "not responding"}, status_code=503
            )
        return JSONResponse(
            {"status": "ok", "database": "ok", "bot": self.bot.name, "flows": self.bot.version}
        )

    # --- webhook items ----------------------------------------------------------------------

    async def process(self, batch: WebhookBatch) -> int:
        """Handle every item of a webhook body in one transaction; return how many failed."""
        for bad in batch.bad:
            ids = f" (ids {bad.ids})" if bad.ids else ""
            logger.warning("webhook item skipped: %s in %s%s", bad.reason, bad.where, ids)
        for error in batch.errors:
            logger.warning(
                "WhatsApp reported an error: code %s: %s",
                error.get("code"),
                error.get("title") or error.get("message"),
            )
        if not batch.messages and not batch.statuses:
            return 0
        now = self.clock()
        failures = 0
        async with self.store.transaction() as transaction:
            for status in batch.statuses:
                work = functools.partial(self._apply_status, transaction, status, now)
                failures += await self._guarded(
                    transaction, work, status.message_id, status.recipient
                )
            for item in batch.messages:
                work = functools.partial(self._handle_message, transaction, item, now)
                failures += await self._guarded(transaction, work, item.message_id, item.phone)
        if batch.messages:
            self.deliverer.wake()
            if self.receipts is not None:
                self.receipts.wake()
        return failures

    async def _guarded(
        self,
        transaction: Transaction,
        work: Callable[[], Awaitable[None]],
        message_id: str,
        phone: str,
    ) -> int:
        """Run one item in a savepoint; log and count it when it fails, so the others go on."""
        try:
            async with transaction.savepoint():
                await work()
        except Exception:
            logger.exception(
                "webhook item %s from %s failed and was rolled back", message_id, mask_phone(phone)
            )
            return 1
        return 0

    async def _handle_message(
        self, transaction: Transaction, item: InboundItem, now: datetime
    ) -> None:
        who = mask_phone(item.phone)
        if not await transaction.inbound.record(item.message_id, item.phone, now):
            logger.info(
                "message %s from %s already handled; duplicate ignored", item.message_id, who
            )
            return
        await transaction.contacts.touch(
            item.phone, item.phone_number_id or self.config.phone_number_id, now
        )
        if item.event is None:
            logger.info("message %s from %s (%s) needs no reply", item.message_id, who, item.kind)
            return
        turn = await self.service.run_turn(transaction, item.phone, item.event, now)
        logger.info(
            "message %s from %s (%s): now in %s, replies queued: %d",
            item.message_id,
            who,
            item.kind,
            turn.session.state or "conversation closed",
            len(turn.messages),
        )

    async def _apply_status(
        self, transaction: Transaction, item: StatusItem, now: datetime
    ) -> None:
        status = _STATUSES.get(item.status)
        who = mask_phone(item.recipient)
        if status is None:
            logger.info("status %r of %s to %s ignored", item.status, item.message_id, who)
            return
        change = await transaction.outbox.apply_status(
            item.message_id, status, item.timestamp, item.error_code, item.error_detail
        )
        if status is OutboxStatus.FAILED and change is StatusChange.RECORDED:
            logger.warning(
                "message %s to %s failed: code %s: %s",
                item.message_id,
                who,
                item.error_code,
                item.error_detail,
            )
        else:
            logger.info(
                "status %s of %s to %s %s",
                item.status,
                item.message_id,
                who,
                change.value,
            )


def template_payload(template: dict[str, str], message: OutgoingMessage) -> dict[str, Any]:
    """Wrap a message's text in the approved template as its one body parameter.

    Template parameters cannot contain line breaks, tabs or runs of spaces.
    """
    text = " ".join(plain_text(message).split())
    return {
        "type": "template",
        "template": {
            "name": template["name"],
            "language": {"code": template["language"]},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": text[:1024]}]}],
        },
    }


def create_app(server: WhatsAppServer) -> Starlette:
    """Build the Starlette app around `server`, starting and stopping it with the app."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    routes = [
        Route("/webhook", server.verify, methods=["GET"]),
        Route("/webhook", server.receive, methods=["POST"]),
        Route("/healthz", server.health, methods=["GET"]),
        *card_payment_routes(server, server.config.payments_secret),
        *admin_routes(server),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.server = server
    return app


def app_from_environment() -> Starlette:
    """uvicorn factory: settings from the environment variables that `whatsapp-tickets serve` sets."""
    # The command line configured logging in this process already; workers start bare.
    logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger().setLevel(os.environ.get("WHATSAPP_TICKETS_LOG_LEVEL", "INFO"))
    # httpx logs every request at INFO; the deliverer's own line per attempt has more detail.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # transitions logs every trigger at INFO; its DEBUG-level detail is not for operators.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    dev = os.environ.get("WHATSAPP_TICKETS_DEV") == "1"
    flows = os.environ.get("WHATSAPP_TICKETS_FLOWS", "flows")
    config = ServerConfig.from_environment(flows=flows, dev=dev)
    return create_app(WhatsAppServer(config, load_bot(flows)))
