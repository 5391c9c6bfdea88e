"""Reservations and payments of the ticket bot: holds, transfers, card payments, tickets.

Every function runs inside the caller's open transaction (`storage.Transaction`),
so a payment, the tickets it issues and the news for the customer commit together.
Functions that learn something the customer must hear return `Notification`s; the
caller delivers them to the conversation, or as plain messages when the
conversation is elsewhere.

Rules kept here: places held or sold never exceed capacity (the hold is counted and
inserted under SQLite's write lock); a transfer reference pays at most one
reservation, and only with the exact amount; money that arrives after a hold expired
buys the tickets if they are still free, or is flagged for a refund.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine import ExternalEvent, Notification, OutgoingMessage
from flows import notices
from flows.catalogue import describe_start
from flows.codes import reservation_code, ticket_code
from storage import (
    Payment,
    PaymentMethod,
    PaymentStatus,
    Reservation,
    ReservationStatus,
    Ticket,
    Transaction,
    Transfer,
)

__all__ = [
    "VERIFICATION_HOURS",
    "Settlement",
    "TransferRegistration",
    "apply_card_notification",
    "approve",
    "expire_holds",
    "hold",
    "normalize_reference",
    "register_transfer",
    "reject",
    "release",
    "submit_reference",
    "ticket_messages_for",
]

logger = logging.getLogger(__name__)

# How long a reservation stays held after the customer reports a transfer that is
# not yet seen in the bank, or while an operator reviews a payment.
VERIFICATION_HOURS = 24
# Words that customers and banks put before a reference number.
_REFERENCE_LABELS = frozenset(
    {
        "REFERENCIA",
        "REF",
        "COMPROBANTE",
        "COMP",
        "DOCUMENTO",
        "DOC",
        "NUMERO",
        "NRO",
        "NUM",
        "NO",
        "N",
        "TRANSFERENCIA",
    }
)
_SEPARATORS = re.compile(r"[\s\-./_:#°º]+")


def normalize_reference(text: str) -> str:
    """Return a transfer reference the way it is compared: "Ref. 001-234 567" -> "1234567".

    Banks print the same number with spaces, dashes and leading zeros, and customers
    copy it with labels in front, so those are removed and letters put in upper case.
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    words = [word for word in _SEPARATORS.split(plain) if word]
    while len(words) > 1 and words[0] in _REFERENCE_LABELS:
        words = words[1:]
    joined = "".join(words)
    return joined.lstrip("0") or ("0" if joined else "")


async def _event_name_and_start(transaction: Transaction, event_id: str) -> tuple[str, str]:
    event = await transaction.events.get(event_id)
    if event is None:
        return event_id, ""
    return event.name, describe_start(event.starts_at)


async def ticket_messages_for(
    transaction: Transaction, reservation: Reservation
) -> list[OutgoingMessage]:
    tickets = await transaction.tickets.for_reservation(reservation.id)
    name, start = await _event_name_and_start(transaction, reservation.event_id)
    return notices.ticket_messages(tickets, name, start)


# --- holds -------------------------------------------------------------------------------


async def hold(
    transaction: Transaction,
    *,
    phone: str,
    event_id: str,
    quantity: int,
    minutes: int,
    now: datetime,
) -> Reservation | None:
    """Hold places for `phone`, or return None when fewer than `quantity` are left.

    A customer has one open reservation at a time: a new hold cancels their other
    holds for which no payment was reported yet, so forgotten holds do not block places.
    """
    for held in await transaction.reservations.held_by(phone):
        if not any(payment.reference for payment in await transaction.payments.open_for(held.id)):
            await release(transaction, held, now)
    event = await transaction.events.get(event_id)
    started = event is not None and event.starts_at is not None and event.starts_at <= now
    if event is None or not event.on_sale or started:
        return None
    return await transaction.reservations.hold(
        code=reservation_code(),
        phone=phone,
        event_id=event_id,
        quantity=quantity,
        amount_cents=event.price_cents * quantity,
        expires_at=now + timedelta(minutes=minutes),
        now=now,
    )


