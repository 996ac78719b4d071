"""The whole bot under faults and hostile input: signed requests to the live app, the simulator's
fault knobs, the loopback Slack refusing or rate-limiting, and a real SQLite file locked by another
connection. Nothing is lost, nothing misreported."""

import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from conftest import ADMIN, CHANNEL, LiveStack, ManualClock, button, poll_until, text_of

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import LoopbackSlack, slash_command_body, view_submission_payload
from bot.slack.ids import CONFIRM_DELETE, OPEN_RESTORE, RESTORE_INPUT_ACTION, RESTORE_INPUT_BLOCK

OWNER = "U0OWNER"


@pytest.fixture
def roles(stack):
    stack.grant(OWNER, 12345, "owner")
    return stack


def announcements(stack) -> list[str]:
    return [m["text"] for m in stack.recorder.api("chat.postMessage")]


# --- 1. every request gets an answer ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({}, "create 12347 update payload schema"),
        ({}, "list 12345 payload"),
        ({"channel_name": "payload-team"}, "list 12345"),
        ({"user_name": "payload.pete"}, "list 12345"),
        ({"team_domain": "payloadcms"}, "list 12345"),
    ],
)
def test_the_word_payload_anywhere_in_a_command_is_just_a_word(stack, fields, text):
    url = stack.slack.response_url()
    form = {**slash_command_body(text, user_id=ADMIN, channel_id=CHANNEL, response_url=url), **fields}
    response = stack.post(urlencode(form).encode())
    assert response.status_code == 200, response.text
    reply = response.json() if response.text else stack.reply(url.rsplit("/", 1)[1])
    assert "There is no" not in text_of(reply) and "dispatch_failed" not in text_of(reply)
    if text.startswith("create"):
        assert "has started" in text_of(reply)
        assert stack.sim.count("POST", "/api/v1/backups") == 1
    elif text == "list 12345 payload":
        assert "`payload` is neither a type" in text_of(reply)
    else:
        assert "*9 backups* on *web-server-01* (12345)" in text_of(reply)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("delete ²", "`²` is not a backup ID"),
        ("audit ²", "`²` is neither a number of entries from 1 to 50"),
        ("delete １２３", "`１２３` is not a backup ID"),
        ("restore 5023 ３", "`３` is not a server ID"),
        ("delete 99999999999999999999", "`99999999999999999999` is too long to be a backup ID"),
    ],
)
def test_ids_and_counts_are_ascii_digits_only(stack, text, expected):
    before = len(stack.sim.requests)
    response, _ = stack.command(text)
    assert response.status_code == 200
    assert expected in text_of(response.json())
    assert len(stack.sim.requests) == before, "nothing is looked up for such input"


def test_a_time_without_a_zone_is_read_as_utc(tmp_path):
    sim = BackupSimulator(seed=False, completion_seconds=3600)
    sim.add_server(1, "naive")
    sim.add_backup(1, created_at_text="2026-01-01T00:00:00", description="no zone")
    live = LiveStack(tmp_path / "naive.db", sim)
    try:
        reply, _ = live.ask("list 1")
        assert "> no zone" in text_of(reply) and "2026-01-01 00:00 UTC" in text_of(reply)
        assert live.runtime.store.audit_entries(1)[0].outcome == "done"
    finally:
        live.close()


def open_modal(stack, user=OWNER):
    confirmation, _ = stack.ask("restore 5023", user=user)
    _response, key = stack.press(button(confirmation, OPEN_RESTORE), user=user)
    view = stack.recorder.wait_for(lambda _r: stack.recorder.api("views.open"))[-1]["view"]
    return view, key


def submit_view(stack, view, values, user=OWNER):
    payload = view_submission_payload(user_id=user, view=view, values=values)
    return stack.post(urlencode({"payload": json.dumps(payload)}).encode())


def test_a_restore_form_with_damaged_metadata_is_answered_in_its_ack(roles):
    view, _ = open_modal(roles)
    for metadata in ("{not json", "[1, 2]", ""):
        response = submit_view(
            roles, {**view, "private_metadata": metadata}, {RESTORE_INPUT_BLOCK: {RESTORE_INPUT_ACTION: "12345"}}
        )
        assert response.status_code == 200
        assert "This form is damaged" in response.json()["errors"][RESTORE_INPUT_BLOCK]
    assert roles.sim.restores == []


