"""SQLite persistence for sessions, customers and the ticket domain."""

from __future__ import annotations

from storage.customers import Customer, CustomerRepository, DuplicateCedula
from storage.handoffs import HandoffRepository
from storage.inbound import Contact, ContactRepository, InboundRepository
from storage.outbox import OutboxEntry, OutboxRepository, OutboxStatus, StatusChange
from storage.sessions import SessionRepository
from storage.sqlite import Store, StoreError, Transaction
from storage.stats import Stats, StatsRepository
from storage.tickets import (
    EventRecord,
    EventRepository,
    Payment,
    PaymentMethod,
    PaymentRepository,
    PaymentStatus,
    Receipt,
    ReceiptRepository,
    Reservation,
    ReservationRepository,
    ReservationStatus,
    Ticket,
    TicketRepository,
    TicketStatus,
    Transfer,
    TransferRepository,
)

__all__ = [
    "Contact",
    "ContactRepository",
    "Customer",
    "CustomerRepository",
    "DuplicateCedula",
    "EventRecord",
    "EventRepository",
    "HandoffRepository",
    "InboundRepository",
    "OutboxEntry",
    "OutboxRepository",
    "OutboxStatus",
    "Payment",
    "PaymentMethod",
    "PaymentRepository",
    "PaymentStatus",
    "Receipt",
    "ReceiptRepository",
    "Reservation",
    "ReservationRepository",
    "ReservationStatus",
    "SessionRepository",
    "Stats",
    "StatsRepository",
    "StatusChange",
    "Store",
    "StoreError",
    "Ticket",
    "TicketRepository",
    "TicketStatus",
    "Transaction",
    "Transfer",
    "TransferRepository",
]
