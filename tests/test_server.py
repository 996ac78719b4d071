"""The two doors: HTTP (`serve`, under uvicorn) and Socket Mode, and Slack's request signing."""

import asyncio
import json
import subprocess
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest
from conftest import ADMIN, CHANNEL, CLEAN_ENV, SECRET, bot_command, free_port, text_of, wait_healthy

from bot.server import socket_main
from bot.sim.fake_api import BackupSimulator, start_simulator_server
from bot.sim.slack_loopback import LoopbackSlack, block_actions_payload, sign, slash_command_body


def test_healthz(stack):
    response = stack.http.get("/healthz")
    assert response.status_code == 200 and response.text == "ok"


def test_forged_signature_is_refused(stack):
    response, _ = stack.command("list")  # sanity: a signed request is accepted
    assert response.status_code == 200
    form = urlencode(
        slash_command_body("list", user_id=ADMIN, channel_id=CHANNEL, response_url=stack.slack.response_url())
    ).encode()
    assert stack.post(form, secret="not-the-secret").status_code == 401
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, form)}
    assert stack.http.post("/slack/events", content=form + b"&x=1", headers=headers).status_code == 401
    assert stack.http.post("/slack/events", content=form).status_code == 401


def test_stale_signature_is_refused(stack):
    form = urlencode(
        slash_command_body("list", user_id=ADMIN, channel_id=CHANNEL, response_url=stack.slack.response_url())
    ).encode()
    assert stack.post(form, timestamp=int(time.time()) - 6 * 60).status_code == 401
    assert stack.post(form, timestamp=int(time.time()) - 60).status_code == 200


def test_unknown_path_is_404(stack):
    assert stack.http.get("/").status_code == 404


class Background:
    """An event loop on a thread, for servers the test talks to from outside."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_the_real_serve_process(tmp_path):
    """`vps-backup-bot serve` as deployed: the simulator and Slack on loopback, a signed command in."""
    bg = Background()
    sim = BackupSimulator(token="vps-t0ken", completion_seconds=3600)
    runner, api_url = bg.run(start_simulator_server(sim))
    slack = bg.run(LoopbackSlack().start())
    port = free_port()
    env = {
        **CLEAN_ENV,
        "SLACK_BOT_TOKEN": "xoxb-serve",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "VPS_API_URL": api_url,
        "VPS_API_TOKEN": "vps-t0ken",
        "BACKUPBOT_DB": str(tmp_path / "serve.db"),
        "BACKUPBOT_ADMINS": ADMIN,
    }
    proc = subprocess.Popen(
        [*bot_command(), "serve", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        response_url = slack.response_url("serve")
        form = urlencode(
            slash_command_body("list 12345", user_id=ADMIN, channel_id=CHANNEL, response_url=response_url)
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, form)}
        assert httpx.post(f"{url}/slack/events", content=form, headers=headers).status_code == 200
        reply = slack.recorder.wait_for(lambda _r: slack.recorder.responses("serve"))[0]
        assert "*9 backups* on *web-server-01* (12345)" in text_of(reply)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0]
        bg.run(runner.cleanup())
        bg.run(slack.stop())
        bg.close()
    for secret in ("xoxb-serve", "vps-t0ken", SECRET):
        assert secret not in output, "no secret reaches a log line"
    assert "Uvicorn running" in output


@pytest.fixture
def socket_stack(tmp_path):
    from bot.runtime import build_runtime
    from bot.sim.fake_api import SimulatorTransport

    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    from bot.config import Settings

    settings = Settings(
        slack_bot_token="xoxb-sock",
        slack_app_token="xapp-sock",
        slack_api_url=slack.api_url,
        vps_api_url="http://sim/api/v1",
        vps_api_token="t",
        db_path=str(tmp_path / "sock.db"),
        admins=frozenset({ADMIN}),
        notify_channel="CNOTIFY01",
        poll_seconds=3600,
    )
    sim = BackupSimulator(completion_seconds=3600)
    runtime = build_runtime(settings, api_transport=SimulatorTransport(sim), api_options={"backoff_seconds": 0})
    task = asyncio.run_coroutine_threadsafe(socket_main(settings, runtime), bg.loop)
    yield bg, slack, sim
    task.cancel()
    bg.run(slack.stop())
    bg.close()


def test_socket_mode_runs_the_same_listeners(socket_stack):
    bg, slack, sim = socket_stack
    response_url = slack.response_url("sock")
    payload = slash_command_body("delete 5023", user_id=ADMIN, channel_id=CHANNEL, response_url=response_url)
    ack = bg.run(slack.send_envelope("slash_commands", payload))
    assert set(ack) >= {"envelope_id"}
    confirmation = slack.recorder.wait_for(lambda _r: slack.recorder.responses("sock"))[0]
    assert "*Delete this backup?*" in text_of(confirmation)
    token = next(
        e["value"]
        for b in confirmation["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "confirm_delete"
    )
    press_url = slack.response_url("press")
    press = block_actions_payload(
        user_id=ADMIN,
        channel_id=CHANNEL,
        response_url=press_url,
        action={"action_id": "confirm_delete", "value": token},
        block_id="confirm",
    )
    bg.run(slack.send_envelope("interactive", press))
    deleted = slack.recorder.wait_for(lambda _r: slack.recorder.responses("press"))[0]
    assert "Deleted backup *#5023*" in text_of(deleted)
    assert sim.count("DELETE") == 1
    assert slack.recorder.api("apps.connections.open"), "the socket URL came from the configured Slack API"


def test_socket_mode_help_is_answered_in_the_ack_payload(socket_stack):
    bg, slack, _sim = socket_stack
    payload = slash_command_body("help", user_id=ADMIN, channel_id=CHANNEL, response_url=slack.response_url())
    ack = bg.run(slack.send_envelope("slash_commands", payload))
    assert "/backup list" in json.dumps(ack["payload"])


def run_against_a_refusing_slack(tmp_path, method: str, args: list[str], env: dict) -> subprocess.CompletedProcess:
    """Run the bot with a loopback Slack that answers `method` with invalid_auth."""
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    slack.fail(method, "invalid_auth")
    full_env = {
        **CLEAN_ENV,
        "SLACK_API_URL": slack.api_url,
        "VPS_API_TOKEN": "t",
        "BACKUPBOT_DB": str(tmp_path / "s.db"),
        **env,
    }
    try:
        return subprocess.run(
            [*bot_command(), *args], env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    finally:
        bg.run(slack.stop())
        bg.close()


def test_socket_mode_with_a_refused_token_stops_with_one_line(tmp_path):
    result = run_against_a_refusing_slack(
        tmp_path, "apps.connections.open", ["socket"], {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_APP_TOKEN": "xapp-wrong"}
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "vps-backup-bot: Slack refused to open a Socket Mode connection (invalid_auth): "
        "check SLACK_APP_TOKEN and SLACK_BOT_TOKEN"
    )
    assert "Traceback" not in result.stderr and "xapp-wrong" not in result.stderr


def test_serve_with_a_refused_bot_token_stops_at_start(tmp_path):
    result = run_against_a_refusing_slack(
        tmp_path,
        "auth.test",
        ["serve", "--host", "127.0.0.1", "--port", str(free_port())],
        {"SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_SIGNING_SECRET": SECRET},
    )
    assert result.returncode != 0
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in result.stderr
    assert "xoxb-wrong" not in result.stderr and "Traceback" not in result.stderr
