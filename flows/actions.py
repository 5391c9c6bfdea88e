"""The Python actions that the ticket bot's flow files call by name.

Each action receives the turn's `ActionContext`; `context.services` is the open
`storage.Transaction` of the turn, so what an action writes commits together with
the new conversation state, or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from engine import (
    BUILTIN_VALIDATORS,
    ActionContext,
    ActionRegistry,
    HookContext,
    MediaMessage,
    Notification,
    Option,
    TextMessage,
)
from engine.templates import format_money
from engine.validators import Invalid, Valid, ValidationContext
from flows import notices, payments
from flows.catalogue import describe_start, parse_catalogue, settings_problems
from storage import (
    DuplicateCedula,
    EventRecord,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Reservation,
    ReservationStatus,
    Ticket,
    TicketStatus,
    Transaction,
)

__all__ = ["actions", "validators"]

logger = logging.getLogger(__name__)

actions = ActionRegistry()
actions.settings_check(settings_problems)


def _validate_reference(
    text: str, options: Mapping[str, Any], context: ValidationContext
) -> Valid | Invalid:
    """Accept a bank receipt number: mostly digits, at least four of them, labels allowed.

    "Comprobante 001-234-567" passes; "te pago a las 5" and a reservation code such as
    "H4DTPH" do not, so chat is not taken for a reference that holds tickets for a day.
    """
    reference = payments.normalize_reference(text)
    digits = sum(char.isdigit() for char in reference)
    if not 4 <= len(reference) <= 30 or digits < 4 or digits < len(reference) - digits:
        return Invalid("invalid")
    return Valid(text.strip())


validators = BUILTIN_VALIDATORS.copy()
validators.register("referencia_bancaria", _validate_reference, reasons={"invalid"})

DEFAULT_HOLD_MINUTES = 15


def _store_of(services: object) -> Transaction:
    if not isinstance(services, Transaction):
        raise TypeError("ticket bot actions need a storage.Transaction as services")
    return services


def _store(context: ActionContext) -> Transaction:
    return _store_of(context.services)


def _hold_minutes(context: ActionContext) -> int:
    return int(context.settings.get("minutos_reserva", DEFAULT_HOLD_MINUTES))


def _first_name(full_name: str | None) -> str:
    return (full_name or "").split(" ")[0]


# --- customers -----------------------------------------------------------------------


@actions.action(outcomes=["registrado", "nuevo"], sets=["nombre_corto"])
async def buscar_cliente(context: ActionContext) -> str:
    customer = await _store(context).customers.by_phone(context.phone)
    if customer is None or not customer.registered:
        return "nuevo"
    context.slots["nombre_corto"] = _first_name(customer.full_name)
    return "registrado"


@actions.action(outcomes=["libre", "ajena"])
async def verificar_cedula(context: ActionContext) -> str:
    """Check whether the cédula belongs to another number, without revealing whose it is."""
    owner = await _store(context).customers.cedula_owner(str(context.slots["cedula"]))
    if owner is not None and owner != context.phone:
        logger.info("cédula already registered by another number; registration rejected")
        return "ajena"
    return "libre"


@actions.action(outcomes=["registrado", "ajena"], sets=["nombre_corto"])
async def registrar_cliente(context: ActionContext) -> str:
    slots = context.slots
    try:
        customer = await _store(context).customers.register(
            phone=context.phone,
            cedula=str(slots["cedula"]),
            full_name=str(slots["nombre"]),
            birth_date=str(slots["fecha_nacimiento"]),
            email=str(slots["correo"]),
            address=str(slots["direccion"]),
            now=context.now,
        )
    except DuplicateCedula:
        return "ajena"
    slots["nombre_corto"] = _first_name(customer.full_name)
    slots["corrigiendo"] = False
    return "registrado"


PERSONAL_SLOTS = ("cedula", "nombre", "nombre_corto", "fecha_nacimiento", "correo", "direccion")


@actions.action(outcomes=["borrados", "sin_datos"])
async def borrar_datos(context: ActionContext) -> str:
    """Erase the stored customer and the answers given so far in an unfinished registration."""
    erased = await _store(context).customers.erase(context.phone, context.now)
    typed = [slot for slot in PERSONAL_SLOTS if context.slots.pop(slot, None) is not None]
    return "borrados" if erased or typed else "sin_datos"


@actions.action()
async def pedir_asesor(context: ActionContext) -> None:
    created = await _store(context).handoffs.request(context.phone, context.state, context.now)
    if created:
        hours = context.settings.get("horario_atencion")
        when = f" ({hours})" if hours else ""
        context.reply(
            TextMessage(
                "Listo, le avisé a nuestro equipo y una persona te escribirá por aquí en horario de "
                f"atención{when}. Mientras tanto, puedes seguir conmigo."
            )
        )
    else:
        context.reply(TextMessage("Ya avisé a nuestro equipo; te escribirán pronto por aquí."))


# --- reservations ----------------------------------------------------------------------


def _choose_event(context: ActionContext, event: EventRecord) -> None:
    when = describe_start(event.starts_at, context.now)
    context.slots.update(
        evento_id=event.id,
        evento_nombre=event.name,
        evento_cuando=f" ({when})" if when else "",
        precio=event.price_cents,
        max_cantidad=min(event.order_limit, event.remaining),
    )


@actions.on_start
async def cargar_catalogo(context: HookContext) -> None:
    """Load the catalogue of bot.yaml into the events table, so holds can count places."""
    events = [
        EventRecord(
            event.id,
            event.name,
            event.price_cents,
            event.capacity,
            event.order_limit,
            event.on_sale,
            event.starts_at,
        )
        for event in parse_catalogue(context.settings)
    ]
    await _store_of(context.services).events.sync(events, context.now)


@actions.periodic
async def vencer_reservas(context: HookContext) -> list[Notification]:
    """Expire holds whose time ran out and tell their customers."""
    return await payments.expire_holds(_store_of(context.services), context.now)


@actions.action(
    outcomes=["un_evento", "varios_eventos", "agotado", "sin_eventos"],
    sets=[
        "evento_id",
        "evento_nombre",
        "evento_cuando",
        "precio",
        "max_cantidad",
        "minutos_reserva",
    ],
)
async def preparar_reserva(context: ActionContext) -> str:
    context.slots["minutos_reserva"] = _hold_minutes(context)
    events = await _store(context).events.on_sale(context.now)
    if not events:
        return "sin_eventos"
    if len(events) > 1:
        return "varios_eventos"
    if events[0].remaining == 0:
        return "agotado"
    _choose_event(context, events[0])
    return "un_evento"


@actions.rows()
async def eventos_en_venta(context: ActionContext) -> list[Option]:
    options = []
    for event in await _store(context).events.on_sale(context.now):
        when = describe_start(event.starts_at, context.now)
        price = format_money(event.price_cents)
        details = f"{when} · {price} por ticket" if when else f"{price} por ticket"
        if event.remaining == 0:
            details = f"Agotado · {details}"
        options.append(
            Option(id=f"evento_{event.id}", title=event.name, description=details, value=event.id)
        )
    return options


@actions.action(
    outcomes=["disponible", "agotado"],
    sets=["evento_nombre", "evento_cuando", "precio", "max_cantidad"],
)
async def elegir_evento(context: ActionContext) -> str:
    event = await _store(context).events.get(str(context.slots.get("evento_id")))
    started = event is not None and event.starts_at is not None and event.starts_at <= context.now
    if event is None or not event.on_sale or event.remaining == 0 or started:
        return "agotado"
    _choose_event(context, event)
    return "disponible"


@actions.action(sets=["total"])
async def calcular_total(context: ActionContext) -> None:
    context.slots["total"] = int(context.slots["precio"]) * int(context.slots["cantidad"])


@actions.action(
    outcomes=["reservado", "agotado"],
    sets=["reserva_codigo", "reserva_expira", "quedan"],
)
async def crear_reserva(context: ActionContext) -> str:
    """Hold the places: counted and inserted in this turn's transaction, so never oversold."""
    store = _store(context)
    reservation = await payments.hold(
        store,
        phone=context.phone,
        event_id=str(context.slots["evento_id"]),
        quantity=int(context.slots["cantidad"]),
        minutes=_hold_minutes(context),
        now=context.now,
    )
    if reservation is None:
        event = await store.events.get(str(context.slots["evento_id"]))
        context.slots["quedan"] = _places_left(event.remaining if event else 0)
        return "agotado"
    context.slots["reserva_codigo"] = reservation.code
    context.slots["reserva_expira"] = reservation.expires_at.isoformat()
    context.slots["total"] = reservation.amount_cents
    return "reservado"


