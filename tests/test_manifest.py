"""manifest.yml is checked by Slack's own JSON Schema, and against what the code uses."""

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "slack-manifest-schema"
COPY = ROOT / "tests" / "data" / "slack-manifest-schema"
SCHEMAS = [SHARED, COPY]


@pytest.fixture(scope="module")
def manifest():
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def schema_for(manifest):
    version = manifest.get("_metadata", {}).get("major_version", 1)
    for folder in SCHEMAS:
        path = folder / f"manifest.schema.{version}.0.0.json"
        if path.exists():
            return json.loads(path.read_text())
    pytest.fail(f"no manifest schema for major version {version}")


def test_manifest_validates_against_slacks_schema(manifest):
    jsonschema.validate(manifest, schema_for(manifest))


def test_a_broken_manifest_is_caught(manifest):
    broken = {**manifest, "features": {**manifest["features"], "slash_commands": [{"command": "backup"}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema_for(manifest))


def test_the_command_and_interactivity(manifest):
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/backup" and command["should_escape"] is True
    assert command["description"] and command["usage_hint"]
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"] == command["url"]
    assert "socket_mode_enabled" in manifest["settings"]


def test_scopes_are_those_the_code_uses(manifest):
    """commands for /backup; chat:write for announcements; chat:write.public to announce without joining (auth.test needs none)."""
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == ["chat:write", "chat:write.public", "commands"]
    edge = [*(ROOT / "bot" / "slack").rglob("*.py"), ROOT / "bot" / "server.py", ROOT / "bot" / "runtime.py"]
    source = "\n".join(path.read_text() for path in edge)
    web_calls = set(re.findall(r"client\.([a-z]+_[a-zA-Z]+)\(", source))
    assert web_calls <= {
        "auth_test",
        "chat_postMessage",
        "chat_postEphemeral",
        "chat_update",
        "views_open",
        "views_publish",
        "views_update",  # the policy form's preview replaces its working notice
    }, web_calls


def test_the_copied_schema_matches_slacks_when_both_are_here():
    if not SHARED.exists():
        pytest.skip("no shared/ beside this clone: the copy is all there is")
    name = "manifest.schema.1.0.0.json"
    assert json.loads((COPY / name).read_text()) == json.loads((SHARED / name).read_text())
