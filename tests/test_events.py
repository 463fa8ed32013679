"""GET /events: several sources on one stream, with composite ids that resume every source exactly."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse

import pytest

from chaos import ReconnectingClient, Writer, first_difference, holds_open
from http_client import LineStream, SSEStream, request
from server import append, wait_until


@pytest.fixture
def two(tailsse, logdir):
    a, b = logdir / "a.log", logdir / "b.log"
    a.write_bytes(b"a-1\na-2\n")
    b.write_bytes(b"b-1\n")
    return tailsse({"a": a, "b": b}), a, b


def parse_composite(text: str) -> dict[str, str]:
    """The reference reading of a composite id: m1,NAME=ID,... with %XX escapes inside ids."""
    assert text.startswith("m1"), text
    parts = {}
    for item in text[3:].split(",") if len(text) > 2 else []:
        name, _, part = item.partition("=")
        parts[name] = urllib.parse.unquote(part)
    return parts


def by_source(events):
    out: dict[str, list[str]] = {}
    for e in events:
        if e.type == "message":
            out.setdefault(e.json["source"], []).append(e.json["text"])
    return out


def test_two_files_on_one_stream_each_event_with_every_sources_position(two):
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=all") as s:
        s.wait_messages(3)
        append(a, "a-3\n")
        append(b, "b-2\n")
        s.wait_messages(5)
        assert by_source(s.events) == {"a": ["a-1", "a-2", "a-3"], "b": ["b-1", "b-2"]}
        for e in s.messages():
            parts = parse_composite(e.own_id)
            assert list(parts) == ["a", "b"], e.own_id
            assert all(p.startswith("f1.") for p in parts.values())
            assert all(0x21 <= ord(c) <= 0x7E for c in e.own_id)
        # Each source's part is that source's own id: a single-source stream resumes from it.
        last = parse_composite(s.messages()[-1].own_id)
    append(a, "a-4\n")
    with SSEStream(srv.port, "/sources/a?tail=0", last_event_id=last["a"]) as s:
        assert s.wait_messages(1)[0].json["text"] == "a-4"


@pytest.mark.parametrize("via", ["header", "query"])
def test_resume_is_exact_for_every_source(two, via):
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=all") as s:
        msgs = s.wait_messages(3)
    # Resume after the first event, whichever source it came from: the rest of both files follows.
    mid = msgs[0].own_id
    expected = by_source(msgs[1:])
    append(a, "a-3\n")
    append(b, "b-2\nb-3\n")
    expected.setdefault("a", []).append("a-3")
    expected.setdefault("b", []).extend(["b-2", "b-3"])
    path = "/events?source=a&source=b&tail=0"
    kw = {"last_event_id": mid} if via == "header" else {}
    if via == "query":
        path += "&lastEventId=" + urllib.parse.quote(mid, safe="")
    with SSEStream(srv.port, path, **kw) as s:
        s.wait_for(lambda st: by_source(st.events) == expected, 20, f"{expected}")
        assert [e.type for e in s.events] == ["message"] * 5, "no reset, no marker"


def test_a_source_that_sent_nothing_yet_resumes_exactly(two):
    """The first composite id already holds every source's start position."""
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=0") as s:
        s.wait_ready()
        append(a, "a-3\n")
        first = s.wait_messages(1)[0]
        assert first.json == {"source": "a", "text": "a-3"}
        assert set(parse_composite(first.own_id)) == {"a", "b"}
    append(b, "b-2\n")     # written while the client was away: tail=0 alone would skip it
    with SSEStream(srv.port, "/events?source=a&source=b&tail=0", last_event_id=first.own_id) as s:
        assert [m.json for m in s.wait_messages(1)] == [{"source": "b", "text": "b-2"}]


def test_a_resumed_source_keeps_its_part_while_it_sends_nothing(two):
    """A source resumed at a point whose bytes its file no longer holds (b was truncated in place
    after the id's line, so tailsse cannot compute that point's id again) keeps the part the client
    sent until it sends something: without it, a client reconnecting in between would start b at
    its tail and skip what b gets meanwhile."""
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=all") as s:
        s.wait_messages(3)
        b_part = parse_composite(s.events[-1].own_id)["b"]
        os.truncate(b, 0)
        s.wait_for(lambda st: any(e.type == "truncated" for e in st.events), 20, "truncated")
        last = s.events[-1].own_id
    resumed = "m1,a=" + urllib.parse.quote(parse_composite(last)["a"], safe="") + ",b=" + urllib.parse.quote(b_part, safe="")
    with SSEStream(srv.port, "/events?source=a&source=b&tail=0", last_event_id=resumed) as s:
        s.wait_ready()
        append(a, "a-3\n")
        first = s.wait_messages(1)[0]
        assert first.json == {"source": "a", "text": "a-3"}
        assert parse_composite(first.own_id).get("b") == b_part
    append(b, "b-after\n")
    with SSEStream(srv.port, "/events?source=a&source=b&tail=0", last_event_id=first.own_id) as s:
        s.wait_for(lambda st: any(e.type == "message" for e in st.events), 20, "b-after")
        assert [m.json for m in s.events if m.type == "message"] == [{"source": "b", "text": "b-after"}]
        assert "reset" not in [e.type for e in s.events]


