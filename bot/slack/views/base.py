"""Block Kit building blocks and words for things: escaping, sections, buttons, sizes, ages, dates.

Text from people or from the API (descriptions, server names) is escaped for
mrkdwn, so `<!channel>` in a description is shown, never sent as a ping.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.backup_api import Backup
from bot.i18n import N_, _, date_words, ngettext, status_word, type_word
from bot.store import Confirmation

MAX_BLOCKS = 50
MAX_SECTION = 3000
PAGE_SIZE = 20

Message = dict


def escape(text: object) -> str:
    """Escape text for mrkdwn: Slack's three control characters, nothing else."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str, **extra) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}, **extra}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}]}


def button(text: str, action_id: str, value: str, style: str | None = None, confirm: dict | None = None) -> dict:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def message(text: str, blocks: list[dict]) -> Message:
    assert len(blocks) <= MAX_BLOCKS, f"{len(blocks)} blocks: Slack refuses more than {MAX_BLOCKS}"
    return {"text": truncate(text, 3000), "blocks": blocks}


def plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def strip_marks(text: str) -> str:
    """mrkdwn's bold marks taken out, for a notification's plain `text`."""
    return text.replace("*", "")


def simple(text: str) -> Message:
    return message(text, [section(text)])


def api_said(words: str) -> str:
    """What the backup API said in its own words (English), labelled as such under a reply."""
    return _("The backup API said: “{words}”").format(words=escape(words))


def reason_block(reason: str) -> dict:
    """A requester's own words ("Why?"), shown as plain text: no bold, link, mention or emoji code of theirs
    is rendered, so nothing they write can make a card look decided."""
    words = {"type": "plain_text", "text": truncate(reason, 2000), "emoji": False}
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _("*Why:*")}, words]}


def with_note(message: Message, note: str) -> Message:
    """The message with a small note under it (a reference, a problem with the announcement)."""
    return {**message, "blocks": [*message["blocks"], context(note)][:MAX_BLOCKS]}


# --- words for things ---------------------------------------------------------


def size_words(size_mb: int | None) -> str:
    if size_mb is None:
        return _("size not known yet")
    if size_mb < 1024:
        return f"{size_mb} MB"
    return f"{size_mb / 1024:.1f} GB"


