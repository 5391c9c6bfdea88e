"""Requests from customers to talk to a person."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from storage.timestamps import to_db

__all__ = ["HandoffRepository"]


class HandoffRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def request(self, phone: str, state: str, now: datetime) -> bool:
        """Record that `phone` asked for a person; return False if a request is already open."""
        async with self._connection.execute(
            "SELECT 1 FROM handoffs WHERE phone = ? AND resolved_at IS NULL", (phone,)
        ) as cursor:
            if await cursor.fetchone() is not None:
                return False
        await self._connection.execute(
            "INSERT INTO handoffs (phone, state, requested_at) VALUES (?, ?, ?)",
            (phone, state, to_db(now)),
        )
        return True
