"""The two-person rule, end to end: signed requests to the app, the simulator, the loopback Slack."""

import json
import threading
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from conftest import ADMIN, NOTIFY, Background, LiveStack, ManualClock, button, poll_until, text_of

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import LoopbackSlack, view_submission_payload
from bot.slack import ids
from bot.store import ApprovalState

OWNER, OWNER2, OPERATOR, VIEWER = "U0OWNER", "U0OWNER2", "U0OPERATOR", "U0VIEWER"


def set_up(stack):
    for user, role in ((OWNER, "owner"), (OWNER2, "owner"), (OPERATOR, "operator"), (VIEWER, "viewer")):
        stack.grant(user, 12345, role)
    reply, _ = stack.ask("approvals 12345 on")
    assert "two-person rule is now *on* for server *12345*" in text_of(reply)
    return stack


@pytest.fixture
def ruled(tmp_path, sim):
    live = set_up(LiveStack(tmp_path / "ruled.db", sim))
    yield live
    live.close()


def cards(stack) -> list[dict]:
    return [m for m in stack.recorder.api("chat.postMessage") if "Approval needed" in m.get("text", "")]


def ask_delete(stack, user=OWNER, backup="5023"):
    """`/backup delete`, then the confirmation pressed: returns (the waiting reply, its key, the card)."""
    confirmation, _ = stack.ask(f"delete {backup}", user=user)
    _response, key = stack.press(button(confirmation, ids.CONFIRM_DELETE), user=user)
    waiting = stack.reply(key)
    card = stack.recorder.wait_for(lambda _r: cards(stack))[-1]
    return waiting, key, card


def decide(stack, card, action_id, user):
    _response, key = stack.press(button(card, action_id), user=user, channel=NOTIFY)
    return key


def test_with_the_rule_on_a_confirmed_delete_waits_for_a_second_owner(ruled):
    waiting, _key, card = ask_delete(ruled)
    assert ruled.sim.count("DELETE") == 0, "nothing is sent before approval"
    text = text_of(waiting)
    assert "needs a second person's approval" in text and "It waits until <!date^" in text
    assert button(waiting, ids.WITHDRAW)["text"]["text"] == "Withdraw request"
    assert card["channel"] == NOTIFY
    facts = text_of(card)
    assert "<@U0OWNER> asks to delete backup *#5023* (manual, taken <!date^" in facts
    assert "of *web-server-01* (12345) — “Before nginx 1.27 upgrade”" in facts and "Expires <!date^" in facts
    assert (button(card, ids.APPROVE)["style"], button(card, ids.DENY)["style"]) == ("primary", "danger")
    servers, _ = ruled.ask("servers", user=OWNER)
    assert "— owner · two-person rule" in text_of(servers)


def test_an_owner_approves_and_the_delete_is_sent_once_card_and_reply_updated(ruled):
    _waiting, key, card = ask_delete(ruled)
    decide(ruled, card, ids.APPROVE, OWNER2)
    updated = ruled.recorder.wait_for(lambda _r: ruled.recorder.api("chat.update"))[-1]
    assert "*Approved* by <@U0OWNER2> — deleted." in text_of(updated) and not [
        b for b in updated["blocks"] if b["type"] == "actions"
    ], "no buttons once decided"
    request = ruled.runtime.store.approval(button(card, ids.APPROVE)["value"])
    assert (updated["channel"], updated["ts"]) == (request.card_channel, request.card_ts)
    assert "*Approved* by <@U0OWNER2>" in text_of(ruled.reply(key, 2)), "the requester's reply is updated"
    assert ruled.sim.count("DELETE") == 1
    announced = ruled.recorder.wait_for(
        lambda _r: [m["text"] for m in ruled.recorder.api("chat.postMessage") if "deleted backup" in m["text"]]
    )
    assert "<@U0OWNER> deleted backup *#5023*" in announced[0] and "approved by <@U0OWNER2>" in announced[0]
    audit = [(e.user_id, e.action, e.outcome, e.detail) for e in ruled.runtime.store.audit_entries(5)]
    assert (OWNER, "delete", "done", "approved by U0OWNER2") in audit
    assert (OWNER2, "approve", "done", "delete of backup 5023 asked by U0OWNER") in audit


