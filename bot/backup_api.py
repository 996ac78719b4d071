"""Async client for the VPS.org backup API (see shared/vps-backup-api.md).

Exceptions, all carrying a message safe to show a person (never the token)::

    BackupApiError
     ├── Unauthorized       401: the token is missing or wrong
     ├── NotFound           404: no such server or backup
     ├── BadRequest         400: refused; `provider_message` is the API's own words
     ├── Unavailable        5xx, 429, refused connection, or no answer in time
     │    ├── RateLimited   429: `retry_after` seconds, when the API said
     │    ├── ApiTimeout    no answer within the timeout
     │    └── NotSent       the connection could not be made: the request never reached the API
     ├── UnexpectedResponse any other status, or a body that is not the documented shape
     └── AcceptedButUnreadable  a write answered 2xx (so it happened) with a body that cannot be read

Reads (listing, and so finding one backup) are retried with backoff on 5xx,
429 (honouring Retry-After within the budget) and connection errors. Writes
(create, delete, restore) are sent once: a write that failed may still have
happened, so only a person decides to send it again. A write answered 2xx is
a success whatever its body says: `AcceptedButUnreadable` is not a failure.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_RETRY_AFTER_SECONDS = 5.0
MAX_CACHED_URLS = 4096
RUNNING_STATUSES = frozenset({"in_progress", "pending", "queued", "creating", "running"})
BACKUP_TYPES = ("manual", "automatic")


# The provider keeps at most this many manual backups per server; a create beyond it is refused (400).
MANUAL_LIMIT = 10


class BackupApiError(Exception):
    status_code: int | None = None

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class Unauthorized(BackupApiError):
    status_code = 401


class NotFound(BackupApiError):
    status_code = 404


class BadRequest(BackupApiError):
    status_code = 400

    def __init__(self, provider_message: str):
        super().__init__(provider_message)
        self.provider_message = provider_message


class Unavailable(BackupApiError):
    pass


class ApiTimeout(Unavailable):
    pass


class NotSent(Unavailable):
    """The connection could not be made, so the request never reached the API: a write did not happen."""


class RateLimited(Unavailable):
    def __init__(self, message: str, retry_after: float | None):
        super().__init__(message, status_code=429)
        self.retry_after = retry_after


class AcceptedButUnreadable(BackupApiError):
    """The API accepted a write (2xx) but its answer could not be read: the write happened."""


class UnexpectedResponse(BackupApiError):
    pass


@dataclass(frozen=True)
class Server:
    id: int
    name: str


@dataclass(frozen=True)
class Backup:
    id: int
    server: Server
    backup_type: str
    status: str
    size_mb: int | None
    created_at: datetime
    expires_at: datetime | None
    description: str
    message: str | None = None

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_STATUSES

    @property
    def is_restorable(self) -> bool:
        return self.status == "completed"

    @classmethod
    def from_json(cls, data: Any) -> Backup:
        try:
            server = data["server"]
            return cls(
                id=int(data["id"]),
                server=Server(id=int(server["id"]), name=str(server.get("name") or server["id"])),
                backup_type=str(data.get("backup_type") or "unknown"),
                status=str(data.get("status") or "unknown"),
                size_mb=None if data.get("size_mb") is None else int(data["size_mb"]),
                created_at=_parse_time(data["created_at"]),
                expires_at=None if not data.get("expires_at") else _parse_time(data["expires_at"]),
                description=str(data.get("description") or ""),
                message=data.get("message"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnexpectedResponse(f"the backup API sent a backup in an unexpected shape ({exc!r})") from exc


def _parse_time(value: str) -> datetime:
    """An ISO 8601 time; one without a zone is read as UTC."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def provider_text(response: httpx.Response) -> str:
    """The provider's own words from an error body, whatever its (undocumented) shape."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] if text and "<html" not in text.lower() else ""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("detail", "message", "error", "errors", "non_field_errors"):
            if key in body:
                return _flatten(body[key])
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in body.items())
    return _flatten(body)


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    return str(value)


class BackupApi:
    """One pooled async client for the backup API, reused for every call."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        read_attempts: int = 3,
        backoff_seconds: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observer: Callable[[str, float, str | None], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self._observer = observer
        self.failing_streak = 0  # calls in a row the API failed (5xx, 429, unreachable, no answer)
        self._read_attempts = max(1, read_attempts)
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._urls: dict[tuple, httpx.URL] = {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport or default_transport(),
        )

    def __repr__(self) -> str:
        return f"BackupApi(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def list_backups(self, server_id: int | None = None, backup_type: str | None = None) -> list[Backup]:
        params: dict[str, str | int] = {}
        if server_id is not None:
            params["server_id"] = server_id
        if backup_type is not None:
            params["backup_type"] = backup_type
        body = await self._read("backups/", params)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise UnexpectedResponse("the backup API answered a list without its results")
        return [Backup.from_json(item) for item in results]

    async def probe(self) -> None:
        """One list call, not retried, only to see whether the API answers (for /readyz, while it has been failing)."""
        response = await self._send("GET", "backups/", params={"backup_type": "manual"})
        _raise_for_status(response, what="that")

    async def find_backup(self, backup_id: int) -> Backup:
        """There is no endpoint for one backup: find it by listing."""
        for backup in await self.list_backups():
            if backup.id == backup_id:
                return backup
        raise NotFound(f"backup {backup_id} does not exist")

    async def create_backup(self, server_id: int, description: str | None = None) -> Backup:
        payload: dict[str, Any] = {"server_id": server_id}
        if description:
            payload["description"] = description
        response = await self._write("POST", "backups/", payload, what=f"server {server_id}")
        try:
            return Backup.from_json(_json(response))
        except UnexpectedResponse as exc:
            raise AcceptedButUnreadable(
                f"the backup API accepted the backup ({response.status_code}) but its answer could not be read"
            ) from exc

    async def delete_backup(self, backup_id: int) -> None:
        await self._write("DELETE", f"backups/{backup_id}/", None, what=f"backup {backup_id}")

    async def restore(self, server_id: int, backup_id: int) -> str | None:
        """Ask the provider to restore `server_id` from `backup_id`; any 2xx is accepted."""
        response = await self._write(
            "POST",
            f"servers/{server_id}/restore/",
            {"backup_id": backup_id},
            what=f"server {server_id} or backup {backup_id}",
        )
        try:
            body = response.json()
        except ValueError:
            return None
        return body.get("message") if isinstance(body, dict) else None

    async def _read(self, path: str, params: dict) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send("GET", path, params=params)
                _raise_for_status(response, what="that")
                return _json(response)
            except ApiTimeout:
                raise
            except Unavailable as exc:
                if attempt >= self._read_attempts:
                    raise
                delay = self._backoff * 2 ** (attempt - 1)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    if exc.retry_after > MAX_RETRY_AFTER_SECONDS:
                        raise
                    delay = max(delay, exc.retry_after)
                log.warning("backup API read failed (%s); retrying in %.2fs", exc, delay)
                await self._sleep(delay)

    async def _write(self, method: str, path: str, payload: dict | None, *, what: str) -> httpx.Response:
        response = await self._send(method, path, json=payload)
        _raise_for_status(response, what=what)
        return response

    def _url(self, path: str, params: dict | None) -> httpx.URL:
        """The absolute URL of `path` with `params`, as httpx would make it, parsed once per distinct call
        (there are few: a list per server and type, a delete per backup) rather than three times per call."""
        key = (path, tuple(params.items()) if params else ())
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            url = httpx.URL(self.base_url + path)
            if params:
                url = url.copy_merge_params(params)
            self._urls[key] = url
        return url

    async def _send(self, method: str, path: str, *, params: dict | None = None, **kwargs) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self._client.request(method, self._url(path, params), **kwargs)
        except httpx.TimeoutException as exc:
            if _never_sent(exc):
                error: BackupApiError = NotSent("the backup API could not be reached (connection failed)")
            elif _is_connection_failure(exc):
                error = Unavailable("the backup API's connection broke before it answered")
            else:
                error = ApiTimeout("the backup API did not answer in time")
            self._observe(method, started, error)
            raise error from exc
        except httpx.TransportError as exc:
            if _never_sent(exc):
                error = NotSent(f"the backup API could not be reached ({type(exc).__name__})")
            else:
                error = Unavailable(f"the backup API's connection broke before it answered ({type(exc).__name__})")
            self._observe(method, started, error)
            raise error from exc
        self._observe(method, started, _failure_of(response))
        return response

    def _observe(self, method: str, started: float, error: BackupApiError | None) -> None:
        """Count the call for /metrics and /readyz: how long it took, and whether the API failed it."""
        failed = isinstance(error, Unavailable | Unauthorized | UnexpectedResponse)
        self.failing_streak = self.failing_streak + 1 if failed else 0
        if self._observer is not None:
            self._observer(method, time.perf_counter() - started, type(error).__name__ if error else None)


def _failure_of(response: httpx.Response) -> BackupApiError | None:
    """The error an answer stands for, only to count it (the caller raises its own)."""
    if response.status_code < 400:
        return None
    try:
        _raise_for_status(response, what="that")
    except BackupApiError as exc:
        return exc
    return None


def _never_sent(exc: httpx.TransportError) -> bool:
    """Did the connection fail before the request was written? Then a write cannot have happened.

    httpx says so with ConnectError and ConnectTimeout (as `AiohttpTransport` does). Under httpx-aiohttp (a
    transport a caller may still hand in) a ConnectTimeout may also stand for a connection dropped after
    sending (aiohttp's ServerDisconnectedError), told apart by its cause.
    """
    if isinstance(exc, httpx.ConnectError):
        return True
    if not isinstance(exc, httpx.ConnectTimeout):
        return False
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return True


def _is_connection_failure(exc: httpx.TimeoutException) -> bool:
    """httpx-aiohttp reports a refused or dropped connection as ConnectTimeout; tell them apart."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, aiohttp.ServerTimeoutError)


KEEPALIVE_SECONDS = 5.0
MAX_CONNECTIONS = 500  # a burst of commands is a burst of list calls: each gets a connection, none waits for one


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's face on one pooled aiohttp session: one HTTP stack under the client, not two.

    httpx builds the request and reads the answer as always (base URL, headers, params, JSON, status); this
    hands the request to aiohttp as it is and reads the whole answer, skipping httpx-aiohttp's streaming
    layer. aiohttp's errors become httpx's, so `_send` classifies them as for any transport:

    * no connection made (refused, unresolvable, TLS refused; connect or pool timeout) → ConnectError or
      ConnectTimeout: the request never went out (NotSent);
    * no answer within the read timeout → ReadTimeout (ApiTimeout);
    * the connection broke after the request was written (dropped, reset, a truncated body) → ReadError
      (Unavailable: a write may have happened).

    A write goes out once: aiohttp by itself sends a DELETE (an "idempotent" method) again when its
    connection breaks, which here is turned off; a read whose connection broke (a kept-alive connection the
    server had just closed) is sent once more at once, as aiohttp would.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, max_connections: int = MAX_CONNECTIONS):
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple, aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=KEEPALIVE_SECONDS,
                ssl=self._ssl if self._ssl is not None else True,
            )
            # No cookie jar: httpx sends exactly what it built.
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
            self._session._retry_connection = False  # see the class docstring: reads are retried below
        return self._session

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for httpx's (connect: the socket; pool: waiting for a connection and making it)."""
        key = (timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=key[0], sock_read=key[1], connect=key[2])
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._exchange(request)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if request.method not in _SENT_AGAIN or isinstance(exc, aiohttp.ClientConnectorError):
                raise _as_httpx(exc, request) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _as_httpx(exc, request) from exc
        try:
            return await self._exchange(request)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _as_httpx(exc, request) from exc

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        async with self._client().request(
            request.method,
            str(request.url),
            headers=request.headers.multi_items(),
            data=request.content or None,
            allow_redirects=False,
            auto_decompress=False,  # httpx decodes, by the answer's Content-Encoding
            timeout=self._timeout(request.extensions.get("timeout", {})),
        ) as response:
            body = await response.read()
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            response.status, headers=response.raw_headers, content=body, request=request, extensions=extensions
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_SENT_AGAIN = frozenset({"GET", "HEAD"})


def _as_httpx(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """An aiohttp error as the httpx error that says the same about whether the request went out."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(f"no connection in time ({exc})", request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(f"no connection ({exc})", request=request)
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError (no answer within the read timeout) too
        return httpx.ReadTimeout(f"no answer in time ({type(exc).__name__})", request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc), request=request)
    return httpx.ReadError(f"the connection broke ({type(exc).__name__})", request=request)


def default_transport() -> httpx.AsyncBaseTransport:
    """aiohttp under httpx (`AiohttpTransport`): httpx's own pool slows badly with hundreds of concurrent calls."""
    return AiohttpTransport(ssl_context=tls_context())


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client: making one reads the CA bundle (~50 ms of CPU)."""
    return httpx.create_ssl_context()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponse(f"the backup API answered {response.status_code} without JSON") from exc


def _raise_for_status(response: httpx.Response, *, what: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    text = provider_text(response)
    if status == 401:
        raise Unauthorized("the backup API refused the bot's token (401)")
    if status == 404:
        raise NotFound(text or f"{what} was not found", status_code=404)
    if status == 400:
        raise BadRequest(text or "the request was refused without a reason")
    if status == 429:
        raise RateLimited("the backup API is rate-limiting the bot (429)", _retry_after(response))
    if status >= 500:
        raise Unavailable(f"the backup API is failing ({status})", status_code=status)
    raise UnexpectedResponse(f"the backup API answered {status}" + (f": {text}" if text else ""), status_code=status)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, if the answer gave it as a number (an HTTP date is treated as absent)."""
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value >= 0 and value == value else None
