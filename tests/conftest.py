"""Fixtures: a store on a real file, the API simulator, and the whole bot live on loopback.

`stack` runs, on a background event loop: the loopback Slack server, and the
real ASGI app (driven in-process through httpx's ASGI transport), wired to the
simulator through its httpx transport and to a fresh SQLite file. Tests talk to it as Slack would, with
signed HTTP requests, and read what the bot sent from the loopback recorder.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.clock import utc_now
from bot.config import Settings
from bot.runtime import Runtime, build_runtime
from bot.server import BotAsgi
from bot.sim.fake_api import BackupSimulator, SimulatorTransport
from bot.sim.slack_loopback import (
    LoopbackSlack,
    block_actions_payload,
    sign,
    slash_command_body,
    view_submission_payload,
)
from bot.store import SqliteStore, Store

SECRET = "test-signing-secret"
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VPS_", "BACKUPBOT_"))}


def bot_env(slack: LoopbackSlack, api_url: str, db: object, **settings: str) -> dict[str, str]:
    """The environment of a bot process on this loopback Slack and a simulator whose token is `vps-t0ken`,
    with ADMIN as its admin and the store at `db` (a path or a URL); `settings` add to it."""
    return {
        **CLEAN_ENV,
        "SLACK_API_URL": slack.api_url,
        "VPS_API_URL": api_url,
        "VPS_API_TOKEN": "vps-t0ken",
        "BACKUPBOT_DB": str(db),
        "BACKUPBOT_ADMINS": ADMIN,
        **settings,
    }


def bot_command() -> list[str]:
    """The installed `vps-backup-bot` script, as a person runs it."""
    exe = shutil.which("vps-backup-bot")
    return [exe] if exe else [sys.executable, "-m", "bot"]


class ManualClock:
    """A clock that stands still until a test moves it (`clock.now += timedelta(...)`)."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime.now(UTC)

    def __call__(self):
        return self.now


def stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop a background loop the way asyncio.run ends one: cancel what is left, let it finish, close."""

    async def cancel_the_rest() -> None:
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


class Background:
    """An event loop on a thread, for servers the test talks to from outside."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        stop_loop(self.loop, self.thread)


def poll_until(predicate, timeout: float = 10.0, every: float = 0.02):
    """Wait for predicate() to be truthy (state in a store, not a message Slack saw); returns its value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "the expected state never came"
        time.sleep(every)
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait for GET url/healthz to answer 200 while the process lives."""
    deadline = time.monotonic() + timeout
    with httpx.Client() as http:  # one client: making one costs ~50 ms of CPU (its TLS context)
        while True:
            try:
                if http.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "the process exited before it was ready"
            assert time.monotonic() < deadline, f"{url} did not start in {timeout} s"
            time.sleep(0.05)


ADMIN = "UADMIN01"
CHANNEL = "COPS0001"
NOTIFY = "CNOTIFY01"


class SyncHttp:
    """A blocking HTTP client for an ASGI app served in-process on the stack's loop (no socket, no server)."""

    def __init__(self, stack: LiveStack, app):
        self.stack = stack
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot", timeout=10)

    def get(self, path: str) -> httpx.Response:
        return self.stack.run(self.client.get(path))

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.stack.run(self.client.post(path, **kwargs))

    def close(self) -> None:
        self.stack.run(self.client.aclose())


