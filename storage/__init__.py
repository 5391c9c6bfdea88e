"""SQLite persistence for sessions, customers and the ticket domain."""

from __future__ import annotations

from storage.customers import Customer, CustomerRepository, DuplicateCedula
from storage.handoffs import HandoffRepository
from storage.sessions import SessionRepository
from storage.sqlite import Store, StoreError, Transaction

__all__ = [
    "Customer",
    "CustomerRepository",
    "DuplicateCedula",
    "HandoffRepository",
    "SessionRepository",
    "Store",
    "StoreError",
    "Transaction",
]
