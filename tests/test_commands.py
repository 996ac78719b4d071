"""/backup end to end: signed requests to the live app, replies read from the loopback Slack."""

import json

import pytest
from conftest import ADMIN, CHANNEL, NOTIFY, button, buttons, text_of

from bot.policy import Role
from bot.slack.ids import CONFIRM_DELETE, DELETE_REQUEST, OPEN_RESTORE, RESTORE_REQUEST

OWNER, OPERATOR, VIEWER, NOBODY = "U0OWNER", "U0OPERATOR", "U0VIEWER", "U0NOBODY"


@pytest.fixture
def roles(stack):
    stack.grant(OWNER, 12345, "owner")
    stack.grant(OPERATOR, 12345, "operator")
    stack.grant(VIEWER, 12345, "viewer")
    return stack


def test_help_is_answered_in_the_ack(stack):
    for text in ("", "help"):
        response, _key = stack.command(text, user=ADMIN)
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert "/backup list [SERVER] [manual|automatic]" in text_of(body)
        assert "/backup restore 5003" in text_of(body)
        assert "viewer &lt; operator &lt; owner" in text_of(body), "mrkdwn's < escaped"
        assert "viewer < operator" not in text_of(body)
    assert stack.recorder.responses() == []


def help_for(stack, user) -> str:
    response, _key = stack.command("help", user=user)
    return text_of(response.json())


def test_help_fits_the_person(roles):
    nobody, viewer, owner, admin = (help_for(roles, u) for u in (NOBODY, VIEWER, OWNER, ADMIN))
    assert "`/backup servers`" in nobody and "`/backup list" not in nobody
    assert "Also there, with more rights: `list` (viewer), `create` (operator)" in nobody
    assert "`/backup list [SERVER]" in viewer and "`/backup create" not in viewer
    assert "`create` (operator), `delete` (owner), `restore` (owner)" in viewer
    assert "`/backup delete BACKUP`" in owner and "`/backup grant USER" not in owner
    assert "`grant` (admin), `revoke` (admin), `audit` (admin), `approvals` (admin)" in owner
    assert "An admin can give a role with `/backup grant`." in owner
    assert "`/backup grant USER SERVER" in admin and "Also there" not in admin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate", "`frobnicate` is not a /backup command"),
        ("delete", "Usage: `/backup delete BACKUP`"),
        ("list web", "`web` is not a server ID"),
        ("grant @alice 12345", "pick the person from Slack's autocomplete"),
        ("audit 999", "Usage: `/backup audit [N]"),
    ],
)
def test_bad_input_says_what_is_wrong_and_what_to_type(stack, text, expected):
    response, _ = stack.command(text)
    body = response.json()
    assert response.status_code == 200 and body["response_type"] == "ephemeral"
    assert expected in text_of(body)
    assert "Traceback" not in response.text


def test_list_renders_name_id_type_status_size_age_expiry_description(roles):
    reply, _ = roles.ask("list 12345", user=VIEWER)
    text = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    assert "*9 backups* on *web-server-01* (12345), newest first." in text
    assert "automatic · :white_check_mark: completed · 4.0 GB" in text
    assert "Created 20 hours ago" in text and "never expires" in text and "expires in 29 days" in text
    assert "> Before nginx 1.27 upgrade" in text
    assert buttons(reply) == [], "a viewer is offered no buttons"


def test_list_offers_owners_restore_and_delete(roles):
    reply, _ = roles.ask("list 12345 manual", user=OWNER)
    assert "*2 manual backups*" in text_of(reply)
    assert [(b["action_id"], b["value"]) for b in buttons(reply)] == [
        (RESTORE_REQUEST, "5023"),
        (DELETE_REQUEST, "5023"),
        (RESTORE_REQUEST, "5022"),
        (DELETE_REQUEST, "5022"),
    ]


def test_list_without_server_covers_every_server_the_user_may_see(roles):
    reply, _ = roles.ask("list", user=OPERATOR)
    assert "*9 backups* on every server you may see" in text_of(reply)
    reply, _ = roles.ask("list", user=NOBODY)
    assert "You have no role on any server yet" in text_of(reply)


