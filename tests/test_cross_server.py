"""A backup of one server restored onto another, under every rule, end to end.

`/backup restore 5023 12346` restores server B (db-server-01, 12346) from a backup of server A
(web-server-01, 12345). Every rule that holds for a restore holds for *both* servers: the owner
role on both (at the command and again at every press), the two-person rule on either (and its
approver owns both), the channels of either, the name typed is the target's, and the safety
backup is taken of the target, the server being overwritten. Driven by signed requests against
the loopback Slack and the backup-API simulator; what reached the API is counted there.
"""

import re

import pytest
from conftest import ADMIN, CHANNEL, NOTIFY, LiveStack, button, buttons, poll_until, text_of
from test_home import open_home, published

from bot.slack import ids

A, A_NAME = 12345, "web-server-01"  # the server the backup was taken of
B, B_NAME = 12346, "db-server-01"  # the server restored (db-server-01 keeps 8 of its 10 manual backups)
BACKUP = 5023  # a completed manual backup of A
BOTH, BOTH2 = "U0BOTH", "U0BOTH2"  # owners of A and B
OWNER_A, OWNER_B = "U0OWNA", "U0OWNB"  # each owns one server and only views the other
PROD = "C0PRODOPS"


ROLES = (
    (BOTH, "owner", "owner"),
    (BOTH2, "owner", "owner"),
    (OWNER_A, "owner", "viewer"),
    (OWNER_B, "viewer", "owner"),
)


def with_roles(stack: LiveStack) -> LiveStack:
    for user, on_a, on_b in ROLES:
        stack.grant(user, A, on_a)
        stack.grant(user, B, on_b)
    stack.ask("servers")  # as a running bot has: it has seen both servers' names in the API's answers
    return stack


@pytest.fixture
def cross(stack):
    return with_roles(stack)


@pytest.fixture
def watched(tmp_path, sim):
    """A bot whose background loop watches safety backups every 50 ms."""
    live = with_roles(LiveStack(tmp_path / "watched.db", sim, poll_seconds=0.05))
    yield live
    live.close()


def writes(stack: LiveStack) -> list[tuple[str, str]]:
    return [(m, p) for m, p in stack.sim.requests if m in ("POST", "DELETE")]


def ask_restore(stack: LiveStack, user: str = BOTH, channel: str = CHANNEL) -> dict:
    """`/backup restore 5023 12346`: the reply (a confirmation, or a refusal)."""
    return stack.ask(f"restore {BACKUP} {B}", user=user, channel=channel)[0]


def open_form(stack: LiveStack, confirmation: dict, user: str = BOTH, channel: str = CHANNEL) -> tuple[dict, str]:
    """Press Restore… on the confirmation: (the form Slack was asked to open, the key replies go to)."""
    before = len(stack.recorder.api("views.open"))
    _response, key = stack.press(button(confirmation, ids.OPEN_RESTORE), user=user, channel=channel)
    opened = stack.recorder.wait_for(lambda _r: stack.recorder.api("views.open")[before:])
    return opened[-1]["view"], key


def press_refused(stack: LiveStack, confirmation: dict, user: str = BOTH, channel: str = CHANNEL) -> str:
    """Press Restore… expecting a refusal: its text (and no form opened)."""
    before = len(stack.recorder.api("views.open"))
    _response, key = stack.press(button(confirmation, ids.OPEN_RESTORE), user=user, channel=channel)
    refusal = text_of(stack.reply(key))
    assert len(stack.recorder.api("views.open")) == before, "no form for a refused press"
    return refusal


def last_audit(stack: LiveStack):
    return stack.runtime.store.audit_entries(1)[0]


def safety_backup_of(reply: dict) -> int:
    return int(re.search(r"Safety backup \*#(\d+)\*", text_of(reply)).group(1))


def cards(stack: LiveStack) -> list[dict]:
    return [m for m in stack.recorder.api("chat.postMessage") if "Approval needed" in m.get("text", "")]


# --- roles: the owner role on both servers ---------------------------------------------------------


