"""The /backup slash command: parse, ack, one use case, render, reply.

Help and malformed input are answered in the ack itself (no I/O needed); the
rest is acked at once, with the work done after and the reply sent through
the command's response_url, so Slack's 3-second deadline is never at stake.

`RUNNERS` gives each Action of the subcommand table (bot/parsing.py) its one
use case and rendering; a test checks every subcommand has one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp

from bot.backup_api import Backup
from bot.i18n import speaking
from bot.ops import Accepted, Actor, PolicyChange, ReplyTo
from bot.parsing import Command, UsageError, parse_command
from bot.policy import Action
from bot.schedule import Schedule, clock_time
from bot.slack.policy_form import open_form, policy_outcome
from bot.slack.replies import Deps, Outcome, answer
from bot.slack.views import messages, policies, watching
from bot.slack.views.errors import usage_error_message
from bot.store import AuditSearch, Confirmation, StoreUnavailable


@dataclass(frozen=True)
class Invocation:
    """Who typed the command, and where."""

    actor: Actor
    channel_id: str | None
    response_url: str
    trigger_id: str = ""


Runner = Callable[[Deps, Command, Invocation], Awaitable[Outcome | None]]


def ephemeral(message: dict) -> dict:
    return {"response_type": "ephemeral", **message}


async def _list(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    listing = await deps.ops.list_backups(it.actor, cmd.server_id, cmd.backup_type)
    return Outcome(messages.listing_message(listing, deps.clock()))


async def _servers(deps: Deps, _cmd: Command, it: Invocation) -> Outcome:
    return Outcome(messages.servers_message(await deps.ops.servers(it.actor)))


async def _create(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    follow = ReplyTo(channel_id=it.channel_id, response_url=it.response_url)
    backup = await deps.ops.create_backup(it.actor, cmd.server_id, cmd.description, follow=follow)
    return created_outcome(deps, it.actor.user_id, backup)


def created_outcome(deps: Deps, user_id: str, backup: Backup | Accepted) -> Outcome:
    """The reply to a create, and its announcement (also after making room)."""
    if isinstance(backup, Accepted):
        announce = messages.announce_accepted(user_id, backup)
        return Outcome(messages.accepted_message(backup), [announce], server_id=backup.server_id)
    return Outcome(
        messages.created_message(backup, deps.clock()),
        [messages.announce_created(user_id, backup)],
        server_id=backup.server.id,
    )


async def _delete(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    conf = await deps.ops.request_delete(it.actor, cmd.backup_id)
    return await delete_confirmation(deps, conf)


async def delete_confirmation(deps: Deps, conf: Confirmation) -> Outcome:
    """The delete to confirm, knowing whether the two-person rule holds (then there is no undo window)."""
    ruled = await deps.ops.needs_approval(conf.server_id, conf.target_server_id)
    return Outcome(messages.delete_confirmation_message(conf, deps.ops.delete_grace.total_seconds(), ruled=ruled))


async def _restore(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    conf = await deps.ops.request_restore(it.actor, cmd.backup_id, cmd.server_id)
    return Outcome(messages.restore_confirmation_message(conf, deps.clock()))


async def _grant(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    await deps.ops.grant(it.actor, cmd.user_id, cmd.server_id, cmd.role)
    return Outcome(messages.granted_message(cmd.user_id, cmd.server_id, cmd.role.label))


async def _revoke(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    removed = await deps.ops.revoke(it.actor, cmd.user_id, cmd.server_id)
    return Outcome(messages.revoked_message(cmd.user_id, cmd.server_id, removed))


async def _audit(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    search = AuditSearch(**dict(cmd.filters))
    return Outcome(messages.audit_message(await deps.ops.audit_log(it.actor, cmd.limit, search)))


async def _approvals(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    changed = await deps.ops.set_approvals(it.actor, cmd.server_id, cmd.switch)
    return Outcome(messages.approvals_set_message(cmd.server_id, cmd.switch, changed))


async def _channels(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    if cmd.channel_id is None:
        channels = await deps.ops.channels(it.actor, cmd.server_id)
        return Outcome(messages.channels_message(cmd.server_id, channels))

    async def can_post(channel_id: str, server_id: int):
        return await deps.notifier.can_post(channel_id, messages.announce_channel_bound(server_id, it.actor.user_id))

    changed = await deps.ops.bind_channel(
        it.actor, cmd.server_id, cmd.channel_id, bound=bool(cmd.switch), can_post=can_post
    )
    channels = await deps.ops.channels(it.actor, cmd.server_id)
    return Outcome(messages.channels_message(cmd.server_id, channels, changed=(cmd.channel_id, cmd.switch, changed)))


async def _language(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    """Show the person's language, or set it; the answer comes in the language now in force."""
    if cmd.language is None:
        return Outcome(messages.language_message(await deps.ops.language_of(it.actor.user_id), None))
    changed = await deps.ops.set_language(it.actor, cmd.language)
    with speaking(cmd.language):
        return Outcome(messages.language_message(cmd.language, changed))


