"""The journal source on real journal files written by systemd-journal-remote while tailsse follows."""

from __future__ import annotations

import json
import os
import random
import shutil
import time

import pytest

from chaos import ReconnectingClient, first_difference
from http_client import LineStream, SSEStream, request
from server import wait_until
from journal_support import JournalFiles, have_journal_remote

pytestmark = pytest.mark.skipif(not have_journal_remote(), reason="systemd-journal-remote is not installed (apt install systemd-journal-remote)")


@pytest.fixture
def journal(tmp_path):
    files = JournalFiles(tmp_path / "journal")
    yield files
    files.close()


def start(tailsse, journal, **kw):
    return tailsse({}, extra=["--journal-directory", str(journal.directory)], **kw)


def texts(stream: SSEStream) -> list[str]:
    return [e.json["text"] for e in stream.messages()]


def test_backlog_then_live_entries(tailsse, journal):
    journal.messages([f"old {i}" for i in range(20)], SYSLOG_IDENTIFIER="app", PRIORITY="6")
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=5") as s:
        s.wait_messages(5)
        assert texts(s) == [f"old {i}" for i in range(15, 20)]
        journal.messages([f"new {i}" for i in range(30)], SYSLOG_IDENTIFIER="app", PRIORITY="6")
        s.wait_messages(35)
        assert texts(s) == [f"old {i}" for i in range(15, 20)] + [f"new {i}" for i in range(30)]
        first = s.messages()[0]
        obj = first.json
        assert obj["source"] == "journal" and obj["identifier"] == "app" and obj["priority"] == 6
        assert obj["time"].endswith("Z") and len(obj["time"]) == len("2026-01-01T00:00:00.000000Z")
        assert first.id.startswith("s=") and ";i=" in first.id
    listing = request(srv.port, "/sources").json()
    assert [{k: v for k, v in source.items() if k != "clients"} for source in listing] == [
        {"name": "journal", "kind": "journal", "journal": "directory", "directory": str(journal.directory), "watch": "inotify", "hosts": [], "following": True}]


def test_ids_are_the_cursors_journalctl_shows(tailsse, journal):
    journal.messages(["a", "b", "c"])
    journal.close()
    cursors = [json.loads(line)["__CURSOR"] for line in journal.journalctl("-o", "json").splitlines()]
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all") as s:
        assert [e.id for e in s.wait_messages(3)] == cursors


def test_tail_zero_all_and_default(tailsse, journal):
    journal.messages([f"m{i}" for i in range(25)])
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all") as s:
        assert texts(s.wait_for(lambda s: len(s.messages()) >= 25 and s, what="25")) == [f"m{i}" for i in range(25)]
    with SSEStream(srv.port, "/journal") as s:
        s.wait_messages(10)
        assert texts(s) == [f"m{i}" for i in range(15, 25)]
    with SSEStream(srv.port, "/journal?tail=0") as s:
        s.wait_ready()
        journal.messages(["after"])
        s.wait_messages(1)
        assert texts(s) == ["after"]


def test_entry_fields_and_formats(tailsse, journal):
    journal.write([{"MESSAGE": "hello", "PRIORITY": "3", "SYSLOG_IDENTIFIER": "sshd", "_PID": "42", "_HOSTNAME": "web1",
                    "_SYSTEMD_UNIT": "ssh.service"}])
    journal.close()
    srv = start(tailsse, journal)
    with LineStream(srv.port, "/journal?tail=1", accept="application/x-ndjson") as s:
        obj = json.loads(s.wait_lines(1)[0])
    assert {k: obj[k] for k in ("source", "text", "priority", "identifier", "pid", "host", "unit")} == {
        "source": "journal", "text": "hello", "priority": 3, "identifier": "sshd", "pid": 42, "host": "web1", "unit": "ssh.service"}
    assert obj["id"].startswith("s=")
    with LineStream(srv.port, "/journal?tail=1") as s:
        line = s.wait_lines(1)[0].decode()
    expected = journal.journalctl("-o", "short-iso", "-n", "1").decode().strip().splitlines()[-1]
    assert line == expected


