"""Unknown is never "not done": every write's outcome, told the same way on every path (bot/ops/writes.py).

Each write is driven as people drive it (signed requests, the loopback Slack) against the simulator's
fault knobs: `act_then_fail_next` makes the API act and then answer 502 (the write happened, unconfirmed),
`fail_next` makes it refuse without acting. The bot-died cases kill a real `serve` process with SIGKILL
from the simulator's `on_handled` hook, right after the API acted, and then start a bot on the same store
with its clock past the time a write can take.
"""

import json
import os
import signal
import time
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from conftest import ADMIN, CHANNEL, NOTIFY, SECRET, LiveStack, ManualClock, button, poll_until, text_of
from test_approvals import OWNER2, ask_delete, cards, decide, set_up
from test_safety_nets import OWNER, restore_form, safety_backup_of, with_roles
from test_server import ServeProcess, audit_rows

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import block_actions_payload, sign, view_submission_payload
from bot.slack import ids

MAY_HAVE = {
    "create": "It *may have been created*: check `/backup list 12345 manual` before trying again.",
    "delete": "It *may have been deleted*: check `/backup list 12345` before trying again.",
    "restore": "It *may have started*: check the server before trying again.",
}


def announcements(stack) -> list[str]:
    return [m["text"] for m in stack.recorder.api("chat.postMessage")]


def last_audit(stack, action: str):
    return next(e for e in stack.runtime.store.audit_entries(50) if e.action == action)


# --- the API acted, then answered 502: "may have happened", on every path -----------------------


@pytest.fixture
def owned(tmp_path, sim):
    live = with_roles(LiveStack(tmp_path / "owned.db", sim))
    yield live
    live.close()


def test_a_direct_create_delete_and_restore_the_api_did_not_confirm_may_have_happened(owned):
    owned.sim.act_then_fail_next(1, 502, method="POST")
    created, _ = owned.ask("create 12345 before the upgrade", user=OWNER)
    assert "did not confirm the new backup of server *12345* (the backup API answered 502)" in text_of(created)
    assert MAY_HAVE["create"] in text_of(created)
    assert [b for b in owned.sim.requests if b[0] == "POST"], "the API did act"
    assert "outcome unknown, it may have happened" in last_audit(owned, "create").detail

    confirmation, _ = owned.ask("delete 5022", user=OWNER)
    owned.sim.act_then_fail_next(1, 502, method="DELETE")
    _r, key = owned.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER)
    assert MAY_HAVE["delete"] in text_of(owned.reply(key))
    entry = last_audit(owned, "delete")
    assert entry.outcome == "failed" and "outcome unknown" in entry.detail

    _conf, key, view = restore_form(owned)
    owned.sim.act_then_fail_next(1, 502, method="POST")
    owned.submit(view, "web-server-01", user=OWNER, safety=False)
    restored = text_of(owned.reply(key))
    assert (
        "did not confirm the restore of *web-server-01* (12345)" in restored
        or "did not confirm the restore" in restored
    )
    assert MAY_HAVE["restore"] in restored and "Nothing" not in restored
    assert owned.sim.restores == [(12345, 5023)], "it did happen"


def test_a_refusal_is_told_as_not_done_and_nothing_else(owned):
    confirmation, _ = owned.ask("delete 5022", user=OWNER)
    owned.sim.fail_next(1, 400, method="DELETE")
    _r, key = owned.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER)
    text = text_of(owned.reply(key))
    assert "The backup API refused this" in text and "Nothing was changed" in text and "may have" not in text


def test_a_delete_at_the_end_of_its_window_the_api_did_not_confirm_is_told_may_have_been_deleted(tmp_path, sim):
    clock = ManualClock()
    live = with_roles(LiveStack(tmp_path / "window.db", sim, delete_grace_seconds=30, clock=clock))
    try:
        confirmation, _ = live.ask("delete 5023", user=OWNER)
        _r, key = live.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER)
        live.reply(key)
        sim.act_then_fail_next(1, 502, method="DELETE")
        clock.now += timedelta(seconds=31)
        updated = text_of(live.reply(key, 2))
        assert MAY_HAVE["delete"] in updated and "*not*" not in updated
        told = live.recorder.wait_for(lambda _r: [t for t in announcements(live) if "may have been deleted" in t])
        assert "Backup *#5023* of *web-server-01* (12345) may have been deleted (asked for by <@U0OWNER>)" in told[0]
        assert sim.count("DELETE") == 1
    finally:
        live.close()


