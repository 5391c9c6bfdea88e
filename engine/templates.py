"""Message templates: text with `{slot}` and `{slot|formatter}` fields.

Templates are parsed once when the flow loads, so a typo in a field is a load error
with its line and column, and rendering a message is a join over prepared parts.
`{{` and `}}` stand for literal braces.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

__all__ = ["FORMATTERS", "Field", "Template", "TemplateSyntaxError", "format_money"]

logger = logging.getLogger(__name__)

_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SLOT_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class TemplateSyntaxError(ValueError):
    """A template is malformed; `offset` is the 0-based position in its text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def format_money(value: Any) -> str:
    """Format integer cents as US dollars: 400 -> "$4.00", -50 -> "-$0.50"."""
    cents = int(value)
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{fraction:02d}"


def _parse_moment(value: Any) -> date | datetime:
    if isinstance(value, datetime | date):
        return value
    text = str(value)
    if "T" in text or " " in text:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return date.fromisoformat(text)


def _local(moment: date | datetime, timezone: tzinfo) -> date | datetime:
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.astimezone(timezone)
    return moment


def _format_date(value: Any, timezone: tzinfo) -> str:
    return _local(_parse_moment(value), timezone).strftime("%d/%m/%Y")


def _format_time(value: Any, timezone: tzinfo) -> str:
    return _local(_parse_moment(value), timezone).strftime("%H:%M")


def _format_datetime(value: Any, timezone: tzinfo) -> str:
    return _local(_parse_moment(value), timezone).strftime("%d/%m/%Y %H:%M")


Formatter = Callable[[Any, tzinfo], str]

FORMATTERS: Mapping[str, Formatter] = {
    "money": lambda value, timezone: format_money(value),
    "date": _format_date,
    "time": _format_time,
    "datetime": _format_datetime,
    "upper": lambda value, timezone: str(value).upper(),
    "lower": lambda value, timezone: str(value).lower(),
}


@dataclass(frozen=True)
class Field:
    """A `{slot}` or `{slot|formatter}` field of a template."""

    slot: str
    formatter: str | None
    offset: int


@dataclass(frozen=True)
class Template:
    """A parsed template: literal strings and fields, in order."""

    source: str
    parts: tuple[str | Field, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        parts: list[str | Field] = []
        literal: list[str] = []
        position = 0
        for match in _FIELD.finditer(source):
            literal.append(source[position : match.start()])
            position = match.end()
            token = match.group()
            if token in ("{{", "}}"):
                literal.append(token[0])
                continue
            if match.group(1) is None:
                raise TemplateSyntaxError(
                    f"unmatched {token!r} in template, write {token * 2!r} for a literal brace",
                    match.start(),
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_field(match.group(1), match.start()))
        literal.append(source[position:])
        if any(literal):
            parts.append("".join(literal))
        return cls(source, tuple(parts))

    @property
    def fields(self) -> tuple[Field, ...]:
        return tuple(part for part in self.parts if isinstance(part, Field))

    @property
    def static_text(self) -> str:
        """The template without its fields: a lower bound of the rendered text."""
        return "".join(part for part in self.parts if isinstance(part, str))

    def render(self, slots: Mapping[str, Any], timezone: tzinfo) -> str:
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        pieces = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
            else:
                pieces.append(_render_field(part, slots, timezone))
        return "".join(pieces)


def _parse_field(body: str, offset: int) -> Field:
    name, _, formatter = body.partition("|")
    name = name.strip()
    formatter = formatter.strip()
    if not _SLOT_NAME.match(name):
        raise TemplateSyntaxError(
            f"invalid slot name {name!r} in template, use lower-case letters, digits and "
            "underscores, as in {nombre}",
            offset,
        )
    if formatter and formatter not in FORMATTERS:
        known = ", ".join(sorted(FORMATTERS))
        raise TemplateSyntaxError(
            f"unknown formatter {formatter!r} in template, use one of: {known}", offset
        )
    return Field(name, formatter or None, offset)


def _render_field(field: Field, slots: Mapping[str, Any], timezone: tzinfo) -> str:
    value = slots.get(field.slot)
    if value is None:
        # The load-time checks make sure some path sets every slot a template uses,
        # but not that the path taken did. An empty field beats a failed turn.
        logger.warning("template field {%s} has no value; rendered as empty", field.slot)
        return ""
    if field.formatter is None:
        return str(value)
    try:
        return FORMATTERS[field.formatter](value, timezone)
    except (TypeError, ValueError):
        logger.warning(
            "slot %s cannot be formatted as %s; rendered as is", field.slot, field.formatter
        )
        return str(value)
