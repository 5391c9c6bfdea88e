"""The ticket domain: events, reservations (holds), payments, bank transfers, receipts, tickets.

Every method runs on the connection of an open `BEGIN IMMEDIATE` transaction, which
holds SQLite's write lock until it ends. That is what makes `hold` safe: counting the
places taken and inserting the new hold happen under one lock, so no other worker
or coroutine can take the same places in between, and an event is never oversold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import aiosqlite

from storage.timestamps import from_db, from_db_optional, to_db, to_db_optional

__all__ = [
    "EventRecord",
    "EventRepository",
    "Payment",
    "PaymentMethod",
    "PaymentRepository",
    "PaymentStatus",
    "Receipt",
    "ReceiptRepository",
    "Reservation",
    "ReservationRepository",
    "ReservationStatus",
    "Ticket",
    "TicketRepository",
    "TicketStatus",
    "Transfer",
    "TransferRepository",
]


class ReservationStatus(Enum):
    """Lifecycle of a reservation: the places it holds count against capacity while held or paid."""

    # Places are held for the customer until `expires_at`.
    HELD = "held"
    # Paid; its tickets are issued.
    PAID = "paid"
    # The hold ran out before the money arrived; the places were returned.
    EXPIRED = "expired"
    # The customer or an operator cancelled it; the places were returned.
    CANCELLED = "cancelled"


class PaymentMethod(Enum):
    TRANSFER = "transfer"
    CARD = "card"


class PaymentStatus(Enum):
    """Lifecycle of a payment attempt for a reservation."""

    # Waiting for the money: a transfer not yet seen in the bank, a card not yet charged.
    PENDING = "pending"
    # Money arrived with another amount; an operator must approve or reject it.
    REVIEW = "review"
    PAID = "paid"
    # The card provider reported a failed charge.
    FAILED = "failed"
    # An operator rejected it.
    REJECTED = "rejected"
    # Money arrived after the hold expired and the places were gone, or twice: to be refunded.
    REFUND_DUE = "refund_due"
    # An operator returned the money of a `refund_due` payment.
    REFUNDED = "refunded"
    # The reservation was cancelled or expired while this payment was still pending.
    CANCELLED = "cancelled"


class TicketStatus(Enum):
    VALID = "valid"
    # Scanned at the door.
    REDEEMED = "redeemed"
    # Cancelled by an operator; the code no longer admits anyone.
    VOID = "void"


@dataclass(frozen=True)
class EventRecord:
    id: str
    name: str
    price_cents: int
    capacity: int
    order_limit: int
    on_sale: bool
    starts_at: datetime | None
    # Places held or sold when the record was read.
    taken: int = 0

    @property
    def remaining(self) -> int:
        return max(self.capacity - self.taken, 0)


@dataclass(frozen=True)
class Reservation:
    id: int
    code: str
    phone: str
    event_id: str
    quantity: int
    amount_cents: int
    status: ReservationStatus
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True)
class Payment:
    id: int
    reservation_id: int
    method: PaymentMethod
    status: PaymentStatus
    amount_cents: int
    reference: str | None
    received_cents: int | None
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Transfer:
    id: int
    reference: str
    amount_cents: int
    date: str
    payment_id: int | None


@dataclass(frozen=True)
class Receipt:
    id: int
    payment_id: int | None
    phone: str
    media_id: str
    mime_type: str
    declared_sha256: str | None
    sha256: str | None
    content: bytes | None


@dataclass(frozen=True)
class Ticket:
    code: str
    reservation_id: int
    event_id: str
    status: TicketStatus
    issued_at: datetime
    redeemed_at: datetime | None


_TAKEN = (
    "(SELECT coalesce(sum(quantity), 0) FROM reservations"
    " WHERE event_id = events.id AND status IN ('held', 'paid'))"
)
_EVENT_COLUMNS = f"id, name, price_cents, capacity, order_limit, on_sale, starts_at, {_TAKEN}"


def _event(row: Any) -> EventRecord:
    return EventRecord(
        row[0], row[1], row[2], row[3], row[4], bool(row[5]), from_db_optional(row[6]), row[7]
    )


class EventRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def sync(self, events: list[EventRecord], now: datetime) -> None:
        """Make the events table match the catalogue; events no longer listed stop selling."""
        timestamp = to_db(now)
        for event in events:
            await self._connection.execute(
                "INSERT INTO events (id, name, price_cents, capacity, order_limit, on_sale, starts_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents,"
                " capacity = excluded.capacity, order_limit = excluded.order_limit,"
                " on_sale = excluded.on_sale, starts_at = excluded.starts_at, updated_at = excluded.updated_at",
                (
                    event.id,
                    event.name,
                    event.price_cents,
                    event.capacity,
                    event.order_limit,
                    int(event.on_sale),
                    to_db_optional(event.starts_at),
                    timestamp,
                ),
            )
        listed = [event.id for event in events]
        placeholders = ", ".join("?" for _ in listed) or "NULL"
        await self._connection.execute(
            f"UPDATE events SET on_sale = 0, updated_at = ? WHERE id NOT IN ({placeholders})",
            (timestamp, *listed),
        )

    async def get(self, event_id: str) -> EventRecord | None:
        async with self._connection.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _event(row)

    async def on_sale(self, now: datetime) -> list[EventRecord]:
        """Events on sale that have not started, sold out or not, by start time (undated first)."""
        async with self._connection.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE on_sale = 1 AND (starts_at IS NULL OR starts_at > ?)"
            " ORDER BY starts_at IS NOT NULL, starts_at, name",
            (to_db(now),),
        ) as cursor:
            return [_event(row) for row in await cursor.fetchall()]


_RESERVATION_COLUMNS = (
    "id, code, phone, event_id, quantity, amount_cents, status, expires_at, created_at, paid_at"
)


def _reservation(row: Any) -> Reservation:
    return Reservation(
        row[0], row[1], row[2], row[3], row[4], row[5],
        ReservationStatus(row[6]), from_db(row[7]), from_db(row[8]), from_db_optional(row[9]),
    )  # fmt: skip


class ReservationRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def hold(
        self,
        *,
        code: str,
        phone: str,
        event_id: str,
        quantity: int,
        amount_cents: int,
        expires_at: datetime,
        now: datetime,
    ) -> Reservation | None:
        """Hold `quantity` places, or return None when fewer are left.

        Must run inside the turn's `BEGIN IMMEDIATE` transaction: the count and the
        insert are atomic only under its write lock.
        """
        if await self._remaining(event_id) < quantity:
            return None
        cursor = await self._connection.execute(
            "INSERT INTO reservations (code, phone, event_id, quantity, amount_cents, status,"
            " expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'held', ?, ?, ?)",
            (
                code,
                phone,
                event_id,
                quantity,
                amount_cents,
                to_db(expires_at),
                to_db(now),
                to_db(now),
            ),
        )
        return await self.get(int(cursor.lastrowid or 0))

    async def _remaining(self, event_id: str) -> int:
        async with self._connection.execute(
            f"SELECT capacity - {_TAKEN} FROM events WHERE id = ?", (event_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def take_back(self, reservation: Reservation, now: datetime) -> bool:
        """Hold an expired or cancelled reservation's places again, if they are still free."""
        if await self._remaining(reservation.event_id) < reservation.quantity:
            return False
        await self._connection.execute(
            "UPDATE reservations SET status = 'held', updated_at = ? WHERE id = ?",
            (to_db(now), reservation.id),
        )
        return True

    async def get(self, reservation_id: int) -> Reservation | None:
        async with self._connection.execute(
            f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE id = ?", (reservation_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _reservation(row)

    async def by_code(self, code: str) -> Reservation | None:
        async with self._connection.execute(
            f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE code = ?", (code,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _reservation(row)

    async def set_status(
        self, reservation_id: int, status: ReservationStatus, now: datetime
    ) -> None:
        paid_at = to_db(now) if status is ReservationStatus.PAID else None
        await self._connection.execute(
            "UPDATE reservations SET status = ?, updated_at = ?, paid_at = coalesce(?, paid_at) WHERE id = ?",
            (status.value, to_db(now), paid_at, reservation_id),
        )

    async def extend(self, reservation_id: int, expires_at: datetime, now: datetime) -> None:
        await self._connection.execute(
            "UPDATE reservations SET expires_at = max(expires_at, ?), updated_at = ? WHERE id = ?",
            (to_db(expires_at), to_db(now), reservation_id),
        )

    async def expired_holds(self, now: datetime, limit: int = 100) -> list[Reservation]:
        async with self._connection.execute(
            f"SELECT {_RESERVATION_COLUMNS} FROM reservations"
            " WHERE status = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            (to_db(now), limit),
        ) as cursor:
            return [_reservation(row) for row in await cursor.fetchall()]

    async def held_by(self, phone: str) -> list[Reservation]:
        async with self._connection.execute(
            f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE phone = ? AND status = 'held' ORDER BY id",
            (phone,),
        ) as cursor:
            return [_reservation(row) for row in await cursor.fetchall()]


_PAYMENT_COLUMNS = "id, reservation_id, method, status, amount_cents, reference, received_cents, reason, created_at"


def _payment(row: Any) -> Payment:
    return Payment(
        row[0], row[1], PaymentMethod(row[2]), PaymentStatus(row[3]), row[4], row[5], row[6], row[7],
        from_db(row[8]),
    )  # fmt: skip


class PaymentRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def create(
        self, reservation_id: int, method: PaymentMethod, amount_cents: int, now: datetime
    ) -> Payment:
        cursor = await self._connection.execute(
            "INSERT INTO payments (reservation_id, method, status, amount_cents, created_at, updated_at)"
            " VALUES (?, ?, 'pending', ?, ?, ?)",
            (reservation_id, method.value, amount_cents, to_db(now), to_db(now)),
        )
        payment = await self.get(int(cursor.lastrowid or 0))
        assert payment is not None
        return payment

    async def get(self, payment_id: int) -> Payment | None:
        async with self._connection.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE id = ?", (payment_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _payment(row)

    async def latest_for(
        self, reservation_id: int, method: PaymentMethod | None = None
    ) -> Payment | None:
        query = f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE reservation_id = ?"
        arguments: tuple[Any, ...] = (reservation_id,)
        if method is not None:
            query += " AND method = ?"
            arguments += (method.value,)
        async with self._connection.execute(
            query + " ORDER BY id DESC LIMIT 1", arguments
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _payment(row)

    async def update(
        self,
        payment_id: int,
        now: datetime,
        *,
        status: PaymentStatus | None = None,
        reference: str | None = None,
        received_cents: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Change the fields given; leave the others as they are."""
        await self._connection.execute(
            "UPDATE payments SET status = coalesce(?, status), reference = coalesce(?, reference),"
            " received_cents = coalesce(?, received_cents), reason = coalesce(?, reason), updated_at = ?"
            " WHERE id = ?",
            (
                status.value if status else None,
                reference,
                received_cents,
                reason,
                to_db(now),
                payment_id,
            ),
        )

    async def waiting_for_reference(self, reference: str) -> Payment | None:
        """Return the oldest pending transfer payment whose customer gave this reference."""
        async with self._connection.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE method = 'transfer' AND status = 'pending'"
            " AND reference = ? ORDER BY id LIMIT 1",
            (reference,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _payment(row)

    async def search(
        self,
        *,
        status: PaymentStatus | None = None,
        phone: str | None = None,
        reservation_code: str | None = None,
    ) -> list[Payment]:
        """Payments matching every filter given, oldest first."""
        columns = ", ".join(f"payments.{column}" for column in _PAYMENT_COLUMNS.split(", "))
        query = f"SELECT {columns} FROM payments JOIN reservations ON reservations.id = payments.reservation_id"
        conditions: list[str] = []
        arguments: list[Any] = []
        for condition, value in (
            ("payments.status = ?", status.value if status else None),
            ("reservations.phone = ?", phone),
            ("reservations.code = ?", reservation_code),
        ):
            if value is not None:
                conditions.append(condition)
                arguments.append(value)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        async with self._connection.execute(query + " ORDER BY payments.id", arguments) as cursor:
            return [_payment(row) for row in await cursor.fetchall()]

    async def open_for(self, reservation_id: int) -> list[Payment]:
        async with self._connection.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE reservation_id = ?"
            " AND status IN ('pending', 'review') ORDER BY id",
            (reservation_id,),
        ) as cursor:
            return [_payment(row) for row in await cursor.fetchall()]


class TransferRepository:
    """Transfers seen in the bank account, registered by an operator, one row per reference."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def get(self, reference: str) -> Transfer | None:
        async with self._connection.execute(
            "SELECT id, reference, amount_cents, date, payment_id FROM transfers WHERE reference = ?",
            (reference,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else Transfer(row[0], row[1], row[2], row[3], row[4])

    async def add(self, reference: str, amount_cents: int, date: str, now: datetime) -> Transfer:
        await self._connection.execute(
            "INSERT INTO transfers (reference, amount_cents, date, created_at) VALUES (?, ?, ?, ?)",
            (reference, amount_cents, date, to_db(now)),
        )
        transfer = await self.get(reference)
        assert transfer is not None
        return transfer

    async def use(self, transfer_id: int, payment_id: int) -> bool:
        """Link the transfer to the payment it paid; False when it already paid one."""
        cursor = await self._connection.execute(
            "UPDATE transfers SET payment_id = ? WHERE id = ? AND payment_id IS NULL",
            (payment_id, transfer_id),
        )
        return cursor.rowcount == 1


_RECEIPT_COLUMNS = "id, payment_id, phone, media_id, mime_type, declared_sha256, sha256, content"


def _receipt(row: Any) -> Receipt:
    return Receipt(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7])


class ReceiptRepository:
    """Photos or PDFs of transfer receipts, kept as evidence with their sha256."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def add(
        self,
        *,
        payment_id: int | None,
        phone: str,
        media_id: str,
        mime_type: str,
        declared_sha256: str | None,
        now: datetime,
    ) -> None:
        await self._connection.execute(
            "INSERT OR IGNORE INTO receipts (payment_id, phone, media_id, mime_type, declared_sha256, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (payment_id, phone, media_id, mime_type, declared_sha256, to_db(now)),
        )

    async def to_fetch(self, max_attempts: int, limit: int = 10) -> list[Receipt]:
        async with self._connection.execute(
            f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE content IS NULL AND attempts < ?"
            " ORDER BY id LIMIT ?",
            (max_attempts, limit),
        ) as cursor:
            return [_receipt(row) for row in await cursor.fetchall()]

    async def store(
        self, receipt_id: int, content: bytes, sha256: str, mime_type: str | None
    ) -> None:
        await self._connection.execute(
            "UPDATE receipts SET content = ?, sha256 = ?, mime_type = coalesce(?, mime_type),"
            " attempts = attempts + 1, error = NULL WHERE id = ?",
            (content, sha256, mime_type, receipt_id),
        )

    async def failed(self, receipt_id: int, error: str, *, final: bool = False) -> None:
        """Record a failed download; a final failure is not tried again."""
        await self._connection.execute(
            "UPDATE receipts SET attempts = CASE WHEN ? THEN 1000000 ELSE attempts + 1 END, error = ?"
            " WHERE id = ?",
            (final, error, receipt_id),
        )

    async def state_of(self, payment_id: int) -> str | None:
        """ "stored" when a receipt of the payment was downloaded, "downloading" while one
        is being fetched, "failed: <error>" when none could be, None without receipts."""
        async with self._connection.execute(
            "SELECT content IS NOT NULL, error, attempts FROM receipts WHERE payment_id = ?"
            " ORDER BY content IS NOT NULL DESC, id DESC LIMIT 1",
            (payment_id,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        if row[0]:
            return "stored"
        return f"failed: {row[1]}" if row[1] else "downloading"

    async def for_payment(self, payment_id: int) -> Receipt | None:
        """Return the latest receipt of a payment, preferring one whose content was downloaded."""
        async with self._connection.execute(
            f"SELECT {_RECEIPT_COLUMNS} FROM receipts WHERE payment_id = ?"
            " ORDER BY content IS NOT NULL DESC, id DESC LIMIT 1",
            (payment_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _receipt(row)


_TICKET_COLUMNS = "code, reservation_id, event_id, status, issued_at, redeemed_at"


def _ticket(row: Any) -> Ticket:
    return Ticket(
        row[0], row[1], row[2], TicketStatus(row[3]), from_db(row[4]), from_db_optional(row[5])
    )


class TicketRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def issue(
        self, reservation: Reservation, codes: list[str], now: datetime
    ) -> list[Ticket]:
        await self._connection.executemany(
            "INSERT INTO tickets (code, reservation_id, event_id, status, issued_at) VALUES (?, ?, ?, 'valid', ?)",
            [(code, reservation.id, reservation.event_id, to_db(now)) for code in codes],
        )
        return await self.for_reservation(reservation.id)

    async def for_reservation(self, reservation_id: int) -> list[Ticket]:
        async with self._connection.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE reservation_id = ? ORDER BY rowid",
            (reservation_id,),
        ) as cursor:
            return [_ticket(row) for row in await cursor.fetchall()]

    async def for_phone(self, phone: str) -> list[Ticket]:
        async with self._connection.execute(
            f"SELECT {', '.join('tickets.' + column for column in _TICKET_COLUMNS.split(', '))}"
            " FROM tickets JOIN reservations ON reservations.id = tickets.reservation_id"
            " WHERE reservations.phone = ? ORDER BY tickets.issued_at, tickets.rowid",
            (phone,),
        ) as cursor:
            return [_ticket(row) for row in await cursor.fetchall()]

    async def get(self, code: str) -> Ticket | None:
        async with self._connection.execute(
            f"SELECT {_TICKET_COLUMNS} FROM tickets WHERE code = ?", (code,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _ticket(row)

    async def redeem(self, code: str, now: datetime) -> bool:
        """Mark a valid ticket as used at the door; False when it was not valid."""
        cursor = await self._connection.execute(
            "UPDATE tickets SET status = 'redeemed', redeemed_at = ? WHERE code = ? AND status = 'valid'",
            (to_db(now), code),
        )
        return cursor.rowcount == 1

    async def holder(self, code: str) -> str | None:
        """Return the registered name of the ticket's buyer, or None after their data was erased."""
        async with self._connection.execute(
            "SELECT customers.full_name FROM tickets JOIN reservations ON reservations.id = tickets.reservation_id"
            " JOIN customers ON customers.phone = reservations.phone WHERE tickets.code = ?",
            (code,),
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row and row[0] else None

    async def attendees(self, event_id: str) -> list[tuple[str, str, str, str, str | None]]:
        """(code, status, reservation code, phone, customer name) of an event's tickets."""
        async with self._connection.execute(
            "SELECT tickets.code, tickets.status, reservations.code, reservations.phone, customers.full_name"
            " FROM tickets JOIN reservations ON reservations.id = tickets.reservation_id"
            " LEFT JOIN customers ON customers.phone = reservations.phone"
            " WHERE tickets.event_id = ? ORDER BY reservations.id, tickets.rowid",
            (event_id,),
        ) as cursor:
            return [(row[0], row[1], row[2], row[3], row[4]) for row in await cursor.fetchall()]
