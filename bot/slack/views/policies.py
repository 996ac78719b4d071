"""Backup policies in Slack: a policy in words, the list of them, their changes, pins, and the form that
shows the next runs and what retention would keep and delete before anything is saved.

Every time is said twice: in the policy's own zone, named (`02:30 Europe/Berlin`), and as a Slack date,
which each reader sees in their own zone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.backup_api import MANUAL_LIMIT, Backup
from bot.i18n import N_, _, current, for_the_team, ngettext
from bot.ops import PolicyView
from bot.ops.timetable import keep_of, schedule_of
from bot.retention import Keep
from bot.schedule import zone
from bot.slack.ids import (
    POLICY_EDIT,
    POLICY_KEEP_ACTION,
    POLICY_KEEP_BLOCK,
    POLICY_MODAL,
    POLICY_PREVIEW,
    POLICY_SCHEDULE_ACTION,
    POLICY_SCHEDULE_BLOCK,
)
from bot.slack.views.base import (
    MAX_BLOCKS,
    Message,
    button,
    context,
    escape,
    message,
    plain_server,
    section,
    server_words,
    simple,
    slack_date,
)
from bot.slack.views.watching import DAY_NAMES
from bot.store import Policy, PolicyRun

RUN_STATE = {
    "creating": N_("being taken"),
    "running": N_("in progress"),
    "completed": N_("completed"),
    "failed": N_("failed"),
    "skipped": N_("skipped: no room"),
    "missed": N_("missed: the bot was not running"),
}
MAX_POLICY_ROWS = 45


def local_words(moment: datetime, zone_name: str) -> str:
    """A moment in a policy's zone, the zone named: `2026-12-04 02:30 Europe/Berlin`."""
    local = moment.astimezone(zone(zone_name))
    if current() == "ko":
        return f"{local.year}년 {local.month}월 {local.day}일 {local:%H:%M} {zone_name}"
    return f"{local:%Y-%m-%d %H:%M} {zone_name}"


def when_words(moment: datetime, zone_name: str) -> str:
    """In the policy's zone and, through Slack, in the reader's."""
    return f"{local_words(moment, zone_name)} ({slack_date(moment)})"


def keep_words(keep: Keep) -> str:
    if keep.last:
        return ngettext("keep the last {n} backup", "keep the last {n} backups", keep.last).format(n=keep.last)
    parts = []
    if keep.daily:
        parts.append(ngettext("{n} daily", "{n} daily", keep.daily).format(n=keep.daily))
    if keep.weekly:
        parts.append(ngettext("{n} weekly", "{n} weekly", keep.weekly).format(n=keep.weekly))
    if keep.monthly:
        parts.append(ngettext("{n} monthly", "{n} monthly", keep.monthly).format(n=keep.monthly))
    return _("keep {counts}").format(counts=", ".join(parts))


def schedule_words(policy: Policy) -> str:
    if policy.cadence == "hourly":
        return ngettext(
            "every {n} hour from {time} ({zone})", "every {n} hours from {time} ({zone})", policy.every_hours
        ).format(n=policy.every_hours, time=policy.at_time, zone=policy.zone)
    if policy.cadence == "weekly":
        days = ", ".join(_(DAY_NAMES[d]) for d in policy.days)
        return _("weekly on {days} at {time} ({zone})").format(days=days, time=policy.at_time, zone=policy.zone)
    return _("daily at {time} ({zone})").format(time=policy.at_time, zone=policy.zone)


def state_line(policy: Policy) -> str | None:
    """A pause or an off policy, said in every view."""
    if policy.state == "paused" and policy.paused_until:
        until = datetime.fromtimestamp(policy.paused_until, UTC)
        text = _(":double_vertical_bar: *Paused* until {until}; runs start again by themselves.").format(
            until=when_words(until, policy.zone)
        )
        if policy.pause_reason:
            text += " " + _("Reason: {reason}").format(reason=escape(policy.pause_reason))
        return text
    if policy.state == "off":
        return _(":black_square_for_stop: *Off*: no more runs; its backups are kept and no longer pruned.")
    return None


