"""The `vps-backup-bot` command line: parses arguments, calls into the package, prints.

Errors are put into words here, once, for the shell: bad input exits 2 with a
one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot import __version__
from bot.backup_api import ApiTimeout, BackupApiError, NotSent, Unavailable
from bot.clock import iso_seconds
from bot.config import ConfigError, Settings, load_settings
from bot.i18n import LANGUAGES
from bot.observe import configure_logging
from bot.ops import Actor, Awaiting, KeepTooMany, Operations, OpsError, PolicyChange, PolicyView
from bot.ops.pipelines import MAX_DESCRIPTION, NO_ROOM, run_line, valid_token_name
from bot.ops.timetable import keep_of, schedule_of, upcoming
from bot.parsing import UsageError, is_number, parse_channel, parse_command, parse_id, parse_user
from bot.policy import Action, Role
from bot.runtime import build_core
from bot.schedule import zone
from bot.store import AuditSearch, PolicyRun, RunStatus, StoreError, open_store

CLI_RETRY_SECONDS = 1.0


class CliError(Exception):
    """A refusal to print as one line, with an exit status."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def _role(text: str) -> Role:
    try:
        return Role.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _server(text: str) -> int:
    try:
        return parse_id(text, "server")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.problem.replace("`", "'")) from None


def _backup(text: str) -> int:
    try:
        return parse_id(text, "backup")
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.problem.replace("`", "'")) from None


def _user(text: str) -> str:
    if text.startswith("cli:"):
        return text
    try:
        return parse_user(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.problem.replace("`", "'")) from None


def _audited(text: str) -> str:
    """Whom the audit names: a person, or one who is not in Slack (`cli:LOGIN`, a pipeline's `token:NAME`)."""
    return text if text.startswith(("cli:", "token:", "policy:")) else _user(text)


