"""A real systemd-journald (standalone, in a private mount namespace) feeding tailsse --journal."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
import uuid

import pytest

from http_client import LineStream, SSEStream
from journal_support import StandaloneJournald


@pytest.fixture
def journald_tailsse(tailsse, tmp_path):
    why = StandaloneJournald.unavailable()
    if why:
        pytest.skip(f"no standalone journald: {why}")
    journald = StandaloneJournald(tmp_path / "journald")
    srv = tailsse({}, extra=["--journal"], wrapper=journald.wrapper)
    yield srv, journald
    srv.kill()
    journald.stop()


def test_logger_and_systemd_cat_entries_reach_sse_and_curl(journald_tailsse):
    srv, journald = journald_tailsse
    tag = uuid.uuid4().hex[:12]
    with SSEStream(srv.port, f"/journal?tail=0&identifier=tsse-{tag}") as sse, \
            LineStream(srv.port, f"/journal?tail=3&identifier=tsse-{tag}") as plain:
        sse.wait_ready()
        journald.run_inside(srv.pid, "logger", "--journald", input=(
            f"SYSLOG_IDENTIFIER=tsse-{tag}\nPRIORITY=3\nMESSAGE=from logger {tag}\n").encode())
        journald.run_inside(srv.pid, "systemd-cat", "-t", f"tsse-{tag}", "-p", "warning",
                            input=f"from systemd-cat {tag}\nsecond line {tag}\n".encode())
        events = sse.wait_messages(3)
        assert [e.json["text"] for e in events] == [f"from logger {tag}", f"from systemd-cat {tag}", f"second line {tag}"]
        assert [e.json["priority"] for e in events] == [3, 4, 4]
        assert all(e.json["identifier"] == f"tsse-{tag}" and e.id.startswith("s=") for e in events)
        lines = plain.wait_lines(3)
        assert re.search(rf" tsse-{tag}\[\d+\]: from logger {tag}$", lines[0].decode()), lines[0]
        assert lines[2].decode().endswith(f": second line {tag}")


def test_curl_follows_the_journal_like_journalctl_f(journald_tailsse):
    srv, journald = journald_tailsse
    tag = uuid.uuid4().hex[:12]
    # tail=2 with a filter no earlier entry matches: curl prints the two entries logged below,
    # whether its request is handled before, between or after them.
    curl = subprocess.Popen(["curl", "-sN", f"http://127.0.0.1:{srv.port}/journal?tail=2&identifier=curl-{tag}"],
                            stdout=subprocess.PIPE)
    try:
        journald.run_inside(srv.pid, "logger", "--journald", input=(
            f"SYSLOG_IDENTIFIER=curl-{tag}\nMESSAGE=hello {tag}\n").encode())
        journald.run_inside(srv.pid, "logger", "--journald", input=(
            f"SYSLOG_IDENTIFIER=curl-{tag}\nMESSAGE=again {tag}\n").encode())
        received = b""
        deadline = time.monotonic() + 20
        while received.count(b"\n") < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([curl.stdout], [], [], 1)
            if ready:
                chunk = os.read(curl.stdout.fileno(), 4096)
                assert chunk, f"curl ended early: {received!r}"
                received += chunk
        lines = received.decode().splitlines()
        assert len(lines) == 2, received
        assert re.search(rf" curl-{tag}\[\d+\]: hello {tag}$", lines[0]), lines
        assert re.search(rf" curl-{tag}\[\d+\]: again {tag}$", lines[1]), lines
        assert lines[0][:4].isdigit() and lines[0][10] == "T"
    finally:
        curl.kill()
        curl.wait()
