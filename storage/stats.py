"""Counts for the operator: how far conversations got, and what became of reservations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.timestamps import to_db

__all__ = ["Stats", "StatsRepository"]


@dataclass(frozen=True)
class Stats:
    # Phone numbers that reached each phase at least once, by phase name.
    phases: dict[str, int]
    # Reservations ever made (each confirmed order is one hold), then by what became of them.
    holds: int
    held: int
    paid: int
    expired: int
    cancelled: int
    revenue_cents: int
    tickets_sold: int
    tickets_redeemed: int


class StatsRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def visit(self, phone: str, phases: set[str], now: datetime) -> None:
        """Record that `phone` reached `phases` (the first time counts)."""
        await self._connection.executemany(
            "INSERT OR IGNORE INTO phase_visits (phone, phase, first_at) VALUES (?, ?, ?)",
            [(phone, phase, to_db(now)) for phase in sorted(phases)],
        )

    async def collect(self) -> Stats:
        async with self._connection.execute(
            "SELECT phase, count(*) FROM phase_visits GROUP BY phase"
        ) as cursor:
            phases = {str(row[0]): int(row[1]) for row in await cursor.fetchall()}
        async with self._connection.execute(
            "SELECT count(*),"
            " coalesce(sum(status = 'held'), 0), coalesce(sum(status = 'paid'), 0),"
            " coalesce(sum(status = 'expired'), 0), coalesce(sum(status = 'cancelled'), 0),"
            # Money received for paid reservations, which an operator may have approved short.
            " (SELECT coalesce(sum(received_cents), 0) FROM payments WHERE status = 'paid')"
            " FROM reservations"
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        async with self._connection.execute(
            "SELECT coalesce(sum(status IN ('valid', 'redeemed')), 0), coalesce(sum(status = 'redeemed'), 0)"
            " FROM tickets"
        ) as cursor:
            tickets = await cursor.fetchone()
        assert tickets is not None
        return Stats(phases, row[0], row[1], row[2], row[3], row[4], row[5], tickets[0], tickets[1])
