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
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    Bench,
    BenchError,
    BenchSkip,
    Gatewayd,
    JournalNamespace,
    Metric,
    RssSampler,
    Target,
    Websocketd,
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



def trend_notes(comparison, suffix: str = " (growing figures mean a queue builds up: the subject cannot keep up)") -> None:
    """Per subject, the run with the median p99: p50/p99 per second of writing."""
    for subject in comparison.subjects:
        runs = sorted((r for r in subject.runs if r.get("by_second")), key=lambda r: r["p99_us"])
        if runs:
            median_run = runs[len(runs) // 2]
            trend = ", ".join(f"{b[0] / 1000:.1f}/{b[1] / 1000:.1f}" for b in median_run["by_second"])
            comparison.notes.append(
                f"{subject.name}, run with the median p99, p50/p99 (ms) per second of writing: {trend}{suffix}.")


def ws_live(bench: Bench, path: Path, common: list[str], timeout: float, extra: list[str] | None = None) -> dict:
    """One run of websocketd + `tail -n 0 -F PATH` per client, followed by sseload live-ws."""
    with Websocketd(["tail", "-n", "0", "-F", str(path)], bench.workdir) as wsd:
        peak = RssSampler(wsd.rss_kib, 0.5)
        with peak:
            r = bench.run_sseload("live-ws", "--port", str(wsd.port), "--path", "/", "--file", str(path),
                                  *common, *(extra or []), timeout=timeout)
            r["cpu_s"] = wsd.cpu_since_start()
        if not wsd.alive():
            raise BenchError(f"websocketd exited during the run: {wsd.log_tail()}")
        r["rss_mib"] = max(peak.values, default=0) / 1024
        log = wsd.log_path.read_text(errors="replace")
    r["cpu_s"] = max(r["cpu_s"], 0.0)
    r["polling_tails"] = log.count("reverting to polling")
    return r


def websocketd_note(comparison, p: argparse.Namespace) -> None:
    if p.websocketd:
        comparison.notes.append(
            "websocketd's CPU is that of websocketd, its live `tail` children and the children it reaped; its "
            "'server peak RSS' is the largest sum of the tree's RSS (sampled every 0.5 s; shared pages count once "
            "per process).")
        polling = [r.get("polling_tails", 0) for s in comparison.subjects for r in s.runs if r.get("polling_tails")]
        if polling:
            comparison.notes.append(
                f"{max(polling)} of websocketd's `tail -F` children reported 'inotify resources exhausted; reverting "
                "to polling' (fs.inotify.max_user_instances = 128 per user, left at its default): they look once a second.")
    elif not p.smoke:
        comparison.notes.append("websocketd is not installed: its peer was skipped (make bench installs it).")


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

    def websocketd() -> dict:
        path = fresh_file()
        r = ws_live(bench, path, common, timeout=seconds + 90)
        path.unlink()
        return r

    def tailsse(push: bool = True, events: bool = False) -> dict:
        path = fresh_file()
        others = {name: fresh_file() for name in (["b", "c"] if events else [])}
        url = "/events?source=live&source=b&source=c&tail=0" if events else "/sources/live?tail=0"
        with bench.server({"live": path, **others}, push=push) as server:
            r = bench.run_sseload("live-sse", "--port", str(server.port), "--path", url,
                                  "--file", str(path), *common, timeout=seconds + 90)
            r["cpu_s"] = server.cpu_since_start()
            r["rss_mib"] = server.rss_peak_mib()
            if not server.alive():
                raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
        r["shutdown_s"] = server.shutdown_s
        for file in [path, *others.values()]:
            file.unlink()
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
                     "whose stdout pipes the same client reads. "
                     + (f"Peer: websocketd running `tail -n 0 -F FILE` once per WebSocket client, {clients} "
                        "clients (the same client speaks WebSocket: handshake, then one line per message); its "
                        "CPU and memory are its whole process tree's. " if p.websocketd else "")
                     + "'tailsse SSE' is the default, the push fan-out; 'tailsse SSE, no "
                     "push' runs with TAILSSE_LIVE_PUSH=off: every client reads the live end in a task of its own. "
                     "'tailsse SSE, /events of 3 sources': the clients are on `/events?source=live&source=b&source=c"
                     "&tail=0` (the page's stream; b and c are quiet files): every event gets the client's composite id, "
                     "spliced in on the event loop as the pushed event is written ('no push': each client reads the "
                     "live end of each source in tasks of its own). "
                     + "Every follower must get every line exactly "
                     "once, in order, or the run fails. Percentiles are over all lines × followers; "
                     "'slowest follower' is, per line, the latest of the followers."),
        subjects={"tail -F ×N (peer)": tail_f,
                  **({f"websocketd + tail -F ×N (peer)": websocketd} if p.websocketd else {}),
                  "tailsse SSE, no push": lambda: tailsse(push=False),
                  "tailsse SSE": tailsse,
                  "tailsse SSE, /events of 3 sources, no push": lambda: tailsse(events=True, push=False),
                  "tailsse SSE, /events of 3 sources": lambda: tailsse(events=True)},
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
    trend_notes(comparison)
    websocketd_note(comparison, p)
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
# Journal cases


JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def need_tools(*tools: str) -> None:
    """Raises BenchError naming the missing programs (make bench / make test install them)."""
    missing = [t for t in tools if not (os.access(t, os.X_OK) if t.startswith("/") else shutil.which(t))]
    if missing:
        raise BenchError(f"missing {', '.join(missing)}: apt-get install systemd systemd-journal-remote util-linux "
                         "(make bench and make test install them)")


