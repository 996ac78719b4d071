"""The /backup subcommands, and parsing their text into a typed command. Pure: no I/O.

`SUBCOMMANDS`, at the end, is the one table of subcommands: each word's
`Action`, parser, usage line, help line and example. Help, usage errors and
dispatch are all generated from it; the Slack edge adds one runner per Action
(bot/slack/commands.py). Adding a subcommand is one entry here, its parser,
its runner and its use case.

Slack HTML-escapes `&`, `<`, `>` in command text and sends mentions as
`<@U123|name>`; `parse_command` takes that text as it arrives and unescapes
what the user typed (a description) so it reaches the API as written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.i18n import LANGUAGES, N_, _
from bot.policy import Action, Role
from bot.retention import Keep
from bot.schedule import DAYS, ScheduleError, clock_time, zone

STALE_LIMITS = (1.0, 8760.0)  # hours: a server's threshold is an hour to a year

USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
MENTION_IN_TEXT = re.compile(r"<([@#])([UWC][A-Z0-9]+)(?:\|([^>]*))?>")
ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)
MAX_ID_DIGITS = 18
BARE_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
MAX_DESCRIPTION = 255
MAX_AUDIT = 50


class UsageError(ValueError):
    """Bad input: says what was wrong and, in `usage`, what to type instead."""

    def __init__(self, problem: str, subcommand: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.subcommand = subcommand

    @property
    def usage(self) -> str | None:
        syntax = SUBCOMMANDS.get(self.subcommand or "")
        return syntax.usage if syntax else None

    @property
    def example(self) -> str | None:
        syntax = SUBCOMMANDS.get(self.subcommand or "")
        return syntax.example if syntax else None


@dataclass(frozen=True)
class Command:
    action: Action
    server_id: int | None = None
    backup_id: int | None = None
    backup_type: str | None = None
    description: str = ""
    user_id: str | None = None
    role: Role | None = None
    limit: int = 20
    switch: bool | None = None
    filters: tuple[tuple[str, object], ...] = ()  # audit search: (field, value) pairs
    channel_id: str | None = None
    language: str | None = None
    cadence: str | None = None  # a schedule: daily, weekly, hourly
    days: tuple[int, ...] = ()
    at_time: str | None = None  # HH:MM, local
    zone: str | None = None  # an IANA name; None: BACKUPBOT_TIMEZONE
    hours: float | None = None  # a threshold (`policy SERVER stale HOURS`)
    word: str | None = None  # which part of a policy is set, or what is done with it (show, edit, pause, pin…)
    every_hours: int | None = None  # a schedule of every N hours
    keep: Keep | None = None  # a policy's retention
    pause_hours: float | None = None  # `pause for Nh`
    pause_until: str | None = None  # `pause until DATE [HH:MM]`: local, in the policy's zone (ISO, no offset)


def parse_user(token: str, subcommand: str | None = None) -> str:
    """A Slack user as `<@U123|name>` (how Slack escapes a mention) or a bare `U123`."""
    token = token.strip()
    shown = html.unescape(token)
    match = USER_MENTION.match(token)
    if match:
        return match.group(1)
    if BARE_USER.match(token):
        return token
    if token.startswith("@"):
        raise UsageError(
            _(
                "`{token}` reached the bot as plain text, not as a mention: pick the person from Slack's "
                "autocomplete, or give their member ID (U…)"
            ).format(token=shown),
            subcommand,
        )
    raise UsageError(
        _("`{token}` is not a Slack user: mention them (@name) or give their member ID (U…)").format(token=shown),
        subcommand,
    )


def is_number(token: str) -> bool:
    """ASCII digits only: a superscript two or a full-width digit passes str.isdigit, but no ID is typed that way."""
    return ASCII_DIGITS.fullmatch(token) is not None


_TOO_LONG = {
    "server": N_("`{token}` is too long to be a server ID"),
    "backup": N_("`{token}` is too long to be a backup ID"),
}
_NOT_AN_ID = {
    "server": N_("`{token}` is not a server ID: server IDs are whole numbers, like 12345"),
    "backup": N_("`{token}` is not a backup ID: backup IDs are whole numbers, like 5023"),
}


def parse_id(token: str, what: str, subcommand: str | None = None) -> int:
    """A server or backup ID (`what`): ASCII digits, more than 0, at most 18 of them."""
    shown = html.unescape(token)
    if is_number(token) and len(token.lstrip("0")) > MAX_ID_DIGITS:
        raise UsageError(_(_TOO_LONG[what]).format(token=shown), subcommand)
    if is_number(token) and int(token) > 0:
        return int(token)
    raise UsageError(_(_NOT_AN_ID[what]).format(token=shown), subcommand)


def plain_description(text: str) -> str:
    """A description as typed: Slack's escaping undone, and a mention read as `@name` (or its ID)."""
    return html.unescape(MENTION_IN_TEXT.sub(lambda m: m.group(1) + (m.group(3) or m.group(2)), text))


