"""The ticket bot's conversations, through the conversation service and a real SQLite file."""

from __future__ import annotations

import pytest

from adapters.conversation import ConversationService
from engine import (
    ButtonsMessage,
    ChoiceReply,
    ExternalEvent,
    InboundEvent,
    OutgoingMessage,
    TextInput,
)
from engine.testing import message_text, option_ids
from storage import Store
from tests.conftest import FakeClock
from tests.helpers import joined

PHONE = "593990000001"
OTHER_PHONE = "593990000002"
CEDULA = "1710034065"
REGISTRATION = [
    "hola",
    "comprar",
    CEDULA,
    "maría josé pérez",
    "17/05/2000",
    "maria.perez@example.com",
    "Quito, Av. Amazonas N34-120",
]


class Customer:
    def __init__(self, service: ConversationService, phone: str = PHONE) -> None:
        self.service = service
        self.phone = phone
        self.state: str | None = None
        self.replies: list[OutgoingMessage] = []

    async def send(self, message: str | InboundEvent) -> str:
        event = TextInput(message) if isinstance(message, str) else message
        turn = await self.service.handle(self.phone, event)
        self.state = turn.session.state
        self.replies = turn.messages
        return joined(turn.messages)

    async def send_all(self, *messages: str) -> str:
        text = ""
        for message in messages:
            text = await self.send(message)
        return text

    async def register(self) -> str:
        await self.send_all(*REGISTRATION)
        return await self.send("si")


@pytest.fixture
def customer(service: ConversationService) -> Customer:
    return Customer(service)


async def test_registration_reaches_ticket_quantity(customer: Customer, store: Store) -> None:
    await customer.send_all(*REGISTRATION)
    assert customer.state == "registro.confirmando_datos"
    summary = message_text(customer.replies[-1])
    assert "Cédula: 1710034065" in summary
    assert "Nombre: María José Pérez" in summary
    assert "Nacimiento: 17/05/2000" in summary
    assert option_ids(customer.replies[-1]) == ["si", "no"]

    reply = await customer.send("si")
    assert customer.state == "reserva.esperando_cantidad"
    assert "¡Listo, María!" in reply
    assert "Cada uno cuesta $2.00 y puedes llevar hasta 10" in reply

    async with store.transaction() as transaction:
        saved = await transaction.customers.by_phone(PHONE)
    assert saved is not None
    assert saved.cedula == CEDULA
    assert saved.full_name == "María José Pérez"
    assert saved.birth_date == "2000-05-17"
    assert saved.consented_at is not None


async def test_privacy_notice_before_first_question(customer: Customer) -> None:
    await customer.send("hola")
    reply = await customer.send("comprar")
    assert customer.state == "registro.esperando_cedula"
    assert "Protección de Datos Personales" in reply
    assert "*borrar mis datos*" in reply
    assert reply.index("borrar mis datos") < reply.index("¿Cuál es tu número de cédula?")


@pytest.mark.parametrize(
    ("cedula", "explanation"),
    [
        ("1710034064", "parece que hay un dígito cambiado"),
        ("171003406", "exactamente 10 dígitos"),
        ("17100340655", "exactamente 10 dígitos"),
        ("17100A4065", "solo números"),
        ("2510034065", "código de la provincia"),
        ("1760034065", "tercer dígito"),
    ],
)
async def test_invalid_cedula_keeps_state_and_explains(
    customer: Customer, cedula: str, explanation: str
) -> None:
    await customer.send_all("hola", "comprar")
    reply = await customer.send(cedula)
    assert customer.state == "registro.esperando_cedula"
    assert explanation in reply


async def test_three_invalid_cedulas_return_to_menu(customer: Customer) -> None:
    await customer.send_all("hola", "comprar", "123", "456")
    reply = await customer.send("789")
    assert customer.state == "inicio.menu"
    assert "*asesor*" in reply


async def test_under_age_customer_is_told_the_minimum(customer: Customer, clock: FakeClock) -> None:
    await customer.send_all("hola", "comprar", CEDULA, "Ana Pérez")
    reply = await customer.send("01/01/2015")
    assert customer.state == "registro.esperando_fecha_nacimiento"
    assert "al menos 15 años" in reply


async def test_correcting_one_field_returns_to_summary(customer: Customer) -> None:
    await customer.send_all(*REGISTRATION)
    reply = await customer.send("no")
    assert customer.state == "registro.eligiendo_campo"
    assert "¿Qué dato quieres corregir?" in reply
    await customer.send("correo")
    assert customer.state == "registro.esperando_correo"
    reply = await customer.send("maria@correo.ec")
    assert customer.state == "registro.confirmando_datos"
    assert "Correo: maria@correo.ec" in reply
    assert "Nombre: María José Pérez" in reply


async def test_correcting_cedula_checks_it_again(customer: Customer) -> None:
    await customer.send_all(*REGISTRATION)
    await customer.send_all("no", "1")
    assert customer.state == "registro.esperando_cedula"
    reply = await customer.send("0912345675")
    assert customer.state == "registro.confirmando_datos"
    assert "Cédula: 0912345675" in reply


