#!/usr/bin/env python3
"""tailsse benchmarks: `make bench` runs this with TAILSSE_BIN set to the release build.

    bench/run.py                 full run (~3 min); appends the results to BENCHMARKS.md
    bench/run.py --smoke         tiny sizes (< 30 s), checks that every case still works; no append
    bench/run.py --only live     one case (see --list)

Each case is a function below, registered with @case. It prepares its inputs and calls
``bench.compare`` with a baseline measured in the same invocation and the subjects measured
against it. The load client is bench/sseload.c (compiled here with gcc -O2); see BENCHMARKS.md for
why it is C and how it reads.

Exit status: 0 when every run produced a valid result (missed performance targets are reported,
not failed, unless --strict), 1 when a run failed or lost/duplicated events, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Bench,
    BenchError,
    Metric,
    Target,
    command_line,
    make_workdir,
)

CASES: dict[str, Callable[[Bench, argparse.Namespace], None]] = {}


def case(name: str):
    """Registers a benchmark case: a function of (bench, params)."""

    def register(fn):
        CASES[name] = fn
        return fn

    return register


# ------------------------------------------------------------------------------------------------
# Inputs


def write_log_file(path: Path, lines: int) -> int:
    """A deterministic access-log-like file of `lines` lines of ~100 bytes (with JSON-escaped quotes)."""
    methods = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
    paths = ("/api/v1/items", "/api/v1/users", "/static/app.js", "/healthz", "/api/v1/orders")
    total = 0
    with open(path, "w", encoding="ascii", buffering=1 << 20) as f:
        chunk = []
        for i in range(lines):
            line = (f"2025-01-01T00:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z web-{i % 7} "
                    f"nginx[{1000 + i % 97}]: \"{methods[i % 6]} {paths[i % 5]}/{i} HTTP/1.1\" "
                    f"{200 if i % 13 else 404} {i * 7919 % 65536} rt={i % 997}")
            line = (line + " " + "x" * 99)[:99] + "\n"
            chunk.append(line)
            if len(chunk) == 10000:
                data = "".join(chunk)
                total += len(data)
                f.write(data)
                chunk.clear()
        data = "".join(chunk)
        total += len(data)
        f.write(data)
    # Read it once so every subject finds it in the page cache.
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    return total


def shutdown_note(comparison, subject: str) -> None:
    """Notes how long tailsse took to exit on SIGTERM after each run (10 s = killed)."""
    times = [r["shutdown_s"] for r in comparison.subject(subject).runs if "shutdown_s" in r]
    if not times:
        return
    killed = sum(1 for t in times if t < 0)
    text = f"tailsse exited on SIGTERM after the run in at most {max(times):.2f} s"
    if killed:
        text = f"tailsse did not exit within 10 s of SIGTERM after {killed} of {len(times)} runs (killed)"
    comparison.notes.append(text + ".")


def ok_check(result: dict) -> str | None:
    if result.get("ok"):
        return None
    detail = {k: result[k] for k in ("why", "events", "expect", "received", "expected", "missing", "duplicates",
                                     "reordered", "incomplete_clients", "p99_us", "stderr") if k in result}
    return f"invalid result: {detail}"


# ------------------------------------------------------------------------------------------------
# Cases


@case("replay")
def replay(bench: Bench, p: argparse.Namespace) -> None:
    """One SSE client replays the whole file (tail=all) vs `tail -n +1 FILE` into a loopback socket."""
    lines = p.replay_lines
    path = bench.workdir / "replay.log"
    size = write_log_file(path, lines)
    bench.log(f"replay: {lines:,} lines, {size / 1e6:.1f} MB in {path}")

    def baseline(read: str) -> dict:
        r = bench.run_sseload("pipe-tcp", "--expect", str(lines), "--read", read, "--timeout", "120",
                              command=["tail", "-n", "+1", str(path)])
        r["cpu_s"] = r["child_cpu_s"]
        r["cpu_per_line_us"] = r["cpu_s"] / max(1, r["events"]) * 1e6
        r["bytes_per_line"] = r["bytes"] / max(1, r["events"])
        return r

    def tailsse(read: str) -> dict:
        with bench.server({"replay": path}) as server:
            r = bench.run_sseload("replay", "--port", str(server.port), "--path", "/sources/replay?tail=all",
                                  "--expect", str(lines), "--read", read, "--timeout", "120")
            r["cpu_s"] = server.cpu_since_start()
            r["rss_mib"] = server.rss_peak_mib()
            if not server.alive():
                raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
        r["shutdown_s"] = server.shutdown_s
        r["cpu_per_line_us"] = r["cpu_s"] / max(1, r["events"]) * 1e6
        r["bytes_per_line"] = r["bytes"] / max(1, r["events"])
        return r

    metrics = [
        Metric("seconds", "time", "s", higher_is_better=False, digits=3),
        Metric("cpu_s", "CPU of server/tail", "s", higher_is_better=False, digits=2),
        Metric("cpu_per_line_us", "CPU per line", "µs", higher_is_better=False, digits=2),
        Metric("client_cpu_s", "client CPU", "s", higher_is_better=False, digits=2),
        Metric("bytes_per_line", "bytes on the wire per line", "", digits=0),
        Metric("rss_mib", "server peak RSS", "MiB", higher_is_better=False, digits=1),
    ]
    reading = {
        "eager": "The client reads eagerly: a blocking `recv` into a 1 MiB buffer in a tight loop, so it "
                 "wakes on (nearly) every write the sender makes, as a browser does.",
        "coalesce": "The client coalesces: after every read shorter than its 1 MiB buffer it sleeps 10 ms, so "
                    "data piles up in the socket buffer and each read takes a lot of it (fewer wake-ups).",
    }
    for read in p.read_modes:
        comparison = bench.compare(
            case=f"replay-{read}",
            title=f"replay {lines:,} lines from offset 0, {read} reader",
            description=(f"A file of {lines:,} lines of 100 bytes ({size / 1e6:.0f} MB, in the page cache). "
                         "tailsse: one SSE client reads `/sources/NAME?tail=all` until it has seen every line "
                         "as an event (fresh server per run; time from connect to the last event). Baseline: "
                         "`tail -n +1 FILE` with its stdout a loopback TCP socket, lines counted by the same "
                         "client (the physical limit). " + reading[read]),
            subjects={
                "tail -n +1 → TCP (baseline)": lambda read=read: baseline(read),
                "tailsse SSE": lambda read=read: tailsse(read),
            },
            baseline="tail -n +1 → TCP (baseline)",
            primary=Metric("rate", "lines/s", "", higher_is_better=True),
            metrics=metrics,
            targets=[Target("tailsse SSE", "rate", 1_000_000, at_least=True, text="tailsse ≥ 1,000,000 lines/s")],
            runs=bench.runs(full=p.runs_replay, smoke=1),
            check=ok_check,
        )
        shutdown_note(comparison, "tailsse SSE")


@case("live")
def live(bench: Bench, p: argparse.Namespace) -> None:
    """Latency of new lines to many followers: tailsse SSE clients vs as many `tail -F` processes."""
    clients, rate, seconds = p.live_clients, p.live_rate, p.live_seconds
    lines = int(rate * seconds)
    counter = iter(range(1_000_000))

    def fresh_file() -> Path:
        path = bench.workdir / f"live-{next(counter)}.log"
        path.write_bytes(b"")
        return path

    common = ["--clients", str(clients), "--rate", str(rate), "--lines", str(lines), "--timeout", str(seconds + 60)]

    def tail_f() -> dict:
        path = fresh_file()
        r = bench.run_sseload("live-exec", "--file", str(path), *common, timeout=seconds + 90,
                              command=["tail", "-n", "0", "-F", str(path)])
        r["cpu_s"] = r["child_cpu_s"]
        path.unlink()
        if "stderr" in r and "poll" in r["stderr"]:
            raise BenchError(f"tail -F fell back to polling (inotify instances exhausted? fs.inotify.max_user_instances): {r['stderr'][:300]}")
        return r

    def tailsse() -> dict:
        path = fresh_file()
        with bench.server({"live": path}) as server:
            r = bench.run_sseload("live-sse", "--port", str(server.port), "--path", "/sources/live?tail=0",
                                  "--file", str(path), *common, timeout=seconds + 90)
            r["cpu_s"] = server.cpu_since_start()
            r["rss_mib"] = server.rss_peak_mib()
            if not server.alive():
                raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
        r["shutdown_s"] = server.shutdown_s
        path.unlink()
        return r

    ms = dict(scale=1e-3, digits=2, higher_is_better=False)
    comparison = bench.compare(
        case="live",
        title=f"live latency, {clients} followers, {rate:,} lines/s for {seconds:g} s",
        description=(f"A writer thread appends {lines:,} lines of ~100 bytes at {rate:,} lines/s (clock_nanosleep "
                     "to an absolute schedule), each carrying its CLOCK_MONOTONIC send time; every follower "
                     "records receive time − send time for every line (time taken right after the `read` that "
                     f"returned it; epoll, eager). tailsse: {clients} SSE clients on `/sources/NAME?tail=0` "
                     f"(fresh server and file per run). Peer/baseline: {clients} `tail -n 0 -F FILE` processes "
                     "whose stdout pipes the same client reads. Every follower must get every line exactly "
                     "once, in order, or the run fails. Percentiles are over all lines × followers; "
                     "'slowest follower' is, per line, the latest of the followers."),
        subjects={"tail -F ×N (peer)": tail_f, "tailsse SSE": tailsse},
        baseline="tail -F ×N (peer)",
        primary=Metric("p99_us", "p99", "ms", **ms),
        metrics=[
            Metric("p50_us", "p50", "ms", **ms),
            Metric("p999_us", "p99.9", "ms", **ms),
            Metric("max_us", "max", "ms", **ms),
            Metric("slowest_client_p99_us", "slowest follower p99", "ms", **ms),
            Metric("cpu_s", "CPU of server/tails", "s", higher_is_better=False, digits=2),
            Metric("client_cpu_s", "client CPU", "s", higher_is_better=False, digits=2),
            Metric("writer_slip_p99_us", "writer late p99", "ms", **ms),
            Metric("rss_mib", "server peak RSS", "MiB", higher_is_better=False, digits=1),
        ],
        targets=[Target("tailsse SSE", "p99_us", 5000, at_least=False, text="tailsse p99 ≤ 5 ms")],
        runs=bench.runs(full=p.runs_live, smoke=1),
        check=ok_check,
    )
    shutdown_note(comparison, "tailsse SSE")
    for subject in comparison.subjects:
        runs = sorted((r for r in subject.runs if r.get("by_second")), key=lambda r: r["p99_us"])
        if runs:
            median_run = runs[len(runs) // 2]
            trend = ", ".join(f"{b[0] / 1000:.1f}/{b[1] / 1000:.1f}" for b in median_run["by_second"])
            comparison.notes.append(
                f"{subject.name}, run with the median p99, p50/p99 (ms) per second of writing: {trend} "
                "(growing figures mean a queue builds up: the subject cannot keep up).")
    rt = {r.get("writer_rt") for s in comparison.subjects for r in s.runs}
    comparison.notes.append(
        "The writer thread ran with SCHED_FIFO priority, so the offered load was an even rate for every subject."
        if rt == {True} else
        "The writer thread could not get SCHED_FIFO priority here: when the followers saturate the CPUs it "
        "falls behind and then writes in bursts (see 'writer late').")
    comparison.notes.append(
        "'writer late' is how far behind its schedule the writer was when it stamped a line: a stall of the "
        "machine, not of the subject; the latency figures start at the stamp, so such a stall is not counted.")


# ------------------------------------------------------------------------------------------------


def apply_nice(wanted: int) -> str:
    """Sets this process's nice value (inherited by the server, the client and the peers)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if wanted != current:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, wanted)
        except OSError as exc:
            return f"nice {current} (could not set {wanted}: {exc.strerror})"
    return f"nice {os.getpriority(os.PRIO_PROCESS, 0)} for the harness and every process it starts"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 run: checks the harness and the server work")
    ap.add_argument("--only", action="append", choices=sorted(CASES), help="run only this case (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--runs", type=int, help="runs per subject (default: 5 replay, 5 live; 1 with --smoke)")
    ap.add_argument("--results", default=str(Path(__file__).resolve().parent.parent / "BENCHMARKS.md"),
                    help="Markdown file to append the results to (default: BENCHMARKS.md)")
    ap.add_argument("--append", dest="append", action="store_true", default=None,
                    help="append to --results (the default for a full run)")
    ap.add_argument("--no-append", dest="append", action="store_false", help="do not append (the default for --smoke)")
    ap.add_argument("--json", help="also write every run's raw figures to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (files, server logs)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a performance target is missed")
    ap.add_argument("--nice", type=int, default=-10,
                    help="run the harness and everything it starts at this nice value (default -10, when allowed), "
                         "so background work on a shared machine disturbs the measurement less; 0 to disable")
    ap.add_argument("--replay-lines", type=int, help="lines in the replay file (default 1,000,000; smoke 10,000)")
    ap.add_argument("--read-modes", default="eager,coalesce", help="replay client read modes (eager,coalesce)")
    ap.add_argument("--live-clients", type=int, help="followers in the live case (default 100; smoke 5)")
    ap.add_argument("--live-rate", type=int, default=1000, help="lines/s appended in the live case (default 1000)")
    ap.add_argument("--live-seconds", type=float, help="seconds of writing in the live case (default 10; smoke 2)")
    p = ap.parse_args(argv)
    if p.list:
        for name, fn in CASES.items():
            print(f"{name:10} {(fn.__doc__ or '').strip()}")
        sys.exit(0)
    p.replay_lines = p.replay_lines or (10_000 if p.smoke else 1_000_000)
    p.live_clients = p.live_clients or (5 if p.smoke else 100)
    p.live_seconds = p.live_seconds or (2.0 if p.smoke else 10.0)
    p.read_modes = [m for m in p.read_modes.split(",") if m]
    if any(m not in ("eager", "coalesce") for m in p.read_modes):
        ap.error("--read-modes takes eager and/or coalesce")
    p.runs_replay = 5
    p.runs_live = 5
    if p.append is None:
        p.append = not p.smoke
    return p


