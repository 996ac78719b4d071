"""The use cases' common ground: who acts (`Actor`), may they (`_authorize`, the channel rule), the audit.

Every path into the bot — a slash command, a button, a modal, the CLI, and (to come) a policy or a
pipeline token — reaches one use case, and each checks permission for whoever acts, calls the backup
API, and writes exactly one audit entry for the attempt, whatever its outcome (done, denied, failed,
cancelled). Nothing here knows about Slack.

Audit entries, and what follows a write the API accepted, go through `DurableWrites`: a busy store
delays them but never loses them, and never turns a write that happened into a reported failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot import i18n, observe
from bot.backup_api import AcceptedButUnreadable, Backup, BackupApi, BackupApiError
from bot.clock import iso_seconds, utc_now
from bot.durable import DurableWrites
from bot.i18n import N_, Words
from bot.ops.errors import BackupNotFound, PermissionDenied, WrongChannel
from bot.ops.writes import INTERRUPTED, Sent, Write, WriteKind, WriteOutcome, audit_detail, classify, matches
from bot.policy import REQUIRED_ROLE, Action, Role, is_allowed
from bot.store import Followed, Standing, Store, StoreUnavailable, WouldWait, WriteRecord, WriteState

if TYPE_CHECKING:
    from bot.ops.approvals import Decision
    from bot.ops.chains import ChainStep
    from bot.ops.policies import PolicyNews
    from bot.ops.undo import DeleteSent
    from bot.ops.watching import AlertChange, DigestReport

log = logging.getLogger(__name__)

CONFIRMATION_TTL = timedelta(minutes=15)
APPROVAL_TTL = timedelta(minutes=30)
# A chain step (asking for the safety backup, sending the restore) takes at most a few API timeouts;
# one stuck longer than this belonged to a process that died.
CHAIN_STEP_SECONDS = 180.0
SAFETY_GIVE_UP = timedelta(hours=6)
CLOCK_SKEW = timedelta(minutes=5)  # how far the API's clock may be behind the bot's, when matching a create


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: a person in Slack (from a channel, if any), the CLI, a policy or a pipeline token.

    `user_id` is what the audit names: a Slack member ID, `cli:LOGIN`, `policy:SERVER`, `token:NAME`.
    `source` is one of the store's SOURCES. Only a person in Slack is held to a server's channels.
    """

    user_id: str
    source: str = "slack"
    superuser: bool = False
    channel_id: str | None = None

    @classmethod
    def cli(cls, login: str) -> Actor:
        """Whoever holds the host the CLI runs on: an admin, and not in Slack."""
        return cls(f"cli:{login}", source="cli", superuser=True)

    @classmethod
    def policy(cls, server_id: int) -> Actor:
        """A server's backup policy, acting on its own schedule with the rights it was set with."""
        return cls(f"policy:{server_id}", source="policy")

    @classmethod
    def token(cls, name: str) -> Actor:
        """A pipeline's token, acting on the servers it was made for."""
        return cls(f"token:{name}", source="token")

    @property
    def in_slack(self) -> bool:
        return self.source == "slack"


@dataclass(frozen=True)
class ReplyTo:
    """Where to tell the person later: a created backup's completion, an approval's decision."""

    channel_id: str | None
    response_url: str | None


@dataclass(frozen=True)
class Accepted:
    """A create the API accepted (2xx) whose answer could not be read: it happened, but the bot can't show it."""

    server_id: int
    description: str
    reason: str


@dataclass
class _Known:
    """A person's standing, read once for the work in hand (`Core.speaking_to`) and used by every check in it."""

    standing: Standing
    open: bool = True  # False once the work is over (a task it started must not go on using it)


_known: ContextVar[_Known | None] = ContextVar("backupbot_standing", default=None)


