"""Rendering (bot/slack/views): words, escaping and Block Kit limits, checked with slack_sdk's own block models."""

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.backup_api import ApiTimeout, Backup, BadRequest, NotFound, Server, Unauthorized, Unavailable
from bot.ops import (
    BackupNotFound,
    ConfirmationUnavailable,
    Done,
    Listing,
    NotRestorable,
    PermissionDenied,
    ServerAccess,
)
from bot.ops.writes import Sent, Write, WriteKind, WriteOutcome
from bot.parsing import UsageError
from bot.policy import Action, Role
from bot.slack import ids
from bot.slack.views import base, errors, messages, modals
from bot.store import AuditEntry, Confirmation, ConfirmationState, Followed

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def backup(n=1, *, status="completed", kind="manual", description="Pre-deploy", server_name="web-01"):
    return Backup(
        id=5000 + n,
        server=Server(12345, server_name),
        backup_type=kind,
        status=status,
        size_mb=4523 if status == "completed" else None,
        created_at=NOW - timedelta(hours=n),
        expires_at=NOW + timedelta(days=29) if kind == "automatic" else None,
        description=description,
    )


def conf(action="delete", **changes):
    values = dict(
        id="tok",
        action=action,
        backup_id=5001,
        server_id=12345,
        server_name="web-<01>",
        target_server_id=12345,
        target_server_name="web-<01>",
        backup_created_at=(NOW - timedelta(days=1)).isoformat(),
        backup_type="manual",
        requested_by="U1",
        created_at=NOW,
        state="pending",
        used_by=None,
        used_at=None,
    )
    values.update(changes)
    values["state"] = ConfirmationState(values["state"])
    return Confirmation(**values)


def valid(message):
    """Slack's own models validate lengths and shapes; to_dict() raises on a violation."""
    assert len(message["blocks"]) <= base.MAX_BLOCKS
    for block in Block.parse_all(message["blocks"]):
        block.to_dict()
    return message


def test_escape_neutralises_mentions():
    assert base.escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"


@pytest.mark.parametrize(("mb", "words"), [(None, "size not known yet"), (900, "900 MB"), (4523, "4.4 GB")])
def test_size_words(mb, words):
    assert base.size_words(mb) == words


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=30), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(hours=5), "5 hours ago"),
        (timedelta(days=2, hours=3), "2 days ago"),
        (-timedelta(days=29), "in 29 days"),
    ],
)
def test_ago(delta, words):
    assert base.ago(NOW - delta, NOW) == words


def test_backup_text_reads_well():
    text = base.backup_text(backup(description="<!here> & co", server_name="a<b>"), NOW)
    assert text.splitlines()[0] == "*#5001* · *a&lt;b&gt;* (12345) · manual · :white_check_mark: completed · 4.4 GB"
    assert "Created 1 hour ago (<!date^" in text and "|2026-11-29 11:00 UTC>) · never expires" in text
    assert text.splitlines()[2] == "> &lt;!here&gt; &amp; co"


def test_unknown_status_is_shown_as_it_comes():
    text = base.backup_text(backup(status="failed"), NOW)
    assert ":warning: failed" in text


def test_listing_of_300_stays_within_limits_and_pages():
    items = [backup(n, kind="automatic", description="x" * 255 + "<!channel>") for n in range(300)]
    listing = Listing(items, None, None, is_admin=True)
    first = valid(messages.listing_message(listing, NOW))
    assert "*300 backups*" in first["blocks"][0]["text"]["text"]
    assert "Showing 1–20 of 300." in base.flatten_text(first["blocks"])
    last = valid(messages.listing_message(listing, NOW, offset=280))
    assert "Showing 281–300 of 300." in base.flatten_text(last["blocks"])
    assert [b["action_id"] for b in last["blocks"][-1]["elements"]] == [ids.LIST_PREV]


def test_listing_buttons_follow_the_role_and_status():
    items = [backup(1), backup(2, status="in_progress")]
    owner = messages.listing_message(Listing(items, 12345, None, False, {12345: Role.OWNER}), NOW)
    actions = [[e["action_id"] for e in b["elements"]] for b in owner["blocks"] if b["type"] == "actions"]
    assert actions == [[ids.RESTORE_REQUEST, ids.DELETE_REQUEST], [ids.DELETE_REQUEST]]
    viewer = messages.listing_message(Listing(items, 12345, None, False, {12345: Role.VIEWER}), NOW)
    assert not [b for b in viewer["blocks"] if b["type"] == "actions"]