def parse_command(text: str) -> Command:
    """Turn the text after `/backup` (as Slack sends it) into a Command, or raise UsageError."""
    words = text.split()
    if not words:
        return Command(Action.HELP)
    name, args = words[0].lower(), words[1:]
    syntax = SUBCOMMANDS.get(ALIASES.get(name, name))
    if syntax is None:
        raise UsageError(_("`{word}` is not a /backup command").format(word=html.unescape(words[0])), "help")
    return syntax.parse(args, text)


def _expect(args: list[str], low: int, high: int, name: str) -> None:
    if len(args) < low:
        raise UsageError(_("something is missing"), name)
    if len(args) > high:
        extra = " ".join(html.unescape(a) for a in args[high:])
        raise UsageError(_("unexpected `{words}`").format(words=extra), name)


def _list(args: list[str], _text: str) -> Command:
    _expect(args, 0, 2, "list")
    server_id, backup_type = None, None
    for arg in args:
        if arg.lower() in ("manual", "automatic"):
            if backup_type:
                raise UsageError(_("give the type once: manual or automatic"), "list")
            backup_type = arg.lower()
        elif server_id is None:
            server_id = parse_id(arg, "server", "list")
        else:
            raise UsageError(
                _("`{word}` is neither a type (manual, automatic) nor a second server").format(word=html.unescape(arg)),
                "list",
            )
    return Command(Action.LIST, server_id=server_id, backup_type=backup_type)


def _create(args: list[str], text: str) -> Command:
    _expect(args, 1, 10_000, "create")
    server_id = parse_id(args[0], "server", "create")
    rest = text.split(None, 2)
    description = plain_description(rest[2].strip()) if len(rest) > 2 else ""
    if len(description) > MAX_DESCRIPTION:
        raise UsageError(
            _("the description is {n} characters; the API takes at most {limit}").format(
                n=len(description), limit=MAX_DESCRIPTION
            ),
            "create",
        )
    return Command(Action.CREATE, server_id=server_id, description=description)


def _delete(args: list[str], _text: str) -> Command:
    _expect(args, 1, 1, "delete")
    return Command(Action.DELETE, backup_id=parse_id(args[0], "backup", "delete"))


def _restore(args: list[str], _text: str) -> Command:
    _expect(args, 1, 2, "restore")
    backup_id = parse_id(args[0], "backup", "restore")
    server_id = parse_id(args[1], "server", "restore") if len(args) > 1 else None
    return Command(Action.RESTORE, backup_id=backup_id, server_id=server_id)


def _servers(args: list[str], _text: str) -> Command:
    _expect(args, 0, 0, "servers")
    return Command(Action.SERVERS)


def _grant(args: list[str], _text: str) -> Command:
    _expect(args, 2, 3, "grant")
    user_id = parse_user(args[0], "grant")
    server_id = parse_id(args[1], "server", "grant")
    try:
        role = Role.parse(args[2]) if len(args) > 2 else Role.OPERATOR
    except ValueError:
        word = html.unescape(args[2])
        raise UsageError(
            _("`{word}` is not a role: use viewer, operator or owner").format(word=word), "grant"
        ) from None
    return Command(Action.GRANT, user_id=user_id, server_id=server_id, role=role)