async def test_cedula_of_another_number_reveals_nothing(service: ConversationService) -> None:
    first = Customer(service, PHONE)
    await first.register()
    second = Customer(service, OTHER_PHONE)
    await second.send_all("hola", "comprar")
    reply = await second.send(CEDULA)
    assert second.state == "registro.esperando_cedula"
    assert "ya está registrada con otro número" in reply
    assert "*asesor*" in reply
    for private in ("María", "Pérez", "maria.perez", "Amazonas", "2000", PHONE):
        assert private not in reply


async def test_registered_customer_skips_registration(service: ConversationService) -> None:
    customer = Customer(service)
    await customer.register()
    await customer.send("menu")
    reply = await customer.send("comprar")
    assert customer.state == "reserva.esperando_cantidad"
    assert "¡Qué gusto verte de nuevo, María!" in reply


async def test_reservation_and_transfer_details(customer: Customer) -> None:
    await customer.register()
    reply = await customer.send("2")
    assert customer.state == "reserva.confirmando_reserva"
    assert "Total: $4.00" in reply
    reply = await customer.send("si")
    assert customer.state == "pago.eligiendo_metodo"
    assert option_ids(customer.replies[-1]) == ["transferencia", "tarjeta"]
    reply = await customer.send("transferencia")
    assert customer.state == "pago.esperando_comprobante"
    assert "Transfiere *$4.00*" in reply
    assert "Banco del Pichincha" in reply
    reply = await customer.send("000123456")
    assert customer.state == "pago.verificando"
    reply = await customer.send(ExternalEvent("pago_confirmado"))
    assert customer.state == "inicio.menu"
    assert "¡Pago confirmado!" in reply


async def test_card_link_has_reservation_and_amount(customer: Customer) -> None:
    await customer.register()
    await customer.send_all("3", "si")
    reply = await customer.send("tarjeta")
    assert customer.state == "pago.esperando_pago_tarjeta"
    assert "monto=6.00" in reply
    assert "https://pagos.example.com/checkout?reserva=" in reply


async def test_quantity_above_order_limit_is_explained(customer: Customer) -> None:
    await customer.register()
    reply = await customer.send("11")
    assert customer.state == "reserva.esperando_cantidad"
    assert "hasta 10 tickets" in reply


async def test_cancel_without_purchase_says_so_plainly(customer: Customer) -> None:
    await customer.send_all("hola", "comprar")
    reply = await customer.send("cancelar")
    assert reply.startswith("Listo, cancelé lo que estábamos haciendo.\n")


async def test_cancel_returns_to_menu(customer: Customer) -> None:
    await customer.register()
    await customer.send_all("2", "si")
    reply = await customer.send("Cancelar")
    assert customer.state == "inicio.menu"
    assert reply.startswith(
        "Listo, cancelé lo que estábamos haciendo y liberé los 2 tickets de tu reserva *"
    )


async def test_help_at_menu_choice_and_command(customer: Customer) -> None:
    await customer.send("hola")
    reply = await customer.send(ChoiceReply("ayuda", "Ayuda"))
    assert customer.state == "inicio.menu"
    assert "Así funciona" in reply
    reply = await customer.send("ayuda")
    assert customer.state == "inicio.menu"
    assert "Así funciona" in reply
    assert isinstance(customer.replies[-1], ButtonsMessage)


async def test_help_in_the_middle_keeps_the_step(customer: Customer) -> None:
    await customer.send_all("hola", "comprar")
    reply = await customer.send("ayuda")
    assert customer.state == "registro.esperando_cedula"
    assert "10 dígitos seguidos" in reply


async def test_advisor_request_is_recorded_once(customer: Customer, store: Store) -> None:
    await customer.send_all("hola", "comprar")
    reply = await customer.send("asesor")
    assert customer.state == "registro.esperando_cedula"
    assert "le avisé a nuestro equipo" in reply
    assert "(de lunes a viernes, de 09:00 a 18:00)" in reply
    reply = await customer.send("hablar con una persona")
    assert "Ya avisé a nuestro equipo" in reply
    async with store.transaction() as transaction:
        cursor = await transaction.connection.execute("SELECT phone, state FROM handoffs")
        rows = await cursor.fetchall()
    assert [tuple(row) for row in rows] == [(PHONE, "registro.esperando_cedula")]


async def test_erase_personal_data(customer: Customer, store: Store) -> None:
    await customer.register()
    reply = await customer.send("borrar mis datos")
    assert customer.state == "inicio.confirmando_borrado"
    assert "¿Seguro que quieres borrar tus datos" in reply
    reply = await customer.send("si")
    assert customer.state == "inicio.menu"
    assert "borré tus datos" in reply
    async with store.transaction() as transaction:
        saved = await transaction.customers.by_phone(PHONE)
        owner = await transaction.customers.cedula_owner(CEDULA)
    assert saved is not None
    assert (saved.cedula, saved.full_name, saved.email, saved.address) == (None, None, None, None)
    assert owner is None
    reply = await customer.send("comprar")
    assert customer.state == "registro.esperando_cedula"


