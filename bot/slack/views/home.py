"""The Home tab: a person's servers and where their backups stand, what waits for their decision,
their last actions. Never more than Slack's 100 blocks: past that it says how many servers are left out."""

from __future__ import annotations

from datetime import datetime

from bot.backup_api import MANUAL_LIMIT
from bot.i18n import _
from bot.ops import HomeView, ServerSummary
from bot.slack.ids import APPROVE, DENY, HOME_CREATE, HOME_REFRESH, HOME_SERVER_MENU
from bot.slack.views.approvals import request_facts
from bot.slack.views.base import (
    MAX_SECTION,
    ago,
    button,
    context,
    escape,
    reason_block,
    role_words,
    server_words,
    size_words,
    slack_date,
    status_words,
    truncate,
)
from bot.slack.views.messages import audit_line

MAX_HOME_BLOCKS = 100
MAX_WAITING = 10


FRESHNESS_ICON = {"fresh": ":large_green_circle:", "due": ":large_yellow_circle:", "stale": ":red_circle:"}


def _server_text(s: ServerSummary, now: datetime) -> str:
    icon = f"{FRESHNESS_ICON[s.state]} " if s.state else ""
    head = f"{icon}{server_words(s.server_id, s.name)} — {role_words(s.role)}"
    if s.approvals:
        head += " · " + _("two-person rule")
    if s.newest is None:
        newest = _("no backups yet")
    else:
        b = s.newest
        newest = _("newest *#{id}* {status}, {ago}, {size}").format(
            id=b.id, status=status_words(b.status), ago=ago(b.created_at, now), size=size_words(b.size_mb)
        )
    running = " · " + _("{n} in progress").format(n=s.in_progress) if s.in_progress else ""
    manual = _("manual backups {n} of {limit}").format(n=s.manual_used, limit=MANUAL_LIMIT)
    alerts = " · " + _(":rotating_light: {n} open alerts").format(n=s.alerts) if s.alerts else ""
    return f"{head}\n{newest}{running} · {manual}{alerts}\n{_policy_words(s)}"


def _policy_words(s: ServerSummary) -> str:
    if s.policy_state == "paused":
        return (
            _("Policy paused; next run {date}").format(date=slack_date(s.next_run))
            if s.next_run
            else _("Policy paused")
        )
    if s.policy_state == "off":
        return _("Policy off")
    if s.next_run is not None:
        return _("Policy: next run {date}").format(date=slack_date(s.next_run))
    return _("No backup policy")


def _server_menu(s: ServerSummary) -> dict | None:
    """What a person may do with a server from the Home tab: take a backup, set its policy."""
    options = []
    if s.may_create:
        options.append((_("Take a backup"), f"create:{s.server_id}"))
    if s.may_set_policy:
        options.append((_("Backup policy…"), f"policy:{s.server_id}"))
    if not options:
        return None
    if len(options) == 1 and options[0][1].startswith("create:"):
        return button(_("Take a backup"), HOME_CREATE, str(s.server_id))
    return {
        "type": "overflow",
        "action_id": HOME_SERVER_MENU,
        "options": [{"text": {"type": "plain_text", "text": text}, "value": value} for text, value in options],
    }


def home_view(home: HomeView, now: datetime, note: str | None = None) -> dict:
    """The `home` view for views.publish."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _("Your backups")}},
        {
            "type": "actions",
            "block_id": "home_top",
            "elements": [button(_("Refresh"), HOME_REFRESH, "refresh")],
        },
        context(
            _("Updated {date}.").format(date=slack_date(now))
            + (" " + _("You are an admin: every server the bot knows.") if home.is_admin else "")
        ),
    ]
    if note:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate(note, MAX_SECTION)}})
    if home.api_problem:
        blocks.append(
            context(
                _(":construction: The backup API did not answer for every server ({problem}).").format(
                    problem=escape(home.api_problem)
                )
            )
        )
    if home.waiting:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _("*Waiting for your decision*")}})
        for request in home.waiting[:MAX_WAITING]:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": _("<@{user}> asks to {facts}.").format(
                            user=request.requested_by, facts=request_facts(request)
                        ),
                    },
                }
            )
            if request.reason:
                blocks.append(reason_block(request.reason))
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"decide-{request.id}"[:255],
                    "elements": [
                        button(_("Approve"), APPROVE, request.id, style="primary"),
                        button(_("Deny"), DENY, request.id, style="danger"),
                    ],
                }
            )
    tail = [{"type": "divider"}, _recent(home)]
    room = MAX_HOME_BLOCKS - len(blocks) - len(tail) - 2
    shown = home.servers[:room]
    title = _("*Your servers ({n})*").format(n=len(home.servers))
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": title}})
    if not home.servers:
        blocks.append(context(_("You have no role on any server yet: an admin can give you one with `/backup grant`.")))
    for s in shown:
        block = {
            "type": "section",
            "block_id": f"server-{s.server_id}",
            "text": {"type": "mrkdwn", "text": _server_text(s, now)},
        }
        if (menu := _server_menu(s)) is not None:
            block["accessory"] = menu
        blocks.append(block)
    if len(home.servers) > len(shown):
        more = len(home.servers) - len(shown)
        blocks.append(context(_("…and {n} more servers: `/backup servers` lists them all.").format(n=more)))
    blocks.extend(tail)
    assert len(blocks) <= MAX_HOME_BLOCKS
    return {"type": "home", "blocks": blocks}


def _recent(home: HomeView) -> dict:
    lines = [audit_line(e) for e in home.recent] or [_("Nothing yet.")]
    text = truncate(_("*Your last actions*") + "\n" + "\n".join(lines), MAX_SECTION)
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}