def _revoke(args: list[str], _text: str) -> Command:
    _expect(args, 2, 2, "revoke")
    return Command(
        Action.REVOKE, user_id=parse_user(args[0], "revoke"), server_id=parse_id(args[1], "server", "revoke")
    )


AUDIT_OUTCOMES = ("done", "denied", "failed", "cancelled")
AUDIT_FILTERS = ("server", "user", "action", "outcome")


def _audit(args: list[str], _text: str) -> Command:
    """`audit [N] [server S] [user @U] [action A] [outcome O]`, filters in any order."""
    limit, filters = 20, {}
    rest = list(args)
    if rest and is_number(rest[0]):
        if not 1 <= int(rest[0]) <= MAX_AUDIT:
            raise UsageError(
                _("`{word}` is not a number of entries from 1 to {limit}").format(word=rest[0], limit=MAX_AUDIT),
                "audit",
            )
        limit = int(rest.pop(0))
    while rest:
        word = rest.pop(0).lower()
        if word not in AUDIT_FILTERS:
            raise UsageError(
                _(
                    "`{word}` is neither a number of entries from 1 to {limit} "
                    "nor a filter (server, user, action or outcome)"
                ).format(word=html.unescape(word), limit=MAX_AUDIT),
                "audit",
            )
        if not rest:
            raise UsageError(_("`{word}` needs a value").format(word=word), "audit")
        if word in filters:
            raise UsageError(_("give `{word}` once").format(word=word), "audit")
        value = rest.pop(0)
        if word == "server":
            filters["server_id"] = parse_id(value, "server", "audit")
        elif word == "user":
            filters["user_id"] = parse_user(value, "audit")
        elif word == "action":
            if value.lower() not in {a.value for a in Action}:
                raise UsageError(_("`{word}` is not an action").format(word=html.unescape(value)), "audit")
            filters["action"] = value.lower()
        elif value.lower() not in AUDIT_OUTCOMES:
            raise UsageError(
                _("`{word}` is not an outcome: use {outcomes}").format(
                    word=html.unescape(value), outcomes=", ".join(AUDIT_OUTCOMES)
                ),
                "audit",
            )
        else:
            filters["outcome"] = value.lower()
    return Command(Action.AUDIT, limit=limit, filters=tuple(sorted(filters.items())))


def _approvals(args: list[str], _text: str) -> Command:
    _expect(args, 2, 2, "approvals")
    server_id = parse_id(args[0], "server", "approvals")
    word = args[1].lower()
    if word not in ("on", "off"):
        raise UsageError(_("`{word}` is neither on nor off").format(word=html.unescape(args[1])), "approvals")
    return Command(Action.APPROVALS, server_id=server_id, switch=word == "on")


CHANNEL_MENTION = re.compile(r"^<#([CG][A-Z0-9]+)(?:\|[^>]*)?>$")
BARE_CHANNEL = re.compile(r"^[CG][A-Z0-9]{6,12}$")


def parse_channel(token: str, subcommand: str | None = None) -> str:
    """A channel as Slack sends a mention of it (`<#C123|name>`) or a bare ID (`C123…`)."""
    match = CHANNEL_MENTION.match(token)
    if match:
        return match.group(1)
    if BARE_CHANNEL.match(token):
        return token
    raise UsageError(
        _("`{word}` is not a channel: pick it from Slack's autocomplete (#name) or give its ID (C…)").format(
            word=html.unescape(token)
        ),
        subcommand,
    )


def _channels(args: list[str], _text: str) -> Command:
    _expect(args, 1, 3, "channels")
    server_id = parse_id(args[0], "server", "channels")
    if len(args) == 1:
        return Command(Action.CHANNELS, server_id=server_id)
    if len(args) != 3 or args[1].lower() not in ("add", "remove"):
        raise UsageError(_("say add or remove, then the channel"), "channels")
    channel = parse_channel(args[2], "channels")
    return Command(Action.CHANNELS, server_id=server_id, channel_id=channel, switch=args[1].lower() == "add")