def _positive(text: str) -> int:
    if not is_number(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def _channel(text: str) -> str:
    try:
        return parse_channel(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.problem.replace("`", "'")) from None


def _since(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01 (or 2026-11-01T12:00)") from None
    return iso_seconds(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _duration(text: str) -> float:
    """A wait: seconds (`90`, `90s`), minutes (`15m`) or hours (`1h`), at most a day."""
    found = re.fullmatch(r"(\d{1,6})([smh]?)", text.strip().lower())
    seconds = int(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)] if found else -1
    if not 0 <= seconds <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a wait like 90, 90s, 15m or 1h (at most a day)")
    return float(seconds)


def _token_name(text: str) -> str:
    if not valid_token_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a token name: letters, digits, '.', '_' and '-', at most 40, like deploy-prod"
        )
    return text


def _servers(text: str) -> frozenset[int]:
    servers = frozenset(_server(part.strip()) for part in text.split(",") if part.strip())
    if not servers:
        raise argparse.ArgumentTypeError("--servers needs at least one server ID, like 12345,12346")
    return servers


def _port(text: str) -> int:
    if not is_number(text) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vps-backup-bot",
        description="Manage VPS.org server backups from Slack.",
        epilog="Settings come from the environment or a .env file: see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="HTTP mode: Slack posts to POST /slack/events")
    p.add_argument("--port", type=_port, help="port to listen on (default: $PORT, else 3000)")
    p.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")

    sub.add_parser("socket", help="Socket Mode (needs SLACK_APP_TOKEN)")

    p = sub.add_parser("console", help="try the bot in a terminal, no Slack workspace needed")
    p.add_argument("--demo", action="store_true", help="use the built-in API simulator with sample data")
    p.add_argument("--user", type=_user, default="U0CONSOLE", help="the Slack user ID you act as")
    p.add_argument(
        "--lang", choices=LANGUAGES, help="the language the bot uses with you (as `/backup language` sets it)"
    )

    sub.add_parser(
        "migrate", help="bring the store's schema (SQLite or PostgreSQL) up to date, and say where it stands"
    )

    p = sub.add_parser("copy-store", help="copy this SQLite store (BACKUPBOT_DB) into an empty PostgreSQL store")
    p.add_argument("--to", required=True, metavar="URL", help="the PostgreSQL store: postgresql://user@host:port/db")

    p = sub.add_parser("fake-api", help="run the backup API simulator as an HTTP server")
    p.add_argument("--port", type=_port, default=8040, help="port (default 8040)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--token", help="accept only this bearer token (default: any non-empty one)")
    p.add_argument("--latency", type=_seconds, default=0.0, help="seconds added to every answer")
    p.add_argument("--complete-after", type=_seconds, default=20.0, help="seconds until a new backup completes")

    p = sub.add_parser("grant", help="give USER a role on SERVER")
    p.add_argument("user", type=_user, metavar="USER", help="Slack member ID (U…) or <@U…|name>")
    p.add_argument("server", type=_server, metavar="SERVER", help="server ID")
    p.add_argument("--role", type=_role, default=Role.OPERATOR, help="viewer, operator (default) or owner")

    p = sub.add_parser("revoke", help="take USER's role on SERVER away")
    p.add_argument("user", type=_user, metavar="USER")
    p.add_argument("server", type=_server, metavar="SERVER")

    p = sub.add_parser("grants", help="list roles, of everyone or of USER")
    p.add_argument("user", type=_user, nargs="?", metavar="USER")

    p = sub.add_parser("admin", help="add, remove or list admins kept in the store")
    p.add_argument("op", choices=["add", "remove", "list"])
    p.add_argument("user", type=_user, nargs="?", metavar="USER")

    p = sub.add_parser("channels", help="show a server's channels, or bind it to one (add) or unbind it (remove)")
    p.add_argument("server", type=_server, metavar="SERVER")
    p.add_argument("op", choices=["add", "remove"], nargs="?")
    p.add_argument("channel", type=_channel, nargs="?", metavar="CHANNEL", help="a channel ID (C…)")

    sub.add_parser("doctor", help="check the configuration end to end: Slack, the backup API, the store")

    p = sub.add_parser("status", help="is every server backed up: fresh, due or stale (exit 1 while any is stale)")
    p.add_argument("server", type=_server, nargs="?", metavar="SERVER", help="only this server")

    p = sub.add_parser(
        "policy",
        help="a server's backup policy: show it, or set it in /backup's words "
        "(daily 02:30 Europe/Berlin keep last 5 · every 6h · keep daily 7 weekly 2 · pause for 12h · resume · run · off)",
    )
    p.add_argument("server", type=_server, metavar="SERVER")
    p.add_argument("words", nargs="*", metavar="WORDS", help="as after `/backup policy SERVER`; none: show it")
    sub.add_parser("policies", help="every backup policy, with its next run")
    p = sub.add_parser("pin", help="keep a manual backup from any policy's pruning")
    p.add_argument("backup", type=_backup, metavar="BACKUP")
    p = sub.add_parser("unpin", help="let its policy prune a backup again")
    p.add_argument("backup", type=_backup, metavar="BACKUP")

    p = sub.add_parser("approvals", help="list the servers under the two-person rule, or turn it on or off for one")
    p.add_argument("server", type=_server, nargs="?", metavar="SERVER")
    p.add_argument("switch", choices=["on", "off"], nargs="?", metavar="on|off")

    p = sub.add_parser("token", help="pipeline tokens: add one (printed once), list them, revoke one")
    tokens = p.add_subparsers(dest="op", metavar="OP", required=True)
    t = tokens.add_parser("add", help="make a token for a pipeline; it is printed once, and only its hash is kept")
    t.add_argument("name", type=_token_name, metavar="NAME", help="what the audit and Slack call it, e.g. deploy-prod")
    t.add_argument("--servers", type=_servers, required=True, help="the servers it may back up: 12345,12346")
    tokens.add_parser("list", help="the tokens, their servers and whether they were revoked (never the tokens)")
    t = tokens.add_parser("revoke", help="revoke a token at once")
    t.add_argument("name", type=_token_name, metavar="NAME")

    p = sub.add_parser(
        "backup",
        help="take a manual backup and wait for it, as a pipeline does (exit 0 completed, 1 failed, 3 the wait "
        "ran out, 4 no room, 2 bad input)",
    )
    p.add_argument("server", type=_server, metavar="SERVER", help="server ID")
    p.add_argument("--description", default="", help=f"at most {MAX_DESCRIPTION} characters")
    p.add_argument(
        "--wait", type=_duration, default=900.0, help="how long to wait for it to complete: 90, 90s, 15m (default 15m)"
    )

    p = sub.add_parser("audit", help="read and search the audit log, newest first")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine-readable: one JSON array")
    form.add_argument("--csv", action="store_true", help="CSV with a header row, safe to open in a spreadsheet")
    p.add_argument("--limit", type=_positive, default=50, help="how many entries (default 50)")
    p.add_argument("--server", type=_server, help="only this server")
    p.add_argument("--user", type=_audited, help="only this person (U…, cli:LOGIN or token:NAME)")
    p.add_argument("--action", choices=sorted(a.value for a in Action), help="only this action")
    p.add_argument("--outcome", choices=["done", "denied", "failed", "cancelled"], help="only this outcome")
    p.add_argument("--since", type=_since, help="only entries at or after this date (YYYY-MM-DD) or time, UTC")
    return parser


def _cli_actor() -> Actor:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "shell"
    return Actor.cli(name)


def _with_ops(settings: Settings, work):
    """Run `work(ops, store)` as the CLI, with the bot's own rules (bot/runtime.py builds both): the audit
    entries it writes are in the store before this returns."""
    core = build_core(settings, background_seconds=CLI_RETRY_SECONDS)

    async def run():
        try:
            return await work(core.ops, core.store)
        finally:
            await core.aclose()

    return asyncio.run(run())


def cmd_grant(args, settings: Settings) -> int:
    async def work(ops: Operations, _store):
        await ops.grant(_cli_actor(), args.user, args.server, args.role)

    _with_ops(settings, work)
    print(f"{args.user} is now {args.role.label} on server {args.server}")
    return 0


def cmd_revoke(args, settings: Settings) -> int:
    async def work(ops: Operations, _store):
        return await ops.revoke(_cli_actor(), args.user, args.server)

    removed = _with_ops(settings, work)
    print(f"{args.user} {'no longer has a role' if removed else 'had no role'} on server {args.server}")
    return 0


def cmd_grants(args, settings: Settings) -> int:
    store = open_store(settings.db_path)
    try:
        grants = store.grants(args.user)
    finally:
        store.close()
    if not grants:
        print("no grants" + (f" for {args.user}" if args.user else ""))
        return 0
    print(f"{'USER':<14} {'SERVER':>10}  {'ROLE':<9} GRANTED BY / AT")
    for g in grants:
        print(f"{g.user_id:<14} {g.server_id:>10}  {g.role.label:<9} {g.granted_by} {g.granted_at}")
    return 0


def cmd_approvals(args, settings: Settings) -> int:
    if args.server is not None and args.switch is None:
        raise CliError("approvals SERVER needs on or off (or give no SERVER to list them)")

    async def work(ops: Operations, _store):
        if args.server is None:
            return await ops.approval_rules()
        return await ops.set_approvals(_cli_actor(), args.server, args.switch == "on")

    result = _with_ops(settings, work)
    if args.server is None:
        if not result:
            print("no server is under the two-person rule")
        for server_id, set_by in sorted(result.items()):
            print(f"{server_id}  two-person rule on (set by {set_by})")
        return 0
    state = "now" if result else "already"
    print(f"the two-person rule is {state} {args.switch} for server {args.server}")
    return 0


def cmd_channels(args, settings: Settings) -> int:
    if (args.op is None) != (args.channel is None):
        raise CliError("channels SERVER takes add or remove together with a CHANNEL, or neither")

    async def work(ops: Operations, _store):
        if args.op is not None:
            can_post = _slack_can_post(settings, _cli_actor().user_id)
            await ops.bind_channel(_cli_actor(), args.server, args.channel, bound=args.op == "add", can_post=can_post)
        return await ops.channels(_cli_actor(), args.server)

    channels = _with_ops(settings, work)
    print(f"server {args.server}: " + (", ".join(channels) if channels else "no channels (run from anywhere)"))
    return 0


def _slack_can_post(settings: Settings, user_id: str):
    """From the shell, the bot checks a channel as in Slack: it posts there, with its own token."""

    async def can_post(channel_id: str, server_id: int):
        from slack_sdk.web.async_client import AsyncWebClient

        from bot import i18n
        from bot.slack.notifier import post_once
        from bot.slack.views.messages import announce_channel_bound

        if not settings.slack_bot_token:
            return i18n.Words(i18n.N_("SLACK_BOT_TOKEN is not set, so I cannot check the channel"))
        with i18n.speaking(settings.language, settings.language):
            message = announce_channel_bound(server_id, user_id)
        return await post_once(
            AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url), channel_id, message
        )

    return can_post


