"""HTTP stacks for the backup API: N concurrent list calls through each, wall time and client CPU.

Starts the API simulator (`vps-backup-bot fake-api --latency`, its own process) and, on uvloop as
`serve` runs, calls `GET /backups/?server_id=12345` N times at once through:

* `bot`           — the bot: `BackupApi` on its own `AiohttpTransport` (httpx's face, one aiohttp session);
* `httpx-aiohttp` — `BackupApi` over httpx-aiohttp over aiohttp (the bot before issue 25; the bare app's stack);
* `httpx-own`     — `BackupApi` on httpx's own transport (httpcore), pool limits raised to 500;
* `httpx-default` — `BackupApi` on httpx's own transport with httpx's default limits (100 connections);
* `aiohttp`       — one aiohttp session, JSON decoded, no httpx at all (the floor).

Each stack gets a fresh client, one warm-up call, then the burst; rounds alternate the order. Printed:
median (min-max) of the wall time as a multiple of the latency, and of the client process's CPU per call
(getrusage: every thread). The floor for wall time is 1x the latency: the calls should overlap.

    python benchmarks/transports.py [--latency 1.0] [--calls 50,200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.backup_api import BackupApi, default_transport

STACKS = ("bot", "httpx-aiohttp", "httpx-own", "httpx-default", "aiohttp")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(url: str, stack: str, calls: int) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) for `calls` concurrent list calls through `stack`."""
    if stack == "aiohttp":
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=500),
            headers={"Authorization": "Bearer bench", "Accept": "application/json"},
        )

        async def one() -> object:
            async with session.get(f"{url}/backups/", params={"server_id": 12345}) as response:
                return await response.json()

        close = session.close
    else:
        transport = {
            "bot": default_transport,
            "httpx-aiohttp": lambda: AiohttpTransport(limits=httpx.Limits(max_connections=500)),
            "httpx-own": lambda: httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=500)),
            "httpx-default": httpx.AsyncHTTPTransport,
        }[stack]()
        api = BackupApi(url, "bench", transport=transport, timeout=60)

        async def one() -> object:
            return await api.list_backups(server_id=12345)

        close = api.aclose
    await one()  # warm: the first call pays for imports and the first connection
    cpu0, started = cpu(), time.monotonic()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall, spent = time.monotonic() - started, cpu() - cpu0
    await close()
    return wall, spent


def spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


async def main(latency: float, counts: list[int], rounds: int) -> None:
    port = free_port()
    exe = shutil.which("vps-backup-bot")
    command = [exe] if exe else [sys.executable, "-m", "bot"]
    proc = subprocess.Popen(
        [*command, "fake-api", "--port", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for r in range(rounds):
            order = STACKS if r % 2 == 0 else tuple(reversed(STACKS))
            for calls in counts:
                for stack in order:
                    results.setdefault((stack, calls), []).append(await timed(url, stack, calls))
        print(f"API latency {latency:g} s; {rounds} rounds, median (min–max); client on uvloop")
        print(f"{'calls':>5} {'stack':<14} {'wall × latency':>22} {'client CPU per call':>26}")
        for calls in counts:
            for stack in STACKS:
                runs = results[(stack, calls)]
                walls = [w / latency for w, _ in runs]
                cpus = [c / calls * 1000 for _, c in runs]
                print(f"{calls:>5} {stack:<14} {spread(walls, '.2f'):>22} {spread(cpus, '.3f') + ' ms':>26}")
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--calls", default="50,200")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import uvloop

    uvloop.run(main(args.latency, [int(n) for n in args.calls.split(",")], args.rounds))
