"""Download customers' receipt photos right after the turn that received them.

WhatsApp gives a media id in the webhook; the download URL it leads to expires a few
minutes later. The turn records the receipt (id, mime type, declared sha256) in its
transaction, and this fetcher downloads the bytes straight after, outside any
transaction, and stores them with their sha256 as evidence of the payment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters.graph import GraphClient, SendOutcome
from storage import Store

__all__ = ["ReceiptFetcher"]

logger = logging.getLogger(__name__)

# Tries before a receipt is left without its content (the URL has expired by then).
MAX_ATTEMPTS = 5


class ReceiptFetcher:
    def __init__(self, store: Store, graph: GraphClient, *, poll_seconds: float = 5.0) -> None:
        self.store = store
        self.graph = graph
        self.poll_seconds = poll_seconds
        self._wakeup = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def fetch_round(self) -> int:
        """Download every receipt still missing its content; return how many were tried."""
        async with self.store.transaction() as transaction:
            receipts = await transaction.receipts.to_fetch(MAX_ATTEMPTS)
        for receipt in receipts:
            download = await self.graph.download(receipt.media_id)
            async with self.store.transaction() as transaction:
                if download.content is not None and download.sha256 is not None:
                    await transaction.receipts.store(
                        receipt.id, download.content, download.sha256, download.mime_type
                    )
                    if receipt.declared_sha256 and receipt.declared_sha256 != download.sha256:
                        logger.warning(
                            "receipt %s: sha256 %s differs from the one in the webhook",
                            receipt.media_id,
                            download.sha256,
                        )
                    logger.info(
                        "receipt %s stored (%d bytes)", receipt.media_id, len(download.content)
                    )
                else:
                    error = download.error
                    detail = f"code {error.error_code}: {error.detail}" if error else "no content"
                    final = error is not None and error.outcome is SendOutcome.FAILED
                    await transaction.receipts.failed(receipt.id, detail, final=final)
                    logger.warning(
                        "receipt %s not downloaded (%s)%s",
                        receipt.media_id,
                        detail,
                        "" if final else "; will retry",
                    )
        return len(receipts)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.fetch_round()
            except Exception:
                logger.exception(
                    "receipt download round failed; trying again in %.0f s", self.poll_seconds
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_seconds)
            self._wakeup.clear()
