"""One customer message in, one committed turn out: the path shared by the chat and the server.

The session read, the turn (with every action it runs), the session write and, in
the server, the queued replies happen in one database transaction, so a failure
leaves the conversation exactly where it was. Each turn runs in a savepoint: when an
action fails, only that turn is rolled back and the customer gets the bot's
`technical_error` text, so they can simply send the message again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from engine import (
    ActionError,
    Bot,
    ExternalEvent,
    FlowRuntimeError,
    InboundEvent,
    Notification,
    OutgoingMessage,
    Session,
    Turn,
)
from storage import Store, Transaction

__all__ = ["ConversationService", "ReplySink", "mask_phone", "utc_now"]

logger = logging.getLogger(__name__)

# Called inside the turn's transaction with the replies of every turn that has any.
ReplySink = Callable[[Transaction, str, list[OutgoingMessage], datetime], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def mask_phone(phone: str) -> str:
    """Return a phone number safe for logs: country code and last 3 digits only."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 6)}{phone[-3:]}"


class ConversationService:
    """Runs turns for phone numbers against a bot and a store."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        clock: Callable[[], datetime] = utc_now,
        on_replies: ReplySink | None = None,
    ) -> None:
        self.bot = bot
        self.store = store
        self.clock = clock
        self.on_replies = on_replies

    async def run_turn(
        self, transaction: Transaction, phone: str, event: InboundEvent, now: datetime
    ) -> Turn:
        """Run and store one turn inside `transaction`; a failed action rolls back only this turn."""
        try:
            async with transaction.savepoint():
                session = await transaction.sessions.get(phone)
                turn = await self.bot.run_turn(
                    session, event, phone=phone, now=now, services=transaction
                )
                await transaction.sessions.save(turn.session, now)
                if turn.states:
                    phases = {state.split(".")[0] for state in turn.states}
                    await transaction.stats.visit(phone, phases, now)
        except (ActionError, FlowRuntimeError) as error:
            logger.error(
                "turn failed for %s and was rolled back: %s",
                mask_phone(phone),
                error,
                exc_info=error,
            )
            turn = await self._apology(transaction, phone, event, now)
        if turn.messages and self.on_replies is not None:
            await self.on_replies(transaction, phone, turn.messages, now)
        return turn

    async def handle(self, phone: str, event: InboundEvent) -> Turn:
        """Run one turn in a transaction of its own and commit it."""
        now = self.clock()
        async with self.store.transaction() as transaction:
            return await self.run_turn(transaction, phone, event, now)

    async def send_event(self, phone: str, name: str, data: dict[str, Any] | None = None) -> Turn:
        """Deliver an external event (such as a confirmed payment) to `phone`'s conversation."""
        return await self.handle(phone, ExternalEvent(name, data or {}))

    async def start(self) -> None:
        """Run the bot's startup hooks in one transaction (the ticket bot loads its catalogue)."""
        async with self.store.transaction() as transaction:
            await self.bot.start(now=self.clock(), services=transaction)

    async def notify(
        self, transaction: Transaction, notification: Notification, now: datetime
    ) -> list[OutgoingMessage]:
        """Tell a customer something outside their turn; return the messages queued.

        The event goes to the conversation first; when the conversation does not wait
        for it, the notification's own messages are sent instead.
        """
        if notification.event is not None and await self._conversation_matches(
            transaction, notification
        ):
            turn = await self.run_turn(transaction, notification.phone, notification.event, now)
            if turn.handled:
                return turn.messages
        messages = list(notification.messages)
        if messages and self.on_replies is not None:
            await self.on_replies(transaction, notification.phone, messages, now)
        return messages

    async def _conversation_matches(
        self, transaction: Transaction, notification: Notification
    ) -> bool:
        if not notification.when:
            return True
        session = await transaction.sessions.get(notification.phone)
        slots = session.slots if session else {}
        return all(slots.get(slot) == value for slot, value in notification.when)

    async def sweep(self) -> list[tuple[str, list[OutgoingMessage]]]:
        """Time out idle conversations and run the bot's periodic hooks.

        Returns (phone, messages) for every customer told something, in order.
        """
        told = [
            (turn.session.phone, turn.messages) for turn in await self.expire_due() if turn.messages
        ]
        now = self.clock()
        async with self.store.transaction() as transaction:
            notifications = await self.bot.run_periodic(now=now, services=transaction)
            for notification in notifications:
                messages = await self.notify(transaction, notification, now)
                if messages:
                    told.append((notification.phone, messages))
        return told

    async def expire_due(self, limit: int = 100) -> list[Turn]:
        """Time out sessions whose deadline has passed; return the turns with their notices."""
        now = self.clock()
        async with self.store.transaction() as transaction:
            phones = await transaction.sessions.expired(now, limit)
        turns = []
        for phone in phones:
            turn = await self.expire(phone, now)
            if turn is not None:
                turns.append(turn)
        return turns

    async def expire(self, phone: str, now: datetime) -> Turn | None:
        """Time out `phone`'s session if it is still due when the transaction starts.

        Reading the session again inside `BEGIN IMMEDIATE` is the claim: when two
        sweepers race, the second finds the session already reset and does nothing.
        """
        async with self.store.transaction() as transaction:
            session = await transaction.sessions.get(phone)
            if session is None or not self.bot.is_expired(session, now):
                return None
            try:
                async with transaction.savepoint():
                    turn = await self.bot.expire(session, now=now, services=transaction)
                    await transaction.sessions.save(turn.session, now)
            except (ActionError, FlowRuntimeError) as error:
                # The deadline stays in place, so the next sweep tries again.
                logger.error(
                    "timeout of %s failed and was rolled back: %s",
                    mask_phone(phone),
                    error,
                    exc_info=error,
                )
                return None
            if turn.messages and self.on_replies is not None:
                await self.on_replies(transaction, phone, turn.messages, now)
        logger.info("session of %s timed out", mask_phone(phone))
        return turn

    async def session(self, phone: str) -> Session | None:
        async with self.store.transaction() as transaction:
            return await transaction.sessions.get(phone)

    async def _apology(
        self, transaction: Transaction, phone: str, event: InboundEvent, now: datetime
    ) -> Turn:
        session = await transaction.sessions.get(phone)
        if isinstance(event, ExternalEvent):
            # Nobody is waiting for an answer to an external event.
            return Turn(session or self.bot.new_session(phone), [], [], handled=False)
        messages = self.bot.render_text("technical_error", session, now)
        return Turn(session or self.bot.new_session(phone), messages, [], handled=False)
