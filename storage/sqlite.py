"""The SQLite store: one aiosqlite connection, migrations on open, one transaction at a time.

Every read-modify-write goes through `Store.transaction()`, which takes an asyncio
lock and runs `BEGIN IMMEDIATE`. The lock keeps coroutines that share the connection
from interleaving inside a transaction; `BEGIN IMMEDIATE` takes SQLite's write lock
at the start, so other processes on the same file wait (up to the busy timeout)
instead of failing with SQLITE_BUSY when a deferred transaction tries to write.
The connection runs in autocommit mode (`isolation_level=None`) because Python's
sqlite3 would otherwise open its own transactions around writes only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite

from storage.customers import CustomerRepository
from storage.handoffs import HandoffRepository
from storage.inbound import ContactRepository, InboundRepository
from storage.migrations import MIGRATIONS
from storage.outbox import OutboxRepository
from storage.sessions import SessionRepository
from storage.stats import StatsRepository
from storage.tickets import (
    EventRepository,
    PaymentRepository,
    ReceiptRepository,
    ReservationRepository,
    TicketRepository,
    TransferRepository,
)

__all__ = ["Store", "StoreError", "Transaction"]

logger = logging.getLogger(__name__)

# How long a transaction waits for another process's write lock, in milliseconds.
BUSY_TIMEOUT_MS = 10_000


class StoreError(Exception):
    """The database cannot be opened or is newer than this program."""


class Transaction:
    """The repositories of one open transaction; valid until the transaction ends."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        self.sessions = SessionRepository(connection)
        self.customers = CustomerRepository(connection)
        self.handoffs = HandoffRepository(connection)
        self.inbound = InboundRepository(connection)
        self.contacts = ContactRepository(connection)
        self.outbox = OutboxRepository(connection)
        self.events = EventRepository(connection)
        self.reservations = ReservationRepository(connection)
        self.payments = PaymentRepository(connection)
        self.transfers = TransferRepository(connection)
        self.receipts = ReceiptRepository(connection)
        self.tickets = TicketRepository(connection)
        self.stats = StatsRepository(connection)
        self._savepoints = 0

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run a nested part of the transaction that rolls back alone when it raises."""
        self._savepoints += 1
        name = f"part_{self._savepoints}"
        await self.connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.connection.execute(f"ROLLBACK TO {name}")
            await self.connection.execute(f"RELEASE {name}")
            raise
        await self.connection.execute(f"RELEASE {name}")


class Store:
    """A SQLite database file opened for the engine and the ticket bot."""

    def __init__(self, connection: aiosqlite.Connection, path: str) -> None:
        self._connection = connection
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: str) -> Store:
        """Open (creating if needed) the database at `path` and bring its schema up to date."""
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise StoreError(f"cannot create database {path}: directory {directory} does not exist")
        try:
            connection = await aiosqlite.connect(path, isolation_level=None)
        except Exception as error:  # aiosqlite re-raises sqlite3 errors of several classes
            raise StoreError(f"cannot open database {path}: {error}") from error
        store = cls(connection, path)
        try:
            await store._configure()
            await store._migrate()
        except Exception:
            await connection.close()
            raise
        return store

    async def _configure(self) -> None:
        await self._connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        async with self._connection.execute("PRAGMA journal_mode = WAL") as cursor:
            row = await cursor.fetchone()
        if row is None or str(row[0]).lower() != "wal":
            logger.warning(
                "database %s is not in WAL mode (%s); concurrent readers will block", self.path, row
            )
        await self._connection.execute("PRAGMA foreign_keys = ON")

    async def _migrate(self) -> None:
        async with self.transaction() as transaction:
            async with transaction.connection.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"database {self.path} has schema version {version}, newer than this program's "
                    f"{len(MIGRATIONS)}; upgrade whatsapp-tickets"
                )
            for number in range(version, len(MIGRATIONS)):
                logger.info("applying database migration %d to %s", number + 1, self.path)
                for statement in _statements(MIGRATIONS[number]):
                    await transaction.connection.execute(statement)
            if version < len(MIGRATIONS):
                await transaction.connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Run a `BEGIN IMMEDIATE` transaction; commit on success, roll back on any exception."""
        async with self._lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._connection)
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
            await self._connection.execute("COMMIT")

    async def ping(self) -> None:
        """Run a trivial query; raise if the database is not responding."""
        async with self._connection.execute("SELECT 1") as cursor:
            await cursor.fetchone()

    async def close(self) -> None:
        await self._connection.close()


def _statements(script: str) -> list[str]:
    """Split a migration into statements; migrations contain no semicolons in literals."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]
