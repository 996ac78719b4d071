"""`vps-backup-bot console`: scripted sessions, read back from what it printed."""

import io
import subprocess

from conftest import CLEAN_ENV, bot_command

from bot.config import Settings
from bot.console import run_console
from bot.sim.fake_api import BackupSimulator


def session(
    lines: list[str], *, demo=True, user="U0CONSOLE", simulator=None, tmp_path=None, poll=30.0, grace=0.0
) -> str:
    out = io.StringIO()
    settings = Settings(poll_seconds=poll, delete_grace_seconds=grace)
    if tmp_path:
        settings = settings.with_overrides(db_path=str(tmp_path / "console.db"))
    status = run_console(
        settings, demo=demo, user_id=user, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, simulator=simulator
    )
    assert status == 0
    return out.getvalue()


def after(text: str, marker: str) -> str:
    assert marker in text, f"{marker!r} not in output:\n{text}"
    return text[text.index(marker) + len(marker) :]


def test_list_create_delete_restore_and_bad_input():
    out = session(
        [
            "/backup list 12345 manual",
            "2",  # Delete… on #5023 in the list: a confirmation message
            "5",
            "n",  # Delete backup #5023 → the dialog, dismissed
            "5",
            "y",  # again, confirmed
            "5",
            "y",  # a third press: nothing more happens
            "/backup restore 5022",
            "7",  # Restore web-server-01… → the modal
            "web-server-02",  # the wrong name is refused in the modal
            "",  # the safety backup: ticked by default
            "",  # no reason given (optional)
            "12345",  # the ID is accepted
            "n",  # no safety backup
            "",
            "/backup create 12347 Before the <demo> reset",
            "/backup list web",
            "/backup frobnicate",
            "99",
            "hello",
            "quit",
        ]
    )
    listing = after(out, "> /backup list 12345 manual")
    assert "*2 manual backups* on *web-server-01* (12345), newest first." in listing
    assert "[1] Restore…   [2] Delete…" in listing and "[3] Restore…   [4] Delete…" in listing
    confirmation = after(out, "> 2\n")
    assert "Backup *#5023* (manual, taken 20" in confirmation and "This cannot be undone." in confirmation
    assert "[5] Delete backup #5023   [6] Cancel" in confirmation
    dismissed = after(out, "> 5\n")
    assert "┌─ Delete backup #5023?" in dismissed and "[y] Delete it   [n] Keep it" in dismissed
    assert "(dialog dismissed: nothing was sent)" in dismissed.split("> 5\n")[0]
    deleted = dismissed.split("> 5\n")[1]
    assert "posted in #backups by backups" in deleted
    assert "🗑️ @U0CONSOLE deleted backup *#5023* (manual) of *web-server-01* (12345)." in deleted
    assert "updates the message above" in deleted and "🗑️ Deleted backup *#5023*" in deleted
    third = dismissed.split("> 5\n")[2]
    assert "was already confirmed by @U0CONSOLE. Nothing more was done." in third
    modal = after(out, "> 7\n")
    assert "┌─ Restore server" in modal and "[submit] Restore" in modal
    assert (
        "Type web-server-01 to confirm: web-server-02\nFirst back up web-server-01's current state? [Y/n] \n" in modal
    )
    assert "Why? (optional): \n  ✖ That is not this server." in modal
    assert "Type web-server-01 to confirm: 12345" in modal
    assert "♻️ @U0CONSOLE started restoring *web-server-01* (12345) from backup *#5022*." in modal
    assert "Restore of *web-server-01* (12345) from backup *#5022* has started." in modal
    created = after(out, "> /backup create 12347 Before the <demo> reset")
    assert "💾 @U0CONSOLE started a manual backup *#5033* of *staging-01* (12347): “Before the <demo> reset”" in created
    assert "⏳ Backup *#5033* of *staging-01* (12347) has started." in created
    bad = after(out, "> /backup list web")
    assert "`web` is not a server ID" in bad and "Usage: `/backup list [SERVER] [manual|automatic]`" in bad
    assert "`frobnicate` is not a /backup command" in after(out, "> /backup frobnicate")
    assert "There is no button [99]." in out
    assert "Type a /backup command, a button number" in after(out, "> hello")
    assert "Traceback" not in out


def test_follow_up_news_is_shown_after_wait():
    out = session(
        ["/backup create 12346 Before the migration", "wait 1"],
        simulator=BackupSimulator(completion_seconds=0.2),
        poll=0.2,
    )
    assert "has started. I'll update this message when it is done." in out
    news = after(out, "> wait 1")
    assert "✅ Backup *#5033* is complete" in news and "updates the message above" in news
    assert "— asked for by @U0CONSOLE." in news and "*9 of 10* manual backups" in news


def test_the_demo_makes_whoever_runs_it_an_admin(tmp_path):
    out = session(["/backup servers", "/backup audit 3"], user="U0DEMOADMIN")
    assert "acting as U0DEMOADMIN" in out and "You are an admin." in out
    assert "*web-server-01* (12345) — admin" in out
    assert "`/backup audit`" not in out and "@U0DEMOADMIN *servers* → done (slack)" in out


def test_the_installed_command_reads_a_script_and_exits_at_the_end(tmp_path):
    result = subprocess.run(
        [*bot_command(), "console", "--demo"],
        input="/backup help\n/backup list 12347\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=CLEAN_ENV,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "/backup create SERVER [description…]" in result.stdout
    assert "*8 backups* on *staging-01* (12347)" in result.stdout
    assert "Demo data <reset> & reload" in result.stdout, "entities are shown as the text they stand for"
    assert result.stderr == ""
    assert not list(tmp_path.iterdir()), "the demo leaves no files behind"


def test_as_lets_a_second_person_approve_a_request():
    out = session(
        [
            "/backup approvals 12345 on",
            "/backup grant U0BOB 12345 owner",
            "/backup delete 5023",
            "1",
            "y",
            "3",  # Approve, by the requester: refused
            "as U0BOB",
            "3",  # Approve, by Bob
        ]
    )
    assert "✋ *Approval needed* — @U0CONSOLE asks to delete backup *#5023*" in out
    assert "[3] Approve   [4] Deny" in out and "[5] Withdraw request" in out
    assert "⛔ You asked for this, so someone else must decide" in out
    assert "(now acting as U0BOB)" in out
    approved = after(out, "(now acting as U0BOB)")
    assert "updated in #backups (the card above)" in approved and "✅ *Approved* by @U0BOB — deleted." in approved
    assert "🗑️ @U0CONSOLE deleted backup *#5023* (manual) of *web-server-01* (12345), approved by @U0BOB." in approved


def test_home_renders_the_home_tab_and_its_buttons_work():
    out = session(["/backup grant U0BOB 12345 operator", "as U0BOB", "home", "2", "Before the kernel upgrade"])
    home = after(out, "> home\n")
    assert "── the Home tab of U0BOB" in home and "*web-server-01* (12345) — operator" in home
    assert "[1] Refresh" in home and "[2] Take a backup" in home
    assert "┌─ Take a backup" in home and "Description: Before the kernel upgrade" in home
    assert "⏳ Backup *#5033* of *web-server-01* (12345) has started." in home
    assert "newest *#5033* ⏳ in progress" in home and "@U0BOB *create* #5033 on 12345 → done" in home
