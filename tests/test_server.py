"""The two doors: HTTP (`serve`, under uvicorn) and Socket Mode, and Slack's request signing."""

import asyncio
import json
import signal
import subprocess
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest
from bot_process import BotProcess, run_bot
from conftest import (
    ADMIN,
    CHANNEL,
    CLEAN_ENV,
    SECRET,
    Background,
    bot_command,
    bot_env,
    free_port,
    poll_until,
    text_of,
    wait_healthy,
)

from bot.server import socket_main
from bot.sim.fake_api import BackupSimulator, start_simulator_server
from bot.sim.slack_loopback import LoopbackSlack, block_actions_payload, sign, slash_command_body


@pytest.fixture
def roles_stack(stack):
    return stack


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
    assert "Application startup complete" in output


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
        delete_grace_seconds=0.5,
    )
    sim = BackupSimulator(completion_seconds=3600)
    runtime = build_runtime(settings, api_transport=SimulatorTransport(sim), api_options={"backoff_seconds": 0})
    stop = bg.run(make_event())
    task = asyncio.run_coroutine_threadsafe(socket_main(settings, runtime, stop), bg.loop)
    yield bg, slack, sim
    bg.loop.call_soon_threadsafe(stop.set)
    task.result(15)
    bg.run(slack.stop())
    bg.close()


async def make_event() -> asyncio.Event:
    return asyncio.Event()


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
    waiting = slack.recorder.wait_for(lambda _r: slack.recorder.responses("press"))[0]
    assert "will be deleted at" in text_of(waiting), "first the undo window"
    deleted = slack.recorder.wait_for(lambda _r: slack.recorder.responses("press")[1:])[0]
    assert "Deleted backup *#5023*" in text_of(deleted) and deleted["replace_original"] is True
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
        return run_bot(args, env=full_env, cwd=tmp_path)
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


