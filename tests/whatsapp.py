"""Builders of WhatsApp Cloud API webhook bodies for the tests, in Meta's documented shapes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from adapters.signatures import sign

SAMPLES = Path(__file__).resolve().parent.parent / "examples" / "webhooks"
BUSINESS_NUMBER_ID = "106540352242922"
APP_SECRET = "test-app-secret"
_ids = itertools.count(1)


def new_message_id() -> str:
    return f"wamid.TEST{next(_ids):06d}"


def envelope(value: dict[str, Any], phone_number_id: str = BUSINESS_NUMBER_ID) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "593990000000", "phone_number_id": phone_number_id},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }


def message(
    phone: str, kind: str, content: Any = None, message_id: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from": phone,
        "id": message_id or new_message_id(),
        "timestamp": "1764876000",
        "type": kind,
    }
    if content is not None:
        item[kind] = content
    return item


def text(phone: str, body: str, message_id: str | None = None) -> dict[str, Any]:
    return message(phone, "text", {"body": body}, message_id)


def messages_body(*items: dict[str, Any], profile: bool = True) -> dict[str, Any]:
    contacts = [
        {"wa_id": item["from"], **({"profile": {"name": "Cliente Prueba"}} if profile else {})}
        for item in items
    ]
    return envelope({"contacts": contacts, "messages": list(items)})


def status_body(
    message_id: str, status: str, timestamp: int, recipient: str, error_code: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
    }
    if error_code is not None:
        item["errors"] = [
            {
                "code": error_code,
                "title": "Message undeliverable",
                "error_data": {"details": "Recipient cannot receive this message."},
            }
        ]
    return envelope({"statuses": [item]})


def encode(body: dict[str, Any]) -> bytes:
    """Serialise as Meta does: compact, with non-ASCII characters escaped as \\uXXXX."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()


def signed_headers(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-hub-signature-256": sign(secret, raw)}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
