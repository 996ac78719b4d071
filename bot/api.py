"""The pipeline HTTP API: a backup before every deploy, asked for by a CI job (PRODUCT.md, "Pipelines").

    POST /api/v1/backups     {"server_id": N, "description": "…"}   202 the run
    GET  /api/v1/runs/{id}                                          200 the run
    ?wait=SECONDS (0 to 900) on either: answered once the run has completed or failed, or the wait ran out.

Served by BotAsgi (bot/server.py) on the `serve` port, and on BACKUPBOT_METRICS_PORT in Socket Mode.
A call carries `Authorization: Bearer <token>` (bot/ops/pipelines.py makes and checks tokens) and, to be
safe to repeat, an `Idempotency-Key`: a repeated key answers with the first call's run, also while that
call is still sending, and takes no second backup. A run is `{"id", "status", "backup_id", ...}` with a
`message` a CI log can show; `status` is pending, in_progress, completed, failed or unknown.

Answers: 202 (POST) and 200 (GET) with the run; 400 bad input; 401 an unknown or revoked token; 403 a
server the token does not reach; 404 no such run (for this token) or path; 409 no room on the server
(the run, naming the oldest manual backup); 413 a body over MAX_BODY; 422 a key reused for another
request; 502 the backup API refused the create or could not be reached (the run: nothing was created);
503 shutting down, or the store unavailable. Every answer is JSON and every error has a `message`;
nothing unexpected shows more than a reference to the log.

Waiting long-polls the run's row (the store read off the event loop, every POLL_MAX_SECONDS at most), so
a waiting call holds no thread and never blocks another request; a shutdown answers it at once with the
run as it stands. The team is told through a RunReporter, after the answer is on its way; nothing here
knows Slack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from bot import observe
from bot.clock import utc_now
from bot.inflight import InFlight
from bot.ops import KeyReused, Operations, RunReporter, TokenRefused
from bot.ops.core import Actor
from bot.ops.pipelines import IDEMPOTENCY_KEY, MAX_DESCRIPTION, NO_ROOM, REFUSED, RunStarted, run_line
from bot.parsing import MAX_ID_DIGITS
from bot.policy import Action
from bot.store import PipelineRun, PipelineToken, RunStatus, StoreUnavailable, one_line

log = logging.getLogger(__name__)

PREFIX = "/api/"
BACKUPS_PATH = "/api/v1/backups"
RUN_PATH = re.compile(r"/api/v1/runs/([^/]+)")
MAX_BODY = 16 * 1024  # a description is at most 255 characters: 16 KiB is plenty
MAX_WAIT = 900.0
FIRST_ANSWER_SECONDS = 30.0  # a repeated key waits this long for the first call's create to be answered
POLL_MIN_SECONDS, POLL_MAX_SECONDS = 0.2, 2.0
FIELDS = ("server_id", "description")
JSON = [(b"content-type", b"application/json")]


class Refusal(Exception):
    """An answer other than the run: an HTTP status and a message (and headers)."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


@dataclass(frozen=True)
class Call:
    """What a pipeline's request asked for, once read and checked."""

    server_id: int
    description: str
    key: str | None
    wait: float


