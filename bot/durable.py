"""Store writes that must not be lost: audit entries, and what follows a write the API accepted.

`DurableWrites.write` tries the store at once. If the store is unavailable
(locked by another process, say) the entry is logged in full at WARNING,
kept in memory and retried in the background, so the person's reply never
waits for the lock. `drain()` is called at shutdown: whatever still cannot be
written is logged in full at ERROR, so an operator can always replay it.

Given the store (`store=`), writes of its own methods are committed in groups:
each caller still awaits its own write, but the writes that arrive while a
group is being committed go together in the next one, in one thread hop and
one transaction (`Store.in_one_transaction`), in the order they came. Under a
burst of commands that is a handful of commits instead of one per command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


@dataclass
class _Pending:
    what: str
    fn: Callable[..., Any]
    fields: dict[str, Any] = field(default_factory=dict)

    def entry(self) -> str:
        return json.dumps({"what": self.what, **self.fields}, default=str, ensure_ascii=False)


class DurableWrites:
    def __init__(self, *, retry_seconds: float = RETRY_SECONDS, store: Store | None = None):
        self.retry_seconds = retry_seconds
        self._store = store
        self._pending: list[_Pending] = []
        self._task: asyncio.Task | None = None
        self._group: list[tuple[Callable[..., Any], dict[str, Any], asyncio.Future]] = []
        self._committing: asyncio.Task | None = None

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def write(self, what: str, fn: Callable[..., Any], **fields: Any) -> bool:
        """Write now if the store lets us; else keep it and retry. True if it is in the store.

        While earlier writes wait for the store, a new one queues behind them at once: it keeps
        their order, and nobody waits on a lock already known to be held.
        """
        if not self._pending:
            try:
                await self.commit(fn, **fields)
                return True
            except StoreUnavailable as exc:
                reason = str(exc)
        else:
            reason = "earlier writes are still waiting"
        item = _Pending(what, fn, fields)
        log.warning("store unavailable (%s); %s kept to retry: %s", reason, what, item.entry())
        self._pending.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._retry(), name="durable-writes")
        return False

    def commit(self, fn: Callable[..., Any], **fields: Any) -> asyncio.Future:
        """Write now, off the event loop: with the next group when `fn` is a method of the store (see the module
        docstring), else in a thread of its own. The future is the write's result (or its StoreUnavailable)."""
        if self._store is None or getattr(fn, "__self__", None) is not self._store:
            return asyncio.ensure_future(asyncio.to_thread(fn, **fields))
        future = asyncio.get_running_loop().create_future()
        self._group.append((fn, fields, future))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_groups(), name="durable-commits")
        return future

    async def _commit_groups(self) -> None:
        while self._group:
            group, self._group = self._group, []
            calls = [(fn, fields) for fn, fields, _ in group]
            try:
                outcomes = await asyncio.to_thread(self._store.in_one_transaction, calls)
            except BaseException as exc:  # cut short (shutdown): each caller hears it
                outcomes = [(False, exc)] * len(group)
                if not isinstance(exc, Exception):
                    for _, _, future in group:
                        if not future.done():
                            future.cancel()
                    raise
            for (_, _, future), (ok, value) in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def write_or_log(self, what: str, fn: Callable[..., Any], **fields: Any) -> None:
        """The last resort, when there is no time left to wait: write now, or log the entry at ERROR."""
        try:
            fn(**fields)
        except StoreUnavailable as exc:
            log.error(
                "could not write %s to the store (%s); the entry: %s", what, exc, _Pending(what, fn, fields).entry()
            )

    async def _retry(self) -> None:
        while self._pending:
            await asyncio.sleep(self.retry_seconds)
            for item in list(self._pending):
                try:
                    await asyncio.to_thread(item.fn, **item.fields)
                except StoreUnavailable:
                    break  # still unavailable: wait, then try again, oldest first
                self._pending.remove(item)
                log.info("store available again: %s written", item.what)

    async def drain(self, timeout: float) -> None:
        """Give the retries `timeout` seconds; then log in full, at ERROR, whatever is left."""
        if self._committing is not None and not self._committing.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._committing), timeout)
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for item in self._pending:
            log.error("could not write %s to the store before stopping; the entry: %s", item.what, item.entry())
        self._pending.clear()