def _language(args: list[str], _text: str) -> Command:
    _expect(args, 0, 1, "language")
    if not args:
        return Command(Action.LANGUAGE)
    word = args[0].lower()
    if word not in LANGUAGES:
        raise UsageError(
            _("`{word}` is not a language I speak: use en or ko").format(word=html.unescape(args[0])), "language"
        )
    return Command(Action.LANGUAGE, language=word)


def _status(args: list[str], _text: str) -> Command:
    _expect(args, 0, 1, "status")
    return Command(Action.STATUS, server_id=parse_id(args[0], "server", "status") if args else None)


def parse_clock(token: str, subcommand: str) -> str:
    try:
        return clock_time(token).strftime("%H:%M")
    except ScheduleError:
        raise UsageError(
            _("`{word}` is not a time: write it on a 24-hour clock, like 02:30").format(word=html.unescape(token)),
            subcommand,
        ) from None


def parse_zone(token: str, subcommand: str) -> str:
    try:
        zone(token)
    except ScheduleError:
        raise UsageError(
            _("`{word}` is not a time zone: use an IANA name, like Europe/Berlin or Asia/Seoul").format(
                word=html.unescape(token)
            ),
            subcommand,
        ) from None
    return token


def parse_days(token: str, subcommand: str) -> tuple[int, ...]:
    days = []
    for word in token.lower().split(","):
        if word not in DAYS:
            raise UsageError(
                _("`{word}` is not a day: use mon, tue, wed, thu, fri, sat or sun (several with commas)").format(
                    word=html.unescape(word)
                ),
                subcommand,
            )
        days.append(DAYS.index(word))
    return tuple(sorted(set(days)))


def _schedule(args: list[str], subcommand: str) -> dict:
    """`daily HH:MM [ZONE]` or `weekly DAY[,DAY…] HH:MM [ZONE]`: the Command fields of a schedule."""
    cadence = args[0].lower() if args else ""
    if cadence == "daily":
        _expect(args, 2, 3, subcommand)
        return {"cadence": "daily", "at_time": parse_clock(args[1], subcommand), "zone": _zone_at(args, 2, subcommand)}
    if cadence == "weekly":
        _expect(args, 3, 4, subcommand)
        days = parse_days(args[1], subcommand)
        return {
            "cadence": "weekly",
            "days": days,
            "at_time": parse_clock(args[2], subcommand),
            "zone": _zone_at(args, 3, subcommand),
        }
    raise UsageError(_("say daily HH:MM or weekly DAY HH:MM, then a time zone if not the bot's"), subcommand)


def _zone_at(args: list[str], index: int, subcommand: str) -> str | None:
    return parse_zone(args[index], subcommand) if len(args) > index else None


def _digest(args: list[str], _text: str) -> Command:
    if not args:
        return Command(Action.DIGEST)
    channel = parse_channel(args[0], "digest")
    rest = args[1:]
    if len(rest) == 1 and rest[0].lower() == "off":
        return Command(Action.DIGEST, channel_id=channel, switch=False)
    if not rest:
        raise UsageError(_("say when: daily HH:MM, weekly DAY HH:MM, or off"), "digest")
    return Command(Action.DIGEST, channel_id=channel, switch=True, **_schedule(rest, "digest"))


def parse_hours(token: str, subcommand: str) -> float:
    try:
        hours = float(token)
    except ValueError:
        hours = float("nan")
    low, high = STALE_LIMITS
    if not low <= hours <= high:
        raise UsageError(
            _("`{word}` is not a number of hours from {low:g} to {high:g}").format(
                word=html.unescape(token), low=low, high=high
            ),
            subcommand,
        )
    return hours


MAX_KEEP = 9  # 10 manual slots, one free for the next backup: the budget (bot/ops/policies.py) says what fits
MAX_PAUSE_HOURS = 7 * 24
EVERY_HOURS = re.compile(r"^([0-9]{1,2})h$")
PAUSE_FOR = re.compile(r"^([0-9]{1,4})([hd])$")
DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
POLICY_WORDS = ("daily", "weekly", "every", "keep", "stale", "pause", "resume", "run", "off", "edit")


