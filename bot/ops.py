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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from bot import observe
from bot.backup_api import AcceptedButUnreadable, Backup, BackupApi, BackupApiError, NotFound
from bot.clock import iso_seconds, utc_now
from bot.durable import DurableWrites
from bot.policy import REQUIRED_ROLE, Action, Role, is_allowed
from bot.store import (
    ApprovalRequest,
    ApprovalState,
    AuditEntry,
    AuditSearch,
    Confirmation,
    ConfirmationState,
    Store,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

CONFIRMATION_TTL = timedelta(minutes=15)
APPROVAL_TTL = timedelta(minutes=30)


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
    ):
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
        try:
            return await self._api(actor, action, self.api.find_backup(backup_id), backup_id=backup_id)
        except NotFound:
            raise BackupNotFound(backup_id, gone=gone) from None

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

    async def request_restore(self, actor: Actor, backup_id: int, target_server_id: int | None = None) -> Confirmation:
        backup = await self._find(actor, Action.RESTORE, backup_id)
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
        return await self._confirmation(Action.RESTORE, backup, target, target_name, actor)

    async def _confirmation(
        self, action: Action, backup: Backup, target_id: int, target_name: str, actor: Actor
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
            requested_by=actor.user_id,
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

    async def confirm_delete(self, actor: Actor, token: str, *, reply_to: ReplyTo | None = None) -> Done | Awaiting:
        conf = await self.authorize_confirmation(actor, token, Action.DELETE)
        audit = {"server_id": conf.server_id, "backup_id": conf.backup_id}
        backup = await self._still_there(actor, Action.DELETE, conf)
        await self._claim(conf, actor, Action.DELETE)
        if await self.needs_approval(conf.server_id, conf.target_server_id):
            return await self._ask_approval(actor, conf, backup, "", reply_to)
        try:
            await self._spend(conf, self._api(actor, Action.DELETE, self.api.delete_backup(conf.backup_id), **audit))
        except NotFound:
            raise BackupNotFound(conf.backup_id, gone=True) from None
        await self._audit(actor, Action.DELETE, "done", **audit)
        return Done(conf)

    async def confirm_restore(
        self, actor: Actor, token: str, typed: str, *, reason: str = "", reply_to: ReplyTo | None = None
    ) -> Done | Awaiting:
        conf = await self.check_restore_text(actor, token, typed)
        audit = {"server_id": conf.target_server_id, "backup_id": conf.backup_id}
        await self._authorize_on(actor, conf)
        backup = await self._still_there(actor, Action.RESTORE, conf)
        await self._claim(conf, actor, Action.RESTORE)
        if await self.needs_approval(conf.server_id, conf.target_server_id):
            return await self._ask_approval(actor, conf, backup, reason, reply_to)
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
        self, actor: Actor, conf: Confirmation, backup: Backup, reason: str, reply_to: ReplyTo | None
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
            if action is Action.DELETE:
                await self.api.delete_backup(request.backup_id)
                message = None
            else:
                message = await self.api.restore(request.target_server_id, request.backup_id)
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