class Reporter(Protocol):
    """Tells people what the background loop's work came to (bot/chores.py); bot/slack/reports.py tells Slack.

    Each result it is handed was claimed in the store first, so it is reported once, by one bot.
    """

    async def deliver_kept(self) -> int:
        """Send what was kept until the other side accepts it (announcements, card updates); how many were tried."""
        ...

    async def backup_finished(self, followed: Followed, backup: Backup, manual_count: int) -> None: ...

    async def follow_ended(self, followed: Followed, why: Words) -> None: ...

    async def alert_changed(self, change: AlertChange) -> None:
        """An alert opened (a card in the server's channels), reminded of, or recovered (its card edited)."""
        ...

    async def digest_ready(self, report: DigestReport) -> None: ...

    async def policy_news(self, news: AlertChange | PolicyNews) -> None:
        """A policy's run went wrong or healed (an alert), or its pause ended on time (told to the team)."""
        ...

    async def delete_sent(self, sent: DeleteSent) -> None: ...

    async def chain_moved(self, step: ChainStep) -> None: ...

    async def request_settled(self, decision: Decision) -> None: ...


class Core:
    """What every family of use cases stands on; `Operations` (bot/ops/__init__.py) joins the families."""

    def __init__(
        self,
        api: BackupApi,
        store: Store,
        *,
        admins: frozenset[str] = frozenset(),
        confirmation_ttl: timedelta = CONFIRMATION_TTL,
        approval_ttl: timedelta = APPROVAL_TTL,
        clock: Callable[[], datetime] = utc_now,
        durable: DurableWrites | None = None,
        delete_grace: timedelta = timedelta(0),
        language: str = i18n.SOURCE,
        stale_hours: float = 26.0,
        timezone: str = "UTC",
        reserved_slots: int = 2,
    ):
        self.stale_hours = stale_hours  # BACKUPBOT_STALE_HOURS: a server's default freshness threshold
        self.freshness_seen: dict = {}  # the last watch round's status of each server (for /metrics)
        self.timezone = timezone  # BACKUPBOT_TIMEZONE: of schedules that name no zone
        self.reserved_slots = reserved_slots  # BACKUPBOT_RESERVED_SLOTS: manual slots policies leave free
        self.delete_grace = delete_grace
        self.language = language  # for people who have not chosen one, and for the team's channels
        self.api = api
        self.store = store
        self.admins = admins
        self.confirmation_ttl = confirmation_ttl
        self.approval_ttl = approval_ttl
        self._clock = clock
        self.durable = durable or DurableWrites()

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a store call off the event loop: SQLite never blocks an ack."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _read(self, read: Callable[..., Any], *args: Any) -> Any:
        """An indexed read of the store: at once, on the event loop, when the store can answer without waiting
        (SQLite's reader for reads at once; microseconds, where a thread hop costs more), else in a thread."""
        try:
            return self.store.read_now(read, *args)
        except WouldWait:
            return await self._db(read, *args)

    def _audit_fields(self, actor: Actor, action: Action, outcome: str, fields: dict[str, Any]) -> dict[str, Any]:
        at = iso_seconds(self._clock())
        return {"user_id": actor.user_id, "action": action.value, "outcome": outcome, "source": actor.source, "at": at}

    async def _audit(self, actor: Actor, action: Action, outcome: str, **fields: Any) -> None:
        """Write the audit entry; a busy store delays it (retried in the background), never drops it."""
        observe.note_attempt(action.value, outcome)
        await self.durable.write(
            "audit entry", self.store.audit, **self._audit_fields(actor, action, outcome, fields), **fields
        )

    def _learn_soon(self, backups: Any) -> asyncio.Future | None:
        """Queue the server names for the next group of store writes (so they share the transaction of the
        audit entry that follows); None if the store is known to hold them all by those names already."""
        servers = {b.server.id: b.server.name for b in backups}
        if not servers or self.store.knows_names(servers):
            return None
        written = self.durable.commit(self.store.learn_servers, servers=list(servers.items()))
        written.add_done_callback(_names_not_learned)
        return written

    async def _learn(self, backups: Any) -> None:
        """Remember server names: a cache, so a busy store just skips it. Only new or renamed ones are written:
        names the store is known to hold cost no store call at all."""
        written = self._learn_soon(backups)
        if written is not None:
            with contextlib.suppress(StoreUnavailable):
                await written

    def _known_standing(self, user_id: str) -> Standing | None:
        """The person's standing as read for the work in hand, if it was (see `speaking_to`)."""
        known = _known.get()
        if known is not None and known.open and known.standing.user_id == user_id:
            return known.standing
        return None

    async def is_admin(self, actor: Actor) -> bool:
        if actor.superuser or actor.user_id in self.admins:
            return True
        known = self._known_standing(actor.user_id)
        if known is not None:
            return known.is_admin
        return await self._read(self.store.is_admin, actor.user_id)

    async def _role_on(self, user_id: str, server_id: int) -> Role | None:
        known = self._known_standing(user_id)
        if known is not None and known.server_id == server_id:
            return known.role
        return await self._read(self.store.role_of, user_id, server_id)

    async def _authorize(
        self, actor: Actor, action: Action, server_id: int | None, *, admin: bool | None = None, **audit: Any
    ) -> Role | None:
        """The actor's role on the server, if allowed; else audit the denial and raise. `admin` if already known."""
        if admin is None:
            admin = await self.is_admin(actor)
        role = await self._role_on(actor.user_id, server_id) if server_id is not None else None
        if not is_allowed(action, is_admin=admin, role=role):
            needed = "admin" if server_id is None else _needed(action)
            await self._audit(
                actor,
                action,
                "denied",
                server_id=server_id,
                detail=f"has {role.label if role else 'no role'}; needs {needed}",
                **audit,
            )
            raise PermissionDenied(action, server_id, needed, role)
        return role

    # --- the one way to send a write ---------------------------------------------

    async def send_write(
        self, actor: Actor, write: Write, *, context: str = "", reply_to: ReplyTo | None = None
    ) -> Sent:
        """Send one write to the backup API: recorded first, its outcome classified once and audited for `actor`.

        The record is written before the request goes out (a busy store refuses the write: nothing is sent);
        its outcome after, durably. `context` goes into the audit entry (which path, approved by whom).
        Cut short by shutdown, the write is recorded and audited as unknown, then the cancellation goes on.
        """
        write_id = await self._db(
            self.store.begin_write,
            kind=write.kind.value,
            path=write.path,
            ref=write.ref,
            server_id=write.server_id,
            backup_id=write.backup_id,
            description=write.description,
            actor=actor.user_id,
            source=actor.source,
            channel_id=reply_to.channel_id if reply_to else None,
            response_url=reply_to.response_url if reply_to else None,
        )
        backup, message, error, why = None, None, None, None
        outcome = WriteOutcome.DONE
        try:
            if write.kind is WriteKind.CREATE:
                backup = await self.api.create_backup(write.server_id, write.description or None)
            elif write.kind is WriteKind.DELETE:
                await self.api.delete_backup(write.backup_id)
            else:
                message = await self.api.restore(write.server_id, write.backup_id)
        except BackupApiError as exc:
            error = exc
            outcome, why = classify(exc)
        except asyncio.CancelledError:
            sent = Sent(write, write_id, WriteOutcome.UNKNOWN, why=INTERRUPTED)
            fields = self._write_audit(actor, sent, context)
            self.durable.write_or_log(
                "write outcome", self.store.end_write, write_id=write_id, state=WriteState.UNKNOWN
            )
            self.durable.write_or_log("audit entry", self.store.audit, **fields)
            raise
        sent = Sent(write, write_id, outcome, backup, message, error, why)
        if backup is not None:
            await self._learn([backup])
        await self._record(sent, actor, context)
        return sent

    async def _record(self, sent: Sent, actor: Actor, context: str) -> None:
        """A write's outcome in the store and its audit entry: kept until the store takes them."""
        await self.durable.write(
            "write outcome",
            self.store.end_write,
            write_id=sent.id,
            state=sent.outcome.state,
            detail=sent.why.english() if sent.why else "",
            created_backup_id=sent.backup.id if sent.backup else None,
        )
        fields = self._write_audit(actor, sent, context)
        observe.note_attempt(fields["action"], fields["outcome"])
        await self.durable.write("audit entry", self.store.audit, **fields)

    def _write_audit(self, actor: Actor, sent: Sent, context: str) -> dict[str, Any]:
        outcome, detail = audit_detail(sent, context)
        write = sent.write
        backup_id = sent.backup.id if sent.backup else write.backup_id
        fields = {"server_id": write.server_id, "backup_id": backup_id, "detail": detail}
        return {**self._audit_fields(actor, Action(write.kind.value), outcome, fields), **fields}

    async def settle_recorded(self, record: WriteRecord, context: str = "", *, older_than: float) -> Sent | None:
        """How a write an earlier bot sent for some work ended: from its record, or, if it was left on its way
        (sending for longer than `older_than` seconds: its bot died), by looking. None: not known yet (another
        bot is settling it, or it is still fresh, or the API cannot be asked now)."""
        if record.state in (WriteState.SENDING, WriteState.SETTLING):
            if not await self._db(self.store.claim_stale_write, record.id, older_than):
                return None
            return await self.settle_by_looking(record, context)
        kind = WriteKind(record.kind)
        write = Write(kind, record.server_id, record.backup_id, record.description, record.path, record.ref)
        why = Words(record.detail) if record.detail else None
        return Sent(write, record.id, WriteOutcome(record.state.value), why=why)

    async def settle_by_looking(self, record: WriteRecord, context: str = "") -> Sent | None:
        """A write whose bot died while sending it (claimed `settling`), settled by what the API lists now.

        A delete whose backup is gone was done; one whose backup is still there was not. A create is found by
        its tag, or by its description among the server's backups made since it was recorded. A restore
        stays unknown. None if the API cannot be asked now (the write goes back to waiting for a look).
        """
        kind = WriteKind(record.kind)
        write = Write(kind, record.server_id, record.backup_id, record.description, record.path, record.ref)
        outcome, backup, why = WriteOutcome.UNKNOWN, None, INTERRUPTED
        if kind is not WriteKind.RESTORE:
            try:
                listed = await self.api.list_backups(record.server_id)
            except BackupApiError as exc:
                log.warning("could not settle write %s yet: %s", record.id, exc)
                await self._db(self.store.unclaim_write, record.id)
                return None
            if kind is WriteKind.DELETE:
                there = any(b.id == record.backup_id for b in listed)
                outcome = WriteOutcome.NOT_DONE if there else WriteOutcome.DONE
                why = Words(N_("the bot stopped before the backup API acted on it")) if there else None
            else:
                since = datetime.fromisoformat(record.created_at) - CLOCK_SKEW
                found = [b for b in listed if matches(b, record.description) and b.created_at >= since]
                if len(found) == 1:
                    outcome, backup, why = WriteOutcome.DONE, found[0], None
                elif not found:
                    outcome, why = WriteOutcome.NOT_DONE, Words(N_("the bot stopped before the backup API acted on it"))
        sent = Sent(write, record.id, outcome, backup, why=why)
        settled = f"{context}; settled by looking after the bot stopped while sending it".lstrip("; ")
        await self._record(sent, Actor(record.actor, source=record.source), settled)
        return sent

    async def _api(self, actor: Actor, action: Action, call, **audit: Any):
        """Await an API call; a failure is audited, then re-raised for the edge to put into words.

        Cut short by shutdown, the attempt is audited as what it was (interrupted, maybe
        done), never as an API failure.
        """
        try:
            return await call
        except AcceptedButUnreadable:
            raise
        except BackupApiError as exc:
            await self._audit(actor, action, "failed", detail=f"{type(exc).__name__}: {exc}", **audit)
            raise
        except asyncio.CancelledError:
            detail = "interrupted: the bot stopped before the backup API answered; it may have acted"
            fields = {**audit, "detail": detail}
            self.durable.write_or_log(
                "audit entry", self.store.audit, **self._audit_fields(actor, action, "failed", fields), **fields
            )
            raise

    async def language_of(self, user_id: str | None) -> str:
        """The person's language: their choice, else the bot's (also if the store is busy)."""
        if not user_id:
            return self.language
        known = self._known_standing(user_id)
        if known is not None:
            return known.language or self.language
        try:
            return await self._read(self.store.language_of, user_id) or self.language
        except StoreUnavailable:
            return self.language

    @contextlib.asynccontextmanager
    async def speaking_to(self, user_id: str | None, server_id: int | None = None) -> AsyncIterator[str]:
        """Render what follows in the person's language, and announcements in the team's.

        The person's standing (their language, whether they are an admin, their role on `server_id`) is read
        once, in one query, and every check inside uses it: a command costs one read of who is asking.
        Inside work already speaking to this person (a command's answer inside its listener), the
        language in force is theirs: nothing is read again. A busy store: the bot's language, and each
        check reads for itself (and finds the store busy)."""
        if user_id and i18n.reader() == user_id:
            yield i18n.current()
            return
        standing = None
        if user_id:
            with contextlib.suppress(StoreUnavailable):
                standing = await self._read(self.store.standing, user_id, server_id)
        language = (standing.language if standing else None) or self.language
        known = _Known(standing) if standing else None
        token = _known.set(known)
        try:
            with i18n.speaking(language, self.language, reader=user_id):
                yield language
        finally:
            if known is not None:
                known.open = False
            _known.reset(token)

    async def _find(self, actor: Actor, action: Action, backup_id: int, *, gone: bool = False) -> Backup:
        backup, _all = await self._find_among(actor, action, backup_id, gone=gone)
        return backup

    async def _find_among(
        self, actor: Actor, action: Action, backup_id: int, *, gone: bool = False
    ) -> tuple[Backup, list[Backup]]:
        """The backup, and every backup the API listed (there is no endpoint for one)."""
        backups = await self._api(actor, action, self.api.list_backups(), backup_id=backup_id)
        for backup in backups:
            if backup.id == backup_id:
                return backup, backups
        await self._audit(actor, action, "failed", backup_id=backup_id, detail=f"no backup {backup_id}")
        raise BackupNotFound(backup_id, gone=gone)

    async def _authorize_on_backup(self, actor: Actor, action: Action, backup: Backup) -> None:
        """Someone with no role on the backup's server hears what they would of a backup that does not exist."""
        try:
            await self._authorize(actor, action, backup.server.id, backup_id=backup.id)
        except PermissionDenied as exc:
            if exc.role is None:
                raise BackupNotFound(backup.id) from None
            raise

    async def _from_its_channel(self, actor: Actor, action: Action, *server_ids: int, **audit: Any) -> None:
        """A server bound to channels is changed only from one of them, whoever asks (admins too);
        the CLI, at the host, is not in Slack and is not held to it."""
        if not actor.in_slack:
            return
        for server_id in dict.fromkeys(server_ids):
            channels = await self._db(self.store.channels_of, server_id)
            if channels and actor.channel_id not in channels:
                where = actor.channel_id or "outside a channel"
                await self._audit(
                    actor,
                    action,
                    "denied",
                    server_id=server_id,
                    detail=f"asked from {where}; allowed only in {', '.join(channels)}",
                    **audit,
                )
                raise WrongChannel(server_id, channels)


def _names_not_learned(written: asyncio.Future) -> None:
    error = None if written.cancelled() else written.exception()
    if isinstance(error, StoreUnavailable):
        log.info("server names not remembered this time: %s", error)
    elif error is not None:
        log.error("server names not remembered", exc_info=error)


def _needed(action: Action) -> str:
    role = REQUIRED_ROLE.get(action)
    return role.label if role else "admin"
