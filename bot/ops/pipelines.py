"""Pipelines: a backup before every deploy, asked for by a CI job with a token, or from a shell.

Tokens. An admin makes one at the shell (`add_token`): `vbb_<selector>_<secret>`, printed once. The store
keeps the selector (a public part that finds the row), the sha256 of the whole token and the servers it
reaches, never the token: `authenticate` finds the row by its selector and compares hashes with
`hmac.compare_digest`. Names are never reused, so `token:NAME` in the audit always means one token.

Runs. Each call is a row (`pipeline_runs`), claimed before anything is sent. With an Idempotency-Key the
row's id is derived from the token and the key, so a repeated key — also while the first call is still
sending — meets the first call's row in the same `INSERT … ON CONFLICT DO NOTHING` and takes no second
backup; the same key with another request is refused (KeyReused). The create is the one every create is
(`Backups._create`: `send_write` with path `pipeline`, the run as its `ref`), audited as the token and
followed like any other. A token is held to its servers, not to a server's channels (those bind people in
Slack). The backup's description ends with the run's tag (`[pipeline ID]`), so a create the API did not
confirm is looked for by listing: at once, by the background loop for a while after (`settle_pipeline_runs`),
and by a shell that waits on it (`check_run`); found, the run goes on as if it had been confirmed.

    pending ──▶ in_progress ──▶ completed | failed     (how the followed backup ended)
       │  └──▶ failed                                 (refused: no room, or the API said no; or never sent)
       └─────▶ unknown ──▶ in_progress                (the API did not confirm it; found by its tag)

Nothing here knows HTTP or Slack: bot/api.py answers pipelines, bot/__main__.py the shell, and the
Reporter (bot/slack/reports.py) tells the team.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.backup_api import MANUAL_LIMIT, Backup, BackupApiError, NotFound
from bot.clock import iso_seconds
from bot.ops.core import Accepted, Actor, Core, ReplyTo
from bot.ops.errors import KeyReused, MayHaveHappened, NoRoom, TokenNameTaken, TokenRefused
from bot.ops.writes import WRITE_SETTLE_SECONDS, classify
from bot.policy import Action
from bot.store import PipelineRun, PipelineToken, RunStatus

log = logging.getLogger(__name__)

TOKEN_PREFIX = "vbb_"
SELECTOR_LENGTH = 12  # hex characters
TOKEN_SHAPE = re.compile(r"vbb_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as HTTP headers carry it
RUN_ID = re.compile(r"[0-9a-f]{12}")
MAX_DESCRIPTION = 255  # the slash command's limit, and the API's
PIPELINE_PATH = "pipeline"
LOOK_FOR_SECONDS = 15 * 60  # how long the background loop looks for a create the API did not confirm
NO_ROOM, REFUSED = "no_room", "api"  # why a create was not done


def valid_token_name(name: str) -> bool:
    """A name the audit can show as `token:NAME`: letters, digits, `.`, `_`, `-`; at most 40."""
    return TOKEN_NAME.fullmatch(name) is not None


def token_hash(token: str) -> str:
    """A token is 256 random bits: one round of sha256 keeps it safe, and no one can work back to it."""
    return hashlib.sha256(token.encode()).hexdigest()


def request_hash(server_id: int, description: str) -> str:
    """What a request asked for, so a repeated Idempotency-Key can tell the same request from another one."""
    return hashlib.sha256(json.dumps([server_id, description]).encode()).hexdigest()


def run_id_for(actor_id: str, key: str) -> str:
    """The run of an Idempotency-Key: one id per token and key, so the store's key is the claim."""
    return hashlib.sha256(f"{actor_id}\n{key}".encode()).hexdigest()[:12]


def run_tag(run_id: str) -> str:
    return f"[pipeline {run_id}]"


def tagged(description: str, run_id: str) -> str:
    """The description sent to the API: the run's tag at its end (the words shortened if both would not fit)."""
    tag = run_tag(run_id)
    room = MAX_DESCRIPTION - len(tag) - 1
    words = description if len(description) <= room else description[: room - 1] + "…"
    return f"{words} {tag}" if words else tag


@dataclass(frozen=True)
class RunStarted:
    """A pipeline's call: its run, and whether this call made it (False: a repeated Idempotency-Key)."""

    run: PipelineRun
    new: bool


class RunReporter(Protocol):
    """Tells the team of a pipeline's run: as it starts, and when the background loop settles one."""

    async def run_started(self, run: PipelineRun) -> None: ...

    async def run_settled(self, run: PipelineRun) -> None: ...