def test_a_restore_form_without_values_is_asked_again(roles):
    view, _ = open_modal(roles)
    response = submit_view(roles, view, {})
    assert response.status_code == 200
    assert response.json()["errors"][RESTORE_INPUT_BLOCK].startswith("That is not this server.")
    assert roles.sim.restores == []


def test_a_form_slack_would_not_open_asks_for_another_press(roles):
    roles.slack.fail("views.open", "expired_trigger_id")
    confirmation, _ = roles.ask("restore 5023", user=OWNER)
    _response, key = roles.press(button(confirmation, OPEN_RESTORE), user=OWNER)
    assert "Press the button again" in text_of(roles.reply(key))
    assert "Something went wrong" not in text_of(roles.reply(key))


def test_a_non_json_payload_is_answered(stack):
    response = stack.post(b"payload=%7Bnot+json")
    assert response.status_code in (200, 404) and "Traceback" not in response.text


# --- 2. a write that happened is never reported as not happened ----------------------------------


class Lock:
    """Another process's exclusive hold on the store file, taken when the simulator sees a request."""

    def __init__(self, path):
        self.path = str(path)
        self.conn: sqlite3.Connection | None = None
        self.taken = threading.Event()

    def take_on(self, sim, method):
        def hook(seen_method, _path):
            if seen_method == method and self.conn is None:
                self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self.conn.execute("BEGIN EXCLUSIVE")
                self.taken.set()

        sim.on_request = hook

    def release(self):
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_a_delete_done_while_the_store_is_locked_is_reported_done_and_audited_later(roles):
    confirmation, _ = roles.ask("delete 5023", user=OWNER)
    lock = Lock(roles.db_path)
    lock.take_on(roles.sim, "DELETE")
    _response, key = roles.press(button(confirmation, CONFIRM_DELETE), user=OWNER)
    reply = roles.reply(key)
    try:
        assert text_of(reply) == ":wastebasket: Deleted backup *#5023* of *web-server-01* (12345)."
        assert roles.sim.count("DELETE") == 1
        assert any("deleted backup *#5023*" in t for t in announcements(roles)), "the team is told at once"
        other, _ = roles.ask("list 12346")
        assert "db-server-01" in text_of(other), "someone else's read is not held up by the lock"
        assert not [e for e in roles.runtime.store.audit_entries(50) if e.action == "delete" and e.outcome == "done"]
    finally:
        lock.release()
    done = poll_until(
        lambda: [e for e in roles.runtime.store.audit_entries(50) if e.action == "delete" and e.outcome == "done"]
    )
    assert (done[0].user_id, done[0].backup_id) == (OWNER, 5023)


def test_a_create_done_while_the_store_is_locked_is_still_followed_and_audited(tmp_path):
    sim = BackupSimulator(completion_seconds=3600)
    live = LiveStack(tmp_path / "locked.db", sim, poll_seconds=0.2)
    try:
        lock = Lock(live.db_path)
        lock.take_on(sim, "POST")
        reply, key = live.ask("create 12345 before the migration")
        assert "has started" in text_of(reply) and "Something went wrong" not in text_of(reply)
        lock.release()
        poll_until(live.runtime.store.following)
        sim.finish(5033)
        done = live.reply(key, 2)
        assert "is complete" in text_of(done), "followed to the end although the store was locked at the start"
        created = [e for e in live.runtime.store.audit_entries(50) if e.action == "create"]
        assert [(e.outcome, e.backup_id) for e in created] == [("done", 5033)]
    finally:
        live.close()


@pytest.mark.parametrize("garbage", [b"<html><body>Bad gateway</body></html>", b'{"id": 5033}'])
def test_a_create_answered_2xx_with_an_unreadable_body_is_a_success(stack, garbage):
    stack.sim.garble_next("POST", garbage)
    reply, _ = stack.ask("create 12346 risky change")
    text = text_of(reply)
    assert "*accepted* the backup of server *12346*" in text and "before trying again" in text
    assert "Something went wrong" not in text and "failed" not in text
    entry = stack.runtime.store.audit_entries(1)[0]
    assert (entry.action, entry.outcome) == ("create", "done") and "answer unreadable" in entry.detail
    assert any("started a manual backup of server *12346*" in t for t in announcements(stack))


