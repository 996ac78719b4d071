"""Modals: the restore form that asks for the server's name, and Take a backup from the Home tab."""

from __future__ import annotations

from bot.i18n import _
from bot.slack.ids import (
    CREATE_DESCRIPTION_ACTION,
    CREATE_DESCRIPTION_BLOCK,
    CREATE_MODAL,
    RESTORE_INPUT_ACTION,
    RESTORE_INPUT_BLOCK,
    RESTORE_MODAL,
    RESTORE_REASON_ACTION,
    RESTORE_REASON_BLOCK,
    RESTORE_SAFETY_ACTION,
    RESTORE_SAFETY_BLOCK,
    SAFETY_OPTION,
)
from bot.slack.views.base import confirmation_facts, context, section, server_words, truncate
from bot.slack.views.safety import no_room_for_safety_words
from bot.store import Confirmation


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def _modal(callback_id: str, metadata: str, title: str, submit: str, blocks: list[dict]) -> dict:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": metadata,
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain(_("Cancel")),
        "blocks": blocks,
    }


def _text_input(
    block_id: str, action_id: str, label: str, *, hint: str | None = None, optional: bool = False, max_length=None
) -> dict:
    element = {"type": "plain_text_input", "action_id": action_id}
    if max_length:
        element["max_length"] = max_length
    block = {"type": "input", "block_id": block_id, "label": _plain(label), "element": element}
    if hint:
        block["hint"] = _plain(hint)
    if optional:
        block["optional"] = True
    return block


def _safety_box(conf: Confirmation) -> dict:
    """The safety-backup checkbox: ticked unless the person chose to restore without one."""
    option = {
        "text": _plain(
            truncate(_("First back up {server}'s current state").format(server=conf.target_server_name), 75)
        ),
        "description": _plain(_("A manual backup; the restore is sent only once it is complete.")),
        "value": SAFETY_OPTION,
    }
    element = {"type": "checkboxes", "action_id": RESTORE_SAFETY_ACTION, "options": [option]}
    if conf.safety:
        element["initial_options"] = [option]
    return {
        "type": "input",
        "block_id": RESTORE_SAFETY_BLOCK,
        "label": _plain(_("Safety backup")),
        "element": element,
        "optional": True,
    }


def restore_modal(conf: Confirmation, private_metadata: str) -> dict:
    target = server_words(conf.target_server_id, conf.target_server_name)
    warning = no_room_for_safety_words(conf)
    return _modal(
        RESTORE_MODAL,
        private_metadata,
        _("Restore server"),
        _("Restore"),
        [
            section(
                _("{facts} will *replace everything* on {target}. This cannot be undone.").format(
                    facts=confirmation_facts(conf), target=target
                )
            ),
            _text_input(
                RESTORE_INPUT_BLOCK,
                RESTORE_INPUT_ACTION,
                _("Type {name} to confirm").format(name=truncate(conf.target_server_name, 1900)),
                hint=_("The server's name, or its ID {id}.").format(id=conf.target_server_id),
            ),
            _safety_box(conf),
            *([context(warning)] if warning else []),
            _text_input(
                RESTORE_REASON_BLOCK,
                RESTORE_REASON_ACTION,
                _("Why? (optional)"),
                hint=_("Shown to whoever approves it, where the two-person rule is on."),
                optional=True,
                max_length=500,
            ),
        ],
    )


def create_modal(server_id: int, server_name: str | None) -> dict:
    """Take a backup, from the Home tab: asks for a description, then works like `/backup create`."""
    return _modal(
        CREATE_MODAL,
        str(server_id),
        _("Take a backup"),
        _("Take it"),
        [
            section(
                _("A manual backup of {server}. I'll follow it to completion.").format(
                    server=server_words(server_id, server_name)
                )
            ),
            _text_input(
                CREATE_DESCRIPTION_BLOCK, CREATE_DESCRIPTION_ACTION, _("Description"), optional=True, max_length=255
            ),
        ],
    )
