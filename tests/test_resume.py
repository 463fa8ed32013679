"""Resuming by id: exact continuation, and `reset` for ids that cannot be honoured."""

from __future__ import annotations

import json
import os
import urllib.parse

import pytest

from http_client import LineStream, SSEStream
from server import append

LINES = [f"line-{i}" for i in range(1, 9)]


def texts(stream):
    return [e.json["text"] for e in stream.messages()]


def all_ids(srv, path="/sources/app?tail=all", n=len(LINES)):
    with SSEStream(srv.port, path) as s:
        evs = s.wait_messages(n)
        return [e.own_id for e in evs], [e.json["text"] for e in evs]


@pytest.fixture
def app(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes("".join(x + "\n" for x in LINES).encode())
    return tailsse({"app": log}), log


def test_resume_from_every_id_is_exact(app):
    srv, log = app
    ids, got = all_ids(srv)
    assert got == LINES
    append(log, "live-1\n")
    for k, ident in enumerate(ids):
        with SSEStream(srv.port, "/sources/app?tail=3", last_event_id=ident) as s:
            expected = LINES[k + 1:] + ["live-1"]
            s.wait_messages(len(expected))
            assert texts(s) == expected, f"resuming after {LINES[k]}"
            assert all(e.type == "message" for e in s.events)


def test_resume_from_the_last_id_waits_for_new_lines(app):
    srv, log = app
    ids, _ = all_ids(srv)
    with SSEStream(srv.port, "/sources/app", last_event_id=ids[-1]) as s:
        s.wait_ready()
        append(log, "new-1\n")
        s.wait_messages(1)
        assert texts(s) == ["new-1"] and [e.type for e in s.events] == ["message"]


def test_ndjson_resume_by_header(app):
    srv, _ = app
    ids, _ = all_ids(srv)
    with LineStream(srv.port, "/sources/app?tail=2", accept="application/x-ndjson",
                    headers={"Last-Event-ID": ids[4]}) as s:
        objs = [json.loads(x) for x in s.wait_lines(3)]
        assert [o["text"] for o in objs] == LINES[5:]
        assert [o["id"] for o in objs] == ids[5:]


def assert_reset_then_tail(s, tail_texts, reason_hint=None):
    s.wait_events(1 + len(tail_texts))
    first = s.events[0]
    assert first.type == "reset", f"expected a reset event first, got {s.events[:3]}"
    assert first.json["source"] == "app"
    assert isinstance(first.json["reason"], str) and first.json["reason"].strip()
    if reason_hint:
        assert reason_hint in first.json["reason"].lower()
    assert first.own_id, "a reset carries the id of the position where the stream continues"
    assert [e.type for e in s.events[1:]] == ["message"] * len(tail_texts)
    assert texts(s) == tail_texts
    return first


@pytest.mark.parametrize("bad_id", [
    "garbage",
    "f1",
    "f1.1.2.3",                      # too few fields
    "f1.1.2.3.4.5",                  # too many
    "f1.zz.1.2.3",                   # not hex
    "f1.FE00.1.2.3",                 # upper case is not the printed form
    "f1.-1.2.3.4",
    "f1..2.3.4",
    "f2.1.2.3.4",                    # a future version
    "f1." + "1" * 300 + ".2.3.4",   # far too long
    "%00",
    "../../etc/passwd",
    "1",
])
def test_malformed_id_gives_reset_then_tail(app, bad_id):
    srv, log = app
    with SSEStream(srv.port, "/sources/app?tail=2", last_event_id=bad_id) as s:
        assert s.status == 200
        reset = assert_reset_then_tail(s, LINES[-2:])
        append(log, "live-1\n")
        s.wait_messages(3)
        assert texts(s)[-1] == "live-1"
    # The reset's id is the position the stream continued from: resuming there is exact.
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=reset.own_id) as s:
        s.wait_messages(3)
        assert texts(s) == LINES[-2:] + ["live-1"]
        assert s.events[0].type == "message"