def cmd_status(args, settings: Settings) -> int:
    """One line per server; exit 1 while any is stale, so cron and monitoring can act on it."""

    async def work(ops: Operations, _store):
        return await ops.status(_cli_actor(), args.server)

    statuses = _with_ops(settings, work)
    now = datetime.now(UTC)
    for s in statuses:
        newest = (
            f"newest #{s.newest.id} ({s.newest.backup_type}) {_age(now - s.newest.created_at)} ago"
            if s.newest
            else "no completed backup"
        )
        alerts = f"  alerts: {', '.join(a.kind.value for a in s.alerts)}" if s.alerts else ""
        print(
            f"{s.server_id}  {s.name or '?':<20} {s.state.value:<5}  {newest}  manual {s.manual_used}/10"
            f"  stale after {s.threshold_hours:g}h{alerts}"
        )
    return 1 if any(s.state.value == "stale" for s in statuses) else 0


def cmd_policy(args, settings: Settings) -> int:
    """`policy SERVER [WORDS…]`: the same words, parser and use cases as `/backup policy`."""
    try:
        cmd = parse_command(" ".join(["policy", str(args.server), *args.words]))
    except UsageError as exc:
        usage = f" (usage: {exc.usage.removeprefix('/backup ')})" if exc.usage else ""
        raise CliError(exc.problem.replace("`", "'") + usage) from None
    if cmd.word == "edit":
        raise CliError("the form is in Slack; here, say the change: policy SERVER daily 02:30 keep last 5")
    actor = _cli_actor()

    async def work(ops: Operations, _store):
        if cmd.word == "show":
            return await ops.policy_view(actor, cmd.server_id)
        if cmd.word == "stale":
            await ops.set_stale_hours(actor, cmd.server_id, cmd.hours)
            return f"server {cmd.server_id} is stale after {cmd.hours:g} hours without a completed backup"
        if cmd.word == "pause":
            return await ops.pause_policy(
                actor, cmd.server_id, hours=cmd.pause_hours, until=cmd.pause_until, reason=cmd.description
            )
        if cmd.word == "resume":
            return await ops.resume_policy(actor, cmd.server_id)
        if cmd.word == "off":
            return await ops.policy_off(actor, cmd.server_id)
        if cmd.word == "run":
            return await ops.run_policy_now(actor, cmd.server_id)
        change = PolicyChange(cmd.cadence, cmd.days, cmd.at_time, cmd.every_hours, cmd.zone, cmd.keep)
        return await ops.set_policy(actor, cmd.server_id, change)

    result = _with_ops(settings, work)
    if isinstance(result, str):
        print(result)
    elif isinstance(result, PolicyView):
        print("\n".join(policy_lines(result)))
    elif isinstance(result, PolicyRun):
        backup = f", backup #{result.backup_id}" if result.backup_id else ""
        maybe = " (not confirmed by the API: it may have been created; it is looked for by its tag)"
        print(
            f"run r{result.id} of server {result.server_id}'s policy: {result.state}{backup}"
            + (maybe if result.state == "creating" else "")
        )
        return 1 if result.state in ("failed", "skipped") else 0
    elif isinstance(result, Awaiting):
        print(
            f"a lower keep on server {cmd.server_id} needs a second person's approval in Slack "
            f"(the two-person rule); request {result.request.id} waits"
        )
    else:
        print(
            "\n".join(policy_lines(PolicyView(result.server_id, None, result, upcoming(result, datetime.now(UTC), 5))))
        )
    return 0