def _policy(args: list[str], text: str) -> Command:
    """`policy SERVER [schedule] [keep …] | stale H | pause … | resume | run | off | edit`."""
    _expect(args, 1, 10_000, "policy")
    server_id = parse_id(args[0], "server", "policy")
    if len(args) == 1:
        return Command(Action.POLICY, server_id=server_id, word="show")
    word, rest = args[1].lower(), args[2:]
    if word in ("resume", "run", "off", "edit"):
        _expect(rest, 0, 0, "policy")
        return Command(Action.POLICY, server_id=server_id, word=word)
    if word == "stale":
        _expect(rest, 1, 1, "policy")
        return Command(Action.POLICY, server_id=server_id, word="stale", hours=parse_hours(rest[0], "policy"))
    if word == "pause":
        return _pause(server_id, rest, text)
    if word not in POLICY_WORDS:
        raise UsageError(_("`{word}` is not a part of a policy I know").format(word=html.unescape(args[1])), "policy")
    return Command(Action.POLICY, server_id=server_id, word="set", **parse_policy_change(args[1:]))


def parse_policy_change(args: list[str]) -> dict:
    """A schedule and/or a keep (`daily 02:30 Europe/Berlin keep last 5`): the Command fields they set."""
    keep_at = next((i for i, a in enumerate(args) if a.lower() == "keep"), len(args))
    schedule_args, keep_args = args[:keep_at], args[keep_at + 1 :]
    fields: dict = {}
    if schedule_args:
        fields.update(_policy_schedule(schedule_args))
    if keep_at < len(args):
        fields["keep"] = parse_keep(keep_args)
    if not fields:
        raise UsageError(_("say a schedule (daily, weekly, every Nh) or a keep"), "policy")
    return fields


def parse_policy_form(schedule: str, keep: str) -> dict:
    """The policy form's two fields, in the command's own words; UsageError names the field (`subcommand`)."""
    fields: dict = {}
    try:
        fields.update(_policy_schedule(schedule.split()) if schedule.split() else {})
    except UsageError as exc:
        raise UsageError(exc.problem, "schedule") from None
    if not fields:
        raise UsageError(_("say a schedule (daily, weekly, every Nh) or a keep"), "schedule")
    try:
        fields["keep"] = parse_keep(keep.split())
    except UsageError as exc:
        raise UsageError(exc.problem, "keep") from None
    return fields


def _policy_schedule(args: list[str]) -> dict:
    if args[0].lower() != "every":
        return _schedule(args, "policy")
    _expect(args, 2, 5, "policy")
    match = EVERY_HOURS.match(args[1].lower())
    hours = int(match.group(1)) if match else 0
    if not 1 <= hours <= 24 or 24 % hours:
        raise UsageError(
            _("`{word}` is not a period I can keep: every 1h, 2h, 3h, 4h, 6h, 8h, 12h or 24h").format(
                word=html.unescape(args[1])
            ),
            "policy",
        )
    rest, start = args[2:], "00:00"
    if rest and rest[0].lower() == "from":
        _expect(rest, 2, 3, "policy")
        start, rest = parse_clock(rest[1], "policy"), rest[2:]
    _expect(rest, 0, 1, "policy")
    return {"cadence": "hourly", "every_hours": hours, "at_time": start, "zone": _zone_at(rest, 0, "policy")}


