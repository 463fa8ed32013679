"""History of several sources at once: GET /events/lines (the sources of /events, composite ids)
and a glob source's history (its files, its composite ids; one file with file=NAME)."""

from __future__ import annotations

import json
import random
import urllib.parse

import pytest

from http_client import SSEStream, request
from journal_support import have_journal_remote
from server import append
from test_events import parse_composite
from test_history import rotate

needs_journal_remote = pytest.mark.skipif(not have_journal_remote(), reason="systemd-journal-remote is not installed (apt install systemd-journal-remote)")


def own_parts(composite: str) -> dict[tuple[str, str | None], str]:
    """Every (source, file) position a composite id holds, a glob's nested id opened."""
    out: dict[tuple[str, str | None], str] = {}
    for source, part in parse_composite(composite).items():
        if part.startswith("m1"):
            for file, inner in parse_composite(part).items():
                out[(source, file)] = inner
        else:
            out[(source, None)] = part
    return out


def key_of(event: dict) -> tuple[str, str | None]:
    return event["source"], event.get("file")


def answer(srv, path: str, accept: str = "application/x-ndjson"):
    response = request(srv.port, path, headers={"Accept": accept})
    assert response.status == 200, response
    return [json.loads(line) for line in response.body.splitlines()], response.header("TailSSE-History-Edge")


def grouped(events) -> dict[tuple[str, str | None], list[tuple[str, str]]]:
    """Each (source, file)'s lines in an answer, in order, with their own ids."""
    out: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for event in events:
        key = key_of(event)
        out.setdefault(key, []).append((event["text"], own_parts(event["id"])[key]))
    return out


@pytest.fixture
def three_sources(tailsse, logdir, tmp_path):
    """A rotated file `app`, a glob `web` of two files, and a journal; a live /events client saw
    every line with its composite id."""
    from journal_support import JournalFiles
    log = logdir / "app.log"
    log.write_text("")
    web = logdir / "web"
    web.mkdir()
    (web / "a.log").write_text("")
    (web / "b.log").write_text("")
    journal = JournalFiles(tmp_path / "journal")
    journal.messages([f"journal {i:03d}" for i in range(40)], SYSLOG_IDENTIFIER="svc")
    srv = tailsse({"app": log, "web": web / "*.log"}, extra=["--journal-directory", str(journal.directory)])
    rng = random.Random(11)
    query = "/events?source=app&source=web&source=journal&tail=all"
    total = 40
    with SSEStream(srv.port, query) as live:
        live.wait_ready()
        for round_ in range(4):
            app_lines = [f"app {round_}-{i:03d} " + "x" * rng.randint(0, 60) for i in range(rng.randint(30, 60))]
            a_lines = [f"a {round_}-{i:03d}" for i in range(rng.randint(10, 30))]
            b_lines = [f"b {round_}-{i:03d}" for i in range(rng.randint(10, 30))]
            append(log, "".join(line + "\n" for line in app_lines))
            append(web / "a.log", "".join(line + "\n" for line in a_lines))
            append(web / "b.log", "".join(line + "\n" for line in b_lines))
            total += len(app_lines) + len(a_lines) + len(b_lines)
            live.wait_messages(total, timeout=30)
            if round_ < 3:
                rotate(log)
        events = [(e.json, e.id) for e in live.messages()]
    journal.close()
    reference: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for data, composite in events:
        key = key_of(data)
        reference.setdefault(key, []).append((data["text"], own_parts(composite)[key]))
    assert set(reference) == {("app", None), ("web", "a.log"), ("web", "b.log"), ("journal", None)}
    return srv, events, reference, log, web


def expected(reference, anchor: str, limit: int, before: bool):
    """Each (source, file)'s `limit` lines ending at (before) or following (after) its part of `anchor`."""
    parts = own_parts(anchor)
    out = {}
    for key, lines in reference.items():
        ids = [i for _, i in lines]
        if key in parts and parts[key] in ids:
            at = ids.index(parts[key]) + 1
            out[key] = lines[max(0, at - limit):at] if before else lines[at:at + limit]
    return {k: v for k, v in out.items() if v}