def policy_lines(view: PolicyView) -> list[str]:
    """A policy in plain lines for the shell: schedule, keep, state, next runs, last run, budget, next prune."""
    policy = view.policy
    if policy is None:
        return [f"server {view.server_id} has no backup policy (set one: policy {view.server_id} daily 02:00)"]
    lines = [
        f"server {view.server_id} {view.name or ''}".rstrip()
        + f": {schedule_of(policy).words()}, {keep_of(policy).words()}, {policy.state}"
    ]
    if policy.state == "paused" and policy.paused_until:
        until = datetime.fromtimestamp(policy.paused_until, UTC).isoformat(timespec="minutes")
        lines.append(f"  paused until {until}" + (f": {policy.pause_reason}" if policy.pause_reason else ""))
    zone_info = zone(policy.zone)
    lines += [
        f"  next run {moment.astimezone(zone_info):%Y-%m-%d %H:%M %Z} ({policy.zone})" for moment in view.next_runs
    ]
    if view.last_run is not None:
        run = view.last_run
        slot = datetime.fromtimestamp(run.slot, UTC).astimezone(zone_info)
        lines.append(
            f"  last run {slot:%Y-%m-%d %H:%M %Z}: {run.state}"
            + (f", backup #{run.backup_id}" if run.backup_id else "")
            + (f", pruned {', '.join(f'#{i}' for i in run.pruned)}" if run.pruned else "")
        )
    if view.budget is not None:
        b = view.budget
        lines.append(
            f"  slots: {len(view.own)} its own; 10 - {b.reserved} reserved - {b.other} other - 1 = room for {max(b.fits, 0)}"
        )
    if view.prune is not None and view.budget is not None:
        doomed = ", ".join(f"#{i}" for i in view.prune.delete) or "nothing"
        lines.append(f"  after the next run completes, it deletes {doomed}")
    if view.pinned:
        lines.append(f"  pinned: {', '.join(f'#{i}' for i in sorted(view.pinned))}")
    return lines


