"""Appending lines and seeing them in every format; how bytes become line texts."""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import time

import pytest

from http_client import LineStream, SSEStream, request
from server import append


def sse_texts(events):
    return [e.json["text"] for e in events if e.type == "message"]


def test_sse_append_is_streamed(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"before\n")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        assert s.status == 200
        assert s.header("content-type").startswith("text/event-stream")
        assert s.header("cache-control") == "no-cache"
        assert s.header("x-accel-buffering") == "no"
        s.wait_ready()
        assert s.parser.retry == 500
        append(log, "hello world\n")
        (ev,) = s.wait_messages(1)
        assert ev.json == {"source": "app", "text": "hello world"}
        assert ev.own_id, "every line event carries its own id"
        append(log, "second\nthird\n")
        evs = s.wait_messages(3)
        assert sse_texts(evs) == ["hello world", "second", "third"]
        ids = [e.own_id for e in evs]
        assert len(set(ids)) == 3 and all(ids)
        for i in ids:
            assert i.isascii() and i.isprintable() and len(i) <= 256


def test_ndjson_append_is_streamed(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"before\n")
    srv = tailsse({"app": log})
    with LineStream(srv.port, "/sources/app?tail=1", accept="application/x-ndjson") as s:
        assert s.status == 200
        assert s.header("content-type").startswith("application/x-ndjson")
        first = json.loads(s.wait_lines(1)[0])
        assert first["text"] == "before" and first["source"] == "app" and first["id"]
        append(log, "hello\n")
        second = json.loads(s.wait_lines(2)[1])
        assert second["text"] == "hello" and second["source"] == "app"
        assert second["id"] and second["id"] != first["id"]
        assert set(second) == {"id", "source", "text"}


def test_plain_text_append_is_streamed(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"before\n")
    srv = tailsse({"app": log})
    with LineStream(srv.port, "/sources/app?tail=1") as s:
        assert s.status == 200
        assert s.header("content-type").startswith("text/plain")
        assert s.wait_lines(1) == [b"before"]
        append(log, "hello\n")
        assert s.wait_lines(2) == [b"before", b"hello"]


class Curl:
    """`curl -N` as a subprocess, its stdout read incrementally."""

    def __init__(self, args):
        self.proc = subprocess.Popen(["curl", "-sS", "-N", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while not predicate(bytes(self.out)):
            left = deadline - time.monotonic()
            assert left > 0, f"curl output so far: {bytes(self.out)!r}"
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = self.proc.stdout.read1(65536)
                assert chunk, f"curl ended: {bytes(self.out)!r} {self.proc.stderr.read()!r}"
                self.out += chunk
        return bytes(self.out)

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.mark.parametrize("accept", [None, "application/x-ndjson", "text/event-stream"])
def test_curl_sees_appended_lines(tailsse, logdir, accept):
    log = logdir / "app.log"
    log.write_bytes(b"before\n")
    srv = tailsse({"app": log}, max_line_bytes=64)
    args = [srv.url("/sources/app?tail=1")]
    if accept:
        args += ["-H", f"Accept: {accept}"]
    curl = Curl(args)
    long_line = "L" * 150
    try:
        curl.wait_for(lambda out: b"before" in out)
        append(log, f"from curl\n{long_line}\n")
        if accept is None:
            out = curl.wait_for(lambda out: out.endswith(long_line.encode() + b"\n"))
            # Plain text: the lines as they are (a long line's pieces are written back to back).
            assert out == f"before\nfrom curl\n{long_line}\n".encode()
        elif accept == "application/x-ndjson":
            out = curl.wait_for(lambda out: out.count(b"\n") >= 5)
            objs = [json.loads(x) for x in out.splitlines()]
            assert [o["text"] for o in objs[:2]] == ["before", "from curl"]
            assert "".join(o["text"] for o in objs[2:]) == long_line
            assert [o.get("continues", False) for o in objs[2:]] == [True, True, False]
        else:
            from sse import SSEParser
            out = curl.wait_for(lambda out: out.count(b"\n\n") >= 6)
            p = SSEParser()
            p.feed(out)
            texts = [e.json["text"] for e in p.events]
            assert texts[:2] == ["before", "from curl"]
            assert "".join(texts[2:]) == long_line
    finally:
        curl.close()


def test_partial_line_is_held_until_its_newline(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, heartbeat=0.5)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "complete\npart")
        s.wait_messages(1)
        # Nothing can be awaited for "no event": let two heartbeats go by instead (the server is
        # idle, and its follower has re-read the file at least once a second meanwhile).
        hb = len(s.parser.comments)
        s.wait_for(lambda st: len(st.parser.comments) >= hb + 3, 15, "three heartbeats")
        assert sse_texts(s.events) == ["complete"], "a partial line must be held until its LF"
        append(log, "ial")
        hb = len(s.parser.comments)
        s.wait_for(lambda st: len(st.parser.comments) >= hb + 3, 15, "three heartbeats")
        assert sse_texts(s.events) == ["complete"]
        append(log, " line\n")
        s.wait_messages(2)
        assert sse_texts(s.events) == ["complete", "partial line"]


def test_heartbeat_comments_on_an_idle_stream(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log}, heartbeat=1)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_for(lambda st: len(st.parser.comments) >= 3, 15, "three heartbeats")
        assert s.messages() == []


