"""Buttons and the restore modal, end to end, pressed as Slack would send them."""

import pytest
from conftest import ADMIN, NOTIFY, LiveStack, button, poll_until, text_of

from bot.sim.fake_api import BackupSimulator
from bot.slack.ids import (
    CANCEL,
    CONFIRM_DELETE,
    DELETE_REQUEST,
    LIST_NEXT,
    LIST_PREV,
    OPEN_RESTORE,
    RESTORE_INPUT_BLOCK,
    RESTORE_REQUEST,
)
from bot.slack.views.base import MAX_BLOCKS

OWNER, VIEWER = "U0OWNER", "U0VIEWER"


@pytest.fixture
def roles(stack):
    stack.grant(OWNER, 12345, "owner")
    stack.grant(VIEWER, 12345, "viewer")
    return stack


def press_and_reply(stack, b, user=OWNER, count=1):
    response, key = stack.press(b, user=user, block_id=b.get("_block", "b"))
    assert response.status_code == 200
    return stack.reply(key, count), key


def test_delete_from_a_list_confirm_then_announce(roles):
    listing, _ = roles.ask("list 12345 manual", user=OWNER)
    confirmation, _ = press_and_reply(roles, button(listing, DELETE_REQUEST, "5023"))
    assert confirmation["replace_original"] is False, "the list stays; the confirmation comes as a new message"
    assert "*Delete this backup?*" in text_of(confirmation)
    assert roles.sim.count("DELETE") == 0
    result, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    assert result["replace_original"] is True
    assert text_of(result) == ":wastebasket: Deleted backup *#5023* of *web-server-01* (12345)."
    assert roles.sim.count("DELETE") == 1
    announcement = roles.recorder.wait_for(lambda _r: roles.recorder.api("chat.postMessage"))[0]
    assert announcement["channel"] == NOTIFY and "<@U0OWNER> deleted backup *#5023*" in announcement["text"]


def test_double_press_acts_once_and_says_so(roles):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    confirm = button(confirmation, CONFIRM_DELETE)
    first, _ = press_and_reply(roles, confirm)
    second, _ = press_and_reply(roles, confirm)
    assert "Deleted backup *#5023*" in text_of(first)
    assert second["replace_original"] is False
    assert "was already confirmed by <@U0OWNER>. Nothing more was done." in text_of(second)
    assert roles.sim.count("DELETE") == 1
    deletes = [(e.outcome, e.detail) for e in roles.runtime.store.audit_entries(10) if e.action == "delete"]
    assert deletes == [("denied", "confirmation already used by U0OWNER"), ("done", "")], "the refused press is audited"


def test_button_pressed_by_someone_without_rights(roles):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    confirm = button(confirmation, CONFIRM_DELETE)
    refused, _ = press_and_reply(roles, confirm, user=VIEWER)
    assert text_of(refused).startswith(":no_entry: You can't delete a backup on server *12345*")
    assert refused["replace_original"] is False
    assert roles.sim.count("DELETE") == 0
    denied = roles.runtime.store.audit_entries(1)[0]
    assert (denied.user_id, denied.action, denied.outcome) == (VIEWER, "delete", "denied")
    done, _ = press_and_reply(roles, confirm, user=OWNER)
    assert "Deleted" in text_of(done), "the refusal left the confirmation for its rightful owner"


def test_confirm_after_the_backup_is_gone(roles):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    roles.sim.remove(5023)
    reply, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    assert text_of(reply) == ":mag: Backup *#5023* no longer exists, so nothing was done."
    again, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    assert "no longer exists" in text_of(again)
    assert roles.sim.count("DELETE") == 0


def test_cancel(roles):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    cancelled, _ = press_and_reply(roles, button(confirmation, CANCEL))
    assert cancelled["replace_original"] is True and "Cancelled" in text_of(cancelled)
    late, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    assert "was cancelled by <@U0OWNER>" in text_of(late)
    assert roles.sim.count("DELETE") == 0
    latest = [(e.outcome, e.detail) for e in roles.runtime.store.audit_entries(2)]
    assert latest == [("denied", "confirmation already cancelled by U0OWNER"), ("cancelled", "")]


