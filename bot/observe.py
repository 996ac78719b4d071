"""What an operator sees: the context of the request being served (for log lines and error references),
Prometheus metrics with bounded labels, and log output as text or one JSON object per line.

No Slack here: the edge names the kind of request (command, action, view, event) and the use cases
note how each attempt ended; this module only keeps and exposes that.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

KINDS = ("command", "action", "view", "event", "pipeline")
OUTCOMES = ("done", "denied", "failed", "cancelled")
SAFE_LABEL = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass
class RequestContext:
    request_id: str
    kind: str
    user_id: str
    action: str = ""
    outcome: str = ""


_current: ContextVar[RequestContext | None] = ContextVar("backupbot_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


@contextlib.contextmanager
def serving(kind: str, user_id: str) -> Iterator[RequestContext]:
    """The request being served, for as long as its work runs (log lines and replies carry its ID)."""
    context = RequestContext(secrets.token_hex(4), kind if kind in KINDS else "action", user_id)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def note_attempt(action: str, outcome: str) -> None:
    """A use case records how an attempt ended; the request counts with its last attempt's outcome."""
    context = _current.get()
    if context is not None:
        context.action, context.outcome = action, outcome


def label(value: str | None) -> str:
    """A label value from outside (a Slack error code, an exception class): bounded, or `other`."""
    text = (value or "").lower()
    return text if SAFE_LABEL.match(text) else "other"


class Metrics:
    """The bot's Prometheus metrics, in a registry of its own (one per running bot)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "backupbot_requests_total",
            "Slack requests served, by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "backupbot_ack_seconds",
            "Time to acknowledge a Slack request",
            ["kind"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
        )
        self.api_seconds = Histogram(
            "backupbot_backup_api_seconds",
            "Backup API call latency, by method",
            ["method"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        )
        self.api_errors = Counter(
            "backupbot_backup_api_errors_total",
            "Backup API calls that failed, by error class",
            ["error"],
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "backupbot_slack_api_errors_total",
            "Slack Web API calls refused, by method and error",
            ["method", "error"],
            registry=self.registry,
        )

    def request_served(self, kind: str, outcome: str) -> None:
        self.requests.labels(kind if kind in KINDS else "action", outcome if outcome in OUTCOMES else "done").inc()

    def acked(self, kind: str, seconds: float) -> None:
        self.ack_seconds.labels(kind if kind in KINDS else "action").observe(seconds)

    def api_call(self, method: str, seconds: float, error: str | None) -> None:
        self.api_seconds.labels(label(method)).observe(seconds)
        if error:
            self.api_errors.labels(label(error)).inc()

    def slack_error(self, method: str, error: str | None) -> None:
        self.slack_errors.labels(label(method.replace(".", "_")), label(error)).inc()

    def watch_work(self, counts: Callable[[], dict[str, int]]) -> None:
        """Gauges of pending work, read from the store at each scrape."""
        self.registry.register(_WorkCollector(counts))

    def watch_backups(self, ages: Callable[[], dict[int, float]], alerts: Callable[[], dict[str, int]]) -> None:
        """Gauges for those who alert elsewhere: each server's newest completed backup's age (as the last watch
        round saw it) and the open alerts by kind (read from the store at each scrape)."""
        self.registry.register(_BackupsCollector(ages, alerts))


class _BackupsCollector:
    def __init__(self, ages: Callable[[], dict[int, float]], alerts: Callable[[], dict[str, int]]):
        self.ages, self.alerts = ages, alerts

    def collect(self):
        age = GaugeMetricFamily(
            "backupbot_newest_backup_age_seconds",
            "Age of each server's newest completed backup at the last watch round (no completed backup: absent)",
            labels=["server"],
        )
        for server_id, seconds in sorted(self.ages().items()):
            age.add_metric([str(server_id)], seconds)
        yield age
        alerts = GaugeMetricFamily("backupbot_open_alerts", "Alerts open now, by kind", labels=["kind"])
        try:
            for kind, count in self.alerts().items():
                alerts.add_metric([kind], count)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the store is busy
            logging.getLogger(__name__).warning("open alerts not countable at this scrape")
        yield alerts

    def describe(self):
        return []


class _WorkCollector:
    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.counts = counts

    def collect(self):
        gauge = GaugeMetricFamily("backupbot_pending_work", "Work the bot holds in its store, by kind", labels=["kind"])
        try:
            for kind, count in self.counts().items():
                gauge.add_metric([kind], count)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the store is busy
            logging.getLogger(__name__).warning("pending work not countable at this scrape")
        yield gauge

    def describe(self):
        return []


class _ContextFilter(logging.Filter):
    """Puts the request being served (ID, kind, action, user) on every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.request_id = context.request_id if context else ""
        record.kind = context.kind if context else ""
        record.action = context.action if context else ""
        record.user_id = context.user_id if context else ""
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(*, json_lines: bool, level: int, stream=None) -> None:
    """Log to stderr as text, or as one JSON object per line (python-json-logger)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_ContextFilter())
    if json_lines:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(kind)s %(action)s %(user_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_backupbot", False):
            root.removeHandler(old)
    handler._backupbot = True
    root.addHandler(handler)
    root.setLevel(level)


def monotonic() -> float:
    return time.perf_counter()
