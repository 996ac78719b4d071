"""The use cases: list, create, delete, restore, grant, revoke, audit.

Every path into the bot — a slash command, a button, a modal, the CLI —
reaches one of these methods, and each checks permission for the person who
acts, calls the backup API, and writes exactly one audit entry for the
attempt, whatever its outcome (done, denied, failed, cancelled). Nothing here
knows about Slack.

Deletes and restores are two steps: `request_*` finds the backup (by listing:
the API has no endpoint for one), checks permission and records a pending
confirmation; `confirm_*` checks permission again for whoever confirms, and
consumes the confirmation atomically, so a double press acts at most once.

Audit entries, and what follows a write the API accepted (following the new
backup), go through `DurableWrites`: a busy store delays them but never
loses them, and never turns a write that happened into a reported failure.

The safety nets live here too. A confirmed delete waits out its undo window
in the store (`delete_windows`) and is sent by the background loop
(`send_due_deletes`). A restore with a safety backup is a chain in the store
(`restore_chains`): the safety backup is created at once, the background
loop watches it (`advance_chain`), and the restore is sent once, only after
it completed. A create refused at the 10-backup limit names the oldest manual
backup, and `confirm_make_room` deletes it and creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from bot import i18n, observe
from bot.backup_api import (
    MANUAL_LIMIT,
    AcceptedButUnreadable,
    Backup,
    BackupApi,
    BackupApiError,
    BadRequest,
    NotFound,
)
from bot.clock import iso_seconds, utc_now
from bot.durable import DurableWrites
from bot.i18n import N_, Words
from bot.policy import REQUIRED_ROLE, Action, Role, is_allowed
from bot.store import (
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    AuditSearch,
    ChainState,
    Confirmation,
    ConfirmationState,
    DeleteWindow,
    RestoreChain,
    Store,
    StoreUnavailable,
    WindowState,
)

log = logging.getLogger(__name__)

CONFIRMATION_TTL = timedelta(minutes=15)
APPROVAL_TTL = timedelta(minutes=30)
# A chain step (asking for the safety backup, sending the restore) takes at most a few API timeouts;
# one stuck longer than this belonged to a process that died.
CHAIN_STEP_SECONDS = 180.0
SAFETY_GIVE_UP = timedelta(hours=6)
MAKE_ROOM = "make_room"


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where (the Slack channel, if any). The CLI's actor is whoever holds the host: an admin."""

    user_id: str
    source: str = "slack"
    superuser: bool = False
    channel_id: str | None = None


@dataclass(frozen=True)
class ReplyTo:
    """Where to tell the person later: a created backup's completion, an approval's decision."""

    channel_id: str | None
    response_url: str | None


class OpsError(Exception):
    """A refusal with a reason a person can read."""


class PermissionDenied(OpsError):
    def __init__(self, action: Action, server_id: int | None, needed: str, role: Role | None = None):
        self.action, self.server_id, self.needed, self.role = action, server_id, needed, role
        where = f" on server {server_id}" if server_id is not None else ""
        super().__init__(f"{action.value}{where} needs the {needed} role")


class BackupNotFound(OpsError):
    def __init__(self, backup_id: int, *, gone: bool = False):
        self.backup_id, self.gone = backup_id, gone
        super().__init__(f"backup {backup_id} {'no longer exists' if gone else 'does not exist'}")


class NotRestorable(OpsError):
    def __init__(self, backup: Backup):
        self.backup = backup
        super().__init__(f"backup {backup.id} is {backup.status}; only a completed backup can be restored")


class ConfirmationUnavailable(OpsError):
    """The confirmation was already used, cancelled, expired, or never existed."""

    def __init__(self, confirmation: Confirmation | None):
        self.confirmation = confirmation
        state = confirmation.state.value if confirmation else "missing"
        super().__init__(f"this confirmation is {state}")


class ConfirmationMismatch(OpsError):
    def __init__(self, confirmation: Confirmation, typed: str):
        self.confirmation, self.typed = confirmation, typed
        super().__init__(
            f"{typed!r} is neither {confirmation.target_server_name!r} nor {confirmation.target_server_id}"
        )


@dataclass(frozen=True)
class Listing:
    backups: list[Backup]
    server_id: int | None
    backup_type: str | None
    is_admin: bool
    roles: dict[int, Role] = field(default_factory=dict)

    def role_on(self, server_id: int) -> Role | None:
        return self.roles.get(server_id)


@dataclass(frozen=True)
class ServerAccess:
    server_id: int
    name: str | None
    role: str
    approvals: bool = False


@dataclass(frozen=True)
class Accepted:
    """A create the API accepted (2xx) whose answer could not be read: it happened, but the bot can't show it."""

    server_id: int
    description: str
    reason: str


@dataclass(frozen=True)
class Awaiting:
    """A confirmed delete or restore that waits for a second person (the two-person rule)."""

    request: ApprovalRequest


@dataclass(frozen=True)
class Decision:
    """How an approval request ended: `request` as it now stands; `error` if the approved write failed."""

    request: ApprovalRequest
    provider_message: str | None = None
    error: Exception | None = None
    chain: ChainStarted | None = None  # an approved restore that first takes a safety backup


class ApprovalUnavailable(OpsError):
    """The request was already decided, withdrawn, expired, or never existed."""

    def __init__(self, request: ApprovalRequest | None, *, expired: bool = False):
        self.request, self.expired = request, expired
        state = "expired" if expired else (request.state.value if request else "missing")
        super().__init__(f"this approval request is {state}")


class WrongChannel(OpsError):
    """The server is bound to channels, and this was asked from none of them."""

    def __init__(self, server_id: int, channels: list[str]):
        self.server_id, self.channels = server_id, channels
        super().__init__(f"server {server_id} is run only from its channels")


class OwnRequest(OpsError):
    """Nobody decides on their own request, admins included."""

    def __init__(self, request: ApprovalRequest):
        self.request = request
        super().__init__("the requester may not approve or deny their own request")


class NotTheRequester(OpsError):
    def __init__(self, request: ApprovalRequest):
        self.request = request
        super().__init__("only the requester may withdraw a request")


@dataclass(frozen=True)
class ServerSummary:
    """One server on a person's Home tab."""

    server_id: int
    name: str | None
    role: str
    approvals: bool
    newest: Backup | None = None
    in_progress: int = 0
    manual_used: int = 0
    may_create: bool = False


@dataclass(frozen=True)
class HomeView:
    """What a person's Home tab shows: their servers, what waits for their decision, their last actions."""

    user_id: str
    is_admin: bool
    servers: list[ServerSummary]
    waiting: list[ApprovalRequest]
    recent: list[AuditEntry]
    api_problem: str | None = None


