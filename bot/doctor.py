"""`vps-backup-bot doctor`: the configuration checked end to end, one ✓/✗ line per check.

Each failed check says what to do. Nothing here writes but the store check (which takes the
write lock for a moment and gives it back); no secret is ever printed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backup_api import BackupApi, BackupApiError
from bot.config import Settings
from bot.store import StoreError, open_store

CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    advice: str = ""

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        return f"{mark} {self.what}" + ("" if self.ok or not self.advice else f" — {self.advice}")


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"{url!r} is not an http(s) URL"
    return None


def settings_checks(settings: Settings) -> list[Check]:
    checks = []
    token = settings.slack_bot_token or ""
    checks.append(
        Check(True, "SLACK_BOT_TOKEN is set and looks like a bot token (xoxb-…)")
        if token.startswith("xoxb-")
        else Check(
            False,
            "SLACK_BOT_TOKEN " + ("is not set" if not token else "does not start with xoxb-"),
            "copy the Bot User OAuth Token from the app's OAuth & Permissions page",
        )
    )
    checks.append(
        Check(True, "SLACK_SIGNING_SECRET is set")
        if settings.slack_signing_secret
        else Check(False, "SLACK_SIGNING_SECRET is not set", "copy it from the app's Basic Information page")
    )
    if settings.slack_app_token is not None:
        checks.append(
            Check(True, "SLACK_APP_TOKEN looks like an app-level token (xapp-…)")
            if settings.slack_app_token.startswith("xapp-")
            else Check(
                False, "SLACK_APP_TOKEN does not start with xapp-", "create an app-level token with connections:write"
            )
        )
    checks.append(
        Check(True, "VPS_API_TOKEN is set")
        if settings.vps_api_token
        else Check(False, "VPS_API_TOKEN is not set", "set the bearer token VPS.org gave you")
    )
    for name, url in (("SLACK_API_URL", settings.slack_api_url), ("VPS_API_URL", settings.vps_api_url)):
        problem = _url_problem(url)
        checks.append(
            Check(True, f"{name} is {url}") if problem is None else Check(False, f"{name}: {problem}", "fix the URL")
        )
    if settings.notify_channel is not None:
        checks.append(
            Check(True, f"BACKUPBOT_NOTIFY_CHANNEL {settings.notify_channel} looks like a channel ID")
            if CHANNEL_ID.match(settings.notify_channel)
            else Check(
                False,
                f"BACKUPBOT_NOTIFY_CHANNEL {settings.notify_channel!r} is not a channel ID",
                "use the ID (C…) from the channel's details, not its name",
            )
        )
    return checks


async def slack_checks(settings: Settings) -> list[Check]:
    if not settings.slack_bot_token:
        return [Check(False, "Slack was not asked: there is no SLACK_BOT_TOKEN", "set it first")]
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=10)
    checks = []
    try:
        who = await client.auth_test()
        checks.append(
            Check(True, f"Slack accepts SLACK_BOT_TOKEN: bot @{who.get('user')} in workspace {who.get('team')}")
        )
    except SlackApiError as exc:
        checks.append(
            Check(
                False,
                f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')})",
                "reinstall the app and copy the new token",
            )
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        checks.append(
            Check(
                False,
                f"Slack could not be reached at {settings.slack_api_url} ({type(exc).__name__})",
                "check the network and SLACK_API_URL",
            )
        )
    if settings.slack_app_token:
        try:
            await client.apps_connections_open(app_token=settings.slack_app_token)
            checks.append(Check(True, "Slack accepts SLACK_APP_TOKEN: Socket Mode can connect"))
        except SlackApiError as exc:
            checks.append(
                Check(
                    False,
                    f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')})",
                    "create an app-level token with connections:write",
                )
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            checks.append(Check(False, f"Socket Mode could not be checked ({type(exc).__name__})", "check the network"))
    return checks


async def backup_api_check(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Check:
    if not settings.vps_api_token:
        return Check(False, "the backup API was not asked: there is no VPS_API_TOKEN", "set it first")
    api = BackupApi(settings.vps_api_url, settings.vps_api_token, transport=transport, read_attempts=1)
    started = time.perf_counter()
    try:
        backups = await api.list_backups()
    except BackupApiError as exc:
        return Check(
            False, f"the backup API at {settings.vps_api_url} failed: {exc}", "check VPS_API_URL and VPS_API_TOKEN"
        )
    finally:
        await api.aclose()
    millis = (time.perf_counter() - started) * 1000
    servers = len({b.server.id for b in backups})
    return Check(
        True, f"the backup API accepts VPS_API_TOKEN: {servers} servers, {len(backups)} backups, {millis:.0f} ms"
    )


def store_check(settings: Settings) -> Check:
    shared = settings.db_path.startswith(("postgresql://", "postgres://"))
    try:
        store = open_store(settings.db_path)
    except StoreError as exc:
        fix = (
            "check the URL, that PostgreSQL runs there and lets this user in"
            if shared
            else "point BACKUPBOT_DB at a writable file in an existing directory"
        )
        return Check(False, str(exc), fix)
    try:
        store.check_writable()
        version = store.schema_version()
    except StoreError as exc:
        fix = (
            "check PostgreSQL's health and connection limit"
            if shared
            else "stop whatever holds it, or fix its permissions"
        )
        return Check(False, f"the store {store.path} cannot be written: {exc}", fix)
    finally:
        store.close()
    kind = "PostgreSQL store" if shared else "store"
    return Check(True, f"the {kind} {store.path} opens, is migrated (version {version}) and can be written")


async def run_checks(settings: Settings, *, api_transport: httpx.AsyncBaseTransport | None = None) -> list[Check]:
    return [
        *settings_checks(settings),
        *await slack_checks(settings),
        await backup_api_check(settings, api_transport),
        store_check(settings),
    ]


def report(checks: list[Check], write: Callable[[str], object] = print) -> int:
    for check in checks:
        write(check.line())
    failed = sum(not c.ok for c in checks)
    write("all checks passed" if not failed else f"{failed} of {len(checks)} checks failed")
    return 0 if not failed else 1
