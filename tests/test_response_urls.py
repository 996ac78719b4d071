"""Replies go only to response_urls on Slack's own hosts, end to end.

A response_url arrives in the request body: a signed request, but the bot still posts only to
`https://hooks.slack.com` (port 443), or to the exact host and port of `SLACK_API_URL` when it
points at a stand-in (here the loopback Slack). Anything else is refused with a log line, and
nothing is posted there. Hosts that only *look* like Slack's are the point: a check by suffix
or by host name alone would let them through.
"""

import json
import logging
import uuid
from urllib.parse import urlencode, urlsplit

import pytest
from conftest import ADMIN, CHANNEL, Background, LiveStack, button, poll_until, text_of

from bot.sim.slack_loopback import LoopbackSlack, block_actions_payload, slash_command_body
from bot.slack import ids

NOT_SLACK = [
    "https://evilslack.com/commands/T0/1/x",  # ends like slack.com
    "https://api.slack.com/commands/T0/1/x",  # Slack's, but not where replies go
    "https://slack.com/commands/T0/1/x",
    "https://hooks.slack.com.evil.example/commands/T0/1/x",  # starts like it
    "https://hooks.slack.com@evil.example/commands/T0/1/x",  # the host is evil.example
    "https://evil.example/hooks.slack.com/commands",
    "http://hooks.slack.com/commands/T0/1/x",  # not TLS
    "https://hooks.slack.com:8443/commands/T0/1/x",  # another port
]


def refused(caplog, url: str) -> bool:
    netloc = urlsplit(url).netloc
    return any(
        r.levelno >= logging.WARNING and "refused" in r.getMessage() and netloc in r.getMessage()
        for r in caplog.records
    )


def command_with(stack, response_url: str, text: str = "list 12345") -> None:
    form = slash_command_body(text, user_id=ADMIN, channel_id=CHANNEL, response_url=response_url)
    assert stack.post(urlencode(form).encode()).status_code == 200


def press_with(stack, response_url: str, action: dict) -> None:
    payload = block_actions_payload(
        user_id=ADMIN, channel_id=CHANNEL, response_url=response_url, action=action, block_id="b"
    )
    assert stack.post(urlencode({"payload": json.dumps(payload)}).encode()).status_code == 200


@pytest.mark.parametrize("url", NOT_SLACK)
def test_a_reply_is_not_posted_to_a_host_that_only_looks_like_slacks(stack, caplog, url):
    caplog.set_level(logging.INFO)
    command_with(stack, url)
    poll_until(lambda: refused(caplog, url), timeout=5)
    assert "could not deliver" not in caplog.text, "it was refused, not tried"
    confirmation, _ = stack.ask("delete 5023")  # a button pressed with such a response_url: refused the same way
    caplog.clear()
    press_with(stack, url, button(confirmation, ids.CANCEL))
    poll_until(lambda: refused(caplog, url), timeout=5)
    ok, _ = stack.ask("list 12345")  # the stand-in itself is served as before
    assert "backups" in text_of(ok)


def test_a_stand_in_is_trusted_only_at_its_own_host_and_port(stack, caplog):
    """Another server on the same loopback address (another port), and the stand-in under another name."""
    caplog.set_level(logging.INFO)
    elsewhere = stack.run(LoopbackSlack().start())
    try:
        other_port = elsewhere.response_url(uuid.uuid4().hex)
        other_name = f"http://localhost:{stack.slack.port}/response/{uuid.uuid4().hex}"
        for url in (other_port, other_name):
            command_with(stack, url)
            poll_until(lambda url=url: refused(caplog, url), timeout=5)
        assert elsewhere.recorder.responses() == [], "nothing reached the other server"
        assert stack.recorder.responses(other_name.rsplit("/", 1)[1]) == []
    finally:
        stack.run(elsewhere.stop())


def test_a_request_that_fails_before_its_listener_is_answered_only_on_slacks_hosts_too(tmp_path, sim, caplog):
    """Slack cannot be reached when the first request comes (Bolt's auth.test fails): the error reply, too,
    goes only to a Slack host."""
    caplog.set_level(logging.INFO)
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    elsewhere = bg.run(LoopbackSlack().start())
    live = LiveStack(tmp_path / "early.db", sim, slack=slack)
    try:
        bg.run(slack.stop())
        url = elsewhere.response_url(uuid.uuid4().hex)
        form = slash_command_body("list 12345", user_id=ADMIN, channel_id=CHANNEL, response_url=url)
        live.post(urlencode(form).encode())
        poll_until(lambda: refused(caplog, url), timeout=5)
        assert elsewhere.recorder.all() == []
    finally:
        live.close()
        bg.run(elsewhere.stop())
        bg.close()