class ServeProcess:
    """`vps-backup-bot serve` as deployed, with the simulator (given latency) and Slack on loopback."""

    def __init__(self, tmp_path, *, latency: float = 0.0, env: dict | None = None):
        self.bg = Background()
        self.sim = BackupSimulator(token="vps-t0ken", completion_seconds=3600, latency=latency)
        self.arrived: list[tuple[str, str]] = []
        self.sim.on_request = lambda method, path: self.arrived.append((method, path))
        self.runner, api_url = self.bg.run(start_simulator_server(self.sim))
        self.slack = self.bg.run(LoopbackSlack().start())
        self.db = tmp_path / "serve.db"
        self.url = f"http://127.0.0.1:{free_port()}"
        full_env = bot_env(
            self.slack,
            api_url,
            self.db,
            SLACK_BOT_TOKEN="xoxb-serve",
            SLACK_SIGNING_SECRET=SECRET,
            BACKUPBOT_NOTIFY_CHANNEL="CNOTIFY01",
            **(env or {}),
        )
        port = self.url.rsplit(":", 1)[1]
        self.proc = BotProcess(["serve", "--port", port, "--host", "127.0.0.1"], env=full_env, cwd=tmp_path)
        wait_healthy(self.url, self.proc)
        if latency:
            poll_until(lambda: self.arrived)  # answered only `latency` later; tests that slow the API set no faults
        else:
            poll_until(lambda: self.sim.requests)  # the loop's first round was answered: a fault set now is the test's

    def command(self, text: str, key: str) -> httpx.Response:
        form = urlencode(
            slash_command_body(text, user_id=ADMIN, channel_id=CHANNEL, response_url=self.slack.response_url(key))
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, form)}
        return httpx.post(f"{self.url}/slack/events", content=form, headers=headers)

    def reply(self, key: str) -> dict:
        return self.slack.recorder.wait_for(lambda _r: self.slack.recorder.responses(key))[0]

    def close(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        output = self.proc.communicate(timeout=15)[0]
        self.bg.run(self.runner.cleanup())
        self.bg.run(self.slack.stop())
        self.bg.close()
        return output


def audit_rows(db) -> list[tuple[str, str, str]]:
    from bot.store import SqliteStore

    store = SqliteStore(str(db))
    try:
        return [(e.action, e.outcome, e.detail) for e in reversed(store.audit_entries(50))]
    finally:
        store.close()


def test_sigterm_lets_acknowledged_work_finish_then_exits_0(tmp_path):
    serve = ServeProcess(tmp_path, latency=1.5)
    try:
        assert serve.command("list 12345", "list").status_code == 200
        assert serve.command("create 12346 before the upgrade", "create").status_code == 200
        serve.proc.send_signal(signal.SIGTERM)
        health = httpx.get(f"{serve.url}/healthz")
        assert (health.status_code, health.text) == (503, "shutting down"), "no new requests while draining"
        late = serve.command("list 12347", "late")
        assert late.status_code == 503
        assert serve.proc.wait(timeout=30) == 0
        assert "*9 backups*" in text_of(serve.reply("list"))
        assert "has started" in text_of(serve.reply("create"))
        assert serve.slack.recorder.responses("late") == []
        posts = [m["text"] for m in serve.slack.recorder.api("chat.postMessage")]
        assert any("started a manual backup *#5033*" in t for t in posts), "the announcement went out"
    finally:
        output = serve.close()
    rows = audit_rows(serve.db)
    assert ("list", "done", "9 backups") in rows
    assert ("create", "done", "before the upgrade") in rows
    assert "Traceback" not in output


def test_work_still_running_at_the_deadline_is_recorded_as_interrupted(tmp_path):
    serve = ServeProcess(tmp_path, latency=6, env={"BACKUPBOT_SHUTDOWN_SECONDS": "0.5"})
    try:
        assert serve.command("create 12346", "create").status_code == 200
        time.sleep(0.2)  # let the create reach the simulator
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0
        reply = text_of(serve.reply("create"))
        assert "The bot had to stop before your request finished" in reply and "check `/backup list`" in reply
    finally:
        serve.close()
    (create,) = [r for r in audit_rows(serve.db) if r[0] == "create"]
    assert (
        create[1] == "failed" and create[2] == "outcome unknown, it may have happened: the bot stopped while sending it"
    )
    assert "could not be reached" not in create[2]


def test_readyz_says_so_when_the_store_cannot_be_written(stack):
    import sqlite3

    assert (stack.http.get("/readyz").status_code, stack.http.get("/readyz").text) == (200, "ready")
    other = sqlite3.connect(str(stack.db_path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        assert stack.http.get("/readyz").text == "ready", "answered from the result of 10 s ago"
        stack.ticks[0] += 10.5
        response = stack.http.get("/readyz")
        assert (response.status_code, response.text) == (503, "store: the store is locked by another process")
        assert stack.http.get("/healthz").status_code == 200, "alive all the same: /healthz is cheap"
    finally:
        other.execute("ROLLBACK")
        other.close()
    stack.ticks[0] += 10.5
    assert stack.http.get("/readyz").status_code == 200


def test_readyz_flips_while_the_backup_api_fails_and_back_when_it_recovers(stack):
    stack.sim.fail_next(9, 503)
    stack.ask("list 12345")  # three failed reads
    before = stack.sim.count("GET")
    response = stack.http.get("/readyz")
    assert response.status_code == 503 and response.text.startswith("backup API: failed its last")
    assert stack.sim.count("GET") == before + 1, "one probe, not retried"
    for _ in range(20):
        assert stack.http.get("/readyz").status_code == 503
    assert stack.sim.count("GET") == before + 1, "probing /readyz drives no traffic to the API for 10 s"
    while stack.sim.take_fault("GET", "/")[0] is not None:
        pass  # the API recovers
    assert stack.http.get("/readyz").status_code == 503, "still the answer of less than 10 s ago"
    stack.ticks[0] += 10.5
    assert (stack.http.get("/readyz").status_code, stack.http.get("/readyz").text) == (200, "ready")


def test_metrics_after_a_scripted_session(roles_stack):
    stack = roles_stack
    stack.ask("list 12345")
    stack.ask("list 12345", user="U0NOBODY")
    stack.sim.fail_next(3, 503)
    stack.ask("list 12345")
    stack.slack.fail("chat.postMessage", "channel_not_found")
    stack.ask("create 12346")
    expected = [
        'backupbot_requests_total{kind="command",outcome="done"} 2.0',
        'backupbot_requests_total{kind="command",outcome="denied"} 1.0',
        'backupbot_requests_total{kind="command",outcome="failed"} 1.0',
        'backupbot_backup_api_errors_total{error="unavailable"} 3.0',
        'backupbot_slack_api_errors_total{error="channel_not_found",method="chat_postmessage"} 1.0',
        'backupbot_backup_api_seconds_count{method="post"} 1.0',
        'backupbot_pending_work{kind="followed_backups"} 1.0',
        'backupbot_ack_seconds_count{kind="command"} 4.0',
    ]
    scrapes = []

    def scrape() -> bool:
        scrapes.append(stack.http.get("/metrics").text)
        return all(line in scrapes[-1] for line in expected)

    try:
        poll_until(scrape, timeout=5)
    except AssertionError:
        missing = [line for line in expected if line not in scrapes[-1]]
        raise AssertionError(f"not in /metrics: {missing}") from None
    text = scrapes[-1]
    assert "U0NOBODY" not in text and "5033" not in text, "no user ID or backup ID as a label"
    assert 'backupbot_newest_backup_age_seconds{server="12345"}' in text, "the watch round's ages"
    assert all(f'backupbot_open_alerts{{kind="{k}"}}' in text for k in ("stale", "failed", "stuck"))


def test_a_redelivered_envelope_is_acted_on_once(socket_stack):
    bg, slack, sim = socket_stack
    payload = slash_command_body(
        "create 12345 once", user_id=ADMIN, channel_id=CHANNEL, response_url=slack.response_url("once")
    )
    first = bg.run(slack.send_envelope("slash_commands", payload, envelope_id="env-1"))
    second = bg.run(slack.send_envelope("slash_commands", payload, envelope_id="env-1"))
    assert first["envelope_id"] == second["envelope_id"] == "env-1", "both deliveries are acknowledged"
    slack.recorder.wait_for(lambda _r: slack.recorder.responses("once"))
    assert sim.count("POST", "/api/v1/backups") == 1
    assert len(slack.recorder.responses("once")) == 1


def test_the_real_socket_process_finishes_acknowledged_work_on_sigterm(tmp_path):
    bg = Background()
    sim = BackupSimulator(token="vps-t0ken", completion_seconds=3600, latency=1.0)
    runner, api_url = bg.run(start_simulator_server(sim))
    slack = bg.run(LoopbackSlack().start())
    env = bot_env(
        slack,
        api_url,
        tmp_path / "socket.db",
        SLACK_BOT_TOKEN="xoxb-sock",
        SLACK_APP_TOKEN="xapp-sock",
        BACKUPBOT_METRICS_PORT=str(metrics_port := free_port()),
    )
    proc = BotProcess(["socket"], env=env, cwd=tmp_path)
    try:
        wait_healthy(f"http://127.0.0.1:{metrics_port}", proc)
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/readyz").text == "ready"
        payload = slash_command_body(
            "create 12345 in flight", user_id=ADMIN, channel_id=CHANNEL, response_url=slack.response_url("sock")
        )
        ack = bg.run(slack.send_envelope("slash_commands", payload, timeout=30))
        assert ack["envelope_id"]
        pipelines = httpx.post(f"http://127.0.0.1:{metrics_port}/api/v1/backups", json={"server_id": 12345})
        assert pipelines.status_code == 401 and pipelines.json()["message"], "the pipeline API is on this port too"
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert "backupbot_pending_work" in metrics and "backupbot_backup_api_seconds" in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        reply = slack.recorder.wait_for(lambda _r: slack.recorder.responses("sock"))[0]
        assert "has started" in text_of(reply), "the acknowledged create finished before the process left"
        assert sim.count("POST", "/api/v1/backups") == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate(timeout=10)[0]
        bg.run(runner.cleanup())
        bg.run(slack.stop())
        bg.close()
    assert ("create", "done", "in flight") in audit_rows(tmp_path / "socket.db")
    assert "Traceback" not in output and "xapp-sock" not in output


def test_json_logs_parse_line_by_line_carry_the_request_and_no_secret(tmp_path):
    serve = ServeProcess(tmp_path, env={"BACKUPBOT_LOG_FORMAT": "json", "BACKUPBOT_LOG_LEVEL": "INFO"})
    try:
        serve.sim.fail_next(1, 401)
        assert serve.command("list 12345", "refused").status_code == 200
        reply = serve.reply("refused")
        assert "refused the bot's credentials" in text_of(reply)
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0
    finally:
        output = serve.close()
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    (warning,) = [r for r in records if r["logger"] == "bot.slack.replies" and r["level"] == "WARNING"]
    assert warning["message"].startswith("Unauthorized: the backup API refused the bot's token")
    assert (warning["kind"], warning["action"], warning["user_id"]) == ("command", "list", ADMIN)
    assert len(warning["request_id"]) == 8
    assert any("Application startup complete" in r["message"] for r in records)
    for secret in ("xoxb-serve", "vps-t0ken", SECRET):
        assert secret not in output


# --- start-up failures are one line and a non-zero exit, in both modes ------------------------------


def one_line_start(tmp_path, argv: list[str], **env: str) -> str:
    full_env = {**CLEAN_ENV, "VPS_API_TOKEN": "t", "BACKUPBOT_DB": str(tmp_path / "start.db"), **env}
    result = run_bot(argv, env=full_env, cwd=tmp_path)
    assert result.returncode != 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vps-backup-bot: "), result.stderr
    return lines[0]


def test_a_port_in_use_is_one_line_in_both_modes(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = one_line_start(
            tmp_path,
            ["serve", "--host", "127.0.0.1", "--port", port],
            SLACK_BOT_TOKEN="xoxb-x",
            SLACK_SIGNING_SECRET=SECRET,
        )
        assert serve == f"vps-backup-bot: cannot listen on 127.0.0.1:{port}: Address already in use"
        taken.close()
        with socket.socket() as other:
            other.bind(("0.0.0.0", 0))
            other.listen()
            metrics = str(other.getsockname()[1])
            sock = one_line_start(
                tmp_path,
                ["socket"],
                SLACK_BOT_TOKEN="xoxb-x",
                SLACK_APP_TOKEN="xapp-x",
                BACKUPBOT_METRICS_PORT=metrics,
            )
    assert sock == f"vps-backup-bot: cannot listen on 0.0.0.0:{metrics}: Address already in use"


@pytest.mark.parametrize("mode", ["serve", "socket"])
def test_an_unreachable_slack_at_start_is_one_line(tmp_path, mode):
    argv = ["serve", "--host", "127.0.0.1", "--port", str(free_port())] if mode == "serve" else ["socket"]
    line = one_line_start(
        tmp_path,
        argv,
        SLACK_API_URL="http://127.0.0.1:9/api/",
        SLACK_BOT_TOKEN="xoxb-x",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_APP_TOKEN="xapp-x",
    )
    assert line.startswith("vps-backup-bot: could not reach Slack at http://127.0.0.1:9/api/")


def test_settings_out_of_bounds_stop_the_start_with_one_line(tmp_path):
    line = one_line_start(
        tmp_path,
        ["serve", "--port", str(free_port())],
        SLACK_BOT_TOKEN="xoxb-x",
        SLACK_SIGNING_SECRET=SECRET,
        BACKUPBOT_POLL_SECONDS="1e-300",
    )
    assert line == "vps-backup-bot: BACKUPBOT_POLL_SECONDS must be from 1 to 3600 seconds, not '1e-300'"


def test_app_rate_limited_is_answered_200_when_signed(stack):
    body = json.dumps(
        {
            "token": "x",
            "type": "app_rate_limited",
            "team_id": "T0",
            "minute_rate_limited": 1518467820,
            "api_app_id": "A0",
        }
    ).encode()
    assert stack.post(body, content_type="application/json").status_code == 200
    assert stack.post(body, content_type="application/json", secret="wrong").status_code == 401


def test_once_started_the_startup_heap_is_left_out_of_garbage_collection():
    import gc

    from bot.server import GC_YOUNG_THRESHOLD, tune_gc

    threshold = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == (GC_YOUNG_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_pipeline_drives_the_real_serve_process(tmp_path):
    """A CI job against `serve`: a token made at the shell, two concurrent calls with one Idempotency-Key (one
    backup), bad calls answered in JSON, the team told in Slack, and the token nowhere but in the job's hands."""
    serve = ServeProcess(tmp_path, latency=0.3, env={"BACKUPBOT_LOG_FORMAT": "json"})
    try:
        made = run_bot(
            ["token", "add", "deploy-prod", "--servers", "12345"],
            env={**CLEAN_ENV, "BACKUPBOT_DB": str(serve.db)},
            cwd=tmp_path,
        )
        token = made.stdout.strip()
        assert made.returncode == 0 and token.startswith("vbb_")
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{serve.url}/api/v1/backups?wait=1"
        answers, start = [], threading.Barrier(2)

        def deploy():
            start.wait()
            key = {"Idempotency-Key": "deploy-812"}
            body = {"server_id": 12345, "description": "Before deploy 812"}
            answers.append(httpx.post(url, json=body, headers={**auth, **key}, timeout=30))

        threads = [threading.Thread(target=deploy) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [a.status_code for a in answers] == [202, 202]
        runs = [a.json() for a in answers]
        assert runs[0]["id"] == runs[1]["id"] and runs[0]["backup_id"] == runs[1]["backup_id"] == 5033
        assert serve.sim.count("POST", "/api/v1/backups") == 1
        followed = httpx.get(f"{serve.url}/api/v1/runs/{runs[0]['id']}", headers=auth)
        assert followed.status_code == 200 and followed.json()["status"] == "in_progress"
        refusals = {
            401: httpx.post(url, json={"server_id": 12345}, headers={"Authorization": "Bearer vbb_wrong"}),
            403: httpx.post(url, json={"server_id": 12346}, headers=auth),
            400: httpx.post(url, content=b"{", headers=auth),
            413: httpx.post(url, content=b"x" * 20000, headers=auth),
        }
        for status, answer in refusals.items():
            assert answer.status_code == status and answer.json()["message"], answer.text
        told = serve.slack.recorder.wait_for(lambda _r: serve.slack.recorder.api("chat.postMessage"))
        assert "*deploy-prod* (pipeline) took backup *#5033*" in told[0]["text"]
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0
    finally:
        output = serve.close()
    secret = token.split("_", 2)[2]
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("serve.db*"))
    slack = json.dumps([record.data for record in serve.slack.recorder.all()])
    for where in (output, stored.decode("latin-1"), slack, made.stderr):
        assert token not in where and secret not in where
    assert "Traceback" not in output
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    calls = [r for r in records if r["message"].startswith("pipeline API: POST /api/v1/backups")]
    assert calls and {r["kind"] for r in calls} == {"pipeline"}
    assert {r["user_id"] for r in calls} == {"token:deploy-prod", ""}, "the token's name, never the token"
    outcomes = sorted(action[1] for action in audit_rows(serve.db) if action[0] == "create")
    assert outcomes == ["cancelled", "denied", "denied", "denied", "done"], "each call audited; the 401 names no one"
