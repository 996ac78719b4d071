"""`vps-backup-bot console`: the real bot in a terminal, no Slack workspace needed.

Each line typed is what one would type in Slack. It becomes the form body
Slack would post, signed as Slack signs it, and is dispatched to the same Bolt
app `serve` runs; the app's Web API calls and response_url posts go to a
loopback Slack (bot/sim/slack_loopback.py), and whatever arrives there is
rendered here: messages, announcements, modals. Buttons are numbered and
pressed by typing their number; confirmation dialogs must be answered; a
modal's inputs are asked for at a prompt.

The app runs with `process_before_response`, so a command's replies have all
arrived when its dispatch returns; the follower's later news is printed as it
comes (or after `wait N`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import secrets
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlencode

from bot.config import Settings
from bot.parsing import UsageError, is_number, parse_user
from bot.runtime import Runtime, build_runtime
from bot.sim.fake_api import BackupSimulator, SimulatorTransport
from bot.sim.slack_loopback import (
    LoopbackSlack,
    Record,
    app_home_opened_body,
    block_actions_payload,
    sign,
    slash_command_body,
    view_submission_payload,
)
from bot.slack.requests import SlackRequest

CONSOLE_CHANNEL = "C0CONSOLE"
DEMO_NOTIFY_CHANNEL = "C0BACKUPS"
CHANNEL_NAMES = {CONSOLE_CHANNEL: "console", DEMO_NOTIFY_CHANNEL: "backups"}
MAX_WAIT = 120

EMOJI = {
    "raised_hand": "✋",
    "unlock": "🔓",
    "snail": "🐌",
    "white_check_mark": "✅",
    "hourglass_flowing_sand": "⏳",
    "hourglass": "⌛",
    "warning": "⚠️",
    "wastebasket": "🗑️",
    "recycle": "♻️",
    "floppy_disk": "💾",
    "no_entry": "⛔",
    "mag": "🔍",
    "key": "🔑",
    "lock": "🔒",
    "x": "❌",
    "boom": "💥",
    "construction": "🚧",
    "rotating_light": "🚨",
    "alarm_clock": "⏰",
    "leftwards_arrow_with_hook": "↩️",
    "ballot_box_with_check": "☑️",
    "grey_question": "❔",
    "double_vertical_bar": "⏸️",
    "speech_balloon": "💬",
}

CONSOLE_HELP = """\
Type what you would type in Slack, e.g.:
  /backup help            /backup list 12345        /backup create 12345 Before the deploy
  /backup delete 5023     /backup restore 5023      /backup servers