def test_an_owner_of_both_restores_the_target_from_the_other_servers_backup(cross):
    newest = cross.sim.add_backup(B, description="taken just now")
    confirmation = ask_restore(cross)
    text = text_of(confirmation)
    assert f"*Restore {B_NAME} ({B}) from a backup?*" in text
    assert f"of *{A_NAME}* ({A}) will replace everything on *{B_NAME}* ({B})" in text
    listed = cross.run(cross.runtime.api.list_backups())
    taken = next(b.created_at for b in listed if b.id == BACKUP)
    newer = sum(b.server.id == B and b.created_at > taken for b in listed)
    assert f"{newer} newer backup{'s' if newer > 1 else ''} of *{B_NAME}* ({B}) exist" in text, "what it undoes: B's"
    assert f"*#{newest}*, just now." in text
    form, key = open_form(cross, confirmation)
    assert f"Type {B_NAME} to confirm" in str(form["blocks"]), "the name to type is the target's"
    assert cross.submit(form, B_NAME, user=BOTH, safety=False).text == ""
    assert f"Restore of *{B_NAME}* ({B}) from backup *#{BACKUP}* has started." in text_of(cross.reply(key))
    assert cross.sim.restores == [(B, BACKUP)], "the target is restored, not the backup's own server"
    entry = last_audit(cross)
    assert (entry.user_id, entry.action, entry.outcome, entry.server_id) == (BOTH, "restore", "done", B)
    assert entry.detail == f"from backup {BACKUP} of server {A}"


@pytest.mark.parametrize(
    ("on_a", "on_b", "refusal"),
    [
        ("owner", "operator", f":no_entry: You can't restore on server *{B}*: that needs the *owner* role."),
        ("owner", "viewer", f":no_entry: You can't restore on server *{B}*: that needs the *owner* role."),
        ("owner", None, f":no_entry: You can't restore on server *{B}*: that needs the *owner* role."),
        ("operator", "owner", f":no_entry: You can't restore on server *{A}*: that needs the *owner* role."),
        (None, "owner", f":mag: There is no backup *#{BACKUP}*."),  # no role on A: A's backups are not shown
    ],
)
def test_a_restore_onto_another_server_needs_the_owner_role_on_both(stack, on_a, on_b, refusal):
    for server, role in ((A, on_a), (B, on_b)):
        if role:
            stack.grant("U0HALF", server, role)
    reply = text_of(ask_restore(stack, user="U0HALF"))
    assert reply.startswith(refusal), reply
    assert writes(stack) == [] and stack.runtime.store.audit_entries(1)[0].outcome == "denied"


@pytest.mark.parametrize("lost", [A, B])
def test_both_roles_are_checked_again_at_each_press(cross, lost):
    """Rights are checked for whoever presses, when they press: a role lost on either server stops it."""
    confirmation = ask_restore(cross)
    form, key = open_form(cross, confirmation)
    cross.ask(f"revoke {BOTH} {lost}")
    refused = cross.submit(form, B_NAME, user=BOTH, safety=False)
    assert refused.status_code == 200
    assert text_of(cross.reply(key)).startswith(f":no_entry: You can't restore on server *{lost}*")
    assert press_refused(cross, confirmation).startswith(f":no_entry: You can't restore on server *{lost}*")
    assert cross.sim.restores == [] and writes(cross) == []


def test_the_name_typed_is_the_targets_whole_name_or_id(cross):
    form, key = open_form(cross, ask_restore(cross))
    for typed in (A_NAME, str(A), "db", "db-server-0", "1234", f"{B_NAME}x", ""):
        answer = cross.submit(form, typed, user=BOTH, safety=False).json()
        assert answer["response_action"] == "errors", f"{typed!r} was taken for {B_NAME}"
        assert answer["errors"][ids.RESTORE_INPUT_BLOCK].startswith("That is not this server.")
    assert cross.sim.restores == []
    cross.submit(form, str(B), user=BOTH, safety=False)
    assert "has started" in text_of(cross.reply(key))
    assert cross.sim.restores == [(B, BACKUP)]


# --- the two-person rule on either server ------------------------------------------------------------