def test_create_replies_in_progress_and_announces(roles):
    reply, _ = roles.ask("create 12345 Before <deploy> & <!channel>", user=OPERATOR)
    text = text_of(reply)
    assert "Backup *#5033* of *web-server-01* (12345) has started" in text
    assert ":hourglass_flowing_sand: in progress" in text
    assert "> Before &lt;deploy&gt; &amp; &lt;!channel&gt;" in text, "user text is escaped in mrkdwn"
    announcement = roles.recorder.wait_for(lambda _r: roles.recorder.api("chat.postMessage"))[0]
    assert announcement["channel"] == NOTIFY
    assert announcement["text"].startswith(":floppy_disk: <@U0OPERATOR> started a manual backup *#5033*")
    assert "<!channel>" not in json.dumps(announcement)
    assert roles.sim.count("POST", "/api/v1/backups") == 1


def test_create_reaches_the_api_with_the_description_as_typed(roles):
    roles.ask("create 12347 a <b> & c", user=ADMIN)
    backups = roles.sim.handle(
        "GET", "/api/v1/backups/", "server_id=12347&backup_type=manual", {"authorization": "Bearer x"}, b""
    ).body["results"]
    assert "a <b> & c" in {b["description"] for b in backups}


def test_delete_asks_for_confirmation_naming_backup_server_date(roles):
    reply, _ = roles.ask("delete 5023", user=OWNER)
    text = text_of(reply)
    assert "*Delete this backup?*" in text
    assert "Backup *#5023* (manual, taken <!date^" in text and "|2026-" in text
    assert "of *web-server-01* (12345) will be deleted *permanently*. This cannot be undone." in text
    confirm = button(reply, CONFIRM_DELETE)
    assert confirm["style"] == "danger"
    assert confirm["confirm"]["title"]["text"] == "Delete backup #5023?"
    assert "cannot be undone" in confirm["confirm"]["text"]["text"]
    assert roles.sim.count("DELETE") == 0, "nothing is deleted before confirmation"


def test_restore_asks_for_confirmation_then_a_typed_name(roles):
    reply, _ = roles.ask("restore 5023", user=OWNER)
    assert "Whatever was written there since is *lost*" in text_of(reply)
    assert button(reply, OPEN_RESTORE)["text"]["text"] == "Restore web-server-01…"
    assert roles.sim.restores == []


def test_servers_and_grants_through_slack(roles):
    roles.runtime.store.grant(OPERATOR, 424242, Role.OPERATOR, "test")
    reply, _ = roles.ask("servers", user=OPERATOR)
    assert "• server *424242* — operator" in text_of(reply), "no name known (the API never listed it): the ID alone"
    assert "• *web-server-01* (12345) — operator" in text_of(reply), "the name, once an API answer gave it"
    reply, _ = roles.ask("grant <@U0NEWBIE|newbie> 12346 viewer")
    assert text_of(reply) == ":key: <@U0NEWBIE> is now *viewer* on server *12346*."
    reply, _ = roles.ask("list 12346", user="U0NEWBIE")
    assert "db-server-01" in text_of(reply)
    reply, _ = roles.ask("revoke U0NEWBIE 12346")
    assert "no longer has a role" in text_of(reply)
    reply, _ = roles.ask("audit 3")
    assert "*Last 3 audit entries, newest first*" in text_of(reply)
    assert "*revoke* on 12346 → done (slack)" in text_of(reply)


ALLOWED = {
    # subcommand: (nobody, viewer, operator, owner, admin)
    "list 12345": (False, True, True, True, True),
    "create 12345": (False, False, True, True, True),
    "delete 5023": (False, False, False, True, True),
    "restore 5023": (False, False, False, True, True),
    "grant U0SOMEONE 12345": (False, False, False, False, True),
    "revoke U0SOMEONE 12345": (False, False, False, False, True),
    "audit": (False, False, False, False, True),
}


