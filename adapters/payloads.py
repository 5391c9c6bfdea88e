"""Parse WhatsApp Cloud API webhook bodies into inbound messages, statuses and errors.

A body contains `entry[]`, each with `changes[]`, each with a `value` that may carry
`messages[]`, `statuses[]` and `errors[]`. Every item is parsed on its own: an item
that cannot be read becomes a `BadItem` with whatever ids it has, and the others go
on. Message types map to engine events; reactions and system notices are recorded
as seen but get no reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine import (
    ChoiceReply,
    InboundEvent,
    LocationMessage,
    MediaMessage,
    TextInput,
    UnsupportedMessage,
)

__all__ = [
    "BadItem",
    "InboundItem",
    "StatusItem",
    "WebhookBatch",
    "parse_webhook",
]

logger = logging.getLogger(__name__)

_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
# Message types that reach the conversation as "not readable": the bot re-prompts.
_UNREADABLE_TYPES = ("contacts", "order", "unsupported", "unknown", "ephemeral", "request_welcome")


@dataclass(frozen=True)
class InboundItem:
    """A customer message; `event` is None for messages that get no reply (reactions)."""

    message_id: str
    phone: str
    phone_number_id: str
    kind: str
    event: InboundEvent | None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class StatusItem:
    """A delivery status of a message the bot sent."""

    message_id: str
    status: str
    recipient: str
    timestamp: datetime
    error_code: int | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class BadItem:
    """An item that could not be read; logged with whatever ids it had."""

    where: str
    reason: str
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class WebhookBatch:
    messages: list[InboundItem] = field(default_factory=list)
    statuses: list[StatusItem] = field(default_factory=list)
    # Errors Meta reports about the app or number as a whole (entry.changes.value.errors).
    errors: list[dict[str, Any]] = field(default_factory=list)
    bad: list[BadItem] = field(default_factory=list)


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text(mapping: Any, key: str) -> str:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else ""


def _interactive_event(message: dict[str, Any]) -> InboundEvent:
    interactive = message.get("interactive")
    if not isinstance(interactive, dict):
        return UnsupportedMessage("interactive")
    kind = interactive.get("type")
    if kind in ("button_reply", "list_reply"):
        reply = interactive.get(kind)
        if isinstance(reply, dict) and _text(reply, "id"):
            return ChoiceReply(_text(reply, "id"), _text(reply, "title"))
    # nfm_reply (WhatsApp Flows) answers and interactive messages without their body.
    return UnsupportedMessage(f"interactive.{kind}" if isinstance(kind, str) else "interactive")


def _media_event(kind: str, message: dict[str, Any]) -> InboundEvent:
    media = message.get(kind)
    if not isinstance(media, dict) or not _text(media, "id"):
        return UnsupportedMessage(kind)
    return MediaMessage(
        kind=kind,
        media_id=_text(media, "id"),
        mime_type=_text(media, "mime_type"),
        sha256=_text(media, "sha256"),
        caption=_text(media, "caption"),
        filename=_text(media, "filename"),
    )


def _location_event(message: dict[str, Any]) -> InboundEvent:
    location = message.get("location")
    if not isinstance(location, dict):
        return UnsupportedMessage("location")
    try:
        latitude = float(location["latitude"])
        longitude = float(location["longitude"])
    except (KeyError, TypeError, ValueError):
        return UnsupportedMessage("location")
    return LocationMessage(latitude, longitude, _text(location, "name"), _text(location, "address"))


def message_event(message: dict[str, Any]) -> InboundEvent | None:
    """Map one `messages[]` item to an engine event; None means no reply is due."""
    kind = message.get("type")
    if kind == "text":
        text = message.get("text")
        return TextInput(_text(text, "body"))
    if kind == "interactive":
        return _interactive_event(message)
    if kind == "button":
        # A quick-reply button of a template message.
        button = message.get("button")
        payload = _text(button, "payload") or _text(button, "text")
        return (
            ChoiceReply(payload, _text(button, "text")) if payload else UnsupportedMessage("button")
        )
    if kind in _MEDIA_TYPES:
        return _media_event(str(kind), message)
    if kind == "location":
        return _location_event(message)
    if kind in ("reaction", "system"):
        # A reaction is not a message to answer; a system notice (a customer changed
        # number) is not written by the customer.
        return None
    if kind in _UNREADABLE_TYPES:
        return UnsupportedMessage(str(kind))
    return UnsupportedMessage(str(kind) if isinstance(kind, str) else "unknown")


def _parse_message(message: Any, phone_number_id: str, batch: WebhookBatch) -> None:
    if not isinstance(message, dict):
        batch.bad.append(BadItem("messages[]", "item is not an object"))
        return
    message_id = _text(message, "id")
    phone = _text(message, "from")
    if not message_id or not phone:
        ids = {"id": message_id} if message_id else {}
        batch.bad.append(BadItem("messages[]", "item has no `id` or no `from`", ids))
        return
    kind = message.get("type")
    batch.messages.append(
        InboundItem(
            message_id=message_id,
            phone=phone,
            phone_number_id=phone_number_id,
            kind=kind if isinstance(kind, str) else "unknown",
            event=message_event(message),
            sent_at=_timestamp(message.get("timestamp")),
        )
    )


def _parse_status(status: Any, batch: WebhookBatch) -> None:
    if not isinstance(status, dict):
        batch.bad.append(BadItem("statuses[]", "item is not an object"))
        return
    message_id = _text(status, "id")
    state = _text(status, "status")
    timestamp = _timestamp(status.get("timestamp"))
    if not message_id or not state or timestamp is None:
        ids = {"id": message_id} if message_id else {}
        batch.bad.append(
            BadItem("statuses[]", "item has no `id`, `status` or valid `timestamp`", ids)
        )
        return
    errors = status.get("errors")
    code: int | None = None
    detail: str | None = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        code = first.get("code") if isinstance(first.get("code"), int) else None
        detail = _text(first.get("error_data"), "details") or _text(first, "title") or None
    batch.statuses.append(
        StatusItem(message_id, state, _text(status, "recipient_id"), timestamp, code, detail)
    )


def parse_webhook(body: Any, default_phone_number_id: str = "") -> WebhookBatch:
    """Parse a webhook body; never raises, whatever JSON value the body contains."""
    batch = WebhookBatch()
    entries = body.get("entry") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        if body:
            batch.bad.append(BadItem("body", "no `entry` list"))
        return batch
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                batch.bad.append(BadItem("changes[]", "change has no `value` object"))
                continue
            phone_number_id = (
                _text(value.get("metadata"), "phone_number_id") or default_phone_number_id
            )
            for message in _items(value, "messages", batch):
                _parse_message(message, phone_number_id, batch)
            for status in _items(value, "statuses", batch):
                _parse_status(status, batch)
            for error in _items(value, "errors", batch):
                if isinstance(error, dict):
                    batch.errors.append(error)
    return batch


def _items(value: dict[str, Any], key: str, batch: WebhookBatch) -> list[Any]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        batch.bad.append(BadItem(f"{key}", f"`{key}` is not a list"))
        return []
    return items
