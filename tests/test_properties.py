"""Property-based tests: whatever customers send, the ticket bot answers and stays consistent."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.cli import packaged_flows
from adapters.conversation import ConversationService
from engine import (
    Bot,
    ChoiceReply,
    ExternalEvent,
    InboundEvent,
    LocationMessage,
    MediaMessage,
    OutgoingMessage,
    TextInput,
    UnsupportedMessage,
    load_bot,
)
from engine.testing import customer_texts, option_ids
from engine.text import normalize
from storage import Store
from tests.conftest import FakeClock

TICKET_BOT = load_bot(packaged_flows())
PHONE = "593990000001"
# Answers that move the ticket conversation forward, so examples reach deep states.
USEFUL_ANSWERS = [
    "comprar",
    "1710034065",
    "Ana María Pérez",
    "17/05/2000",
    "ana@example.com",
    "Quito, Av. Amazonas N34-120",
    "si",
    "no",
    "2",
    "transferencia",
    "tarjeta",
    "0001234",
    "menu",
    "cancelar",
    "ayuda",
    "asesor",
    "hola",
    "borrar mis datos",
]
OTHER_EVENTS: list[InboundEvent] = [
    MediaMessage("image", "111", "image/jpeg"),
    MediaMessage("audio", "112", "audio/ogg"),
    MediaMessage("sticker", "113", "image/webp"),
    LocationMessage(-2.19, -79.88, "Malecón"),
    UnsupportedMessage("contacts"),
    ExternalEvent("pago_confirmado"),
    ExternalEvent("pago_fallido"),
]


class TicketConversation(RuleBasedStateMachine):
    """One customer sending anything at all, one message at a time, to the real bot and store."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.store = self.loop.run_until_complete(
            Store.open(str(Path(self.directory.name) / "p.db"))
        )
        self.service = ConversationService(TICKET_BOT, self.store, self.clock)
        self.loop.run_until_complete(self.service.start())
        self.state: str | None = None
        self.last_replies: list[OutgoingMessage] = []
        self.expects_answer = False

    def send(self, event: InboundEvent) -> None:
        turn = self.loop.run_until_complete(self.service.handle(PHONE, event))
        self.state = turn.session.state
        self.last_replies = turn.messages
        self.expects_answer = not isinstance(event, ExternalEvent)

    @rule(text=customer_texts())
    def type_anything(self, text: str) -> None:
        self.send(TextInput(text))

    @rule(answer=st.sampled_from(USEFUL_ANSWERS))
    def type_useful_answer(self, answer: str) -> None:
        self.send(TextInput(answer))

    @precondition(lambda self: any(option_ids(message) for message in self.last_replies))
    @rule(data=st.data())
    def tap_an_option(self, data: st.DataObject) -> None:
        ids = [choice for message in self.last_replies for choice in option_ids(message)]
        self.send(ChoiceReply(data.draw(st.sampled_from(ids))))

    @rule(event=st.sampled_from(OTHER_EVENTS))
    def send_other_event(self, event: InboundEvent) -> None:
        self.send(event)

    @rule(minutes=st.integers(min_value=1, max_value=30))
    def wait_and_sweep(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        self.loop.run_until_complete(self.service.expire_due())
        self.expects_answer = False
        session = self.loop.run_until_complete(self.service.session(PHONE))
        if session is not None and session.deadline is not None:
            assert session.deadline > self.clock.now, "the sweep left an expired session open"
        self.state = session.state if session else None

    @invariant()
    def every_customer_message_is_answered(self) -> None:
        if self.expects_answer:
            assert self.last_replies, f"no reply in state {self.state}"

    @invariant()
    def state_is_a_waiting_state(self) -> None:
        if self.state is not None:
            assert self.state in TICKET_BOT.compiled.states
            assert TICKET_BOT.compiled.states[self.state].spec.waits

    @invariant()
    def closed_sessions_have_no_deadline(self) -> None:
        session = self.loop.run_until_complete(self.service.session(PHONE))
        if session is not None and session.state is None:
            assert session.deadline is None

    def teardown(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()
        self.directory.cleanup()


TicketConversation.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestTicketConversation = TicketConversation.TestCase


@given(customer_texts())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip()
    assert "  " not in once


@settings(max_examples=60, deadline=None)
@given(text=customer_texts(), state=st.sampled_from(sorted(TICKET_BOT.compiled.states)))
def test_any_text_in_any_waiting_state_is_answered(text: str, state: str) -> None:
    """Drop the customer into any state with plausible slots and send anything."""
    if not TICKET_BOT.compiled.states[state].spec.waits:
        return
    asyncio.run(_answer_in_state(TICKET_BOT, state, text))


async def _answer_in_state(bot: Bot, state: str, text: str) -> None:
    slots = {
        "cedula": "1710034065",
        "nombre": "Ana Pérez",
        "nombre_corto": "Ana",
        "fecha_nacimiento": "2000-05-17",
        "correo": "ana@example.com",
        "direccion": "Quito",
        "evento_id": "simulador",
        "evento_nombre": "Sesión",
        "precio": 200,
        "max_cantidad": 10,
        "cantidad": 2,
        "total": 400,
        "minutos_reserva": 15,
        "reserva_codigo": "ABC234",
        "reserva_expira": "2026-12-04T15:15:00+00:00",
        "quedan": "solo quedan 5 tickets",
        "banco_nombre": "Banco",
        "banco_tipo_cuenta": "Ahorros",
        "banco_numero_cuenta": "1",
        "banco_titular": "X",
        "banco_ruc": "1",
        "enlace_pago": "https://example.com",
        "corrigiendo": False,
    }
    with tempfile.TemporaryDirectory() as directory:
        store = await Store.open(str(Path(directory) / "s.db"))
        try:
            clock = FakeClock()
            service = ConversationService(bot, store, clock)
            await service.start()
            async with store.transaction() as transaction:
                session = bot.new_session(PHONE)
                session.state = state
                session.slots.update(slots)
                session.deadline = clock.now + timedelta(minutes=10)
                await transaction.sessions.save(session, clock.now)
            turn = await service.handle(PHONE, TextInput(text))
        finally:
            await store.close()
    assert turn.messages
    assert turn.session.state in bot.compiled.states
