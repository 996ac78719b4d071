"""Every listener, fed arbitrary field values (hypothesis): never an exception, never silence.

The app runs in-process (Bolt's own dispatch, requests signed as Slack signs them) with
`process_before_response`, so when dispatch returns, every reply it will send has arrived
at the loopback Slack, and the test can tell an answered request from a silent one.
"""

import json
import uuid
from urllib.parse import urlencode

import pytest
from conftest import Background
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.runtime import build_runtime
from bot.sim.fake_api import BackupSimulator, SimulatorTransport
from bot.sim.slack_loopback import (
    LoopbackSlack,
    block_actions_payload,
    sign,
    slash_command_body,
    view_submission_payload,
)
from bot.slack import ids
from bot.slack.requests import SlackRequest

SECRET = "hostile-secret"
ADMIN = "UADMIN01"
FIELD_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
HYPOTHESIS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


class InProcess:
    def __init__(self, tmp_path):
        self.bg = Background()
        self.slack = self.bg.run(LoopbackSlack().start())
        self.sim = BackupSimulator(completion_seconds=3600)
        settings_ = Settings(
            slack_bot_token="xoxb-hostile",
            slack_signing_secret=SECRET,
            slack_api_url=self.slack.api_url,
            vps_api_url="http://sim/api/v1",
            vps_api_token="t",
            db_path=str(tmp_path / "hostile.db"),
            admins=frozenset({ADMIN}),
            notify_channel="CNOTIFY01",
            poll_seconds=3600,
        )
        self.runtime = build_runtime(
            settings_,
            api_transport=SimulatorTransport(self.sim),
            process_before_response=True,
            api_options={"backoff_seconds": 0},
        )

    def dispatch(self, body: str) -> tuple[int, str]:
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            **{k.lower(): v for k, v in sign(SECRET, body.encode()).items()},
        }

        async def go():
            response = await self.runtime.app.async_dispatch(SlackRequest(body=body, headers=headers))
            return response.status, response.body or ""

        return self.bg.run(go())

    def answered(self, key: str, ack_body: str) -> bool:
        """Did the person hear back: in the ack, through the response_url, or in an opened form?"""
        return bool(ack_body) or bool(self.slack.recorder.responses(key))

    def close(self):
        self.bg.run(self.runtime.aclose())
        self.bg.run(self.slack.stop())
        self.bg.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    live = InProcess(tmp_path_factory.mktemp("hostile"))
    yield live
    live.close()


@HYPOTHESIS
@given(text=FIELD_TEXT, user=FIELD_TEXT, channel=FIELD_TEXT, channel_name=FIELD_TEXT, team=FIELD_TEXT)
def test_any_slash_command_is_answered(app, text, user, channel, channel_name, team):
    key = uuid.uuid4().hex
    form = slash_command_body(text, user_id=user or "U0X", channel_id=channel, response_url=app.slack.response_url(key))
    form.update(channel_name=channel_name, team_domain=team)
    status, body = app.dispatch(urlencode(form))
    assert status == 200, body
    assert app.answered(key, body), f"/backup {text!r} went unanswered"
    assert "Traceback" not in body


BUTTONS = [
    ids.DELETE_REQUEST,
    ids.RESTORE_REQUEST,
    ids.CONFIRM_DELETE,
    ids.CANCEL,
    ids.LIST_PREV,
    ids.LIST_NEXT,
    ids.OPEN_RESTORE,
]


@HYPOTHESIS
@given(action_id=st.sampled_from(BUTTONS), value=FIELD_TEXT, user=FIELD_TEXT, channel=FIELD_TEXT)
def test_any_button_press_is_answered(app, action_id, value, user, channel):
    key = uuid.uuid4().hex
    payload = block_actions_payload(
        user_id=user or "U0X",
        channel_id=channel,
        response_url=app.slack.response_url(key),
        action={"action_id": action_id, "value": value},
        block_id="b",
    )
    status, body = app.dispatch(urlencode({"payload": json.dumps(payload)}))
    assert status == 200, body
    assert app.answered(key, body), f"{action_id} with {value!r} went unanswered"


@HYPOTHESIS
@given(
    metadata=st.one_of(FIELD_TEXT, st.dictionaries(st.sampled_from(["c", "ch", "ru"]), FIELD_TEXT)), typed=FIELD_TEXT
)
def test_any_restore_form_submission_is_answered(app, metadata, typed):
    key = uuid.uuid4().hex
    if isinstance(metadata, dict):
        metadata = json.dumps({**metadata, "ru": app.slack.response_url(key)} if "ru" in metadata else metadata)
    view = {"callback_id": ids.RESTORE_MODAL, "private_metadata": metadata, "type": "modal", "blocks": []}
    payload = view_submission_payload(
        user_id=ADMIN, view=view, values={ids.RESTORE_INPUT_BLOCK: {ids.RESTORE_INPUT_ACTION: typed}}
    )
    before = len(app.slack.recorder.api("chat.postEphemeral"))
    status, body = app.dispatch(urlencode({"payload": json.dumps(payload)}))
    assert status == 200, body
    told = app.answered(key, body) or len(app.slack.recorder.api("chat.postEphemeral")) > before
    assert told, f"a restore form with {metadata!r} went unanswered"
    assert app.sim.restores == []