def cmd_policies(_args, settings: Settings) -> int:
    async def work(ops: Operations, _store):
        return await ops.policy_views(_cli_actor())

    views = _with_ops(settings, work)
    if not views:
        print("no server has a backup policy")
    for view in views:
        print("\n".join(policy_lines(view)))
    return 0


def cmd_pin(args, settings: Settings) -> int:
    pinned = args.command == "pin"

    async def work(ops: Operations, _store):
        return await ops.pin_backup(_cli_actor(), args.backup, pinned=pinned)

    backup, changed = _with_ops(settings, work)
    state = "pinned: no policy prunes it" if pinned else "unpinned: its policy may prune it again"
    print(f"backup #{backup.id} of server {backup.server.id} is {state}" + ("" if changed else " (it already was)"))
    return 0


def _age(age) -> str:
    minutes = int(age.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes}m" if hours else f"{minutes}m"


def cmd_doctor(_args, settings: Settings) -> int:
    from bot.doctor import report, run_checks

    return report(asyncio.run(run_checks(settings)))


def cmd_admin(args, settings: Settings) -> int:
    if args.op == "list":
        store = open_store(settings.db_path)
        try:
            stored = sorted(store.admins())
        finally:
            store.close()
        print("from BACKUPBOT_ADMINS: " + (", ".join(sorted(settings.admins)) or "none"))
        print("in the store: " + (", ".join(stored) or "none"))
        return 0
    if not args.user:
        raise CliError(f"admin {args.op} needs a USER (a Slack member ID like U123)")
    adding = args.op == "add"

    async def work(ops: Operations, _store):
        return await ops.set_admin(_cli_actor(), args.user, admin=adding)

    changed = _with_ops(settings, work)
    if adding:
        print(f"{args.user} is now an admin" if changed else f"{args.user} was already an admin")
    else:
        print(f"{args.user} is no longer an admin" if changed else f"{args.user} was not an admin in the store")
    return 0


