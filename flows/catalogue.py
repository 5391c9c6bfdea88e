"""The events on sale and the other business settings, read from bot.yaml's `settings`.

`settings_problems` checks them when the bot loads (and in `whatsapp-tickets check`),
so a price written as "2,00" is reported at its line instead of failing a customer's
purchase later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from engine import SettingsProblem
from engine.messages import LIMITS

__all__ = [
    "CatalogueError",
    "Event",
    "describe_start",
    "parse_catalogue",
    "parse_price",
    "settings_problems",
]

_EVENT_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_PRICE = re.compile(r"^\d{1,7}(\.\d{1,2})?$")
_BANK_KEYS = ("nombre", "tipo_cuenta", "numero_cuenta", "titular", "ruc")
ECUADOR = timezone(timedelta(hours=-5), "ECT")
_WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


class CatalogueError(ValueError):
    """The catalogue in the bot settings is invalid; `field` names the key at fault, if one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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

    def when(self) -> str:
        return describe_start(self.starts_at)


def describe_start(moment: datetime | None, now: datetime | None = None) -> str:
    """Return a start as customers read it ("sábado 20/12 a las 19:30"), or "" when undated.

    The time is shown in Ecuador's time zone (UTC-5 all year); the year is added when
    it is not the year of `now` ("sábado 02/01/2027 a las 19:30").
    """
    if moment is None:
        return ""
    local = moment.astimezone(ECUADOR)
    day = f"{local:%d/%m}"
    if now is not None and local.year != now.astimezone(ECUADOR).year:
        day = f"{local:%d/%m/%Y}"
    return f"{_WEEKDAYS[local.weekday()]} {day} a las {local:%H:%M}"


def parse_price(value: Any) -> int:
    """Return integer cents of a price written as "2.00" (or 2, or 2.5)."""
    text = str(value).strip()
    if isinstance(value, bool) or not _PRICE.match(text):
        raise CatalogueError(
            f'invalid price {value!r}, write dollars with a dot and two decimals, as in "2.00"',
            "precio",
        )
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:
        raise CatalogueError(f'invalid price {value!r}, write it as in "2.00"', "precio") from None


def _start(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise CatalogueError(
            f"invalid fecha {value!r}, write it as 2026-12-20T19:30:00-05:00", "fecha"
        ) from None
    if moment.tzinfo is None:
        raise CatalogueError(
            f"fecha {value!r} has no time zone offset, add one as in 2026-12-20T19:30:00-05:00",
            "fecha",
        )
    return moment


def _count(entry: dict[str, Any], key: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CatalogueError(f"{key} must be a whole number of at least 1, found {value!r}", key)
    return value


def _event(entry: Any) -> Event:
    if not isinstance(entry, dict):
        raise CatalogueError(
            f"each event must be a mapping with id, nombre, precio and capacidad, found {entry!r}"
        )
    event_id = entry.get("id")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise CatalogueError(
            f"invalid id {event_id!r}, use lower-case letters, digits and underscores", "id"
        )
    name = str(entry.get("nombre") or event_id)
    if len(name) > LIMITS.row_title:
        raise CatalogueError(
            f"nombre {name!r} has {len(name)} characters, over the {LIMITS.row_title} that fit in a WhatsApp list row; shorten it",
            "nombre",
        )
    return Event(
        id=event_id,
        name=name,
        price_cents=parse_price(entry.get("precio")),
        capacity=_count(entry, "capacidad"),
        order_limit=_count(entry, "limite_por_compra", 10),
        on_sale=bool(entry.get("en_venta", True)),
        starts_at=_start(entry.get("fecha")),
    )


def parse_catalogue(settings: dict[str, Any]) -> list[Event]:
    """Read `settings["catalogo"]`; raise CatalogueError at the first invalid entry."""
    entries = settings.get("catalogo") or []
    if not isinstance(entries, list):
        raise CatalogueError("catalogo must be a list of events")
    events = [_event(entry) for entry in entries]
    ids = [event.id for event in events]
    duplicates = sorted({event_id for event_id in ids if ids.count(event_id) > 1})
    if duplicates:
        raise CatalogueError(f"event id {duplicates[0]!r} appears twice; ids must be unique")
    return events


def _catalogue_problems(settings: dict[str, Any]) -> list[SettingsProblem]:
    entries = settings.get("catalogo")
    if entries is None:
        return [SettingsProblem((), "catalogo is missing; add the list of events on sale")]
    if not isinstance(entries, list):
        return [SettingsProblem(("catalogo",), "catalogo must be a list of events")]
    problems = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        try:
            event = _event(entry)
        except CatalogueError as error:
            path: tuple[str | int, ...] = ("catalogo", index)
            if error.field:
                path = (*path, error.field)
            problems.append(SettingsProblem(path, str(error)))
            continue
        if event.id in seen:
            problems.append(
                SettingsProblem(
                    ("catalogo", index, "id"),
                    f"event id {event.id!r} appears twice; ids must be unique",
                )
            )
        seen.add(event.id)
    return problems


def settings_problems(settings: dict[str, Any]) -> list[SettingsProblem]:
    """Check the ticket bot's settings: catalogue, hold minutes, bank details, card link."""
    problems = _catalogue_problems(settings)
    minutes = settings.get("minutos_reserva", 15)
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 24 * 60:
        problems.append(
            SettingsProblem(
                ("minutos_reserva",), f"must be whole minutes between 1 and 1440, found {minutes!r}"
            )
        )
    bank = settings.get("banco")
    if not isinstance(bank, dict):
        problems.append(
            SettingsProblem(("banco",), f"banco must be a mapping with {', '.join(_BANK_KEYS)}")
        )
    else:
        for key in _BANK_KEYS:
            if not str(bank.get(key) or "").strip():
                problems.append(
                    SettingsProblem(
                        ("banco",), f"banco.{key} is missing; customers need it to transfer"
                    )
                )
    link = settings.get("enlace_pago_tarjeta")
    if not isinstance(link, str) or not link.startswith("https://"):
        problems.append(
            SettingsProblem(
                ("enlace_pago_tarjeta",), "must be an https:// link to the card payment page"
            )
        )
    elif "{reservation}" not in link or "{amount}" not in link:
        problems.append(
            SettingsProblem(
                ("enlace_pago_tarjeta",),
                "must contain {reservation} and {amount}, which the bot fills in",
            )
        )
    return problems
