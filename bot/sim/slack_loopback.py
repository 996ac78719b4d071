"""A loopback stand-in for Slack: Web API, response_url and Socket Mode, on 127.0.0.1.

It records every Web API call and every `response_url` post, so the console
can render what the bot said and tests can assert on it; it answers as Slack
would (`ok`, ids, `ts`), can be told to fail a method with a Slack error, and
speaks Socket Mode's envelope protocol on a WebSocket. Requests to the bot are
signed by `sign()` exactly as Slack signs them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_USER = "UBACKUPBOT"
TEAM = "T0LOOPBACK"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with a request: `v0=` + HMAC-SHA256 of `v0:{ts}:{body}`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Record:
    """One thing the bot sent to Slack: a Web API call (`api`) or a response_url post (`response`)."""

    kind: str
    name: str
    data: dict[str, Any]
    seq: int = 0
    at: float = field(default_factory=time.monotonic)


class Recorder:
    """Thread-safe record of what the bot sent, with waiting for a condition."""

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._cond = threading.Condition()
        self._seq = itertools.count(1)

    def add(self, record: Record) -> None:
        with self._cond:
            record.seq = next(self._seq)
            self._records.append(record)
            self._cond.notify_all()

    def all(self) -> list[Record]:
        with self._cond:
            return list(self._records)

    def since(self, seq: int) -> list[Record]:
        with self._cond:
            return [r for r in self._records if r.seq > seq]

    def last_seq(self) -> int:
        with self._cond:
            return self._records[-1].seq if self._records else 0

    def api(self, method: str) -> list[dict]:
        return [r.data for r in self.all() if r.kind == "api" and r.name == method]

    def responses(self, key: str | None = None) -> list[dict]:
        return [r.data for r in self.all() if r.kind == "response" and (key is None or r.name == key)]

    def wait_for(self, predicate: Callable[[list[Record]], Any], timeout: float = 10.0) -> Any:
        """Block until predicate(records) is truthy; returns its value, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self._records))
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("Slack loopback: the expected call never came")
                self._cond.wait(remaining)


class LoopbackSlack:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = 0
        self.recorder = Recorder()
        self.failures: dict[str, str] = {}
        self.rate_limits: dict[str, list[float]] = {}
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future] = {}
        self._ts = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, key: str | None = None) -> str:
        return f"{self.base_url}/response/{key or uuid.uuid4().hex}"

    def fail(self, method: str, error: str) -> None:
        """Answer every later call of `method` with `{"ok": false, "error": error}`."""
        self.failures[method] = error

    def rate_limit(self, method: str, times: int = 1, retry_after: float = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429, `ratelimited` and Retry-After, as Slack does."""
        self.rate_limits.setdefault(method, []).extend([retry_after] * times)

    async def start(self) -> LoopbackSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        if request.content_type == "application/json":
            data = json.loads(raw or b"{}")
        else:
            data = dict(parse_qsl(raw.decode()))
            for key in ("blocks", "view", "attachments"):
                if isinstance(data.get(key), str):
                    data[key] = json.loads(data[key])
        self.recorder.add(Record("api", method, data))
        if self.rate_limits.get(method):
            retry_after = self.rate_limits[method].pop(0)
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": f"{retry_after:g}"}
            )
        if method in self.failures:
            return web.json_response({"ok": False, "error": self.failures[method]})
        return web.json_response(self._answer(method, data))

    def _answer(self, method: str, data: dict) -> dict:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://loopback.slack.test/",
                "team": "Loopback",
                "user": "backupbot",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": "BBACKUPBOT",
            }
        if method == "chat.postMessage":
            return {
                "ok": True,
                "channel": data.get("channel"),
                "ts": ts,
                "message": {"text": data.get("text"), "ts": ts},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}
        if method in ("views.open", "views.update", "views.push"):
            view = data.get("view") or {}
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):08d}"}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://{self.host}:{self.port}/socket"}
        return {"ok": True}

    async def _response(self, request: web.Request) -> web.Response:
        data = json.loads(await request.read() or b"{}")
        self.recorder.add(Record("response", request.match_info["key"], data))
        return web.Response(text="ok")

    # --- Socket Mode -------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "connection_info": {"app_id": "A0LOOPBACK"},
                "debug_info": {"host": "loopback"},
            }
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                self.recorder.add(Record("socket_ack", data.get("envelope_id", ""), data))
                future = self._acks.pop(data.get("envelope_id", ""), None)
                if future and not future.done():
                    future.set_result(data)
        finally:
            self._sockets.remove(ws)
        return ws

    async def wait_for_socket(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._sockets:
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode client connected")
            await asyncio.sleep(0.01)

    @property
    def connections(self) -> int:
        return len(self._sockets)

    async def send_envelope(
        self,
        kind: str,
        payload: dict,
        timeout: float = 10.0,
        envelope_id: str | None = None,
        connection: int | None = None,
    ) -> dict:
        """Push one envelope to one connected client; returns its ack `{envelope_id, payload?}`.

        With several connections (several bots, as Slack allows), each envelope goes to one of them:
        `connection` (an index, in the order they connected), else the newest. The same `envelope_id`
        twice is how Slack redelivers an envelope after a reconnect.
        """
        await self.wait_for_socket(timeout)
        envelope_id = envelope_id or uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        target = self._sockets[-1 if connection is None else connection % len(self._sockets)]
        await target.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await asyncio.wait_for(future, timeout)


MENTION = re.compile(r"&lt;([@#][UWC][A-Z0-9]+(?:\|[^&<>]*)?)&gt;")


def escape_like_slack(typed: str) -> str:
    """Command text as Slack sends it: `&`, `<`, `>` escaped, mentions kept as `<@U123|name>`."""
    escaped = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return MENTION.sub(r"<\1>", escaped)


def slash_command_body(
    text: str, *, user_id: str, channel_id: str, response_url: str, command: str = "/backup"
) -> dict[str, str]:
    """The form fields Slack posts for a slash command; `text` is as the person typed it."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "team_domain": "loopback",
        "channel_id": channel_id,
        "channel_name": "ops",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": escape_like_slack(text),
        "api_app_id": "A0LOOPBACK",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.trigger",
    }


