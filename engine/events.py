"""Inbound events: what reaches a conversation from the customer or from outside.

Adapters turn each transport's payloads into these types, so the runtime handles a
tap, a typed word, a photo or a bank confirmation the same way whichever channel
delivered it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ChoiceReply",
    "ExternalEvent",
    "InboundEvent",
    "LocationMessage",
    "MediaMessage",
    "TextInput",
    "UnsupportedMessage",
]


@dataclass(frozen=True)
class TextInput:
    """Text the customer typed."""

    text: str


@dataclass(frozen=True)
class ChoiceReply:
    """A tap on a reply button or list row; `title` is what the customer saw."""

    id: str
    title: str = ""


@dataclass(frozen=True)
class MediaMessage:
    """A photo, document, audio, video or sticker sent by the customer."""

    kind: str
    media_id: str
    mime_type: str = ""
    sha256: str = ""
    caption: str = ""
    filename: str = ""


@dataclass(frozen=True)
class LocationMessage:
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclass(frozen=True)
class UnsupportedMessage:
    """A message type the bot cannot read (contacts, orders, unknown types)."""

    kind: str


@dataclass(frozen=True)
class ExternalEvent:
    """An event that does not come from the customer, such as a confirmed payment."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


InboundEvent = (
    TextInput | ChoiceReply | MediaMessage | LocationMessage | UnsupportedMessage | ExternalEvent
)
