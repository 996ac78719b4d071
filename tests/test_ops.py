"""The use cases, against the simulator (httpx transport) and a real SQLite file."""

import asyncio
from datetime import timedelta

import pytest
from conftest import ManualClock

from bot.backup_api import BackupApi, BadRequest
from bot.ops import (
    Actor,
    BackupNotFound,
    ConfirmationMismatch,
    ConfirmationUnavailable,
    MayHaveHappened,
    NotRestorable,
    Operations,
    PermissionDenied,
    ReplyTo,
)
from bot.ops.writes import WriteOutcome
from bot.policy import Action, Role
from bot.sim.fake_api import BackupSimulator, SimulatorTransport

ADMIN, OWNER, OPERATOR, VIEWER, STRANGER = "UADMIN", "UOWNER", "UOPER", "UVIEW", "USTRANGE"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def sim():
    return BackupSimulator(completion_seconds=3600)


@pytest.fixture
async def ops(sim, store, clock):
    api = BackupApi("http://sim/api/v1", "t", transport=SimulatorTransport(sim), backoff_seconds=0)
    store.grant(OWNER, 12345, Role.OWNER, "t")
    store.grant(OPERATOR, 12345, Role.OPERATOR, "t")
    store.grant(VIEWER, 12345, Role.VIEWER, "t")
    yield Operations(api, store, admins=frozenset({ADMIN}), clock=clock)
    await api.aclose()


def audit(store):
    return [(e.user_id, e.action, e.outcome) for e in reversed(store.audit_entries(100))]


async def test_list_newest_first_scoped_to_what_the_user_may_see(ops, store):
    mine = await ops.list_backups(Actor(VIEWER))
    assert mine.backups and {b.server.id for b in mine.backups} == {12345}
    dates = [b.created_at for b in mine.backups]
    assert dates == sorted(dates, reverse=True)
    everything = await ops.list_backups(Actor(ADMIN), backup_type="manual")
    assert {b.server.id for b in everything.backups} == {12345, 12346, 12347}
    assert all(b.backup_type == "manual" for b in everything.backups)
    assert store.server_names()[12346] == "db-server-01", "names are learned from API answers"


async def test_a_listing_returns_once_its_names_are_written_even_when_that_is_slow(ops, store, monkeypatch):
    import time

    learn = store.learn_servers

    def slow(servers):
        time.sleep(0.3)
        learn(servers)

    monkeypatch.setattr(store, "learn_servers", slow)
    await ops.list_backups(Actor(ADMIN), backup_type="manual")
    assert store.server_names()[12346] == "db-server-01"


async def test_list_denied_is_audited(ops, store):
    with pytest.raises(PermissionDenied) as caught:
        await ops.list_backups(Actor(VIEWER), server_id=12346)
    assert caught.value.needed == "viewer"
    assert audit(store)[-1] == (VIEWER, "list", "denied")


async def test_list_for_someone_without_roles_is_empty_not_an_error(ops):
    listing = await ops.list_backups(Actor(STRANGER))
    assert listing.backups == [] and listing.roles == {}


async def test_create_follows_and_audits(ops, store, sim):
    backup = await ops.create_backup(Actor(OPERATOR), 12345, "Pre-deploy", follow=ReplyTo("C1", "http://r/1"))
    assert backup.status == "in_progress" and backup.description == "Pre-deploy"
    assert [(f.backup_id, f.requested_by, f.response_url) for f in store.following()] == [
        (backup.id, OPERATOR, "http://r/1")
    ]
    assert audit(store)[-1] == (OPERATOR, "create", "done")
    with pytest.raises(PermissionDenied):
        await ops.create_backup(Actor(VIEWER), 12345)
    assert audit(store)[-1] == (VIEWER, "create", "denied")
    assert sim.count("POST") == 1


async def test_failed_create_is_audited_as_failed(ops, store, sim):
    sim.fail_next(1, 503)
    with pytest.raises(MayHaveHappened) as unknown:
        await ops.create_backup(Actor(ADMIN), 12345)
    assert unknown.value.sent.outcome is WriteOutcome.UNKNOWN, "a 5xx may have acted: never told as not done"
    entry = store.audit_entries(1)[0]
    assert (entry.action, entry.outcome) == ("create", "failed") and "503" in entry.detail
    assert "outcome unknown, it may have happened" in entry.detail
    assert store.following() == []
    sim.fail_next(1, 400)
    with pytest.raises(BadRequest):
        await ops.create_backup(Actor(ADMIN), 12345)
    assert "outcome unknown" not in store.audit_entries(1)[0].detail, "a 4xx is a refusal: not done"