def test_a_bad_part_resets_only_its_source(two):
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=all") as s:
        last = s.wait_messages(3)[-1].own_id
    good_a = parse_composite(last)["a"]
    with SSEStream(srv.port, "/sources/b?tail=0") as watch:
        watch.wait_ready()
        append(a, "a-3\n")
        append(b, "b-2\n")
        watch.wait_messages(1)   # tailsse has read b-2: b's tail=1 is b-2
    bad = f"m1,a={good_a},b=f1.0.0.0.1"
    with SSEStream(srv.port, "/events?source=a&source=b&tail=1", last_event_id=bad) as s:
        s.wait_for(lambda st: len(st.messages()) >= 2, 20, "a-3 and b's tail")
        resets = [e for e in s.events if e.type == "reset"]
        assert [r.json["source"] for r in resets] == ["b"], s.events
        assert resets[0].json["reason"]
        assert by_source(s.events) == {"a": ["a-3"], "b": ["b-2"]}
        assert s.wait_for(lambda st: st.status == 200, 1)


@pytest.mark.parametrize("bad", ["garbage", "f1.fe00.1.2.3", "m1,a", "m1,a=x,a=y", "m2,a=x"])
def test_a_malformed_composite_id_resets_every_source_and_is_never_an_error(two, bad):
    srv, _, _ = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=1", last_event_id=bad) as s:
        assert s.status == 200
        s.wait_for(lambda st: len([e for e in st.events if e.type == "reset"]) == 2 and len(st.messages()) == 2, 20, "two resets")
        assert sorted(e.json["source"] for e in s.events if e.type == "reset") == ["a", "b"]
        assert by_source(s.events) == {"a": ["a-2"], "b": ["b-1"]}


def test_a_source_the_id_does_not_name_starts_at_its_tail_without_reset(two):
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&tail=0") as s:
        s.wait_ready()
        append(a, "a-3\n")
        only_a = s.wait_messages(1)[0].own_id
    assert list(parse_composite(only_a)) == ["a"]
    append(a, "a-4\n")
    with SSEStream(srv.port, "/events?source=a&source=b&tail=1", last_event_id=only_a) as s:
        s.wait_messages(2)
        assert [e.type for e in s.events] == ["message", "message"]
        assert by_source(s.events) == {"a": ["a-4"], "b": ["b-1"]}


def test_per_source_tail(two):
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=0&b.tail=all") as s:
        s.wait_messages(1)
        append(a, "a-3\n")
        s.wait_messages(2)
        assert by_source(s.events) == {"a": ["a-3"], "b": ["b-1"]}


def test_resume_across_a_restart(two):
    srv, a, b = two
    with SSEStream(srv.port, "/events?source=a&source=b&tail=all") as s:
        last = s.wait_messages(3)[-1].own_id
    assert srv.stop() == 0
    append(a, "a-down\n")
    append(b, "b-down\n")
    srv.start()
    append(b, "b-up\n")
    with SSEStream(srv.port, "/events?source=a&source=b&tail=0", last_event_id=last) as s:
        s.wait_messages(3)
        assert by_source(s.events) == {"a": ["a-down"], "b": ["b-down", "b-up"]}
        assert [e.type for e in s.events] == ["message"] * 3


def test_ndjson_and_plain_text(two):
    srv, a, b = two
    with LineStream(srv.port, "/events?source=a&source=b&tail=all", accept="application/x-ndjson") as s:
        objs = [json.loads(x) for x in s.wait_lines(3)]
        assert sorted((o["source"], o["text"]) for o in objs) == [("a", "a-1"), ("a", "a-2"), ("b", "b-1")]
        assert all(set(parse_composite(o["id"])) == {"a", "b"} for o in objs)
        assert s.header("content-type").startswith("application/x-ndjson")
    with LineStream(srv.port, "/events?source=a&source=b&tail=all") as s:
        lines = s.wait_lines(3)
        assert sorted(lines) == [b"[a] a-1", b"[a] a-2", b"[b] b-1"]
        assert s.header("content-type").startswith("text/plain")


def test_sse_headers(two):
    srv, _, _ = two
    with SSEStream(srv.port, "/events?source=a") as s:
        s.wait_ready()
        assert s.header("content-type").startswith("text/event-stream")
        assert s.header("cache-control") == "no-cache"
        assert s.header("x-accel-buffering") == "no"