LINES = "/events/lines?source=app&source=web&source=journal"


@needs_journal_remote
def test_events_history_answers_every_source_exactly_with_composite_ids(three_sources):
    srv, events, reference, _, _ = three_sources
    rng = random.Random(5)
    for _ in range(25):
        k = rng.randrange(len(events) // 3, len(events))
        anchor = events[k][1]
        limit = rng.randint(1, 40)
        got, _ = answer(srv, f"{LINES}&before={urllib.parse.quote(anchor)}&limit={limit}")
        assert grouped(got) == expected(reference, anchor, limit, before=True), (k, limit)
        # Source by source, in the request's order (a glob's files in its own order).
        order = [key_of(e) for e in got]
        assert order == sorted(order, key=lambda key: ["app", "web", "journal"].index(key[0]))
        # The last event's id is the anchor: every source where it was.
        assert own_parts(got[-1]["id"]) == own_parts(anchor)
        got, _ = answer(srv, f"{LINES}&after={urllib.parse.quote(anchor)}&limit={limit}")
        assert grouped(got) == expected(reference, anchor, limit, before=False), (k, limit)
    got, edge = answer(srv, f"{LINES}&after=start&limit=10000")
    assert grouped(got) == reference and edge == "yes"
    # Plain text and SSE: every line once, prefixed with its source (and file).
    response = request(srv.port, f"{LINES}&before=end&limit=2")
    texts = response.body.decode().splitlines()
    assert len(texts) == 8 and texts[0].startswith("[app] app 3-") and texts[2].startswith("[web] [a.log] a 3-")
    response = request(srv.port, f"{LINES}&before=end&limit=2", headers={"Accept": "text/event-stream"})
    assert response.body.count(b"id: m1,") == 8 and b"retry:" not in response.body


@needs_journal_remote
def test_events_history_pages_back_to_the_start_without_gap_or_duplicate(three_sources):
    srv, events, reference, _, _ = three_sources
    collected: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    anchor = "end"
    pages = 0
    while True:
        got, edge = answer(srv, f"{LINES}&before={urllib.parse.quote(anchor)}&limit=25")
        pages += 1
        page = grouped(got)
        for key, lines in page.items():
            held = collected.get(key, [])
            # `before=ID` ends with the line whose id it is: the first line held of the first event's source.
            if held and lines and lines[-1] == held[0]:
                assert key == key_of(previous_first)
                lines = lines[:-1]
            collected[key] = lines + held
        if edge == "yes":
            break
        previous_first = got[0]
        anchor = got[0]["id"]
        assert pages < 100
    assert collected == reference and pages > 3


@needs_journal_remote
def test_a_live_stream_resumed_from_a_history_id_continues_every_source(three_sources):
    srv, events, reference, log, web = three_sources
    middle = events[len(events) // 2][1]
    got, _ = answer(srv, f"{LINES}&after={urllib.parse.quote(middle)}&limit=10")
    last = got[-1]["id"]
    append(log, "app new\n")
    append(web / "b.log", "b new\n")
    with SSEStream(srv.port, "/events?source=app&source=web&source=journal&tail=0", last_event_id=last) as s:
        s.wait_for(lambda st: {"app new", "b new"} <= set(st.texts()), what="the new lines")
        received = grouped([dict(e.json, id=e.id) for e in s.messages()])
    for key, lines in reference.items():
        resumed_from = own_parts(last)[key]
        ids = [i for _, i in lines]
        expected = [t for t, _ in lines[ids.index(resumed_from) + 1:]]
        expected += {("app", None): ["app new"], ("web", "b.log"): ["b new"]}.get(key, [])
        assert [t for t, _ in received.get(key, [])] == expected, key
    assert not [e for e in s.events if e.type == "reset"]


def test_a_glob_answers_by_its_composite_id_and_one_file_by_its_own(tailsse, logdir):
    (logdir / "x.log").write_text("".join(f"x-{i}\n" for i in range(1, 6)))
    (logdir / "y.log").write_text("".join(f"y-{i}\n" for i in range(1, 4)))
    srv = tailsse({"app": logdir / "*.log"})
    got, edge = answer(srv, "/sources/app/lines?before=end&limit=2")
    assert [(e["file"], e["text"]) for e in got] == [("x.log", "x-4"), ("x.log", "x-5"), ("y.log", "y-2"), ("y.log", "y-3")]
    assert edge == "no"
    # Further back from the first event's id: x up to x-4 (its own line again), y before y-2.
    got, edge = answer(srv, f"/sources/app/lines?before={urllib.parse.quote(got[0]['id'])}&limit=10")
    assert [(e["file"], e["text"]) for e in got] == [("x.log", f"x-{i}") for i in range(1, 5)] + [("y.log", "y-1")]
    assert edge == "yes"
    # One file: its own ids (the parts of the glob's ids), tagged with the file.
    x_own = [e for e in answer(srv, "/sources/app/lines?after=start&limit=100&file=x.log")[0]]
    assert [e["text"] for e in x_own] == [f"x-{i}" for i in range(1, 6)] and all(e["file"] == "x.log" for e in x_own)
    assert not x_own[0]["id"].startswith("m1")
    got, _ = answer(srv, f"/sources/app/lines?before={urllib.parse.quote(x_own[2]['id'])}&limit=2&file=x.log")
    assert [e["text"] for e in got] == ["x-2", "x-3"]
    got, _ = answer(srv, f"/sources/app/lines?after={urllib.parse.quote(x_own[2]['id'])}&limit=1&file=x.log")
    assert [e["text"] for e in got] == ["x-4"]
    # A file's whole history as an attachment.
    response = request(srv.port, "/sources/app/lines?after=start&before=end&file=y.log")
    assert response.status == 200 and response.body == (logdir / "y.log").read_bytes()
    assert response.header("Content-Disposition") == 'attachment; filename="app-y.log.log"'


@pytest.mark.parametrize("query, status, words", [
    ("/sources/app/lines?before=f1.fe00.1.4.0", 400, "file=NAME"),
    ("/sources/app/lines?before=end&file=nope.log", 404, "no file 'nope.log'"),
    ("/sources/app/lines?before=end&file=../x", 400, "file= needs"),
    ("/sources/app/lines?before=end&file=x.log&file=x.log", 400, "given twice"),
    ("/sources/app/lines?after=start&before=end", 400, "file=NAME"),
    ("/sources/app/lines?before=m1,x.log=zz", 400, "x.log"),
    ("/sources/one/lines?before=end&file=x.log", 400, "unknown parameter 'file'"),
    ("/events/lines?before=end", 400, "at least one source"),
    ("/events/lines?source=app&source=app&before=end", 400, "given twice"),
    ("/events/lines?source=nope&before=end", 404, "unknown source"),
    ("/events/lines?source=app", 400, "give before="),
    ("/events/lines?source=app&before=end&after=start", 400, "one of before= and after="),
    ("/events/lines?source=app&before=f1.fe00.1.4.0", 400, "not an id of a multiplexed stream"),
    ("/events/lines?source=app&before=end&app.tail=3", 400, "no tail"),
    ("/events/lines?source=app&before=end&one.grep=x", 400, "not in this request"),
    ("/events/lines?source=app&before=end&limit=0", 400, "limit must be"),
    ("/events/lines?source=app&before=end&grep=(", 400, "missing closing parenthesis"),
    ("/events/lines?source=app&before=end&lastEventId=m1", 400, "unknown parameter"),
])
def test_bad_multi_source_history_requests_get_clear_errors(tailsse, logdir, query, status, words):
    (logdir / "x.log").write_text("x-1\n")
    one = logdir / "one"
    one.mkdir()
    (one / "one.txt").write_text("1\n")
    srv = tailsse({"app": logdir / "*.log", "one": one / "one.txt"})
    response = request(srv.port, query)
    assert response.status == status, response
    assert words in response.json()["error"], response.json()

