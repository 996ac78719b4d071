"""Block Kit's limits, as Slack documents them, held end to end by replies that are long on purpose.

The numbers are written here, not imported: a test that compares a message with the code's own
constant moves with it, and Slack refuses the whole message past its real limit (SLACK-NOTES.md).
Each test makes the bot answer something long — hundreds of servers with long names, a page of
backups with long descriptions — through signed requests, and checks what reached the loopback Slack.
"""

import pytest
from conftest import LiveStack, text_of

from bot.sim.fake_api import BackupSimulator

# Slack's documented limits (https://api.slack.com/reference/block-kit), not the bot's constants.
MESSAGE_BLOCKS = 50
SURFACE_BLOCKS = 100  # a modal or the Home tab
SECTION_TEXT = 3000
FIELDS, FIELD_TEXT = 10, 2000
BUTTON_TEXT, BUTTON_VALUE = 75, 2000
ID_LENGTH = 255  # action_id and block_id
ACTIONS_ELEMENTS = 25
MESSAGE_TEXT = 40000  # `text` is truncated by Slack past this; the bot keeps it far shorter
CONFIRM_TITLE, CONFIRM_TEXT, CONFIRM_BUTTON = 100, 300, 30


def within_slack_limits(message: dict, *, blocks_allowed: int = MESSAGE_BLOCKS) -> dict:
    blocks = message.get("blocks", [])
    assert len(blocks) <= blocks_allowed, f"{len(blocks)} blocks: Slack refuses more than {blocks_allowed}"
    assert len(message.get("text", "")) <= MESSAGE_TEXT
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), "block_id must be unique in a message"
    for block in blocks:
        assert len(block.get("block_id", "")) <= ID_LENGTH
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= SECTION_TEXT
            assert len(block.get("fields", [])) <= FIELDS
            assert all(len(f["text"]) <= FIELD_TEXT for f in block.get("fields", []))
        elements = block.get("elements", [])
        if block["type"] == "actions":
            assert len(elements) <= ACTIONS_ELEMENTS
            action_ids = [e["action_id"] for e in elements]
            assert len(action_ids) == len(set(action_ids)), "action_id must be unique in a block"
        for element in [*elements, block.get("accessory") or {}]:
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= BUTTON_TEXT
                assert len(element.get("value", "")) <= BUTTON_VALUE
                assert len(element["action_id"]) <= ID_LENGTH
                confirm = element.get("confirm")
                if confirm:
                    assert len(confirm["title"]["text"]) <= CONFIRM_TITLE
                    assert len(confirm["text"]["text"]) <= CONFIRM_TEXT
                    assert len(confirm["confirm"]["text"]) <= CONFIRM_BUTTON
                    assert len(confirm["deny"]["text"]) <= CONFIRM_BUTTON
    return message


@pytest.fixture
def fleet(tmp_path):
    """400 servers whose long names escape longer still (`&` is `&amp;` in mrkdwn), one backup each: their
    list is longer than 50 sections of 3000 characters."""
    sim = BackupSimulator(completion_seconds=3600, seed=False)
    for n in range(400):
        sim.add_server(20000 + n, "R&D/QA&ops-" * 22 + f"{n:03d}")
        sim.add_backup(20000 + n, description="<Nightly> & " * 20)
    live = LiveStack(tmp_path / "fleet.db", sim)
    yield live
    live.close()


def test_an_admins_servers_list_of_400_long_names_stays_within_50_blocks_and_says_how_many(fleet):
    reply, _ = fleet.ask("servers")
    within_slack_limits(reply)
    text = text_of(reply)
    assert "*Servers you may touch (400)*" in text
    assert "R&amp;D/QA&amp;ops-" in text and "R&D" not in text, "escaped"


def test_a_page_of_backups_with_long_descriptions_stays_within_the_limits(fleet):
    reply, _ = fleet.ask("list")
    within_slack_limits(reply)
    assert "*400 backups* on every server you may see" in text_of(reply)


def test_the_audit_log_at_its_longest_stays_within_the_limits(fleet):
    for _ in range(3):
        fleet.ask("servers")
    reply, _ = fleet.ask("audit 50")
    within_slack_limits(reply)


def test_confirmations_for_long_names_stay_within_the_limits(fleet):
    within_slack_limits(fleet.ask("delete 5001")[0])
    within_slack_limits(fleet.ask("restore 5001 20002")[0])
    within_slack_limits(fleet.ask("create 20001 " + "<!channel> & " * 19)[0])