def test_multi_line_and_binary_messages(tailsse, journal):
    journal.write([
        {"MESSAGE": "first\nsecond\nthird", "SYSLOG_IDENTIFIER": "app"},
        {"MESSAGE": b"bad \xff\xfe bytes and a NUL \x00 here", "SYSLOG_IDENTIFIER": "app"},
        {"MESSAGE": "caf\u00e9 \u2603", "SYSLOG_IDENTIFIER": "app"},
    ])
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all") as s:
        s.wait_messages(3)
        assert texts(s) == ["first\nsecond\nthird", "bad \ufffd\ufffd bytes and a NUL \x00 here", "caf\u00e9 \u2603"]
        assert b"\\u0000" in s.body
    with LineStream(srv.port, "/journal?tail=all") as s:
        lines = s.wait_lines(5)
    prefix = lines[0][: lines[0].index(b": ") + 2]
    assert lines[0].endswith(b": first")
    assert lines[1] == b" " * len(prefix) + b"second" and lines[2] == b" " * len(prefix) + b"third"
    assert "\ufffd\ufffd".encode() in lines[3]


def entries_for_filters():
    return [
        {"MESSAGE": "ssh info", "_SYSTEMD_UNIT": "ssh.service", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "sshd", "_HOSTNAME": "a"},
        {"MESSAGE": "ssh err", "_SYSTEMD_UNIT": "ssh.service", "PRIORITY": "3", "SYSLOG_IDENTIFIER": "sshd", "_HOSTNAME": "a"},
        {"MESSAGE": "cron warning", "_SYSTEMD_UNIT": "cron.service", "PRIORITY": "4", "SYSLOG_IDENTIFIER": "CRON", "_HOSTNAME": "b"},
        {"MESSAGE": "systemd about ssh", "_PID": "1", "UNIT": "ssh.service", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "systemd", "_HOSTNAME": "a"},
        {"MESSAGE": "kernel crit", "PRIORITY": "2", "SYSLOG_IDENTIFIER": "kernel", "_HOSTNAME": "b", "CUSTOM_FIELD": "x1"},
        {"MESSAGE": "custom two", "PRIORITY": "7", "SYSLOG_IDENTIFIER": "app", "_HOSTNAME": "a", "CUSTOM_FIELD": "x2"},
    ]


FILTERS = [
    ("unit=ssh.service", ["ssh info", "ssh err", "systemd about ssh"]),
    ("unit=ssh", ["ssh info", "ssh err", "systemd about ssh"]),
    ("unit=ssh&unit=cron", ["ssh info", "ssh err", "cron warning", "systemd about ssh"]),
    ("priority=err", ["ssh err", "kernel crit"]),
    ("priority=4", ["ssh err", "cron warning", "kernel crit"]),
    ("identifier=sshd&priority=3", ["ssh err"]),
    ("host=b", ["cron warning", "kernel crit"]),
    ("CUSTOM_FIELD=x1&CUSTOM_FIELD=x2", ["kernel crit", "custom two"]),
    ("CUSTOM_FIELD=x2&host=b", []),
    ("unit=ssh&host=a&priority=info", ["ssh info", "ssh err", "systemd about ssh"]),
    (f"boot=0f0e0d0c-0b0a-0908-0706-050403020100", ["ssh info", "ssh err", "cron warning", "systemd about ssh", "kernel crit", "custom two"]),
    ("boot=00000000000000000000000000000001", []),
]


def settled(stream: SSEStream) -> None:
    """Waits until the stream has consumed everything published so far: a heartbeat comes only
    when it is idle, after the last entry."""
    seen = len(stream.parser.comments)
    stream.wait_for(lambda s: len(s.parser.comments) >= seen + 1, 15, "a heartbeat after the last entry")


