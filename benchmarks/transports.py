"""Why the backup API client runs httpx over aiohttp: N concurrent list calls through each transport.

Starts the API simulator (`vps-backup-bot fake-api --latency`, its own process) and times
`BackupApi.list_backups` called N times at once, with httpx's own transport and with
httpx-aiohttp's. The floor is 1x the latency: the calls should overlap.

    python benchmarks/transports.py [--latency 1.0] [--calls 50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.backup_api import BackupApi, default_transport


async def timed(url: str, transport: httpx.AsyncBaseTransport, calls: int) -> float:
    api = BackupApi(url, "bench", transport=transport, timeout=60)
    await api.list_backups(server_id=12345)  # warm the pool
    started = time.monotonic()
    await asyncio.gather(*(api.list_backups(server_id=12345) for _ in range(calls)))
    elapsed = time.monotonic() - started
    await api.aclose()
    return elapsed


async def main(latency: float, counts: list[int]) -> None:
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
        print(f"{'calls':>6} {'httpx own pool':>16} {'httpx over aiohttp':>20}   (API latency {latency:g} s)")
        for calls in counts:
            own = await timed(url, httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=500)), calls)
            over = await timed(url, default_transport(), calls)
            print(f"{calls:>6} {own:>9.2f} s {own / latency:>4.2f}× {over:>12.2f} s {over / latency:>4.2f}×")
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
    args = parser.parse_args()
    asyncio.run(main(args.latency, [int(n) for n in args.calls.split(",")]))