def test_a_chained_restore_the_api_did_not_confirm_may_have_started(tmp_path, sim):
    live = with_roles(LiveStack(tmp_path / "chain.db", sim, poll_seconds=0.05))
    try:
        _conf, key, view = restore_form(live)
        live.submit(view, "web-server-01", user=OWNER, safety=True)
        safety_id = safety_backup_of(live.reply(key))
        sim.act_then_fail_next(1, 502, method="POST")
        sim.finish(safety_id)
        maybe = text_of(live.reply(key, 2))
        assert f"Safety backup *#{safety_id}* is complete." in maybe and MAY_HAVE["restore"] in maybe
        assert "Nothing was restored" not in maybe and "*not* sent" not in maybe
        told = live.recorder.wait_for(lambda _r: [t for t in announcements(live) if "may have started" in t])
        assert "The restore of *web-server-01* (12345) from backup *#5023*" in told[0]
        assert sim.restores == [(12345, 5023)]
    finally:
        live.close()


def test_a_safety_backup_whose_answer_was_lost_is_found_by_its_tag_and_the_restore_follows(tmp_path, sim):
    live = with_roles(LiveStack(tmp_path / "tag.db", sim, poll_seconds=0.05))
    try:
        _conf, key, view = restore_form(live)
        sim.act_then_fail_next(1, 502, method="POST")  # the safety backup is made; its answer is lost
        live.submit(view, "web-server-01", user=OWNER, safety=True)
        safety_id = safety_backup_of(live.reply(key))
        sim.finish(safety_id)
        assert "The restore has started." in text_of(live.reply(key, 2))
        assert sim.count("POST", "/api/v1/backups/") == 1, "one safety backup, adopted, not a second"
        assert sim.restores == [(12345, 5023)]
    finally:
        live.close()


@pytest.mark.parametrize("action", ["delete", "restore"])
def test_an_approved_write_the_api_did_not_confirm_may_have_happened_on_the_card_and_reply(tmp_path, sim, action):
    live = set_up(LiveStack(tmp_path / "approved.db", sim))
    try:
        if action == "delete":
            _waiting, key, card = ask_delete(live)
        else:
            _conf, key, view = restore_form(live)
            live.submit(view, "web-server-01", user=OWNER, safety=False)
            card = live.recorder.wait_for(lambda _r: cards(live))[-1]
        live.sim.act_then_fail_next(1, 502, method="DELETE" if action == "delete" else "POST")
        decide(live, card, ids.APPROVE, OWNER2)
        updated = text_of(live.recorder.wait_for(lambda _r: live.recorder.api("chat.update"))[-1])
        assert MAY_HAVE[action] in updated and "*not* done" not in updated and "Nothing" not in updated
        reply = text_of(live.reply(key, 2))
        assert MAY_HAVE[action] in reply
        assert reply.count(MAY_HAVE[action]) == 1, "one story, told once"
        told = live.recorder.wait_for(lambda _r: [t for t in announcements(live) if "may have" in t])
        assert "Approved by <@U0OWNER2>." in told[0]
    finally:
        live.close()


# --- the bot killed right after the API acted: settled by looking after a restart ------------


def press(
    serve: ServeProcess, element: dict, key: str, user: str = ADMIN, channel: str = CHANNEL, *, dies: bool = False
) -> None:
    """A signed button press; with `dies`, the bot may be killed before its answer to it is out."""
    payload = block_actions_payload(
        user_id=user, channel_id=channel, response_url=serve.slack.response_url(key), action=element, block_id="b"
    )
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
    try:
        assert httpx.post(f"{serve.url}/slack/events", content=body, headers=headers).status_code == 200
    except httpx.RemoteProtocolError:
        assert dies, "the bot hung up without answering"