@pytest.mark.parametrize("query,expected", FILTERS, ids=[q for q, _ in FILTERS])
def test_filters_apply_to_backlog_and_live(tailsse, journal, query, expected):
    journal.write(entries_for_filters())
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, f"/journal?tail=all&{query}") as backlog, SSEStream(srv.port, f"/journal?tail=0&{query}") as live:
        live.wait_ready()
        journal.write(entries_for_filters() + [{"MESSAGE": "end marker", "MARK": "end"}])
        with SSEStream(srv.port, "/journal?tail=1&MARK=end") as marker:
            marker.wait_for(lambda s: s.messages() and s.messages()[-1].json["text"] == "end marker", what="the end marker")
        backlog.wait_for(lambda s: len(s.messages()) >= 2 * len(expected), what="backlog and live entries")
        live.wait_for(lambda s: len(s.messages()) >= len(expected), what="live entries")
        settled(backlog)
        settled(live)
        # The end marker matches only filters that every entry here matches (the boot id).
        assert [t for t in texts(backlog) if t != "end marker"] == expected * 2
        assert [t for t in texts(live) if t != "end marker"] == expected


def test_filters_apply_on_resume(tailsse, journal):
    journal.write(entries_for_filters())
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all&priority=err") as s:
        first = s.wait_messages(1)[0]
    journal.write(entries_for_filters())
    with SSEStream(srv.port, "/journal?tail=0&priority=err", last_event_id=first.id) as s:
        s.wait_messages(3)
        assert texts(s)[:3] == ["kernel crit", "ssh err", "kernel crit"]


@pytest.mark.parametrize("query,fragment", [
    ("priority=loud", "priority"),
    ("priority=8", "priority"),
    ("boot=nonsense", "boot"),
    ("lowercase=1", "unknown parameter"),
    ("__CURSOR=x", "unknown parameter"),
    ("BAD-NAME=1", "unknown parameter"),
    ("unit=", "unit"),
])
def test_bad_filters_are_400_with_json_error(tailsse, journal, query, fragment):
    journal.messages(["x"])
    srv = start(tailsse, journal)
    r = request(srv.port, f"/journal?{query}", headers={"Accept": "text/event-stream"})
    assert r.status == 400
    assert fragment in r.json()["error"]


def test_resume_from_every_cursor_is_exact(tailsse, journal):
    journal.messages([f"line {i}" for i in range(40)])
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all") as s:
        events = s.wait_messages(40)
    for k in (0, 1, 17, 38):
        with SSEStream(srv.port, "/journal?tail=0", last_event_id=events[k].id) as s:
            s.wait_messages(39 - k)
            assert texts(s) == [f"line {i}" for i in range(k + 1, 40)]
    with SSEStream(srv.port, f"/journal?tail=0&lastEventId={events[39].id.replace(';', '%3B').replace('=', '%3D')}") as s:
        s.wait_ready()
        journal.messages(["next"])
        s.wait_messages(1)
        assert texts(s) == ["next"]


@pytest.mark.parametrize("kind", ["garbage", "foreign", "vacuumed"])
def test_unusable_cursor_gives_reset_then_tail(tailsse, journal, tmp_path, kind):
    if kind == "garbage":
        cursor = "s=nothex;i=zz"
    elif kind == "foreign":
        other = JournalFiles(tmp_path / "other", boot_id="11111111111111111111111111111111")
        other.messages(["elsewhere"])
        other.close()
        cursor = json.loads(other.journalctl("-o", "json").splitlines()[0])["__CURSOR"]
    else:
        journal.messages(["soon gone"], file="old")
        journal.close("old")
        cursor = json.loads(journal.journalctl("-o", "json").splitlines()[0])["__CURSOR"]
        os.unlink(journal.directory / "old.journal")
    journal.messages([f"kept {i}" for i in range(5)])
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=2", last_event_id=cursor) as s:
        s.wait_for(lambda s: len(s.messages()) >= 2, what="reset then tail")
        assert s.events[0].type == "reset"
        reason = s.events[0].json["reason"]
        assert "cursor" in reason or "no longer holds" in reason
        assert texts(s) == ["kept 3", "kept 4"]
        # The reset's id is where the stream continues: resuming from it gives the same lines.
        with SSEStream(srv.port, "/journal?tail=0", last_event_id=s.events[0].id) as again:
            again.wait_messages(2)
            assert texts(again) == ["kept 3", "kept 4"]


