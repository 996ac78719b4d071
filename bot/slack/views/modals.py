"""Modals: the restore form that asks for the server's name."""

from __future__ import annotations

from bot.slack.ids import (
    CREATE_DESCRIPTION_ACTION,
    CREATE_DESCRIPTION_BLOCK,
    CREATE_MODAL,
    RESTORE_INPUT_ACTION,
    RESTORE_INPUT_BLOCK,
    RESTORE_MODAL,
    RESTORE_REASON_ACTION,
    RESTORE_REASON_BLOCK,
)
from bot.slack.views.base import confirmation_facts, section, server_words, truncate
from bot.store import Confirmation


def restore_modal(conf: Confirmation, private_metadata: str) -> dict:
    target = server_words(conf.target_server_id, conf.target_server_name)
    return {
        "type": "modal",
        "callback_id": RESTORE_MODAL,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Restore server"},
        "submit": {"type": "plain_text", "text": "Restore"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"{confirmation_facts(conf)} will *replace everything* on {target}. This cannot be undone."),
            {
                "type": "input",
                "block_id": RESTORE_INPUT_BLOCK,
                "label": {
                    "type": "plain_text",
                    "text": f"Type {truncate(conf.target_server_name, 1900)} to confirm",
                },
                "hint": {
                    "type": "plain_text",
                    "text": f"The server's name, or its ID {conf.target_server_id}.",
                },
                "element": {"type": "plain_text_input", "action_id": RESTORE_INPUT_ACTION},
            },
            {
                "type": "input",
                "block_id": RESTORE_REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Why? (optional)"},
                "hint": {
                    "type": "plain_text",
                    "text": "Shown to whoever approves it, where the two-person rule is on.",
                },
                "element": {"type": "plain_text_input", "action_id": RESTORE_REASON_ACTION, "max_length": 500},
            },
        ],
    }


def create_modal(server_id: int, server_name: str | None) -> dict:
    """Take a backup, from the Home tab: asks for a description, then works like `/backup create`."""
    return {
        "type": "modal",
        "callback_id": CREATE_MODAL,
        "private_metadata": str(server_id),
        "title": {"type": "plain_text", "text": "Take a backup"},
        "submit": {"type": "plain_text", "text": "Take it"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(f"A manual backup of {server_words(server_id, server_name)}. I'll follow it to completion."),
            {
                "type": "input",
                "block_id": CREATE_DESCRIPTION_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Description"},
                "element": {"type": "plain_text_input", "action_id": CREATE_DESCRIPTION_ACTION, "max_length": 255},
            },
        ],
    }