class LiveStack:
    """The whole bot on a background event loop: its ASGI app (what `serve` runs under uvicorn) driven
    in-process through httpx's ASGI transport, the simulator as its API, a loopback Slack, a real SQLite file.
    """

    def __init__(
        self,
        db_path: Path,
        sim: BackupSimulator,
        *,
        notify_channel: str | None = NOTIFY,
        poll_seconds: float = 3600.0,
        api_options: dict | None = None,
        slack: LoopbackSlack | None = None,
        clock: Callable[[], datetime] = utc_now,
        tick: float = 0.1,
        **settings: object,
    ):
        self.sim = sim
        self.db_path = db_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.own_slack = slack is None
        self.slack: LoopbackSlack = slack or self.run(LoopbackSlack().start())
        self.settings = Settings(
            slack_bot_token="xoxb-test-token",
            slack_signing_secret=SECRET,
            slack_api_url=self.slack.api_url,
            vps_api_url="http://vps.simulator/api/v1",
            vps_api_token="vps-test-token",
            db_path=str(db_path),
            admins=frozenset({ADMIN}),
            notify_channel=notify_channel,
            poll_seconds=poll_seconds,
            delete_grace_seconds=0.0,  # deletes at once, unless a test is about the undo window
        ).with_overrides(**settings)
        options = {"backoff_seconds": 0.0, "timeout": 2.0, **(api_options or {})}
        self.runtime: Runtime = build_runtime(
            self.settings,
            api_transport=SimulatorTransport(sim),
            api_options=options,
            clock=clock,
            background_seconds=tick,  # chores and store retries ten times a second, so tests wait on them less
        )
        self.ticks = [0.0]  # the readiness cache's clock, in seconds: tests move it
        self.asgi = BotAsgi(self.runtime, monotonic=lambda: self.ticks[0])
        self.run(self.runtime.start())
        poll_until(lambda: self.runtime.background.rounds >= 1)  # its first round would take a fault meant for a test
        self.asgi.ready = True
        self.http = SyncHttp(self, self.asgi)

    def run(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def recorder(self):
        return self.slack.recorder

    def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        secret: str = SECRET,
        headers: dict | None = None,
    ) -> httpx.Response:
        signed = {"Content-Type": content_type, **sign(secret, body, timestamp), **(headers or {})}
        return self.http.post("/slack/events", content=body, headers=signed)

    def command(self, text: str, user: str = ADMIN, channel: str = CHANNEL) -> tuple[httpx.Response, str]:
        """Send `/backup text`; returns the ack response and the response_url key for its reply."""
        url = self.slack.response_url()
        form = slash_command_body(text, user_id=user, channel_id=channel, response_url=url)
        return self.post(urlencode(form).encode()), url.rsplit("/", 1)[1]

    def reply(self, key: str, count: int = 1, timeout: float = 10) -> dict:
        """The `count`-th post to a response_url, once it has come."""
        return self.recorder.wait_for(
            lambda _r: len(self.recorder.responses(key)) >= count and self.recorder.responses(key)[count - 1],
            timeout,
        )

    def ask(self, text: str, user: str = ADMIN, channel: str = CHANNEL) -> tuple[dict, str]:
        """A command whose answer comes through response_url: returns (reply, key)."""
        response, key = self.command(text, user, channel)
        assert response.status_code == 200, response.text
        return self.reply(key), key

    def press(
        self,
        button: dict,
        *,
        user: str = ADMIN,
        block_id: str = "b",
        channel: str = CHANNEL,
        response_key: str | None = None,
    ) -> tuple[httpx.Response, str]:
        url = self.slack.response_url(response_key)
        payload = block_actions_payload(
            user_id=user, channel_id=channel, response_url=url, action=button, block_id=block_id
        )
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body), url.rsplit("/", 1)[1]

    def submit(self, view: dict, typed: str, *, user: str = ADMIN, safety: bool | None = False) -> httpx.Response:
        """Submit the restore form with `typed` as the server's name; the safety-backup box unticked
        (`safety=False`), ticked (True), or left out of the submission (None)."""
        from bot.slack import ids

        values: dict = {ids.RESTORE_INPUT_BLOCK: {ids.RESTORE_INPUT_ACTION: typed}}
        if safety is not None:
            values[ids.RESTORE_SAFETY_BLOCK] = {ids.RESTORE_SAFETY_ACTION: [ids.SAFETY_OPTION] if safety else []}
        payload = view_submission_payload(user_id=user, view=view, values=values)
        return self.post(urlencode({"payload": json.dumps(payload)}).encode())

    def grant(self, user: str, server: int, role: str) -> None:
        with_store = SqliteStore(str(self.db_path))
        from bot.policy import Role

        with_store.grant(user, server, Role.parse(role), "test")
        with_store.close()

    def close(self) -> None:
        """Stop as `serve` does on SIGTERM: let acknowledged work finish, then close everything."""
        try:
            self.http.close()
            self.asgi.draining = True
            self.run(self.runtime.drain(), timeout=30)
            self.run(self.runtime.aclose(), timeout=30)
        finally:
            if self.own_slack:
                self.run(self.slack.stop())
            stop_loop(self.loop, self.thread)


@pytest.fixture
def sim() -> BackupSimulator:
    return BackupSimulator(completion_seconds=3600)


@pytest.fixture
def store(tmp_path) -> Store:
    s = SqliteStore(str(tmp_path / "store.db"))
    yield s
    s.close()


@pytest.fixture
def stack(tmp_path, sim):
    live = LiveStack(tmp_path / "bot.db", sim)
    yield live
    live.close()


def buttons(message: dict) -> list[dict]:
    """Every button in a message, each with its block_id under '_block'."""
    found = []
    for block in message.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("type") == "button":
                found.append({**element, "_block": block.get("block_id", "")})
        accessory = block.get("accessory")
        if accessory and accessory.get("type") == "button":
            found.append({**accessory, "_block": block.get("block_id", "")})
    return found


def button(message: dict, action_id: str, value: str | None = None) -> dict:
    for b in buttons(message):
        if b["action_id"] == action_id and (value is None or b["value"] == value):
            return b
    raise AssertionError(f"no {action_id} button (value {value}) in {json.dumps(message)[:500]}")


def text_of(message: dict) -> str:
    from bot.slack.views.base import flatten_text

    return flatten_text(message.get("blocks", [])) or message.get("text", "")