def main(argv: list[str]) -> int:
    p = parse_args(argv)
    binary = os.environ.get("TAILSSE_BIN")
    if not binary or not os.access(binary, os.X_OK):
        print("bench: set TAILSSE_BIN to the tailsse binary (make bench builds the release one)", file=sys.stderr)
        return 2
    for tool in ("gcc", "tail"):
        if not shutil.which(tool):
            print(f"bench: {tool} is needed (make bench installs it)", file=sys.stderr)
            return 2
    niceness = apply_nice(p.nice)
    workdir = make_workdir()
    command = command_line()
    try:
        bench = Bench(binary, smoke=p.smoke, runs=p.runs, workdir=workdir)
        bench.priority = niceness
        bench.log(f"bench: work directory {workdir}; {command}")
        for name, fn in CASES.items():
            if p.only and name not in p.only:
                continue
            fn(bench, p)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if not p.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report = bench.markdown(command)
    print("\n" + report)
    if p.json:
        bench.write_json(Path(p.json), command)
    if p.append:
        results = Path(p.results)
        existing = results.read_text() if results.exists() else "# tailsse benchmarks\n\n## Results\n"
        results.write_text(existing.rstrip("\n") + "\n\n" + report.rstrip("\n") + "\n")
        print(f"bench: appended to {results}")
    missed = [t for c in bench.comparisons for t, _, met in c.verdicts() if not met]
    if bench.errors:
        print("bench: FAILED runs:\n  " + "\n  ".join(bench.errors), file=sys.stderr)
        return 1
    if missed:
        print("bench: targets missed: " + "; ".join(t.text for t in missed), file=sys.stderr)
        if p.strict:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