# Bytes written -> the text each line must have (invalid UTF-8 -> U+FFFD by the WHATWG/Unicode
# "maximal subpart" rule, which is what Python's errors="replace" and browsers' decoders do).
LINES = [
    (b"crlf line\r\n", "crlf line"),
    (b"lone\rcr\n", "lone\rcr"),
    (b"\rstarts with cr\n", "\rstarts with cr"),
    (b"two crs\r\r\n", "two crs\r"),
    (b"nul\x00byte\n", "nul\x00byte"),
    (b"bad \xff\xfe utf8\n", "bad \ufffd\ufffd utf8"),
    (b"cut \xe2\x82 seq\n", "cut \ufffd seq"),
    (b"overlong \xc0\xaf\n", "overlong \ufffd\ufffd"),
    (b"surrogate \xed\xa0\x80\n", "surrogate \ufffd\ufffd\ufffd"),
    (b"ok caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n", "ok caf\u00e9 \u20ac \U0001F600"),
    (b'json "quotes" \\ back\tslash \x1b[0m\n', 'json "quotes" \\ back\tslash \x1b[0m'),
    (b"<script>alert(1)</script>\n", "<script>alert(1)</script>"),
    (b"data: fake\n", "data: fake"),
    (b"\n", ""),
    (b"\r\n", ""),
    (b"last\n", "last"),
]


def test_line_bytes_become_texts_sse(tailsse, logdir):
    for raw, text in LINES:
        assert raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", "replace") == text  # the table itself
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, b"".join(raw for raw, _ in LINES))
        evs = s.wait_messages(len(LINES))
        assert [e.json["text"] for e in evs] == [t for _, t in LINES]
        # SSE framing never breaks: exactly one data line per event, and no raw CR in the body.
        assert b"\r" not in bytes(s.body)
        for ev in evs:
            assert "\n" not in ev.data
        assert "\\r" in evs[1].data and "\\u0000" in evs[4].data


