"""The events on sale, read from the `catalogo` list in the bot settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["CatalogueError", "Event", "parse_catalogue", "parse_price"]


class CatalogueError(ValueError):
    """The catalogue in the bot settings is invalid; the message names the entry and field."""


@dataclass(frozen=True)
class Event:
    """An event or time slot on sale. Prices are integer cents of US dollars."""

    id: str
    name: str
    price_cents: int
    capacity: int
    order_limit: int
    on_sale: bool
    starts_at: datetime | None = None


def parse_price(value: Any) -> int:
    """Return integer cents of a price written as "2.00" (or 2, or 2.5)."""
    try:
        amount = Decimal(str(value).strip().lstrip("$"))
    except InvalidOperation:
        raise CatalogueError(
            f'invalid price {value!r}, write it with two decimals as in "2.00"'
        ) from None
    cents = amount * 100
    if amount < 0 or cents != cents.to_integral_value():
        raise CatalogueError(
            f"invalid price {value!r}, use a positive amount with at most two decimals"
        )
    return int(cents)


def _positive(entry: dict[str, Any], key: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CatalogueError(
            f"catalogue entry {entry.get('id')!r}: {key} must be a whole number of at least 1"
        )
    return value


def _start(entry: dict[str, Any]) -> datetime | None:
    value = entry.get("fecha")
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise CatalogueError(
            f"catalogue entry {entry.get('id')!r}: invalid fecha {value!r}, write it as 2026-12-20T19:30-05:00"
        ) from None
    if moment.tzinfo is None:
        raise CatalogueError(
            f"catalogue entry {entry.get('id')!r}: fecha needs a time zone offset, as in -05:00"
        )
    return moment


def parse_catalogue(settings: dict[str, Any]) -> list[Event]:
    """Read `settings["catalogo"]`; raise CatalogueError naming the bad entry."""
    entries = settings.get("catalogo") or []
    if not isinstance(entries, list):
        raise CatalogueError("catalogo must be a list of events")
    events: list[Event] = []
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise CatalogueError(f"each catalogue entry needs a text `id`, found {entry!r}")
        if entry["id"] in seen:
            raise CatalogueError(
                f"catalogue entry {entry['id']!r} appears twice; ids must be unique"
            )
        seen.add(entry["id"])
        events.append(
            Event(
                id=entry["id"],
                name=str(entry.get("nombre") or entry["id"]),
                price_cents=parse_price(entry.get("precio", "0")),
                capacity=_positive(entry, "capacidad"),
                order_limit=_positive(entry, "limite_por_compra", 10),
                on_sale=bool(entry.get("en_venta", True)),
                starts_at=_start(entry),
            )
        )
    return events
