"""The Python actions that the ticket bot's flow files call by name.

Each action receives the turn's `ActionContext`; `context.services` is the open
`storage.Transaction` of the turn, so what an action writes commits together with
the new conversation state, or not at all.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from engine import ActionContext, ActionRegistry, Option, TextMessage
from flows.catalogue import Event, parse_catalogue, settings_problems
from storage import DuplicateCedula, Transaction

__all__ = ["actions"]

logger = logging.getLogger(__name__)

actions = ActionRegistry()
actions.settings_check(settings_problems)

# Reservation codes: no 0/O, 1/I/L or 5/S, which customers confuse when reading them aloud.
CODE_ALPHABET = "ABCDEFGHJKMNPQRTUVWXYZ2346789"
DEFAULT_HOLD_MINUTES = 15


def _store(context: ActionContext) -> Transaction:
    services = context.services
    if not isinstance(services, Transaction):
        raise TypeError("ticket bot actions need a storage.Transaction as services")
    return services


def _first_name(full_name: str | None) -> str:
    return (full_name or "").split(" ")[0]


def _events_on_sale(context: ActionContext) -> list[Event]:
    return [event for event in parse_catalogue(context.settings) if event.on_sale]


def _choose_event(context: ActionContext, event: Event) -> None:
    when = event.when()
    context.slots.update(
        evento_id=event.id,
        evento_nombre=event.name,
        evento_cuando=f" ({when})" if when else "",
        precio=event.price_cents,
        # NOTE: the capacity still free is not known here yet, so the offer is capped
        # only by the order limit and the total capacity.
        max_cantidad=min(event.order_limit, event.capacity),
    )


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
        logger.info("cédula already registered by another number; registration refused")
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
    context.slots["minutos_reserva"] = int(
        context.settings.get("minutos_reserva", DEFAULT_HOLD_MINUTES)
    )
    events = _events_on_sale(context)
    if not events:
        return "sin_eventos"
    if len(events) > 1:
        return "varios_eventos"
    _choose_event(context, events[0])
    return "un_evento"


@actions.rows()
async def eventos_en_venta(context: ActionContext) -> list[Option]:
    return [
        Option(
            id=f"evento_{event.id}",
            title=event.name,
            description=f"${event.price_cents / 100:.2f} por ticket",
            value=event.id,
        )
        for event in _events_on_sale(context)
    ]


@actions.action(
    outcomes=["disponible", "agotado"],
    sets=["evento_nombre", "evento_cuando", "precio", "max_cantidad"],
)
async def elegir_evento(context: ActionContext) -> str:
    chosen = str(context.slots.get("evento_id"))
    for event in _events_on_sale(context):
        if event.id == chosen:
            _choose_event(context, event)
            return "disponible"
    return "agotado"


@actions.action(sets=["total"])
async def calcular_total(context: ActionContext) -> None:
    context.slots["total"] = int(context.slots["precio"]) * int(context.slots["cantidad"])


@actions.action(
    outcomes=["reservado", "agotado"],
    sets=["reserva_codigo", "reserva_expira", "disponibles"],
)
async def crear_reserva(context: ActionContext) -> str:
    events = {event.id: event for event in _events_on_sale(context)}
    event = events.get(str(context.slots.get("evento_id")))
    quantity = int(context.slots["cantidad"])
    if event is None or quantity > event.capacity:
        context.slots["disponibles"] = event.capacity if event else 0
        return "agotado"
    minutes = int(context.slots.get("minutos_reserva", DEFAULT_HOLD_MINUTES))
    context.slots["reserva_codigo"] = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
    context.slots["reserva_expira"] = (context.now + timedelta(minutes=minutes)).isoformat()
    return "reservado"


PURCHASE_SLOTS = (
    "reserva_codigo", "reserva_expira", "cantidad", "total", "referencia", "enlace_pago",
    "banco_nombre", "banco_tipo_cuenta", "banco_numero_cuenta", "banco_titular", "banco_ruc",
)  # fmt: skip


@actions.action()
async def cancelar_operacion(context: ActionContext) -> None:
    for slot in PURCHASE_SLOTS:
        context.slots.pop(slot, None)


@actions.action()
async def cerrar_compra(context: ActionContext) -> None:
    """Forget the finished purchase, so the next one starts clean."""
    for slot in PURCHASE_SLOTS:
        context.slots.pop(slot, None)


# --- payments ------------------------------------------------------------------------------


@actions.action(
    sets=["banco_nombre", "banco_tipo_cuenta", "banco_numero_cuenta", "banco_titular", "banco_ruc"]
)
async def datos_bancarios(context: ActionContext) -> None:
    bank = context.settings.get("banco") or {}
    for key in ("nombre", "tipo_cuenta", "numero_cuenta", "titular", "ruc"):
        context.slots[f"banco_{key}"] = str(bank.get(key, ""))


@actions.action(sets=["enlace_pago"])
async def enlace_tarjeta(context: ActionContext) -> None:
    template = str(context.settings.get("enlace_pago_tarjeta", ""))
    amount = f"{int(context.slots['total']) / 100:.2f}"
    context.slots["enlace_pago"] = template.replace(
        "{reservation}", str(context.slots["reserva_codigo"])
    ).replace("{amount}", amount)


@actions.action(outcomes=["con_tickets", "sin_tickets"])
async def listar_tickets(context: ActionContext) -> str:
    # NOTE: tickets are issued only once payments are confirmed; until the ticket
    # tables exist every customer has none.
    return "sin_tickets"