def test_line_bytes_become_texts_ndjson(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with LineStream(srv.port, "/sources/app?tail=all", accept="application/x-ndjson") as s:
        append(log, b"".join(raw for raw, _ in LINES))
        lines = s.wait_lines(len(LINES))
        assert b"\r" not in bytes(s.body)
        assert [json.loads(x)["text"] for x in lines] == [t for _, t in LINES]


def test_line_bytes_plain_text(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with LineStream(srv.port, "/sources/app?tail=all") as s:
        append(log, b"".join(raw for raw, _ in LINES))
        s.wait_lines(len(LINES))
        # Plain text: the lines as they are (CR of CRLF dropped), always valid UTF-8.
        expected = "".join(t + "\n" for _, t in LINES).encode()
        assert bytes(s.body) == expected


def test_long_line_is_split_into_marked_pieces(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    limit = 100
    srv = tailsse({"app": log}, max_line_bytes=limit)
    lines = [
        "a" * 1000,                    # 10 pieces
        "b" * limit,                   # exactly the limit: one piece
        "c" * (limit + 1),             # two pieces
        "\u00e9" * 301,                # 2-byte characters: cuts must not split one
        "x" + "\u20ac" * 200 + "y",    # 3-byte characters, odd alignment
        "\U0001F600" * 77,             # 4-byte characters
        "short",
    ]
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "".join(line + "\n" for line in lines))
        s.wait_for(lambda st: sse_texts(st.events)[-1:] == ["short"], 20, "the last short line")
        got, current, piece_ids = [], "", []
        for ev in s.messages():
            obj = ev.json
            assert obj["source"] == "app"
            assert ev.own_id
            piece_ids.append(ev.own_id)
            assert len(obj["text"].encode()) <= limit, "a piece is longer than --max-line-bytes"
            assert "\ufffd" not in obj["text"], "a cut split a UTF-8 character"
            current += obj["text"]
            if obj.get("continues"):
                assert obj["continues"] is True
            else:
                assert "continues" not in obj or obj["continues"] is False
                got.append(current)
                current = ""
        assert got == lines
        counts = {}
        n = 0
        for ev in s.messages():
            counts.setdefault(n, 0)
            counts[n] += 1
            if not ev.json.get("continues"):
                n += 1
        assert counts[0] == 10 and counts[1] == 1 and counts[2] == 2
        assert len(set(piece_ids)) == len(piece_ids)
    # Resuming from a piece's id continues with the next piece, nothing more, nothing less.
    all_events = s.messages()
    k = 4  # the 5th piece of the first line
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=all_events[k].own_id) as r:
        r.wait_messages(len(all_events) - k - 1)
        assert [e.data for e in r.messages()] == [e.data for e in all_events[k + 1:]]
        assert [e.type for e in r.events if e.type != "message"] == []


def test_healthz(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log})
    r = request(srv.port, "/healthz")
    assert r.status == 200
    assert r.body.strip() == b"ok"


def test_sources_listing(tailsse, logdir):
    a = logdir / "a.log"
    a.write_bytes(b"x\n")
    missing = logdir / "not-yet.log"
    srv = tailsse({"a": a, "late": missing})
    r = request(srv.port, "/sources")
    assert r.status == 200
    assert r.header("content-type").startswith("application/json")
    listing = r.json()
    assert [s["name"] for s in listing] == ["a", "late"]
    by = {s["name"]: s for s in listing}
    assert by["a"]["kind"] == "file" and by["a"]["path"] == str(a)
    assert by["late"]["kind"] == "file" and by["late"]["path"] == str(missing)
    assert by["a"]["following"] is True and by["late"]["following"] is True
    assert by["a"]["watch"] == "inotify" and "notice" not in by["a"]
    assert by["a"]["clients"] == 0
    with SSEStream(srv.port, "/sources/a") as s1, SSEStream(srv.port, "/sources/a") as s2:
        s1.wait_ready()
        s2.wait_ready()
        by = {s["name"]: s for s in request(srv.port, "/sources").json()}
        assert by["a"]["clients"] == 2 and by["late"]["clients"] == 0
    from server import wait_until
    wait_until(lambda: request(srv.port, "/sources").json()[0]["clients"] == 0, 20,
               "the client count to drop after both clients left")