def parse_keep(args: list[str]) -> Keep:
    """`last N`, or `daily D weekly W monthly M` (any of them, in any order; omitted ones are 0)."""
    if not args:
        raise UsageError(_("say what to keep: keep last N, or keep daily D weekly W monthly M"), "policy")
    if len(args) % 2:
        raise UsageError(_("each of last, daily, weekly and monthly takes a number"), "policy")
    counts: dict[str, int] = {}
    for name, value in zip(args[::2], args[1::2], strict=True):
        name = name.lower()
        if name not in ("last", "daily", "weekly", "monthly") or name in counts:
            raise UsageError(
                _("`{word}` is not last, daily, weekly or monthly (each once)").format(word=html.unescape(name)),
                "policy",
            )
        low = 1 if name == "last" else 0
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= MAX_KEEP:
            raise UsageError(
                _("`keep {name}` takes a number from {low} to {high}, not `{word}`").format(
                    name=name, low=low, high=MAX_KEEP, word=html.unescape(value)
                ),
                "policy",
            )
        counts[name] = int(value)
    if "last" in counts and len(counts) > 1:
        raise UsageError(_("say keep last N, or keep daily/weekly/monthly: not both"), "policy")
    keep = Keep(**counts)
    if not keep.most:
        raise UsageError(_("a policy keeps at least one backup"), "policy")
    if keep.most > MAX_KEEP:
        raise UsageError(
            _("that keeps {n} backups; a server has room for at most {high}").format(n=keep.most, high=MAX_KEEP),
            "policy",
        )
    return keep


def _pause(server_id: int, rest: list[str], text: str) -> Command:
    """`pause [for Nh|Nd | until YYYY-MM-DD [HH:MM]] [reason…]`: at most 7 days."""
    hours, until, used = None, None, 0
    if rest and PAUSE_FOR.match(rest[0].lower()):  # `pause 2h`: said as `pause for 2h`
        rest = ["for", *rest]
        text = text.replace(" pause ", " pause for ", 1)
    if rest and rest[0].lower() == "for":
        _expect(rest, 2, 10_000, "policy")
        match = PAUSE_FOR.match(rest[1].lower())
        hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1) if match else 0
        if not 1 <= hours <= MAX_PAUSE_HOURS:
            raise UsageError(
                _("`{word}` is not a pause I take: from 1h to 7d (168h)").format(word=html.unescape(rest[1])),
                "policy",
            )
        used = 2
    elif rest and rest[0].lower() == "until":
        _expect(rest, 2, 10_000, "policy")
        if not DATE.match(rest[1]):
            raise UsageError(_("`{word}` is not a date like 2026-12-24").format(word=html.unescape(rest[1])), "policy")
        at, used = "00:00", 2
        if len(rest) > 2 and CLOCK_LIKE.match(rest[2]):
            at, used = parse_clock(rest[2], "policy"), 3
        until = f"{rest[1]}T{at}"
        try:
            datetime.fromisoformat(until)
        except ValueError:
            raise UsageError(
                _("`{word}` is not a date like 2026-12-24").format(word=html.unescape(rest[1])), "policy"
            ) from None
    words = text.split(None, 3 + used)
    reason = plain_description(words[3 + used].strip()) if len(words) > 3 + used else ""
    return Command(
        Action.POLICY,
        server_id=server_id,
        word="pause",
        pause_hours=hours,
        pause_until=until,
        description=reason[:200],
    )


CLOCK_LIKE = re.compile(r"^[0-9]{1,2}:[0-9]{2}$")


def _policies(args: list[str], _text: str) -> Command:
    _expect(args, 0, 0, "policies")
    return Command(Action.POLICY, word="list")


def _pin(args: list[str], _text: str) -> Command:
    _expect(args, 1, 1, "pin")
    return Command(Action.POLICY, backup_id=parse_id(args[0], "backup", "pin"), word="pin")


def _unpin(args: list[str], _text: str) -> Command:
    _expect(args, 1, 1, "unpin")
    return Command(Action.POLICY, backup_id=parse_id(args[0], "backup", "unpin"), word="unpin")


def _help(_args: list[str], _text: str) -> Command:
    return Command(Action.HELP)


@dataclass(frozen=True)
class Syntax:
    """One subcommand: what it does (`action`), how it is read, and how it is explained."""

    action: Action
    parse: Callable[[list[str], str], Command]
    usage: str
    summary: str  # marked with N_ and translated where it is shown
    example: str | None = None