def ruled_request(stack: LiveStack, ruled: int, *, safety: bool = False) -> tuple[str, dict]:
    """The rule on `ruled`; BOTH confirms the restore onto B: (the reply's key, the approval card)."""
    assert "now *on*" in text_of(stack.ask(f"approvals {ruled} on")[0])
    form, key = open_form(stack, ask_restore(stack))
    stack.submit(form, B_NAME, user=BOTH, safety=safety)
    assert "needs a second person's approval" in text_of(stack.reply(key))
    return key, stack.recorder.wait_for(lambda _r: cards(stack))[-1]


@pytest.mark.parametrize("ruled", [A, B], ids=["rule on the backup's server", "rule on the target"])
def test_a_restore_touching_a_server_under_the_rule_waits_for_a_second_person(cross, ruled):
    _key, card = ruled_request(cross, ruled)
    assert writes(cross) == [] and cross.sim.restores == [], "nothing is sent before the approval"
    facts = text_of(card)
    assert f"<@{BOTH}> asks to restore *{B_NAME}* ({B}) from backup *#{BACKUP}*" in facts
    assert f"of *{A_NAME}* ({A})" in facts


@pytest.mark.parametrize("ruled", [A, B], ids=["rule on the backup's server", "rule on the target"])
@pytest.mark.parametrize(("approver", "lacking"), [(OWNER_A, B), (OWNER_B, A)], ids=["owns A only", "owns B only"])
def test_the_approver_must_own_both_servers(cross, ruled, approver, lacking):
    _key, card = ruled_request(cross, ruled)
    _response, refused = cross.press(button(card, ids.APPROVE), user=approver, channel=NOTIFY)
    assert text_of(cross.reply(refused)).startswith(f":no_entry: You can't approve this on server *{lacking}*")
    assert cross.sim.restores == []
    request = cross.runtime.store.approval(button(card, ids.APPROVE)["value"])
    assert request.state.value == "pending", "the refusal leaves the request to someone who may decide"
    cross.press(button(card, ids.APPROVE), user=BOTH2, channel=NOTIFY)
    poll_until(lambda: cross.sim.restores)
    assert cross.sim.restores == [(B, BACKUP)]


@pytest.mark.parametrize("ruled", [A, B], ids=["rule on the backup's server", "rule on the target"])
def test_the_home_tab_offers_the_decision_only_to_owners_of_both(cross, ruled):
    _key, card = ruled_request(cross, ruled)
    request_id = button(card, ids.APPROVE)["value"]
    for user, offered in ((OWNER_A, False), (OWNER_B, False), (BOTH, False), (BOTH2, True), (ADMIN, True)):
        view = published(cross, user, open_home(cross, user))
        decisions = [b["value"] for b in buttons(view) if b["action_id"] == ids.APPROVE]
        assert (request_id in decisions) is offered, f"{user} {'is' if offered else 'is not'} offered it"


def test_an_approved_restore_takes_its_safety_backup_of_the_target_first(watched):
    key, card = ruled_request(watched, B, safety=True)
    watched.press(button(card, ids.APPROVE), user=BOTH2, channel=NOTIFY)
    started = watched.reply(key, 2)
    assert f"(approved by <@{BOTH2}>)" in text_of(started)
    safety = safety_backup_of(started)
    on_b = {b.id for b in watched.run(watched.runtime.api.list_backups(B, "manual"))}
    assert safety in on_b, "the safety backup is of the server about to be overwritten"
    assert watched.sim.restores == []
    watched.sim.finish(safety)
    poll_until(lambda: watched.sim.restores)
    assert watched.sim.restores == [(B, BACKUP)]


# --- channels: the channels of either server ---------------------------------------------------------


