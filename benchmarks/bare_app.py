"""The baseline: a bare Bolt AsyncApp doing the least a `/backup list` can do, served as the bot is served.

It acks `/backup`, makes one backup-API call, and posts one reply to the command's response_url —
on the same libraries as the bot: Bolt's AsyncApp on uvicorn (uvloop, httptools), the backup API
through httpx (over httpx-aiohttp, one pooled client, as the bot), the reply through slack_sdk's
AsyncWebhookClient on one pooled aiohttp session. No store, no permissions, no rendering.

Run by benchmarks/load.py:

    python benchmarks/bare_app.py PORT SIGNING_SECRET SLACK_API_URL API_URL [--api httpx-aiohttp|httpx|aiohttp|sleep:S]

`--api` is how the one API call is made: `httpx-aiohttp` (default), `httpx` (httpx's own transport),
`aiohttp` (no httpx), or `sleep:S` (no call: wait S seconds, as the issue's first baseline did).
"""

import argparse
import asyncio

import aiohttp
import httpx
import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient


def api_caller(how: str, api_url: str):
    """An async function (server_id) -> number of backups, made the way `how` says."""
    headers = {"Authorization": "Bearer bench", "Accept": "application/json"}
    if how.startswith("sleep:"):
        seconds = float(how.split(":", 1)[1])

        async def sleep(_server_id: str) -> int:
            await asyncio.sleep(seconds)
            return 0

        return sleep
    if how == "aiohttp":
        holder: dict[str, aiohttp.ClientSession] = {}

        async def raw(server_id: str) -> int:
            if "s" not in holder:
                holder["s"] = aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=500))
            async with holder["s"].get(f"{api_url}/backups/", params={"server_id": server_id}) as response:
                return len((await response.json())["results"])

        return raw
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    if how == "httpx":
        transport = httpx.AsyncHTTPTransport(limits=limits)
    elif how == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=limits)
    else:
        raise SystemExit(f"--api: unknown {how!r}")
    client = httpx.AsyncClient(base_url=api_url.rstrip("/") + "/", headers=headers, timeout=60, transport=transport)

    async def through_httpx(server_id: str) -> int:
        response = await client.get("backups/", params={"server_id": server_id})
        response.raise_for_status()
        return len(response.json()["results"])

    return through_httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("secret")
    parser.add_argument("slack_api_url")
    parser.add_argument("api_url")
    parser.add_argument("--api", default="httpx-aiohttp")
    args = parser.parse_args()

    app = AsyncApp(
        name="bare",
        client=AsyncWebClient(token="xoxb-bare", base_url=args.slack_api_url),
        signing_secret=args.secret,
        raise_error_for_unhandled_request=False,
    )
    call_api = api_caller(args.api, args.api_url)
    replies: dict[str, aiohttp.ClientSession] = {}

    @app.command("/backup")
    async def backup(ack, command: dict) -> None:
        await ack()
        server = (command.get("text") or "").split()[-1]
        count = await call_api(server)
        if "s" not in replies:
            replies["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        webhook = AsyncWebhookClient(command["response_url"], session=replies["s"])
        await webhook.send(response_type="ephemeral", text=f"Server {server} has {count} backups.")

    handler = AsyncSlackRequestHandler(app)

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await handler(scope, receive, send)

    uvicorn.run(asgi, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
