"""tailsse behind a real nginx (Debian's package) under `/logs/`, with the README's proxy settings:
two instances on the same files, round-robin, so a client's reconnections land on one instance
and then the other — and since an id is a position in the log, not server state, it still gets
every line exactly once, in order, across rotations."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from chaos import ReconnectingClient, Writer, first_difference, holds_open, running
from http_client import SSEStream, build_request
from http_client import request as http_request
from proxy_support import caddy, nginx  # noqa: F401  (the fixtures)
from server import append, wait_until

STATIC = str(Path(__file__).resolve().parent.parent / "static")


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_a_stream_through_the_proxy_is_not_buffered_and_resumes(tailsse, logdir, request, kind):
    log = logdir / "app.log"
    log.write_text("before\n")
    srv = tailsse({"app": log}, extra=["--base-path", "/logs/", "--static-dir", STATIC])
    proxy = request.getfixturevalue(kind)([srv.port])
    stream = SSEStream(proxy.port, "/logs/sources/app?tail=1")
    assert stream.wait_messages(1)[0].json["text"] == "before"
    for i in range(5):
        append(log, f"live {i}\n")
        # Each line arrives on its own: a buffering proxy would hold them back.
        stream.wait_for(lambda s: s.texts()[-1] == f"live {i}", 5, f"line {i} through {kind}")
    last = stream.messages()[-1].id
    stream.close()
    append(log, "while away\n")
    resumed = SSEStream(proxy.port, "/logs/sources/app", last_event_id=last)
    assert resumed.wait_messages(1)[0].json["text"] == "while away"
    resumed.close()
    page = http_request(proxy.port, "/logs/")
    assert page.status == 200 and b"<html" in page.body.lower()
    assert http_request(proxy.port, "/logs/healthz").body == b"ok\n"


def test_two_instances_behind_nginx_every_line_exactly_once_across_reconnections_and_rotations(tailsse, logdir, nginx):
    log = logdir / "app.log"
    log.write_bytes(b"existing line, not part of the test\n")
    first = tailsse({"app": log}, extra=["--base-path", "/logs/"])
    second = tailsse({"app": log}, extra=["--base-path", "/logs/"])
    proxy = nginx([first.port, second.port])

    def both_hold_open(inode: int) -> bool:
        return holds_open(first.pid, inode) and holds_open(second.pid, inode)

    writer = Writer(log, count=3000, seed=1515, rotate_every=(200, 500),
                    before_rotate=lambda ino: wait_until(lambda: both_hold_open(ino), 30, "both instances to open the current file"))
    with SSEStream(proxy.port, "/logs/sources/app?tail=0") as s:
        s.wait_ready()
        append(log, "sync line\n")
        start_id = s.wait_messages(1)[0].own_id
    client = ReconnectingClient(lambda: proxy.port, "app", 1516,
                                target=lambda: len(writer.written) if writer.done.is_set() else None,
                                deadline=time.monotonic() + 120, path="/logs/sources/app?tail=0")
    client.last_id = start_id
    with running(writer, client):
        writer.join(timeout=100)
        assert writer.done.is_set() and writer.error is None, writer.error
        client.join(timeout=max(1, client.deadline - time.monotonic()))
        assert client.error is None, f"{client.error!r}; {len(client.received)} of {len(writer.written)} lines"
    assert client.received == writer.written, first_difference(writer.written, client.received)
    assert writer.rotations >= 3
    served = [first.log_text().count("stream ended"), second.log_text().count("stream ended")]
    assert min(served) >= client.connections // 3, f"round-robin should split the connections: {served}"
    print(f"{len(writer.written)} lines, {writer.rotations} rotations, {client.connections} connections "
          f"through nginx, streams served per instance {served}")


def test_behind_nginx_with_trusted_proxy_a_token_guesser_is_paused_and_other_clients_are_not(tailsse, logdir, tmp_path, nginx):
    """The README's nginx block appends the client's address to X-Forwarded-For; with
    --trusted-proxy 127.0.0.1 tailsse counts failed token attempts against that address. Clients
    connect to nginx from 127.0.0.2 (the guesser, who also writes addresses of its own into the
    header) and 127.0.0.3."""
    log = logdir / "app.log"
    log.write_text("a line\n")
    token = "proxied-token-0123456789abcdef"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token}\n")
    tokens.chmod(0o600)
    srv = tailsse({"app": log}, extra=["--base-path", "/logs/", "--token-file", str(tokens), "--trusted-proxy", "127.0.0.1"])
    proxy = nginx([srv.port])

    def status(source: str, bearer: str, claimed: str | None = None) -> int:
        headers = [("Authorization", f"Bearer {bearer}"), ("Connection", "close")]
        if claimed:
            headers.append(("X-Forwarded-For", claimed))
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10, source_address=(source, 0)) as sock:
            sock.sendall(build_request("/logs/sources", headers))
            head = sock.recv(64)
        return int(head.split(b" ", 2)[1])

    for attempt in range(10):
        assert status("127.0.0.2", f"wrong-token-{attempt:02d}-0123456789", claimed=f"198.51.100.{attempt}") == 401
    assert status("127.0.0.2", token, claimed="198.51.100.99") == 429
    assert status("127.0.0.3", token) == 200, "another client behind nginx is not paused"
