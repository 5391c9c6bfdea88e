"""The card payment provider's webhook: POST /payments/webhook.

The provider signs the raw body with HMAC-SHA256 and PAYMENTS_WEBHOOK_SECRET and sends
`X-Payments-Signature: sha256=<hex>`. The body is
`{"reservation": "K7RMXP", "status": "paid" | "failed", "amount": "4.00",
"provider_reference": "..."}`. A repeated notification changes nothing; a bad
signature gets 401 and changes nothing. Without a configured secret the route
answers 404.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.admin import AdminContext, InvalidInput, parse_amount
from adapters.signatures import verify_signature
from flows import payments

__all__ = ["card_payment_routes"]

logger = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class CardWebhook:
    def __init__(self, server: AdminContext, secret: str | None) -> None:
        self.server = server
        self.secret = secret

    async def receive(self, request: Request) -> Response:
        if not self.secret:
            return _error(404, "card payments are not configured; set PAYMENTS_WEBHOOK_SECRET")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(413, f"body larger than {_MAX_BODY} bytes")
        if not verify_signature(self.secret, body, request.headers.get("x-payments-signature")):
            logger.warning("card payment notification with a missing or wrong signature rejected")
            return _error(401, "missing or invalid X-Payments-Signature")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not valid JSON")
        try:
            code, paid, amount_cents, reference = _fields(data)
        except InvalidInput as error:
            return _error(422, str(error))

        async with self.server.store.transaction() as transaction:
            result = await payments.apply_card_notification(
                transaction,
                reservation_code_text=code,
                paid=paid,
                amount_cents=amount_cents,
                provider_reference=reference,
                now=self.server.now(),
            )
            for notification in result.notifications:
                await self.server.service.notify(transaction, notification, self.server.now())
        if result.outcome == "unknown_reservation":
            logger.warning("card payment notification for unknown reservation %s", code)
            return _error(404, f"reservation {code} not found")
        logger.info(
            "card payment notification for %s: %s (%s)",
            code,
            "paid" if paid else "failed",
            result.outcome,
        )
        self.server.after_notifications()
        payment = result.payment
        return JSONResponse(
            {
                "status": result.outcome,
                "payment": payment.id if payment else None,
                "reservation": code,
            }
        )


def _fields(data: object) -> tuple[str, bool, int, str]:
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object")
    code = data.get("reservation")
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("reservation is required: the reservation code from the payment link")
    status = data.get("status")
    if status not in ("paid", "failed"):
        raise InvalidInput(f'status must be "paid" or "failed", found {status!r}')
    reference = data.get("provider_reference")
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidInput("provider_reference is required: the provider's id of the charge")
    return (
        code.strip().upper(),
        status == "paid",
        parse_amount(data.get("amount")),
        reference.strip(),
    )


def card_payment_routes(server: AdminContext, secret: str | None) -> list[Route]:
    return [Route("/payments/webhook", CardWebhook(server, secret).receive, methods=["POST"])]