async def _status(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    statuses = await deps.ops.status(it.actor, cmd.server_id)
    return Outcome(watching.status_message(statuses, deps.clock()))


async def _policy(deps: Deps, cmd: Command, it: Invocation) -> Outcome | None:
    """`policy SERVER …`, `policies`, `pin`, `unpin`: one runner, by what is done (`cmd.word`)."""
    ops, user = deps.ops, it.actor.user_id
    reply_to = ReplyTo(channel_id=it.channel_id, response_url=it.response_url)
    if cmd.word == "stale":
        before = await ops.set_stale_hours(it.actor, cmd.server_id, cmd.hours)
        return Outcome(watching.stale_set_message(cmd.server_id, cmd.hours, before, ops.stale_hours))
    if cmd.word == "show":
        return Outcome(policies.policy_message(await ops.policy_view(it.actor, cmd.server_id)))
    if cmd.word == "list":
        return Outcome(policies.policies_message(await ops.policy_views(it.actor)))
    if cmd.word == "edit":
        return await open_form(deps, deps.notifier.client, it.actor, cmd.server_id, it.trigger_id, reply_to)
    if cmd.word in ("pin", "unpin"):
        pinned = cmd.word == "pin"
        backup, changed = await ops.pin_backup(it.actor, cmd.backup_id, pinned=pinned)
        return Outcome(policies.pinned_message(backup, pinned, changed))
    if cmd.word == "pause":
        policy = await ops.pause_policy(
            it.actor, cmd.server_id, hours=cmd.pause_hours, until=cmd.pause_until, reason=cmd.description
        )
        return Outcome(
            policies.state_message(policy), [policies.announce_paused(user, policy)], server_id=cmd.server_id
        )
    if cmd.word == "resume":
        policy = await ops.resume_policy(it.actor, cmd.server_id)
        return Outcome(
            policies.resumed_message(policy), [policies.announce_resumed(user, policy)], server_id=cmd.server_id
        )
    if cmd.word == "off":
        policy = await ops.policy_off(it.actor, cmd.server_id)
        return Outcome(policies.state_message(policy), [policies.announce_off(user, policy)], server_id=cmd.server_id)
    if cmd.word == "run":
        run = await ops.run_policy_now(it.actor, cmd.server_id)
        return Outcome(policies.run_started_message(run))
    change = PolicyChange(
        cadence=cmd.cadence,
        days=cmd.days,
        at_time=cmd.at_time,
        every_hours=cmd.every_hours,
        zone=cmd.zone,
        keep=cmd.keep,
    )
    return policy_outcome(deps, user, await ops.set_policy(it.actor, cmd.server_id, change, reply_to=reply_to))


async def _digest(deps: Deps, cmd: Command, it: Invocation) -> Outcome:
    if cmd.channel_id is None:
        return Outcome(watching.digests_message(await deps.ops.digests(it.actor)))
    if not cmd.switch:
        changed = await deps.ops.set_digest(it.actor, cmd.channel_id, None)
        return Outcome(watching.digest_set_message(cmd.channel_id, None, changed))
    zone_name = cmd.zone or deps.ops.timezone
    schedule = Schedule(cmd.cadence, clock_time(cmd.at_time), zone_name, days=cmd.days)

    async def can_post(channel_id: str, _server: int):
        return await deps.notifier.can_post(channel_id, watching.digest_hello(it.actor.user_id, schedule))

    await deps.ops.set_digest(it.actor, cmd.channel_id, schedule, can_post=can_post)
    words = watching.schedule_words(cmd.cadence, cmd.days, cmd.at_time, zone_name)
    return Outcome(watching.digest_set_message(cmd.channel_id, words, True))


RUNNERS: dict[Action, Runner] = {
    Action.STATUS: _status,
    Action.POLICY: _policy,
    Action.DIGEST: _digest,
    Action.CHANNELS: _channels,
    Action.APPROVALS: _approvals,
    Action.LIST: _list,
    Action.SERVERS: _servers,
    Action.CREATE: _create,
    Action.DELETE: _delete,
    Action.RESTORE: _restore,
    Action.GRANT: _grant,
    Action.REVOKE: _revoke,
    Action.AUDIT: _audit,
    Action.LANGUAGE: _language,
}


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/backup")
    async def backup_command(ack, command: dict) -> None:
        """Acked before anything is read; everything said is in the person's language (announcements in the
        team's), and who they are is read once, with their role on the command's server."""
        user_id = command.get("user_id")
        text = command.get("text") or ""
        try:
            cmd = parse_command(text)  # what parses needs no words; a problem is put in theirs below
        except UsageError:
            async with deps.ops.speaking_to(user_id):
                try:
                    cmd = parse_command(text)
                except UsageError as exc:
                    await ack(**ephemeral(usage_error_message(exc)))
                    return
        if cmd.action is Action.HELP:
            async with deps.ops.speaking_to(user_id):
                try:
                    is_admin, role = await deps.ops.standing(Actor(command["user_id"]))
                except StoreUnavailable:
                    is_admin, role = True, None  # the store is busy: show everything rather than nothing
                await ack(**ephemeral(messages.help_message(is_admin, role)))
            return
        await ack()
        async with deps.ops.speaking_to(user_id, cmd.server_id):
            await _run(cmd, command)

    async def _run(cmd: Command, command: dict) -> None:
        channel_id = command.get("channel_id")
        it = Invocation(
            Actor(command["user_id"], channel_id=channel_id),
            channel_id,
            command["response_url"],
            str(command.get("trigger_id") or ""),
        )

        async def work() -> Outcome | None:
            return await RUNNERS[cmd.action](deps, cmd, it)

        async def send(message: dict) -> None:
            await deps.responses.send(it.response_url, message)

        await answer(deps, work, send, channel_id=it.channel_id, kind="command", user_id=it.actor.user_id)