def test_metrics(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log})
    from http_client import metric
    r = request(srv.port, "/metrics")
    assert r.status == 200 and r.header("content-type").startswith("text/plain")
    assert b"# TYPE tailsse_streams gauge" in r.body
    assert metric(srv.port, "tailsse_streams") == 0
    with SSEStream(srv.port, "/sources/app") as s:
        s.wait_ready()
        assert metric(srv.port, "tailsse_streams") == 1
        assert b'tailsse_source_clients{source="app"} 1' in request(srv.port, "/metrics").body


def test_many_clients_get_the_same_lines(tailsse, logdir):
    """One reader, many clients: each gets every line once, in order."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, shared_buffer_bytes=16384)
    clients = [SSEStream(srv.port, "/sources/app?tail=0") for _ in range(20)]
    try:
        for c in clients:
            c.wait_ready()
        expected = [f"n{i:05d} " + "y" * (i % 97) for i in range(3000)]
        for k in range(0, len(expected), 100):
            append(log, "".join(x + "\n" for x in expected[k:k + 100]))
        for c in clients:
            c.wait_messages(len(expected), timeout=60)
            assert sse_texts(c.events) == expected
    finally:
        for c in clients:
            c.close()


def test_a_replay_many_chunks_long_is_exact_while_the_file_grows_and_rotates(tailsse, logdir):
    """A client replaying a file of several 256 KiB chunks gets its next chunk read while the last
    is written: every byte still comes once and in order, while lines are appended and the file is
    rotated during the replay, and for a client that pauses (its read-ahead is left) too."""
    log = logdir / "app.log"
    rng = random.Random(21)
    first = b"".join(f"one {i:06d} ".encode() + b"x" * rng.randint(0, 150) + b"\n" for i in range(60_000))
    first += b"long " + b"y" * 10_000 + b"\n"      # longer than max-line-bytes: in pieces
    log.write_bytes(first)
    srv = tailsse({"app": log}, max_line_bytes=4096)
    second = b"".join(f"two {i:06d}\n".encode() for i in range(20_000))
    with LineStream(srv.port, "/sources/app?tail=all") as fast, LineStream(srv.port, "/sources/app?tail=all") as paused:
        fast.wait_lines(1)
        append(log, b"more\n" * 100)
        os.rename(log, logdir / "app.log.1")
        log.write_bytes(second)
        expected = first + b"more\n" * 100 + second
        deadline = time.monotonic() + 60
        while len(fast.body) < len(expected) and time.monotonic() < deadline:
            fast.body += fast.read_some(timeout=1.0) or b""
        paused.body += paused.read_some(timeout=1.0) or b""
        time.sleep(0.3)     # a client that stops reading for a while, then reads at full speed
        while len(paused.body) < len(expected) and time.monotonic() < deadline:
            paused.body += paused.read_some(timeout=1.0) or b""
        assert bytes(fast.body) == expected
        assert bytes(paused.body) == expected


def test_a_client_that_closes_or_half_closes_its_connection_ends_its_stream_without_a_write(tailsse, logdir):
    """No line and no heartbeat (30 s) is written: the server notices the client leaving from the
    connection itself, on /sources/NAME and on /events, whether the client closes the socket or only
    shuts down its sending side (an SSE client never does that while it reads)."""
    import socket as socketlib
    from http_client import metric
    from server import wait_until
    log = logdir / "app.log"
    log.write_bytes(b"")
    other = logdir / "other.log"
    other.write_bytes(b"")
    srv = tailsse({"app": log, "other": other}, heartbeat=30)
    for path in ("/sources/app?tail=0", "/events?source=app&source=other&tail=0"):
        for leave in ("close", "shutdown"):
            s = SSEStream(srv.port, path)
            s.wait_ready()
            wait_until(lambda: metric(srv.port, "tailsse_streams") == 1, what="the stream to start")
            if leave == "close":
                s.close()
            else:
                s.sock.shutdown(socketlib.SHUT_WR)
            wait_until(lambda: metric(srv.port, "tailsse_streams") == 0, timeout=10, what=f"the stream of a client that did {leave} on {path} to end")
            s.close()
    assert srv.log_text().count("end=client went away") == 4
