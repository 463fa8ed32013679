"""A writer that appends numbered lines and rotates, and a client that keeps dropping its connection.

Both run in threads. The writer records every line text it writes, in order; the client records
every line text it receives, in order, across all its connections. A correct server makes the two
lists equal: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from pathlib import Path

from http_client import HTTPError, SSEStream


class Writer(threading.Thread):
    """Appends `count` numbered lines to `path`; rotates like logrotate (`mv`, numbered shifts).

    - lines are sometimes written in two write() calls (a partial line the server must hold);
    - rotation: app.log.N -> app.log.N+1 ..., app.log -> app.log.1, then the program keeps writing a
      few lines to its still-open old file (sometimes ending with a partial line), then opens a new
      app.log. No rotated file is ever deleted, so every id stays resumable.
    - rotate_every: (lo, hi) lines between automatic rotations, or None for rotations on request only.
    """

    def __init__(self, path: Path, count: int, seed: int, rotate_every=(150, 400), pace: float = 0.0005,
                 before_rotate=None) -> None:
        super().__init__(daemon=True)
        # Called (in the writer thread) before each rotation with the current file's inode.
        self.before_rotate = before_rotate
        self.path = Path(path)
        self.count = count
        self.rng = random.Random(seed)
        self.rotate_every = rotate_every
        self.pace = pace
        self.written: list[str] = []
        self.rotations = 0
        self._rotate_request = threading.Event()
        self._rotated = threading.Event()
        self.error: BaseException | None = None
        self.gate = threading.Event()   # cleared: the writer pauses (between lines)
        self.gate.set()
        self.done = threading.Event()
        self.abort = threading.Event()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def _text(self, i: int) -> str:
        return f"line-{i:06d}-" + "x" * self.rng.randint(0, 60)

    def request_rotation(self, timeout: float = 20.0) -> None:
        self._rotated.clear()
        self._rotate_request.set()
        if not self._rotated.wait(timeout):
            raise AssertionError("the writer did not rotate")

    def _rotate(self, fd: int) -> tuple[int, int]:
        if self.before_rotate is not None:
            self.before_rotate(os.fstat(fd).st_ino)
        base = self.path.name
        d = self.path.parent
        n = 1
        while (d / f"{base}.{n}").exists():
            n += 1
        for k in range(n - 1, 0, -1):
            os.rename(d / f"{base}.{k}", d / f"{base}.{k + 1}")
        os.rename(self.path, d / f"{base}.1")
        self.rotations += 1
        i = len(self.written)
        # The program has not reopened yet: a few more lines land in the rotated file.
        for _ in range(self.rng.randint(0, 3)):
            if i >= self.count:
                break
            text = self._text(i)
            self._write(fd, (text + "\n").encode())
            self.written.append(text)
            i += 1
        if i < self.count and self.rng.random() < 0.3:
            text = self._text(i)  # a last line without its LF: drained as a line at rotation
            self._write(fd, text.encode())
            self.written.append(text)
        os.close(fd)
        fd = self._open()
        return fd, self.rng.randint(*self.rotate_every) if self.rotate_every else -1

    def run(self) -> None:
        try:
            fd = self._open()
            next_rotation = self.rng.randint(*self.rotate_every) if self.rotate_every else -1
            since = 0
            while len(self.written) < self.count and not self.abort.is_set():
                self.gate.wait()
                if self._rotate_request.is_set():
                    self._rotate_request.clear()
                    fd, next_rotation = self._rotate(fd)
                    since = 0
                    self._rotated.set()
                    continue
                if next_rotation > 0 and since >= next_rotation:
                    fd, next_rotation = self._rotate(fd)
                    since = 0
                    continue
                text = self._text(len(self.written))
                data = (text + "\n").encode()
                if self.rng.random() < 0.1:
                    cut = self.rng.randint(1, len(data) - 1)
                    self._write(fd, data[:cut])
                    if self.rng.random() < 0.5:
                        time.sleep(self.rng.uniform(0, 0.01))
                    self._write(fd, data[cut:])
                else:
                    self._write(fd, data)
                self.written.append(text)
                since += 1
                r = self.rng.random()
                if r < 0.02:
                    time.sleep(self.rng.uniform(0.01, 0.05))  # a quiet moment
                elif r < 0.5:
                    time.sleep(self.pace)
            os.close(fd)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.done.set()


class ReconnectingClient(threading.Thread):
    """Follows one source over many short connections, like EventSource with Last-Event-ID.

    Each connection is cut at a random point: after a random number of events, or after a random
    number of body bytes (often in the middle of an event), with a FIN or an RST. Every reconnect
    sends the id of the last event the parser fully dispatched.
    """

    def __init__(self, get_port, source: str, seed: int, target: callable, deadline: float,
                 path: str | None = None) -> None:
        super().__init__(daemon=True)
        self.get_port = get_port
        self.source = source
        self.path = path or f"/sources/{source}?tail=0"   # a multiplexed stream: /events?...
        self.by_source: dict[str, list[str]] = {}
        self.rng = random.Random(seed)
        self.target = target          # () -> number of lines to receive, or None while unknown
        self.deadline = deadline
        self.received: list[str] = []
        self.last_id: str | None = None
        self.connections = 0
        self.refused = 0
        self.cut_mid_event = 0   # connections closed with part of an event received
        self.markers: dict[str, int] = {}
        self.error: BaseException | None = None
        self.resets: list[str] = []
        # The id each connection resumed from, in order.
        self.sent_ids: list[str | None] = []
        self.stop = threading.Event()

    def _done(self) -> bool:
        t = self.target()
        return t is not None and len(self.received) >= t

    def run(self) -> None:
        try:
            while not self._done() and not self.stop.is_set():
                if time.monotonic() > self.deadline:
                    raise AssertionError(f"client deadline passed with {len(self.received)} lines received")
                self._one_connection()
        except BaseException as e:  # noqa: BLE001
            self.error = e

    def _one_connection(self) -> None:
        port = self.get_port()
        try:
            s = SSEStream(port, self.path, last_event_id=self.last_id, timeout=10)
        except (ConnectionRefusedError, ConnectionResetError, HTTPError, TimeoutError, socket.timeout, OSError):
            self.refused += 1
            time.sleep(0.05)  # the server is restarting: EventSource would wait `retry` ms
            return
        self.connections += 1
        self.sent_ids.append(self.last_id)
        if s.status != 200:
            raise AssertionError(f"status {s.status} on reconnect with id {self.last_id!r}")
        mode = self.rng.choice(["events", "bytes", "bytes", "events"])
        budget_events = self.rng.randint(0, 80)
        budget_bytes = self.rng.randint(1, 8000)
        seen = 0
        handled = 0
        try:
            while not self._done() and not self.stop.is_set():
                if time.monotonic() > self.deadline:
                    break
                max_bytes = None
                if mode == "bytes":
                    max_bytes = budget_bytes - seen
                    if max_bytes <= 0:
                        break
                try:
                    alive = s.pump(timeout=1.0, max_bytes=max_bytes)
                except (ConnectionResetError, OSError):
                    alive = False
                seen = len(s.body)
                for ev in s.parser.events[handled:]:
                    self._handle(ev)
                handled = len(s.parser.events)
                if not alive:
                    break
                if mode == "events" and len(s.messages()) >= budget_events:
                    break
        finally:
            # EventSource's reconnect id: the last event ID string at the last dispatch.
            if s.parser.last_event_id:
                self.last_id = s.parser.last_event_id
            if s.body and not bytes(s.body).endswith(b"\n\n"):
                self.cut_mid_event += 1
            s.close(reset=self.rng.random() < 0.3)

    def _handle(self, ev) -> None:
        if ev.type == "message":
            obj = ev.json
            assert obj.get("continues") is None, "no line in this test is long enough to be split"
            self.received.append(obj["text"])
            # A glob source's lines are kept apart by file: its order is only exact per file.
            key = f'{obj["source"]}/{obj["file"]}' if "file" in obj else obj["source"]
            self.by_source.setdefault(key, []).append(obj["text"])
        else:
            self.markers[ev.type] = self.markers.get(ev.type, 0) + 1
            if ev.type == "reset":
                self.resets.append(ev.data)
                raise AssertionError(f"unexpected reset after id {self.last_id!r}: {ev.data}")


def first_difference(expected: list[str], got: list[str]) -> str:
    for i, (a, b) in enumerate(zip(expected, got)):
        if a != b:
            return (f"first difference at index {i}: expected {a!r}, got {b!r}; "
                    f"expected[{i}:{i + 3}]={expected[i:i + 3]!r} got[{i}:{i + 3}]={got[i:i + 3]!r}")
    return f"lengths differ: expected {len(expected)}, got {len(got)}; extra: {(got[len(expected):] or expected[len(got):])[:3]!r}"


class running:
    """Starts the writer and the client; on exit (also on failure) stops both."""

    def __init__(self, writer: Writer, client: ReconnectingClient) -> None:
        self.writer = writer
        self.client = client

    def __enter__(self):
        self.writer.start()
        self.client.start()
        return self

    def __exit__(self, *exc):
        self.writer.abort.set()
        self.client.stop.set()
        self.writer.join(10)
        self.client.join(10)


def holds_open(pid: int, inode: int) -> bool:
    """Whether process `pid` has a descriptor open on the file with `inode`."""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            if os.stat(f"/proc/{pid}/fd/{name}").st_ino == inode:
                return True
        except OSError:
            continue
    return False