def submit(serve: ServeProcess, view: dict, typed: str, *, safety: bool) -> None:
    values = {
        ids.RESTORE_INPUT_BLOCK: {ids.RESTORE_INPUT_ACTION: typed},
        ids.RESTORE_SAFETY_BLOCK: {ids.RESTORE_SAFETY_ACTION: [ids.SAFETY_OPTION] if safety else []},
    }
    body = urlencode({"payload": json.dumps(view_submission_payload(user_id=ADMIN, view=view, values=values))})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body.encode())}
    assert httpx.post(f"{serve.url}/slack/events", content=body, headers=headers).status_code == 200


def kill_when_handled(serve: ServeProcess, method: str, path_part: str) -> None:
    """SIGKILL the bot the moment the API has acted on this request: it never hears the answer."""

    def hook(seen_method: str, path: str, _status: int) -> None:
        if seen_method == method and path_part in path:
            os.kill(serve.proc.pid, signal.SIGKILL)

    serve.sim.on_handled = hook


def restarted(serve: ServeProcess, tmp_path) -> LiveStack:
    """Another bot on the killed one's store, Slack and API, its clock past the time a write can take."""
    assert serve.proc.wait(timeout=15) == -signal.SIGKILL
    serve.sim.on_handled = None
    clock = ManualClock()
    clock.now += timedelta(minutes=4)
    return LiveStack(serve.db, serve.sim, slack=serve.slack, clock=clock, poll_seconds=0.05, vps_api_token="vps-t0ken")


def replies(serve: ServeProcess, key: str) -> list[str]:
    return [text_of(m) for m in serve.slack.recorder.responses(key)]


def test_killed_after_the_api_deleted_at_the_end_of_the_window_the_restarted_bot_says_deleted(tmp_path):
    serve = ServeProcess(tmp_path, env={"BACKUPBOT_DELETE_GRACE_SECONDS": "1"})
    live = None
    try:
        assert serve.command("delete 5023", "ask").status_code == 200
        press(serve, button(serve.reply("ask"), ids.CONFIRM_DELETE), "window")
        kill_when_handled(serve, "DELETE", "/backups/5023/")
        poll_until(lambda: serve.proc.poll() is not None, timeout=15)
        assert serve.sim.count("DELETE") == 1
        live = restarted(serve, tmp_path)
        said = live.recorder.wait_for(lambda _r: [t for t in replies(serve, "window") if "undo window ended" in t])
        assert said == [":wastebasket: Deleted backup *#5023* of *web-server-01* (12345): its undo window ended."]
        told = live.recorder.wait_for(lambda _r: [t for t in announcements(live) if "deleted backup *#5023*" in t])
        assert len(told) == 1 and not [t for t in announcements(live) if "could not" in t]
        time.sleep(0.3)
        assert serve.sim.count("DELETE") == 1, "looked at, not sent again"
        (delete,) = [r for r in audit_rows(serve.db) if r[0] == "delete" and "undo window" in r[2]]
        assert delete[1] == "done" and "settled by looking" in delete[2]
    finally:
        if live is not None:
            live.close()
        serve.close()


def test_killed_after_the_api_accepted_a_chained_restore_the_restarted_bot_says_it_may_have_started(tmp_path):
    serve = ServeProcess(tmp_path, env={"BACKUPBOT_POLL_SECONDS": "1"})
    live = None
    try:
        assert serve.command("restore 5023", "ask").status_code == 200
        press(serve, button(serve.reply("ask"), ids.OPEN_RESTORE), "form")
        view = serve.slack.recorder.wait_for(lambda _r: serve.slack.recorder.api("views.open"))[-1]["view"]
        submit(serve, view, "web-server-01", safety=True)
        started = serve.slack.recorder.wait_for(lambda _r: serve.slack.recorder.responses("form"))[0]
        safety_id = safety_backup_of(started)
        kill_when_handled(serve, "POST", "/restore/")
        serve.sim.finish(safety_id)
        poll_until(lambda: serve.proc.poll() is not None, timeout=15)
        assert serve.sim.restores == [(12345, 5023)], "the API accepted the restore"
        live = restarted(serve, tmp_path)
        said = live.recorder.wait_for(lambda _r: [t for t in replies(serve, "form") if "may have started" in t])
        assert MAY_HAVE["restore"] in said[0] and "Nothing was restored" not in said[0]
        told = live.recorder.wait_for(lambda _r: [t for t in announcements(live) if "may have started" in t])
        assert len(told) == 1
        assert serve.sim.restores == [(12345, 5023)], "never sent twice"
    finally:
        if live is not None:
            live.close()
        serve.close()


