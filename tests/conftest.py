from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.cli import packaged_flows
from adapters.conversation import ConversationService
from engine import Bot, load_bot
from storage import Store


class FakeClock:
    """A clock that tests move forward by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def ticket_bot() -> Bot:
    return load_bot(packaged_flows())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(str(tmp_path / "tickets.db"))
    yield opened
    await opened.close()


@pytest.fixture
async def service(ticket_bot: Bot, store: Store, clock: FakeClock) -> ConversationService:
    started = ConversationService(ticket_bot, store, clock)
    await started.start()
    return started