# A cell a spreadsheet may read as a formula (OWASP's list: = + - @, and a tab or carriage return before one).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet will not run: text starting with = + - @, a tab or a carriage return gets a leading '."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def cmd_audit(args, settings: Settings) -> int:
    user = args.user
    search = AuditSearch(args.server, user, args.action, args.outcome, args.since)

    async def work(ops: Operations, _store):
        return await ops.audit_log(_cli_actor(), args.limit, search)

    entries = _with_ops(settings, work)
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\r\n")
        columns = ["id", "at", "user_id", "action", "server_id", "backup_id", "outcome", "detail", "source"]
        writer.writerow(columns)
        for e in entries:
            writer.writerow([spreadsheet_safe(e.as_dict()[c]) for c in columns])
        return 0
    if not entries:
        print("the audit log is empty")
        return 0
    for e in entries:
        target = (f" backup {e.backup_id}" if e.backup_id else "") + (f" server {e.server_id}" if e.server_id else "")
        detail = f"  ({e.detail_line})" if e.detail else ""
        print(f"{e.at}  {e.outcome:<9} {e.user_id:<14} {e.action:<8}{target} [{e.source}]{detail}")
    return 0


def cmd_token(args, settings: Settings) -> int:
    async def work(ops: Operations, _store):
        if args.op == "add":
            return await ops.add_token(_cli_actor(), args.name, args.servers)
        if args.op == "revoke":
            return await ops.revoke_token(_cli_actor(), args.name)
        return await ops.pipeline_tokens(_cli_actor())

    result = _with_ops(settings, work)
    if args.op == "add":
        print(result)
        listed = ", ".join(str(s) for s in sorted(args.servers))
        print(
            f"token {args.name} reaches servers {listed}. This is the only time it is shown: put it in your CI's "
            "secret store (README: Pipelines). The bot keeps only its hash.",
            file=sys.stderr,
        )
        return 0
    if args.op == "revoke":
        if not result:
            raise CliError(f"there is no live token named {args.name} (`vps-backup-bot token list` shows them)")
        print(f"token {args.name} is revoked: calls with it are refused from now on")
        return 0
    if not result:
        print("no pipeline tokens (`vps-backup-bot token add NAME --servers ID,...` makes one)")
        return 0
    print(f"{'NAME':<24} {'SERVERS':<24} {'MADE BY / AT':<40} STATE")
    for t in result:
        state = f"revoked {t.revoked_at} by {t.revoked_by}" if t.revoked else "live"
        servers = ",".join(str(s) for s in sorted(t.servers))
        print(f"{t.name:<24} {servers:<24} {t.made_by + ' ' + t.made_at:<40} {state}")
    return 0


# Exit statuses of `backup`, for a pipeline to act on.
COMPLETED, FAILED, WAIT_RAN_OUT, NO_ROOM_LEFT = 0, 1, 3, 4