def test_killed_after_the_api_accepted_an_approved_restore_card_and_reply_tell_one_story(tmp_path):
    serve = ServeProcess(tmp_path)
    live = None
    try:
        for user, role in ((OWNER, "owner"), (OWNER2, "owner")):
            from bot.policy import Role
            from bot.store import SqliteStore

            store = SqliteStore(str(serve.db))
            store.grant(user, 12345, Role.parse(role), "test")
            store.close()
        assert serve.command("approvals 12345 on", "rule").status_code == 200
        serve.reply("rule")
        assert serve.command("restore 5023", "ask").status_code == 200
        press(serve, button(serve.reply("ask"), ids.OPEN_RESTORE), "form")
        view = serve.slack.recorder.wait_for(lambda _r: serve.slack.recorder.api("views.open"))[-1]["view"]
        submit(serve, view, "web-server-01", safety=False)
        card = serve.slack.recorder.wait_for(
            lambda _r: [m for m in serve.slack.recorder.api("chat.postMessage") if "Approval needed" in m["text"]]
        )[0]
        kill_when_handled(serve, "POST", "/restore/")
        press(serve, button(card, ids.APPROVE), "decision", user=OWNER2, channel=NOTIFY, dies=True)
        poll_until(lambda: serve.proc.poll() is not None, timeout=15)
        live = restarted(serve, tmp_path)
        updated = live.recorder.wait_for(lambda _r: live.recorder.api("chat.update"))[-1]
        reply = live.recorder.wait_for(lambda _r: [t for t in replies(serve, "form") if "may have started" in t])[0]
        for text in (text_of(updated), reply):
            assert "*Approved* by <@U0OWNER2>." in text and text.count(MAY_HAVE["restore"]) == 1
            assert "(the bot stopped while sending it)" in text and "not* done" not in text
        assert serve.sim.restores == [(12345, 5023)]
    finally:
        if live is not None:
            live.close()
        serve.close()


# --- the undo window closes when its reply said; deletes due together go out together ----------


def test_undo_after_the_time_the_reply_named_is_refused_even_if_the_loop_is_late(tmp_path, sim):
    clock = ManualClock()
    live = with_roles(LiveStack(tmp_path / "late.db", sim, delete_grace_seconds=30, clock=clock, tick=3600))
    try:
        confirmation, _ = live.ask("delete 5023", user=OWNER)
        _r, key = live.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER)
        waiting = live.reply(key)
        clock.now += timedelta(seconds=31)  # the window has ended; the loop (a tick an hour here) has not sent it
        undo = button(waiting, ids.UNDO_DELETE)
        _r, undo_key = live.press(undo, user=OWNER)
        assert "Too late to undo" in text_of(live.reply(undo_key)) and "being deleted" in text_of(live.reply(undo_key))
        assert live.runtime.store.delete_window(undo["value"]).state == "waiting", "not undone: it is due"
        assert live.run(live.runtime.background.run_chore("due deletes")) == 1
        assert sim.count("DELETE") == 1
    finally:
        live.close()


def test_deletes_due_together_are_sent_together(tmp_path):
    sim = BackupSimulator(completion_seconds=3600)
    backups = [sim.add_backup(12347) for _ in range(40)]
    clock = ManualClock()
    live = LiveStack(tmp_path / "many.db", sim, delete_grace_seconds=30, clock=clock)
    in_flight, most = [0], [0]

    def arrived(method: str, _path: str) -> None:
        if method == "DELETE":
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

    def handled(method: str, _path: str, _status: int) -> None:
        if method == "DELETE":
            in_flight[0] -= 1

    try:
        for backup_id in backups:
            confirmation, _ = live.ask(f"delete {backup_id}")
            live.press(button(confirmation, ids.CONFIRM_DELETE))
        poll_until(lambda: live.runtime.store.pending_work()["deletes_in_window"] == 40)
        sim.latency = 0.2
        sim.on_request, sim.on_handled = arrived, handled
        clock.now += timedelta(seconds=31)
        poll_until(lambda: sim.count("DELETE") == 40, timeout=30)
        assert most[0] >= 10, f"at most {most[0]} DELETEs were on their way at once: sent one after another"
    finally:
        live.close()
