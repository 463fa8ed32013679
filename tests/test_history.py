"""GET /sources/NAME/lines: the lines just before or after a position, through the file and its
rotated generations, with the ids a live stream gives them."""

from __future__ import annotations

import json
import os
import random
import subprocess
import urllib.parse

import pytest

from http_client import LineStream, SSEStream, request
from server import append, wait_until


def lines_at(srv, query: str, accept: str = "application/x-ndjson"):
    response = request(srv.port, f"/sources/app/lines?{query}", headers={"Accept": accept})
    assert response.status == 200, response
    return [json.loads(line) for line in response.body.splitlines()], response.header("TailSSE-History-Edge")


def rotate(log):
    """logrotate's numbered rename rotation: app.log.N -> N+1, app.log -> app.log.1, new app.log."""
    n = 1
    while log.with_name(f"{log.name}.{n}").exists():
        n += 1
    for k in range(n - 1, 0, -1):
        os.rename(log.with_name(f"{log.name}.{k}"), log.with_name(f"{log.name}.{k + 1}"))
    os.rename(log, log.with_name(f"{log.name}.1"))
    log.write_text("")


@pytest.fixture
def rotated_log(tailsse, logdir):
    """A file rotated four times while tailsse followed it (a live client saw every line and its
    id), each generation holding lines of random length, one of them longer than max-line-bytes."""
    log = logdir / "app.log"
    log.write_text("")
    srv = tailsse({"app": log}, max_line_bytes=512)
    rng = random.Random(3)
    written: list[str] = []
    with SSEStream(srv.port, "/sources/app?tail=0") as live:
        live.wait_ready()
        for generation in range(5):
            chunk = [f"g{generation}-{i:04d} " + "x" * rng.randint(0, 120) for i in range(rng.randint(150, 400))]
            if generation == 2:
                chunk[10] = "long " + "y" * 1500
            append(log, "".join(line + "\n" for line in chunk))
            written += chunk
            if generation < 4:
                live.wait_for(lambda st: any(e.type == "message" and e.json["text"] == chunk[-1] for e in st.events), what="the generation's last line")
                rotate(log)
        live.wait_for(lambda st: any(e.type == "message" and e.json["text"] == written[-1] for e in st.events), what="the last line")
        seen = [(e.json["text"], e.own_id, e.json.get("continues", False)) for e in live.messages()]
    return srv, log, written, seen


def test_before_and_after_answer_exactly_the_neighbouring_lines_across_rotations(rotated_log):
    srv, log, written, seen = rotated_log
    ids = [i for _, i, _ in seen]
    texts = [t for t, _, _ in seen]
    # The long line came as pieces (the history must cut it the same way): more events than lines.
    assert any(continues for _, _, continues in seen) and len(seen) > len(written)
    rng = random.Random(5)
    for _ in range(40):
        k = rng.randrange(len(seen))
        n = rng.randint(1, 120)
        got, edge = lines_at(srv, f"before={urllib.parse.quote(ids[k])}&limit={n}")
        start = max(0, k + 1 - n)
        assert [o["text"] for o in got] == texts[start:k + 1], (k, n)
        assert [o["id"] for o in got] == ids[start:k + 1]
        assert edge == ("yes" if k + 1 <= n else "no")
        got, edge = lines_at(srv, f"after={urllib.parse.quote(ids[k])}&limit={n}")
        assert [o["text"] for o in got] == texts[k + 1:k + 1 + n], (k, n)
        assert [o["id"] for o in got] == ids[k + 1:k + 1 + n]
        assert edge == ("yes" if k + 1 + n >= len(seen) else "no")
    # Every id around the long line's pieces (an id between two pieces is inside a line).
    pieces = [k for k, (_, _, continues) in enumerate(seen) if continues]
    for k in range(pieces[0] - 1, pieces[-1] + 2):
        got, _ = lines_at(srv, f"before={urllib.parse.quote(ids[k])}&limit=3")
        assert [o["id"] for o in got] == ids[max(0, k - 2):k + 1], k
        got, _ = lines_at(srv, f"after={urllib.parse.quote(ids[k])}&limit=3")
        assert [o["id"] for o in got] == ids[k + 1:k + 4], k
        response = request(srv.port, f"/sources/app/lines?after={urllib.parse.quote(ids[k])}&before={urllib.parse.quote(ids[k + 3])}",
                           headers={"Accept": "application/x-ndjson"})
        assert [json.loads(line)["id"] for line in response.body.splitlines()] == ids[k + 1:k + 4], k
    got, edge = lines_at(srv, "before=end&limit=7")
    assert [o["text"] for o in got] == texts[-7:] and edge == "no"
    got, edge = lines_at(srv, "after=start&limit=7")
    assert [o["text"] for o in got] == texts[:7] and edge == "no"
    got, _ = lines_at(srv, f"after=start&limit={len(seen)}")
    assert [o["id"] for o in got] == ids