def run_words(run: PolicyRun, zone_name: str) -> str:
    slot = datetime.fromtimestamp(run.slot, UTC)
    state = _(RUN_STATE[run.state]) if run.state in RUN_STATE else escape(run.state)
    text = f"{when_words(slot, zone_name)}: {state}"
    if run.backup_id:
        text += " " + _("(backup *#{id}*)").format(id=run.backup_id)
    if run.pruned:
        text += " " + _("pruned {ids}").format(ids=", ".join(f"*#{i}*" for i in run.pruned))
    return text


def _ids(ids: list[int]) -> str:
    return ", ".join(f"*#{i}*" for i in ids)


def policy_blocks(view: PolicyView) -> list[dict]:
    """A policy in full: schedule, zone, keep, next runs, last run, the slots it uses, the next prune."""
    policy = view.policy
    server = server_words(view.server_id, view.name)
    if policy is None:
        return [
            section(
                _(
                    "{server} has no backup policy. Set one with "
                    "`/backup policy {id} daily 02:00` (and `keep last 3`, the default), or with the form."
                ).format(server=server, id=view.server_id)
            )
        ]
    head = _("*Backup policy of {server}*: {schedule}, {keep}.").format(
        server=plain_server(view.server_id, view.name),
        schedule=schedule_words(policy),
        keep=keep_words(keep_of(policy)),
    )
    lines = [head]
    if (said := state_line(policy)) is not None:
        lines.append(said)
    if view.next_runs:
        runs = "\n".join(f"• {when_words(moment, policy.zone)}" for moment in view.next_runs)
        lines.append(_("*Next runs*") + "\n" + runs)
    if view.last_run is not None:
        lines.append(_("*Last run*: {run}").format(run=run_words(view.last_run, policy.zone)))
    blocks = [section("\n".join(lines))]
    facts = []
    if view.budget is not None:
        facts.append(
            _(
                "It has {own} backups of its own; the server's other manual backups take {other} of {limit} slots, "
                "{reserved} are kept free: room for a keep of {fits}."
            ).format(
                own=len(view.own),
                other=view.budget.other,
                limit=MANUAL_LIMIT,
                reserved=view.budget.reserved,
                fits=max(view.budget.fits, 0),
            )
        )
    if view.prune is not None and view.budget is not None:
        if view.prune.delete:
            facts.append(_("After the next run completes, I would delete {ids}.").format(ids=_ids(view.prune.delete)))
        else:
            facts.append(_("After the next run completes, I would delete nothing."))
        if view.prune.later:
            facts.append(_("Later prunes (at most 3 a run) take {ids}.").format(ids=_ids(view.prune.later)))
        if view.prune.keep:
            facts.append(_("Kept: {ids}.").format(ids=_ids(view.prune.keep)))
    if view.pinned:
        facts.append(_("Pinned, never pruned: {ids}.").format(ids=_ids(sorted(view.pinned))))
    if facts:
        blocks.append(section("\n".join(facts)))
    return blocks


def policy_message(view: PolicyView, *, note: str | None = None, editable: bool = True) -> Message:
    """`/backup policy SERVER`, and the answer to a change: the policy in full, with Edit."""
    blocks = policy_blocks(view)
    if note:
        blocks.insert(0, section(note))
    if editable:
        edit = _("Edit policy…") if view.policy else _("Set a policy…")
        blocks.append(
            {"type": "actions", "block_id": "policy", "elements": [button(edit, POLICY_EDIT, str(view.server_id))]}
        )
    text = _("Backup policy of server {id}").format(id=view.server_id)
    return message(text, blocks[:MAX_BLOCKS])


