"""Parsing every webhook shape the WhatsApp Cloud API sends."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.payloads import parse_webhook
from engine import ChoiceReply, LocationMessage, MediaMessage, TextInput, UnsupportedMessage
from tests.whatsapp import SAMPLES, envelope, message, messages_body, status_body, text

PHONE = "593990000001"


def one_event(item: dict[str, object]) -> object:
    batch = parse_webhook(messages_body(item))
    assert batch.bad == []
    assert len(batch.messages) == 1
    return batch.messages[0].event


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (text(PHONE, "Hola"), TextInput("Hola")),
        (
            message(
                PHONE,
                "interactive",
                {"type": "button_reply", "button_reply": {"id": "si", "title": "Sí"}},
            ),
            ChoiceReply("si", "Sí"),
        ),
        (
            message(
                PHONE,
                "interactive",
                {
                    "type": "list_reply",
                    "list_reply": {"id": "comprar", "title": "Comprar tickets", "description": "x"},
                },
            ),
            ChoiceReply("comprar", "Comprar tickets"),
        ),
        (
            message(
                PHONE,
                "interactive",
                {
                    "type": "nfm_reply",
                    "nfm_reply": {"response_json": "{}", "body": "Sent", "name": "flow"},
                },
            ),
            UnsupportedMessage("interactive.nfm_reply"),
        ),
        (
            message(PHONE, "interactive", {"type": "button_reply"}),
            UnsupportedMessage("interactive.button_reply"),
        ),
        (message(PHONE, "interactive"), UnsupportedMessage("interactive")),
        (
            message(PHONE, "button", {"payload": "comprar", "text": "Comprar"}),
            ChoiceReply("comprar", "Comprar"),
        ),
        (
            message(
                PHONE,
                "image",
                {"id": "m1", "mime_type": "image/jpeg", "sha256": "ab", "caption": "recibo"},
            ),
            MediaMessage("image", "m1", "image/jpeg", "ab", "recibo"),
        ),
        (
            message(PHONE, "video", {"id": "m2", "mime_type": "video/mp4"}),
            MediaMessage("video", "m2", "video/mp4"),
        ),
        (
            message(
                PHONE, "audio", {"id": "m3", "mime_type": "audio/ogg; codecs=opus", "voice": True}
            ),
            MediaMessage("audio", "m3", "audio/ogg; codecs=opus"),
        ),
        (
            message(PHONE, "audio", {"id": "m4", "mime_type": "audio/mpeg", "voice": False}),
            MediaMessage("audio", "m4", "audio/mpeg"),
        ),
        (
            message(
                PHONE,
                "document",
                {"id": "m5", "mime_type": "application/pdf", "filename": "recibo.pdf"},
            ),
            MediaMessage("document", "m5", "application/pdf", filename="recibo.pdf"),
        ),
        (
            message(PHONE, "sticker", {"id": "m6", "mime_type": "image/webp", "animated": True}),
            MediaMessage("sticker", "m6", "image/webp"),
        ),
        (
            message(PHONE, "location", {"latitude": -2.19, "longitude": -79.88, "name": "Malecón"}),
            LocationMessage(-2.19, -79.88, "Malecón"),
        ),
        (
            message(
                PHONE,
                "contacts",
                [{"name": {"formatted_name": "Ana"}, "phones": [{"phone": "+593"}]}],
            ),
            UnsupportedMessage("contacts"),
        ),
        (
            message(PHONE, "order", {"catalog_id": "1", "product_items": []}),
            UnsupportedMessage("order"),
        ),
        (message(PHONE, "unsupported"), UnsupportedMessage("unsupported")),
        (message(PHONE, "holographic", {"x": 1}), UnsupportedMessage("holographic")),
        (message(PHONE, "reaction", {"message_id": "wamid.OUT", "emoji": "👍"}), None),
        (message(PHONE, "reaction", {"message_id": "wamid.OUT"}), None),
        (message(PHONE, "system", {"body": "changed number", "type": "user_changed_number"}), None),
    ],
)
def test_message_types(item: dict[str, object], expected: object) -> None:
    assert one_event(item) == expected


def test_contact_without_profile() -> None:
    batch = parse_webhook(messages_body(text(PHONE, "hola"), profile=False))
    assert [item.phone for item in batch.messages] == [PHONE]


def test_phone_number_id_from_metadata_or_default() -> None:
    body = messages_body(text(PHONE, "hola"))
    assert parse_webhook(body).messages[0].phone_number_id == "106540352242922"
    del body["entry"][0]["changes"][0]["value"]["metadata"]
    assert parse_webhook(body, "fallback-id").messages[0].phone_number_id == "fallback-id"


def test_bad_item_does_not_drop_others() -> None:
    body = messages_body(text(PHONE, "uno"), text(PHONE, "dos"))
    items = body["entry"][0]["changes"][0]["value"]["messages"]
    items.insert(1, {"type": "text", "text": {"body": "sin remitente"}, "id": "wamid.BAD"})
    items.insert(0, "not an object")
    batch = parse_webhook(body)
    assert [item.event for item in batch.messages] == [TextInput("uno"), TextInput("dos")]
    assert len(batch.bad) == 2
    assert batch.bad[1].ids == {"id": "wamid.BAD"}


def test_several_entries_and_changes() -> None:
    first = messages_body(text(PHONE, "uno"))
    second = envelope(
        {
            "statuses": [
                {
                    "id": "wamid.X",
                    "status": "read",
                    "timestamp": "1764876001",
                    "recipient_id": PHONE,
                }
            ]
        },
        "other-number",
    )
    body = {
        "object": "whatsapp_business_account",
        "entry": [first["entry"][0], second["entry"][0], {"changes": [{"value": None}]}],
    }
    batch = parse_webhook(body)
    assert len(batch.messages) == 1
    assert [status.status for status in batch.statuses] == ["read"]
    assert len(batch.bad) == 1


def test_status_with_error() -> None:
    batch = parse_webhook(status_body("wamid.OUT", "failed", 1764876000, PHONE, error_code=131026))
    status = batch.statuses[0]
    assert (status.status, status.error_code, status.error_detail) == (
        "failed",
        131026,
        "Recipient cannot receive this message.",
    )


def test_value_errors_are_collected() -> None:
    body = envelope({"errors": [{"code": 131000, "title": "Something went wrong"}]})
    assert parse_webhook(body).errors == [{"code": 131000, "title": "Something went wrong"}]


@pytest.mark.parametrize(
    "body",
    [None, [], "text", 5, {"entry": "x"}, {"entry": [{"changes": [{"value": {"messages": 5}}]}]}],
)
def test_odd_bodies_never_raise(body: object) -> None:
    parse_webhook(body)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda path: path.name)
def test_every_sample_parses_cleanly(path: object) -> None:
    batch = parse_webhook(json.loads(path.read_text(encoding="utf-8")))  # type: ignore[attr-defined]
    assert batch.bad == []
    assert len(batch.messages) + len(batch.statuses) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
shaped_keys = st.sampled_from(
    [
        "entry",
        "changes",
        "value",
        "messages",
        "statuses",
        "errors",
        "metadata",
        "type",
        "from",
        "id",
        "text",
        "interactive",
    ]
)
shaped_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(shaped_keys, children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(json_values, shaped_values))
def test_parse_webhook_never_raises(body: object) -> None:
    batch = parse_webhook(body)
    assert all(item.message_id and item.phone for item in batch.messages)
