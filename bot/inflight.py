"""Work the bot acknowledged and has not finished yet, so shutdown can let it finish.

Slack is answered (acked) before the slow work runs; that work is a task of
its own. Each one registers here while it runs. On SIGTERM the server stops
taking requests and awaits `drain(grace)`: the work finishes, or, at the
deadline, is cancelled, and the cancellation is recorded for what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)


class InFlight:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._tasks)

    @contextlib.asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        self._tasks.add(task)
        self._idle.clear()
        try:
            yield
        finally:
            self._tasks.discard(task)
            if not self._tasks:
                self._idle.set()

    async def drain(self, grace: float) -> bool:
        """Let acknowledged work finish within `grace` seconds; cancel what is left. True if all finished."""
        self.closing = True
        if self._tasks:
            log.info("waiting up to %gs for %d acknowledged requests to finish", grace, len(self._tasks))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        left = list(self._tasks)
        for task in left:
            task.cancel()
        if left:
            log.warning("%d requests were still running at the shutdown deadline; they were stopped", len(left))
            await asyncio.wait(left, timeout=5)
        return not left
