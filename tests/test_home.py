"""The Home tab, end to end: signed event requests, presses on the published view, the form, the follow."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from conftest import ADMIN, LiveStack, buttons, poll_until

from bot.sim.fake_api import BackupSimulator
from bot.sim.slack_loopback import app_home_opened_body, block_actions_payload, view_submission_payload
from bot.slack import ids
from bot.slack.views.base import flatten_text

OPERATOR = "U0OPERATOR"


def open_home(stack, user, *, event_id=None, retry=None):
    body = json.dumps(app_home_opened_body(user, event_id)).encode()
    extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
    before = len(stack.recorder.api("views.publish"))
    response = stack.post(body, content_type="application/json", headers=extra)
    assert response.status_code == 200
    return before


def published(stack, user, after: int = 0) -> dict:
    views = stack.recorder.wait_for(
        lambda _r: [v for v in stack.recorder.api("views.publish")[after:] if v["user_id"] == user]
    )
    return views[-1]["view"]


def home_text(view) -> str:
    return flatten_text(view["blocks"])


def press_on_home(stack, view, element, user):
    payload = block_actions_payload(
        user_id=user, channel_id="", response_url="", action=element, block_id=element["_block"], view=view
    )
    return stack.post(urlencode({"payload": json.dumps(payload)}).encode())


def test_an_operators_home_shows_their_servers_only_with_take_a_backup(stack):
    stack.grant(OPERATOR, 12345, "operator")
    stack.grant(OPERATOR, 12347, "viewer")
    before_gets = stack.sim.count("GET")
    view = published(stack, OPERATOR, open_home(stack, OPERATOR))
    text = home_text(view)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert "*Your servers (2)*" in text and "*web-server-01* (12345) — operator" in text
    assert "*staging-01* (12347) — viewer" in text and "db-server-01" not in text, "nothing they may not see"
    assert "manual backups 2 of 10" in text and "newest *#" in text
    creates = [b for b in buttons(view) if b["action_id"] == ids.HOME_CREATE]
    assert [b["value"] for b in creates] == ["12345"], "Take a backup only where they may create"
    assert stack.sim.count("GET") - before_gets == 2, "one list call per server shown"


def test_take_a_backup_from_home_creates_one_backup_and_follows_it(tmp_path):
    sim = BackupSimulator(completion_seconds=3600)
    live = LiveStack(tmp_path / "home.db", sim, poll_seconds=0.2)
    try:
        live.grant(OPERATOR, 12345, "operator")
        view = published(live, OPERATOR, open_home(live, OPERATOR))
        take = next(b for b in buttons(view) if b["action_id"] == ids.HOME_CREATE)
        assert press_on_home(live, view, take, OPERATOR).status_code == 200
        form = live.recorder.wait_for(lambda _r: live.recorder.api("views.open"))[-1]["view"]
        assert form["callback_id"] == ids.CREATE_MODAL and form["title"]["text"] == "Take a backup"
        before = len(live.recorder.api("views.publish"))
        values = {ids.CREATE_DESCRIPTION_BLOCK: {ids.CREATE_DESCRIPTION_ACTION: "before <the> upgrade"}}
        payload = view_submission_payload(user_id=OPERATOR, view=form, values=values)
        assert live.post(urlencode({"payload": json.dumps(payload)}).encode()).status_code == 200
        after_create = published(live, OPERATOR, before)
        assert "Backup *#5033* of *web-server-01* (12345) has started" in home_text(after_create)
        assert len(live.recorder.api("views.publish")) == before + 1, "one publish: the note is not overwritten"
        assert sim.count("POST", "/api/v1/backups") == 1
        assert [f.backup_id for f in live.runtime.store.following()] == [5033], "followed like /backup create"
        before = len(live.recorder.api("views.publish"))
        sim.finish(5033)
        refreshed = published(live, OPERATOR, before)
        assert "newest *#5033* :white_check_mark: completed" in home_text(refreshed), "refreshed when it ends"
    finally:
        live.close()


def test_an_admins_home_shows_every_server_from_one_call(stack):
    before_gets = stack.sim.count("GET")
    text = home_text(published(stack, ADMIN, open_home(stack, ADMIN)))
    assert "*Your servers (3)*" in text and "You are an admin" in text
    assert all(name in text for name in ("web-server-01", "db-server-01", "staging-01"))
    assert stack.sim.count("GET") - before_gets == 1


def test_a_retried_event_publishes_once(stack):
    first = open_home(stack, ADMIN, event_id="Ev0RETRIED")
    published(stack, ADMIN, first)
    open_home(stack, ADMIN, event_id="Ev0RETRIED", retry=1)
    poll_until(lambda: len(stack.recorder.api("views.publish")) == first + 1)
    open_home(stack, ADMIN, event_id="Ev0OTHER")
    poll_until(lambda: len(stack.recorder.api("views.publish")) == first + 2)


def test_a_permission_change_shows_at_the_next_open(stack):
    stack.grant(OPERATOR, 12345, "viewer")
    assert "db-server-01" not in home_text(published(stack, OPERATOR, open_home(stack, OPERATOR)))
    stack.ask("grant U0OPERATOR 12346 owner")
    assert "*db-server-01* (12346) — owner" in home_text(published(stack, OPERATOR, open_home(stack, OPERATOR)))


@pytest.fixture
def crowded(tmp_path):
    sim = BackupSimulator(seed=False, completion_seconds=3600)
    for n in range(150):
        sim.add_server(20000 + n, f"node-{n:03d}")
        sim.add_backup(20000 + n, age=timedelta(hours=n))
    live = LiveStack(tmp_path / "crowded.db", sim)
    yield live
    live.close()


def test_150_servers_stay_within_100_blocks_and_say_how_many_more(crowded):
    view = published(crowded, ADMIN, open_home(crowded, ADMIN))
    assert len(view["blocks"]) <= 100
    text = home_text(view)
    assert "*Your servers (150)*" in text and "more servers: `/backup servers` lists them all." in text


def test_a_request_waiting_for_me_is_decided_from_home(stack):
    stack.grant("U0OWNER", 12345, "owner")
    stack.grant("U0OWNER2", 12345, "owner")
    stack.ask("approvals 12345 on")
    confirmation, _ = stack.ask("delete 5023", user="U0OWNER")
    confirm = next(b for b in buttons(confirmation) if b["action_id"] == ids.CONFIRM_DELETE)
    stack.press(confirm, user="U0OWNER")
    poll_until(lambda: stack.runtime.store.pending_approvals())
    assert "Waiting for your decision" not in home_text(published(stack, "U0OWNER", open_home(stack, "U0OWNER")))
    view = published(stack, "U0OWNER2", open_home(stack, "U0OWNER2"))
    assert "*Waiting for your decision*" in home_text(view) and "<@U0OWNER> asks to delete backup *#5023*" in home_text(
        view
    )
    approve = next(b for b in buttons(view) if b["action_id"] == ids.APPROVE)
    before = len(stack.recorder.api("views.publish"))
    assert press_on_home(stack, view, approve, "U0OWNER2").status_code == 200
    after = published(stack, "U0OWNER2", before)
    assert "Waiting for your decision" not in home_text(after)
    assert stack.sim.count("DELETE") == 1


def test_a_home_tab_slack_rate_limited_is_published_again_when_slack_said(tmp_path, sim):
    from conftest import ManualClock

    clock = ManualClock()
    live = LiveStack(tmp_path / "home-later.db", sim, clock=clock)
    try:
        live.grant(OPERATOR, 12345, "operator")
        live.slack.rate_limit("views.publish", times=1, retry_after=30)
        open_home(live, OPERATOR)
        live.recorder.wait_for(lambda _r: live.recorder.api("views.publish"))
        poll_until(lambda: live.runtime.store.pending_announcements() == 1)
        assert len(live.recorder.api("views.publish")) == 1, "refused once; not tried again before Slack's time"
        clock.now += timedelta(seconds=31)
        view = published(live, OPERATOR, 1)
        assert "web-server-01" in home_text(view), "published again, built afresh"
        poll_until(lambda: live.runtime.store.pending_announcements() == 0)
    finally:
        live.close()
