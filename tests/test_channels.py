"""Servers bound to their team's channels, end to end through signed requests."""

import json
from urllib.parse import urlencode

import pytest
from conftest import ADMIN, CHANNEL, NOTIFY, button, buttons, text_of
from test_home import open_home, press_on_home, published

from bot.sim.slack_loopback import view_submission_payload
from bot.slack import ids

PROD = "C0PRODOPS"
OWNER = "U0OWNER"


@pytest.fixture
def bound(stack):
    stack.grant(OWNER, 12345, "owner")
    reply, _ = stack.ask(f"channels 12345 add <#{PROD}|prod-ops>")
    assert f"Server *12345* is now bound to <#{PROD}>." in text_of(reply)
    return stack


@pytest.mark.parametrize("where", [CHANNEL, "D0DIRECT"])
@pytest.mark.parametrize("text", ["delete 5023", "restore 5023", "create 12345"])
@pytest.mark.parametrize("who", [OWNER, ADMIN])
def test_a_bound_server_is_changed_only_from_its_channels(bound, where, text, who):
    before = len(bound.sim.requests)
    reply, _ = bound.ask(text, user=who, channel=where)
    assert text_of(reply) == f":round_pushpin: Server *12345* is run only from <#{PROD}>: ask there. Nothing was done."
    assert [m for m, _ in bound.sim.requests[before:] if m != "GET"] == [], "nothing is sent to the API"
    entry = bound.runtime.store.audit_entries(1)[0]
    assert (entry.user_id, entry.outcome) == (who, "denied") and f"allowed only in {PROD}" in entry.detail


def test_from_its_channel_it_works_and_is_announced_there(bound):
    confirmation, _ = bound.ask("delete 5023", user=OWNER, channel=PROD)
    _r, key = bound.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER, channel=PROD)
    assert "Deleted backup *#5023*" in text_of(bound.reply(key))
    assert bound.sim.count("DELETE") == 1
    bound.recorder.wait_for(lambda _r: bound.recorder.api("chat.postMessage")[1:])
    posts = bound.recorder.api("chat.postMessage")
    assert "now carries the news of server *12345*" in posts[0]["text"], "bound only once the bot could post there"
    assert [p["channel"] for p in posts] == [PROD, PROD], "its channel hears it, not BACKUPBOT_NOTIFY_CHANNEL"
    assert "deleted backup *#5023*" in posts[1]["text"]


def test_a_confirmation_pressed_elsewhere_is_refused(bound):
    confirmation, _ = bound.ask("delete 5023", user=OWNER, channel=PROD)
    _r, key = bound.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER, channel=CHANNEL)
    assert text_of(bound.reply(key)).startswith(":round_pushpin:")
    assert bound.sim.count("DELETE") == 0


def test_listing_works_anywhere_and_unbound_servers_are_unchanged(bound):
    reply, _ = bound.ask("list 12345", user=OWNER, channel="D0DIRECT")
    assert "*9 backups*" in text_of(reply)
    reply, _ = bound.ask("create 12346", user=ADMIN, channel=CHANNEL)
    assert "has started" in text_of(reply)
    assert bound.recorder.api("chat.postMessage")[-1]["channel"] == NOTIFY


def test_the_home_tab_is_not_one_of_its_channels(bound):
    bound.grant("U0OP", 12345, "operator")
    view = published(bound, "U0OP", open_home(bound, "U0OP"))
    take = next(b for b in buttons(view) if b["action_id"] == ids.HOME_CREATE)
    press_on_home(bound, view, take, "U0OP")
    form = bound.recorder.wait_for(lambda _r: bound.recorder.api("views.open"))[-1]["view"]
    before = len(bound.recorder.api("views.publish"))
    payload = view_submission_payload(user_id="U0OP", view=form, values={})
    bound.post(urlencode({"payload": json.dumps(payload)}).encode())
    assert ":round_pushpin: Server *12345* is run only from" in " ".join(
        b.get("text", {}).get("text", "") for b in published(bound, "U0OP", before)["blocks"]
    )
    assert bound.sim.count("POST", "/api/v1/backups") == 0


def test_showing_and_changing_channels(bound):
    bound.grant("U0VIEW", 12345, "viewer")
    reply, _ = bound.ask("channels 12345", user="U0VIEW")
    assert f"run from and announced in <#{PROD}>" in text_of(reply)
    reply, _ = bound.ask(f"channels 12345 remove {PROD}", user=OWNER)
    assert text_of(reply) == ":no_entry: Only an admin may change a server's channels."
    reply, _ = bound.ask(f"channels 12345 remove {PROD}")
    assert "no longer bound" in text_of(reply) and "may be run from anywhere" in text_of(reply)
    bad, _ = bound.command("channels 12345 add prod-ops")
    assert "`prod-ops` is not a channel" in text_of(bad.json())


def test_a_channel_the_bot_cannot_post_in_is_not_bound_and_the_admin_is_told_why(stack):
    stack.slack.fail("chat.postMessage", "not_in_channel")
    reply, _ = stack.ask("channels 12345 add <#C0TYPO9|typo>")
    assert text_of(reply) == (
        ":no_entry: I could not post in <#C0TYPO9>, so server *12345* was not bound to it: "
        "I am not in that channel: invite me there first."
    )
    assert stack.runtime.store.channels_of(12345) == [], "nothing bound"
    entry = stack.runtime.store.audit_entries(1)[0]
    assert (entry.action, entry.outcome) == ("channels", "failed") and "could not post there" in entry.detail
    create, _ = stack.ask("create 12345", channel=CHANNEL)
    assert "has started" in text_of(create), "the server is still run from anywhere"


def test_an_approved_delete_of_a_bound_server_is_announced_in_its_channels(bound):
    assert "now *on*" in text_of(bound.ask("approvals 12345 on")[0])
    bound.grant("U0OWNER2", 12345, "owner")
    confirmation, _ = bound.ask("delete 5023", user=OWNER, channel=PROD)
    bound.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER, channel=PROD)
    card = bound.recorder.wait_for(
        lambda _r: [m for m in bound.recorder.api("chat.postMessage") if "Approval needed" in m["text"]]
    )[-1]
    assert card["channel"] == PROD, "the card goes to the server's channel"
    bound.press(button(card, ids.APPROVE), user="U0OWNER2", channel=PROD)
    announced = bound.recorder.wait_for(
        lambda _r: [m for m in bound.recorder.api("chat.postMessage") if "deleted backup *#5023*" in m["text"]]
    )
    assert bound.sim.count("DELETE") == 1
    assert [m["channel"] for m in announced] == [PROD], "its channel hears it, not BACKUPBOT_NOTIFY_CHANNEL"