async def test_delete_needs_owner_and_finds_the_server_first(ops, store, sim):
    with pytest.raises(PermissionDenied):
        await ops.request_delete(Actor(OPERATOR), 5001)
    with pytest.raises(BackupNotFound) as hidden:
        await ops.request_delete(Actor(OWNER), 5008)  # on db-server-01, where OWNER has no role
    with pytest.raises(BackupNotFound) as missing:
        await ops.request_delete(Actor(OWNER), 424242)
    assert (hidden.value.gone, missing.value.gone) == (False, False), "no role: told as for a missing backup"
    assert sim.count("DELETE") == 0
    assert [o for _, a, o in audit(store) if a == "delete"] == ["denied", "denied", "failed"]


async def test_confirm_delete_checks_whoever_presses_and_acts_once(ops, store, sim):
    conf = await ops.request_delete(Actor(OWNER), 5001)
    assert (conf.server_id, conf.server_name, conf.state) == (12345, "web-server-01", "pending")
    with pytest.raises(PermissionDenied):
        await ops.confirm_delete(Actor(VIEWER), conf.id)
    assert store.confirmation(conf.id).state == "pending", "a refused press leaves it for the right person"
    done = await ops.confirm_delete(Actor(OWNER), conf.id)
    assert done.confirmation.backup_id == 5001
    with pytest.raises(ConfirmationUnavailable) as again:
        await ops.confirm_delete(Actor(OWNER), conf.id)
    assert again.value.confirmation.state == "used" and again.value.confirmation.used_by == OWNER
    assert sim.count("DELETE") == 1
    assert [o for _, a, o in audit(store) if a == "delete"] == ["denied", "done", "denied"]


async def test_two_presses_at_once_delete_once(ops, sim):
    conf = await ops.request_delete(Actor(OWNER), 5001)
    results = await asyncio.gather(
        *(ops.confirm_delete(Actor(OWNER), conf.id) for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConfirmationUnavailable) for r in results if isinstance(r, Exception))
    assert sim.count("DELETE") == 1


async def test_confirm_after_the_backup_is_gone(ops, store, sim):
    conf = await ops.request_delete(Actor(OWNER), 5001)
    sim.remove(5001)
    with pytest.raises(BackupNotFound) as caught:
        await ops.confirm_delete(Actor(OWNER), conf.id)
    assert caught.value.gone
    assert store.confirmation(conf.id).state == "gone"
    assert sim.count("DELETE") == 0
    assert audit(store)[-1] == (OWNER, "delete", "failed")


async def test_expired_confirmation_does_nothing(ops, clock, sim):
    conf = await ops.request_delete(Actor(OWNER), 5001)
    clock.now += timedelta(minutes=16)
    with pytest.raises(ConfirmationUnavailable) as caught:
        await ops.confirm_delete(Actor(OWNER), conf.id)
    assert caught.value.confirmation.state == "expired"
    assert sim.count("DELETE") == 0


async def test_cancel_is_audited_and_final(ops, store):
    conf = await ops.request_delete(Actor(OWNER), 5001)
    with pytest.raises(PermissionDenied):
        await ops.cancel(Actor(VIEWER), conf.id)
    await ops.cancel(Actor(OWNER), conf.id)
    assert audit(store)[-1] == (OWNER, "delete", "cancelled")
    with pytest.raises(ConfirmationUnavailable):
        await ops.confirm_delete(Actor(OWNER), conf.id)


async def test_restore_asks_for_the_server_name(ops, store, sim):
    conf = await ops.request_restore(Actor(OWNER), 5001)
    assert (conf.target_server_id, conf.target_server_name) == (12345, "web-server-01")
    with pytest.raises(ConfirmationMismatch):
        await ops.confirm_restore(Actor(OWNER), conf.id, "web-server-02")
    assert sim.restores == [] and store.confirmation(conf.id).state == "pending"
    done = await ops.confirm_restore(Actor(OWNER), conf.id, " 12345 ", safety=False)
    assert done.provider_message == "Restore started."
    assert sim.restores == [(12345, 5001)]
    with pytest.raises(ConfirmationUnavailable):
        await ops.confirm_restore(Actor(OWNER), conf.id, "web-server-01")
    assert audit(store)[-2:] == [(OWNER, "restore", "done"), (OWNER, "restore", "denied")]


