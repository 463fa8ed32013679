"""A client that never reads costs bounded memory and is closed after the write deadline, while
a normal client beside it still gets every line."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

from http_client import SSEStream, build_request, metric, request
from server import wait_until

MiB = 1 << 20


def test_client_that_never_reads(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, write_timeout=3, shared_buffer_bytes=4 * MiB, max_line_bytes=4096)

    line_len = 1000
    lines_per_write = 256
    total_lines = 80 * 1024  # ~80 MB of log
    # The normal client, reading everything in a thread.
    normal = SSEStream(srv.port, "/sources/app?tail=0", timeout=30)
    normal.wait_ready()
    got = {"n": 0, "bad": None}

    def read_normal():
        handled = 0
        deadline = time.monotonic() + 150
        while got["n"] < total_lines and time.monotonic() < deadline:
            if not normal.pump(timeout=1.0):
                break
            evs = normal.parser.events
            for ev in evs[handled:]:
                if ev.type != "message":
                    got["bad"] = got["bad"] or f"unexpected {ev.type} event: {ev.data}"
                    continue
                text = ev.json["text"]
                if int(text[:8]) != got["n"] and got["bad"] is None:
                    got["bad"] = f"line {got['n']} expected, got {text[:8]!r}"
                got["n"] += 1
            handled = len(evs)
            if handled > 10000:  # keep memory flat in the test process too
                del evs[:handled]
                handled = 0
            normal.body.clear()

    reader = threading.Thread(target=read_normal, daemon=True)
    reader.start()

    # The client that never reads: a small receive buffer, request sent, recv() never called.
    stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", srv.port))
    stuck.sendall(build_request("/sources/app?tail=0", [("Accept", "text/event-stream")]))
    wait_until(lambda: metric(srv.port, "tailsse_streams") == 2, 20, "two open streams")

    baseline = srv.rss_bytes()
    peak = [baseline]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            try:
                peak[0] = max(peak[0], srv.rss_bytes())
            except (OSError, AssertionError):
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    pad = "p" * (line_len - 10)
    try:
        for start in range(0, total_lines, lines_per_write):
            chunk = "".join(f"{i:08d} {pad}\n" for i in range(start, min(total_lines, start + lines_per_write)))
            data = chunk.encode()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)

    reader.join(timeout=150)
    sampling.set()
    sampler.join()
    assert got["bad"] is None, got["bad"]
    assert got["n"] == total_lines, f"the normal client got {got['n']} of {total_lines} lines"
    growth = peak[0] - baseline
    print(f"RSS baseline {baseline / MiB:.1f} MiB, peak {peak[0] / MiB:.1f} MiB, growth {growth / MiB:.1f} MiB")
    assert growth < 64 * MiB, f"server RSS grew by {growth / MiB:.1f} MiB with a client that never reads"

    # The stuck client is closed after the write deadline (--write-timeout 3): the stream count
    # drops to the normal client alone ...
    wait_until(lambda: metric(srv.port, "tailsse_streams") == 1, 20,
               "the server to close the client that never reads")
    # ... and reading its socket now drains what the kernel buffered, then ends (EOF or reset).
    stuck.setblocking(False)
    deadline = time.monotonic() + 30
    ended = False
    while time.monotonic() < deadline:
        r, _, _ = select.select([stuck], [], [], 1.0)
        if not r:
            continue
        try:
            data = stuck.recv(1 << 20)
        except ConnectionResetError:
            ended = True
            break
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                continue
            raise
        if not data:
            ended = True
            break
    stuck.close()
    assert ended, "the connection of the client that never read was not closed by the server"
    assert srv.running()
    # The normal client is still being served.
    from server import append
    append(log, "99999999 after\n")
    normal.wait_for(lambda s: any(e.type == "message" and e.json["text"] == "99999999 after"
                                  for e in s.parser.events), 20, "a line after the stuck client was closed")
    normal.close()


def test_a_slow_but_steady_reader_is_never_dropped(tailsse, logdir):
    """A phone on a poor link: it drains a large catch-up (3.4 MB) at a few hundred KB/s through a
    4 KiB receive window. Draining what the server has queued takes far longer than
    --write-timeout (1 s), but bytes keep draining, so the stream goes on to the last line:
    progress counts, not the time one large write takes."""
    log = logdir / "app.log"
    lines = [f"{i:06d} {'s' * 92}" for i in range(20_000)]      # 2 MB, 3.4 MB as SSE: more than the socket buffers hold
    log.write_text("".join(line + "\n" for line in lines))
    srv = tailsse({"app": log}, write_timeout=1, shared_buffer_bytes=64 << 10)
    slow = SSEStream(srv.port, "/sources/app?tail=all", timeout=30, rcvbuf=4096)
    received = 0
    started = time.monotonic()
    while received < len(lines):
        data = slow.read_some(timeout=10, max_bytes=8192)
        assert data is not None and not slow.eof, f"the server closed the slow reader after {received} lines: {srv.log_tail()}"
        received += sum(1 for e in slow.parser.feed(data) if e.type == "message")
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    assert slow.texts() == lines
    assert elapsed > 3, f"the reader was not slow enough to test anything ({elapsed:.1f} s)"
    assert "write deadline exceeded" not in srv.log_text()
    print(f"3.4 MB drained in {elapsed:.1f} s with --write-timeout 1")
    slow.close()


def _trickle(stream: SSEStream, until, chunk: int = 512, pause: float = 0.2) -> None:
    """Reads `chunk` wire bytes every `pause` seconds (a client on a very poor link) until
    `until()` is true or the body ends."""
    while not stream.eof and not until():
        data = stream.read_some(timeout=10, max_bytes=chunk)
        if data:
            stream.body += data
            stream.parser.feed(data)
        time.sleep(pause)


def test_a_trickle_reader_of_a_growing_log_is_closed_between_events(tailsse, logdir):
    """A client that drains ~2.5 KB/s while the log grows ~20 KB/s can never catch up: after a
    --min-read-window it is closed — at the end of an event, with a clean end of the response —
    and resuming from the last id it received continues with the next line exactly."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, write_timeout=30, extra=["--min-read-rate", "4096", "--min-read-window", "2"])
    trickle = SSEStream(srv.port, "/sources/app?tail=0", timeout=30, rcvbuf=4096)
    trickle.wait_ready()

    stop = threading.Event()
    written = [0]

    def write():
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        try:
            while not stop.is_set():
                chunk = "".join(f"{i:08d} {'g' * 90}\n" for i in range(written[0], written[0] + 20))
                os.write(fd, chunk.encode())
                written[0] += 20
                time.sleep(0.1)
        finally:
            os.close(fd)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 90
        _trickle(trickle, until=lambda: time.monotonic() > deadline)
    finally:
        stop.set()
        writer.join()
    assert trickle.eof, f"the trickle reader was not closed within 90 s: {srv.log_tail()}"
    assert trickle.clean_end, "the response was cut instead of ending cleanly"
    trickle.parser.close()
    assert bytes(trickle.body).endswith(b"\n\n"), f"the stream ended inside an event: {bytes(trickle.body)[-200:]!r}"
    texts = trickle.texts()
    assert texts, "the trickle reader got no line before it was closed"
    assert [int(t[:8]) for t in texts] == list(range(len(texts))), "lines lost or out of order before the close"
    assert all(t == f"{int(t[:8]):08d} {'g' * 90}" for t in texts), "a line arrived cut"
    assert len(texts) < written[0], "the reader caught up: it was not falling behind"
    log_text = srv.log_text()
    assert "closing a client that falls ever further behind" in log_text
    assert "falling behind: read" in log_text, "the access log line does not say why the stream ended"
    assert "write deadline exceeded" not in log_text
    closed = request(srv.port, "/metrics").body.decode()
    assert 'tailsse_connections_closed_total{timeout="min_read_rate"} 1\n' in closed, closed
    assert 'tailsse_connections_closed_total{timeout="write"} 0\n' in closed, closed

    last_id = trickle.messages()[-1].id
    trickle.close()
    resumed = SSEStream(srv.port, "/sources/app", last_event_id=last_id, timeout=30)
    first = resumed.wait_messages(1)[0]
    assert first.json["text"] == f"{len(texts):08d} {'g' * 90}", "resuming did not continue with the next line"
    resumed.close()
    print(f"closed after {len(texts)} of {written[0]} lines; resumed at line {len(texts)}")


def test_a_trickle_reader_catching_up_on_a_quiet_log_keeps_its_place(tailsse, logdir):
    """The same trickle of a log that no longer grows: its lag only shrinks, so it is never
    closed, however slowly it reads; when it speeds up it gets every line."""
    log = logdir / "app.log"
    lines = [f"{i:06d} {'q' * 92}" for i in range(3000)]      # 300 kB, ~500 kB as SSE
    log.write_text("".join(line + "\n" for line in lines))
    srv = tailsse({"app": log}, write_timeout=30, shared_buffer_bytes=64 << 10,
                  extra=["--min-read-rate", "4096", "--min-read-window", "1"])
    slow = SSEStream(srv.port, "/sources/app?tail=all", timeout=30, rcvbuf=4096)
    trickling_until = time.monotonic() + 5          # five windows of reading ~2.5 KB/s
    _trickle(slow, until=lambda: time.monotonic() > trickling_until)
    assert not slow.eof, f"the server closed a slow reader of a quiet log: {srv.log_tail()}"
    slow.wait_for(lambda s: len(s.messages()) >= len(lines), 60, "every line")
    assert slow.texts() == lines
    assert "falling behind" not in srv.log_text()
    slow.close()
