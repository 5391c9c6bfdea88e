"""Tickets and payments over the webhook and the admin API, with the fake Graph API.

A customer registers, holds tickets, pays by bank transfer or card, and receives QR
tickets; operators register transfers, review payments and redeem tickets at the door.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.cli import packaged_flows
from adapters.fake_graph import FakeGraphAPI, GraphError
from adapters.signatures import sign
from engine import Bot, load_bot
from flows import payments
from storage import EventRecord, OutboxStatus, PaymentStatus, ReservationStatus, Store
from tests.conftest import FakeClock
from tests.harness import ADMIN_TOKEN, PAYMENTS_SECRET, TOKEN, Harness, make_config, start_harness
from tests.whatsapp import message, messages_body

PHONE = "593990000001"
OTHER = "593990000002"
REGISTRATION = [
    "hola",
    "comprar",
    "1710034065",
    "María José Pérez",
    "17/05/2000",
    "maria@example.com",
    "Quito, Av. Amazonas N34-120 y Naciones Unidas",
    "si",
]
OTHER_REGISTRATION = [
    "hola",
    "comprar",
    "0912345675",
    "Pedro Páez",
    "01/02/1990",
    "pedro@example.com",
    "Guayaquil, 9 de Octubre 100 y Boyacá",
    "si",
]


@pytest.fixture
def fake() -> FakeGraphAPI:
    return FakeGraphAPI(access_token=TOKEN)


@pytest.fixture
async def shop(
    tmp_path: Path, ticket_bot: Bot, clock: FakeClock, fake: FakeGraphAPI
) -> AsyncIterator[Harness]:
    started = await start_harness(make_config(tmp_path, packaged_flows()), ticket_bot, clock, fake)
    yield started
    await started.client.aclose()
    await started.server.stop()


async def say_all(shop: Harness, phone: str, *words: str) -> None:
    for word in words:
        response = await shop.say(phone, word)
        assert response.status_code == 200, (word, response.text)


async def reserve(
    shop: Harness, phone: str = PHONE, quantity: str = "2", registration: list[str] = REGISTRATION
) -> str:
    """Register, hold `quantity` tickets and return the reservation code."""
    await say_all(shop, phone, *registration, quantity, "si")
    assert await shop.session_state(phone) == "pago.eligiendo_metodo"
    async with shop.server.store.transaction() as transaction:
        session = await transaction.sessions.get(phone)
    assert session is not None
    return str(session.slots["reserva_codigo"])


def ticket_codes(fake: FakeGraphAPI, phone: str) -> list[str]:
    codes = []
    for received in fake.messages:
        if received.to == phone and received.body["type"] == "image":
            codes += re.findall(
                r"Código: ([A-Z0-9]{5}-[A-Z0-9]{5})", received.body["image"]["caption"]
            )
    return codes


async def register_transfer(
    shop: Harness, reference: str, amount: str, day: str = "2026-12-04"
) -> httpx.Response:
    return await shop.admin(
        "POST", "/admin/transfers", {"reference": reference, "amount": amount, "date": day}
    )


async def payment_of(shop: Harness, code: str) -> Any:
    async with shop.server.store.transaction() as transaction:
        reservation = await transaction.reservations.by_code(code)
        assert reservation is not None
        return await transaction.payments.latest_for(reservation.id)


# --- the whole purchase -------------------------------------------------------------------------


async def test_transfer_registered_later_pays_and_sends_tickets(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "Comprobante 001-234-567")
    assert await shop.session_state(PHONE) == "pago.verificando"
    await shop.deliver()
    sent_before = len(shop.fake.messages)

    response = await register_transfer(shop, "1234567", "4.00")
    assert response.status_code == 201
    assert response.json()["result"] == "paid"
    await shop.deliver()

    assert await shop.session_state(PHONE) == "inicio.menu"
    new = shop.fake.messages[sent_before:]
    assert new[0].text.startswith("¡Pago confirmado! 🎉")
    images = [received for received in new if received.body["type"] == "image"]
    assert len(images) == 2
    assert all("id" in image.body["image"] for image in images)
    assert len(shop.fake.uploads) == 2
    codes = ticket_codes(shop.fake, PHONE)
    assert len(set(codes)) == 2
    for ticket in codes:
        found = await shop.admin("GET", f"/admin/tickets/{ticket}")
        assert found.status_code == 200
        assert found.json()["status"] == "valid"
        assert found.json()["event"] == "simulador"
        assert found.json()["reservation"] == code

    stats = (await shop.admin("GET", "/admin/stats")).json()
    assert stats["paid"] == 1
    assert stats["revenue"] == "4.00"
    assert stats["revenue_cents"] == 400
    assert stats["tickets_sold"] == 2
    assert stats["phases"] == {"inicio": 1, "registro": 1, "reserva": 1, "pago": 1}


async def test_transfer_registered_first_pays_at_once(shop: Harness) -> None:
    await reserve(shop)
    assert (await register_transfer(shop, "000998877", "4.00")).status_code == 201
    await say_all(shop, PHONE, "transferencia", "998877")
    assert await shop.session_state(PHONE) == "inicio.menu"
    await shop.deliver()
    assert len(ticket_codes(shop.fake, PHONE)) == 2


async def test_qr_upload_failure_sends_codes_as_text(shop: Harness) -> None:
    await reserve(shop)
    await register_transfer(shop, "5555", "4.00")
    shop.fake.fail_next_upload(GraphError(100, details="Invalid file"), times=2)
    await say_all(shop, PHONE, "transferencia", "5555")
    await shop.deliver()
    texts = shop.fake.texts_to(PHONE)
    fallbacks = [text for text in texts if text.startswith("🎟️ Ticket") and "Código:" in text]
    assert len(fallbacks) == 2
    assert all("Muestra este código en la entrada" in text for text in fallbacks)


async def test_my_tickets_lists_and_resends(shop: Harness) -> None:
    await reserve(shop)
    await register_transfer(shop, "7777", "4.00")
    await say_all(shop, PHONE, "transferencia", "7777")
    await shop.deliver()
    codes = ticket_codes(shop.fake, PHONE)
    await shop.admin("POST", f"/admin/tickets/{codes[0]}/redeem")
    await say_all(shop, PHONE, "mis tickets")
    await shop.deliver()
    listing = next(
        text
        for text in reversed(shop.fake.texts_to(PHONE))
        if text.startswith("Estos son tus tickets")
    )
    assert f"{codes[0]} · Sesión de simulador · ya usado" in listing
    assert f"{codes[1]} · Sesión de simulador · válido" in listing
    assert ticket_codes(shop.fake, PHONE).count(codes[1]) == 2
    assert ticket_codes(shop.fake, PHONE).count(codes[0]) == 1


# --- transfers -------------------------------------------------------------------------------------


async def test_one_reference_never_pays_two_reservations(shop: Harness) -> None:
    await reserve(shop, PHONE)
    await reserve(shop, OTHER, "2", OTHER_REGISTRATION)
    await register_transfer(shop, "4242", "4.00")
    await say_all(shop, PHONE, "transferencia", "4242")
    assert await shop.session_state(PHONE) == "inicio.menu"
    await say_all(shop, OTHER, "transferencia", "0004242")
    assert await shop.session_state(OTHER) == "pago.esperando_comprobante"
    replies = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(OTHER)]
    assert any("ya se usó para pagar otra reserva" in reply for reply in replies)
    async with shop.server.store.transaction() as transaction:
        transfer = await transaction.transfers.get("4242")
    assert transfer is not None and transfer.payment_id is not None


async def test_register_transfer_is_idempotent(shop: Harness) -> None:
    first = await register_transfer(shop, "001-234", "10.00")
    assert first.status_code == 201
    again = await register_transfer(shop, "ref 1234", "10.00")
    assert again.status_code == 200
    conflict = await register_transfer(shop, "0001234", "12.00")
    assert conflict.status_code == 409
    assert "already registered" in conflict.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"reference": "1", "amount": 4, "date": "2026-12-04"},
            "amount must be a string with two decimals",
        ),
        (
            {"reference": "1", "amount": "4,00", "date": "2026-12-04"},
            "amount must be a string with two decimals",
        ),
        (
            {"reference": "1", "amount": "4.00", "date": "04/12/2026"},
            "date must be a day as YYYY-MM-DD",
        ),
        ({"amount": "4.00", "date": "2026-12-04"}, "reference is required"),
        ({"reference": "---", "amount": "4.00", "date": "2026-12-04"}, "has no letters or digits"),
    ],
)
async def test_register_transfer_rejects_invalid_input(
    shop: Harness, body: dict[str, Any], message: str
) -> None:
    response = await shop.admin("POST", "/admin/transfers", body)
    assert response.status_code == 422
    assert message in response.json()["error"]


async def test_wrong_amount_goes_to_review_and_is_explained(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "31337")
    response = await register_transfer(shop, "31337", "3.00")
    assert response.json()["result"] == "review"
    assert await shop.session_state(PHONE) == "pago.verificando"
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert any("no coincide con el total de tu reserva ($4.00)" in text for text in texts)
    pending = (await shop.admin("GET", "/admin/payments?status=review")).json()
    assert [
        (item["reservation"], item["amount"], item["received"], item["reference"])
        for item in pending
    ] == [(code, "4.00", "3.00", "31337")]
    approved = await shop.admin("POST", f"/admin/payments/{pending[0]['id']}/approve")
    assert approved.status_code == 200
    assert approved.json()["status"] == "paid"
    await shop.deliver()
    assert len(ticket_codes(shop.fake, PHONE)) == 2
    again = await shop.admin("POST", f"/admin/payments/{pending[0]['id']}/approve")
    assert again.status_code == 409


async def test_reject_tells_the_customer_and_returns_places(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "8080")
    payment = await payment_of(shop, code)
    response = await shop.admin(
        "POST",
        f"/admin/payments/{payment.id}/reject",
        {"reason": "el comprobante es de otra cuenta"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert any(
        "No pudimos aprobar tu pago: el comprobante es de otra cuenta." in text for text in texts
    )
    assert await shop.session_state(PHONE) == "inicio.menu"
    async with shop.server.store.transaction() as transaction:
        event = await transaction.events.get("simulador")
    assert event is not None and event.remaining == 100


async def test_reject_needs_a_reason(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "8081")
    payment = await payment_of(shop, code)
    response = await shop.admin("POST", f"/admin/payments/{payment.id}/reject", {})
    assert response.status_code == 422


async def test_pending_payments_list(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "Ref. 000-4455")
    listed = (await shop.admin("GET", "/admin/payments?status=pending")).json()
    assert listed == [
        {
            "id": listed[0]["id"],
            "reservation": code,
            "phone": PHONE,
            "method": "transfer",
            "status": "pending",
            "amount": "4.00",
            "amount_cents": 400,
            "received": None,
            "received_cents": None,
            "reference": "4455",
            "reason": None,
            "receipt": None,
            "created_at": listed[0]["created_at"],
        }
    ]
    assert (await shop.admin("GET", "/admin/payments?status=unknown")).status_code == 422


async def test_receipt_photo_is_downloaded_and_served(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia")
    photo = b"\x89PNG\r\n\x1a\nreceipt-bytes"
    shop.fake.add_media("1184528329483721", photo, "image/jpeg")
    body = messages_body(
        message(
            PHONE, "image", {"id": "1184528329483721", "mime_type": "image/jpeg", "sha256": "x"}
        )
    )
    assert (await shop.post(body)).status_code == 200
    assert await shop.session_state(PHONE) == "pago.verificando"
    assert shop.server.receipts is not None
    assert await shop.server.receipts.fetch_round() == 1
    payment = await payment_of(shop, code)
    response = await shop.admin("GET", f"/admin/payments/{payment.id}/receipt")
    assert response.status_code == 200
    assert response.content == photo
    assert response.headers["content-type"] == "image/jpeg"
    listed = (await shop.admin("GET", f"/admin/payments/{payment.id}")).json()
    assert listed["receipt"] == "stored"


async def test_money_after_expiry_buys_free_places(shop: Harness) -> None:
    await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "6006")
    shop.clock.advance(hours=25)
    await shop.server.sweeper.sweep()
    code = await reserve(shop, PHONE, "1", ["menu", "comprar"])
    assert code
    response = await register_transfer(shop, "6006", "4.00")
    assert response.json()["result"] == "paid"


async def test_money_after_expiry_without_places_is_refunded(
    tmp_path: Path, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    flows = small_catalogue(tmp_path, capacity=2)
    shop = await start_harness(make_config(tmp_path, flows), load_bot(flows), clock, fake)
    try:
        await reserve(shop, PHONE, "2")
        await say_all(shop, PHONE, "transferencia", "7007")
        clock.advance(hours=25)
        await shop.server.sweeper.sweep()
        await reserve(shop, OTHER, "2", OTHER_REGISTRATION)
        response = await register_transfer(shop, "7007", "4.00")
        assert response.json()["result"] == "refund_due"
        texts = [
            entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)
        ]
        assert any("Te devolveremos el dinero" in text for text in texts)
        handoffs = (await shop.admin("GET", "/admin/handoffs")).json()
        assert [item["phone"] for item in handoffs] == [PHONE]
    finally:
        await shop.client.aclose()
        await shop.server.stop()


# --- holds ---------------------------------------------------------------------------------------


def small_catalogue(tmp_path: Path, capacity: int) -> str:
    """The ticket bot with one event of `capacity` places."""
    import shutil

    directory = tmp_path / "flows"
    shutil.copytree(
        packaged_flows(), directory, ignore=shutil.ignore_patterns("__pycache__", "*.py")
    )
    settings = directory / "bot.yaml"
    text = settings.read_text(encoding="utf-8").replace("capacidad: 100", f"capacidad: {capacity}")
    settings.write_text(
        text.replace("actions: flows.actions", "actions: flows.actions"), encoding="utf-8"
    )
    return str(directory)


async def test_capacity_five_with_twenty_concurrent_customers(tmp_path: Path) -> None:
    path = str(tmp_path / "holds.db")
    stores = [await Store.open(path), await Store.open(path)]
    now = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    async with stores[0].transaction() as transaction:
        await transaction.events.sync([EventRecord("obra", "Obra", 500, 5, 10, True, None)], now)

    async def customer(number: int) -> bool:
        store = stores[number % 2]
        async with store.transaction() as transaction:
            held = await payments.hold(
                transaction,
                phone=f"5939900{number:05d}",
                event_id="obra",
                quantity=1,
                minutes=15,
                now=now,
            )
            await asyncio.sleep(0)
            return held is not None

    results = await asyncio.gather(*(customer(number) for number in range(20)))
    assert sum(results) == 5
    async with stores[1].transaction() as transaction:
        event = await transaction.events.get("obra")
    assert event is not None
    assert event.taken == 5
    assert event.remaining == 0
    for store in stores:
        await store.close()


async def test_capacity_over_the_webhook(
    tmp_path: Path, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    flows = small_catalogue(tmp_path, capacity=3)
    shop = await start_harness(make_config(tmp_path, flows), load_bot(flows), clock, fake)
    try:
        await reserve(shop, PHONE, "2")
        await say_all(shop, OTHER, *OTHER_REGISTRATION)
        assert await shop.session_state(OTHER) == "reserva.esperando_cantidad"
        await say_all(shop, OTHER, "3")
        assert await shop.session_state(OTHER) == "reserva.esperando_cantidad"
        texts = [
            entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(OTHER)
        ]
        assert any("puedes llevar hasta 1" in text or "hasta 1 tickets" in text for text in texts)
    finally:
        await shop.client.aclose()
        await shop.server.stop()


async def test_expired_hold_returns_tickets_and_tells_customer(shop: Harness) -> None:
    code = await reserve(shop)
    shop.clock.advance(minutes=16)
    assert await shop.server.sweeper.sweep() == 1
    assert await shop.session_state(PHONE) == "inicio.menu"
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert "Se venció el tiempo para pagar tu reserva" in texts[-2]
    async with shop.server.store.transaction() as transaction:
        reservation = await transaction.reservations.by_code(code)
        event = await transaction.events.get("simulador")
    assert reservation is not None and reservation.status is ReservationStatus.EXPIRED
    assert event is not None and event.remaining == 100
    assert (await shop.admin("GET", "/admin/stats")).json()["expired"] == 1


async def test_expiry_of_a_hold_left_behind_is_a_plain_notice(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "menu")
    shop.clock.advance(minutes=9)
    await say_all(shop, PHONE, "hola")
    shop.clock.advance(minutes=7)
    await shop.server.sweeper.sweep()
    assert await shop.session_state(PHONE) == "inicio.menu"
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert f"Se venció el tiempo para pagar la reserva *{code}*" in texts[-1]


async def test_idle_customer_at_menu_hears_only_of_the_hold(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "menu")
    shop.clock.advance(minutes=16)
    await shop.server.sweeper.sweep()
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert f"Se venció el tiempo para pagar la reserva *{code}*" in texts[-1]
    assert not any("cerré esta conversación" in text for text in texts)


async def test_idle_customer_mid_registration_is_told(shop: Harness) -> None:
    await say_all(shop, PHONE, "hola", "comprar")
    shop.clock.advance(minutes=11)
    await shop.server.sweeper.sweep()
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert texts[-1].startswith("Como no tuve respuesta en un rato, cerré esta conversación.")


async def test_cancel_returns_places(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "cancelar")
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert (
        f"Listo, cancelé lo que estábamos haciendo y liberé los 2 tickets de tu reserva *{code}*."
        in texts
    )
    async with shop.server.store.transaction() as transaction:
        reservation = await transaction.reservations.by_code(code)
    assert reservation is not None and reservation.status is ReservationStatus.CANCELLED
    assert (await shop.admin("GET", "/admin/stats")).json()["cancelled"] == 1


async def test_verification_keeps_the_hold_for_a_day(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "9090")
    shop.clock.advance(hours=2)
    await shop.server.sweeper.sweep()
    assert await shop.session_state(PHONE) == "pago.verificando"
    shop.clock.advance(hours=23)
    await shop.server.sweeper.sweep()
    assert await shop.session_state(PHONE) == "inicio.menu"
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert any("No pudimos confirmar tu pago a tiempo" in text for text in texts)
    payment = await payment_of(shop, code)
    assert payment.status is PaymentStatus.PENDING


# --- card payments ---------------------------------------------------------------------------------


async def card(
    shop: Harness, body: dict[str, Any], secret: str = PAYMENTS_SECRET
) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = {"content-type": "application/json", "x-payments-signature": sign(secret, raw)}
    return await shop.client.post("/payments/webhook", content=raw, headers=headers)


async def test_card_payment_confirms(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "tarjeta")
    assert await shop.session_state(PHONE) == "pago.esperando_pago_tarjeta"
    response = await card(
        shop,
        {"reservation": code, "status": "paid", "amount": "4.00", "provider_reference": "ch_1"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "applied"
    assert await shop.session_state(PHONE) == "inicio.menu"
    await shop.deliver()
    assert len(ticket_codes(shop.fake, PHONE)) == 2


async def test_card_webhook_repeat_changes_nothing(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "tarjeta")
    body = {"reservation": code, "status": "paid", "amount": "4.00", "provider_reference": "ch_2"}
    assert (await card(shop, body)).json()["status"] == "applied"
    repeated = await card(shop, body)
    assert repeated.status_code == 200
    assert repeated.json()["status"] == "duplicate"
    await shop.deliver()
    assert len(ticket_codes(shop.fake, PHONE)) == 2
    assert (await shop.admin("GET", "/admin/stats")).json()["tickets_sold"] == 2


async def test_card_webhook_bad_signature(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "tarjeta")
    body = {"reservation": code, "status": "paid", "amount": "4.00", "provider_reference": "ch_3"}
    response = await card(shop, body, secret="wrong")
    assert response.status_code == 401
    unsigned = await shop.client.post("/payments/webhook", content=json.dumps(body).encode())
    assert unsigned.status_code == 401
    assert await shop.session_state(PHONE) == "pago.esperando_pago_tarjeta"
    assert (await shop.admin("GET", "/admin/stats")).json()["paid"] == 0


async def test_card_failure_offers_to_retry(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "tarjeta")
    response = await card(
        shop,
        {"reservation": code, "status": "failed", "amount": "4.00", "provider_reference": "ch_4"},
    )
    assert response.status_code == 200
    assert await shop.session_state(PHONE) == "pago.eligiendo_metodo"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (
            {
                "reservation": "NOPE99",
                "status": "paid",
                "amount": "4.00",
                "provider_reference": "x",
            },
            404,
        ),
        (
            {"reservation": "X", "status": "refunded", "amount": "4.00", "provider_reference": "x"},
            422,
        ),
        ({"reservation": "X", "status": "paid", "amount": 4, "provider_reference": "x"}, 422),
    ],
)
async def test_card_webhook_invalid(shop: Harness, body: dict[str, Any], status: int) -> None:
    assert (await card(shop, body)).status_code == status


# --- tickets at the door -------------------------------------------------------------------------


async def paid_codes(shop: Harness) -> list[str]:
    await reserve(shop)
    await register_transfer(shop, "1111", "4.00")
    await say_all(shop, PHONE, "transferencia", "1111")
    await shop.deliver()
    return ticket_codes(shop.fake, PHONE)


async def test_redeem_twice(shop: Harness) -> None:
    code = (await paid_codes(shop))[0]
    first = await shop.admin("POST", f"/admin/tickets/{code}/redeem")
    assert first.status_code == 200
    assert first.json()["status"] == "redeemed"
    second = await shop.admin("POST", f"/admin/tickets/{code.lower().replace('-', ' ')}/redeem")
    assert second.status_code == 409
    assert "redeemed" in second.json()["error"]
    assert (await shop.admin("GET", f"/admin/tickets/{code}")).json()["status"] == "redeemed"


async def test_unknown_ticket(shop: Harness) -> None:
    assert (await shop.admin("GET", "/admin/tickets/AAAAA-AAAAA")).status_code == 404
    assert (await shop.admin("POST", "/admin/tickets/AAAAA-AAAAA/redeem")).status_code == 404


async def test_attendees_csv(shop: Harness) -> None:
    codes = await paid_codes(shop)
    response = await shop.admin("GET", "/admin/events/simulador/attendees.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["ticket", "status", "reservation", "phone", "name"]
    assert [row[0] for row in rows[1:]] == codes
    assert rows[1][4] == "María José Pérez"


# --- admin access ------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token", ADMIN_TOKEN + "x", ""])
async def test_admin_rejects_missing_or_wrong_token(shop: Harness, token: str | None) -> None:
    for method, path in (
        ("GET", "/admin/stats"),
        ("GET", "/admin/payments"),
        ("POST", "/admin/transfers"),
    ):
        response = await shop.admin(method, path, {}, token=token)
        assert response.status_code == 401
        assert response.json() == {"error": "missing or invalid bearer token"}


async def test_admin_disabled_without_a_token(
    tmp_path: Path, ticket_bot: Bot, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    shop = await start_harness(
        make_config(tmp_path, packaged_flows(), admin_token=None), ticket_bot, clock, fake
    )
    try:
        for path in ("/admin/stats", "/admin/payments", "/admin/tickets/X", "/admin/nothing"):
            response = await shop.admin("GET", path)
            assert response.status_code == 404
    finally:
        await shop.client.aclose()
        await shop.server.stop()


# --- the 24-hour window ---------------------------------------------------------------------------


async def test_news_after_a_day_without_template_is_undeliverable(shop: Harness) -> None:
    await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "2323")
    shop.clock.advance(hours=23, minutes=59)
    shop.clock.advance(minutes=2)
    await register_transfer(shop, "2323", "4.00")
    failed = [entry for entry in await shop.outbox(PHONE) if entry.status is OutboxStatus.FAILED]
    assert failed
    assert all("outside the 24-hour window" in (entry.error_detail or "") for entry in failed)
    listed = (await shop.admin("GET", "/admin/undelivered")).json()
    assert {item["phone"] for item in listed} == {PHONE}


async def test_news_after_a_day_uses_the_template(
    tmp_path: Path, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    import shutil

    directory = tmp_path / "flows"
    shutil.copytree(
        packaged_flows(), directory, ignore=shutil.ignore_patterns("__pycache__", "*.py")
    )
    settings = directory / "bot.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + "\nnotification_template:\n  name: aviso_compra\n  language: es\n",
        encoding="utf-8",
    )
    shop = await start_harness(
        make_config(tmp_path, str(directory)), load_bot(str(directory)), clock, fake
    )
    try:
        await reserve(shop)
        await say_all(shop, PHONE, "transferencia", "2424")
        clock.advance(hours=25)
        await register_transfer(shop, "2424", "4.00")
        await shop.deliver()
        templates = [
            received.body for received in fake.messages if received.body["type"] == "template"
        ]
        assert templates
        first = templates[0]["template"]
        assert first["name"] == "aviso_compra"
        assert first["language"] == {"code": "es"}
        parameter = first["components"][0]["parameters"][0]["text"]
        assert "\n" not in parameter
        assert "Recibimos tu pago de $4.00" in parameter or "Pago confirmado" in parameter
    finally:
        await shop.client.aclose()
        await shop.server.stop()


def test_reference_normalisation() -> None:
    for typed in (
        "001234567",
        "1234567",
        "Ref. 001-234-567",
        "Comprobante: 0012 34567",
        "N° 1234567",
        "#001234567",
    ):
        assert payments.normalize_reference(typed) == "1234567", typed
    assert payments.normalize_reference("ab-00123") == "AB00123"
    assert payments.normalize_reference("000") == "0"
    assert payments.normalize_reference("---") == ""


def test_ticket_codes_have_forty_bits() -> None:
    from flows.codes import ALPHABET, TICKET_CODE_BITS, ticket_code

    assert TICKET_CODE_BITS >= 40
    codes = {ticket_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert re.fullmatch(f"[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}", code)
    for confusable in "0O1IL2Z5S8B6G":
        assert confusable not in ALPHABET


def test_expiry_time_is_shown_in_ecuador(ticket_bot: Bot) -> None:
    assert ticket_bot.compiled.spec.timezone.utcoffset(datetime(2026, 12, 4)) == timedelta(hours=-5)


def two_events(tmp_path: Path) -> str:
    """The ticket bot selling two dated events, the second with one place."""
    import shutil

    directory = tmp_path / "flows"
    shutil.copytree(
        packaged_flows(), directory, ignore=shutil.ignore_patterns("__pycache__", "*.py")
    )
    settings = directory / "bot.yaml"
    catalogue = """  catalogo:
    - id: viernes
      nombre: Función del viernes
      fecha: 2026-12-18T19:30:00-05:00
      precio: "5.00"
      capacidad: 50
      limite_por_compra: 4
    - id: estreno
      nombre: Estreno
      fecha: 2026-12-19T20:00:00-05:00
      precio: "8.50"
      capacidad: 1
      limite_por_compra: 4
