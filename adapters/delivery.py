"""Deliver queued replies from the outbox to the Graph API, in order per customer.

One deliverer runs in each server process. A round claims the oldest due reply of up
to `concurrency` customers, sends them concurrently, and records the results in one
transaction. A customer's next reply becomes claimable once the previous one is
accepted or has failed for good, which keeps each customer's replies in order.

Delivery is at least once: the Graph API has no idempotency key, so a reply is sent
twice only when the process dies between the API's response and recording it, or when
a claim expires while a send is still in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from adapters.conversation import mask_phone, utc_now
from adapters.graph import SendOutcome, SendResult
from storage import OutboxEntry, OutboxRepository, Store

__all__ = ["Deliverer", "LogSender", "RetryPolicy", "Sender", "summarize_payload"]

logger = logging.getLogger(__name__)


class Sender(Protocol):
    async def send(self, phone_number_id: str, to: str, payload: dict[str, Any]) -> SendResult: ...


_LONG_NUMBER = re.compile(r"\d{7,}")


def _mask_numbers(text: str) -> str:
    """Hide the middle of long numbers (cédulas, phones, accounts) in a development log."""
    return _LONG_NUMBER.sub(lambda match: mask_phone(match.group()), text)


def _reason(result: SendResult) -> str:
    return (
        f"code {result.error_code}: {result.detail}"
        if result.error_code is not None
        else result.detail
    )


def summarize_payload(payload: dict[str, Any]) -> str:
    """Return the readable text of a message payload, for logs in development mode."""
    kind = payload.get("type")
    if kind == "text":
        return str(payload["text"]["body"])
    if kind == "interactive":
        interactive = payload["interactive"]
        options: list[str] = []
        for button in interactive["action"].get("buttons", []):
            options.append(button["reply"]["title"])
        for section in interactive["action"].get("sections", []):
            options.extend(row["title"] for row in section["rows"])
        return f"{interactive['body']['text']} [{' | '.join(options)}]"
    if kind == "image":
        image = payload["image"]
        source = image.get("link") or image.get("id") or f"QR code of {image.get('_qr')}"
        return f"[image: {source}] {image.get('caption', '')}".strip()
    return f"[{kind}]"


class LogSender:
    """Development sender: logs each reply instead of calling the Graph API."""

    def __init__(self) -> None:
        self._count = 0

    async def send(self, phone_number_id: str, to: str, payload: dict[str, Any]) -> SendResult:
        self._count += 1
        payload = {key: value for key, value in payload.items() if not key.startswith("_")}
        text = " ⏎ ".join(summarize_payload(payload).splitlines())
        logger.info(
            "reply to %s (development mode, not sent): %s", mask_phone(to), _mask_numbers(text)
        )
        return SendResult(SendOutcome.ACCEPTED, message_id=f"wamid.dev.{os.getpid()}.{self._count}")


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for failed sends: exponential with jitter, capped, with a deadline."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    # WhatsApp only delivers free-form replies within 24 hours of the customer's last
    # message, so retrying longer than that cannot succeed.
    give_up_after: timedelta = timedelta(hours=24)
    # The pair rate limit allows about one message every 6 seconds to one customer.
    recipient_pause_seconds: float = 6.0
    auth_pause_seconds: float = 5.0

    def delay(self, attempts: int, rng: random.Random, minimum: float | None = None) -> float:
        """Seconds before the next try after `attempts` failures, jittered between 50% and 100%."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(attempts, 30))
        return float(max(ceiling * rng.uniform(0.5, 1.0), minimum or 0.0))


