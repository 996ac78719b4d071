"""Settings, read once from the environment and an optional `.env` file.

This is the only module that reads `os.environ`. Everything else receives a
`Settings` value, so tests and the console build their own without touching
the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_VPS_API_URL = "https://admin.vps.org/api/v1"
DEFAULT_DB = "backupbot.db"
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_PORT = 3000
DEFAULT_SHUTDOWN_SECONDS = 20.0
DEFAULT_APPROVAL_MINUTES = 30.0
DEFAULT_DELETE_GRACE_SECONDS = 30.0
# A reply's response_url lives 30 minutes: the end of a longer window could not be shown in it.
MAX_DELETE_GRACE_SECONDS = 1800.0
# Sane bounds: (lowest, highest, unit). Past them a setting is refused at start and by doctor, in one line.
BOUNDS = {
    "poll_seconds": (1.0, 3600.0, "seconds"),
    "approval_minutes": (1.0, 7 * 24 * 60.0, "minutes"),
    "shutdown_seconds": (0.1, 3600.0, "seconds"),
    "stale_hours": (1.0, 8760.0, "hours"),
}
DEFAULT_STALE_HOURS = 26.0
DEFAULT_RESERVED_SLOTS = 2

SECRET_FIELDS = frozenset({"slack_bot_token", "slack_signing_secret", "slack_app_token", "vps_api_token"})


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and is safe to print."""


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = field(default=None, metadata={"env": "SLACK_BOT_TOKEN"})
    slack_signing_secret: str | None = field(default=None, metadata={"env": "SLACK_SIGNING_SECRET"})
    slack_app_token: str | None = field(default=None, metadata={"env": "SLACK_APP_TOKEN"})
    slack_api_url: str = field(default=DEFAULT_SLACK_API_URL, metadata={"env": "SLACK_API_URL"})
    vps_api_url: str = field(default=DEFAULT_VPS_API_URL, metadata={"env": "VPS_API_URL"})
    vps_api_token: str | None = field(default=None, metadata={"env": "VPS_API_TOKEN"})
    db_path: str = field(default=DEFAULT_DB, metadata={"env": "BACKUPBOT_DB"})
    admins: frozenset[str] = field(default=frozenset(), metadata={"env": "BACKUPBOT_ADMINS"})
    notify_channel: str | None = field(default=None, metadata={"env": "BACKUPBOT_NOTIFY_CHANNEL"})
    poll_seconds: float = field(default=DEFAULT_POLL_SECONDS, metadata={"env": "BACKUPBOT_POLL_SECONDS"})
    port: int = field(default=DEFAULT_PORT, metadata={"env": "PORT"})
    shutdown_seconds: float = field(default=DEFAULT_SHUTDOWN_SECONDS, metadata={"env": "BACKUPBOT_SHUTDOWN_SECONDS"})
    approval_minutes: float = field(default=DEFAULT_APPROVAL_MINUTES, metadata={"env": "BACKUPBOT_APPROVAL_MINUTES"})
    delete_grace_seconds: float = field(
        default=DEFAULT_DELETE_GRACE_SECONDS, metadata={"env": "BACKUPBOT_DELETE_GRACE_SECONDS"}
    )
    language: str = field(default="en", metadata={"env": "BACKUPBOT_LANGUAGE"})
    log_format: str = field(default="text", metadata={"env": "BACKUPBOT_LOG_FORMAT"})
    log_level: str = field(default="INFO", metadata={"env": "BACKUPBOT_LOG_LEVEL"})
    metrics_port: int | None = field(default=None, metadata={"env": "BACKUPBOT_METRICS_PORT"})
    timezone: str = field(default="UTC", metadata={"env": "BACKUPBOT_TIMEZONE"})
    stale_hours: float = field(default=DEFAULT_STALE_HOURS, metadata={"env": "BACKUPBOT_STALE_HOURS"})
    reserved_slots: int = field(default=DEFAULT_RESERVED_SLOTS, metadata={"env": "BACKUPBOT_RESERVED_SLOTS"})

    def require(self, *names: str) -> Settings:
        """Raise ConfigError naming the first of these fields that is unset."""
        for name in names:
            if not getattr(self, name):
                raise ConfigError(f"missing required setting {env_name(name)}")
        return self

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


def env_name(field_name: str) -> str:
    for f in fields(Settings):
        if f.name == field_name:
            return f.metadata["env"]
    raise KeyError(field_name)


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Build Settings from `environ` (default: os.environ) over the values of `env_file`, if it exists."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        value = values.get(name, "").strip()
        return value or None

    kwargs: dict[str, object] = {}
    for f in fields(Settings):
        raw = get(f.metadata["env"])
        if raw is None:
            continue
        kwargs[f.name] = _parse(f.name, f.metadata["env"], raw)
    return Settings(**kwargs)


def _parse(name: str, env: str, raw: str) -> object:
    if name == "admins":
        return frozenset(part.strip() for part in raw.split(",") if part.strip())
    if name in BOUNDS:
        low, high, unit = BOUNDS[name]
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{env} must be a number of {unit}, not {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{env} must be from {low:g} to {high:g} {unit}, not {raw!r}")
        return value
    if name == "delete_grace_seconds":
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{env} must be a number of seconds, not {raw!r}") from None
        if not 0 <= value <= MAX_DELETE_GRACE_SECONDS:
            raise ConfigError(f"{env} must be between 0 and {MAX_DELETE_GRACE_SECONDS:g} seconds, not {raw!r}")
        return value
    if name == "timezone":
        from bot.schedule import ScheduleError, zone

        try:
            zone(raw)
        except ScheduleError:
            raise ConfigError(f"{env} must be an IANA time zone name like Europe/Berlin, not {raw!r}") from None
        return raw
    if name == "reserved_slots":
        if not raw.isascii() or not raw.isdigit() or not 0 <= int(raw) <= 8:
            raise ConfigError(f"{env} must be a whole number from 0 to 8, not {raw!r}")
        return int(raw)
    if name == "language":
        if raw.lower() not in ("en", "ko"):
            raise ConfigError(f"{env} must be en or ko, not {raw!r}")
        return raw.lower()
    if name == "log_format":
        if raw.lower() not in ("text", "json"):
            raise ConfigError(f"{env} must be text or json, not {raw!r}")
        return raw.lower()
    if name == "log_level":
        if raw.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"{env} must be DEBUG, INFO, WARNING or ERROR, not {raw!r}")
        return raw.upper()
    if name in ("port", "metrics_port"):
        if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 65536:
            raise ConfigError(f"{env} must be a port number, not {raw!r}")
        return int(raw)
    if name in ("slack_api_url",) and not raw.endswith("/"):
        return raw + "/"
    return raw