def test_restart_then_resume_by_cursor(tailsse, journal):
    journal.messages([f"before {i}" for i in range(10)])
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all") as s:
        last = s.wait_messages(10)[-1].id
    srv.stop()
    journal.messages([f"while down {i}" for i in range(10)])
    srv.start()
    with SSEStream(srv.port, "/journal?tail=0", last_event_id=last) as s:
        s.wait_messages(10)
        journal.messages(["after restart"])
        s.wait_messages(11)
        assert texts(s) == [f"while down {i}" for i in range(10)] + ["after restart"]


def test_new_journal_file_is_followed_without_a_gap(tailsse, journal):
    journal.messages([f"first file {i}" for i in range(5)], file="first")
    journal.close()
    srv = start(tailsse, journal)
    with SSEStream(srv.port, "/journal?tail=all") as s:
        s.wait_messages(5)
        journal.messages([f"second file {i}" for i in range(5)], file="second")
        journal.messages([f"second file {i}" for i in range(5, 10)], file="second")
        s.wait_messages(15)
        assert texts(s) == [f"first file {i}" for i in range(5)] + [f"second file {i}" for i in range(10)]


@pytest.mark.parametrize("shared_buffer", [4096, 4 << 20], ids=["tiny-shared-buffer", "large-shared-buffer"])
def test_reconnecting_client_gets_exactly_every_entry(tailsse, journal, shared_buffer):
    journal.messages(["existing entry"])
    journal.close()
    srv = start(tailsse, journal, shared_buffer_bytes=shared_buffer)
    with SSEStream(srv.port, "/journal?tail=1") as s:
        start_id = s.wait_messages(1)[0].id
    written: list[str] = []
    done = {"yes": False}
    client = ReconnectingClient(lambda: srv.port, "journal", 31337 + shared_buffer,
                                target=lambda: len(written) if done["yes"] else None,
                                deadline=time.monotonic() + 120)
    client.path = "/journal?tail=0"
    client.last_id = start_id
    client.start()
    rng = random.Random(shared_buffer)
    try:
        for batch in range(60):
            texts_ = [f"entry {len(written) + i}" for i in range(rng.randint(1, 60))]
            journal.messages(texts_, SYSLOG_IDENTIFIER="chaos")
            written += texts_
            time.sleep(rng.random() * 0.02)
        done["yes"] = True
        client.join(timeout=90)
    finally:
        client.stop.set()
        client.join(10)
    assert client.error is None, f"{client.error!r}; {len(client.received)} of {len(written)}"
    assert client.connections >= 10
    assert client.received == written, first_difference(written, client.received)
    print(f"{len(written)} entries, {client.connections} connections ({client.cut_mid_event} cut mid-event)")


def test_a_missing_journal_directory_is_named_by_healthz_and_the_others_go_on(tailsse, tmp_path, logdir):
    """Degrade, don't die: the journal's directory is missing at start — /healthz answers 503 naming
    the journal, /sources says why, a file source streams meanwhile; once the directory appears the
    journal is followed and /healthz is ok again."""
    log = logdir / "app.log"
    log.write_text("file line\n")
    directory = tmp_path / "later" / "journal"
    srv = tailsse({"app": log}, extra=["--journal-directory", str(directory)])
    health = request(srv.port, "/healthz")
    assert health.status == 503 and health.body == b"not following: journal\n"
    journal_entry = next(s for s in request(srv.port, "/sources").json() if s["name"] == "journal")
    assert "No such file or directory" in journal_entry["problem"] and journal_entry["following"] is False
    with SSEStream(srv.port, "/sources/app?tail=1") as stream:
        assert stream.wait_messages(1)[0].json["text"] == "file line"
    files = JournalFiles(directory)
    try:
        files.messages(["arrived later"])
        wait_until(lambda: request(srv.port, "/healthz").status == 200, 20, "the journal followed once its directory exists")
        assert "problem" not in next(s for s in request(srv.port, "/sources").json() if s["name"] == "journal")
        with SSEStream(srv.port, "/journal?tail=1") as stream:
            assert stream.wait_messages(1)[0].json["text"] == "arrived later"
    finally:
        files.close()


