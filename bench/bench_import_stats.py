"""Benchmark: ``relais import``, ``relais stats --json``, ``relais report`` and ``/stats`` on a
large random referral forest (issue 19 item 4).

Prints figures, asserts nothing. Each command is timed as a whole process (start-up included),
with its peak RSS:

1. generate a CSV of N rows (about 2 % seeds, each other row referred by an earlier row, ISO dates);
2. ``relais import`` into a fresh database;
3. ``relais stats --json`` on it, and the windowed figures it printed;
4. ``relais report --out report.html`` (figures, three charts, the HTML), cold, then again
   (from the arrays the first left in the database), and once more after the bot's writes;
5. ``/stats`` as staff get it on Discord: the staff command's handler (``Conversation.text``,
   what the cog calls) on that database, figures, three charts and the channel comparison,
   timed after start-up (including the warm-up the bot runs in the background when it starts,
   timed apart), then the same computation split into figures and charts, then ``/stats``
   right after a join and after an enrolment;
6. a networkx script that reads the same CSV and computes only depths and tree sizes
   (``--skip-networkx`` to leave it out).

Usage: ``python bench/bench_import_stats.py [--rows 1000000] [--keep DIR] [--skip-networkx]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELAIS = [sys.executable, "-m", "bot.cli"]

NETWORKX_SCRIPT = r"""
import csv, sys
from collections import Counter
import networkx as nx

graph = nx.DiGraph()
with open(sys.argv[1], newline="", encoding="utf-8-sig") as handle:
    for row in csv.DictReader(handle):
        graph.add_node(row["participant"])
        if row["referrer"]:
            graph.add_edge(row["referrer"], row["participant"])
depth = {}
tree_sizes = Counter()
for seed in (n for n, d in graph.in_degree() if d == 0):
    lengths = nx.single_source_shortest_path_length(graph, seed)
    depth.update(lengths)
    tree_sizes[seed] = len(lengths)
print(max(depth.values()), max(tree_sizes.values()), len(depth))
"""


# /stats as staff get it (figures, three charts, channel comparison), timed after start-up.
STAFF_STATS_SCRIPT = r"""
import asyncio, io, os, time
from pathlib import Path
from bot.app import build_app
from bot.console import ConsoleOutput
from bot.ports import Person
from bot.settings import load_settings

async def main():
    settings = load_settings(dotenv=None)
    output = ConsoleOutput(io.StringIO(), Path(os.environ["RELAIS_DB"]).parent, "staff")
    app = await build_app(settings, Path(os.environ["RELAIS_DB"]), transport=output,
                          notifier=output, invites=output)
    try:
        staff = Person("discord", "bench", "bench", staff=True)
        # What the bot does in the background at start-up (DiscordRun.start), off the loop.
        from bot.bootstrap import warm_figures
        began = time.perf_counter()
        await warm_figures(app)
        warmed = time.perf_counter() - began
        began = time.perf_counter()
        replies = await app.conversation.text(staff, "/stats")
        elapsed = time.perf_counter() - began
        assert replies and len(replies[0].attachments) == 3, replies
        assert len(replies) == 2, replies  # the figures with charts, the channel comparison
        # The same work again, in its two parts (warm: the pages are in the OS cache now).
        from bot import charts
        from referrals import analytics
        began = time.perf_counter()
        figures, extra = await app.db.read(analytics.staff_figures, None, None, settings.tz)
        computed = time.perf_counter() - began
        labels = charts.chart_labels(lambda key: app.conversation.t(key, "fr"))
        began = time.perf_counter()
        await asyncio.gather(
            charts.timeline_chart_async(extra["timeline"], labels),
            charts.cohorts_chart_async(extra["cohorts"], labels),
            charts.waves_chart_async(figures["waves"], labels),
        )
        drawn = time.perf_counter() - began
        print(f"{elapsed:.2f} s   (target <= 2 s; again: figures {computed:.2f} s,"
              f" charts {drawn:.2f} s; start-up warm-up in the background {warmed:.2f} s)")
        # Right after writes: a join (a newcomer through a member's personal code) and an
        # enrolment, each followed by /stats.
        member = Person("discord", "bench-member", "bench-member")
        card = (await app.conversation.text(member, "/parrainage"))[0].text
        newcomer = Person("discord", "bench-newcomer", "bench-newcomer")
        await app.conversation.joined(newcomer, None)
        code = card.split("**")[1]
        for label, write in (
            ("a join + a referrer set", lambda: app.conversation.text(newcomer, "/code " + code)),
            ("an enrolment", lambda: app.conversation.text(staff, "/inscrit bench-newcomer")),
        ):
            said = (await write())[0].text.splitlines()[0][:60]
            cpu = time.process_time()
            began = time.perf_counter()
            replies = await app.conversation.text(staff, "/stats")
            after = time.perf_counter() - began
            assert len(replies) == 2 and len(replies[0].attachments) == 3, replies
            print(f"  /stats right after {label} ({said!r}): {after:.2f} s"
                  f" ({time.process_time() - cpu:.2f} s of CPU in the process)")
    finally:
        await app.close()