def policy_saved_message(view: PolicyView) -> Message:
    return policy_message(view, note=_(":white_check_mark: Policy saved."))


def policies_message(views: list[PolicyView]) -> Message:
    """`/backup policies`: every policy the person may see, with its next run."""
    if not views:
        return simple(
            _(
                ":grey_question: No server you may see has a backup policy. Set one with `/backup policy SERVER daily 02:00`."
            )
        )
    head = ngettext("*{n} backup policy*", "*{n} backup policies*", len(views)).format(n=len(views))
    blocks = [section(head)]
    for view in views[:MAX_POLICY_ROWS]:
        policy = view.policy
        line = f"{server_words(view.server_id, view.name)} — {schedule_words(policy)}, {keep_words(keep_of(policy))}"
        if (said := state_line(policy)) is not None:
            line += "\n" + said
        elif view.next_runs:
            line += "\n" + _("Next run {when}").format(when=when_words(view.next_runs[0], policy.zone))
        if view.last_run is not None:
            line += "\n" + _("Last run: {run}").format(run=run_words(view.last_run, policy.zone))
        blocks.append(section(line))
    if len(views) > MAX_POLICY_ROWS:
        blocks.append(context(_("…and {n} more.").format(n=len(views) - MAX_POLICY_ROWS)))
    return message(head, blocks[:MAX_BLOCKS])


def state_message(policy: Policy) -> Message:
    """The answer to `pause` and `off`: the policy's state, as every view says it."""
    return simple(state_line(policy) or "")


def resumed_message(policy: Policy) -> Message:
    return simple(
        _(":arrow_forward: Runs of server *{id}*'s policy start again: {schedule}.").format(
            id=policy.server_id, schedule=schedule_words(policy)
        )
    )


def run_started_message(run: PolicyRun) -> Message:
    """`/backup policy SERVER run`: how the run began (it counts for retention)."""
    state = _(RUN_STATE[run.state]) if run.state in RUN_STATE else escape(run.state)
    text = _(":arrow_forward: A run of server *{id}*'s policy, now: {state}.").format(id=run.server_id, state=state)
    if run.backup_id:
        text += " " + _("Backup *#{id}*; I prune once it completes.").format(id=run.backup_id)
    if run.state == "creating":
        text += " " + _(
            "The backup API did not confirm it: it may have been created. I look for it by its tag; "
            "it is not taken twice."
        )
    if run.state == "failed" and run.detail:
        text += " " + escape(run.detail)
    return simple(text)


def pinned_message(backup: Backup, pinned: bool, changed: bool) -> Message:
    if pinned:
        text = _(":pushpin: Backup *#{id}* of {server} is pinned: no policy prunes it.")
    else:
        text = _(":pushpin: Backup *#{id}* of {server} is unpinned: its policy may prune it again.")
    text = text.format(id=backup.id, server=server_words(backup.server.id, backup.server.name))
    if not changed:
        text += " " + _("(It already was.)")
    return simple(text)


# --- announcements ---------------------------------------------------------------------------


@for_the_team
def announce_policy(user_id: str, view: PolicyView) -> Message:
    """Told in the server's channels when a policy is set or changed."""
    policy = view.policy
    return simple(
        _(":calendar: <@{user}> set the backup policy of {server}: {schedule}, {keep}.").format(
            user=user_id,
            server=server_words(view.server_id, view.name),
            schedule=schedule_words(policy),
            keep=keep_words(keep_of(policy)),
        )
    )


@for_the_team
def announce_paused(user_id: str | None, policy: Policy) -> Message:
    who = _("<@{user}> paused it.").format(user=user_id) if user_id else ""
    return simple(
        _("Server *{id}*'s backup policy: {state}").format(id=policy.server_id, state=state_line(policy) or "")
        + ("\n" + who if who else "")
    )


