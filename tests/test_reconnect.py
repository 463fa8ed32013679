"""A client that drops its connection at random points never loses or repeats a line."""

from __future__ import annotations

import os
import time

import pytest

from chaos import ReconnectingClient, Writer, first_difference, holds_open, running
from http_client import SSEStream
from server import append, wait_until


SEED = int(os.environ.get("TAILSSE_TEST_SEED", "0"))  # to explore other seeds; 0 = the fixed ones


@pytest.mark.parametrize("seed,shared_buffer", [(SEED or 20251125, 4096), (SEED or 7, 4 << 20)],
                         ids=["tiny-shared-buffer", "large-shared-buffer"])
def test_reconnecting_client_gets_exactly_every_line(tailsse, logdir, seed, shared_buffer):
    log = logdir / "app.log"
    log.write_bytes(b"existing line, not part of the test\n")
    srv = tailsse({"app": log}, shared_buffer_bytes=shared_buffer)
    # Rotate again only once tailsse has opened the current file: a file that is created and
    # rotated away again before the follower ever sees it under its name cannot be followed
    # (tail -F cannot either); that is not what this test is about.
    writer = Writer(log, count=4000, seed=seed, rotate_every=(150, 450),
                    before_rotate=lambda ino: wait_until(lambda: holds_open(srv.pid, ino), 30,
                                                         "tailsse to open the current file"))
    # Fix the client's starting point before the writer starts: the id of a sync line.
    with SSEStream(srv.port, "/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "sync line\n")
        start_id = s.wait_messages(1)[0].own_id
    deadline = time.monotonic() + 120
    client = ReconnectingClient(lambda: srv.port, "app", seed + 1,
                                target=lambda: len(writer.written) if writer.done.is_set() else None,
                                deadline=deadline)
    client.last_id = start_id
    with running(writer, client):
        writer.join(timeout=100)
        assert writer.done.is_set() and writer.error is None, writer.error
        client.deadline = min(client.deadline, time.monotonic() + 40)
        client.join(timeout=max(1, client.deadline - time.monotonic()))
        if client.is_alive():
            client.stop.set()
            client.join(10)
        assert client.error is None, f"{client.error!r}; after {client.connections} connections, " \
                                     f"{len(client.received)} of {len(writer.written)} lines"
        assert writer.rotations >= 5
        assert client.connections >= 30, "the client should have reconnected many times"
        assert client.cut_mid_event >= 5, "the client should often have cut a connection mid-event"
        assert client.received == writer.written, first_difference(writer.written, client.received)
        assert client.markers.get("rotated", 0) >= 1
        assert srv.running()
    print(f"{len(writer.written)} lines, {writer.rotations} rotations, {client.connections} connections "
          f"({client.cut_mid_event} cut mid-event), markers {client.markers}")
