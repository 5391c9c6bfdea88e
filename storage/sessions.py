"""Conversation sessions, one row per phone number."""

from __future__ import annotations

import json
from datetime import datetime

import aiosqlite

from engine.session import Session
from storage.timestamps import from_db, from_db_optional, to_db, to_db_optional

__all__ = ["SessionRepository"]


class SessionRepository:
    """Reads and writes sessions on the connection of an open transaction."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def get(self, phone: str) -> Session | None:
        async with self._connection.execute(
            "SELECT state, slots, attempts, deadline, flow_version, updated_at"
            " FROM sessions WHERE phone = ?",
            (phone,),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        state, slots, attempts, deadline, flow_version, updated_at = row
        return Session(
            phone=phone,
            state=state,
            slots=json.loads(slots),
            attempts=attempts,
            deadline=from_db_optional(deadline),
            flow_version=flow_version,
            updated_at=from_db(updated_at),
        )

    async def save(self, session: Session, now: datetime) -> None:
        await self._connection.execute(
            "INSERT INTO sessions (phone, state, slots, attempts, deadline, flow_version, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (phone) DO UPDATE SET state = excluded.state, slots = excluded.slots,"
            " attempts = excluded.attempts, deadline = excluded.deadline,"
            " flow_version = excluded.flow_version, updated_at = excluded.updated_at",
            (
                session.phone,
                session.state,
                json.dumps(session.slots, ensure_ascii=False, separators=(",", ":")),
                session.attempts,
                to_db_optional(session.deadline),
                session.flow_version,
                to_db(session.updated_at or now),
            ),
        )

    async def expired(self, now: datetime, limit: int = 100) -> list[str]:
        """Return phone numbers of open sessions whose deadline has passed."""
        async with self._connection.execute(
            "SELECT phone FROM sessions WHERE deadline IS NOT NULL AND deadline <= ?"
            " ORDER BY deadline LIMIT ?",
            (to_db(now), limit),
        ) as cursor:
            return [row[0] for row in await cursor.fetchall()]
