"""Abuse of the listener: half-sent request heads (slowloris) and idle connections are closed by
--request-timeout, and connections past --max-connections / --max-connections-per-client get 503
with Retry-After — while the viewers already connected keep receiving every line."""

from __future__ import annotations

import json
import socket
import threading
import time

from http_client import SSEStream, build_request
from server import append, wait_closed_by_server, wait_until

HALF_HEAD = b"GET /sources/app HTTP/1.1\r\nHost: 127.0.0.1\r\n"


class Writer:
    """Appends numbered lines every few milliseconds until stopped."""

    def __init__(self, path) -> None:
        self.path = path
        self.count = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done.is_set():
            append(self.path, f"line-{self.count:06d}\n")
            self.count += 1
            time.sleep(0.005)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.count


def read_all_lines(stream: SSEStream, count: int) -> list[str]:
    stream.wait_messages(count, timeout=60)
    return stream.texts()


def connect_from(address: str, port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(address, 0))
    return sock


def test_half_sent_heads_are_closed_by_the_request_timeout_while_a_viewer_streams(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--request-timeout", "2"])
    viewer = SSEStream(srv.port, "/sources/app?tail=0", timeout=30)
    viewer.wait_ready()
    writer = Writer(log)
    attackers = []
    try:
        for _ in range(500):
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sock.sendall(HALF_HEAD)
            attackers.append(sock)
        # A kept-alive connection that finished one request and then starts another, half-sent.
        keeper = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        keeper.sendall(build_request("/healthz"))
        assert keeper.recv(4096).startswith(b"HTTP/1.1 200")
        keeper.sendall(HALF_HEAD)
        attackers.append(keeper)
        open_socks, closed_after = wait_closed_by_server(attackers, between=lambda: viewer.pump(timeout=0.01))
        assert not open_socks, f"{len(open_socks)} of {len(attackers)} half-sent connections still open after 30 s"
        assert closed_after >= 1.5, f"closed after {closed_after:.1f} s: sooner than --request-timeout 2"
        print(f"{len(attackers)} half-sent heads closed within {closed_after:.1f} s of --request-timeout 2")
    finally:
        written = writer.stop()
        for sock in attackers:
            sock.close()
    texts = read_all_lines(viewer, written)
    assert texts == [f"line-{i:06d}" for i in range(written)], "the viewer missed or repeated a line"
    assert not viewer.eof
    viewer.close()


def test_an_idle_kept_alive_connection_is_closed(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log}, extra=["--request-timeout", "1"])
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    sock.sendall(build_request("/healthz"))
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    sock.settimeout(10)
    assert sock.recv(4096) == b"", "the idle connection was not closed"
    assert 0.8 <= time.monotonic() - started < 8
    sock.close()


def response_of(sock: socket.socket, path: str = "/sources/app?tail=0") -> tuple[int, dict, bytes]:
    sock.sendall(build_request(path, [("Accept", "text/event-stream")]))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def test_connections_past_the_limits_get_503_and_viewers_keep_every_line(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--max-connections-per-client", "3", "--max-connections", "5"])
    viewers = [SSEStream(srv.port, "/sources/app?tail=0", timeout=30) for _ in range(3)]
    for viewer in viewers:
        viewer.wait_ready()
    writer = Writer(log)
    extra: list[socket.socket] = []
    try:
        # A fourth connection from the same address: refused, with the reason and a retry hint.
        sock = connect_from("127.0.0.1", srv.port)
        status, headers, rest = response_of(sock)
        assert status == 503 and headers.get("retry-after") == "5", (status, headers)
        assert headers.get("connection") == "close"
        sock.settimeout(10)
        body = rest
        while chunk := sock.recv(65536):
            body += chunk
        assert json.loads(body) == {"error": "too many connections; try again later"}
        sock.close()
        # Another address still gets in, up to the total of 5.
        for address in ("127.0.0.2", "127.0.0.2"):
            sock = connect_from(address, srv.port)
            status, _, _ = response_of(sock)
            assert status == 200
            extra.append(sock)
        sock = connect_from("127.0.0.3", srv.port)
        status, headers, _ = response_of(sock)
        assert status == 503, "past the total"
        sock.close()
        # A closed connection frees its place.
        extra.pop().close()
        wait_until(lambda: response_of(probe := connect_from("127.0.0.3", srv.port))[0] == 200 and (probe.close() or True), 10,
                   "a place freed by a closed connection")
    finally:
        written = writer.stop()
        for sock in extra:
            sock.close()
    for viewer in viewers:
        assert read_all_lines(viewer, written) == [f"line-{i:06d}" for i in range(written)]
        assert not viewer.eof
        viewer.close()
