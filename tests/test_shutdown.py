"""SIGTERM ends every open stream cleanly and the process exits 0, promptly."""

from __future__ import annotations

import signal
import threading
import time

from http_client import LineStream, SSEStream
from server import append


def test_sigterm_with_no_clients_exits_zero(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log})
    t0 = time.monotonic()
    assert srv.stop(signal.SIGTERM, timeout=20) == 0
    assert time.monotonic() - t0 < 5


def test_sigterm_ends_open_streams_cleanly(tailsse, logdir):
    a = logdir / "a.log"
    b = logdir / "b.log"
    a.write_bytes(b"a-0\n")
    b.write_bytes(b"b-0\n")
    srv = tailsse({"a": a, "b": b})
    busy = SSEStream(srv.port, "/sources/a?tail=1")
    idle = SSEStream(srv.port, "/sources/b?tail=1")
    ndjson = LineStream(srv.port, "/sources/a?tail=1", accept="application/x-ndjson")
    plain = LineStream(srv.port, "/sources/a?tail=1")
    streams = [busy, idle, ndjson, plain]
    try:
        busy.wait_messages(1)
        idle.wait_messages(1)
        ndjson.wait_lines(1)
        plain.wait_lines(1)

        # Keep lines coming while tailsse shuts down, so streams are busy when it happens.
        stop = threading.Event()

        def write():
            i = 1
            while not stop.is_set():
                append(a, f"a-{i}\n")
                i += 1
                time.sleep(0.001)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        busy.wait_messages(50)

        t0 = time.monotonic()
        rc = srv.stop(signal.SIGTERM, timeout=10)
        elapsed = time.monotonic() - t0
        stop.set()
        writer.join()
        assert rc == 0, f"exit status {rc}"
        assert elapsed < 5, f"tailsse took {elapsed:.1f}s to exit on SIGTERM"

        # Every stream ended as an HTTP response should (last chunk), with whole events only.
        for s in streams:
            rest = s.read_all(timeout=10)
            s.body += rest
            if isinstance(s, SSEStream):
                s.parser.feed(rest)
            assert s.clean_end, f"{s.path}: the response was cut off instead of ended (no last chunk)"
        for s in (busy, idle):
            assert bytes(s.body).endswith(b"\n\n"), f"SSE body ends mid-event: {bytes(s.body)[-80:]!r}"
        texts = busy.texts()
        assert texts == [f"a-{i}" for i in range(len(texts))], "lines out of order or missing"
        for s in (ndjson, plain):
            assert bytes(s.body).endswith(b"\n"), f"body ends mid-line: {bytes(s.body)[-80:]!r}"
    finally:
        for s in streams:
            s.close()