def block_actions_payload(
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    action: dict,
    block_id: str,
    message: dict | None = None,
    view: dict | None = None,
) -> dict:
    """The payload Slack sends when a button is pressed; pressed on a view (the Home tab), it has no response_url."""
    if view is not None:
        return {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM},
            "api_app_id": "A0LOOPBACK",
            "token": "legacy-verification-token",
            "container": {"type": "view", "view_id": view.get("id", "V0HOME")},
            "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.trigger",
            "team": {"id": TEAM, "domain": "loopback"},
            "view": view,
            "actions": [_action(action, block_id)],
        }
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM},
        "api_app_id": "A0LOOPBACK",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": "0", "channel_id": channel_id, "is_ephemeral": True},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.trigger",
        "team": {"id": TEAM, "domain": "loopback"},
        "channel": {"id": channel_id, "name": "ops"},
        "response_url": response_url,
        "actions": [{**_action(action, block_id), "text": action.get("text")}],
        **({"message": message} if message else {}),
    }


def _action(action: dict, block_id: str) -> dict:
    """One pressed element as Slack sends it: a button's value, or an overflow menu's chosen option."""
    pressed = {
        "type": action.get("type", "button"),
        "action_id": action["action_id"],
        "block_id": block_id,
        "action_ts": f"{time.time():.6f}",
    }
    if pressed["type"] == "overflow":
        return {**pressed, "selected_option": action["selected_option"]}
    return {**pressed, "value": action.get("value", "")}


def view_submission_payload(*, user_id: str, view: dict, values: dict[str, dict[str, str | list[str]]]) -> dict:
    """The payload Slack sends when a modal is submitted; values: {block_id: {action_id: text}}, or, for
    checkboxes, {block_id: {action_id: [the values of the options ticked]}}."""
    state = {
        block: {action: _input_state(view, block, value) for action, value in actions.items()}
        for block, actions in values.items()
    }
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "loopback"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": TEAM},
        "api_app_id": "A0LOOPBACK",
        "token": "legacy-verification-token",
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.trigger",
        "view": {**view, "id": view.get("id", "V0LOOPBACK"), "state": {"values": state}},
    }


def _input_state(view: dict, block_id: str, value: str | list[str]) -> dict:
    if isinstance(value, str):
        return {"type": "plain_text_input", "value": value}
    options = next(
        (b["element"].get("options", []) for b in view.get("blocks", []) if b.get("block_id") == block_id), []
    )
    return {"type": "checkboxes", "selected_options": [o for o in options if o.get("value") in value]}


def app_home_opened_body(user_id: str, event_id: str | None = None) -> dict:
    """The Events API callback Slack sends when someone opens the bot's Home tab."""
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0LOOPBACK",
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home"},
    }
