"""Requests for a person: customers who wrote `asesor`, and refunds an operator must make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.timestamps import from_db, to_db

__all__ = ["Handoff", "HandoffRepository"]


@dataclass(frozen=True)
class Handoff:
    id: int
    phone: str
    state: str | None
    note: str | None
    requested_at: datetime


class HandoffRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def request(
        self, phone: str, state: str, now: datetime, *, note: str | None = None
    ) -> bool:
        """Record a request; return False when `phone` already has an open one without a note.

        Requests with a note (a refund to make) are always recorded, each its own task.
        """
        if note is None:
            async with self._connection.execute(
                "SELECT 1 FROM handoffs WHERE phone = ? AND resolved_at IS NULL AND note IS NULL",
                (phone,),
            ) as cursor:
                if await cursor.fetchone() is not None:
                    return False
        await self._connection.execute(
            "INSERT INTO handoffs (phone, state, note, requested_at) VALUES (?, ?, ?, ?)",
            (phone, state, note, to_db(now)),
        )
        return True

    async def open(self) -> list[Handoff]:
        async with self._connection.execute(
            "SELECT id, phone, state, note, requested_at FROM handoffs WHERE resolved_at IS NULL ORDER BY id"
        ) as cursor:
            return [
                Handoff(row[0], row[1], row[2], row[3], from_db(row[4]))
                for row in await cursor.fetchall()
            ]

    async def resolve(self, handoff_id: int, now: datetime) -> bool:
        """Close an open request; False when it does not exist or was closed already."""
        cursor = await self._connection.execute(
            "UPDATE handoffs SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
            (to_db(now), handoff_id),
        )
        return cursor.rowcount == 1
