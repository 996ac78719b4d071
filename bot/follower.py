"""Follows created backups to completion, across restarts, and reports once; watches automatic backups.

What is followed lives in the store (`followed`), so a restart loses nothing:
the background loop (bot/chores.py) runs a round at once on start, which also
reports a backup that finished while the bot was down. Each round makes one
list call per server with backups in progress (never one per backup). A
report is claimed in the store before it is sent, so two racing rounds report
a backup exactly once.

Restores waiting on a safety backup (`restore_chains`) are watched in the
same rounds and the same list calls: each round hands every waiting chain its
safety backup as listed to `ops.advance_chain`, which sends the restore once
it has completed.

The follower has no loop of its own, and knows nothing of Slack: it reports
through the `Reporter` (bot/ops/core.py). Backups nobody here asked for
(automatic ones, and any that ends badly or runs for hours) are watched by the
watch round (bot/ops/watching.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.backup_api import Backup, BackupApi, BackupApiError
from bot.clock import utc_now
from bot.i18n import N_, Words
from bot.store import Followed, RestoreChain, Store

if TYPE_CHECKING:
    from bot.ops import Operations
    from bot.ops.core import Reporter

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=6)


class Follower:
    def __init__(
        self,
        api: BackupApi,
        store: Store,
        reporter: Reporter,
        *,
        ops: Operations | None = None,
        give_up_after: timedelta = GIVE_UP_AFTER,
        clock: Callable[[], datetime] = utc_now,
    ):
        self.api = api
        self.store = store
        self.reporter = reporter
        self.ops = ops  # moves restore chains on; without it, chains are not watched
        self.give_up_after = give_up_after
        self._clock = clock

    async def poll_once(self) -> bool:
        """Check every followed backup and waiting restore chain once; False if the API failed for any server."""
        followed = await asyncio.to_thread(self.store.following)
        chains = await asyncio.to_thread(self.store.waiting_chains) if self.ops else []
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
            step = await self.ops.advance_chain(chain, by_id.get(chain.safety_backup_id))
            if step is not None:
                await self._report(self.reporter.chain_moved(step))
        for item in items:
            backup = by_id.get(item.backup_id)
            if backup is None:
                await self._end(
                    item, "vanished", Words(N_("it is no longer in the backup API's list (deleted, or never kept)."))
                )
            elif not backup.is_running:
                if await asyncio.to_thread(self.store.finish_follow, item.backup_id, backup.status):
                    await self._report(self.reporter.backup_finished(item, backup, len(backups)))
                    if not backup.is_restorable and self.ops is not None:
                        await self._report(self._failed(backup, item.requested_by))
            else:
                await self._maybe_give_up(item, backup)
        return True

    async def _failed(self, backup: Backup, asked_by: str) -> None:
        """The team hears of a failed backup through its alert card, which heals when a newer one completes."""
        change = await self.ops.backup_failed(backup, asked_by)
        if change is not None:
            await self.reporter.alert_changed(change)

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
            await self._report(self.reporter.follow_ended(item, why))

    async def _report(self, call) -> None:
        """A report that fails to send is logged; it was claimed, so it is never sent twice.

        Its announcement is in the outbox by then, so only the reply update can be lost.
        """
        try:
            await call
        except Exception:
            log.exception("could not report on a followed backup or a waiting restore")
