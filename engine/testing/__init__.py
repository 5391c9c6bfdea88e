"""Helpers to replay conversations against a bot in tests, with or without storage.

`Conversation` keeps one session in memory and a clock that tests move by hand:

    conversation = Conversation(load_bot("flows"), services=my_services)
    await conversation.send("hola")
    assert conversation.state == "inicio.menu"

`customer_texts()` is a Hypothesis strategy of what customers may type, including
the awkward cases: empty text, emoji only, control characters, right-to-left marks
and very long messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from engine.events import ChoiceReply, InboundEvent, TextInput
from engine.messages import ButtonsMessage, ListMessage, OutgoingMessage, plain_text
from engine.runtime import Bot
from engine.session import Session, Turn

__all__ = ["Conversation", "customer_texts", "message_text", "option_ids"]

DEFAULT_START = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def message_text(message: OutgoingMessage) -> str:
    """Return the text a customer reads in `message`, options included."""
    return plain_text(message)


def option_ids(message: OutgoingMessage) -> list[str]:
    """Return the ids of the buttons or rows of `message`, in order."""
    if isinstance(message, ButtonsMessage):
        return [button.id for button in message.buttons]
    if isinstance(message, ListMessage):
        return [row.id for row in message.rows]
    return []


class Conversation:
    """One customer talking to `bot`, with the session kept in memory."""

    def __init__(
        self,
        bot: Bot,
        *,
        phone: str = "593990000001",
        services: Any = None,
        now: datetime = DEFAULT_START,
    ) -> None:
        self.bot = bot
        self.phone = phone
        self.services = services
        self.now = now
        self.session: Session | None = None
        self.turns: list[Turn] = []

    @property
    def state(self) -> str | None:
        return self.session.state if self.session else None

    @property
    def slots(self) -> dict[str, Any]:
        return self.session.slots if self.session else {}

    async def send(self, message: str | InboundEvent) -> list[OutgoingMessage]:
        """Send a customer message (text or any inbound event); return the replies."""
        event = TextInput(message) if isinstance(message, str) else message
        turn = await self.bot.run_turn(
            self.session, event, phone=self.phone, now=self.now, services=self.services
        )
        return self._keep(turn)

    async def tap(self, choice_id: str, title: str = "") -> list[OutgoingMessage]:
        return await self.send(ChoiceReply(choice_id, title))

    async def send_all(self, *messages: str) -> list[OutgoingMessage]:
        """Send several messages; return the replies to the last one."""
        replies: list[OutgoingMessage] = []
        for message in messages:
            replies = await self.send(message)
        return replies

    def advance(self, **delta: float) -> None:
        """Move the clock forward, as in `advance(minutes=11)`."""
        self.now += timedelta(**delta)

    async def expire(self) -> list[OutgoingMessage]:
        """Run the inactivity timeout now, as the server's sweeper would."""
        if self.session is None or not self.bot.is_expired(self.session, self.now):
            return []
        turn = await self.bot.expire(self.session, now=self.now, services=self.services)
        return self._keep(turn)

    def _keep(self, turn: Turn) -> list[OutgoingMessage]:
        self.session = turn.session
        self.turns.append(turn)
        return turn.messages


_INVISIBLE = ["\u200e", "\u200f", "\u202e", "\u2066", "\u200b", "\ufeff", "\x00", "\x07", "\x1b"]
_EMOJI = ["👍", "🎟️", "😅", "🇪🇨", "👨‍👩‍👧", "❤️", "🙏🏽"]


def customer_texts() -> st.SearchStrategy[str]:
    """Texts a customer might send, from the ordinary to the hostile."""
    words = st.sampled_from(
        ["hola", "sí", "NO", "1", "2", "menu", "cancelar", "ayuda", "comprar", "17/05/2000", "abc"]
    )
    return st.one_of(
        st.text(max_size=60),
        words,
        st.lists(st.sampled_from(_EMOJI), min_size=1, max_size=5).map("".join),
        st.lists(st.sampled_from([*_INVISIBLE, " ", "\n", "\t"]), max_size=10).map("".join),
        st.builds(lambda mark, word: f"{mark}{word}{mark}", st.sampled_from(_INVISIBLE), words),
        st.integers(min_value=4000, max_value=20000).map(lambda size: "a" * size),
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "So", "Mn"]), max_size=40),
    )
