"""Load benchmark: the real `vps-backup-bot serve` process under bursts of /backup list.

Starts, all on 127.0.0.1: the backup API simulator (`vps-backup-bot fake-api --latency L`),
a loopback Slack that records response_url posts, the bot (`vps-backup-bot serve`), and,
for comparison, a bare Bolt app that only acks. Then fires bursts of signed
`/backup list SERVER` commands at once and prints, per burst: ack p50/p99/max, the
time from the first request to the last answer and its ratio to the API latency,
answers missing or doubled, and the serving process's peak RSS. Last, the time to
render a 300-backup list. Exit status 0 only if every target is met.

    python benchmarks/load.py [--latency 1.0] [--bursts 50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.sim.slack_loopback import LoopbackSlack, sign, slash_command_body  # noqa: E402

SECRET = "benchmark-signing-secret"
ADMIN = "U0BENCH"
TARGET_ACK_P99 = 0.100
TARGET_ACK_MAX = 3.0
TARGET_RATIO = 1.5
TARGET_RSS_MIB = 150
TARGET_RENDER = 0.050


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def command() -> list[str]:
    exe = shutil.which("vps-backup-bot")
    return [exe] if exe else [sys.executable, "-m", "bot"]


async def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start")
            await asyncio.sleep(0.05)


async def burst(url: str, slack: LoopbackSlack, count: int, tag: str, expect_answers: bool) -> dict:
    """Fire `count` signed commands at once; measure acks and, if expected, the answers."""
    keys = [f"{tag}-{i}" for i in range(count)]
    bodies = []
    for key in keys:
        form = slash_command_body(
            "list 12345", user_id=ADMIN, channel_id="C0BENCH", response_url=slack.response_url(key)
        )
        bodies.append(urlencode(form).encode())
    acks: list[float] = []
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(body: bytes) -> None:
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
            started = time.monotonic()
            async with http.post(f"{url}/slack/events", data=body, headers=headers) as response:
                await response.read()
                statuses.append(response.status)
            acks.append(time.monotonic() - started)

        first = time.monotonic()
        await asyncio.gather(*(one(b) for b in bodies))
        answered: dict[str, int] = {}
        last = first
        if expect_answers:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                records = [r for r in slack.recorder.all() if r.kind == "response" and r.name.startswith(tag + "-")]
                if len({r.name for r in records}) >= count:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)  # a late duplicate would show up here
            for r in slack.recorder.all():
                if r.kind == "response" and r.name.startswith(tag + "-"):
                    answered[r.name] = answered.get(r.name, 0) + 1
                    last = max(last, r.at)
    acks.sort()
    return {
        "count": count,
        "ok": statuses.count(200),
        "p50": statistics.median(acks),
        "p99": acks[min(len(acks) - 1, int(len(acks) * 0.99))],
        "max": acks[-1],
        "last_answer": last - first,
        "missing": sum(1 for k in keys if k not in answered) if expect_answers else 0,
        "doubled": sum(1 for n in answered.values() if n > 1),
    }


def render_seconds() -> float:
    from bot.backup_api import Backup, Server
    from bot.ops import Listing
    from bot.slack.views.messages import listing_message

    now = datetime.now(UTC)
    backups = [
        Backup(
            id=n,
            server=Server(7, "big"),
            backup_type="automatic",
            status="completed",
            size_mb=4000 + n,
            created_at=now - timedelta(hours=n),
            expires_at=now + timedelta(days=20),
            description=f"nightly {n}",
        )
        for n in range(300)
    ]
    listing = Listing(backups, 7, None, is_admin=True)
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        listing.backups.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        listing_message(listing, now)
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings)


async def main(latency: float, bursts: list[int]) -> int:
    slack = await LoopbackSlack().start()
    api_port, bot_port, bare_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VPS_", "BACKUPBOT_"))}
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"backupbot-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    env_bot = {
        **env,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "VPS_API_URL": f"http://127.0.0.1:{api_port}/api/v1",
        "VPS_API_TOKEN": "bench",
        "BACKUPBOT_DB": str(workdir / "bench.db"),
        "BACKUPBOT_ADMINS": ADMIN,
    }
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [*command(), "fake-api", "--port", str(api_port), "--latency", str(latency)], env=env, **quiet
        ),
        subprocess.Popen(
            [*command(), "serve", "--host", "127.0.0.1", "--port", str(bot_port)], env=env_bot, cwd=workdir, **quiet
        ),
        subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "bare_app.py"), str(bare_port), SECRET, slack.api_url],
            env=env,
            **quiet,
        ),
    ]
    api, bot, bare = procs
    results = []
    try:
        await wait_healthy(f"http://127.0.0.1:{api_port}", api)
        await wait_healthy(f"http://127.0.0.1:{bot_port}", bot)
        await wait_healthy(f"http://127.0.0.1:{bare_port}", bare)
        bot_url, bare_url = f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{bare_port}"
        # A first burst pays for first-time code paths and connection set-up in either app: discard it.
        await burst(bare_url, slack, max(bursts), "warmbare", expect_answers=False)
        await burst(bot_url, slack, max(bursts), "warm", expect_answers=True)
        for index, n in enumerate(bursts):
            results.append(("bare", await burst(bare_url, slack, n, f"bare{index}", expect_answers=False)))
            results.append(("bot", await burst(bot_url, slack, n, f"bot{index}", expect_answers=True)))
        rss = peak_rss_mib(bot.pid)
        bare_rss = peak_rss_mib(bare.pid)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
        await slack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    render_min, render_median = render_seconds()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; backup API latency {latency:g} s")
    print(
        f"{'app':<5} {'burst':>5} {'acked':>6} {'ack p50':>9} {'ack p99':>9} {'ack max':>9} "
        f"{'last answer':>12} {'× latency':>10} {'missing':>8} {'doubled':>8}"
    )
    failures = []
    for app, r in results:
        answer = f"{r['last_answer']:.3f} s" if app == "bot" else "-"
        ratio = f"{r['last_answer'] / latency:.2f}" if app == "bot" else "-"
        print(
            f"{app:<5} {r['count']:>5} {r['ok']:>6} {r['p50'] * 1000:>7.1f}ms {r['p99'] * 1000:>7.1f}ms "
            f"{r['max'] * 1000:>7.1f}ms {answer:>12} {ratio:>10} {r['missing']:>8} {r['doubled']:>8}"
        )
        if app != "bot":
            continue
        if r["ok"] != r["count"] or r["missing"] or r["doubled"]:
            failures.append(
                f"burst {r['count']}: {r['count'] - r['ok']} not acked, {r['missing']} missing, {r['doubled']} doubled"
            )
        if r["max"] > TARGET_ACK_MAX:
            failures.append(f"burst {r['count']}: an ack took {r['max']:.2f} s (> 3 s)")
        if r["count"] == 50 and r["p99"] > TARGET_ACK_P99:
            failures.append(f"burst 50: ack p99 {r['p99'] * 1000:.0f} ms (> 100 ms)")
        if r["count"] == 50 and r["last_answer"] > TARGET_RATIO * latency:
            failures.append(f"burst 50: last answer at {r['last_answer'] / latency:.2f}× latency (> 1.5×)")
    bares = [r for app, r in results if app == "bare"]
    bots = [r for app, r in results if app == "bot"]
    for bare_r, bot_r in zip(bares, bots, strict=True):
        print(
            f"bot/bare ack ratio at burst {bot_r['count']}: p50 {bot_r['p50'] / bare_r['p50']:.2f}×, "
            f"p99 {bot_r['p99'] / bare_r['p99']:.2f}×"
        )
    print(f"peak RSS: bot {rss:.1f} MiB, bare Bolt {bare_rss:.1f} MiB (target < {TARGET_RSS_MIB} MiB)")
    print(
        f"render 300-backup list: min {render_min * 1000:.2f} ms, median {render_median * 1000:.2f} ms "
        f"(target < {TARGET_RENDER * 1000:.0f} ms)"
    )
    if rss > TARGET_RSS_MIB:
        failures.append(f"peak RSS {rss:.0f} MiB (> {TARGET_RSS_MIB})")
    if render_median > TARGET_RENDER:
        failures.append(f"render {render_median * 1000:.0f} ms (> 50 ms)")
    print("targets: " + ("all met" if not failures else "NOT met: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds each backup-API call takes (default 1)")
    parser.add_argument("--bursts", default="50,200", help="comma-separated burst sizes (default 50,200)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.latency, [int(n) for n in args.bursts.split(",")])))