def ago(moment: datetime, now: datetime) -> str:
    """How long ago (or how long until) `moment`, in the reader's words: `2 hours ago`, `in 3 days`, `2시간 전`."""
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 60:
        return _("just now")
    count, unit = next((int(abs(seconds) // size), unit) for unit, size in _UNITS if abs(seconds) >= size)
    if seconds < 0:
        if unit == "day":
            words = ngettext("in {n} day", "in {n} days", count)
        elif unit == "hour":
            words = ngettext("in {n} hour", "in {n} hours", count)
        else:
            words = ngettext("in {n} minute", "in {n} minutes", count)
    elif unit == "day":
        words = ngettext("{n} day ago", "{n} days ago", count)
    elif unit == "hour":
        words = ngettext("{n} hour ago", "{n} hours ago", count)
    else:
        words = ngettext("{n} minute ago", "{n} minutes ago", count)
    return words.format(n=count)


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's own time zone, with a fallback in UTC written as the reader writes it."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{date_words(moment)}>"


def server_words(server_id: int, name: str | None) -> str:
    if name and name != str(server_id):
        return f"*{escape(name)}* ({server_id})"
    return _("server *{id}*").format(id=server_id)


def pipeline_words(user_id: str) -> str:
    """Who asked, when it was not a person in Slack: a pipeline's token by its name, the shell by its login;
    never a mention."""
    kind, _sep, name = user_id.partition(":")
    if kind == "token":
        return _("*{name}* (pipeline)").format(name=escape(name))
    return f"`{escape(user_id)}`"


def by_a_pipeline(user_id: str) -> bool:
    """A backup a pipeline's token (or the shell) asked for: the team hears it by name, and how long it took."""
    return user_id.startswith(("token:", "cli:"))


def plain_server(server_id: int, name: str | None) -> str:
    """A server's name and ID for inside a bold span, where mrkdwn cannot nest another."""
    if name and name != str(server_id):
        return f"{escape(name)} ({server_id})"
    return _("server {id}").format(id=server_id)


STATUS_ICON = {"completed": ":white_check_mark:", "in_progress": ":hourglass_flowing_sand:"}


def status_words(status: str) -> str:
    icon = STATUS_ICON.get(status, ":warning:")
    return f"{icon} {escape(status_word(status))}"


# States of the bot's own records, in the reader's words wherever they are shown (the English is
# what the store keeps, except where a bare word would not say enough).
REQUEST_STATE = {
    "pending": N_("waiting for approval"),
    "approved": N_("approved"),
    "done": N_("done"),
    "failed": N_("failed"),
    "denied": N_("rejected"),  # by a person; an audited `denied` is the bot's refusal
    "withdrawn": N_("withdrawn"),
    "expired": N_("expired"),
}
CONFIRMATION_STATE = {
    "pending": N_("still open"),
    "used": N_("already used"),
    "cancelled": N_("cancelled"),
    "expired": N_("expired"),
    "gone": N_("gone"),
    "unrestorable": N_("not restorable"),
    "failed": N_("failed"),
}
WINDOW_STATE = {
    "waiting": N_("waiting to be deleted"),
    "sending": N_("being deleted"),
    "done": N_("deleted"),
    "gone": N_("gone"),
    "failed": N_("failed"),
    "undone": N_("undone"),
}
AUDIT_OUTCOME = {"done": N_("done"), "denied": N_("denied"), "failed": N_("failed"), "cancelled": N_("cancelled")}


def state_words(table: dict[str, str], state: object) -> str:
    """A state from one of the tables above in the reader's words; one not in it, as it is."""
    value = str(getattr(state, "value", state))
    return _(table[value]) if value in table else escape(value)


# The description in the `create` example (bot/parsing.py) is free text: it reads in the reader's language.
EXAMPLE_DESCRIPTION = N_("Before the 2.4 deploy")


def example_words(example: str) -> str:
    """A usage example as the reader would type it: command words stay, the example's description is theirs."""
    return example.replace(EXAMPLE_DESCRIPTION, _(EXAMPLE_DESCRIPTION))


def role_words(role: str) -> str:
    """A person's standing on a server: the role words stay as typed in `/backup grant`; admin is not typed."""
    return _("admin") if role == "admin" else escape(role)


def expiry_words(backup: Backup, now: datetime) -> str:
    if backup.expires_at is None:
        return _("never expires") if backup.backup_type == "manual" else _("no expiry given")
    return _("expires {when}").format(when=ago(backup.expires_at, now))


def backup_text(backup: Backup, now: datetime) -> str:
    lines = [
        f"*#{backup.id}* · {server_words(backup.server.id, backup.server.name)} · {escape(type_word(backup.backup_type))}"
        f" · {status_words(backup.status)} · {size_words(backup.size_mb)}",
        _("Created {ago} ({date})").format(ago=ago(backup.created_at, now), date=slack_date(backup.created_at))
        + f" · {expiry_words(backup, now)}",
    ]
    if backup.description:
        lines.extend(f"> {line}" for line in escape(truncate(backup.description, 500)).splitlines())
    return "\n".join(lines)


def confirmation_facts(conf: Confirmation) -> str:
    created = datetime.fromisoformat(conf.backup_created_at)
    return _("Backup *#{id}* ({type}, taken {date}) of {server}").format(
        id=conf.backup_id,
        type=escape(type_word(conf.backup_type)),
        date=slack_date(created),
        server=server_words(conf.server_id, conf.server_name),
    )


def flatten_text(blocks: Iterable[dict]) -> str:
    """The mrkdwn of every section and context, for tests and logs."""
    parts = []
    for block in blocks:
        if "text" in block and isinstance(block["text"], dict):
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                parts.append(element["text"])
            elif isinstance(element.get("text"), dict):
                parts.append(element["text"]["text"])
    return "\n".join(parts)
