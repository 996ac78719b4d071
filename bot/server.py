"""`serve` (HTTP, on uvicorn) and `socket` (Socket Mode): two doors to the same app.

The ASGI app answers `POST /slack/events` through Bolt (bodies parsed by
their real shape, see bot/slack/requests.py); `GET /healthz` 200 while alive
(cheap: no I/O); `GET /readyz` 200 when the store can be written and the
backup API has not failed its last calls (else 503 with the reason); `GET
/metrics` in Prometheus' text format; and the pipeline API under `/api/`
(bot/api.py). It runs the background loop on the ASGI lifespan. In Socket
Mode the same app serves all but Slack's requests, on BACKUPBOT_METRICS_PORT.

Shutdown (SIGTERM or SIGINT), in both modes: stop taking requests (`/healthz`
and new Slack requests answer 503; Socket Mode disconnects), let acknowledged
work finish for up to BACKUPBOT_SHUTDOWN_SECONDS, record what had to be cut
short, deliver due announcements, then exit 0. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import time

import aiohttp
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.api import PREFIX as PIPELINE_API
from bot.api import PipelineApi
from bot.backup_api import BackupApiError
from bot.config import Settings
from bot.runtime import CannotStart, Runtime, SlackRefused, build_runtime
from bot.slack.requests import SlackRequest, request_kind
from bot.store import StoreUnavailable

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": headers or [(b"content-type", b"text/plain")]}
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


API_FAILURES_NOT_READY = 3
READY_CACHE_SECONDS = 10.0
GC_YOUNG_THRESHOLD = 10_000  # allocations between collections of young objects (Python's default: 700)


def tune_gc() -> None:
    """Once started, before serving: what start made (modules, the app, the catalogs: some 60,000 objects)
    lives as long as the process, so the cyclic GC is told never to look at it again (gc.freeze), and young
    objects are collected every GC_YOUNG_THRESHOLD allocations rather than 700: a burst of requests keeps
    thousands alive, and each collection looks at every one. Under bursts of /backup list that took the
    collector's share from 0.43 to 0.12 ms of CPU per command; garbage is still freed as it is made
    (reference counting), only cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class BotAsgi:
    def __init__(self, runtime: Runtime, *, slack_over_http: bool = True, monotonic=time.monotonic):
        self.runtime = runtime
        self._monotonic = monotonic  # readiness is kept READY_CACHE_SECONDS by this clock
        self.slack_over_http = slack_over_http
        self.ready = False
        self.draining = False
        self._ready: tuple[float, tuple[int, str]] | None = None  # when readiness was last checked, and its answer
        self.pipelines = PipelineApi(
            runtime.ops,
            reporter=runtime.deps.reporter,
            inflight=runtime.deps.inflight,
            stopping=lambda: self.draining,
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            return
        elif scope["path"] == "/healthz":
            status, text = self.health()
            await _respond(send, status, text.encode())
        elif scope["path"] == "/readyz":
            status, text = await self.readiness()
            await _respond(send, status, text.encode())
        elif scope["path"] == "/metrics":
            registry = self.runtime.deps.metrics.registry
            await _respond(send, 200, generate_latest(registry), [(b"content-type", CONTENT_TYPE_LATEST.encode())])
        elif scope["path"].startswith(PIPELINE_API):
            if not self.ready and not self.draining:
                await _respond(send, 503, b'{"message": "starting"}', [(b"content-type", b"application/json")])
                return
            await self.pipelines(scope, receive, send)
        elif scope["path"] == EVENTS_PATH and scope["method"] == "POST" and self.slack_over_http:
            if self.draining or not self.ready:
                await _respond(send, 503, b"shutting down" if self.draining else b"starting")
                return
            await self._slack(scope, receive, send)
        else:
            await _respond(send, 404, b"not found")

    def health(self) -> tuple[int, str]:
        """Alive: cheap, no I/O."""
        if self.draining:
            return 503, "shutting down"
        return (200, "ok") if self.ready else (503, "starting")

    async def readiness(self) -> tuple[int, str]:
        """Ready: the store can be written and the backup API answers (probed again while it has been failing).

        Answered from a result at most READY_CACHE_SECONDS old, so however often a load balancer asks, the
        store and the backup API are asked at most once in that time.
        """
        status, text = self.health()
        if status != 200:
            return status, text
        now = self._monotonic()
        if self._ready is None or now - self._ready[0] > READY_CACHE_SECONDS:
            self._ready = (now, await self._check_ready())
        return self._ready[1]

    async def _check_ready(self) -> tuple[int, str]:
        try:
            await asyncio.to_thread(self.runtime.store.check_writable)
        except StoreUnavailable as exc:
            return 503, f"store: {exc}"
        api = self.runtime.api
        if api.failing_streak >= API_FAILURES_NOT_READY:
            try:
                await api.probe()
            except BackupApiError as exc:
                return 503, f"backup API: failed its last {api.failing_streak} calls ({exc})"
        return 200, "ready"

    async def _slack(self, scope, receive, send) -> None:
        body = (await _read_body(receive)).decode("utf-8", errors="replace")
        headers: dict[str, list[str]] = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        started = time.perf_counter()
        request = SlackRequest(body=body, query=scope.get("query_string", b"").decode("latin-1"), headers=headers)
        response = await self.runtime.app.async_dispatch(request)
        if response.status == 404 and request.body.get("type") == "app_rate_limited":
            # Signed (Bolt answers 401 otherwise), but not an event Bolt routes: Slack may stop delivering
            # events to an app that does not answer 200, so it is answered here, and logged.
            log.warning(
                "Slack is rate-limiting the events it sends the bot (minute %s)",
                request.body.get("minute_rate_limited"),
            )
            await _respond(send, 200, b"")
            return
        out = [(k.encode(), v.encode()) for k, values in response.headers.items() for v in values]
        await _respond(send, response.status, (response.body or "").encode(), out)
        self.runtime.deps.metrics.acked(request_kind(request.body), time.perf_counter() - started)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.runtime.start()
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.runtime.drain()
                await self.runtime.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class GracefulServer(uvicorn.Server):
    """uvicorn, but the first SIGTERM/SIGINT drains acknowledged work before the server stops.

    uvicorn's own handler stops at once and then re-raises the signal (exit 143);
    this one answers 503 while the work finishes, then stops and exits 0.
    """

    def __init__(self, config: uvicorn.Config, asgi: BotAsgi):
        super().__init__(config)
        self.asgi = asgi
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task | None = None

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame) -> None:
        if self.asgi.draining or self._loop is None:
            self.should_exit = self.force_exit = True
            return
        log.info("%s received: no new requests; finishing acknowledged work", signal.Signals(sig).name)
        self.asgi.draining = True
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._draining = asyncio.create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        await self.asgi.runtime.drain()
        self.should_exit = True


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind the port before anything else starts, so a port in use is one line, not a server's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotStart(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_http(settings: Settings, host: str = "0.0.0.0") -> None:
    """Serve until stopped. The port is bound and Slack asked who the bot is before anything else starts, so
    a port in use or a refused token stops the start with one line (CannotStart, SlackRefused)."""
    sock = listening_socket(host, settings.port)
    runtime = build_runtime(settings)
    try:
        asyncio.run(runtime.check_slack_token())
    except (SlackRefused, CannotStart):
        sock.close()
        asyncio.run(runtime.aclose())
        raise
    asgi = BotAsgi(runtime)
    log.info("serving Slack requests on http://%s:%s%s", host, settings.port, EVENTS_PATH)
    config = uvicorn.Config(
        asgi,
        host=host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_config=None,  # uvicorn logs through the bot's own handler: text or JSON alike
        timeout_graceful_shutdown=5,
    )
    tune_gc()
    GracefulServer(config, asgi).run(sockets=[sock])


class OnceSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, acting once per envelope: a redelivery after a reconnect is acked, not redone."""

    def __init__(self, app, app_token: str, runtime: Runtime):
        super().__init__(app, app_token)
        self.runtime = runtime

    async def handle(self, client, req: SocketModeRequest) -> None:
        if self.runtime.deps.inflight.closing:
            return  # stopping: Slack hands an unacknowledged envelope to another connection
        try:
            first = await asyncio.to_thread(self.runtime.store.first_time, f"envelope:{req.envelope_id}")
        except StoreUnavailable as exc:
            log.warning("could not check envelope %s for a redelivery (%s); handling it", req.envelope_id, exc)
            first = True
        if not first:
            log.info("envelope %s delivered again: acknowledged, not acted on twice", req.envelope_id)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)


async def socket_main(
    settings: Settings, runtime: Runtime | None = None, stop: asyncio.Event | None = None, *, tune: bool = False
) -> None:
    """Run Socket Mode until `stop` is set (SIGTERM/SIGINT set it when run from the command line); `tune`: the
    process is the bot's own (`tune_gc` once started)."""
    metrics = listening_socket("0.0.0.0", settings.metrics_port) if settings.metrics_port is not None else None
    runtime = runtime or build_runtime(settings)
    stop = stop or asyncio.Event()
    handler = None
    try:
        try:
            # The SDK retries a refused connection forever; ask once ourselves, so a bad token stops the start.
            opened = await runtime.app.client.apps_connections_open(app_token=settings.slack_app_token)
        except SlackApiError as exc:
            raise SlackRefused(
                f"Slack refused to open a Socket Mode connection ({exc.response.get('error')}): "
                "check SLACK_APP_TOKEN and SLACK_BOT_TOKEN"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CannotStart(
                f"could not reach Slack at {settings.slack_api_url} to open a Socket Mode connection "
                f"({type(exc).__name__}): check the network and SLACK_API_URL"
            ) from None
        handler = OnceSocketModeHandler(runtime.app, settings.slack_app_token, runtime)
        handler.client.wss_uri = opened["url"]
        await handler.connect_async()
        log.info("connected to Slack in Socket Mode")
        await runtime.start()  # the background loop, once the start can no longer fail
        if tune:
            tune_gc()
        await _serve_operations_while(settings, runtime, stop, metrics)
        log.info("stopping: no new envelopes; finishing acknowledged work")
        runtime.deps.inflight.closing = True
        await handler.disconnect_async()
        await runtime.drain()
    finally:
        if handler is not None:
            await handler.close_async()
        await runtime.aclose()


class _QuietServer(uvicorn.Server):
    """uvicorn beside Socket Mode: it leaves signals alone, so SIGTERM drains the socket first."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


async def _serve_operations_while(
    settings: Settings, runtime: Runtime, stop: asyncio.Event, sock: socket.socket | None
) -> None:
    """Socket Mode's /metrics, /healthz, /readyz and pipeline API on BACKUPBOT_METRICS_PORT (if set), until `stop`."""
    if sock is None:
        await stop.wait()
        return
    asgi = BotAsgi(runtime, slack_over_http=False)
    asgi.ready = True
    config = uvicorn.Config(asgi, host="0.0.0.0", port=settings.metrics_port, lifespan="off", log_config=None)
    server = _QuietServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    log.info("serving /metrics, /healthz, /readyz and the pipeline API on port %s", settings.metrics_port)
    await stop.wait()
    asgi.draining = True
    server.should_exit = True
    await serving


def run_socket(settings: Settings) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stop_or_force, stop)
        await socket_main(settings, stop=stop, tune=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _stop_or_force(stop: asyncio.Event) -> None:
    if stop.is_set():
        raise KeyboardInterrupt
    stop.set()
