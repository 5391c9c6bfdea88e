"""One customer message in, one committed turn out: the path shared by the chat and the server.

The session read, the turn (with every action it runs) and the session write happen
in one database transaction, so a failure leaves the conversation exactly where it
was. When an action fails, the customer gets the bot's `technical_error` text and
can simply send the message again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from engine import ActionError, Bot, FlowRuntimeError, InboundEvent, Session, Turn
from storage import Store

__all__ = ["ConversationService", "mask_phone", "utc_now"]

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def mask_phone(phone: str) -> str:
    """Return a phone number safe for logs: country code and last 3 digits only."""
    if len(phone) <= 6:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 6)}{phone[-3:]}"


class ConversationService:
    """Runs turns for phone numbers against a bot and a store."""

    def __init__(self, bot: Bot, store: Store, clock: Callable[[], datetime] = utc_now) -> None:
        self.bot = bot
        self.store = store
        self.clock = clock

    async def handle(self, phone: str, event: InboundEvent) -> Turn:
        """Run and commit one turn; on a failed action, commit nothing and apologise."""
        now = self.clock()
        try:
            async with self.store.transaction() as transaction:
                session = await transaction.sessions.get(phone)
                turn = await self.bot.run_turn(
                    session, event, phone=phone, now=now, services=transaction
                )
                await transaction.sessions.save(turn.session, now)
        except (ActionError, FlowRuntimeError) as error:
            logger.exception("turn failed for %s: %s", mask_phone(phone), error)
            return await self._apology(phone, now)
        logger.debug("turn for %s ended in %s", mask_phone(phone), turn.session.state)
        return turn

    async def expire_due(self) -> list[Turn]:
        """Time out every session whose deadline has passed; return the turns with their notices."""
        now = self.clock()
        turns = []
        async with self.store.transaction() as transaction:
            phones = await transaction.sessions.expired(now)
        for phone in phones:
            turn = await self.expire(phone, now)
            if turn is not None:
                turns.append(turn)
        return turns

    async def expire(self, phone: str, now: datetime) -> Turn | None:
        """Time out `phone`'s session if it is still due when the transaction starts."""
        async with self.store.transaction() as transaction:
            session = await transaction.sessions.get(phone)
            if session is None or not self.bot.is_expired(session, now):
                return None
            turn = await self.bot.expire(session, now=now, services=transaction)
            await transaction.sessions.save(turn.session, now)
        logger.info("session of %s timed out", mask_phone(phone))
        return turn

    async def session(self, phone: str) -> Session | None:
        async with self.store.transaction() as transaction:
            return await transaction.sessions.get(phone)

    async def _apology(self, phone: str, now: datetime) -> Turn:
        session = await self.session(phone)
        messages = self.bot.render_text("technical_error", session, now)
        return Turn(session or self.bot.new_session(phone), messages, [], handled=False)