class Pipelines(Core):
    """Pipeline tokens, and the backups pipelines ask for."""

    # --- tokens ----------------------------------------------------------------------

    async def add_token(self, actor: Actor, name: str, servers: frozenset[int]) -> str:
        """Make a token reaching `servers`; returns it (the only time anyone sees it)."""
        await self._authorize(actor, Action.TOKENS, None)
        if not valid_token_name(name) or not servers:
            raise ValueError("a token needs a valid name and at least one server")
        selector = secrets.token_hex(SELECTOR_LENGTH // 2)
        token = f"{TOKEN_PREFIX}{selector}_{secrets.token_urlsafe(32)}"
        listed = ", ".join(str(s) for s in sorted(servers))
        made = await self._db(
            self.store.add_token,
            name=name,
            selector=selector,
            hash=token_hash(token),
            servers=servers,
            made_by=actor.user_id,
        )
        if not made:
            await self._audit(actor, Action.TOKENS, "denied", detail=f"add {name}: the name is taken")
            raise TokenNameTaken(name)
        await self._audit(actor, Action.TOKENS, "done", detail=f"added {name} for servers {listed}")
        return token

    async def revoke_token(self, actor: Actor, name: str) -> bool:
        """Revoke a token at once; False if there is no live token of that name."""
        await self._authorize(actor, Action.TOKENS, None)
        revoked = await self._db(self.store.revoke_token, name, actor.user_id)
        detail = f"revoked {name}" if revoked else f"revoke {name}: no live token of that name"
        await self._audit(actor, Action.TOKENS, "done" if revoked else "failed", detail=detail)
        return revoked

    async def pipeline_tokens(self, actor: Actor) -> list[PipelineToken]:
        await self._authorize(actor, Action.TOKENS, None)
        tokens = await self._db(self.store.tokens)
        await self._audit(actor, Action.TOKENS, "done", detail=f"listed {len(tokens)} tokens")
        return tokens

    async def authenticate(self, presented: str | None, *, auditing: Action | None = None) -> PipelineToken:
        """The live token `presented` is, or TokenRefused (401). A revoked token's use is audited as it
        (under `auditing`, the action it was used for); an unknown one names no one, so it is only logged."""
        shape = TOKEN_SHAPE.fullmatch(presented or "")
        found = await self._db(self.store.token_by_selector, shape.group(1)) if shape else None
        expected = found.hash if found else token_hash(secrets.token_hex(16))
        if not hmac.compare_digest(expected, token_hash(presented or "")) or found is None:
            log.warning("pipeline API: a request with an unknown token was refused")
            raise TokenRefused(None)
        if found.revoked:
            if auditing is not None:
                await self._audit(Actor.token(found.name), auditing, "denied", detail="the token was revoked")
            raise TokenRefused(found.name, revoked=True)
        return found

    async def pipeline_refused(self, token: PipelineToken, detail: str, server_id: int | None = None) -> None:
        """A pipeline's request refused as bad input, before it could be a run: audited as the token."""
        await self._audit(Actor.token(token.name), Action.CREATE, "denied", server_id=server_id, detail=detail)

    # --- runs ---------------------------------------------------------------------

    async def pipeline_backup(
        self,
        actor: Actor,
        server_id: int,
        description: str = "",
        *,
        key: str | None = None,
        reach: frozenset[int] | None = None,
    ) -> RunStarted:
        """A backup a pipeline (a token reaching `reach`) or the shell (`reach` None: the actor's own rights)
        asked for: claimed as a run first, then created like any other. A repeated `key` answers with the
        first call's run, and takes no second backup."""
        if reach is None:
            await self._authorize(actor, Action.CREATE, server_id)
        elif server_id not in reach:
            listed = ", ".join(str(s) for s in sorted(reach))
            await self._audit(
                actor, Action.CREATE, "denied", server_id=server_id, detail=f"the token reaches only {listed}"
            )
            raise TokenRefused(actor.user_id.removeprefix("token:"), server_id=server_id)
        digest = request_hash(server_id, description)
        run, new = await self._db(
            self.store.claim_run,
            id=run_id_for(actor.user_id, key) if key else secrets.token_hex(6),
            actor=actor.user_id,
            server_id=server_id,
            server_name=(await self._db(self.store.server_names)).get(server_id),
            idempotency_key=key,
            request_hash=digest,
            description=description,
        )
        if not new:
            if run.actor != actor.user_id or run.request_hash != digest:
                detail = f"Idempotency-Key already used for another request (run {run.id})"
                await self._audit(actor, Action.CREATE, "denied", server_id=server_id, detail=detail)
                raise KeyReused(run.id)
            detail = f"repeated Idempotency-Key: answered with run {run.id}, no second backup"
            await self._audit(
                actor, Action.CREATE, "cancelled", server_id=server_id, backup_id=run.backup_id, detail=detail
            )
            return RunStarted(run, new=False)
        return RunStarted(await self._send_run(actor, run), new=True)

    async def _send_run(self, actor: Actor, run: PipelineRun) -> PipelineRun:
        """Create the run's backup and record how that went; an unconfirmed create is looked for at once."""
        try:
            created = await self._create(
                actor,
                run.server_id,
                tagged(run.description, run.id),
                follow=ReplyTo(None, None),  # the team hears of it in the server's channels
                path=PIPELINE_PATH,
                ref=run.id,
            )
        except NoRoom as exc:
            oldest = exc.oldest
            return await self._move_run(
                run,
                RunStatus.FAILED,
                refusal=NO_ROOM,
                detail=f"it already has {exc.count} of {MANUAL_LIMIT} manual backups",
                oldest=json.dumps(_oldest(oldest)) if oldest else None,
                server_name=oldest.server.name if oldest else run.server_name,
            )
        except MayHaveHappened as exc:
            why = exc.sent.why.english() if exc.sent.why else "no confirmation"
            run = await self._move_run(run, RunStatus.UNKNOWN, detail=why)
            return await self.check_run(run)
        except NotFound:
            detail = f"the backup API does not know server {run.server_id} (404)"
            return await self._move_run(run, RunStatus.FAILED, refusal=REFUSED, detail=detail)
        except BackupApiError as exc:
            _outcome, why = classify(exc)
            return await self._move_run(run, RunStatus.FAILED, refusal=REFUSED, detail=why.english())
        if isinstance(created, Accepted):
            detail = "its answer to the create could not be read"
            return await self.check_run(await self._move_run(run, RunStatus.UNKNOWN, detail=detail))
        return await self._adopt(run, created, follow=False)

    async def _move_run(self, run: PipelineRun, status: RunStatus, **fields) -> PipelineRun:
        """Record where a run now stands — kept until the store takes it, once the API has acted — and
        return it as it now stands."""
        final = iso_seconds(self._clock()) if status.final else None
        if final:
            fields.setdefault("finished_at", final)
        await self.durable.write(
            "pipeline run", self.store.move_run, run_id=run.id, old=(run.status,), new=status, **fields
        )
        values = {**fields, "oldest": json.loads(fields["oldest"]) if fields.get("oldest") else run.oldest}
        return dataclasses.replace(run, status=status, updated_at=self._clock().timestamp(), **values)

    async def _adopt(self, run: PipelineRun, backup: Backup, *, follow: bool = True) -> PipelineRun:
        """The run's backup, created (or found after the API did not confirm it): followed to its end."""
        if follow:
            await self.follow(Actor(run.actor, source=_source(run.actor)), backup, ReplyTo(None, None))
        if backup.is_running:
            status, detail = RunStatus.IN_PROGRESS, ""
        elif backup.is_restorable:
            status, detail = RunStatus.COMPLETED, ""
        else:
            status, detail = RunStatus.FAILED, f"backup #{backup.id} ended {backup.status}"
        return await self._move_run(
            run, status, backup_id=backup.id, server_name=backup.server.name, detail=detail, refusal=None
        )

    async def pipeline_run(self, actor: Actor, run_id: str) -> PipelineRun | None:
        """A run as it stands now, if this actor asked for it (another token's run does not exist for it)."""
        if not RUN_ID.fullmatch(run_id):
            return None
        run = await self._db(self.store.pipeline_run, run_id)
        return run if run is not None and run.actor == actor.user_id else None

    async def check_run(self, run: PipelineRun) -> PipelineRun:
        """One look at the backup API for a run that is not final: how its backup stands, or, when the API
        did not confirm its create, whether it is there after all (found by its tag). A failed look changes
        nothing."""
        try:
            listed = await self.api.list_backups(run.server_id, "manual")
        except BackupApiError as exc:
            log.info("could not look at run %s now: %s", run.id, exc)
            return run
        if run.status is RunStatus.UNKNOWN:
            tag = run_tag(run.id)
            found = [b for b in listed if b.description.endswith(tag)]
            if len(found) != 1:
                return run
            actor = Actor(run.actor, source=_source(run.actor))
            detail = f"found by its tag: the create the backup API did not confirm happened (run {run.id})"
            await self._audit(
                actor, Action.CREATE, "done", server_id=run.server_id, backup_id=found[0].id, detail=detail
            )
            return await self._adopt(run, found[0])
        if run.status is RunStatus.IN_PROGRESS and run.backup_id is not None:
            backup = next((b for b in listed if b.id == run.backup_id), None)
            if backup is None:
                detail = f"backup #{run.backup_id} is no longer in the backup API's list"
                return await self._move_run(run, RunStatus.FAILED, detail=detail)
            if not backup.is_running:
                return await self._adopt(run, backup, follow=False)
        return run

    async def settle_pipeline_runs(self) -> list[PipelineRun]:
        """The background loop's part (leader only: it asks the API). A run left pending by a bot that died is
        settled from its write's record, by looking if need be; a create the API did not confirm is looked
        for by its tag for LOOK_FOR_SECONDS. Each run returned moved on, once."""
        now = self._clock().timestamp()
        moved = []
        for run in await self._db(self.store.runs_in, RunStatus.PENDING, updated_before=now - WRITE_SETTLE_SECONDS):
            settled = await self._settle_pending(run)
            if settled is not None:
                moved.append(settled)
        recent = now - LOOK_FOR_SECONDS
        for run in await self._db(self.store.runs_in, RunStatus.UNKNOWN, updated_before=now, updated_after=recent):
            looked = await self.check_run(run)
            if looked.status is not RunStatus.UNKNOWN:
                moved.append(looked)
        return moved

    async def _settle_pending(self, run: PipelineRun) -> PipelineRun | None:
        records = await self._db(self.store.writes_for, run.id)
        if not records:  # claimed, and nothing sent: the bot (or the store) stopped before the create
            detail = "the bot stopped before it asked for the backup: none was created"
            if await self._db(self.store.move_run, run.id, (RunStatus.PENDING,), RunStatus.FAILED, detail=detail):
                return await self._db(self.store.pipeline_run, run.id)
            return None
        sent = await self.settle_recorded(records[-1], f"pipeline run {run.id}", older_than=WRITE_SETTLE_SECONDS)
        if sent is None:
            return None
        if sent.done and sent.backup is not None:
            return await self._adopt(run, sent.backup)
        if sent.done or sent.unknown:
            why = sent.why.english() if sent.why else "its answer could not be read"
            return await self.check_run(await self._move_run(run, RunStatus.UNKNOWN, detail=why))
        why = sent.why.english() if sent.why else "it was not done"
        return await self._move_run(run, RunStatus.FAILED, refusal=REFUSED, detail=why)


def _source(actor_id: str) -> str:
    return "token" if actor_id.startswith("token:") else "cli"


def _oldest(backup: Backup) -> dict:
    return {"id": backup.id, "created_at": iso_seconds(backup.created_at), "description": backup.description}


# --- one line for a CI log -------------------------------------------------------------------


def compact_duration(seconds: float) -> str:
    """`45s`, `2m05s`, `1h02m`: how long a backup took, as a CI log shows it."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def run_line(run: PipelineRun, now: datetime) -> str:
    """How a run stands, in one line of English for a CI log (the HTTP API's `message`, the shell's output)."""
    server = f"{run.server_name} ({run.server_id})" if run.server_name else f"server {run.server_id}"
    started = datetime.fromisoformat(run.created_at)
    ended = datetime.fromisoformat(run.finished_at) if run.finished_at else now
    took = compact_duration((ended - started).total_seconds())
    backup = f"backup #{run.backup_id} of {server}"
    if run.status is RunStatus.PENDING:
        return f"backup of {server} asked for; the backup API has not answered yet (run {run.id})"
    if run.status is RunStatus.IN_PROGRESS:
        return f"{backup}: in progress for {took}"
    if run.status is RunStatus.COMPLETED:
        return f"{backup}: completed in {took}"
    if run.status is RunStatus.UNKNOWN:
        return (
            f"backup of {server}: outcome unknown, the backup API did not confirm the create ({run.detail}). "
            "It may have been created: "
            f"check the server's manual backups before trying again (run {run.id})"
        )
    if run.refusal == NO_ROOM:
        oldest = run.oldest
        text = f"no backup of {server}: {run.detail}, the most VPS.org keeps"
        if oldest:
            described = f", “{oldest['description']}”" if oldest.get("description") else ""
            taken = datetime.fromisoformat(oldest["created_at"]).strftime("%Y-%m-%d %H:%M UTC")
            text += f". The oldest manual one is #{oldest['id']} (taken {taken}{described}): delete one"
        return text + " to make room, then try again"
    if run.backup_id is None:
        return f"no backup of {server} was created: {run.detail}"
    return f"{backup}: failed after {took}: {run.detail}"