def _places_left(count: int) -> str:
    if count == 0:
        return "ya no quedan tickets"
    return "solo queda 1 ticket" if count == 1 else f"solo quedan {count} tickets"


PURCHASE_SLOTS = (
    "reserva_codigo", "reserva_expira", "cantidad", "total", "referencia", "enlace_pago",
    "banco_nombre", "banco_tipo_cuenta", "banco_numero_cuenta", "banco_titular", "banco_ruc",
)  # fmt: skip


async def _current_reservation(context: ActionContext) -> Reservation | None:
    code = context.slots.get("reserva_codigo")
    return await _store(context).reservations.by_code(str(code)) if code else None


@actions.action(sets=["aviso_liberacion"])
async def cancelar_operacion(context: ActionContext) -> None:
    """Drop the purchase in progress and return the places it held."""
    reservation = await _current_reservation(context)
    context.slots["aviso_liberacion"] = ""
    if reservation is not None and reservation.status is ReservationStatus.HELD:
        await payments.release(_store(context), reservation, context.now)
        count = "el ticket" if reservation.quantity == 1 else f"los {reservation.quantity} tickets"
        context.slots["aviso_liberacion"] = f" y liberé {count} de tu reserva *{reservation.code}*"
    for slot in PURCHASE_SLOTS:
        context.slots.pop(slot, None)


