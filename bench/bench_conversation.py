"""Benchmark: the conversation path under a viral burst (issue 9, items 1, 4 and 5).

Prints figures, asserts nothing.

1. Joins through the whole conversation path (console transport): joins per second, as a
   fraction of raw SQLite single-row commits (WAL, synchronous=NORMAL) measured in the same run.
2. Event-loop health: N joins and N questions fired within 10 s through the engine while the SMS
   queue runs; the slowest callback seen by asyncio's debug mode (slow_callback_duration 50 ms)
   and the p50 / p99 reply latency.
3. Memory: peak RSS of a bot process (console) opening a database of ``--rows`` participants
   (1,000,000 by default) and answering a few lines.

Usage: ``python bench/bench_conversation.py [--joins 2000] [--burst 1000] [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_app  # noqa: E402
from bot.console import ConsoleOutput  # noqa: E402
from bot.ports import Person  # noqa: E402
from bot.settings import Settings, parse_quiet_hours  # noqa: E402

QUESTIONS = [
    "c koi le cej",
    "jcherche un taf",
    "c gratuit ?",
    "comment on s'inscrit",
    "jai pas le bac je peux venir",
    "vous aidez pour le permis",
    "jsp quoi faire de ma vie",
    "ou vous etes",
    "quelle est la capitale du perou",
    "bonjour",
]


def raw_commits(path: Path, count: int) -> float:
    """Single-row commits per second on a bare sqlite3 connection (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, at TEXT)")
    start = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (name, at) VALUES (?, datetime('now'))", (f"n{i}",))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed


async def make_app(path: Path):  # type: ignore[no-untyped-def]
    settings = replace(Settings(), sms_quiet_hours=parse_quiet_hours(""))
    output = ConsoleOutput(io.StringIO(), path.parent / "files", "staff")
    return await build_app(settings, path, transport=output, notifier=output, invites=output)


async def joins_per_second(path: Path, count: int, concurrent: bool = False) -> float:
    """Joins through ``Conversation.joined`` with a personal link: one after the other (as the
    console does), or all at once (a viral burst, where group commit shares transactions)."""
    app = await make_app(path)
    conv = app.conversation
    seed = Person("discord", "seed", "seed")
    await conv.command(seed, "parrainage", {})
    link = await app.referrals.link_for(
        (await app.referrals.by_discord_id("seed")).id, "discord_invite"
    )
    url = f"https://discord.gg/{link}"
    start = time.perf_counter()
    if concurrent:
        await asyncio.gather(
            *(conv.joined(Person("discord", f"u{i}", f"user{i}"), url) for i in range(count))
        )
    else:
        for i in range(count):
            await conv.joined(Person("discord", f"u{i}", f"user{i}"), url)
    elapsed = time.perf_counter() - start
    await app.close()
    return count / elapsed


async def burst(path: Path, count: int) -> dict[str, float]:
    """``count`` joins and ``count`` questions within 10 s, SMS worker running."""
    app = await make_app(path)
    conv = app.conversation
    # Watch the loop only once the bot is up: start-up (loading the knowledge base) is not a burst.
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    slow: list[float] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = re.search(r"took ([0-9.]+) seconds", record.getMessage())
            if match:
                slow.append(float(match.group(1)))

    logging.getLogger("asyncio").addHandler(Catch())
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    stop = asyncio.Event()
    worker = asyncio.create_task(app.sms.run_worker(stop))
    latencies: list[float] = []
    rng = random.Random(7)

    async def one(kind: str, i: int) -> None:
        started = time.perf_counter()
        if kind == "join":
            await conv.joined(Person("discord", f"b{i}", f"burst{i}"), None)
        else:
            await conv.text(Person("discord", f"q{i % 200}", f"q{i % 200}"), rng.choice(QUESTIONS))
        latencies.append(time.perf_counter() - started)

    interval = 10.0 / (2 * count)
    tasks = []
    start = time.perf_counter()
    for i in range(count):
        tasks.append(asyncio.create_task(one("join", i)))
        tasks.append(asyncio.create_task(one("question", i)))
        await asyncio.sleep(interval)
    for task in tasks:  # one by one: gathering 2,000 tasks at once is itself a slow step
        await task
    total = time.perf_counter() - start
    stop.set()
    await worker
    await app.close()
    latencies.sort()
    return {
        "seconds": total,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "slow_callbacks": len(slow),
        "slowest": max(slow, default=0.0),
    }


def big_database(path: Path, rows: int) -> None:
    """A database of ``rows`` participants, through ``relais import``."""
    csv_path = path.with_suffix(".csv")
    rng = random.Random(1)
    with csv_path.open("w", encoding="utf-8") as out:
        out.write("participant,referrer,joined_at,channel\n")
        for i in range(rows):
            referrer = "" if i < 100 or rng.random() < 0.02 else f"p{rng.randrange(i)}"
            out.write(f"p{i},{referrer},2026-01-01T00:00:00+00:00,code\n")
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "import", "--db", str(path), str(csv_path)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )


def bot_peak_rss(path: Path) -> float:
    """Peak RSS (MiB) of a console process on that database answering a few lines."""
    lines = b"discord:alice /parrainage\ndiscord:alice c koi le cej\nstaff:marie /stats\n"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "console", "--db", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert process.stdin is not None
    process.stdin.write(lines)
    process.stdin.close()
    # wait4 gives this child's own peak, not the largest of every child (the import's).
    _pid, _status, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--joins", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Disk speed varies from second to second here: alternate the measures, keep medians.
        raws, sequential, concurrent = [], [], []
        for round_ in range(3):
            raws.append(raw_commits(folder / f"raw{round_}.db", args.joins))
            sequential.append(asyncio.run(joins_per_second(folder / f"s{round_}.db", args.joins)))
            concurrent.append(
                asyncio.run(joins_per_second(folder / f"c{round_}.db", args.joins, True))
            )
        raw = statistics.median(raws)
        seq, conc = statistics.median(sequential), statistics.median(concurrent)
        print(f"raw SQLite single-row commits: {raw:,.0f}/s (median of 3)")
        print(
            f"joins all at once (burst): {conc:,.0f}/s"
            f" ({conc / raw:.0%} of raw commits; goal >= 20%)"
        )
        print(
            f"joins one after the other: {seq:,.0f}/s ({seq / raw:.0%} of raw commits;"
            f" {1e6 / seq:.0f} us each, each its own commit)"
        )
        figures = asyncio.run(burst(folder / "burst.db", args.burst))
        print(
            f"burst of {args.burst} joins + {args.burst} questions: {figures['seconds']:.1f} s,"
            f" reply latency p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms,"
            f" callbacks over 50 ms: {figures['slow_callbacks']}"
            f" (slowest {figures['slowest'] * 1000:.0f} ms)"
        )
        if args.rows:
            big = folder / "big.db"
            started = time.perf_counter()
            big_database(big, args.rows)
            built = time.perf_counter() - started
            print(f"database of {args.rows:,} participants built in {built:.1f} s")
            print(f"peak RSS of the bot (console) on it: {bot_peak_rss(big):.0f} MiB")


if __name__ == "__main__":
    main()
