"""Several bots on one PostgreSQL: real `serve` processes, the simulator over HTTP, the loopback Slack.

Requests go alternately to each replica; work is claimed once in the database; only the holder of
the poller lease polls the API, and another takes over when it dies.
"""

import re
import signal
import subprocess
import threading
import time
from urllib.parse import urlencode

import httpx
import pytest
from bot_process import BotProcess
from conftest import (
    ADMIN,
    CHANNEL,
    SECRET,
    Background,
    bot_env,
    button,
    free_port,
    poll_until,
    text_of,
    wait_healthy,
)

from bot.sim.fake_api import BackupSimulator, start_simulator_server
from bot.sim.slack_loopback import LoopbackSlack, block_actions_payload, sign, slash_command_body
from bot.slack import ids
from bot.store.postgres import PgStore

POLL_SECONDS = 1.0  # the shortest BACKUPBOT_POLL_SECONDS allows
LEASE_SECONDS = 3.0  # the background loop's floor: max(2 x poll, 3 s)


class Replica:
    """One `vps-backup-bot serve` process on the shared store."""

    def __init__(self, name: str, env: dict, tmp_path):
        self.name = name
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = BotProcess(
            ["serve", "--port", self.url.rsplit(":", 1)[1], "--host", "127.0.0.1"], env=env, cwd=tmp_path
        )
        self.http = httpx.Client(timeout=10)
        wait_healthy(self.url, self.proc)

    def post(self, form: dict) -> httpx.Response:
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
        return self.http.post(f"{self.url}/slack/events", content=body, headers=headers)

    def api_gets(self) -> int:
        """How many list calls this replica made to the backup API (its own /metrics)."""
        text = self.http.get(f"{self.url}/metrics").text
        match = re.search(r'backupbot_backup_api_seconds_count\{method="get"\} ([0-9.e+]+)', text)
        return int(float(match.group(1))) if match else 0

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.communicate(timeout=15)


class Pair:
    """Two replicas, one PostgreSQL database, one simulator, one Slack."""

    def __init__(self, tmp_path, url: str):
        self.bg = Background()
        self.sim = BackupSimulator(token="vps-t0ken", completion_seconds=3600)
        self.runner, api_url = self.bg.run(start_simulator_server(self.sim))
        self.slack = self.bg.run(LoopbackSlack().start())
        env = bot_env(
            self.slack,
            api_url,
            url,
            SLACK_BOT_TOKEN="xoxb-replica",
            SLACK_SIGNING_SECRET=SECRET,
            BACKUPBOT_NOTIFY_CHANNEL="CNOTIFY01",
            BACKUPBOT_POLL_SECONDS=str(POLL_SECONDS),
            BACKUPBOT_DELETE_GRACE_SECONDS="0",
        )
        self.replicas = [Replica("A", env, tmp_path), Replica("B", env, tmp_path)]
        self.observer = PgStore(url)  # one connection pool for the test's own looks at the database

    def command(self, replica: Replica, text: str) -> dict:
        url = self.slack.response_url()
        replica.post(slash_command_body(text, user_id=ADMIN, channel_id=CHANNEL, response_url=url))
        return self.reply(url.rsplit("/", 1)[1])

    def press(self, replica: Replica, element: dict) -> str:
        url = self.slack.response_url()
        payload = block_actions_payload(
            user_id=ADMIN, channel_id=CHANNEL, response_url=url, action=element, block_id="confirm"
        )
        import json

        replica.post({"payload": json.dumps(payload)})
        return url.rsplit("/", 1)[1]

    def reply(self, key: str, count: int = 1) -> dict:
        return self.slack.recorder.wait_for(
            lambda _r: len(self.slack.recorder.responses(key)) >= count and self.slack.recorder.responses(key)[-1]
        )

    def leader(self) -> str | None:
        """The pid part of the poller lease's holder, if it is held now."""
        held = self.observer.lease_holder("poller")
        if held is None or held[1] < time.time():
            return None
        return held[0].split(":")[1]

    def replica_of(self, pid: str) -> Replica:
        return next(r for r in self.replicas if str(r.proc.pid) == pid)

    def close(self) -> None:
        self.observer.close()
        for replica in self.replicas:
            replica.stop()
        self.bg.run(self.runner.cleanup())
        self.bg.run(self.slack.stop())
        self.bg.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory, postgres):
    """Two replicas shared by the tests that leave both running (starting them is the slow part)."""
    both = Pair(tmp_path_factory.mktemp("replicas"), postgres.new_store_url())
    yield both
    both.close()


@pytest.fixture
def own_pair(tmp_path, pg_url):
    both = Pair(tmp_path, pg_url)
    yield both
    both.close()


def test_a_confirmation_made_through_one_replica_is_pressed_through_the_other(pair):
    a, b = pair.replicas
    confirmation = pair.command(a, "delete 5023")
    key = pair.press(b, button(confirmation, ids.CONFIRM_DELETE))
    assert "Deleted backup *#5023*" in text_of(pair.reply(key))
    assert pair.sim.count("DELETE", "/api/v1/backups/5023/") == 1