@pytest.mark.parametrize("who", [VIEWER, "U0STRANGER"])
def test_someone_without_rights_cannot_cancel_anothers_confirmation(roles, who):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    refused, _ = press_and_reply(roles, button(confirmation, CANCEL), user=who)
    assert text_of(refused).startswith(":no_entry: You can't delete a backup on server *12345*")
    assert refused["replace_original"] is False
    denied = roles.runtime.store.audit_entries(1)[0]
    assert (denied.user_id, denied.action, denied.outcome) == (who, "delete", "denied")
    done, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    assert "Deleted backup *#5023*" in text_of(done), "the confirmation is still its owner's to use"


def test_a_confirmation_only_confirms_what_it_was_made_for(roles):
    """A forged press that carries a restore's confirmation to Delete (or a delete's to Restore…) does nothing."""
    restore, _ = roles.ask("restore 5023", user=OWNER)
    token = button(restore, OPEN_RESTORE)["value"]
    refused, _ = press_and_reply(roles, {"action_id": CONFIRM_DELETE, "value": token})
    assert "nothing" in text_of(refused).lower() and roles.sim.count("DELETE") == 0
    delete, _ = roles.ask("delete 5022", user=OWNER)
    token = button(delete, CONFIRM_DELETE)["value"]
    refused, _ = press_and_reply(roles, {"action_id": OPEN_RESTORE, "value": token})
    assert "nothing" in text_of(refused).lower() and roles.recorder.api("views.open") == []
    assert [e.outcome for e in roles.runtime.store.audit_entries(2)] == ["denied", "denied"]
    assert "Deleted" in text_of(press_and_reply(roles, button(delete, CONFIRM_DELETE))[0]), "each still does its own"
    assert roles.sim.count("DELETE") == 1


def open_restore_modal(stack, user=OWNER, backup="5023"):
    confirmation, _ = stack.ask(f"restore {backup}", user=user)
    response, key = stack.press(button(confirmation, OPEN_RESTORE), user=user)
    assert response.status_code == 200
    opened = stack.recorder.wait_for(lambda _r: stack.recorder.api("views.open"))[-1]
    return opened, key


def test_restore_modal_checks_the_typed_name(roles):
    opened, key = open_restore_modal(roles)
    view = opened["view"]
    assert opened["trigger_id"].endswith(".trigger")
    assert view["title"]["text"] == "Restore server" and view["submit"]["text"] == "Restore"
    assert view["blocks"][1]["label"]["text"] == "Type web-server-01 to confirm"
    wrong = roles.submit(view, "web-server-02", user=OWNER)
    assert wrong.json() == {
        "response_action": "errors",
        "errors": {RESTORE_INPUT_BLOCK: "That is not this server. Type web-server-01 or 12345 exactly."},
    }
    assert roles.sim.restores == []
    right = roles.submit(view, "web-server-01", user=OWNER)
    assert right.status_code == 200 and right.text == ""
    result = roles.reply(key)
    assert result["replace_original"] is True
    assert "Restore of *web-server-01* (12345) from backup *#5023* has started." in text_of(result)
    assert roles.sim.restores == [(12345, 5023)]
    announcement = roles.recorder.wait_for(lambda _r: roles.recorder.api("chat.postMessage"))[0]
    assert "<@U0OWNER> started restoring *web-server-01* (12345) from backup *#5023*" in announcement["text"]
    again = roles.submit(view, "web-server-01", user=OWNER)
    assert again.status_code == 200
    assert "already confirmed" in text_of(roles.reply(key, 2))
    assert roles.sim.restores == [(12345, 5023)]


@pytest.mark.parametrize("typed", ["web", "web-server-0", "web-server-01x", "server-01", "1234", "2345", ""])
def test_only_the_whole_name_or_id_confirms_a_restore(roles, typed):
    """Not a prefix, a part, more, or an empty form: the person must have read which server it is."""
    opened, _key = open_restore_modal(roles)
    answer = roles.submit(opened["view"], typed, user=OWNER).json()
    assert answer["response_action"] == "errors" and RESTORE_INPUT_BLOCK in answer["errors"]
    assert roles.sim.restores == []
    assert roles.submit(opened["view"], " 12345 ", user=OWNER).text == "", "the whole ID, spaces aside, does"
    poll_until(lambda: roles.sim.restores)


def test_restore_modal_is_not_opened_for_someone_without_rights(roles):
    confirmation, _ = roles.ask("restore 5023", user=OWNER)
    _response, key = roles.press(button(confirmation, OPEN_RESTORE), user=VIEWER)
    assert text_of(roles.reply(key)).startswith(":no_entry:")
    assert roles.recorder.api("views.open") == []