def test_two_approvals_at_the_same_moment_send_one_delete(ruled):
    _waiting, _key, card = ask_delete(ruled)
    keys = []
    barrier = threading.Barrier(2)

    def press(user):
        barrier.wait()
        keys.append(decide(ruled, card, ids.APPROVE, user))

    threads = [threading.Thread(target=press, args=(u,)) for u in (OWNER2, ADMIN)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    poll_until(lambda: ruled.recorder.api("chat.update"))
    assert ruled.sim.count("DELETE") == 1
    late = [text_of(ruled.reply(k)) for k in keys if ruled.recorder.responses(k)]
    assert late and all("was already approved by" in t for t in late), "the slower press is told, plainly"


@pytest.mark.parametrize("who", [OWNER, ADMIN])
def test_nobody_approves_their_own_request_admins_included(ruled, who):
    _waiting, _key, card = ask_delete(ruled, user=who)
    refused = text_of(ruled.reply(decide(ruled, card, ids.APPROVE, who)))
    assert refused.startswith(":no_entry: You asked for this, so someone else must decide")
    assert ruled.sim.count("DELETE") == 0
    assert ruled.runtime.store.audit_entries(1)[0].detail == "may not decide on one's own request"


@pytest.mark.parametrize("who", [OPERATOR, VIEWER, "U0STRANGER"])
def test_an_approval_needs_an_owner_or_an_admin(ruled, who):
    _waiting, _key, card = ask_delete(ruled)
    refused = text_of(ruled.reply(decide(ruled, card, ids.APPROVE, who)))
    assert refused.startswith(":no_entry: You can't approve this on server *12345*: that needs the *owner* role")
    assert ruled.sim.count("DELETE") == 0
    assert ruled.runtime.store.approval(button(card, ids.APPROVE)["value"]).state is ApprovalState.PENDING


def test_deny_and_withdraw_send_nothing(ruled):
    _waiting, _key, card = ask_delete(ruled)
    decide(ruled, card, ids.DENY, OWNER2)
    denied = ruled.recorder.wait_for(lambda _r: ruled.recorder.api("chat.update"))[-1]
    assert "*Denied* by <@U0OWNER2>. Nothing was changed." in text_of(denied)
    again = text_of(ruled.reply(decide(ruled, card, ids.APPROVE, ADMIN)))
    assert "was already denied by <@U0OWNER2>" in again

    waiting, key, _card = ask_delete(ruled, backup="5022")
    _r, other = ruled.press(button(waiting, ids.WITHDRAW), user=OWNER2)
    assert "Only <@U0OWNER>, who asked, may withdraw" in text_of(ruled.reply(other))
    ruled.press(button(waiting, ids.WITHDRAW), user=OWNER)
    assert "*Withdrawn* by <@U0OWNER>" in text_of(ruled.reply(key, 2))
    assert ruled.sim.count("DELETE") == 0
    outcomes = [(e.action, e.outcome, e.detail) for e in ruled.runtime.store.audit_entries(20)]
    assert ("delete", "cancelled", "denied by U0OWNER2") in outcomes
    assert ("delete", "cancelled", "withdrawn before a decision") in outcomes


def test_an_undecided_request_expires_and_a_late_approval_is_told_so(tmp_path, sim):
    live = set_up(LiveStack(tmp_path / "expiry.db", sim, approval_minutes=0.01))
    try:
        _waiting, key, card = ask_delete(live)
        expired = live.recorder.wait_for(lambda _r: live.recorder.api("chat.update"))[-1]
        assert "*Expired*: nobody decided in time" in text_of(expired)
        assert "*Expired*" in text_of(live.reply(key, 2))
        late = text_of(live.reply(decide(live, card, ids.APPROVE, OWNER2)))
        assert "has expired, so nothing was done" in late
        assert live.sim.count("DELETE") == 0
        details = [e.detail for e in live.runtime.store.audit_entries(10) if e.user_id == OWNER]
        assert "expired: nobody decided within 0.01 minutes" in details
    finally:
        live.close()


def test_a_press_after_the_expiry_is_told_expired_even_before_the_loop_has_expired_it(tmp_path, sim):
    """The background loop is busy (a delete's DELETE hangs) when the request's time runs out: the press itself
    sees it has expired, says so, and audits it."""
    clock = ManualClock()
    live = set_up(
        LiveStack(tmp_path / "late.db", sim, clock=clock, delete_grace_seconds=30, api_options={"timeout": 10.0})
    )
    try:
        _waiting, _key, card = ask_delete(live)  # it expires in 30 minutes
        confirmation, _ = live.ask("delete 5024")  # server 12346 has no rule: this one waits out its 30 s
        live.press(button(confirmation, ids.CONFIRM_DELETE))
        sim.hang_next(1)
        clock.now += timedelta(seconds=31)
        poll_until(lambda: sim.count("DELETE") == 1)  # the loop sends it, and waits for an answer
        clock.now += timedelta(minutes=30)
        late = text_of(live.reply(decide(live, card, ids.APPROVE, OWNER2)))
        assert "has expired, so nothing was done" in late
        entry = live.runtime.store.audit_entries(1)[0]
        assert (entry.user_id, entry.action, entry.outcome, entry.detail) == (
            OWNER2,
            "approve",
            "denied",
            "approval request expired",
        )
        assert sim.count("DELETE") == 1, "only the other delete"
    finally:
        live.close()


def test_a_request_approved_after_a_restart_is_carried_out_once(tmp_path):
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    sim = BackupSimulator(completion_seconds=3600)
    db = tmp_path / "restart.db"
    first = set_up(LiveStack(db, sim, slack=slack))
    try:
        _waiting, _key, card = ask_delete(first)
    finally:
        first.close()
    second = LiveStack(db, sim, slack=slack)
    try:
        decide(second, card, ids.APPROVE, OWNER2)
        poll_until(lambda: second.recorder.api("chat.update"))
        decide(second, card, ids.APPROVE, ADMIN)
        assert sim.count("DELETE") == 1
    finally:
        second.close()
        bg.run(slack.stop())
        bg.close()


REASON = "nginx 1.27 broke <TLS> & logins\n\n:white_check_mark: *Approved* by <@UADMIN01> — restore started."


def test_a_restore_carries_its_reason_to_the_card_and_runs_once_approved(ruled):
    confirmation, _ = ruled.ask("restore 5023", user=OWNER)
    _r, key = ruled.press(button(confirmation, ids.OPEN_RESTORE), user=OWNER)
    view = ruled.recorder.wait_for(lambda _r: ruled.recorder.api("views.open"))[-1]["view"]
    values = {
        ids.RESTORE_INPUT_BLOCK: {ids.RESTORE_INPUT_ACTION: "web-server-01"},
        ids.RESTORE_REASON_BLOCK: {ids.RESTORE_REASON_ACTION: REASON},
        ids.RESTORE_SAFETY_BLOCK: {ids.RESTORE_SAFETY_ACTION: []},  # without a safety backup
    }
    payload = view_submission_payload(user_id=OWNER, view=view, values=values)
    assert ruled.post(urlencode({"payload": json.dumps(payload)}).encode()).status_code == 200
    assert "needs a second person's approval" in text_of(ruled.reply(key))
    card = ruled.recorder.wait_for(lambda _r: cards(ruled))[-1]
    (why,) = [e for b in card["blocks"] if b["type"] == "context" for e in b["elements"] if e["type"] == "plain_text"]
    assert why == {"type": "plain_text", "text": REASON, "emoji": False}, "the requester's words, not formatting"
    mrkdwn = [b["text"]["text"] for b in card["blocks"] if b["type"] == "section"]
    mrkdwn += [
        e["text"] for b in card["blocks"] if b["type"] == "context" for e in b["elements"] if e["type"] == "mrkdwn"
    ]
    assert not [t for t in mrkdwn if "Approved" in t or "<@UADMIN01>" in t], "nothing of theirs is rendered"
    assert ruled.sim.restores == []
    decide(ruled, card, ids.APPROVE, ADMIN)
    poll_until(lambda: ruled.sim.restores)
    assert ruled.sim.restores == [(12345, 5023)]


def test_an_approval_whose_bot_died_before_sending_is_told_not_done_and_never_sent(tmp_path, sim):
    clock = ManualClock()
    live = set_up(LiveStack(tmp_path / "died.db", sim, clock=clock))
    try:
        _waiting, key, card = ask_delete(live)
        request_id = button(card, ids.APPROVE)["value"]
        assert live.runtime.store.claim_approval(request_id, OWNER2), "another bot claimed it, then died"
        clock.now += timedelta(minutes=2)
        live.run(live.runtime.background.run_chore("interrupted requests"))
        assert live.runtime.store.approval(request_id).state is ApprovalState.APPROVED, "a send may still be going"
        clock.now += timedelta(minutes=2)
        updated = live.recorder.wait_for(lambda _r: live.recorder.api("chat.update"))[-1]
        said = "it was *not* done: the bot stopped before sending it, so nothing was done"
        assert said in text_of(updated), "its write's record shows nothing was sent"
        assert said in text_of(live.reply(key, 2))
        assert live.sim.count("DELETE") == 0, "never sent by a bot that did not claim it"
        assert live.runtime.store.approval(request_id).state is ApprovalState.FAILED
        entry = live.runtime.store.audit_entries(1)[0]
        assert (entry.user_id, entry.action, entry.outcome) == (OWNER, "delete", "failed")
        assert "interrupted" in entry.detail
    finally:
        live.close()


# --- what the bot promises about cards and announcements (issue 24) ----------------------------------


def test_an_approved_action_on_a_bound_server_is_announced_in_its_channels(ruled):
    ruled.ask("channels 12345 add <#C0PRODOPS|prod-ops>")
    confirmation, _ = ruled.ask("delete 5023", user=OWNER, channel="C0PRODOPS")
    ruled.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER, channel="C0PRODOPS")
    card = ruled.recorder.wait_for(lambda _r: cards(ruled))[-1]
    decide(ruled, card, ids.APPROVE, OWNER2)
    told = ruled.recorder.wait_for(
        lambda _r: [m for m in ruled.recorder.api("chat.postMessage") if "deleted backup *#5023*" in m["text"]]
    )
    assert [m["channel"] for m in told] == ["C0PRODOPS"], "the server's channel hears it, not the notify channel"


