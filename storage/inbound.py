"""Inbound message ids already processed, and the channel each customer writes from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.timestamps import from_db, to_db

__all__ = ["Contact", "ContactRepository", "InboundRepository"]


class InboundRepository:
    """Message ids of turns already run: WhatsApp delivers some messages more than once."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def record(self, message_id: str, phone: str, now: datetime) -> bool:
        """Record `message_id`; return False when it was recorded before (a duplicate).

        Call in the transaction that stores the turn, so the id is recorded exactly
        when the turn is.
        """
        cursor = await self._connection.execute(
            "INSERT OR IGNORE INTO inbound_messages (message_id, phone, received_at) VALUES (?, ?, ?)",
            (message_id, phone, to_db(now)),
        )
        return cursor.rowcount == 1


@dataclass(frozen=True)
class Contact:
    """The business number a customer last wrote to, and when."""

    phone: str
    phone_number_id: str
    last_inbound_at: datetime


class ContactRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def touch(self, phone: str, phone_number_id: str, now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO contacts (phone, phone_number_id, last_inbound_at) VALUES (?, ?, ?)"
            " ON CONFLICT (phone) DO UPDATE SET phone_number_id = excluded.phone_number_id,"
            " last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
            (phone, phone_number_id, to_db(now)),
        )

    async def get(self, phone: str) -> Contact | None:
        async with self._connection.execute(
            "SELECT phone_number_id, last_inbound_at FROM contacts WHERE phone = ?", (phone,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else Contact(phone, row[0], from_db(row[1]))
