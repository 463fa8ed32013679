"""Degrade, don't die: inotify's limits reached for real, and files and the journal are polled.

The limits are per user namespace on modern kernels (ucounts): tailsse runs in a user namespace of
its own (`unshare --user --map-root-user`) whose `/proc/sys/user/max_inotify_watches` or
`max_inotify_instances` is set to 0 before tailsse starts, so the real `inotify_add_watch` fails with
ENOSPC or `inotify_init1` with EMFILE — and the host's limits are never touched. Later the limit is
raised inside that namespace (`nsenter --user`) and inotify is used again.
"""

from __future__ import annotations

import os
import time

import pytest

from http_client import SSEStream, request
from inotify_limits import LIMITS, limited, raise_limit
from journal_support import JournalFiles, have_journal_remote
from server import append, wait_until


def source(srv, name: str) -> dict:
    return next(s for s in request(srv.port, "/sources").json() if s["name"] == name)


def logged(srv, level: str, message: str) -> bool:
    return any(level in line and message in line for line in srv.log_text().splitlines())


def kinds(events):
    return [(e.type, e.json["text"]) if e.type == "message" else (e.type, None) for e in events]


@pytest.mark.parametrize("limit", LIMITS)
def test_files_are_polled_exactly_when_the_inotify_limit_is_reached(tailsse, logdir, limit):
    sysctl, reason = LIMITS[limit]
    log = logdir / "app.log"
    log.write_text("line 0\n")
    srv = tailsse({"app": log}, wrapper=limited(sysctl))

    entry = source(srv, "app")
    assert entry["watch"] == "polling" and entry["notice"] == f"{reason} (max_user_{limit}); polling every 250 ms", entry
    assert entry["following"] is True and "problem" not in entry, entry
    health = request(srv.port, "/healthz")
    assert health.status == 200, health
    assert logged(srv, "warning", "inotify cannot watch the file; polling it"), srv.log_tail()
    if limit == "instances":
        assert logged(srv, "warning", "cannot create an inotify instance; polling every file"), srv.log_tail()

    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(1)
        expected = [("message", "line 0")]
        number = 1
        for _ in range(40):
            lines = [f"line {number + i}" for i in range(50)]
            number += 50
            append(log, "".join(f"{line}\n" for line in lines))
            expected += [("message", line) for line in lines]
        s.wait_messages(len(expected))

        # Polled every 250 ms, not only at the once-a-second resync: a line arrives within about
        # 125 ms on average (the resync alone would take about 500 ms).
        delays = []
        for i in range(10):
            started = time.monotonic()
            append(log, f"timed {i}\n")
            expected.append(("message", f"timed {i}"))
            s.wait_messages(len(expected))
            delays.append(time.monotonic() - started)
        assert sum(delays) / len(delays) < 0.35, delays

        # Rename rotation: the writer still holds the old file for a last line.
        os.rename(log, logdir / "app.log.1")
        append(logdir / "app.log.1", "old tail\n")
        append(log, "new 1\nnew 2\n")
        expected += [("message", "old tail"), ("rotated", None), ("message", "new 1"), ("message", "new 2")]
        s.wait_for(lambda st: len(st.events) >= len(expected), 20, "the rotated file's lines")

        # Truncation, and the file growing past the old offset at once: found by the bytes before it.
        os.truncate(log, 0)
        append(log, "after truncate 1\nafter truncate 2\n")
        expected += [("truncated", None), ("message", "after truncate 1"), ("message", "after truncate 2")]
        s.wait_for(lambda st: len(st.events) >= len(expected), 20, "the truncated file's lines")

        # The limit raised: back to inotify (watches at the next poll, an instance within 5 s).
        raise_limit(srv, sysctl)
        wait_until(lambda: source(srv, "app")["watch"] == "inotify", 20, "inotify watching the file again")
        assert "notice" not in source(srv, "app")
        assert logged(srv, "info", "inotify watches the file again"), srv.log_tail()
        append(log, "watched again\n")
        expected += [("message", "watched again")]
        s.wait_for(lambda st: len(st.events) >= len(expected), 20, "a line after inotify is back")
        assert kinds(s.events) == expected


@pytest.mark.skipif(not have_journal_remote(), reason="systemd-journal-remote is not installed (apt install systemd-journal-remote)")
@pytest.mark.parametrize("limit", LIMITS)
def test_the_journal_is_polled_when_the_inotify_limit_is_reached(tailsse, tmp_path, limit):
    """Without inotify the journal follower still sees new entries, and new journal files (by
    reopening), and clients' own reads work."""
    sysctl, reason = LIMITS[limit]
    files = JournalFiles(tmp_path / "journal")
    try:
        files.messages(["x 0"])
        srv = tailsse({}, extra=["--journal-directory", str(files.directory)], wrapper=limited(sysctl))
        wait_until(lambda: source(srv, "journal").get("watch") == "polling", 20, "the journal polled")
        entry = source(srv, "journal")
        assert reason in entry["notice"] and entry["notice"].endswith("polling every 250 ms"), entry
        assert request(srv.port, "/healthz").status == 200
        assert logged(srv, "warning", "inotify cannot watch the journal; polling it"), srv.log_tail()

        with SSEStream(srv.port, "/journal?tail=all") as s:
            s.wait_messages(1)
            files.messages([f"x {i}" for i in range(1, 200)])
            s.wait_messages(200)
            # A new journal file in the directory: only a reopen finds it without inotify.
            files.messages(["y 0", "y 1"], file="y")
            s.wait_messages(202)
            # A client resuming in the new file: the reader threads' journals find it too.
            with SSEStream(srv.port, "/journal?tail=0", last_event_id=s.messages()[200].id) as resumed:
                resumed.wait_messages(1)
                assert resumed.texts() == ["y 1"] and [e.type for e in resumed.events] == ["message"]
            # The limit raised: the next reopen gets inotify back.
            raise_limit(srv, sysctl)
            wait_until(lambda: source(srv, "journal")["watch"] == "inotify", 20, "inotify watching the journal again")
            assert "notice" not in source(srv, "journal")
            assert logged(srv, "info", "inotify watches the journal again"), srv.log_tail()
            files.messages(["x 200"])
            s.wait_messages(203)
            assert s.texts() == [f"x {i}" for i in range(200)] + ["y 0", "y 1", "x 200"]
            assert [e.type for e in s.events if e.type != "message"] == []
    finally:
        files.close()