@dataclass(frozen=True)
class Done:
    """The outcome of a confirmed delete or restore."""

    confirmation: Confirmation
    provider_message: str | None = None


@dataclass(frozen=True)
class Scheduled:
    """A confirmed delete in its undo window: sent when the window ends, unless undone."""

    window: DeleteWindow


@dataclass(frozen=True)
class DeleteSent:
    """A delete whose window ended: sent (`why` None), or it could not be (`why` says so)."""

    window: DeleteWindow
    why: Words | None = None


@dataclass(frozen=True)
class ChainStarted:
    """A restore waiting on its safety backup, which the API accepted."""

    chain: RestoreChain
    safety: Backup


@dataclass(frozen=True)
class ChainStep:
    """How a restore chain moved on: the restore sent (`why` None), or stopped with nothing restored
    (`offer_without`: the person may restore without a safety backup), or interrupted."""

    chain: RestoreChain
    provider_message: str | None = None
    why: Words | None = None
    offer_without: bool = False


@dataclass(frozen=True)
class RoomMade:
    """The oldest manual backup deleted to make room, and the new backup (or why it was not created)."""

    confirmation: Confirmation
    created: Backup | Accepted | None
    error: Exception | None = None


class SafetyBackupFailed(OpsError):
    """The safety backup could not be made, so the restore was not sent."""

    def __init__(self, chain: RestoreChain, why: Words, *, no_room: bool = False):
        self.chain, self.why, self.no_room = chain, why, no_room
        super().__init__(f"the restore was not sent: {why.english()}")


class NoRoom(OpsError):
    """A create refused because the server already keeps the most manual backups the provider allows."""

    def __init__(
        self,
        server_id: int,
        count: int,
        oldest: Backup | None,
        *,
        description: str,
        may_make_room: bool,
        ruled: bool,
        provider_message: str,
    ):
        self.server_id, self.count, self.oldest = server_id, count, oldest
        self.description, self.may_make_room, self.ruled = description, may_make_room, ruled
        self.provider_message = provider_message
        super().__init__(f"server {server_id} already has {count} manual backups")


class UndoUnavailable(OpsError):
    """The delete was already sent, undone, or the button is unknown."""

    def __init__(self, window: DeleteWindow | None):
        self.window = window
        super().__init__(f"this delete is {window.state.value if window else 'unknown'}")


class Interrupted(OpsError):
    """A write was on its way when its bot stopped: it may have happened, and it is not sent again."""

    def __init__(self, why: Words):
        self.why = why
        super().__init__(why.english())


class RuledServer(OpsError):
    """Making room is one confirmed step; on a server under the two-person rule a delete needs approval."""

    def __init__(self, server_id: int):
        self.server_id = server_id
        super().__init__(f"server {server_id} is under the two-person rule")


