from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import Session
from storage import DuplicateCedula, Store, StoreError
from storage.migrations import MIGRATIONS

NOW = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


async def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = await Store.open(str(path))
    await store.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert {"sessions", "customers", "handoffs"} <= tables


async def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = str(tmp_path / "tickets.db")
    store = await Store.open(path)
    async with store.transaction() as transaction:
        await transaction.sessions.save(Session("593990000001", "inicio.menu", {"a": 1}), NOW)
    await store.close()
    store = await Store.open(path)
    async with store.transaction() as transaction:
        session = await transaction.sessions.get("593990000001")
    await store.close()
    assert session is not None and session.state == "inicio.menu"


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this program's"):
        await Store.open(str(path))


async def test_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await Store.open(str(tmp_path / "missing" / "x.db"))


async def test_session_round_trip(store: Store) -> None:
    deadline = NOW + timedelta(minutes=10)
    session = Session(
        "593990000001",
        "registro.esperando_nombre",
        {"nombre": "Ñusta Quishpe", "cantidad": 2, "ok": True, "lista": [1, "dos"]},
        attempts=2,
        deadline=deadline,
        flow_version="abc123",
        updated_at=NOW,
    )
    async with store.transaction() as transaction:
        await transaction.sessions.save(session, NOW)
    async with store.transaction() as transaction:
        loaded = await transaction.sessions.get("593990000001")
    assert loaded == session


async def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as transaction:
            await transaction.sessions.save(Session("593990000001", "inicio.menu"), NOW)
            raise RuntimeError("turn failed")
    async with store.transaction() as transaction:
        assert await transaction.sessions.get("593990000001") is None


async def test_expired_lists_due_sessions_in_deadline_order(store: Store) -> None:
    async with store.transaction() as transaction:
        for phone, minutes in (("a", 5), ("b", -5), ("c", -10), ("d", None)):
            deadline = None if minutes is None else NOW + timedelta(minutes=minutes)
            await transaction.sessions.save(Session(phone, "inicio.menu", deadline=deadline), NOW)
        assert await transaction.sessions.expired(NOW) == ["c", "b"]


async def test_duplicate_cedula_from_another_phone(store: Store) -> None:
    fields = {
        "cedula": "1710034065",
        "full_name": "Ana Pérez",
        "birth_date": "2000-01-01",
        "email": "ana@example.com",
        "address": "Quito",
        "now": NOW,
    }
    async with store.transaction() as transaction:
        await transaction.customers.register(phone="593990000001", **fields)  # type: ignore[arg-type]
        with pytest.raises(DuplicateCedula):
            await transaction.customers.register(phone="593990000002", **fields)  # type: ignore[arg-type]
        again = await transaction.customers.register(phone="593990000001", **fields)  # type: ignore[arg-type]
    assert again.full_name == "Ana Pérez"


async def test_two_connections_never_lose_an_update(tmp_path: Path) -> None:
    """Two stores on one file act like two worker processes running turns at once."""
    path = str(tmp_path / "shared.db")
    first, second = await Store.open(path), await Store.open(path)

    async def increment(store: Store, times: int) -> None:
        for _ in range(times):
            async with store.transaction() as transaction:
                session = await transaction.sessions.get("593990000001") or Session(
                    "593990000001", "inicio.menu"
                )
                session.slots["count"] = session.slots.get("count", 0) + 1
                await asyncio.sleep(0)
                await transaction.sessions.save(session, NOW)

    await asyncio.gather(increment(first, 50), increment(second, 50), increment(first, 25))
    async with first.transaction() as transaction:
        session = await transaction.sessions.get("593990000001")
    await first.close()
    await second.close()
    assert session is not None and session.slots["count"] == 125
