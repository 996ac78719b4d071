"""A simulator of the VPS.org backup API, faithful to shared/vps-backup-api.md.

`BackupSimulator` holds the state and answers requests as the provider would:
filters, 400 on bad parameters, 401 on a missing or wrong token, 404s, at most
10 manual backups per server, `in_progress` turning `completed` after a delay
(size filled in then), automatic backups gone once they expire, manual ones
kept. It is thread-safe, and reachable two ways:

* `SimulatorTransport`: an httpx transport, for tests and `console --demo`;
* `start_simulator_server()`: an aiohttp HTTP server, for `vps-backup-bot fake-api`.

Knobs for tests and benchmarks: `latency` (seconds added to every request),
`fail_next(n, status)` and `hang_next(n)` (the request is not acted on),
`act_then_fail_next(n, status)` and `act_then_hang_next(n)` (it is acted on, then
answered with a failure, or not at all: what a write whose outcome is unknown
looks like from outside), and `on_handled`, called once a request has been
acted on (a test can kill the bot right then). The HTTP server also takes the
knobs at `POST /_simulator/faults` (query parameters or a JSON object; see
`apply_faults`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx

API_PREFIX = "/api/v1/"
MANUAL_LIMIT = 10
AUTOMATIC_RETENTION = timedelta(days=30)
HANG_SECONDS = 3600.0
CREATED_MESSAGE = "Backup is being created. This may take several minutes depending on server size."

SAMPLE_SERVERS = {12345: "web-server-01", 12346: "db-server-01", 12347: "staging-01"}


@dataclass
class SimBackup:
    id: int
    server_id: int
    backup_type: str
    status: str
    size_mb: int | None
    created_at: datetime
    expires_at: datetime | None
    description: str
    completes_at: datetime | None = None
    final_status: str = "completed"
    final_size_mb: int = 0
    created_at_text: str | None = None  # shown instead of created_at (a time without a zone, say)


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as it is instead of `body` as JSON (a garbled answer)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        """The body as bytes, and the headers to send with it."""
        if self.raw is not None:
            return self.raw, {"content-type": "text/html", **self.headers}
        if self.body is None:
            return b"", dict(self.headers)
        return json.dumps(self.body).encode(), {"content-type": "application/json", **self.headers}


@dataclass
class _Faults:
    fail: list[tuple[int, str | None, float | None]] = field(default_factory=list)
    hang: int = 0
    garble: list[tuple[str, bytes]] = field(default_factory=list)
    after: list[tuple[int | None, str | None]] = field(default_factory=list)  # acted on, then (status | hang)


class BackupSimulator:
    def __init__(
        self,
        *,
        token: str | None = None,
        completion_seconds: float = 20.0,
        latency: float = 0.0,
        clock: Callable[[], datetime] | None = None,
        seed: bool = True,
    ):
        self.token = token
        self.completion_seconds = completion_seconds
        self.latency = latency
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._servers: dict[int, str] = {}
        self._backups: dict[int, SimBackup] = {}
        self._next_id = 5001
        self._faults = _Faults()
        self.requests: list[tuple[str, str]] = []
        self.restores: list[tuple[int, int]] = []
        self.on_request: Callable[[str, str], None] | None = None  # called as each request arrives (tests)
        self.on_handled: Callable[[str, str, int], None] | None = None  # called once one has been acted on
        if seed:
            self._seed()

    # --- set-up and knobs -------------------------------------------------

    def add_server(self, server_id: int, name: str) -> None:
        with self._lock:
            self._servers[server_id] = name

    def add_backup(
        self,
        server_id: int,
        *,
        backup_type: str = "manual",
        status: str = "completed",
        age: timedelta = timedelta(0),
        size_mb: int | None = 2048,
        description: str = "",
        created_at_text: str | None = None,
    ) -> int:
        with self._lock:
            created = self._clock() - age
            expires = created + AUTOMATIC_RETENTION if backup_type == "automatic" else None
            backup = SimBackup(
                id=self._next_id,
                server_id=server_id,
                backup_type=backup_type,
                status=status,
                size_mb=size_mb if status == "completed" else None,
                created_at=created,
                expires_at=expires,
                description=description,
                created_at_text=created_at_text,
            )
            self._backups[backup.id] = backup
            self._next_id += 1
            return backup.id

    def finish(self, backup_id: int, status: str = "completed", size_mb: int = 3072) -> None:
        """Make an in-progress backup end now, with `status` (e.g. "failed")."""
        with self._lock:
            backup = self._backups[backup_id]
            backup.status = status
            backup.size_mb = size_mb if status == "completed" else None
            backup.completes_at = None

    def end_with(self, backup_id: int, status: str) -> None:
        """Let an in-progress backup run its course but end with `status` instead of completed."""
        with self._lock:
            self._backups[backup_id].final_status = status

    def remove(self, backup_id: int) -> None:
        with self._lock:
            self._backups.pop(backup_id, None)

    def fail_next(
        self, count: int, status: int = 503, method: str | None = None, retry_after: float | None = None
    ) -> None:
        """The next `count` requests (of `method`, if given) answer `status` (with Retry-After, if given)."""
        with self._lock:
            self._faults.fail.extend([(status, method, retry_after)] * count)

    def garble_next(self, method: str, raw: bytes) -> None:
        """The next `method` request does what it asks, but is answered with `raw` (HTML, a body cut short)."""
        with self._lock:
            self._faults.garble.append((method, raw))

    def hang_next(self, count: int = 1) -> None:
        with self._lock:
            self._faults.hang += count

    def act_then_fail_next(self, count: int = 1, status: int = 502, method: str | None = None) -> None:
        """The next `count` requests (of `method`) are acted on, then answered `status`: the write happened."""
        with self._lock:
            self._faults.after.extend([(status, method)] * count)

    def act_then_hang_next(self, count: int = 1, method: str | None = None) -> None:
        """The next `count` requests (of `method`) are acted on, then never answered: the write happened."""
        with self._lock:
            self._faults.after.extend([(None, method)] * count)

    def take_after(self, method: str) -> tuple[bool, int | None]:
        """Whether an act-then-fail fault applies to this request, and its status (None: hang)."""
        with self._lock:
            for index, (status, only) in enumerate(self._faults.after):
                if only is None or only == method:
                    del self._faults.after[index]
                    return True, status
            return False, None

    def count(self, method: str, path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(path_prefix))

    # --- the API ----------------------------------------------------------

    def take_fault(self, method: str, path: str) -> tuple[Answer | None, bool]:
        """The answer a pending fault injects, and whether the request should hang."""
        with self._lock:
            if self._faults.hang:
                self._faults.hang -= 1
                self.requests.append((method, path))
                return None, True
            for index, (status, only, retry_after) in enumerate(self._faults.fail):
                if only is None or only == method:
                    del self._faults.fail[index]
                    self.requests.append((method, path))
                    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
                    return Answer(status, {"detail": "Service temporarily unavailable."}, headers), False
            return None, False

    def take_garble(self, method: str) -> bytes | None:
        with self._lock:
            for index, (only, raw) in enumerate(self._faults.garble):
                if only == method:
                    del self._faults.garble[index]
                    return raw
            return None

    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Answer:
        """Answer one request (no latency, no faults: see `respond`)."""
        with self._lock:
            self.requests.append((method, path))
            if not self.authorized(headers.get("authorization", "")):
                return Answer(401, {"detail": "Authentication credentials were not provided or are invalid."})
            self._advance()
            if not path.startswith(API_PREFIX):
                return Answer(404, {"detail": "Not found."})
            parts = [p for p in path[len(API_PREFIX) :].split("/") if p]
            if parts == ["backups"] and method == "GET":
                return self._list(parse_qs(query))
            if parts == ["backups"] and method == "POST":
                return self._create(body)
            if len(parts) == 2 and parts[0] == "backups" and method == "DELETE":
                return self._delete(parts[1])
            if len(parts) == 3 and parts[0] == "servers" and parts[2] == "restore" and method == "POST":
                return self._restore(parts[1], body)
            if parts and parts[0] in ("backups", "servers"):
                return Answer(405, {"detail": f'Method "{method}" not allowed.'})
            return Answer(404, {"detail": "Not found."})

    def authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.token is None or token.strip() == self.token

    def _advance(self) -> None:
        now = self._clock()
        for backup in list(self._backups.values()):
            if backup.completes_at is not None and backup.completes_at <= now:
                backup.status = backup.final_status
                backup.size_mb = backup.final_size_mb if backup.final_status == "completed" else None
                backup.completes_at = None
            if backup.expires_at is not None and backup.expires_at <= now:
                del self._backups[backup.id]

    def _list(self, query: dict[str, list[str]]) -> Answer:
        server_filter = query.get("server_id", [None])[-1]
        type_filter = query.get("backup_type", [None])[-1]
        if server_filter is not None and not _is_number(server_filter):
            return Answer(400, {"server_id": ["A valid integer is required."]})
        if type_filter is not None and type_filter not in ("manual", "automatic"):
            return Answer(400, {"backup_type": [f'"{type_filter}" is not a valid choice.']})
        results = [
            self._render(b)
            for b in self._backups.values()
            if (server_filter is None or b.server_id == int(server_filter))
            and (type_filter is None or b.backup_type == type_filter)
        ]
        random.Random(len(results)).shuffle(results)
        return Answer(200, {"count": len(results), "results": results})

    def _create(self, body: bytes) -> Answer:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return Answer(400, {"detail": "JSON parse error."})
        if not isinstance(data, dict):
            return Answer(400, {"detail": "Invalid data. Expected a dictionary."})
        server_id = data.get("server_id")
        description = data.get("description", "")
        if server_id is None:
            return Answer(400, {"server_id": ["This field is required."]})
        if isinstance(server_id, bool) or not isinstance(server_id, int):
            return Answer(400, {"server_id": ["A valid integer is required."]})
        if not isinstance(description, str) or len(description) > 255:
            return Answer(400, {"description": ["Ensure this field is a string of no more than 255 characters."]})
        if server_id not in self._servers:
            return Answer(404, {"detail": "Server not found."})
        manual = sum(1 for b in self._backups.values() if b.server_id == server_id and b.backup_type == "manual")
        if manual >= MANUAL_LIMIT:
            return Answer(
                400,
                {"detail": f"Manual backup limit reached: at most {MANUAL_LIMIT} manual backups per server."},
            )
        now = self._clock()
        backup = SimBackup(
            id=self._next_id,
            server_id=server_id,
            backup_type="manual",
            status="in_progress",
            size_mb=None,
            created_at=now,
            expires_at=None,
            description=description,
            completes_at=now + timedelta(seconds=self.completion_seconds),
            final_size_mb=random.Random(self._next_id).randint(1500, 9000),
        )
        self._backups[backup.id] = backup
        self._next_id += 1
        return Answer(201, {**self._render(backup), "message": CREATED_MESSAGE})

    def _delete(self, raw_id: str) -> Answer:
        if not _is_number(raw_id) or int(raw_id) not in self._backups:
            return Answer(404, {"detail": "Not found."})
        del self._backups[int(raw_id)]
        return Answer(204)

    def _restore(self, raw_server: str, body: bytes) -> Answer:
        if not _is_number(raw_server) or int(raw_server) not in self._servers:
            return Answer(404, {"detail": "Server not found."})
        try:
            data = json.loads(body or b"null")
        except ValueError:
            return Answer(400, {"detail": "JSON parse error."})
        backup_id = data.get("backup_id") if isinstance(data, dict) else None
        if isinstance(backup_id, bool) or not isinstance(backup_id, int):
            return Answer(400, {"backup_id": ["A valid integer is required."]})
        backup = self._backups.get(backup_id)
        if backup is None:
            return Answer(404, {"detail": "Backup not found."})
        if backup.status != "completed":
            return Answer(400, {"detail": f"Backup {backup_id} is {backup.status} and cannot be restored."})
        self.restores.append((int(raw_server), backup_id))
        return Answer(202, {"message": "Restore started.", "server_id": int(raw_server), "backup_id": backup_id})

    def _render(self, b: SimBackup) -> dict[str, Any]:
        return {
            "id": b.id,
            "server": {"id": b.server_id, "name": self._servers.get(b.server_id, str(b.server_id))},
            "backup_type": b.backup_type,
            "status": b.status,
            "size_mb": b.size_mb,
            "created_at": b.created_at_text or _iso(b.created_at),
            "expires_at": _iso(b.expires_at) if b.expires_at else None,
            "description": b.description,
        }

    def _seed(self) -> None:
        """The sample servers and backups shared by `console --demo` and `fake-api`."""
        for server_id, name in SAMPLE_SERVERS.items():
            self._servers[server_id] = name
        for server_id in SAMPLE_SERVERS:
            for day in range(7):
                self.add_backup(
                    server_id,
                    backup_type="automatic",
                    age=timedelta(days=day, hours=(self._clock().hour - 3) % 24),
                    size_mb=4000 + 37 * day + server_id % 100,
                    description="Automatic daily backup",
                )
        self.add_backup(12345, age=timedelta(days=2, hours=5), size_mb=4456, description="Pre-update backup")
        self.add_backup(12345, age=timedelta(hours=20), size_mb=4490, description="Before nginx 1.27 upgrade")
        for n in range(8):
            self.add_backup(
                12346,
                age=timedelta(days=10 - n),
                size_mb=12000 + 100 * n,
                description=f"Before schema migration {n + 1}",
            )
        self.add_backup(12347, age=timedelta(hours=3), size_mb=900, description="Demo data <reset> & reload")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def respond(sim: BackupSimulator, method: str, path: str, query: str, headers, body: bytes) -> Answer:
    """Apply latency and injected faults, then answer: the behaviour both front doors share."""
    if sim.on_request is not None:
        sim.on_request(method, path)
    if sim.latency:
        await asyncio.sleep(sim.latency)
    fault, hang = sim.take_fault(method, path)
    if hang:
        await asyncio.sleep(HANG_SECONDS)
    if fault is not None:
        return fault
    lowered = {k.lower(): v for k, v in headers.items()}
    answer = sim.handle(method, path, query, lowered, body)
    if sim.on_handled is not None:
        sim.on_handled(method, path, answer.status)
    after, status = sim.take_after(method)
    if after and status is None:
        await asyncio.sleep(HANG_SECONDS)
    if after:
        return Answer(status, {"detail": "Bad gateway."})
    garbled = sim.take_garble(method) if 200 <= answer.status < 300 else None
    return answer if garbled is None else Answer(answer.status, raw=garbled)


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Serve httpx requests from a BackupSimulator in-process.

    A hang honours the request's own read timeout, as a socket would, so a
    client's timeout handling is exercised for real.
    """

    def __init__(self, sim: BackupSimulator):
        self.sim = sim

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        timeout = (request.extensions.get("timeout") or {}).get("read")
        call = respond(self.sim, request.method, request.url.path, request.url.query.decode(), request.headers, body)
        try:
            async with asyncio.timeout(timeout):  # not wait_for: in Python 3.11 it can swallow a cancellation
                answer = await call
        except TimeoutError:
            raise httpx.ReadTimeout("simulated API did not answer", request=request) from None
        content, headers = answer.encoded()
        return httpx.Response(answer.status, content=content, headers=headers, request=request)