class Operations:
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
    ):
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

    def _audit_fields(self, actor: Actor, action: Action, outcome: str, fields: dict[str, Any]) -> dict[str, Any]:
        at = iso_seconds(self._clock())
        return {"user_id": actor.user_id, "action": action.value, "outcome": outcome, "source": actor.source, "at": at}

    async def _audit(self, actor: Actor, action: Action, outcome: str, **fields: Any) -> None:
        """Write the audit entry; a busy store delays it (retried in the background), never drops it."""
        observe.note_attempt(action.value, outcome)
        await self.durable.write(
            "audit entry", self.store.audit, **self._audit_fields(actor, action, outcome, fields), **fields
        )

    async def _learn(self, backups: Any) -> None:
        """Remember server names: a cache, so a busy store just skips it."""
        try:
            await self._db(self.store.learn_servers, [(b.server.id, b.server.name) for b in backups])
        except StoreUnavailable as exc:
            log.info("server names not remembered this time: %s", exc)

    # --- standing ---------------------------------------------------------

    async def is_admin(self, actor: Actor) -> bool:
        return actor.superuser or actor.user_id in self.admins or await self._db(self.store.is_admin, actor.user_id)

    async def _authorize(
        self, actor: Actor, action: Action, server_id: int | None, *, admin: bool | None = None, **audit: Any
    ) -> Role | None:
        """The actor's role on the server, if allowed; else audit the denial and raise. `admin` if already known."""
        if admin is None:
            admin = await self.is_admin(actor)
        role = await self._db(self.store.role_of, actor.user_id, server_id) if server_id is not None else None
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

    # --- languages ----------------------------------------------------------

    async def language_of(self, user_id: str | None) -> str:
        """The person's language: their choice, else the bot's (also if the store is busy)."""
        if not user_id:
            return self.language
        try:
            return await self._db(self.store.language_of, user_id) or self.language
        except StoreUnavailable:
            return self.language

    @contextlib.asynccontextmanager
    async def speaking_to(self, user_id: str | None) -> AsyncIterator[str]:
        """Render what follows in the person's language, and announcements in the team's.

        Inside work already speaking to this person (a command's answer inside its listener), the
        language in force is theirs: it is not read from the store again."""
        if user_id and i18n.reader() == user_id:
            yield i18n.current()
            return
        language = await self.language_of(user_id)
        with i18n.speaking(language, self.language, reader=user_id):
            yield language

    async def set_language(self, actor: Actor, language: str) -> bool:
        changed = await self._db(self.store.set_language, actor.user_id, language)
        await self._audit(
            actor, Action.LANGUAGE, "done", detail=f"language {language}" + ("" if changed else " (unchanged)")
        )
        return changed

    # --- reading ----------------------------------------------------------

    async def list_backups(self, actor: Actor, server_id: int | None = None, backup_type: str | None = None) -> Listing:
        admin = await self.is_admin(actor)
        if server_id is not None:
            role = await self._authorize(actor, Action.LIST, server_id, admin=admin)
            backups = await self._api(
                actor, Action.LIST, self.api.list_backups(server_id, backup_type), server_id=server_id
            )
            roles = {server_id: role} if role else {}
        elif admin:
            backups = await self._api(actor, Action.LIST, self.api.list_backups(None, backup_type))
            roles = {}
        else:
            grants = await self._db(self.store.grants, actor.user_id)
            roles = {g.server_id: g.role for g in grants}
            calls = [self.api.list_backups(sid, backup_type) for sid in roles]
            per_server = await self._api(actor, Action.LIST, asyncio.gather(*calls))
            backups = [b for chunk in per_server for b in chunk]
        backups.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        await self._learn(backups)
        await self._audit(actor, Action.LIST, "done", server_id=server_id, detail=f"{len(backups)} backups")
        return Listing(backups, server_id, backup_type, admin, roles)

    async def standing(self, actor: Actor) -> tuple[bool, Role | None]:
        """Whether the person is an admin, and their highest role on any server (for help that fits them)."""
        if await self.is_admin(actor):
            return True, None
        grants = await self._db(self.store.grants, actor.user_id)
        return False, max((g.role for g in grants), default=None)

    async def servers(self, actor: Actor) -> list[ServerAccess]:
        if await self.is_admin(actor):
            backups = await self._api(actor, Action.SERVERS, self.api.list_backups())
            await self._learn(backups)
            names = await self._db(self.store.server_names)
            rules = await self._db(self.store.approval_rules)
            access = [ServerAccess(sid, name, "admin", sid in rules) for sid, name in sorted(names.items())]
        else:
            names = await self._db(self.store.server_names)
            grants = await self._db(self.store.grants, actor.user_id)
            rules = await self._db(self.store.approval_rules)
            access = [
                ServerAccess(g.server_id, names.get(g.server_id), g.role.label, g.server_id in rules) for g in grants
            ]
        await self._audit(actor, Action.SERVERS, "done", detail=f"{len(access)} servers")
        return access

    async def audit_log(self, actor: Actor, limit: int = 20, search: AuditSearch | None = None) -> list[AuditEntry]:
        await self._authorize(actor, Action.AUDIT, None)
        entries = await self._db(self.store.audit_entries, limit, search)
        filters = f" where {search.words()}" if search and search.words() else ""
        await self._audit(actor, Action.AUDIT, "done", detail=f"last {limit}{filters}")
        return entries

    # --- creating ---------------------------------------------------------

    async def create_backup(
        self, actor: Actor, server_id: int, description: str = "", *, follow: ReplyTo | None = None
    ) -> Backup | Accepted:
        await self._authorize(actor, Action.CREATE, server_id)
        await self._from_its_channel(actor, Action.CREATE, server_id)
        try:
            backup = await self._api(
                actor,
                Action.CREATE,
                self.api.create_backup(server_id, description or None),
                server_id=server_id,
            )
        except AcceptedButUnreadable as exc:
            log.warning("create on server %s: %s", server_id, exc)
            await self._audit(
                actor, Action.CREATE, "done", server_id=server_id, detail=f"{description} [answer unreadable]".strip()
            )
            return Accepted(server_id, description, str(exc))
        except BadRequest as exc:
            await self._no_room_or(exc, actor, server_id, description)
            raise
        await self._learn([backup])
        if follow is not None and backup.is_running:
            await self.durable.write(
                "followed backup",
                self.store.follow,
                backup_id=backup.id,
                server_id=backup.server.id,
                requested_by=actor.user_id,
                channel_id=follow.channel_id,
                response_url=follow.response_url,
                description=backup.description,
                started_at=iso_seconds(self._clock()),
            )
        await self._audit(actor, Action.CREATE, "done", server_id=server_id, backup_id=backup.id, detail=description)
        return backup

    # --- deleting and restoring --------------------------------------------

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

    async def request_delete(self, actor: Actor, backup_id: int) -> Confirmation:
        backup = await self._find(actor, Action.DELETE, backup_id)
        await self._authorize_on_backup(actor, Action.DELETE, backup)
        await self._from_its_channel(actor, Action.DELETE, backup.server.id, backup_id=backup_id)
        return await self._confirmation(Action.DELETE, backup, backup.server.id, backup.server.name, actor)

    async def request_restore(
        self, actor: Actor, backup_id: int, target_server_id: int | None = None, *, safety: bool = True
    ) -> Confirmation:
        """A restore to confirm; it records what the restore undoes (the target's newer backups) and
        whether the target has room for a safety backup, and whether the form offers one ticked."""
        backup, backups = await self._find_among(actor, Action.RESTORE, backup_id)
        target = backup.server.id if target_server_id is None else target_server_id
        await self._authorize_on_backup(actor, Action.RESTORE, backup)
        if target != backup.server.id:
            await self._authorize(actor, Action.RESTORE, target, backup_id=backup_id)
        await self._from_its_channel(actor, Action.RESTORE, backup.server.id, target, backup_id=backup_id)
        if not backup.is_restorable:
            await self._audit(
                actor,
                Action.RESTORE,
                "failed",
                server_id=target,
                backup_id=backup_id,
                detail=f"backup is {backup.status}",
            )
            raise NotRestorable(backup)
        names = await self._db(self.store.server_names)
        target_name = backup.server.name if target == backup.server.id else names.get(target, str(target))
        on_target = [b for b in backups if b.server.id == target]
        newer = sorted(
            (b for b in on_target if (b.created_at, b.id) > (backup.created_at, backup.id)),
            key=lambda b: (b.created_at, b.id),
        )
        return await self._confirmation(
            Action.RESTORE,
            backup,
            target,
            target_name,
            actor,
            newer_count=len(newer),
            newest_id=newer[-1].id if newer else None,
            newest_at=newer[-1].created_at.isoformat() if newer else None,
            target_manual_count=sum(b.backup_type == "manual" for b in on_target),
            safety=int(safety),
        )

    async def _confirmation(
        self, action: Action, backup: Backup, target_id: int, target_name: str, actor: Actor, **extra: Any
    ) -> Confirmation:
        await self._learn([backup])
        return await self._db(
            self.store.create_confirmation,
            action=action.value,
            backup_id=backup.id,
            server_id=backup.server.id,
            server_name=backup.server.name,
            target_server_id=target_id,
            target_server_name=target_name,
            backup_created_at=backup.created_at.isoformat(),
            backup_type=backup.backup_type,
            backup_description=backup.description,
            requested_by=actor.user_id,
            **extra,
        )

    async def pending_confirmation(self, actor: Actor, token: str, action: Action) -> Confirmation:
        """The confirmation behind a button, if it can still be acted on; a refusal is audited."""
        conf = await self._db(self.store.confirmation, token)
        if conf is not None and conf.state is ConfirmationState.PENDING and conf.action == action.value:
            if conf.created_at + self.confirmation_ttl >= self._clock():
                return conf
            await self._db(self.store.expire_confirmation, token)
            conf = await self._db(self.store.confirmation, token)
        await self._refused(actor, action, conf)

    async def _refused(self, actor: Actor, action: Action, conf: Confirmation | None) -> NoReturn:
        """Audit a press on a confirmation that can no longer be acted on, and say why."""
        if conf is None:
            detail, audit = "unknown or damaged confirmation", {}
        else:
            by = f" by {conf.used_by}" if conf.used_by else ""
            detail = f"confirmation already {conf.state.value}{by}"
            audit = {"server_id": conf.target_server_id, "backup_id": conf.backup_id}
        await self._audit(actor, action, "denied", detail=detail, **audit)
        raise ConfirmationUnavailable(conf)

    async def check_restore_text(self, actor: Actor, token: str, typed: str) -> Confirmation:
        """Does the typed text name the restore's target server? (No API call: fast enough for a modal ack.)"""
        conf = await self.pending_confirmation(actor, token, Action.RESTORE)
        if typed.strip() not in (conf.target_server_name, str(conf.target_server_id)):
            raise ConfirmationMismatch(conf, typed.strip())
        return conf

    async def authorize_confirmation(self, actor: Actor, token: str, action: Action) -> Confirmation:
        """The pending confirmation, if `actor` may act on it now (on both servers, for a restore elsewhere)."""
        conf = await self.pending_confirmation(actor, token, action)
        await self._authorize_on(actor, conf)
        return conf

    async def _authorize_on(self, actor: Actor, conf: Confirmation) -> None:
        action = Action(conf.action)
        await self._authorize(actor, action, conf.server_id, backup_id=conf.backup_id)
        if conf.target_server_id != conf.server_id:
            await self._authorize(actor, action, conf.target_server_id, backup_id=conf.backup_id)
        await self._from_its_channel(actor, action, conf.server_id, conf.target_server_id, backup_id=conf.backup_id)

    async def confirm_delete(
        self, actor: Actor, token: str, *, reply_to: ReplyTo | None = None
    ) -> Done | Awaiting | Scheduled:
        conf = await self.authorize_confirmation(actor, token, Action.DELETE)
        audit = {"server_id": conf.server_id, "backup_id": conf.backup_id}
        backup = await self._still_there(actor, Action.DELETE, conf)
        await self._claim(conf, actor, Action.DELETE)
        if await self.needs_approval(conf.server_id, conf.target_server_id):
            return await self._ask_approval(actor, conf, backup, "", reply_to)
        if self.delete_grace > timedelta(0):
            window = await self._db(
                self.store.open_delete_window,
                backup_id=conf.backup_id,
                server_id=conf.server_id,
                server_name=conf.server_name,
                backup_type=conf.backup_type,
                requested_by=actor.user_id,
                approved_by=None,
                channel_id=reply_to.channel_id if reply_to else None,
                response_url=reply_to.response_url if reply_to else None,
                due_at=(self._clock() + self.delete_grace).timestamp(),
            )
            return Scheduled(window)
        try:
            await self._spend(conf, self._api(actor, Action.DELETE, self.api.delete_backup(conf.backup_id), **audit))
        except NotFound:
            raise BackupNotFound(conf.backup_id, gone=True) from None
        await self._audit(actor, Action.DELETE, "done", **audit)
        return Done(conf)

    async def confirm_restore(
        self,
        actor: Actor,
        token: str,
        typed: str,
        *,
        reason: str = "",
        reply_to: ReplyTo | None = None,
        safety: bool | None = None,
    ) -> Done | Awaiting | ChainStarted:
        """Send the restore; or, with a safety backup (the form's box, default the confirmation's),
        start the chain that sends it once the safety backup has completed."""
        conf = await self.check_restore_text(actor, token, typed)
        safety = conf.safety if safety is None else safety
        audit = {"server_id": conf.target_server_id, "backup_id": conf.backup_id}
        await self._authorize_on(actor, conf)
        backup = await self._still_there(actor, Action.RESTORE, conf)
        await self._claim(conf, actor, Action.RESTORE)
        if await self.needs_approval(conf.server_id, conf.target_server_id):
            return await self._ask_approval(actor, conf, backup, reason, reply_to, safety=safety)
        if safety:
            return await self._start_chain(actor, conf, reply_to)
        message = await self._spend(
            conf, self._api(actor, Action.RESTORE, self.api.restore(conf.target_server_id, conf.backup_id), **audit)
        )
        detail = f"from backup {conf.backup_id} of server {conf.server_id}"
        await self._audit(actor, Action.RESTORE, "done", detail=detail, **audit)
        return Done(conf, message)

    async def cancel(self, actor: Actor, token: str) -> Confirmation:
        conf = await self._db(self.store.confirmation, token)
        action = Action(conf.action) if conf is not None else Action.DELETE
        if conf is None or conf.state is not ConfirmationState.PENDING:
            await self._refused(actor, action, conf)
        if actor.user_id != conf.requested_by:
            await self._authorize_on(actor, conf)
        if not await self._db(self.store.cancel_confirmation, conf.id, actor.user_id):
            await self._refused(actor, action, await self._db(self.store.confirmation, conf.id))
        await self._audit(actor, action, "cancelled", server_id=conf.target_server_id, backup_id=conf.backup_id)
        return conf

    async def _still_there(self, actor: Actor, action: Action, conf: Confirmation) -> Backup:
        """Re-find the backup at the moment of confirmation: gone (or, for a restore, no longer
        completed), the confirmation is spent and nothing is sent."""
        try:
            backup = await self._find(actor, action, conf.backup_id, gone=True)
        except BackupNotFound:
            await self._void(actor, action, conf, self.store.backup_gone_at_press, "the backup no longer exists")
            raise
        if action is Action.RESTORE and not backup.is_restorable:
            await self._void(
                actor, action, conf, self.store.backup_unrestorable_at_press, f"the backup is now {backup.status}"
            )
            raise NotRestorable(backup)
        return backup

    async def _void(self, actor: Actor, action: Action, conf: Confirmation, transition, why: str) -> None:
        if not await self._db(transition, conf.id, actor.user_id):
            await self._refused(actor, action, await self._db(self.store.confirmation, conf.id))
        await self._audit(
            actor, action, "failed", server_id=conf.target_server_id, backup_id=conf.backup_id, detail=why
        )

    async def _spend(self, conf: Confirmation, call):
        """Send the write a claimed confirmation allows; if it fails, say so to whoever presses again.

        The write is never re-sent: it may have happened despite the error.
        """
        try:
            return await call
        except NotFound:
            await self.durable.write("confirmation state", self.store.write_found_nothing, token=conf.id)
            raise
        except BackupApiError:
            await self.durable.write("confirmation state", self.store.write_failed, token=conf.id)
            raise

    async def _claim(self, conf: Confirmation, actor: Actor, action: Action) -> None:
        if not await self._db(self.store.use_confirmation, conf.id, actor.user_id):
            await self._refused(actor, action, await self._db(self.store.confirmation, conf.id))

    # --- safety nets: room at the limit -------------------------------------------

    async def _room(self, server_id: int) -> tuple[int, Backup | None]:
        """How many manual backups the server keeps, and the oldest of them."""
        manual = await self.api.list_backups(server_id, "manual")
        oldest = min(manual, key=lambda b: (b.created_at, b.id), default=None)
        return len(manual), oldest

    async def _no_room_or(self, refusal: BadRequest, actor: Actor, server_id: int, description: str) -> None:
        """Raise NoRoom if a refused create met the 10-backup limit; else return (the refusal stands)."""
        try:
            count, oldest = await self._room(server_id)
        except BackupApiError:
            return
        if count < MANUAL_LIMIT:
            return
        admin = await self.is_admin(actor)
        role = await self._db(self.store.role_of, actor.user_id, server_id)
        raise NoRoom(
            server_id,
            count,
            oldest,
            description=description,
            may_make_room=is_allowed(Action.DELETE, is_admin=admin, role=role),
            ruled=await self.needs_approval(server_id),
            provider_message=refusal.provider_message,
        ) from refusal

    async def request_make_room(self, actor: Actor, server_id: int, backup_id: int, description: str) -> Confirmation:
        """Ask to confirm deleting the oldest manual backup (by name) and then creating the new one."""
        backup = await self._find(actor, Action.DELETE, backup_id)
        if backup.server.id != server_id or backup.backup_type != "manual":
            raise BackupNotFound(backup_id)
        await self._authorize_on_backup(actor, Action.DELETE, backup)
        await self._authorize(actor, Action.CREATE, server_id, backup_id=backup_id)
        await self._from_its_channel(actor, Action.DELETE, server_id, backup_id=backup_id)
        await self._not_ruled(actor, server_id, backup_id)
        return await self._confirmation(
            Action.DELETE,
            backup,
            server_id,
            backup.server.name,
            actor,
            purpose=MAKE_ROOM,
            description=description[:255],
        )

    async def _not_ruled(self, actor: Actor, server_id: int, backup_id: int) -> None:
        if await self.needs_approval(server_id):
            await self._audit(
                actor,
                Action.DELETE,
                "denied",
                server_id=server_id,
                backup_id=backup_id,
                detail="making room needs the two-person rule's approval: delete first, then create",
            )
            raise RuledServer(server_id)

    async def confirm_make_room(self, actor: Actor, token: str, *, reply_to: ReplyTo | None = None) -> RoomMade:
        """Delete the confirmed backup at once (it was confirmed by name: no undo window), then create.

        If the delete fails, nothing is created; if the create fails, the delete still happened and
        the result says both.
        """
        conf = await self.authorize_confirmation(actor, token, Action.DELETE)
        if conf.purpose != MAKE_ROOM:
            await self._refused(actor, Action.DELETE, None)
        await self._authorize(actor, Action.CREATE, conf.server_id, backup_id=conf.backup_id)
        await self._not_ruled(actor, conf.server_id, conf.backup_id)
        audit = {"server_id": conf.server_id, "backup_id": conf.backup_id}
        await self._still_there(actor, Action.DELETE, conf)
        await self._claim(conf, actor, Action.DELETE)
        try:
            await self._spend(conf, self._api(actor, Action.DELETE, self.api.delete_backup(conf.backup_id), **audit))
        except NotFound:
            raise BackupNotFound(conf.backup_id, gone=True) from None
        await self._audit(actor, Action.DELETE, "done", detail="the oldest manual backup, to make room", **audit)
        try:
            created = await self.create_backup(actor, conf.server_id, conf.description, follow=reply_to)
        except (BackupApiError, OpsError) as exc:
            return RoomMade(conf, None, exc)
        return RoomMade(conf, created)

    # --- safety nets: the undo window for deletes ---------------------------------------

    async def undo_delete(self, actor: Actor, window_id: str) -> DeleteWindow:
        """Stop a delete in its window: its requester, an owner of the server, or an admin."""
        window = await self._db(self.store.delete_window, window_id)
        if window is None:
            await self._audit(actor, Action.DELETE, "denied", detail="undo of an unknown delete")
            raise UndoUnavailable(None)
        audit = {"server_id": window.server_id, "backup_id": window.backup_id}
        if actor.user_id != window.requested_by:
            await self._authorize(actor, Action.DELETE, window.server_id, backup_id=window.backup_id)
        if not await self._db(self.store.undo_delete, window.id, actor.user_id):
            now = await self._db(self.store.delete_window, window.id)
            await self._audit(actor, Action.DELETE, "denied", detail=f"undo, but the delete is {now.state}", **audit)
            raise UndoUnavailable(now)
        by = "" if actor.user_id == window.requested_by else f" (asked by {window.requested_by})"
        await self._audit(actor, Action.DELETE, "cancelled", detail=f"undone in its window{by}", **audit)
        return await self._db(self.store.delete_window, window.id)

    async def send_due_deletes(self) -> list[DeleteSent]:
        """Send the deletes whose window has ended, each once (claimed in the store), audited for their requester."""
        results = []
        for window in await self._db(self.store.claim_due_deletes):
            audit = {"server_id": window.server_id, "backup_id": window.backup_id}
            why = None
            try:
                await self.api.delete_backup(window.backup_id)
                state, outcome = WindowState.DONE, "done"
            except NotFound:
                state, outcome, why = WindowState.GONE, "failed", Words(N_("the backup no longer exists"))
            except BackupApiError as exc:
                state, outcome = WindowState.FAILED, "failed"
                why = Words(N_("the backup API failed ({error})"), error=f"{type(exc).__name__}: {exc}")
            said = why.english() if why else ""
            await self.durable.write(
                "delete window", self.store.end_delete_window, window_id=window.id, state=state, detail=said
            )
            approved = f", approved by {window.approved_by}" if window.approved_by else ""
            detail = f"after its undo window{approved}" + (f"; {said}" if why else "")
            await self._audit(Actor(window.requested_by), Action.DELETE, outcome, detail=detail, **audit)
            results.append(DeleteSent(await self._db(self.store.delete_window, window.id), why))
        return results

    # --- safety nets: a safety backup before a restore --------------------------------------

    async def _start_chain(
        self,
        requester: Actor,
        source: Confirmation | ApprovalRequest,
        reply_to: ReplyTo | None,
        *,
        approved_by: str | None = None,
    ) -> ChainStarted:
        """Record the chain, then ask for the safety backup (an ordinary create on the requester's behalf).

        The chain is written first, so a bot that dies while asking leaves a trace that is reported
        (`interrupted_chains`) rather than a restore nobody hears of.
        """
        target = source.target_server_id
        chain = await self._db(
            self.store.start_chain,
            backup_id=source.backup_id,
            server_id=source.server_id,
            server_name=source.server_name,
            target_server_id=target,
            target_server_name=source.target_server_name,
            requested_by=requester.user_id,
            approved_by=approved_by,
            channel_id=reply_to.channel_id if reply_to else None,
            response_url=reply_to.response_url if reply_to else None,
            safety_backup_id=None,
        )
        description = f"Safety backup before restoring from #{source.backup_id}"
        try:
            safety = await self._api(
                requester, Action.CREATE, self.api.create_backup(target, description), server_id=target
            )
        except AcceptedButUnreadable:
            await self._audit(
                requester, Action.CREATE, "done", server_id=target, detail=f"{description} [answer unreadable]"
            )
            why = Words(
                N_("the backup API accepted the safety backup but its answer could not be read, so I cannot follow it")
            )
            raise await self._stop_chain(chain, ChainState.CREATING, why) or SafetyBackupFailed(chain, why) from None
        except BackupApiError as exc:
            no_room = False
            if isinstance(exc, BadRequest):
                with contextlib.suppress(BackupApiError):
                    no_room = (await self._room(target))[0] >= MANUAL_LIMIT
            why = (
                Words(
                    N_("there is no room for a safety backup: server {id} already has {limit} manual backups"),
                    id=target,
                    limit=MANUAL_LIMIT,
                )
                if no_room
                else Words(N_("the safety backup failed ({error})"), error=exc)
            )
            stopped = await self._stop_chain(chain, ChainState.CREATING, why, no_room=no_room)
            raise stopped or SafetyBackupFailed(chain, why, no_room=no_room) from exc
        await self._learn([safety])
        await self.durable.write(
            "restore chain",
            self.store.move_chain,
            chain_id=chain.id,
            old=ChainState.CREATING,
            new=ChainState.WAITING,
            safety_backup_id=safety.id,
        )
        await self._audit(requester, Action.CREATE, "done", server_id=target, backup_id=safety.id, detail=description)
        return ChainStarted(await self._db(self.store.chain, chain.id), safety)

    async def _stop_chain(
        self, chain: RestoreChain, old: ChainState, why: Words, *, no_room: bool = False
    ) -> SafetyBackupFailed | None:
        """End a chain with nothing restored; returns the error to raise (None if another process ended it)."""
        if not await self._db(self.store.move_chain, chain.id, old, ChainState.FAILED, detail=why.english()):
            return None
        await self._audit(
            Actor(chain.requested_by),
            Action.RESTORE,
            "failed",
            server_id=chain.target_server_id,
            backup_id=chain.backup_id,
            detail=f"not sent: {why.english()}",
        )
        return SafetyBackupFailed(await self._db(self.store.chain, chain.id), why, no_room=no_room)

    async def advance_chain(self, chain: RestoreChain, safety: Backup | None) -> ChainStep | None:
        """Move a waiting chain on, given its safety backup as the API lists it now (None: not listed).

        Completed: the chain is claimed (waiting → restoring) and the restore sent by the one caller
        that claimed it. Anything else that ended, or a safety backup gone: nothing restored.
        """
        label = chain.safety_backup_id
        if safety is not None and safety.is_running:
            if self._clock() - datetime.fromisoformat(chain.created_at) < SAFETY_GIVE_UP:
                return None
            why = Words(N_("safety backup #{id} was still running after 6 hours"), id=label)
        elif safety is None:
            why = Words(N_("safety backup #{id} is no longer in the backup API's list"), id=label)
        elif not safety.is_restorable:
            why = Words(N_("safety backup #{id} ended {status}"), id=label, status=safety.status)
        else:
            return await self._send_chained_restore(chain, safety)
        stopped = await self._stop_chain(chain, ChainState.WAITING, why)
        return ChainStep(stopped.chain, why=why, offer_without=True) if stopped else None

    async def _send_chained_restore(self, chain: RestoreChain, safety: Backup) -> ChainStep | None:
        if not await self._db(self.store.move_chain, chain.id, ChainState.WAITING, ChainState.RESTORING):
            return None
        requester = Actor(chain.requested_by)
        audit = {"server_id": chain.target_server_id, "backup_id": chain.backup_id}
        approved = f", approved by {chain.approved_by}" if chain.approved_by else ""
        try:
            message = await self.api.restore(chain.target_server_id, chain.backup_id)
        except BackupApiError as exc:
            why = Words(N_("the restore failed ({error})"), error=exc)
            await self.durable.write(
                "restore chain",
                self.store.move_chain,
                chain_id=chain.id,
                old=ChainState.RESTORING,
                new=ChainState.FAILED,
                detail=why.english(),
            )
            await self._audit(
                requester, Action.RESTORE, "failed", detail=f"after {safety.id}{approved}; {why.english()}", **audit
            )
            return ChainStep(await self._db(self.store.chain, chain.id), why=why)
        await self.durable.write(
            "restore chain", self.store.move_chain, chain_id=chain.id, old=ChainState.RESTORING, new=ChainState.DONE
        )
        detail = f"from backup {chain.backup_id} of server {chain.server_id}, after safety backup {safety.id}{approved}"
        await self._audit(requester, Action.RESTORE, "done", detail=detail, **audit)
        return ChainStep(await self._db(self.store.chain, chain.id), provider_message=message)

    async def interrupted_chains(self) -> list[ChainStep]:
        """Chains whose process died mid-step: reported once, audited, never re-sent."""
        steps = []
        for chain in await self._db(self.store.interrupt_stale_chains, CHAIN_STEP_SECONDS):
            if chain.safety_backup_id is None:
                why = Words(N_("the bot stopped while asking for the safety backup, so the restore was not sent"))
            else:
                why = Words(N_("the bot stopped while sending the restore: it may have been sent"))
            await self._audit(
                Actor(chain.requested_by),
                Action.RESTORE,
                "failed",
                server_id=chain.target_server_id,
                backup_id=chain.backup_id,
                detail=f"interrupted: {why.english()}",
            )
            steps.append(ChainStep(chain, why=why, offer_without=chain.safety_backup_id is None))
        return steps

    # --- the Home tab -----------------------------------------------------------

    async def home(self, actor: Actor, recent: int = 5, *, audit: bool = True) -> HomeView:
        """A person's servers with where their backups stand; admins see every server the bot knows.

        One list call per server shown (concurrently), or one unfiltered call for an admin: nothing
        the person may not see is fetched for them. If the API fails, the servers still show.
        """
        admin = await self.is_admin(actor)
        rules = await self._db(self.store.approval_rules)
        names = await self._db(self.store.server_names)
        problem = None
        if admin:
            try:
                backups = await self.api.list_backups()
            except BackupApiError as exc:
                backups, problem = [], str(exc)
            await self._learn(backups)
            roles = {sid: "admin" for sid in {*names, *(b.server.id for b in backups)}}
        else:
            grants = await self._db(self.store.grants, actor.user_id)
            roles = {g.server_id: g.role.label for g in grants}
            results = await asyncio.gather(*(self.api.list_backups(sid) for sid in roles), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BackupApiError)]
            problem = str(failures[0]) if failures else None
            backups = [b for r in results if isinstance(r, list) for b in r]
            await self._learn(backups)
        names = {**names, **{b.server.id: b.server.name for b in backups}}
        by_server: dict[int, list[Backup]] = {}
        for backup in backups:
            by_server.setdefault(backup.server.id, []).append(backup)
        servers = []
        for sid in sorted(roles):
            mine = sorted(by_server.get(sid, []), key=lambda b: (b.created_at, b.id), reverse=True)
            role = None if roles[sid] == "admin" else Role.parse(roles[sid])
            servers.append(
                ServerSummary(
                    sid,
                    names.get(sid),
                    roles[sid],
                    sid in rules,
                    mine[0] if mine else None,
                    sum(b.is_running for b in mine),
                    sum(b.backup_type == "manual" for b in mine),
                    is_allowed(Action.CREATE, is_admin=admin, role=role),
                )
            )
        waiting = [
            r for r in await self._db(self.store.pending_approvals) if await self._may_decide_quietly(actor, r, admin)
        ]
        entries = await self._db(self.store.audit_entries_of, actor.user_id, recent)
        if audit:  # a refresh after the person's own change is the bot's doing, not an attempt of theirs
            await self._audit(actor, Action.LIST, "done", detail=f"home tab: {len(servers)} servers")
        return HomeView(actor.user_id, admin, servers, waiting, entries, problem)

    async def _may_decide_quietly(self, actor: Actor, request: ApprovalRequest, admin: bool) -> bool:
        """Could this person decide on the request? (For showing it; the press checks again, and audits.)"""
        if actor.user_id == request.requested_by or request.expires_at <= self._clock().timestamp():
            return False
        if admin:
            return True
        for server_id in request.servers:
            role = await self._db(self.store.role_of, actor.user_id, server_id)
            if not is_allowed(Action.APPROVE, is_admin=False, role=role):
                return False
        return True

    # --- channels -------------------------------------------------------------

    async def channels(self, actor: Actor, server_id: int) -> list[str]:
        """A server's channels; anyone who may see the server may ask."""
        await self._authorize(actor, Action.CHANNELS, server_id)
        channels = await self._db(self.store.channels_of, server_id)
        await self._audit(actor, Action.CHANNELS, "done", server_id=server_id, detail=f"{len(channels)} channels")
        return channels

    async def bind_channel(self, actor: Actor, server_id: int, channel_id: str, *, bound: bool) -> bool:
        """Bind a server to a channel, or unbind it (admin); True if that changed anything."""
        if not await self.is_admin(actor):
            await self._audit(actor, Action.CHANNELS, "denied", server_id=server_id, detail="needs admin")
            raise PermissionDenied(Action.CHANNELS, None, "admin")
        changed = await self._db(self.store.bind_channel, server_id, channel_id, actor.user_id, bound=bound)
        verb = "bound to" if bound else "unbound from"
        detail = f"{verb} {channel_id}" + ("" if changed else " (unchanged)")
        await self._audit(actor, Action.CHANNELS, "done", server_id=server_id, detail=detail)
        return changed

    async def _from_its_channel(self, actor: Actor, action: Action, *server_ids: int, **audit: Any) -> None:
        """A server bound to channels is changed only from one of them, whoever asks (admins too);
        the CLI, at the host, is not in Slack and is not held to it."""
        if actor.source != "slack":
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

    # --- the two-person rule ------------------------------------------------

    async def set_approvals(self, actor: Actor, server_id: int, on: bool) -> bool:
        """Turn the two-person rule on or off for a server (admin); True if that changed anything."""
        await self._authorize(actor, Action.APPROVALS, None)
        changed = await self._db(self.store.set_approval_rule, server_id, on, actor.user_id)
        words = f"two-person rule {'on' if on else 'off'}" + ("" if changed else " (unchanged)")
        await self._audit(actor, Action.APPROVALS, "done", server_id=server_id, detail=words)
        return changed

    async def approval_rules(self) -> dict[int, str]:
        return await self._db(self.store.approval_rules)

    async def needs_approval(self, *server_ids: int) -> bool:
        rules = await self._db(self.store.approval_rules)
        return any(sid in rules for sid in server_ids)

    async def _ask_approval(
        self,
        actor: Actor,
        conf: Confirmation,
        backup: Backup,
        reason: str,
        reply_to: ReplyTo | None,
        *,
        safety: bool = False,
    ) -> Awaiting:
        """The requester has confirmed: record the request instead of sending the write."""
        request = await self._db(
            self.store.create_approval,
            action=conf.action,
            backup_id=conf.backup_id,
            server_id=conf.server_id,
            server_name=conf.server_name,
            target_server_id=conf.target_server_id,
            target_server_name=conf.target_server_name,
            backup_created_at=conf.backup_created_at,
            backup_type=conf.backup_type,
            backup_description=backup.description,
            requested_by=actor.user_id,
            reason=reason.strip()[:500],
            origin_channel=reply_to.channel_id if reply_to else None,
            response_url=reply_to.response_url if reply_to else None,
            expires_at=(self._clock() + self.approval_ttl).timestamp(),
            safety=int(safety and conf.action == Action.RESTORE.value),
        )
        return Awaiting(request)

    async def _open_request(self, actor: Actor, request_id: str, action: Action | None) -> ApprovalRequest:
        """The request behind a button, if it can still be decided; a refusal is audited (under `action`,
        else the request's own action)."""
        request = await self._db(self.store.approval, request_id)
        if action is None:
            action = Action(request.action) if request else Action.APPROVALS
        expired = (
            request is not None
            and request.state is ApprovalState.PENDING
            and (request.expires_at <= self._clock().timestamp())
        )
        if request is None or request.state is not ApprovalState.PENDING or expired:
            state = "expired" if expired else (request.state.value if request else "unknown")
            audit = {"server_id": request.target_server_id, "backup_id": request.backup_id} if request else {}
            await self._audit(actor, action, "denied", detail=f"approval request {state}", **audit)
            raise ApprovalUnavailable(request, expired=expired)
        return request

    async def _may_decide(self, actor: Actor, request: ApprovalRequest, action: Action) -> None:
        """An owner of every server involved, or an admin; never the requester."""
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        if actor.user_id == request.requested_by:
            await self._audit(actor, action, "denied", detail="may not decide on one's own request", **audit)
            raise OwnRequest(request)
        admin = await self.is_admin(actor)
        for server_id in sorted(request.servers):
            await self._authorize(actor, action, server_id, admin=admin, backup_id=request.backup_id)

    async def approve(self, actor: Actor, request_id: str) -> Decision:
        """Approve a pending request: the write is sent exactly once, by the one approval that claims it."""
        request = await self._open_request(actor, request_id, Action.APPROVE)
        await self._may_decide(actor, request, Action.APPROVE)
        if not await self._db(self.store.claim_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        action = Action(request.action)
        requester = Actor(request.requested_by)
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        what = f"{request.action} of backup {request.backup_id} asked by {request.requested_by}"
        try:
            backup = await self.api.find_backup(request.backup_id)
            if action is Action.RESTORE and not backup.is_restorable:
                raise NotRestorable(backup)
            if action is Action.RESTORE and request.safety:
                reply_to = ReplyTo(request.origin_channel, request.response_url)
                started = await self._start_chain(requester, request, reply_to, approved_by=actor.user_id)
                detail = f"safety backup #{started.safety.id} started; the restore follows once it completes"
                await self.durable.write(
                    "approval state", self.store.approval_carried_out, request_id=request.id, detail=detail
                )
                await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
                return Decision(await self._db(self.store.approval, request.id), chain=started)
            if action is Action.DELETE:
                await self.api.delete_backup(request.backup_id)
                message = None
            else:
                message = await self.api.restore(request.target_server_id, request.backup_id)
        except SafetyBackupFailed as exc:
            await self.durable.write(
                "approval state", self.store.approval_write_failed, request_id=request.id, detail=str(exc)
            )
            await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
            return Decision(await self._db(self.store.approval, request.id), error=exc)
        except (BackupApiError, NotRestorable) as exc:
            why = "the backup no longer exists" if isinstance(exc, NotFound) else f"{type(exc).__name__}: {exc}"
            await self.durable.write(
                "approval state", self.store.approval_write_failed, request_id=request.id, detail=why
            )
            await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
            await self._audit(requester, action, "failed", detail=f"approved by {actor.user_id}; {why}", **audit)
            return Decision(await self._db(self.store.approval, request.id), error=exc)
        await self.durable.write("approval state", self.store.approval_carried_out, request_id=request.id)
        await self._audit(actor, Action.APPROVE, "done", detail=what, **audit)
        await self._audit(requester, action, "done", detail=f"approved by {actor.user_id}", **audit)
        return Decision(await self._db(self.store.approval, request.id), provider_message=message)

    async def deny(self, actor: Actor, request_id: str) -> Decision:
        request = await self._open_request(actor, request_id, Action.DENY)
        await self._may_decide(actor, request, Action.DENY)
        if not await self._db(self.store.deny_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        what = f"{request.action} of backup {request.backup_id} asked by {request.requested_by}"
        await self._audit(actor, Action.DENY, "done", detail=what, **audit)
        await self._audit(
            Actor(request.requested_by),
            Action(request.action),
            "cancelled",
            detail=f"denied by {actor.user_id}",
            **audit,
        )
        return Decision(await self._db(self.store.approval, request.id))

    async def withdraw(self, actor: Actor, request_id: str) -> Decision:
        request = await self._open_request(actor, request_id, None)
        action = Action(request.action)
        audit = {"server_id": request.target_server_id, "backup_id": request.backup_id}
        if actor.user_id != request.requested_by:
            await self._audit(actor, action, "denied", detail="only the requester may withdraw", **audit)
            raise NotTheRequester(request)
        if not await self._db(self.store.withdraw_approval, request.id, actor.user_id):
            raise ApprovalUnavailable(await self._db(self.store.approval, request.id))
        await self._audit(actor, action, "cancelled", detail="withdrawn before a decision", **audit)
        return Decision(await self._db(self.store.approval, request.id))

    async def interrupted_approvals(self) -> list[Decision]:
        """Approved requests whose approver's bot died while sending the write: failed, audited, told; not re-sent."""
        decisions = []
        for request in await self._db(self.store.interrupt_stale_approvals, CHAIN_STEP_SECONDS):
            why = Words(N_("the bot stopped while carrying it out; it may have happened: check `/backup list`"))
            await self._audit(
                Actor(request.requested_by),
                Action(request.action),
                "failed",
                server_id=request.target_server_id,
                backup_id=request.backup_id,
                detail=f"approved by {request.decided_by}; interrupted: {why.english()}",
            )
            decisions.append(Decision(request, error=Interrupted(why)))
        return decisions

    async def expire_approvals(self) -> list[ApprovalRequest]:
        """Requests nobody decided in time: expired (each by one caller), audited for their requesters."""
        expired = await self._db(self.store.expire_approvals)
        minutes = self.approval_ttl.total_seconds() / 60
        for request in expired:
            await self._audit(
                Actor(request.requested_by),
                Action(request.action),
                "cancelled",
                server_id=request.target_server_id,
                backup_id=request.backup_id,
                detail=f"expired: nobody decided within {minutes:g} minutes",
            )
        return expired

    # --- permissions --------------------------------------------------------

    async def grant(self, actor: Actor, user_id: str, server_id: int, role: Role) -> None:
        await self._authorize(actor, Action.GRANT, None)
        await self._db(self.store.grant, user_id, server_id, role, actor.user_id)
        await self._audit(actor, Action.GRANT, "done", server_id=server_id, detail=f"{user_id} is {role.label}")

    async def revoke(self, actor: Actor, user_id: str, server_id: int) -> bool:
        await self._authorize(actor, Action.REVOKE, None)
        removed = await self._db(self.store.revoke, user_id, server_id)
        detail = f"{user_id} {'lost their role' if removed else 'had no role'}"
        await self._audit(actor, Action.REVOKE, "done", server_id=server_id, detail=detail)
        return removed

    async def set_admin(self, actor: Actor, user_id: str, *, admin: bool) -> bool:
        """Add or remove an admin kept in the store; True if that changed anything."""
        await self._authorize(actor, Action.ADMIN, None)
        if admin:
            changed = not await self._db(self.store.is_admin, user_id)
            await self._db(self.store.add_admin, user_id, actor.user_id)
        else:
            changed = await self._db(self.store.remove_admin, user_id)
        verb = "added" if admin else "removed"
        await self._audit(
            actor, Action.ADMIN, "done", detail=f"{user_id} {verb}" if changed else f"{user_id} unchanged"
        )
        return changed


def _needed(action: Action) -> str:
    role = REQUIRED_ROLE.get(action)
    return role.label if role else "admin"
