"""Rotations faster than the follower looks lose nothing (issue 11).

An application with a size-rotated log writes 2,000 lines and renames the file to .1 (shifting
.1….5 up), five times within milliseconds: every generation still lies beside the new file, and
live and resuming clients must get all 10,000 lines, in order, once each — when the renames are
merely fast, when they all land in one inotify read (tailsse stopped with SIGSTOP meanwhile), and
when they happen while tailsse is down."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from http_client import SSEStream
from server import append

GENERATIONS = 5
LINES_PER_GENERATION = 2000


def rotate_numbered(log: Path) -> None:
    """Shift .N -> .N+1 (highest first), then the file -> .1, as logrotate and RotatingFileHandler do."""
    numbers = sorted((int(p.name[len(log.name) + 1:]) for p in log.parent.glob(log.name + ".*")
                      if p.name[len(log.name) + 1:].isdigit()), reverse=True)
    for n in numbers:
        os.rename(f"{log}.{n}", f"{log}.{n + 1}")
    os.rename(log, f"{log}.1")


def write_generations(log: Path) -> list[str]:
    written: list[str] = []
    for g in range(GENERATIONS):
        lines = [f"g{g}-{i:04d}" for i in range(LINES_PER_GENERATION)]
        append(log, "".join(x + "\n" for x in lines))
        rotate_numbered(log)
        written += lines
    return written


def received(stream: SSEStream, count: int) -> list[str]:
    stream.wait_messages(count, timeout=60)
    return stream.texts()


def check(stream: SSEStream, written: list[str], prefix: list[str] = ()) -> None:
    expected = list(prefix) + written
    got = received(stream, len(expected))
    assert len(got) == len(expected), f"{len(got)} of {len(expected)} lines"
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert got == expected, f"first difference at {first}: got {got[first:first + 3]}, expected {expected[first:first + 3]}"
    assert all(e.type in ("message", "rotated") for e in stream.events), {e.type for e in stream.events}


def start_and_mark(tailsse, log: Path):
    log.write_bytes(b"")
    srv = tailsse({"app": log}, shared_buffer_bytes=1 << 20)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "start\n")
        start_id = s.wait_messages(1)[0].own_id
    return srv, start_id


@pytest.mark.parametrize("pause", [False, True], ids=["fast", "one-inotify-batch"])
def test_rapid_rotations_lose_nothing(tailsse, logdir, pause):
    log = logdir / "app.log"
    srv, start_id = start_and_mark(tailsse, log)
    with SSEStream(srv.port, "/sources/app?tail=0", timeout=60) as live:
        live.wait_ready()
        if pause:
            os.kill(srv.pid, signal.SIGSTOP)
        try:
            written = write_generations(log)
        finally:
            if pause:
                os.kill(srv.pid, signal.SIGCONT)
        check(live, written)
        assert sum(e.type == "rotated" for e in live.events) == GENERATIONS - 1
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=start_id, timeout=60) as resumed:
        check(resumed, written)
    # The application creates the file again: everyone moves on to it, nothing repeated.
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=start_id, timeout=60) as resumed:
        check(resumed, written)
        append(log, "after\n")
        check(resumed, written + ["after"])
    # And after a restart, from the first generation's start.
    srv.restart()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=start_id, timeout=60) as resumed:
        check(resumed, written + ["after"])


def test_rapid_rotations_while_down_lose_nothing(tailsse, logdir):
    log = logdir / "app.log"
    srv, start_id = start_and_mark(tailsse, log)
    assert srv.stop() == 0
    written = write_generations(log)
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=start_id, timeout=60) as resumed:
        check(resumed, written)
        append(log, "after\n")
        check(resumed, written + ["after"])
    # The same with the newest file present when tailsse starts.
    assert srv.stop() == 0
    more = write_generations(log)
    append(log, "newest\n")
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=start_id, timeout=60) as resumed:
        check(resumed, written + ["after"] + more + ["newest"])
