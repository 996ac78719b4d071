"""THE background loop: the lease, the tick, and the list of chores.

Everything the bot does without being asked runs here, as a `Chore`: one call
into the use cases (or the follower) whose results go to the `Reporter`
(bot/ops/core.py; bot/slack/reports.py tells Slack). `standard_chores` is the
list; a new family of background work is one more line in it.

Each tick (once a second) the loop runs the chores that are due. Work that
outlives a request is a row in the store, claimed per item, so every bot
sharing a store may run every chore and each item is still acted on once.
Chores that poll the backup API are `leader_only`: only the holder of the
`poller` lease runs them, so the API sees one list call per server per round
however many bots run. The leader renews the lease while it works; the others
ask for it every few seconds and one takes over when it lapses (a leader that
dies stops renewing; one that stops cleanly gives it up at once). A chore with
`backoff` that reports the API unhealthy (returns False) waits twice as long
before its next run, up to `max_backoff_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bot.backup_api import BackupApiError
from bot.store import Store, StoreUnavailable

if TYPE_CHECKING:
    from bot.follower import Follower
    from bot.ops import Operations
    from bot.ops.core import Reporter

log = logging.getLogger(__name__)

POLL_LEASE = "poller"
MIN_LEASE_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 600.0
POLICY_EVERY_SECONDS = 20.0  # a slot is a minute of the clock: looked at thrice a minute
DIGEST_EVERY_SECONDS = 20.0  # how often the loop looks for a digest whose time has come

T = TypeVar("T")


@dataclass(frozen=True)
class Chore:
    """One piece of background work: `run` every `every` seconds (0: every tick)."""

    name: str
    run: Callable[[], Awaitable[Any]]
    every: float = 0.0
    leader_only: bool = False  # polls the backup API: only the lease holder runs it
    backoff: bool = False  # a run that returns False (the API failed) doubles the wait before the next


def each(results: Callable[[], Awaitable[Iterable[T]]], report: Callable[[T], Awaitable[None]]):
    """A chore: one ops call, and each of its results handed to the reporter.

    The results were claimed in the store before they came back, so a report that fails is logged and not
    tried again; the others are still reported.
    """

    async def chore() -> int:
        return await report_all(list(await results()), report)

    return chore


async def report_all(results: list[T], report: Callable[[T], Awaitable[None]]) -> int:
    for result in results:
        try:
            await report(result)
        except Exception:
            log.exception("could not report %s", type(result).__name__)
    return len(results)


def standard_chores(ops: Operations, follower: Follower, reporter: Reporter, *, poll_seconds: float) -> list[Chore]:
    """What the bot does in the background, in the order each tick runs it."""
    return [
        Chore("kept messages", reporter.deliver_kept),  # announcements and card updates Slack has not accepted yet
        Chore("expired requests", each(ops.expire_approvals, reporter.request_settled)),
        Chore("interrupted requests", each(ops.interrupted_approvals, reporter.request_settled)),
        Chore("due deletes", each(ops.send_due_deletes, reporter.delete_sent)),  # their undo window ended
        Chore("interrupted chains", each(ops.interrupted_chains, reporter.chain_moved)),
        Chore("follow", follower.poll_once, poll_seconds, leader_only=True, backoff=True),
        Chore("watch", watching(ops, reporter), poll_seconds, leader_only=True, backoff=True),
        Chore("digests", each(ops.due_digests, reporter.digest_ready), DIGEST_EVERY_SECONDS),
        Chore("policies", each(ops.policy_round, reporter.policy_news), POLICY_EVERY_SECONDS),  # slots come, pauses end
        Chore("policy runs", each(ops.follow_runs, reporter.alert_changed), poll_seconds, backoff=True),
        Chore(
            "pipeline runs",  # left pending by a bot that died, or not confirmed by the API: looked for
            each(ops.settle_pipeline_runs, reporter.run_settled),
            poll_seconds,
            leader_only=True,
        ),
    ]


def watching(ops: Operations, reporter: Reporter):
    """The watch round: every backup listed once, alerts opened, reminded of and healed, each told once.
    False while the backup API fails (the round waits longer then)."""

    async def chore() -> bool:
        try:
            changes = await ops.watch_round()
        except BackupApiError as exc:
            log.warning("could not watch the servers' backups: %s", exc)
            return False
        await report_all(changes, reporter.alert_changed)
        return True

    return chore


class Background:
    """The loop that runs the chores; `start()` it once the bot is up, `stop()` it on the way down."""

    def __init__(
        self,
        store: Store,
        chores: list[Chore],
        *,
        tick: float = 1.0,
        lease_seconds: float = 2 * 30.0,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        holder: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] | None = None,
    ):
        self.store = store
        self.chores = chores
        self.tick = tick
        self.lease_seconds = max(lease_seconds, MIN_LEASE_SECONDS)
        self.max_backoff_seconds = max_backoff_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.leading = False
        self.rounds = 0  # passes over the chores completed since start
        self._sleep = sleep
        self._monotonic = monotonic
        self._due: dict[str, float] = {}
        self._waits: dict[str, float] = {}
        self._lease_due = 0.0
        self._task: asyncio.Task | None = None

    def _now(self) -> float:
        return self._monotonic() if self._monotonic else asyncio.get_running_loop().time()

    async def lead(self) -> bool:
        """Take or renew the poller lease; True while this bot is the one that polls."""
        try:
            leading = await asyncio.to_thread(self.store.take_lease, POLL_LEASE, self.holder, self.lease_seconds)
        except StoreUnavailable as exc:
            log.info("could not renew the poller lease: %s", exc)
            leading = False
        if leading != self.leading:
            log.info("this bot %s polling the backup API", "now leads" if leading else "no longer leads")
        self.leading = leading
        # The leader renews well before the lease lapses; the others ask again a few times per lease.
        self._lease_due = self._now() + (self.lease_seconds / 3 if leading else self.lease_seconds / 10)
        return leading

    async def run_once(self) -> None:
        """One pass: renew or ask for the lease when due, then run each chore that is due."""
        if self._now() >= self._lease_due:
            await self.lead()
        for chore in self.chores:
            if chore.leader_only and not self.leading:
                continue
            if self._now() < self._due.get(chore.name, 0.0):
                continue
            healthy = await self._run(chore)
            wait = chore.every or self.tick
            if chore.backoff:
                last = self._waits.get(chore.name, chore.every)
                wait = (
                    chore.every if healthy is not False else min(last * 2, max(self.max_backoff_seconds, chore.every))
                )
                self._waits[chore.name] = wait
            self._due[chore.name] = self._now() + wait
        self.rounds += 1

    async def run_chore(self, name: str) -> Any:
        """Run one chore now, whatever its schedule (tests use it to take one step of the loop)."""
        return await next(c for c in self.chores if c.name == name).run()

    async def _run(self, chore: Chore) -> Any:
        try:
            return await chore.run()
        except StoreUnavailable as exc:  # locked or unreachable for now: the next tick tries again
            log.info("a background chore waits for the store (%s): %s", chore.name, exc)
        except Exception:
            log.exception("a background chore failed (%s)", chore.name)
        return False

    async def run(self) -> None:
        while True:
            await self.run_once()
            await self._sleep(self._until_next())

    def _until_next(self) -> float:
        """Seconds until the lease or a chore this bot runs is next due (at most a tick)."""
        upcoming = [self._lease_due]
        upcoming += [self._due.get(c.name, 0.0) for c in self.chores if self.leading or not c.leader_only]
        return max(0.0, min(self.tick, min(upcoming) - self._now()))

    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="background-chores")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leading:
            with contextlib.suppress(StoreUnavailable):
                await asyncio.to_thread(self.store.give_up_lease, POLL_LEASE, self.holder)
            self.leading = False
