"""The simulator answers as shared/vps-backup-api.md says the provider does."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import ManualClock

from bot.sim.fake_api import MANUAL_LIMIT, BackupSimulator, SimulatorTransport, start_simulator_server

AUTH = {"authorization": "Bearer any"}


NOON = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def call(sim, method, path, query="", body=None, headers=AUTH):
    data = json.dumps(body).encode() if body is not None else b""
    return sim.handle(method, "/api/v1/" + path, query, headers, data)


def test_auth_rules():
    open_sim = BackupSimulator()
    assert call(open_sim, "GET", "backups/", headers={}).status == 401
    assert call(open_sim, "GET", "backups/", headers={"authorization": "Bearer "}).status == 401
    assert call(open_sim, "GET", "backups/").status == 200
    strict = BackupSimulator(token="t0ken")
    assert call(strict, "GET", "backups/").status == 401
    assert call(strict, "GET", "backups/", headers={"authorization": "Bearer t0ken"}).status == 200


def test_list_shape_and_filters():
    sim = BackupSimulator()
    answer = call(sim, "GET", "backups/", "server_id=12345&backup_type=automatic")
    assert answer.status == 200 and answer.body["count"] == len(answer.body["results"]) == 7
    first = answer.body["results"][0]
    assert set(first) == {"id", "server", "backup_type", "status", "size_mb", "created_at", "expires_at", "description"}
    assert first["server"] == {"id": 12345, "name": "web-server-01"}
    assert call(sim, "GET", "backups/", "server_id=abc").status == 400
    assert call(sim, "GET", "backups/", "backup_type=weekly").status == 400


def test_list_is_not_sorted_by_date():
    results = call(BackupSimulator(), "GET", "backups/").body["results"]
    dates = [r["created_at"] for r in results]
    assert dates != sorted(dates) and dates != sorted(dates, reverse=True)


def test_create_validates_and_enforces_the_manual_limit():
    sim = BackupSimulator()
    assert call(sim, "POST", "backups/", body={}).status == 400
    assert call(sim, "POST", "backups/", body={"server_id": "12345"}).status == 400
    assert call(sim, "POST", "backups/", body={"server_id": 12345, "description": 5}).status == 400
    assert call(sim, "POST", "backups/", body={"server_id": 4}).status == 404
    created = [call(sim, "POST", "backups/", body={"server_id": 12346}) for _ in range(3)]
    assert [a.status for a in created] == [201, 201, 400], "db-server-01 starts with 8 manual backups"
    assert str(MANUAL_LIMIT) in created[2].body["detail"]


def test_backup_completes_after_the_delay_with_a_size():
    clock = ManualClock(NOON)
    sim = BackupSimulator(clock=clock, completion_seconds=60)
    created = call(sim, "POST", "backups/", body={"server_id": 12345, "description": "x"}).body
    assert created["status"] == "in_progress" and created["size_mb"] is None
    clock.now += timedelta(seconds=59)
    find = lambda: next(b for b in call(sim, "GET", "backups/").body["results"] if b["id"] == created["id"])  # noqa: E731
    assert find()["status"] == "in_progress"
    clock.now += timedelta(seconds=2)
    assert find()["status"] == "completed" and find()["size_mb"] > 0


def test_a_backup_can_be_made_to_fail():
    clock = ManualClock(NOON)
    sim = BackupSimulator(clock=clock, completion_seconds=10)
    backup_id = call(sim, "POST", "backups/", body={"server_id": 12345}).body["id"]
    sim.end_with(backup_id, "failed")
    clock.now += timedelta(seconds=11)
    backup = next(b for b in call(sim, "GET", "backups/").body["results"] if b["id"] == backup_id)
    assert backup["status"] == "failed" and backup["size_mb"] is None


def test_automatic_backups_expire_after_30_days_manual_never():
    clock = ManualClock(NOON)
    sim = BackupSimulator(clock=clock, seed=False)
    sim.add_server(1, "one")
    auto = sim.add_backup(1, backup_type="automatic")
    manual = sim.add_backup(1, backup_type="manual")
    clock.now += timedelta(days=30, seconds=1)
    ids = {b["id"] for b in call(sim, "GET", "backups/").body["results"]}
    assert ids == {manual} and auto not in ids


def test_delete_and_restore_paths():
    sim = BackupSimulator()
    assert call(sim, "DELETE", "backups/424242/").status == 404
    assert call(sim, "POST", "servers/12345/restore/", body={"backup_id": 5001}).status == 202
    assert call(sim, "POST", "servers/1/restore/", body={"backup_id": 5001}).status == 404
    assert call(sim, "POST", "servers/12345/restore/", body={"backup_id": 1}).status == 404
    assert call(sim, "POST", "servers/12345/restore/", body={}).status == 400
    running = call(sim, "POST", "backups/", body={"server_id": 12345}).body["id"]
    refused = call(sim, "POST", "servers/12345/restore/", body={"backup_id": running})
    assert refused.status == 400 and "in_progress" in refused.body["detail"]
    assert call(sim, "DELETE", "backups/5001/").status == 204
    assert call(sim, "DELETE", "backups/5001/").status == 404


async def test_fault_knobs_and_latency_through_the_transport():
    sim = BackupSimulator()
    async with httpx.AsyncClient(transport=SimulatorTransport(sim), base_url="http://sim/api/v1/") as http:
        sim.fail_next(2, 500)
        statuses = [(await http.get("backups/", headers=AUTH)).status_code for _ in range(3)]
        assert statuses == [500, 500, 200]
        sim.hang_next(1)
        with pytest.raises(httpx.ReadTimeout):
            await http.get("backups/", headers=AUTH, timeout=0.2)


async def test_http_server_serves_the_same_api():
    sim = BackupSimulator(token="tok")
    runner, url = await start_simulator_server(sim)
    try:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/backups/")).status_code == 401
            ok = await http.get(f"{url}/backups/", params={"server_id": 12347}, headers={"authorization": "Bearer tok"})
            assert ok.status_code == 200 and ok.json()["count"] == 8
            deleted = await http.delete(f"{url}/backups/5001/", headers={"authorization": "Bearer tok"})
            assert deleted.status_code == 204 and deleted.content == b""
    finally:
        await runner.cleanup()


async def test_http_server_takes_fault_knobs():
    sim = BackupSimulator()
    runner, url = await start_simulator_server(sim)
    base = url.rsplit("/api/v1", 1)[0]
    try:
        async with httpx.AsyncClient() as http:
            knobs = await http.post(f"{base}/_simulator/faults", params={"fail": 2, "status": 502, "latency": 0.01})
            assert knobs.json() == {"latency": 0.01}
            statuses = [(await http.get(f"{url}/backups/", headers=AUTH)).status_code for _ in range(3)]
            assert statuses == [502, 502, 200]
            assert (await http.post(f"{base}/_simulator/faults", params={"fail": "x"})).status_code == 400
    finally:
        await runner.cleanup()


async def test_fault_knobs_take_a_json_body_refuse_nonsense_and_need_the_token():
    sim = BackupSimulator(token="s3cret")
    runner, url = await start_simulator_server(sim)
    base = url.rsplit("/api/v1", 1)[0]
    auth = {"Authorization": "Bearer s3cret"}
    try:
        async with httpx.AsyncClient() as http:
            refused = await http.post(f"{base}/_simulator/faults", json={"fail": 1})
            assert refused.status_code == 401, "with --token, the knobs need it too"
            knobs = await http.post(f"{base}/_simulator/faults", json={"fail": 1, "status": 429}, headers=auth)
            assert knobs.status_code == 200
            assert (await http.get(f"{url}/backups/", headers=auth)).status_code == 429
            for nonsense in (
                {"latency": "nan"},
                {"latency": -1},
                {"fail": 1.5},
                {"status": 42, "fail": 1},
                {"boom": 1},
            ):
                answer = await http.post(f"{base}/_simulator/faults", json=nonsense, headers=auth)
                assert answer.status_code == 400, nonsense
            not_json = await http.post(f"{base}/_simulator/faults", content=b"fail=1", headers=auth)
            assert not_json.status_code == 400
            assert sim.latency == 0.0
            assert (await http.get(f"{url}/backups/", headers=auth)).status_code == 200
    finally:
        await runner.cleanup()
