"""The client against the simulator: in-process transport, and the real HTTP server for socket behaviour."""

import asyncio
import logging

import pytest

from bot.backup_api import (
    ApiTimeout,
    BackupApi,
    BadRequest,
    NotFound,
    NotSent,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
)
from bot.sim.fake_api import BackupSimulator, SimulatorTransport, start_simulator_server

TOKEN = "secret-vps-token"


def client(sim: BackupSimulator, **options) -> BackupApi:
    options = {"backoff_seconds": 0.0, **options}
    return BackupApi("http://vps.simulator/api/v1", TOKEN, transport=SimulatorTransport(sim), **options)


@pytest.fixture
def sim():
    return BackupSimulator(token=TOKEN, completion_seconds=3600)


async def test_list_with_filters(sim):
    api = client(sim)
    every = await api.list_backups()
    web = await api.list_backups(server_id=12345)
    manual = await api.list_backups(server_id=12345, backup_type="manual")
    assert {b.server.id for b in every} == {12345, 12346, 12347}
    assert web and all(b.server.id == 12345 and b.server.name == "web-server-01" for b in web)
    assert manual and all(b.backup_type == "manual" and b.expires_at is None for b in manual)
    assert len(manual) < len(web) < len(every)
    await api.aclose()


async def test_find_one_backup_by_listing(sim):
    api = client(sim)
    backup = await api.find_backup(5001)
    assert backup.id == 5001 and backup.server.id == 12345
    with pytest.raises(NotFound):
        await api.find_backup(999999)
    await api.aclose()


async def test_create_delete_restore(sim):
    api = client(sim)
    created = await api.create_backup(12345, "Pre-deployment backup")
    assert created.status == "in_progress" and created.size_mb is None and created.expires_at is None
    assert created.message and "several minutes" in created.message
    assert created.is_running and not created.is_restorable
    assert await api.restore(12345, 5001) == "Restore started."
    assert sim.restores == [(12345, 5001)]
    await api.delete_backup(5001)
    with pytest.raises(NotFound):
        await api.delete_backup(5001)
    await api.aclose()


async def test_wrong_token_is_unauthorized_and_never_echoed(sim, caplog):
    caplog.set_level(logging.DEBUG)
    api = BackupApi("http://vps.simulator/api/v1", "wrong-token", transport=SimulatorTransport(sim))
    with pytest.raises(Unauthorized) as caught:
        await api.list_backups()
    assert "wrong-token" not in str(caught.value)
    assert "wrong-token" not in repr(api)
    assert "wrong-token" not in caplog.text
    await api.aclose()


async def test_bad_request_carries_the_providers_text(sim):
    api = client(sim)
    for _ in range(2):  # the sample db-server-01 has 8 manual backups
        await api.create_backup(12346)
    with pytest.raises(BadRequest) as caught:
        await api.create_backup(12346)
    assert "at most 10 manual backups" in caught.value.provider_message
    await api.aclose()


async def test_create_on_unknown_server_is_not_found(sim):
    api = client(sim)
    with pytest.raises(NotFound, match="Server not found"):
        await api.create_backup(99999)
    with pytest.raises(NotFound):
        await api.restore(99999, 5001)
    await api.aclose()


async def test_read_retries_two_503s_then_succeeds(sim):
    api = client(sim, read_attempts=3)
    sim.fail_next(2, 503)
    backups = await api.list_backups(server_id=12345)
    assert backups
    assert sim.count("GET") == 3
    await api.aclose()


async def test_read_gives_up_after_its_attempts(sim):
    api = client(sim, read_attempts=3)
    sim.fail_next(5, 502)
    with pytest.raises(Unavailable, match="502"):
        await api.list_backups()
    assert sim.count("GET") == 3
    await api.aclose()


async def test_retry_backs_off_between_attempts(sim):
    waits = []

    async def record(delay):
        waits.append(delay)

    api = client(sim, read_attempts=3, backoff_seconds=0.5, sleep=record)
    sim.fail_next(2, 503)
    await api.list_backups()
    assert waits == [0.5, 1.0]
    await api.aclose()