def cmd_backup(args, settings: Settings) -> int:
    """A backup as a pipeline takes one, from the shell: created like any other (audited as the person at the
    shell, announced, followed by the bot), then waited on by looking at the backup API; one line says how it
    ended, and the exit status says it too."""
    settings.require("vps_api_token")
    if len(args.description) > MAX_DESCRIPTION:
        raise CliError(f"--description is {len(args.description)} characters: at most {MAX_DESCRIPTION}")
    every = min(max(settings.poll_seconds, 1.0), 10.0)

    async def work(ops: Operations, _store):
        run = (await ops.pipeline_backup(_cli_actor(), args.server, args.description)).run
        problem = await _announce_run(settings, ops, run)
        if problem:
            print(f"note: {problem}", file=sys.stderr)
        deadline = asyncio.get_running_loop().time() + args.wait
        while run.status in (RunStatus.IN_PROGRESS, RunStatus.UNKNOWN, RunStatus.PENDING):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.sleep(min(every, left))
            run = await ops.check_run(run)
        return run

    run = _with_ops(settings, work)
    print(run_line(run, datetime.now(UTC)), flush=True)
    if run.status is RunStatus.COMPLETED:
        return COMPLETED
    if run.status is RunStatus.FAILED:
        return NO_ROOM_LEFT if run.refusal == NO_ROOM else FAILED
    if run.status is RunStatus.UNKNOWN:
        return FAILED  # the backup API did not confirm it, and it was not found: the line says it may exist
    return WAIT_RAN_OUT


async def _announce_run(settings: Settings, ops: Operations, run) -> str | None:
    """Tell the team, as the bot would, when the shell has Slack's settings: through the outbox, so a bot
    sharing the store delivers it if Slack cannot take it now. Returns a problem to mention, if any."""
    if not settings.slack_bot_token:
        return None
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.clock import utc_now
    from bot.observe import Metrics
    from bot.slack.home import HomePages
    from bot.slack.notifier import ResponseUrls, SlackNotifier
    from bot.slack.reports import SlackReporter

    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    notifier = SlackNotifier(client, ops.store, settings.notify_channel, ResponseUrls(settings.slack_api_url))
    reporter = SlackReporter(ops, notifier, HomePages(ops, client, utc_now, Metrics()))
    try:
        await reporter.run_started(run)
    except Exception as exc:  # noqa: BLE001 - the backup was taken; telling Slack is secondary
        return f"the team could not be told in Slack ({type(exc).__name__})"
    return None


def cmd_fake_api(args, _settings: Settings) -> int:
    from bot.sim.fake_api import BackupSimulator, run_simulator_forever

    sim = BackupSimulator(token=args.token, latency=args.latency, completion_seconds=args.complete_after)

    def ready(url: str) -> None:
        auth = "only the token given with --token" if args.token else "any non-empty bearer token"
        print(f"backup API simulator on {url} (accepts {auth}); Ctrl-C stops it", flush=True)

    try:
        run_simulator_forever(sim, args.host, args.port, ready)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    return 0


def cmd_serve(args, settings: Settings) -> int:
    if args.port:
        settings = settings.with_overrides(port=args.port)
    settings.require("slack_bot_token", "slack_signing_secret", "vps_api_token")
    from bot.server import CannotStart, SlackRefused, run_http

    try:
        run_http(settings, host=args.host)
    except (CannotStart, SlackRefused) as exc:
        raise CliError(str(exc), status=1) from None
    return 0


def cmd_socket(_args, settings: Settings) -> int:
    settings.require("slack_bot_token", "slack_app_token", "vps_api_token")
    from bot.server import CannotStart, SlackRefused, run_socket

    try:
        run_socket(settings)
    except (CannotStart, SlackRefused) as exc:
        raise CliError(str(exc), status=1) from None
    return 0


def cmd_migrate(_args, settings: Settings) -> int:
    """Opening a store migrates it (also at every start); this does only that, and says so."""
    store = open_store(settings.db_path)
    try:
        print(f"the store {store.path} is at schema version {store.schema_version()}")
    finally:
        store.close()
    return 0


