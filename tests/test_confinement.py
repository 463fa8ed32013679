"""Resume ids can only lead to the configured file and its own rotated generations.

An id names a file by device and inode, which a client can make up for any file it can see in the
log's directory. These tests craft such ids — with the check computed exactly as tailsse computes
it, so only confinement stands in the way — for every kind of file that can lie beside a log, and
watch tailsse's open() calls with strace: each gets a `reset`, none of its bytes, and is never
opened. Genuine rotations (numbered, dated, copytruncate) still resume exactly, also across a
restart."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from http_client import SSEStream
from server import append, wait_until

SECRET = b"SECRET-0123456789abcdef-do-not-stream\n" * 3


def fnv1a32(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def check_of(content: bytes, offset: int) -> int:
    """The position check tailsse computes: FNV-1a of the 16 bytes before the offset, 0 at 0."""
    window = content[max(0, offset - 16):offset]
    return fnv1a32(window) if window else 0


def crafted_id(dev: int, ino: int, offset: int, content: bytes) -> str:
    return f"f1.{dev:x}.{ino:x}.{offset:x}.{check_of(content, offset):x}"


def kinds(events):
    return [(e.type, e.json["text"]) if e.type == "message" else (e.type, None) for e in events]


def assert_reset_then_tail(srv, last_id: str, tail_text: str) -> None:
    with SSEStream(srv.port, "/sources/app?tail=1", last_event_id=last_id) as s:
        s.wait_messages(1)
        assert [e.type for e in s.events[:2]] == ["reset", "message"], (last_id, kinds(s.events))
        assert s.events[1].json["text"] == tail_text
        assert b"SECRET" not in bytes(s.body), last_id


def strace_or_skip() -> str:
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (make deps-test installs it): cannot watch the server's open() calls")
    return strace


def opened_names(trace: Path) -> list[str]:
    names = []
    for line in trace.read_text(errors="replace").splitlines():
        m = re.search(r'open(?:at2?)?\((?:AT_FDCWD|\d+)?,? ?"([^"]*)"', line)
        if m:
            names.append(m.group(1))
    return names


def test_crafted_ids_for_files_beside_the_log_get_reset_and_open_nothing(tailsse, logdir, tmp_path):
    strace = strace_or_skip()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    secret = elsewhere / "shadow"
    secret.write_bytes(SECRET)
    linked_secret = elsewhere / "linked"
    linked_secret.write_bytes(SECRET)
    assert os.stat(secret).st_dev == os.stat(logdir).st_dev

    log = logdir / "app.log"
    log.write_bytes(b"one\ntwo\n")
    # Before start: names sharing the prefix, a never-followed rotation-named file, symlinks named
    # like rotations, a hard link named like one, and a fifo named like one.
    regular = {name: logdir / name for name in
               ("app.logins.txt", "app.log.bak", "app.log~", "app.log1", "app.log.1.gz", "app.log.5")}
    for path in regular.values():
        path.write_bytes(SECRET)
    (logdir / "app.log.1").symlink_to(secret)
    (logdir / "app.log.x").symlink_to(secret)
    (logdir / "app.log-20250101").symlink_to(secret)
    os.link(linked_secret, logdir / "app.log.2")
    os.mkfifo(logdir / "app.log.3")

    trace = tmp_path / "strace.log"
    srv = tailsse({"app": log}, wrapper=[strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace)])
    with SSEStream(srv.port, "/sources/app?tail=1") as s:
        s.wait_messages(1)
    # After start: regular files with rotation names, and a hard link.
    late = {name: logdir / name for name in ("app.log.4", "app.log-20250102", "app.log.2025-01-03", "app.log.0")}
    for path in late.values():
        path.write_bytes(SECRET)
    os.link(linked_secret, logdir / "app.log.6")

    targets: list[tuple[str, int, int, bytes]] = []   # (what, dev, ino, content)
    for name, path in {**regular, **late}.items():
        st = os.stat(path)
        targets.append((name, st.st_dev, st.st_ino, SECRET))
    for name in ("app.log.1", "app.log.x", "app.log-20250101"):
        target, own = os.stat(logdir / name), os.lstat(logdir / name)
        targets.append((f"{name} -> secret", target.st_dev, target.st_ino, SECRET))
        targets.append((f"{name} (the link itself)", own.st_dev, own.st_ino, os.readlink(logdir / name).encode()))
    for name in ("app.log.2", "app.log.6"):
        st = os.stat(logdir / name)
        assert st.st_nlink == 3
        targets.append((f"{name} (hard link)", st.st_dev, st.st_ino, SECRET))
    st = os.lstat(logdir / "app.log.3")
    targets.append(("app.log.3 (fifo)", st.st_dev, st.st_ino, b""))

    for what, dev, ino, content in targets:
        for offset in sorted({0, 1, len(content)}):
            assert_reset_then_tail(srv, crafted_id(dev, ino, offset, content), "two")
    # A genuine rotation among them: the follower's walk for generations in between takes none.
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "three\n")
        os.rename(log, logdir / "app.log.7")
        append(log, "new-1\n")
        s.wait_messages(2)
        assert kinds(s.events) == [("message", "three"), ("rotated", None), ("message", "new-1")]
    rotated_id = crafted_id(os.stat(logdir / "app.log.7").st_dev, os.stat(logdir / "app.log.7").st_ino, 4,
                            b"one\ntwo\nthree\n")
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=rotated_id) as s:
        s.wait_messages(3)
        assert kinds(s.events) == [("message", "two"), ("message", "three"), ("rotated", None), ("message", "new-1")]
        assert b"SECRET" not in bytes(s.body)
    assert srv.running()
    assert srv.stop() == 0

    opened = opened_names(trace)
    assert str(log) in opened, "strace did not see tailsse open its own log file: is it tracing the server?"
    forbidden = set(regular) | set(late) | {"app.log.1", "app.log.x", "app.log-20250101", "app.log.2",
                                             "app.log.6", "app.log.3", "shadow", "linked"}
    touched = [p for p in opened if Path(p).name in forbidden]
    assert touched == [], f"tailsse opened files it must not: {touched}"
    print(f"{len(targets)} crafted files x offsets, all reset; {len(opened)} opens, none of them")


def test_honest_resume_skips_look_alikes(tailsse, logdir):
    """A client resuming from the genuinely rotated app.log.1 gets its rest and then the new file:
    not an editor's backup, a prefix-sharing file or a symlink lying beside them; also after a
    restart, and also when the follower drains several rotations at once."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "a-1\na-2\n")
        first = s.wait_messages(2)[0].own_id
        os.rename(log, logdir / "app.log.1")
        for name in ("app.log~", "app.log.bak", "app.logins.txt", "app.log.1~"):
            (logdir / name).write_bytes(SECRET)
        (logdir / "app.log.0").symlink_to(logdir / "app.log~")
        append(log, "b-1\n")
        s.wait_messages(3)
        expected = [("message", "a-2"), ("rotated", None), ("message", "b-1")]
        assert kinds(s.events)[1:] == expected
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=first) as s:
        s.wait_messages(2)
        assert kinds(s.events) == expected
    srv.restart()
    append(log, "b-2\n")
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=first) as s:
        s.wait_messages(3)
        assert kinds(s.events) == expected + [("message", "b-2")]
        assert b"SECRET" not in bytes(s.body)
    # Two rotations before the follower looks (tailsse stopped by SIGSTOP, so both land in one
    # inotify read): the genuine generation between them is drained, nothing else.
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        os.kill(srv.pid, signal.SIGSTOP)
        try:
            rotate_numbered(log)
            append(log, "c-1\n")
            rotate_numbered(log)
            append(log, "d-1\n")
        finally:
            os.kill(srv.pid, signal.SIGCONT)
        s.wait_for(lambda st: "d-1" in st.texts(), 20, "d-1")
        assert kinds(s.events) == [("rotated", None), ("message", "c-1"), ("rotated", None), ("message", "d-1")]
        assert b"SECRET" not in bytes(s.body)


