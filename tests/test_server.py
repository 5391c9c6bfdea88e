"""The webhook server in process: routes, exactly-once turns, the outbox and its deliverer.

The Graph API is the fake one, reached through httpx.MockTransport; the database is
a real SQLite file; the clock is moved by hand so that retries can be stepped through.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.cli import packaged_flows
from adapters.conversation import ConversationService
from adapters.fake_graph import FakeGraphAPI, GraphError
from adapters.graph import qr_png
from engine import Bot, TextInput, load_bot
from storage import OutboxRepository, OutboxStatus, Store
from tests.conftest import FakeClock
from tests.harness import Harness, make_config, start_harness
from tests.whatsapp import (
    APP_SECRET,
    SAMPLES,
    encode,
    messages_body,
    new_message_id,
    sample,
    signed_headers,
    status_body,
    text,
)

PHONE = "593990000001"
OTHER = "593990000002"
TOKEN = "test-token"
COUNTER_FLOWS = str(Path(__file__).parent / "bots" / "counter")


@pytest.fixture
def fake() -> FakeGraphAPI:
    return FakeGraphAPI(access_token=TOKEN)


@pytest.fixture
async def harness(
    tmp_path: Path, ticket_bot: Bot, clock: FakeClock, fake: FakeGraphAPI
) -> AsyncIterator[Harness]:
    started = await start_harness(make_config(tmp_path, packaged_flows()), ticket_bot, clock, fake)
    yield started
    await started.client.aclose()
    await started.server.stop()


@pytest.fixture(scope="module")
def counter_bot() -> Bot:
    return load_bot(COUNTER_FLOWS)


@pytest.fixture
async def counter(
    tmp_path: Path, counter_bot: Bot, clock: FakeClock, fake: FakeGraphAPI
) -> AsyncIterator[Harness]:
    started = await start_harness(make_config(tmp_path, COUNTER_FLOWS), counter_bot, clock, fake)
    yield started
    await started.client.aclose()
    await started.server.stop()


# --- routes -------------------------------------------------------------------------------


async def test_signed_text_gets_welcome_menu(harness: Harness) -> None:
    response = await harness.say(PHONE, "Hola")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert await harness.deliver() == 2
    sent = [received for received in harness.fake.messages if received.to == PHONE]
    assert [received.body["type"] for received in sent] == ["text", "interactive"]
    assert sent[0].text.startswith("¡Hola! 👋")
    assert sent[0].phone_number_id == "106540352242922"
    buttons = sent[1].body["interactive"]["action"]["buttons"]
    assert [button["reply"]["id"] for button in buttons] == ["comprar", "mis_tickets", "ayuda"]


async def test_wrong_signature_is_401(harness: Harness) -> None:
    raw = encode(messages_body(text(PHONE, "Hola")))
    response = await harness.post(raw, signed_headers(raw, secret="another-secret"))
    assert response.status_code == 401
    assert response.json() == {"error": "missing or invalid X-Hub-Signature-256"}
    assert await harness.outbox(PHONE) == []


async def test_missing_signature_is_401(harness: Harness) -> None:
    response = await harness.post(
        encode(messages_body(text(PHONE, "Hola"))), {"content-type": "application/json"}
    )
    assert response.status_code == 401


async def test_malformed_signature_header_is_401(harness: Harness) -> None:
    raw = encode(messages_body(text(PHONE, "Hola")))
    response = await harness.post(raw, {"x-hub-signature-256": "md5=abc"})
    assert response.status_code == 401


async def test_signature_over_escaped_non_ascii_bytes(harness: Harness) -> None:
    raw = encode(messages_body(text(PHONE, "¿Sí? Ñandú 👍")))
    assert b"\\u00bfS\\u00ed" in raw
    assert b"\\ud83d\\udc4d" in raw
    response = await harness.post(raw)
    assert response.status_code == 200
    # The same JSON re-serialised with UTF-8 characters has another signature.
    reencoded = json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode()
    response = await harness.post(reencoded, signed_headers(raw))
    assert response.status_code == 401


async def test_body_that_is_not_json_is_400(harness: Harness) -> None:
    raw = b"{not json"
    response = await harness.post(raw)
    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON"}


async def test_body_over_four_mebibytes_is_413(harness: Harness) -> None:
    raw = b'{"entry": [], "padding": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    response = await harness.post(raw, {"content-type": "application/json"})
    assert response.status_code == 413


async def test_json_that_is_not_an_object_is_200(harness: Harness) -> None:
    response = await harness.post(b"[]")
    assert response.status_code == 200


async def test_verification_challenge(harness: Harness) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": "verify-me",
        "hub.challenge": "1158201444",
    }
    response = await harness.client.get("/webhook", params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
        {},
    ],
)
async def test_verification_rejected(harness: Harness, params: dict[str, str]) -> None:
    response = await harness.client.get("/webhook", params=params)
    assert response.status_code == 403


async def test_health(harness: Harness) -> None:
    response = await harness.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_health_when_database_is_gone(harness: Harness) -> None:
    await harness.server.store.close()
    response = await harness.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "not responding"}
    harness.server.store = await Store.open(harness.server.config.db_path)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda path: path.name)
async def test_every_sample_is_accepted(harness: Harness, path: Path) -> None:
    raw = sample(path.name)
    response = await harness.post(raw)
    assert response.status_code == 200
    health = await harness.client.get("/healthz")
    assert health.status_code == 200


async def test_samples_get_the_expected_replies(harness: Harness) -> None:
    for name in (
        "text.json",
        "image.json",
        "sticker.json",
        "location.json",
        "unsupported.json",
        "reaction.json",
    ):
        assert (await harness.post(sample(name))).status_code == 200
    replies = await harness.outbox("593990000001")
    texts = [entry.payload.get("text", {}).get("body", "") for entry in replies]
    # The greeting and menu, then one re-prompt and the menu again for each of the
    # image, sticker, location and unsupported messages; the reaction gets nothing.
    assert len(replies) == 2 + 4 * 2
    assert sum("solo puedo leer mensajes de texto" in body for body in texts) == 4


# --- exactly once ------------------------------------------------------------------------


async def test_same_post_twice_changes_nothing(harness: Harness) -> None:
    raw = encode(messages_body(text(PHONE, "Hola")))
    assert (await harness.post(raw)).status_code == 200
    await harness.deliver()
    assert (await harness.post(raw)).status_code == 200
    assert await harness.deliver() == 0
    assert len(await harness.outbox(PHONE)) == 2
    assert len(harness.fake.messages) == 2


async def test_duplicate_inside_one_body(harness: Harness) -> None:
    message_id = new_message_id()
    body = messages_body(text(PHONE, "Hola", message_id), text(PHONE, "Hola", message_id))
    assert (await harness.post(body)).status_code == 200
    assert len(await harness.outbox(PHONE)) == 2


async def test_turn_state_survives_a_new_server(
    harness: Harness, tmp_path: Path, ticket_bot: Bot, clock: FakeClock
) -> None:
    await harness.say(PHONE, "Hola")
    await harness.client.aclose()
    await harness.server.stop()
    restarted = await start_harness(
        make_config(tmp_path, packaged_flows()), ticket_bot, clock, harness.fake
    )
    try:
        await restarted.say(PHONE, "comprar")
        async with restarted.server.store.transaction() as transaction:
            session = await transaction.sessions.get(PHONE)
        assert session is not None and session.state == "registro.esperando_cedula"
    finally:
        await restarted.client.aclose()
        # The fixture stops the first server; it must find a store to close.
        harness.server.store = restarted.server.store
        restarted.server.deliverer.stop()


async def test_replies_committed_before_a_crash_are_delivered_once(
    tmp_path: Path, ticket_bot: Bot, clock: FakeClock, fake: FakeGraphAPI
) -> None:
    config = make_config(tmp_path, packaged_flows())
    first = await start_harness(config, ticket_bot, clock, fake)
    assert (await first.say(PHONE, "Hola")).status_code == 200
    # The process stops after the commit and before any delivery round.
    await first.client.aclose()
    await first.server.stop()
    assert fake.messages == []

    second = await start_harness(config, ticket_bot, clock, fake)
    try:
        assert await second.deliver() == 2
        assert await second.deliver() == 0
        assert len(fake.texts_to(PHONE)) == 2
    finally:
        await second.client.aclose()
        await second.server.stop()


async def test_bad_item_rolls_back_alone(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    original = harness.server.service.run_turn

    async def failing_for_other(transaction: Any, phone: str, event: Any, now: Any) -> Any:
        if phone == OTHER:
            raise RuntimeError("bug while handling this message")
        return await original(transaction, phone, event, now)

    monkeypatch.setattr(harness.server.service, "run_turn", failing_for_other)
    other_id = new_message_id()
    body = messages_body(text(PHONE, "Hola"), text(OTHER, "Hola", other_id))
    response = await harness.post(body)
    assert response.status_code == 500
    assert len(await harness.outbox(PHONE)) == 2
    assert await harness.outbox(OTHER) == []
    # The failed message was not recorded, so Meta's retry of the same body runs it.
    monkeypatch.setattr(harness.server.service, "run_turn", original)
    assert (await harness.post(body)).status_code == 200
    assert len(await harness.outbox(PHONE)) == 2
    assert len(await harness.outbox(OTHER)) == 2


async def test_failed_action_apologises_and_keeps_state(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.say(PHONE, "Hola")
    action = harness.server.bot.compiled.actions.get("buscar_cliente")
    assert action is not None

    async def broken(context: Any) -> str:
        raise RuntimeError("database exploded")

    registry = harness.server.bot.compiled.actions
    monkeypatch.setitem(
        registry._actions, "buscar_cliente", dataclasses.replace(action, function=broken)
    )
    response = await harness.say(PHONE, "comprar")
    assert response.status_code == 200
    replies = await harness.outbox(PHONE)
    assert "problema técnico" in replies[-1].payload["text"]["body"]
    async with harness.server.store.transaction() as transaction:
        session = await transaction.sessions.get(PHONE)
    assert session is not None and session.state == "inicio.menu"


# --- order ---------------------------------------------------------------------------------------


async def test_concurrent_messages_from_one_number(counter: Harness) -> None:
    await counter.say(PHONE, "start")
    words = [f"m{index:02d}" for index in range(20)]
    responses = await asyncio.gather(*(counter.say(PHONE, word) for word in words))
    assert [response.status_code for response in responses] == [200] * 20

    async with counter.server.store.transaction() as transaction:
        session = await transaction.sessions.get(PHONE)
    assert session is not None
    log = session.slots["log"]
    assert sorted(log) == words
    replies = [entry.payload["text"]["body"] for entry in await counter.outbox(PHONE)][1:]
    assert replies == [f"#{number} {word}" for number, word in enumerate(log, start=1)]


async def test_sequential_messages_keep_their_order(counter: Harness) -> None:
    await counter.say(PHONE, "start")
    words = [f"w{index:02d}" for index in range(15)]
    for word in words:
        await counter.say(PHONE, word)
    await counter.deliver()
    assert counter.fake.texts_to(PHONE)[1:] == [
        f"#{number} {word}" for number, word in enumerate(words, start=1)
    ]


async def test_delivery_keeps_per_recipient_order_across_rounds(counter: Harness) -> None:
    await counter.say(PHONE, "start")
    for word in ("a", "b", "c"):
        await counter.say(PHONE, word)
        await counter.say(OTHER, word)
    counter.fake.fail_next(GraphError(status=500))
    await counter.deliver()
    counter.clock.advance(minutes=5)
    await counter.deliver()
    assert counter.fake.texts_to(PHONE) == ["Send anything.", "#1 a", "#2 b", "#3 c"]
    # The other customer's first message was taken by the greeting.
    assert counter.fake.texts_to(OTHER) == ["Send anything.", "#1 b", "#2 c"]


# --- retries ---------------------------------------------------------------------------------------


async def test_429_then_success(harness: Harness) -> None:
    harness.fake.fail_next(GraphError(status=429, retry_after=30))
    await harness.say(PHONE, "Hola")
    assert await harness.deliver() == 1
    entries = await harness.outbox(PHONE)
    assert entries[0].status is OutboxStatus.PENDING
    assert entries[0].attempts == 1
    assert entries[0].error_detail == "HTTP 429"
    harness.clock.advance(seconds=29)
    assert await harness.deliver() == 0
    harness.clock.advance(seconds=2)
    assert await harness.deliver() == 2
    assert [entry.status for entry in await harness.outbox(PHONE)] == [OutboxStatus.ACCEPTED] * 2


@pytest.mark.parametrize(
    "error",
    [
        GraphError(130429),
        GraphError(131000),
        GraphError(status=503),
        GraphError(2),
        GraphError(131048),
    ],
    ids=["throughput", "something-went-wrong", "http-503", "service-unavailable", "spam-rate"],
)
async def test_temporary_errors_are_retried(harness: Harness, error: GraphError) -> None:
    harness.fake.fail_next(error)
    await harness.say(PHONE, "Hola")
    await harness.deliver()
    harness.clock.advance(minutes=10)
    await harness.deliver()
    assert len(harness.fake.texts_to(PHONE)) == 2
    assert len(harness.fake.rejected) == 1


async def test_timeout_is_retried(harness: Harness) -> None:
    harness.fake.timeout_next()
    await harness.say(PHONE, "Hola")
    await harness.deliver()
    entries = await harness.outbox(PHONE)
    assert entries[0].error_detail == "timed out (ReadTimeout)"
    harness.clock.advance(minutes=10)
    await harness.deliver()
    assert len(harness.fake.texts_to(PHONE)) == 2


@pytest.mark.parametrize("code", [131026, 131047, 131051, 100])
async def test_permanent_error_is_not_retried(harness: Harness, code: int) -> None:
    harness.fake.fail_next(GraphError(code, details="Recipient cannot receive this message."))
    await harness.say(PHONE, "Hola")
    await harness.deliver()
    harness.clock.advance(hours=2)
    await harness.deliver()
    entries = await harness.outbox(PHONE)
    assert entries[0].status is OutboxStatus.FAILED
    assert entries[0].error_code == code
    assert entries[0].error_detail == "Recipient cannot receive this message."
    assert entries[0].attempts == 1
    assert len(harness.fake.rejected) == 1
    # The next reply does not wait for the failed one.
    assert entries[1].status is OutboxStatus.ACCEPTED


async def test_pair_rate_limit_pauses_only_that_recipient(harness: Harness) -> None:
    harness.fake.fail_next(GraphError(131056))
    await harness.say(PHONE, "Hola")
    await harness.say(OTHER, "Hola")
    await harness.deliver()
    assert len(harness.fake.texts_to(OTHER)) == 2
    assert harness.fake.texts_to(PHONE) == []
    harness.clock.advance(seconds=3)
    assert await harness.deliver() == 0
    harness.clock.advance(minutes=1)
    await harness.deliver()
    assert len(harness.fake.texts_to(PHONE)) == 2


async def test_expired_token_pauses_all_sending(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.fake.access_token = "renewed-token"
    await harness.say(PHONE, "Hola")
    await harness.say(OTHER, "Hola")
    with caplog.at_level(logging.ERROR, logger="adapters.delivery"):
        await harness.server.deliverer.deliver_round()
    assert "rejected the access token (code 190" in caplog.text
    assert await harness.server.deliverer.deliver_round() == 0
    harness.clock.advance(seconds=6)
    # After the pause a single probe is sent; it fails again and the pause doubles.
    assert await harness.server.deliverer.deliver_round() == 1
    assert [entry.attempts for entry in await harness.outbox(PHONE)] == [0, 0]
    harness.fake.access_token = TOKEN
    harness.clock.advance(seconds=11)
    await harness.deliver()
    assert len(harness.fake.texts_to(PHONE)) == 2
    assert len(harness.fake.texts_to(OTHER)) == 2


async def test_retries_give_up_after_a_day(harness: Harness) -> None:
    harness.fake.fail_next(GraphError(status=500), times=1000)
    await harness.say(PHONE, "Hola")
    for _ in range(40):
        await harness.deliver()
        harness.clock.advance(minutes=40)
    entries = await harness.outbox(PHONE)
    assert entries[0].status is OutboxStatus.FAILED
    assert entries[0].error_detail is not None
    assert entries[0].error_detail.startswith("gave up after")


# --- statuses ---------------------------------------------------------------------------------


async def test_statuses_out_of_order(harness: Harness) -> None:
    await harness.say(PHONE, "Hola")
    await harness.deliver()
    wamid = (await harness.outbox(PHONE))[0].message_id
    assert wamid is not None
    for status, timestamp in (
        ("read", 1764876003),
        ("delivered", 1764876002),
        ("sent", 1764876001),
    ):
        assert (await harness.post(status_body(wamid, status, timestamp, PHONE))).status_code == 200
    assert (await harness.outbox(PHONE))[0].status is OutboxStatus.READ


async def test_failed_status_records_reason(harness: Harness) -> None:
    await harness.say(PHONE, "Hola")
    await harness.deliver()
    wamid = (await harness.outbox(PHONE))[1].message_id
    assert wamid is not None
    await harness.post(status_body(wamid, "sent", 1764876001, PHONE))
    await harness.post(status_body(wamid, "failed", 1764876002, PHONE, error_code=131026))
    entry = (await harness.outbox(PHONE))[1]
    assert entry.status is OutboxStatus.FAILED
    assert entry.error_code == 131026


async def test_statuses_never_reach_the_conversation(harness: Harness) -> None:
    await harness.say(PHONE, "Hola")
    await harness.deliver()
    wamid = (await harness.outbox(PHONE))[0].message_id
    assert wamid is not None
    await harness.post(status_body(wamid, "delivered", 1764876002, PHONE))
    assert len(await harness.outbox(PHONE)) == 2


# --- inactivity -----------------------------------------------------------------------------------


async def test_sweeper_times_out_and_queues_notice(harness: Harness) -> None:
    await harness.say(PHONE, "Hola")
    await harness.say(PHONE, "comprar")
    harness.clock.advance(minutes=11)
    assert await harness.server.sweeper.sweep() == 1
    replies = await harness.outbox(PHONE)
    assert "cerré esta conversación" in replies[-1].payload["text"]["body"]


async def test_two_sweepers_race_on_one_session(
    tmp_path: Path, ticket_bot: Bot, clock: FakeClock
) -> None:
    path = str(tmp_path / "race.db")
    stores = [await Store.open(path), await Store.open(path)]
    queued: list[str] = []

    async def queue(transaction: Any, phone: str, messages: list[Any], now: Any) -> None:
        queued.append(phone)
        await transaction.outbox.enqueue(
            phone, "106540352242922", [item.payload() for item in messages], now
        )

    services = [ConversationService(ticket_bot, store, clock, on_replies=queue) for store in stores]
    await services[0].start()
    await services[0].handle(PHONE, TextInput("Hola"))
    await services[0].handle(PHONE, TextInput("comprar"))
    queued.clear()
    clock.advance(minutes=11)
    results = await asyncio.gather(services[0].expire_due(), services[1].expire_due())
    assert sorted(len(turns) for turns in results) == [0, 1]
    assert queued == [PHONE]
    async with stores[0].transaction() as transaction:
        notices = [
            entry
            for entry in await transaction.outbox.for_recipient(PHONE)
            if "cerré" in str(entry.payload)
        ]
    assert len(notices) == 1
    for store in stores:
        await store.close()


# --- logging --------------------------------------------------------------------------------------


async def test_logs_mask_phones_and_hide_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await harness.say(PHONE, "Hola")
        await harness.post(sample("status_delivered.json"))
        await harness.deliver()
    text_of_logs = "\n".join(record.getMessage() for record in caplog.records)
    assert PHONE not in text_of_logs
    assert "593******001" in text_of_logs
    for secret in (APP_SECRET, TOKEN, "verify-me"):
        assert secret not in text_of_logs
    webhook_lines = [
        record
        for record in caplog.records
        if record.name == "adapters.server" and record.levelno == logging.INFO
    ]
    assert len(webhook_lines) == 2
    delivery_lines = [record for record in caplog.records if record.name == "adapters.delivery"]
    assert len(delivery_lines) == 2


async def test_one_entry_failing_to_record_keeps_the_others(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.say(PHONE, "Hola")
    await harness.say(OTHER, "Hola")
    first = (await harness.outbox(PHONE))[0]
    original = OutboxRepository.mark_accepted

    async def failing(self: OutboxRepository, entry_id: int, message_id: str, now: Any) -> None:
        if entry_id == first.id:
            raise RuntimeError("disk full")
        await original(self, entry_id, message_id, now)

    monkeypatch.setattr(OutboxRepository, "mark_accepted", failing)
    with caplog.at_level(logging.ERROR, logger="adapters.delivery"):
        await harness.server.deliverer.deliver_round()
    assert (
        f"reply {first.id} to 593******001: the accepted result could not be recorded"
        in caplog.text
    )
    assert (await harness.outbox(OTHER))[0].status is OutboxStatus.ACCEPTED
    assert (await harness.outbox(PHONE))[0].status is OutboxStatus.PENDING


async def test_repeated_graph_message_id_is_recorded(harness: Harness) -> None:
    await harness.say(PHONE, "Hola")
    entries = await harness.outbox(PHONE)
    async with harness.server.store.transaction() as transaction:
        for entry in entries:
            await transaction.outbox.mark_accepted(entry.id, "wamid.SAME", harness.clock.now)
    assert [entry.status for entry in await harness.outbox(PHONE)] == [OutboxStatus.ACCEPTED] * 2


def test_fake_ids_differ_between_runs() -> None:
    assert FakeGraphAPI()._run != FakeGraphAPI()._run


def test_ticket_qr_is_a_full_qr_code() -> None:
    import struct

    png = qr_png("479NF-VVEDX")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    # A full QR code of version 1 or more is at least 21 modules wide; a Micro QR code
    # of this text would be 15. Ten pixels a module, four modules of quiet zone a side.
    assert width == height
    assert width >= (21 + 2 * 4) * 10
