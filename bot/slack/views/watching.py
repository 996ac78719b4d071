"""Is every server backed up, in Slack: `/backup status`, the alert cards that heal themselves, the digest.

An alert card is a channel message (for the team, in its language) with what the reader may do; when the
alert heals, the same card is edited (chat.update) to say it recovered and when, without buttons.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.backup_api import MANUAL_LIMIT
from bot.i18n import N_, Words, _, for_the_team, ngettext, status_word, type_word
from bot.ops import DigestReport, Freshness, ServerStatus
from bot.slack.ids import ALERT_CREATE, ALERT_STATUS, DELETE_REQUEST, POLICY_EDIT
from bot.slack.views.base import (
    MAX_BLOCKS,
    MAX_SECTION,
    Message,
    ago,
    button,
    by_a_pipeline,
    context,
    escape,
    message,
    pipeline_words,
    plain_server,
    section,
    server_words,
    simple,
    slack_date,
    truncate,
)
from bot.store import Alert, AlertKind

ICON = {
    Freshness.FRESH: ":large_green_circle:",
    Freshness.DUE: ":large_yellow_circle:",
    Freshness.STALE: ":red_circle:",
}
STATE = {
    Freshness.FRESH: N_("fresh"),
    Freshness.DUE: N_("due"),
    Freshness.STALE: N_("stale"),
}
ALERT_KIND = {
    "stale": N_("no fresh backup"),
    "failed": N_("a backup failed"),
    "stuck": N_("a backup is stuck"),
    "run_failed": N_("a scheduled backup failed"),
    "run_skipped": N_("a scheduled backup was skipped"),
    "run_missed": N_("scheduled backups were missed"),
}
MAX_STATUS_ROWS = 40


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def status_line(status: ServerStatus, now: datetime) -> str:
    """One server: its state, its newest completed backup, its manual backups, its next run, its open alerts."""
    head = f"{ICON[status.state]} {server_words(status.server_id, status.name)} — *{_(STATE[status.state])}*"
    if status.newest is None:
        newest = _("no completed backup")
    else:
        newest = _("newest completed *#{id}* ({type}), {ago}").format(
            id=status.newest.id, type=type_word(status.newest.backup_type), ago=ago(status.newest.created_at, now)
        )
    parts = [newest, _("manual {n} of {limit}").format(n=status.manual_used, limit=MANUAL_LIMIT)]
    parts.append(
        ngettext("stale after {n} hour", "stale after {n} hours", int(status.threshold_hours)).format(
            n=f"{status.threshold_hours:g}"
        )
    )
    if status.running:
        parts.append(_("{n} in progress").format(n=len(status.running)))
    if status.next_run is not None:
        parts.append(_("next run {date}").format(date=slack_date(status.next_run)))
    line = head + "\n" + " · ".join(parts)
    if status.alerts:
        kinds = ", ".join(_(ALERT_KIND[a.kind.value]) for a in status.alerts)
        line += "\n" + _(":rotating_light: open alerts: {kinds}").format(kinds=kinds)
    return line


def status_message(statuses: list[ServerStatus], now: datetime) -> Message:
    """`/backup status`: every server the person may see, stale first."""
    if not statuses:
        return simple(
            _(":grey_question: You have no role on any server yet: an admin can give you one with `/backup grant`.")
        )
    order = {Freshness.STALE: 0, Freshness.DUE: 1, Freshness.FRESH: 2}
    shown = sorted(statuses, key=lambda s: (order[s.state], s.server_id))
    counts = {state: sum(s.state is state for s in statuses) for state in Freshness}
    head = _("*Backups of {n} servers*: {stale} stale, {due} due, {fresh} fresh.").format(
        n=len(statuses), stale=counts[Freshness.STALE], due=counts[Freshness.DUE], fresh=counts[Freshness.FRESH]
    )
    blocks = [section(head)]
    for status in shown[:MAX_STATUS_ROWS]:
        blocks.append(section(status_line(status, now)))
    if len(shown) > MAX_STATUS_ROWS:
        blocks.append(
            context(
                _("…and {n} more servers: ask for one with `/backup status SERVER`.").format(
                    n=len(shown) - MAX_STATUS_ROWS
                )
            )
        )
    if len(statuses) == 1:
        blocks.append(
            {
                "type": "actions",
                "block_id": "status_policy",
                "elements": [button(_("Backup policy…"), POLICY_EDIT, str(statuses[0].server_id))],
            }
        )
    blocks.append(
        context(
            _(
                "Fresh: the newest completed backup (automatic ones count) is younger than the threshold; due: in its last quarter; stale: past it."
            )
        )
    )
    return message(head, blocks[:MAX_BLOCKS])


# --- alert cards ---------------------------------------------------------------------------


def _server(alert: Alert, name: str | None) -> str:
    return server_words(alert.server_id, name)


def _newest(facts: dict, now: datetime) -> str:
    if not facts.get("id") or "at" not in facts:
        return _("it has no completed backup at all")
    taken = _when(facts["at"])
    return _("its newest completed backup is *#{id}* ({type}), taken {date} ({ago})").format(
        id=facts["id"], type=type_word(facts.get("type", "")), date=slack_date(taken), ago=ago(taken, now)
    )


def _open_text(alert: Alert, name: str | None, now: datetime) -> str:
    facts = alert.facts
    if alert.kind is AlertKind.STALE:
        return _(":red_circle: *No fresh backup of {server}*: {newest}; it is stale after {hours} hours.").format(
            server=_server(alert, name), newest=_newest(facts, now), hours=f"{facts.get('hours', 0):g}"
        )
    if alert.kind is AlertKind.FAILED:
        text = _(
            ":rotating_light: *Backup #{id} of {server} FAILED* — it ended *{status}* and cannot be restored."
        ).format(
            id=facts.get("id"),
            server=plain_server(alert.server_id, name),
            status=escape(status_word(facts.get("status", ""))),
        )
        asked = facts.get("asked_by")
        if asked and by_a_pipeline(asked):
            text += " " + _("Taken by {who}; take another before any risky change.").format(who=pipeline_words(asked))
        elif asked:
            text += " " + _("Asked for by <@{user}>; take another before any risky change.").format(user=asked)
        return text
    if alert.kind in (AlertKind.RUN_FAILED, AlertKind.RUN_SKIPPED, AlertKind.RUN_MISSED):
        return _run_text(alert, name)
    started = _when(facts.get("at", now.timestamp()))
    return _(
        ":hourglass: *Backup #{id} of {server} has been in progress since {date}* ({ago}): it may be stuck. "
        "If it does not end, ask VPS.org."
    ).format(
        id=facts.get("id"), server=plain_server(alert.server_id, name), date=slack_date(started), ago=ago(started, now)
    )


def _run_text(alert: Alert, name: str | None) -> str:
    """A policy's run that went wrong: failed, skipped for want of room, or missed while the bot was down."""
    facts, server = alert.facts, plain_server(alert.server_id, name)
    if alert.kind is AlertKind.RUN_SKIPPED:
        oldest = ", ".join(f"*#{i}*" for i in facts.get("oldest", []))
        return _(
            ":no_entry: *A scheduled backup of {server} was skipped*: the server already has {count} manual "
            "backups, the most VPS.org keeps. The oldest are {oldest}. Make room (delete one, or keep fewer) "
            "and the next run takes it."
        ).format(server=server, count=facts.get("count", MANUAL_LIMIT), oldest=oldest or "—")
    if alert.kind is AlertKind.RUN_MISSED:
        count = int(facts.get("count", 1))
        first, last = _when(facts.get("from", 0)), _when(facts.get("to", 0))
        return ngettext(
            ":warning: *A scheduled backup of {server} was missed* at {first}: the bot was not running. "
            "The next run is on schedule.",
            ":warning: *{n} scheduled backups of {server} were missed*, from {first} to {last}: the bot was not "
            "running. The next run is on schedule.",
            count,
        ).format(n=count, server=server, first=slack_date(first), last=slack_date(last))
    if facts.get("id"):
        return _(":rotating_light: *A scheduled backup of {server} FAILED*: backup *#{id}* ended *{status}*.").format(
            server=server, id=facts["id"], status=escape(status_word(facts.get("status", "")))
        )
    why = Words(facts["why"], **facts.get("values", {})) if facts.get("why") else Words(N_("the backup API refused it"))
    return _(":rotating_light: *A scheduled backup of {server} FAILED*: {why}.").format(server=server, why=escape(why))


