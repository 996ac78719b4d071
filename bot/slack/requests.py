"""Slack's HTTP requests read by their real shape.

Bolt 1.30 decides a form body is an interactive payload when the word
"payload" appears anywhere in it, so `/backup create 1 update payload schema`
(or a channel, user or workspace with that word in its name) was parsed as
an empty payload and went unanswered. Here a form body is an interactive
payload only when it has a `payload` field, and a payload that is not JSON
is an empty body (Bolt then answers it as an unknown request, not with a 500).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest


def parse_body(raw: str, content_type: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type == "application/json" or raw.lstrip().startswith("{"):
        try:
            body = json.loads(raw)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if set(fields) == {"payload"}:
        try:
            payload = json.loads(fields["payload"])
        except ValueError:
            return {}
        return payload if isinstance(payload, dict) else {}
    return fields


def request_kind(body: dict) -> str:
    """command, action, view or event: what kind of request a parsed body is (for metrics and logs)."""
    if "command" in body:
        return "command"
    kind = body.get("type")
    if kind in ("view_submission", "view_closed"):
        return "view"
    if kind == "event_callback":
        return "event"
    return "action"


def _submitted(view: dict, block_id: str, action_id: str) -> dict | None:
    values = (view.get("state") or {}).get("values") or {}
    block = values.get(block_id) if isinstance(values, dict) else None
    field = block.get(action_id) if isinstance(block, dict) else None
    return field if isinstance(field, dict) else None


def submitted_text(view: dict, block_id: str, action_id: str) -> str:
    """What was typed into one input of a submitted form; nothing if the submission carries no such field."""
    text = (_submitted(view, block_id, action_id) or {}).get("value")
    return text if isinstance(text, str) else ""


def submitted_choice(view: dict, block_id: str, action_id: str, option: str) -> bool | None:
    """Whether a checkbox option was ticked in a submitted form; None if the form carries no such field."""
    field = _submitted(view, block_id, action_id)
    if field is None:
        return None
    selected = field.get("selected_options")
    if not isinstance(selected, list):
        return None
    return any(isinstance(o, dict) and o.get("value") == option for o in selected)


class SlackRequest(AsyncBoltRequest):
    """An HTTP request to the Bolt app, its body parsed by `parse_body` instead of Bolt's guess."""

    def __init__(self, *, body: str, query=None, headers=None, context: dict | None = None):
        super().__init__(body="", query=query, headers=headers, context=context, mode="http")
        self.raw_body = body
        self.body = parse_body(body, self.content_type)
        self.context = build_async_context(AsyncBoltContext(context or {}), self.body)

    def to_copyable(self) -> SlackRequest:
        return SlackRequest(
            body=self.raw_body, query=self.query, headers=self.headers, context=self.context.to_copyable()
        )
