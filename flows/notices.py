"""Messages the ticket bot sends outside a customer's turn, and the ticket messages themselves.

They are sent when a conversation is not waiting for the news: the customer went back
to the menu, or the conversation was closed, when the money or the expiry arrived.
"""

from __future__ import annotations

from engine import ImageMessage, OutgoingMessage, TextMessage
from engine.templates import format_money
from storage import Reservation, Ticket

__all__ = [
    "card_failed",
    "hold_expired",
    "in_review",
    "paid",
    "refund_due",
    "rejected",
    "ticket_messages",
]


def ticket_messages(tickets: list[Ticket], event_name: str, when: str) -> list[OutgoingMessage]:
    """One QR image per ticket, with the code in the caption; a text if the image cannot go."""
    date = f" ({when})" if when else ""
    messages: list[OutgoingMessage] = []
    for number, ticket in enumerate(tickets, start=1):
        count = f" {number} de {len(tickets)}" if len(tickets) > 1 else ""
        messages.append(
            ImageMessage(
                qr=ticket.code,
                caption=f"🎟️ Ticket{count} para *{event_name}*{date}\nCódigo: {ticket.code}\nMuestra este QR en la entrada.",
                fallback=f"🎟️ Ticket{count} para *{event_name}*{date}\nCódigo: {ticket.code}\nMuestra este código en la entrada.",
            )
        )
    return messages


def paid(reservation: Reservation) -> TextMessage:
    return TextMessage(
        f"¡Confirmamos el pago de tu reserva *{reservation.code}*! 🎉 Aquí están tus tickets:"
    )


def in_review(reservation: Reservation, received_cents: int) -> TextMessage:
    return TextMessage(
        f"Recibimos {format_money(received_cents)} para tu reserva *{reservation.code}*, pero el total es "
        f"{format_money(reservation.amount_cents)}. Una persona de nuestro equipo lo revisará y te escribirá "
        "por aquí; mientras tanto te guardo los tickets."
    )


def rejected(reservation: Reservation, reason: str) -> TextMessage:
    return TextMessage(
        f"No pudimos aprobar el pago de tu reserva *{reservation.code}*: {reason}. Liberé los tickets. "
        "Si crees que es un error, escribe *asesor*."
    )


def hold_expired(reservation: Reservation) -> TextMessage:
    return TextMessage(
        f"Se venció el tiempo para pagar la reserva *{reservation.code}*, así que liberé los tickets. "
        "Si todavía los quieres, escribe *comprar*."
    )


def refund_due(reservation: Reservation, received_cents: int, *, already_paid: bool) -> TextMessage:
    if already_paid:
        return TextMessage(
            f"Recibimos un segundo pago de {format_money(received_cents)} para la reserva *{reservation.code}*, "
            "que ya estaba pagada, así que te lo devolveremos; tus tickets siguen siendo válidos. Una persona "
            "de nuestro equipo te escribirá por aquí."
        )
    return TextMessage(
        f"Recibimos tu pago de {format_money(received_cents)} para la reserva *{reservation.code}*, pero la "
        "reserva ya había vencido y los tickets se agotaron 😔 Te devolveremos el dinero; una persona de "
        "nuestro equipo te escribirá por aquí."
    )


def card_failed(reservation: Reservation) -> TextMessage:
    return TextMessage(
        f"Tu pago con tarjeta de la reserva *{reservation.code}* no se completó. Si quieres intentarlo otra "
        "vez, escribe *comprar*."
    )
