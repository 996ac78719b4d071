"""Follows created backups to completion, across restarts, and reports once.

What is followed lives in the store (`followed`), so a restart loses nothing:
`run()` polls at once on start, which also reports a backup that finished
while the bot was down. Each round makes one list call per server with
backups in progress (never one per backup), and the rounds back off while
the API is failing. A report is claimed in the store before it is sent, so
two racing rounds report a backup exactly once.

Restores waiting on a safety backup (`restore_chains`) are watched in the
same rounds and the same list calls: each round hands every waiting chain
its safety backup as listed, through `chain_step`, which sends the restore
once it has completed.

Several bots may share one store (PostgreSQL, or one SQLite file): only the
holder of the `poller` lease polls the API, so the API sees one list call per
server per round however many run. The leader renews the lease while it
works; the others ask for it every few seconds and one takes over when it
lapses (a leader that dies stops renewing; one that stops cleanly gives it
up at once). Everything else the loop does is claimed per item in the store,
so every bot runs the chores.

It is the bot's one background loop: between rounds it also runs its
`chores` every `tick` seconds — delivering due announcements (so a
rate-limited one goes out when Slack said it may), expiring approval
requests nobody decided in time, sending deletes whose undo window ended.

The follower knows nothing of Slack: it reports through a `Notifier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from bot.backup_api import Backup, BackupApi, BackupApiError
from bot.clock import utc_now
from bot.i18n import N_, Words
from bot.store import Followed, RestoreChain, Store, StoreUnavailable

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=6)
POLL_LEASE = "poller"
MIN_LEASE_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 600.0
WATCH_EVERY_ROUNDS = 10
RECENT_FAILURE = timedelta(hours=24)


class Notifier(Protocol):
    async def backup_finished(self, followed: Followed, backup: Backup, manual_count: int) -> None: ...

    async def follow_ended(self, followed: Followed, why: Words) -> None: ...

    async def automatic_failed(self, backup: Backup) -> None: ...


class Follower:
    def __init__(
        self,
        api: BackupApi,
        store: Store,
        notifier: Notifier,
        *,
        poll_seconds: float = 30.0,
        give_up_after: timedelta = GIVE_UP_AFTER,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        chores: list[Callable[[], Awaitable[object]]] | None = None,
        tick: float = 1.0,
        chain_step: Callable[[RestoreChain, Backup | None], Awaitable[object]] | None = None,
        lease_seconds: float | None = None,
        holder: str | None = None,
    ):
        self.chain_step = chain_step
        self.lease_seconds = lease_seconds or max(2 * poll_seconds, MIN_LEASE_SECONDS)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.leading = False
        self._renewed_at = 0.0
        self.api = api
        self.store = store
        self.notifier = notifier
        self.poll_seconds = poll_seconds
        self.give_up_after = give_up_after
        self.max_backoff_seconds = max(max_backoff_seconds, poll_seconds)
        self._clock = clock
        self._sleep = sleep
        self._chores = chores or []
        self._tick = tick
        self._task: asyncio.Task | None = None
        self.rounds = 0  # rounds completed since start

    async def poll_once(self) -> bool:
        """Check every followed backup once; False if the API failed for any server."""
        followed = await asyncio.to_thread(self.store.following)
        chains = await asyncio.to_thread(self.store.waiting_chains) if self.chain_step else []
        by_server: dict[int, list[Followed]] = defaultdict(list)
        chains_by_server: dict[int, list[RestoreChain]] = defaultdict(list)
        for item in followed:
            by_server[item.server_id].append(item)
        for chain in chains:
            chains_by_server[chain.target_server_id].append(chain)
        servers = sorted({*by_server, *chains_by_server})
        results = await asyncio.gather(
            *(self._check_server(sid, by_server[sid], chains_by_server[sid]) for sid in servers)
        )
        return all(results)

    async def _check_server(self, server_id: int, items: list[Followed], chains: list[RestoreChain] = ()) -> bool:
        try:
            backups = await self.api.list_backups(server_id, "manual")
        except BackupApiError as exc:
            log.warning("could not check backups of server %s: %s", server_id, exc)
            for item in items:
                await self._maybe_give_up(item, None)
            return False
        by_id = {b.id: b for b in backups}
        for chain in chains:
            await self._report(self.chain_step(chain, by_id.get(chain.safety_backup_id)))
        for item in items:
            backup = by_id.get(item.backup_id)
            if backup is None:
                await self._end(
                    item, "vanished", Words(N_("it is no longer in the backup API's list (deleted, or never kept)."))
                )
            elif not backup.is_running:
                if await asyncio.to_thread(self.store.finish_follow, item.backup_id, backup.status):
                    await self._report(self.notifier.backup_finished(item, backup, len(backups)))
            else:
                await self._maybe_give_up(item, backup)
        return True

    async def _maybe_give_up(self, item: Followed, backup: Backup | None) -> None:
        if self._clock() - item.started_at < self.give_up_after:
            return
        hours = f"{self.give_up_after.total_seconds() / 3600:g}"
        if backup is not None:
            why = Words(
                N_(
                    "it is still {status} after {hours} hours, so I stopped checking. `/backup list {id}` shows where it stands."
                ),
                status=backup.status.replace("_", " "),
                hours=hours,
                id=item.server_id,
            )
        else:
            why = Words(
                N_(
                    "it could not be checked for {hours} hours, so I stopped checking. `/backup list {id}` shows where it stands."
                ),
                hours=hours,
                id=item.server_id,
            )
        await self._end(item, "gave_up", why)

    async def _end(self, item: Followed, final: str, why: Words) -> None:
        if await asyncio.to_thread(self.store.finish_follow, item.backup_id, final):
            await self._report(self.notifier.follow_ended(item, why))

    async def _report(self, call) -> None:
        """A report that fails to send is logged; it was claimed, so it is never sent twice.

        Its announcement is in the outbox by then, so only the reply update can be lost.
        """
        try:
            await call
        except Exception:
            log.exception("could not report on a followed backup or a waiting restore")

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
        self._renewed_at = asyncio.get_running_loop().time()
        return leading

    async def run(self) -> None:
        delay = self.poll_seconds
        led = 0
        while True:
            if not await self.lead():
                self.rounds += 1
                await self._idle(min(self.poll_seconds, max(self._tick, self.lease_seconds / 10)))
                continue
            try:
                healthy = await self.poll_once()
                if led % WATCH_EVERY_ROUNDS == 0:
                    healthy = await self.watch_automatic() and healthy
            except Exception:
                log.exception("a follow-up round failed")
                healthy = False
            led += 1
            self.rounds += 1
            delay = self.poll_seconds if healthy else min(delay * 2, self.max_backoff_seconds)
            await self._idle(delay)

    async def _idle(self, seconds: float) -> None:
        """Wait for the next round, doing the chores every tick meanwhile."""
        if not self._chores:
            await self._sleep(seconds)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            for chore in self._chores:
                try:
                    await chore()
                except StoreUnavailable as exc:  # locked or unreachable for now: the next tick tries again
                    log.info("a background chore waits for the store: %s", exc)
                except Exception:
                    log.exception("a background chore failed")
            if self.leading and loop.time() - self._renewed_at > self.lease_seconds / 3:
                await self.lead()  # a long wait (backing off) must not let the lease lapse
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            await self._sleep(min(self._tick, remaining))

    async def watch_automatic(self) -> bool:
        """Report automatic backups that ended in anything but `completed`, once each.

        One list call for every server. A failure older than a day is remembered
        without a report, so a first start does not replay old history.
        """
        try:
            backups = await self.api.list_backups(backup_type="automatic")
        except BackupApiError as exc:
            log.warning("could not check automatic backups: %s", exc)
            return False
        for backup in backups:
            if backup.is_running or backup.is_restorable:
                continue
            if await asyncio.to_thread(self.store.notice, backup.id) and (
                self._clock() - backup.created_at <= RECENT_FAILURE
            ):
                await self._report(self.notifier.automatic_failed(backup))
        return True

    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="backup-follower")
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
