"""THE background loop: the lease, the tick, and the list of chores.

Everything the bot does without being asked runs here, as a `Chore`: one call
into the use cases (or the follower) whose results go to the `Reporter`
(bot/ops/core.py; bot/slack/reports.py tells Slack). `standard_chores` is the
list; a new family of background work is one more line in it.

Each tick (once a second) the loop runs the chores that are due. Work that
outlives a request is a row in the store, claimed per item, so every bot
sharing a store may run every chore and each item is still acted on once.
A chore that names a `due` probe runs only when the store says there is
something for it: one read (`Store.due_work`, at once on the event loop when
SQLite allows) answers for all of them, and says when the earliest work not
due yet will be. Until then, and for at most `idle_seconds`, the loop does not
look again: a write that gives this process's store new work (an announcement
kept, an undo window opened, a request approved…) wakes it at once
(`Store.on_new_work`), and work another process adds is seen within
`idle_seconds`. So an idle bot wakes every `idle_seconds` for one indexed read,
not every second for a thread hop and a claim per chore. Every SWEEP_SECONDS
each chore runs whatever the probes say, so a probe that fell out of step
with its chore delays work, never loses it.
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
from bot.ops.core import CHAIN_STEP_SECONDS
from bot.store import Store, StoreUnavailable, WouldWait

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
SWEEP_SECONDS = 60.0  # every chore runs at least this often, whatever the probes say
IDLE_TICKS = 10  # with nothing due, the probes are read again after at most this many ticks (or when woken)

T = TypeVar("T")


@dataclass(frozen=True)
class Chore:
    """One piece of background work: `run` every `every` seconds (0: every tick)."""

    name: str
    run: Callable[[], Awaitable[Any]]
    every: float = 0.0
    leader_only: bool = False  # polls the backup API: only the lease holder runs it
    backoff: bool = False  # a run that returns False (the API failed) doubles the wait before the next
    due: str | None = None  # a probe of Store.DUE_PROBES: run only when it finds work (None: every time)


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
        # announcements and card updates Slack has not accepted yet
        Chore("kept messages", reporter.deliver_kept, due="outbox"),
        Chore("expired requests", each(ops.expire_approvals, reporter.request_settled), due="expired approvals"),
        Chore("interrupted requests", each(ops.interrupted_approvals, reporter.request_settled), due="stale approvals"),
        # their undo window ended
        Chore("due deletes", each(ops.send_due_deletes, reporter.delete_sent), due="due deletes"),
        Chore("interrupted chains", each(ops.interrupted_chains, reporter.chain_moved), due="stale chains"),
        Chore("follow", follower.poll_once, poll_seconds, leader_only=True, backoff=True, due="following"),
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
        stale_seconds: float = CHAIN_STEP_SECONDS,
        idle_seconds: float | None = None,
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
        self._sweep_due = 0.0  # the first pass runs every chore
        self.stale_seconds = stale_seconds
        self.idle_seconds = max(tick, idle_seconds if idle_seconds is not None else tick * IDLE_TICKS)
        self._next_work: float | None = None  # when the store expects work not due yet (loop time), if it said
        self._woken = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
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
        """One pass: renew or ask for the lease when due, then run each chore that is due and has work."""
        if self._now() >= self._lease_due:
            await self.lead()
        ready = [
            chore
            for chore in self.chores
            if (self.leading or not chore.leader_only) and self._now() >= self._due.get(chore.name, 0.0)
        ]
        work = await self._due_work(ready)
        for chore in ready:
            if work is not None and chore.due is not None and chore.due not in work:
                self._schedule(chore, None, idle=True)  # nothing for it: as if it ran and found nothing
                continue
            self._schedule(chore, await self._run(chore))
        self.rounds += 1

    def _schedule(self, chore: Chore, healthy: Any, *, idle: bool = False) -> None:
        """When the chore runs next: after its wait; one its probe found idle, not before the store expects work
        for it (at most idle_seconds), unless new work wakes the loop first."""
        wait = chore.every or self.tick
        if chore.backoff:
            last = self._waits.get(chore.name, chore.every)
            wait = chore.every if healthy is not False else min(last * 2, max(self.max_backoff_seconds, chore.every))
            self._waits[chore.name] = wait
        now = self._now()
        if idle:
            quiet = self.idle_seconds if self._next_work is None else self._next_work - now
            wait = max(wait, min(quiet, self.idle_seconds))
        self._due[chore.name] = now + wait

    async def _due_work(self, ready: list[Chore]) -> frozenset[str] | None:
        """The probes with work now, in one read of the store; None: run every ready chore (a sweep is due, or
        the store could not say)."""
        if not any(chore.due for chore in ready):
            return None
        if self._now() >= self._sweep_due:
            self._sweep_due = self._now() + SWEEP_SECONDS
            return None
        try:
            try:
                due = self.store.read_now(self.store.due_work, self.stale_seconds)
            except WouldWait:
                due = await asyncio.to_thread(self.store.due_work, self.stale_seconds)
        except StoreUnavailable as exc:
            log.info("the background loop could not see what is due (%s): every chore runs", exc)
            return None
        self._next_work = None if due.next_in is None else self._now() + due.next_in
        return due.now

    def wake(self) -> None:
        """New work was written to the store (from any thread): the chores with a probe look at once."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._woken_up)

    def _woken_up(self) -> None:
        for chore in self.chores:
            if chore.due is not None and not chore.every:
                self._due[chore.name] = 0.0
        self._woken.set()

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
        task = asyncio.current_task()
        while True:
            await self.run_once()
            if task is not None and task.cancelling():
                # Stopped while a chore ran, and the chore swallowed the cancellation (Python 3.11's
                # asyncio.wait_for does when what it waits for ends at that moment): stop all the same.
                raise asyncio.CancelledError
            await self._wait(self._until_next())

    async def _wait(self, seconds: float) -> None:
        """Sleep until the next chore is due, or until new work wakes the loop."""
        if self._sleep is not asyncio.sleep:  # a test's own clock
            await self._sleep(seconds)
            return
        self._woken.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()

    def _until_next(self) -> float:
        """Seconds until the lease or a chore this bot runs is next due (at most idle_seconds)."""
        upcoming = [self._lease_due]
        upcoming += [self._due.get(c.name, 0.0) for c in self.chores if self.leading or not c.leader_only]
        return max(0.0, min(self.idle_seconds, min(upcoming) - self._now()))

    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self.store.on_new_work(self.wake)
            self._task = asyncio.create_task(self.run(), name="background-chores")
        return self._task

    async def stop(self) -> None:
        self.store.on_new_work(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.leading:
            with contextlib.suppress(StoreUnavailable):
                await asyncio.to_thread(self.store.give_up_lease, POLL_LEASE, self.holder)
            self.leading = False
