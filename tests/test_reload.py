"""SIGHUP re-reads the configuration: new sources appear, removed ones end their streams with a
final `end` event, unchanged ones keep their clients; a broken configuration changes nothing."""

from __future__ import annotations

import json
import signal

from http_client import LineStream, SSEStream, request
from server import append, wait_until


def sources(srv) -> list[str]:
    return [s["name"] for s in request(srv.port, "/sources").json()]


def reload(srv, conf, text: str) -> None:
    conf.write_text(text)
    srv.proc.send_signal(signal.SIGHUP)


def test_reload_adds_removes_and_keeps_sources(tailsse, logdir, tmp_path):
    for name in ("a", "b", "c"):
        (logdir / f"{name}.log").write_text(f"{name}-0\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text(f"file = a={logdir / 'a.log'}\nfile = b={logdir / 'b.log'}\n")
    srv = tailsse({}, extra=["--config", str(conf)])
    assert sources(srv) == ["a", "b"]
    removed = SSEStream(srv.port, "/sources/a?tail=1")
    removed_ndjson = LineStream(srv.port, "/sources/a?tail=1", accept="application/x-ndjson")
    kept = SSEStream(srv.port, "/sources/b?tail=1")
    try:
        removed.wait_messages(1)
        removed_ndjson.wait_lines(1)
        kept.wait_messages(1)

        reload(srv, conf, f"file = b={logdir / 'b.log'}\nfile = c={logdir / 'c.log'}\n")

        # The removed source's streams end, cleanly, with the end event last.
        removed.wait_for(lambda s: s.eof, what="the end of the removed source's stream")
        assert removed.clean_end, "the stream was cut off instead of ended"
        end = removed.events[-1]
        assert end.type == "end", removed.events
        assert end.json["source"] == "a"
        assert "removed" in end.json["reason"]
        assert [e.type for e in removed.events] == ["message", "end"]
        removed_ndjson.body += removed_ndjson.read_all(timeout=10)
        last = json.loads(removed_ndjson.lines()[-1])
        assert last["event"] == "end" and last["source"] == "a" and "reason" in last
        assert removed_ndjson.clean_end

        wait_until(lambda: sources(srv) == ["b", "c"], what="the new source list")
        assert request(srv.port, "/sources/a").status == 404

        # The unchanged source keeps its client: new lines still arrive on the same connection.
        append(logdir / "b.log", "b-1\n")
        assert kept.wait_messages(2)[-1].json["text"] == "b-1"
        assert not kept.eof and all(e.type == "message" for e in kept.events)
        assert request(srv.port, "/sources").json()[0]["clients"] == 1

        # The new source streams.
        with SSEStream(srv.port, "/sources/c?tail=1") as added:
            assert added.wait_messages(1)[0].json["text"] == "c-0"
            append(logdir / "c.log", "c-1\n")
            assert added.wait_messages(2)[-1].json["text"] == "c-1"
    finally:
        for s in (removed, removed_ndjson, kept):
            s.close()
    assert srv.stop() == 0


def test_changed_path_ends_the_old_stream_and_serves_the_new_file(tailsse, logdir, tmp_path):
    (logdir / "one.log").write_text("one\n")
    (logdir / "two.log").write_text("two\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text(f"file = app={logdir / 'one.log'}\n")
    srv = tailsse({}, extra=["--config", str(conf)])
    with SSEStream(srv.port, "/sources/app?tail=1") as old:
        old.wait_messages(1)
        reload(srv, conf, f"file = app={logdir / 'two.log'}\n")
        old.wait_for(lambda s: s.eof, what="the end of the old stream")
        assert old.events[-1].type == "end" and "changed" in old.events[-1].json["reason"]
    wait_until(lambda: request(srv.port, "/sources").json()[0]["path"] == str(logdir / "two.log"), what="the new path")
    with SSEStream(srv.port, "/sources/app?tail=1") as new:
        assert new.wait_messages(1)[0].json["text"] == "two"


def test_broken_configuration_on_reload_changes_nothing(tailsse, logdir, tmp_path):
    (logdir / "a.log").write_text("a-0\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text(f"file = a={logdir / 'a.log'}\n")
    srv = tailsse({}, extra=["--config", str(conf)])
    with SSEStream(srv.port, "/sources/a?tail=1") as stream:
        stream.wait_messages(1)
        reload(srv, conf, f"file = a={logdir / 'a.log'}\nfile = b\n")
        wait_until(lambda: f"{conf}:2: file must be NAME=PATH" in srv.log_text(), what="the reload error in the log")
        assert srv.running()
        assert sources(srv) == ["a"]
        append(logdir / "a.log", "a-1\n")
        assert stream.wait_messages(2)[-1].json["text"] == "a-1"
        assert all(e.type == "message" for e in stream.events)