@actions.action()
async def cerrar_compra(context: ActionContext) -> None:
    """Forget the finished purchase, so the next one starts clean."""
    for slot in PURCHASE_SLOTS:
        context.slots.pop(slot, None)


# --- payments ------------------------------------------------------------------------------


async def _payment(context: ActionContext, method: PaymentMethod) -> Payment:
    """Return the reservation's open payment of `method`, creating it on first use."""
    store = _store(context)
    reservation = await _current_reservation(context)
    if reservation is None:
        raise LookupError(f"reservation {context.slots.get('reserva_codigo')!r} not found")
    payment = await store.payments.latest_for(reservation.id, method)
    if payment is None or payment.status is not PaymentStatus.PENDING:
        payment = await store.payments.create(
            reservation.id, method, reservation.amount_cents, context.now
        )
    return payment


@actions.action(
    sets=["banco_nombre", "banco_tipo_cuenta", "banco_numero_cuenta", "banco_titular", "banco_ruc"]
)
async def datos_bancarios(context: ActionContext) -> None:
    await _payment(context, PaymentMethod.TRANSFER)
    bank = context.settings.get("banco") or {}
    for key in ("nombre", "tipo_cuenta", "numero_cuenta", "titular", "ruc"):
        context.slots[f"banco_{key}"] = str(bank.get(key, ""))


@actions.action(
    outcomes=["pagado", "pendiente", "monto_distinto", "usada", "duplicada", "reembolso"]
)
async def registrar_referencia(context: ActionContext) -> str:
    payment = await _payment(context, PaymentMethod.TRANSFER)
    return await payments.submit_reference(
        _store(context), payment, str(context.slots["referencia"]), context.now
    )


@actions.action()
async def guardar_comprobante(context: ActionContext) -> None:
    """Keep a receipt photo or PDF as evidence; the server downloads it right after the turn."""
    event = context.event
    if not isinstance(event, MediaMessage):
        return
    payment = await _payment(context, PaymentMethod.TRANSFER)
    store = _store(context)
    await store.receipts.add(
        payment_id=payment.id,
        phone=context.phone,
        media_id=event.media_id,
        mime_type=event.mime_type or "application/octet-stream",
        declared_sha256=event.sha256 or None,
        now=context.now,
    )
    # The customer reports a payment: keep the places while someone checks it.
    hours = timedelta(hours=payments.VERIFICATION_HOURS)
    await store.reservations.extend(payment.reservation_id, context.now + hours, context.now)


@actions.action(sets=["enlace_pago"])
async def enlace_tarjeta(context: ActionContext) -> None:
    await _payment(context, PaymentMethod.CARD)
    template = str(context.settings.get("enlace_pago_tarjeta", ""))
    amount = f"{int(context.slots['total']) / 100:.2f}"
    code = str(context.slots["reserva_codigo"])
    context.slots["enlace_pago"] = template.replace("{reservation}", code).replace(
        "{amount}", amount
    )


@actions.action()
async def enviar_tickets(context: ActionContext) -> None:
    """Send the tickets of the paid reservation: a QR image per ticket."""
    reservation = await _current_reservation(context)
    if reservation is None:
        return
    for message in await payments.ticket_messages_for(_store(context), reservation):
        context.reply(message)


@actions.action(outcomes=["con_tickets", "sin_tickets"])
async def listar_tickets(context: ActionContext) -> str:
    """List the customer's tickets with event and status, and send the valid ones again."""
    store = _store(context)
    tickets = await store.tickets.for_phone(context.phone)
    if not tickets:
        return "sin_tickets"
    lines = []
    valid_by_event: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        event = await store.events.get(ticket.event_id)
        name = event.name if event else ticket.event_id
        lines.append(f"• {ticket.code} · {name} · {TICKET_STATUS_TEXT[ticket.status]}")
        if ticket.status is TicketStatus.VALID:
            valid_by_event.setdefault(ticket.event_id, []).append(ticket)
    context.reply(TextMessage("Estos son tus tickets:\n" + "\n".join(lines)))
    for event_id, valid in valid_by_event.items():
        event = await store.events.get(event_id)
        name = event.name if event else event_id
        for message in notices.ticket_messages(
            valid, name, describe_start(event.starts_at if event else None)
        ):
            context.reply(message)
    return "con_tickets"


TICKET_STATUS_TEXT = {
    TicketStatus.VALID: "válido",
    TicketStatus.REDEEMED: "ya usado",
    TicketStatus.VOID: "anulado",
}