asyncio.run(main())
"""


def generate(path: Path, rows: int, seed: int = 42) -> None:
    """A random referral forest: ~2 % seeds, referrers drawn among earlier rows."""
    rng = random.Random(seed)
    start = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
    step = timedelta(days=240) / max(rows, 1)
    channels = ("code", "discord_invite", "sms", "")
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("participant,referrer,joined_at,channel,kind,enrolled_at\n")
        for i in range(rows):
            joined = (start + step * i).replace(microsecond=0)
            if i == 0 or rng.random() < 0.02:
                referrer, channel = "", "campaign:VAN-NANTES" if rng.random() < 0.5 else ""
            else:
                # Any earlier participant may recruit (a random recursive forest): waves grow
                # like log(N), about 14 deep on average at 1M rows, as in real word of mouth.
                referrer = f"p{rng.randrange(i)}"
                channel = rng.choice(channels)
            kind = "relative" if rng.random() < 0.05 else "youth"
            enrolled = (joined + timedelta(days=7)).isoformat() if rng.random() < 0.1 else ""
            out.write(f"p{i},{referrer},{joined.isoformat()},{channel},{kind},{enrolled}\n")


def timed(command: list[str], **kwargs: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command to completion; wall time in seconds and the completed process."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, done


def peak_rss_mib(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time, peak RSS (MiB) and stdout of a command, measured in a fresh child."""
    # RUSAGE_CHILDREN keeps the maximum over every waited-for child, so measure in a
    # dedicated grandchild-free helper: a fresh Python that runs the command and reports.
    helper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "t = time.perf_counter() - t\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "rss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime\n"
        "print(json.dumps({'rc': p.returncode, 'wall': t, 'rss_kib': rss, 'cpu': cpu,"
        " 'out': p.stdout, 'err': p.stderr[-2000:]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", helper, *command],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    report = json.loads(done.stdout)
    if report["rc"] != 0:
        sys.exit(f"{' '.join(command)} failed ({report['rc']}):\n{report['err']}")
    print(f"  ({report['cpu']:.2f} s of CPU)", end="  ")
    return report["wall"], report["rss_kib"] / 1024, report["out"]


def networkx_python() -> str:
    """A Python interpreter that has networkx: this one, else the system python3."""
    for candidate in (sys.executable, shutil.which("python3") or "python3"):
        probe = subprocess.run(
            [candidate, "-c", "import networkx"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return candidate
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "networkx"], check=True)
    return sys.executable


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="work in this folder and keep the files")
    parser.add_argument("--skip-networkx", action="store_true", help="leave out networkx")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="relais-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path, db_path = work / "forest.csv", work / "bench.db"
    for stale in work.glob("bench.db*"):
        stale.unlink()
    env = {**os.environ, "RELAIS_DB": str(db_path), "RELAIS_TZ": "UTC"}
    try:
        began = time.perf_counter()
        generate(csv_path, args.rows)
        print(
            f"rows: {args.rows:,}  ({csv_path.stat().st_size / 2**20:.0f} MiB CSV,"
            f" generated in {time.perf_counter() - began:.1f} s)"
        )

        import_s, import_rss, _ = peak_rss_mib([*RELAIS, "import", str(csv_path)], env)
        print(
            f"relais import:       {import_s:7.2f} s   peak RSS {import_rss:.0f} MiB"
            f"   (targets <= 20 s, <= 300 MB for 1M rows)"
            f"  db {db_path.stat().st_size / 2**20:.0f} MiB"
        )

        stats_s, rss, out = peak_rss_mib([*RELAIS, "stats", "--json"], env)
        figures = json.loads(out)
        print(f"relais stats --json: {stats_s:7.2f} s   peak RSS {rss:.0f} MiB")
        print(
            f"  participants {figures['participants']:,}, seeds {figures['seeds']:,},"
            f" max depth {figures['max_depth']}, largest tree {figures['largest_tree']:,}"
        )
        by_wave = ", ".join(f"{v:g}" for v in figures["recruits_by_wave"][:8])
        print(f"  recruits_30d {figures['recruits_30d']}, recruits_by_wave {by_wave}, ...")

        report_s, report_rss, _ = peak_rss_mib(
            [*RELAIS, "report", "--out", str(work / "report.html")], env
        )
        print(
            f"relais report:       {report_s:7.2f} s   peak RSS {report_rss:.0f} MiB"
            "   (target <= 3 s, start-up included)"
        )
        again_s, again_rss, _ = peak_rss_mib(
            [*RELAIS, "report", "--out", str(work / "report.html")], env
        )
        print(
            f"relais report again: {again_s:7.2f} s   peak RSS {again_rss:.0f} MiB"
            "   (from the arrays the first one left in the database)"
        )
        _, staff_rss, staff_out = peak_rss_mib([sys.executable, "-c", STAFF_STATS_SCRIPT], env)
        print(
            f"/stats (staff handler, charts and comparison, after start-up): {staff_out.strip()}"
            f"   process peak RSS {staff_rss:.0f} MiB"
        )
        after_s, after_rss, _ = peak_rss_mib(
            [*RELAIS, "report", "--out", str(work / "report.html")], env
        )
        print(
            f"relais report after the bot's writes: {after_s:7.2f} s   peak RSS {after_rss:.0f} MiB"
        )
        if args.skip_networkx:
            return 0

        python = networkx_python()
        script = work / "nx_depths.py"
        script.write_text(NETWORKX_SCRIPT, encoding="utf-8")
        nx_s, nx_rss, nx_out = peak_rss_mib([python, str(script), str(csv_path)], env)
        nx_depth, nx_largest, nx_count = (int(v) for v in nx_out.split())
        print(
            f"networkx depths+trees: {nx_s:5.2f} s   peak RSS {nx_rss:.0f} MiB"
            f"  (max depth {nx_depth}, largest tree {nx_largest:,}, nodes {nx_count:,})"
        )
        agree = (nx_depth, nx_largest, nx_count) == (
            figures["max_depth"],
            figures["largest_tree"],
            figures["participants"],
        )
        print(f"figures agree with networkx: {'yes' if agree else 'NO'}")
        print(f"stats speed-up over networkx: {nx_s / stats_s:.1f}x   (target >= 10x)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
