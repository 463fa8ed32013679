"""grep= on streams: only matching lines are sent, the same ones `grep -E` and `journalctl --grep`
find, live and on resume; bad patterns are refused and no pattern can hang the server."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time

import pytest

from http_client import LineStream, SSEStream, request
from journal_support import JournalFiles, have_journal_remote
from server import append

WORDS = ["GET", "POST", "timeout", "error", "warn", "ok", "retry", "disk", "user=alice", "user=bob", "id=42", "id=420", "café", "ÉTÉ", "a.c", "abc"]


def random_lines(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 6))]
        lines.append(f"{i:05d} " + " ".join(words) + (f" {rng.randint(100, 599)}" if rng.random() < 0.5 else ""))
    return lines


# Each pattern (ERE and PCRE2 agree on these) with a line it matches, appended last as a sentinel.
PATTERNS = [
    ("timeout", "99999 sentinel timeout"),
    ("^0012", "0012 sentinel"),
    ("[0-9]{3}$", "99999 sentinel 404"),
    ("error|warn", "99999 sentinel warn"),
    ("a.c", "99999 sentinel abc"),
    ("user=(alice|bob) .*id=42( |$)", "99999 user=bob sentinel id=42"),
    ("é", "99999 sentinel é"),
]


def ndjson_until(srv, path: str, sentinel: str, timeout: float = 30.0) -> list[dict]:
    """The NDJSON objects of a stream up to and including the first whose text is `sentinel`."""
    with LineStream(srv.port, path, accept="application/x-ndjson") as s:
        deadline = time.monotonic() + timeout
        while True:
            objects = [json.loads(line) for line in s.lines()]
            texts = [o.get("text") for o in objects]
            if sentinel in texts:
                return objects[:texts.index(sentinel) + 1]
            left = deadline - time.monotonic()
            if left <= 0 or s.eof:
                raise AssertionError(f"no {sentinel!r} in {texts[-5:]!r}")
            data = s.read_some(timeout=min(left, 1.0))
            if data:
                s.body += data


@pytest.mark.parametrize("pattern, sentinel", PATTERNS, ids=[p for p, _ in PATTERNS])
def test_the_lines_sent_are_those_grep_finds(tailsse, logdir, pattern, sentinel):
    log = logdir / "app.log"
    log.write_text("\n".join(random_lines(7, 3000)) + "\n", encoding="utf-8")
    expected = subprocess.run(["grep", "-E", pattern, str(log)], capture_output=True, env={"LC_ALL": "C.UTF-8"}).stdout.decode().splitlines()
    assert len(expected) > 3, "a pattern the data exercises"
    srv = tailsse({"app": log})
    append(log, sentinel + "\n")
    objects = ndjson_until(srv, f"/sources/app?tail=all&grep={quote(pattern)}", sentinel)
    assert [o["text"] for o in objects] == expected + [sentinel]
    assert all(o["id"].startswith("f1.") for o in objects)


def quote(text: str) -> str:
    import urllib.parse
    return urllib.parse.quote(text, safe="")


def test_live_and_resumed_streams_send_exactly_the_matching_lines(tailsse, logdir):
    log = logdir / "app.log"
    log.write_text("", encoding="utf-8")
    srv = tailsse({"app": log})
    lines = random_lines(11, 2000)
    first, second = lines[:1000], lines[1000:]
    matching = lambda chunk: [l for l in chunk if "timeout" in l.lower()]
    with SSEStream(srv.port, "/sources/app?tail=0&grep=TIMEOUT&grep-case=insensitive") as s:
        s.wait_ready()
        append(log, "\n".join(first) + "\n")
        s.wait_messages(len(matching(first)))
        assert s.texts() == matching(first)
        last = s.messages()[-1].own_id
    # Lines written while away: the resumed stream sends exactly the matching ones after the id.
    append(log, "\n".join(second) + "\n" + "99999 final timeout\n")
    with SSEStream(srv.port, "/sources/app?tail=0&grep=timeout&grep-case=smart", last_event_id=last) as s:
        s.wait_for(lambda st: "99999 final timeout" in st.texts(), what="the last line")
        assert s.texts() == matching(second) + ["99999 final timeout"]
        assert not [e for e in s.events if e.type == "reset"]


def test_a_heartbeat_keeps_a_stream_alive_while_every_line_is_left_out(tailsse, logdir):
    log = logdir / "app.log"
    log.write_text("", encoding="utf-8")
    srv = tailsse({"app": log}, heartbeat=1)
    writing = threading.Event()
    writing.set()

    def noise():
        for i in range(200):
            append(log, f"noise {i}\n")
            time.sleep(0.02)
        writing.clear()

    with SSEStream(srv.port, "/sources/app?tail=0&grep=never-there") as s:
        s.wait_ready()
        start = len(s.body)
        writer = threading.Thread(target=noise, daemon=True)
        writer.start()
        # Lines keep coming and are all left out: the stream still beats (a comment, or for SSE
        # with grep= an id-only block), before the lines stop.
        s.wait_for(lambda st: len(st.body) > start or not writing.is_set(), what="a heartbeat or the end of the noise")
        assert writing.is_set(), "no heartbeat while every line was left out"
        writer.join()
        assert s.messages() == []


def test_heartbeats_of_an_sse_grep_stream_carry_its_position_past_the_lines_left_out(tailsse, logdir):
    """An id-only SSE block (no data) moves EventSource's last id and fires nothing: a reconnect
    after a long run of non-matching lines resumes after them, not at the last match."""
    log = logdir / "app.log"
    log.write_text("", encoding="utf-8")
    srv = tailsse({"app": log}, heartbeat=1)
    with SSEStream(srv.port, "/sources/app?tail=0&grep=match") as s:
        s.wait_ready()
        append(log, "match-1\n")
        s.wait_messages(1)
        matched = s.messages()[0].own_id
        append(log, "".join(f"noise {i}\n" for i in range(500)))
        s.wait_for(lambda st: st.parser.last_event_id not in ("", matched), what="an id past the noise")
        progressed = s.parser.last_event_id
        assert s.texts() == ["match-1"]
    offset = lambda event_id: int(event_id.split(".")[3], 16)
    assert offset(progressed) == log.stat().st_size > offset(matched)
    append(log, "match-2\n")
    with SSEStream(srv.port, "/sources/app?tail=0&grep=match", last_event_id=progressed) as s:
        s.wait_messages(1)
        assert s.texts() == ["match-2"] and not [e for e in s.events if e.type == "reset"]


def test_per_source_and_shared_patterns_on_events(tailsse, logdir):
    a, b = logdir / "a.log", logdir / "b.log"
    a.write_text("a ok\na error one\na warn\n")
    b.write_text("b error\nb ok two\n")
    srv = tailsse({"a": a, "b": b})

    def received(path: str, count: int) -> list[tuple[str, str]]:
        """The first `count` lines of a stream (sources interleave in arrival order), then a line
        appended to each file that every pattern matches shows nothing else came before it."""
        with LineStream(srv.port, path, accept="application/x-ndjson") as s:
            s.wait_lines(count)
            append(a, "a error warn last\n")
            append(b, "b error two last\n")
            lines = [json.loads(line) for line in s.wait_lines(count + 2)]
        assert sorted(o["text"] for o in lines[count:]) == ["a error warn last", "b error two last"]
        return sorted((o["source"], o["text"]) for o in lines[:count])

    assert received("/events?source=a&source=b&tail=all&grep=error", 2) == [("a", "a error one"), ("b", "b error")]
    assert received("/events?source=a&source=b&tail=all&a.grep=warn&b.grep=two", 2 + 2) == [
        ("a", "a error warn last"), ("a", "a warn"), ("b", "b error two last"), ("b", "b ok two")]


@pytest.mark.parametrize("query, words", [
    ("grep=(unclosed", "missing closing parenthesis"),
    ("grep=a{2,1}", "out of order"),
    ("grep=", "empty"),
    ("grep=x&grep-case=maybe", "grep-case must be"),
    ("grep-case=insensitive", "needs a grep pattern"),
])
def test_a_bad_pattern_answers_400_naming_the_problem(tailsse, logdir, query, words):
    log = logdir / "app.log"
    log.write_text("x\n")
    srv = tailsse({"app": log})
    for path in (f"/sources/app?{query}", f"/events?source=app&{query}"):
        response = request(srv.port, path)
        assert response.status == 400, (path, response)
        assert words in response.json()["error"], response.json()


def test_a_catastrophic_pattern_stops_at_its_limit_and_other_clients_keep_streaming(tailsse, logdir):
    log = logdir / "app.log"
    log.write_text("")
    srv = tailsse({"app": log}, max_line_bytes=1 << 20)
    with SSEStream(srv.port, "/sources/app?tail=0&grep=%28a%2B%29%2B%24") as evil, SSEStream(srv.port, "/sources/app?tail=0") as other:
        evil.wait_ready()
        other.wait_ready()
        append(log, "a" * 100_000 + "b\n" + "aaa\n" + "after\n")
        other.wait_messages(3)
        evil.wait_for(lambda st: "aaa" in st.texts(), what="the matching line after the catastrophic one")
        assert evil.texts() == ["aaa"]


@pytest.mark.skipif(not have_journal_remote(), reason="systemd-journal-remote is not installed (apt install systemd-journal-remote)")
def test_journal_entries_sent_are_those_journalctl_grep_finds(tailsse, tmp_path):
    journal = JournalFiles(tmp_path / "journal")
    try:
        journal.messages(random_lines(5, 500), SYSLOG_IDENTIFIER="app", PRIORITY="6")
        journal.messages(["99999 sentinel timeout"], SYSLOG_IDENTIFIER="app", PRIORITY="3")
        journal.close()
        srv = tailsse({}, extra=["--journal-directory", str(journal.directory)])
        for pattern, case in (("timeout", "sensitive"), ("TIMEOUT|id=42 ", "insensitive")):
            flag = "--case-sensitive=yes" if case == "sensitive" else "--case-sensitive=no"
            expected = [json.loads(line)["MESSAGE"] for line in journal.journalctl("-o", "json", "--grep", pattern, flag).splitlines()]
            objects = ndjson_until(srv, f"/journal?tail=all&grep={quote(pattern)}&grep-case={case}", "99999 sentinel timeout")
            assert [o["text"] for o in objects] == expected
            assert len(expected) > 3
        objects = ndjson_until(srv, f"/journal?tail=all&grep=timeout&priority=err", "99999 sentinel timeout")
        assert [o["text"] for o in objects] == ["99999 sentinel timeout"]
    finally:
        journal.close()