@pytest.mark.parametrize("bound", [A, B], ids=["backup's server bound", "target bound"])
def test_a_restore_across_servers_runs_only_from_the_channels_of_a_bound_one(cross, bound):
    assert f"is now bound to <#{PROD}>" in text_of(cross.ask(f"channels {bound} add <#{PROD}|prod-ops>")[0])
    for where, who in ((CHANNEL, BOTH), ("D0DIRECT", BOTH), (CHANNEL, ADMIN)):
        refused = text_of(ask_restore(cross, user=who, channel=where))
        assert refused == f":round_pushpin: Server *{bound}* is run only from <#{PROD}>: ask there. Nothing was done."
        entry = last_audit(cross)
        assert (entry.user_id, entry.action, entry.outcome) == (who, "restore", "denied")
    confirmation = ask_restore(cross, channel=PROD)
    assert press_refused(cross, confirmation, channel=CHANNEL).startswith(":round_pushpin:"), "checked at the press"
    form, key = open_form(cross, confirmation, channel=PROD)
    cross.submit(form, B_NAME, user=BOTH, safety=False)
    assert "has started" in text_of(cross.reply(key))
    assert cross.sim.restores == [(B, BACKUP)]
    announced = cross.recorder.wait_for(
        lambda _r: [m for m in cross.recorder.api("chat.postMessage") if "started restoring" in m["text"]]
    )
    assert [m["channel"] for m in announced] == [PROD if bound == B else NOTIFY], "the target's channels hear it"


def test_servers_bound_to_different_channels_are_not_restored_across_from_either(cross):
    cross.ask(f"channels {A} add <#C0AAA|a-ops>")
    cross.ask(f"channels {B} add <#C0BBB|b-ops>")
    assert text_of(ask_restore(cross, channel="C0AAA")).startswith(f":round_pushpin: Server *{B}* is run only from")
    assert text_of(ask_restore(cross, channel="C0BBB")).startswith(f":round_pushpin: Server *{A}* is run only from")
    assert writes(cross) == []


# --- the safety backup is of the target ----------------------------------------------------------------


def test_the_safety_backup_is_taken_of_the_target_and_the_restore_waits_for_it(watched):
    form, key = open_form(watched, ask_restore(watched))
    box = next(b for b in form["blocks"] if b.get("block_id") == ids.RESTORE_SAFETY_BLOCK)
    assert box["element"]["options"][0]["text"]["text"] == f"First back up {B_NAME}'s current state"
    watched.submit(form, B_NAME, user=BOTH, safety=True)
    started = watched.reply(key)
    safety = safety_backup_of(started)
    assert f"*Restore of {B_NAME} ({B}) from backup #{BACKUP}*" in text_of(started)
    on_b = {b.id: b for b in watched.run(watched.runtime.api.list_backups(B, "manual"))}
    assert on_b[safety].description.startswith(f"Safety backup before restoring from #{BACKUP}")
    assert writes(watched) == [("POST", "/api/v1/backups/")] and watched.sim.restores == []
    watched.sim.finish(safety)
    poll_until(lambda: watched.sim.restores)
    assert watched.sim.restores == [(B, BACKUP)]
    assert f"Safety backup *#{safety}* is complete." in text_of(watched.reply(key, 2))


def test_a_failed_safety_backup_of_the_target_restores_nothing(watched):
    form, key = open_form(watched, ask_restore(watched))
    watched.submit(form, B_NAME, user=BOTH, safety=True)
    safety = safety_backup_of(watched.reply(key))
    watched.sim.finish(safety, status="error")
    stopped = text_of(watched.reply(key, 2))
    assert f"*Nothing was restored* on *{B_NAME}* ({B})" in stopped and f"#{safety} ended error" in stopped
    assert watched.sim.restores == []


def test_no_room_on_the_target_stops_the_restore_though_the_backups_server_has_room(watched):
    for n in range(2):  # B now keeps 10 of 10 manual backups; A keeps 2
        watched.sim.add_backup(B, description=f"filler {n}")
    form, key = open_form(watched, ask_restore(watched))
    assert "already has 10 of 10 manual backups: there is no room for a safety backup" in text_of(form)
    watched.submit(form, B_NAME, user=BOTH, safety=True)
    stopped = text_of(watched.reply(key))
    assert f"there is no room for a safety backup: server {B} already has 10 manual backups" in stopped
    assert watched.sim.restores == [] and watched.sim.count("POST", "/api/v1/servers") == 0