def cmd_copy_store(args, settings: Settings) -> int:
    from bot.store import is_postgres_url
    from bot.store.postgres import PgStore, copy_store

    if is_postgres_url(settings.db_path):
        raise CliError("BACKUPBOT_DB is already a PostgreSQL store: copy-store copies a SQLite store into one")
    if not is_postgres_url(args.to):
        raise CliError(f"--to must be a postgresql:// URL, not {args.to!r}")
    if not Path(settings.db_path).is_file():
        raise CliError(f"BACKUPBOT_DB={settings.db_path}: there is no SQLite store there to copy")
    source = open_store(settings.db_path)
    try:
        target = PgStore(args.to)
        try:
            copied = copy_store(source, target)
        finally:
            target.close()
    finally:
        source.close()
    for table, count in copied.items():
        print(f"{table:<18} {count:>8} rows")
    print(f"copied {sum(copied.values())} rows from {settings.db_path} into {target.path}; point BACKUPBOT_DB at it")
    return 0


def cmd_console(args, settings: Settings) -> int:
    if not args.demo:
        settings.require("vps_api_token")
    from bot.console import run_console

    return run_console(settings, demo=args.demo, user_id=args.user, language=args.lang)


COMMANDS = {
    "serve": cmd_serve,
    "socket": cmd_socket,
    "console": cmd_console,
    "fake-api": cmd_fake_api,
    "grant": cmd_grant,
    "revoke": cmd_revoke,
    "grants": cmd_grants,
    "admin": cmd_admin,
    "approvals": cmd_approvals,
    "doctor": cmd_doctor,
    "status": cmd_status,
    "policy": cmd_policy,
    "policies": cmd_policies,
    "pin": cmd_pin,
    "unpin": cmd_pin,
    "channels": cmd_channels,
    "audit": cmd_audit,
    "token": cmd_token,
    "backup": cmd_backup,
    "migrate": cmd_migrate,
    "copy-store": cmd_copy_store,
}


def api_words(exc: BackupApiError) -> str:
    """The backup API's failure, for the shell: what it means for what was asked."""
    if isinstance(exc, NotSent):
        return f"the backup API could not be reached, so nothing was sent: {exc}"
    if isinstance(exc, ApiTimeout | Unavailable):
        return f"the backup API did not answer in time ({exc}); if this was a change, it may have happened: check"
    return f"the backup API refused: {exc}"


def _set_up_logging(args, settings: Settings) -> None:
    """BACKUPBOT_LOG_FORMAT and BACKUPBOT_LOG_LEVEL (-v: DEBUG); the console shows only errors."""
    level = logging.DEBUG if args.verbose else getattr(logging, settings.log_level)
    if args.command == "console" and not args.verbose:
        level = logging.ERROR
    configure_logging(json_lines=settings.log_format == "json", level=level)
    if not args.verbose:
        for noisy in ("httpx", "slack_bolt", "slack_sdk"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        if args.command == "doctor":  # doctor's own words for it: one ✗ line, and what to do
            print(f"✗ {exc} — fix it in the environment or .env, then run doctor again")
            return 1
        print(f"vps-backup-bot: {exc}", file=sys.stderr)
        return 2
    try:
        _set_up_logging(args, settings)
        return COMMANDS[args.command](args, settings)
    except KeepTooMany as exc:
        print(
            f"vps-backup-bot: {exc.keep.words()} keeps {exc.keep.most}, but server {exc.server_id} has room for "
            f"{max(exc.fits, 0)}: 10 manual - {exc.reserved} reserved - {exc.other} other manual - 1 for the next "
            "backup; nothing was changed",
            file=sys.stderr,
        )
        return 2
    except (ConfigError, CliError, OpsError, StoreError) as exc:
        print(f"vps-backup-bot: {exc}", file=sys.stderr)
        return getattr(exc, "status", 2)
    except BackupApiError as exc:
        print(f"vps-backup-bot: {api_words(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as the Python docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