def test_a_restore_is_rechecked_when_confirmed(roles):
    view, key = open_modal(roles)
    roles.sim.finish(5023, "failed")
    response = submit_view(roles, view, {RESTORE_INPUT_BLOCK: {RESTORE_INPUT_ACTION: "web-server-01"}})
    assert response.status_code == 200
    assert "only a completed backup can be restored" in text_of(roles.reply(key))
    assert roles.sim.restores == [] and roles.sim.count("POST", "/api/v1/servers") == 0
    entry = roles.runtime.store.audit_entries(1)[0]
    assert (entry.action, entry.outcome, entry.detail) == ("restore", "failed", "the backup is now failed")


# --- 3. announcements are never lost -----------------------------------------------------------


def test_a_rate_limited_announcement_is_delivered_later_exactly_once(tmp_path):
    sim = BackupSimulator(completion_seconds=3600)
    clock = ManualClock()
    live = LiveStack(tmp_path / "rl.db", sim, poll_seconds=0.2, clock=clock)
    try:
        live.slack.rate_limit("chat.postMessage", times=1, retry_after=3)
        reply, _ = live.ask("create 12345")
        assert "Slack is rate-limiting me, so the announcement in <#CNOTIFY01> will follow shortly." in text_of(reply)
        assert "invite me" not in text_of(reply)
        rounds = live.runtime.background.rounds
        poll_until(lambda: live.runtime.background.rounds >= rounds + 2)
        assert len(announcements(live)) == 1, "not sent again before Slack's Retry-After"
        clock.now += timedelta(seconds=3)
        live.recorder.wait_for(lambda _r: len(announcements(live)) == 2)
        poll_until(lambda: live.runtime.store.pending_announcements() == 0)
        live.run(live.runtime.deps.notifier.drain_outbox())
        posts = announcements(live)
        assert len(posts) == 2 and all("started a manual backup" in t for t in posts), (
            "refused once, then delivered once"
        )
    finally:
        live.close()


def test_an_announcement_pending_at_shutdown_is_delivered_after_a_restart(tmp_path):
    from conftest import Background

    sim = BackupSimulator(completion_seconds=3600)
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    db = tmp_path / "outbox.db"
    first = LiveStack(db, sim, slack=slack)
    try:
        slack.rate_limit("chat.postMessage", times=1, retry_after=2.5)
        first.ask("create 12345 across a restart")
    finally:
        first.close()
    assert sum("across a restart" in m.get("text", "") for m in slack.recorder.api("chat.postMessage")) == 1
    clock = ManualClock(datetime.now(UTC) + timedelta(seconds=2.5))  # Slack's Retry-After has passed
    second = LiveStack(db, sim, poll_seconds=0.2, slack=slack, clock=clock)
    try:
        second.recorder.wait_for(
            lambda _r: sum("across a restart" in m.get("text", "") for m in slack.recorder.api("chat.postMessage")) == 2
        )
        poll_until(lambda: second.runtime.store.pending_announcements() == 0)
    finally:
        second.close()
        bg.run(slack.stop())
        bg.close()


def test_an_announcement_slack_could_not_be_reached_for_is_kept_and_delivered_when_it_is_back(tmp_path, caplog):
    from conftest import Background

    caplog.set_level(logging.INFO)

    sim = BackupSimulator(completion_seconds=3600)
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    clock = ManualClock()
    live = LiveStack(tmp_path / "away.db", sim, slack=slack, clock=clock)
    back = LoopbackSlack()
    try:
        live.ask("servers")  # Bolt has asked Slack who the bot is (auth.test), as at any start
        bg.run(slack.stop())  # Slack cannot be reached (its replies neither: nobody hears back for now)
        response, _key = live.command("create 12345 while Slack is away")
        assert response.status_code == 200
        poll_until(lambda: "could not deliver a reply" in caplog.text)  # the announcement was tried first, then this
        assert "Slack unreachable" in caplog.text
        assert live.runtime.store.pending_announcements() == 1, "kept in the outbox"
        back.port = slack.port  # Slack is back where it was
        bg.run(back.start())
        clock.now += timedelta(seconds=10)
        back.recorder.wait_for(
            lambda _r: [m for m in back.recorder.api("chat.postMessage") if "while Slack is away" in m["text"]]
        )
        poll_until(lambda: live.runtime.store.pending_announcements() == 0)
    finally:
        live.close()
        bg.run(back.stop())
        bg.close()