class Deliverer:
    """Sends pending outbox entries until stopped."""

    def __init__(
        self,
        store: Store,
        sender: Sender,
        *,
        clock: Callable[[], datetime] = utc_now,
        policy: RetryPolicy | None = None,
        concurrency: int = 16,
        # Longer than the longest send (the Graph client times out after 10 s, and an
        # upload comes first), short enough that a crashed worker's claims free soon.
        claim_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.claim_seconds = claim_seconds
        self.poll_seconds = poll_seconds
        self.rng = rng or random.Random()
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._paused_until: datetime | None = None
        self._pause_seconds = self.policy.auth_pause_seconds

    def wake(self) -> None:
        """Start a round now instead of at the next poll (call after queueing replies)."""
        self._wakeup.set()

    async def run(self) -> None:
        logger.info("reply deliverer %s started", self.worker)
        while not self._stopping:
            try:
                handled = await self.deliver_round()
            except Exception:
                logger.exception("delivery round failed; retrying in %.1f s", self.poll_seconds)
                handled = 0
            if handled == 0 and not self._stopping:
                await self._sleep()
        logger.info("reply deliverer %s stopped", self.worker)

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def _sleep(self) -> None:
        timeout = self.poll_seconds
        if self._paused_until is not None:
            timeout = max(0.0, min(timeout, (self._paused_until - self.clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()

    async def deliver_round(self) -> int:
        """Claim, send and record one round; return the number of entries tried."""
        now = self.clock()
        limit = self.concurrency
        if self._paused_until is not None:
            if now < self._paused_until:
                return 0
            limit = 1  # One probe send shows whether the token works again.
        async with self.store.transaction() as transaction:
            entries = await transaction.outbox.claim(
                self.worker, now, now + timedelta(seconds=self.claim_seconds), limit
            )
        if not entries:
            return 0
        results = await asyncio.gather(*(self._send(entry) for entry in entries))
        await self._record(list(zip(entries, results, strict=True)))
        return len(entries)

    async def run_until_idle(self, max_rounds: int = 1000) -> int:
        """Deliver rounds until nothing is due; return the entries tried (for tests and tools)."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.deliver_round()
            if handled == 0:
                break
            total += handled
        return total

    async def _send(self, entry: OutboxEntry) -> SendResult:
        try:
            return await self.sender.send(entry.phone_number_id, entry.recipient, entry.payload)
        except Exception as error:  # a sender bug must not lose the claim's bookkeeping
            logger.exception("sending outbox entry %d failed unexpectedly", entry.id)
            return SendResult(SendOutcome.RETRY, detail=f"unexpected error: {type(error).__name__}")

    async def _record(self, outcomes: list[tuple[OutboxEntry, SendResult]]) -> None:
        now = self.clock()
        async with self.store.transaction() as transaction:
            for entry, result in outcomes:
                try:
                    # Each entry on its own: one that cannot be recorded must not undo
                    # the others, or they would all be sent again when their claims expire.
                    async with transaction.savepoint():
                        await self._record_one(transaction.outbox, entry, result, now)
                except Exception:
                    logger.exception(
                        "reply %d to %s: the %s result could not be recorded",
                        entry.id,
                        mask_phone(entry.recipient),
                        result.outcome.value,
                    )
        rejected = [result for _, result in outcomes if result.outcome is SendOutcome.PAUSE_ALL]
        if rejected:
            # Once per round: several sends rejected together are one token problem.
            self._pause(now, rejected[0])

    async def _record_one(
        self, outbox: OutboxRepository, entry: OutboxEntry, result: SendResult, now: datetime
    ) -> None:
        attempt = entry.attempts + 1
        who = mask_phone(entry.recipient)
        outcome = result.outcome
        if outcome is SendOutcome.ACCEPTED:
            assert result.message_id is not None
            await outbox.mark_accepted(entry.id, result.message_id, now)
            logger.info(
                "reply %d to %s accepted as %s (attempt %d)",
                entry.id,
                who,
                result.message_id,
                attempt,
            )
            self._resume()
        elif outcome is SendOutcome.FAILED:
            await outbox.mark_failed(entry.id, result.error_code, result.detail, now)
            logger.warning(
                "reply %d to %s failed permanently (%s)",
                entry.id,
                who,
                _reason(result),
            )
        elif outcome is SendOutcome.PAUSE_ALL:
            # Not counted as an attempt: the reply itself is fine, the token is not.
            await outbox.release(entry.id)
            logger.info(
                "reply %d to %s held: the access token was rejected (%s)",
                entry.id,
                who,
                _reason(result),
            )
        elif now - entry.created_at > self.policy.give_up_after:
            detail = f"gave up after {attempt} attempts: {result.detail}"
            await outbox.mark_failed(entry.id, result.error_code, detail, now)
            logger.warning("reply %d to %s %s", entry.id, who, detail)
        else:
            minimum = result.retry_after
            if outcome is SendOutcome.RETRY_RECIPIENT:
                minimum = max(minimum or 0.0, self.policy.recipient_pause_seconds)
            delay = self.policy.delay(entry.attempts, self.rng, minimum)
            not_before = now + timedelta(seconds=delay)
            await outbox.mark_retry(entry.id, not_before, result.error_code, result.detail, now)
            if outcome is SendOutcome.RETRY_RECIPIENT:
                await outbox.pause_recipient(entry.recipient, not_before)
            logger.info(
                "reply %d to %s not sent (attempt %d, %s); retrying in %.1f s",
                entry.id,
                who,
                attempt,
                _reason(result),
                delay,
            )

    def _pause(self, now: datetime, result: SendResult) -> None:
        self._paused_until = now + timedelta(seconds=self._pause_seconds)
        logger.error(
            "the Graph API rejected the access token (code %s: %s); sending paused for %.0f s. "
            "Set a valid WHATSAPP_ACCESS_TOKEN; queued replies are kept",
            result.error_code,
            result.detail,
            self._pause_seconds,
        )
        self._pause_seconds = min(self._pause_seconds * 2, self.policy.max_seconds)

    def _resume(self) -> None:
        if self._paused_until is not None:
            logger.info("sending resumed: the Graph API accepted a message again")
        self._paused_until = None
        self._pause_seconds = self.policy.auth_pause_seconds