def test_history_ids_resume_a_live_stream_where_the_history_ended(rotated_log):
    srv, log, written, seen = rotated_log
    got, _ = lines_at(srv, "before=end&limit=600")
    middle = got[len(got) // 2]
    append(log, "after-1\n")
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=middle["id"]) as s:
        s.wait_for(lambda st: "after-1" in st.texts(), what="the new line")
        index = [i for _, i, _ in seen].index(middle["id"])
        assert s.texts() == [t for t, _, _ in seen][index + 1:] + ["after-1"]
        assert not [e for e in s.events if e.type == "reset"]


def test_grep_in_history_finds_the_last_matches_however_far_back(rotated_log):
    srv, log, written, seen = rotated_log
    # One match per generation: the last 3 lie in three different files.
    expected = [(t, i) for t, i, _ in seen if "-0007 " in t]
    assert len(expected) == 5
    got, edge = lines_at(srv, "before=end&limit=3&grep=-0007%20")
    assert [(o["text"], o["id"]) for o in got] == expected[-3:] and edge == "no"
    got, edge = lines_at(srv, "before=end&limit=100&grep=-0007%20")
    assert [(o["text"], o["id"]) for o in got] == expected and edge == "yes"


def test_plain_text_and_sse_answers(rotated_log):
    srv, log, written, seen = rotated_log
    response = request(srv.port, "/sources/app/lines?before=end&limit=3")
    assert response.status == 200 and response.header("Content-Type").startswith("text/plain")
    assert response.body.decode().splitlines() == [t for t, _, _ in seen][-3:]
    response = request(srv.port, "/sources/app/lines?before=end&limit=2", headers={"Accept": "text/event-stream"})
    assert response.body.count(b"\nid: ") + response.body.startswith(b"id: ") == 2
    assert b"retry:" not in response.body


@pytest.mark.parametrize("query, status, words", [
    ("", 400, "give before="),
    ("before=end&after=start&limit=5", 400, "limit= goes with one"),
    ("before=end&before=end", 400, "given twice"),
    ("before=end&limit=0", 400, "limit must be"),
    ("before=end&limit=10001", 400, "limit must be"),
    ("before=end&limit=abc", 400, "limit must be"),
    ("before=f1.zz", 400, "id"),
    ("before=f1.fe00.1.0.0", 404, "names no file"),
    ("before=end&grep=(", 400, "missing closing parenthesis"),
    ("before=end&tail=3", 400, "unknown parameter"),
])
def test_bad_history_requests_get_clear_errors(tailsse, logdir, query, status, words):
    log = logdir / "app.log"
    log.write_text("a\nb\n")
    srv = tailsse({"app": log})
    response = request(srv.port, f"/sources/app/lines?{query}")
    assert response.status == status, response
    assert words in response.json()["error"], response.json()
    assert request(srv.port, "/sources/nope/lines?before=end").status == 404


def test_an_id_with_the_wrong_check_or_of_another_file_opens_nothing(tailsse, logdir, tmp_path):
    log = logdir / "app.log"
    log.write_text("one\ntwo\n")
    secret = tmp_path / "secret"
    secret.write_text("SECRET\n")
    srv = tailsse({"app": log})
    st = os.stat(secret)
    forged = f"f1.{st.st_dev:x}.{st.st_ino:x}.7.0"
    assert request(srv.port, f"/sources/app/lines?after={forged}").status == 404
    st = os.stat(log)
    wrong_check = f"f1.{st.st_dev:x}.{st.st_ino:x}.4.12345678"
    response = request(srv.port, f"/sources/app/lines?before={wrong_check}")
    assert response.status == 404 and "no longer holds" in response.json()["error"]
    # A symlink or a hard link beside the file under a rotation name is never read as its past.
    os.symlink(secret, logdir / "app.log.1")
    os.link(secret, logdir / "app.log.2")
    got, edge = lines_at(srv, "before=end&limit=10")
    assert [o["text"] for o in got] == ["one", "two"] and edge == "yes"


