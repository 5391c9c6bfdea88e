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
    # 3: the ticket domain, and the phases each conversation reached.
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
        capacity INTEGER NOT NULL CHECK (capacity > 0),
        order_limit INTEGER NOT NULL CHECK (order_limit > 0),
        on_sale INTEGER NOT NULL,
        starts_at TEXT,
        updated_at TEXT NOT NULL
    );

    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        phone TEXT NOT NULL,
        event_id TEXT NOT NULL REFERENCES events (id),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        amount_cents INTEGER NOT NULL,
        status TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        paid_at TEXT
    );
    CREATE INDEX reservations_taking_places ON reservations (event_id) WHERE status IN ('held', 'paid');
    CREATE INDEX reservations_held ON reservations (expires_at) WHERE status = 'held';
    CREATE INDEX reservations_by_phone ON reservations (phone);

    CREATE TABLE payments (
        id INTEGER PRIMARY KEY,
        reservation_id INTEGER NOT NULL REFERENCES reservations (id),
        method TEXT NOT NULL,
        status TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        reference TEXT,
        received_cents INTEGER,
        reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX payments_by_status ON payments (status);
    CREATE INDEX payments_by_reference ON payments (reference) WHERE reference IS NOT NULL;

    CREATE TABLE transfers (
        id INTEGER PRIMARY KEY,
        reference TEXT NOT NULL UNIQUE,
        amount_cents INTEGER NOT NULL,
        date TEXT NOT NULL,
        payment_id INTEGER UNIQUE REFERENCES payments (id),
        created_at TEXT NOT NULL
    );

    CREATE TABLE receipts (
        id INTEGER PRIMARY KEY,
        payment_id INTEGER REFERENCES payments (id),
        phone TEXT NOT NULL,
        media_id TEXT NOT NULL UNIQUE,
        mime_type TEXT NOT NULL,
        declared_sha256 TEXT,
        sha256 TEXT,
        content BLOB,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX receipts_to_fetch ON receipts (created_at) WHERE content IS NULL;

    CREATE TABLE tickets (
        code TEXT PRIMARY KEY,
        reservation_id INTEGER NOT NULL REFERENCES reservations (id),
        event_id TEXT NOT NULL REFERENCES events (id),
        status TEXT NOT NULL,
        issued_at TEXT NOT NULL,
        redeemed_at TEXT
    );
    CREATE INDEX tickets_by_reservation ON tickets (reservation_id);

    CREATE TABLE phase_visits (
        phone TEXT NOT NULL,
        phase TEXT NOT NULL,
        first_at TEXT NOT NULL,
        PRIMARY KEY (phone, phase)
    );
    """,
    # 4: message ids from the Graph API are not trusted to be unique: a repeated one
    # must not stop a reply from being recorded as accepted.
    """
    DROP INDEX outbox_by_message_id;
    CREATE INDEX outbox_by_message_id ON outbox (message_id) WHERE message_id IS NOT NULL;
    """,
    # 5: what an operator must do for a request (a refund), beside who asked.
    """
    ALTER TABLE handoffs ADD COLUMN note TEXT;
    """,
)
