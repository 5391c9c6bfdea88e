"""HMAC-SHA256 signatures of webhook bodies, as Meta and the payment provider send them."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["sign", "verify_signature"]

_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """Return the header value `sha256=<hex>` for `body` (what the sender computes)."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Check a `sha256=<hex>` header against the raw body bytes, in constant time.

    The body must be the bytes as received: Meta signs its JSON with non-ASCII
    characters escaped as \\uXXXX, so parsing and re-serialising would change it.
    """
    if not header or not header.startswith(_PREFIX):
        return False
    expected = sign(secret, body).encode()
    return hmac.compare_digest(expected, header.strip().lower().encode())