@pytest.mark.skipif(not __import__("journal_support").have_journal_remote(), reason="systemd-journal-remote is not installed (apt install systemd-journal-remote)")
def test_journal_history_by_cursor_matches_journalctl(tailsse, tmp_path):
    from journal_support import JournalFiles
    journal = JournalFiles(tmp_path / "journal")
    try:
        rng = random.Random(9)
        for i in range(300):
            journal.messages([f"entry {i:04d} {'timeout' if rng.random() < 0.2 else 'ok'}"], SYSLOG_IDENTIFIER="app" if i % 3 else "db", PRIORITY=str(3 + i % 4))
        journal.close()
        everything = [json.loads(line) for line in journal.journalctl("-o", "json").splitlines()]
        cursors = [e["__CURSOR"] for e in everything]
        messages = [e["MESSAGE"] for e in everything]
        srv = tailsse({}, extra=["--journal-directory", str(journal.directory)])

        def history(query):
            response = request(srv.port, f"/sources/journal/lines?{query}", headers={"Accept": "application/x-ndjson"})
            assert response.status == 200, response
            return [json.loads(line) for line in response.body.splitlines()], response.header("TailSSE-History-Edge")

        for k in random.Random(4).sample(range(len(cursors)), 15):
            n = random.Random(k).randint(1, 40)
            got, edge = history(f"before={urllib.parse.quote(cursors[k])}&limit={n}")
            start = max(0, k + 1 - n)
            assert [o["id"] for o in got] == cursors[start:k + 1] and edge == ("yes" if k + 1 <= n else "no")
            got, edge = history(f"after={urllib.parse.quote(cursors[k])}&limit={n}")
            assert [o["id"] for o in got] == cursors[k + 1:k + 1 + n] and edge == ("yes" if k + 1 + n >= len(cursors) else "no")
        got, _ = history("before=end&limit=5")
        assert [o["text"] for o in got] == messages[-5:]
        alias = request(srv.port, "/journal/lines?before=end&limit=5", headers={"Accept": "application/x-ndjson"})
        assert [json.loads(l)["text"] for l in alias.body.splitlines()] == messages[-5:]
        # Field filters and grep together: journalctl --identifier --grep is the reference.
        expected = [json.loads(l)["MESSAGE"] for l in journal.journalctl("-o", "json", "--identifier", "db", "--grep", "timeout", "--case-sensitive=yes").splitlines()]
        got, edge = history("before=end&limit=1000&identifier=db&grep=timeout")
        assert [o["text"] for o in got] == expected and edge == "yes" and len(expected) > 3
        assert request(srv.port, "/sources/journal/lines?before=s=00;i=1").status in (400, 404)
    finally:
        journal.close()


def test_a_download_of_the_whole_history_is_the_files_themselves(rotated_log):
    srv, log, written, seen = rotated_log
    generations = sorted(log.parent.glob("app.log.*"), key=lambda p: -int(p.suffix[1:])) + [log]
    expected = b"".join(p.read_bytes() for p in generations)
    response = request(srv.port, "/sources/app/lines?after=start&before=end", headers={"Accept": "text/plain"})
    assert response.status == 200
    assert response.header("Content-Disposition") == 'attachment; filename="app.log"'
    assert response.body == expected
    # NDJSON: every line with its id, the same ids the live client saw; grep filters the download.
    response = request(srv.port, "/sources/app/lines?after=start&before=end", headers={"Accept": "application/x-ndjson"})
    assert [(o["text"], o["id"]) for o in map(json.loads, response.body.splitlines())] == [(t, i) for t, i, _ in seen]
    response = request(srv.port, "/sources/app/lines?after=start&before=end&grep=-0007%20")
    assert response.body.decode().splitlines() == [t for t, _, _ in seen if "-0007 " in t]
    # Between two ids: exactly the lines after the first, up to and including the second.
    ids = [i for _, i, _ in seen]
    response = request(srv.port, f"/sources/app/lines?after={urllib.parse.quote(ids[100])}&before={urllib.parse.quote(ids[700])}", headers={"Accept": "application/x-ndjson"})
    assert [o["id"] for o in map(json.loads, response.body.splitlines())] == ids[101:701]


def test_a_download_streams_a_large_file_without_holding_it_in_memory(tailsse, logdir):
    log = logdir / "app.log"
    line = b"x" * 99 + b"\n"
    with open(log, "wb") as f:
        for _ in range(64):
            f.write(line * 10_000)
    size = log.stat().st_size
    srv = tailsse({"app": log})
    rss_before = srv.rss_bytes()
    with LineStream(srv.port, "/sources/app/lines?after=start&before=end", accept="text/plain") as s:
        total = 0
        peak = rss_before
        while not s.eof:
            data = s.read_some(timeout=30)
            total += len(data or b"")
            peak = max(peak, srv.rss_bytes())
    assert total == size
    assert peak - rss_before < size // 4, f"RSS grew by {(peak - rss_before) >> 20} MiB for a {size >> 20} MiB download"
