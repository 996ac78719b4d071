"""The command line: `main(argv)` in-process for most cases, and the installed script in a
subprocess once per command family, as a person runs it."""

import csv
import io
import json
import logging
import os
import subprocess
from contextlib import redirect_stderr, redirect_stdout

import httpx
import pytest
from conftest import CLEAN_ENV, Background, bot_command, free_port, text_of, wait_healthy

from bot.__main__ import main
from bot.sim.fake_api import BackupSimulator, start_simulator_server
from bot.sim.slack_loopback import LoopbackSlack

OUR_SETTINGS = ("SLACK_", "VPS_", "BACKUPBOT_")


def run(*args, tmp_path, env=None):
    """`vps-backup-bot ARGS` in this process: the environment, working directory and output as for the script."""
    out, err = io.StringIO(), io.StringIO()
    root_level = logging.getLogger().level
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(OUR_SETTINGS)]:
            patch.delenv(name)
        for name, value in {"BACKUPBOT_DB": str(tmp_path / "cli.db"), **(env or {})}.items():
            patch.setenv(name, value)
        patch.chdir(tmp_path)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    logging.getLogger().setLevel(root_level)
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def run_script(*args, tmp_path, env=None, timeout=30):
    """The installed `vps-backup-bot` script, in a subprocess."""
    full_env = {**CLEAN_ENV, "BACKUPBOT_DB": str(tmp_path / "cli.db"), **(env or {})}
    return subprocess.run(
        [*bot_command(), *args], capture_output=True, text=True, env=full_env, cwd=tmp_path, timeout=timeout
    )


def test_the_installed_script_grants_and_exits_2_on_a_usage_error(tmp_path):
    """The entry point itself; everything else the CLI says is tested in-process through `main(argv)`."""
    granted = run_script("grant", "U0ALICE", "12345", "--role", "owner", tmp_path=tmp_path)
    assert (granted.returncode, granted.stdout.strip()) == (0, "U0ALICE is now owner on server 12345")
    bad = run_script("grant", "U0ALICE", "web-01", tmp_path=tmp_path)
    assert bad.returncode == 2 and "not a server ID" in bad.stderr and "Traceback" not in bad.stderr


def test_grant_grants_revoke_and_audit(tmp_path):
    assert run("grant", "U0ALICE", "12345", "--role", "owner", tmp_path=tmp_path).stdout.strip() == (
        "U0ALICE is now owner on server 12345"
    )
    assert run("grant", "<@U0BOB|bob>", "12346", tmp_path=tmp_path).returncode == 0
    listed = run("grants", tmp_path=tmp_path).stdout
    assert "U0ALICE" in listed and "owner" in listed and "U0BOB" in listed and "operator" in listed
    only_bob = run("grants", "U0BOB", tmp_path=tmp_path).stdout
    assert "U0ALICE" not in only_bob
    assert "no longer has a role" in run("revoke", "U0ALICE", "12345", tmp_path=tmp_path).stdout
    audit = run("audit", "--json", "--limit", "2", tmp_path=tmp_path)
    entries = json.loads(audit.stdout)
    assert [e["action"] for e in entries] == ["revoke", "grant"]
    assert all(e["source"] == "cli" and e["outcome"] == "done" for e in entries)
    assert "revoke" in run("audit", tmp_path=tmp_path).stdout


