"""Where one `/backup list` spends its time in the bot: counts, then a CPU profile, then the idle loop.

    python benchmarks/profile_list.py [--latency 1.0] [--burst 200] [--bursts 5] [--idle 10] [--rate 500]

The setting is benchmarks/load.py's (the simulator, every API call taking LATENCY, a loopback Slack,
an admin sending signed `/backup list SERVER`). Three parts:

1. Counts (benchmarks/instrumented_serve.py: `serve` with counters around it), split into work done
   for a Slack request and work done by the background loop: per command, for one command alone and
   averaged over a burst — thread hops (`asyncio.to_thread`) by function, SQL statements by statement
   (sqlite3's trace callback on the store's connections), HTTP requests, log records; and per second
   while idle.
2. A CPU profile of the plain `vps-backup-bot serve` process under BURSTS bursts of BURST commands at
   once: py-spy samples every thread at RATE Hz; each sample is put into one step of the command (the
   first rule of STEPS its stack matches) and, separately, into the package of its innermost Python
   frame. Shares of samples are turned into ms per command with the process's CPU time measured over
   the same window (/proc schedstat, as load.py).
3. The same profile of the idle process over IDLE seconds: ms of CPU per second, by step.

Needs `py-spy` (pip install py-spy) and permission to attach to a child process (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import load  # noqa: E402
from load import ADMIN, SECRET, burst, cpu_between, cpu_sample, free_port, wait_healthy  # noqa: E402

from bot.sim.slack_loopback import LoopbackSlack  # noqa: E402

# Steps of a command, the first match wins: (label, test on the sample's frames). A frame is "func (file:line)".
# The order goes from the most specific (a store call in a worker thread) to the least (the event loop).
STEPS: list[tuple[str, str]] = [
    (
        "background loop (follower, chores, lease)",
        r"Follower\.|bot/follower\.py|bot/slack/safety\.py|expire_due|drain_outbox",
    ),
    (
        "store: Store.standing (who asks: at once, or a worker thread)",
        r"Store\.standing|Store\.language_of|Store\.role_of",
    ),
    ("store: Store.learn_servers (worker thread)", r"Store\.learn_servers"),
    ("store: Store.audit (worker thread)", r"Store\.audit"),
    ("store: Store.due_work (the background loop's probe)", r"Store\.due_work"),
    ("store: other Store calls", r"bot/store/"),
    ("thread pool: worker glue (take the call, hand the result back, wake the loop)", r"^POOL"),
    (
        "reply: ResponseUrls.send, the bare app's webhook client (JSON, aiohttp POST)",
        r"ResponseUrls\.send|slack_sdk/webhook",
    ),
    (
        "backup API call: BackupApi.list_backups (httpx, its aiohttp transport, JSON, Backup.from_json)",
        r"BackupApi\.|bot/backup_api\.py|api_caller\.<locals>",
    ),
    ("render: listing_message", r"bot/slack/views/"),
    (
        "thread hops, loop side: to_thread, submit, wrap the future, resume the awaiting task",
        r"to_thread \(|ThreadPoolExecutor\.submit|wrap_future|_chain_future|(Operations\._db|DurableWrites\.write) \([^;]*$",
    ),
    ("ops.list_backups: the rest (authorize, learn, audit)", r"Operations\.|bot/durable\.py"),
    ("i18n: speaking_to / language (awaiting the hop, context)", r"speaking_to|bot/i18n\.py|babel/"),
    (
        "answer(): observe, metrics, inflight, deliver",
        r"bot/slack/replies\.py|bot/observe\.py|bot/inflight\.py|prometheus_client/",
    ),
    ("listener: backup_command (parse, ack)", r"backup_command|bot/slack/commands\.py|bot/parsing\.py"),
    ("Bolt: signature check", r"SignatureVerifier|slack_sdk/signature"),
    ("Bolt: async_dispatch (middleware, matching, ack, listener runner)", r"slack_bolt/"),
    ("BotAsgi: read body, SlackRequest, respond", r"BotAsgi\.|bot/slack/requests\.py"),
    ("uvicorn + httptools: HTTP server side", r"uvicorn/protocols|httptools"),
    ("aiohttp client I/O callbacks (API call or reply, unattributed)", r"aiohttp/"),
    ("httpx / httpx-aiohttp (unattributed)", r"httpx/|httpx_aiohttp/"),
    ("thread hop: completion callbacks on the loop (asyncio futures)", r"asyncio/futures\.py|asyncio/threads\.py"),
    ("event loop itself (uvloop, C: epoll, sockets, task steps)", r"^LOOP$"),
]
# What every sample of a thread starts with: the process's own start, down to the event loop or to the pool
# worker's loop. Cut off before matching STEPS; what is left is the work being done.
LOOP_ROOT = "Runner.run (asyncio/runners.py"
POOL_ROOT = "_WorkItem.run (concurrent/futures/thread.py"
OTHER = "other (partial stacks, GC, interpreter)"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of the main thread and of all other threads (schedstat, ns precision)."""
    out = {"main thread (event loop)": 0.0, "other threads (the thread pool)": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out["main thread (event loop)" if int(tid) == pid else "other threads (the thread pool)"] += ns / 1e9
    return out


def parse_raw(path: Path) -> list[tuple[str, list[str], int]]:
    """py-spy's raw output: (thread name, frames root first, samples) per line."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        _, _, rest = stack.partition(": ")
        frames = rest.split(";")
        out.append((frames[0], frames[1:], int(n)))
    return out


def working_frames(frames: list[str]) -> list[str]:
    """The frames below the event loop's or the pool worker's own: LOOP alone (the loop's C code was running
    a callback with no Python frame of its own) or POOL first (a worker outside the submitted call)."""
    for i, frame in enumerate(frames):
        if frame.startswith(LOOP_ROOT):
            return frames[i + 1 :] or ["LOOP"]
        if frame.startswith(POOL_ROOT):
            return frames[i + 1 :] or ["POOL"]
    if any(f.startswith(("Thread._bootstrap", "_worker (concurrent")) for f in frames):
        return ["POOL", *frames]
    return frames


def step_of(frames: list[str]) -> str:
    if waiting(frames):
        return WAITING
    joined = ";".join(working_frames(frames))
    for label, pattern in STEPS:
        if re.search(pattern, joined):
            return label
    return OTHER


def package_of(frames: list[str]) -> str:
    """The package of the innermost Python frame (whose C calls it also carries: sqlite3, json, httptools…)."""
    if not frames:
        return "?"
    m = re.search(r"\(([^):]+)", frames[-1])
    path = m.group(1) if m else "?"
    if path.startswith("bot/"):
        return path.rsplit(".", 1)[0].replace("/", ".")
    top = path.split("/", 1)[0]
    return top.removesuffix(".py")


MAIN = "main thread (event loop)"
POOL = "other threads (the thread pool)"
WAITING = "(waiting: a worker blocked on the store's lock, or idle in the pool's queue)"


def _waiting_leaves() -> re.Pattern:
    """Innermost frames that are a thread waiting, not working: the store's `with self._write_lock:` and
    `with self._read_lock:`, and a pool worker's `work_queue.get(block=True)`. py-spy (without --native)
    cannot always tell such a thread is asleep; left in, they would count as CPU."""
    import inspect

    from bot.store.sqlite import SqliteStore

    lines = []
    for fn in (SqliteStore._writing, SqliteStore._reading):
        source, first = inspect.getsourcelines(inspect.unwrap(fn))
        lines += [
            f"SqliteStore.{fn.__name__} \\(bot/store/sqlite\\.py:{first + i}\\)"
            for i, line in enumerate(source)
            if "_lock:" in line
        ]
    return re.compile("(" + "|".join([*lines, r"_worker \(concurrent/futures/thread\.py:\d+\)"]) + ")$")


WAITING_LEAF = _waiting_leaves()


def waiting(frames: list[str]) -> bool:
    return bool(frames) and bool(WAITING_LEAF.search(frames[-1]))


def breakdown(samples, key, thread_ms: dict[str, float] | None = None) -> Counter:
    """ms (or ms/s) by `key(frames)`. With `thread_ms`, the kernel's CPU time of the main thread and of the
    others, each thread group's samples share out its own time: py-spy counts a worker blocked on the
    store's lock as busy, and so over-weights the pool; the kernel does not."""
    groups: dict[str, Counter] = {MAIN: Counter(), POOL: Counter()}
    for thread, frames, n in samples:
        if thread_ms and waiting(frames):
            continue
        groups[MAIN if thread == "MainThread" else POOL][key(frames)] += n
    out: Counter = Counter()
    for group, counts in groups.items():
        total = sum(counts.values())
        if not total:
            if thread_ms and thread_ms[group] > 0:
                out[f"({group}: CPU with no working sample)"] += thread_ms[group]
            continue
        for label, n in counts.items():
            out[label] += n / total * thread_ms[group] if thread_ms else n
    return out


def waiting_share(samples) -> float:
    """The share of the pool's samples that were a worker waiting (on the store's lock, mostly)."""
    pool = [(frames, n) for thread, frames, n in samples if thread != "MainThread"]
    total = sum(n for _, n in pool) or 1
    return sum(n for frames, n in pool if waiting(frames)) / total


def print_ranked(title: str, ms: Counter, unit: str, top: int = 40) -> None:
    total = sum(ms.values()) or 1
    print(f"\n{title}")
    for label, v in ms.most_common(top):
        print(f"  {v:7.3f} {unit}  {v / total * 100:5.1f}%  {label}")
    print(f"  {total:7.3f} {unit}  100.0%")


def print_side_by_side(title: str, bot: Counter, bare: Counter, top: int = 40) -> None:
    """ms per command in the bot and in the bare app, ranked by what the bot spends more."""
    rows = sorted(((bot[k] - bare[k], bot[k], bare[k], k) for k in {*bot, *bare}), reverse=True)
    print(f"\n{title}")
    print(f"  {'the bot':>8} {'bare':>8} {'bot-bare':>9}")
    for d, a, b, label in rows[:top]:
        print(f"  {a:8.3f} {b:8.3f} {d:+9.3f}  {label}")
    a, b = sum(bot.values()), sum(bare.values())
    print(f"  {a:8.3f} {b:8.3f} {a - b:+9.3f}  (all)")


# --- the processes ----------------------------------------------------------------------------


class Stack:
    """The simulator and a loopback Slack; bots are started on them as needed."""

    def __init__(self, latency: float):
        self.latency = latency
        self.dir = Path(tempfile.mkdtemp(prefix="backupbot-profile-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VPS_", "BACKUPBOT_"))}

    async def start(self) -> None:
        self.slack = await LoopbackSlack().start()
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api/v1"
        self.api = subprocess.Popen(
            [*load.command(), "fake-api", "--port", str(port), "--latency", str(self.latency)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await wait_healthy(f"http://127.0.0.1:{port}", self.api)

    async def bot(self, argv0: list[str], name: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        env = {
            **self.env,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "VPS_API_URL": self.api_url,
            "VPS_API_TOKEN": "bench",
            "BACKUPBOT_DB": str(self.dir / f"{name}.db"),
            "BACKUPBOT_ADMINS": ADMIN,
        }
        proc = subprocess.Popen(
            [*argv0, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, proc)
        return proc, url

    async def bare(self, how: str) -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "bare_app.py"),
                str(port),
                SECRET,
                self.slack.api_url,
                self.api_url,
                "--api",
                how,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, proc)
        return proc, url

    async def stop(self, *procs: subprocess.Popen) -> None:
        for proc in procs:
            proc.terminate()
            proc.wait(15)

    async def close(self) -> None:
        await self.stop(self.api)
        await self.slack.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


async def counts(url: str) -> dict[str, Counter]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_bench/counts") as r:
        data = await r.json()
    return {kind: Counter(values) for kind, values in data.items()}


def diff(after: dict[str, Counter], before: dict[str, Counter]) -> dict[str, Counter]:
    return {kind: after[kind] - before.get(kind, Counter()) for kind in after}


def print_counts(title: str, delta: dict[str, Counter], divisor: float, phase: str, unit: str) -> None:
    print(f"\n{title}")
    for kind, label in (
        ("hops", "thread hops"),
        ("at once", "store reads at once, on the event loop (no hop)"),
        ("sql", "SQL statements"),
        ("http", "HTTP requests"),
        ("logs", "log records"),
    ):
        rows = [
            (name.split("\t", 1)[1], n / divisor) for name, n in delta[kind].items() if name.startswith(phase + "\t")
        ]
        rows.sort(key=lambda r: -r[1])
        total = sum(n for _, n in rows)
        print(f"  {label}: {total:.2f} {unit}")
        for name, n in rows:
            if n >= 0.005:
                print(f"    {n:6.2f}  {name}")


# --- the three parts -------------------------------------------------------------------------------


async def part_counts(stack: Stack, args) -> None:
    proc, url = await stack.bot([sys.executable, str(HERE / "instrumented_serve.py")], "counted")
    try:
        slack = stack.slack
        await burst("bot", url, proc.pid, slack, args.burst, "warm", args.server, args.latency, -1)
        c0 = await counts(url)
        for i in range(5):
            await burst("bot", url, proc.pid, slack, 1, f"one{i}", args.server, args.latency, 0)
        c1 = await counts(url)
        await burst("bot", url, proc.pid, slack, args.burst, "many", args.server, args.latency, 0)
        c2 = await counts(url)
        await asyncio.sleep(1.0)
        c3, cpu0, t0 = await counts(url), cpu_sample(proc.pid), time.monotonic()
        await asyncio.sleep(args.idle)
        c4, cpu1, elapsed = await counts(url), cpu_sample(proc.pid), time.monotonic() - t0
    finally:
        await stack.stop(proc)
    print_counts("PER COMMAND, one `/backup list` at a time (mean of 5)", diff(c1, c0), 5, "command", "per command")
    print_counts(f"PER COMMAND, in a burst of {args.burst} at once", diff(c2, c1), args.burst, "command", "per command")
    bg = diff(c2, c0)
    print_counts("  (meanwhile, the background loop, over both)", bg, 1, "background", "in all")
    idle = diff(c4, c3)
    print_counts(
        f"IDLE, per second (over {elapsed:.1f} s; instrumented process: {cpu_between(cpu0, cpu1) * 1000 / elapsed:.2f} ms CPU/s)",
        idle,
        elapsed,
        "background",
        "per second",
    )


async def spy(pid: int, rate: int, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--threads",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    await asyncio.sleep(1.5)  # attached
    return proc


def unspy(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return " ".join(line.split(". ", 1)[-1] for line in out.decode().splitlines() if "Samples" in line)


async def profiled(stack: Stack, args, app: str, raw: Path, raw_idle: Path) -> dict:
    """Profile one app under the bursts, then idle. Returns the CPU per command and per idle second, each
    split by thread as the kernel counts it, and what py-spy said."""
    if app == "bot":
        proc, url = await stack.bot(load.command(), "profiled")
    else:
        proc, url = await stack.bare(args.bare_api)
    try:
        slack = stack.slack
        await burst(app, url, proc.pid, slack, args.burst, f"warm-{app}", args.server, args.latency, -1)
        await asyncio.sleep(0.5)
        spying = await spy(proc.pid, args.rate, raw)
        threads0, commands = thread_cpu(proc.pid), 0
        for i in range(args.bursts):
            b = await burst(app, url, proc.pid, slack, args.burst, f"p{i}-{app}", args.server, args.latency, i)
            commands += b.count
            await asyncio.sleep(0.5)
        per_command = {k: (v - threads0[k]) * 1000 / commands for k, v in thread_cpu(proc.pid).items()}
        said = unspy(spying)
        await asyncio.sleep(1.0)
        spying = await spy(proc.pid, args.rate, raw_idle)
        threads0, t0 = thread_cpu(proc.pid), time.monotonic()
        await asyncio.sleep(args.idle)
        elapsed = time.monotonic() - t0
        per_second = {k: (v - threads0[k]) * 1000 / elapsed for k, v in thread_cpu(proc.pid).items()}
        said_idle = unspy(spying)
    finally:
        await stack.stop(proc)
    return {"command": per_command, "idle": per_second, "said": said, "said_idle": said_idle}


async def part_profile(stack: Stack, args, keep: Path | None) -> None:
    files = {app: (stack.dir / f"{app}-bursts.txt", stack.dir / f"{app}-idle.txt") for app in ("bot", "bare")}
    bot = await profiled(stack, args, "bot", *files["bot"])
    bare = await profiled(stack, args, "bare", *files["bare"])
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        for pair in files.values():
            for path in pair:
                shutil.copy(path, keep / path.name)
    samples, bare_samples = parse_raw(files["bot"][0]), parse_raw(files["bare"][0])
    bot_ms, bare_ms = sum(bot["command"].values()), sum(bare["command"].values())
    print(
        f"\nCPU PROFILE: {args.bursts} bursts of {args.burst} at once, sampled at {args.rate} Hz by py-spy "
        f"(bot: {bot['said']}; bare: {bare['said']}). CPU per command, kernel's count (schedstat):"
    )
    for name in (MAIN, POOL):
        print(f"  the bot {bot['command'][name]:6.3f} ms   the bare app {bare['command'][name]:6.3f} ms   {name}")
    print(f"  the bot {bot_ms:6.3f} ms   the bare app {bare_ms:6.3f} ms   in all")
    print(
        f"  ({waiting_share(samples) * 100:.0f}% of the bot's pool samples were a worker waiting on the store's lock or "
        "for work: left out, the rest share the pool's CPU)"
    )
    steps = breakdown(samples, step_of, bot["command"])
    print_ranked(
        "the bot, by step of the command (ms per command; each thread's samples share its own CPU)", steps, "ms"
    )
    print_side_by_side(
        "by step, the bot beside the bare app (ms per command)",
        steps,
        breakdown(bare_samples, step_of, bare["command"]),
    )
    print_side_by_side(
        "by package of the innermost Python frame (ms per command; C code counts to the frame that called it)",
        breakdown(samples, package_of, bot["command"]),
        breakdown(bare_samples, package_of, bare["command"]),
        30,
    )
    print(
        f"\nIDLE PROFILE: {args.idle:g} s; the bot {sum(bot['idle'].values()):.2f} ms CPU per second "
        f"(main thread {bot['idle'][MAIN]:.2f}, pool {bot['idle'][POOL]:.2f}; {bot['said_idle']}), "
        f"the bare app {sum(bare['idle'].values()):.2f} ({bare['said_idle']})"
    )
    idle_samples = sum(n for *_, n in parse_raw(files["bot"][1]))
    if idle_samples < 200:
        print(f"  (only {idle_samples} samples of the idle bot: the counts above say more than this split)")
    print_side_by_side(
        "by step (ms of CPU per second)",
        breakdown(parse_raw(files["bot"][1]), step_of, bot["idle"]),
        breakdown(parse_raw(files["bare"][1]), step_of, bare["idle"]),
    )


async def main(args) -> None:
    stack = Stack(args.latency)
    await stack.start()
    try:
        print(f"`/backup list {args.server}` by an admin (BACKUPBOT_ADMINS); every API call {args.latency:g} s")
        if not args.skip_counts:
            await part_counts(stack, args)
        if not args.skip_profile:
            await part_profile(stack, args, Path(args.keep) if args.keep else None)
    finally:
        await stack.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--server", type=int, default=12345)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=5, help="profiled bursts (default 5)")
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second (default 500)")
    parser.add_argument("--keep", metavar="DIR", help="keep py-spy's raw stacks in DIR")
    parser.add_argument("--bare-api", default="httpx-aiohttp", help="the bare app's API call (as load.py)")
    parser.add_argument("--skip-counts", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args))