@for_the_team
def alert_card(alert: Alert, name: str | None, now: datetime) -> Message:
    """The card in the server's channels: what is wrong, and what the reader may do."""
    text = _open_text(alert, name, now)
    elements = []
    if alert.kind is AlertKind.RUN_SKIPPED:
        for backup_id in alert.facts.get("oldest", [])[:3]:
            elements.append(button(_("Delete #{id}…").format(id=backup_id), DELETE_REQUEST, str(backup_id)))
    elif alert.kind is not AlertKind.STUCK:
        elements.append(button(_("Take a backup"), ALERT_CREATE, str(alert.server_id), style="primary"))
    elements.append(button(_("Status"), ALERT_STATUS, str(alert.server_id)))
    blocks = [section(text), {"type": "actions", "block_id": f"alert-{alert.id}"[:255], "elements": elements}]
    blocks.append(context(_("This card is edited when it heals.")))
    return message(text, blocks)


def _fallback(alert: Alert, name: str | None) -> str:
    return f"{_(ALERT_KIND[alert.kind.value])}: {plain_server(alert.server_id, name)}"


@for_the_team
def alert_reminder(alert: Alert, name: str | None, now: datetime) -> Message:
    return simple(
        _(":red_circle: Reminder: still no fresh backup of {server} — {newest}.").format(
            server=_server(alert, name), newest=_newest(alert.facts, now)
        )
    )