"""
    text = settings.read_text(encoding="utf-8")
    start = text.index("  catalogo:")
    end = text.index("  # How long confirmed tickets")
    settings.write_text(text[:start] + catalogue + text[end:], encoding="utf-8")
    return str(directory)


async def test_several_events_listed_and_sold_out_said(
    tmp_path: Path, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    flows = two_events(tmp_path)
    shop = await start_harness(make_config(tmp_path, flows), load_bot(flows), clock, fake)
    try:
        await say_all(shop, PHONE, *REGISTRATION[:-1])
        await say_all(shop, PHONE, "si")
        assert await shop.session_state(PHONE) == "reserva.eligiendo_evento"
        listing = (await shop.outbox(PHONE))[-1].payload["interactive"]
        rows = listing["action"]["sections"][0]["rows"]
        assert [row["id"] for row in rows] == ["evento_viernes", "evento_estreno"]
        assert rows[0]["description"] == "viernes 18/12 a las 19:30 · $5.00 por ticket"
        await say_all(shop, PHONE, "estreno", "1", "si")
        assert await shop.session_state(PHONE) == "pago.eligiendo_metodo"

        await say_all(shop, OTHER, *OTHER_REGISTRATION)
        rows = (await shop.outbox(OTHER))[-1].payload["interactive"]["action"]["sections"][0][
            "rows"
        ]
        assert rows[1]["description"].startswith("Agotado · ")
        await say_all(shop, OTHER, "2")
        texts = [
            entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(OTHER)
        ]
        assert "Uy, ese evento ya se agotó 😔 Elige otro, por favor." in texts
        assert await shop.session_state(OTHER) == "reserva.eligiendo_evento"
        await say_all(shop, OTHER, "1")
        question = (await shop.outbox(OTHER))[-1].payload["text"]["body"]
        assert question == (
            "¿Cuántos tickets quieres para *Función del viernes* (viernes 18/12 a las 19:30)? "
            "Cada uno cuesta $5.00 y puedes llevar hasta 4."
        )
    finally:
        await shop.client.aclose()
        await shop.server.stop()


# --- fixes after a trial run ----------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["te pago a las 5", "H4DTPH", "ya pagué", "123", "AB12CD"])
async def test_chat_is_not_taken_for_a_reference(shop: Harness, typed: str) -> None:
    await reserve(shop)
    await say_all(shop, PHONE, "transferencia", typed)
    assert await shop.session_state(PHONE) == "pago.esperando_comprobante"


async def test_labelled_reference_is_accepted(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "Comprobante N° 001-234-567")
    assert await shop.session_state(PHONE) == "pago.verificando"
    assert (await payment_of(shop, code)).reference == "1234567"


async def test_short_card_payment_goes_to_review_and_keeps_places(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "tarjeta")
    await card(
        shop,
        {"reservation": code, "status": "paid", "amount": "1.00", "provider_reference": "ch_short"},
    )
    assert await shop.session_state(PHONE) == "pago.verificando"
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert "El monto que recibimos no coincide con el total de tu reserva ($4.00)" in texts[-1]
    assert not any("transferencia" in text for text in texts[-1:])
    shop.clock.advance(minutes=30)
    await shop.server.sweeper.sweep()
    async with shop.server.store.transaction() as transaction:
        reservation = await transaction.reservations.by_code(code)
    assert reservation is not None and reservation.status is ReservationStatus.HELD
    payment = await payment_of(shop, code)
    approved = await shop.admin("POST", f"/admin/payments/{payment.id}/approve")
    assert approved.json()["status"] == "paid"
    assert (await shop.admin("GET", "/admin/stats")).json()["revenue"] == "1.00"


async def test_second_card_payment_is_refunded_with_the_right_words(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "tarjeta")
    await card(
        shop,
        {"reservation": code, "status": "paid", "amount": "4.00", "provider_reference": "ch_a"},
    )
    await card(
        shop,
        {"reservation": code, "status": "paid", "amount": "4.00", "provider_reference": "ch_b"},
    )
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert (
        "que ya estaba pagada, así que te lo devolveremos; tus tickets siguen siendo válidos"
        in texts[-1]
    )
    handoffs = (await shop.admin("GET", "/admin/handoffs")).json()
    assert handoffs[-1]["note"].startswith("refund 4.00 of payment")
    refund = next(
        item for item in (await shop.admin("GET", "/admin/payments?status=refund_due")).json()
    )
    done = await shop.admin("POST", f"/admin/payments/{refund['id']}/refunded")
    assert done.json()["status"] == "refunded"
    assert (await shop.admin("POST", f"/admin/payments/{refund['id']}/refunded")).status_code == 409
    resolved = await shop.admin("POST", f"/admin/handoffs/{handoffs[-1]['id']}/resolve")
    assert resolved.status_code == 200
    assert (await shop.admin("GET", "/admin/handoffs")).json() == []
    assert (
        await shop.admin("POST", f"/admin/handoffs/{handoffs[-1]['id']}/resolve")
    ).status_code == 404


async def test_same_reference_from_two_customers_goes_to_review(shop: Harness) -> None:
    await reserve(shop, PHONE)
    other_code = await reserve(shop, OTHER, "2", OTHER_REGISTRATION)
    await say_all(shop, PHONE, "transferencia", "5151")
    await say_all(shop, OTHER, "transferencia", "5151")
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(OTHER)]
    assert any("ya aparece en otra compra" in text for text in texts)
    payment = await payment_of(shop, other_code)
    assert payment.status is PaymentStatus.REVIEW
    assert payment.reason.startswith("reference 5151 was also given for payment")
    response = await register_transfer(shop, "5151", "4.00")
    assert response.json()["result"] == "paid"
    assert await shop.session_state(PHONE) == "inicio.menu"
    assert await shop.session_state(OTHER) == "pago.verificando"


async def test_repeated_transfer_reports_what_it_paid(shop: Harness) -> None:
    await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "111222")
    assert (await register_transfer(shop, "000111222", "4.00")).json()["result"] == "paid"
    again = await register_transfer(shop, "111222", "4.00")
    assert again.status_code == 200
    assert again.json()["result"] == "paid"
    assert again.json()["payment"] is not None


async def test_reject_reason_keeps_one_full_stop(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia", "8282")
    payment = await payment_of(shop, code)
    await shop.admin(
        "POST",
        f"/admin/payments/{payment.id}/reject",
        {"reason": "No encontramos tu transferencia."},
    )
    texts = [entry.payload.get("text", {}).get("body", "") for entry in await shop.outbox(PHONE)]
    assert any(
        "No pudimos aprobar tu pago: No encontramos tu transferencia. Liberé" in text
        for text in texts
    )
    assert not any(".." in text for text in texts)


async def test_failed_receipt_download_is_visible(shop: Harness) -> None:
    code = await reserve(shop)
    await say_all(shop, PHONE, "transferencia")
    body = messages_body(message(PHONE, "image", {"id": "404404", "mime_type": "image/jpeg"}))
    assert (await shop.post(body)).status_code == 200
    assert shop.server.receipts is not None
    await shop.server.receipts.fetch_round()
    payment = await payment_of(shop, code)
    listed = (await shop.admin("GET", f"/admin/payments/{payment.id}")).json()
    assert listed["receipt"].startswith("failed: code 100:")


async def test_payments_filter_by_phone_and_reservation(shop: Harness) -> None:
    code = await reserve(shop, PHONE)
    await reserve(shop, OTHER, "2", OTHER_REGISTRATION)
    await say_all(shop, PHONE, "transferencia")
    await say_all(shop, OTHER, "transferencia")
    by_phone = (await shop.admin("GET", f"/admin/payments?phone={PHONE}")).json()
    assert [item["reservation"] for item in by_phone] == [code]
    by_code = (await shop.admin("GET", f"/admin/payments?reservation={code}")).json()
    assert [item["phone"] for item in by_code] == [PHONE]


async def test_lower_case_bearer_scheme(shop: Harness) -> None:
    response = await shop.client.get(
        "/admin/stats", headers={"authorization": f"bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200


async def test_ticket_shows_its_holder(shop: Harness) -> None:
    code = (await paid_codes(shop))[0]
    assert (await shop.admin("GET", f"/admin/tickets/{code}")).json()[
        "holder"
    ] == "María José Pérez"


async def test_past_events_are_not_sold(
    tmp_path: Path, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    flows = two_events(tmp_path)
    clock.now = datetime(2026, 12, 19, 1, 0, tzinfo=UTC)  # Friday's show has started.
    shop = await start_harness(make_config(tmp_path, flows), load_bot(flows), clock, fake)
    try:
        await say_all(shop, PHONE, *REGISTRATION)
        assert await shop.session_state(PHONE) == "reserva.esperando_cantidad"
        question = (await shop.outbox(PHONE))[-1].payload["text"]["body"]
        assert "*Estreno*" in question
    finally:
        await shop.client.aclose()
        await shop.server.stop()


def test_event_date_shows_the_year_when_it_differs() -> None:
    from flows.catalogue import describe_start

    start = datetime(2027, 1, 2, 0, 30, tzinfo=UTC)
    assert (
        describe_start(start, datetime(2027, 1, 1, 12, tzinfo=UTC)) == "viernes 01/01 a las 19:30"
    )
    assert (
        describe_start(start, datetime(2026, 12, 4, tzinfo=UTC)) == "viernes 01/01/2027 a las 19:30"
    )