@pytest.mark.parametrize("query,status", [
    ("", 400),
    ("?tail=1", 400),
    ("?source=nope", 404),
    ("?source=a&source=nope", 404),
    ("?source=a&source=a", 400),
    ("?source=a&tail=-1", 400),
    ("?source=a&a.tail=x", 400),
    ("?source=a&a.unit=ssh.service", 400),
    ("?source=a&b.tail=1", 400),
    ("?source=a&unit=x", 400),
    ("?source=a&.tail=1", 400),
    ("?source=a&a.=1", 400),
])
def test_bad_requests_are_json_errors(two, query, status):
    srv, _, _ = two
    for accept in ("text/event-stream", None):
        r = request(srv.port, f"/events{query}", headers={"Accept": accept} if accept else {})
        assert r.status == status, (query, r)
        assert r.header("content-type").startswith("application/json")
        assert isinstance(r.json().get("error"), str) and r.json()["error"]


def test_too_many_sources_is_400(tailsse, logdir):
    files = {f"s{i}": logdir / f"s{i}.log" for i in range(17)}
    for p in files.values():
        p.write_bytes(b"x\n")
    srv = tailsse(files)
    r = request(srv.port, "/events?" + "&".join(f"source=s{i}" for i in range(17)))
    assert r.status == 400
    with SSEStream(srv.port, "/events?tail=1&" + "&".join(f"source=s{i}" for i in range(16))) as s:
        msgs = s.wait_messages(16)
        assert len(parse_composite(msgs[-1].own_id)) == 16
        assert len(msgs[-1].own_id) > 256, "16 file ids: more than a single id's 256 bytes"


def test_clients_are_released_when_a_multiplexed_stream_ends(two):
    srv, _, _ = two
    with SSEStream(srv.port, "/events?source=a&source=b") as s:
        s.wait_ready()
        wait_until(lambda: all(x["clients"] == 1 for x in request(srv.port, "/sources").json()), 10, "clients counted")
    wait_until(lambda: all(x["clients"] == 0 for x in request(srv.port, "/sources").json()), 10, "clients released")


def test_reconnecting_client_gets_exactly_every_line_of_two_rotating_files(tailsse, logdir):
    logs = {name: logdir / f"{name}.log" for name in ("a", "b")}
    for p in logs.values():
        p.write_bytes(b"existing\n")
    srv = tailsse(logs, shared_buffer_bytes=4096)
    writers = {name: Writer(p, count=1500, seed=11 + i, rotate_every=(150, 450),
                            before_rotate=lambda ino: wait_until(lambda: holds_open(srv.pid, ino), 30, "tailsse to open the file"))
               for i, (name, p) in enumerate(logs.items())}
    path = "/events?source=a&source=b&tail=0"
    with SSEStream(srv.port, path) as s:
        s.wait_ready()
        append(logs["a"], "sync\n")
        start_id = s.wait_messages(1)[0].own_id
    total = lambda: sum(len(w.written) for w in writers.values()) if all(w.done.is_set() for w in writers.values()) else None
    client = ReconnectingClient(lambda: srv.port, "a", 5, target=total, deadline=time.monotonic() + 120, path=path)
    client.last_id = start_id
    for w in writers.values():
        w.start()
    client.start()
    try:
        for w in writers.values():
            w.join(timeout=100)
            assert w.done.is_set() and w.error is None, w.error
        client.join(timeout=60)
        assert client.error is None, f"{client.error!r}; {len(client.received)} lines after {client.connections} connections"
        for name, w in writers.items():
            got = client.by_source.get(name, [])
            assert got == w.written, f"{name}: " + first_difference(w.written, got)
        assert sum(w.rotations for w in writers.values()) >= 4
        assert client.connections >= 10 and client.cut_mid_event >= 2
    finally:
        for w in writers.values():
            w.abort.set()
        client.stop.set()
        client.join(10)


def test_a_source_removed_on_reload_ends_its_part_and_the_others_go_on(tailsse, logdir, tmp_path):
    for name in ("a", "b"):
        (logdir / f"{name}.log").write_text(f"{name}-0\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text(f"file = a={logdir / 'a.log'}\nfile = b={logdir / 'b.log'}\n")
    srv = tailsse({}, extra=["--config", str(conf)])
    with SSEStream(srv.port, "/events?source=a&source=b&tail=1") as s:
        s.wait_messages(2)
        conf.write_text(f"file = b={logdir / 'b.log'}\n")
        srv.proc.send_signal(signal.SIGHUP)
        s.wait_for(lambda st: any(e.type == "end" for e in st.events), 20, "a's end event")
        end = next(e for e in s.events if e.type == "end")
        assert end.json["source"] == "a" and end.json["reason"]
        append(logdir / "b.log", "b-1\n")
        s.wait_for(lambda st: by_source(st.events).get("b", [])[-1:] == ["b-1"], 20, "b goes on")
        assert not s.eof
        resume = s.messages()[-1].own_id
    assert request(srv.port, "/events?source=a&source=b").status == 404
    append(logdir / "b.log", "b-2\n")
    with SSEStream(srv.port, "/events?source=b&tail=0", last_event_id=resume) as s:
        assert [m.json["text"] for m in s.wait_messages(1)] == ["b-2"]
        assert [e.type for e in s.events] == ["message"], "b's part of the id still resumes b"