@for_the_team
def announce_resumed(user_id: str | None, policy: Policy) -> Message:
    """A pause ended: by a person, or on time (no one)."""
    text = _(":arrow_forward: Runs of server *{id}*'s policy start again: {schedule}.").format(
        id=policy.server_id, schedule=schedule_words(policy)
    )
    if user_id:
        text += " " + _("<@{user}> resumed it.").format(user=user_id)
    else:
        text += " " + _("Its pause ended on time.")
    return simple(text)


@for_the_team
def announce_off(user_id: str, policy: Policy) -> Message:
    return simple(
        _(
            ":black_square_for_stop: <@{user}> turned off server *{id}*'s backup policy: no more runs; "
            "its backups are kept and no longer pruned."
        ).format(user=user_id, id=policy.server_id)
    )


# --- the form --------------------------------------------------------------------------------


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def _input(block_id: str, action_id: str, label: str, initial: str, hint: str, *, optional: bool = False) -> dict:
    element = {"type": "plain_text_input", "action_id": action_id, "max_length": 200}
    if initial:
        element["initial_value"] = initial
    block = {"type": "input", "block_id": block_id, "label": _plain(label), "element": element, "hint": _plain(hint)}
    if optional:
        block["optional"] = True
    return block


def typed_schedule(policy: Policy | None, default_zone: str) -> str:
    """A policy's schedule as it is typed (`daily 02:30 Europe/Berlin`): the form starts from it."""
    if policy is None:
        return f"daily 02:00 {default_zone}"
    return schedule_of(policy).words()


def typed_keep(policy: Policy | None) -> str:
    return (keep_of(policy) if policy else Keep(last=3)).words().removeprefix("keep ")


def policy_form(server_id: int, name: str | None, policy: Policy | None, default_zone: str, metadata: str) -> dict:
    """The policy form: a schedule and a keep as they are typed; Preview shows what they would do."""
    return {
        "type": "modal",
        "callback_id": POLICY_MODAL,
        "private_metadata": metadata,
        "title": _plain(_("Backup policy")),
        "submit": _plain(_("Preview")),
        "close": _plain(_("Cancel")),
        "blocks": [
            section(_("The backup policy of {server}.").format(server=server_words(server_id, name))),
            _input(
                POLICY_SCHEDULE_BLOCK,
                POLICY_SCHEDULE_ACTION,
                _("Schedule"),
                typed_schedule(policy, default_zone),
                _("daily HH:MM, weekly mon,thu HH:MM, or every 6h from 01:00; then an IANA zone like Europe/Berlin"),
            ),
            _input(
                POLICY_KEEP_BLOCK,
                POLICY_KEEP_ACTION,
                _("Keep"),
                typed_keep(policy),
                _("last 5, or daily 7 weekly 2 monthly 1: how many of the policy's own backups to keep"),
            ),
            context(_("Nothing is saved until you press Save on the next page.")),
        ],
    }


def policy_preview(view: PolicyView, metadata: str) -> dict:
    """The form's second page: what the policy would be, its next runs and what its next prune deletes."""
    blocks = [section(_("*Preview* — nothing is saved yet.")), *policy_blocks(view)]
    return {
        "type": "modal",
        "callback_id": POLICY_PREVIEW,
        "private_metadata": metadata,
        "title": _plain(_("Backup policy")),
        "submit": _plain(_("Save")),
        "close": _plain(_("Cancel")),
        "blocks": blocks[:100],
    }


def form_notice(text: str, metadata: str = "") -> dict:
    """The form, replaced with a line: working on it, or why it cannot go on."""
    return {
        "type": "modal",
        "callback_id": POLICY_PREVIEW + "_notice",
        "private_metadata": metadata,
        "title": _plain(_("Backup policy")),
        "close": _plain(_("Close")),
        "blocks": [section(text)],
    }


def form_metadata(server_id: int, channel_id: str | None, response_url: str | None, **extra) -> str:
    return json.dumps({"s": server_id, "ch": channel_id, "ru": response_url, **extra})