@for_the_team
def recovered_card(alert: Alert, name: str | None, now: datetime) -> Message:
    """The same card, edited once the alert healed: what it was, and what healed it and when."""
    healed = _when(alert.recovered_at or now.timestamp())
    recovery = alert.recovery
    if alert.kind is AlertKind.STUCK:
        how = (
            _("the backup is no longer listed")
            if recovery.get("gone")
            else _("it ended *{status}*").format(status=escape(status_word(recovery.get("status", ""))))
        )
    elif recovery.get("id"):
        how = _("backup *#{id}* ({type}) completed {date}").format(
            id=recovery["id"], type=type_word(recovery.get("type", "")), date=slack_date(_when(recovery["at"]))
        )
    else:
        how = _("it is fresh again")
    was = _open_text(alert, name, now).split("\n")[0]
    text = _(":large_green_circle: *Recovered* {date}: {how}.").format(date=slack_date(healed), how=how)
    opened = _when(alert.opened_at)
    return message(
        _("Recovered — {what}").format(what=_fallback(alert, name)),
        [
            section(text),
            context(_("Was: {was} (opened {date})").format(was=truncate(was, 2500), date=slack_date(opened))),
        ],
    )


# --- the digest ------------------------------------------------------------------------------


@for_the_team
def digest_message(report: DigestReport, now: datetime) -> Message:
    """One digest: a row per server, and what happened since the last one; within Block Kit's limits."""
    digest = report.digest
    counts = {state: sum(s.state is state for s in report.servers) for state in Freshness}
    head = _("*Backup digest* for {date}: {stale} stale, {due} due, {fresh} fresh of {n} servers.").format(
        date=slack_date(report.slot),
        stale=counts[Freshness.STALE],
        due=counts[Freshness.DUE],
        fresh=counts[Freshness.FRESH],
        n=len(report.servers),
    )
    blocks = [section(head)]
    if report.late:
        blocks.append(
            context(
                _(":warning: Late: the bot was not running at {date}; this is that digest.").format(
                    date=slack_date(report.slot)
                )
            )
        )
    lines = [
        status_line(s, now) for s in sorted(report.servers, key=lambda s: (s.state is not Freshness.STALE, s.server_id))
    ]
    happened = [_happened_line(alert, now) for alert in report.happened]
    happened += [
        _("`#{id}` of {server}, automatic, expires {date}").format(
            id=b.id, server=server_words(b.server.id, b.server.name), date=slack_date(b.expires_at)
        )
        for b in report.expiring
    ]
    room = MAX_BLOCKS - len(blocks) - 3
    shown, rows = _pack(lines, room - 1)
    blocks += [section(text) for text in shown]
    if rows < len(lines):
        blocks.append(context(_("…and {n} more servers: `/backup status` shows them all.").format(n=len(lines) - rows)))
    since = (
        _("Since the last digest ({date}):").format(date=slack_date(report.since))
        if report.since
        else _("In the last day:")
    )
    body = "\n".join(f"• {line}" for line in happened) if happened else _("nothing went wrong.")
    blocks.append(section(truncate(f"*{since}*\n{body}", MAX_SECTION)))
    schedule = _schedule_words(digest)
    blocks.append(
        context(
            _("Digest {schedule} in this channel; `/backup digest <#{channel}> off` stops it.").format(
                schedule=schedule, channel=digest.channel
            )
        )
    )
    return message(
        _("Backup digest: {stale} stale of {n} servers").format(stale=counts[Freshness.STALE], n=len(report.servers)),
        blocks[:MAX_BLOCKS],
    )


