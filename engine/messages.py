"""Outgoing message types, the WhatsApp limits they obey, and their Graph API payloads.

The limits are those of the WhatsApp Cloud API for interactive messages. The flow
loader rejects static content over them; content that only grows past a limit at run
time (a long slot value) is shortened here with an ellipsis, because the Graph API
rejects the whole message otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIMITS",
    "Button",
    "ButtonsMessage",
    "ImageMessage",
    "ListMessage",
    "OutgoingMessage",
    "Row",
    "Section",
    "TextMessage",
    "fit",
    "plain_text",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """WhatsApp Cloud API limits, counted in Unicode code points."""

    text: int = 4096
    interactive_body: int = 1024
    header: int = 60
    footer: int = 60
    buttons: int = 3
    button_title: int = 20
    list_button: int = 20
    section_title: int = 24
    row_title: int = 24
    row_description: int = 72
    rows: int = 10
    sections: int = 10
    choice_id: int = 256
    caption: int = 1024


LIMITS = Limits()


def fit(text: str, limit: int, what: str) -> str:
    """Return `text` cut to `limit` code points, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    logger.warning("%s has %d characters, over the limit of %d; shortened", what, len(text), limit)
    return text[: limit - 1] + "…"


@dataclass(frozen=True)
class Button:
    id: str
    title: str


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True)
class Section:
    title: str | None
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class TextMessage:
    body: str

    def payload(self) -> dict[str, Any]:
        return {
            "type": "text",
            "text": {"body": fit(self.body, LIMITS.text, "text"), "preview_url": False},
        }


def _decorations(header: str | None, footer: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if header:
        extra["header"] = {"type": "text", "text": fit(header, LIMITS.header, "header")}
    if footer:
        extra["footer"] = {"text": fit(footer, LIMITS.footer, "footer")}
    return extra


@dataclass(frozen=True)
class ButtonsMessage:
    """Reply buttons: 1 to 3 buttons under a body text."""

    body: str
    buttons: tuple[Button, ...]
    header: str | None = None
    footer: str | None = None

    def payload(self) -> dict[str, Any]:
        buttons = [
            {
                "type": "reply",
                "reply": {
                    "id": button.id,
                    "title": fit(button.title, LIMITS.button_title, "button title"),
                },
            }
            for button in self.buttons[: LIMITS.buttons]
        ]
        interactive: dict[str, Any] = {
            "type": "button",
            "body": {"text": fit(self.body, LIMITS.interactive_body, "message body")},
            "action": {"buttons": buttons},
        }
        interactive.update(_decorations(self.header, self.footer))
        return {"type": "interactive", "interactive": interactive}


@dataclass(frozen=True)
class ListMessage:
    """A list message: a button that opens up to 10 rows in up to 10 sections."""

    body: str
    button: str
    sections: tuple[Section, ...]
    header: str | None = None
    footer: str | None = None

    @property
    def rows(self) -> tuple[Row, ...]:
        return tuple(row for section in self.sections for row in section.rows)

    def payload(self) -> dict[str, Any]:
        sections = []
        remaining = LIMITS.rows
        for section in self.sections:
            rows = [_row_payload(row) for row in section.rows[: max(remaining, 0)]]
            remaining -= len(rows)
            if not rows:
                continue
            entry: dict[str, Any] = {"rows": rows}
            if section.title:
                entry["title"] = fit(section.title, LIMITS.section_title, "section title")
            sections.append(entry)
        interactive: dict[str, Any] = {
            "type": "list",
            "body": {"text": fit(self.body, LIMITS.interactive_body, "message body")},
            "action": {
                "button": fit(self.button, LIMITS.list_button, "list button"),
                "sections": sections,
            },
        }
        interactive.update(_decorations(self.header, self.footer))
        return {"type": "interactive", "interactive": interactive}


def _row_payload(row: Row) -> dict[str, Any]:
    entry = {"id": row.id, "title": fit(row.title, LIMITS.row_title, "row title")}
    if row.description:
        entry["description"] = fit(row.description, LIMITS.row_description, "row description")
    return entry


@dataclass(frozen=True)
class ImageMessage:
    """An image: a public link, the id of uploaded media, or a QR code made when sending.

    With `qr`, the sender renders the text as a QR code, uploads it and sends the
    uploaded media; `fallback` is the text sent instead when that is not possible.
    Both travel in the payload under keys that start with "_", which the sender
    resolves and removes before calling the Graph API.
    """

    link: str | None = None
    media_id: str | None = None
    caption: str | None = None
    qr: str | None = None
    fallback: str | None = None

    def payload(self) -> dict[str, Any]:
        image: dict[str, Any]
        if self.media_id:
            image = {"id": self.media_id}
        elif self.qr is not None:
            image = {"_qr": self.qr}
        else:
            image = {"link": self.link}
        if self.caption:
            image["caption"] = fit(self.caption, LIMITS.caption, "caption")
        payload: dict[str, Any] = {"type": "image", "image": image}
        if self.fallback:
            payload["_fallback"] = fit(self.fallback, LIMITS.text, "fallback text")
        return payload


OutgoingMessage = TextMessage | ButtonsMessage | ListMessage | ImageMessage


def plain_text(message: OutgoingMessage) -> str:
    """Return the text a customer reads in `message`, options included, one part per line."""
    if isinstance(message, TextMessage):
        return message.body
    if isinstance(message, ImageMessage):
        return message.caption or message.fallback or ""
    parts = [message.header or "", message.body, message.footer or ""]
    if isinstance(message, ButtonsMessage):
        parts += [button.title for button in message.buttons]
    else:
        parts += [row.title for row in message.rows]
    return "\n".join(part for part in parts if part)