def write_journal(directory: Path, entries: int) -> tuple[int, float]:
    """Writes a journal of `entries` entries into `directory` with systemd-journal-remote.

    Journal export format on its stdin: a ~100-byte MESSAGE (an access-log line with quotes that
    JSON escapes) and the usual fields of a service's entry. Returns (bytes on disk, seconds).
    """
    directory.mkdir(parents=True)
    units = ("nginx.service", "sshd.service", "cron.service", "app.service", "postgresql.service")
    methods = ("GET", "GET", "GET", "POST", "PUT", "DELETE")
    paths = ("/api/v1/items", "/api/v1/users", "/static/app.js", "/healthz", "/api/v1/orders")
    boot = "6f1c0e7d2b8a4c3e9d5f7a1b2c3d4e5f"
    realtime0 = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z, µs
    t0 = time.monotonic()
    proc = subprocess.Popen([JOURNAL_REMOTE, "-o", str(directory / "bench.journal"), "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin
    try:
        chunk = []
        for i in range(entries):
            message = (f"web-{i % 7} \"{methods[i % 6]} {paths[i % 5]}/{i} HTTP/1.1\" {200 if i % 13 else 404} "
                       f"{i * 7919 % 65536} rt={i % 997} " + "x" * 99)[:100]
            chunk.append(f"__REALTIME_TIMESTAMP={realtime0 + i * 1000}\n__MONOTONIC_TIMESTAMP={1_000_000 + i * 1000}\n"
                         f"_BOOT_ID={boot}\nPRIORITY={6 if i % 13 else 4}\nSYSLOG_IDENTIFIER=nginx\n"
                         f"_PID={1000 + i % 97}\n_HOSTNAME=web-{i % 7}\n_SYSTEMD_UNIT={units[i % 5]}\n"
                         f"MESSAGE={message}\n\n")
            if len(chunk) == 5000:
                proc.stdin.write("".join(chunk).encode())
                chunk.clear()
        proc.stdin.write("".join(chunk).encode())
        proc.stdin.close()
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise BenchError(f"systemd-journal-remote exited {proc.returncode}: {out.strip()[-500:]}")
    seconds = time.monotonic() - t0
    # Count what a reader finds (and read the files once, so every subject finds them in the page cache).
    result = subprocess.run(["journalctl", "-D", str(directory), "-o", "cat", "--no-pager"],
                            capture_output=True, timeout=120)
    found = result.stdout.count(b"\n")
    if found != entries:
        raise BenchError(f"the journal written by systemd-journal-remote has {found} entries, not {entries}: {out[-300:]}")
    return sum(f.stat().st_size for f in directory.iterdir()), seconds


def run_timed(argv: list[str], workdir: Path, timeout: float = 300) -> dict:
    """Runs argv with stdout to /dev/null; wall time and CPU (user + system) of the process."""
    err_path = workdir / f"stderr-{time.monotonic_ns()}.txt"
    with open(err_path, "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise BenchError(f"{argv[0]} took more than {timeout:.0f} s")
            time.sleep(0.002)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace").strip()
    err_path.unlink()
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}: {stderr[-500:]}")
    return {"seconds": wall, "cpu_s": usage.ru_utime + usage.ru_stime}


@case("journal-replay")
def journal_replay(bench: Bench, p: argparse.Namespace) -> None:
    """The whole journal of a directory: tailsse SSE vs gatewayd SSE vs journalctl -o json / -o cat."""
    need_tools(JOURNAL_REMOTE, Gatewayd.BINARY, "journalctl", "systemd-socket-activate")
    entries = p.journal_entries
    directory = bench.workdir / "journal-replay"
    size, written_s = write_journal(directory, entries)
    bench.log(f"journal-replay: {entries:,} entries, {size / 1e6:.1f} MB of journal files in {directory} "
              f"(systemd-journal-remote: {written_s:.1f} s)")

    def journalctl(fmt: str) -> dict:
        r = run_timed(["journalctl", "-D", str(directory), "-o", fmt, "--no-pager"], bench.workdir)
        r["rate"] = entries / r["seconds"]
        r["cpu_per_entry_us"] = r["cpu_s"] / entries * 1e6
        return r

    def finish(r: dict) -> dict:
        r["cpu_per_entry_us"] = r["cpu_s"] / max(1, r["events"]) * 1e6
        r["bytes_per_entry"] = r["bytes"] / max(1, r["events"])
        return r

    def gatewayd(read: str) -> dict:
        # Plain /entries (no Range header) sends every entry from the head and ends the response.
        with Gatewayd(directory, bench.workdir) as gw:
            r = bench.run_sseload("replay", "--port", str(gw.port), "--path", "/entries", "--count", "events",
                                  "--expect", str(entries), "--read", read, "--timeout", "300", timeout=330)
            r["cpu_s"] = gw.cpu_since_start()
            if not gw.alive():
                raise BenchError("gatewayd exited during the run")
        return finish(r)

    def tailsse(read: str) -> dict:
        with bench.server({}, extra=["--journal-directory", str(directory)]) as server:
            r = bench.run_sseload("replay", "--port", str(server.port), "--path", "/journal?tail=all",
                                  "--count", "id-events", "--expect", str(entries), "--read", read,
                                  "--timeout", "300", timeout=330)
            r["cpu_s"] = server.cpu_since_start()
            r["rss_mib"] = server.rss_peak_mib()
            if not server.alive():
                raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
        r["shutdown_s"] = server.shutdown_s
        return finish(r)

    metrics = [
        Metric("seconds", "time", "s", higher_is_better=False, digits=3),
        Metric("cpu_s", "CPU of server/journalctl", "s", higher_is_better=False, digits=2),
        Metric("cpu_per_entry_us", "CPU per entry", "µs", higher_is_better=False, digits=2),
        Metric("client_cpu_s", "client CPU", "s", higher_is_better=False, digits=2),
        Metric("bytes_per_entry", "bytes on the wire per entry", "", digits=0),
        Metric("rss_mib", "server peak RSS", "MiB", higher_is_better=False, digits=1),
    ]
    reading = {
        "eager": "The SSE client reads eagerly (a blocking `recv` into a 1 MiB buffer in a tight loop: it wakes "
                 "on nearly every write, as a browser does).",
        "coalesce": "The SSE client coalesces (sleeps 10 ms after every read shorter than its 1 MiB buffer, so "
                    "each read takes a lot: the most favourable reader for a server that writes small pieces).",
    }
    cat, json_ = "journalctl -o cat (baseline)", "journalctl -o json"
    gw_name, ts_name = "gatewayd SSE (peer)", "tailsse SSE"
    for read in p.read_modes:
        comparison = bench.compare(
            case=f"journal-replay-{read}",
            title=f"replay a journal of {entries:,} entries from the head, {read} reader",
            description=(
                f"A journal directory of {entries:,} entries ({size / 1e6:.0f} MB of journal files in the page cache, "
                "written once per invocation by `systemd-journal-remote` from the export format: a ~100-byte "
                "MESSAGE with quotes, PRIORITY, SYSLOG_IDENTIFIER, _PID, _HOSTNAME, _SYSTEMD_UNIT, _BOOT_ID, "
                "__REALTIME_TIMESTAMP). tailsse (`--journal-directory DIR`, fresh per run): one client reads "
                "`GET /journal?tail=all` (`Accept: text/event-stream`) until it has counted every entry as an "
                "event with an `id:` and a `data:` line. Peer: `systemd-journal-gatewayd -D DIR` under "
                "`systemd-socket-activate` (fresh per run, started before the clock runs), `GET /entries` with "
                "`Accept: text/event-stream` (no Range header: every entry from the head), chunked body decoded, "
                "`data:` events counted by the same client. Time from connect to the last event. Baselines: "
                "`journalctl -D DIR -o cat` and `-o json` with stdout to /dev/null (process start to exit). "
                + reading[read]),
            subjects={
                cat: lambda: journalctl("cat"),
                json_: lambda: journalctl("json"),
                gw_name: lambda read=read: gatewayd(read),
                ts_name: lambda read=read: tailsse(read),
            },
            baseline=cat,
            primary=Metric("rate", "entries/s", "", higher_is_better=True),
            metrics=metrics,
            targets=[
                Target(ts_name, "rate", 5.0, at_least=True, relative_to=gw_name, text="tailsse ≥ 5× gatewayd"),
                Target(ts_name, "rate", 0.5, at_least=True, relative_to=cat, text="tailsse ≥ 0.5× `journalctl -o cat`"),
            ],
            runs=bench.runs(full=p.runs_journal_replay, smoke=1),
            check=lambda r: None if "ok" not in r else ok_check(r),
        )
        shutdown_note(comparison, ts_name)
        ratio = comparison.ratio(ts_name)
        gw_ratio = comparison.ratio(gw_name)
        json_ratio = comparison.ratio(json_)
        if ratio is not None and gw_ratio and json_ratio:
            comparison.notes.append(
                f"Ratios of the medians: tailsse ÷ gatewayd {ratio / gw_ratio:.2f}, tailsse ÷ `journalctl -o json` "
                f"{ratio / json_ratio:.2f}, tailsse ÷ `journalctl -o cat` {ratio:.2f}.")


def journal_namespace_possible() -> None:
    """Raises BenchSkip where a standalone journald in a private mount namespace cannot run."""
    if os.geteuid() != 0:
        raise BenchSkip("needs root: a standalone journald runs in a private mount namespace")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise BenchSkip(f"no private mount namespace here (`unshare -m` failed: {probe.stderr.strip()[-200:]})")


def resource_nofile() -> str:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f"soft {soft:,}, hard {hard:,}"


class JournalProducer:
    """A long-lived `systemd-cat -t TAG` inside the namespace, reading a FIFO that sseload's writer opens.

    The harness holds a second write end open, so `cat` never sees end-of-file before the writer
    has opened the FIFO, and does once both are closed: the producer then exits and its CPU is read.
    """

    def __init__(self, ns: JournalNamespace, fifo: Path, tag: str = "tailsse-bench"):
        self.ns, self.fifo, self.tag = ns, fifo, tag
        self.cpu_s = 0.0

    def __enter__(self) -> "JournalProducer":
        os.mkfifo(self.fifo)
        rfd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        self._hold = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.set_blocking(rfd, True)
        try:
            self.proc = subprocess.Popen(self.ns.enter(["systemd-cat", "-t", self.tag]), stdin=rfd,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            os.close(rfd)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self._hold)
        deadline = time.monotonic() + 10
        while True:
            pid, _, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.cpu_s = usage.ru_utime + usage.ru_stime
                self.proc.returncode = 0
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                break
            time.sleep(0.01)
        self.fifo.unlink()


@case("journal-live")
def journal_live(bench: Bench, p: argparse.Namespace) -> None:
    """Latency of new journal entries (real journald, 1,000/s) to 1 and 100 followers: tailsse vs journalctl -f."""
    need_tools("journalctl", "systemd-cat", "unshare", "nsenter", "/lib/systemd/systemd-journald")
    journal_namespace_possible()
    have_gatewayd = os.access(Gatewayd.BINARY, os.X_OK) and shutil.which("systemd-socket-activate")
    rate, seconds = p.live_rate, p.journal_live_seconds
    lines = int(rate * seconds)
    counter = iter(range(1_000_000))

    jfollow = bench.compile_tool("jfollow.c", "-lsystemd")

    with JournalNamespace(bench.workdir) as ns:
        bench.log(f"journal-live: journald pid {ns.journald_pid} in a private mount namespace ({ns.dir})")

        tags: list[str] = []

        def measure(subject) -> dict:
            n = next(counter)
            fifo = bench.workdir / f"journal-live-{n}.fifo"
            tags.append(f"tailsse-bench-{n}")  # a tag per run: gatewayd's follow filters on it
            journald0 = ns.journald_cpu()
            with JournalProducer(ns, fifo, tag=tags[-1]) as producer:
                r = subject(fifo)
            r["aux_cpu_s"] = ns.journald_cpu() - journald0 + producer.cpu_s
            r["journald_cpu_s"] = ns.journald_cpu() - journald0
            if ns.proc and ns.proc.poll() is not None:
                raise BenchError("journald exited during the run")
            return r

        for clients in p.journal_live_clients:
            common = ["--clients", str(clients), "--rate", str(rate), "--lines", str(lines),
                      "--timeout", str(seconds + 60)]

            def journalctl_f(fifo: Path, clients=clients, common=common) -> dict:
                r = bench.run_sseload("live-exec", "--file", str(fifo), *common, timeout=seconds + 90,
                                      command=ns.enter(["journalctl", "-f", "-n", "0", "-o", "cat", "--no-pager"]))
                r["cpu_s"] = r["child_cpu_s"]
                return r

            def reference(fifo: Path, common=common) -> dict:
                r = bench.run_sseload("live-exec", "--file", str(fifo), *common, timeout=seconds + 90,
                                      command=ns.enter([jfollow, str(p.journal_poll_us)]))
                r["cpu_s"] = r["child_cpu_s"]
                return r

            def gatewayd(fifo: Path, common=common) -> dict:
                # /entries?follow without a Range header starts at the head of what matches: the run's own tag.
                with Gatewayd(None, bench.workdir, wrapper=ns.enter([])) as gw:
                    r = bench.run_sseload("live-sse", "--port", str(gw.port), "--path",
                                          f"/entries?follow&SYSLOG_IDENTIFIER={tags[-1]}", "--file", str(fifo),
                                          *common, timeout=seconds + 90)
                    r["cpu_s"] = gw.cpu_since_start()
                    r["rss_mib"] = gw.rss_kib() / 1024
                    if not gw.alive():
                        raise BenchError(f"gatewayd exited during the run: {gw.log_tail()}")
                r["delivered_pct"] = 100.0 * r.get("received", 0) / max(1, r.get("expected", 1))
                if not r.get("ok") and r.get("received") and not (r.get("duplicates") or r.get("reordered")):
                    # gatewayd's own limits (one thread, sd_journal and inotify instance per follower: some
                    # followers fail, or it falls behind): reported as they happen, not a failed run.
                    gatewayd_limits.append(
                        f"{r.get('failed_clients', 0)} of {clients} followers failed to connect or ended early, "
                        f"{r.get('incomplete_clients', 0)} did not get every entry ({r.get('why')}): "
                        f"{r['delivered_pct']:.0f} % of the deliveries arrived, the latency figures are over those "
                        "(a lower bound); gatewayd's log: " + (gw.log_tail(300).strip()[-200:] or "nothing"))
                    r["ok"] = True
                return r

            def tailsse(fifo: Path, common=common, push: bool = True) -> dict:
                with bench.server({}, extra=["--journal"], wrapper=ns.enter([]), push=push) as server:
                    r = bench.run_sseload("live-sse", "--port", str(server.port), "--path", "/journal?tail=0",
                                          "--file", str(fifo), *common, timeout=seconds + 90)
                    r["cpu_s"] = server.cpu_since_start()
                    r["rss_mib"] = server.rss_peak_mib()
                    if not server.alive():
                        raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
                r["shutdown_s"] = server.shutdown_s
                return r

            ms = dict(scale=1e-3, digits=2, higher_is_better=False)
            plural = "s" if clients != 1 else ""
            gatewayd_limits: list[str] = []
            base_name = f"journalctl -f ×{clients} (baseline)"
            ref_name = f"sd_journal {p.journal_poll_us / 1000:g} ms wait ×{clients} (reference)"
            comparison = bench.compare(
                case=f"journal-live-{clients}",
                title=f"journal live latency, {clients} follower{plural}, {rate:,} entries/s for {seconds:g} s",
                description=(
                    "A real systemd-journald (systemd 252, Storage=volatile, no rate limit) runs standalone in a "
                    "private mount namespace; one long-lived `systemd-cat` in it reads a FIFO that sseload's "
                    f"SCHED_FIFO writer thread feeds with {lines:,} lines of ~100 bytes at {rate:,} lines/s "
                    "(absolute schedule), each carrying its CLOCK_MONOTONIC send time, so each becomes one journal "
                    "entry. Every follower records receive time − send time for every entry (epoll, eager). "
                    f"tailsse (`--journal`, in the namespace, fresh per run): {clients} SSE client{plural} on "
                    f"`/journal?tail=0` over loopback. Baseline: {clients} `journalctl -f -n 0 -o cat` in the "
                    "namespace, their stdout pipes read by the same client. Reference: as many `bench/jfollow.c`, "
                    "a minimal sd_journal follower that calls `sd_journal_next` after every "
                    f"`sd_journal_wait(j, {p.journal_poll_us} µs)` whether or not inotify reported a change "
                    "(and retries an entry whose data is not readable yet a moment after journald linked it). "
                    + (f"Peer: systemd-journal-gatewayd in the namespace (under systemd-socket-activate, fresh per "
                       f"run), {clients} SSE client{plural} on `/entries?follow&SYSLOG_IDENTIFIER=TAG` with "
                       "`Accept: text/event-stream` (the run's own tag: it starts at the run's first entry); its "
                       "'server peak RSS' is its RSS at the end of the run. " if have_gatewayd else "")
                    + "'tailsse SSE' is the default, the push fan-out; 'tailsse SSE, no push' "
                    "runs with TAILSSE_LIVE_PUSH=off (every client reads the live end in a task of its own). "
                    + "Every follower must get every entry exactly once, in order. The latency includes journald's "
                    "own path (stream socket → mmap'ed journal file), the same for all."),
                subjects={base_name: lambda f=journalctl_f: measure(f),
                          ref_name: lambda f=reference: measure(f),
                          **({f"gatewayd ?follow ×{clients} (peer)": lambda f=gatewayd: measure(f)}
                             if have_gatewayd else {}),
                          "tailsse SSE, no push": lambda f=tailsse: measure(lambda fifo: f(fifo, push=False)),
                          "tailsse SSE": lambda f=tailsse: measure(f)},
                baseline=base_name,
                primary=Metric("p99_us", "p99", "ms", **ms),
                metrics=[
                    Metric("p50_us", "p50", "ms", **ms),
                    Metric("max_us", "max", "ms", **ms),
                    Metric("slowest_client_p99_us", "slowest follower p99", "ms", **ms),
                    Metric("cpu_s", "CPU of server/journalctls", "s", higher_is_better=False, digits=2),
                    Metric("client_cpu_s", "client CPU", "s", higher_is_better=False, digits=2),
                    Metric("journald_cpu_s", "journald CPU", "s", higher_is_better=False, digits=2),
                    Metric("writer_slip_p99_us", "writer late p99", "ms", **ms),
                    Metric("rss_mib", "server peak RSS", "MiB", higher_is_better=False, digits=1),
                    *([Metric("delivered_pct", "entries delivered", "%", digits=1)] if have_gatewayd else []),
                ],
                targets=[Target("tailsse SSE", "p99_us", 10_000, at_least=False, text="tailsse p99 ≤ 10 ms")],
                runs=bench.runs(full=p.runs_journal_live, smoke=1),
                check=ok_check,
            )
            shutdown_note(comparison, "tailsse SSE")
            for subject in comparison.subjects:
                runs = sorted((r for r in subject.runs if r.get("by_second")), key=lambda r: r["p99_us"])
                if runs:
                    median_run = runs[len(runs) // 2]
                    trend = ", ".join(f"{b[0] / 1000:.1f}/{b[1] / 1000:.1f}" for b in median_run["by_second"])
                    comparison.notes.append(f"{subject.name}, run with the median p99, p50/p99 (ms) per second "
                                            f"of writing: {trend}.")
            for text in gatewayd_limits:
                comparison.notes.append(f"gatewayd ?follow: {text}")
            comparison.notes.append(
                "journald (systemd 252) writes each entry into the mmap'ed journal file at once but signals "
                "inotify followers only from a 250 ms timer (its 'post change' ftruncate of the file), so a "
                "follower that waits for inotify alone (journalctl -f) sees entries 0–250 ms late (p50 ≈ 125 ms); "
                "the reference shows what a follower that also looks every few milliseconds gets.")


@case("live-1")
def live_one(bench: Bench, p: argparse.Namespace) -> None:
    """Latency of new lines to 1 follower: tailsse SSE vs `tail -F` and websocketd (+ tail -F)."""
    rate, seconds = p.live_rate, p.live1_seconds
    lines = int(rate * seconds)
    counter = iter(range(1_000_000))

    def fresh_file() -> Path:
        path = bench.workdir / f"live1-{next(counter)}.log"
        path.write_bytes(b"")
        return path

    common = ["--clients", "1", "--rate", str(rate), "--lines", str(lines), "--timeout", str(seconds + 60)]

    def tail_f() -> dict:
        path = fresh_file()
        r = bench.run_sseload("live-exec", "--file", str(path), *common, timeout=seconds + 90,
                              command=["tail", "-n", "0", "-F", str(path)])
        r["cpu_s"] = r["child_cpu_s"]
        path.unlink()
        return r

    def websocketd() -> dict:
        path = fresh_file()
        r = ws_live(bench, path, common, timeout=seconds + 90)
        path.unlink()
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
    base = "tail -F ×1 (baseline)"
    comparison = bench.compare(
        case="live-1",
        title=f"live latency, 1 follower, {rate:,} lines/s for {seconds:g} s",
        description=(f"As `live`, with one follower: a SCHED_FIFO writer thread appends {lines:,} lines of ~100 "
                     f"bytes at {rate:,} lines/s, each carrying its CLOCK_MONOTONIC send time; the follower records "
                     "receive time − send time for every line (epoll, eager). tailsse: one SSE client on "
                     "`/sources/NAME?tail=0` (fresh server and file per run). Baseline: one `tail -n 0 -F FILE` "
                     "whose stdout pipe the same client reads. "
                     + ("Peer: websocketd running `tail -n 0 -F FILE` for its one WebSocket client (the same "
                        "client speaks WebSocket). " if p.websocketd else "")
                     + "Every line exactly once, in order, or the run fails."),
        subjects={base: tail_f,
                  **({"websocketd + tail -F (peer)": websocketd} if p.websocketd else {}),
                  "tailsse SSE": tailsse},
        baseline=base,
        primary=Metric("p99_us", "p99", "ms", **ms),
        metrics=[
            Metric("p50_us", "p50", "ms", **ms),
            Metric("p999_us", "p99.9", "ms", **ms),
            Metric("max_us", "max", "ms", **ms),
            Metric("cpu_s", "CPU of server/tail", "s", higher_is_better=False, digits=2),
            Metric("client_cpu_s", "client CPU", "s", higher_is_better=False, digits=2),
            Metric("writer_slip_p99_us", "writer late p99", "ms", **ms),
            Metric("rss_mib", "server peak RSS", "MiB", higher_is_better=False, digits=1),
        ],
        targets=[Target("tailsse SSE", "p99_us", 2000, at_least=False, text="tailsse p99 ≤ 2 ms (1 client)")],
        runs=bench.runs(full=p.runs_live, smoke=1),
        check=ok_check,
    )
    shutdown_note(comparison, "tailsse SSE")
    trend_notes(comparison)
    websocketd_note(comparison, p)


def fanout_metrics() -> list[Metric]:
    ms = dict(scale=1e-3, digits=1, higher_is_better=False)
    return [
        Metric("pss_per_client_kib", "PSS per idle client", "KiB", higher_is_better=False, digits=1),
        Metric("rss0_mib", "RSS, 0 clients", "MiB", higher_is_better=False, digits=1),
        Metric("rss_idle_mib", "RSS, N idle clients", "MiB", higher_is_better=False, digits=1),
        Metric("rss_peak_mib", "RSS peak, lines flowing", "MiB", higher_is_better=False, digits=1),
        Metric("cores", "CPU while lines flow", "cores", higher_is_better=False, digits=3),
        Metric("cpu_per_delivery_us", "CPU per delivery", "µs", higher_is_better=False, digits=1),
        Metric("delivered_pct", "lines delivered", "%", digits=2),
        Metric("served", "followers with every line", "", digits=0),
        Metric("p50_us", "p50", "ms", **ms),
        Metric("p99_us", "p99", "ms", **ms),
        Metric("connect_s", "connect time", "s", higher_is_better=False, digits=2),
    ]


def peer_check(result: dict) -> str | None:
    """A peer's run counts when its figures are sound (nothing duplicated or reordered), even when some of
    its followers failed to connect or got nothing (its own limits: reported as 'followers with every line')."""
    if "received" not in result:
        return f"invalid result: {result}"
    if result.get("duplicates") or result.get("reordered") or result.get("bad"):
        return ok_check({**result, "ok": False})
    if result.get("received", 0) == 0:
        return ok_check({**result, "ok": False})
    return None


def fanout_run(bench: Bench, p: argparse.Namespace, server, path: str, writer_file: Path, clients: int,
               sse: bool = True, pss: bool = False) -> dict:
    """One fan-out run against a started server-like object (Server, Gatewayd, Websocketd): memory with 0
    clients, then `clients` followers connect and sync, idle for a while (memory sampled), then one line
    every 100 ms reaches them all (latency, delivery, CPU, peak memory)."""
    rate, seconds, idle = p.fanout_rate, p.fanout_seconds, p.fanout_idle
    lines = max(1, int(rate * seconds))
    time.sleep(0.3)
    figures: dict = {"rss0_kib": server.rss_kib()}
    if pss:
        figures["pss0_kib"] = server.pss_kib()
    marks: dict = {}

    def on_phase(word: str) -> None:
        if word == "idle":
            time.sleep(idle * 0.6)
            marks["rss_idle_kib"] = server.rss_kib()
            if pss:
                marks["pss_idle_kib"] = server.pss_kib()
        elif word == "live":
            marks["cpu_live0"] = server.cpu_since_start()
            marks["t_live0"] = time.monotonic()

    many = clients >= 1000
    args = ["--port", str(server.port), "--path", path, "--file", str(writer_file), "--clients", str(clients),
            "--rate", str(rate), "--lines", str(lines), "--idle-seconds", str(idle),
            "--sync-ms", "200" if many else "20", "--sync-timeout", str(p.fanout_sync_timeout),
            "--src-addrs", str(max(1, -(-clients // 4000))), "--timeout", str(seconds + idle + 240)]
    sampler = RssSampler(server.rss_kib, 1.0)
    with sampler:
        r = bench.run_sseload_phased("live-sse" if sse else "live-ws", *args, on_phase=on_phase,
                                     timeout=seconds + idle + 300)
        cpu_end = server.cpu_since_start()
        t_end = time.monotonic()
    r.update(figures)
    r.update({k: v for k, v in marks.items() if k.endswith("_kib")})
    if "cpu_live0" in marks:
        r["cpu_s"] = cpu_end - marks["cpu_live0"]
        r["cores"] = r["cpu_s"] / max(1e-3, t_end - marks["t_live0"])
        r["cpu_per_delivery_us"] = r["cpu_s"] / max(1, r.get("received", 0)) * 1e6
    r["rss0_mib"] = r["rss0_kib"] / 1024
    if "rss_idle_kib" in r:
        r["rss_idle_mib"] = r["rss_idle_kib"] / 1024
        r["rss_per_client_kib"] = (r["rss_idle_kib"] - r["rss0_kib"]) / clients
    if "pss_idle_kib" in r:
        r["pss_per_client_kib"] = (r["pss_idle_kib"] - r["pss0_kib"]) / clients
    r["rss_peak_mib"] = max(sampler.values, default=0) / 1024
    r["delivered_pct"] = 100.0 * r.get("received", 0) / max(1, r.get("expected", 1))
    r["served"] = clients - r.get("incomplete_clients", clients)
    if not server.alive():
        raise BenchError(f"the server exited during the run: {server.log_tail()}")
    return r


def fanout_compare(bench: Bench, p: argparse.Namespace, kind: str, clients: int, subjects: dict, peer: str | None,
                   description: str) -> None:
    ts = "tailsse SSE"
    metrics = fanout_metrics()
    if peer is None:
        metrics = [m for m in metrics if m.key != "pss_per_client_kib"]
    targets = []
    if clients >= 10_000:
        targets = [Target(ts, "rss_per_client_kib", 16, at_least=False, text="tailsse ≤ 16 KiB RSS per idle client"),
                   Target(ts, "delivered_pct", 100, at_least=True, text="every line delivered to every client"),
                   Target(ts, "p99_us", 100_000, at_least=False, text="tailsse p99 ≤ 100 ms at 10,000 clients")]
    checks = {name: (ok_check if name == ts else peer_check) for name in subjects}
    results: dict[str, dict] = {}

    def wrap(name, fn):
        def run() -> dict:
            r = fn()
            problem = checks[name](r)
            if problem:
                raise BenchError(problem)
            return r
        return run

    comparison = bench.compare(
        case=f"fanout-{kind}-{clients}",
        title=f"fan-out, {clients:,} clients of a {kind}, one line every {1000 / p.fanout_rate:g} ms",
        description=description,
        subjects={name: wrap(name, fn) for name, fn in subjects.items()},
        baseline=peer or ts,
        primary=Metric("rss_per_client_kib", "RSS per idle client", "KiB", higher_is_better=False, digits=1),
        metrics=metrics,
        targets=targets,
        runs=bench.runs(full=p.runs_fanout, smoke=1),
    )
    del results
    for s in comparison.subjects:
        for r in s.runs:
            if r.get("failed_clients") or r.get("incomplete_clients"):
                why = r.get("why", "")
                err = (r.get("stderr") or "").splitlines()
                comparison.notes.append(
                    f"{s.name}: {r.get('failed_clients', 0)} of {clients} followers failed to connect or ended "
                    f"before the first line, {r.get('incomplete_clients', 0)} did not get every line ({why}"
                    f"{'; ' + err[0][:160] if err else ''}).")
        for r in s.runs:
            if r.get("log_hint"):
                comparison.notes.append(f"{s.name}: {r['log_hint']}")
                break
    trend_notes(comparison, suffix="")


FANOUT_TEXT = ("Memory: the server's RSS (VmRSS; for websocketd the sum over its process tree) after it is ready "
               "with no client, and again with N clients connected, each past its response head and a few `##sync` "
               "lines, then idle for {idle:g} s (sampled {idle_at:.1f} s into the idle time); 'RSS per idle client' "
               "= (RSS with N − RSS with 0) / N, PSS likewise where a process tree shares pages. Then one line "
               "every {period:g} ms for {seconds:g} s ({lines} lines, from sseload's SCHED_FIFO writer, each "
               "carrying its send time) must reach every client exactly once, in order; CPU is the server's "
               "while the lines flow, 'CPU per delivery' that CPU over lines × clients; latency is receive − send "
               "over all lines × clients (epoll, eager). Client sockets are bound round-robin to 127.0.0.2…; "
               "the client's and every server's RLIMIT_NOFILE is raised to 65,536 by the harness; inotify "
               "limits are left at the defaults (max_user_instances {inst}).")


def inotify_instances() -> str:
    try:
        return Path("/proc/sys/fs/inotify/max_user_instances").read_text().strip()
    except OSError:
        return "?"


@case("fanout-file")
def fanout_file(bench: Bench, p: argparse.Namespace) -> None:
    """Clients one tailsse holds on a file (memory per idle client, CPU, delivery) vs websocketd + tail -F."""
    counter = iter(range(1_000_000))
    lines = int(p.fanout_rate * p.fanout_seconds)
    text = FANOUT_TEXT.format(idle=p.fanout_idle, idle_at=p.fanout_idle * 0.6, period=1000 / p.fanout_rate,
                              seconds=p.fanout_seconds, lines=lines, inst=inotify_instances())

    for clients in p.fanout_clients:
        def tailsse(clients=clients, push: bool = True) -> dict:
            path = bench.workdir / f"fanout-{next(counter)}.log"
            path.write_bytes(b"")
            with bench.server({"fan": path}, push=push) as server:
                r = fanout_run(bench, p, server, "/sources/fan?tail=0", path, clients)
            r["shutdown_s"] = server.shutdown_s
            path.unlink()
            return r

        def websocketd(clients=clients) -> dict:
            path = bench.workdir / f"fanout-{next(counter)}.log"
            path.write_bytes(b"")
            with Websocketd(["tail", "-n", "0", "-F", str(path)], bench.workdir) as wsd:
                r = fanout_run(bench, p, wsd, "/", path, clients, sse=False, pss=True)
                log = wsd.log_path.read_text(errors="replace")
            polling = log.count("reverting to polling")
            if polling:
                r["log_hint"] = (f"{polling} of its `tail -F` children reported 'inotify resources exhausted; "
                                 "reverting to polling' (they look once a second).")
            path.unlink()
            return r

        peer = "websocketd + tail -F (peer)" if p.websocketd and clients in p.fanout_peer_clients else None
        subjects = {**({peer: websocketd} if peer else {}), "tailsse SSE, no push": lambda f=tailsse: f(push=False),
                    "tailsse SSE": tailsse}
        fanout_compare(bench, p, "file", clients, subjects, peer,
                       f"tailsse: {clients:,} SSE clients on `/sources/NAME?tail=0` of one file (fresh server and "
                       "file per run)." + (f" Peer: websocketd running `tail -n 0 -F FILE` per WebSocket client "
                                           f"({clients:,} clients, so {clients:,} `tail` processes)." if peer else "")
                       + " 'tailsse SSE' is the default, the push fan-out; 'tailsse SSE, no "
                       "push' runs with TAILSSE_LIVE_PUSH=off (every client reads the live end in a task of its own). " + text)


@case("fanout-journal")
def fanout_journal(bench: Bench, p: argparse.Namespace) -> None:
    """Clients one tailsse holds on the journal (real journald) vs systemd-journal-gatewayd ?follow."""
    need_tools("systemd-cat", "unshare", "nsenter", "/lib/systemd/systemd-journald", Gatewayd.BINARY,
               "systemd-socket-activate")
    journal_namespace_possible()
    counter = iter(range(1_000_000))
    lines = int(p.fanout_rate * p.fanout_seconds)
    text = FANOUT_TEXT.format(idle=p.fanout_idle, idle_at=p.fanout_idle * 0.6, period=1000 / p.fanout_rate,
                              seconds=p.fanout_seconds, lines=lines, inst=inotify_instances())
    with JournalNamespace(bench.workdir) as ns:
        bench.log(f"fanout-journal: journald pid {ns.journald_pid} in a private mount namespace ({ns.dir})")

        def with_producer(fn) -> dict:
            n = next(counter)
            fifo = bench.workdir / f"fanout-journal-{n}.fifo"
            tag = f"tailsse-fan-{n}"
            journald0 = ns.journald_cpu()
            with JournalProducer(ns, fifo, tag=tag) as producer:
                r = fn(fifo, tag)
            r["aux_cpu_s"] = ns.journald_cpu() - journald0 + producer.cpu_s
            if ns.proc and ns.proc.poll() is not None:
                raise BenchError("journald exited during the run")
            return r

        for clients in p.fanout_clients:
            def tailsse(fifo: Path, tag: str, clients=clients, push: bool = True) -> dict:
                with bench.server({}, extra=["--journal"], wrapper=ns.enter([]), push=push) as server:
                    r = fanout_run(bench, p, server, "/journal?tail=0", fifo, clients)
                r["shutdown_s"] = server.shutdown_s
                return r

            def gatewayd(fifo: Path, tag: str, clients=clients) -> dict:
                with Gatewayd(None, bench.workdir, wrapper=ns.enter([])) as gw:
                    r = fanout_run(bench, p, gw, f"/entries?follow&SYSLOG_IDENTIFIER={tag}", fifo, clients)
                    log = gw.log_tail(2000)
                hint = [line for line in log.splitlines() if line.strip()]
                if hint and (r.get("failed_clients") or r.get("incomplete_clients")):
                    r["log_hint"] = f"gatewayd's log: {hint[-1][:200]}"
                return r

            # (In the smoke run gatewayd is left out here: journal-live's smoke run has it already.)
            peer = "gatewayd ?follow (peer)" if clients in p.fanout_peer_clients and not bench.smoke else None
            subjects = {**({peer: lambda f=gatewayd: with_producer(f)} if peer else {}),
                        "tailsse SSE, no push": lambda f=tailsse: with_producer(lambda fifo, tag: f(fifo, tag, push=False)),
                        "tailsse SSE": lambda f=tailsse: with_producer(f)}
            fanout_compare(bench, p, "journal", clients, subjects, peer,
                           "A real journald (standalone, private mount namespace, as in journal-live); the lines "
                           "reach it through one `systemd-cat` per run. tailsse (`--journal`, in the namespace, fresh "
                           f"per run): {clients:,} SSE clients on `/journal?tail=0`."
                           + (f" Peer: systemd-journal-gatewayd (in the namespace, under systemd-socket-activate, "
                              f"fresh per run): {clients:,} clients of `/entries?follow&SYSLOG_IDENTIFIER=TAG` with "
                              "`Accept: text/event-stream` (the run's own tag, so it starts at the run's first "
                              "entry)." if peer else "")
                           + " journald and systemd-cat CPU are excluded from 'other load'. " + text)


@case("slow")
def slow_clients(bench: Bench, p: argparse.Namespace) -> None:
    """100 clients reading 1 KiB/s while 10,000 lines/s arrive: server memory over time, fast clients' latency."""
    rate, seconds, slow, eager = p.slow_rate, p.slow_seconds, p.slow_clients, p.slow_eager
    lines = int(rate * seconds)
    counter = iter(range(1_000_000))

    def run(with_slow: bool) -> dict:
        path = bench.workdir / f"slow-{next(counter)}.log"
        path.write_bytes(b"")
        with bench.server({"slow": path}) as server:
            sampler = RssSampler(server.rss_kib, 1.0)
            with sampler:
                r = bench.run_sseload("live-sse", "--port", str(server.port), "--path", "/sources/slow?tail=0",
                                      "--file", str(path), "--clients", str(eager), "--rate", str(rate),
                                      "--lines", str(lines), "--timeout", str(seconds + 120),
                                      *(["--slow", str(slow), "--slow-bps", "1024"] if with_slow else []),
                                      timeout=seconds + 180)
            r["cpu_s"] = server.cpu_since_start()
            if not server.alive():
                raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
        r["shutdown_s"] = server.shutdown_s
        curve = [v / 1024 for v in sampler.values]
        r["rss_curve_mib"] = curve
        r["rss_start_mib"] = curve[0] if curve else -1
        r["rss_max_mib"] = max(curve, default=-1)
        r["rss_end_mib"] = curve[-1] if curve else -1
        r["log_size"] = path.stat().st_size
        if with_slow:
            r["slow_kib_per_s"] = r["slow_bytes"] / max(1, slow) / max(1e-3, r["write_seconds"]) / 1024
        path.unlink()
        return r

    ms = dict(scale=1e-3, digits=2, higher_is_better=False)
    fast_only = f"tailsse, {eager} eager clients only (baseline)"
    mixed = f"tailsse, {eager} eager + {slow} slow clients"
    subjects = {mixed: lambda: run(True)}
    if not bench.smoke:
        subjects = {fast_only: lambda: run(False), **subjects}
    comparison = bench.compare(
        case="slow",
        title=f"{slow} slow clients (1 KiB/s each) and {eager} eager ones, {rate:,} lines/s for {seconds:g} s",
        description=(
            f"A SCHED_FIFO writer appends {lines:,} lines of ~100 bytes at {rate:,} lines/s to a fresh file (fresh "
            f"server per run). {eager} eager SSE clients on `/sources/NAME?tail=0` record the latency of every line "
            f"(epoll, eager) and must get every line exactly once, in order; {slow} more clients read only 1 KiB/s "
            "each (102 bytes every 100 ms, kernel-default socket buffers): they cannot keep up (the log grows at "
            f"~{rate * 100 / 1e6:.1f} MB/s), so the server must fall back to reading the file at each one's "
            "position instead of buffering; their events are checked for order and duplicates, and whether the "
            "server closed them. The server's RSS is sampled every second. Baseline (full runs): the same without "
            "the slow clients."),
        subjects=subjects,
        baseline=fast_only if fast_only in subjects else mixed,
        primary=Metric("p99_us", "eager p99", "ms", **ms),
        metrics=[
            Metric("p50_us", "eager p50", "ms", **ms),
            Metric("p999_us", "eager p99.9", "ms", **ms),
            Metric("rss_start_mib", "RSS at start", "MiB", higher_is_better=False, digits=1),
            Metric("rss_max_mib", "RSS max", "MiB", higher_is_better=False, digits=1),
            Metric("rss_end_mib", "RSS at end", "MiB", higher_is_better=False, digits=1),
            Metric("cpu_s", "server CPU", "s", higher_is_better=False, digits=2),
            Metric("slow_closed", "slow clients closed by the server", "", higher_is_better=False),
            Metric("slow_got_min", "lines per slow client, min", ""),
            Metric("slow_kib_per_s", "slow client read rate", "KiB/s", digits=2),
            Metric("writer_slip_p99_us", "writer late p99", "ms", **ms),
        ],
        targets=[Target(mixed, "p99_us", 5000, at_least=False, text=f"eager clients' p99 ≤ 5 ms beside {slow} slow ones")]
        + ([Target(mixed, "p99_us", 2.0, at_least=False, relative_to=fast_only,
                   text="eager clients' p99 with slow ones ≤ 2× without")] if fast_only in subjects else []),
        runs=bench.runs(full=p.runs_slow, smoke=1),
        check=ok_check,
    )
    shutdown_note(comparison, mixed)
    for s in comparison.subjects:
        for r in s.runs[:1]:
            curve = r.get("rss_curve_mib") or []
            if curve:
                comparison.notes.append(
                    f"{s.name}: server RSS (MiB) every second, first run: " + " ".join(f"{v:.0f}" for v in curve)
                    + f" (log file at the end: {r['log_size'] / 1e6:.0f} MB).")
    trend_notes(comparison, suffix="")


@case("history")
def history(bench: Bench, p: argparse.Namespace) -> None:
    """The last 100 lines by position (GET /sources/NAME/lines?before=end&limit=100): a small vs a huge file, beside `tail -n 100`."""
    small_lines = 10_000
    big_lines = p.history_big_lines
    small, big = bench.workdir / "history-small.log", bench.workdir / "history-big.log"
    small_size = write_log_file(small, small_lines)
    big_size = write_log_file(big, big_lines)
    bench.log(f"history: {small_size / 1e6:.0f} MB and {big_size / 1e6:.0f} MB files")
    requests = 10 if bench.smoke else 50

    def tailsse(path: Path) -> dict:
        with bench.server({"app": path}) as server:
            times = []
            for _ in range(requests):
                t0 = time.monotonic()
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/sources/app/lines?before=end&limit=100") as response:
                    body = response.read()
                times.append(time.monotonic() - t0)
                lines = body.count(b"\n")
                if lines != 100:
                    raise BenchError(f"{lines} lines instead of 100")
            cpu = server.cpu_since_start()
        return {"ms": statistics.median(times) * 1000, "cpu_s": cpu, "requests": requests}

    def tail_n() -> dict:
        times = []
        for _ in range(requests):
            t0 = time.monotonic()
            subprocess.run(["tail", "-n", "100", str(big)], stdout=subprocess.DEVNULL, check=True)
            times.append(time.monotonic() - t0)
        return {"ms": statistics.median(times) * 1000, "requests": requests}

    bench.compare(
        case="history",
        title=f"the last 100 lines of a {small_size / 1e6:.0f} MB and a {big_size / 1e6:.0f} MB file",
        description=(f"`GET /sources/app/lines?before=end&limit=100` ({requests} requests per run, one after "
                     "another, the median per run; fresh server per run; files in the page cache). tailsse reads "
                     "the file backwards in 256 KiB blocks from its end, so the answer's cost does not depend on "
                     "the file's size. Baseline: `tail -n 100` of the big file (process start included)."),
        subjects={
            "tailsse, small file": lambda: tailsse(small),
            "tailsse, big file": lambda: tailsse(big),
            "tail -n 100, big file (baseline)": tail_n,
        },
        baseline="tail -n 100, big file (baseline)",
        primary=Metric("ms", "median time per request", "ms", higher_is_better=False, digits=2),
        metrics=[Metric("cpu_s", "server CPU per run", "s", higher_is_better=False, digits=2)],
        targets=[Target("tailsse, big file", "ms", 2.0, at_least=False, relative_to="tailsse, small file",
                        text="the big file costs at most 2× the small one")],
        runs=bench.runs(full=3, smoke=1),
    )


@case("grep")
def grep_load(bench: Bench, p: argparse.Namespace) -> None:
    """A follower's latency while other clients run a catastrophic grep= pattern, vs the same follower alone."""
    rate, seconds = p.live_rate, p.live1_seconds
    lines = int(rate * seconds)
    counter = iter(range(1_000_000))
    evil = bench.workdir / "grep-evil.log"
    # Lines on which `(a+)+$` backtracks without end (a run of a's, then a b): each stops at the
    # match limit instead.
    evil.write_bytes(("a" * 20_000 + "b\n").encode() * 50)
    hunters = 4
    pattern = urllib.parse.quote("(a+)+$", safe="")

    def run(with_grep: bool) -> dict:
        path = bench.workdir / f"grep-live-{next(counter)}.log"
        path.write_bytes(b"")
        stop = threading.Event()
        scans = [0]

        def hunt(port: int) -> None:
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sources/evil/lines?after=start&before=end&grep={pattern}", timeout=60) as response:
                        response.read()
                    scans[0] += 1
                except OSError:
                    if not stop.is_set():
                        raise

        with bench.server({"live": path, "evil": evil}) as server:
            threads = [threading.Thread(target=hunt, args=(server.port,), daemon=True) for _ in range(hunters if with_grep else 0)]
            for thread in threads:
                thread.start()
            try:
                r = bench.run_sseload("live-sse", "--port", str(server.port), "--path", "/sources/live?tail=0",
                                      "--file", str(path), "--clients", "1", "--rate", str(rate), "--lines", str(lines),
                                      "--timeout", str(seconds + 60), timeout=seconds + 90)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(90)
            r["cpu_s"] = server.cpu_since_start()
            if not server.alive():
                raise BenchError(f"tailsse exited during the run: {server.log_tail()}")
        r["scans"] = scans[0]
        path.unlink()
        return r

    ms = dict(scale=1e-3, digits=2, higher_is_better=False)
    alone = "tailsse, follower alone (baseline)"
    beside = f"tailsse, beside {hunters} clients grepping (a+)+$"
    bench.compare(
        case="grep",
        title=f"live latency of 1 follower ({rate:,} lines/s for {seconds:g} s) beside catastrophic grep= requests",
        description=(f"One SSE follower of a file written at {rate:,} lines/s (as `live-1`). Beside it, {hunters} clients "
                     "download, one request after another, the whole history of another file with `grep=(a+)+$`: 50 "
                     "lines of 20,000 `a`s and a `b`, on which the pattern backtracks without end unless stopped "
                     "(each line stops at PCRE2's match limit, 200,000 steps, and counts as no match). Baseline: the "
                     "same follower with no grep clients. Every line exactly once, in order, or the run fails."),
        subjects={alone: lambda: run(False), beside: lambda: run(True)},
        baseline=alone,
        primary=Metric("p99_us", "p99", "ms", **ms),
        metrics=[
            Metric("p50_us", "p50", "ms", **ms),
            Metric("max_us", "max", "ms", **ms),
            Metric("cpu_s", "server CPU", "s", higher_is_better=False, digits=2),
            Metric("scans", "grep downloads done", "", digits=0),
        ],
        targets=[Target(beside, "p99_us", 2.0, at_least=False, relative_to=alone,
                        text="the follower's p99 beside the grep clients at most 2× alone")],
        runs=bench.runs(full=3, smoke=1),
        check=ok_check,
    )


@case("footprint")
def footprint(bench: Bench, p: argparse.Namespace) -> None:
    """Idle RSS, start-to-ready time and binary size of tailsse, beside gatewayd and websocketd."""
    path = bench.workdir / "footprint.log"
    write_log_file(path, 1000)
    idle = 0.3 if bench.smoke else 1.0

    def tailsse() -> dict:
        with bench.server({"app": path}) as server:
            r = {"ready_ms": (server.t_healthy - server.t_start) * 1000,
                 "listening_ms": (server.t_listening - server.t_start) * 1000}
            time.sleep(idle)
            r["idle_rss_mib"] = server.rss_kib() / 1024
            r["cpu_s"] = server.cpu_seconds()
            r["threads"] = len(os.listdir(f"/proc/{server.proc.pid}/task"))
        return r

    def gatewayd(directory: Path) -> dict:
        with Gatewayd(directory, bench.workdir) as gw:
            r = {"ready_ms": (gw.t_healthy - gw.t_start) * 1000}
            time.sleep(idle)
            r["idle_rss_mib"] = gw.rss_kib() / 1024
            r["threads"] = len(os.listdir(f"/proc/{gw.proc.pid}/task"))
        return r

    def websocketd() -> dict:
        with Websocketd(["tail", "-n", "0", "-F", str(path)], bench.workdir) as wsd:
            r = {"ready_ms": (wsd.t_healthy - wsd.t_start) * 1000}
            time.sleep(idle)
            r["idle_rss_mib"] = wsd.rss_kib() / 1024
            r["threads"] = len(os.listdir(f"/proc/{wsd.proc.pid}/task"))
        return r

    subjects: dict = {}
    have_gw = all(os.access(t, os.X_OK) for t in (Gatewayd.BINARY, JOURNAL_REMOTE)) and shutil.which("systemd-socket-activate")
    if have_gw:
        directory = bench.workdir / "footprint-journal"
        write_journal(directory, 100)
        subjects["gatewayd (peer)"] = lambda: gatewayd(directory)
    if p.websocketd:
        subjects["websocketd (peer)"] = websocketd
    subjects["tailsse"] = tailsse
    comparison = bench.compare(
        case="footprint",
        title="footprint: idle memory, start-to-ready time, binary",
        description=("tailsse with one file source (`--file app=FILE`, 1,000 lines): 'ready' is process start "
                     "(Popen) to the first `200` from `GET /healthz` (polled every 2 ms); 'listening' to its "
                     f"`tailsse: listening on` line; idle RSS {idle:g} s after ready, no client. gatewayd: "
                     "`systemd-socket-activate` + `systemd-journal-gatewayd -D DIR` (a 100-entry journal), ready at "
                     "the first `200` from `/machine`. websocketd running `tail -n 0 -F FILE` per client: ready when "
                     "its port accepts a connection; no client (so no `tail` yet)."),
        subjects=subjects,
        baseline=next(iter(subjects)),
        primary=Metric("idle_rss_mib", "idle RSS", "MiB", higher_is_better=False, digits=1),
        metrics=[
            Metric("ready_ms", "start to ready", "ms", higher_is_better=False, digits=1),
            Metric("listening_ms", "start to 'listening on'", "ms", higher_is_better=False, digits=1),
            Metric("cpu_s", f"CPU to ready + {idle:g} s", "s", higher_is_better=False, digits=2),
            Metric("threads", "threads", "", higher_is_better=False),
        ],
        runs=bench.runs(full=p.runs_footprint, smoke=1),
    )
    binary = Path(bench.binary).resolve()
    size = binary.stat().st_size
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs = []
    for line in ldd.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and "/swift/" in parts[1]:
            lib = parts[1].split("(")[0].strip()
            try:
                libs.append((Path(lib).name, Path(lib).stat().st_size))
            except OSError:
                pass
    stripped = "stripped" if "not stripped" not in subprocess.run(["file", "-L", str(binary)], capture_output=True,
                                                                   text=True).stdout else "not stripped"
    linking = ("the Swift runtime linked in (`--static-swift-stdlib`): it loads no library from the toolchain" if not libs else
               f"it links the Swift runtime dynamically: {len(libs)} libraries from the toolchain "
               f"({', '.join(n for n, _ in libs)}; {sum(z for _, z in libs) / 2**20:.1f} MiB together), which a machine "
               "without the Swift toolchain needs installed beside it (`make release` builds the static binary)")
    comparison.notes.append(f"Binary `{Path(bench.binary).as_posix()}`: {size / 2**20:.1f} MiB ({size:,} bytes, {stripped}); {linking}.")
    comparison.notes.append(f"The harness starts every server with RLIMIT_NOFILE raised to 65,536 where it may (else "
                            f"its soft limit raised to the hard one); the harness's own limit here: {resource_nofile()}. "
                            "Under systemd a service gets a soft limit of 1,024 unless its unit sets LimitNOFILE=, "
                            "and tailsse does not raise its own soft limit.")


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
    ap.add_argument("--runs", type=int, help="runs per subject (default: 5 replay, 5 live, 3 journal-replay, "
                                              "3 journal-live; 1 with --smoke)")
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
    ap.add_argument("--journal-entries", type=int, help="entries in the journal-replay journal (default 200,000; smoke 3,000)")
    ap.add_argument("--journal-live-clients", help="follower counts of the journal-live case (default 1,100; smoke 1)")
    ap.add_argument("--journal-poll-us", type=int, default=1000,
                    help="sd_journal_wait timeout of the journal-live reference follower, µs (default 1000)")
    ap.add_argument("--journal-live-seconds", type=float,
                    help="seconds of writing in the journal-live case (default 10; smoke 2); rate: --live-rate")
    ap.add_argument("--live1-seconds", type=float, help="seconds of writing in the live-1 case (default 10; smoke 1)")
    ap.add_argument("--no-websocketd", dest="websocketd", action="store_false", default=None,
                    help="leave out the websocketd peer (it is left out with --smoke, and where it is not installed)")
    ap.add_argument("--fanout-clients", help="client counts of the fan-out cases (default 100,1000,10000; smoke 20)")
    ap.add_argument("--fanout-peer-clients", help="client counts at which the fan-out peers run (default 100,1000; smoke 20)")
    ap.add_argument("--fanout-seconds", type=float, help="seconds of lines in the fan-out cases (default 20; smoke 1)")
    ap.add_argument("--fanout-idle", type=float, help="seconds all fan-out clients stay idle before the lines "
                                                       "(memory is sampled then; default 4; smoke 1)")
    ap.add_argument("--fanout-rate", type=float, default=10, help="lines/s in the fan-out cases (default 10: one every 100 ms)")
    ap.add_argument("--fanout-sync-timeout", type=float, default=120,
                    help="seconds the fan-out clients may take to connect and see a first line (default 120)")
    ap.add_argument("--slow-seconds", type=float, help="seconds of lines in the slow case (default 60; smoke 2)")
    ap.add_argument("--slow-rate", type=int, default=10_000, help="lines/s in the slow case (default 10,000)")
    ap.add_argument("--slow-clients", type=int, help="clients reading 1 KiB/s in the slow case (default 100; smoke 20)")
    ap.add_argument("--slow-eager", type=int, default=10, help="eager clients in the slow case (default 10)")
    ap.add_argument("--history-big-lines", type=int, help="lines of the big file in the history case (default 10,000,000 = 1 GB; smoke 160,000)")
    p = ap.parse_args(argv)
    if p.list:
        for name, fn in CASES.items():
            print(f"{name:15} {(fn.__doc__ or '').strip()}")
        sys.exit(0)
    p.replay_lines = p.replay_lines or (10_000 if p.smoke else 1_000_000)
    p.live_clients = p.live_clients or (5 if p.smoke else 100)
    p.live_seconds = p.live_seconds or (2.0 if p.smoke else 10.0)
    p.read_modes = [m for m in p.read_modes.split(",") if m]
    if any(m not in ("eager", "coalesce") for m in p.read_modes):
        ap.error("--read-modes takes eager and/or coalesce")
    p.journal_entries = p.journal_entries or (3_000 if p.smoke else 200_000)
    p.journal_live_clients = [int(c) for c in (p.journal_live_clients or ("1" if p.smoke else "1,100")).split(",") if c]
    p.journal_live_seconds = p.journal_live_seconds or (2.0 if p.smoke else 10.0)
    p.runs_replay = 5
    p.runs_live = 5
    p.runs_journal_replay = 3  # gatewayd needs ~10 s per run for 200,000 entries here
    p.runs_journal_live = 3
    p.live1_seconds = p.live1_seconds or (1.0 if p.smoke else 10.0)
    if p.websocketd is None:
        p.websocketd = not p.smoke
    p.websocketd = bool(p.websocketd and shutil.which("websocketd"))
    p.fanout_clients = [int(c) for c in (p.fanout_clients or ("20" if p.smoke else "100,1000,10000")).split(",") if c]
    p.fanout_peer_clients = [int(c) for c in (p.fanout_peer_clients or ("20" if p.smoke else "100,1000")).split(",") if c]
    p.fanout_seconds = p.fanout_seconds or (1.0 if p.smoke else 20.0)
    p.fanout_idle = p.fanout_idle or (1.0 if p.smoke else 4.0)
    p.slow_seconds = p.slow_seconds or (2.0 if p.smoke else 60.0)
    p.slow_clients = p.slow_clients or (20 if p.smoke else 100)
    p.runs_fanout = 1    # ~30 s per run and subject at 10,000 clients
    p.runs_slow = 1      # a minute per run and subject
    p.runs_footprint = 5
    p.history_big_lines = p.history_big_lines or (160_000 if p.smoke else 10_000_000)
    if p.append is None:
        p.append = not p.smoke
    return p


def main(argv: list[str]) -> int:
    p = parse_args(argv)
    binary = os.environ.get("TAILSSE_BIN")
    if not binary or not os.access(binary, os.X_OK):
        print("bench: set TAILSSE_BIN to the tailsse binary (make bench builds the release one)", file=sys.stderr)
        return 2
    binary = os.path.abspath(binary)  # servers may start in another mount namespace (nsenter)
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
            try:
                fn(bench, p)
            except BenchSkip as skip:
                bench.skipped.append((name, str(skip)))
                bench.log(f"\n== {name}: SKIPPED: {skip}")
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