@pytest.mark.parametrize("write", ["create", "delete", "restore"])
async def test_a_failed_write_is_never_sent_again(sim, write):
    api = client(sim, read_attempts=3)
    sim.fail_next(1, 503)
    calls = {
        "create": lambda: api.create_backup(12345),
        "delete": lambda: api.delete_backup(5001),
        "restore": lambda: api.restore(12345, 5001),
    }
    with pytest.raises(Unavailable):
        await calls[write]()
    assert sim.count("POST") + sim.count("DELETE") == 1
    await api.aclose()


async def test_hung_call_ends_at_the_timeout_over_the_transport(sim):
    api = client(sim, timeout=0.3)
    sim.hang_next(1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ApiTimeout):
        await api.list_backups()
    assert asyncio.get_running_loop().time() - started < 5
    await api.aclose()


async def test_hung_call_ends_at_the_timeout_over_real_http(sim):
    runner, url = await start_simulator_server(sim)
    api = BackupApi(url, TOKEN, timeout=0.3, backoff_seconds=0.0)
    try:
        assert await api.list_backups(server_id=12345)
        sim.hang_next(1)
        with pytest.raises(ApiTimeout):
            await api.create_backup(12345)
        assert await api.list_backups(server_id=12347), "the client keeps working after a timeout"
    finally:
        await api.aclose()
        await runner.cleanup()


async def test_refused_connection_is_unavailable_not_timeout():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = BackupApi(f"http://127.0.0.1:{port}/api/v1", TOKEN, backoff_seconds=0.0, read_attempts=2)
    with pytest.raises(Unavailable) as caught:
        await api.list_backups()
    assert not isinstance(caught.value, ApiTimeout)
    await api.aclose()


async def test_a_connection_never_made_is_not_sent_on_the_default_transport():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = BackupApi(f"http://127.0.0.1:{port}/api/v1", TOKEN, backoff_seconds=0.0)
    with pytest.raises(NotSent):
        await api.create_backup(12345)
    await api.aclose()


async def _dropping_server(drop=lambda n: True):
    """A server that reads each request and answers an empty list, but closes the connection without answering
    the `n`th request (from 0) where `drop(n)`; returns (server, url, the methods of the requests seen)."""
    seen: list[bytes] = []
    body = b'{"count": 0, "results": []}'

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            if length:
                await reader.readexactly(length)
            seen.append(head.split(b" ", 2)[0])
            if drop(len(seen) - 1):
                writer.close()
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/api/v1", seen


async def test_a_connection_that_broke_after_sending_is_unavailable_not_not_sent_nor_timeout():
    server, url, seen = await _dropping_server()
    api = BackupApi(url, TOKEN, backoff_seconds=0.0)
    try:
        with pytest.raises(Unavailable) as caught:
            await api.create_backup(12345)
        assert not isinstance(caught.value, NotSent | ApiTimeout), "the request went out: the write may have happened"
        assert seen == [b"POST"]
    finally:
        await api.aclose()
        server.close()
        await server.wait_closed()


async def test_a_kept_alive_connection_that_broke_is_unavailable_and_a_read_is_tried_again():
    server, url, seen = await _dropping_server(drop=lambda n: n in (1, 2, 3))
    api = BackupApi(url, TOKEN, backoff_seconds=0.0, read_attempts=1)
    try:
        assert await api.list_backups() == []
        with pytest.raises(Unavailable) as caught:
            await api.delete_backup(5001)
        assert not isinstance(caught.value, NotSent | ApiTimeout)
        assert seen == [b"GET", b"DELETE"], "a write is sent once (aiohttp alone would send a DELETE again)"
        with pytest.raises(Unavailable):
            await api.list_backups()
        assert seen == [b"GET", b"DELETE", b"GET", b"GET"], "a read whose connection broke is sent once more"
        assert await api.list_backups() == []
    finally:
        await api.aclose()
        server.close()
        await server.wait_closed()


async def test_malformed_answer_is_unexpected():
    import httpx

    def handler(request):
        return httpx.Response(200, json={"count": 1, "results": [{"id": "x"}]})

    api = BackupApi("http://x/api/v1", TOKEN, transport=httpx.MockTransport(handler))
    with pytest.raises(UnexpectedResponse):
        await api.list_backups()
    await api.aclose()