def rotate_numbered(log: Path) -> None:
    """logrotate's numbered rename rotation: .N -> .N+1 for every N, then the file -> .1."""
    numbers = sorted((int(p.name[len(log.name) + 1:]) for p in log.parent.glob(log.name + ".*")
                      if p.name[len(log.name) + 1:].isdigit() and int(p.name[len(log.name) + 1:]) > 0
                      and not p.is_symlink()), reverse=True)
    for n in numbers:
        os.rename(f"{log}.{n}", f"{log}.{n + 1}")
    os.rename(log, f"{log}.1")


def write_lines(path: Path, prefix: str, count: int) -> list[str]:
    lines = [f"{prefix}-{i}" for i in range(count)]
    append(path, "".join(x + "\n" for x in lines))
    return lines


@pytest.mark.parametrize("rotated_name", ["app.log.1", "app.log-20250101", "app.log.2025-01-01"])
def test_genuine_rename_rotation_resumes_exactly_also_after_restart(tailsse, logdir, rotated_name):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        old = write_lines(log, "old", 5)
        ids = [e.own_id for e in s.wait_messages(5)]
        os.rename(log, logdir / rotated_name)
        new = write_lines(log, "new", 3)
        s.wait_messages(8)
    expected = [("message", x) for x in old[2:]] + [("rotated", None)] + [("message", x) for x in new]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=ids[1]) as s:
        s.wait_messages(6)
        assert kinds(s.events) == expected
    srv.restart()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=ids[1]) as s:
        s.wait_messages(6)
        assert kinds(s.events) == expected
    # The rotated file's own start (the id a `rotated` marker before it would carry): exact too.
    st = os.stat(logdir / rotated_name)
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=f"f1.{st.st_dev:x}.{st.st_ino:x}.0.0") as s:
        s.wait_messages(8)
        assert kinds(s.events) == [("message", x) for x in old] + [("rotated", None)] + [("message", x) for x in new]


