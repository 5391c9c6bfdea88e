"""The operators' JSON API: bank transfers, payments, tickets at the door, statistics.

Every route needs `Authorization: Bearer <ADMIN_TOKEN>` (401 without it or with a
wrong one, compared in constant time). When no ADMIN_TOKEN is configured, every
admin route responds 404, so the API does not exist rather than being open. Invalid
input gets 422 with `{"error": "..."}`. Amounts are strings with two decimals
("4.00") beside integer cents.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.conversation import ConversationService
from engine import Notification
from flows import payments
from storage import Payment, PaymentStatus, Store, Ticket, Transaction

__all__ = ["admin_routes", "format_amount", "parse_amount"]

logger = logging.getLogger(__name__)

_AMOUNT = re.compile(r"^\d{1,9}\.\d{2}$")
_MAX_BODY = 64 * 1024

Handler = Callable[[Request], Awaitable[Response]]


class AdminContext(Protocol):
    """The parts of the server that the admin routes use."""

    store: Store
    service: ConversationService

    @property
    def admin_token(self) -> str | None: ...

    def now(self) -> datetime: ...

    def after_notifications(self) -> None: ...


class InvalidInput(ValueError):
    """The request body or parameters are invalid; the message names the field and the reason."""


def format_amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def parse_amount(value: Any) -> int:
    """Return cents of an amount given as a string with two decimals, as "4.00"."""
    if not isinstance(value, str) or not _AMOUNT.match(value.strip()):
        raise InvalidInput(
            f'amount must be a string with two decimals, as in "4.00", found {value!r}'
        )
    whole, cents = value.strip().split(".")
    return int(whole) * 100 + int(cents)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _ticket_code(text: str) -> str:
    """Normalise a typed ticket code: "k7rmx 3pafw" -> "K7RMX-3PAFW"."""
    raw = re.sub(r"[^0-9A-Za-z]", "", text).upper()
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else raw


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise InvalidInput(f"body larger than {_MAX_BODY} bytes")
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("body must be a JSON object")
    return value


class AdminAPI:
    def __init__(self, server: AdminContext) -> None:
        self.server = server

    # --- access ---------------------------------------------------------------------------

    def guarded(self, handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            token = self.server.admin_token
            if not token:
                return _error(404, "not found")
            scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
            # Auth schemes are case-insensitive (RFC 9110); the token itself is not.
            bearer = scheme.lower() == "bearer"
            if not (hmac.compare_digest(supplied.strip().encode(), token.encode()) and bearer):
                logger.warning(
                    "admin request to %s rejected: missing or wrong bearer token", request.url.path
                )
                return JSONResponse(
                    {"error": "missing or invalid bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            try:
                return await handler(request)
            except InvalidInput as error:
                return _error(422, str(error))

        return checked

    async def _notify(self, transaction: Transaction, notifications: list[Notification]) -> None:
        now = self.server.now()
        for notification in notifications:
            await self.server.service.notify(transaction, notification, now)

    # --- payments ---------------------------------------------------------------------------

    async def _payment_json(self, transaction: Transaction, payment: Payment) -> dict[str, Any]:
        reservation = await transaction.reservations.get(payment.reservation_id)
        return {
            "id": payment.id,
            "reservation": reservation.code if reservation else None,
            "phone": reservation.phone if reservation else None,
            "method": payment.method.value,
            "status": payment.status.value,
            "amount": format_amount(payment.amount_cents),
            "amount_cents": payment.amount_cents,
            "received": None
            if payment.received_cents is None
            else format_amount(payment.received_cents),
            "received_cents": payment.received_cents,
            "reference": payment.reference,
            "reason": payment.reason,
            # "stored", "downloading", "failed: <reason>", or None when none was sent.
            "receipt": await transaction.receipts.state_of(payment.id),
            "created_at": payment.created_at.isoformat(),
        }

    async def list_payments(self, request: Request) -> Response:
        params = request.query_params
        status_text = params.get("status")
        status = None
        if status_text:
            try:
                status = PaymentStatus(status_text)
            except ValueError:
                names = ", ".join(item.value for item in PaymentStatus)
                raise InvalidInput(f"unknown status {status_text!r}, use one of: {names}") from None
        async with self.server.store.transaction() as transaction:
            found = await transaction.payments.search(
                status=status, phone=params.get("phone"), reservation_code=params.get("reservation")
            )
            return JSONResponse(
                [await self._payment_json(transaction, payment) for payment in found]
            )

    async def _payment_from(self, transaction: Transaction, request: Request) -> Payment | None:
        try:
            payment_id = int(request.path_params["payment_id"])
        except ValueError:
            raise InvalidInput(
                f"payment id must be a number, found {request.path_params['payment_id']!r}"
            ) from None
        return await transaction.payments.get(payment_id)

    async def get_payment(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            payment = await self._payment_from(transaction, request)
            if payment is None:
                return _error(404, "payment not found")
            return JSONResponse(await self._payment_json(transaction, payment))

    async def receipt(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            payment = await self._payment_from(transaction, request)
            receipt = await transaction.receipts.for_payment(payment.id) if payment else None
        if payment is None:
            return _error(404, "payment not found")
        if receipt is None or receipt.content is None:
            return _error(404, "no receipt has been downloaded for this payment")
        headers = {"X-Content-SHA256": receipt.sha256 or ""}
        return Response(receipt.content, media_type=receipt.mime_type, headers=headers)

    async def _decidable(
        self, transaction: Transaction, request: Request, verb: str
    ) -> Payment | Response:
        """Return the payment of the URL when an operator may still approve or reject it, else the error."""
        payment = await self._payment_from(transaction, request)
        if payment is None:
            return _error(404, "payment not found")
        if payment.status not in (PaymentStatus.PENDING, PaymentStatus.REVIEW):
            return _error(
                409,
                f"payment {payment.id} is {payment.status.value}; only pending or review can be {verb}",
            )
        return payment

    async def approve(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            payment = await self._decidable(transaction, request, "approved")
            if isinstance(payment, Response):
                return payment
            settlement = await payments.approve(transaction, payment, self.server.now())
            if settlement.notification:
                await self._notify(transaction, [settlement.notification])
            updated = await transaction.payments.get(payment.id)
            assert updated is not None
            body = await self._payment_json(transaction, updated)
        logger.info("payment %d approved by an operator: %s", payment.id, settlement.status.value)
        self.server.after_notifications()
        return JSONResponse(body)

    async def reject(self, request: Request) -> Response:
        data = await _json_body(request)
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("reason is required: a short text the customer will read")
        async with self.server.store.transaction() as transaction:
            payment = await self._decidable(transaction, request, "rejected")
            if isinstance(payment, Response):
                return payment
            notification = await payments.reject(
                transaction, payment, reason.strip(), self.server.now()
            )
            await self._notify(transaction, [notification])
            updated = await transaction.payments.get(payment.id)
            assert updated is not None
            body = await self._payment_json(transaction, updated)
        self.server.after_notifications()
        return JSONResponse(body)

    async def refunded(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            payment = await self._payment_from(transaction, request)
            if payment is None:
                return _error(404, "payment not found")
            if payment.status is not PaymentStatus.REFUND_DUE:
                return _error(
                    409,
                    f"payment {payment.id} is {payment.status.value}; only refund_due can be marked refunded",
                )
            await transaction.payments.update(
                payment.id, self.server.now(), status=PaymentStatus.REFUNDED
            )
            updated = await transaction.payments.get(payment.id)
            assert updated is not None
            body = await self._payment_json(transaction, updated)
        logger.info("payment %d marked as refunded", payment.id)
        return JSONResponse(body)

    # --- transfers ---------------------------------------------------------------------------

    async def register_transfer(self, request: Request) -> Response:
        data = await _json_body(request)
        reference = data.get("reference")
        if not isinstance(reference, str) or not reference.strip():
            raise InvalidInput("reference is required: the transfer number on the bank statement")
        amount_cents = parse_amount(data.get("amount"))
        day = data.get("date")
        try:
            day_text = date.fromisoformat(day).isoformat() if isinstance(day, str) else None
        except ValueError:
            day_text = None
        if day_text is None:
            raise InvalidInput(f"date must be a day as YYYY-MM-DD, found {day!r}")
        async with self.server.store.transaction() as transaction:
            try:
                result = await payments.register_transfer(
                    transaction, reference, amount_cents, day_text, self.server.now()
                )
            except ValueError as error:
                raise InvalidInput(str(error)) from None
            await self._notify(transaction, result.notifications)
        transfer = result.transfer
        body = {
            "reference": transfer.reference,
            "amount": format_amount(transfer.amount_cents),
            "amount_cents": transfer.amount_cents,
            "date": transfer.date,
            "payment": result.payment.id if result.payment else transfer.payment_id,
            "result": result.settlement.status.value if result.settlement else "waiting",
        }
        if result.outcome == "conflict":
            return _error(
                409,
                f"reference {transfer.reference} is already registered with amount "
                f"{format_amount(transfer.amount_cents)} on {transfer.date}",
            )
        logger.info("transfer %s %s (%s)", transfer.reference, result.outcome, body["result"])
        self.server.after_notifications()
        return JSONResponse(body, status_code=201 if result.outcome == "created" else 200)

    # --- tickets -------------------------------------------------------------------------------

    async def _ticket_json(self, transaction: Transaction, ticket: Ticket) -> dict[str, Any]:
        event = await transaction.events.get(ticket.event_id)
        reservation = await transaction.reservations.get(ticket.reservation_id)
        return {
            "code": ticket.code,
            "status": ticket.status.value,
            # The buyer's registered name, to compare with an ID at the door.
            "holder": await transaction.tickets.holder(ticket.code),
            "event": ticket.event_id,
            "event_name": event.name if event else None,
            "reservation": reservation.code if reservation else None,
            "issued_at": ticket.issued_at.isoformat(),
            "redeemed_at": ticket.redeemed_at.isoformat() if ticket.redeemed_at else None,
        }

    async def get_ticket(self, request: Request) -> Response:
        code = _ticket_code(request.path_params["code"])
        async with self.server.store.transaction() as transaction:
            ticket = await transaction.tickets.get(code)
            if ticket is None:
                return _error(404, f"ticket {code} not found")
            return JSONResponse(await self._ticket_json(transaction, ticket))

    async def redeem(self, request: Request) -> Response:
        code = _ticket_code(request.path_params["code"])
        async with self.server.store.transaction() as transaction:
            ticket = await transaction.tickets.get(code)
            if ticket is None:
                return _error(404, f"ticket {code} not found")
            if not await transaction.tickets.redeem(code, self.server.now()):
                when = f" at {ticket.redeemed_at.isoformat()}" if ticket.redeemed_at else ""
                return _error(
                    409,
                    f"ticket {code} is {ticket.status.value}{when}; it cannot be redeemed again",
                )
            redeemed = await transaction.tickets.get(code)
            assert redeemed is not None
            body = await self._ticket_json(transaction, redeemed)
        logger.info("ticket %s redeemed", code)
        return JSONResponse(body)

    async def attendees(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        async with self.server.store.transaction() as transaction:
            event = await transaction.events.get(event_id)
            rows = await transaction.tickets.attendees(event_id) if event else []
        if event is None:
            return _error(404, f"event {event_id} not found")
        output = io.StringIO()
        writer = csv.writer(output)
        writer.writerow(["ticket", "status", "reservation", "phone", "name"])
        writer.writerows(rows)
        return Response(
            output.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{event_id}-attendees.csv"'},
        )

    # --- overview --------------------------------------------------------------------------------

    async def stats(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            stats = await transaction.stats.collect()
        return JSONResponse(
            {
                "phases": stats.phases,
                "holds": stats.holds,
                "held": stats.held,
                "paid": stats.paid,
                "expired": stats.expired,
                "cancelled": stats.cancelled,
                "revenue": format_amount(stats.revenue_cents),
                "revenue_cents": stats.revenue_cents,
                "tickets_sold": stats.tickets_sold,
                "tickets_redeemed": stats.tickets_redeemed,
            }
        )

    async def handoffs(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            handoffs = await transaction.handoffs.open()
        return JSONResponse(
            [
                {
                    "id": handoff.id,
                    "phone": handoff.phone,
                    "state": handoff.state,
                    "note": handoff.note,
                    "requested_at": handoff.requested_at.isoformat(),
                }
                for handoff in handoffs
            ]
        )

    async def resolve_handoff(self, request: Request) -> Response:
        try:
            handoff_id = int(request.path_params["handoff_id"])
        except ValueError:
            raise InvalidInput(
                f"handoff id must be a number, found {request.path_params['handoff_id']!r}"
            ) from None
        async with self.server.store.transaction() as transaction:
            resolved = await transaction.handoffs.resolve(handoff_id, self.server.now())
        if not resolved:
            return _error(404, f"no open handoff {handoff_id}")
        return JSONResponse({"id": handoff_id, "resolved": True})

    async def undelivered(self, request: Request) -> Response:
        async with self.server.store.transaction() as transaction:
            cursor = await transaction.connection.execute(
                "SELECT id, recipient, status, error_code, error_detail, created_at FROM outbox"
                " WHERE status = 'failed' ORDER BY id"
            )
            rows = await cursor.fetchall()
        return JSONResponse(
            [
                {
                    "id": row[0],
                    "phone": row[1],
                    "error_code": row[3],
                    "reason": row[4],
                    "created_at": row[5],
                }
                for row in rows
            ]
        )


def admin_routes(server: AdminContext) -> list[Route]:
    api = AdminAPI(server)
    guarded = api.guarded
    return [
        Route("/admin/transfers", guarded(api.register_transfer), methods=["POST"]),
        Route("/admin/payments", guarded(api.list_payments), methods=["GET"]),
        Route("/admin/payments/{payment_id}", guarded(api.get_payment), methods=["GET"]),
        Route("/admin/payments/{payment_id}/receipt", guarded(api.receipt), methods=["GET"]),
        Route("/admin/payments/{payment_id}/approve", guarded(api.approve), methods=["POST"]),
        Route("/admin/payments/{payment_id}/reject", guarded(api.reject), methods=["POST"]),
        Route("/admin/payments/{payment_id}/refunded", guarded(api.refunded), methods=["POST"]),
        Route("/admin/tickets/{code}", guarded(api.get_ticket), methods=["GET"]),
        Route("/admin/tickets/{code}/redeem", guarded(api.redeem), methods=["POST"]),
        Route("/admin/events/{event_id}/attendees.csv", guarded(api.attendees), methods=["GET"]),
        Route("/admin/stats", guarded(api.stats), methods=["GET"]),
        Route("/admin/handoffs", guarded(api.handoffs), methods=["GET"]),
        Route(
            "/admin/handoffs/{handoff_id}/resolve", guarded(api.resolve_handoff), methods=["POST"]
        ),
        Route("/admin/undelivered", guarded(api.undelivered), methods=["GET"]),
        # Any other admin path: 404, but only after the token check, so it reveals nothing.
        Route("/admin/{rest:path}", guarded(_not_found), methods=["GET", "POST", "PUT", "DELETE"]),
    ]


async def _not_found(request: Request) -> Response:
    return _error(404, "not found")
