"""A started in-process server with a client for its routes and the fake Graph API behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from adapters.config import ServerConfig
from adapters.fake_graph import FakeGraphAPI
from adapters.server import WhatsAppServer, create_app
from engine import Bot
from tests.conftest import FakeClock
from tests.whatsapp import APP_SECRET, encode, messages_body, signed_headers, text

TOKEN = "test-token"
ADMIN_TOKEN = "admin-secret"
PAYMENTS_SECRET = "payments-secret"


def make_config(tmp_path: Path, flows: str, **changes: Any) -> ServerConfig:
    settings: dict[str, Any] = {
        "db_path": str(tmp_path / "server.db"),
        "flows": flows,
        "app_secret": APP_SECRET,
        "verify_token": "verify-me",
        "access_token": TOKEN,
        "api_url": "https://graph.test/v23.0",
        "admin_token": ADMIN_TOKEN,
        "payments_secret": PAYMENTS_SECRET,
        **changes,
    }
    return ServerConfig(**settings)


class Harness:
    """A started server, a client for its routes, and the fake Graph API behind it."""

    def __init__(self, server: WhatsAppServer, fake: FakeGraphAPI, clock: FakeClock) -> None:
        self.server = server
        self.fake = fake
        self.clock = clock
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(server)), base_url="http://test"
        )

    async def post(
        self, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else encode(body)
        return await self.client.post(
            "/webhook", content=raw, headers=headers or signed_headers(raw)
        )

    async def say(self, phone: str, words: str, message_id: str | None = None) -> httpx.Response:
        return await self.post(messages_body(text(phone, words, message_id)))

    async def deliver(self) -> int:
        return await self.server.deliverer.run_until_idle()

    async def outbox(self, phone: str) -> list[Any]:
        async with self.server.store.transaction() as transaction:
            return await transaction.outbox.for_recipient(phone)

    async def admin(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = ADMIN_TOKEN,
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        return await self.client.request(method, path, json=body, headers=headers)

    async def session_state(self, phone: str) -> str | None:
        async with self.server.store.transaction() as transaction:
            session = await transaction.sessions.get(phone)
        return session.state if session else None


async def start_harness(
    config: ServerConfig, bot: Bot, clock: FakeClock, fake: FakeGraphAPI
) -> Harness:
    server = WhatsAppServer(
        config, bot, clock=clock, http_transport=httpx.MockTransport(fake.handler)
    )
    await server.start(background=False)
    return Harness(server, fake, clock)
