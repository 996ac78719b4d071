"""How fast a filtered page of the audit log comes back with 1,000,000 entries (target: under 100 ms).

    python benchmarks/audit_search.py [--entries N]

Fills a fresh SQLite store (in a temporary directory) with N entries spread over 200 servers,
500 people, every action and outcome, then times `audit_entries(20, filter)` for each kind of
filter (median and worst of 20 runs each), through the store's own query.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from bot.policy import Action
from bot.store import OUTCOMES, AuditSearch
from bot.store import SqliteStore as Store


def fill(store: Store, entries: int) -> None:
    rng = random.Random(7)
    actions = [a.value for a in Action]
    rows = (
        (
            f"2026-{1 + n * 11 // entries:02d}-15T12:00:00+00:00",
            f"U{rng.randrange(500):05d}",
            rng.choice(actions),
            20000 + rng.randrange(200),
            5000 + n,
            rng.choice(OUTCOMES),
            "benchmark entry",
            "slack",
        )
        for n in range(entries)
    )
    conn = store._conn
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO audit (at, user_id, action, server_id, backup_id, outcome, detail, source) VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.execute("COMMIT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "audit.db"))
        started = time.perf_counter()
        fill(store, args.entries)
        print(f"{args.entries} entries written in {time.perf_counter() - started:.1f} s")
        searches = {
            "no filter": AuditSearch(),
            "server": AuditSearch(server_id=20123),
            "user": AuditSearch(user_id="U00042"),
            "action": AuditSearch(action="restore"),
            "outcome": AuditSearch(outcome="denied"),
            "since": AuditSearch(since="2026-11-01"),
            "server + outcome": AuditSearch(server_id=20123, outcome="denied"),
            "user + action + since": AuditSearch(user_id="U00042", action="delete", since="2026-06-01"),
        }
        worst = 0.0
        for name, search in searches.items():
            times = []
            for _ in range(20):
                started = time.perf_counter()
                page = store.audit_entries(20, search)
                times.append((time.perf_counter() - started) * 1000)
            worst = max(worst, max(times))
            print(
                f"{name:<24} {len(page):>3} entries  median {statistics.median(times):7.2f} ms  worst {max(times):7.2f} ms"
            )
        store.close()
        print("target met (every filtered page under 100 ms)" if worst < 100 else "TARGET MISSED")


if __name__ == "__main__":
    main()
