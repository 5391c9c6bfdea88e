"""Registered customers and their personal data.

Personal data (name, cédula, birth date, email, address) is read only by the phone
number that registered it. Erasing a customer blanks those columns and keeps the row,
so records that must outlive the data (paid tickets) still have an owner id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from storage.timestamps import from_db_optional, to_db

__all__ = ["Customer", "CustomerRepository", "DuplicateCedula"]


class DuplicateCedula(Exception):
    """The cédula is already registered by another phone number."""


@dataclass(frozen=True)
class Customer:
    id: int
    phone: str
    cedula: str | None
    full_name: str | None
    birth_date: str | None
    email: str | None
    address: str | None
    consented_at: datetime | None
    erased_at: datetime | None

    @property
    def registered(self) -> bool:
        return self.erased_at is None and self.cedula is not None


_COLUMNS = "id, phone, cedula, full_name, birth_date, email, address, consented_at, erased_at"


def _customer(row: aiosqlite.Row | tuple[object, ...]) -> Customer:
    (
        customer_id,
        phone,
        cedula,
        full_name,
        birth_date,
        email,
        address,
        consented_at,
        erased_at,
    ) = tuple(row)
    return Customer(
        id=int(str(customer_id)),
        phone=str(phone),
        cedula=cedula if isinstance(cedula, str) else None,
        full_name=full_name if isinstance(full_name, str) else None,
        birth_date=birth_date if isinstance(birth_date, str) else None,
        email=email if isinstance(email, str) else None,
        address=address if isinstance(address, str) else None,
        consented_at=from_db_optional(consented_at if isinstance(consented_at, str) else None),
        erased_at=from_db_optional(erased_at if isinstance(erased_at, str) else None),
    )


class CustomerRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def by_phone(self, phone: str) -> Customer | None:
        async with self._connection.execute(
            f"SELECT {_COLUMNS} FROM customers WHERE phone = ?", (phone,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _customer(row)

    async def cedula_owner(self, cedula: str) -> str | None:
        """Return the phone number that registered `cedula`, or None.

        Callers must not show the owner's data to anyone else; this only tells
        whether the cédula is taken and by which number.
        """
        async with self._connection.execute(
            "SELECT phone FROM customers WHERE cedula = ?", (cedula,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def register(
        self,
        *,
        phone: str,
        cedula: str,
        full_name: str,
        birth_date: str,
        email: str,
        address: str,
        now: datetime,
    ) -> Customer:
        """Create or update the customer of `phone`; raise DuplicateCedula if another number has it."""
        owner = await self.cedula_owner(cedula)
        if owner is not None and owner != phone:
            raise DuplicateCedula(cedula)
        timestamp = to_db(now)
        await self._connection.execute(
            "INSERT INTO customers (phone, cedula, full_name, birth_date, email, address,"
            " consented_at, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (phone) DO UPDATE SET cedula = excluded.cedula,"
            " full_name = excluded.full_name, birth_date = excluded.birth_date,"
            " email = excluded.email, address = excluded.address,"
            " consented_at = excluded.consented_at, updated_at = excluded.updated_at,"
            " erased_at = NULL",
            (phone, cedula, full_name, birth_date, email, address, timestamp, timestamp, timestamp),
        )
        customer = await self.by_phone(phone)
        assert customer is not None
        return customer

    async def erase(self, phone: str, now: datetime) -> bool:
        """Delete the personal data of `phone`'s customer; return False if there was none."""
        timestamp = to_db(now)
        cursor = await self._connection.execute(
            "UPDATE customers SET cedula = NULL, full_name = NULL, birth_date = NULL,"
            " email = NULL, address = NULL, consented_at = NULL, erased_at = ?, updated_at = ?"
            " WHERE phone = ? AND erased_at IS NULL",
            (timestamp, timestamp, phone),
        )
        return cursor.rowcount > 0
