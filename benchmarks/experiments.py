"""What issue 25's suggested changes would buy, measured on the pieces in isolation (no product code changed).

Written before those changes: "today" is the four store calls a `/backup list` made then, as the store makes
them now (plain SQL since; learn_servers writes only new names). The bot itself now makes one standing read
at once on the event loop and commits its audit entries in groups (README, "Speed"; profile_list.py counts).

    python benchmarks/experiments.py [--commands 200] [--rounds 5]

On uvloop, as `serve` runs, with a real store (a temporary SQLite file in WAL mode, opened by bot.store):

A. Store calls, one at a time on one thread (no hop): CPU per call and SQL statements per call, for what
   a `/backup list` does today (Store.language_of, role_of, learn_servers, audit) and for plain-SQL
   stand-ins: one standing query (language and role in one SELECT), the server-name upsert in plain SQL
   or skipped when the name is already known (a dict), the audit row as one plain INSERT.
B. The same work for COMMANDS commands at once, as the bot's event loop would do it: today's four calls in
   four `asyncio.to_thread` hops; the same four calls in one hop; plain SQL in four hops; plain SQL in two
   hops (standing query; audit row) with names skipped; the latter in one hop; and no hop at all (inline).
   CPU per command: the whole process (every thread), getrusage.
C. The thread hop alone: a no-op through `asyncio.to_thread`, COMMANDS at once, 4 each.
D. The reply: rendering a 9-backup `/backup list` (listing_message) and encoding it as JSON.

Rounds alternate the order of the variants; printed: median (min-max) over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.backup_api import Backup
from bot.clock import iso_seconds
from bot.policy import Role
from bot.sim.fake_api import BackupSimulator
from bot.store import SqliteStore as Store

USER, SERVER, NAME = "U0BENCH", 12345, "web-server-01"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def spread(values: list[float], fmt: str = ".1f") -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


# --- the store work of one `/backup list`, today and in plain SQL ------------------------------------


class Work:
    """The four store calls of one `/backup list` by an admin, each way."""

    def __init__(self, store: Store):
        self.store = store
        self.known: dict[int, str] = {}
        store.grant(USER, SERVER, Role.parse("viewer"), "bench")  # a role to find (an admin has none: same cost)

    # today
    def language(self) -> object:
        return self.store.language_of(USER)

    def role(self) -> object:
        return self.store.role_of(USER, SERVER)

    def learn(self) -> None:
        self.store.learn_servers([(SERVER, NAME)])

    def audit(self) -> None:
        self.store.audit(
            user_id=USER, action="list", outcome="done", source="slack", server_id=SERVER, detail="9 backups"
        )

    # plain SQL stand-ins, under the store's own locks
    def standing(self) -> tuple:
        with self.store._reading() as db:
            return db.conn.execute(
                "SELECT (SELECT language FROM languages WHERE user_id = ?),"
                " (SELECT role FROM grants WHERE user_id = ? AND server_id = ?)",
                [USER, USER, SERVER],
            ).fetchone()

    def learn_plain(self) -> None:
        with self.store._writing() as db:
            db.conn.execute(
                "INSERT INTO servers (id, name, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, seen_at = excluded.seen_at",
                [SERVER, NAME, iso_seconds(datetime.now(UTC))],
            )

    def learn_if_new(self) -> None:
        if self.known.get(SERVER) != NAME:
            self.learn_plain()
            self.known[SERVER] = NAME

    def audit_plain(self) -> None:
        with self.store._writing() as db:
            db.conn.execute(
                "INSERT INTO audit (at, user_id, action, server_id, backup_id, outcome, detail, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [iso_seconds(datetime.now(UTC)), USER, "list", SERVER, None, "done", "9 backups", "slack"],
            )

    def today(self) -> list[Callable]:
        return [self.language, self.role, self.learn, self.audit]

    def plain(self) -> list[Callable]:
        return [self.language, self.role, self.learn_plain, self.audit_plain]


def count_statements(store: Store, fn: Callable) -> int:
    seen: list[str] = []
    conns = {id(store._conn): store._conn, id(store._reader_conn): store._reader_conn}.values()
    for conn in conns:
        conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        for conn in conns:
            conn.set_trace_callback(None)
    return len(seen)


def part_a(work: Work, rounds: int, calls: int = 2000) -> None:
    cases = {
        "Store.language_of (today)": work.language,
        "Store.role_of (today)": work.role,
        "one standing query: language and role in one SELECT": work.standing,
        "Store.learn_servers (the store's own; names it knows are not written)": work.learn,
        "server name upsert in plain SQL": work.learn_plain,
        "server name skipped when known (dict)": work.learn_if_new,
        "Store.audit (the store's own: checks, then one INSERT)": work.audit,
        "audit row as one plain INSERT": work.audit_plain,
    }
    work.learn_if_new()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(rounds):
        for name in cases if r % 2 == 0 else reversed(cases):
            fn = cases[name]
            started = cpu()
            for _ in range(calls):
                fn()
            times[name].append((cpu() - started) / calls * 1e6)
    print(f"\nA. store calls one at a time, no hop (µs of CPU per call; {calls} calls × {rounds} rounds)")
    for name, fn in cases.items():
        print(f"  {spread(times[name]):>22} µs  {count_statements(work.store, fn):>3} SQL  {name}")


# --- the same work, COMMANDS at once, through hops -------------------------------------------------


def variants(work: Work) -> dict[str, Callable]:
    def hops(fns: list[Callable]) -> Callable:
        async def run() -> None:
            for fn in fns:
                await asyncio.to_thread(fn)

        return run

    def one_hop(fns: list[Callable]) -> Callable:
        def all_of() -> None:
            for fn in fns:
                fn()

        async def run() -> None:
            await asyncio.to_thread(all_of)

        return run

    def inline(fns: list[Callable]) -> Callable:
        async def run() -> None:
            for fn in fns:
                fn()

        return run

    lean = [work.standing, work.audit_plain]
    return {
        "the store's 4 calls in 4 hops (before issue 25: 19 SQL through sqlite-utils)": hops(work.today()),
        "today's 4 calls in 1 hop": one_hop(work.today()),
        "plain SQL, 4 hops (8 SQL)": hops(work.plain()),
        "plain SQL, names skipped, standing query: 2 hops (2 SQL)": hops(
            [work.standing, work.learn_if_new, work.audit_plain][::2]
        ),
        "the same in 1 hop": one_hop(lean),
        "the same inline, no hop": inline(lean),
    }


async def part_b(work: Work, commands: int, rounds: int) -> None:
    cases = variants(work)
    work.learn_if_new()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for run in cases.values():  # warm: threads started, statements prepared
        await asyncio.gather(*(run() for _ in range(commands)))
    for r in range(rounds):
        for name in cases if r % 2 == 0 else reversed(cases):
            run = cases[name]
            started = cpu()
            await asyncio.gather(*(run() for _ in range(commands)))
            times[name].append((cpu() - started) / commands * 1e6)
    print(
        f"\nB. the store work of one `/backup list`, {commands} commands at once (µs of CPU per command, every thread)"
    )
    for name in cases:
        print(f"  {spread(times[name], '.0f'):>18} µs  {name}")


async def part_c(commands: int, rounds: int) -> None:
    def noop() -> None:
        return None

    async def four() -> None:
        for _ in range(4):
            await asyncio.to_thread(noop)

    async def direct() -> None:
        for _ in range(4):
            noop()

    cases = {"4 no-op hops": four, "4 no-op calls, no hop": direct}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(rounds + 1):
        for name in cases if r % 2 == 0 else reversed(cases):
            started = cpu()
            await asyncio.gather(*(cases[name]() for _ in range(commands)))
            if r:
                times[name].append((cpu() - started) / commands / 4 * 1e6)
    print(f"\nC. the hop alone, {commands} tasks at once, 4 each (µs of CPU per hop)")
    for name in cases:
        print(f"  {spread(times[name], '.1f'):>18} µs  {name}")


def part_d(rounds: int, calls: int = 500) -> None:
    from bot import i18n
    from bot.ops import Listing
    from bot.slack.views.messages import listing_message

    sim = BackupSimulator()
    answer = sim.handle("GET", "/api/v1/backups/", f"server_id={SERVER}", {"authorization": "Bearer x"}, b"")
    backups = sorted(
        (Backup.from_json(b) for b in answer.body["results"]), key=lambda b: (b.created_at, b.id), reverse=True
    )
    listing = Listing(backups, SERVER, None, True, {})
    now = datetime.now(UTC)
    with i18n.speaking("en", "en", reader=USER):
        message = {"response_type": "ephemeral", **listing_message(listing, now)}
        cases = {
            f"listing_message, {len(backups)} backups ({len(message['blocks'])} blocks)": lambda: listing_message(
                listing, now
            ),
            f"json.dumps of that reply ({len(json.dumps(message))} bytes)": lambda: json.dumps(message),
            "json.dumps of a one-line reply (the bare app's)": lambda: json.dumps(
                {"response_type": "ephemeral", "text": "x" * 40}
            ),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for r in range(rounds):
            for name in cases if r % 2 == 0 else reversed(cases):
                started = cpu()
                for _ in range(calls):
                    cases[name]()
                times[name].append((cpu() - started) / calls * 1e6)
    print(f"\nD. the reply, rendered and encoded (µs of CPU per command; {calls} × {rounds} rounds)")
    for name in cases:
        print(f"  {spread(times[name]):>22} µs  {name}")


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.db"))
        work = Work(store)
        print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, uvloop; store in WAL mode on {tmp}")
        part_a(work, args.rounds)
        await part_b(work, args.commands, args.rounds)
        await part_c(args.commands, args.rounds)
        part_d(args.rounds)
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    uvloop.run(main(parser.parse_args()))