def test_empty_listings():
    assert "No manual backups" in messages.listing_message(Listing([], 7, "manual", True), NOW)["text"]
    assert "no role on any server" in messages.listing_message(Listing([], None, None, False), NOW)["text"]


def test_confirmations_name_backup_server_date_and_are_valid():
    delete = valid(messages.delete_confirmation_message(conf()))
    text = base.flatten_text(delete["blocks"])
    assert "Backup *#5001* (manual, taken <!date^" in text and "*web-&lt;01&gt;* (12345)" in text
    assert "cannot be undone" in text
    dialog = delete["blocks"][1]["elements"][0]["confirm"]
    assert len(dialog["text"]["text"]) <= 300 and dialog["confirm"]["text"] == "Delete it"
    windowed = valid(messages.delete_confirmation_message(conf(), 30))
    assert "you can still undo it for 30 seconds; then it is gone for good" in base.flatten_text(windowed["blocks"])
    assert "once its 30-second undo window ends" in windowed["blocks"][1]["elements"][0]["confirm"]["text"]["text"]
    restore = valid(messages.restore_confirmation_message(conf("restore")))
    assert "will replace everything on" in base.flatten_text(restore["blocks"])


def test_under_the_two_person_rule_the_delete_confirmation_says_what_will_happen():
    """An approved delete is sent at once: no undo window is promised, in the message or its dialog."""
    ruled = valid(messages.delete_confirmation_message(conf(), 30, ruled=True))
    text = base.flatten_text(ruled["blocks"])
    assert "under the two-person rule" in text and "a second owner or an admin must approve it" in text
    assert "once approved it is deleted at once, with no undo" in text and "undo it for" not in text
    dialog = ruled["blocks"][1]["elements"][0]["confirm"]["text"]["text"]
    assert "will be gone for good once it is approved" in dialog and "undo window" not in dialog


def test_restore_modal_is_a_valid_view():
    view = modals.restore_modal(conf("restore"), '{"c": "tok"}')
    View(**view).to_dict()
    assert view["blocks"][1]["block_id"] == ids.RESTORE_INPUT_BLOCK


def test_a_long_server_name_keeps_buttons_within_limits():
    long = conf("restore", target_server_name="n" * 300)
    valid(messages.restore_confirmation_message(long))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (UsageError("`x` is not a server ID", "list"), "Usage: `/backup list [SERVER] [manual|automatic]`"),
        (
            PermissionDenied(Action.DELETE, 12345, "owner"),
            "You can't delete a backup on server *12345*: that needs the *owner* role",
        ),
        (PermissionDenied(Action.GRANT, None, "admin"), "Only an admin may grant roles."),
        (BackupNotFound(5), "There is no backup *#5*"),
        (NotRestorable(backup(status="in_progress")), "only a completed backup can be restored"),
        (ConfirmationUnavailable(None), "I don't know this confirmation any more"),
        (ConfirmationUnavailable(conf(state="expired")), "has expired, so nothing was done. Run `/backup delete 5001`"),
        (Unauthorized("x"), "refused the bot's credentials (401)"),
        (BadRequest("Limit <reached>"), "refused this: “Limit &lt;reached&gt;”"),
        (NotFound("Server not found."), "“Server not found.” (404)"),
        (ApiTimeout("x"), "didn't answer in time"),
        (Unavailable("the backup API is failing (503)"), "unavailable right now (the backup API is failing (503))"),
        (KeyError("boom"), "Something went wrong inside the bot"),
    ],
)
def test_every_error_has_plain_words(error, words):
    assert words in errors.error_text(error)
    valid(errors.error_message(error))


def test_audit_and_servers_messages():
    entries = [
        AuditEntry(i, "2026-11-29T12:00:00+00:00", "U1", "delete", 12345, 5001, "denied", "<!channel>" * 30, "slack")
        for i in range(50)
    ]
    message = valid(messages.audit_message(entries))
    assert "&lt;!channel&gt;" in base.flatten_text(message["blocks"])
    assert "<!channel>" not in str(message)
    assert valid(messages.servers_message([ServerAccess(1, "a<b", "owner"), ServerAccess(2, None, "viewer")]))
    assert "no role on any server" in messages.servers_message([])["text"]