def test_two_presses_at_once_on_two_replicas_make_one_api_call(pair):
    a, b = pair.replicas
    confirm = button(pair.command(b, "delete 5022"), ids.CONFIRM_DELETE)
    keys = {}
    presses = [threading.Thread(target=lambda r=r: keys.__setitem__(r.name, pair.press(r, confirm))) for r in (a, b)]
    for press in presses:
        press.start()
    for press in presses:
        press.join()
    replies = sorted(text_of(pair.reply(key)) for key in keys.values())
    assert pair.sim.count("DELETE", "/api/v1/backups/5022/") == 1
    assert sum("Deleted backup *#5022*" in r for r in replies) == 1
    assert sum("already confirmed" in r for r in replies) == 1


def test_only_the_lease_holder_polls_the_api(pair):
    created = pair.command(pair.replicas[0], "create 12347 shared")
    assert "has started" in text_of(created)
    leader_pid = poll_until(pair.leader)
    leader = pair.replica_of(leader_pid)
    standby = next(r for r in pair.replicas if r is not leader)
    before = (leader.api_gets(), standby.api_gets())
    poll_until(lambda: leader.api_gets() - before[0] >= 4, timeout=8 * POLL_SECONDS)  # the leader polls every round
    assert standby.api_gets() == before[1], "the standby makes no list call at all"


def test_when_the_leader_is_killed_the_other_takes_over_and_reports_once(own_pair):
    pair = own_pair
    created = pair.command(pair.replicas[1], "create 12345 before the failover")
    backup_id = int(re.search(r"Backup \*#(\d+)\*", text_of(created)).group(1))
    leader = pair.replica_of(poll_until(pair.leader))
    survivor = next(r for r in pair.replicas if r is not leader)
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait(timeout=10)
    killed_at = time.monotonic()
    poll_until(lambda: pair.leader() == str(survivor.proc.pid), timeout=LEASE_SECONDS + 5)
    takeover = time.monotonic() - killed_at
    assert takeover <= LEASE_SECONDS + 2, f"took {takeover:.1f} s"
    pair.sim.finish(backup_id)
    done = pair.slack.recorder.wait_for(
        lambda _r: [m for m in pair.slack.recorder.api("chat.postMessage") if "is complete" in m["text"]]
    )
    time.sleep(2.5 * POLL_SECONDS)  # two more rounds, in which a second report would come
    completes = [m for m in pair.slack.recorder.api("chat.postMessage") if "is complete" in m["text"]]
    assert len(completes) == 1 and f"#{backup_id}" in done[0]["text"]


def test_two_socket_mode_bots_on_one_store_each_envelope_acted_on_once(tmp_path, pg_url):
    """Slack lets an app hold several Socket Mode connections and hands each envelope to one of them."""
    bg = Background()
    sim = BackupSimulator(token="vps-t0ken", completion_seconds=3600)
    runner, api_url = bg.run(start_simulator_server(sim))
    slack = bg.run(LoopbackSlack().start())
    env = bot_env(
        slack,
        api_url,
        pg_url,
        SLACK_BOT_TOKEN="xoxb-sock",
        SLACK_APP_TOKEN="xapp-sock",
        BACKUPBOT_DELETE_GRACE_SECONDS="0",
    )
    bots = [BotProcess(["socket"], env=env, cwd=tmp_path) for _ in range(2)]
    try:
        poll_until(lambda: slack.connections == 2, timeout=30)
        asked = slash_command_body(
            "delete 5023", user_id=ADMIN, channel_id=CHANNEL, response_url=slack.response_url("s1")
        )
        bg.run(slack.send_envelope("slash_commands", asked, connection=0))
        confirmation = slack.recorder.wait_for(lambda _r: slack.recorder.responses("s1"))[0]
        press = block_actions_payload(
            user_id=ADMIN,
            channel_id=CHANNEL,
            response_url=slack.response_url("s2"),
            action=button(confirmation, ids.CONFIRM_DELETE),
            block_id="confirm",
        )
        bg.run(slack.send_envelope("interactive", press, connection=1, envelope_id="env-press"))
        bg.run(slack.send_envelope("interactive", press, connection=0, envelope_id="env-press"))  # redelivered
        assert "Deleted backup *#5023*" in text_of(
            slack.recorder.wait_for(lambda _r: slack.recorder.responses("s2"))[0]
        )
        time.sleep(0.5)
        assert sim.count("DELETE") == 1 and len(slack.recorder.responses("s2")) == 1
    finally:
        for bot in bots:
            bot.send_signal(signal.SIGTERM)
        for bot in bots:
            try:
                bot.wait(timeout=20)
            except subprocess.TimeoutExpired:
                bot.kill()
            bot.communicate(timeout=10)
        bg.run(runner.cleanup())
        bg.run(slack.stop())
        bg.close()