class PipelineApi:
    """The ASGI app for everything under /api/ (BotAsgi hands those requests here)."""

    def __init__(
        self,
        ops: Operations,
        *,
        reporter: RunReporter | None = None,
        inflight: InFlight | None = None,
        stopping: Callable[[], bool] = lambda: False,
        clock=utc_now,
        poll_max_seconds: float = POLL_MAX_SECONDS,
    ):
        self.ops = ops
        self.reporter = reporter
        self.inflight = inflight or InFlight()
        self.stopping = stopping  # the bot is shutting down: no new runs, waits answered at once
        self._clock = clock
        self.poll_max_seconds = poll_max_seconds
        self._telling: set[asyncio.Task] = set()

    async def __call__(self, scope, receive, send) -> None:
        with observe.serving("pipeline", "") as context:
            headers: list[tuple[bytes, bytes]] = []
            try:
                status, body = await self._route(scope, receive)
            except Refusal as refusal:
                status, body, headers = refusal.status, {"message": refusal.message}, refusal.headers
            except StoreUnavailable as exc:
                log.warning("pipeline API: the store is unavailable: %s", exc)
                status, body = 503, {"message": f"the bot's store is unavailable ({exc}); try again in a minute"}
                headers = [(b"retry-after", b"30")]
            except Exception:
                log.exception("pipeline API: unexpected error (ref %s)", context.request_id)
                message = (
                    f"something went wrong inside the bot; the admins can find it in its log as {context.request_id}"
                )
                status, body = 500, {"message": message}
            who = context.user_id or "no known token"
            path = one_line(scope["path"][:200])  # from outside: one line, so it cannot forge another
            log.info("pipeline API: %s %s → %s (%s)", scope["method"], path, status, who)
        payload = json.dumps(body, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": status, "headers": JSON + headers})
        await send({"type": "http.response.body", "body": payload})

    async def _route(self, scope, receive) -> tuple[int, dict]:
        path, method = scope["path"], scope["method"]
        if path == BACKUPS_PATH:
            if method != "POST":
                raise Refusal(405, f"{path} takes POST", [(b"allow", b"POST")])
            return await self._post(scope, receive)
        found = RUN_PATH.fullmatch(path)
        if found:
            if method != "GET":
                raise Refusal(405, f"{path} takes GET", [(b"allow", b"GET")])
            return await self._get(scope, found.group(1))
        raise Refusal(404, f"there is no {path[:100]}: the pipeline API is POST {BACKUPS_PATH} and GET /api/v1/runs/ID")

    # --- POST /api/v1/backups ------------------------------------------------------

    async def _post(self, scope, receive) -> tuple[int, dict]:
        if self.stopping():
            raise Refusal(503, "the bot is shutting down; try again in a minute", [(b"retry-after", b"30")])
        headers = _headers(scope)
        token = await self._authenticate(headers, Action.CREATE)
        actor = Actor.token(token.name)
        observe.current().user_id = actor.user_id
        body = b""
        try:
            body = await _read_body(receive, headers)
            call = _call(scope, headers, body)
        except Refusal as refusal:  # bad input from a good token: audited as the token, like every call
            await self.ops.pipeline_refused(token, f"bad request: {refusal.message}", _server_in(body))
            raise
        async with self.inflight.track():  # a shutdown lets the create finish, or records it as interrupted
            try:
                started = await self.ops.pipeline_backup(
                    actor, call.server_id, call.description, key=call.key, reach=token.servers
                )
            except TokenRefused as exc:
                raise Refusal(403, f"this token does not reach server {exc.server_id}") from None
            except KeyReused as exc:
                raise Refusal(
                    422, f"this Idempotency-Key was used for another request (run {exc.run_id}): use a new key"
                ) from None
        if started.new:
            self._tell(started)
        run = started.run
        if not started.new and run.status is RunStatus.PENDING:
            run = await self._wait(actor, run, max(call.wait, FIRST_ANSWER_SECONDS), first_answer=True)
        run = await self._wait(actor, run, call.wait)
        return _status_of(run, 202), self._render(run)

    def _tell(self, started: RunStarted) -> None:
        """Tell the team of a new run while the answer goes out (kept as acknowledged work for a shutdown)."""
        if self.reporter is None:
            return

        async def tell() -> None:
            async with self.inflight.track():
                try:
                    await self.reporter.run_started(started.run)
                except Exception:
                    log.exception("could not tell the team of pipeline run %s", started.run.id)

        task = asyncio.create_task(tell(), name=f"tell-run-{started.run.id}")
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    # --- GET /api/v1/runs/{id} -------------------------------------------------------

    async def _get(self, scope, run_id: str) -> tuple[int, dict]:
        headers = _headers(scope)
        token = await self._authenticate(headers, None)
        actor = Actor.token(token.name)
        observe.current().user_id = actor.user_id
        wait = _wait_of(scope)
        run = await self.ops.pipeline_run(actor, run_id)
        if run is None:
            raise Refusal(404, f"there is no run {run_id[:40]!r} for this token")
        run = await self._wait(actor, run, wait)
        return _status_of(run, 200), self._render(run)

    # --- the parts -------------------------------------------------------------------

    async def _authenticate(self, headers: dict[str, str], auditing: Action | None) -> PipelineToken:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        challenge = [(b"www-authenticate", b'Bearer realm="vps-backup-bot"')]
        if scheme.lower() != "bearer" or not presented.strip():
            raise Refusal(401, "send the pipeline's token as `Authorization: Bearer <token>`", challenge)
        try:
            return await self.ops.authenticate(presented.strip(), auditing=auditing)
        except TokenRefused as exc:
            why = "this token was revoked" if exc.revoked else "this token is not known to the bot"
            raise Refusal(401, f"{why}: an admin makes one with `vps-backup-bot token add`", challenge) from None

    async def _wait(self, actor: Actor, run: PipelineRun, seconds: float, *, first_answer: bool = False) -> PipelineRun:
        """The run once it is final (or, `first_answer`, once its create has an answer), or as it stands when
        `seconds` have passed or the bot is stopping. Long-polls the store; holds nothing while it sleeps."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + seconds, POLL_MIN_SECONDS
        while not self.stopping() and not (run.status is not RunStatus.PENDING if first_answer else run.status.final):
            left = deadline - loop.time()
            if left <= 0:
                break
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, self.poll_max_seconds)
            run = await self.ops.pipeline_run(actor, run.id) or run
        return run

    def _render(self, run: PipelineRun) -> dict[str, Any]:
        body = {
            "id": run.id,
            "status": run.status.value,
            "backup_id": run.backup_id,
            "server_id": run.server_id,
            "server_name": run.server_name,
            "description": run.description,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
            "message": run_line(run, self._clock()),
        }
        if run.refusal == NO_ROOM:
            body["oldest_manual_backup"] = run.oldest
        return body


def _status_of(run: PipelineRun, ok: int) -> int:
    """409 when the server had no room; 502 when the backup API refused or could not be reached; else `ok`."""
    if run.status is RunStatus.FAILED and run.refusal == NO_ROOM:
        return 409
    if run.status is RunStatus.FAILED and run.refusal == REFUSED:
        return 502
    return ok


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _read_body(receive, headers: dict[str, str]) -> bytes:
    """The request's body, or 413 past MAX_BODY (refused before reading when it says so up front)."""
    too_large = Refusal(413, f"the body is larger than {MAX_BODY} bytes: send only server_id and description")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "the request ended before its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _wait_of(scope) -> float:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if "wait" not in query:
        return 0.0
    text = query["wait"][-1]
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT:
        raise Refusal(400, f"wait must be a number of seconds from 0 to {MAX_WAIT:g}, not {text[:20]!r}")
    return seconds


def _call(scope, headers: dict[str, str], body: bytes) -> Call:
    """The request read and checked: 400 with what was wrong and what to send instead."""
    wait = _wait_of(scope)
    key = headers.get("idempotency-key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise Refusal(400, "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, 'the body is not JSON: send {"server_id": 12345, "description": "…"}') from None
    if not isinstance(data, dict):
        raise Refusal(400, 'the body must be a JSON object: {"server_id": 12345, "description": "…"}')
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise Refusal(400, f"unknown field {unknown[0][:40]!r}: send only server_id and description")
    server_id = data.get("server_id")
    if server_id is None:
        raise Refusal(400, "server_id is missing: the ID of the server to back up, e.g. 12345")
    if isinstance(server_id, bool) or not isinstance(server_id, int) or not 0 < server_id < 10**MAX_ID_DIGITS:
        raise Refusal(400, f"server_id must be a whole number above 0, not {json.dumps(server_id)[:40]}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise Refusal(400, "description must be a string")
    if len(description) > MAX_DESCRIPTION:
        raise Refusal(400, f"description is {len(description)} characters: at most {MAX_DESCRIPTION}")
    if "\x00" in description:
        raise Refusal(400, "description must not contain NUL characters")
    return Call(server_id, description, key, wait)


def _server_in(body: bytes) -> int | None:
    """The server a refused request named, if it named one well enough to audit."""
    try:
        server_id = json.loads(body).get("server_id")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    valid = isinstance(server_id, int) and not isinstance(server_id, bool) and 0 < server_id < 10**MAX_ID_DIGITS
    return server_id if valid else None