def test_a_refused_channel_says_what_to_do_about_it(stack):
    stack.slack.fail("chat.postMessage", "not_in_channel")
    reply, _ = stack.ask("create 12345")
    assert "I am not in that channel: invite me there" in text_of(reply)
    assert stack.runtime.store.pending_announcements() == 0, "no retry can mend it"


# --- 6. defence in depth ------------------------------------------------------------------------


def test_replies_go_only_to_slack_hosts(stack, caplog):
    elsewhere = LoopbackSlack()
    stack.run(elsewhere.start())
    try:
        form = slash_command_body(
            "list 12345", user_id=ADMIN, channel_id=CHANNEL, response_url=elsewhere.response_url("x")
        )
        with caplog.at_level(logging.WARNING):
            assert stack.post(urlencode(form).encode()).status_code == 200
            stack.recorder.wait_for(lambda _r: "not a Slack host" in caplog.text)
        assert elsewhere.recorder.all() == []
    finally:
        stack.run(elsewhere.stop())


def test_an_audit_entry_is_one_line_whatever_it_holds(stack):
    stack.ask("create 12345 first line\n2026-01-01 done U0FAKE delete\r\nthird")
    reply, _ = stack.ask("audit 2")
    lines = [line for line in text_of(reply).splitlines() if "*create*" in line]
    assert len(lines) == 1 and "first line⏎2026-01-01 done U0FAKE delete⏎third" in lines[0]


@pytest.mark.parametrize("text", ["list 12345", "delete 5023"])
def test_a_read_the_api_failed_is_audited_failed(stack, text):
    """Listing, and finding the backup a delete or restore names: an attempt the API failed is in the audit."""
    stack.sim.fail_next(3, 503, method="GET")  # every attempt of the read
    reply, _ = stack.ask(text)
    assert "503" in text_of(reply)
    entry = stack.runtime.store.audit_entries(1)[0]
    assert (entry.user_id, entry.action, entry.outcome) == (ADMIN, text.split()[0], "failed")
    assert "503" in entry.detail


def test_reads_are_retried_on_429_honouring_retry_after(stack):
    before = stack.sim.count("GET")
    stack.sim.fail_next(1, 429, method="GET", retry_after=0.1)
    reply, _ = stack.ask("list 12345")
    assert "*9 backups*" in text_of(reply)
    assert stack.sim.count("GET") - before == 2


def test_a_read_asked_to_wait_too_long_is_not_retried(stack):
    before = stack.sim.count("GET")
    stack.sim.fail_next(1, 429, method="GET", retry_after=120)
    reply, _ = stack.ask("list 12345")
    assert "rate-limiting the bot" in text_of(reply)
    assert stack.sim.count("GET") - before == 1


# --- 7. smaller things ----------------------------------------------------------------------------


def test_a_mention_in_a_description_reads_as_a_name_and_every_line_is_quoted(stack):
    stack.ask("create 12347 ask <@U0ABC123|bob> first\nthen <#C0OPS|ops>")
    backups = stack.sim.handle(
        "GET", "/api/v1/backups/", "server_id=12347&backup_type=manual", {"authorization": "Bearer x"}, b""
    ).body["results"]
    assert "ask @bob first\nthen #ops" in {b["description"] for b in backups}
    reply, _ = stack.ask("list 12347 manual")
    assert "> ask @bob first\n> then #ops" in text_of(reply)


def test_no_backups_anywhere_reads_naturally(stack):
    stack.grant("U0NEWBIE", 99, "viewer")
    reply, _ = stack.ask("list automatic", user="U0NEWBIE")
    assert text_of(reply) == "No automatic backups on any server you may see."


def test_expected_api_failures_reach_the_log_at_warning(stack, caplog):
    stack.sim.fail_next(1, 401)
    with caplog.at_level(logging.WARNING):
        stack.ask("list 12345")
    assert any(r.levelno == logging.WARNING and "Unauthorized" in r.getMessage() for r in caplog.records)
    assert "vps-test-token" not in caplog.text
