"""`vps-backup-bot doctor` against the simulator and a loopback Slack: all ✓, then each setting wrong in turn."""

import pytest
from conftest import Background
from test_cli import run

from bot.sim.fake_api import BackupSimulator, start_simulator_server
from bot.sim.slack_loopback import LoopbackSlack


@pytest.fixture(scope="module")
def outside():
    bg = Background()
    sim = BackupSimulator(token="vps-good")
    runner, api_url = bg.run(start_simulator_server(sim))
    slack = bg.run(LoopbackSlack().start())
    yield slack, api_url
    bg.run(runner.cleanup())
    bg.run(slack.stop())
    bg.close()


def good_env(outside, tmp_path) -> dict:
    slack, api_url = outside
    return {
        "SLACK_BOT_TOKEN": "xoxb-good",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_APP_TOKEN": "xapp-good",
        "SLACK_API_URL": slack.api_url,
        "VPS_API_URL": api_url,
        "VPS_API_TOKEN": "vps-good",
        "BACKUPBOT_DB": str(tmp_path / "doctor.db"),
        "BACKUPBOT_NOTIFY_CHANNEL": "C0BACKUPS1",
    }


def test_good_settings_pass_every_check(outside, tmp_path):
    result = run("doctor", tmp_path=tmp_path, env=good_env(outside, tmp_path))
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout
    assert lines[-1] == "all checks passed" and all(line.startswith("✓") for line in lines[:-1])
    assert "✓ Slack accepts SLACK_BOT_TOKEN: bot @backupbot in workspace Loopback" in lines
    assert "✓ Slack accepts SLACK_APP_TOKEN: Socket Mode can connect" in lines
    assert any(line.startswith("✓ the backup API accepts VPS_API_TOKEN: 3 servers, 32 backups, ") for line in lines)
    for secret in ("xoxb-good", "xapp-good", "vps-good", "secret"):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "✗ SLACK_BOT_TOKEN does not start with xoxb-"),
        ({"SLACK_SIGNING_SECRET": ""}, "✗ SLACK_SIGNING_SECRET is not set"),
        ({"SLACK_APP_TOKEN": "app-token"}, "✗ SLACK_APP_TOKEN does not start with xapp-"),
        ({"VPS_API_TOKEN": "vps-wrong"}, "✗ the backup API at "),
        ({"VPS_API_URL": "ftp://nowhere"}, "✗ VPS_API_URL: 'ftp://nowhere' is not an http(s) URL"),
        ({"SLACK_API_URL": "http://127.0.0.1:9/api/"}, "✗ Slack could not be reached at http://127.0.0.1:9/api/"),
        ({"BACKUPBOT_NOTIFY_CHANNEL": "#backups"}, "✗ BACKUPBOT_NOTIFY_CHANNEL '#backups' is not a channel ID"),
        ({"BACKUPBOT_DB": "/nonexistent/dir/bot.db"}, "✗ BACKUPBOT_DB=/nonexistent/dir/bot.db: the directory"),
        (
            {"BACKUPBOT_APPROVAL_MINUTES": "99999999999999"},
            "✗ BACKUPBOT_APPROVAL_MINUTES must be from 1 to 10080 minutes, not '99999999999999'",
        ),
        ({"BACKUPBOT_POLL_SECONDS": "1e-300"}, "✗ BACKUPBOT_POLL_SECONDS must be from 1 to 3600 seconds"),
    ],
)
def test_each_wrong_setting_fails_its_line_and_says_what_to_do(outside, tmp_path, change, expected):
    result = run("doctor", tmp_path=tmp_path, env={**good_env(outside, tmp_path), **change})
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗")]
    assert any(line.startswith(expected) and " — " in line for line in failed), result.stdout
    for value in change.values():
        if "token" in value or "wrong" in value:
            assert value not in result.stdout, "a secret is never printed"


def test_slack_refusing_the_tokens_is_named(outside, tmp_path):
    slack, _api = outside
    slack.fail("auth.test", "invalid_auth")
    slack.fail("apps.connections.open", "invalid_auth")
    try:
        result = run("doctor", tmp_path=tmp_path, env=good_env(outside, tmp_path))
    finally:
        slack.failures.clear()
    assert result.returncode == 1
    assert "✗ Slack refused SLACK_BOT_TOKEN (invalid_auth) — reinstall the app and copy the new token" in result.stdout
    assert "✗ Slack refused SLACK_APP_TOKEN (invalid_auth)" in result.stdout