def test_announcements():
    followed = Followed(5001, 12346, "U1", "C1", None, "", NOW, "following")
    done = messages.announce_finished(followed, backup(1, server_name="db-01"), manual_count=10)
    assert "is complete (4.4 GB) — asked for by <@U1>" in done["text"]
    assert "*10 of 10* manual backups: the next `create` will be refused" in done["text"]
    failed = messages.announce_finished(followed, backup(1, status="error"), manual_count=3)
    assert "FAILED" in failed["text"] and "of 10" not in failed["text"]
    assert "<@U2> deleted backup *#5001*" in messages.announce_deleted("U2", conf())["text"]
    assert "started restoring" in messages.announce_restore("U2", conf("restore"))["text"]
    assert "Restore of" in messages.restore_started_message(Done(conf("restore"), "Restore <started>"))["text"]


def approval_request(state="pending", **changes):
    from bot.store import ApprovalRequest, ApprovalState

    values = dict(
        id="req",
        action="restore",
        backup_id=5001,
        server_id=12345,
        server_name="web-<01>",
        target_server_id=12346,
        target_server_name="db-01",
        backup_created_at=(NOW - timedelta(days=1)).isoformat(),
        backup_type="manual",
        backup_description="x" * 255,
        requested_by="U1",
        reason="<!channel> " + "why " * 120,
        origin_channel="C1",
        response_url="https://hooks.slack.com/actions/T/1/x",
        card_channel="CNOTIFY",
        card_ts="1.2",
        created_at=NOW.isoformat(),
        expires_at=(NOW + timedelta(minutes=30)).timestamp(),
        state=ApprovalState(state),
        decided_by="U2" if state != "pending" else None,
        decided_at=None,
        detail="the backup no longer exists" if state == "failed" else None,
    )
    values.update(changes)
    return ApprovalRequest(**values)


@pytest.mark.parametrize("state", ["done", "failed", "denied", "withdrawn", "expired"])
def test_approval_views_pass_slacks_checks_and_escape_what_people_wrote(state):
    from bot.ops import Decision
    from bot.slack.views import approvals

    pending = approval_request()
    for message in (approvals.awaiting_message(pending), approvals.approval_card(pending)):
        valid(message)
        assert "<!channel>" not in str(parsed_texts(message))
    assert "restore *db-01* (12346) from backup *#5001*" in base.flatten_text(
        approvals.approval_card(pending)["blocks"]
    )
    decided = Decision(approval_request(state), sent=a_sent(WriteKind.RESTORE, message="Restore started."))
    for message in (approvals.decided_card(decided), approvals.decided_reply(decided)):
        valid(message)
        assert not [b for b in message["blocks"] if b["type"] == "actions"], "a decided request has no buttons"
        assert "<!channel>" not in str(parsed_texts(message))


def test_the_home_view_passes_slacks_checks_with_hostile_names_and_many_servers():
    from bot.ops import HomeView, ServerSummary
    from bot.slack.views.home import home_view

    servers = [
        ServerSummary(n, f"<!channel> node-{n}", "owner", n % 2 == 0, backup(1), 1, 10, True) for n in range(1, 160)
    ]
    waiting = [approval_request(id=f"r{n}") for n in range(12)]
    home = HomeView("U1", False, servers, waiting, [], api_problem="the backup API is failing (503)")
    view = home_view(home, NOW, note="x" * 5000)
    View(**view).to_dict()
    assert len(view["blocks"]) <= 100 and "<!channel>" not in str(parsed_texts(view))
    assert "…and" in base.flatten_text(view["blocks"]) and "more servers" in base.flatten_text(view["blocks"])


HOSTILE = "<!channel> & " + "n" * 300


def parsed_texts(message: dict) -> list[str]:
    """Every text Slack parses as mrkdwn (mentions and formatting): all but plain_text objects."""
    found = []
    if isinstance(message, dict):
        if message.get("type") == "plain_text":
            return []
        for key, value in message.items():
            found += [value] if key == "text" and isinstance(value, str) else parsed_texts(value)
    elif isinstance(message, list):
        for value in message:
            found += parsed_texts(value)
    return found


