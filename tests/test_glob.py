"""Glob sources: `--file app=DIR/*.log` follows every matching file as one source, each line tagged
with its file, ids exact per file, files joining as they appear."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from chaos import ReconnectingClient, first_difference, holds_open
from http_client import LineStream, SSEStream, request
from server import append, wait_until
from test_events import parse_composite


def files_listed(srv, name: str = "app") -> list[str]:
    for source in request(srv.port, "/sources").json():
        if source["name"] == name:
            return source.get("files", [])
    raise AssertionError(f"no source {name!r}")


def by_file(events) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        if e.type == "message":
            out.setdefault(e.json["file"], []).append(e.json["text"])
    return out


def test_the_files_of_a_glob_are_one_source_each_line_tagged_with_its_file(tailsse, logdir, tmp_path):
    (logdir / "a.log").write_bytes(b"a-1\na-2\n")
    (logdir / "b.log").write_bytes(b"b-1\n")
    # Not files of the glob: a rotated generation, another name, a hidden file, a compressed one,
    # a name unfit for ids, and a symlink an attacker could put there to a file they cannot read.
    (logdir / "a.log.1").write_bytes(b"old-a\n")
    (logdir / "notes.txt").write_bytes(b"notes\n")
    (logdir / ".hidden.log").write_bytes(b"hidden\n")
    (logdir / "b.log.2.gz").write_bytes(b"\x1f\x8b compressed\n")
    (logdir / "with space.log").write_bytes(b"spaced\n")
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET-1\n")
    os.symlink(secret, logdir / "evil.log")
    srv = tailsse({"app": logdir / "*.log"})
    sources = {s["name"]: s for s in request(srv.port, "/sources").json()}
    assert sources["app"]["kind"] == "file"
    assert sources["app"]["path"] == str(logdir / "*.log")
    assert sources["app"]["files"] == ["a.log", "b.log"]
    assert "with space.log" in sources["app"]["notice"]
    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(3)
        assert by_file(s.events) == {"a.log": ["a-1", "a-2"], "b.log": ["b-1"]}
        assert {e.json["source"] for e in s.messages()} == {"app"}
        # A file that appears is followed at once, from its first line, for clients already here.
        with open(logdir / "c.log", "wb") as c:
            c.write(b"c-1\n")
            c.flush()
            wait_until(lambda: "c.log" in files_listed(srv), what="c.log followed")
            c.write(b"c-2\n")
        append(logdir / "a.log", "a-3\n")
        append(secret, "SECRET-2\n")
        s.wait_messages(6)
        got = by_file(s.events)
        assert got == {"a.log": ["a-1", "a-2", "a-3"], "b.log": ["b-1"], "c.log": ["c-1", "c-2"]}
        last = parse_composite(s.messages()[-1].own_id)
        assert set(last) == {"a.log", "b.log", "c.log"}
        assert all(part.startswith("f1.") for part in last.values())
    assert b"SECRET" not in (srv.log_path.read_bytes())
    with LineStream(srv.port, "/sources/app?tail=1") as plain:
        lines = plain.wait_lines(3)
        assert sorted(lines) == [b"[a.log] a-3", b"[b.log] b-1", b"[c.log] c-2"]
    with LineStream(srv.port, "/sources/app?tail=1", accept="application/x-ndjson") as nd:
        objects = [json.loads(line) for line in nd.wait_lines(3)]
        assert {o["file"]: o["text"] for o in objects} == {"a.log": "a-3", "b.log": "b-1", "c.log": "c-2"}
        assert all(o["source"] == "app" for o in objects)


def test_a_symlink_swapped_in_for_a_file_of_the_glob_is_never_read(tailsse, logdir, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"SECRET-1\n")
    (logdir / "x.log").write_bytes(b"x-1\n")
    (logdir / "y.log").write_bytes(b"y-1\n")
    srv = tailsse({"app": logdir / "*.log"})
    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(2)
        link = logdir / "link.tmp"
        os.symlink(secret, link)
        os.rename(link, logdir / "x.log")
        append(secret, "SECRET-2\n")
        os.symlink(secret, logdir / "z.log")
        append(logdir / "y.log", "y-2\n")
        s.wait_for(lambda st: "y-2" in st.texts(), what="y-2")
        wait_until(lambda: "x.log" in (next(x for x in request(srv.port, "/sources").json() if x["name"] == "app").get("problem") or "")
                   or "x.log" not in files_listed(srv), what="the swapped file reported")
        append(logdir / "y.log", "y-3\n")
        s.wait_for(lambda st: "y-3" in st.texts(), what="y-3")
        assert not any("SECRET" in t for t in s.texts()), s.texts()
        assert "z.log" not in files_listed(srv)


def test_resuming_after_a_restart_sends_files_that_appeared_meanwhile_from_their_start(tailsse, logdir):
    (logdir / "a.log").write_bytes(b"a-1\n")
    srv = tailsse({"app": logdir / "*.log"})
    srv.pin_port()
    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(1)
        append(logdir / "a.log", "a-2\n")
        s.wait_messages(2)
        last = s.messages()[-1].own_id
    srv.stop()
    append(logdir / "a.log", "a-3\n")
    (logdir / "d.log").write_bytes(b"d-1\nd-2\n")
    os.rename(logdir / "a.log", logdir / "a.log.1")
    (logdir / "a.log").write_bytes(b"a-4\n")
    srv.restart()
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=last) as s:
        s.wait_messages(4)
        assert by_file(s.events) == {"a.log": ["a-3", "a-4"], "d.log": ["d-1", "d-2"]}
        assert not [e for e in s.events if e.type == "reset"]
        # A part naming a file the glob does not have is ignored; the others resume.
        parts = parse_composite(s.messages()[-1].own_id)
    stale = "m1," + ",".join(f"{k}={urllib.parse.quote(v, safe='.')}" for k, v in {**parts, "gone.log": "f1.1.1.0.0"}.items())
    append(logdir / "d.log", "d-3\n")
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id=stale) as s:
        s.wait_messages(1)
        assert by_file(s.events) == {"d.log": ["d-3"]}


def test_a_bad_id_for_a_glob_resets_to_the_tail_and_says_why(tailsse, logdir):
    (logdir / "a.log").write_bytes(b"a-1\na-2\n")
    srv = tailsse({"app": logdir / "*.log"})
    with SSEStream(srv.port, "/sources/app?tail=1", last_event_id="f1.fe00.12.0.0") as s:
        s.wait_for(lambda st: st.messages(), what="a line")
        assert [e.type for e in s.events][:1] == ["reset"]
        assert "glob" in s.events[0].json["reason"]
        assert s.texts() == ["a-2"]


@pytest.mark.parametrize("value, message", [
    ("/var/log/*/app.log", "only the file name may hold wildcards"),
    ("/var/log/app/", "needs the path of a file"),
])
def test_a_glob_with_wildcards_in_the_directory_is_refused(tailsse, logdir, value, message):
    srv = tailsse({"app": value}, start=False)
    import subprocess
    out = subprocess.run(srv.args, capture_output=True, timeout=30, env=srv.env)
    assert out.returncode != 0
    assert message in out.stderr.decode(), out.stderr.decode()


class GlobWriter(threading.Thread):
    """Creates, writes, rotates (rename + new file) and deletes files of a glob at random.

    It records every line written under its file's name, in order: a name's lines across all its
    files (rotated, deleted and created again) are one sequence, as a client of the glob must see
    them. A file is rotated only once the server lists its name, and deleted only once the server
    holds it open (a file created and deleted before anyone could open it has no lines anyone can
    promise)."""

    def __init__(self, directory: Path, listed, holds, count: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.listed = listed
        self.holds = holds
        self.count = count
        self.rng = random.Random(seed)
        self.written: dict[str, list[str]] = {}
        self.fds: dict[str, int] = {}
        self.actions = {"create": 0, "rotate": 0, "delete": 0}
        self.error: BaseException | None = None
        self.abort = threading.Event()
        self.done = threading.Event()

    def _open(self, name: str) -> None:
        self.fds[name] = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.written.setdefault(name, [])

    def _listed(self, name: str) -> bool:
        deadline = time.monotonic() + 20
        while name not in self.listed():
            if time.monotonic() > deadline or self.abort.is_set():
                raise AssertionError(f"{name} never listed")
            time.sleep(0.02)
        return True

    def run(self) -> None:
        try:
            for name in ("a.log", "b.log"):
                self._open(name)
            made = 0
            for i in range(self.count):
                if self.abort.is_set():
                    return
                roll = self.rng.random()
                if roll < 0.004 or not self.fds:
                    made += 1
                    self._open(f"n{made}.log")
                    self.actions["create"] += 1
                elif roll < 0.012 and len(self.fds) > 1:
                    name = self.rng.choice(sorted(self.fds))
                    self._listed(name)
                    os.close(self.fds.pop(name))
                    n = 1
                    while (self.directory / f"{name}.{n}").exists():
                        n += 1
                    for k in range(n - 1, 0, -1):
                        os.rename(self.directory / f"{name}.{k}", self.directory / f"{name}.{k + 1}")
                    os.rename(self.directory / name, self.directory / f"{name}.1")
                    self._open(name)
                    self.actions["rotate"] += 1
                elif roll < 0.016 and len(self.fds) > 1:
                    name = self.rng.choice(sorted(self.fds))
                    inode = os.fstat(self.fds[name]).st_ino
                    deadline = time.monotonic() + 20
                    while not self.holds(inode):
                        if time.monotonic() > deadline or self.abort.is_set():
                            raise AssertionError(f"tailsse never opened {name}")
                        time.sleep(0.01)
                    os.close(self.fds.pop(name))
                    os.unlink(self.directory / name)
                    self.actions["delete"] += 1
                name = self.rng.choice(sorted(self.fds))
                text = f"{name}-{i:06d}-" + "x" * self.rng.randint(0, 40)
                os.write(self.fds[name], (text + "\n").encode())
                self.written[name].append(text)
                if i % 50 == 0:
                    time.sleep(0.002)
        except BaseException as e:  # noqa: BLE001
            self.error = e
        finally:
            for fd in self.fds.values():
                os.close(fd)
            self.done.set()


@pytest.mark.parametrize("path", ["/sources/app?tail=all", "/events?source=app&tail=all"], ids=["source", "events"])
def test_files_created_rotated_and_deleted_while_a_client_reconnects_at_random_exact_per_file(tailsse, logdir, path):
    seed = int(os.environ.get("SOAK_SEED", "0") or 0) or random.randrange(1 << 30)
    print(f"seed {seed}")
    srv = tailsse({"app": logdir / "*.log"}, shared_buffer_bytes=64 << 10, extra=["--log-level", "debug"])
    writer = GlobWriter(logdir, lambda: files_listed(srv), lambda inode: holds_open(srv.pid, inode), count=6000, seed=seed)
    total = lambda: sum(len(v) for v in writer.written.values()) if writer.done.is_set() else None
    client = ReconnectingClient(lambda: srv.port, "app", seed=seed + 1, target=total, deadline=time.monotonic() + 120, path=path)
    client.start()
    wait_until(lambda: client.connections > 0 or client.error, what="the client's first connection")
    writer.start()
    try:
        writer.done.wait(120)
        client.join(130)
    finally:
        writer.abort.set()
        client.stop.set()
    got = {key.split("/", 1)[1]: texts for key, texts in client.by_source.items()}
    expected = {name: texts for name, texts in writer.written.items() if texts}
    differences = [f"{name}: {first_difference(expected.get(name, []), got.get(name, []))}"
                   for name in sorted(set(expected) | set(got)) if got.get(name, []) != expected.get(name, [])]
    if differences:
        (srv.log_path.parent / "sent_ids.txt").write_text("\n".join(str(i) for i in client.sent_ids))
    assert writer.error is None, writer.error
    assert client.error is None, f"{client.error}; {differences}"
    assert not differences, differences
    assert writer.actions["create"] >= 3 and writer.actions["rotate"] >= 3 and writer.actions["delete"] >= 3, writer.actions
    assert client.connections > 10, client.connections
    print(f"{writer.actions}, {client.connections} connections, {client.cut_mid_event} cut mid-event, {sum(map(len, expected.values()))} lines in {len(expected)} files")


def test_a_reload_keeps_an_unchanged_glob_with_its_clients_and_ends_a_removed_one(tailsse, logdir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (logdir / "a.log").write_bytes(b"a-1\n")
    (other / "o.log").write_bytes(b"o-1\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text(f"file = app={logdir / '*.log'}\nfile = old={other / '*.log'}\n")
    srv = tailsse({}, extra=["--config", str(conf)])
    with SSEStream(srv.port, "/sources/app?tail=1") as kept, SSEStream(srv.port, "/events?source=old&tail=1") as removed:
        kept.wait_messages(1)
        removed.wait_messages(1)
        conf.write_text(f"file = app={logdir / '*.log'}\n")
        srv.proc.send_signal(signal.SIGHUP)
        removed.wait_for(lambda s: s.eof, what="the end of the removed glob's stream")
        assert removed.clean_end
        assert [e.type for e in removed.events] == ["message", "end"]
        assert removed.events[-1].json["source"] == "old" and "removed" in removed.events[-1].json["reason"]
        append(logdir / "a.log", "a-2\n")
        (logdir / "b.log").write_bytes(b"b-1\n")
        kept.wait_messages(3)
        assert by_file(kept.events) == {"a.log": ["a-1", "a-2"], "b.log": ["b-1"]}
        assert not kept.eof
    assert [s["name"] for s in request(srv.port, "/sources").json()] == ["app"]
    assert srv.stop() == 0


def test_a_deleted_file_is_let_go_after_a_minute_and_leaves_the_ids(tailsse, logdir):
    """A deleted file stays followed for a while (a client behind can still read it), then its
    descriptor is closed, so the disk space is freed, and its part leaves the ids."""
    (logdir / "keep.log").write_bytes(b"keep-1\n")
    gone = logdir / "gone.log"
    gone.write_bytes(b"gone-1\n")
    inode = gone.stat().st_ino
    srv = tailsse({"app": logdir / "*.log"})
    with SSEStream(srv.port, "/sources/app?tail=all") as s:
        s.wait_messages(2)
        assert set(parse_composite(s.messages()[-1].own_id)) == {"gone.log", "keep.log"}
        gone.unlink()
        assert holds_open(srv.pid, inode)
        started = time.monotonic()
        wait_until(lambda: files_listed(srv) == ["keep.log"], timeout=90, interval=0.5, what="gone.log no longer followed")
        assert time.monotonic() - started > 30
        wait_until(lambda: not holds_open(srv.pid, inode), timeout=10, what="the deleted file's descriptor closed")
        append(logdir / "keep.log", "keep-2\n")
        s.wait_messages(3)
        assert set(parse_composite(s.messages()[-1].own_id)) == {"keep.log"}