async def release(transaction: Transaction, reservation: Reservation, now: datetime) -> None:
    """Cancel a held reservation and return its places.

    Payments the customer already claimed (a reference or a receipt was given) stay
    pending, so money that arrives later is still matched: it buys the tickets if
    they are free, or is flagged for a refund.
    """
    if reservation.status is not ReservationStatus.HELD:
        return
    await transaction.reservations.set_status(reservation.id, ReservationStatus.CANCELLED, now)
    for payment in await transaction.payments.open_for(reservation.id):
        if not payment.reference:
            await transaction.payments.update(payment.id, now, status=PaymentStatus.CANCELLED)
    logger.info(
        "reservation %s cancelled; %d places returned", reservation.code, reservation.quantity
    )


async def expire_holds(transaction: Transaction, now: datetime) -> list[Notification]:
    """Expire holds whose time ran out; return the notices for their customers."""
    notifications = []
    for reservation in await transaction.reservations.expired_holds(now):
        await transaction.reservations.set_status(reservation.id, ReservationStatus.EXPIRED, now)
        for payment in await transaction.payments.open_for(reservation.id):
            if not payment.reference:
                await transaction.payments.update(payment.id, now, status=PaymentStatus.CANCELLED)
        logger.info(
            "reservation %s expired; %d places returned", reservation.code, reservation.quantity
        )
        notifications.append(
            Notification(
                reservation.phone,
                ExternalEvent("reserva_vencida", {"reserva_codigo": reservation.code}),
                (notices.hold_expired(reservation),),
                when=(("reserva_codigo", reservation.code),),
            )
        )
    return notifications


# --- settling money -------------------------------------------------------------------------


@dataclass
class Settlement:
    """The outcome of money received for a reservation."""

    status: PaymentStatus
    tickets: list[Ticket] = field(default_factory=list)
    notification: Notification | None = None


async def _pay(
    transaction: Transaction,
    payment: Payment,
    reservation: Reservation,
    received_cents: int,
    now: datetime,
) -> list[Ticket]:
    await transaction.payments.update(
        payment.id, now, status=PaymentStatus.PAID, received_cents=received_cents
    )
    await transaction.reservations.set_status(reservation.id, ReservationStatus.PAID, now)
    for other in await transaction.payments.open_for(reservation.id):
        await transaction.payments.update(
            other.id, now, status=PaymentStatus.CANCELLED, reason="paid another way"
        )
    codes = [ticket_code() for _ in range(reservation.quantity)]
    tickets = await transaction.tickets.issue(reservation, codes, now)
    logger.info(
        "reservation %s paid by %s payment %d; %d tickets issued",
        reservation.code,
        payment.method.value,
        payment.id,
        len(tickets),
    )
    return tickets


async def _paid_notification(transaction: Transaction, reservation: Reservation) -> Notification:
    messages = [notices.paid(reservation), *await ticket_messages_for(transaction, reservation)]
    return Notification(
        reservation.phone,
        ExternalEvent("pago_confirmado", {"reserva_codigo": reservation.code}),
        tuple(messages),
        when=(("reserva_codigo", reservation.code),),
    )


async def _refund(
    transaction: Transaction,
    payment: Payment,
    reservation: Reservation,
    received_cents: int,
    reason: str,
    now: datetime,
) -> Settlement:
    await transaction.payments.update(
        payment.id,
        now,
        status=PaymentStatus.REFUND_DUE,
        received_cents=received_cents,
        reason=reason,
    )
    # An operator must return the money; the request puts it on their list.
    note = f"refund {received_cents / 100:.2f} of payment {payment.id} (reservation {reservation.code}): {reason}"
    await transaction.handoffs.request(reservation.phone, "pago.reembolso", now, note=note)
    logger.warning(
        "payment %d of reservation %s is due a refund: %s", payment.id, reservation.code, reason
    )
    already_paid = reservation.status is ReservationStatus.PAID
    message = notices.refund_due(reservation, received_cents, already_paid=already_paid)
    return Settlement(
        PaymentStatus.REFUND_DUE, notification=Notification(reservation.phone, messages=(message,))
    )