def create_web_app(sim: BackupSimulator):
    """The simulator as an aiohttp web application, under /api/v1/."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = await respond(sim, request.method, request.path, request.query_string, request.headers, body)
        content, headers = answer.encoded()
        return web.Response(status=answer.status, body=content or None, headers=headers)

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def faults(request: web.Request) -> web.Response:
        """POST /_simulator/faults: the knobs over HTTP, for staging. Query parameters or a JSON object:
        fail=N, status=S (default 503), method=M, hang=N, latency=SECONDS. With --token, it needs the token too."""
        if sim.token is not None and not sim.authorized(request.headers.get("Authorization", "")):
            return web.json_response(
                {"detail": "Authentication credentials were not provided or are invalid."}, status=401
            )
        knobs: dict[str, object] = dict(request.query)
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"detail": "the body is not JSON"}, status=400)
            if not isinstance(body, dict):
                return web.json_response({"detail": "the body must be a JSON object"}, status=400)
            knobs.update(body)
        try:
            apply_faults(sim, knobs)
        except ValueError as exc:
            return web.json_response({"detail": str(exc)}, status=400)
        return web.json_response({"latency": sim.latency})

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_post("/_simulator/faults", faults)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def apply_faults(sim: BackupSimulator, knobs: dict) -> None:
    """Set the fault knobs named in `knobs`; ValueError names the first one that is not valid."""
    names = {"fail", "status", "method", "hang", "act_then_fail", "act_then_hang", "latency"}
    unknown = set(knobs) - names
    if unknown:
        raise ValueError(f"unknown knob {sorted(unknown)[0]!r}: use {', '.join(sorted(names))}")

    def count(name: str) -> int:
        value = knobs[name]
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _is_number(value))):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        return int(value)

    if "latency" in knobs:
        try:
            latency = float(knobs["latency"])
        except (TypeError, ValueError):
            raise ValueError(f"latency must be a number of seconds, not {knobs['latency']!r}") from None
        if not 0 <= latency <= HANG_SECONDS:
            raise ValueError(f"latency must be from 0 to {HANG_SECONDS:g} seconds, not {knobs['latency']!r}")
    status = count("status") if "status" in knobs else 503
    if not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status, not {status}")
    method = knobs.get("method")
    if method is not None and method not in ("GET", "POST", "DELETE"):
        raise ValueError(f"method must be GET, POST or DELETE, not {method!r}")
    if "fail" in knobs:
        sim.fail_next(count("fail"), status, method)
    if "hang" in knobs:
        sim.hang_next(count("hang"))
    if "act_then_fail" in knobs:
        sim.act_then_fail_next(count("act_then_fail"), status if "status" in knobs else 502, method)
    if "act_then_hang" in knobs:
        sim.act_then_hang_next(count("act_then_hang"), method)
    if "latency" in knobs:
        sim.latency = latency


async def start_simulator_server(sim: BackupSimulator, host: str = "127.0.0.1", port: int = 0):
    """Start the HTTP simulator on the running loop; returns (runner, base_url)."""
    from aiohttp import web

    runner = web.AppRunner(create_web_app(sim), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    return runner, f"http://{host}:{bound}/api/v1"


def run_simulator_forever(sim: BackupSimulator, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    async def main() -> None:
        runner, url = await start_simulator_server(sim, host, port)
        on_ready(url)
        try:
            while True:
                await asyncio.sleep(HANG_SECONDS)
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
