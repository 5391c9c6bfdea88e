"""Schema migrations, applied in order when a store opens.

`PRAGMA user_version` records how many have run. Each migration runs inside the same
`BEGIN IMMEDIATE` transaction that reads the version, so two processes opening one
database at the same time apply each migration once. Append new migrations; never
edit one that has shipped.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[str, ...] = (
    # 1: conversations and customers.
    """
    CREATE TABLE sessions (
        phone TEXT PRIMARY KEY,
        state TEXT,
        slots TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        deadline TEXT,
        flow_version TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sessions_by_deadline ON sessions (deadline) WHERE deadline IS NOT NULL;

    CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        phone TEXT NOT NULL UNIQUE,
        cedula TEXT UNIQUE,
        full_name TEXT,
        birth_date TEXT,
        email TEXT,
        address TEXT,
        consented_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        erased_at TEXT
    );

    CREATE TABLE handoffs (
        id INTEGER PRIMARY KEY,
        phone TEXT NOT NULL,
        state TEXT,
        requested_at TEXT NOT NULL,
        resolved_at TEXT
    );
    CREATE INDEX handoffs_open ON handoffs (requested_at) WHERE resolved_at IS NULL;
    """,
    # 2: exactly-once turns, reply channels and the outbox of replies.
    """
    CREATE TABLE inbound_messages (
        message_id TEXT PRIMARY KEY,
        phone TEXT NOT NULL,
        received_at TEXT NOT NULL
    );

    CREATE TABLE contacts (
        phone TEXT PRIMARY KEY,
        phone_number_id TEXT NOT NULL,
        last_inbound_at TEXT NOT NULL
    );

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        recipient TEXT NOT NULL,
        phone_number_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before TEXT NOT NULL,
        claimed_by TEXT,
        claimed_until TEXT,
        message_id TEXT,
        error_code INTEGER,
        error_detail TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        status_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (recipient, id) WHERE status = 'pending';
    CREATE UNIQUE INDEX outbox_by_message_id ON outbox (message_id) WHERE message_id IS NOT NULL;
    """,
)