async def settle(
    transaction: Transaction,
    payment: Payment,
    received_cents: int,
    now: datetime,
    *,
    check_amount: bool = True,
) -> Settlement:
    """Apply money received for `payment`: pay, send to review, or flag for a refund."""
    reservation = await transaction.reservations.get(payment.reservation_id)
    assert reservation is not None
    if check_amount and received_cents != reservation.amount_cents:
        reason = (
            f"received {received_cents / 100:.2f}, expected {reservation.amount_cents / 100:.2f}"
        )
        await transaction.payments.update(
            payment.id,
            now,
            status=PaymentStatus.REVIEW,
            received_cents=received_cents,
            reason=reason,
        )
        logger.info(
            "payment %d of reservation %s needs review: %s", payment.id, reservation.code, reason
        )
        # An operator decides now; the places wait for them as for a transfer being checked.
        review_until = now + timedelta(hours=VERIFICATION_HOURS)
        await transaction.reservations.extend(reservation.id, review_until, now)
        notification = Notification(
            reservation.phone,
            ExternalEvent("pago_en_revision", {"reserva_codigo": reservation.code}),
            (notices.in_review(reservation, received_cents),),
            when=(("reserva_codigo", reservation.code),),
        )
        return Settlement(PaymentStatus.REVIEW, notification=notification)
    if reservation.status is ReservationStatus.PAID:
        return await _refund(
            transaction, payment, reservation, received_cents, "reservation already paid", now
        )
    if (
        reservation.status is not ReservationStatus.HELD
        and not await transaction.reservations.take_back(reservation, now)
    ):
        return await _refund(
            transaction,
            payment,
            reservation,
            received_cents,
            "hold expired and the places are gone",
            now,
        )
    tickets = await _pay(transaction, payment, reservation, received_cents, now)
    return Settlement(
        PaymentStatus.PAID, tickets, await _paid_notification(transaction, reservation)
    )


# --- transfers -----------------------------------------------------------------------------


async def submit_reference(
    transaction: Transaction, payment: Payment, text: str, now: datetime
) -> str:
    """Record the reference a customer typed and apply it; return the flow's outcome.

    Outcomes: `pagado` (a registered transfer with the right amount), `pendiente`
    (not in the bank yet; the hold is extended while it is verified), `monto_distinto`,
    `usada` (the reference already paid another reservation), `duplicada` (another
    customer is waiting on the same reference; an operator reviews) and `reembolso`.
    """
    reference = normalize_reference(text)
    transfer = await transaction.transfers.get(reference)
    if transfer is not None and transfer.payment_id not in (None, payment.id):
        logger.info(
            "reference given for payment %d already paid payment %d",
            payment.id,
            transfer.payment_id,
        )
        return "usada"
    claimed = await transaction.payments.waiting_for_reference(reference)
    if transfer is None and claimed is not None and claimed.id != payment.id:
        # Two customers gave the same number: the first is matched when the money
        # arrives, and this one waits for an operator instead of for the bank.
        reason = f"reference {reference} was also given for payment {claimed.id}"
        await transaction.payments.update(
            payment.id, now, status=PaymentStatus.REVIEW, reference=reference, reason=reason
        )
        await transaction.reservations.extend(
            payment.reservation_id, now + timedelta(hours=VERIFICATION_HOURS), now
        )
        logger.info("payment %d needs review: %s", payment.id, reason)
        return "duplicada"
    await transaction.payments.update(payment.id, now, reference=reference)
    if transfer is None:
        await transaction.reservations.extend(
            payment.reservation_id, now + timedelta(hours=VERIFICATION_HOURS), now
        )
        return "pendiente"
    await transaction.transfers.use(transfer.id, payment.id)
    settlement = await settle(transaction, payment, transfer.amount_cents, now)
    return {
        PaymentStatus.PAID: "pagado",
        PaymentStatus.REVIEW: "monto_distinto",
        PaymentStatus.REFUND_DUE: "reembolso",
    }[settlement.status]


@dataclass
class TransferRegistration:
    """The result of registering a transfer seen in the bank statement."""

    # "created", "repeated" (same reference, amount and date) or "conflict" (another amount or date).
    outcome: str
    transfer: Transfer
    payment: Payment | None = None
    settlement: Settlement | None = None

    @property
    def notifications(self) -> list[Notification]:
        if self.settlement is None or self.settlement.notification is None:
            return []
        return [self.settlement.notification]


