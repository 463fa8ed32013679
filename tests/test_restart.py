"""Ids stay valid across restarts of tailsse: resume is exact, lines written while it was down included."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from chaos import ReconnectingClient, Writer, first_difference, running
from http_client import SSEStream
from server import append, wait_until


def shift(log):
    """Renames the rotated files `NAME.N` to `NAME.N+1`, the highest first, as logrotate does."""
    n = 1
    while log.with_name(f"{log.name}.{n}").exists():
        n += 1
    for k in range(n - 1, 0, -1):
        os.rename(log.with_name(f"{log.name}.{k}"), log.with_name(f"{log.name}.{k + 1}"))


def copytruncate(log):
    """logrotate's copytruncate: shift, copy the file to `NAME.1`, truncate it."""
    shift(log)
    shutil.copyfile(log, log.with_name(f"{log.name}.1"))
    os.truncate(log, 0)


def empty_log_on_a_pinned_port(tailsse, logdir):
    """tailsse following an empty `app.log`, started again on the same port after a restart."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    srv.pin_port()
    return srv, log


def kinds(events):
    return [(e.type, e.json["text"]) if e.type == "message" else (e.type, None) for e in events]


def test_restart_resume_exact(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"a-1\na-2\n")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=2") as s:
        last = s.wait_messages(2)[-1].own_id
    assert srv.stop() == 0
    append(log, "down-1\ndown-2\ndown-par")   # while tailsse is down, with a partial last line
    srv.start()
    append(log, "tial\nup-1\n")
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_messages(4)
        assert kinds(s.events) == [("message", "down-1"), ("message", "down-2"),
                                   ("message", "down-partial"), ("message", "up-1")]


def test_restart_resume_across_rotation_while_down(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"a-1\na-2\n")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=2") as s:
        last = s.wait_messages(2)[-1].own_id
    assert srv.stop() == 0
    append(log, "a-3\n")
    os.rename(log, logdir / "app.log.1")
    append(logdir / "app.log.1", "a-4\n")
    append(log, "b-1\nb-2\n")
    srv.start()
    append(log, "b-3\n")
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_messages(5)
        assert kinds(s.events) == [("message", "a-3"), ("message", "a-4"), ("rotated", None),
                                   ("message", "b-1"), ("message", "b-2"), ("message", "b-3")]


def test_restart_resume_across_two_rotations_while_down(tailsse, logdir):
    """logrotate ran twice while tailsse was down: app.log -> .1 -> .2; all files still exist."""
    log = logdir / "app.log"
    log.write_bytes(b"a-1\na-2\n")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=2") as s:
        last = s.wait_messages(2)[-1].own_id
    assert srv.stop() == 0
    append(log, "a-3\n")
    os.rename(log, logdir / "app.log.1")
    append(log, "b-1\n")
    os.rename(logdir / "app.log.1", logdir / "app.log.2")
    os.rename(log, logdir / "app.log.1")
    append(log, "c-1\n")
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == "c-1" for e in st.events), 20, "c-1")
        assert kinds(s.events) == [("message", "a-3"), ("rotated", None), ("message", "b-1"),
                                   ("rotated", None), ("message", "c-1")]


def test_restart_resume_in_file_rotated_while_up(tailsse, logdir):
    """The client's id is in app.log.2: rotated twice while tailsse ran, then tailsse restarted."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "a-1\n")
        last = s.wait_messages(1)[0].own_id
        append(log, "a-2\n")
        os.rename(log, logdir / "app.log.1")
        append(log, "b-1\n")
        s.wait_messages(3)  # tailsse follows the new file before the next rotation
        os.rename(logdir / "app.log.1", logdir / "app.log.2")
        os.rename(log, logdir / "app.log.1")
        append(log, "c-1\n")
        s.wait_messages(4)
        seen = kinds(s.events)
        assert seen == [("message", "a-1"), ("message", "a-2"), ("rotated", None), ("message", "b-1"),
                        ("rotated", None), ("message", "c-1")]
    srv.restart()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == "c-1" for e in st.events), 20, "c-1")
        assert kinds(s.events) == seen[1:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_restarts_under_a_reconnecting_client(tailsse, logdir, sig):
    """Stop (SIGTERM; or a crash: SIGKILL) and start again with the same arguments, several times,
    while lines keep coming and a client keeps reconnecting with Last-Event-ID; rotations happen
    while tailsse is up and while it is down."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, shared_buffer_bytes=8192)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "sync line\n")
        start_id = s.wait_messages(1)[0].own_id
    # Writes until told how many lines to end with (after the last restart).
    writer = Writer(log, count=10 ** 9, seed=424242, rotate_every=None, pace=0.002)
    deadline = time.monotonic() + 150
    client = ReconnectingClient(lambda: srv.port, "app", 99,
                                target=lambda: len(writer.written) if writer.done.is_set() else None,
                                deadline=deadline)
    client.last_id = start_id
    with running(writer, client):
        restarts = 0
        for cycle in range(4):
            target = len(writer.written) + 300
            wait_until(lambda: len(writer.written) >= target, 60, "writer progress")
            if cycle % 2 == 0:
                writer.request_rotation()
            # Let the client catch up, past the rotation marker too, so that its id is in the file
            # being written when we stop. (An id two rotations back across a restart is
            # test_restart_resume_in_file_rotated_while_up's business.)
            n = len(writer.written)
            wait_until(lambda: (len(client.received) >= n and client.markers.get("rotated", 0) >= writer.rotations)
                       or client.error, 60, "the client to catch up")
            assert client.error is None, client.error
            rc = srv.stop(sig)
            assert rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL), f"exit status {rc} on {sig!r}"
            written_before = len(writer.written)
            if cycle in (1, 2):
                writer.request_rotation()
            wait_until(lambda: len(writer.written) >= written_before + 80, 60,
                       "lines written while tailsse is down")
            srv.start()
            restarts += 1
        writer.count = len(writer.written) + 300
        writer.join(timeout=120)
        assert writer.done.is_set() and writer.error is None, writer.error
        client.deadline = min(client.deadline, time.monotonic() + 40)
        client.join(timeout=max(1, client.deadline - time.monotonic()))
        if client.is_alive():
            client.stop.set()
            client.join(10)
        assert client.error is None, f"{client.error!r}; {len(client.received)} of {len(writer.written)} lines"
        assert restarts == 4 and writer.rotations == 4
        assert client.received == writer.written, first_difference(writer.written, client.received)
    print(f"{len(writer.written)} lines, {writer.rotations} rotations, {client.connections} connections, "
          f"{client.refused} refused, markers {client.markers}")


def test_resume_into_a_file_copytruncated_after_a_restart(tailsse, logdir):
    """The file was renamed away while tailsse was down (the client's id is
    in it), the new file then copytruncated (its copy lies between the two by name) and rotated on:
    a client resuming from the old file gets the new file's first content once (not from the copy
    as a rotated file and then again as the generation that reads the copy)."""
    srv, log = empty_log_on_a_pinned_port(tailsse, logdir)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "x-1 first line of x\nx-2 second line of x\n")
        last = s.wait_messages(2)[-1].own_id
    srv.kill()

    shift(log)
    os.rename(log, logdir / "app.log.1")
    append(log, "y-1 content one of y\ny-2 content one of y\n")
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        shift(log)
        shutil.copyfile(log, logdir / "app.log.1")
        os.truncate(log, 0)
        append(log, "y-3 content two of y\n")
        s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == "y-3 content two of y" for e in st.events),
                   20, "y-3")
        for i in range(6):   # rotated on, so the first generations' descriptors are let go
            shift(log)
            os.rename(log, logdir / "app.log.1")
            append(log, f"z-{i} more\n")
            s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == f"z-{i} more" for e in st.events),
                       20, f"z-{i}")
    expected = ["y-1 content one of y", "y-2 content one of y", "y-3 content two of y"] + [f"z-{i} more" for i in range(6)]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == "z-5 more" for e in st.events), 20, "z-5")
        assert s.texts() == expected


def test_resume_across_copytruncates_before_and_during_a_restart(tailsse, logdir):
    """The chaos test's gap: the client's id is in what the file held before a copytruncate
    while tailsse was up; it was killed (SIGKILL) and the file copytruncated again while it was down.
    The client resumes in the older copy (app.log.2), then reads the newer copy (app.log.1, content
    tailsse followed before the kill), then the file: nothing skipped, nothing twice."""
    srv, log = empty_log_on_a_pinned_port(tailsse, logdir)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "c0-1 first content\nc0-2 first content\n")
        last = s.wait_messages(2)[0].own_id
        copytruncate(log)
        append(log, "c1-1 second content\nc1-2 second content\n")
        s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == "c1-2 second content" for e in st.events),
                   20, "c1-2")
        assert "truncated" in [e.type for e in s.events]
    srv.kill()
    copytruncate(log)
    append(log, "c2-1 third content\n")
    srv.start()
    append(log, "c2-2 third content\n")
    expected = ["c0-2 first content", "c1-1 second content", "c1-2 second content",
                "c2-1 third content", "c2-2 third content"]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(lambda st: any(e.type == "message" and e.json["text"] == "c2-2 third content" for e in st.events),
                   20, "c2-2")
        assert s.texts() == expected
        assert [e.type for e in s.events if e.type != "message"].count("truncated") == 2


def _has_text(text):
    return lambda st: any(e.type == "message" and e.json["text"] == text for e in st.events)


def test_marker_ids_name_the_end_of_the_generation_they_leave(tailsse, logdir):
    """A `rotated` marker's id resumes before the new file's first line even once that file was
    copytruncated (its first content then lies in the copy), in the same process and after a
    restart; a `truncated` marker's id resumes after the truncation. (Both ids used to be the start
    of the new file, which after the copytruncate also named its content after the truncation: a
    client resuming from the `rotated` marker skipped the copy.)"""
    srv, log = empty_log_on_a_pinned_port(tailsse, logdir)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "a-1 first file\n")
        s.wait_for(_has_text("a-1 first file"), 20, "a-1")
        os.rename(log, logdir / "app.log.1")
        append(log, "b-1 second file\nb-2 second file\n")
        s.wait_for(_has_text("b-2 second file"), 20, "b-2")
        rotated = next(e for e in s.events if e.type == "rotated").own_id
        os.rename(logdir / "app.log.1", logdir / "app.log.2")
        shutil.copyfile(log, logdir / "app.log.1")
        os.truncate(log, 0)
        append(log, "c-1 after the truncation\n")
        s.wait_for(_has_text("c-1 after the truncation"), 20, "c-1")
        truncated = next(e for e in s.events if e.type == "truncated").own_id
    assert rotated != truncated
    after_rotation = ["b-1 second file", "b-2 second file", "c-1 after the truncation"]
    for restarted in (False, True):
        if restarted:
            srv.kill()
            srv.start()
        with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=rotated) as s:
            s.wait_for(_has_text("c-1 after the truncation"), 20, "c-1")
            assert s.texts() == after_rotation, f"restarted={restarted}"
            assert "reset" not in [e.type for e in s.events]
        with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=truncated) as s:
            s.wait_for(_has_text("c-1 after the truncation"), 20, "c-1")
            assert s.texts() == ["c-1 after the truncation"], f"restarted={restarted}"
            assert "reset" not in [e.type for e in s.events]


def test_resume_in_a_copy_reads_the_later_copies_before_the_renamed_file(tailsse, logdir):
    """The file was copytruncated while tailsse was down and again while it ran, then renamed
    away, and tailsse restarted: a client resuming in the first content reads the first copy, the
    second copy (the content between the truncations), then the renamed file, then the new file."""
    srv, log = empty_log_on_a_pinned_port(tailsse, logdir)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "x-1 first content\nx-2 first content\n")
        last = s.wait_messages(2)[0].own_id
    srv.kill()
    copytruncate(log)
    append(log, "y-1 second content\ny-2 second content\n")
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "y-3 second content\n")
        s.wait_for(_has_text("y-3 second content"), 20, "y-3")
        copytruncate(log)
        append(log, "z-1 third content\n")
        s.wait_for(_has_text("z-1 third content"), 20, "z-1")
        shift(log)
        os.rename(log, logdir / "app.log.1")
        append(log, "w-1 the new file\n")
        s.wait_for(_has_text("w-1 the new file"), 20, "w-1")
    srv.kill()
    srv.start()
    expected = ["x-2 first content", "y-1 second content", "y-2 second content", "y-3 second content",
                "z-1 third content", "w-1 the new file"]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(_has_text("w-1 the new file"), 20, "w-1")
        assert s.texts() == expected
        assert "reset" not in [e.type for e in s.events]


def test_resume_from_an_older_file_reads_a_file_copytruncated_while_down(tailsse, logdir):
    """While tailsse was down the followed file was copytruncated (its copy became app.log.1) and
    then renamed away: a client resuming in the file before it reads that file, the copy, what the
    renamed file got after its truncation, then the new file. (The renamed file no longer starts
    as tailsse recorded it, and was passed over as if it were another file.)"""
    srv, log = empty_log_on_a_pinned_port(tailsse, logdir)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "o-1 older file\no-2 older file\n")
        last = s.wait_messages(2)[0].own_id
        shift(log)
        os.rename(log, logdir / "app.log.1")
        append(log, "a-1 first content\na-2 first content\n")
        s.wait_for(_has_text("a-2 first content"), 20, "a-2")
    srv.kill()
    shift(log)
    shutil.copyfile(log, logdir / "app.log.1")
    os.truncate(log, 0)
    append(log, "b-1 after the truncation\nb-2 after the truncation\n")
    shift(log)
    os.rename(log, logdir / "app.log.1")
    append(log, "n-1 the new file\n")
    srv.start()
    expected = ["o-2 older file", "a-1 first content", "a-2 first content",
                "b-1 after the truncation", "b-2 after the truncation", "n-1 the new file"]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(_has_text("n-1 the new file"), 20, "n-1")
        assert s.texts() == expected
        assert "reset" not in [e.type for e in s.events]


def test_resume_in_a_copy_of_a_file_copytruncated_up_and_down_then_renamed(tailsse, logdir):
    """The client's id is in what the file held before a copytruncate tailsse saw; while it was
    down the file was copytruncated again and renamed away: the client reads the first copy, the
    second, the renamed file, then the new one. (The first copy was looked for only by the
    fingerprint of the content tailsse followed last, the second one.)"""
    srv, log = empty_log_on_a_pinned_port(tailsse, logdir)
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "c1-1 first content\nc1-2 first content\n")
        last = s.wait_messages(2)[0].own_id
        copytruncate(log)
        append(log, "c2-1 second content\n")
        s.wait_for(_has_text("c2-1 second content"), 20, "c2-1")
    srv.kill()
    copytruncate(log)
    append(log, "c3-1 third content\n")
    shift(log)
    os.rename(log, logdir / "app.log.1")
    append(log, "n-1 the new file\n")
    srv.start()
    expected = ["c1-2 first content", "c2-1 second content", "c3-1 third content", "n-1 the new file"]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_for(_has_text("n-1 the new file"), 20, "n-1")
        assert s.texts() == expected
        assert "reset" not in [e.type for e in s.events]
