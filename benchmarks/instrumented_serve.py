"""`vps-backup-bot serve`, unchanged, with counters around it: for benchmarks/profile_list.py only.

    python benchmarks/instrumented_serve.py serve --host 127.0.0.1 --port N     (environment as for serve)

Counts, each split by whether it happened while serving a Slack request (a context variable set around
`BotAsgi._slack`; tasks and `to_thread` workers inherit it) or in the background loop:
* thread hops: every `asyncio.to_thread` call, by function;
* reads at once: every read the store answered on the event loop (`SqliteStore.read_now`), by function;
* executor submits: every `ThreadPoolExecutor.submit`, whoever calls it;
* SQL statements: every statement SQLite runs on a connection the bot opened (`set_trace_callback`),
  literals replaced by `?` so alike statements count together;
* HTTP requests made with aiohttp (under httpx too), by host and path;
* log records, by logger and level.
`GET /_bench/counts` answers them as JSON (nothing else is added to the app).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import re
import sqlite3
import sys
import threading
from collections import Counter

import aiohttp

import bot.server
import bot.store.sqlite
from bot.__main__ import main

IN_REQUEST: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_in_request", default=False)
_lock = threading.Lock()
COUNTS: dict[str, Counter] = {kind: Counter() for kind in ("hops", "at once", "submits", "sql", "http", "logs")}


def count(kind: str, name: str) -> None:
    phase = "command" if IN_REQUEST.get() else "background"
    with _lock:
        COUNTS[kind][f"{phase}\t{name}"] += 1


# --- thread hops ---------------------------------------------------------------------------

_to_thread = asyncio.to_thread


async def to_thread(func, /, *args, **kwargs):
    count("hops", getattr(func, "__qualname__", None) or repr(func))
    return await _to_thread(func, *args, **kwargs)


asyncio.to_thread = to_thread

_read_now = bot.store.sqlite.SqliteStore.read_now


def read_now(self, read, *args):
    result = _read_now(self, read, *args)  # WouldWait: not counted here (the to_thread that follows is)
    count("at once", getattr(read, "__qualname__", None) or repr(read))
    return result


bot.store.sqlite.SqliteStore.read_now = read_now

_submit = concurrent.futures.ThreadPoolExecutor.submit


def submit(self, fn, /, *args, **kwargs):
    count("submits", "ThreadPoolExecutor.submit")
    return _submit(self, fn, *args, **kwargs)


concurrent.futures.ThreadPoolExecutor.submit = submit

# --- SQL ------------------------------------------------------------------------------------

_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_connect = sqlite3.connect


def _trace(statement: str) -> None:
    count("sql", _LITERALS.sub("?", " ".join(statement.split()))[:160])


def connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    conn.set_trace_callback(_trace)
    return conn


sqlite3.connect = connect

# --- HTTP -----------------------------------------------------------------------------------

_request = aiohttp.ClientSession._request


async def request(self, method, str_or_url, **kwargs):
    url = aiohttp.client.URL(str_or_url) if isinstance(str_or_url, str) else str_or_url
    path = re.sub(r"/response/.*", "/response/…", url.path)
    count("http", f"{method} {url.host}:{url.port}{path}")
    return await _request(self, method, str_or_url, **kwargs)


aiohttp.ClientSession._request = request

# --- log records ------------------------------------------------------------------------------

_handle = logging.Logger.handle


def handle(self, record):
    count("logs", f"{record.name} {record.levelname}")
    return _handle(self, record)


logging.Logger.handle = handle

# --- the request marker and the counts endpoint -----------------------------------------------

_slack = bot.server.BotAsgi._slack
_call = bot.server.BotAsgi.__call__


async def _marked_slack(self, scope, receive, send):
    token = IN_REQUEST.set(True)
    try:
        await _slack(self, scope, receive, send)
    finally:
        IN_REQUEST.reset(token)


async def _call_with_counts(self, scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/_bench/counts":
        with _lock:
            body = json.dumps({kind: dict(c) for kind, c in COUNTS.items()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await _call(self, scope, receive, send)


bot.server.BotAsgi._slack = _marked_slack
bot.server.BotAsgi.__call__ = _call_with_counts

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