Press a button by typing its number, as in [3].
  wait [SECONDS]   let time pass to see follow-ups (a backup completing, say); default 5
  home             open the bot's Home tab (your servers, what waits for you)
  as USER          act as someone else from now on (a member ID, like U0BOB): a second person to approve
  quit             leave (Ctrl-D works too)"""


@dataclass
class Pressable:
    """A numbered button on a rendered message."""

    element: dict
    block_id: str
    message_key: str
    view: dict | None = None  # the Home tab it is on: pressed there, it has no response_url


@dataclass
class ConsoleState:
    buttons: dict[int, Pressable] = field(default_factory=dict)
    next_number: int = 1
    seen: int = 0


class Console:
    def __init__(
        self,
        settings: Settings,
        *,
        demo: bool,
        user_id: str,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
        simulator: BackupSimulator | None = None,
        language: str | None = None,
    ):
        self.language = language
        self.base_settings = settings
        self.demo = demo
        self.user_id = user_id
        self.stdin = stdin
        self.out = stdout
        self.interactive = stdin.isatty()
        self.color = stdout.isatty()
        self.simulator = simulator
        self.secret = secrets.token_hex(16)
        self.state = ConsoleState()
        self.slack = LoopbackSlack()
        self.runtime: Runtime | None = None
        self._busy = asyncio.Lock()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._message_of_key: dict[str, str] = {}
        self._home_view: dict | None = None

    # --- set-up -------------------------------------------------------------

    async def start(self) -> None:
        await self.slack.start()
        settings = self.base_settings.with_overrides(
            slack_bot_token="xoxb-console",
            slack_signing_secret=self.secret,
            slack_api_url=self.slack.api_url,
        )
        transport = None
        if self.demo:
            self._tmp = tempfile.TemporaryDirectory(prefix="backupbot-demo-")
            self.simulator = self.simulator or BackupSimulator(completion_seconds=15)
            transport = SimulatorTransport(self.simulator)
            settings = settings.with_overrides(
                vps_api_url="http://simulator.demo/api/v1",
                vps_api_token="demo-token",
                db_path=str(Path(self._tmp.name) / "demo.db"),
                admins=settings.admins | {self.user_id},
                notify_channel=settings.notify_channel or DEMO_NOTIFY_CHANNEL,
                poll_seconds=min(settings.poll_seconds, 3.0),
            )
        self.runtime = build_runtime(settings, api_transport=transport, process_before_response=True)
        if self.language:  # what `/backup language` would store: the console follows it from then on
            await asyncio.to_thread(self.runtime.store.set_language, self.user_id, self.language)
        await self.runtime.start()

    async def stop(self) -> None:
        if self.runtime:
            await self.runtime.aclose()
        await self.slack.stop()
        if self._tmp:
            self._tmp.cleanup()

    # --- the loop -------------------------------------------------------------

    async def main(self) -> int:
        await self.start()
        watcher = asyncio.create_task(self._watch())
        loop, me = asyncio.get_running_loop(), asyncio.current_task()
        for signum in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal still cleans up the demo's files
            loop.add_signal_handler(signum, me.cancel)
        try:
            self._banner()
            while True:
                line = await self._read("> ")
                if line is None:
                    break
                async with self._busy:
                    if not await self.handle(line.strip()):
                        break
        finally:
            watcher.cancel()
            await self.stop()
        self._say("")
        return 0

    def _banner(self) -> None:
        mode = (
            "the built-in API simulator (sample servers 12345, 12346, 12347)"
            if self.demo
            else (f"the backup API at {self.runtime.settings.vps_api_url}")
        )
        admin = " You are an admin." if self.user_id in self.runtime.ops.admins else ""
        self._say(f"vps-backup-bot console — acting as {self.user_id} in #console, against {mode}.{admin}")
        self._say("Type /backup help, a button's number, 'wait', or 'quit'.\n")

    async def _read(self, prompt: str) -> str | None:
        if self.interactive:
            self.out.write(prompt)
            self.out.flush()
        line = await self._readline()
        if not line:
            return None
        if not self.interactive:
            self._say(f"{prompt}{line.rstrip()}")
        return line.rstrip("\n")

    def _readline(self) -> asyncio.Future:
        """Read a line on a daemon thread: a pending read must not keep Ctrl-C from ending the program."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def deliver(setter, value) -> None:
            if not future.done():
                setter(value)

        def read() -> None:
            try:
                line = self.stdin.readline()
            except (OSError, ValueError) as exc:
                outcome = (future.set_exception, exc)
            else:
                outcome = (future.set_result, line)
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(deliver, *outcome)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        return future

    async def _watch(self) -> None:
        """Print what arrives while the person is not doing anything (the follower's news)."""
        while True:
            await asyncio.sleep(0.2)
            if not self._busy.locked() and self.slack.recorder.last_seq() > self.state.seen:
                async with self._busy:
                    if self.interactive:
                        self.out.write("\r\033[K")  # news arrives over the idle prompt; draw it again after
                    await self._render_new()
                    if self.interactive:
                        self.out.write("> ")
                        self.out.flush()

    async def handle(self, line: str) -> bool:
        """Act on one typed line; False to leave."""
        if not line:
            return True
        word = line.split()[0].lower()
        if word in ("quit", "exit", "/quit"):
            return False
        if word in ("help", "?"):
            self._say(CONSOLE_HELP)
        elif word == "wait":
            await self._wait(line)
        elif word == "as":
            self._act_as(line.split()[1:])
        elif word == "home":
            await self.open_home()
        elif line.startswith("/backup"):
            await self.command(line[len("/backup") :].strip())
        elif line.startswith("/"):
            self._say(f"Only /backup is installed here, not {line.split()[0]}.")
        elif is_number(line.strip("[]")):
            await self.press(int(line.strip("[]")))
        else:
            self._say("Type a /backup command, a button number, 'wait' or 'quit' ('help' for more).")
        return True

    def _act_as(self, args: list[str]) -> None:
        try:
            self.user_id = parse_user(args[0]) if len(args) == 1 else parse_user("")
        except UsageError as exc:
            self._say(f"as takes one member ID, like: as U0BOB ({exc.problem.replace('`', '')})")
            return
        admin = " (an admin)" if self.user_id in self.runtime.ops.admins else ""
        self._say(f"(now acting as {self.user_id}{admin})")

    async def _wait(self, line: str) -> None:
        parts = line.split()
        try:
            seconds = float(parts[1]) if len(parts) > 1 else 5.0
        except ValueError:
            self._say("wait takes a number of seconds, e.g. wait 20")
            return
        seconds = max(0.0, min(seconds, MAX_WAIT))
        self._say(f"(waiting {seconds:g} s…)")
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            await self._render_new()

    # --- talking to the app as Slack would ---------------------------------------

    async def _dispatch(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
        raw = body.encode()
        headers = {
            "content-type": content_type,
            **{k.lower(): v for k, v in sign(self.secret, raw).items()},
        }
        response = await self.runtime.app.async_dispatch(SlackRequest(body=body, headers=headers))
        return response.status, response.body or ""

    async def command(self, text: str) -> None:
        key = secrets.token_hex(6)
        form = slash_command_body(
            text, user_id=self.user_id, channel_id=CONSOLE_CHANNEL, response_url=self.slack.response_url(key)
        )
        status, body = await self._dispatch(urlencode(form))
        if status != 200:
            self._say(f"(Slack would show: dispatch_failed, status {status})")
        elif body:
            self._render_message(json.loads(body), key, header="only visible to you")
        await self._render_new()

    async def open_home(self) -> None:
        """Open the bot's Home tab, as Slack reports it (an Events API callback, signed, as JSON)."""
        status, _ = await self._dispatch(json.dumps(app_home_opened_body(self.user_id)), "application/json")
        if status != 200:
            self._say(f"(Slack would show: the Home tab failed, status {status})")
        await self._render_new()

    async def press(self, number: int) -> None:
        target = self.state.buttons.get(number)
        if target is None:
            self._say(f"There is no button [{number}].")
            return
        confirm = target.element.get("confirm")
        if confirm and not await self._confirm_dialog(confirm):
            self._say("(dialog dismissed: nothing was sent)")
            return
        key = secrets.token_hex(6)
        payload = block_actions_payload(
            user_id=self.user_id,
            channel_id=CONSOLE_CHANNEL,
            response_url=self.slack.response_url(key),
            action=target.element,
            block_id=target.block_id,
            view=target.view,
        )
        self._message_of_key[key] = target.message_key
        status, _ = await self._dispatch(urlencode({"payload": json.dumps(payload)}))
        if status != 200:
            self._say(f"(Slack would show: this button failed, status {status})")
        await self._render_new()

    async def _confirm_dialog(self, confirm: dict) -> bool:
        self._say(
            self._box(
                confirm["title"]["text"],
                [html.unescape(confirm["text"]["text"])],
                f"[y] {confirm['confirm']['text']}   [n] {confirm['deny']['text']}",
            )
        )
        answer = await self._read(f"{confirm['confirm']['text']}? (y/N) ")
        return (answer or "").strip().lower() in ("y", "yes")

    async def _modal(self, view: dict) -> None:
        """Show a modal, ask for its inputs at the prompt, and submit it as Slack would."""
        inputs = [b for b in view.get("blocks", []) if b.get("type") == "input"]
        lines = [line for b in view.get("blocks", []) if b.get("type") != "input" for line in self._block_lines(b, "")]
        self._say(
            self._box(
                view["title"]["text"],
                lines,
                f"[submit] {view.get('submit', {}).get('text', 'Submit')}   "
                f"[empty line] {view.get('close', {}).get('text', 'Cancel')}",
            )
        )
        while True:
            values: dict[str, dict[str, str | list[str]]] = {}
            for block in inputs:
                if block["element"].get("type") == "checkboxes":
                    values[block["block_id"]] = {block["element"]["action_id"]: await self._checkboxes(block)}
                    continue
                hint = block.get("hint", {}).get("text", "")
                if hint:
                    self._say(f"  ({hint})")
                typed = await self._read(f"{block['label']['text']}: ")
                if typed is not None and not typed.strip() and block.get("optional"):
                    continue
                if not typed or not typed.strip():
                    self._say("(modal closed: nothing was sent)")
                    return
                values[block["block_id"]] = {block["element"]["action_id"]: typed.strip()}
            payload = view_submission_payload(user_id=self.user_id, view=view, values=values)
            status, body = await self._dispatch(urlencode({"payload": json.dumps(payload)}))
            answer = json.loads(body) if body else {}
            if status == 200 and answer.get("response_action") == "errors":
                for message in answer.get("errors", {}).values():
                    self._say(self._paint(f"  ✖ {message}", "31"))
                continue
            return

    async def _checkboxes(self, block: dict) -> list[str]:
        """Each option asked for in turn, [Y/n] when it starts ticked; returns the values ticked."""
        element = block["element"]
        ticked = {o["value"] for o in element.get("initial_options", [])}
        chosen = []
        for option in element.get("options", []):
            on = option["value"] in ticked
            typed = (await self._read(f"{option['text']['text']}? {'[Y/n]' if on else '[y/N]'} ") or "").strip().lower()
            if typed in ("y", "yes") or (on and typed not in ("n", "no")):
                chosen.append(option["value"])
        return chosen

    # --- rendering ------------------------------------------------------------------

    async def _render_new(self) -> None:
        """Render what the bot sent since last time; a modal it opened is run here, in turn."""
        while records := self.slack.recorder.since(self.state.seen):
            self.state.seen = records[-1].seq
            for record in records:
                if record.kind == "api" and record.name == "views.open":
                    await self._modal(record.data["view"])
                else:
                    self._render_record(record)

    def _render_record(self, record: Record) -> None:
        data = record.data
        if record.kind == "response":
            replaces = data.get("replace_original")
            header = "only visible to you" + (" · updates the message above" if replaces else "")
            self._render_message(data, self._message_of_key.get(record.name, record.name), header=header)
        elif record.kind == "api" and record.name == "chat.postMessage":
            channel = CHANNEL_NAMES.get(data.get("channel"), data.get("channel"))
            self._render_message(data, f"post-{record.seq}", header=f"posted in #{channel} by backups")
        elif record.kind == "api" and record.name == "chat.postEphemeral":
            self._render_message(data, f"eph-{record.seq}", header="only visible to you")
        elif record.kind == "api" and record.name == "views.publish":
            self._home_view = data.get("view") or {}
            try:
                self._render_message(
                    self._home_view, f"home-{record.seq}", header=f"the Home tab of {data.get('user_id')}"
                )
            finally:
                self._home_view = None
        elif record.kind == "api" and record.name == "chat.update":
            channel = CHANNEL_NAMES.get(data.get("channel"), data.get("channel"))
            self._render_message(data, f"update-{record.seq}", header=f"updated in #{channel} (the card above)")

    def _render_message(self, message: dict, key: str, *, header: str) -> None:
        lines = []
        for block in message.get("blocks") or [
            {"type": "section", "text": {"type": "mrkdwn", "text": message.get("text", "")}}
        ]:
            lines.extend(self._block_lines(block, key))
        self._say(self._paint(f"── {header} " + "─" * max(4, 60 - len(header)), "2"))
        for line in lines:
            self._say("  " + line)
        self._say("")

    def _block_lines(self, block: dict, key: str) -> list[str]:
        kind = block.get("type")
        if kind == "section":
            lines = _mrkdwn(block.get("text", {}).get("text", ""), self.color).splitlines()
            for f in block.get("fields", []):
                lines.append(_mrkdwn(f.get("text", ""), self.color))
            accessory = block.get("accessory")
            if accessory and accessory.get("type") == "button":
                lines.append(self._button(accessory, block.get("block_id", ""), key))
            return lines
        if kind == "context":
            return [
                self._paint(_mrkdwn(e.get("text", ""), False), "2") for e in block.get("elements", []) if "text" in e
            ]
        if kind == "divider":
            return ["─" * 56]
        if kind == "header":
            return [self._paint(block["text"]["text"].upper(), "1")]
        if kind == "actions":
            return [
                "   ".join(
                    self._button(e, block.get("block_id", ""), key)
                    for e in block.get("elements", [])
                    if e.get("type") == "button"
                )
            ]
        return []

    def _button(self, element: dict, block_id: str, key: str) -> str:
        number = self.state.next_number
        self.state.next_number += 1
        self.state.buttons[number] = Pressable(element, block_id, key, self._home_view)
        label = f"[{number}] {element['text']['text']}"
        return self._paint(label, "31" if element.get("style") == "danger" else "36")

    def _box(self, title: str, lines: list[str], footer: str) -> str:
        width = 62
        out = ["┌─ " + title + " " + "─" * max(2, width - len(title) - 4)]
        out += ["│ " + line for text in lines for line in text.splitlines()]
        out += ["│", "│ " + footer, "└" + "─" * width]
        return "\n".join(out)

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def _mrkdwn(text: str, color: bool) -> str:
    """Slack mrkdwn as terminal text: dates, mentions, emoji codes, bold, then entities."""
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", r"@\1", text)
    text = re.sub(r"<#([A-Z0-9]+)(?:\|[^>]*)?>", lambda m: "#" + CHANNEL_NAMES.get(m.group(1), m.group(1)), text)
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    if color:
        text = re.sub(r"\*([^*\n]+)\*", "\033[1m\\1\033[0m", text)
    return html.unescape(text)


def run_console(settings: Settings, **options) -> int:
    """Run a console session; `options` are Console's (demo, user_id, stdin, stdout, simulator)."""
    console = Console(settings, **options)
    try:
        return asyncio.run(console.main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.out.write("\n")
        return 130