SUBCOMMANDS: dict[str, Syntax] = {
    "help": Syntax(Action.HELP, _help, "/backup help", N_("this help")),
    "list": Syntax(
        Action.LIST,
        _list,
        "/backup list [SERVER] [manual|automatic]",
        N_("backups, newest first"),
        "/backup list 12345 manual",
    ),
    "create": Syntax(
        Action.CREATE,
        _create,
        "/backup create SERVER [description…]",
        N_("take a manual backup; I follow it to completion"),
        "/backup create 12345 Before the 2.4 deploy",
    ),
    "delete": Syntax(
        Action.DELETE, _delete, "/backup delete BACKUP", N_("delete one, after you confirm"), "/backup delete 5003"
    ),
    "restore": Syntax(
        Action.RESTORE,
        _restore,
        "/backup restore BACKUP [SERVER]",
        N_("restore a server from a backup, after you confirm and type its name"),
        "/backup restore 5003",
    ),
    "servers": Syntax(Action.SERVERS, _servers, "/backup servers", N_("the servers you may touch, and your role")),
    "grant": Syntax(
        Action.GRANT,
        _grant,
        "/backup grant USER SERVER [viewer|operator|owner]",
        N_("give someone a role on a server"),
        "/backup grant @alice 12345 operator",
    ),
    "revoke": Syntax(
        Action.REVOKE, _revoke, "/backup revoke USER SERVER", N_("take it away"), "/backup revoke @alice 12345"
    ),
    "audit": Syntax(
        Action.AUDIT,
        _audit,
        "/backup audit [N] [server S] [user @U] [action A] [outcome O]",
        N_("the latest N audit entries (N from 1 to 50, default 20), filtered if you like"),
        "/backup audit 10 server 12345 outcome denied",
    ),
    "approvals": Syntax(
        Action.APPROVALS,
        _approvals,
        "/backup approvals SERVER on|off",
        N_("the two-person rule: a second owner approves each delete and restore"),
        "/backup approvals 12345 on",
    ),
    "channels": Syntax(
        Action.CHANNELS,
        _channels,
        "/backup channels SERVER [add|remove #channel]",
        N_("the channels a server is run from and announced in"),
        "/backup channels 12345 add #prod-ops",
    ),
    "status": Syntax(
        Action.STATUS,
        _status,
        "/backup status [SERVER]",
        N_("is every server backed up: fresh, due or stale"),
        "/backup status 12345",
    ),
    "policy": Syntax(
        Action.POLICY,
        _policy,
        "/backup policy SERVER [daily HH:MM | weekly DAY[,DAY…] HH:MM | every Nh [from HH:MM]] [ZONE] "
        "[keep last N | keep daily D weekly W monthly M] · stale HOURS · pause [for Nh | until DATE] [reason] · "
        "resume · run · off · edit",
        N_("a server's backup policy: scheduled backups, what to keep, when it counts as stale"),
        "/backup policy 12345 daily 02:30 Europe/Berlin keep last 5",
    ),
    "policies": Syntax(Action.POLICY, _policies, "/backup policies", N_("every backup policy, with its next run")),
    "pin": Syntax(
        Action.POLICY,
        _pin,
        "/backup pin BACKUP",
        N_("keep a manual backup from any policy's pruning"),
        "/backup pin 5003",
    ),
    "unpin": Syntax(
        Action.POLICY, _unpin, "/backup unpin BACKUP", N_("let a policy prune it again"), "/backup unpin 5003"
    ),
    "digest": Syntax(
        Action.DIGEST,
        _digest,
        "/backup digest [#channel daily HH:MM [ZONE] | #channel weekly DAY HH:MM [ZONE] | #channel off]",
        N_("a summary of every server in a channel, daily or weekly"),
        "/backup digest #ops-backups daily 09:00 Europe/Berlin",
    ),
    "language": Syntax(
        Action.LANGUAGE,
        _language,
        "/backup language [en|ko]",
        N_("show or set the language I use with you (English, 한국어)"),
        "/backup language ko",
    ),
}
ALIASES = {"ls": "list", "-h": "help", "--help": "help", "?": "help"}