async def test_my_tickets_without_purchases(customer: Customer) -> None:
    await customer.send("hola")
    reply = await customer.send("mis tickets")
    assert customer.state == "inicio.menu"
    assert "Todavía no tienes tickets" in reply


async def test_inactivity_closes_and_restarts(
    customer: Customer, service: ConversationService, clock: FakeClock
) -> None:
    await customer.send_all("hola", "comprar")
    clock.advance(minutes=11)
    turns = await service.expire_due()
    assert len(turns) == 1
    assert "cerré esta conversación" in joined(turns[0].messages)
    assert turns[0].session.state is None
    reply = await customer.send("hola")
    assert customer.state == "inicio.menu"
    assert reply.startswith("¡Hola! 👋")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "a" * 20000,
        "\x00\x01\x02\x1b[2J",
        "👍🎟️😅",
        "\u202eolleh\u202c",
        "\u200f\u200e",
        "\n\n\t",
    ],
)
async def test_odd_text_always_gets_an_answer(customer: Customer, text: str) -> None:
    await customer.send_all("hola", "comprar")
    reply = await customer.send(text)
    assert reply
    assert customer.state == "registro.esperando_cedula"


async def test_transfer_reference_needs_a_digit(customer: Customer) -> None:
    await customer.register()
    await customer.send_all("2", "si", "transferencia")
    reply = await customer.send("ya te mando")
    assert customer.state == "pago.esperando_comprobante"
    assert "número de comprobante" in reply
    await customer.send("Ref 001234567")
    assert customer.state == "pago.verificando"


async def test_first_message_asking_for_a_person(customer: Customer, store: Store) -> None:
    reply = await customer.send("asesor")
    assert customer.state == "inicio.menu"
    assert "le avisé a nuestro equipo" in reply
    async with store.transaction() as transaction:
        cursor = await transaction.connection.execute("SELECT count(*) FROM handoffs")
        row = await cursor.fetchone()
    assert row is not None and row[0] == 1


@pytest.mark.parametrize(
    ("first", "state"),
    [
        ("borrar mis datos", "inicio.confirmando_borrado"),
        ("quiero comprar", "registro.esperando_cedula"),
    ],
)
async def test_first_message_request_is_followed(
    customer: Customer, first: str, state: str
) -> None:
    reply = await customer.send(first)
    assert customer.state == state
    assert reply.startswith("¡Hola! 👋")


async def test_keeping_data_returns_to_payment(customer: Customer) -> None:
    await customer.register()
    await customer.send_all("2", "si")
    assert customer.state == "pago.eligiendo_metodo"
    await customer.send("borrar mis datos")
    reply = await customer.send("no")
    assert customer.state == "pago.eligiendo_metodo"
    assert "¿Cómo quieres pagar los $4.00?" in reply


async def test_purchase_slots_cleared_after_payment(
    customer: Customer, service: ConversationService
) -> None:
    await customer.register()
    await customer.send_all("2", "si", "transferencia", "001234567")
    await customer.send(ExternalEvent("pago_confirmado"))
    session = await service.session(PHONE)
    assert session is not None
    for slot in ("reserva_codigo", "referencia", "total", "banco_nombre"):
        assert slot not in session.slots


async def test_card_wait_offers_transfer(customer: Customer) -> None:
    await customer.register()
    await customer.send_all("2", "si", "tarjeta")
    reply = await customer.send("Transferencia")
    assert customer.state == "pago.esperando_comprobante"
    assert "Transfiere *$4.00*" in reply


async def test_payment_time_out_releases_the_reservation(
    customer: Customer, service: ConversationService, clock: FakeClock, store: Store
) -> None:
    await customer.register()
    await customer.send_all("2", "si")
    clock.advance(minutes=14)
    assert await service.sweep() == []
    clock.advance(minutes=2)
    told = await service.sweep()
    assert [phone for phone, _ in told] == [PHONE]
    assert "Se venció el tiempo para pagar tu reserva" in joined(told[0][1])
    session = await service.session(PHONE)
    assert session is not None and session.state == "inicio.menu"
    async with store.transaction() as transaction:
        event = await transaction.events.get("simulador")
    assert event is not None and event.remaining == 100


async def test_menu_attempts_exhausted_stays_at_menu(customer: Customer) -> None:
    await customer.send_all("hola", "xyz", "abc")
    reply = await customer.send("qwe")
    assert customer.state == "inicio.menu"
    assert "Elige una opción de la lista" in reply
    assert "Te regreso" not in reply


async def test_typed_payment_method_with_typo(customer: Customer) -> None:
    await customer.register()
    await customer.send_all("2", "si")
    await customer.send("trasferencia")
    assert customer.state == "pago.esperando_comprobante"
