import pytest

from bot.config import ConfigError, Settings, load_settings


def test_defaults_match_the_contract():
    s = load_settings({}, env_file=None)
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.vps_api_url == "https://admin.vps.org/api/v1"
    assert s.db_path == "backupbot.db"
    assert s.poll_seconds == 30
    assert s.port == 3000
    assert s.admins == frozenset()
    assert s.notify_channel is None
    assert s.delete_grace_seconds == 30
    assert load_settings({"BACKUPBOT_DELETE_GRACE_SECONDS": "0"}, env_file=None).delete_grace_seconds == 0


def test_environment_overrides_dotenv_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("VPS_API_TOKEN=from-file\nBACKUPBOT_ADMINS=U1AA, U2BB ,\nBACKUPBOT_DB=file.db\n")
    s = load_settings({"BACKUPBOT_DB": "env.db", "SLACK_API_URL": "http://127.0.0.1:9/api"}, env_file=env_file)
    assert s.vps_api_token == "from-file"
    assert s.admins == frozenset({"U1AA", "U2BB"})
    assert s.db_path == "env.db"
    assert s.slack_api_url == "http://127.0.0.1:9/api/", "the SDK needs the trailing slash"


def test_missing_required_setting_is_named():
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        Settings(slack_bot_token="xoxb-1").require("slack_bot_token", "slack_signing_secret")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKUPBOT_POLL_SECONDS", "soon"),
        ("BACKUPBOT_POLL_SECONDS", "0"),
        ("PORT", "http"),
        ("BACKUPBOT_DELETE_GRACE_SECONDS", "-1"),
        ("BACKUPBOT_DELETE_GRACE_SECONDS", "3600"),
        ("BACKUPBOT_DELETE_GRACE_SECONDS", "nan"),
        ("BACKUPBOT_APPROVAL_MINUTES", "99999999999999"),
        ("BACKUPBOT_APPROVAL_MINUTES", "1e-300"),
        ("BACKUPBOT_APPROVAL_MINUTES", "0.5"),
        ("BACKUPBOT_APPROVAL_MINUTES", "10081"),
        ("BACKUPBOT_POLL_SECONDS", "1e-300"),
        ("BACKUPBOT_POLL_SECONDS", "0.5"),
        ("BACKUPBOT_POLL_SECONDS", "3601"),
        ("BACKUPBOT_POLL_SECONDS", "inf"),
        ("BACKUPBOT_SHUTDOWN_SECONDS", "1e308"),
    ],
)
def test_malformed_values_are_refused_with_their_name(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value}, env_file=None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKUPBOT_POLL_SECONDS", "1"),
        ("BACKUPBOT_POLL_SECONDS", "3600"),
        ("BACKUPBOT_APPROVAL_MINUTES", "1"),
        ("BACKUPBOT_APPROVAL_MINUTES", "10080"),
    ],
)
def test_the_bounds_themselves_are_allowed(name, value):
    assert load_settings({name: value}, env_file=None) is not None


def test_repr_hides_secrets():
    s = Settings(slack_bot_token="xoxb-secret", slack_signing_secret="sig-secret", vps_api_token="vps-secret")
    text = repr(s)
    assert "secret" not in text.replace("slack_signing_secret=", "")
    assert "***" in text
