"""Replies: one place turns failures into words; announcements kept until Slack takes them."""

import contextlib

from bot.inflight import InFlight
from bot.observe import Metrics
from bot.ops import Operations
from bot.slack.notifier import ResponseUrls, SlackNotifier
from bot.slack.replies import Outcome, answer
from bot.slack.reports import SlackReporter


class Sent(list):
    async def __call__(self, message):
        self.append(message)


class QuietNotifier:
    async def announce(self, where, message, server_id=None):
        return None


class SilentOps:
    """The one thing answer() asks of the use cases: the person's language (here, the source language)."""

    def speaking_to(self, _user_id):
        return contextlib.nullcontext()


class Deps:
    ops = SilentOps()
    notifier = QuietNotifier()
    inflight = InFlight()
    metrics = Metrics()


async def test_a_bug_still_gets_the_person_a_plain_reply(caplog):
    sent = Sent()

    async def broken():
        raise RuntimeError("secret internals")

    await answer(Deps(), broken, sent)
    (message,) = sent
    assert "Something went wrong inside the bot" in message["text"]
    assert "secret internals" not in str(message) and "Traceback" not in str(message)
    assert "Reference for the admins" in str(message)
    assert "secret internals" in caplog.text, "the details go to the log"


async def test_errors_can_go_elsewhere_than_results():
    sent, errors = Sent(), Sent()

    async def refused():
        from bot.ops import BackupNotFound

        raise BackupNotFound(5)

    await answer(Deps(), refused, sent, send_error=errors)
    assert sent == [] and "no backup *#5*" in errors[0]["text"]


async def test_announcements_go_out_before_the_reply():
    order = []

    class Notifier:
        async def announce(self, where, message, server_id=None):
            order.append(("announce", where))
            return None

    class WithNotifier:
        ops = SilentOps()
        notifier = Notifier()
        inflight = InFlight()
        metrics = Metrics()

    async def reply(message):
        order.append(("reply", message["text"]))

    async def work():
        return Outcome({"text": "done", "blocks": []}, [{"text": "news", "blocks": []}])

    await answer(WithNotifier(), work, reply, channel_id="C9")
    assert order == [("announce", "C9"), ("reply", "done")]


async def test_notifier_prefers_the_notify_channel(store):
    calls = []

    class Client:
        async def chat_postMessage(self, **kwargs):
            calls.append(kwargs["channel"])

    await SlackNotifier(Client(), store, "CNOTIFY", ResponseUrls()).announce("CHERE", {"text": "x", "blocks": []})
    await SlackNotifier(Client(), store, None, ResponseUrls()).announce("CHERE", {"text": "x", "blocks": []})
    assert calls == ["CNOTIFY", "CHERE"]


async def test_an_alert_nobody_asked_for_goes_only_to_the_notify_channel(store):
    from bot.ops import AlertChange
    from bot.store import AlertKind

    calls = []

    class Client:
        async def chat_postMessage(self, **kwargs):
            calls.append((kwargs["channel"], kwargs["text"]))
            return {"ok": True, "channel": kwargs["channel"], "ts": "1.1"}

    alert = store.open_alert(1, AlertKind.FAILED.value, 7, {"id": 7, "type": "automatic", "at": 0, "status": "failed"})
    for notify_channel in (None, "CNOTIFY"):
        notifier = SlackNotifier(Client(), store, notify_channel, ResponseUrls())
        await SlackReporter(Operations(None, store), notifier, None).alert_changed(AlertChange(alert, "opened", "web"))
    assert len(calls) == 1 and calls[0][0] == "CNOTIFY", "with no channel of its own and none to notify: logged only"
    assert calls[0][1].startswith(":rotating_light: *Backup #7 of web (1) FAILED* — it ended *failed*")
    assert store.alert_cards(alert.id) == [("CNOTIFY", "1.1")], "kept, so that its recovery edits it"


async def test_a_reply_is_posted_as_json_and_once_more_after_a_dropped_connection(monkeypatch):
    """What slack_sdk's webhook client did: the message as JSON, ephemeral, and one more try when Slack drops
    the connection."""
    import asyncio
    import json

    from bot.slack import notifier

    monkeypatch.setattr(notifier, "REPLY_RETRY_SECONDS", 0.0)
    bodies: list[dict] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        bodies.append(json.loads(await reader.readexactly(length)))
        if len(bodies) > 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    replies = ResponseUrls(f"http://{host}/api/")
    try:
        status = await replies.send(f"http://{host}/response/k", {"text": "hi", "blocks": []}, replace_original=True)
        assert status == 200
        assert bodies == [{"response_type": "ephemeral", "replace_original": True, "text": "hi", "blocks": []}] * 2
    finally:
        await replies.aclose()
        server.close()
        await server.wait_closed()