def test_an_approved_write_finishing_while_the_store_is_locked_is_still_told_as_done(ruled):
    import sqlite3

    _waiting, key, card = ask_delete(ruled)
    lock = {}

    def take_lock(method, _path, _status):
        if method == "DELETE" and not lock:
            lock["conn"] = sqlite3.connect(str(ruled.db_path), isolation_level=None, check_same_thread=False)
            lock["conn"].execute("BEGIN EXCLUSIVE")

    ruled.sim.on_handled = take_lock
    decide(ruled, card, ids.APPROVE, OWNER2)
    try:
        updated = ruled.recorder.wait_for(lambda _r: ruled.recorder.api("chat.update"))[-1]
        assert "*Approved* by <@U0OWNER2> — deleted." in text_of(updated), "told as it ended, whatever the store"
        assert "*Approved* by <@U0OWNER2> — deleted." in text_of(ruled.reply(key, 2))
        told = ruled.recorder.wait_for(
            lambda _r: [m for m in ruled.recorder.api("chat.postMessage") if "deleted backup *#5023*" in m["text"]]
        )
        assert len(told) == 1, "the team is told at once"
    finally:
        lock["conn"].execute("ROLLBACK")
        lock["conn"].close()
    poll_until(lambda: ruled.runtime.store.approval(button(card, ids.APPROVE)["value"]).state is ApprovalState.DONE)