@pytest.mark.parametrize("how", ["renamed away", "unreadable"])
def test_a_journal_directory_that_vanishes_while_followed_is_named_then_followed_again(tailsse, tmp_path, logdir, how):
    """Degrade, don't die: the journal directory is renamed away (or made unreadable) while a client
    streams — /healthz answers 503 naming the journal, /sources says why, the file source goes on;
    once it is back the journal is reopened where it left off and the still-connected client gets
    every entry, also those written meanwhile, with no reset."""
    log = logdir / "app.log"
    log.write_text("file line\n")
    files = JournalFiles(tmp_path / "journal")
    directory = files.directory
    away = tmp_path / "journal.away"
    wrapper: list[str] = []
    if how == "unreadable" and os.geteuid() == 0:
        # root reads a mode-000 directory through CAP_DAC_OVERRIDE: run tailsse without it.
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to run tailsse without CAP_DAC_OVERRIDE as root")
        wrapper = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    try:
        files.messages(["before 0", "before 1"])
        srv = tailsse({"app": log}, extra=["--journal-directory", str(directory)], wrapper=wrapper)
        wait_until(lambda: request(srv.port, "/healthz").status == 200, 20, "the journal followed")
        with SSEStream(srv.port, "/journal?tail=all") as s:
            s.wait_messages(2)
            if how == "renamed away":
                os.rename(directory, away)
            else:
                os.chmod(directory, 0)
            wait_until(lambda: request(srv.port, "/healthz").status == 503, 20, "/healthz noticing the directory gone")
            assert request(srv.port, "/healthz").body == b"not following: journal\n"
            entry = next(e for e in request(srv.port, "/sources").json() if e["name"] == "journal")
            expected_problem = "No such file or directory" if how == "renamed away" else "Permission denied"
            assert expected_problem in entry["problem"] and str(directory) in entry["problem"], entry
            assert entry["following"] is False
            with SSEStream(srv.port, "/sources/app?tail=1") as other:
                assert other.wait_messages(1)[0].json["text"] == "file line"
            # journal-remote writes through its open descriptor meanwhile.
            files.messages(["during 0", "during 1"])
            if how == "renamed away":
                os.rename(away, directory)
            else:
                os.chmod(directory, 0o755)
            wait_until(lambda: request(srv.port, "/healthz").status == 200, 20, "the journal followed again")
            assert "problem" not in next(e for e in request(srv.port, "/sources").json() if e["name"] == "journal")
            files.messages(["after 0"])
            s.wait_messages(5)
            assert texts(s) == ["before 0", "before 1", "during 0", "during 1", "after 0"]
            assert [e.type for e in s.events if e.type != "message"] == []
    finally:
        if away.exists():
            os.rename(away, directory)
        if directory.exists():
            os.chmod(directory, 0o755)
        files.close()


def test_sources_lists_hosts_up_to_a_thousand_then_says_so(tailsse, journal):
    journal.write([{"MESSAGE": f"from host {i}", "_HOSTNAME": f"h{i:04d}"} for i in range(998)])
    journal.close()
    srv = start(tailsse, journal)
    (listed,) = request(srv.port, "/sources").json()
    assert listed["hosts"] == [f"h{i:04d}" for i in range(998)] and "hostsNote" not in listed
    with SSEStream(srv.port, "/journal?tail=0&host=late2") as late:
        late.wait_ready()
        journal.write([{"MESSAGE": f"live {name}", "_HOSTNAME": name} for name in ("h0001", "late0", "late1", "late2")])
        late.wait_messages(1)
        assert texts(late) == ["live late2"]
    (listed,) = request(srv.port, "/sources").json()
    assert listed["hosts"] == sorted([f"h{i:04d}" for i in range(998)] + ["late0", "late1"])
    assert listed["hostsNote"] == "only the first 1000 hosts seen are listed"
