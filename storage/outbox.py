"""The outbox: replies queued in the turn's transaction and delivered afterwards.

A reply is written here in the same transaction as the turn that produced it, so a
crash after the commit loses nothing: the deliverer sends what is pending after a
restart. Delivery is in order per recipient. Only the oldest pending entry of a
recipient can be claimed, and only while no other worker has a valid claim on it, so
two workers never send to one customer at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import aiosqlite

from storage.timestamps import from_db, from_db_optional, to_db

__all__ = ["OutboxEntry", "OutboxRepository", "OutboxStatus", "StatusChange"]


class OutboxStatus(Enum):
    """Lifecycle of a queued reply, in the order a reply normally goes through it."""

    # Queued, not yet accepted by the Graph API (also while being retried).
    PENDING = "pending"
    # The Graph API answered with a message id; no status webhook yet.
    ACCEPTED = "accepted"
    # Status webhooks from WhatsApp.
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    # Rejected for good, by the Graph API or by a `failed` status webhook.
    FAILED = "failed"


class StatusChange(Enum):
    """What a status webhook did to the outbox."""

    RECORDED = "recorded"
    # No reply has that message id (not sent by this server, or the row is gone).
    UNKNOWN = "ignored: unknown message"
    # The stored status is the same or later (webhooks arrive out of order).
    OUTDATED = "ignored: older than the stored status"


# A status webhook only moves an entry forward: `delivered` arriving after `read`
# (webhooks are not ordered) must not undo it. `failed` ends the entry.
_RANK = {
    OutboxStatus.PENDING: 0,
    OutboxStatus.ACCEPTED: 1,
    OutboxStatus.SENT: 2,
    OutboxStatus.DELIVERED: 3,
    OutboxStatus.READ: 4,
    OutboxStatus.FAILED: 5,
}


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    recipient: str
    phone_number_id: str
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    created_at: datetime
    message_id: str | None = None
    error_code: int | None = None
    error_detail: str | None = None


_COLUMNS = (
    "id, recipient, phone_number_id, payload, status, attempts, created_at,"
    " message_id, error_code, error_detail"
)


def _entry(row: Any) -> OutboxEntry:
    return OutboxEntry(
        id=row[0],
        recipient=row[1],
        phone_number_id=row[2],
        payload=json.loads(row[3]),
        status=OutboxStatus(row[4]),
        attempts=row[5],
        created_at=from_db(row[6]),
        message_id=row[7],
        error_code=row[8],
        error_detail=row[9],
    )


class OutboxRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def enqueue(
        self, recipient: str, phone_number_id: str, payloads: list[dict[str, Any]], now: datetime
    ) -> list[int]:
        """Queue payloads (Graph API message bodies without `to`) in order; return their ids."""
        timestamp = to_db(now)
        ids = []
        for payload in payloads:
            cursor = await self._connection.execute(
                "INSERT INTO outbox (recipient, phone_number_id, payload, status, not_before,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    recipient,
                    phone_number_id,
                    json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                    OutboxStatus.PENDING.value,
                    timestamp,
                    timestamp,
                    timestamp,
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    async def claim(
        self, worker: str, now: datetime, until: datetime, limit: int
    ) -> list[OutboxEntry]:
        """Claim up to `limit` entries, at most one per recipient, each the oldest of its recipient.

        An entry is claimable when it is due (`not_before` has passed) and no claim on
        it is still valid. Call inside a transaction; the claim lasts until `until`.
        """
        current = to_db(now)
        async with self._connection.execute(
            f"SELECT {_COLUMNS} FROM outbox AS entry"
            " WHERE entry.status = 'pending'"
            " AND entry.id = (SELECT min(id) FROM outbox"
            "   WHERE recipient = entry.recipient AND status = 'pending')"
            " AND entry.not_before <= ?"
            " AND (entry.claimed_until IS NULL OR entry.claimed_until <= ?)"
            " ORDER BY entry.id LIMIT ?",
            (current, current, limit),
        ) as cursor:
            entries = [_entry(row) for row in await cursor.fetchall()]
        if entries:
            await self._connection.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                [(worker, to_db(until), entry.id) for entry in entries],
            )
        return entries

    async def next_due(self) -> datetime | None:
        """Return when the earliest pending entry becomes due, or None when nothing is pending."""
        async with self._connection.execute(
            "SELECT min(max(not_before, coalesce(claimed_until, not_before)))"
            " FROM outbox WHERE status = 'pending'"
        ) as cursor:
            row = await cursor.fetchone()
        return from_db_optional(row[0] if row else None)

    async def mark_accepted(self, entry_id: int, message_id: str, now: datetime) -> None:
        await self._connection.execute(
            "UPDATE outbox SET status = 'accepted', message_id = ?, attempts = attempts + 1,"
            " claimed_by = NULL, claimed_until = NULL, updated_at = ? WHERE id = ?",
            (message_id, to_db(now), entry_id),
        )

    async def mark_retry(
        self,
        entry_id: int,
        not_before: datetime,
        error_code: int | None,
        detail: str,
        now: datetime,
    ) -> None:
        await self._connection.execute(
            "UPDATE outbox SET attempts = attempts + 1, not_before = ?, error_code = ?,"
            " error_detail = ?, claimed_by = NULL, claimed_until = NULL, updated_at = ? WHERE id = ?",
            (to_db(not_before), error_code, detail, to_db(now), entry_id),
        )

    async def mark_failed(
        self, entry_id: int, error_code: int | None, detail: str, now: datetime
    ) -> None:
        await self._connection.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, error_code = ?,"
            " error_detail = ?, claimed_by = NULL, claimed_until = NULL, updated_at = ? WHERE id = ?",
            (error_code, detail, to_db(now), entry_id),
        )

    async def release(self, entry_id: int) -> None:
        """Drop a claim without counting an attempt (the send was never tried)."""
        await self._connection.execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ?", (entry_id,)
        )

    async def pause_recipient(self, recipient: str, until: datetime) -> None:
        """Hold every pending entry of `recipient` until `until` (pair rate limit)."""
        await self._connection.execute(
            "UPDATE outbox SET not_before = max(not_before, ?) WHERE recipient = ? AND status = 'pending'",
            (to_db(until), recipient),
        )

    async def apply_status(
        self,
        message_id: str,
        status: OutboxStatus,
        at: datetime,
        error_code: int | None = None,
        detail: str | None = None,
    ) -> StatusChange:
        """Record a status webhook unless it is about an unknown message or older than what is stored."""
        async with self._connection.execute(
            "SELECT status FROM outbox WHERE message_id = ?", (message_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return StatusChange.UNKNOWN
        current = OutboxStatus(row[0])
        if _RANK[status] <= _RANK[current]:
            return StatusChange.OUTDATED
        await self._connection.execute(
            "UPDATE outbox SET status = ?, status_at = ?, error_code = coalesce(?, error_code),"
            " error_detail = coalesce(?, error_detail), updated_at = ? WHERE message_id = ?",
            (status.value, to_db(at), error_code, detail, to_db(at), message_id),
        )
        return StatusChange.RECORDED

    async def get(self, entry_id: int) -> OutboxEntry | None:
        async with self._connection.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (entry_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _entry(row)

    async def for_recipient(self, recipient: str) -> list[OutboxEntry]:
        async with self._connection.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE recipient = ? ORDER BY id", (recipient,)
        ) as cursor:
            return [_entry(row) for row in await cursor.fetchall()]

    async def count(self, status: OutboxStatus) -> int:
        async with self._connection.execute(
            "SELECT count(*) FROM outbox WHERE status = ?", (status.value,)
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
