"""Time out idle conversations and run the bot's periodic hooks, in the background.

Deadlines live in the sessions table, so any worker can sweep them and none is lost
when a process restarts. Each expired session is claimed inside its own
`BEGIN IMMEDIATE` transaction (see `ConversationService.expire`), so when several
workers sweep at once each session is reset, compensated and notified once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from adapters.conversation import ConversationService

__all__ = ["Sweeper"]

logger = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        service: ConversationService,
        *,
        interval_seconds: float = 15.0,
        on_expired: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.interval_seconds = interval_seconds
        self.on_expired = on_expired
        self._stop = asyncio.Event()

    async def sweep(self) -> int:
        """Time out due sessions and run the bot's periodic hooks; return how many customers were told."""
        told = await self.service.sweep()
        if told and self.on_expired is not None:
            self.on_expired()
        return len(told)

    async def run(self) -> None:
        logger.info("inactivity sweeper started, every %.0f s", self.interval_seconds)
        while not self._stop.is_set():
            try:
                count = await self.sweep()
                if count:
                    logger.info("sweep sent notices to %d customers", count)
            except Exception:
                logger.exception(
                    "inactivity sweep failed; trying again in %.0f s", self.interval_seconds
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_seconds)
        logger.info("inactivity sweeper stopped")

    def stop(self) -> None:
        self._stop.set()