def copytruncate(log: Path, rotated: str = "app.log.1") -> None:
    shutil.copyfile(log, log.parent / rotated)
    os.truncate(log, 0)


def test_copytruncate_resumes_exactly(tailsse, logdir):
    """At the truncation's point, and behind it (the rest is read from the copy beside the file)."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        old = write_lines(log, "old", 4)
        ids = [e.own_id for e in s.wait_messages(4)]
        copytruncate(log)
        s.wait_for(lambda st: any(e.type == "truncated" for e in st.events), 20, "truncated")
        new = write_lines(log, "new", 2)
        s.wait_messages(6)
    after = [("truncated", None)] + [("message", x) for x in new]
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=ids[-1]) as s:
        s.wait_messages(2)
        assert kinds(s.events) == after
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=ids[1]) as s:
        s.wait_messages(4)
        assert kinds(s.events) == [("message", x) for x in old[2:]] + after


def test_copytruncate_while_down_resumes_exactly_after_restart(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        old = write_lines(log, "old", 4)
        ids = [e.own_id for e in s.wait_messages(4)]
    assert srv.stop() == 0
    old += write_lines(log, "down", 2)
    copytruncate(log, "app.log-20250101")
    new = write_lines(log, "new", 2)
    srv.start()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=ids[1]) as s:
        s.wait_messages(6)
        assert kinds(s.events) == [("message", x) for x in old[2:]] + [("truncated", None)] + [("message", x) for x in new]
    # A copy whose first bytes are not what the file held (another file given a rotation name) is
    # not taken for it.
    os.rename(logdir / "app.log-20250101", logdir / "app.log-20250102")
    data = (logdir / "app.log-20250102").read_bytes()
    (logdir / "app.log-20250102").write_bytes(b"X" + data[1:])
    with SSEStream(srv.port, "/sources/app?tail=1", last_event_id=ids[1]) as s:
        s.wait_messages(1)
        assert [e.type for e in s.events] == ["reset", "message"]


def test_journal_cursor_lookups_stay_in_the_configured_directory(tailsse, tmp_path):
    """A cursor names an entry by ids and numbers, never a file: sd-journal looks it up in the
    journal files of the configured directory only. A cursor of another journal (same boot id,
    so only the directory tells them apart) gets a `reset`, and that journal is never opened."""
    from journal_support import JournalFiles, have_journal_remote
    if not have_journal_remote():
        pytest.skip("systemd-journal-remote is not installed (apt install systemd-journal-remote)")
    strace = strace_or_skip()
    import json
    mine = JournalFiles(tmp_path / "journal")
    other = JournalFiles(tmp_path / "other-journal")
    try:
        mine.messages([f"mine {i}" for i in range(4)])
        mine.close()
        other.messages([f"SECRET {i}" for i in range(4)], file="elsewhere")
        other.close()
        foreign = [json.loads(x)["__CURSOR"] for x in other.journalctl("-o", "json").splitlines()]
        own = [json.loads(x)["__CURSOR"] for x in mine.journalctl("-o", "json").splitlines()]
        trace = tmp_path / "strace.log"
        srv = tailsse({}, extra=["--journal-directory", str(mine.directory)],
                      wrapper=[strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace)])
        for cursor in foreign:
            with SSEStream(srv.port, "/journal?tail=1", last_event_id=cursor) as s:
                s.wait_messages(1)
                assert [e.type for e in s.events[:2]] == ["reset", "message"]
                assert s.texts() == ["mine 3"] and b"SECRET" not in bytes(s.body)
        with SSEStream(srv.port, "/journal?tail=0", last_event_id=own[1]) as s:
            s.wait_messages(2)
            assert s.texts() == ["mine 2", "mine 3"] and s.events[0].type == "message"
        assert srv.stop() == 0
    finally:
        mine.close()
        other.close()
    opened = opened_names(trace)
    assert any(p.startswith(str(mine.directory)) for p in opened), "strace did not see the configured journal opened"
    assert [p for p in opened if str(other.directory) in p or "elsewhere" in p] == []