@pytest.mark.parametrize("text", list(ALLOWED))
@pytest.mark.parametrize("who", range(5))
def test_each_role_against_each_action(roles, text, who):
    user = (NOBODY, VIEWER, OPERATOR, OWNER, ADMIN)[who]
    reply, _ = roles.ask(text, user=user)
    hidden = user == NOBODY and text.split()[0] in ("delete", "restore")
    denied = text_of(reply).startswith(":mag: There is no backup" if hidden else ":no_entry:")
    assert denied is not ALLOWED[text][who], text_of(reply)
    if not denied and text.split()[0] in ("delete", "restore"):
        assert "cannot be undone" in text_of(reply), "allowed: the outcome is audited once confirmed or cancelled"
        return
    last = roles.runtime.store.audit_entries(1)[0]
    assert (last.user_id, last.outcome) == (user, "denied" if denied else "done"), "every attempt is audited"


def test_a_backup_on_a_server_where_one_has_no_role_is_told_as_missing(roles):
    hidden, _ = roles.ask("delete 5008", user=OWNER)
    missing, _ = roles.ask("delete 5999", user=OWNER)
    assert (
        text_of(hidden)
        == text_of(missing).replace("5999", "5008")
        == (":mag: There is no backup *#5008*. `/backup list` shows the ones there are.")
    )
    restore, _ = roles.ask("restore 5008", user=OWNER)
    assert text_of(restore).startswith(":mag: There is no backup *#5008*")
    denied = [e for e in roles.runtime.store.audit_entries(10) if e.backup_id == 5008]
    assert [(e.action, e.outcome) for e in denied] == [("restore", "denied"), ("delete", "denied")]


def test_ack_comes_before_slow_work(roles):
    roles.sim.latency = 0.5
    response, key = roles.command("list 12345", user=VIEWER)
    assert response.status_code == 200 and response.text == ""
    assert roles.recorder.responses(key) == [], "the ack did not wait for the API"
    assert "web-server-01" in text_of(roles.reply(key))


def test_ack_comes_before_the_store_is_read(roles):
    """Who asks (their language, their role) is read after the ack: a store whose reads are held up does not
    hold up Slack's answer."""
    store = roles.runtime.store
    with store._read_lock, store._now_lock:  # every read of the store waits while the test holds these
        response, key = roles.command("list 12345", user=VIEWER)
        assert response.status_code == 200 and response.text == ""
        assert roles.recorder.responses(key) == []
    assert "web-server-01" in text_of(roles.reply(key))


def test_mentions_and_channel_from_the_command(roles):
    reply, _ = roles.ask("create 12345", user=OWNER, channel="C0ELSEWHERE")
    assert reply["response_type"] == "ephemeral"
    announcement = roles.recorder.wait_for(lambda _r: roles.recorder.api("chat.postMessage"))[0]
    assert announcement["channel"] == NOTIFY != CHANNEL


def test_every_subcommand_has_a_runner_and_every_action_has_words():
    from bot.parsing import SUBCOMMANDS
    from bot.policy import Action
    from bot.slack.commands import RUNNERS
    from bot.slack.views.errors import ACTION_VERBS

    assert {s.action for s in SUBCOMMANDS.values()} - {Action.HELP} == set(RUNNERS)
    assert set(Action) - {Action.HELP} == set(ACTION_VERBS)


def test_audit_filters_in_slack(roles):
    roles.ask("list 12345", user=VIEWER)
    roles.ask("delete 5023", user=VIEWER)
    roles.ask("list 12346", user=OWNER)
    reply, _ = roles.ask("audit 5 user <@U0VIEWER|viewer> outcome denied")
    lines = [line for line in text_of(reply).splitlines() if "→" in line]
    assert len(lines) == 1 and "<@U0VIEWER> *delete*" in lines[0] and "→ denied" in lines[0]
    reply, _ = roles.ask("audit server 12346")
    assert all("on 12346" in line for line in text_of(reply).splitlines() if "→" in line)
    bad, _ = roles.command("audit outcome maybe")
    assert "`maybe` is not an outcome" in text_of(bad.json())
    entry = roles.runtime.store.audit_entries(1)[0]
    assert entry.detail == "last 20 where server_id 12346"
