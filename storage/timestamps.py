"""Timestamps as stored: ISO 8601 text in UTC with microseconds, so they sort as text."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_db", "from_db_optional", "to_db", "to_db_optional"]

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_db(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC).strftime(_FORMAT)


def to_db_optional(moment: datetime | None) -> str | None:
    return None if moment is None else to_db(moment)


def from_db(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


def from_db_optional(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)