def test_foreign_id_gives_reset(tailsse, logdir):
    a = logdir / "app.log"
    b = logdir / "other.log"
    a.write_bytes("".join(x + "\n" for x in LINES).encode())
    b.write_bytes(b"other-1\nother-2\n")
    srv = tailsse({"app": a, "other": b})
    with SSEStream(srv.port, "/sources/other?tail=1") as s:
        other_id = s.wait_messages(1)[0].own_id
    with SSEStream(srv.port, "/sources/app?tail=3", last_event_id=other_id) as s:
        assert s.status == 200
        assert_reset_then_tail(s, LINES[-3:])
    # A well-formed id for a different inode on the same device (whatever file that may be).
    app_id = all_ids(srv)[0][2]
    parts = app_id.split(".")
    assert parts[0] == "f1" and len(parts) == 5, f"unexpected id form {app_id}"
    parts[2] = format(int(parts[2], 16) + 12345, "x")
    with SSEStream(srv.port, "/sources/app?tail=3", last_event_id=".".join(parts)) as s:
        assert_reset_then_tail(s, LINES[-3:])
    # The right file, but an offset that is not where a line ended (its check cannot match).
    parts = app_id.split(".")
    parts[3] = format(int(parts[3], 16) + 1, "x")
    with SSEStream(srv.port, "/sources/app?tail=3", last_event_id=".".join(parts)) as s:
        assert_reset_then_tail(s, LINES[-3:])
    # An offset past the end of the file.
    parts = app_id.split(".")
    parts[3] = format(10 ** 6, "x")
    with SSEStream(srv.port, "/sources/app?tail=3", last_event_id=".".join(parts)) as s:
        assert_reset_then_tail(s, LINES[-3:])


def test_too_old_id_gives_reset(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes("".join(x + "\n" for x in LINES).encode())
    srv = tailsse({"app": log})
    ids, _ = all_ids(srv)
    os.rename(log, logdir / "app.log.1")
    append(log, "new-1\nnew-2\nnew-3\n")
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
    # Rotated away, then deleted (logrotate's "rotate 0"), and tailsse restarted since.
    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(3)
    os.unlink(logdir / "app.log.1")
    srv.restart()
    with SSEStream(srv.port, "/sources/app?tail=2", last_event_id=ids[3]) as s:
        assert s.status == 200
        assert_reset_then_tail(s, ["new-2", "new-3"])


def test_content_changed_id_gives_reset(tailsse, logdir):
    """Same file (inode), rewritten while tailsse was down: the id's bytes are no longer there."""
    log = logdir / "app.log"
    log.write_bytes("".join(x + "\n" for x in LINES).encode())
    srv = tailsse({"app": log})
    ids, _ = all_ids(srv)
    assert srv.stop() == 0
    ino = os.stat(log).st_ino
    with open(log, "r+b") as f:  # same inode, same length, different bytes
        f.write("".join(x.upper() + "\n" for x in LINES).encode())
    assert os.stat(log).st_ino == ino
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=2", last_event_id=ids[4]) as s:
        assert_reset_then_tail(s, [x.upper() for x in LINES[-2:]])


def test_last_event_id_query_parameter(app):
    srv, _ = app
    ids, _ = all_ids(srv)
    q = urllib.parse.quote(ids[2], safe="")
    with SSEStream(srv.port, f"/sources/app?tail=1&lastEventId={q}") as s:
        s.wait_messages(len(LINES) - 3)
        assert texts(s) == LINES[3:]
        assert s.events[0].type == "message"


def test_header_wins_over_query(app):
    srv, _ = app
    ids, _ = all_ids(srv)
    q = urllib.parse.quote(ids[1], safe="")
    # Both valid: the header's position is used.
    with SSEStream(srv.port, f"/sources/app?lastEventId={q}", last_event_id=ids[5]) as s:
        s.wait_messages(len(LINES) - 6)
        assert texts(s) == LINES[6:]
        assert [e.type for e in s.events] == ["message"] * (len(LINES) - 6)
    # Valid header, garbage query: no reset.
    with SSEStream(srv.port, "/sources/app?lastEventId=garbage", last_event_id=ids[5]) as s:
        s.wait_messages(len(LINES) - 6)
        assert texts(s) == LINES[6:] and s.events[0].type == "message"
    # Garbage header, valid query: the header wins, so it is a reset.
    with SSEStream(srv.port, f"/sources/app?tail=2&lastEventId={q}", last_event_id="garbage") as s:
        assert_reset_then_tail(s, LINES[-2:])