async def register_transfer(
    transaction: Transaction, reference_text: str, amount_cents: int, date: str, now: datetime
) -> TransferRegistration:
    """Register a transfer from the bank statement and pay the reservation waiting for it."""
    reference = normalize_reference(reference_text)
    if not reference:
        raise ValueError(f"reference {reference_text!r} has no letters or digits")
    existing = await transaction.transfers.get(reference)
    if existing is not None:
        same = existing.amount_cents == amount_cents and existing.date == date
        payment = (
            await transaction.payments.get(existing.payment_id) if existing.payment_id else None
        )
        settlement = Settlement(payment.status) if payment is not None else None
        return TransferRegistration(
            "repeated" if same else "conflict", existing, payment, settlement
        )
    transfer = await transaction.transfers.add(reference, amount_cents, date, now)
    payment = await transaction.payments.waiting_for_reference(reference)
    if payment is None:
        logger.info("transfer %s registered; no reservation is waiting for it yet", reference)
        return TransferRegistration("created", transfer)
    await transaction.transfers.use(transfer.id, payment.id)
    settlement = await settle(transaction, payment, amount_cents, now)
    return TransferRegistration("created", transfer, payment, settlement)


# --- card payments ---------------------------------------------------------------------------


@dataclass
class CardResult:
    # "applied", "duplicate" or "unknown_reservation".
    outcome: str
    payment: Payment | None = None
    notifications: list[Notification] = field(default_factory=list)


async def apply_card_notification(
    transaction: Transaction,
    *,
    reservation_code_text: str,
    paid: bool,
    amount_cents: int,
    provider_reference: str,
    now: datetime,
) -> CardResult:
    """Apply the card provider's notification; a repeat of one already applied changes nothing."""
    reservation = await transaction.reservations.by_code(reservation_code_text)
    if reservation is None:
        return CardResult("unknown_reservation")
    payment = await transaction.payments.latest_for(reservation.id, PaymentMethod.CARD)
    if (
        payment is not None
        and payment.reference == provider_reference
        and payment.status is not PaymentStatus.PENDING
    ):
        return CardResult("duplicate", payment)
    if payment is None or payment.status is not PaymentStatus.PENDING:
        payment = await transaction.payments.create(
            reservation.id, PaymentMethod.CARD, reservation.amount_cents, now
        )
    await transaction.payments.update(payment.id, now, reference=provider_reference)
    if not paid:
        await transaction.payments.update(
            payment.id, now, status=PaymentStatus.FAILED, reason="card declined"
        )
        notification = Notification(
            reservation.phone,
            ExternalEvent("pago_fallido", {"reserva_codigo": reservation.code}),
            (notices.card_failed(reservation),),
            when=(("reserva_codigo", reservation.code),),
        )
        return CardResult("applied", payment, [notification])
    settlement = await settle(transaction, payment, amount_cents, now)
    return CardResult(
        "applied", payment, [settlement.notification] if settlement.notification else []
    )


# --- operator decisions ----------------------------------------------------------------------


async def approve(transaction: Transaction, payment: Payment, now: datetime) -> Settlement:
    """Accept a pending or reviewed payment as paid, whatever amount arrived."""
    received = (
        payment.received_cents if payment.received_cents is not None else payment.amount_cents
    )
    return await settle(transaction, payment, received, now, check_amount=False)


async def reject(
    transaction: Transaction, payment: Payment, reason: str, now: datetime
) -> Notification:
    """Reject a payment, release its reservation and tell the customer why.

    The reason is shown after "No pudimos aprobar tu pago:", so a final full stop is dropped.
    """
    reason = reason.strip().rstrip(".!¡ ")
    await transaction.payments.update(payment.id, now, status=PaymentStatus.REJECTED, reason=reason)
    reservation = await transaction.reservations.get(payment.reservation_id)
    assert reservation is not None
    if reservation.status is ReservationStatus.HELD:
        await transaction.reservations.set_status(reservation.id, ReservationStatus.CANCELLED, now)
    logger.info(
        "payment %d of reservation %s rejected by an operator", payment.id, reservation.code
    )
    return Notification(
        reservation.phone,
        ExternalEvent("pago_rechazado", {"reserva_codigo": reservation.code, "motivo": reason}),
        (notices.rejected(reservation, reason),),
        when=(("reserva_codigo", reservation.code),),
    )
