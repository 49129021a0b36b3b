"""Shutdown (every caller gets a final answer) and housekeeping (expiry, health, series)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from nvcf_helpers.local.api_base import ApiBase
from nvcf_helpers.local.metrics import SAMPLE_SECONDS
from nvcf_helpers.local.problems import stopping_result
from nvcf_helpers.local.store import Invocation

__all__ = ["Housekeeping"]

logger = logging.getLogger("nvcf_helpers.local")


class Housekeeping(ApiBase):
    """Shutdown and the background tasks that run while the application does."""

    async def shutdown(self, grace: float) -> None:
        """Give every caller a final answer: results within ``grace`` seconds, else 503.

        Queued requests are answered 503 at once; running ones get their result
        if it lands within ``grace``, else a 503 problem saying the local NVCF
        is stopping. New invocations are refused with 503 from now on.
        """
        self.stopping = True
        stores = [deployment.store for deployment in self.cloud]
        for store in stores:
            for invocation in store.queued():
                store.withdraw(invocation)
                invocation.cancel()
                invocation.finish(stopping_result(invocation, queued=True, grace=grace))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(store.running for store in stores) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._stopped.set()
        for invocation in [item for store in stores for item in store.running]:
            invocation.cancel()
            invocation.finish(stopping_result(invocation, queued=False, grace=grace))
            logger.warning(
                "request %s: not finished within the %g s grace: the local NVCF is stopping",
                invocation.request_id,
                grace,
            )

    async def _start_sweeper(self, app: web.Application) -> None:
        for deployment in self.cloud:
            deployment.follow()  # deployments made before the API started (--spec)
        self._housekeeping = [
            asyncio.create_task(self._sweep_forever()),
            asyncio.create_task(self._follow_health()),
            asyncio.create_task(self._sample_forever()),
        ]

    async def _stop_sweeper(self, app: web.Application) -> None:
        for task in self._housekeeping:
            task.cancel()
        await asyncio.gather(*self._housekeeping, return_exceptions=True)
        for deployment in self.cloud:
            await deployment.store.close()

    async def _follow_health(self) -> None:
        """Serve the queue again once an unhealthy container recovers."""
        while True:
            await asyncio.sleep(0.1)
            for deployment in self.cloud:
                if deployment.store.queued():
                    deployment.store.poke()

    async def _sample_forever(self) -> None:
        """Every version's point of its series, every :data:`SAMPLE_SECONDS`."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.cloud.metrics.sample()
            next_at = max(next_at + SAMPLE_SECONDS, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _sweep_forever(self) -> None:
        interval = min(60.0, max(0.2, self.cloud.settings.result_ttl / 4))
        while True:
            await asyncio.sleep(interval)
            for deployment in self.cloud:
                deployment.store.sweep()
            now = time.monotonic()
            for token, expiry in list(self._zip_expiry.items()):
                if expiry < now:
                    self._remove_zip(token)

    def _forgotten(self, invocation: Invocation) -> None:
        if invocation.result is not None and invocation.result.zip_token is not None:
            self._remove_zip(invocation.result.zip_token)

    def _remove_zip(self, token: str) -> None:
        self._zip_expiry.pop(token, None)
        path = self.cloud.files.zips.pop(token, None)
        if path is not None:
            path.unlink(missing_ok=True)
