"""A bare Bolt AsyncApp that only acks /backup, served the same way as the bot: the baseline.

Run by benchmarks/load.py as `python benchmarks/bare_app.py PORT SIGNING_SECRET SLACK_API_URL`.
"""

import sys

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def main() -> None:
    port, secret, api_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    app = AsyncApp(client=AsyncWebClient(token="xoxb-bare", base_url=api_url), signing_secret=secret)

    @app.command("/backup")
    async def backup(ack) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await handler(scope, receive, send)

    uvicorn.run(asgi, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