def test_a_card_held_back_by_a_rate_limit_is_posted_as_its_request_then_stands(tmp_path, sim):
    clock = ManualClock()
    live = set_up(LiveStack(tmp_path / "late-card.db", sim, clock=clock))
    try:
        live.slack.rate_limit("chat.postMessage", times=1, retry_after=30)
        confirmation, _ = live.ask("delete 5023", user=OWNER)
        _r, key = live.press(button(confirmation, ids.CONFIRM_DELETE), user=OWNER)
        waiting = live.reply(key)
        assert len(cards(live)) == 1, "tried once, and Slack said: in 30 seconds"
        _r, withdrawn = live.press(button(waiting, ids.WITHDRAW), user=OWNER)
        poll_until(lambda: len(live.slack.recorder.responses(withdrawn)) + len(live.slack.recorder.responses(key)) >= 2)
        clock.now += timedelta(seconds=31)
        posted = live.recorder.wait_for(
            lambda _r: [m for m in live.recorder.api("chat.postMessage") if "5023" in m["text"]][1:]
        )
        assert len(posted) == 1 and "*Withdrawn* by <@U0OWNER>" in text_of(posted[0]), "posted once Slack let it"
        assert not [b for b in posted[0]["blocks"] if b["type"] == "actions"], "no buttons for a closed request"
    finally:
        live.close()


def test_a_card_update_slack_turned_down_is_tried_again_until_it_takes(tmp_path, sim):
    clock = ManualClock()
    live = set_up(LiveStack(tmp_path / "update.db", sim, clock=clock))
    try:
        _waiting, _key, card = ask_delete(live)
        live.slack.rate_limit("chat.update", times=1, retry_after=30)
        decide(live, card, ids.DENY, OWNER2)
        poll_until(lambda: live.runtime.store.pending_announcements() == 1)
        assert len(live.recorder.api("chat.update")) == 1, "tried once, and Slack said: in 30 seconds"
        clock.now += timedelta(seconds=31)
        updated = live.recorder.wait_for(lambda _r: live.recorder.api("chat.update")[1:])
        assert len(updated) == 1 and "*Denied* by <@U0OWNER2>" in text_of(updated[0]), "tried again, once"
        poll_until(lambda: live.runtime.store.pending_announcements() == 0)
    finally:
        live.close()