def test_admins_in_the_store(tmp_path):
    assert run("admin", "add", "U0CAROL", tmp_path=tmp_path).stdout.strip() == "U0CAROL is now an admin"
    listed = run("admin", "list", tmp_path=tmp_path, env={"BACKUPBOT_ADMINS": "U0ENV"}).stdout
    assert "U0ENV" in listed and "U0CAROL" in listed
    assert run("admin", "add", tmp_path=tmp_path).returncode == 2
    assert "is no longer an admin" in run("admin", "remove", "U0CAROL", tmp_path=tmp_path).stdout
    assert json.loads(run("audit", "--json", tmp_path=tmp_path).stdout)[0]["detail"] == "U0CAROL removed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant", "U0ALICE", "web-01"], "not a server ID"),
        (["grant", "U0ALICE", "12345", "--role", "king"], "unknown role 'king'"),
        (["grant", "alice", "12345"], "not a Slack user"),
        (["audit", "--limit", "-3"], "not a whole number"),
        (["fake-api", "--port", "http"], "not a port number"),
        (["launch"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path, args, message):
    result = run(*args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env", "missing"),
    [
        (["serve"], {}, "SLACK_BOT_TOKEN"),
        (["serve"], {"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        (["serve"], {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, "VPS_API_TOKEN"),
        (["socket"], {"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN"),
        (["console"], {}, "VPS_API_TOKEN"),
    ],
)
def test_missing_setting_stops_at_once_naming_it(tmp_path, args, env, missing):
    result = run(*args, tmp_path=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"vps-backup-bot: missing required setting {missing}"]


def test_dotenv_file_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-file\n")
    result = run("serve", tmp_path=tmp_path)
    assert "SLACK_SIGNING_SECRET" in result.stderr, "the token came from .env, so the next setting is missing"


@pytest.mark.parametrize(
    "command", ["serve", "socket", "console", "fake-api", "grant", "revoke", "grants", "audit", "token", "backup"]
)
def test_every_command_has_help(tmp_path, command):
    result = run(command, "--help", tmp_path=tmp_path)
    assert result.returncode == 0 and "usage: vps-backup-bot" in result.stdout


def test_fake_api_serves_with_a_token():
    port = free_port()
    proc = subprocess.Popen(
        [*bot_command(), "fake-api", "--port", str(port), "--token", "t0k"],
        env=CLEAN_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        base = f"http://127.0.0.1:{port}/api/v1"
        assert httpx.get(f"{base}/backups/", headers={"Authorization": "Bearer other"}).status_code == 401
        answer = httpx.get(f"{base}/backups/", headers={"Authorization": "Bearer t0k"})
        assert answer.status_code == 200 and answer.json()["count"] > 20
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("command", [["grants"], ["audit"], ["grant", "U0A", "1"], ["console"], ["serve"], ["socket"]])
def test_a_store_in_a_missing_directory_is_one_line_naming_the_setting(tmp_path, command):
    env = {
        "BACKUPBOT_DB": str(tmp_path / "gone" / "bot.db"),
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_APP_TOKEN": "xapp-1",
        "VPS_API_TOKEN": "t",
    }
    result = run(*command, tmp_path=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"vps-backup-bot: BACKUPBOT_DB={tmp_path}/gone/bot.db: the directory {tmp_path}/gone does not exist"
    )


def test_a_store_that_is_not_a_database_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("groceries\n" * 500)
    result = run("grants", tmp_path=tmp_path, env={"BACKUPBOT_DB": str(tmp_path / "notes.txt")})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"vps-backup-bot: BACKUPBOT_DB={tmp_path}/notes.txt: the file is not an SQLite database"
    )


def test_fake_api_on_a_taken_port_or_with_nonsense_latency_is_one_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run("fake-api", "--port", port, tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"vps-backup-bot: cannot listen on 127.0.0.1:{port}:")
    assert "Traceback" not in result.stderr
    nan = run("fake-api", "--latency", "nan", tmp_path=tmp_path)
    assert nan.returncode == 2 and "'nan' is not a number of seconds" in nan.stderr


def test_approvals_on_off_and_listed(tmp_path):
    assert run("approvals", tmp_path=tmp_path).stdout.strip() == "no server is under the two-person rule"
    assert run("approvals", "12345", "on", tmp_path=tmp_path).stdout.strip() == (
        "the two-person rule is now on for server 12345"
    )
    assert run("approvals", "12345", "on", tmp_path=tmp_path).stdout.strip() == (
        "the two-person rule is already on for server 12345"
    )
    assert run("approvals", tmp_path=tmp_path).stdout.startswith("12345  two-person rule on (set by cli:")
    assert run("approvals", "12345", tmp_path=tmp_path).returncode == 2
    assert "now off" in run("approvals", "12345", "off", tmp_path=tmp_path).stdout
    audit = json.loads(run("audit", "--json", tmp_path=tmp_path).stdout)
    assert [e["detail"] for e in audit if e["action"] == "approvals"] == [
        "two-person rule off",
        "two-person rule on (unchanged)",
        "two-person rule on",
    ]


def test_audit_filters_and_a_csv_a_spreadsheet_cannot_run(tmp_path):
    from bot.store import SqliteStore

    store = SqliteStore(str(tmp_path / "cli.db"))
    store.audit(
        user_id="U0A", action="delete", outcome="denied", source="slack", server_id=1, at="2026-01-01T10:00:00+00:00"
    )
    store.audit(user_id="U0B", action="create", outcome="done", source="slack", server_id=2, detail='=HYPERLINK("x")')
    store.audit(
        user_id="U0A", action="create", outcome="done", source="slack", server_id=1, detail='say "hi", then\nleave'
    )
    for start in ("\t", "\r"):
        store.audit(user_id="U0C", action="create", outcome="done", source="slack", server_id=3, detail=f"{start}=1+1")
    store.close()
    assert [e["user_id"] for e in json.loads(run("audit", "--json", "--user", "U0A", tmp_path=tmp_path).stdout)] == [
        "U0A",
        "U0A",
    ]
    only = json.loads(run("audit", "--json", "--server", "1", "--action", "create", tmp_path=tmp_path).stdout)
    assert [(e["user_id"], e["server_id"], e["action"]) for e in only] == [("U0A", 1, "create")]
    assert json.loads(run("audit", "--json", "--outcome", "denied", tmp_path=tmp_path).stdout)[0]["action"] == "delete"
    recent = json.loads(run("audit", "--json", "--since", "2026-06-01", "--user", "U0A", tmp_path=tmp_path).stdout)
    assert [e["detail"] for e in recent] == ['say "hi", then\nleave'], "--since leaves the January entry out"
    out = run("audit", "--csv", "--server", "2", tmp_path=tmp_path).stdout
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["id", "at", "user_id", "action", "server_id", "backup_id", "outcome", "detail", "source"]
    assert rows[1][7] == '\'=HYPERLINK("x")', "a formula is neutralised"
    hidden = list(csv.reader(io.StringIO(run("audit", "--csv", "--server", "3", tmp_path=tmp_path).stdout)))
    assert sorted(row[7] for row in hidden[1:]) == ["'\t=1+1", "'\r=1+1"], "a formula behind a tab or CR too"
    quoted = list(
        csv.reader(io.StringIO(run("audit", "--csv", "--user", "U0A", "--action", "create", tmp_path=tmp_path).stdout))
    )
    assert quoted[1][7] == 'say "hi", then\nleave', "RFC 4180 quoting round-trips commas, quotes and line breaks"
    assert run("audit", "--since", "yesterday", tmp_path=tmp_path).returncode == 2


def test_channels_from_the_shell(tmp_path):
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    env = {"SLACK_BOT_TOKEN": "xoxb-cli", "SLACK_API_URL": slack.api_url}
    try:
        channels_from_the_shell(tmp_path, slack, env)
    finally:
        bg.run(slack.stop())
        bg.close()


def channels_from_the_shell(tmp_path, slack, env):
    assert run("channels", "12345", tmp_path=tmp_path).stdout.strip() == "server 12345: no channels (run from anywhere)"
    added = run("channels", "12345", "add", "C0PRODOPS", tmp_path=tmp_path, env=env)
    assert added.stdout.strip() == "server 12345: C0PRODOPS"
    (posted,) = slack.recorder.api("chat.postMessage")
    assert posted["channel"] == "C0PRODOPS" and "now carries the news of server *12345*" in posted["text"]
    slack.fail("chat.postMessage", "channel_not_found")
    refused = run("channels", "12345", "add", "C0TYPO0", tmp_path=tmp_path, env=env)
    assert refused.returncode == 2 and "was not bound to C0TYPO0: there is no such channel" in refused.stderr
    untokened = run("channels", "12345", "add", "C0OTHER", tmp_path=tmp_path)
    assert untokened.returncode == 2 and "SLACK_BOT_TOKEN is not set" in untokened.stderr
    assert run("channels", "12345", tmp_path=tmp_path).stdout.strip() == "server 12345: C0PRODOPS", "nothing bound"
    assert run("channels", "12345", "add", tmp_path=tmp_path).returncode == 2
    assert "not a channel" in run("channels", "12345", "add", "prod", tmp_path=tmp_path).stderr
    assert "no channels" in run("channels", "12345", "remove", "C0PRODOPS", tmp_path=tmp_path).stdout
    details = [
        e["detail"] for e in json.loads(run("audit", "--json", "--action", "channels", tmp_path=tmp_path).stdout)
    ]
    assert "unbound from C0PRODOPS" in details and "bound to C0PRODOPS" in details


def test_descriptions_typed_in_slack_reach_the_csv_unable_to_run_in_a_spreadsheet(stack, tmp_path):
    """Each of the four characters a spreadsheet starts a formula with, typed as a description in Slack."""
    typed = ["=1+2", "+1+2", "-1+2", "@SUM(A1:A2)"]
    for description in typed:
        reply, _ = stack.ask(f"create 12345 {description}")
        assert "has started" in text_of(reply)
    out = run("audit", "--csv", "--action", "create", tmp_path=tmp_path, env={"BACKUPBOT_DB": str(stack.db_path)})
    header, *rows = list(csv.reader(io.StringIO(out.stdout)))
    detail = header.index("detail")
    assert sorted(row[detail] for row in rows) == sorted("'" + d for d in typed)
    raw = run("audit", "--json", "--action", "create", tmp_path=tmp_path, env={"BACKUPBOT_DB": str(stack.db_path)})
    assert sorted(e["detail"] for e in json.loads(raw.stdout)) == sorted(typed), "only the CSV is neutralised"


def test_an_admin_added_at_the_shell_is_an_admin_in_slack_until_removed(stack, tmp_path):
    env = {"BACKUPBOT_DB": str(stack.db_path)}
    refused, _ = stack.ask("audit 5", user="U0NEWADMIN")
    assert text_of(refused) == ":no_entry: Only an admin may read the audit log."
    assert run("admin", "add", "U0NEWADMIN", tmp_path=tmp_path, env=env).returncode == 0
    allowed, _ = stack.ask("audit 5", user="U0NEWADMIN")
    assert "audit entr" in text_of(allowed) and "Only an admin" not in text_of(allowed)
    assert run("admin", "remove", "U0NEWADMIN", tmp_path=tmp_path, env=env).returncode == 0
    assert text_of(stack.ask("audit 5", user="U0NEWADMIN")[0]).startswith(":no_entry: Only an admin")


# --- pipelines from the shell: tokens, and `backup` as a CI job runs it -------------------------------


def test_a_token_is_printed_once_listed_without_it_and_revoked(tmp_path):
    made = run("token", "add", "deploy-prod", "--servers", "12345,12346", tmp_path=tmp_path)
    assert made.returncode == 0
    token = made.stdout.strip()
    assert token.startswith("vbb_") and len(made.stdout.splitlines()) == 1, "stdout is the token alone"
    assert "only time it is shown" in made.stderr and token not in made.stderr
    listed = run("token", "list", tmp_path=tmp_path).stdout
    assert "deploy-prod" in listed and "12345,12346" in listed and "live" in listed
    assert token not in listed and token[4:16] not in listed, "neither the token nor its selector is shown"
    taken = run("token", "add", "deploy-prod", "--servers", "1", tmp_path=tmp_path)
    assert taken.returncode == 2 and "a token named deploy-prod exists already" in taken.stderr
    assert run("token", "add", "no spaces", "--servers", "1", tmp_path=tmp_path).returncode == 2
    assert run("token", "add", "ci", "--servers", "web", tmp_path=tmp_path).returncode == 2
    assert "is revoked" in run("token", "revoke", "deploy-prod", tmp_path=tmp_path).stdout
    assert "revoked" in run("token", "list", tmp_path=tmp_path).stdout
    assert run("token", "revoke", "deploy-prod", tmp_path=tmp_path).returncode == 2
    assert run("audit", "--user", "token:deploy-prod", tmp_path=tmp_path).stdout.strip() == "the audit log is empty"
    details = [e["detail"] for e in json.loads(run("audit", "--json", "--action", "tokens", tmp_path=tmp_path).stdout)]
    assert "added deploy-prod for servers 12345, 12346" in details and "revoked deploy-prod" in details
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("cli.db*"))
    assert token.encode() not in stored and token.split("_", 2)[2].encode() not in stored


@pytest.fixture
def backup_api():
    """The backup API simulator over HTTP (as `backup` reaches it with the bot's settings), and those settings."""
    bg = Background()
    sim = BackupSimulator(token="vps-t0ken", completion_seconds=1)
    runner, url = bg.run(start_simulator_server(sim))
    env = {"VPS_API_URL": url, "VPS_API_TOKEN": "vps-t0ken", "BACKUPBOT_POLL_SECONDS": "1"}
    yield sim, env
    bg.run(runner.cleanup())
    bg.close()


def test_backup_waits_for_completion_exits_0_and_the_team_hears_it(tmp_path, backup_api):
    _sim, env = backup_api
    bg = Background()
    slack = bg.run(LoopbackSlack().start())
    try:
        env = {
            **env,
            "SLACK_BOT_TOKEN": "xoxb-cli",
            "SLACK_API_URL": slack.api_url,
            "BACKUPBOT_NOTIFY_CHANNEL": "C0OPS",
        }
        result = run(
            "backup", "12345", "--description", "Before deploy 2.4", "--wait", "30s", tmp_path=tmp_path, env=env
        )
        (posted,) = slack.recorder.api("chat.postMessage")
    finally:
        bg.run(slack.stop())
        bg.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("backup #5033 of web-server-01 (12345): completed in ")
    assert len(result.stdout.splitlines()) == 1
    assert posted["channel"] == "C0OPS" and "took backup *#5033* of *web-server-01* (12345)" in posted["text"]
    assert "`cli:" in posted["text"] and "<@" not in posted["text"]
    (create,) = [e for e in json.loads(run("audit", "--json", tmp_path=tmp_path).stdout) if e["action"] == "create"]
    assert (create["source"], create["outcome"]) == ("cli", "done") and create["user_id"].startswith("cli:")


def a_failed_backup(sim):
    sim.on_handled = lambda method, _path, _status: method == "POST" and sim.end_with(5033, "failed")


def a_full_server(sim):
    for n in range(2):
        sim.add_backup(12346, description=f"filler {n}")


@pytest.mark.parametrize(
    ("server", "wait", "fault", "status", "line"),
    [
        ("12345", "1", lambda sim: setattr(sim, "completion_seconds", 3600), 3, "in progress for"),
        ("12345", "0", None, 3, "in progress for"),
        ("12345", "30", lambda sim: setattr(sim, "latency", 0.7), 0, "completed in"),
        ("12345", "30", a_failed_backup, 1, "failed after"),
        ("12345", "2", lambda sim: sim.fail_next(1, 500, method="POST"), 1, "outcome unknown"),
        ("12345", "30", lambda sim: sim.act_then_fail_next(1, 502, method="POST"), 0, "completed in"),
        ("12345", "30", lambda sim: sim.fail_next(1, 404, method="POST"), 1, "was created: the backup API does not know"),
        ("12346", "30", a_full_server, 4, "already has 10 of 10 manual backups"),
    ],
    ids=["wait ran out", "no wait", "slow", "backup failed", "api failed", "api failed after acting", "refused",
         "no room"],
)  # fmt: skip
def test_backup_exit_statuses_against_slow_failing_and_full_servers(
    tmp_path, backup_api, server, wait, fault, status, line
):
    sim, env = backup_api
    if fault:
        fault(sim)
    result = run("backup", server, "--wait", wait, tmp_path=tmp_path, env=env)
    assert (result.returncode, len(result.stdout.splitlines())) == (status, 1), result.stdout + result.stderr
    assert line in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backup", "web-01"], "not a server ID"),
        (["backup", "12345", "--wait", "5x"], "is not a wait like 90, 90s, 15m"),
        (["backup", "12345", "--wait", "2d"], "is not a wait like"),
        (["backup", "12345", "--description", "x" * 256], "--description is 256 characters: at most 255"),
    ],
)
def test_backup_with_bad_input_exits_2(tmp_path, backup_api, args, message):
    _sim, env = backup_api
    result = run(*args, tmp_path=tmp_path, env=env)
    assert result.returncode == 2 and message in result.stderr


def test_backup_with_the_backup_api_unreachable_exits_1_saying_nothing_was_created(tmp_path):
    env = {"VPS_API_URL": "http://127.0.0.1:9/api/v1", "VPS_API_TOKEN": "t"}
    result = run("backup", "12345", tmp_path=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stdout == "no backup of server 12345 was created: the backup API could not be reached\n"


def test_backup_needs_the_backup_apis_token(tmp_path):
    result = run("backup", "12345", tmp_path=tmp_path)
    assert result.returncode == 2 and "missing required setting VPS_API_TOKEN" in result.stderr


def test_the_installed_script_says_no_room_with_exit_4(tmp_path, backup_api):
    sim, env = backup_api
    a_full_server(sim)
    result = run_script("backup", "12346", "--description", "before deploy", tmp_path=tmp_path, env=env)
    assert result.returncode == 4, result.stderr
    assert result.stdout.startswith("no backup of db-server-01 (12346): it already has 10 of 10 manual backups")
    assert "The oldest manual one is #5024" in result.stdout
