"""Query parameters, errors, tail semantics and hostile requests."""

from __future__ import annotations

import json
import socket

import pytest

from http_client import LineStream, SSEStream, request
from server import append

LINES = [f"l{i:02d}" for i in range(1, 21)]


@pytest.fixture
def app(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes("".join(x + "\n" for x in LINES).encode())
    return tailsse({"app": log}), log


def assert_json_error(r, status):
    assert r.status == status, r
    assert r.header("content-type").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body


@pytest.mark.parametrize("tail", ["-1", "abc", "1e3", "", "1.5", "+5", "0x10", " 5", "5 ", "ALL", "all,1", "%2D1"])
@pytest.mark.parametrize("accept", ["text/event-stream", "application/x-ndjson", None])
def test_bad_tail_is_400_json(app, tail, accept):
    srv, _ = app
    headers = {"Accept": accept} if accept else {}
    r = request(srv.port, f"/sources/app?tail={tail.replace(' ', '%20')}", headers=headers)
    assert_json_error(r, 400)


@pytest.mark.parametrize("path", ["/sources/nope", "/sources/APP", "/sources/app.", "/sources/ap", "/journal",
                                  "/sources/nope?tail=abc", "/nope", "/sources/app/extra"])
def test_unknown_source_or_route_is_404_json(app, path):
    srv, _ = app
    for accept in ("text/event-stream", None):
        r = request(srv.port, path, headers={"Accept": accept} if accept else {})
        assert_json_error(r, 404)


def sse_texts(srv, query, n):
    with SSEStream(srv.port, f"/sources/app{query}") as s:
        s.wait_ready()
        if n:
            s.wait_messages(n)
        return s


def test_tail_semantics(app):
    srv, log = app
    # tail=0: nothing old, then what is new.
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "new-1\n")
        assert [e.json["text"] for e in s.wait_messages(1)] == ["new-1"]
    lines = LINES + ["new-1"]
    for query, pick in [
        ("?tail=1", lambda ls: ls[-1:]),
        ("?tail=5", lambda ls: ls[-5:]),
        ("", lambda ls: ls[-10:]),          # the default is 10
        ("?tail=10", lambda ls: ls[-10:]),
        ("?tail=28", lambda ls: ls[-28:]),
        ("?tail=1000", lambda ls: ls),
        ("?tail=all", lambda ls: ls),
        ("?tail=007", lambda ls: ls[-7:]),
    ]:
        expected = pick(lines)
        with SSEStream(srv.port, f"/sources/app{query}") as s:
            s.wait_messages(len(expected))
            assert [e.json["text"] for e in s.messages()] == expected, query
            # Then live.
            append(log, f"live{query}\n")
            s.wait_messages(len(expected) + 1)
            assert s.messages()[-1].json["text"] == f"live{query}"
            lines.append(f"live{query}")
    assert len(lines) > 28


def test_tail_ndjson_and_plain(app):
    srv, _ = app
    with LineStream(srv.port, "/sources/app?tail=3", accept="application/x-ndjson") as s:
        assert [json.loads(x)["text"] for x in s.wait_lines(3)] == LINES[-3:]
    with LineStream(srv.port, "/sources/app?tail=3") as s:
        assert s.wait_lines(3) == [x.encode() for x in LINES[-3:]]


def test_partial_last_line_at_startup(tailsse, logdir):
    """tailsse starts at the last complete line: an unfinished last line is held, then completed."""
    log = logdir / "app.log"
    log.write_bytes(b"one\ntwo\nthr")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=5") as s:
        s.wait_messages(2)
        append(log, "ee\n")
        s.wait_messages(3)
        assert [e.json["text"] for e in s.messages()] == ["one", "two", "three"]
    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(3)
        assert [e.json["text"] for e in s.messages()] == ["one", "two", "three"]


def still_serving(srv):
    assert srv.running(), "tailsse died"
    r = request(srv.port, "/healthz")
    assert r.status == 200 and r.body.strip() == b"ok"


def raw_exchange(port, data: bytes, timeout=15.0) -> bytes:
    """Sends raw bytes; returns whatever comes back until the server closes (or the timeout)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return out


@pytest.mark.parametrize("what", ["100KB header", "10k headers", "100KB url", "1MB header", "garbage", "bad method"])
def test_hostile_requests_do_not_crash(app, what):
    srv, _ = app
    if what == "100KB header":
        data = b"GET /sources/app HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    elif what == "1MB header":
        data = b"GET /sources/app HTTP/1.1\r\nHost: x\r\nLast-Event-ID: " + b"f1." * 350_000 + b"\r\n\r\n"
    elif what == "10k headers":
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\n"
    elif what == "100KB url":
        data = b"GET /sources/app?tail=" + b"9" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    elif what == "garbage":
        data = bytes(range(256)) * 64 + b"\r\n\r\n"
    else:
        data = b"BREW /sources/app HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw_exchange(srv.port, data)
    if reply:
        status = int(reply.split(b" ", 2)[1])
        assert status >= 400, reply[:200]
    still_serving(srv)


def test_huge_last_event_id_header_is_a_reset_not_an_error(app):
    srv, _ = app
    with SSEStream(srv.port, "/sources/app?tail=1", last_event_id="f1." + "a" * 5000) as s:
        assert s.status == 200
        s.wait_events(2)
        assert [e.type for e in s.events] == ["reset", "message"]