async def test_restore_elsewhere_needs_owner_of_both(ops, store, sim):
    with pytest.raises(PermissionDenied) as caught:
        await ops.request_restore(Actor(OWNER), 5001, 12346)
    assert caught.value.server_id == 12346
    store.grant(OWNER, 12346, Role.OWNER, "t")
    store.learn_servers([(12346, "db-server-01")])
    conf = await ops.request_restore(Actor(OWNER), 5001, 12346)
    assert conf.target_server_name == "db-server-01"
    store.revoke(OWNER, 12346)
    with pytest.raises(PermissionDenied):
        await ops.confirm_restore(Actor(OWNER), conf.id, "db-server-01")
    assert sim.restores == []


async def test_only_completed_backups_restore(ops, sim):
    running = await ops.create_backup(Actor(OWNER), 12345)
    with pytest.raises(NotRestorable):
        await ops.request_restore(Actor(OWNER), running.id)


async def test_grant_revoke_and_audit_are_for_admins(ops, store):
    for actor in (Actor(OWNER), Actor(STRANGER)):
        with pytest.raises(PermissionDenied):
            await ops.grant(actor, "UNEW", 12345, Role.VIEWER)
        with pytest.raises(PermissionDenied):
            await ops.audit_log(actor)
    await ops.grant(Actor(ADMIN), "UNEW", 12345, Role.VIEWER)
    assert store.role_of("UNEW", 12345) is Role.VIEWER
    store.add_admin("USTOREADMIN", "t")
    assert await ops.revoke(Actor("USTOREADMIN"), "UNEW", 12345) is True
    cli = Actor("cli:root", source="cli", superuser=True)
    entries = await ops.audit_log(cli, 3)
    assert [e.action for e in entries] == ["revoke", "grant", "audit"]
    assert store.audit_entries(1)[0].source == "cli"


async def test_servers_lists_roles(ops):
    mine = await ops.servers(Actor(OPERATOR))
    assert [(s.server_id, s.role) for s in mine] == [(12345, "operator")]
    every = await ops.servers(Actor(ADMIN))
    assert {s.server_id for s in every} == {12345, 12346, 12347} and {s.role for s in every} == {"admin"}


async def test_authorize_confirmation_for_the_modal(ops):
    conf = await ops.request_restore(Actor(OWNER), 5001)
    with pytest.raises(PermissionDenied):
        await ops.authorize_confirmation(Actor(OPERATOR), conf.id, Action.RESTORE)
    assert (await ops.authorize_confirmation(Actor(ADMIN), conf.id, Action.RESTORE)).id == conf.id


async def test_a_write_that_fails_is_not_sent_again_and_a_second_press_says_so(ops, store, sim):
    conf = await ops.request_delete(Actor(OWNER), 5001)
    sim.fail_next(1, 503, method="DELETE")
    with pytest.raises(MayHaveHappened):
        await ops.confirm_delete(Actor(OWNER), conf.id)
    assert sim.count("DELETE") == 1
    with pytest.raises(ConfirmationUnavailable) as again:
        await ops.confirm_delete(Actor(OWNER), conf.id)
    assert again.value.confirmation.state == "failed"
    assert sim.count("DELETE") == 1, "never sent twice"
    assert [o for _, a, o in audit(store) if a == "delete"] == ["failed", "denied"]


async def test_admins_are_managed_by_admins_only(ops, store):
    with pytest.raises(PermissionDenied):
        await ops.set_admin(Actor(OWNER), OWNER, admin=True)
    cli = Actor("cli:root", source="cli", superuser=True)
    assert await ops.set_admin(cli, "U0NEWADMIN", admin=True) is True
    assert await ops.set_admin(cli, "U0NEWADMIN", admin=True) is False
    assert await ops.is_admin(Actor("U0NEWADMIN"))
    assert await ops.set_admin(Actor("U0NEWADMIN"), "U0NEWADMIN", admin=False) is True
    assert [(a, o) for _, a, o in audit(store)][-4:] == [
        ("admin", "denied"),
        ("admin", "done"),
        ("admin", "done"),
        ("admin", "done"),
    ]
