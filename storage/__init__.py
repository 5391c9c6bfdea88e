"""SQLite persistence for sessions, customers and the ticket domain."""

from __future__ import annotations

from storage.customers import Customer, CustomerRepository, DuplicateCedula
from storage.handoffs import HandoffRepository
from storage.inbound import Contact, ContactRepository, InboundRepository
from storage.outbox import OutboxEntry, OutboxRepository, OutboxStatus
from storage.sessions import SessionRepository
from storage.sqlite import Store, StoreError, Transaction

__all__ = [
    "Contact",
    "ContactRepository",
    "Customer",
    "CustomerRepository",
    "DuplicateCedula",
    "HandoffRepository",
    "InboundRepository",
    "OutboxEntry",
    "OutboxRepository",
    "OutboxStatus",
    "SessionRepository",
    "Store",
    "StoreError",
    "Transaction",
]
