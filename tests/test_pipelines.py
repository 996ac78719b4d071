"""The Pipelines use cases (bot/ops/pipelines.py) on the simulator (httpx transport) and a real store: tokens,
the claim, and runs settled after the fact — a bot that died while sending, a create the API did not confirm.

The HTTP API on top of them is tested in test_api.py, the shell's `token` and `backup` in test_cli.py."""

import asyncio
from datetime import timedelta

import pytest
from conftest import ManualClock

from bot.backup_api import BackupApi
from bot.ops import Actor, KeyReused, Operations, TokenNameTaken, TokenRefused
from bot.ops.pipelines import compact_duration, run_id_for, tagged
from bot.ops.writes import WRITE_SETTLE_SECONDS
from bot.sim.fake_api import BackupSimulator, SimulatorTransport
from bot.store import RunStatus, SqliteStore

SHELL = Actor.cli("ops")


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def sim():
    return BackupSimulator(completion_seconds=3600)


@pytest.fixture
def store(tmp_path, clock):
    """The store on the use cases' clock: runs are looked for by when they last moved."""
    opened = SqliteStore(str(tmp_path / "pipelines.db"), clock=clock)
    yield opened
    opened.close()


@pytest.fixture
async def ops(sim, store, clock):
    api = BackupApi("http://sim/api/v1", "t", transport=SimulatorTransport(sim), backoff_seconds=0, timeout=1.0)
    yield Operations(api, store, clock=clock)
    await api.aclose()


async def test_a_token_is_kept_as_a_hash_checked_and_revoked(ops, store):
    token = await ops.add_token(SHELL, "deploy-prod", frozenset({12345}))
    (kept,) = store.tokens()
    assert token.startswith(f"vbb_{kept.selector}_") and token not in repr(kept) and kept.hash != token
    assert (await ops.authenticate(token)).name == "deploy-prod"
    for wrong in (token + "x", token[:-1] + ("A" if token[-1] != "A" else "B"), "", None, "vbb_" + "0" * 56):
        with pytest.raises(TokenRefused):
            await ops.authenticate(wrong)
    with pytest.raises(TokenNameTaken):
        await ops.add_token(SHELL, "deploy-prod", frozenset({1}))
    assert await ops.revoke_token(SHELL, "deploy-prod") and not await ops.revoke_token(SHELL, "deploy-prod")
    with pytest.raises(TokenRefused) as caught:
        await ops.authenticate(token)
    assert caught.value.revoked
    with pytest.raises(TokenNameTaken):
        await ops.add_token(SHELL, "deploy-prod", frozenset({1})), "a revoked token keeps its name"


async def test_a_run_is_claimed_once_per_key_and_token(ops, sim):
    actor = Actor.token("deploy-prod")
    runs = await asyncio.gather(
        *(ops.pipeline_backup(actor, 12345, "v1", key="k", reach=frozenset({12345})) for _ in range(5))
    )
    assert sum(r.new for r in runs) == 1 and len({r.run.id for r in runs}) == 1
    assert sim.count("POST") == 1
    with pytest.raises(KeyReused):
        await ops.pipeline_backup(actor, 12345, "v2", key="k", reach=frozenset({12345}))
    assert run_id_for("token:a", "k") != run_id_for("token:b", "k")


def test_the_tag_always_fits_the_apis_limit():
    assert tagged("", "0123456789ab") == "[pipeline 0123456789ab]"
    assert tagged("v2", "0123456789ab") == "v2 [pipeline 0123456789ab]"
    long = tagged("x" * 255, "0123456789ab")
    assert len(long) == 255 and long.endswith("x… [pipeline 0123456789ab]")
    assert [compact_duration(s) for s in (0.2, 59, 125, 3720)] == ["0s", "59s", "2m05s", "1h02m"]


async def test_a_create_the_api_did_not_confirm_is_found_by_the_background_loop_later(ops, sim, clock):
    sim.hang_next(1)  # no answer in time: nothing created either
    run = (await ops.pipeline_backup(SHELL, 12345, "late")).run
    assert run.status is RunStatus.UNKNOWN and run.backup_id is None
    assert await ops.settle_pipeline_runs() == [], "still not there: it stays unknown"
    created = sim.add_backup(12345, status="in_progress", description=tagged("late", run.id))
    (found,) = await ops.settle_pipeline_runs()
    assert (found.status, found.backup_id) == (RunStatus.IN_PROGRESS, created)
    clock.now += timedelta(minutes=30)
    assert await ops.settle_pipeline_runs() == []


async def test_a_run_left_pending_by_a_bot_that_died_is_settled_by_looking(tmp_path, sim, clock):
    path = str(tmp_path / "died.db")
    store = SqliteStore(path, clock=clock)
    api = BackupApi("http://sim/api/v1", "t", transport=SimulatorTransport(sim), backoff_seconds=0)
    ops = Operations(api, store, clock=clock)
    try:
        run_id = "0123456789ab"
        store.claim_run(
            id=run_id, actor="token:ci", server_id=12345, server_name=None, idempotency_key="k",
            request_hash="h", description="died",
        )  # fmt: skip
        store.begin_write(
            kind="create", path="pipeline", ref=run_id, server_id=12345, backup_id=None,
            description=tagged("died", run_id), actor="token:ci", source="token", channel_id=None, response_url=None,
        )  # fmt: skip
        created = sim.add_backup(12345, status="in_progress", description=tagged("died", run_id))
        store.claim_run(
            id="ba9876543210", actor="token:ci", server_id=12345, server_name=None, idempotency_key=None,
            request_hash="h", description="never sent",
        )  # fmt: skip
        assert await ops.settle_pipeline_runs() == [], "not before a write could have ended"
        clock.now += timedelta(seconds=WRITE_SETTLE_SECONDS + 1)
        settled = {run.id: run for run in await ops.settle_pipeline_runs()}
        assert (settled[run_id].status, settled[run_id].backup_id) == (RunStatus.IN_PROGRESS, created)
        assert settled["ba9876543210"].status is RunStatus.FAILED
        assert "the bot stopped before it asked for the backup" in settled["ba9876543210"].detail
        assert store.following()[0].backup_id == created, "the found backup is followed"
        assert await ops.settle_pipeline_runs() == [], "each is settled once"
    finally:
        await api.aclose()
        store.close()


async def test_check_run_sees_the_end_of_its_backup(ops, sim):
    run = (await ops.pipeline_backup(SHELL, 12345)).run
    assert (await ops.check_run(run)).status is RunStatus.IN_PROGRESS
    sim.finish(run.backup_id, "failed")
    ended = await ops.check_run(run)
    assert ended.status is RunStatus.FAILED and "ended failed" in ended.detail
    assert (await ops.pipeline_run(SHELL, run.id)).status is RunStatus.FAILED
    assert await ops.pipeline_run(Actor.token("other"), run.id) is None