# --- a throwaway PostgreSQL ----------------------------------------------------------------


@dataclass
class PostgresCluster:
    port: int
    socket_dir: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_store_url(self) -> str:
        """The URL of a fresh, empty place for a store: a schema of its own, named by the URL's search_path.

        A schema is made in milliseconds where CREATE DATABASE costs PostgreSQL about 0.35 s of CPU, and the
        bot's unqualified table names behave the same in either.
        """
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url()}?options=-csearch_path%3D{name}"


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's binaries refuse to run as root: as root, run them as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


# The modules whose tests start bot processes (tests/bot_process.py). Each xdist worker that starts one
# starts its own fork server, about 1.5 s of CPU importing the bot: each of these modules runs on one worker,
# so two fork servers serve the run rather than one per worker. (Both on one worker: it finishes last.)
BOT_PROCESS_MODULES = ("tests/test_server.py", "tests/test_replicas.py", "tests/test_writes.py")


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: without xdist (`-p no:xdist -n 0`) there is none
def pytest_xdist_make_scheduler(config, log):
    """xdist's `load` distribution, except that each bot-process module goes to one worker as one unit.

    (`--dist loadgroup` with `xdist_group` marks would say the same, but under pytest 9 the marks are
    silently ignored: pytest-dev/pytest-xdist#1386.) Another `--dist` given on the command line is kept.
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BotProcessModulesKeptWhole(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in BOT_PROCESS_MODULES else nodeid

    return BotProcessModulesKeptWhole(config, log)


def pytest_collection_finish(session):
    """What is imported and collected by now lives to the end: keep the garbage collector from walking it
    again in every full collection (pytest itself runs five at the end of each process)."""
    gc.freeze()


SHARED_DIR = "BACKUPBOT_TEST_SHARED_DIR"
_OWNS_SHARED_DIR = pytest.StashKey[bool]()


def pytest_configure(config):
    """Make one directory this run shares with its xdist workers (they inherit the environment).

    Also let this run's Python processes (xdist workers, the installed script) keep compiled bytecode even
    where PYTHONDONTWRITEBYTECODE is set: each would otherwise compile everything it imports again.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    if SHARED_DIR not in os.environ:
        os.environ[SHARED_DIR] = tempfile.mkdtemp(prefix="backupbot-tests-")
        config.stash[_OWNS_SHARED_DIR] = True


def pytest_unconfigure(config):
    """The process that made the shared directory stops the cluster in it (if one was started) and removes it."""
    if not config.stash.get(_OWNS_SHARED_DIR, False):
        return
    shared = os.environ.pop(SHARED_DIR)
    if os.path.exists(os.path.join(shared, "postgres.json")):
        data = os.path.join(shared, "postgres", "data")
        subprocess.run(_as_postgres(["pg_ctl", "-D", data, "-m", "immediate", "stop"]), capture_output=True)
    shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> PostgresCluster:
    """A PostgreSQL 15 cluster of this test run's own, in a temporary directory on a loopback port.

    The first worker that needs it starts it (under a file lock); the others find it; the run's main
    process stops it at the end. Each test takes a schema of its own (`new_store_url`).
    """
    if not shutil.which("initdb") or not shutil.which("pg_ctl"):
        pytest.skip("PostgreSQL's initdb and pg_ctl are not on the PATH")
    shared = os.environ[SHARED_DIR]
    with open(os.path.join(shared, "postgres.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = os.path.join(shared, "postgres.json")
        if os.path.exists(found):
            with open(found) as f:
                return PostgresCluster(**json.load(f))
        cluster = _start_postgres(os.path.join(shared, "postgres"))
        with open(found, "w") as f:
            json.dump({"port": cluster.port, "socket_dir": cluster.socket_dir}, f)
        return cluster


def _start_postgres(base: str) -> PostgresCluster:
    os.mkdir(base)
    if os.geteuid() == 0:
        os.chmod(os.path.dirname(base), 0o711)  # the postgres user passes through to its own directory
        shutil.chown(base, "postgres", "postgres")
    data, log = os.path.join(base, "data"), os.path.join(base, "log")
    subprocess.run(
        _as_postgres(["initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        _as_postgres(["pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start"]), check=True, capture_output=True
    )
    return PostgresCluster(port, base)


@pytest.fixture
def pg_url(postgres) -> str:
    return postgres.new_store_url()


async def on_both(first, second, chore: str) -> None:
    """One background chore run on two bots (LiveStacks) at once, each on its own event loop."""
    await asyncio.gather(
        asyncio.wrap_future(asyncio.run_coroutine_threadsafe(first.runtime.background.run_chore(chore), first.loop)),
        asyncio.wrap_future(asyncio.run_coroutine_threadsafe(second.runtime.background.run_chore(chore), second.loop)),
    )
