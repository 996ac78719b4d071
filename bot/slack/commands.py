"""The /backup slash command: parse, ack, one use case, render, reply.

Help and malformed input are answered in the ack itself (no I/O needed); the
rest is acked at once, with the work done after and the reply sent through
the command's response_url, so Slack's 3-second deadline is never at stake.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.ops import Accepted, Actor, FollowTarget
from bot.parsing import Command, UsageError, parse_command
from bot.slack.replies import Deps, Outcome, answer
from bot.slack.views import messages
from bot.slack.views.errors import usage_error_message


def ephemeral(message: dict) -> dict:
    return {"response_type": "ephemeral", **message}


async def run_command(deps: Deps, cmd: Command, actor: Actor, channel_id: str, response_url: str) -> Outcome:
    ops, now = deps.ops, deps.clock()
    if cmd.name == "list":
        listing = await ops.list_backups(actor, cmd.server_id, cmd.backup_type)
        return Outcome(messages.listing_message(listing, now))
    if cmd.name == "servers":
        return Outcome(messages.servers_message(await ops.servers(actor)))
    if cmd.name == "create":
        follow = FollowTarget(channel_id=channel_id, response_url=response_url)
        backup = await ops.create_backup(actor, cmd.server_id, cmd.description, follow=follow)
        if isinstance(backup, Accepted):
            return Outcome(messages.accepted_message(backup), [messages.announce_accepted(actor.user_id, backup)])
        return Outcome(messages.created_message(backup, now), [messages.announce_created(actor.user_id, backup)])
    if cmd.name == "delete":
        return Outcome(messages.delete_confirmation_message(await ops.request_delete(actor, cmd.backup_id)))
    if cmd.name == "restore":
        conf = await ops.request_restore(actor, cmd.backup_id, cmd.server_id)
        return Outcome(messages.restore_confirmation_message(conf))
    if cmd.name == "grant":
        await ops.grant(actor, cmd.user_id, cmd.server_id, cmd.role)
        return Outcome(messages.granted_message(cmd.user_id, cmd.server_id, cmd.role.label))
    if cmd.name == "revoke":
        removed = await ops.revoke(actor, cmd.user_id, cmd.server_id)
        return Outcome(messages.revoked_message(cmd.user_id, cmd.server_id, removed))
    if cmd.name == "audit":
        return Outcome(messages.audit_message(await ops.audit_log(actor, cmd.limit)))
    raise UsageError(f"`{cmd.name}` is not a /backup command", "help")


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/backup")
    async def backup_command(ack, command: dict) -> None:
        try:
            cmd = parse_command(command.get("text") or "")
        except UsageError as exc:
            await ack(**ephemeral(usage_error_message(exc)))
            return
        if cmd.name == "help":
            await ack(**ephemeral(messages.help_message()))
            return
        await ack()
        actor = Actor(command["user_id"])
        channel_id = command.get("channel_id")
        response_url = command["response_url"]

        async def work() -> Outcome:
            return await run_command(deps, cmd, actor, channel_id, response_url)

        async def send(message: dict) -> None:
            await deps.responses.send(response_url, message)

        await answer(deps, work, send, channel_id=channel_id)