def _happened_line(alert: Alert, now: datetime) -> str:
    what = _(ALERT_KIND[alert.kind.value])
    subject = f" (`#{alert.subject_id}`)" if alert.subject_id else ""
    state = _("recovered") if not alert.open else _("still open")
    return _("{what}{subject} on server *{server}*, {ago} — {state}").format(
        what=what, subject=subject, server=alert.server_id, ago=ago(_when(alert.opened_at), now), state=state
    )


def _pack(lines: list[str], sections: int) -> tuple[list[str], int]:
    """Server rows packed into at most `sections` sections of at most 3000 characters each; and how many fit."""
    packed: list[str] = []
    current, rows, fitted = "", 0, 0
    for line in lines:
        candidate = f"{current}\n\n{line}" if current else line
        if len(candidate) <= MAX_SECTION:
            current, rows = candidate, rows + 1
            continue
        packed.append(current)
        fitted += rows
        if len(packed) == sections:
            return packed, fitted
        current, rows = line, 1
    if current and len(packed) < sections:
        packed.append(current)
        fitted += rows
    return packed, fitted


def _schedule_words(digest) -> str:
    return schedule_words(digest.cadence, digest.days, digest.at_time, digest.zone)


DAY_NAMES = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def schedule_words(cadence: str, days: tuple[int, ...], at_time: str, zone: str) -> str:
    if cadence == "weekly":
        listed = ", ".join(_(DAY_NAMES[d]) for d in days)
        return _("weekly on {days} at {time} ({zone})").format(days=listed, time=at_time, zone=zone)
    return _("daily at {time} ({zone})").format(time=at_time, zone=zone)


@for_the_team
def digest_hello(user_id: str, schedule) -> Message:
    """Posted in a channel as its digest is set: the bot can post there, and the team learns what comes."""
    words = schedule_words(schedule.cadence, schedule.days, schedule.at.strftime("%H:%M"), schedule.zone_name)
    return simple(
        _(":mailbox: This channel now gets a backup digest {schedule} (set by <@{user}>).").format(
            schedule=words, user=user_id
        )
    )


def digest_set_message(channel: str, words: str | None, changed: bool) -> Message:
    """The admin's answer to `/backup digest`: `words` is the schedule in words, None when it was stopped."""
    if words is None:
        text = (
            _(":mailbox_closed: The digest in <#{channel}> is off.")
            if changed
            else _(":mailbox_closed: There was no digest in <#{channel}>.")
        )
        return simple(text.format(channel=channel))
    return simple(
        _(":mailbox: <#{channel}> gets a digest {schedule}; the first comes at its first time from now.").format(
            channel=channel, schedule=words
        )
    )


def digests_message(digests: list) -> Message:
    if not digests:
        return simple(_(":mailbox_closed: No channel gets a digest. `/backup digest #channel daily 09:00` sets one."))
    lines = [f"<#{d.channel}>: {_schedule_words(d)}" for d in digests]
    return simple(_("*Digests*") + "\n" + "\n".join(lines))


def stale_set_message(server_id: int, hours: float, before: float | None, default: float) -> Message:
    was = f"{before:g}" if before is not None else _("the default, {n}").format(n=f"{default:g}")
    return simple(
        _(
            ":hourglass: Server *{id}* is now stale when its newest completed backup is older than {hours} hours (was {was})."
        ).format(id=server_id, hours=f"{hours:g}", was=was)
    )