def test_restore_from_a_list_button(roles):
    listing, _ = roles.ask("list 12345 manual", user=OWNER)
    confirmation, _ = press_and_reply(roles, button(listing, RESTORE_REQUEST, "5022"))
    assert "*Restore web-server-01 (12345) from a backup?*" in text_of(confirmation)


@pytest.fixture
def big(tmp_path):
    sim = BackupSimulator(seed=False, completion_seconds=3600)
    sim.add_server(7, "big-<one>")
    from datetime import timedelta

    for n in range(300):
        sim.add_backup(7, backup_type="automatic", age=timedelta(hours=n), description=f"nightly {n} <!channel>")
    live = LiveStack(tmp_path / "big.db", sim)
    yield live
    live.close()


def test_a_300_backup_list_stays_within_block_kit_and_pages(big):
    first, _ = big.ask("list 7")
    assert len(first["blocks"]) <= MAX_BLOCKS
    text = text_of(first)
    assert "*300 backups* on *big-&lt;one&gt;* (7)" in text and "Showing 1–20 of 300." in text
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert all(len(block["text"]["text"]) <= 3000 for block in first["blocks"] if "text" in block)
    older, _ = press_and_reply(big, button(first, LIST_NEXT), user=ADMIN)
    assert "Showing 21–40 of 300." in text_of(older) and older["replace_original"] is True
    newer, _ = press_and_reply(big, button(older, LIST_PREV), user=ADMIN)
    assert "Showing 1–20 of 300." in text_of(newer)


@pytest.mark.parametrize(
    ("fault", "command", "expected"),
    [
        ((401, 1), "list 12345", "refused the bot's credentials (401)"),
        ((503, 3), "list 12345", "unavailable right now (the backup API is failing (503))"),
        ((500, 1), "create 12345", "It *may have been created*: check `/backup list 12345 manual` before trying again"),
        (None, "create 99999", "can't find that: “Server not found.” (404)"),
        (None, "restore 424242", "There is no backup *#424242*"),
    ],
)
def test_api_failures_get_plain_words(stack, fault, command, expected):
    if fault:
        stack.sim.fail_next(fault[1], fault[0])
    reply, _ = stack.ask(command)
    assert expected in text_of(reply)
    for secret in ("vps-test-token", "xoxb-test-token", "Traceback"):
        assert secret not in str(reply)
    healthy, _ = stack.ask("list 12347")
    assert "staging-01" in text_of(healthy), "the bot keeps serving afterwards"


def test_bad_request_shows_the_providers_text(stack):
    for _ in range(2):
        stack.ask("create 12346")
    reply, _ = stack.ask("create 12346")
    assert "The backup API said: “Manual backup limit reached: at most 10 manual backups per server.”" in text_of(reply)
    assert stack.runtime.store.audit_entries(1)[0].outcome == "failed"


@pytest.fixture
def impatient(tmp_path, sim):
    live = LiveStack(tmp_path / "impatient.db", sim, api_options={"timeout": 0.3})
    yield live
    live.close()


def test_a_hung_api_call_gets_a_timeout_reply(impatient):
    stack = impatient
    stack.sim.hang_next(1)
    reply, _ = stack.ask("create 12345")
    text = text_of(reply)
    assert "did not confirm the new backup of server *12345* (no answer came in time)" in text
    assert "It *may have been created*" in text and "nothing" not in text.lower()


def test_a_failed_announcement_is_told_to_the_person(stack):
    stack.slack.fail("chat.postMessage", "channel_not_found")
    reply, _ = stack.ask("create 12345")
    assert "has started" in text_of(reply)
    assert "could not announce this in <#CNOTIFY01> (channel_not_found)" in text_of(reply)


def test_a_damaged_button_value_is_refused_plainly(roles):
    reply, _ = press_and_reply(roles, {"action_id": DELETE_REQUEST, "value": "../etc"})
    assert "not a backup ID" in text_of(reply)


def test_a_delete_the_api_fails_is_reported_and_not_retried(roles):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    roles.sim.fail_next(1, 502, method="DELETE")
    failed, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    text = text_of(failed)
    assert "did not confirm the delete of backup *#5023* of server *12345* (the backup API answered 502)" in text
    assert "It *may have been deleted*: check `/backup list 12345` before trying again" in text
    again, _ = press_and_reply(roles, button(confirmation, CONFIRM_DELETE))
    assert "the backup API failed, so this confirmation is spent" in text_of(again)
    assert roles.sim.count("DELETE") == 1