def a_sent(kind, outcome=WriteOutcome.DONE, *, why=None, message=None, server_id=12345, backup_id=5001):
    """A write as `send_write` would return it, for rendering."""
    write = Write(kind, server_id, None if kind is WriteKind.CREATE else backup_id)
    return Sent(write, "w1", outcome, message=message, why=why)


def test_safety_net_views_pass_slacks_checks_and_escape_what_people_wrote():
    from bot.i18n import Words
    from bot.ops import ChainStarted, ChainStep, DeleteSent, NoRoom, RoomMade, SafetyBackupFailed
    from bot.slack.views import safety
    from bot.store import ChainState, DeleteWindow, RestoreChain, WindowState

    hostile_why = Words("{text}", text="the backup API failed <boom> " + HOSTILE)

    window = DeleteWindow(
        "w1", 5001, 12345, HOSTILE, "manual", "U1", None, "C1", None, NOW.timestamp() + 30, WindowState.WAITING, ""
    )
    chain = RestoreChain(
        "c1", 5001, 12345, HOSTILE, 12345, HOSTILE, "U1", "U2", "C1", None, 5040, ChainState.WAITING, "", 0.0
    )
    old = backup(9, description=HOSTILE, server_name=HOSTILE)
    rendered = [
        safety.delete_scheduled_message(window, NOW),
        safety.undone_message(window),
        *(
            safety.delete_sent_message(DeleteSent(window, a_sent(WriteKind.DELETE, outcome, why=hostile_why)))
            for outcome in WriteOutcome
        ),
        safety.chain_started_message(ChainStarted(chain, backup(2))),
        safety.chain_step_message(ChainStep(chain, a_sent(WriteKind.RESTORE, message=HOSTILE))),
        safety.chain_step_message(ChainStep(chain, a_sent(WriteKind.RESTORE, WriteOutcome.UNKNOWN, why=hostile_why))),
        safety.announce_chain_step(ChainStep(chain, a_sent(WriteKind.RESTORE, WriteOutcome.UNKNOWN, why=hostile_why))),
        safety.chain_step_message(ChainStep(chain, why=Words("{text}", text=HOSTILE), offer_without=True)),
        safety.safety_failed_message(SafetyBackupFailed(chain, Words("{text}", text=HOSTILE))),
        safety.announce_chain_started(ChainStarted(chain, backup(2))),
        safety.announce_chain_step(ChainStep(chain, why=Words("{text}", text=HOSTILE))),
        safety.make_room_confirmation_message(
            conf(purpose="make_room", description=HOSTILE, backup_description=HOSTILE)
        ),
        safety.room_made_message(
            RoomMade(conf(), None, BadRequest(HOSTILE)), errors.error_message(BadRequest(HOSTILE))
        ),
    ]
    for may, ruled in ((True, False), (False, False), (True, True)):
        error = NoRoom(12345, 10, old, description=HOSTILE, may_make_room=may, ruled=ruled, provider_message=HOSTILE)
        rendered.append(errors.error_message(error))
    for message in rendered:
        valid(message)
        text = base.flatten_text(message["blocks"])
        assert "<!channel>" not in text, text[:200]
    assert "(in 30 seconds)" in base.flatten_text(rendered[0]["blocks"])
    no_room = [b["action_id"] for m in rendered[-3:] for b in m["blocks"][-1].get("elements", []) if "action_id" in b]
    assert no_room == [ids.MAKE_ROOM], "the button only for an owner or admin, and not under the two-person rule"


def test_the_restore_form_warns_when_there_is_no_room_for_a_safety_backup():
    full = modals.restore_modal(conf("restore", target_manual_count=10, safety=False), "{}")
    View(**full).to_dict()
    box = next(b for b in full["blocks"] if b.get("block_id") == ids.RESTORE_SAFETY_BLOCK)
    assert "initial_options" not in box["element"] and box["optional"] is True
    assert "no room for a safety backup" in base.flatten_text(full["blocks"])
    roomy = modals.restore_modal(conf("restore", target_manual_count=3), "{}")
    assert "no room" not in base.flatten_text(roomy["blocks"])
